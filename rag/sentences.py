"""Sentence vectors: each chunk's sentences embedded at index time, to pick the answering one."""

from __future__ import annotations

import contextlib
import mmap
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .chunking import chunk_articles
from .config import DEFAULT_MODEL, SENTENCE_MAP_VERSION, Config
from .corpus import load_bytes
from .embedding import Embedder, create_embedder
from .errors import IndexCorruptError, InvalidArgumentError
from .records import Chunk
from .text import sentence_spans

# The map for the default model (multilingual-e5-small, "passage: " prefix, int8 runtime,
# 500-character chunks), fitted on the CMRC 2018 dev and DRCD dev/test paragraphs by
# eval/fit_sentence_map.py (eval/README.md).
SHIPPED_MAP = Path(__file__).with_name("sentence_map.npz")
# Ridge strengths the fit chooses among, by cross-validation over chunks.
MAP_RIDGES = (0.001, 0.01, 0.1, 1.0)


def chunk_sentences(chunk: Chunk) -> list[str]:
    """The sentences of a chunk, as :func:`~rag.ranking.sentence_spans` splits them."""
    return [chunk.text[a:b] for a, b in sentence_spans(chunk.text)]


def embed_chunks(
    embedder: Embedder, chunks: list[Chunk], mode: str = "separate", progress: bool = False
) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Embed chunks (their ``embed_text``) and their sentences.

    Args:
        embedder: the index's embedder.
        chunks: the chunks.
        mode: ``"separate"``: each sentence embedded as a passage of its own (a second
            embedding pass); ``"pooled"``: each sentence's vector pooled from its chunk's
            forward pass (:func:`pool_sentences`), mapped towards its own vector where a
            :class:`SentenceMap` exists for the model (:func:`map_for`).
        progress: show progress bars.

    Returns:
        The ``(chunks, dim)`` chunk vectors, each chunk's sentence count, and the
        ``(sentences, dim)`` sentence vectors, chunk after chunk.
    """
    if mode == "pooled":
        vectors, counts, flat = pool_sentences(embedder, chunks, progress)
        sentence_map = map_for(embedder)
        if sentence_map is not None:
            flat = sentence_map.apply(flat, vectors, counts)
        return vectors, counts, flat
    vectors = embedder.encode_passages([c.embed_text for c in chunks], progress)
    return vectors, *embed_sentences(embedder, chunks, progress)


def pool_sentences(
    embedder: Embedder, chunks: list[Chunk], progress: bool = False
) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Chunk vectors and sentence vectors pooled from the same forward pass (embedders
    without token states embed the sentences separately all the same).

    Returns:
        As :func:`embed_chunks`; the sentence vectors as pooled, not mapped.
    """
    texts = [c.embed_text for c in chunks]
    spans = []
    for chunk, text in zip(chunks, texts, strict=True):
        shift = len(text) - len(chunk.text)  # the title line before the passage
        spans.append([(shift + a, shift + b) for a, b in sentence_spans(chunk.text)])
    vectors, groups = embedder.encode_passages_with_spans(texts, spans, progress)
    dim = vectors.shape[1] if vectors.ndim == 2 else embedder.dim
    flat = np.concatenate(groups) if groups else np.zeros((0, dim), dtype=np.float32)
    return vectors, [len(group) for group in spans], flat


def embed_sentences(
    embedder: Embedder, chunks: list[Chunk], progress: bool = False
) -> tuple[list[int], np.ndarray]:
    """Each chunk's sentences embedded as passages of their own.

    Returns:
        Each chunk's sentence count and the ``(sentences, dim)`` vectors, chunk after chunk.
    """
    sentences = [chunk_sentences(c) for c in chunks]
    # Sentences in the overlap of neighbouring chunks come twice: embed each text once
    # (16% fewer sentences on news-dev).
    row_of: dict[str, int] = {}
    rows = [row_of.setdefault(s, len(row_of)) for group in sentences for s in group]
    distinct = embedder.encode_passages(list(row_of), progress)
    flat = distinct[np.asarray(rows, dtype=np.int64)] if rows else distinct
    return [len(group) for group in sentences], flat


