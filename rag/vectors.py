"""Vector index: a small base class and its FAISS implementation, chosen by a factory.

The ``faiss`` backend picks the index type by size (figures in bench/README.md):

* up to :data:`EXACT_MAX` vectors, exact search (``IndexIDMap2(IndexFlatIP)``);
* above, an inverted-file index with 8-bit scalar quantisation (``IVF<nlist>,SQ8``,
  inner product), trained on a sample of the vectors. IVF keeps ``remove_ids``, so
  incremental updates still delete the chunks of changed files (HNSW cannot).

``faiss-flat`` is always exact and ``faiss-ivf`` switches to IVF from
:data:`IVF_MIN` vectors. The type and its parameters are stored in the FAISS file
itself and reported by :meth:`VectorIndex.describe`, which the index manifest records.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexCorruptError, RagError

# Chosen with bench/retrieval_scale.py: exact search stays within a few ms up to here.
EXACT_MAX = 50_000
IVF_MIN = 1_000  # fewest vectors an IVF index is trained on (for ``faiss-ivf``)
TRAIN_POINTS_PER_LIST = 64  # k-means sample: this many vectors per inverted list
NPROBE_SHARE = 16  # probe 1/16 of the lists (at least MIN_NPROBE): recall@10 >= 0.95
MIN_NPROBE = 16
RETRAIN_GROWTH = 4  # retrain once the ideal list count is 4x the trained one
BLOCK = 65_536  # vectors moved at a time while rebuilding


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

    def describe(self) -> dict[str, Any]:
        """The backend and its current parameters, as recorded in the index manifest."""
        return {"backend": self.backend}

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every ``(ids, vectors)`` stored (decoded when compressed); for benchmarks."""
        raise NotImplementedError

    def nbytes(self) -> int:
        """Memory the stored vectors take, in bytes (for benchmarks)."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


def ideal_nlist(n: int) -> int:
    """Inverted lists for ``n`` vectors: the power of two nearest ``sqrt(n)``, 16 to 65536.

    Args:
        n: number of vectors.

    Returns:
        The list count.
    """
    return int(2 ** min(16, max(4, round(math.log2(math.sqrt(max(n, 1)))))))


def default_nprobe(nlist: int) -> int:
    """Lists probed per query for an IVF index of ``nlist`` lists."""
    return min(nlist, max(MIN_NPROBE, nlist // NPROBE_SHARE))


class FaissIndex(VectorIndex):
    """FAISS inner-product search (cosine on unit vectors) with removable ids.

    Exact while it holds at most ``exact_max`` vectors, ``IVF,SQ8`` above (see the
    module docstring); the switch, and a retraining when the index has grown well past
    what it was trained for, happen inside :meth:`index`.

    Args:
        dim: vector dimension.
        exact_max: most vectors searched exactly (``None``: always exact).
        nprobe: IVF lists probed per query (``None``: :func:`default_nprobe`).
    """

    backend = "faiss"
    file_name = "vectors.faiss"

    def __init__(self, dim: int, exact_max: int | None = EXACT_MAX, nprobe: int | None = None):
        import faiss

        super().__init__(dim)
        self._faiss: Any = faiss
        self.exact_max = exact_max
        self.nprobe_override = nprobe
        self._index: Any = self._new_flat()

    # ------------------------------------------------------------------ state

    @property
    def is_ivf(self) -> bool:
        """Whether the index is the approximate (IVF) kind."""
        return isinstance(self._index, self._faiss.IndexIVF)

    @property
    def nprobe(self) -> int:
        """IVF lists probed per query (0 for exact search)."""
        return int(self._index.nprobe) if self.is_ivf else 0

    def describe(self) -> dict[str, Any]:
        kind: dict[str, Any] = {"type": "flat"}
        if self.is_ivf:
            kind = {"type": "ivf-sq8", "nlist": int(self._index.nlist), "nprobe": self.nprobe}
        return {
            "backend": self.backend,
            "metric": "inner_product",
            "exact_max": self.exact_max,
            "count": len(self),
            **kind,
        }

    def __len__(self) -> int:
        return int(self._index.ntotal)

    # ------------------------------------------------------------------ updating

    def index(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not len(ids):
            return
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.is_ivf and self._wants_ivf(len(self) + len(ids)):
            # retrain with the new vectors as they are, not after a round of quantisation
            self._rebuild_as_ivf(ideal_nlist(len(self) + len(ids)), ids, vectors)
            return
        self._index.add_with_ids(vectors, ids)
        if self._wants_ivf(len(self)):
            self._rebuild_as_ivf(ideal_nlist(len(self)))

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        selector = self._faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))
        return int(self._index.remove_ids(selector))

    def _wants_ivf(self, n: int) -> bool:
        """Whether ``n`` vectors call for (re)building the IVF index."""
        if self.exact_max is None or n <= self.exact_max:
            return False
        if not self.is_ivf:
            return True
        return ideal_nlist(n) >= RETRAIN_GROWTH * int(self._index.nlist)

    def _rebuild_as_ivf(
        self, nlist: int, new_ids: np.ndarray | None = None, new_vectors: np.ndarray | None = None
    ) -> None:
        """Replace the index by an ``IVF<nlist>,SQ8`` one trained on a sample of its vectors.

        Args:
            nlist: inverted lists of the new index.
            new_ids / new_vectors: vectors to add besides the current ones.
        """
        new_ids = np.zeros(0, dtype=np.int64) if new_ids is None else new_ids
        new_vectors = np.zeros((0, self.dim), np.float32) if new_vectors is None else new_vectors
        old = self._index
        new = self._faiss.IndexIVFScalarQuantizer(
            self._faiss.IndexFlatIP(self.dim),
            self.dim,
            nlist,
            self._faiss.ScalarQuantizer.QT_8bit,
            self._faiss.METRIC_INNER_PRODUCT,
        )
        with self._by_id(old) as readable:
            new.train(self._training_sample(readable, nlist, new_vectors))
            for ids, vectors in self._blocks(readable):
                new.add_with_ids(vectors, ids)
        new.add_with_ids(new_vectors, new_ids)
        self._index = new
        self._set_nprobe()

    def _training_sample(self, readable: Any, nlist: int, extra: np.ndarray) -> np.ndarray:
        """Up to ``nlist * TRAIN_POINTS_PER_LIST`` vectors drawn from the index and ``extra``."""
        ids = self._all_ids()
        total = len(ids) + len(extra)
        size = min(total, nlist * TRAIN_POINTS_PER_LIST)
        picks = np.sort(np.random.default_rng(0).choice(total, size=size, replace=False))
        stored = picks[picks < len(ids)]
        sample = np.asarray(readable.reconstruct_batch(ids[stored]), dtype=np.float32)
        return np.concatenate([sample, extra[picks[picks >= len(ids)] - len(ids)]])

    def _all_ids(self) -> np.ndarray:
        if not self.is_ivf:
            return self._faiss.vector_to_array(self._index.id_map).astype(np.int64)
        lists = self._index.invlists
        parts = [
            self._faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(lists.nlist)
            if lists.list_size(i)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    @contextmanager
    def _by_id(self, index: Any) -> Iterator[Any]:
        """``index``, able to reconstruct vectors by id for the duration (IVF: a hash map)."""
        if not isinstance(index, self._faiss.IndexIVF):
            yield index
            return
        index.set_direct_map_type(self._faiss.DirectMap.Hashtable)
        try:
            yield index
        finally:  # remove_ids needs the map gone again
            index.set_direct_map_type(self._faiss.DirectMap.NoMap)

    def _blocks(self, readable: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All ``(ids, vectors)`` of the index (IVF: decoded), ``BLOCK`` at a time."""
        ids = self._all_ids()
        for start in range(0, len(ids), BLOCK):
            block = ids[start : start + BLOCK]
            yield block, np.asarray(readable.reconstruct_batch(block), dtype=np.float32)

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        with self._by_id(self._index) as readable:
            blocks = list(self._blocks(readable))
        if not blocks:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])

    def nbytes(self) -> int:
        n = len(self)
        if not self.is_ivf:  # float32 vectors and their ids, twice (IDMap2's reverse map)
            return n * (4 * self.dim + 16)
        index = self._index  # a byte per component and an id per vector, plus centroids
        return n * (int(index.code_size) + 8) + int(index.nlist) * self.dim * 4

    # ------------------------------------------------------------------ searching

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if not len(self):
            n = len(queries)
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        k = max(1, min(k, len(self)))
        scores, ids = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids

    # ------------------------------------------------------------------ files

    def save(self, path: Path) -> None:
        self._faiss.write_index(self._index, str(path))

    def load(self, path: Path) -> None:
        try:
            index = self._faiss.read_index(str(path))
        except Exception as exc:  # faiss raises RuntimeError with a C++ message
            raise IndexCorruptError(f"cannot read {path.name}: {exc}") from exc
        if index.d != self.dim:
            raise IndexCorruptError(f"{path.name} holds {index.d}-d vectors, expected {self.dim}")
        if not isinstance(index, self._faiss.IndexIDMap2 | self._faiss.IndexIVF):
            raise IndexCorruptError(f"{path.name} holds an unexpected {type(index).__name__}")
        self._index = index
        self._set_nprobe()

    def _set_nprobe(self) -> None:
        if self.is_ivf:
            nlist = int(self._index.nlist)
            self._index.nprobe = min(nlist, self.nprobe_override or default_nprobe(nlist))

    def set_nprobe(self, nprobe: int) -> None:
        """Probe ``nprobe`` lists per query from now on (IVF only; for tuning and benches)."""
        self.nprobe_override = nprobe
        self._set_nprobe()

    def _new_flat(self) -> Any:
        return self._faiss.IndexIDMap2(self._faiss.IndexFlatIP(self.dim))


