"""Indexing on a Ray cluster: Ray Data reads, chunks and embeds; the driver writes to Milvus."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config
from .embedding import Embedder, create_embedder
from .errors import CorpusError, InvalidArgumentError
from .index import FileEntry, UpdateReport
from .milvus import EmbeddedFile, MilvusCorpusIndex, embed_file, read_article_file
from .records import Chunk

RAY_INSTALL = 'pip install "newsqa[ray]"'
FILES_PER_BATCH = 4  # files a worker reads, chunks and embeds at a time
WRITE_CHUNKS = 2_048  # chunks the driver gathers before one write into Milvus
LISTED = 20  # file names a report line shows (a run may add 100,000 files)


def import_ray() -> Any:
    """The ``ray`` module with its usage statistics off, or an ImportError naming the extra."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # before the import: Ray reads it then
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"distributed indexing needs Ray; install it with: {RAY_INSTALL}"
        ) from exc
    return ray


@dataclass
class RayIndexReport:
    """What a distributed indexing run did."""

    where: str
    workers: int
    update: UpdateReport
    articles: int = 0  # articles written (of new and changed files)
    chunks: int = 0  # chunks written
    failures: dict[str, str] = field(default_factory=dict)  # file -> why it was not indexed
    seconds: float = 0.0
    total_chunks: int = 0  # chunks in the library afterwards

    def summary(self) -> str:
        """The report as terminal lines."""
        u = self.update
        lines = [
            f"index {self.where}: {self.total_chunks} chunks; this run on {self.workers} Ray "
            f"worker(s) in {self.seconds:.1f} s: {self.articles} articles, {self.chunks} chunks "
            f"written, {len(self.failures)} failures",
        ]
        if u.rebuilt:
            lines.append(f"  rebuilt: {u.rebuilt}")
        for label, names in (("added", u.added), ("changed", u.changed), ("deleted", u.deleted)):
            if names:
                more = len(names) - LISTED
                tail = f" … and {more} more" if more > 0 else ""
                lines.append(f"  {label}: {', '.join(names[:LISTED])}{tail}")
        problems = [(f"failed: {n}", r) for n, r in self.failures.items()] + [
            (f"skipped: {n}", r) for n, r in u.skipped.items() if n not in self.failures
        ]
        lines += [f"  {what} ({reason})" for what, reason in problems[:LISTED]]
        if len(problems) > LISTED:
            lines.append(f"  … and {len(problems) - LISTED} more failed or skipped files")
        return "\n".join(lines)


