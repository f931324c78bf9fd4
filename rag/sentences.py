"""Sentence vectors: each chunk's sentences embedded at index time, to pick the answering one."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import IndexCorruptError
from .records import Chunk
from .text import sentence_spans


def chunk_sentences(chunk: Chunk) -> list[str]:
    """The sentences of a chunk, as :func:`~rag.ranking.sentence_spans` splits them."""
    return [chunk.text[a:b] for a, b in sentence_spans(chunk.text)]


class SentenceVectors:
    """Per-chunk matrices of sentence vectors (float16: they only rank within a chunk)."""

    file_name = "sentences.npz"

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
        """Write all matrices into ``folder/sentences.npz``."""
        ids = list(self._vectors)
        counts = np.asarray([len(self._vectors[i]) for i in ids], dtype=np.int64)
        blocks = [self._vectors[i] for i in ids]
        matrix = np.concatenate(blocks) if blocks else np.zeros((0, 0), dtype=np.float16)
        with (folder / self.file_name).open("wb") as handle:
            np.savez(handle, ids=np.asarray(ids, dtype=str), counts=counts, vectors=matrix)

    def load(self, folder: Path) -> None:
        """Read them back; raises :class:`IndexCorruptError` when damaged."""
        try:
            with np.load(folder / self.file_name, allow_pickle=False) as saved:
                ids, counts, matrix = saved["ids"], saved["counts"], saved["vectors"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise IndexCorruptError(f"sentence vectors unreadable ({exc})") from exc
        if int(counts.sum()) != len(matrix):
            raise IndexCorruptError("sentence vectors do not match their counts")
        self._vectors = {}
        self.index(ids.tolist(), counts.tolist(), matrix)

    def nbytes(self) -> int:
        """Memory the matrices take, in bytes (for benchmarks)."""
        return sum(m.nbytes + 112 for m in self._vectors.values())

    def __len__(self) -> int:
        return len(self._vectors)
