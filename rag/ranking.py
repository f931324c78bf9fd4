"""Ranking: query normalisation, fusion of dense and lexical results, and the sentence-level second stage."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .lexical import fold
from .records import Chunk

SENTENCE = re.compile(r"[^。！？!?；;\n]+(?:[。！？!?；;]+[”’」』)）]*)?")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
# A quantity as the articles write it: digits, or Chinese numerals before a measure word.
QUANTITY = re.compile(  # (?!河): 七台河 is a city, not "seven units"
    r"\d|[一二两三四五六七八九十百千万亿几]+[个名项家台座条种次位人户所处辆架批元吨米倍成](?!河)"
)
QUANTITY_QUESTION = re.compile(
    r"多少|几|多大|多长|多高|多重|多远|how (?:many|much|long|large|big)", re.I
)
# Question words carry no evidence; dropping them keeps them out of the overlap score.
QUESTION_WORDS = re.compile(
    r"是多少|多少|什么|哪些|哪个|哪里|哪|怎么|如何|为什么|吗|呢|请问|是否|几|谁|[？?。，,！!\s]"
)
# "X的Y是多少": Y is what is asked (总建筑面积, 设计产能); the sentence naming it is
# the answer, while X (the topic) is often named only in an earlier sentence.
FOCUS = re.compile(
    r"的([\u4e00-\u9fff]{2,8}?)(?:是|有|为|达到|达|能达到)?"
    r"(?:多少|几|什么|哪|怎样|如何|何时|多大|多长|多高|多远)"
)
RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al. 2009)

# Second-stage weights, chosen by a grid search on eval/qa_seeds.jsonl and confirmed on
# CMRC 2018 (README "Retrieval quality"). The chunk's cosine is the base; the cosine of
# its closest sentence doubles the weight of a passage whose single sentence answers;
# literal evidence adds to it. Exact matching of the question's numbers was tried and
# changed nothing on either set, so it is not a feature.
W_SENTENCE_DENSE = 1.0  # cosine of the chunk's closest sentence to the question
W_LEXICAL = 0.03  # BM25 score relative to the best candidate's
W_SENTENCE = 0.15  # share of the question's bigrams found in the chunk's best sentence
W_TITLE = 0.05  # share of the question's bigrams found in the article title
W_QUANTITY = 0.04  # a "how much/many" question and a best sentence stating a quantity
# Within a chunk, the answering sentence is the closest in meaning, nudged by literal
# evidence (shared words, the question's numbers).
W_SENTENCE_LITERAL = 0.1


@lru_cache(maxsize=1)
def _to_simplified() -> Any:
    from opencc import OpenCC

    return OpenCC("t2s")


def normalise_query(text: str) -> str:
    """Fold a question into the articles' writing: half-width, simplified characters.

    Args:
        text: the question as typed (full-width digits, traditional characters …).

    Returns:
        The question in the form the articles are written in.
    """
    import unicodedata

    return str(_to_simplified().convert(unicodedata.normalize("NFKC", text)))


def is_cross_lingual(question: str) -> bool:
    """Whether a question is mostly not Chinese (e.g. English), so scores run lower."""
    letters = [c for c in question if c.isalpha()]
    cjk = sum(1 for c in letters if "\u3400" <= c <= "\u9fff")
    return cjk < 0.3 * max(1, len(letters))


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


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


@dataclass(frozen=True)
class QueryTerms:
    """What of a question can be matched literally: its bigrams and numbers."""

    bigrams: frozenset[str]
    numbers: frozenset[str]
    wants_quantity: bool
    focus: frozenset[str] = frozenset()  # bigrams of the attribute asked about

    @classmethod
    def of(cls, question: str) -> QueryTerms:
        """Split ``question`` into matchable terms (question words dropped)."""
        q = QUESTION_WORDS.sub(" ", fold(question))
        return cls(
            bigrams=frozenset(g for g in _bigrams(q) if " " not in g),
            numbers=frozenset(NUMBER.findall(q)),
            wants_quantity=bool(QUANTITY_QUESTION.search(question)),
            focus=frozenset(
                _bigrams(match.group(1)) if (match := FOCUS.search(fold(question))) else ()
            ),
        )

    def overlap(self, text: str) -> float:
        """Share of the question's bigrams that occur in ``text`` (0–1)."""
        if not self.bigrams:
            return 0.0
        return len(self.bigrams & _bigrams(fold(text))) / len(self.bigrams)

    def answers_quantity(self, sentence: str) -> bool:
        """A "how much/many" question and a sentence that states a quantity."""
        return self.wants_quantity and bool(QUANTITY.search(fold(sentence)))

    def numbers_in(self, text: str) -> int:
        """How many of the question's numbers occur in ``text``."""
        return len(self.numbers & set(NUMBER.findall(fold(text)))) if self.numbers else 0

    def sentence_score(self, sentence: str) -> float:
        """How well one sentence matches the question's words and numbers."""
        folded = fold(sentence)
        score = self.overlap(sentence) + 0.5 * self.numbers_in(sentence)
        if self.focus:
            score += len(self.focus & _bigrams(folded)) / len(self.focus)
        if self.wants_quantity and not QUANTITY.search(fold(sentence)):
            score *= 0.5  # "how much/many" is answered by a sentence with a number
        return score