def fit_sentence_map(texts: list[str], config: Config, progress: bool = False) -> SentenceMap:
    """Fit a :class:`SentenceMap` for ``config``'s model on ``texts`` (eval/fit_sentence_map.py).

    Each text is read as an article and chunked as the index does; every chunk's
    sentences are embedded both ways (about 10,000 sentences make a good fit).

    Args:
        texts: articles or paragraphs of public text that no eval set is drawn from.
        config: the model, prefixes, runtime and chunking to fit for.
        progress: show progress bars.

    Returns:
        The fitted map.

    Raises:
        InvalidArgumentError: the embedder does not pool sentences from token states.
    """
    articles = [
        article
        for i, text in enumerate(texts)
        for article in load_bytes(text.encode("utf-8"), f"text_{i:05d}.txt")
    ]
    chunks = chunk_articles(articles, config.chunk_size, config.chunk_overlap)
    embedder = create_embedder(config)
    if not embedder.pools_spans:
        raise InvalidArgumentError(f"{embedder.name} embeds sentences separately: nothing to map")
    vectors, counts, pooled = pool_sentences(embedder, chunks, progress)
    _, separate = embed_sentences(embedder, chunks, progress)
    key = map_key(embedder.name, getattr(embedder, "passage_prefix", ""))
    return SentenceMap.fit(pooled, vectors, counts, separate, key)


