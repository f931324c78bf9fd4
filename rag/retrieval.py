"""Retrieval: question → ranked, cited passages with the sentence that best answers it."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import unicodedata
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .answer import Answer, decide, threshold_kind
from .calibration import Calibration, CandidateFeatures, resolve_calibration
from .config import Config, check_k, check_mode
from .corpus import LibraryRecord, library_file, library_record_path, load_bytes
from .embedding import Embedder, create_embedder
from .errors import (
    CorpusError,
    InvalidArgumentError,
    LibraryError,
    QuestionError,
    UnknownArticleError,
    UnreadableFileError,
)
from .index import CorpusIndex, UpdateReport
from .ranking import (
    Candidate,
    QueryTerms,
    candidate_features,
    fuse,
    is_cross_lingual,
    lead_of,
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

if TYPE_CHECKING:
    from .milvus import MilvusCorpusIndex

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


def open_index(
    config: Config, embedder: Embedder, progress: bool = False
) -> tuple[CorpusIndex | MilvusCorpusIndex, UpdateReport]:
    """Open the library's index on the backend ``config.backend`` names (the one place
    the backend is chosen): the local index folder, or a Milvus collection.

    Args:
        config: the shared configuration.
        embedder: the embedder the index is (to be) built with.
        progress: show a progress bar while embedding.

    Returns:
        The up-to-date index and what opening it did.
    """
    if config.backend == "milvus":
        from .milvus import MilvusCorpusIndex  # pymilvus only when asked for

        return MilvusCorpusIndex.open(config, embedder, progress=progress)
    return CorpusIndex.open(config, embedder, progress=progress)


class Retriever:
    """Answers questions over one corpus folder with cited passages.

    Build one with :meth:`from_folder` (or :meth:`from_config`); it opens or builds the
    folder's index and keeps the model and index in memory.
    """

    def __init__(
        self, config: Config, embedder: Embedder, index: CorpusIndex | MilvusCorpusIndex
    ) -> None:
        self.config = config
        self.embedder = embedder
        self.index = index
        self.last_update = UpdateReport()
        self._lock = threading.RLock()
        self._library_lock = threading.Lock()  # one library change (record + update) at a time
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
        index, report = open_index(config, embedder, progress)
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
            What the update did; ``added`` names the stored file. The library records the
            file as uploaded (:meth:`remove_article` then deletes it).

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
            self._note_upload(target.name, hashlib.sha256(data).hexdigest())
            return self.update(progress=progress)
        except BaseException as exc:
            for created in (tmp, target):
                if created is not None:
                    created.unlink(missing_ok=True)
            if target is not None:
                self._note_upload(target.name, None)
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

    # ------------------------------------------------------------------ the library

    def library(self) -> list[LibraryArticle]:
        """Every file of the library, by name: the indexed ones and the excluded ones.

        Returns:
            One record per file (title, date, size, chunks, when indexed, whether the
            chat stored it, whether it is excluded); an excluded file no longer in the
            folder is left out.
        """
        record = self._library_record()
        rows: list[LibraryArticle] = []
        with self._lock:
            for name, entry in self.index.files.items():
                firsts: dict[int, Chunk] = {}
                for vid in entry.chunk_ids:
                    chunk = self.index.chunks.get(vid)
                    if chunk is not None:
                        firsts.setdefault(chunk.article_index, chunk)
                ordered = [firsts[i] for i in sorted(firsts)]
                rows.append(
                    LibraryArticle(
                        file=name,
                        titles=tuple(c.title for c in ordered),
                        date=next((c.date for c in ordered if c.date), ""),
                        size=entry.size,
                        chunks=len(entry.chunk_ids),
                        indexed_at=entry.indexed_at,
                        uploaded=bool(entry.sha256) and record.uploaded.get(name) == entry.sha256,
                    )
                )
            indexed = set(self.index.files)
        for name, info in record.excluded.items():
            try:
                path = library_file(self.config.corpus, name)[1]
                size = path.stat().st_size if path.is_file() else -1
            except (LibraryError, OSError):
                continue
            if name in indexed or size < 0:
                continue
            rows.append(
                LibraryArticle(
                    file=name,
                    titles=tuple(str(t) for t in info.get("titles", ()) if isinstance(t, str)),
                    date=str(info.get("date", "")),
                    size=size,
                    chunks=0,
                    indexed_at=0.0,
                    excluded=True,
                )
            )
        return sorted(rows, key=lambda row: row.file)

    def remove_article(self, file: str) -> LibraryChange:
        """Take a file out of the library; its passages leave the index at once.

        A file the chat stored (:meth:`add_document`) and still holding the bytes it
        wrote is deleted from the folder; any other file stays on disk and is excluded:
        listed by :meth:`library`, skipped by every later update (also ``newsqa index``)
        and brought back by :meth:`restore_article`.

        Args:
            file: the file's name in the library (as :meth:`library` lists it).

        Returns:
            What was done (``deleted`` or ``excluded``) and the update's report.

        Raises:
            UnsafePathError: the name leads outside the article folder.
            UnknownArticleError: no indexed file has this name.
            LibraryError: the file is excluded already, or the change cannot be saved.
        """
        with self._library_lock:
            name, path = library_file(self.config.corpus, file)
            record = self._library_record()
            if name in record.excluded:
                raise LibraryError(f"{name} is excluded already (restore it to bring it back)")
            with self._lock:
                indexed = name in self.index.files
            if not indexed:
                raise UnknownArticleError(f"{name} is not in the library")
            if _holds(path, record.uploaded.get(name)):
                path.unlink()
                record.uploaded.pop(name, None)
                action = "deleted"
            else:
                chunks = self._file_chunks(name)
                firsts = {c.article_index: c for c in reversed(chunks)}
                record.excluded[name] = {
                    "titles": [firsts[i].title for i in sorted(firsts)],
                    "date": next((c.date for c in chunks if c.date), ""),
                    "excluded_at": time.time(),
                }
                action = "excluded"
            record.save(self.config.corpus)
            return LibraryChange(name, action, self.update())

    def restore_article(self, file: str) -> LibraryChange:
        """Bring an excluded file back into the library: it is read and indexed again.

        Args:
            file: the excluded file's name (as :meth:`library` lists it).

        Returns:
            What was done (``restored``) and the update's report.

        Raises:
            UnsafePathError: the name leads outside the article folder.
            UnknownArticleError: the file is not excluded and not in the library, or is
                no longer in the folder.
            LibraryError: the file is in the library (not excluded), or the change
                cannot be saved.
        """
        with self._library_lock:
            name, path = library_file(self.config.corpus, file)
            record = self._library_record()
            if name not in record.excluded:
                with self._lock:
                    indexed = name in self.index.files
                if indexed:
                    raise LibraryError(f"{name} is in the library, not excluded")
                raise UnknownArticleError(f"{name} is not an excluded file of the library")
            record.excluded.pop(name)
            record.save(self.config.corpus)
            if not path.is_file():
                raise UnknownArticleError(f"{name} is no longer in the article folder")
            return LibraryChange(name, "restored", self.update())

    def reindex(self, file: str | None = None) -> LibraryChange:
        """Read and embed one indexed file, or all of them, again (even if unchanged).

        Questions are answered from the current passages meanwhile.

        Args:
            file: the file's name in the library (None: every indexed file).

        Returns:
            What was done (``reindexed``; ``file`` is "" for all) and the update's report.

        Raises:
            UnsafePathError: the name leads outside the article folder.
            UnknownArticleError: no indexed file has this name.
            LibraryError: the file is excluded (restore it instead).
        """
        with self._library_lock:
            names = None
            if file is not None:
                name, _ = library_file(self.config.corpus, file)
                with self._lock:
                    indexed = name in self.index.files
                if not indexed:
                    if name in self._library_record().excluded:
                        raise LibraryError(f"{name} is excluded: restore it to index it again")
                    raise UnknownArticleError(f"{name} is not in the library")
                names = [name]
            with self._lock:
                self.index.mark_stale(names)
            return LibraryChange("" if names is None else names[0], "reindexed", self.update())

    def original(self, file: str) -> Path:
        """The path of a library file (indexed or excluded), to hand out its original.

        Args:
            file: the file's name in the library.

        Returns:
            The file's resolved path, inside the article folder.

        Raises:
            UnsafePathError: the name leads outside the article folder.
            UnknownArticleError: the file is not in the library or no longer on disk.
        """
        name, path = library_file(self.config.corpus, file)
        with self._lock:
            indexed = name in self.index.files
        if not indexed and name not in self._library_record().excluded:
            raise UnknownArticleError(f"{name} is not in the library")
        resolved = path.resolve()
        if not resolved.is_file() or not resolved.is_relative_to(self.config.corpus):
            raise UnknownArticleError(f"{name} is no longer in the article folder")
        return resolved

    def _library_record(self) -> LibraryRecord:
        return LibraryRecord.load(library_record_path(self.config))

    def _file_chunks(self, name: str) -> list[Chunk]:
        with self._lock:
            entry = self.index.files.get(name)
            ids = entry.chunk_ids if entry else []
            return [self.index.chunks[v] for v in ids if v in self.index.chunks]

    def _note_upload(self, name: str, digest: str | None) -> None:
        """Record that the chat stored ``name`` with content ``digest`` (None: forget it).

        A stored name is no longer excluded (a new file took the name). A record that
        cannot be written only costs the file its deletion on removal (it is then
        excluded instead), with a warning.
        """
        with self._library_lock:
            record = self._library_record()
            if digest is None:
                record.uploaded.pop(name, None)
            else:
                record.uploaded[name] = digest
                record.excluded.pop(name, None)
            try:
                record.save(self.config.corpus)
            except LibraryError as exc:
                warnings.warn(str(exc), stacklevel=3)

    def articles(self) -> list[tuple[str, str]]:
        """The indexed articles as ``(file, title)`` pairs, in corpus order."""
        with self._lock:
            chunks = list(self.index.chunks.values())
        seen = {(c.file, c.article_index): c.title for c in chunks}
        return [(file, seen[(file, i)]) for file, i in sorted(seen)]

    def article(self, article_id: str) -> IndexedArticle:
        """One indexed article, whole, as the index holds it (for reading a cited passage
        in place).

        Args:
            article_id: the article's id, :func:`article_id` of one of its chunk ids
                (never a path: it is looked up among the indexed articles).

        Returns:
            The article's title, byline, date, file, text and its passages' citations.

        Raises:
            InvalidArgumentError: no indexed article has this id.
        """
        with self._lock:
            firsts = {(c.file, c.article_index): c for c in self.index.chunks.values()}
            found = [c for key, c in firsts.items() if article_id == _article_id(*key)]
            if not isinstance(article_id, str) or not found:
                raise InvalidArgumentError(f"no article {article_id!r} in the library")
            passages = sorted(self.index.article_chunks(found[0]), key=lambda c: c.start)
        return IndexedArticle.of(article_id, passages)

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
        question = clean_question(question, self.config.max_question_chars)
        terms, candidates = self._candidates(question, max(k, self.config.candidates), mode)
        if self.config.rerank:
            candidates = rerank(candidates, terms, self.calibration)
            if is_cross_lingual(question) and self._mode(mode) != "lexical":
                candidates = self._refined(candidates, terms, question)
        return terms, _distinct_hits(candidates, k, terms)

    def _refined(
        self, candidates: list[Candidate], terms: QueryTerms, question: str
    ) -> list[Candidate]:
        """The second stage again, with the top ``config.refine_cross_lingual`` passages'
        cosines from full-precision vectors when the stored ones are quantised."""
        full = self.embedder.full_precision()
        top = [c for c in candidates[: self.config.refine_cross_lingual] if c.dense is not None]
        if full is None or not top:
            return candidates
        query_vector = self._embed_query(normalise_query(question))  # cached by the search
        # each chunk's sentences (as the first stage split them), where their stored
        # cosines line up with them
        groups = [c.sentences if len(c.spans) == len(c.sentence_cosines) else [] for c in top]
        texts = [c.chunk.embed_text for c in top] + [s for group in groups for s in group]
        # one pass, ~0.5 s on PyTorch; cached, so a follow-up on the same passages is free
        cosines = (full.encode_passages_cached(texts) @ query_vector).tolist()
        sentence_cosines = iter(cosines[len(top) :])
        for c, cosine, group in zip(top, cosines[: len(top)], groups, strict=True):
            c.dense = cosine
            if group:
                c.sentence_cosines = [next(sentence_cosines) for _ in group]
        return rerank(candidates, terms, self.calibration)

    def _candidates(
        self, question: str, pool: int, mode: str | None
    ) -> tuple[QueryTerms, list[Candidate]]:
        """The fused candidates of a cleaned ``question`` (:func:`clean_question`) with their
        sentences marked, before the second stage."""
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
            for c in candidates:
                c.lead = lead_of(self.index.article_opening(c.chunk).text)
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
        question = clean_question(question, self.config.max_question_chars)
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


def article_id(chunk_id: str) -> str:
    """The stable, path-free id of the article a chunk belongs to (for links to it).

    Args:
        chunk_id: a chunk's id (``Hit.chunk_id``: ``<file>#<article index>:<n>``).

    Returns:
        Twelve hex digits naming the article; :meth:`Retriever.article` resolves it.
    """
    article, _, _ = chunk_id.rpartition(":")
    file, _, index = article.rpartition("#")
    return _article_id(file, int(index)) if index.isdigit() else ""


def _article_id(file: str, index: int) -> str:
    return hashlib.sha1(f"{file}#{index}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class IndexedArticle:
    """A whole article rebuilt from its indexed passages.

    Attributes:
        id: its :func:`article_id`.
        file / title / byline / date: as its citations give them.
        text: the cleaned article text; ``text[c.start:c.end]`` is each passage (the
            whitespace between two passages, not kept by the index, is a line break
            where they lie on different source lines, else a space).
        passages: the citations of its passages, in reading order (their ``str`` is
            the citation locator a link to the article names).
    """

    id: str
    file: str
    title: str
    byline: str
    date: str
    text: str
    passages: tuple[Citation, ...]

    @classmethod
    def of(cls, article_id: str, chunks: list[Chunk]) -> IndexedArticle:
        """The article of ``chunks`` (all of one article, sorted by ``start``)."""
        parts: list[str] = []
        end = 0
        previous: Chunk | None = None
        for chunk in chunks:
            if chunk.start > end:
                gap = chunk.start - end
                newline = previous is not None and chunk.line_start > previous.line_end
                parts.append(("\n" if newline else " ") + " " * (gap - 1))
            if chunk.end > end:
                parts.append(chunk.text[max(0, end - chunk.start) :])
                end = chunk.end
            previous = chunk
        first = chunks[0]
        return cls(
            id=article_id,
            file=first.file,
            title=first.title,
            byline=first.byline,
            date=first.date,
            text="".join(parts),
            passages=tuple(c.citation for c in chunks),
        )


@dataclass(frozen=True)
class LibraryArticle:
    """One file of the library, as the library manager lists it.

    Attributes:
        file: its name in the article folder (relative, POSIX).
        titles: the titles of its articles, in file order (a newspaper page holds several).
        date: the first publication date its articles state (ISO), "" when none does.
        size: its size in bytes.
        chunks: how many passages of it are indexed (0 when excluded).
        indexed_at: when it was last read and embedded (epoch seconds; 0: unknown).
        uploaded: the chat stored it (removing it deletes it).
        excluded: it was removed from the library but stays on disk (restorable).
    """

    file: str
    titles: tuple[str, ...]
    date: str
    size: int
    chunks: int
    indexed_at: float
    uploaded: bool = False
    excluded: bool = False

    @property
    def title(self) -> str:
        """The first article's title ("" when the file has none)."""
        return self.titles[0] if self.titles else ""


@dataclass(frozen=True)
class LibraryChange:
    """What a library change did.

    Attributes:
        file: the file changed ("" when every file was re-indexed).
        action: ``"deleted"`` (an upload, deleted from disk), ``"excluded"`` (kept on
            disk, left out), ``"restored"`` or ``"reindexed"``.
        report: the index update that followed.
    """

    file: str
    action: str
    report: UpdateReport


def _holds(path: Path, digest: str | None) -> bool:
    """Whether ``path`` is a regular file (not a link) whose bytes have SHA-256 ``digest``."""
    if not digest or path.is_symlink() or not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest() == digest
    except OSError:
        return False


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
