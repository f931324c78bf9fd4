"""Ray indexing speed-up from 1 to 2 worker processes (one CPU each) on this machine.

Run: python bench/ray_speedup.py [--embedder sentence-transformers] [--copies 2]

The seed articles are copied ``--copies`` times into a temporary folder (each copy under
its own names, so every file is read, chunked and embedded), then indexed into a fresh
milvus-lite data file by ``index_with_ray`` on a one-machine Ray cluster of 1, then 2,
CPUs with as many worker processes. The cluster is started before the clock runs (its
start is printed apart); the timed part includes starting the workers and loading the
model in each, reading, chunking, embedding (chunks and their sentences) and the
driver's writes into Milvus. Per-worker throughput is what the README's N-node estimate
starts from.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine, peak_rss_mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="sentence-transformers")
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--workers", default="1,2", help="worker counts to compare")
    args = parser.parse_args()

    from rag import Config
    from rag.bench import import_ray, index_with_ray

    print(f"machine: {machine()}")
    print("note: shared machine (other jobs may have been running)")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for copy in range(args.copies):
            for path in sorted((ROOT / "seeds").iterdir()):
                if path.is_file():
                    shutil.copy(path, corpus / f"c{copy}_{path.name}")
        ray = import_ray()
        seconds: dict[int, float] = {}
        for workers in [int(w) for w in args.workers.split(",")]:
            config = Config(
                corpus_dir=corpus,
                embedder=args.embedder,
                backend="milvus",
                milvus_uri=str(Path(tmp) / f"w{workers}.db"),
            )
            started = time.perf_counter()
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            cluster = time.perf_counter() - started
            try:
                report = index_with_ray(config, workers=workers)
            finally:
                ray.shutdown()
            seconds[workers] = report.seconds
            rate = report.chunks / report.seconds
            print(
                f"{workers} worker(s): cluster start {cluster:.1f} s; indexed {report.articles} "
                f"articles, {report.chunks} chunks, {len(report.failures)} failures in "
                f"{report.seconds:.1f} s = {rate:.2f} chunks/s ({rate / workers:.2f} per worker)"
            )
        first = min(seconds)
        for workers, took in seconds.items():
            if workers != first:
                print(
                    f"speed-up {first} -> {workers} workers: {seconds[first] / took:.2f}x "
                    f"(ideal {workers / first:.0f}x)"
                )
        print(f"peak RSS of the driver: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
