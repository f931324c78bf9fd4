"""Build and query a 200,000-chunk library on milvus-lite: build time, query p50/p95, memory.

Run: python bench/milvus_scale.py [--chunks 200000] [--files-per-write 100]

The chunks are synthetic but go through the real code: ``Chunk`` records whose text is
2-4 sentences sampled from one seed chunk, 100 chunks per synthetic file; their vectors
are the fake (hash) embedder's: each sentence's hash vector is real, a chunk's is the
normalised mean of its sentences' plus Gaussian noise (so neighbourhoods overlap as real
embeddings do). They are written by ``MilvusCorpusIndex.write_files`` (delete by file +
insert, Milvus's BM25 function analysing the text with jieba) into a fresh milvus-lite
data file, then searched: Milvus dense search, BM25 search, ``hybrid_search`` (RRF), and
``Retriever.retrieve`` end to end (both searches, fusion, the second stage) with the seed
questions and their variants (all distinct). milvus-lite runs inside this process, so the
peak resident memory includes the server.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from _common import QUESTIONS, folder_mib, machine, peak_rss_mib, percentiles, seed_chunks

CHUNKS_PER_FILE = 100
NOISE = 0.45
QUERIES = 100


def synthetic_files(total: int, embedder: Any, seed: int = 7) -> list[Any]:
    """``total`` chunks in files of :data:`CHUNKS_PER_FILE`, ready to write."""
    from rag.bench import EmbeddedFile, FileEntry, chunk_sentences

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    base = seed_chunks()
    groups = [chunk_sentences(c) for c in base]
    flat = sorted({s for g in groups for s in g})
    vectors = dict(zip(flat, embedder.encode_passages(flat), strict=True))
    files = []
    for f in range(0, total, CHUNKS_PER_FILE):
        name = f"synthetic/{f // CHUNKS_PER_FILE:05d}.txt"
        chunks, dense, sentences = [], [], []
        for i in range(min(CHUNKS_PER_FILE, total - f)):
            source = rng.randrange(len(base))
            group = groups[source] or [base[source].text]
            start = rng.randrange(len(group))
            picked = group[start : start + rng.randint(2, 4)]
            text = "".join(picked)
            chunk = replace(
                base[source],
                id=f"{name}#0:{i}",
                file=name,
                start=i * 300,
                end=i * 300 + len(text),
                text=text,
            )
            matrix = np.stack([vectors.get(s, vectors[flat[0]]) for s in picked])
            dim = matrix.shape[1]
            mean = matrix.mean(axis=0) + noise.normal(0, NOISE / np.sqrt(dim), dim)
            chunks.append(chunk)
            dense.append(mean / np.linalg.norm(mean))
            sentences.append(matrix)
        entry = FileEntry(sha256=f"{f:064x}", size=0, mtime_ns=0)
        files.append(EmbeddedFile(name, entry, chunks, np.asarray(dense, np.float32), sentences))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=200_000)
    parser.add_argument("--files-per-write", type=int, default=100)
    args = parser.parse_args()

    from rag import Config, Retriever
    from rag.bench import MilvusCorpusIndex, create_embedder

    print(f"machine: {machine()}")
    print("note: shared machine (other jobs were running); milvus-lite in-process, pure Python")
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(
            corpus_dir=Path(tmp),
            embedder="hash",
            backend="milvus",
            milvus_uri=str(Path(tmp) / "scale.db"),
            collection="scale",
        )
        embedder = create_embedder(config)
        started = time.perf_counter()
        files = synthetic_files(args.chunks, embedder)
        print(f"{args.chunks} synthetic chunks made in {time.perf_counter() - started:.1f} s")

        index = MilvusCorpusIndex(config, embedder)
        index.connect()
        started = time.perf_counter()
        step = args.files_per_write
        for at in range(0, len(files), step):
            index.write_files(files[at : at + step])
            if (at // step) % 10 == 9:
                done = min(len(files), at + step) * CHUNKS_PER_FILE
                rate = done / (time.perf_counter() - started)
                print(f"  {done} chunks written ({rate:.0f} chunks/s)", flush=True)
        written = time.perf_counter() - started
        index.finish()
        build = time.perf_counter() - started
        print(
            f"build: {build:.1f} s for {len(index)} chunks ({len(index) / build:.0f} chunks/s; "
            f"inserts {written:.1f} s, index build + flush {build - written:.1f} s); "
            f"dense index {index.vector_index['index_type']}"
        )
        del files

        # the seed questions and variants of them, all distinct
        questions = [f"{q} ({n})" if n else q for n in range(10) for q in QUESTIONS][:QUERIES]
        vectors = embedder.encode_queries(questions)
        timings: dict[str, list[float]] = {"dense": [], "bm25": [], "hybrid": [], "retrieve": []}
        retriever = Retriever(config, embedder, index)
        retriever.retrieve(questions[0], 5)  # warm-up: jieba, the second stage
        calls = {
            "dense": lambda q, v: index.search(v[None, :], 30),
            "bm25": lambda q, v: index.lexical_search(q, 30),
            "hybrid": lambda q, v: index.hybrid_search(v, q, 30),
            "retrieve": lambda q, v: retriever.retrieve(q, 5),
        }
        for question, vector in zip(questions, vectors, strict=True):
            for name, call in calls.items():
                start = time.perf_counter()
                call(question, vector)
                timings[name].append((time.perf_counter() - start) * 1000)
        for name, values in timings.items():
            p50, p95 = percentiles(values)
            what = "top 5, end to end" if name == "retrieve" else "top 30"
            print(
                f"query {name:8s} ({len(values)} questions, {what}): "
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"
            )
        index.close()
        print(f"data file on disk: {folder_mib(Path(config.milvus_target)):.0f} MiB")
        print(f"peak RSS of this process (incl. milvus-lite): {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
