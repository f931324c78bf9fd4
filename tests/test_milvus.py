"""The Milvus backend (milvus-lite in-process): the same answers, citations and updates as the
local index, BM25 checked against bm25s, one writer per data file, and the seeds eval."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import AREA_FILE, SEED_ANSWERS

from rag import Config, InvalidArgumentError, Retriever
from rag.cli import main
from rag.text import is_english

pytest.importorskip("pymilvus")

# Each test starts milvus-lite (and Ray) in-process: seconds each, so the full tier only.
pytestmark = pytest.mark.slow

from rag import milvus  # noqa: E402
from rag.index import IndexRebuildWarning  # noqa: E402
from rag.milvus import LibraryBusyError, MilvusCorpusIndex  # noqa: E402
from rag.ranking import fuse  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
AREA = SEED_ANSWERS[0][0]
SNOW = "# 漠河北极村迎来首场降雪\n\n本报讯（记者丁）漠河北极村今年首场降雪厚度达到十八厘米。\n"
BACKENDS = ["local", "milvus"]

MakeConfig = Callable[..., Config]


@pytest.fixture(params=BACKENDS)
def make_config(request: pytest.FixtureRequest, tmp_path: Path) -> MakeConfig:
    """Configs over a folder on one backend (hash embedder; milvus-lite file under tmp)."""

    def make(corpus: Path, **settings: object) -> Config:
        extra: dict[str, object] = {"backend": request.param}
        if request.param == "milvus":
            extra["milvus_uri"] = str(tmp_path / "library.db")
        return Config(corpus_dir=corpus, embedder="hash", **{**extra, **settings})

    return make


@pytest.fixture(scope="module")
def seeds_both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Retriever]]:
    """The seeds on both backends (hash embedder), opened once for the read-only tests."""
    root = tmp_path_factory.mktemp("both")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NEWSQA_CACHE", str(root / "cache"))
        local = Retriever.from_config(Config(embedder="hash"))
        on_milvus = Retriever.from_config(
            Config(embedder="hash", backend="milvus", milvus_uri=str(root / "seeds.db"))
        )
    yield {"local": local, "milvus": on_milvus}
    on_milvus.index.close()  # type: ignore[union-attr]


def _chinese_seed_questions() -> list[str]:
    lines = (ROOT / "eval" / "qa_seeds.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.strip()]
    return [q for q in questions if not is_english(q)]


# ----------------------------------------------------------------------------- same answers


def test_the_milvus_library_holds_what_the_local_one_holds(
    seeds_both: dict[str, Retriever],
) -> None:
    local, on_milvus = seeds_both["local"], seeds_both["milvus"]
    assert len(on_milvus.index) == len(local.index) > 50
    assert set(on_milvus.index.files) == set(local.index.files)
    assert on_milvus.articles() == local.articles()
    assert on_milvus.index.vector_index["index_type"] == "HNSW"  # type: ignore[union-attr]


def test_answers_citations_and_found_agree_with_the_local_backend(
    seeds_both: dict[str, Retriever],
) -> None:
    """Same top citation and the same found on >= 90% of the seed answers; every answer
    found on one is cited with its lines on the other."""
    same_top = same_found = 0
    for question, file, answer in SEED_ANSWERS:
        local = seeds_both["local"].ask(question, 5)
        on_milvus = seeds_both["milvus"].ask(question, 5)
        assert on_milvus.hits and all(h.citation.line_start >= 1 for h in on_milvus.hits)
        assert file in {h.citation.file for h in on_milvus.hits}, question
        in_local = any(answer in h.text for h in local.hits)
        assert any(answer in h.text for h in on_milvus.hits) == in_local, question
        same_top += on_milvus.hits[0].citation == local.hits[0].citation
        same_found += on_milvus.found == local.found
        assert isinstance(on_milvus.found, bool) and on_milvus.reason
    assert same_top >= 0.9 * len(SEED_ANSWERS)
    assert same_found >= 0.9 * len(SEED_ANSWERS)


def test_bm25_with_the_jieba_analyzer_puts_the_same_chunk_first_as_bm25s(
    seeds_both: dict[str, Retriever],
) -> None:
    """The check that chose the analyzer (milvus.LEXICAL_ANALYZER): >= 90% on the seeds'
    Chinese questions (measured 128 of 132, 97%)."""
    questions = _chinese_seed_questions()
    same = 0
    for question in questions:
        local = seeds_both["local"].index.lexical_search(question, 5)
        on_milvus = seeds_both["milvus"].index.lexical_search(question, 5)
        same += bool(local and on_milvus and local[0][0].id == on_milvus[0][0].id)
    assert milvus.LEXICAL_ANALYZER == "jieba"
    assert len(questions) > 100 and same >= 0.9 * len(questions), (same, len(questions))


def test_milvus_hybrid_search_fuses_as_the_project_does(seeds_both: dict[str, Retriever]) -> None:
    """Milvus's hybrid_search (RRF, k=60) ranks the candidates as the Retriever's own
    fusion of the two searches, which also keeps each side's raw score for the second stage."""
    index = seeds_both["milvus"].index
    assert isinstance(index, MilvusCorpusIndex)
    embedder = seeds_both["milvus"].embedder
    for question, _, _ in SEED_ANSWERS[:4]:
        vector = embedder.encode_queries([question])[0]
        fused = index.hybrid_search(vector, question, 10)
        ours = fuse(index.search(vector[None, :], 10)[0], index.lexical_search(question, 10))
        assert [round(s, 6) for _, s in fused] == [round(c.fused, 6) for c in ours[:10]]
        last = round(fused[-1][1], 6)  # candidates tied with the last may swap in or out
        above = {c.id for c, s in fused if round(s, 6) > last}
        assert above == {c.chunk.id for c in ours[:10] if round(c.fused, 6) > last}
        assert len(above) >= 5


