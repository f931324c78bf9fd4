"""Lexical index: BM25 (bm25s) over Chinese words (jieba) or character bigrams."""

from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexCorruptError, RagError
from .sentences import write_rows
from .text import TOKENIZERS, tokenize

try:
    import bm25s

    BM25S_AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only without the extra installed
    BM25S_AVAILABLE = False

# BM25sIndex.load restores bm25s.BM25's internal state (scores, vocab_dict) without
# re-indexing, and build_bm25_scores mirrors its build_index_from_ids with its private
# scoring functions; neither is public API, so the exact version is pinned in
# pyproject.toml and tests/test_lexical.py fails when another one is installed.
BM25S_VERSION = "0.3.16"


def _require_bm25s() -> None:
    if not BM25S_AVAILABLE:
        raise ImportError("lexical search needs bm25s; install it with: pip install bm25s")


class LexicalIndex:
    """Finds the chunks sharing the most (rare) words with a query, under int64 ids."""

    backend: str
    file_names: tuple[str, ...]

    def __init__(self, tokenizer: str) -> None:
        self.tokenizer = tokenizer

    def index(self, ids: np.ndarray, texts: list[str]) -> None:
        """Add ``texts`` under ``ids``."""
        raise NotImplementedError

    def remove(self, ids: np.ndarray) -> int:
        """Remove the texts with these ids. Returns how many were removed."""
        raise NotImplementedError

    def stage(
        self, remove: np.ndarray, ids: np.ndarray, texts: list[str], build: bool = True
    ) -> Any:
        """Prepare removing ``remove`` and adding ``texts`` under ``ids``, without applying it.

        Backends override this to do the slow part (tokenising, rebuilding) here, so that
        :meth:`commit` is quick and searches go on meanwhile. With ``build=False`` (a
        batch of a longer update) a backend may leave rebuilding to the next search.

        Returns:
            The staged change, for :meth:`commit`.
        """
        return remove, ids, texts

    def commit(self, staged: Any) -> None:
        """Apply a change prepared by :meth:`stage` (no other change in between)."""
        remove, ids, texts = staged
        self.remove(remove)
        self.index(ids, texts)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) for ``query``, best first (fewer when few match)."""
        raise NotImplementedError

    def knows(self, text: str) -> bool:
        """Whether any word of ``text`` (two characters or more) occurs in an indexed text."""
        raise NotImplementedError

    def save(self, folder: Path) -> None:
        """Write the index files (``file_names``) into ``folder``."""
        raise NotImplementedError

    def load(self, folder: Path) -> None:
        """Read the index from ``folder``; raises :class:`IndexCorruptError` when damaged."""
        raise NotImplementedError

    def nbytes(self) -> dict[str, int]:
        """Memory the index holds, by part, in bytes (for benchmarks)."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class BM25sIndex(LexicalIndex):
    """BM25 with ``bm25s``: scores precomputed into a sparse matrix, so a query is a lookup.

    Each text's tokens are kept (as int32 word ids) so that an update rebuilds the matrix
    without re-tokenising the library. The saved ones stay on disk, memory-mapped from
    the index folder; only the tokens of texts added since the last save are in memory.
    """

    backend = "bm25s"
    file_names = ("lexical_tokens.npy", "lexical_bm25.npz")

    def __init__(self, tokenizer: str) -> None:
        _require_bm25s()
        if tokenizer not in TOKENIZERS:
            raise RagError(f"unknown lexical tokenizer {tokenizer!r}; choose one of {TOKENIZERS}")
        super().__init__(tokenizer)
        self._vocab: dict[str, int] = {"": 0}  # word -> id; "" keeps empty texts scorable
        self._docs: dict[int, np.ndarray] = {}  # text id -> its word ids
        self._model: Any = None
        self._ids = np.zeros(0, dtype=np.int64)

    def _word_ids(self, text: str) -> np.ndarray:
        """The word ids of ``text``'s tokens, new words added to the vocabulary."""
        vocab = self._vocab
        words = tokenize(text, self.tokenizer, pinyin=True) or [""]
        return np.fromiter(
            (vocab.setdefault(w, len(vocab)) for w in words), dtype=np.int32, count=len(words)
        )

    def index(self, ids: np.ndarray, texts: list[str]) -> None:
        for vid, text in zip(ids.tolist(), texts, strict=True):
            self._docs[int(vid)] = self._word_ids(text)
        self._model = None

    def remove(self, ids: np.ndarray) -> int:
        removed = sum(self._docs.pop(int(vid), None) is not None for vid in ids.tolist())
        if removed:
            self._model = None
        return removed

    def stage(
        self, remove: np.ndarray, ids: np.ndarray, texts: list[str], build: bool = True
    ) -> Any:
        docs = dict(self._docs)
        for vid in remove.tolist():
            docs.pop(int(vid), None)
        for vid, text in zip(ids.tolist(), texts, strict=True):
            docs[int(vid)] = self._word_ids(text)
        if not build:  # the matrix is rebuilt when next needed
            return docs, np.zeros(0, dtype=np.int64), None
        return (docs, *self._bm25_model(docs))

    def commit(self, staged: Any) -> None:
        self._docs, self._ids, self._model = staged

    def _bm25_model(self, docs: dict[int, np.ndarray]) -> tuple[np.ndarray, Any]:
        """The ids in order and a bm25s model over their word ids (None when there are none)."""
        ids = np.fromiter(sorted(docs), dtype=np.int64, count=len(docs))
        if not len(ids):
            return ids, None
        model = bm25s.BM25()
        model.scores = build_bm25_scores(model, [docs[v] for v in ids.tolist()], len(self._vocab))
        model.nonoccurrence_array = None  # as build_index_from_ids leaves it for our method
        model.vocab_dict = self._vocab
        return ids, model

    def _built(self) -> Any:
        if self._model is None:
            self._ids, self._model = self._bm25_model(self._docs)
        return self._model

    def _query_ids(self, model: Any, words: list[str]) -> list[int]:
        """Ids of the ``words`` the model's matrix has a column for (the vocabulary may
        have grown since it was built, while an update is prepared)."""
        columns = len(model.scores["indptr"]) - 1
        found = (self._vocab.get(w) for w in words)
        return [i for i in found if i is not None and 0 < i < columns]

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        empty = (np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64))
        model = self._built()
        if model is None:
            return empty
        token_ids = self._query_ids(model, tokenize(query, self.tokenizer))
        if not token_ids:
            return empty
        scores = model.get_scores_from_ids(token_ids)
        k = min(k, int(np.count_nonzero(scores > 0)))
        if k == 0:
            return empty
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return scores[top].astype(np.float32), self._ids[top]

    def knows(self, text: str) -> bool:
        model = self._built()
        if model is None:
            return False
        words = [t for t in tokenize(text, self.tokenizer) if len(t) >= 2]
        indptr = model.scores["indptr"]
        # a word of removed texts only stays in the vocabulary: it must still occur
        return any(indptr[i + 1] > indptr[i] for i in self._query_ids(model, words))

    def save(self, folder: Path) -> None:
        model = self._built()
        lengths = np.fromiter(
            (len(self._docs[int(v)]) for v in self._ids), dtype=np.int64, count=len(self._ids)
        )
        tokens_path = folder / self.file_names[0]
        write_rows(tokens_path, (self._docs[v] for v in self._ids.tolist()), 0, np.int32)
        vocab = sorted(self._vocab, key=self._vocab.__getitem__)
        empty = np.zeros(0, dtype=np.float32)
        with (folder / self.file_names[1]).open("wb") as handle:
            np.savez(
                handle,
                ids=self._ids,
                lengths=lengths,
                data=model.scores["data"] if model else empty,
                indices=model.scores["indices"] if model else empty.astype(np.int32),
                indptr=model.scores["indptr"] if model else np.zeros(1, dtype=np.int32),
                num_docs=np.asarray(model.scores["num_docs"] if model else 0),
                vocab=np.asarray(json.dumps(vocab, ensure_ascii=False)),
            )
        # from now on the tokens are read from the file just written (a renamed folder
        # keeps its files: the mapping stays valid), not kept in memory
        self._docs = _mapped_docs(tokens_path, self._ids, lengths)

    def load(self, folder: Path) -> None:
        try:
            with np.load(folder / self.file_names[1], allow_pickle=False) as saved:
                model = bm25s.BM25()
                model.scores = {
                    "data": saved["data"],
                    "indices": saved["indices"],
                    "indptr": saved["indptr"],
                    "num_docs": int(saved["num_docs"]),
                }
                vocab = json.loads(str(saved["vocab"]))
                ids, lengths = saved["ids"], saved["lengths"]
            docs = _mapped_docs(folder / self.file_names[0], ids, lengths)
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise IndexCorruptError(
                f"lexical index unreadable ({type(exc).__name__}: {exc})"
            ) from exc
        if len(model.scores["indptr"]) > len(vocab) + 1 or (docs and vocab[:1] != [""]):
            raise IndexCorruptError("lexical index and its vocabulary disagree")
        self._vocab = {word: i for i, word in enumerate(vocab)} if vocab else {"": 0}
        model.vocab_dict = self._vocab
        model.nonoccurrence_array = None
        self._docs, self._ids, self._model = docs, ids, (model if docs else None)

    def nbytes(self) -> dict[str, int]:
        """Memory held: the score matrix, the vocabulary, and the tokens not yet saved."""
        model = self._model
        matrix = sum(model.scores[k].nbytes for k in ("data", "indices", "indptr")) if model else 0
        vocab = sum(sys.getsizeof(w) + 100 for w in self._vocab)  # + dict entry, int
        unsaved = sum(d.nbytes for d in self._docs.values() if d.base is None)
        return {"lexical matrix": matrix, "lexical vocabulary": vocab, "unsaved tokens": unsaved}

    def __len__(self) -> int:
        return len(self._docs)


