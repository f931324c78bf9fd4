"""The index folder: persistence, incremental updates, crash safety, corruption."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from rag.config import Config
from rag.embedding import HashEmbedder, create_embedder
from rag.index import CHUNKS, MANIFEST, CorpusIndex, IndexRebuildWarning
from rag.retrieval import Retriever
from rag.sentences import chunk_sentences

# The index's own behaviour (persistence, increments, crashes, damage) does not depend on
# the model: these tests run on the hash embedder; one slow test checks the real model.

ARTICLES = {
    "a.txt": "# 哈尔滨冰雪大世界开园\n\n本报讯（记者甲）第二十六届哈尔滨冰雪大世界12月18日开园，园区占地面积100万平方米。\n\n今年冰雪大世界使用冰雪总量30万立方米。\n",
    "b.txt": "# 七台河短道速滑馆\n\n□文/摄 记者乙\n\n七台河体育中心短道速滑馆培养了多名奥运冠军。\n\n馆内每天有二百名小队员训练。\n",
    "c.md": "# 绥芬河口岸\n\n本报讯（记者丙）绥芬河铁路口岸今年进出口货运量突破千万吨。\n",
}


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    for name, text in ARTICLES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture()
def config(corpus: Path, tmp_path: Path) -> Config:
    return Config(
        corpus_dir=corpus,
        index_dir=tmp_path / "index",
        chunk_size=100,
        chunk_overlap=20,
        embedder="hash",
    )


def _open(config: Config) -> tuple[CorpusIndex, object]:
    return CorpusIndex.open(config, create_embedder(config))


def test_build_then_reopen_embeds_nothing(config: Config) -> None:
    index, report = _open(config)
    assert report.added == ["a.txt", "b.txt", "c.md"] and report.embedded == len(index) > 0
    manifest = json.loads((config.index_path / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["params"]["embedder"] == "hash" and manifest["dim"] == HashEmbedder.DIM
    assert set(manifest["files"]) == set(ARTICLES) and "faiss-cpu" in manifest["versions"]
    again, report = _open(config)
    assert report.embedded == 0 and not report.touched
    assert {c.text for c in again.chunks.values()} == {c.text for c in index.chunks.values()}


def test_incremental_add_change_delete_reembeds_only_what_changed(
    config: Config, corpus: Path
) -> None:
    index, _ = _open(config)
    per_file = {name: len(entry.chunk_ids) for name, entry in index.files.items()}
    (corpus / "d.txt").write_text(
        "# 新文章\n\n黑河市口岸冬季开通冰上汽车运输通道。\n", encoding="utf-8"
    )
    (corpus / "b.txt").write_text(
        ARTICLES["b.txt"] + "\n七台河新建一座冰球馆。\n", encoding="utf-8"
    )
    (corpus / "c.md").unlink()
    index, report = _open(config)
    assert report.added == ["d.txt"] and report.changed == ["b.txt"] and report.deleted == ["c.md"]
    assert report.embedded == len(index.files["d.txt"].chunk_ids) + len(
        index.files["b.txt"].chunk_ids
    )
    assert report.removed == per_file["b.txt"] + per_file["c.md"]
    assert (
        len(index.vectors)
        == len(index.chunks)
        == sum(len(e.chunk_ids) for e in index.files.values())
    )
    texts = " ".join(c.text for c in index.chunks.values())
    assert "冰球馆" in texts and "绥芬河" not in texts


def test_touching_a_file_without_changing_it_embeds_nothing(config: Config, corpus: Path) -> None:
    _open(config)
    os.utime(corpus / "a.txt", (time.time() + 5, time.time() + 5))
    _, report = _open(config)
    assert report.embedded == 0 and not report.changed


# Run in a separate interpreter (forking after torch has started threads can deadlock):
# it starts re-embedding, signals that it is mid-way, and waits to be killed.
INTERRUPTED_UPDATE = """
import json, sys, time
from pathlib import Path
from rag.config import Config
from rag.embedding import HashEmbedder, create_embedder
from rag.index import CorpusIndex

config = Config.from_dict(json.loads(sys.argv[1]))
embedder = create_embedder(config)
original = embedder.encode_passages

def slow(texts, progress=False):
    vectors = original(texts, progress)
    Path(sys.argv[2]).touch()
    time.sleep(120)
    return vectors

