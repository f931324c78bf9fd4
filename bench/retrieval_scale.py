"""retrieve() latency, memory and index size at 1k, 100k and 1M chunks; recall@10 of IVF vs exact.

Run: python bench/retrieval_scale.py [--sizes 1000,100000,1000000] [--cmrc PATH]

Each size runs in a fresh subprocess (so peak memory is per size). The chunks are
synthetic but go through the real code: ``Chunk`` records whose text is 2-4 sentences
sampled from one seed chunk, a vector near the mean of those sentences' real vectors
(plus Gaussian noise, so neighbourhoods are clustered and overlapping like real
embeddings, not uniform), the sentences' real vectors as the chunk's sentence vectors,
and the lexical index over the texts (up to ``--lexical-max`` chunks; above it the
retriever runs in ``dense`` mode). They are added in blocks of 100k to a
``CorpusIndex`` built by the factory from ``Config()``, searched by ``Retriever.retrieve``
with real questions (seed questions, then CMRC questions: all distinct, so the query
cache does not help; a second pass repeats them, cached).

Recall@10 compares the index the factory chose with exact search over the same
vectors, on 200 queries: the seed questions' real vectors and held-out synthetic ones.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    QUESTIONS,
    cmrc,
    default_cmrc,
    folder_mib,
    machine,
    peak_rss_mib,
    percentiles,
    seed_chunks,
    timed,
)

BLOCK = 100_000
NOISE = 0.45  # norm of the noise added to a synthetic chunk's vector
LATENCY_QUESTIONS = 100
RECALL_QUERIES = 200


class Material:
    """Real seed sentences and vectors the synthetic chunks are sampled from."""

    def __init__(self, embedder: Any) -> None:
        from rag.bench import chunk_sentences

        chunks = seed_chunks()
        self.chunks = chunks
        self.sentences = [chunk_sentences(c) for c in chunks]
        flat = [s for group in self.sentences for s in group]
        vectors = embedder.encode_passages(flat)
        offsets = np.cumsum([0, *map(len, self.sentences)])
        self.vectors = [vectors[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]

    def block(self, start: int, count: int) -> tuple[list[Any], list[np.ndarray], np.ndarray]:
        """Synthetic chunks ``start .. start+count``: (records, sentence vectors, vectors)."""
        from rag import Chunk

        rng = np.random.default_rng(start)
        records, sentence_vectors = [], []
        vectors = np.empty((count, self.vectors[0].shape[1]), dtype=np.float32)
        for row in range(count):
            source = int(rng.integers(len(self.chunks)))
            seed, sentences = self.chunks[source], self.sentences[source]
            picked = sorted(
                rng.choice(
                    len(sentences), min(len(sentences), int(rng.integers(2, 5))), replace=False
                )
            )
            text = "".join(sentences[i] for i in picked)
            number = start + row
            records.append(
                Chunk(
                    id=f"synthetic/{number // 1000:04d}.txt#{number % 1000}",
                    file=f"synthetic/{number // 1000:04d}.txt",
                    article_index=number % 1000,
                    title=seed.title,
                    byline=seed.byline,
                    start=0,
                    end=len(text),
                    line_start=1,
                    line_end=1,
                    text=text,
                )
            )
            sentence_vectors.append(self.vectors[source][picked])
            vectors[row] = sentence_vectors[-1].mean(axis=0)
        noise = rng.normal(size=vectors.shape).astype(np.float32)
        vectors += NOISE * noise / np.linalg.norm(noise, axis=1, keepdims=True)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return records, sentence_vectors, vectors


def build(size: int, material: Material, config: Any, embedder: Any, lexical: bool) -> Any:
    """A CorpusIndex of ``size`` synthetic chunks, filled through its components' APIs."""
    from rag.bench import CorpusIndex

    index = CorpusIndex(config, embedder)
    for start in range(0, size, BLOCK):
        records, sentence_vectors, vectors = material.block(start, min(BLOCK, size - start))
        ids = np.arange(start, start + len(records), dtype=np.int64)
        index.vectors.index(ids, vectors)
        if lexical:
            index.lexical.index(ids, [r.embed_text for r in records])
        index.sentences.index(
            [r.id for r in records],
            [len(v) for v in sentence_vectors],
            np.concatenate(sentence_vectors),
        )
        index.chunks.update(zip(ids.tolist(), records, strict=True))
    index.next_id = size
    return index


def latency(retriever: Any, questions: list[str]) -> tuple[float, float]:
    """(median, p95) ms of ``retrieve`` over ``questions``."""
    times = [timed(lambda q=q: retriever.retrieve(q, 5)) * 1000 for q in questions]  # type: ignore[misc]
    return percentiles(times)


def recall_queries(material: Material, embedder: Any) -> np.ndarray:
    """Seed questions' real vectors plus held-out synthetic chunk vectors."""
    real = embedder.encode_queries(QUESTIONS)
    _, _, held_out = material.block(10**9, RECALL_QUERIES - len(real))
    return np.concatenate([real, held_out])


