"""newsqa: cited retrieval question answering over Chinese news articles."""

from __future__ import annotations

from .config import Config
from .errors import (
    CorpusError,
    IndexCorruptError,
    ModelError,
    QuestionError,
    RagError,
    UnreadableFileError,
)
from .records import Article, Chunk, Citation, Hit
from .retrieval import Retriever, retrieve

__all__ = [
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
    "retrieve",
]
