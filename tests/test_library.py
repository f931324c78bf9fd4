"""The library API: list, remove (delete an upload, exclude anything else), restore, re-index,
hand out originals; exclusions kept across reopening and ``newsqa index``; user file names
confined to the article folder. Fast: the hash embedder."""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from rag import (
    Config,
    LibraryError,
    Retriever,
    UnknownArticleError,
    UnsafePathError,
)
from rag.cli import main
from rag.corpus import (
    EXCLUDED_REASON,
    LibraryRecord,
    LibraryRecordWarning,
    library_file,
    library_record_path,
)
from rag.index import CorpusIndex

ARTICLES = {
    "a.txt": "# 哈尔滨冰雪大世界开园\n\n本报讯（记者甲）第二十六届哈尔滨冰雪大世界12月18日开园，园区占地面积100万平方米。\n\n今年冰雪大世界使用冰雪总量30万立方米。\n",
    "b.txt": "# 七台河短道速滑馆\n\n□文/摄 记者乙\n\n七台河体育中心短道速滑馆培养了多名奥运冠军。\n\n馆内每天有二百名小队员训练。\n",
    "sub/c.md": "# 绥芬河口岸\n\n本报讯（记者丙）绥芬河铁路口岸今年进出口货运量突破千万吨。\n",
}
SKATING = "七台河短道速滑馆每天有多少名小队员训练？"
SNOW = "漠河北极村首场降雪有多厚？"
UPLOAD = "# 漠河北极村迎来首场降雪\n\n本报讯（记者丁一）漠河北极村今年首场降雪厚度达到十八厘米，游客纷纷前来赏雪。\n"


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    for name, text in ARTICLES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture()
def config(corpus: Path, tmp_path: Path) -> Config:
    return Config(
        corpus_dir=corpus,
        index_dir=tmp_path / "cache" / "index",
        chunk_size=100,
        chunk_overlap=20,
        embedder="hash",
    )


@pytest.fixture()
def retriever(config: Config) -> Retriever:
    return Retriever.from_config(config)


def cited_files(retriever: Retriever, question: str) -> list[str]:
    return [hit.citation.file for hit in retriever.retrieve(question, k=5)]