embedder.encode_passages = slow
CorpusIndex.open(config, embedder)
"""


def test_killed_update_leaves_the_previous_index_loadable(
    config: Config, corpus: Path, tmp_path: Path
) -> None:
    before, _ = _open(config)
    (corpus / "a.txt").write_text("# 改写\n\n完全不同的新内容。\n", encoding="utf-8")
    marker = tmp_path / "embedding-started"
    child = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_UPDATE, json.dumps(config.to_dict()), str(marker)]
    )
    try:
        deadline = time.time() + 180
        while not marker.exists() and time.time() < deadline and child.poll() is None:
            time.sleep(0.1)
        assert marker.exists(), "the child never reached the embedding step"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    index = CorpusIndex(config, create_embedder(config))
    assert index._load_or_reason() == ""  # the old index, intact
    assert {c.text for c in index.chunks.values()} == {c.text for c in before.chunks.values()}
    # and opening it again applies the change that was interrupted
    _, report = _open(config)
    assert report.changed == ["a.txt"]


@pytest.mark.parametrize(
    "damage", ["truncate_vectors", "truncate_chunks", "bad_manifest", "missing"]
)
def test_corrupt_index_is_detected_and_rebuilt(config: Config, damage: str) -> None:
    index, _ = _open(config)
    folder = config.index_path
    if damage == "truncate_vectors":
        path = folder / index.vectors.file_name
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "truncate_chunks":
        path = folder / CHUNKS
        path.write_bytes(path.read_bytes()[:-50])
    elif damage == "bad_manifest":
        (folder / MANIFEST).write_text("{not json", encoding="utf-8")
    else:
        (folder / CHUNKS).unlink()
    with pytest.warns(IndexRebuildWarning, match="corrupt"):
        rebuilt, report = _open(config)
    assert report.rebuilt and len(rebuilt) == len(index)


def test_changed_settings_rebuild(config: Config) -> None:
    _open(config)
    with pytest.warns(IndexRebuildWarning, match="chunk_size 100 → 120"):
        _, report = _open(config.with_(chunk_size=120))
    assert report.rebuilt and report.embedded > 0


def test_unreadable_update_keeps_the_indexed_version(config: Config, corpus: Path) -> None:
    index, _ = _open(config)
    before = {c.text for c in index.chunks.values()}
    (corpus / "a.txt").write_bytes(b"\x00\x01binary" * 100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index, report = _open(config)
    assert "a.txt" in report.skipped and any("a.txt" in str(w.message) for w in caught)
    assert {c.text for c in index.chunks.values()} == before


def test_save_load_round_trip_gives_the_same_top_hit(config: Config) -> None:
    question = "冰雪大世界占地面积多大？"
    first = Retriever.from_config(config).retrieve(question, 3)
    shutil.copytree(config.index_path, config.index_path.parent / "copy")
    reloaded = Retriever.from_config(config.with_(index_dir=config.index_path.parent / "copy"))
    assert reloaded.last_update.embedded == 0
    second = reloaded.retrieve(question, 3)
    assert first[0].chunk_id == second[0].chunk_id and "100万平方米" in second[0].text
    assert [h.chunk_id for h in first] == [h.chunk_id for h in second]


@pytest.mark.slow
def test_the_real_model_builds_and_reopens_an_index(config: Config, with_model: Path) -> None:
    real = config.with_(embedder="sentence-transformers")
    index, report = _open(real)
    manifest = json.loads((real.index_path / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["params"]["model"] == real.model and manifest["dim"] == 384
    assert report.embedded == len(index) > 0
    again, report = _open(real)
    assert report.embedded == 0 and len(again) == len(index)
    hit = Retriever.from_config(real).retrieve("冰雪大世界占地面积多大？", 1)[0]
    assert "100万平方米" in hit.text


def test_the_folded_article_text_follows_the_files(config: Config, corpus: Path) -> None:
    # names are looked for in a cached, folded copy of each article: it must follow changes
    index, _ = _open(config)
    [chunk] = [c for c in index.chunks.values() if c.file == "c.md"]
    assert "绥芬河" in index.folded_article(chunk)
    (corpus / "c.md").write_text(
        "# 绥芬河口岸\n\n本报讯 黑河口岸今年貨運量突破千万吨。\n", encoding="utf-8"
    )
    index.update()
    [chunk] = [c for c in index.chunks.values() if c.file == "c.md"]
    assert "黑河" in index.folded_article(chunk) and "货运量" in index.folded_article(chunk)
    reopened, _ = _open(config)
    assert reopened.folded_article(chunk) == index.folded_article(chunk)


def test_a_build_in_small_batches_gives_the_same_index(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, _ = _open(config)
    monkeypatch.setattr("rag.index.BATCH_CHUNKS", 2)  # several files' batches
    batched, report = _open(config.with_(index_dir=tmp_path / "batched"))
    assert report.added == ["a.txt", "b.txt", "c.md"] and report.embedded == len(whole)
    assert {c.text for c in batched.chunks.values()} == {c.text for c in whole.chunks.values()}
    for question in ("冰雪大世界占地面积", "短道速滑馆", "绥芬河口岸货运量"):
        want = [c.text for c, _ in whole.lexical_search(question, 3)]
        assert [c.text for c, _ in batched.lexical_search(question, 3)] == want
        vector = create_embedder(config).embed_queries([question])
        assert [c.text for c, _ in batched.search(vector, 3)[0]] == [
            c.text for c, _ in whole.search(vector, 3)[0]
        ]


class Crash(Exception):
    """Stands for a build killed mid-way."""


def test_a_build_that_fails_midway_resumes_from_its_last_checkpoint(
    config: Config, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(6):
        (corpus / f"more{n}.txt").write_text(
            f"# 第{n}篇\n\n松花江畔第{n}个冰雕作品完成，高{n + 3}米。\n", encoding="utf-8"
        )
    monkeypatch.setattr("rag.index.BATCH_CHUNKS", 2)
    monkeypatch.setattr("rag.index.CHECKPOINT_SECONDS", 0.0)  # save after every batch
    embedder = HashEmbedder()  # its own: create_embedder's is shared (cached)
    calls = {"n": 0}
    real_encode = embedder.encode_passages

    def failing(texts: list[str], progress: bool = False):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 6:  # passages + sentences: the fourth batch fails
            raise Crash
        return real_encode(texts, progress)

    monkeypatch.setattr(embedder, "encode_passages", failing)
    with pytest.raises(Crash):
        CorpusIndex.open(config, embedder)
    saved = CorpusIndex(config, create_embedder(config))
    assert saved._load_or_reason() == ""  # the last checkpoint is a whole index
    done = set(saved.files)
    assert 0 < len(done) < 9
    index, report = _open(config)
    assert set(report.added) == set(index.files) - done and not report.rebuilt
    assert report.embedded == len(index) - len(saved)
    assert len(index.files) == 9


def test_saved_tokens_and_sentence_vectors_stay_on_disk(config: Config) -> None:
    index, _ = _open(config)
    lexical = index.lexical
    assert lexical.nbytes()["unsaved tokens"] == 0  # all read from the mapped file
    assert all(not d.flags.owndata for d in lexical._docs.values())
    assert index.sentences.nbytes() == 0
    reopened, report = _open(config)
    assert report.embedded == 0
    for chunk in index.chunks.values():
        saved, loaded = index.sentences.get(chunk.id), reopened.sentences.get(chunk.id)
        assert saved is not None and loaded is not None and (saved == loaded).all()
        assert len(saved) == len(chunk_sentences(chunk))
    for question in ("冰雪大世界占地面积", "短道速滑馆"):
        want = [c.text for c, _ in index.lexical_search(question, 3)]
        assert [c.text for c, _ in reopened.lexical_search(question, 3)] == want


def test_a_second_save_copies_the_mapped_rows_unchanged(config: Config, corpus: Path) -> None:
    # a save copies the previous save's rows out of their memory-mapped files (dropping the
    # mapped pages as it goes): the copies, and the maps still in use, must be unchanged
    index, _ = _open(config)
    sentences = {c.id: index.sentences.get(c.id).copy() for c in index.chunks.values()}  # type: ignore[union-attr]
    tokens = {vid: words.copy() for vid, words in index.lexical._docs.items()}  # type: ignore[attr-defined]
    (corpus / "d.txt").write_text("# 新闻\n\n哈尔滨今天下雪。明天放晴。\n", encoding="utf-8")
    assert index.update().added == ["d.txt"]
    reopened, report = _open(config)
    assert report.embedded == 0
    for opened in (index, reopened):
        for chunk_id, rows in sentences.items():
            got = opened.sentences.get(chunk_id)
            assert got is not None and got.shape == rows.shape and (got == rows).all()
        for vid, words in tokens.items():
            got = opened.lexical._docs[vid]  # type: ignore[attr-defined]
            assert got.shape == words.shape and (got == words).all()


def test_long_and_short_articles_fold_alike(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    # long articles are folded as they are embedded, short ones when first asked about
    whole, _ = _open(config)
    monkeypatch.setattr("rag.index.PREFOLD_CHARS", 40)  # a.txt long, b.txt and c.md short
    prefolded, _ = _open(config.with_(index_dir=config.index_path.parent / "prefolded"))
    assert {file for file, _ in prefolded._folded_articles} == {"a.txt"}
    for chunk in whole.chunks.values():
        [twin] = [c for c in prefolded.chunks.values() if c.id == chunk.id]
        assert prefolded.folded_article(twin) == whole.folded_article(chunk)
