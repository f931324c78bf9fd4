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

from .answer import Answer, decide, threshold_kind
from .calibration import Calibration, CandidateFeatures, resolve_calibration
from .config import Config, check_k, check_mode
from .corpus import load_bytes
from .embedding import Embedder, create_embedder
from .errors import CorpusError, QuestionError, UnreadableFileError
from .index import CorpusIndex, UpdateReport
from .ranking import (
    Candidate,
    QueryTerms,
    candidate_features,
    fuse,
    mark_sentences,
    rerank,
)
from .records import Chunk, Citation, Hit
from .text import (
    chinese_for_english,
    fold,
    has_searchable_word,
    is_english,
    normalise_query,
    tokenize,
)

NO_SEARCHABLE_WORD = "问题里没有可以检索的词 (the question has no word to search for)"


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
        QuestionError: the question is not text, is empty, or has no word to search for.
    """
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, not {type(question).__name__}")
    # lone surrogates (undecodable bytes from a terminal) cannot be searched or shown
    question = question.encode("utf-8", "replace").decode("utf-8").strip()
    if not question:
        raise QuestionError("问题不能为空 (the question is empty)")
    if len(question) > max_chars:
        warnings.warn(
            f"question of {len(question)} characters truncated to {max_chars}",
            QuestionTooLongWarning,
            stacklevel=3,
        )
        question = question[:max_chars]
    if not has_searchable_word(question):
        raise QuestionError(NO_SEARCHABLE_WORD)
    return question


WARM_UP_QUESTION = "哈尔滨市的项目总投资是多少？"  # names a place, asks an amount: every stage runs


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
        self.calibration = resolve_calibration(config.calibration, index.calibration)

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
            raise CorpusError(
                f"article folder not found: {config.corpus} (give an existing folder of articles)"
            )
        embedder = create_embedder(config)
        index, report = CorpusIndex.open(config, embedder, progress=progress)
        retriever = cls(config, embedder, index)
        retriever.last_update = report
        return retriever

    @classmethod
    def from_folder(
        cls, folder: str | Path, config: Config | None = None, progress: bool = False
    ) -> Retriever:
        """A retriever over any folder of articles (see ``corpus.READERS`` for the formats).

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
        """Apply files added, changed or deleted in the corpus folder since opening.

        Questions are answered from the current index while the changes are embedded;
        the new part is swapped in under a short lock.
        """
        report = self.index.update(progress=progress, swap_lock=self._lock)
        self.last_update = report
        return report

    def add_document(self, filename: str, data: bytes, progress: bool = False) -> UpdateReport:
        """Add one article file to the corpus folder and index it at once.

        The content is checked before anything is written; the file is written under a
        fresh name if the folder already holds one by that name, atomically; if indexing
        fails the file is removed again, so the index and folder stay as they were.
        Questions are answered meanwhile.

        Args:
            filename: the uploaded file's name (a type ``corpus.READERS`` reads); only
                its last part is used, so it is always stored directly in the corpus folder.
            data: its raw content (text: UTF-8, UTF-16 with BOM or GBK/GB18030).
            progress: show a progress bar while embedding.

        Returns:
            What the update did; ``added`` names the stored file.

        Raises:
            UnreadableFileError: bad name, wrong type, binary, undecodable, empty or
                oversized content, or the folder cannot be written.
        """
        if not isinstance(filename, str) or not isinstance(data, bytes | bytearray):
            raise UnreadableFileError(
                "add_document needs a file name (text) and its content (bytes)"
            )
        name = _upload_name(filename)
        load_bytes(bytes(data), name)  # refuse bad content before touching the folder
        target = tmp = None
        try:
            with self._lock:
                target = _free_name(self.config.corpus, name)
                tmp = target.with_name(f".{target.name}.part")
                tmp.write_bytes(data)
                os.replace(tmp, target)
            return self.update(progress=progress)
        except BaseException as exc:
            for created in (tmp, target):
                if created is not None:
                    created.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise UnreadableFileError(f"{name}: cannot be stored ({exc.strerror})") from exc
            raise

    def warm_up(self) -> None:
        """Run one question through every stage, so a user's first is not the slow one.

        The first question otherwise pays for lazy loading (jieba's part-of-speech
        dictionary, OpenCC, the model's first forward pass): about 0.5 s against 20 ms;
        the first English one, for CC-CEDICT: about 1 s more.
        """
        self.ask(WARM_UP_QUESTION, 1)
        if self.config.expand_english:
            chinese_for_english("warm up")  # reads the dictionary (about 1 s) now, not then

    def clear_cache(self) -> None:
        """Forget cached question vectors (e.g. before timing a run of questions)."""
        self.embedder.query_cache.clear()

    def articles(self) -> list[tuple[str, str]]:
        """The indexed articles as ``(file, title)`` pairs, in corpus order."""
        with self._lock:
            chunks = list(self.index.chunks.values())
        seen = {(c.file, c.article_index): c.title for c in chunks}
        return [(file, seen[(file, i)]) for file, i in sorted(seen)]

    def retrieve(self, question: str, k: int | None = None, mode: str | None = None) -> list[Hit]:
        """The passages that best answer ``question``, best first.

        Args:
            question: in Chinese or English.
            k: how many passages, from :data:`~rag.config.K_MIN` to
                :data:`~rag.config.K_MAX` (default ``config.k``).
            mode: ``"dense"``, ``"lexical"`` or ``"hybrid"`` for this call (default
                ``config.mode``); the index holds what all three need.

        Returns:
            Up to ``k`` hits, each with its citation and answering-sentence span; a
            passage found in several files is one hit, the others in ``also_cited``.

        Raises:
            QuestionError: the question is empty or has no word to search for.
            InvalidArgumentError: ``k`` out of range or an unknown ``mode``.
        """
        return self._search(question, k, mode)[1]

    def _search(
        self, question: str, k: int | None, mode: str | None
    ) -> tuple[QueryTerms, list[Hit]]:
        """:meth:`retrieve`, also returning the question's terms (``ask`` needs them)."""
        k = self.config.k if k is None else check_k(k)
        terms, candidates = self._candidates(question, max(k, self.config.candidates), mode)
        if self.config.rerank:
            candidates = rerank(candidates, terms, self.calibration)
        return terms, _distinct_hits(candidates, k, terms)

    def _candidates(
        self, question: str, pool: int, mode: str | None
    ) -> tuple[QueryTerms, list[Candidate]]:
        """The fused candidates with their sentences marked, before the second stage."""
        question = clean_question(question, self.config.max_question_chars)
        mode = self._mode(mode)
        query = normalise_query(question)
        terms = QueryTerms.of(query)
        query_vector = self._embed_query(query) if mode != "lexical" else None
        with self._lock:
            dense = (
                self.index.search(query_vector[None, :], pool)[0]
                if query_vector is not None
                else []
            )
            lexical = (
                self.index.lexical_search(self._lexical_query(query), pool)
                if mode != "dense"
                else []
            )
            # places and organisations named in the question that some article names
            # (jieba's tags are noisy: a "name" no article uses is no evidence)
            names = [_name_words(name) for name in terms.names if self.index.mentions(name)]
        candidates = fuse(dense, lexical)[:pool]
        mark_sentences(candidates, terms)
        for c in candidates:
            if names and not self._article_names(c.chunk, names):
                c.sentence_fits = [False] * len(c.spans)  # about another place or body
        if query_vector is not None:
            self._mark_sentence_cosines(candidates, query_vector)
        return terms, candidates

    def candidate_features(self, question: str) -> list[CandidateFeatures]:
        """What the second stage and the answer decision see of each candidate passage.

        ``newsqa calibrate`` fits the :class:`Calibration` from these.

        Args:
            question: in Chinese or English.

        Returns:
            One row per candidate (``config.candidates`` of them, fused, not re-ranked).

        Raises:
            QuestionError: the question is empty or has no word to search for.
        """
        terms, candidates = self._candidates(question, self.config.candidates, None)
        features = candidate_features(candidates, terms)
        return [
            CandidateFeatures(
                chunk=c.chunk,
                features=tuple(float(x) for x in row),
                fits_question=c.fits,
                threshold_kind=threshold_kind(question, terms, c.chunk.text, c.chunk.title),
            )
            for c, row in zip(candidates, features, strict=True)
        ]

    def record_calibration(self, calibration: Calibration) -> None:
        """Answer with ``calibration`` from now on, and record it in the index folder.

        A calibration file named by ``config.calibration`` still wins over the recorded one.
        """
        with self._lock:
            self.index.record_calibration(calibration)
            self.calibration = resolve_calibration(self.config.calibration, calibration)

    def ask(self, question: str, k: int | None = None, mode: str | None = None) -> Answer:
        """Retrieve and decide whether the articles answer ``question``.

        Args:
            question: in Chinese or English.
            k: how many passages (default ``config.k``).
            mode: the retrieval mode for this call (default ``config.mode``).

        Returns:
            The :class:`Answer`: hits, best sentence, ``found`` and the reason for it.

        Raises:
            QuestionError: the question is empty or has no word to search for.
            InvalidArgumentError: ``k`` out of range or an unknown ``mode``.
        """
        mode = self._mode(mode)
        terms, hits = self._search(question, k, mode)
        calibrated = mode != "lexical" and self.config.rerank
        return decide(question.strip(), terms, hits, self.calibration, calibrated, len(self.index))

    def _mode(self, mode: str | None) -> str:
        return self.config.mode if mode is None else check_mode(mode)

    def _article_names(self, chunk: Chunk, names: list[list[str]]) -> bool:
        """Whether the chunk, or else its article, names every one of ``names``.

        Each name is given as its words (:func:`_name_words`).
        """
        if _names_all(fold(chunk.embed_text), names):
            return True
        with self._lock:
            article = self.index.folded_article(chunk)
        return _names_all(article, names)

    def _lexical_query(self, query: str) -> str:
        """The words BM25 searches: an English question's also in Chinese (CC-CEDICT), as
        the articles have none of its English words but names written in Latin letters."""
        if self.config.expand_english and is_english(query):
            return f"{query} {' '.join(chinese_for_english(query))}"
        return query

    def _embed_query(self, query: str) -> np.ndarray:
        return self.embedder.encode_queries([query])[0]

    def _mark_sentence_cosines(self, candidates: list[Candidate], query_vector: np.ndarray) -> None:
        """Each candidate sentence's cosine to the question, from the stored sentence vectors."""
        for c in candidates:
            matrix = self.index.sentences.get(c.chunk.id)
            if matrix is not None and len(matrix) == len(c.spans):
                c.sentence_cosines = (matrix.astype(np.float32) @ query_vector).tolist()
                c.literal_weight = self.calibration.sentence_literal