def folder_state(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_the_library_lists_each_file_with_titles_size_chunks_and_when_indexed(
    config: Config,
) -> None:
    started = time.time()
    retriever = Retriever.from_config(config)
    rows = {row.file: row for row in retriever.library()}
    assert list(rows) == ["a.txt", "b.txt", "sub/c.md"]
    assert rows["b.txt"].title == "七台河短道速滑馆" and rows["sub/c.md"].titles == ("绥芬河口岸",)
    for name, row in rows.items():
        assert row.size == (config.corpus / name).stat().st_size
        assert row.chunks == len(retriever.index.files[name].chunk_ids) > 0
        assert started <= row.indexed_at <= time.time()
        assert not row.uploaded and not row.excluded
    assert sum(row.chunks for row in rows.values()) == len(retriever.index)


def test_removing_a_file_not_uploaded_excludes_it_and_leaves_it_on_disk(
    retriever: Retriever, config: Config, corpus: Path
) -> None:
    before = folder_state(corpus)
    assert cited_files(retriever, SKATING)[0] == "b.txt"
    change = retriever.remove_article("b.txt")
    assert (change.file, change.action) == ("b.txt", "excluded")
    assert change.report.deleted == ["b.txt"] and change.report.removed > 0
    assert "b.txt" not in cited_files(retriever, SKATING)  # its passages left at once
    assert all(chunk.file != "b.txt" for chunk in retriever.index.chunks.values())
    assert folder_state(corpus) == before  # nothing in the article folder changed
    row = next(row for row in retriever.library() if row.file == "b.txt")
    assert row.excluded and row.chunks == 0 and row.title == "七台河短道速滑馆"
    record = library_record_path(config)
    assert record.is_file() and not record.resolve().is_relative_to(corpus.resolve())
    assert "b.txt" in json.loads(record.read_text(encoding="utf-8"))["excluded"]


def test_an_exclusion_survives_reopening_and_a_plain_newsqa_index(
    retriever: Retriever, config: Config, corpus: Path
) -> None:
    retriever.remove_article("b.txt")
    reopened = Retriever.from_config(config)
    assert "b.txt" not in reopened.index.files
    assert reopened.last_update.skipped == {"b.txt": EXCLUDED_REASON}
    assert "b.txt" not in cited_files(reopened, SKATING)
    (corpus / "b.txt").write_text(ARTICLES["b.txt"] + "\n补记一段。\n", encoding="utf-8")
    index, report = CorpusIndex.open(config, reopened.embedder)  # changed on disk: still out
    assert "b.txt" not in index.files and report.skipped["b.txt"] == EXCLUDED_REASON
    arguments = ["index", str(corpus), "--index-dir", str(config.index_path)]
    arguments += ["--embedder", "hash", "--chunk-size", "100", "--chunk-overlap", "20"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert f"skipped: b.txt ({EXCLUDED_REASON})" in result.output
    assert "from 2 files" in result.output


def test_restoring_brings_the_passages_back(retriever: Retriever, config: Config) -> None:
    retriever.remove_article("b.txt")
    change = retriever.restore_article("b.txt")
    assert change.action == "restored" and change.report.added == ["b.txt"]
    assert cited_files(retriever, SKATING)[0] == "b.txt"
    assert not any(row.excluded for row in retriever.library())
    assert "b.txt" in Retriever.from_config(config).index.files  # and stays restored


def test_removing_an_upload_deletes_the_file_the_chat_stored(
    retriever: Retriever, corpus: Path
) -> None:
    stored = retriever.add_document("snow.txt", UPLOAD.encode()).added
    assert stored == ["snow.txt"] and cited_files(retriever, SNOW)[0] == "snow.txt"
    row = next(row for row in retriever.library() if row.file == "snow.txt")
    assert row.uploaded and not row.excluded and row.title == "漠河北极村迎来首场降雪"
    change = retriever.remove_article("snow.txt")
    assert change.action == "deleted" and change.report.deleted == ["snow.txt"]
    assert not (corpus / "snow.txt").exists()
    assert "snow.txt" not in cited_files(retriever, SNOW)
    assert all(row.file != "snow.txt" for row in retriever.library())  # not listed as excluded


def test_an_upload_changed_on_disk_since_is_excluded_not_deleted(
    retriever: Retriever, corpus: Path
) -> None:
    retriever.add_document("snow.txt", UPLOAD.encode())
    edited = UPLOAD + "\n编辑补充：积雪将持续一周。\n"
    (corpus / "snow.txt").write_text(edited, encoding="utf-8")  # a user's own words now
    retriever.update()
    assert not next(row for row in retriever.library() if row.file == "snow.txt").uploaded
    assert retriever.remove_article("snow.txt").action == "excluded"
    assert (corpus / "snow.txt").read_text(encoding="utf-8") == edited


def test_an_upload_taking_the_name_of_an_excluded_file_that_is_gone_is_indexed(
    retriever: Retriever, corpus: Path
) -> None:
    retriever.remove_article("b.txt")
    (corpus / "b.txt").unlink()  # the user deleted the excluded file by hand
    assert all(row.file != "b.txt" for row in retriever.library())
    assert retriever.add_document("b.txt", UPLOAD.encode()).added == ["b.txt"]
    assert cited_files(retriever, SNOW)[0] == "b.txt"


def test_reindexing_one_or_all_files_embeds_them_again(retriever: Retriever) -> None:
    before = {row.file: row.indexed_at for row in retriever.library()}
    one = retriever.reindex("sub/c.md")
    assert one.action == "reindexed" and one.report.changed == ["sub/c.md"]
    assert one.report.embedded == retriever.library()[2].chunks > 0
    after = {row.file: row.indexed_at for row in retriever.library()}
    assert after["sub/c.md"] > before["sub/c.md"] and after["a.txt"] == before["a.txt"]
    every = retriever.reindex()
    assert every.file == "" and every.report.changed == ["a.txt", "b.txt", "sub/c.md"]
    assert every.report.embedded == len(retriever.index)
    assert cited_files(retriever, SKATING)[0] == "b.txt"


def test_the_original_is_handed_out_for_indexed_and_excluded_files(
    retriever: Retriever, corpus: Path
) -> None:
    path = retriever.original("sub/c.md")
    assert path == (corpus / "sub" / "c.md").resolve()
    assert path.read_text(encoding="utf-8") == ARTICLES["sub/c.md"]
    retriever.remove_article("b.txt")
    assert retriever.original("b.txt").read_text(encoding="utf-8") == ARTICLES["b.txt"]


def test_bad_names_and_wrong_states_are_typed_errors(
    retriever: Retriever, corpus: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("# 机密\n\n不应被读取。\n", encoding="utf-8")
    (corpus / "link.txt").symlink_to(outside)
    for bad in ("../secret.txt", str(outside), "sub/../../secret.txt", "link.txt", "", 3):
        for call in (retriever.remove_article, retriever.original, retriever.reindex):
            with pytest.raises(UnsafePathError):
                call(bad)  # type: ignore[arg-type]
    with pytest.raises(UnknownArticleError):
        retriever.remove_article("missing.txt")
    with pytest.raises(UnknownArticleError):
        retriever.original("missing.txt")
    with pytest.raises(LibraryError, match="not excluded"):
        retriever.restore_article("a.txt")
    retriever.remove_article("a.txt")
    with pytest.raises(LibraryError, match="excluded already"):
        retriever.remove_article("a.txt")
    with pytest.raises(LibraryError, match="restore it"):
        retriever.reindex("a.txt")
    assert outside.read_text(encoding="utf-8").startswith("# 机密")
    assert (corpus / "link.txt").is_symlink()
    assert retriever.remove_article("./sub/c.md").file == "sub/c.md"  # "." parts dropped


def test_a_damaged_record_is_ignored_with_a_warning(retriever: Retriever, config: Config) -> None:
    retriever.remove_article("b.txt")
    library_record_path(config).write_text("{not json", encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not any(row.excluded for row in retriever.library())
    assert any(issubclass(w.category, LibraryRecordWarning) for w in caught)


def test_a_record_inside_the_article_folder_is_refused(corpus: Path) -> None:
    record = LibraryRecord(corpus / "library.json", excluded={"a.txt": {}})
    with pytest.raises(LibraryError, match="inside the article folder"):
        record.save(corpus.resolve())
    assert not (corpus / "library.json").exists()


# ----------------------------------------------------------------------------- confinement


@pytest.fixture(scope="module")
def jail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An article folder holding a file, a sub-folder and links leading in and out."""
    root = tmp_path_factory.mktemp("jail")
    folder = root / "articles"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("甲", encoding="utf-8")
    (root / "outside.txt").write_text("乙", encoding="utf-8")
    (folder / "out.txt").symlink_to(root / "outside.txt")
    (folder / "up").symlink_to(root)
    (folder / "in.txt").symlink_to(folder / "a.txt")
    return folder


NAME_PARTS = st.sampled_from(["a.txt", "sub", "up", "out.txt", "in.txt", "..", ".", "", "x.md"])


@settings(max_examples=300, deadline=None)
@given(
    name=st.one_of(
        st.text(max_size=40),
        st.lists(NAME_PARTS, min_size=1, max_size=5).map("/".join),
        st.lists(NAME_PARTS, min_size=1, max_size=5).map("\\".join),
        st.lists(NAME_PARTS, min_size=1, max_size=5).map(lambda p: "/" + "/".join(p)),
    )
)
def test_a_name_from_a_user_never_leads_outside_the_article_folder(jail: Path, name: str) -> None:
    root = jail.resolve()
    try:
        cited, path = library_file(jail, name)
    except UnsafePathError:
        return
    assert ".." not in name.replace("\\", "/").split("/")
    assert not name.startswith(("/", "\\"))
    resolved = path.resolve()
    assert resolved != root and resolved.is_relative_to(root)
    assert path == root.joinpath(*cited.split("/")) and not cited.startswith("/")


@pytest.mark.parametrize(
    "name", ["../outside.txt", "out.txt", "up/outside.txt", "up", ".", "sub/..", "/etc/passwd"]
)
def test_known_ways_out_are_refused(jail: Path, name: str) -> None:
    with pytest.raises(UnsafePathError):
        library_file(jail, name)


def test_a_link_inside_the_folder_is_a_name_there(jail: Path) -> None:
    assert library_file(jail, "in.txt") == ("in.txt", jail.resolve() / "in.txt")
    assert os.path.islink(library_file(jail, "in.txt")[1])
