"""Vector index: a small base class and its FAISS implementation, chosen by a factory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import IndexCorruptError, RagError


class VectorIndex:
    """Stores unit vectors under int64 ids and finds the nearest by inner product."""

    backend: str
    file_name: str

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def index(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (``(n, dim)`` float32) under ``ids`` (``(n,)`` int64)."""
        raise NotImplementedError

    def remove(self, ids: np.ndarray) -> int:
        """Remove the vectors with these ids. Returns how many were removed."""
        raise NotImplementedError

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) per query row; missing slots have id ``-1``."""
        raise NotImplementedError

    def save(self, path: Path) -> None:
        """Write the index to ``path``."""
        raise NotImplementedError

    def load(self, path: Path) -> None:
        """Read the index from ``path``; raises :class:`IndexCorruptError` when damaged."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class FaissIndex(VectorIndex):
    """Exact inner-product search (cosine on unit vectors) with removable ids."""

    backend = "faiss"
    file_name = "vectors.faiss"

    def __init__(self, dim: int) -> None:
        import faiss

        super().__init__(dim)
        self._faiss = faiss
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def index(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        selector = self._faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))
        return int(self._index.remove_ids(selector))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(k, len(self))) if len(self) else 1
        if not len(self):
            n = len(queries)
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        scores, ids = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids

    def save(self, path: Path) -> None:
        self._faiss.write_index(self._index, str(path))

    def load(self, path: Path) -> None:
        try:
            index = self._faiss.read_index(str(path))
        except Exception as exc:  # faiss raises RuntimeError with a C++ message
            raise IndexCorruptError(f"cannot read {path.name}: {exc}") from exc
        if index.d != self.dim:
            raise IndexCorruptError(f"{path.name} holds {index.d}-d vectors, expected {self.dim}")
        self._index = index

    def __len__(self) -> int:
        return int(self._index.ntotal)


VECTOR_INDEXES: dict[str, type[VectorIndex]] = {"faiss": FaissIndex}


def create_vector_index(backend: str, dim: int) -> VectorIndex:
    """Build an empty vector index of the named backend.

    Args:
        backend: a key of :data:`VECTOR_INDEXES` (from ``config.vector_backend``).
        dim: vector dimension.

    Returns:
        The empty index.
    """
    try:
        return VECTOR_INDEXES[backend](dim)
    except KeyError:
        raise RagError(
            f"unknown vector backend {backend!r}; choose one of {sorted(VECTOR_INDEXES)}"
        ) from None
