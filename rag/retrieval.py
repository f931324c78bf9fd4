"""Retrieval: question → ranked, cited passages with the sentence that best answers it."""

from __future__ import annotations

import os
import re
import threading
import unicodedata
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from .answer import Answer, decide_found
from .config import Config
from .embedding import Embedder, create_embedder
from .errors import CorpusError, QuestionError
from .corpus import load_bytes
from .index import CorpusIndex, UpdateReport
from .records import Chunk, Citation, Hit

SENTENCE = re.compile(r"[^。！？!?；;\n]+(?:[。！？!?；;]+[”’」』)）]*)?")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
QUANTITY_QUESTION = re.compile(r"多少|几|多大|多长|多高|how (?:many|much|long|large|big)", re.I)
# Question words carry no evidence; dropping them keeps them out of the overlap score.
QUESTION_WORDS = re.compile(
    r"是多少|多少|什么|哪些|哪个|哪里|哪|怎么|如何|为什么|吗|呢|请问|是否|几|谁|[？?。，,！!\s]"
)


class QuestionTooLongWarning(UserWarning):
    """A question over ``max_question_chars`` was truncated."""


def clean_question(question: str, max_chars: int) -> str:
    """Validate a question: strip it, refuse empty ones, truncate huge ones.

    Args:
        question: what the user asked.
        max_chars: longer questions are cut to this length with a warning.

    Returns:
        The question to search with.

    Raises:
        QuestionError: the question is empty or only whitespace.
    """
    if not isinstance(question, str):
        raise QuestionError(f"question must be text, not {type(question).__name__}")
    question = question.strip()
    if not question:
        raise QuestionError("the question is empty")
    if len(question) > max_chars:
        warnings.warn(
            f"question of {len(question)} characters truncated to {max_chars}",
            QuestionTooLongWarning,
            stacklevel=3,
        )
        question = question[:max_chars]
    return question


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Offsets of the sentences of ``text`` (ending punctuation and closing quote kept)."""
    spans = []
    for match in SENTENCE.finditer(text):
        start, end = match.span()
        while start < end and text[start].isspace():
            start += 1
        if start < end:
            spans.append((start, end))
    return spans or [(0, len(text))]


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def lexical_sentence_scores(question: str, sentences: list[str]) -> list[float]:
    """How well each sentence matches the question's words and numbers."""
    q = QUESTION_WORDS.sub(" ", _normalise(question))
    grams = {g for g in _bigrams(q) if " " not in g}
    numbers = set(NUMBER.findall(q))
    wants_quantity = bool(QUANTITY_QUESTION.search(question))
    scores = []
    for sentence in sentences:
        s = _normalise(sentence)
        score = len(grams & _bigrams(s)) / max(1, len(grams))
        score += 0.5 * len(numbers & set(NUMBER.findall(s)))
        if wants_quantity and not NUMBER.search(s):
            score *= 0.5  # "how much/many" is answered by a sentence with a number
        scores.append(score)
    return scores