def test_sentence_vectors_come_back_with_the_chunks(seeds_both: dict[str, Retriever]) -> None:
    on_milvus, local = seeds_both["milvus"], seeds_both["local"]
    hit = on_milvus.retrieve(AREA, 1)[0]
    stored = on_milvus.index.sentences.get(hit.chunk_id)
    expected = local.index.sentences.get(hit.chunk_id)
    assert stored is not None and expected is not None
    assert stored.shape == expected.shape and abs(stored - expected).max() < 1e-3


def test_a_question_naming_a_place_checks_the_whole_article(
    seeds_both: dict[str, Retriever],
) -> None:
    index = seeds_both["milvus"].index
    assert index.mentions("七台河市") and not index.mentions("乌鲁木齐")
    hit = seeds_both["milvus"].retrieve(AREA, 1)[0]
    chunk = next(c for c in index.chunks.values() if c.id == hit.chunk_id)
    article = index.article_chunks(chunk)
    assert chunk in article and [c.start for c in article] == sorted(c.start for c in article)
    assert "七台河" in index.folded_article(chunk)


# ----------------------------------------------------------------------------- both backends


def test_retriever_answers_and_cites_on_either_backend(
    make_config: MakeConfig, seed_copy: Path
) -> None:
    retriever = Retriever.from_config(make_config(seed_copy))
    answer = retriever.ask(AREA, 3)
    assert answer.hits[0].citation.file == AREA_FILE
    assert "2800平方米" in answer.hits[0].text and answer.hits[0].citation.line_start >= 1
    assert answer.to_dict()["hits"][0]["citation"]["ref"].startswith(AREA_FILE)
    for mode in ("dense", "lexical"):
        assert retriever.retrieve(AREA, 3, mode)[0].citation.file == AREA_FILE