def recall_at_10(index: Any, size: int, material: Material, queries: np.ndarray) -> dict[str, Any]:
    """Recall@10 and search time of ``index`` against exact search on the same vectors."""
    from rag.bench import ExactFaissIndex

    exact = ExactFaissIndex(index.dim)
    for start in range(0, size, BLOCK):  # the same vectors again (seeded by block)
        _, _, vectors = material.block(start, min(BLOCK, size - start))
        exact.index(np.arange(start, start + len(vectors), dtype=np.int64), vectors)
    truth = exact.search(queries, 10)[1]
    exact_ms = per_query_ms(exact, queries)

    def recall() -> float:
        found = index.search(queries, 10)[1]
        return float(
            np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found, strict=True)])
        )

    result: dict[str, Any] = {
        "recall@10": recall(),
        "exact_ms": exact_ms,
        "index_ms": per_query_ms(index, queries),
    }
    if getattr(index, "is_ivf", False):
        default = index.nprobe
        sweep = {}
        for nprobe in (8, 16, 32, 64, 128):
            index.set_nprobe(nprobe)
            sweep[nprobe] = (round(recall(), 3), round(per_query_ms(index, queries), 2))
        index.set_nprobe(default)
        result["nprobe_sweep"] = sweep
    return result


def per_query_ms(index: Any, queries: np.ndarray) -> float:
    """Median ms of a one-query search."""
    return float(
        np.median([timed(lambda q=q: index.search(q[None, :], 30)) * 1000 for q in queries[:50]])
    )  # type: ignore[misc]


def child(size: int, cmrc_path: Path | None, lexical_max: int, save_max: int) -> dict[str, Any]:
    """Everything measured at one size (run in its own process)."""
    from rag import Config, Retriever
    from rag.bench import create_embedder

    lexical = size <= lexical_max
    work = Path(tempfile.mkdtemp(prefix="newsqa-scale-"))
    (work / "corpus").mkdir()
    config = Config(
        corpus_dir=work / "corpus", index_dir=work / "index", mode="hybrid" if lexical else "dense"
    )
    embedder = create_embedder(config)
    material = Material(embedder)
    start = time.perf_counter()
    index = build(size, material, config, embedder, lexical)
    result: dict[str, Any] = {
        "size": size,
        "mode": config.mode,
        "build_s": time.perf_counter() - start,
    }
    result["vectors"] = index.vectors.describe()

    retriever = Retriever(config, embedder, index)
    _, questions = cmrc(cmrc_path)
    asked = (QUESTIONS + questions)[:LATENCY_QUESTIONS]
    retriever.retrieve(asked[0])  # first call pays lazy initialisation (lexical matrix, …)
    embedder.query_cache.clear()
    result["latency_uncached"] = latency(retriever, asked)
    result["latency_cached"] = latency(retriever, asked)
    result["peak_rss_mib"] = peak_rss_mib()

    start = time.perf_counter()
    if size <= save_max:
        index._save()  # the real on-disk layout: manifest, chunks, vectors, lexical, sentences
        result["disk"] = {"index folder": folder_mib(index.path)}
    else:
        index.path.mkdir(parents=True)
        index.vectors.save(index.path / index.vectors.file_name)
    result["disk_vectors_mib"] = folder_mib(index.path / index.vectors.file_name)
    result["save_s"] = time.perf_counter() - start
    result.update(recall_at_10(index.vectors, size, material, recall_queries(material, embedder)))
    return result


def report(r: dict[str, Any]) -> None:
    """Print one size's figures."""
    v = r["vectors"]
    kind = v["type"] + (f" nlist={v['nlist']} nprobe={v['nprobe']}" if "nlist" in v else "")
    print(f"\n{r['size']:,} chunks — {r['mode']} retrieval, vector index {kind}")
    print(f"  build (synthetic, in memory): {r['build_s']:.1f} s; save: {r['save_s']:.1f} s")
    for label in ("uncached", "cached"):
        median, p95 = r[f"latency_{label}"]
        print(f"  retrieve latency, {label} queries: median {median:.1f} ms, p95 {p95:.1f} ms")
    print(f"  peak memory (maxrss) while serving: {r['peak_rss_mib']:.0f} MiB")
    disk = f"  on disk: vectors {r['disk_vectors_mib']:.1f} MiB"
    if "disk" in r:
        disk += f", whole index folder {r['disk']['index folder']:.1f} MiB"
    print(disk)
    print(
        f"  vector search per query: {r['index_ms']:.2f} ms (exact: {r['exact_ms']:.2f} ms); "
        f"recall@10 vs exact: {r['recall@10']:.3f}"
    )
    for nprobe, (recall, ms) in r.get("nprobe_sweep", {}).items():
        print(f"    nprobe {nprobe:>4}: recall@10 {recall:.3f}, {ms:.2f} ms/query")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument(
        "--cmrc", type=Path, default=default_cmrc(), help="CMRC 2018 JSON (questions)"
    )
    parser.add_argument("--lexical-max", type=int, default=100_000, help="largest size run hybrid")
    parser.add_argument("--save-max", type=int, default=100_000, help="largest size saved whole")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.cmrc, args.lexical_max, args.save_max)))
        return
    print(f"machine: {machine()}")
    for size in (int(s) for s in args.sizes.split(",")):
        command = [
            sys.executable,
            __file__,
            "--child",
            str(size),
            "--lexical-max",
            str(args.lexical_max),
        ]
        command += ["--save-max", str(args.save_max)]
        if args.cmrc:
            command += ["--cmrc", str(args.cmrc)]
        done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
        if done.returncode:
            print(f"\n{size:,} chunks: failed\n{done.stderr[-2000:]}")
            continue
        report(json.loads(done.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
