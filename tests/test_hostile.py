"""What a new user's odd folders and odd input did to the product, one test per thing tried.

Each test reproduces a defect found by probing (issue "Trust") and checks the behaviour a
user relies on instead. All run on the hash embedder (no model), so they are fast.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag import Config, QuestionError, RagError, Retriever
from rag.cli import main
from rag.embedding import HashEmbedder
from rag.errors import IndexFolderError, InvalidArgumentError
from rag.index import FORMER_FILE_NAMES, MANIFEST, CorpusIndex, IndexRebuildWarning
from rag.retrieval import clean_question
from ui.app import Handlers
from ui.chat import ChatBackend
from ui.library import RetrieverService

ARTICLES = {
    "a.txt": "# 哈尔滨冰雪大世界开园\n\n本报讯（记者甲）第二十六届哈尔滨冰雪大世界12月18日开园，园区占地面积100万平方米。\n\n今年冰雪大世界使用冰雪总量30万立方米。\n",
    "b.txt": "# 七台河短道速滑馆\n\n□文/摄 记者乙\n\n七台河体育中心短道速滑馆培养了多名奥运冠军。\n\n馆内每天有二百名小队员训练。\n",
}


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    for name, text in ARTICLES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def hash_config(corpus: Path, **changes: object) -> Config:
    return Config(corpus_dir=corpus, embedder="hash", chunk_size=100, chunk_overlap=20).with_(
        **changes
    )


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its content, to compare before and after."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------- data loss and leaks


@pytest.mark.parametrize("where", ["notes", "articles", "parent", "inside"])
def test_index_dir_never_deletes_what_is_already_there(
    corpus: Path, tmp_path: Path, where: str
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("买牛奶", encoding="utf-8")
    index_dir = {
        "notes": notes,
        "articles": corpus,
        "parent": tmp_path,
        "inside": corpus / "index",
    }[where]
    before = tree(tmp_path)
    with pytest.raises(IndexFolderError) as error:
        Retriever.from_config(hash_config(corpus, index_dir=index_dir))
    assert "index" in str(error.value) and str(index_dir) in str(error.value)
    assert tree(tmp_path) == before  # nothing deleted, nothing written


def test_cli_index_dir_refusal_is_one_line_and_loses_nothing(corpus: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("买牛奶", encoding="utf-8")
    args = ["index", str(corpus), "--index-dir", str(notes), "--embedder", "hash"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "did not write" in result.output and (notes / "todo.txt").read_text() == "买牛奶"


def test_an_existing_index_folder_is_reused_and_rebuilt_in_place(
    corpus: Path, tmp_path: Path
) -> None:
    config = hash_config(corpus, index_dir=tmp_path / "ix")
    Retriever.from_config(config)
    (corpus / "a.txt").write_text("# 新标题\n\n完全不同的内容，讲的是松花江。\n", encoding="utf-8")
    retriever = Retriever.from_config(config)
    assert retriever.last_update.changed == ["a.txt"]
    written = retriever.index.own_names - set(FORMER_FILE_NAMES)
    assert sorted(p.name for p in (tmp_path / "ix").iterdir()) == sorted(written)


def test_a_file_slipped_into_the_index_folder_survives_a_rebuild(
    corpus: Path, tmp_path: Path
) -> None:
    config = hash_config(corpus, index_dir=tmp_path / "ix")
    Retriever.from_config(config)
    (tmp_path / "ix" / "mine.txt").write_text("我的", encoding="utf-8")
    with pytest.raises(IndexFolderError):
        Retriever.from_config(config)
    assert (tmp_path / "ix" / "mine.txt").read_text(encoding="utf-8") == "我的"


def test_a_killed_save_leaves_no_temporary_folders_behind(corpus: Path, tmp_path: Path) -> None:
    config = hash_config(corpus, index_dir=tmp_path / "ix")
    index, _ = CorpusIndex.open(config, HashEmbedder())
    # what a save killed before its swap leaves: a half-written sibling folder
    leftover = tmp_path / ".ix.tmp-deadbeef"
    leftover.mkdir()
    (leftover / "chunks.jsonl").write_text("{}", encoding="utf-8")
    (leftover / "vectors.faiss").write_bytes(b"\0")
    CorpusIndex.open(config, HashEmbedder())
    assert not leftover.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ix.lock", "articles", "ix"]


def test_a_leftover_folder_holding_a_users_file_is_not_deleted(
    corpus: Path, tmp_path: Path
) -> None:
    config = hash_config(corpus, index_dir=tmp_path / "ix")
    leftover = tmp_path / ".ix.tmp-cafecafe"
    leftover.mkdir()
    (leftover / "chunks.jsonl").write_text("{}", encoding="utf-8")
    (leftover / "precious.txt").write_text("不是索引", encoding="utf-8")
    CorpusIndex.open(config, HashEmbedder())
    assert (leftover / "precious.txt").exists() and not (leftover / "chunks.jsonl").exists()


# ----------------------------------------------------------------- it stops answering


class BlockingEmbedder(HashEmbedder):
    """Embeds passages only once the test releases it; questions are embedded at once."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()
        self.block = False

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if self.block:
            self.started.set()
            assert self.release.wait(30), "the test never released the embedder"
        return super().encode_passages(texts, progress)