@dataclass
class Candidate:
    """A chunk on its way through fusion and the second stage."""

    chunk: Chunk
    dense: float | None = None
    lexical: float | None = None
    fused: float = 0.0
    score: float = 0.0
    spans: list[tuple[int, int]] = field(default_factory=list)
    sentence_scores: list[float] = field(default_factory=list)  # literal match
    sentence_cosines: list[float] = field(default_factory=list)  # meaning, when stored

    @property
    def best_sentence(self) -> int:
        """Index of the sentence that best answers: meaning plus literal evidence."""
        scores = self.sentence_scores
        if len(self.sentence_cosines) == len(scores):
            scores = [
                cos + W_SENTENCE_LITERAL * lit
                for cos, lit in zip(self.sentence_cosines, scores, strict=True)
            ]
        return max(range(len(scores)), key=scores.__getitem__) if scores else 0

    @property
    def best_span(self) -> tuple[int, int]:
        """The span of the sentence that best answers the question."""
        return self.spans[self.best_sentence] if self.spans else (0, len(self.chunk.text))


def fuse(dense: list[tuple[Chunk, float]], lexical: list[tuple[Chunk, float]]) -> list[Candidate]:
    """Reciprocal-rank fusion of the two result lists, best first.

    Args:
        dense: ``(chunk, cosine)`` best first (may be empty).
        lexical: ``(chunk, BM25 score)`` best first (may be empty).

    Returns:
        One candidate per distinct chunk with both raw scores kept.
    """
    pool: dict[str, Candidate] = {}
    for rank, (chunk, score) in enumerate(dense):
        c = pool.setdefault(chunk.id, Candidate(chunk))
        c.dense = score
        c.fused += 1.0 / (RRF_K + rank + 1)
    for rank, (chunk, score) in enumerate(lexical):
        c = pool.setdefault(chunk.id, Candidate(chunk))
        c.lexical = score
        c.fused += 1.0 / (RRF_K + rank + 1)
    ranked = sorted(pool.values(), key=lambda c: -c.fused)
    for c in ranked:
        c.score = c.fused
    return ranked


def mark_sentences(candidates: list[Candidate], terms: QueryTerms) -> None:
    """Split each candidate into sentences and score them against the question."""
    for c in candidates:
        c.spans = sentence_spans(c.chunk.text)
        c.sentence_scores = [terms.sentence_score(c.chunk.text[a:b]) for a, b in c.spans]


def rerank(candidates: list[Candidate], terms: QueryTerms) -> list[Candidate]:
    """Second stage: re-score candidates with sentence-level literal evidence.

    The base is the dense cosine (a chunk only the lexical search found gets the lowest
    cosine seen), plus its closest sentence's cosine; BM25, the best sentence's word
    overlap and stated quantity, and the title's overlap add to it.

    Args:
        candidates: fused candidates with sentences marked.
        terms: the question's matchable terms.

    Returns:
        The candidates, best first, ``score`` set.
    """
    cosines = [c.dense for c in candidates if c.dense is not None]
    floor = min(cosines) if cosines else 0.0
    top_lexical = max((c.lexical or 0.0 for c in candidates), default=0.0) or 1.0
    for c in candidates:
        a, b = c.best_span
        sentence = c.chunk.text[a:b]
        c.score = (
            (c.dense if c.dense is not None else floor)
            + W_SENTENCE_DENSE * max(c.sentence_cosines, default=floor)
            + W_LEXICAL * (c.lexical or 0.0) / top_lexical
            + W_SENTENCE * terms.overlap(sentence)
            + W_TITLE * terms.overlap(c.chunk.title)
            + W_QUANTITY * terms.answers_quantity(sentence)
        )
    return sorted(candidates, key=lambda c: -c.score)
