"""Distributed indexing on a one-machine Ray cluster (hash embedder, milvus-lite under tmp)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import AREA_FILE, SEED_ANSWERS

from rag import Config, InvalidArgumentError, Retriever

pytest.importorskip("pymilvus")
pytest.importorskip("ray")

# Each test starts milvus-lite (and Ray) in-process: seconds each, so the full tier only.
pytestmark = pytest.mark.slow

from rag.cli import main  # noqa: E402
from rag.distributed import import_ray, index_with_ray  # noqa: E402

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
SNOW = "# 漠河北极村迎来首场降雪\n\n本报讯（记者丁）漠河北极村今年首场降雪厚度达到十八厘米。\n"


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """One local Ray cluster of two one-CPU workers for the module (started once: ~8 s)."""
    ray = import_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _config(corpus: Path, tmp_path: Path) -> Config:
    return Config(
        corpus_dir=corpus, embedder="hash", backend="milvus", milvus_uri=str(tmp_path / "lib.db")
    )


def test_ray_indexes_the_seeds_as_the_local_index_does(
    cluster: None, seed_copy: Path, tmp_path: Path
) -> None:
    (seed_copy / "broken.txt").write_bytes(bytes(range(256)) * 8)
    config = _config(seed_copy, tmp_path)
    seen: list[tuple[int, int, int]] = []
    report = index_with_ray(config, workers=2, on_progress=lambda *a: seen.append(a))

    local = Retriever.from_config(Config(corpus_dir=seed_copy, embedder="hash"))
    assert report.workers == 2 and report.chunks == report.total_chunks == len(local.index)
    assert report.articles == len(local.articles())
    assert sorted(report.update.added) == sorted(local.index.files)
    assert report.failures == {"broken.txt": local.last_update.skipped["broken.txt"]}
    assert "1 failures" in report.summary() and "failed: broken.txt (" in report.summary()
    assert seen[-1][:2] == (len(local.index.files) + 1, len(local.index.files) + 1)

    # the chat (or any machine) opens what Ray wrote without embedding anything again
    (seed_copy / "broken.txt").unlink()
    retriever = Retriever.from_config(config)
    try:
        assert retriever.last_update.embedded == 0 and len(retriever.index) == report.chunks
        for question, file, _ in SEED_ANSWERS[:3]:
            assert retriever.ask(question, 3).hits[0].citation.file == file, question
        assert retriever.articles() == local.articles()
    finally:
        retriever.index.close()  # type: ignore[union-attr]


def test_a_second_ray_run_writes_only_what_changed(cluster: None, tmp_path: Path) -> None:
    corpus = tmp_path / "library"
    corpus.mkdir()
    shutil.copy(SEEDS / AREA_FILE, corpus)
    (corpus / "mohe.txt").write_text(SNOW, encoding="utf-8")
    config = _config(corpus, tmp_path)
    first = index_with_ray(config, workers=1)
    assert sorted(first.update.added) == [AREA_FILE, "mohe.txt"]

    (corpus / "mohe.txt").write_text(SNOW.replace("十八", "二十五"), encoding="utf-8")
    (corpus / "new.txt").write_text(SNOW.replace("漠河", "呼玛"), encoding="utf-8")
    os.utime(corpus / AREA_FILE)  # touched, content unchanged
    second = index_with_ray(config, workers=2)
    assert second.update.changed == ["mohe.txt"] and second.update.added == ["new.txt"]
    assert second.chunks == 2 and second.update.removed == 1
    assert second.total_chunks == first.total_chunks + 1

    (corpus / "new.txt").unlink()
    third = CliRunner().invoke(  # the command line prints the same report
        main,
        ["index", str(corpus), "--embedder", "hash", "--backend", "milvus"]
        + ["--milvus-uri", config.milvus_target, "--ray"],
    )
    assert third.exit_code == 0, third.output
    assert f"index {config.milvus_target} (collection newsqa_library_" in third.output
    assert f"{first.total_chunks} chunks; this run on 2 Ray worker(s)" in third.output
    assert "0 chunks written" in third.output and "deleted: new.txt" in third.output


def test_ray_needs_the_milvus_backend(tmp_path: Path, seed_copy: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="--backend milvus"):
        index_with_ray(Config(corpus_dir=seed_copy, embedder="hash"))
    result = CliRunner().invoke(main, ["index", str(seed_copy), "--embedder", "hash", "--ray"])
    assert (
        result.exit_code == 1 and "Error: distributed indexing writes into Milvus" in result.output
    )


def test_without_ray_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, seed_copy: Path, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r'pip install "newsqa\[ray\]"'):
        index_with_ray(_config(seed_copy, tmp_path))
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