@dataclass(frozen=True)
class SentenceMap:
    """A linear map from a sentence's vector pooled inside its chunk to the vector of the
    sentence embedded on its own.

    A pooled vector also carries its chunk's context (cosine 0.92 to the sentence's own
    vector on CMRC 2018 dev); given the pooled vector and its chunk's vector, a ridge
    regression fitted on sentences embedded both ways predicts the sentence's own vector
    (cosine 0.96 on held-out chunks), for one embedding pass instead of two.

    Attributes:
        weights: ``(2 * dim + 1, dim)``: rows for the pooled vector, the chunk's vector, 1.
        model: the model and passage prefix it was fitted for (``"model|prefix"``).
        ridge: the ridge strength cross-validation chose.
        held_out_cosine: mean cosine to the sentences' own vectors on held-out chunks.
    """

    weights: np.ndarray
    model: str
    ridge: float = 0.0
    held_out_cosine: float = 0.0

    def apply(self, pooled: np.ndarray, chunk_vectors: np.ndarray, counts: list[int]) -> np.ndarray:
        """The mapped unit vectors of ``pooled`` sentences, ``counts[i]`` of them in chunk ``i``.

        Args:
            pooled: ``(sentences, dim)`` pooled sentence vectors, chunk after chunk.
            chunk_vectors: ``(chunks, dim)`` their chunks' vectors.
            counts: sentences per chunk.

        Returns:
            ``(sentences, dim)`` float32 unit vectors.
        """
        mapped = _design(pooled, chunk_vectors, counts) @ self.weights.astype(np.float32)
        norms = np.linalg.norm(mapped, axis=1, keepdims=True)
        return (mapped / np.maximum(norms, 1e-12)).astype(np.float32)

    @classmethod
    def fit(
        cls,
        pooled: np.ndarray,
        chunk_vectors: np.ndarray,
        counts: list[int],
        separate: np.ndarray,
        model: str,
        folds: int = 5,
    ) -> SentenceMap:
        """Fit the map on sentences embedded both ways, choosing the ridge strength among
        :data:`MAP_RIDGES` by cross-validation over chunks (a chunk's sentences are never
        split between fitting and checking).

        Args:
            pooled: ``(sentences, dim)`` pooled sentence vectors, chunk after chunk.
            chunk_vectors: ``(chunks, dim)`` their chunks' vectors.
            counts: sentences per chunk.
            separate: ``(sentences, dim)`` the same sentences embedded on their own.
            model: the model and prefix they come from (:func:`map_key`).
            folds: cross-validation folds.

        Returns:
            The map fitted on all sentences with the chosen strength.
        """
        x = _design(pooled, chunk_vectors, counts).astype(np.float64)
        y = separate.astype(np.float64)
        fold_of = np.repeat(np.random.default_rng(0).integers(0, folds, len(counts)), counts)
        cosines = {}
        for ridge in MAP_RIDGES:
            held = []
            for fold in range(folds):
                fit, check = fold_of != fold, fold_of == fold
                predicted = x[check] @ _ridge(x[fit], y[fit], ridge)
                predicted /= np.linalg.norm(predicted, axis=1, keepdims=True)
                held.append(np.sum(predicted * y[check], axis=1))
            cosines[ridge] = float(np.mean(np.concatenate(held)))
        best = max(cosines, key=lambda ridge: cosines[ridge])
        weights = _ridge(x, y, best).astype(np.float32)
        return cls(weights, model, best, cosines[best])

    def save(self, path: Path) -> None:
        """Write the map as ``.npz`` (weights as float16: they only rank within a chunk)."""
        with path.open("wb") as handle:
            np.savez_compressed(
                handle,
                weights=self.weights.astype(np.float16),
                model=np.asarray(self.model),
                ridge=np.asarray(self.ridge),
                held_out_cosine=np.asarray(self.held_out_cosine),
                version=np.asarray(SENTENCE_MAP_VERSION),
            )

    @classmethod
    def load(cls, path: Path) -> SentenceMap:
        """Read a map written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as saved:
            return cls(
                saved["weights"].astype(np.float32),
                str(saved["model"]),
                float(saved["ridge"]),
                float(saved["held_out_cosine"]),
            )


def map_key(model: str, passage_prefix: str) -> str:
    """What a :class:`SentenceMap` is fitted for: the model and its passage prefix."""
    return f"{model}|{passage_prefix}"


def map_for(embedder: Embedder) -> SentenceMap | None:
    """The shipped map when ``embedder`` runs the model it was fitted for, else ``None``
    (another model's pooled vectors are used as they are)."""
    prefix = getattr(embedder, "passage_prefix", None)
    if not embedder.pools_spans or embedder.name != DEFAULT_MODEL or prefix is None:
        return None
    shipped = _shipped_map()
    return shipped if shipped.model == map_key(embedder.name, prefix) else None


@lru_cache(maxsize=1)
def _shipped_map() -> SentenceMap:
    return SentenceMap.load(SHIPPED_MAP)


def _design(pooled: np.ndarray, chunk_vectors: np.ndarray, counts: list[int]) -> np.ndarray:
    """The map's inputs, a row per sentence: its pooled vector, its chunk's vector (chunk
    ``i`` has ``counts[i]`` sentences) and a constant."""
    chunk_rows = chunk_vectors[np.repeat(np.arange(len(counts)), counts)]
    return np.hstack([pooled, chunk_rows, np.ones((len(pooled), 1), dtype=pooled.dtype)])


def _ridge(x: np.ndarray, y: np.ndarray, strength: float) -> np.ndarray:
    """Least squares ``x @ w ≈ y`` with an L2 penalty ``strength * |w|²``."""
    return np.linalg.solve(x.T @ x + strength * np.eye(x.shape[1]), x.T @ y)


class SentenceVectors:
    """Per-chunk matrices of sentence vectors (float16: they only rank within a chunk).

    Saved ones stay on disk, memory-mapped from the index folder (a question reads those
    of its 30 candidates); only the matrices of chunks added since the last save are in
    memory.
    """

    file_names = ("sentences.npz", "sentences.npy")  # chunk ids and counts; the vectors

    def __init__(self) -> None:
        self._vectors: dict[str, np.ndarray] = {}

    def index(self, chunk_ids: list[str], counts: list[int], vectors: np.ndarray) -> None:
        """Store ``vectors`` split into consecutive blocks of ``counts`` rows, one per chunk."""
        offsets = np.cumsum([0, *counts])
        for chunk_id, a, b in zip(chunk_ids, offsets[:-1], offsets[1:], strict=True):
            self._vectors[chunk_id] = vectors[a:b].astype(np.float16)

    def remove(self, chunk_ids: list[str]) -> None:
        """Forget the sentences of these chunks."""
        for chunk_id in chunk_ids:
            self._vectors.pop(chunk_id, None)

    def get(self, chunk_id: str) -> np.ndarray | None:
        """The ``(sentences, dim)`` matrix of one chunk, if stored."""
        return self._vectors.get(chunk_id)

    def save(self, folder: Path) -> None:
        """Write the chunk ids and counts, then the matrices one after another."""
        ids = list(self._vectors)
        counts = np.asarray([len(self._vectors[i]) for i in ids], dtype=np.int64)
        dim = next((m.shape[1] for m in self._vectors.values() if m.ndim == 2), 0)
        with (folder / self.file_names[0]).open("wb") as handle:
            np.savez(handle, ids=np.asarray(ids, dtype=str), counts=counts)
        write_rows(folder / self.file_names[1], (self._vectors[i] for i in ids), dim, np.float16)
        # from now on read from the file just written (see BM25sIndex.save), not memory
        self._vectors = _mapped(folder / self.file_names[1], ids, counts)

    def load(self, folder: Path) -> None:
        """Read them back; raises :class:`IndexCorruptError` when damaged."""
        try:
            with np.load(folder / self.file_names[0], allow_pickle=False) as saved:
                ids, counts = saved["ids"], saved["counts"]
            self._vectors = _mapped(folder / self.file_names[1], ids.tolist(), counts)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise IndexCorruptError(f"sentence vectors unreadable ({exc})") from exc

    def nbytes(self) -> int:
        """Memory the matrices not yet saved take, in bytes (saved ones are on disk)."""
        return sum(m.nbytes for m in self._vectors.values() if m.base is None)

    def __len__(self) -> int:
        return len(self._vectors)


# Bytes copied out of memory-mapped blocks between two releases of their mapped pages.
RELEASE_BYTES = 32 << 20


def write_rows(path: Path, blocks: Iterable[np.ndarray], width: int, dtype: type) -> None:
    """Write blocks of rows as one ``.npy`` matrix, block by block (never all in memory).

    Plain writes, not a writable memory map: the written pages do not count towards the
    process's resident memory. Blocks that are views of a read-only memory-mapped file
    (the previous save's) are read through the map, whose pages would then count: they
    are released every :data:`RELEASE_BYTES` (the file stays in the page cache).
    """
    blocks = list(blocks)  # the arrays themselves are not copied
    rows = sum(len(b) for b in blocks)
    shape = (rows, width) if width else (rows,)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False}
    maps: dict[int, mmap.mmap] = {}
    copied = 0
    with path.open("wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {**header, "shape": shape})
        for block in blocks:
            handle.write(np.ascontiguousarray(block, dtype=dtype).tobytes())
            source = _read_only_map(block)
            if source is not None:
                maps[id(source)] = source
                copied += block.nbytes
                if copied >= RELEASE_BYTES:
                    _release(maps.values())
                    copied = 0
    _release(maps.values())


def _read_only_map(array: np.ndarray) -> mmap.mmap | None:
    """The memory map ``array`` is a read-only view of (``np.load(mmap_mode="r")``), if any."""
    if array.flags.writeable:  # a copy-on-write map may hold changes: never released
        return None
    base: object = array
    while isinstance(base, np.ndarray):
        base = base.base
    return base if isinstance(base, mmap.mmap) else None


def _release(maps: Iterable[mmap.mmap]) -> None:
    """Drop the pages of read-only file maps from resident memory (re-read when touched)."""
    if not hasattr(mmap, "MADV_DONTNEED"):
        return
    for source in maps:
        with contextlib.suppress(OSError, ValueError):  # a closed map has nothing resident
            source.madvise(mmap.MADV_DONTNEED)


def _mapped(path: Path, ids: list[str], counts: np.ndarray) -> dict[str, np.ndarray]:
    """Each chunk's rows as a view of the memory-mapped matrix at ``path``."""
    matrix = np.asarray(np.load(path, mmap_mode="r"))  # a plain view: slices stay light
    if len(ids) != len(counts) or int(counts.sum()) != len(matrix):
        raise ValueError("sentence vectors do not match their counts")
    ends = np.cumsum(counts).tolist()
    return {
        chunk_id: matrix[end - count : end]
        for chunk_id, count, end in zip(ids, counts.tolist(), ends, strict=True)
    }
