"""Sentence vectors: each chunk's sentences embedded at index time, to pick the answering one."""

from __future__ import annotations

import contextlib
import mmap
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .embedding import Embedder
from .errors import IndexCorruptError
from .records import Chunk
from .text import sentence_spans


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
            forward pass (:meth:`~rag.embedding.Embedder.encode_passages_with_spans`;
            embedders without token states embed them separately all the same).
        progress: show progress bars.

    Returns:
        The ``(chunks, dim)`` chunk vectors, each chunk's sentence count, and the
        ``(sentences, dim)`` sentence vectors, chunk after chunk.
    """
    texts = [c.embed_text for c in chunks]
    if mode == "pooled":
        spans = []
        for chunk, text in zip(chunks, texts, strict=True):
            shift = len(text) - len(chunk.text)  # the title line before the passage
            spans.append([(shift + a, shift + b) for a, b in sentence_spans(chunk.text)])
        vectors, groups = embedder.encode_passages_with_spans(texts, spans, progress)
        counts = [len(group) for group in spans]
        dim = vectors.shape[1] if vectors.ndim == 2 else embedder.dim
        flat = np.concatenate(groups) if groups else np.zeros((0, dim), dtype=np.float32)
        return vectors, counts, flat
    vectors = embedder.encode_passages(texts, progress)
    sentences = [chunk_sentences(c) for c in chunks]
    # Sentences in the overlap of neighbouring chunks come twice: embed each text once
    # (16% fewer sentences on news-dev).
    row_of: dict[str, int] = {}
    rows = [row_of.setdefault(s, len(row_of)) for group in sentences for s in group]
    distinct = embedder.encode_passages(list(row_of), progress)
    flat = distinct[np.asarray(rows, dtype=np.int64)] if rows else distinct
    return vectors, [len(group) for group in sentences], flat


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
