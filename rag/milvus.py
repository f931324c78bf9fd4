"""The library on Milvus: chunks, vectors and BM25 in one collection (milvus-lite or a server)."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .calibration import Calibration, calibration_to_record
from .chunking import chunk_articles
from .config import Config
from .corpus import SkippedFileWarning, excluded_files, load_bytes, read_file, scan_corpus
from .embedding import Embedder
from .errors import RagError, UnreadableFileError
from .index import FORMAT_VERSION, FileEntry, IndexRebuildWarning, UpdateReport, library_versions
from .records import Chunk
from .sentences import embed_chunks
from .text import CJK, _pinyin_words, fold, tokenize
from .vectors import default_nprobe, ideal_nlist

MILVUS_INSTALL = 'pip install "newsqa[milvus]"'

# The dense index by size, as the FAISS factory does (chosen and recorded in the metadata):
# HNSW (graph, full float vectors: ~1.7 kB per 384-d vector) up to HNSW_MAX chunks, then
# IVF_SQ8 (8-bit codes: ~0.4 kB per vector), whose lists are re-trained as the library grows.
HNSW_MAX = 1_000_000
HNSW_PARAMS = {"M": 16, "efConstruction": 200}
HNSW_MIN_EF = 64
RETRAIN_GROWTH = 4  # re-train IVF once the ideal list count is 4x the trained one

# The BM25 field's analyzer. "jieba": Milvus's own jieba analyzer over the folded chunk
# text. "tokens": the project's own tokens (jieba search words + pinyin, stopwords
# dropped, as the local bm25s index) joined by spaces, split on them by the server.
# Either way the document side also gets the pinyin of its Chinese words, as locally.
# Measured on eval/qa_seeds.jsonl's 132 Chinese questions (tests/test_milvus.py): jieba
# puts the same chunk first as the local bm25s index on 128 (97%; "tokens": 132), above
# the 90% asked, so Milvus's own analyzer is used.
LEXICAL_ANALYZER = "jieba"
ANALYZER_PARAMS: dict[str, dict[str, Any]] = {
    "jieba": {"tokenizer": "jieba"},
    "tokens": {"tokenizer": "whitespace"},
}
LITE_ANALYZER_PARAMS: dict[str, dict[str, Any]] = {  # milvus-lite has no "whitespace"
    "jieba": {"tokenizer": "jieba"},
    "tokens": {"tokenizer": "standard"},
}

TEXT_MAX = 65_535  # bytes of a Milvus VARCHAR
NAME_MAX = 4_096
INSERT_BATCH = 512
QUERY_BATCH = 1_000
ARTICLE_MAX = 16_384  # chunks read of one article (Milvus's query limit)
LOCK_WAIT = 2.0  # seconds a second local writer waits for the first before refusing
SENTENCE_CACHE = 4_096  # chunks whose sentence vectors are kept from the last searches

CHUNK_FIELDS = (
    "vid",
    "chunk_id",
    "file",
    "article_index",
    "title",
    "byline",
    "start",
    "end",
    "line_start",
    "line_end",
    "col_start",
    "col_end",
    "long_line",
    "unit",
    "date",
    "text",
)
META_KEY = "meta"
FILE_PREFIX = "file:"


class LibraryBusyError(RagError):
    """Another process writes to this milvus-lite data file (one process per file)."""


class _LiteNoise(logging.Filter):
    """Drops pymilvus's warning that milvus-lite gives no server timestamp (harmless)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to get mvccTs" not in str(record.msg)


def _pymilvus() -> Any:
    """The ``pymilvus`` module, or an ImportError naming the extra to install."""
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # no gRPC C-core log lines (keepalive notices)
    try:
        import pymilvus
    except ImportError as exc:
        raise ImportError(
            f"the Milvus backend needs pymilvus and milvus-lite; install them with: "
            f"{MILVUS_INSTALL}"
        ) from exc
    noisy = logging.getLogger("pymilvus.client.iterator.query_iterator")
    if not any(isinstance(f, _LiteNoise) for f in noisy.filters):
        noisy.addFilter(_LiteNoise())
    return pymilvus


def is_local_uri(uri: str) -> bool:
    """Whether ``uri`` names a milvus-lite data file (served in this process)."""
    return not uri.lower().startswith(("http://", "https://", "tcp://", "grpc://"))


# ----------------------------------------------------------------------------- the lock