class Retriever:
    """Answers questions over one corpus folder with cited passages.

    Build one with :meth:`from_folder` (or :meth:`from_config`); it opens or builds the
    folder's index and keeps the model and index in memory.
    """

    def __init__(self, config: Config, embedder: Embedder, index: CorpusIndex) -> None:
        self.config = config
        self.embedder = embedder
        self.index = index
        self.last_update = UpdateReport()
        self._lock = threading.RLock()

    @classmethod
    def from_config(cls, config: Config, progress: bool = False) -> Retriever:
        """Open (building or updating as needed) the index described by ``config``.

        Args:
            config: the shared configuration.
            progress: show a progress bar while embedding.

        Returns:
            A ready retriever.
        """
        if not config.corpus.is_dir():
            raise CorpusError(f"corpus folder not found: {config.corpus}")
        embedder = create_embedder(config)
        index, report = CorpusIndex.open(config, embedder, progress=progress)
        retriever = cls(config, embedder, index)
        retriever.last_update = report
        return retriever

    @classmethod
    def from_folder(
        cls, folder: str | Path, config: Config | None = None, progress: bool = False
    ) -> Retriever:
        """A retriever over any folder of ``.txt``/``.md`` articles.

        Args:
            folder: the corpus folder.
            config: other settings (the folder replaces ``config.corpus_dir``).
            progress: show a progress bar while embedding.

        Returns:
            A ready retriever.
        """
        config = (config or Config()).with_(corpus_dir=Path(folder))
        return cls.from_config(config, progress=progress)

    def update(self, progress: bool = False) -> UpdateReport:
        """Apply files added, changed or deleted in the corpus folder since opening."""
        with self._lock:
            self.last_update = self.index.update(progress=progress)
            return self.last_update

    def add_document(self, filename: str, data: bytes) -> UpdateReport:
        """Add one article file to the corpus folder and index it at once.

        The content is checked before anything is written; the file is written under a
        fresh name if the folder already holds one by that name, atomically; if indexing
        fails the file is removed again, so the index and folder stay as they were.

        Args:
            filename: the uploaded file's name (``.txt`` or ``.md``).
            data: its raw content (UTF-8 or GBK/GB18030).

        Returns:
            What the update did; ``added`` names the stored file.

        Raises:
            UnreadableFileError: wrong type, binary, undecodable, empty or oversized.
        """
        name = Path(filename).name.lstrip(".")  # hidden files are not indexed
        load_bytes(data, name)  # refuse bad content before touching the folder
        with self._lock:
            target = _free_name(self.config.corpus, name)
            tmp = target.with_name(f".{target.name}.part")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            try:
                return self.update()
            except BaseException:
                target.unlink(missing_ok=True)
                raise

    def articles(self) -> list[tuple[str, str]]:
        """The indexed articles as ``(file, title)`` pairs, in corpus order."""
        with self._lock:
            chunks = list(self.index.chunks.values())
        seen = {(c.file, c.article_index): c.title for c in chunks}
        return [(file, seen[(file, i)]) for file, i in sorted(seen)]

    def retrieve(self, question: str, k: int | None = None) -> list[Hit]:
        """The passages that best answer ``question``, best first.

        Args:
            question: in Chinese or English.
            k: how many passages (default ``config.k``).

        Returns:
            Up to ``k`` hits, each with its citation and answering-sentence span.

        Raises:
            QuestionError: the question is empty.
        """
        question = clean_question(question, self.config.max_question_chars)
        k = k or self.config.k
        if k < 1:
            raise ValueError("k must be at least 1")
        query = self.embedder.encode_queries([question])
        with self._lock:
            ranked = self.index.search(query, k)[0]
        return self._hits(question, query[0], ranked)

    def ask(self, question: str, k: int | None = None) -> Answer:
        """Retrieve and decide whether the articles answer ``question``.

        Args:
            question: in Chinese or English.
            k: how many passages (default ``config.k``).

        Returns:
            The :class:`Answer`: hits, best sentence, and ``found``.
        """
        hits = self.retrieve(question, k)
        return Answer(question=question.strip(), hits=hits,
                      found=decide_found(hits, self.config.min_score))

    def _hits(
        self, question: str, query: np.ndarray, ranked: list[tuple[Chunk, float]]
    ) -> list[Hit]:
        spans = [sentence_spans(chunk.text) for chunk, _ in ranked]
        best = [
            self._best_sentence(question, query, chunk, s)
            for (chunk, _), s in zip(ranked, spans, strict=True)
        ]
        return [
            Hit(
                rank=rank,
                score=score,
                text=chunk.text,
                citation=Citation(
                    file=chunk.file,
                    title=chunk.title,
                    byline=chunk.byline,
                    line_start=chunk.line_start,
                    line_end=chunk.line_end,
                    start=chunk.start,
                    end=chunk.end,
                ),
                chunk_id=chunk.id,
                sentence_start=span[0],
                sentence_end=span[1],
            )
            for rank, ((chunk, score), span) in enumerate(zip(ranked, best, strict=True), start=1)
        ]

    def _best_sentence(
        self, question: str, query: np.ndarray, chunk: Chunk, spans: list[tuple[int, int]]
    ) -> tuple[int, int]:
        sentences = [chunk.text[a:b] for a, b in spans]
        scores = lexical_sentence_scores(question, sentences)
        if len(spans) > 1 and max(scores) <= 0.15:
            # No shared words (e.g. an English question): compare meanings instead.
            scores = list(self.embedder.encode_passages(sentences) @ query)
        return spans[int(np.argmax(scores))]


@lru_cache(maxsize=1)
def default_retriever() -> Retriever:
    """The retriever over the bundled seed articles, built on first use."""
    return Retriever.from_config(Config())


def retrieve(question: str, k: int = 5) -> list[Hit]:
    """Ask the bundled seed articles; the index is built on first use and cached.

    Args:
        question: in Chinese or English.
        k: how many passages.

    Returns:
        Up to ``k`` cited hits, best first.

    Raises:
        QuestionError: the question is empty (a ``ValueError``).
    """
    return default_retriever().retrieve(question, k)


def ask(question: str, k: int = 5) -> Answer:
    """Ask the bundled seed articles and get an :class:`Answer`.

    Args:
        question: in Chinese or English.
        k: how many passages.

    Returns:
        Hits, the best answering sentence, and whether the articles answer at all.

    Raises:
        QuestionError: the question is empty (a ``ValueError``).
    """
    return default_retriever().ask(question, k)


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``stem-2.txt``, ``stem-3.txt`` … if that is taken."""
    target = folder / name
    stem, suffix = target.stem, target.suffix
    n = 2
    while target.exists():
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    return target
