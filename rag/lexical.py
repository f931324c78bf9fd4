"""Lexical index: BM25 (bm25s) over Chinese words (jieba) or character bigrams."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexCorruptError, RagError
from .text import TOKENIZERS, tokenize

try:
    import bm25s

    BM25S_AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only without the extra installed
    BM25S_AVAILABLE = False

# BM25sIndex.load restores bm25s.BM25's internal state (scores, vocab_dict) without
# re-indexing; that state is not public API, so the exact version is pinned in
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

    def stage(self, remove: np.ndarray, ids: np.ndarray, texts: list[str]) -> Any:
        """Prepare removing ``remove`` and adding ``texts`` under ``ids``, without applying it.

        Backends override this to do the slow part (tokenising, rebuilding) here, so that
        :meth:`commit` is quick and searches go on meanwhile.

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

    def __len__(self) -> int:
        raise NotImplementedError


class BM25sIndex(LexicalIndex):
    """BM25 with ``bm25s``: scores precomputed into a sparse matrix, so a query is a lookup.

    The token lists are kept beside the matrix so that an incremental update rebuilds the
    matrix without re-tokenising the whole corpus.
    """

    backend = "bm25s"
    file_names = ("lexical_tokens.jsonl", "lexical_bm25.npz")

    def __init__(self, tokenizer: str) -> None:
        _require_bm25s()
        if tokenizer not in TOKENIZERS:
            raise RagError(f"unknown lexical tokenizer {tokenizer!r}; choose one of {TOKENIZERS}")
        super().__init__(tokenizer)
        self._tokens: dict[int, list[str]] = {}
        self._model: Any = None
        self._ids = np.zeros(0, dtype=np.int64)

    def index(self, ids: np.ndarray, texts: list[str]) -> None:
        for vid, text in zip(ids.tolist(), texts, strict=True):
            self._tokens[int(vid)] = tokenize(text, self.tokenizer, pinyin=True)
        self._model = None

    def remove(self, ids: np.ndarray) -> int:
        removed = sum(self._tokens.pop(int(vid), None) is not None for vid in ids.tolist())
        if removed:
            self._model = None
        return removed

    def stage(self, remove: np.ndarray, ids: np.ndarray, texts: list[str]) -> Any:
        tokens = dict(self._tokens)
        for vid in remove.tolist():
            tokens.pop(int(vid), None)
        for vid, text in zip(ids.tolist(), texts, strict=True):
            tokens[int(vid)] = tokenize(text, self.tokenizer, pinyin=True)
        return (tokens, *_bm25_model(tokens))

    def commit(self, staged: Any) -> None:
        self._tokens, self._ids, self._model = staged

    def _built(self) -> Any:
        if self._model is None:
            self._ids, self._model = _bm25_model(self._tokens)
        return self._model

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        empty = (np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64))
        model = self._built()
        if model is None:
            return empty
        token_ids = model.get_tokens_ids(tokenize(query, self.tokenizer))
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
        return any(w in model.vocab_dict for w in words)

    def save(self, folder: Path) -> None:
        with (folder / self.file_names[0]).open("w", encoding="utf-8") as handle:
            for vid, tokens in self._tokens.items():
                handle.write(json.dumps([vid, tokens], ensure_ascii=False) + "\n")
        model = self._built()
        vocab = sorted(model.vocab_dict, key=model.vocab_dict.__getitem__) if model else []
        empty = np.zeros(0, dtype=np.float32)
        with (folder / self.file_names[1]).open("wb") as handle:
            np.savez(
                handle,
                ids=self._ids,
                data=model.scores["data"] if model else empty,
                indices=model.scores["indices"] if model else empty.astype(np.int32),
                indptr=model.scores["indptr"] if model else np.zeros(1, dtype=np.int32),
                num_docs=np.asarray(model.scores["num_docs"] if model else 0),
                vocab=np.asarray(json.dumps(vocab, ensure_ascii=False)),
            )

    def load(self, folder: Path) -> None:
        try:
            tokens: dict[int, list[str]] = {}
            with (folder / self.file_names[0]).open(encoding="utf-8") as handle:
                for line in handle:
                    vid, words = json.loads(line)
                    tokens[int(vid)] = words
            with np.load(folder / self.file_names[1], allow_pickle=False) as saved:
                model = bm25s.BM25()
                model.scores = {
                    "data": saved["data"],
                    "indices": saved["indices"],
                    "indptr": saved["indptr"],
                    "num_docs": int(saved["num_docs"]),
                }
                vocab = json.loads(str(saved["vocab"]))
                ids = saved["ids"]
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise IndexCorruptError(
                f"lexical index unreadable ({type(exc).__name__}: {exc})"
            ) from exc
        if len(ids) != len(tokens) or set(ids.tolist()) != set(tokens):
            raise IndexCorruptError("lexical index and its token lists disagree")
        model.vocab_dict = {word: i for i, word in enumerate(vocab)}
        model.nonoccurrence_array = None
        self._tokens, self._ids, self._model = tokens, ids, (model if tokens else None)

    def __len__(self) -> int:
        return len(self._tokens)


def _bm25_model(tokens: dict[int, list[str]]) -> tuple[np.ndarray, Any]:
    """The ids in order and a bm25s model over their token lists (None when there are none)."""
    ids = np.fromiter(sorted(tokens), dtype=np.int64, count=len(tokens))
    if not len(ids):
        return ids, None
    model = bm25s.BM25()
    # an empty token keeps every document non-empty, as bm25s requires
    model.index([tokens[int(v)] or [""] for v in ids], show_progress=False)
    return ids, model


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
