"""The blockwise BM25 matrix build gives bm25s's own matrix, in bounded memory."""

from __future__ import annotations

import tracemalloc
from typing import Any

import bm25s
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag import lexical
from rag.lexical import BM25sIndex, build_bm25_scores

METHODS = ["lucene", "robertson", "atire"]  # lucene: what BM25sIndex uses


def bm25s_scores(model: Any, docs: list[np.ndarray], n_vocab: int) -> dict[str, Any]:
    """The matrix as bm25s builds it."""
    return model.build_index_from_ids(
        unique_token_ids=list(range(n_vocab)),
        corpus_token_ids=[d.tolist() for d in docs],
        show_progress=False,
    )


def assert_same_matrix(docs: list[np.ndarray], n_vocab: int, method: str, block: int) -> None:
    expected = bm25s_scores(bm25s.BM25(method=method), docs, n_vocab)
    got = build_bm25_scores(bm25s.BM25(method=method), docs, n_vocab, block_tokens=block)
    assert got.keys() == expected.keys()
    assert got["num_docs"] == expected["num_docs"] == len(docs)
    for key in ("data", "indices", "indptr"):
        assert got[key].dtype == expected[key].dtype, key
    np.testing.assert_array_equal(got["indptr"], expected["indptr"])
    np.testing.assert_array_equal(got["indices"], expected["indices"])
    np.testing.assert_allclose(got["data"], expected["data"], rtol=1e-6, atol=0)


def as_docs(lists: list[list[int]]) -> list[np.ndarray]:
    return [np.asarray(words, dtype=np.int32) for words in lists]


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # bm25s: all docs empty
@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n_vocab=st.integers(1, 40),
    method=st.sampled_from(METHODS),
    block=st.integers(1, 64),
)
def test_matrix_equals_bm25s_on_random_corpora(
    data: st.DataObject, n_vocab: int, method: str, block: int
) -> None:
    words = st.lists(st.integers(0, n_vocab - 1), max_size=25)
    docs = data.draw(st.lists(words, min_size=1, max_size=30))
    assert_same_matrix(as_docs(docs), n_vocab, method, block)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("docs", "n_vocab"),
    [
        ([[3, 1, 3, 3, 0]], 5),  # a single document, a repeated word
        ([[], [2, 2], [], [0, 2, 1], []], 3),  # empty documents
        ([[7, 7, 7, 7], [7], [9, 7, 9]], 50),  # most word ids unused
        ([[0] * 40, [1, 0], [1] * 3], 2),  # a word in every document (idf floor)
    ],
)
def test_matrix_equals_bm25s_on_edge_cases(
    docs: list[list[int]], n_vocab: int, method: str
) -> None:
    for block in (1, 3, 1 << 20):
        assert_same_matrix(as_docs(docs), n_vocab, method, block)


def test_matrix_equals_bm25s_on_a_zipf_corpus() -> None:
    rng = np.random.default_rng(7)
    n_vocab = 3000
    docs = [
        (rng.zipf(1.2, size=int(n)).clip(max=n_vocab) - 1).astype(np.int32)
        for n in rng.integers(0, 120, size=800)
    ]
    assert_same_matrix(docs, n_vocab, "lucene", 2000)


def test_unsupported_method_and_out_of_range_word_ids_are_errors() -> None:
    with pytest.raises(ValueError, match="bm25\\+"):
        build_bm25_scores(bm25s.BM25(method="bm25+"), as_docs([[0, 1]]), 2)
    with pytest.raises(ValueError, match="word ids"):
        build_bm25_scores(bm25s.BM25(), as_docs([[0, 2]]), 2)
    with pytest.raises(ValueError, match="word ids"):
        build_bm25_scores(bm25s.BM25(), as_docs([[-1]]), 2)


def test_temporary_memory_is_bounded_by_the_block_not_the_corpus() -> None:
    rng = np.random.default_rng(3)
    n_vocab, postings = 5000, 1_000_000
    flat = (rng.zipf(1.2, size=postings).clip(max=n_vocab) - 1).astype(np.int32)
    docs = np.split(flat, np.arange(50, postings, 50))
    tracemalloc.start()  # numpy reports its buffers to tracemalloc
    try:
        scores = build_bm25_scores(bm25s.BM25(), docs, n_vocab, block_tokens=1 << 14)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    matrix = sum(scores[k].nbytes for k in ("data", "indices", "indptr"))
    # bm25s holds ~28 bytes per posting on top of the matrix (~15 MB here); ours ~1.7 MB
    assert peak - matrix < 4_000_000, f"temporaries {peak - matrix} bytes"


TEXTS = [
    "七台河冰雪经济产业园研创中心项目总建筑面积2800平方米。",
    "绥芬河市2021年以来签约项目141个，签约额达到三百亿元。",
    "五大连池市选取了614个风机点位，规划风电总装机容量3837.5MW。",
    "绥芬河口岸今年进出口货运量增长，冰雪旅游带动项目签约。",
    "",
    "哈尔滨冰雪大世界开园，冰雪经济项目总投资三百亿元。",
]
QUERIES = ["绥芬河签约了多少个项目", "冰雪经济", "风电装机容量", "三百亿元项目", "火星"]


@pytest.mark.parametrize("tokenizer", ["jieba", "bigram"])
def test_search_results_equal_those_of_bm25s_own_build(
    tokenizer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = BM25sIndex(tokenizer)
    ours.index(np.arange(10, 10 + len(TEXTS)), TEXTS)
    expected_index = BM25sIndex(tokenizer)
    expected_index.index(np.arange(10, 10 + len(TEXTS)), TEXTS)
    results = [ours.search(q, 4) for q in QUERIES]
    monkeypatch.setattr(lexical, "build_bm25_scores", bm25s_scores)
    expected = [expected_index.search(q, 4) for q in QUERIES]
    assert any(len(ids) > 1 for _, ids in results)
    for (scores, ids), (expected_scores, expected_ids) in zip(results, expected, strict=True):
        assert ids.tolist() == expected_ids.tolist()
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-6)
