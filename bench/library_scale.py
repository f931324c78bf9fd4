"""Build, interrupt, resume and query a synthetic library of up to 100,000 articles.

Run: python bench/library_scale.py [--articles 100000] [--kill-after 0.5] [--keep DIR]

The articles are re-mixed from real news text: every synthetic article takes a headline
and 6-18 sentences drawn at random from the 600 news-dev articles and the CMRC trial
paragraphs (``../shared/benchmarks``; the seeds when those are missing), so its chunks are
distinct while reading like news. They are written as ``.txt`` files, 1,000 per
sub-folder.

The builds run ``newsqa index FOLDER --embedder hash`` (the fake embedder: the real
model's build time at this size is the 1,000-article figure x 100) in a subprocess, so
peak RSS (``wait4``'s maxrss) is the build's own:

1. a clean build, to completion: wall time, articles/s, chunks/s, peak RSS;
2. a second clean build killed (SIGKILL) after ``--kill-after`` of the first one's time,
   then the same command again: it must resume (embed only what the killed run had not
   saved) and finish with the same number of chunks.

Then, in this process: opening the index, the index's in-memory size by part
(``CorpusIndex.footprint``), its size on disk, ``retrieve()`` latency (the hash embedder
embeds the question, so this is search + second stage) and the real model's time to
embed one question (the two add up to a question's latency with the real model), and
recall@10 of the vector index the factory chose against exact search.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import QUESTIONS, ROOT, cmrc, default_cmrc, folder_mib, machine, percentiles

DEFAULT_NEWS = ROOT.parent / "shared" / "benchmarks" / "news-dev.tsv"
PER_FOLDER = 1000
SENTENCE = re.compile(r"[^。！？!?]+[。！？!?]")


def sentence_pool(news: Path, cmrc_path: Path | None) -> tuple[list[str], list[str]]:
    """(headlines, sentences) to re-mix, from news-dev and CMRC (the seeds as a fallback)."""
    texts: list[str] = []
    if news.is_file():
        for line in news.read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                texts.append(line.split("\t", 1)[1])
    texts += cmrc(cmrc_path)[0]
    if not texts:
        texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))]
    sentences = [s.strip() for t in texts for s in SENTENCE.findall(t) if len(s.strip()) >= 8]
    headlines = [s.rstrip("。！？!?")[:28] for s in sentences if len(s) <= 40]
    return headlines, sentences


def write_library(folder: Path, n: int, seed: int = 7) -> int:
    """Write ``n`` synthetic articles under ``folder``; returns the characters written."""
    headlines, sentences = sentence_pool(DEFAULT_NEWS, default_cmrc())
    rng = random.Random(seed)
    written = 0
    for i in range(n):
        part = folder / f"part-{i // PER_FOLDER:03d}"
        if i % PER_FOLDER == 0:
            part.mkdir(parents=True, exist_ok=True)
        body = "".join(rng.choice(sentences) for _ in range(rng.randint(6, 18)))
        text = f"{rng.choice(headlines)}\n\n{body}\n"
        (part / f"{i:06d}.txt").write_text(text, encoding="utf-8")
        written += len(text)
    return written


def index_command(folder: Path, index_dir: Path) -> list[str]:
    """The CLI build command this bench times."""
    return [
        sys.executable,
        "-m",
        "rag.cli",
        "index",
        str(folder),
        "--embedder",
        "hash",
        "--index-dir",
        str(index_dir),
    ]


def run_build(
    folder: Path, index_dir: Path, log: Path, kill_after: float | None = None
) -> tuple[float, float, bool]:
    """Run one build; returns (seconds, peak RSS MiB, killed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(
            index_command(folder, index_dir), stdout=out, stderr=subprocess.STDOUT, env=env
        )
        killed = False
        if kill_after is not None:
            try:
                process.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                killed = True
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if not killed and process.returncode != 0:
        raise SystemExit(f"build failed ({process.returncode}); see {log}")
    return seconds, usage.ru_maxrss / 1024, killed


def embedded_count(log: Path) -> int:
    """The 'embedded N chunks' figure the CLI printed."""
    found = re.findall(r"embedded (\d+) chunks", log.read_text(errors="replace"))
    return int(found[-1]) if found else -1


def query_figures(index_dir: Path, folder: Path) -> None:
    """Open the index and print footprint, latency and recall figures."""
    sys.path.insert(0, str(ROOT))
    from rag import Config, Retriever
    from rag.bench import ExactFaissIndex, create_embedder

    config = Config(corpus_dir=folder, index_dir=index_dir, embedder="hash")
    start = time.perf_counter()
    retriever = Retriever.from_config(config)
    opened = time.perf_counter() - start
    index = retriever.index
    print(f"open (load, nothing to update): {opened:.1f} s; {len(index)} chunks")
    footprint = index.footprint()
    total = sum(footprint.values())
    parts = ", ".join(f"{name} {size / 2**20:.0f}" for name, size in footprint.items())
    print(f"index in memory: {total / 2**20:.0f} MiB ({parts} MiB)")
    print(f"index on disk: {folder_mib(index_dir):.0f} MiB")
    _, questions = cmrc(default_cmrc())
    asked = (QUESTIONS + questions)[:100]
    retriever.retrieve(asked[0])
    times = []
    for question in asked:
        retriever.clear_cache()
        start = time.perf_counter()
        retriever.retrieve(question)
        times.append((time.perf_counter() - start) * 1000)
    p50, p95 = percentiles(times)
    print(
        f"retrieve() over {len(asked)} questions (hash embedder): "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"
    )
    real = create_embedder(Config())
    real.embed_queries(["预热"])
    embed_ms = []
    for question in asked:
        start = time.perf_counter()
        real.embed_queries([question])
        embed_ms.append((time.perf_counter() - start) * 1000)
    e50, e95 = percentiles(embed_ms)
    print(f"real model embedding one question: p50 {e50:.1f} ms, p95 {e95:.1f} ms")
    print(f"question with the real model (sum): p50 {p50 + e50:.1f} ms")
    queries = index.embedder.embed_queries(asked)
    ids, vectors = index.vectors.all_vectors()
    exact = ExactFaissIndex(vectors.shape[1])
    exact.index(ids, vectors)
    _, want = exact.search(queries, 10)
    _, got = index.vectors.search(queries, 10)
    recall = np.mean([len(set(w) & set(g)) / 10 for w, g in zip(want, got, strict=True)])
    print(f"vector index {index.vectors.describe()}: recall@10 vs exact {recall:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument(
        "--kill-after", type=float, default=0.5, help="fraction of the clean build's time"
    )
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temp one)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="newsqa-scale-"))
    folder, index_dir = work / "library", work / "index"
    try:
        if not folder.is_dir():
            start = time.perf_counter()
            chars = write_library(folder, args.articles)
            print(
                f"wrote {args.articles} articles, {chars / 1e6:.1f} M characters, "
                f"in {time.perf_counter() - start:.0f} s"
            )
        shutil.rmtree(index_dir, ignore_errors=True)
        seconds, rss, _ = run_build(folder, index_dir, work / "build.log")
        chunks = embedded_count(work / "build.log")
        print(
            f"clean build: {seconds:.0f} s, {args.articles / seconds:.0f} articles/s, "
            f"{chunks / seconds:.0f} chunks/s, {chunks} chunks, peak RSS {rss:.0f} MiB"
        )
        resumed_dir = work / "index-resumed"
        shutil.rmtree(resumed_dir, ignore_errors=True)
        kill_at = seconds * args.kill_after
        _, rss_killed, killed = run_build(folder, resumed_dir, work / "killed.log", kill_at)
        seconds2, rss2, _ = run_build(folder, resumed_dir, work / "resumed.log")
        redone = embedded_count(work / "resumed.log")
        print(
            f"killed after {kill_at:.0f} s (killed: {killed}); the next run embedded {redone} of "
            f"{chunks} chunks in {seconds2:.0f} s (peak RSS {max(rss_killed, rss2):.0f} MiB)"
        )
        query_figures(index_dir, folder)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
