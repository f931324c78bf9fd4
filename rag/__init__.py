"""newsqa: cited retrieval question answering over Chinese news articles."""

from __future__ import annotations

from .answer import Answer
from .calibration import FEATURES, Calibration, CandidateFeatures, default_calibration
from .config import K_MAX, K_MIN, Config, bundled_seeds_dir, cache_dir, check_k, check_mode
from .conversation import contextualize
from .errors import (
    CorpusError,
    IndexCorruptError,
    IndexFolderError,
    InvalidArgumentError,
    LibraryError,
    ModelError,
    QuestionError,
    RagError,
    UnknownArticleError,
    UnreadableFileError,
    UnsafePathError,
)
from .fitting import LabelledQuestion, SetFigures, fit_calibration, set_figures
from .index import PROGRESS_DESC, UpdateReport
from .milvus import LibraryBusyError  # pymilvus itself is imported only when used
from .records import Article, Chunk, Citation, Hit
from .retrieval import (
    IndexedArticle,
    LibraryArticle,
    LibraryChange,
    Retriever,
    article_id,
    ask,
    retrieve,
)
from .sentences import SentenceMap, fit_sentence_map
from .text import is_english

__all__ = [
    "FEATURES",
    "PROGRESS_DESC",
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
    "IndexedArticle",
    "IndexFolderError",
    "InvalidArgumentError",
    "LibraryBusyError",
    "LabelledQuestion",
    "LibraryArticle",
    "LibraryChange",
    "LibraryError",
    "ModelError",
    "QuestionError",
    "RagError",
    "Retriever",
    "SentenceMap",
    "SetFigures",
    "UnknownArticleError",
    "UnreadableFileError",
    "UnsafePathError",
    "UpdateReport",
    "article_id",
    "ask",
    "bundled_seeds_dir",
    "cache_dir",
    "check_k",
    "check_mode",
    "contextualize",
    "default_calibration",
    "fit_calibration",
    "fit_sentence_map",
    "is_english",
    "retrieve",
    "set_figures",
]
