"""newsqa: cited retrieval question answering over Chinese news articles."""

from __future__ import annotations

from .answer import Answer
from .calibration import Calibration, CandidateFeatures, default_calibration
from .config import K_MAX, K_MIN, Config, bundled_seeds_dir, cache_dir, check_k, check_mode
from .conversation import contextualize
from .errors import (
    CorpusError,
    IndexCorruptError,
    IndexFolderError,
    InvalidArgumentError,
    ModelError,
    QuestionError,
    RagError,
    UnreadableFileError,
)
from .fitting import LabelledQuestion, SetFigures, fit_calibration, set_figures
from .index import UpdateReport
from .records import Article, Chunk, Citation, Hit
from .retrieval import Retriever, ask, retrieve
from .text import is_english

__all__ = [
    "K_MAX",
    "K_MIN",
    "Answer",
    "Article",
    "Calibration",
    "CandidateFeatures",
    "Chunk",
    "Citation",
    "Config",
    "CorpusError",
    "Hit",
    "IndexCorruptError",
    "IndexFolderError",
    "InvalidArgumentError",
    "LabelledQuestion",
    "ModelError",
    "QuestionError",
    "RagError",
    "Retriever",
    "SetFigures",
    "UnreadableFileError",
    "UpdateReport",
    "ask",
    "bundled_seeds_dir",
    "cache_dir",
    "check_k",
    "check_mode",
    "contextualize",
    "default_calibration",
    "fit_calibration",
    "is_english",
    "retrieve",
    "set_figures",
]