class ExactFaissIndex(FaissIndex):
    """Always exact search, whatever the size."""

    backend = "faiss-flat"

    def __init__(self, dim: int) -> None:
        super().__init__(dim, exact_max=None)


class IVFFaissIndex(FaissIndex):
    """``IVF,SQ8`` as soon as there are :data:`IVF_MIN` vectors to train on."""

    backend = "faiss-ivf"

    def __init__(self, dim: int) -> None:
        super().__init__(dim, exact_max=IVF_MIN)


VECTOR_INDEXES: dict[str, type[VectorIndex]] = {
    cls.backend: cls for cls in (FaissIndex, ExactFaissIndex, IVFFaissIndex)
}


def create_vector_index(backend: str, dim: int) -> VectorIndex:
    """Build an empty vector index of the named backend.

    Args:
        backend: a key of :data:`VECTOR_INDEXES` (from ``config.vector_backend``):
            ``faiss`` (exact, then IVF by size), ``faiss-flat`` or ``faiss-ivf``.
        dim: vector dimension.

    Returns:
        The empty index.

    Raises:
        RagError: no backend has that name.
    """
    try:
        cls = VECTOR_INDEXES[backend]
    except KeyError:
        raise RagError(
            f"unknown vector backend {backend!r}; choose one of {sorted(VECTOR_INDEXES)}"
        ) from None
    return cls(dim)