def test_questions_are_answered_while_an_upload_is_embedded(corpus: Path, tmp_path: Path) -> None:
    config = hash_config(corpus, index_dir=tmp_path / "ix")
    embedder = BlockingEmbedder()
    index, _ = CorpusIndex.open(config, embedder)
    retriever = Retriever(config, embedder, index)
    embedder.block = True
    result: dict[str, object] = {}

    def upload() -> None:
        text = "# 绥芬河口岸\n\n本报讯（记者丙）绥芬河铁路口岸今年进出口货运量突破千万吨。\n"
        result["report"] = retriever.add_document("c.txt", text.encode("utf-8"))

    uploader = threading.Thread(target=upload)
    uploader.start()
    try:
        assert embedder.started.wait(10)
        started = time.monotonic()
        hits = retriever.retrieve("冰雪大世界占地面积多大？", k=1)  # must not wait for the upload
        assert time.monotonic() - started < 2
        assert hits[0].citation.file == "a.txt"
        assert retriever.articles() == [
            ("a.txt", "哈尔滨冰雪大世界开园"),
            ("b.txt", "七台河短道速滑馆"),
        ]
    finally:
        embedder.release.set()
        uploader.join(30)
    assert result["report"].added == ["c.txt"]  # type: ignore[attr-defined]
    assert retriever.retrieve("绥芬河口岸货运量", k=1)[0].citation.file == "c.txt"


# ----------------------------------------------------------------- empty and damaged


def test_an_empty_library_is_a_normal_state(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    retriever = Retriever.from_config(hash_config(empty, index_dir=tmp_path / "ix"))
    answer = retriever.ask("冰雪大世界占地多大？")
    assert not answer.found and answer.hits == [] and "no articles" in answer.reason
    report = retriever.add_document("a.txt", ARTICLES["a.txt"].encode("utf-8"))
    assert report.added == ["a.txt"]
    assert retriever.ask("冰雪大世界占地多大？").hits[0].citation.file == "a.txt"
    again = Retriever.from_config(hash_config(empty, index_dir=tmp_path / "ix"))
    assert len(again.index) == len(retriever.index)


def test_cli_on_an_empty_folder_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["index", str(empty), "--embedder", "hash"])
    assert result.exit_code == 0, result.output
    assert "0 chunks" in result.output and "no readable" in result.output
    result = CliRunner().invoke(
        main, ["ask", "冰雪大世界", "--folder", str(empty), "--embedder", "hash"]
    )
    assert result.exit_code == 0, result.output
    assert "Not in the articles" in result.output and "no articles" in result.output