def _name_words(name: str) -> list[str]:
    """The words any of which names ``name``: itself and its core (佳木斯 of 佳木斯市)."""
    return [word for word in tokenize(name, "jieba") if len(word) >= 2]


def _names_all(folded: str, names: list[list[str]]) -> bool:
    """Whether the folded text names every name, each given as its words."""
    return all(any(word in folded for word in words) for words in names)


def _distinct_hits(
    candidates: list[Candidate], k: int, terms: QueryTerms | None = None
) -> list[Hit]:
    """The first ``k`` candidates as hits, a passage repeated in other files (or places) as
    one hit whose ``also_cited`` lists the other citations; with the question's ``terms``,
    each fitting hit's answering span marked."""
    kept: dict[str, tuple[Candidate, list[Citation]]] = {}  # by the passage's folded text
    for candidate in candidates:
        key = re.sub(r"\s+", "", fold(candidate.chunk.text))
        if key in kept:
            kept[key][1].append(candidate.chunk.citation)
        elif len(kept) < k:
            kept[key] = (candidate, [])
    return [
        _hit(rank, candidate, tuple(others), terms)
        for rank, (candidate, others) in enumerate(kept.values(), start=1)
    ]


def _hit(
    rank: int,
    candidate: Candidate,
    also_cited: tuple[Citation, ...] = (),
    terms: QueryTerms | None = None,
) -> Hit:
    chunk = candidate.chunk
    start, end = candidate.best_span
    answer = (
        terms.answer_span(chunk.text[start:end])
        if terms is not None and candidate.fits and candidate.best_fits
        else None
    )
    answer_start, answer_end = (start + answer[0], start + answer[1]) if answer else (-1, -1)
    return Hit(
        rank=rank,
        score=candidate.score,
        text=chunk.text,
        citation=chunk.citation,
        chunk_id=chunk.id,
        sentence_start=start,
        sentence_end=end,
        fits_question=candidate.fits,
        extra={
            k: v
            for k, v in (("dense", candidate.dense), ("lexical", candidate.lexical))
            if v is not None
        },
        also_cited=also_cited,
        answer_start=answer_start,
        answer_end=answer_end,
    )


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


def _upload_name(filename: str) -> str:
    """The name an uploaded file is stored under: its last path part, not hidden.

    Raises:
        UnreadableFileError: nothing usable is left of the name.
    """
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].lstrip(". ").strip()
    name = name.encode("utf-8", "replace").decode("utf-8")
    if not name or any(unicodedata.category(c) == "Cc" for c in name) or len(name) > 200:
        raise UnreadableFileError(
            f"{filename!r} is not a usable file name: "
            "give the article a plain name such as news.txt"
        )
    return name


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``stem-2.txt``, ``stem-3.txt`` … if that is taken."""
    target = folder / name
    stem, suffix = target.stem, target.suffix
    n = 2
    while target.exists():
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    return target
