"""The corpus stage on hostile folders: symlinks, bad names, vanishing files, odd encodings.

``scan_corpus`` is reached through the module (``corpus.scan_corpus``) so that, run
against the code before it existed, each test fails on its own assertion about the
defect rather than the whole file failing to import.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import pytest

import rag.corpus as corpus
from rag.corpus import iter_corpus_files, load_file, load_folder, read_file
from rag.errors import RagError, UnreadableFileError

ARTICLE = "# 哈尔滨冰雪大世界开园\n\n本报讯（记者张三）第二十六届哈尔滨冰雪大世界于12月18日开园。\n"
SECRET = "root:x:0:0:root:/root:/bin/bash 这是机密内容\n"
SHORT = "元旦流行秒杀风  科宝博洛尼出奇制胜图为科宝博洛尼总裁蔡明"


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """An article folder holding one good article, beside a secret file outside it."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "good.txt").write_text(ARTICLE, encoding="utf-8")
    (tmp_path / "secret.txt").write_text(SECRET, encoding="utf-8")
    return lib


def quiet_load_folder(folder: Path) -> dict[str, list]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_folder(folder)


# ----------------------------------------------------------------------------- symlinks


def test_symlink_to_a_file_outside_is_skipped_and_never_read(
    library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = library.parent / "secret.txt"
    (library / "leak.txt").symlink_to(secret)
    opened: list[Path] = []
    real_open = Path.open

    def spy_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(self.resolve())
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", spy_open)
    loaded = quiet_load_folder(library)
    assert list(loaded) == ["good.txt"]
    assert secret not in opened
    assert not any("机密" in a.text for articles in loaded.values() for a in articles)
    scan = corpus.scan_corpus(library)
    assert list(scan.files) == ["good.txt"]
    assert scan.skipped == {"leak.txt": "symlink to a file outside the article folder"}


def test_symlinked_folder_outside_is_not_descended(library: Path) -> None:
    outside = library.parent / "elsewhere"
    outside.mkdir()
    (outside / "private.txt").write_text(SECRET, encoding="utf-8")
    (library / "linked").symlink_to(outside, target_is_directory=True)
    assert list(quiet_load_folder(library)) == ["good.txt"]
    scan = corpus.scan_corpus(library)
    assert list(scan.files) == ["good.txt"]
    assert scan.skipped == {"linked": "symlink to a folder outside the article folder"}


def test_symlink_inside_the_folder_is_indexed_once(library: Path) -> None:
    # a link to an article already in the folder is a duplicate: skipped, named
    (library / "again.txt").symlink_to(library / "good.txt")
    # a link to an in-folder file that is not itself an article is indexed by its name
    (library / "data").mkdir()
    (library / "data" / "raw.dat").write_text(ARTICLE.replace("张三", "李四"), encoding="utf-8")
    (library / "story.md").symlink_to(Path("data") / "raw.dat")
    loaded = quiet_load_folder(library)
    assert sorted(loaded) == ["good.txt", "story.md"]
    assert "李四" in loaded["story.md"][0].byline
    scan = corpus.scan_corpus(library)
    assert list(scan.files) == ["good.txt", "story.md"]
    assert scan.files["story.md"] == (library / "data" / "raw.dat").resolve()
    assert scan.skipped == {"again.txt": "symlink to good.txt, already indexed under that name"}


def test_broken_symlink_is_reported(library: Path) -> None:
    (library / "gone.txt").symlink_to(library / "nowhere.txt")
    (library / "gone.jpg").symlink_to(library / "nowhere.jpg")  # not an article: not reported
    assert list(quiet_load_folder(library)) == ["good.txt"]
    scan = corpus.scan_corpus(library)
    assert list(scan.files) == ["good.txt"]
    assert scan.skipped == {"gone.txt": "broken symlink"}


# ----------------------------------------------------------------------------- bad entries


def test_file_name_not_utf8_is_skipped_and_the_others_kept(library: Path) -> None:
    fd = os.open(os.fsencode(library) + b"/\xff\xfe.txt", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, ARTICLE.encode("utf-8"))
    os.close(fd)
    loaded = quiet_load_folder(library)
    assert list(loaded) == ["good.txt"]  # was also '\udcff\udcfe.txt', unencodable later
    scan = corpus.scan_corpus(library)
    assert list(scan.files) == ["good.txt"]
    [(shown, reason)] = scan.skipped.items()
    assert shown == "\\xff\\xfe.txt"
    shown.encode("utf-8")  # printable anywhere
    assert "not valid UTF-8" in reason and "rename" in reason


def test_file_deleted_between_scan_and_load_is_unreadable(library: Path) -> None:
    [path] = iter_corpus_files(library)
    path.unlink()
    with pytest.raises(UnreadableFileError, match=r"^good\.txt: .*(moved|deleted)"):
        load_file(path, "good.txt")
    with pytest.raises(UnreadableFileError, match=r"^good\.txt: "):
        read_file(path, "good.txt")


def test_permission_denied_is_unreadable(library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # tests run as root, where chmod 000 does not stop a read: fake the denial instead
    target = library / "good.txt"
    real_open = Path.open

    def denied(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(UnreadableFileError, match=r"^good\.txt: .*permission denied") as caught:
        load_file(target, "good.txt")
    assert isinstance(caught.value, RagError)
    with pytest.raises(UnreadableFileError, match=r"^good\.txt: .*permission denied"):
        read_file(target, "good.txt")


def test_folder_named_like_an_article_is_reported(library: Path) -> None:
    (library / "2020.txt").mkdir()
    (library / "2020.txt" / "inner.txt").write_text(ARTICLE, encoding="utf-8")
    scan = corpus.scan_corpus(library)
    # its contents are still articles; the folder itself is reported, not read
    assert list(scan.files) == ["2020.txt/inner.txt", "good.txt"]
    assert scan.skipped == {"2020.txt": "a folder, not a file"}


def test_hidden_file_is_reported(library: Path) -> None:
    (library / ".notes.txt").write_text(ARTICLE, encoding="utf-8")
    (library / ".DS_Store").write_bytes(b"\x00\x01")  # not an article: not reported
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert list(load_folder(library)) == ["good.txt"]
    assert [str(w.message) for w in caught] == [".notes.txt: hidden file, skipped"]
    scan = corpus.scan_corpus(library)
    assert list(scan.files) == ["good.txt"]
    assert scan.skipped == {".notes.txt": "hidden file"}


def test_special_file_is_reported_and_never_opened(library: Path) -> None:
    os.mkfifo(library / "pipe.txt")  # reading it would block forever
    scan = corpus.scan_corpus(library)
    assert list(scan.files) == ["good.txt"]
    assert scan.skipped == {"pipe.txt": "not a regular file"}
    with pytest.raises(UnreadableFileError, match="not a regular file"):
        load_file(library / "pipe.txt")


def test_index_folder_inside_the_library_is_skipped_silently(library: Path) -> None:
    index = library / "index"
    index.mkdir()
    (index / "manifest.txt").write_text(ARTICLE, encoding="utf-8")
    scan = corpus.scan_corpus(library, exclude=index)
    assert list(scan.files) == ["good.txt"]
    assert scan.skipped == {}


def test_scan_order_is_sorted_and_iter_corpus_files_follows_it(library: Path) -> None:
    for name in ("b/z.md", "a-c.txt", "a/b.txt", "B.TXT", "notes.rtf"):
        (library / name).parent.mkdir(exist_ok=True)
        (library / name).write_text(ARTICLE, encoding="utf-8")
    scan = corpus.scan_corpus(library)
    assert list(scan.files) == sorted(["b/z.md", "a-c.txt", "a/b.txt", "B.TXT", "good.txt"])
    assert [p.relative_to(library).as_posix() for p in iter_corpus_files(library)] == list(
        scan.files
    )


# ----------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom_is_read(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "utf16.txt"
    path.write_bytes(("\ufeff" + ARTICLE).encode(encoding))
    [article] = load_file(path)
    assert article.title == "哈尔滨冰雪大世界开园"
    assert "12月18日开园" in article.text


def test_utf8_with_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bom.md"
    path.write_bytes(("\ufeff" + ARTICLE).encode("utf-8"))
    [article] = load_file(path)
    assert article.title == "哈尔滨冰雪大世界开园"


def test_gb18030_is_read(tmp_path: Path) -> None:
    # 䶮 and 𠀀 are outside GBK: four-byte GB18030 sequences
    text = ARTICLE.replace("张三", "刘䶮") + "\n另有𠀀字，欧元符号€。\n"
    path = tmp_path / "gb.txt"
    path.write_bytes(text.encode("gb18030"))
    articles = load_file(path)
    body = "\n".join(a.text for a in articles)
    assert "𠀀" in body and "€" in body
    assert articles[0].byline == "本报讯（记者刘䶮）"


# ----------------------------------------------------------------------------- parsing


def test_short_article_is_kept_as_one_article(tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_text(SHORT + "\n", encoding="utf-8")
    [article] = load_file(path)
    assert article.title == SHORT
    assert article.text == SHORT
    assert article.lines(0, len(article.text)) == (1, 1)


def test_a_file_swapped_for_a_link_after_the_scan_is_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("# 密码\n\n密码是123456。\n", encoding="utf-8")
    (folder / "a.txt").write_text("# 标题\n\n正文。\n", encoding="utf-8")
    path = corpus.scan_corpus(folder).files["a.txt"]
    (folder / "a.txt").unlink()
    (folder / "a.txt").symlink_to(secret)  # the swap, between scan and read
    with pytest.raises(UnreadableFileError, match="symbolic link"):
        load_file(path, "a.txt")
    with pytest.raises(UnreadableFileError, match="symbolic link"):
        read_file(path, "a.txt")