class _LiteLocks:
    """One exclusive lock per milvus-lite data file, held by this process while it is open.

    milvus-lite serves a data file from one process only; the lock (a file beside the
    data file) turns a second process's attempt into a clear :class:`LibraryBusyError`
    after a short wait, instead of a failure deep inside the server start.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held: dict[str, tuple[int, int]] = {}  # path -> (fd, users)

    @staticmethod
    def lock_path(data_file: str) -> Path:
        path = Path(data_file)
        return path.parent / f".{path.name}.newsqa-lock"

    def acquire(self, data_file: str, wait: float) -> None:
        with self._mutex:
            if data_file in self._held:
                fd, users = self._held[data_file]
                self._held[data_file] = (fd, users + 1)
                return
            lock = self.lock_path(data_file)
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
            deadline = time.monotonic() + max(wait, 0.0)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                        os.close(fd)
                        raise LibraryBusyError(
                            f"the Milvus data file {data_file} is in use by another newsqa "
                            f"process{f' (pid {holder})' if holder else ''}: milvus-lite "
                            "serves one process per file; stop it, or share the library "
                            "through a Milvus server (--milvus-uri http://host:19530)"
                        ) from None
                    time.sleep(0.1)
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            self._held[data_file] = (fd, 1)

    def release(self, data_file: str) -> bool:
        """Drop one user; returns whether the lock was given up (no user left)."""
        with self._mutex:
            if data_file not in self._held:
                return False
            fd, users = self._held.pop(data_file)
            if users > 1:
                self._held[data_file] = (fd, users - 1)
                return False
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            return True


_LOCKS = _LiteLocks()


# ----------------------------------------------------------------------------- reading files


@dataclass
class ReadResult:
    """One article file read, cleaned and chunked (or why it could not be)."""

    name: str
    sha256: str = ""
    size: int = 0
    mtime_ns: int = 0
    chunks: list[Chunk] = field(default_factory=list)
    error: str = ""  # why it was not indexed
    unchanged: bool = False  # same content as indexed: only its mtime is new


def read_article_file(
    name: str, path: Path, config: Config, known_sha256: str | None = None
) -> ReadResult:
    """Read, clean and chunk one file, as the local index does (no embedding).

    Args:
        name: the file's name relative to the corpus folder.
        path: where it is.
        config: gives the chunk size and overlap.
        known_sha256: the digest indexed before, if any.

    Returns:
        The chunks, ``unchanged`` when the content is the indexed one, or ``error``.
    """
    try:
        stat = path.stat()
        data = read_file(path, name)
        digest = hashlib.sha256(data).hexdigest()
        if digest == known_sha256:
            return ReadResult(name, digest, stat.st_size, stat.st_mtime_ns, unchanged=True)
        articles = load_bytes(data, name)
    except (UnreadableFileError, OSError) as exc:
        return ReadResult(name, error=str(exc).removeprefix(f"{name}: "))
    chunks = chunk_articles(articles, config.chunk_size, config.chunk_overlap)
    return ReadResult(name, digest, stat.st_size, stat.st_mtime_ns, chunks)


@dataclass
class FilePlan:
    """What a scan of the corpus folder found changed, before anything is read."""

    report: UpdateReport
    to_read: dict[str, Path]  # new files and files whose size or mtime changed
    known: dict[str, FileEntry]


@dataclass
class EmbeddedFile:
    """A file ready to be written: its chunks, their vectors and sentence vectors."""

    name: str
    entry: FileEntry
    chunks: list[Chunk]
    vectors: np.ndarray  # (chunks, dim) float32
    sentences: list[np.ndarray]  # per chunk: (sentences, dim)
    lexical: list[str] | None = None  # per chunk: :func:`lexical_text` (None: made on writing)


def embed_file(
    read: ReadResult, embedder: Embedder, sentence_vectors: str = "separate"
) -> EmbeddedFile:
    """Embed a read file's chunks and their sentences, as the local index does.

    Args:
        read: from :func:`read_article_file`, without error.
        embedder: the library's embedder.
        sentence_vectors: ``config.sentence_vectors`` (``"separate"`` or ``"pooled"``).

    Returns:
        The file ready for :meth:`MilvusCorpusIndex.write_files`.
    """
    if read.chunks:
        vectors, counts, flat = embed_chunks(embedder, read.chunks, sentence_vectors)
    else:
        vectors, counts, flat = np.zeros((0, embedder.dim), np.float32), [], None
    offsets = np.cumsum([0, *counts])
    sentences = [
        flat[a:b] if flat is not None else np.zeros((0, embedder.dim), np.float32)
        for a, b in zip(offsets[:-1], offsets[1:], strict=True)
    ]
    entry = FileEntry(sha256=read.sha256, size=read.size, mtime_ns=read.mtime_ns)
    lexical = [lexical_text(c.embed_text) for c in read.chunks]  # here: on the workers
    return EmbeddedFile(read.name, entry, read.chunks, vectors, sentences, lexical)


def lexical_text(text: str, analyzer: str = LEXICAL_ANALYZER, document: bool = True) -> str:
    """What the BM25 analyzer is given of a chunk (``document``) or a question.

    Args:
        text: the chunk's ``embed_text`` or the question.
        analyzer: ``"jieba"`` (the folded text, for Milvus's jieba analyzer) or
            ``"tokens"`` (the project's own tokens, space-separated).
        document: a chunk: the pinyin of its Chinese words is added, as the local index
            does, so that names asked about in English (Wudalianchi) are found.

    Returns:
        The text for the ``lexical`` field or the BM25 search.
    """
    if analyzer == "tokens":
        return " ".join(tokenize(text, "jieba", pinyin=document))
    folded = fold(text, cache=False)
    if not document:
        return folded
    pinyin = [word for run in CJK.findall(folded) for word in _pinyin_words(run)]
    return f"{folded}\n{' '.join(pinyin)}" if pinyin else folded


def pack_sentences(matrix: np.ndarray) -> str:
    """A chunk's sentence vectors as base64 float16 (Milvus has no vector-array field)."""
    return base64.b64encode(np.ascontiguousarray(matrix, dtype=np.float16).tobytes()).decode()


def unpack_sentences(blob: str, dim: int) -> np.ndarray:
    """The ``(sentences, dim)`` float16 matrix :func:`pack_sentences` stored."""
    return np.frombuffer(base64.b64decode(blob), dtype=np.float16).reshape(-1, dim)


def _fit(text: str, limit: int = TEXT_MAX) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes (a VARCHAR's bound)."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def _file_key(name: str) -> str:
    """A file's key in filters: hex, so no file name needs escaping in a filter string."""
    return hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()


def _in_filter(field_name: str, values: list[str]) -> str:
    quoted = ", ".join(f'"{v}"' for v in values)  # hex keys: nothing to escape
    return f"{field_name} in [{quoted}]"


# ----------------------------------------------------------------------------- the index


class _SentenceStore:
    """The sentence vectors of the chunks the last searches returned (read with them)."""

    def __init__(self) -> None:
        self._vectors: dict[str, np.ndarray] = {}

    def put(self, chunk_id: str, matrix: np.ndarray) -> None:
        if len(self._vectors) >= SENTENCE_CACHE:
            self._vectors.clear()
        self._vectors[chunk_id] = matrix

    def get(self, chunk_id: str) -> np.ndarray | None:
        """The ``(sentences, dim)`` matrix of one chunk, if a search returned it."""
        return self._vectors.get(chunk_id)

    def clear(self) -> None:
        self._vectors.clear()


class _StoredChunks(Mapping[int, Chunk]):
    """Every chunk of the collection, read on demand (nothing is held in memory)."""

    def __init__(self, index: MilvusCorpusIndex) -> None:
        self._index = index

    def __getitem__(self, vid: int) -> Chunk:
        rows = self._index.client.get(
            self._index.chunks_name, ids=[int(vid)], output_fields=list(CHUNK_FIELDS)
        )
        if not rows:
            raise KeyError(vid)
        return _chunk(rows[0])

    def __iter__(self) -> Iterator[int]:
        for row in self._index.iter_rows(self._index.chunks_name, "vid >= 0", ["vid"]):
            yield int(row["vid"])

    def __len__(self) -> int:
        return len(self._index)

    def values(self) -> Iterator[Chunk]:  # type: ignore[override]
        """Every chunk, in storage order (one paged query)."""
        for row in self._index.iter_rows(self._index.chunks_name, "vid >= 0", CHUNK_FIELDS):
            yield _chunk(row)


def _chunk(entity: dict[str, Any]) -> Chunk:
    return Chunk(
        id=entity["chunk_id"],
        **{name: entity[name] for name in CHUNK_FIELDS if name not in ("vid", "chunk_id")},
    )


class MilvusCorpusIndex:
    """A corpus folder's chunks in a Milvus collection, kept in step with the folder's files.

    Offers what :class:`~rag.retrieval.Retriever` uses of the local
    :class:`~rag.index.CorpusIndex` (``open``, ``update``, ``search``, ``lexical_search``,
    ``mentions``, ``folded_article``, ``sentences``, ``chunks``, ``files``, ...), so the
    second stage and the answer decision run unchanged on what Milvus returns.

    Three collections per library: ``<name>`` (one row per chunk: its record, dense
    vector, BM25 sparse vector made by Milvus's BM25 function, sentence vectors as a
    float16 blob), and ``<name>_files`` (the per-file manifest and the library's
    metadata), so that several chat servers can share one library on a Milvus server.
    """

    def __init__(self, config: Config, embedder: Embedder, lock_wait: float = LOCK_WAIT) -> None:
        pymilvus = _pymilvus()
        self.config = config
        self.embedder = embedder
        self.uri = config.milvus_target
        self.chunks_name = config.collection_name
        self.files_name = f"{self.chunks_name}_files"
        self.local = is_local_uri(self.uri)
        self.analyzer = LEXICAL_ANALYZER
        if self.local:
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            _LOCKS.acquire(self.uri, lock_wait)
        try:
            token = config.milvus_token or os.environ.get("NEWSQA_MILVUS_TOKEN", "")
            self.client = pymilvus.MilvusClient(uri=self.uri, token=token)
        except Exception:
            if self.local:
                _LOCKS.release(self.uri)
            raise
        self.files: dict[str, FileEntry] = {}
        self.next_id = 0
        self.calibration: Calibration | None = None
        self.vector_index: dict[str, Any] = {}
        self.sentences = _SentenceStore()
        self.chunks = _StoredChunks(self)
        self._count = 0
        self._mentions: dict[str, bool] = {}
        self._folded: dict[tuple[str, int], str] = {}
        self._openings: dict[tuple[str, int], Chunk] = {}
        self._stale: set[str] = set()
        self._closed = False

    @property
    def path(self) -> str:
        """Where the library lives, as shown to a user: the URI and collection."""
        return f"{self.uri} (collection {self.chunks_name})"

    @property
    def own_names(self) -> frozenset[str]:
        """The collections this library writes."""
        return frozenset((self.chunks_name, self.files_name))

    def close(self) -> None:
        """Close the connection; a milvus-lite file is given up for other processes."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.client.close()
        if self.local and _LOCKS.release(self.uri):
            with contextlib.suppress(ImportError):
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(self.uri)

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        config: Config,
        embedder: Embedder,
        progress: bool = False,
        lock_wait: float = LOCK_WAIT,
    ) -> tuple[MilvusCorpusIndex, UpdateReport]:
        """Connect to the library's collections (creating them) and apply the folder's changes.

        A library built with other settings, another model or format is rebuilt with
        an :class:`IndexRebuildWarning` saying why.

        Args:
            config: the shared configuration (``backend="milvus"``).
            embedder: the embedder the library is (to be) built with.
            progress: show a progress bar while embedding.
            lock_wait: seconds to wait for another process using the same milvus-lite file.

        Returns:
            The up-to-date index and a report of what was done.

        Raises:
            LibraryBusyError: another process has the milvus-lite file open.
            ImportError: pymilvus is not installed (names the extra).
        """
        index = cls(config, embedder, lock_wait)
        try:
            reason = index.connect()
            report = index.update(progress)
        except BaseException:
            index.close()
            raise
        report.rebuilt = reason
        return index, report

    def connect(self) -> str:
        """Load the library's metadata, or (re)create its collections.

        Returns:
            Why the library was (re)created ("" when the stored one was loaded).
        """
        reason = self._load_or_reason()
        if reason:
            if reason != "no index yet":
                warnings.warn(
                    f"library {self.path}: {reason}; rebuilding it",
                    IndexRebuildWarning,
                    stacklevel=3,
                )
            self._create()
        return reason

    def _load_or_reason(self) -> str:
        if not (
            self.client.has_collection(self.chunks_name)
            and self.client.has_collection(self.files_name)
        ):
            return "no index yet"
        self.client.load_collection(self.files_name)
        rows = self.client.get(self.files_name, ids=[META_KEY], output_fields=["data"])
        if not rows:
            return "no index yet"
        meta = rows[0]["data"]
        if meta.get("format_version") != FORMAT_VERSION:
            return f"format version {meta.get('format_version')} is not {FORMAT_VERSION}"
        if meta.get("params") != self.config.index_params():
            return "settings changed"
        if meta.get("dim") != self.embedder.dim:
            return f"vector size {meta.get('dim')} differs from the model's {self.embedder.dim}"
        if meta.get("analyzer") != self.analyzer:
            return f"BM25 analyzer {meta.get('analyzer')!r} is not {self.analyzer!r}"
        self.next_id = int(meta["next_id"])
        self.vector_index = dict(meta.get("vectors", {}))
        if meta.get("calibration"):
            with contextlib.suppress(RagError, KeyError, TypeError, ValueError):
                self.calibration = Calibration.from_dict(meta["calibration"])
        self.client.load_collection(self.chunks_name)
        self._read_files()
        self._count = self._row_count()
        return ""

    def _create(self) -> None:
        """Drop this library's collections (only those: they carry its name) and make them anew."""
        pymilvus = _pymilvus()
        data_type = pymilvus.DataType
        for name in (self.chunks_name, self.files_name):
            if self.client.has_collection(name):
                self.client.drop_collection(name)
        schema = self.client.create_schema(auto_id=False)
        schema.add_field("vid", data_type.INT64, is_primary=True)
        schema.add_field("chunk_id", data_type.VARCHAR, max_length=NAME_MAX)
        schema.add_field("file", data_type.VARCHAR, max_length=NAME_MAX)
        schema.add_field("file_key", data_type.VARCHAR, max_length=40)
        schema.add_field("article_index", data_type.INT64)
        for name in ("title", "byline", "unit", "date"):
            schema.add_field(name, data_type.VARCHAR, max_length=TEXT_MAX)
        for name in ("start", "end", "line_start", "line_end", "col_start", "col_end"):
            schema.add_field(name, data_type.INT64)
        schema.add_field("long_line", data_type.BOOL)
        schema.add_field("text", data_type.VARCHAR, max_length=TEXT_MAX)
        schema.add_field(
            "lexical",
            data_type.VARCHAR,
            max_length=TEXT_MAX,
            enable_analyzer=True,
            analyzer_params=self._analyzer_params(),
        )
        schema.add_field("sparse", data_type.SPARSE_FLOAT_VECTOR)
        schema.add_field("dense", data_type.FLOAT_VECTOR, dim=self.embedder.dim)
        schema.add_field("sentences", data_type.VARCHAR, max_length=TEXT_MAX)
        schema.add_function(
            pymilvus.Function(
                name="bm25",
                function_type=pymilvus.FunctionType.BM25,
                input_field_names=["lexical"],
                output_field_names=["sparse"],
            )
        )
        self.vector_index = _wanted_vector_index(0, {})
        params = self.client.prepare_index_params()
        params.add_index("dense", **_index_args(self.vector_index))
        params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        self.client.create_collection(self.chunks_name, schema=schema, index_params=params)

        files = self.client.create_schema(auto_id=False)
        files.add_field("key", data_type.VARCHAR, is_primary=True, max_length=NAME_MAX)
        files.add_field("data", data_type.JSON)
        files.add_field("v", data_type.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
        params = self.client.prepare_index_params()
        params.add_index("v", index_type="FLAT", metric_type="L2")
        self.client.create_collection(self.files_name, schema=files, index_params=params)
        self.files, self.next_id, self._count = {}, 0, 0
        self.calibration = calibration_to_record(self.config.calibration)
        self._save_meta()

    def _analyzer_params(self) -> dict[str, Any]:
        return (LITE_ANALYZER_PARAMS if self.local else ANALYZER_PARAMS)[self.analyzer]

    def _read_files(self) -> None:
        files: dict[str, FileEntry] = {}
        for row in self.iter_rows(self.files_name, f'key like "{FILE_PREFIX}%"', ["key", "data"]):
            files[row["key"].removeprefix(FILE_PREFIX)] = FileEntry(**row["data"])
        self.files = files

    def _save_meta(self) -> None:
        meta = {
            "format_version": FORMAT_VERSION,
            "params": self.config.index_params(),
            "model": self.embedder.name,
            "dim": self.embedder.dim,
            "analyzer": self.analyzer,
            "vectors": self.vector_index,
            "next_id": self.next_id,
            "corpus": str(self.config.corpus),
            "versions": library_versions(),
            "calibration": self.calibration.to_dict() if self.calibration else None,
        }
        self.client.upsert(self.files_name, [{"key": META_KEY, "data": meta, "v": [0.0, 0.0]}])

    def iter_rows(self, collection: str, expr: str, output_fields: Any) -> Iterator[dict[str, Any]]:
        """Every row matching ``expr``, read a page at a time.

        Args:
            collection: the collection.
            expr: a Milvus filter expression.
            output_fields: the fields to read.

        Returns:
            An iterator over the rows.
        """
        if self.local:  # milvus-lite answers any size at once and has no query iterator
            yield from self.client.query(collection, filter=expr, output_fields=list(output_fields))
            return
        iterator = self.client.query_iterator(
            collection, batch_size=QUERY_BATCH, filter=expr, output_fields=list(output_fields)
        )
        try:
            while True:
                page = iterator.next()
                if not page:
                    break
                yield from page
        finally:
            iterator.close()

    def _row_count(self) -> int:
        rows = self.client.query(self.chunks_name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    # ------------------------------------------------------------------ updating

    def plan(self) -> FilePlan:
        """Scan the corpus folder against the stored per-file manifest (re-read first, as
        another machine may have written to a shared server meanwhile).

        Returns:
            The files to read and the deleted ones (in ``report.deleted``).
        """
        self._read_files()
        exclude = Path(self.uri) if self.local else None
        scan = scan_corpus(
            self.config.corpus, exclude=exclude, left_out=excluded_files(self.config)
        )
        report = UpdateReport(skipped=dict(scan.skipped))
        to_read: dict[str, Path] = {}
        for name, path in scan.files.items():
            entry = self.files.get(name)
            try:
                stat = path.stat()
            except OSError as exc:
                report.skipped[name] = str(exc)
                continue
            if entry is not None and name in self._stale:
                self.files[name] = FileEntry(**{**asdict(entry), "sha256": ""})
            elif entry and entry.size == stat.st_size and entry.mtime_ns == stat.st_mtime_ns:
                continue
            to_read[name] = path
        report.deleted = sorted(set(self.files) - set(scan.files))
        return FilePlan(report, to_read, dict(self.files))

    def mark_stale(self, names: list[str] | None = None) -> list[str]:
        """Have the next update re-read and re-embed these files (None: every file).

        Args:
            names: indexed file names; others are ignored.

        Returns:
            The names marked.
        """
        marked = sorted(self.files if names is None else set(names) & set(self.files))
        self._stale.update(marked)
        return marked

    def update(
        self,
        progress: bool = False,
        swap_lock: contextlib.AbstractContextManager[Any] | None = None,
    ) -> UpdateReport:
        """Read and embed what changed in the corpus folder and write it into Milvus.

        Each changed file's chunks are deleted by a filter on the file and its new
        chunks inserted; its manifest row is written last, so an interrupted update is
        redone for that file at the next one.

        Args:
            progress: show a progress bar while embedding.
            swap_lock: held while the writes are made (questions wait meanwhile).

        Returns:
            What was added, changed, deleted and skipped.
        """
        plan = self.plan()
        report = plan.report
        ready: list[EmbeddedFile] = []
        renewed: dict[str, int] = {}
        names = list(plan.to_read.items())
        if progress and names:
            from tqdm.auto import tqdm

            names = list(tqdm(names, desc="embedding files", unit="file"))
        for name, path in names:
            known = plan.known.get(name)
            read = read_article_file(name, path, self.config, known.sha256 if known else None)
            if read.error:
                warnings.warn(f"{name}: {read.error}", SkippedFileWarning, stacklevel=2)
                report.skipped[name] = read.error
            elif read.unchanged:
                renewed[name] = read.mtime_ns
            else:
                (report.changed if known else report.added).append(name)
                ready.append(embed_file(read, self.embedder, self.config.sentence_vectors))
        report.embedded = sum(len(f.chunks) for f in ready)
        with swap_lock or contextlib.nullcontext():
            report.removed = self.remove_files(report.deleted) + self.replaced(ready)
            self.write_files(ready)
            self.renew_files(renewed)
            self.finish()
        self._stale.clear()
        return report

    def remove_files(self, names: list[str]) -> int:
        """Delete these files' chunks and manifest rows.

        Returns:
            How many chunks were removed.
        """
        if not names:
            return 0
        removed = sum(len(self.files[n].chunk_ids) for n in names if n in self.files)
        self._delete_chunks(names)
        keys = [FILE_PREFIX + n for n in names]
        for start in range(0, len(keys), QUERY_BATCH):
            self.client.delete(self.files_name, ids=keys[start : start + QUERY_BATCH])
        for name in names:
            self.files.pop(name, None)
        self._changed()
        return removed

    def replaced(self, files: list[EmbeddedFile]) -> int:
        """How many stored chunks writing ``files`` replaces (those of changed files)."""
        return sum(len(self.files[f.name].chunk_ids) for f in files if f.name in self.files)

    def _delete_chunks(self, names: list[str]) -> None:
        keys = [_file_key(n) for n in names]
        for start in range(0, len(keys), QUERY_BATCH):
            self.client.delete(
                self.chunks_name, filter=_in_filter("file_key", keys[start : start + QUERY_BATCH])
            )

    def write_files(self, files: list[EmbeddedFile]) -> None:
        """Replace these files' chunks by the given ones (delete by file, then insert).

        The ids are reserved in the metadata before the insert, and a file's manifest
        row is written after its chunks, so an interrupted write is redone cleanly.

        Args:
            files: embedded files (from :func:`embed_file`).
        """
        if not files:
            return
        self._delete_chunks([f.name for f in files])
        first = self.next_id
        self.next_id += sum(len(f.chunks) for f in files)
        self._save_meta()  # reserve the ids before using them
        rows: list[dict[str, Any]] = []
        vid = first
        for f in files:
            f.entry.chunk_ids = list(range(vid, vid + len(f.chunks)))
            lexical = f.lexical or [""] * len(f.chunks)
            for chunk, vector, sentences, text in zip(
                f.chunks, f.vectors, f.sentences, lexical, strict=True
            ):
                text = text or lexical_text(chunk.embed_text, self.analyzer)
                rows.append(self._row(vid, chunk, vector, sentences, text))
                vid += 1
        for start in range(0, len(rows), INSERT_BATCH):
            self.client.insert(self.chunks_name, rows[start : start + INSERT_BATCH])
        self.client.upsert(
            self.files_name,
            [
                {"key": FILE_PREFIX + f.name, "data": asdict(f.entry), "v": [0.0, 0.0]}
                for f in files
            ],
        )
        for f in files:
            self.files[f.name] = f.entry
        self._changed()

    def renew_files(self, renewed: dict[str, int]) -> None:
        """Record the new mtime of files whose content did not change."""
        if not renewed:
            return
        for name, mtime_ns in renewed.items():
            self.files[name].mtime_ns = mtime_ns
        self.client.upsert(
            self.files_name,
            [
                {"key": FILE_PREFIX + n, "data": asdict(self.files[n]), "v": [0.0, 0.0]}
                for n in renewed
            ],
        )

    def finish(self) -> None:
        """After writes: re-count, re-build the dense index if its size calls for another
        type, record the metadata and flush."""
        self._count = self._row_count()
        wanted = _wanted_vector_index(self._count, self.vector_index)
        if wanted != self.vector_index:
            self.client.release_collection(self.chunks_name)
            self.client.drop_index(self.chunks_name, "dense")
            params = self.client.prepare_index_params()
            params.add_index("dense", **_index_args(wanted))
            self.client.create_index(self.chunks_name, params)
            self.client.load_collection(self.chunks_name)
            self.vector_index = wanted
        self._save_meta()
        self.client.flush(self.chunks_name)
        self.client.flush(self.files_name)

    def _row(
        self, vid: int, chunk: Chunk, vector: np.ndarray, sentences: np.ndarray, lexical: str
    ) -> dict[str, Any]:
        record = chunk.to_dict()
        record["chunk_id"] = record.pop("id")
        for name in ("title", "byline", "unit", "date", "text"):
            record[name] = _fit(record[name])
        blob = pack_sentences(sentences)
        return {
            "vid": vid,
            **record,
            "file": _fit(chunk.file, NAME_MAX),
            "chunk_id": _fit(chunk.id, NAME_MAX),
            "file_key": _file_key(chunk.file),
            "lexical": _fit(lexical) or " ",
            "dense": np.asarray(vector, dtype=np.float32).tolist(),
            "sentences": blob if len(blob) <= TEXT_MAX else "",  # too many: not stored
        }

    def _lexical_text(self, text: str) -> str:
        return lexical_text(text, self.analyzer, document=False)

    def _changed(self) -> None:
        self._mentions.clear()
        self._folded.clear()
        self._openings.clear()
        self.sentences.clear()

    def record_calibration(self, calibration: Calibration) -> None:
        """Record ``calibration`` in the library's metadata (nothing is re-embedded)."""
        self.calibration = calibration
        self._save_meta()
        self.client.flush(self.files_name)

    # ------------------------------------------------------------------ reading

    def _hits(self, row: list[Any], lexical: bool = False) -> list[tuple[Chunk, float]]:
        found = []
        for hit in row:
            entity = hit["entity"]
            score = abs(float(hit["distance"])) if lexical else float(hit["distance"])
            if lexical and score <= 0:
                continue
            chunk = _chunk(entity)
            blob = entity.get("sentences")
            if blob:
                self.sentences.put(chunk.id, unpack_sentences(blob, self.embedder.dim))
            found.append((chunk, score))
        return found

    def _dense_params(self, k: int) -> dict[str, Any]:
        if self.vector_index.get("index_type") == "IVF_SQ8":
            return {"metric_type": "IP", "params": {"nprobe": self.vector_index["nprobe"]}}
        return {"metric_type": "IP", "params": {"ef": max(HNSW_MIN_EF, k)}}

    def search(self, query_vectors: np.ndarray, k: int) -> list[list[tuple[Chunk, float]]]:
        """Nearest chunks for each query vector, best first.

        Args:
            query_vectors: ``(n, dim)`` unit vectors.
            k: how many chunks per query.

        Returns:
            For each query, ``(chunk, cosine score)`` pairs.
        """
        if not self._count:
            return [[] for _ in range(len(query_vectors))]
        result = self.client.search(
            self.chunks_name,
            data=[np.asarray(v, dtype=np.float32).tolist() for v in query_vectors],
            anns_field="dense",
            limit=k,
            output_fields=[*CHUNK_FIELDS, "sentences"],
            search_params=self._dense_params(k),
        )
        return [self._hits(row) for row in result]

    def lexical_search(self, query: str, k: int) -> list[tuple[Chunk, float]]:
        """The chunks sharing the most (rare) words with ``query``, best first (Milvus BM25).

        Args:
            query: the question text.
            k: how many chunks.

        Returns:
            ``(chunk, BM25 score)`` pairs; fewer than ``k`` when few chunks share a word.
        """
        text = self._lexical_text(query)
        if not self._count or not text.strip():
            return []
        result = self.client.search(
            self.chunks_name,
            data=[text],
            anns_field="sparse",
            limit=k,
            output_fields=[*CHUNK_FIELDS, "sentences"],
            search_params={"metric_type": "BM25"},
        )
        return self._hits(result[0], lexical=True)

    def hybrid_search(
        self, query_vector: np.ndarray, query: str, k: int, rrf_k: int = 60
    ) -> list[tuple[Chunk, float]]:
        """Dense and BM25 search fused by Milvus in one call (``hybrid_search``, RRF).

        Args:
            query_vector: the question's unit vector.
            query: the question text.
            k: how many chunks.
            rrf_k: the reciprocal-rank-fusion constant.

        Returns:
            ``(chunk, fused score)`` pairs, best first.
        """
        pymilvus = _pymilvus()
        if not self._count:
            return []
        requests = [
            pymilvus.AnnSearchRequest(
                data=[np.asarray(query_vector, dtype=np.float32).tolist()],
                anns_field="dense",
                param=self._dense_params(k),
                limit=k,
            )
        ]
        text = self._lexical_text(query)
        if text.strip():
            requests.append(
                pymilvus.AnnSearchRequest(
                    data=[text], anns_field="sparse", param={"metric_type": "BM25"}, limit=k
                )
            )
        result = self.client.hybrid_search(
            self.chunks_name,
            requests,
            ranker=pymilvus.RRFRanker(rrf_k),
            limit=k,
            output_fields=[*CHUNK_FIELDS, "sentences"],
        )
        return self._hits(result[0])

    def mentions(self, name: str) -> bool:
        """Whether any indexed text holds a word (two characters or more) of ``name``."""
        known = self._mentions.get(name)
        if known is None:
            words = [t for t in tokenize(name, "jieba") if len(t) >= 2]
            known = any(self._has_word(word) for word in words)
            self._mentions[name] = known
        return known

    def _has_word(self, word: str) -> bool:
        text = self._lexical_text(word)
        if not self._count or not text.strip():
            return False
        result = self.client.search(
            self.chunks_name,
            data=[text],
            anns_field="sparse",
            limit=1,
            output_fields=["vid"],
            search_params={"metric_type": "BM25"},
        )
        return any(abs(float(hit["distance"])) > 0 for hit in result[0])

    def folded_article(self, chunk: Chunk) -> str:
        """The title and text of the article ``chunk`` belongs to, folded (cached)."""
        key = (chunk.file, chunk.article_index)
        folded = self._folded.get(key)
        if folded is None:
            article = self.article_chunks(chunk)
            folded = fold(article[0].title + " ".join(c.text for c in article), cache=False)
            self._folded[key] = folded
        return folded

    def article_opening(self, chunk: Chunk) -> Chunk:
        """The first chunk of the article ``chunk`` belongs to (its lead; cached)."""
        key = (chunk.file, chunk.article_index)
        opening = self._openings.get(key)
        if opening is None:
            opening = self._openings[key] = self.article_chunks(chunk)[0]
        return opening

    def article_chunks(self, chunk: Chunk) -> list[Chunk]:
        """All chunks of the article ``chunk`` belongs to, in text order."""
        expr = f'file_key == "{_file_key(chunk.file)}" and article_index == {chunk.article_index}'
        rows = self.client.query(
            self.chunks_name, filter=expr, output_fields=list(CHUNK_FIELDS), limit=ARTICLE_MAX
        )
        chunks = [_chunk(row) for row in rows]
        return sorted(chunks, key=lambda c: c.start) or [chunk]

    def __len__(self) -> int:
        return self._count


def _wanted_vector_index(count: int, current: dict[str, Any]) -> dict[str, Any]:
    """The dense index for ``count`` chunks: HNSW up to :data:`HNSW_MAX`, then IVF_SQ8
    (kept until the ideal list count grows :data:`RETRAIN_GROWTH`-fold)."""
    if count <= HNSW_MAX:
        return {"index_type": "HNSW", "params": dict(HNSW_PARAMS), "hnsw_max": HNSW_MAX}
    nlist = ideal_nlist(count)
    if current.get("index_type") == "IVF_SQ8" and nlist < RETRAIN_GROWTH * current["nlist"]:
        return current
    return {
        "index_type": "IVF_SQ8",
        "params": {"nlist": nlist},
        "nlist": nlist,
        "nprobe": default_nprobe(nlist),
        "trained_on": count,
        "hnsw_max": HNSW_MAX,
    }


def _index_args(described: dict[str, Any]) -> dict[str, Any]:
    return {
        "index_type": described["index_type"],
        "metric_type": "IP",
        "params": dict(described["params"]),
    }
