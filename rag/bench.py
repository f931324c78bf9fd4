"""The supported surface for benchmark scripts (``bench/``): rag's lower-level parts.

Why it exists: the benchmarks measure pieces that the public API (``rag``'s ``__all__``)
does not expose on their own: the embedder without an index, the seed chunks without
embedding them, an index filled with synthetic chunks, exact vector search to compute
recall against. Importing them from here, not from rag's private modules, keeps
``bench/`` to one declared dependency on rag's internals, and lets those modules be
split or renamed by changing this file only (``tests/test_layers.py`` checks both).

Names here may change with the index format or rag's internals, without notice or
deprecation: they are for the benches, not for applications, which should use ``rag``.
Names that are public already (``Config``, ``Chunk``, ``Retriever``, ...) are imported
from ``rag``, not from here.

Nothing inside rag imports this module; it may import any of rag's modules.
"""

from __future__ import annotations

from .chunking import chunk_articles
from .config import SENTENCE_VECTORS
from .corpus import load_folder
from .distributed import import_ray, index_with_ray
from .embedding import create_embedder
from .index import CorpusIndex, FileEntry
from .milvus import EmbeddedFile, MilvusCorpusIndex
from .sentences import chunk_sentences
from .vectors import ExactFaissIndex

__all__ = [
    "CorpusIndex",
    "EmbeddedFile",
    "FileEntry",
    "MilvusCorpusIndex",
    "import_ray",
    "index_with_ray",
    "ExactFaissIndex",
    "SENTENCE_VECTORS",
    "chunk_articles",
    "chunk_sentences",
    "create_embedder",
    "load_folder",
]
