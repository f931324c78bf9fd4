"""newsqa: cited retrieval question answering over Chinese news articles."""

from __future__ import annotations

from .answer import Answer
from .config import Config, bundled_seeds_dir, cache_dir
from .conversation import contextualize, is_english
from .errors import (
    CorpusError,
    IndexCorruptError,
    ModelError,
    QuestionError,
    RagError,
    UnreadableFileError,
)
from .records import Article, Chunk, Citation, Hit
from .retrieval import Retriever, ask, retrieve

__all__ = [
    "Answer",
    "Article",
    "Chunk",
    "Citation",
    "Config",
    "CorpusError",
    "Hit",
    "IndexCorruptError",
    "ModelError",
    "QuestionError",
    "RagError",
    "Retriever",
    "UnreadableFileError",
    "ask",
    "bundled_seeds_dir",
    "cache_dir",
    "contextualize",
    "is_english",
    "retrieve",
]