class _ReadAndEmbed:
    """A Ray worker: reads, cleans and chunks a batch of files, then embeds the chunks.

    One per worker process (an actor), so the model is loaded once per worker.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = Config.from_dict(config)
        self.embedder: Embedder = create_embedder(self.config)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {key: [] for key in _COLUMNS}
        for name, path, known in zip(batch["name"], batch["path"], batch["known"], strict=True):
            read = read_article_file(str(name), Path(str(path)), self.config, str(known) or None)
            head = {
                "name": read.name,
                "sha256": read.sha256,
                "size": read.size,
                "mtime_ns": read.mtime_ns,
                "error": read.error,
                "unchanged": read.unchanged,
                "n_chunks": len(read.chunks),
            }
            if read.error or read.unchanged or not read.chunks:
                _append(out, head, "", b"", b"", "")
                continue
            done = embed_file(read, self.embedder, self.config.sentence_vectors)
            for chunk, vector, sentences, lexical in zip(
                done.chunks, done.vectors, done.sentences, done.lexical or [], strict=True
            ):
                _append(
                    out,
                    head,
                    json.dumps(chunk.to_dict(), ensure_ascii=False),
                    np.asarray(vector, dtype=np.float32).tobytes(),
                    np.asarray(sentences, dtype=np.float16).tobytes(),
                    lexical,
                )
        return out


_COLUMNS = (
    "name",
    "sha256",
    "size",
    "mtime_ns",
    "error",
    "unchanged",
    "n_chunks",
    "chunk",
    "vector",
    "sentences",
    "lexical",
)


def _append(
    out: dict[str, list[Any]],
    head: dict[str, Any],
    chunk: str,
    vector: bytes,
    sentences: bytes,
    lexical: str,
) -> None:
    for key, value in head.items():
        out[key].append(value)
    out["chunk"].append(chunk)
    out["vector"].append(vector)
    out["sentences"].append(sentences)
    out["lexical"].append(lexical)


@dataclass
class _Gathering:
    """The chunks of one file as they come back from the workers."""

    entry: FileEntry
    expected: int
    chunks: list[Chunk] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    sentences: list[np.ndarray] = field(default_factory=list)
    lexical: list[str] = field(default_factory=list)


def index_with_ray(
    config: Config,
    address: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> RayIndexReport:
    """Bring the library's Milvus collection up to date with its folder, on a Ray cluster.

    The driver scans the folder against the per-file manifest stored in Milvus; Ray
    Data hands the new and changed files to ``workers`` worker processes (one CPU
    each), which read, clean, chunk and embed them (``map_batches``); the driver
    writes each finished file into Milvus (delete by file, insert) as batches arrive.
    The files must be readable at the same path on every node (a shared folder).

    Args:
        config: the shared configuration, with ``backend="milvus"``.
        address: the Ray cluster (``"auto"``: the one this machine belongs to;
            ``None``: start a one-machine cluster, stopped afterwards).
        workers: worker processes (default: every CPU of the cluster).
        progress: show a progress bar of the files embedded.
        on_progress: called with ``(files done, files to do, chunks written)``.

    Returns:
        What was indexed: articles, chunks, failures with reasons.

    Raises:
        InvalidArgumentError: the backend is not Milvus.
        CorpusError: the article folder does not exist.
        ImportError: Ray or pymilvus is not installed (names the extra).
    """
    if config.backend != "milvus":
        raise InvalidArgumentError(
            "distributed indexing writes into Milvus: add --backend milvus (and --milvus-uri)"
        )
    if not config.corpus.is_dir():
        raise CorpusError(
            f"article folder not found: {config.corpus} (give an existing folder of articles)"
        )
    if workers is not None and workers < 1:
        raise InvalidArgumentError(f"workers must be at least 1, not {workers}")
    ray = import_ray()
    started = time.perf_counter()
    index = MilvusCorpusIndex(config, create_embedder(config))
    own_cluster = False
    try:
        reason = index.connect()
        plan = index.plan()
        report = plan.report
        report.rebuilt = reason
        if not ray.is_initialized():
            options: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if address is None:  # a one-machine cluster
                options["num_cpus"] = workers or os.cpu_count() or 1
            ray.init(address=address, **options)
            own_cluster = address is None
        workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        result = RayIndexReport(index.path, workers, report)
        report.removed = index.remove_files(report.deleted)
        if plan.to_read:
            _run(
                ray, index, config, plan.to_read, plan.known, workers, result, progress, on_progress
            )
        index.finish()
        result.total_chunks = len(index)
        result.seconds = time.perf_counter() - started
        return result
    finally:
        index.close()
        if own_cluster:
            ray.shutdown()


def _run(
    ray: Any,
    index: MilvusCorpusIndex,
    config: Config,
    to_read: dict[str, Path],
    known: dict[str, FileEntry],
    workers: int,
    result: RayIndexReport,
    progress: bool,
    on_progress: Callable[[int, int, int], None] | None,
) -> None:
    """Read, chunk and embed ``to_read`` on the workers; write what comes back."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    items = [
        {"name": name, "path": str(path), "known": known[name].sha256 if name in known else ""}
        for name, path in to_read.items()
    ]
    dataset = ray.data.from_items(
        items, override_num_blocks=max(1, min(len(items), workers * 8))
    ).map_batches(
        _ReadAndEmbed,
        fn_constructor_kwargs={"config": config.to_dict()},
        batch_size=FILES_PER_BATCH,
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
        batch_format="numpy",
    )
    report = result.update
    dim = index.embedder.dim
    gathering: dict[str, _Gathering] = {}
    ready: list[EmbeddedFile] = []
    renewed: dict[str, int] = {}
    done = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), desc="files", unit="file", file=sys.stderr)

    def finished_file() -> None:
        nonlocal done
        done += 1
        if bar is not None:
            bar.update(1)
        if on_progress is not None:
            on_progress(done, len(items), result.chunks)

    def flush(force: bool = False) -> None:
        if ready and (force or sum(len(f.chunks) for f in ready) >= WRITE_CHUNKS):
            report.removed += index.replaced(ready)
            index.write_files(ready)
            result.chunks += sum(len(f.chunks) for f in ready)
            result.articles += sum(len({c.article_index for c in f.chunks}) for f in ready)
            ready.clear()

    for batch in dataset.iter_batches(batch_size=256, batch_format="numpy"):
        for row in range(len(batch["name"])):
            name = str(batch["name"][row])
            if batch["error"][row]:
                result.failures[name] = report.skipped[name] = str(batch["error"][row])
                finished_file()
                continue
            if batch["unchanged"][row]:
                renewed[name] = int(batch["mtime_ns"][row])
                finished_file()
                continue
            entry = FileEntry(
                sha256=str(batch["sha256"][row]),
                size=int(batch["size"][row]),
                mtime_ns=int(batch["mtime_ns"][row]),
            )
            expected = int(batch["n_chunks"][row])
            file = gathering.setdefault(name, _Gathering(entry, expected))
            if expected:
                file.chunks.append(Chunk.from_dict(json.loads(str(batch["chunk"][row]))))
                file.vectors.append(np.frombuffer(batch["vector"][row], dtype=np.float32))
                file.sentences.append(
                    np.frombuffer(batch["sentences"][row], dtype=np.float16).reshape(-1, dim)
                )
                file.lexical.append(str(batch["lexical"][row]))
            if len(file.chunks) == file.expected:
                del gathering[name]
                (report.changed if name in known else report.added).append(name)
                vectors = np.stack(file.vectors) if file.vectors else np.zeros((0, dim), np.float32)
                order = sorted(
                    range(len(file.chunks)),
                    key=lambda i: (file.chunks[i].article_index, file.chunks[i].start),
                )
                ready.append(
                    EmbeddedFile(
                        name,
                        file.entry,
                        [file.chunks[i] for i in order],
                        vectors[order],
                        [file.sentences[i] for i in order],
                        [file.lexical[i] for i in order],
                    )
                )
                report.embedded += expected
                finished_file()
                flush()
    flush(force=True)
    index.renew_files(renewed)
    for name in gathering:  # a worker died mid-file: nothing of it was written
        result.failures[name] = report.skipped[name] = "its chunks did not all come back"
    if bar is not None:
        bar.close()