# Tokens per block of documents in build_bm25_scores: its temporaries are about 100 bytes
# per token of a block (~30 MiB), whatever the library's size; larger blocks are no faster.
BLOCK_TOKENS = 1 << 18


def build_bm25_scores(
    model: Any, docs: Sequence[np.ndarray], n_vocab: int, block_tokens: int = BLOCK_TOKENS
) -> dict[str, Any]:
    """bm25s's score matrix over ``docs``, built a block of documents at a time.

    Gives what ``model.build_index_from_ids(list(range(n_vocab)), docs)`` gives (bm25s
    0.3.16, ``BM25.build_index_from_ids`` with its default numpy CSC backend): the same
    ``data``/``indices``/``indptr``/``num_docs``, dtypes, and values, the scores computed
    with bm25s's own idf and tf functions (``scoring._select_idf_scorer`` /
    ``_select_tfc_scorer``) in the same float64 order of operations. Why not call it:
    bm25s holds about 28 bytes per posting in temporaries (a Counter per document, the
    COO triplets, a packed sort key and its argsort), 3x the finished matrix and the
    peak of a large index build. Here pass 1 counts the documents each word occurs in,
    which sizes the CSC arrays (8 bytes per posting); pass 2 writes each block's scores
    straight into their place, so only one block's temporaries exist at a time.

    Args:
        model: a ``bm25s.BM25`` whose ``method``, ``idf_method``, ``k1``, ``b``, ``dtype``
            and ``int_dtype`` to use; BM25L and BM25+ (which also need bm25s's
            non-occurrence array) are not supported.
        docs: each document's word ids (integers in ``[0, n_vocab)``), in matrix row order.
        n_vocab: the number of word ids (the matrix's columns).
        block_tokens: about how many tokens a block holds (a longer document is a block).

    Returns:
        The ``scores`` dict to set on ``model``: column ``j``'s rows (documents, ascending)
        are ``indices[indptr[j]:indptr[j + 1]]``, their scores the same slice of ``data``.

    Raises:
        ValueError: for BM25L / BM25+, or a word id outside ``[0, n_vocab)``.
    """
    if model.method in model.methods_requiring_nonoccurrence:
        raise ValueError(f"build_bm25_scores does not support method {model.method!r}")
    n_docs = len(docs)
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=n_docs)
    avg_doc_len = lengths.mean() if n_docs else 0.0  # as bm25s: np.array(lengths).mean()
    starts = np.cumsum(lengths) - lengths
    cuts = np.flatnonzero(np.diff(starts // max(block_tokens, 1))) + 1
    bounds = np.concatenate([[0], cuts, [n_docs]]).tolist() if n_docs else [0]
    blocks = list(zip(bounds[:-1], bounds[1:], strict=True))

    def postings(start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(word, document, term frequency) of docs[start:stop], by word then document."""
        words = np.concatenate([docs[i] for i in range(start, stop)]).astype(np.int64)
        if words.size and (words.min() < 0 or words.max() >= n_vocab):
            raise ValueError(f"word ids must be in [0, {n_vocab})")
        rows = np.repeat(np.arange(stop - start, dtype=np.int64), lengths[start:stop])
        keys, tf = np.unique(words * (stop - start) + rows, return_counts=True)
        return keys // (stop - start), keys % (stop - start) + start, tf

    # pass 1: document frequencies -> idf (bm25s's _calculate_doc_freqs, _build_idf_array)
    df = np.zeros(n_vocab, dtype=np.int64)
    for start, stop in blocks:
        df += np.bincount(postings(start, stop)[0], minlength=n_vocab)
    idf_fn = bm25s.scoring._select_idf_scorer(model.idf_method)
    distinct, which = np.unique(df, return_inverse=True)
    idf_of = [idf_fn(v, N=n_docs) if v else 0.0 for v in distinct.tolist()]
    idf = np.asarray(idf_of, dtype=np.float64)[which].astype(model.dtype)

    # pass 2: scores (bm25s's _build_scores_and_indices_for_matrix), written in CSC order
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)  # _np_csc_python's indptr dtype
    np.cumsum(df, out=indptr[1:])
    data = np.empty(indptr[-1], dtype=model.dtype)
    indices = np.empty(indptr[-1], dtype=model.int_dtype)
    heads = indptr[:-1].copy()  # next free slot of each column
    tfc_fn = bm25s.scoring._select_tfc_scorer(model.method)
    for start, stop in blocks:
        words, rows, tf = postings(start, stop)
        counts = np.bincount(words, minlength=n_vocab)
        first = np.cumsum(counts) - counts  # where each word's run starts in this block
        slots = heads[words] + np.arange(len(words)) - first[words]
        heads += counts
        tfc = tfc_fn(
            tf_array=tf.astype(model.dtype),
            l_d=lengths[rows],
            l_avg=avg_doc_len,
            k1=model.k1,
            b=model.b,
            delta=model.delta,
        )
        data[slots] = idf[words] * tfc
        indices[slots] = rows
    return {"data": data, "indices": indices, "indptr": indptr, "num_docs": n_docs}


def _mapped_docs(path: Path, ids: np.ndarray, lengths: np.ndarray) -> dict[int, np.ndarray]:
    """Each text's word ids as a view of the memory-mapped token file at ``path``."""
    if len(ids) != len(lengths):
        raise ValueError("token lengths do not match the ids")
    flat = np.asarray(np.load(path, mmap_mode="r"))  # a plain view: slices stay light
    if flat.dtype != np.int32 or flat.ndim != 1 or len(flat) != int(lengths.sum()):
        raise ValueError(f"{path.name} does not hold the recorded tokens")
    ends = np.cumsum(lengths)
    return {
        int(vid): flat[end - length : end]
        for vid, length, end in zip(ids.tolist(), lengths.tolist(), ends.tolist(), strict=True)
    }


LEXICAL_BACKENDS: dict[str, type[LexicalIndex]] = {"bm25s": BM25sIndex}


def create_lexical_index(backend: str, tokenizer: str) -> LexicalIndex:
    """The lexical index named ``backend`` (see ``LEXICAL_BACKENDS``).

    Args:
        backend: e.g. ``"bm25s"``.
        tokenizer: ``"jieba"`` or ``"bigram"``.

    Returns:
        An empty index.
    """
    try:
        cls = LEXICAL_BACKENDS[backend]
    except KeyError:
        raise RagError(
            f"unknown lexical backend {backend!r}; choose one of {sorted(LEXICAL_BACKENDS)}"
        ) from None
    return cls(tokenizer)