@pytest.mark.parametrize(
    "manifest",
    [
        "null",
        "[]",
        '"a string"',
        "42",
        '{"format_version": "3"}',
        '{"format_version": 3, "params": [], "dim": 256, "next_id": 0, "files": {}, "checksums": {}}',
        '{"format_version": 3, "params": {}, "dim": 256, "next_id": 0, "files": [], "checksums": {}}',
        '{"format_version": 3, "params": {}, "dim": 256, "next_id": 0, "files": {}, '
        '"checksums": {"../../etc/passwd": "x"}}',
    ],
)
def test_a_manifest_of_another_shape_is_rebuilt(
    corpus: Path, tmp_path: Path, manifest: str
) -> None:
    config = hash_config(corpus, index_dir=tmp_path / "ix")
    Retriever.from_config(config)
    (tmp_path / "ix" / MANIFEST).write_text(manifest, encoding="utf-8")
    with pytest.warns(IndexRebuildWarning):
        retriever = Retriever.from_config(config)
    assert retriever.last_update.added == ["a.txt", "b.txt"]


def test_a_read_only_cache_still_answers(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = hash_config(corpus, index_dir=tmp_path / "ix")
    Retriever.from_config(config)
    real_open = Path.open

    def read_only_open(self: Path, mode: str = "r", *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if any(c in mode for c in "wax+") and self.is_relative_to(tmp_path):
            raise PermissionError(13, "Read-only file system", str(self))
        return real_open(self, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", read_only_open)
    monkeypatch.setattr(Path, "mkdir", lambda self, *a, **k: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a current index opens without a word
        retriever = Retriever.from_config(config)
    assert retriever.retrieve("冰雪大世界占地面积", k=1)[0].citation.file == "a.txt"


# ----------------------------------------------------------------- odd questions


@pytest.fixture()
def retriever(corpus: Path, tmp_path: Path) -> Retriever:
    return Retriever.from_config(hash_config(corpus, index_dir=tmp_path / "ix"))


@pytest.mark.parametrize(
    "question", ["😀😀😀", "。。。？？？", "x" * 2000, "？！…", "\u200b\u200b"]
)
def test_questions_with_nothing_to_search_for_are_refused(
    retriever: Retriever, question: str
) -> None:
    with pytest.raises(QuestionError, match="没有可以检索的词"):
        retriever.ask(question)
    with pytest.raises(QuestionError, match="没有可以检索的词"):
        retriever.retrieve(question)


@pytest.mark.parametrize("k", [0, -1, 21, 50, 2.5, "3", None.__class__])
def test_out_of_range_k_is_an_error_not_a_silent_default(retriever: Retriever, k: object) -> None:
    with pytest.raises(InvalidArgumentError, match="from 1 to 20"):
        retriever.retrieve("冰雪大世界", k=k)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="from 1 to 20"):
        retriever.ask("冰雪大世界", k=k)  # type: ignore[arg-type]


def test_config_k_out_of_range_is_a_rag_error(corpus: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        Config(k=0)
    with pytest.raises(InvalidArgumentError):
        Config(k=21)
    assert Config(k=20).k == 20


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("", b"text"),
        ("...", b"text"),
        ("a\x00b.txt", b"text"),
        (None, b"text"),
        ("a.txt", "not bytes"),
        ("a.exe", b"MZ\x00\x00"),
        ("a.txt", b""),
        ("a.txt", b"\x00\x01\x02" * 100),
    ],
)
def test_bad_uploads_raise_rag_errors_and_change_nothing(
    retriever: Retriever, corpus: Path, filename: object, data: object
) -> None:
    before = tree(corpus)
    with pytest.raises(RagError):
        retriever.add_document(filename, data)  # type: ignore[arg-type]
    assert tree(corpus) == before


def test_an_upload_named_with_a_path_lands_in_the_library(
    retriever: Retriever, corpus: Path, tmp_path: Path
) -> None:
    retriever.add_document("../../escape.txt", ARTICLES["b.txt"].encode("utf-8"))
    assert (corpus / "escape.txt").is_file() and not (tmp_path / "escape.txt").exists()


def test_the_same_text_in_two_files_fills_one_hit(corpus: Path, tmp_path: Path) -> None:
    (corpus / "copy.txt").write_text(ARTICLES["a.txt"], encoding="utf-8")
    retriever = Retriever.from_config(hash_config(corpus, index_dir=tmp_path / "ix"))
    hits = retriever.retrieve("冰雪大世界占地面积", k=5)
    texts = [hit.text for hit in hits]
    assert len(texts) == len(set(texts))
    top = hits[0]
    assert {top.citation.file, *(c.file for c in top.also_cited)} == {"a.txt", "copy.txt"}
    [other] = top.to_dict()["also_cited"]
    assert other["ref"] == str(top.also_cited[0]) and other["file"] != top.citation.file


# ----------------------------------------------------------------- the command line


def test_cli_ask_refuses_what_the_articles_do_not_hold(corpus: Path) -> None:
    args = ["ask", "火星上有没有水？", "--folder", str(corpus), "--embedder", "hash"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Not in the articles") and "do not answer" in result.output
    result = CliRunner().invoke(main, [*args, "--json"])
    data = json.loads(result.output)
    assert (
        data["found"] is False
        and data["reason"]
        and data["sentence"] == data["hits"][0]["sentence"]
    )
    assert {"found", "reason", "sentence", "citation", "hits", "query", "mode"} <= set(data)
    assert "html" not in data


def test_cli_strips_terminal_escapes_from_article_text(tmp_path: Path) -> None:
    folder = tmp_path / "arts"
    folder.mkdir()
    (folder / "evil.txt").write_text(
        "# 标题\x1b]0;pwned\x07\n\n哈尔滨冰雪大世界\x1b[2J开园了\x07，园区占地面积100万平方米。\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main, ["ask", "冰雪大世界占地面积", "--folder", str(folder), "--embedder", "hash"]
    )
    assert result.exit_code == 0, result.output
    assert "冰雪大世界" in result.output
    assert "\x1b" not in result.output.replace("\x1b[1m", "").replace("\x1b[0m", "")
    assert "\x07" not in result.output and "pwned" not in result.output


def test_undecodable_bytes_in_a_question_never_reach_the_model() -> None:
    # a terminal's undecodable bytes arrive as lone surrogates, which crashed the tokenizer
    cleaned = clean_question("冰雪\udcff大世界", 2000)
    assert cleaned.encode("utf-8") and "冰雪" in cleaned


@pytest.mark.parametrize("question", ["\udcff\udcfe", "   ", "😀", "冰雪\udcff大世界"])
def test_cli_never_prints_a_traceback_for_a_question(corpus: Path, question: str) -> None:
    result = CliRunner().invoke(
        main, ["ask", question, "--folder", str(corpus), "--embedder", "hash"]
    )
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# ----------------------------------------------------------------- anything at all

# What a program or a person may pass where text is expected: text of any script, bytes,
# numbers, nothing, and nestings of those.
ANY_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
QUESTIONS = st.text(max_size=300) | st.text(
    alphabet="冰雪大世界占地面积多少？😀 \x1b\udcff", max_size=40
)
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(question=QUESTIONS | ANY_VALUE, k=st.none() | st.integers(-5, 30) | ANY_VALUE)
def test_ask_and_retrieve_answer_or_raise_a_rag_error(
    retriever: Retriever, question: object, k: object
) -> None:
    for call in (retriever.ask, retriever.retrieve):
        try:
            result = call(question, k)  # type: ignore[operator]
        except RagError:
            continue
        assert result is not None


@PROPERTY
@given(filename=st.text(max_size=30) | ANY_VALUE, data=st.binary(max_size=300) | ANY_VALUE)
def test_add_document_adds_or_raises_a_rag_error(
    retriever: Retriever, corpus: Path, filename: object, data: object
) -> None:
    before = tree(corpus)
    try:
        report = retriever.add_document(filename, data)  # type: ignore[arg-type]
    except RagError:
        assert tree(corpus) == before  # a refused file leaves the folder as it was
        return
    [stored] = report.added
    assert (corpus / stored).is_file() and "/" not in stored
    (corpus / stored).unlink()
    retriever.update()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(question=QUESTIONS, k=st.integers(-3, 30).map(str) | st.text(max_size=4))
def test_cli_ask_answers_or_prints_one_error_line(corpus: Path, question: str, k: str) -> None:
    args = ["ask", question, "-k", k, "--folder", str(corpus), "--embedder", "hash"]
    result = CliRunner().invoke(main, args)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code:
        assert result.output.strip().startswith(("Error:", "Usage:"))


# ----------------------------------------------------------------- the chat's handlers


def chat_handlers(folder: Path) -> Handlers:
    service = RetrieverService.for_config(Config(corpus_dir=folder, embedder="hash"))
    service.start().get(timeout=60)
    return Handlers(ChatBackend(service))


def test_the_chat_on_an_empty_folder_takes_its_first_upload(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    handlers = chat_handlers(empty)
    assert "文库还是空的" in handlers.backend.status_text()
    reply = handlers.ask_api("冰雪大世界占地多大？")
    assert reply["error"] == "" and reply["found"] is False and reply["hits"] == []
    upload = tmp_path / "a.txt"
    upload.write_text(ARTICLES["a.txt"], encoding="utf-8")
    summary, articles, status = handlers.add_uploads([str(upload)])
    assert "已加入 a.txt" in summary and "哈尔滨冰雪大世界开园" in articles
    assert "1 个文件、1 篇文章" in status  # the status line is current after an upload
    assert handlers.ask_api("冰雪大世界占地多大？")["hits"][0]["citation"]["file"] == "a.txt"


def test_the_chat_status_lists_what_was_skipped_and_why(corpus: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("密码是123456", encoding="utf-8")
    (corpus / "leak.txt").symlink_to(secret)
    (corpus / ".hidden.txt").write_text("隐藏", encoding="utf-8")
    handlers = chat_handlers(corpus)
    skipped = {s["file"]: s["reason"] for s in handlers.backend.status()["skipped"]}
    assert "outside" in skipped["leak.txt"] and "hidden" in skipped[".hidden.txt"]
    status = handlers.backend.status_text()
    assert "未收录" in status and "leak" in status and "outside" in status
    answer = handlers.ask_api("密码是多少？", [], 20)
    assert all("123456" not in hit["text"] for hit in answer["hits"])


def test_a_passage_in_two_files_is_shown_once_with_both_citations(
    corpus: Path, tmp_path: Path
) -> None:
    (corpus / "copy.txt").write_text(ARTICLES["a.txt"], encoding="utf-8")
    reply = chat_handlers(corpus).ask_api("冰雪大世界占地面积", [], 5)
    top = reply["hits"][0]
    assert {top["citation"]["file"], *(c["file"] for c in top["also_cited"])} == {
        "a.txt",
        "copy.txt",
    }
    assert "同见于" in reply["html"]
    assert len({hit["text"] for hit in reply["hits"]}) == len(reply["hits"])


@PROPERTY
@given(
    question=QUESTIONS | ANY_VALUE,
    history=st.none() | st.lists(st.text(max_size=20), max_size=3) | ANY_VALUE,
    k=st.integers(-3, 30) | ANY_VALUE,
    mode=st.sampled_from(["", "dense", "lexical", "hybrid"]) | ANY_VALUE,
)
def test_the_ask_api_answers_or_returns_an_error_never_raises(
    corpus: Path, question: object, history: object, k: object, mode: object
) -> None:
    reply = _API_HANDLERS(corpus).ask_api(question, history, k, mode)  # type: ignore[arg-type]
    assert set(reply) >= {"found", "reason", "sentence", "citation", "hits", "error", "html"}
    assert reply["error"] or reply["hits"] is not None
    json.dumps(reply, ensure_ascii=False)  # the API can always send it


_handlers_by_folder: dict[Path, Handlers] = {}


def _API_HANDLERS(folder: Path) -> Handlers:  # noqa: N802 - one chat per test's folder
    if folder not in _handlers_by_folder:
        _handlers_by_folder[folder] = chat_handlers(folder)
    return _handlers_by_folder[folder]