def test_updates_add_change_and_remove_files_on_either_backend(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    corpus = tmp_path / "library"
    corpus.mkdir()
    shutil.copy(SEEDS / AREA_FILE, corpus)
    retriever = Retriever.from_config(make_config(corpus))
    before = len(retriever.index)

    (corpus / "mohe.txt").write_text(SNOW, encoding="utf-8")
    report = retriever.update()
    assert report.added == ["mohe.txt"] and report.embedded == 1
    hit = retriever.retrieve("北极村首场降雪有多厚？", 1)[0]
    assert hit.citation.file == "mohe.txt" and "十八厘米" in hit.sentence
    assert len(retriever.index) == before + 1

    (corpus / "mohe.txt").write_text(SNOW.replace("十八", "二十五"), encoding="utf-8")
    report = retriever.update()
    assert report.changed == ["mohe.txt"] and report.removed == 1 and report.embedded == 1
    assert "二十五厘米" in retriever.retrieve("北极村首场降雪有多厚？", 1)[0].text
    assert len(retriever.index) == before + 1  # replaced, not added

    (corpus / "mohe.txt").unlink()
    report = retriever.update()
    assert report.deleted == ["mohe.txt"] and report.removed == 1
    assert len(retriever.index) == before
    files = {h.citation.file for h in retriever.retrieve("北极村首场降雪有多厚？", 5)}
    assert "mohe.txt" not in files and "mohe.txt" not in retriever.index.files


def test_an_uploaded_document_is_answered_at_once_on_either_backend(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    corpus = tmp_path / "library"
    corpus.mkdir()
    shutil.copy(SEEDS / "001_46b047b0685aa754.txt", corpus)
    retriever = Retriever.from_config(make_config(corpus))
    report = retriever.add_document("mohe.txt", SNOW.encode("gb18030"))
    assert report.added == ["mohe.txt"]
    hit = retriever.retrieve("北极村首场降雪有多厚？", k=1)[0]
    assert hit.citation.file == "mohe.txt" and "十八厘米" in hit.sentence
    assert ("mohe.txt", "漠河北极村迎来首场降雪") in retriever.articles()


def test_cli_index_then_ask_on_either_backend(make_config: MakeConfig, seed_copy: Path) -> None:
    config = make_config(seed_copy)
    options = ["--embedder", "hash", "--backend", config.backend]
    if config.milvus_uri:
        options += ["--milvus-uri", config.milvus_uri]
    runner = CliRunner()
    built = runner.invoke(main, ["index", str(seed_copy), *options])
    assert built.exit_code == 0, built.output
    assert "added: 000_e1705054eebe6bde.txt" in built.output
    if config.backend == "milvus":
        assert config.milvus_uri in built.output and "collection newsqa_corpus_" in built.output
    asked = runner.invoke(
        main, ["ask", AREA, "--json", "-k", "2", "--folder", str(seed_copy), *options]
    )
    assert asked.exit_code == 0, asked.output
    data = json.loads(asked.output)
    assert data["hits"][0]["file"] == AREA_FILE and len(data["hits"]) == 2
    assert isinstance(data["found"], bool)
    again = runner.invoke(main, ["index", str(seed_copy), *options])
    assert "embedded 0 chunks" in again.output  # the stored manifest is used


def test_the_chat_answers_on_either_backend(make_config: MakeConfig, seed_copy: Path) -> None:
    from ui.app import Handlers
    from ui.chat import ChatBackend
    from ui.library import RetrieverService

    service = RetrieverService.for_config(make_config(seed_copy))
    service.start().get(timeout=60)
    result = Handlers(ChatBackend(service)).ask_api(AREA, [], 3)
    assert not result["error"] and result["hits"][0]["file"] == AREA_FILE


# ----------------------------------------------------------------------------- Milvus only


def _milvus_config(corpus: Path, tmp_path: Path, **settings: object) -> Config:
    return Config(
        corpus_dir=corpus,
        embedder="hash",
        backend="milvus",
        milvus_uri=str(tmp_path / "library.db"),
        **settings,  # type: ignore[arg-type]
    )


def _hold_lock(data_file: str) -> int:
    """Take the writer lock as another process would (a separate open file)."""
    fd = os.open(milvus._LiteLocks.lock_path(data_file), os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_a_second_writer_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    corpus = tmp_path / "library"
    corpus.mkdir()
    shutil.copy(SEEDS / AREA_FILE, corpus)
    config = _milvus_config(corpus, tmp_path)
    fd = _hold_lock(config.milvus_target)
    try:
        started = time.monotonic()
        with pytest.raises(LibraryBusyError, match="in use by another newsqa process"):
            MilvusCorpusIndex.open(config, _hash(), lock_wait=0.3)  # type: ignore[arg-type]
        assert 0.3 <= time.monotonic() - started < 5
        result = CliRunner().invoke(
            main,
            ["index", str(corpus), "--embedder", "hash", "--backend", "milvus"]
            + ["--milvus-uri", config.milvus_target],
        )
        assert result.exit_code == 1 and "Error: the Milvus data file" in result.output
        assert "Traceback" not in result.output and len(result.output.splitlines()) == 1
    finally:
        os.close(fd)


def test_a_second_writer_waits_for_the_first_to_finish(tmp_path: Path) -> None:
    corpus = tmp_path / "library"
    corpus.mkdir()
    shutil.copy(SEEDS / AREA_FILE, corpus)
    config = _milvus_config(corpus, tmp_path)
    fd = _hold_lock(config.milvus_target)
    threading.Timer(0.5, os.close, args=(fd,)).start()
    index, report = MilvusCorpusIndex.open(config, _hash(), lock_wait=10)
    try:
        assert report.added == [AREA_FILE] and len(index) > 0
    finally:
        index.close()


def test_another_process_using_the_data_file_is_refused(tmp_path: Path) -> None:
    """A real second process: a chat server holding the milvus-lite file open."""
    corpus = tmp_path / "library"
    corpus.mkdir()
    shutil.copy(SEEDS / AREA_FILE, corpus)
    config = _milvus_config(corpus, tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from rag import Config, Retriever; "
            "r = Retriever.from_config(Config(corpus_dir=Path(sys.argv[1]), embedder='hash', "
            "backend='milvus', milvus_uri=sys.argv[2])); print('ready', flush=True); "
            "sys.stdin.read()",
            str(corpus),
            config.milvus_target,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(LibraryBusyError, match=f"pid {holder.pid}"):
            MilvusCorpusIndex.open(config, _hash(), lock_wait=0.2)
    finally:
        holder.communicate("", timeout=60)
    index, report = MilvusCorpusIndex.open(config, _hash(), lock_wait=5)  # free again
    try:
        assert report.embedded == 0 and len(index) > 0  # what the other process wrote
    finally:
        index.close()


def _hash() -> object:
    from rag.embedding import HashEmbedder

    return HashEmbedder()


def test_a_reopened_library_is_read_from_milvus_not_rebuilt(tmp_path: Path) -> None:
    corpus = tmp_path / "library"
    corpus.mkdir()
    shutil.copy(SEEDS / AREA_FILE, corpus)
    config = _milvus_config(corpus, tmp_path, collection="library")
    first, report = MilvusCorpusIndex.open(config, _hash())  # type: ignore[arg-type]
    count = len(first)
    assert report.added == [AREA_FILE] and report.rebuilt == "no index yet"
    first.close()
    second, report = MilvusCorpusIndex.open(config, _hash())  # type: ignore[arg-type]
    try:
        assert report.embedded == 0 and not report.rebuilt and len(second) == count
        assert second.files[AREA_FILE].chunk_ids == list(range(count))
    finally:
        second.close()
    with pytest.warns(IndexRebuildWarning, match="settings changed"):
        third, report = MilvusCorpusIndex.open(
            config.with_(chunk_size=200),
            _hash(),  # type: ignore[arg-type]
        )
    try:
        assert report.embedded > count and len(third) == report.embedded
    finally:
        third.close()


def test_the_dense_index_type_follows_the_size(
    tmp_path: Path, seed_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(milvus, "HNSW_MAX", 50)
    index, _ = MilvusCorpusIndex.open(_milvus_config(seed_copy, tmp_path), _hash())  # type: ignore[arg-type]
    try:
        recorded = index.client.get(index.files_name, ids=["meta"], output_fields=["data"])
        assert index.vector_index["index_type"] == "IVF_SQ8"
        assert recorded[0]["data"]["vectors"] == index.vector_index
        described = index.client.describe_index(index.chunks_name, "dense")
        assert described["index_type"] == "IVF_SQ8"
        # a stored chunk's own vector finds that chunk through the quantised index
        chunk = next(c for c in index.chunks.values() if c.file == AREA_FILE)
        vector = _hash().encode_passages([chunk.embed_text])[0]  # type: ignore[attr-defined]
        assert index.search(vector[None, :], 1)[0][0][0].id == chunk.id
    finally:
        index.close()


def test_storage_settings_are_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for bad in ({"backend": "faiss"}, {"milvus_uri": "library"}, {"collection": "1-bad"}):
        with pytest.raises(InvalidArgumentError):
            Config(**bad)  # type: ignore[arg-type]
    monkeypatch.setenv("NEWSQA_MILVUS_URI", str(tmp_path / "env.db"))
    assert Config(backend="milvus").milvus_target == str(tmp_path / "env.db")
    assert Config(milvus_uri="http://milvus:19530").milvus_target == "http://milvus:19530"
    assert Config(collection="news").collection_name == "news"
    assert Config().collection_name != Config(chunk_size=200).collection_name


def test_without_pymilvus_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, seed_copy: Path, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pymilvus", None)
    with pytest.raises(ImportError, match=r'pip install "newsqa\[milvus\]"'):
        Retriever.from_config(_milvus_config(seed_copy, tmp_path))
    Retriever.from_config(Config(corpus_dir=seed_copy, embedder="hash"))  # local: not needed


# ----------------------------------------------------------------------------- real model


def _hits(retriever: Retriever) -> tuple[int, int]:
    lines = (ROOT / "eval" / "qa_seeds.jsonl").read_text(encoding="utf-8").splitlines()
    hit1 = hit5 = 0
    for line in filter(None, lines):
        item = json.loads(line)
        files = [h.citation.file for h in retriever.retrieve(item["question"], 5)]
        hit1 += files[:1] == [item["doc"]]
        hit5 += item["doc"] in files
    return hit1, hit5


@pytest.mark.slow
def test_the_seeds_eval_scores_the_same_on_milvus(with_model: Path, tmp_path: Path) -> None:
    """Hit@1 and Hit@5 on eval/qa_seeds.jsonl within one question of the local backend."""
    local = Retriever.from_config(Config())
    on_milvus = Retriever.from_config(Config(backend="milvus", milvus_uri=str(tmp_path / "m.db")))
    local_hits, milvus_hits = _hits(local), _hits(on_milvus)
    assert abs(local_hits[0] - milvus_hits[0]) <= 1, (local_hits, milvus_hits)
    assert abs(local_hits[1] - milvus_hits[1]) <= 1, (local_hits, milvus_hits)
