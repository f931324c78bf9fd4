"""Helpers shared by the benchmark scripts: the texts, timing, memory, machine line."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/x.py` from a checkout
    sys.path.insert(0, str(ROOT))

DEFAULT_CMRC = ROOT.parent / "shared" / "benchmarks" / "cmrc2018_trial.json"

# Questions about the seed articles (Chinese and English).
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


def seed_chunks() -> list[Any]:
    """The chunks of the bundled seed articles, as the index builds them."""
    from rag import Config
    from rag.bench import chunk_articles, load_folder

    config = Config()
    chunks: list[Any] = []
    for articles in load_folder(config.corpus).values():
        chunks += chunk_articles(articles, config.chunk_size, config.chunk_overlap)
    return chunks


def cmrc(path: Path | None) -> tuple[list[str], list[str]]:
    """CMRC 2018 (SQuAD format) paragraphs and questions; empty when no file.

    Args:
        path: the JSON file, or ``None``.

    Returns:
        ``(paragraphs, questions)``.
    """
    if path is None or not path.is_file():
        return [], []
    data = json.loads(path.read_text(encoding="utf-8"))
    paragraphs = [p for article in data["data"] for p in article["paragraphs"]]
    return [p["context"] for p in paragraphs], [q["question"] for p in paragraphs for q in p["qas"]]


def default_cmrc() -> Path | None:
    """The shared CMRC trial file when it is there."""
    return DEFAULT_CMRC if DEFAULT_CMRC.is_file() else None


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def percentiles(values_ms: list[float]) -> tuple[float, float]:
    """(median, p95) of a list of milliseconds."""
    ordered = sorted(values_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (``getrusage`` maxrss), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def folder_mib(path: Path) -> float:
    """Size of the files under ``path`` (or of the file ``path``), in MiB."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def machine() -> str:
    """One line describing the machine and how busy it is."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{cpus} CPUs ({model}), load average {load}, Python {platform.python_version()}"
