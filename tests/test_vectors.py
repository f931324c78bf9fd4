"""The vector index: exact and IVF search, the size-based choice, removal, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.errors import IndexCorruptError, RagError
from rag.vectors import (
    EXACT_MAX,
    IVF_MIN,
    FaissIndex,
    create_vector_index,
    default_nprobe,
    ideal_nlist,
)

DIM = 32


def clustered(n: int, centres: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors drawn around a few centres (like topics), not uniformly."""
    rng = np.random.default_rng(seed)
    middle = rng.normal(size=(centres, DIM))
    points = middle[rng.integers(0, centres, n)] + 0.25 * rng.normal(size=(n, DIM))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return clustered(6000)


def filled(backend: str, vectors: np.ndarray) -> FaissIndex:
    index = create_vector_index(backend, DIM)
    assert isinstance(index, FaissIndex)
    index.index(np.arange(len(vectors), dtype=np.int64) * 7, vectors)  # ids need not be dense
    return index


def test_factory_picks_the_index_type_by_size(data: np.ndarray) -> None:
    auto = filled("faiss", data[:2000])
    assert auto.describe()["type"] == "flat" and auto.exact_max == EXACT_MAX
    ivf = filled("faiss-ivf", data)
    described = ivf.describe()
    assert described["type"] == "ivf-sq8" and described["backend"] == "faiss-ivf"
    assert described["nlist"] == ideal_nlist(len(data))
    assert described["nprobe"] == default_nprobe(described["nlist"])
    assert filled("faiss-flat", data).describe()["type"] == "flat"
    small = filled("faiss-ivf", data[: IVF_MIN - 1])
    assert not small.is_ivf  # too few to train on


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(RagError, match="unknown vector backend"):
        create_vector_index("annoy", DIM)


def test_ivf_agrees_with_exact_search(data: np.ndarray) -> None:
    exact, ivf = filled("faiss-flat", data), filled("faiss-ivf", data)
    # a reworded passage: a stored vector moved a little; its source must come first
    rng = np.random.default_rng(3)
    near = data[:200] + 0.03 * rng.normal(size=(200, DIM)).astype(np.float32)
    assert (ivf.search(near, 1)[1][:, 0] == exact.search(near, 1)[1][:, 0]).mean() >= 0.95
    queries = clustered(100, seed=1)  # same topics, fresh noise
    exact_scores, exact_ids = exact.search(queries, 10)
    ivf_scores, ivf_ids = ivf.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact_ids, ivf_ids, strict=True)])
    assert recall >= 0.9
    assert np.median(np.abs(ivf_scores[:, 0] - exact_scores[:, 0])) < 0.005  # 8-bit codes


def test_ivf_retrains_when_it_outgrows_its_lists(data: np.ndarray) -> None:
    index = filled("faiss-ivf", data[:1200])
    first = index.describe()["nlist"]
    more = clustered(40_000, seed=2)
    index.index(np.arange(10_000, 10_000 + len(more), dtype=np.int64), more)
    assert index.describe()["nlist"] >= 4 * first
    assert len(index) == 1200 + len(more)
    _, ids = index.search(more[:5], 1)
    assert ids[:, 0].tolist() == list(range(10_000, 10_005))


@pytest.mark.parametrize("backend", ["faiss-flat", "faiss-ivf"])
def test_remove_takes_vectors_out_of_the_results(backend: str, data: np.ndarray) -> None:
    index = filled(backend, data)
    target = data[:3]
    _, before = index.search(target, 1)
    assert before[:, 0].tolist() == [0, 7, 14]
    assert index.remove(np.asarray([0, 7, 14, 999_999], dtype=np.int64)) == 3
    assert len(index) == len(data) - 3
    _, after = index.search(target, 10)
    assert not {0, 7, 14} & set(after.ravel().tolist())
    index.index(np.asarray([0], dtype=np.int64), data[:1])  # an id can come back
    assert index.search(data[:1], 1)[1][0, 0] == 0


@pytest.mark.parametrize("backend", ["faiss", "faiss-ivf"])
def test_save_and_load_round_trip(backend: str, data: np.ndarray, tmp_path: Path) -> None:
    index = filled(backend, data)
    path = tmp_path / index.file_name
    index.save(path)
    again = create_vector_index(backend, DIM)
    again.load(path)
    assert again.describe() == index.describe()  # nprobe restored, not faiss's default 1
    queries = data[100:110]
    assert np.array_equal(again.search(queries, 5)[1], index.search(queries, 5)[1])


def test_damaged_or_mismatched_file_is_reported(data: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "vectors.faiss"
    filled("faiss", data[:100]).save(path)
    with pytest.raises(IndexCorruptError, match="expected 64"):
        create_vector_index("faiss", 64).load(path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(IndexCorruptError):
        create_vector_index("faiss", DIM).load(path)


def test_empty_index_and_k_above_size() -> None:
    index = create_vector_index("faiss", DIM)
    scores, ids = index.search(clustered(2), 5)
    assert scores.shape == (2, 0) and ids.shape == (2, 0)
    index.index(np.asarray([3, 4], dtype=np.int64), clustered(2))
    assert index.search(clustered(1), 5)[1].shape == (1, 2)


def test_list_and_probe_rules() -> None:
    assert ideal_nlist(1_000_000) == 1024 and ideal_nlist(50_000) == 256
    assert ideal_nlist(10) == 16
    assert default_nprobe(1024) == 64 and default_nprobe(64) == 16 and default_nprobe(8) == 8
