"""Ranking: query normalisation, fusion of dense and lexical results, the second stage."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .calibration import FEATURES, Calibration
from .records import Chunk
from .rules import (
    ANY_PLACE,
    ASKED_NOUN,
    BARE_AMOUNT,
    COUNT_WORDS,
    COUNTED_TIME,
    DATE,
    DATE_QUESTION,
    ENGLISH_UNIT,
    ENGLISH_UNITS,
    FILLER_WORDS,
    FOCUS,
    GENERIC_PLACES,
    GENERIC_UNIT,
    HOW_MANY,
    MONEY_UNIT,
    NAME_TAGS,
    NOT_AN_ATTRIBUTE,
    NUMBER,
    NUMERAL,
    PERSON_QUESTION,
    PERSON_TAGS,
    PLACE_KINDS,
    QUANTITY,
    QUANTITY_QUESTION,
    QUESTION_WORDS,
    UNIT_GROUPS,
    UNIT_QUESTION,
    UNIT_WORD_TAIL,
    WHERE_QUESTION,
)
from .text import (
    english_words,
    fold,
    is_english,
    load_jieba,
    normalise_query,
    pinyin_text,
    sentence_spans,
)

RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al. 2009)


def is_cross_lingual(question: str) -> bool:
    """Whether a question is mostly not Chinese (e.g. English), so scores run lower."""
    letters = [c for c in question if c.isalpha()]
    cjk = sum(1 for c in letters if "\u3400" <= c <= "\u9fff")
    return cjk < 0.3 * max(1, len(letters))


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


@dataclass(frozen=True)
class QueryTerms:
    """What of a question can be matched literally: its bigrams and numbers."""

    bigrams: frozenset[str]
    numbers: frozenset[str]
    wants_quantity: bool
    focus: frozenset[str] = frozenset()  # bigrams of the attribute asked about
    attribute: str = ""  # the attribute a "how much" question asks about (总投资), if any
    unit: str = ""  # measure words that answer a "how many" question ("名人位"), if said
    wants_date: bool = False  # "when" questions are answered by a date
    wants_person: bool = False  # "who" questions are answered by a person's name
    names: frozenset[str] = frozenset()  # places and organisations the question names
    place: str = ""  # endings of the place or body asked for ("哪所学校", "where"), if any
    question: str = ""  # the question, folded (a place it names is no answer to "where")
    english: frozenset[str] = frozenset()  # an English question's content words …
    english_names: frozenset[str] = frozenset()  # … and pairs, that may be names in pinyin

    @classmethod
    def of(cls, question: str) -> QueryTerms:
        """Split ``question`` into matchable terms (question words dropped).

        A question in traditional characters is read in simplified ones, the form
        :func:`fold` gives every sentence it is compared with.
        """
        question = normalise_query(question)
        folded = fold(question)
        q = QUESTION_WORDS.sub(" ", folded)
        english, english_names = english_words(question) if is_english(question) else ((), ())
        return cls(
            english=frozenset(english),
            # shorter words are found in pinyin by chance ("long" in xinglong)
            english_names=frozenset(w for w in english_names if len(w) >= 5),
            bigrams=frozenset(g for g in _bigrams(q) if " " not in g),
            numbers=frozenset(NUMBER.findall(q)),
            wants_quantity=bool(QUANTITY_QUESTION.search(question)),
            focus=frozenset(_bigrams(match.group(1)) if (match := FOCUS.search(folded)) else ()),
            attribute=_asked_attribute(question),
            unit=_asked_unit(question),
            wants_date=bool(DATE_QUESTION.search(question)),
            wants_person=bool(PERSON_QUESTION.search(question)),
            names=frozenset(_tagged_words(question, NAME_TAGS)) - GENERIC_PLACES,
            place=_asked_place(question),
            question=folded,
        )

    def fits(self, sentence: str) -> bool:
        """Whether ``sentence`` holds the kind of answer asked for.

        A question that names a measure word needs a number with it ("12名" for 多少名),
        one that asks how much of an attribute ("…的总投资是多少") needs it named, a "when"
        question needs a date, a "who" question a person's name, a "哪所学校/where"
        question a place or body of that kind. Questions that ask for none of these fit
        any sentence.
        """
        folded = fold(sentence)
        if self.unit and not self._states_unit(folded):
            return False
        if self.attribute and not self._names_attribute(folded):
            return False
        if self.wants_person and not _names_a_person(folded):
            return False
        if self.place and not self._names_a_place(folded):
            return False
        return not self.wants_date or bool(DATE.search(folded))

    def answer_span(self, sentence: str) -> tuple[int, int] | None:
        """Where in ``sentence`` the asked-for answer is: ``(start, end)`` offsets, or None.

        The first span of the form :meth:`fits` looks for: the number with the asked unit
        (614个, 9亿元, or a bare sum 180万), for a "how much" of an attribute the first
        quantity, a date (consecutive parts joined: 2023年3月5日), a person's name, a
        place or body of the asked kind. None when the question asks no form, the
        sentence holds none, or folding changed the sentence's length (offsets would
        not carry over).
        """
        if not self.asks_form:
            return None
        folded = fold(sentence)
        if len(folded) != len(sentence):
            return None
        spans = [
            self._unit_span(folded) if self.unit else None,
            self._amount_span(folded) if self.attribute and not self.unit else None,
            _person_span(folded) if self.wants_person else None,
            self._place_span(folded) if self.place else None,
            _date_span(folded) if self.wants_date else None,
        ]
        span = next((span for span in spans if span is not None), None)
        if span is not None and (tail := UNIT_WORD_TAIL.match(folded, span[1])):
            span = (span[0], tail.end())
        return span

    def _amount_span(self, folded: str) -> tuple[int, int] | None:
        """The first number with any measure word after the asked attribute (总投资10亿元)."""
        after = folded.find(self.attribute) if self.attribute.startswith("总") else -1
        amount = re.compile(f"{NUMERAL}[{''.join(UNIT_GROUPS)}]*")
        return _first_span(amount, folded, max(after, 0))

    def _unit_span(self, folded: str) -> tuple[int, int] | None:
        """The first number with the asked unit, as :meth:`_states_unit` finds it."""
        span = _first_span(re.compile(f"{NUMERAL}{self._unit_pattern}"), folded)
        if span is None and self.unit == MONEY_UNIT:
            span = _first_span(BARE_AMOUNT, folded)
        return span

    def _states_unit(self, folded: str) -> bool:
        """A number with the asked unit (a sum may leave 元 out)."""
        if re.search(f"{NUMERAL}{self._unit_pattern}", folded):
            return True
        return self.unit == MONEY_UNIT and bool(BARE_AMOUNT.search(folded))

    @property
    def _unit_pattern(self) -> str:
        """The asked unit after a number: one of its measure words, or a counted time."""
        counted = [pattern for word, pattern in COUNTED_TIME.items() if word in self.unit]
        return "(?:" + "|".join([f"[{self.unit}]", *counted]) + ")"

    def _names_a_place(self, folded: str) -> bool:
        """A place or body of the asked kind that the question itself does not name.

        A word with one of the kind's endings counts when it is a name: longer than the
        bare ending (体育局, 总医院) or after a noun or numeral (电视/公司, 第十三/中学),
        not after 这家/去. For "where", a word jieba tags a place or body counts too.
        """
        return self._place_span(folded) is not None

    def _place_span(self, folded: str) -> tuple[int, int] | None:
        """Where in ``folded`` the first place or body of :meth:`_names_a_place` is."""
        ending = re.compile(f"(?:{self.place})$")
        any_name = self.place == ANY_PLACE
        previous = ""
        offset = 0
        for word, flag in _tagged_sentence(folded):
            name = word if len(word) > 2 else previous + word
            kind = ending.search(word) and (len(word) > 2 or previous)
            named = kind or (any_name and flag in NAME_TAGS and word not in GENERIC_PLACES)
            if named and name not in self.question:
                start, end = offset + len(word) - len(name), offset + len(word)
                return (start, end) if folded[start:end] == name else None
            previous = word if flag[:1] in ("n", "m") else ""
            offset += len(word)
        return None

    def _names_attribute(self, folded: str) -> bool:
        """The asked attribute is named: a total (总投资) exactly, others by half their bigrams
        (人口数 by 人口, 经纬度 by 纬度)."""
        if self.attribute.startswith("总"):
            return self.attribute in folded
        if len(self.attribute) == 2:  # 薪水 by 年薪, 票房 by 票房收入: a character is the word
            return any(char in folded for char in self.attribute)
        wanted = _bigrams(self.attribute)
        return 2 * len(wanted & _bigrams(folded)) >= len(wanted)

    def overlap(self, text: str) -> float:
        """Share of the question's bigrams that occur in ``text`` (0–1).

        For an English question: share of its words that ``text`` has as a name's
        pinyin ("Wudalianchi" in 五大连池市委), the only words matchable literally.
        """
        if self.english:
            if not self.english_names:
                return 0.0
            written = pinyin_text(text)
            matched = sum(1 for name in self.english_names if name in written)
            return min(1.0, matched / len(self.english))
        if not self.bigrams:
            return 0.0
        return len(self.bigrams & _bigrams(fold(text))) / len(self.bigrams)

    def beyond_lead(self, lead: str, title: str) -> frozenset[str]:
        """The question's bigrams that its article's ``lead`` and ``title`` lack.

        A lead names the people and things of its article; the words a question adds
        to those (投资 in "《如梦》投资多少") point to the sentence with the detail, which a
        passage's cosine to the whole question does not single out. Empty for an English
        question (no bigram to match) or when the lead holds every bigram.
        """
        if self.english or not self.bigrams:
            return frozenset()
        return frozenset(self.bigrams - _bigrams(fold(lead)) - _bigrams(fold(title)))

    def answers_quantity(self, sentence: str) -> bool:
        """A "how much/many" question and a sentence that states a quantity."""
        return self.wants_quantity and bool(QUANTITY.search(fold(sentence)))

    def numbers_in(self, text: str) -> int:
        """How many of the question's numbers occur in ``text``."""
        return len(self.numbers & set(NUMBER.findall(fold(text)))) if self.numbers else 0

    def sentence_score(self, sentence: str, fits: bool | None = None) -> float:
        """How well one sentence matches the question's words and numbers.

        ``fits`` is :meth:`fits` of the sentence when already known.
        """
        folded = fold(sentence)
        score = self.overlap(sentence) + 0.5 * self.numbers_in(sentence)
        if self.focus:
            score += len(self.focus & _bigrams(folded)) / len(self.focus)
        if self.wants_quantity and not QUANTITY.search(folded):
            score *= 0.5  # "how much/many" is answered by a sentence with a number
        if self.asks_form and (self.fits(sentence) if fits is None else fits):
            score += 1.0  # the sentence holds what is asked: a number with its unit …
        return score

    @property
    def asks_form(self) -> bool:
        """Whether the question says its answer's form (unit, attribute, date, person, place)."""
        return bool(
            self.unit or self.attribute or self.wants_date or self.wants_person or self.place
        )


@lru_cache(maxsize=65536)
def _tagged_sentence(text: str) -> tuple[tuple[str, str], ...]:
    """The words of ``text`` with their jieba part-of-speech tags (cached: tagging is slow)."""
    load_jieba()
    import jieba.posseg

    return tuple((w.word, w.flag) for w in jieba.posseg.lcut(text))


def _tagged_words(text: str, tags: frozenset[str]) -> list[str]:
    """Words of ``text`` of two or more characters whose jieba part of speech is in ``tags``."""
    return [word for word, flag in _tagged_sentence(text) if flag in tags and len(word) >= 2]


def _names_a_person(sentence: str) -> bool:
    """Whether jieba finds a person's name in ``sentence``."""
    return bool(_tagged_words(sentence, PERSON_TAGS))


def _person_span(sentence: str) -> tuple[int, int] | None:
    """Where the first person's name of :func:`_names_a_person` is in ``sentence``."""
    offset = 0
    for word, flag in _tagged_sentence(sentence):
        if flag in PERSON_TAGS and len(word) >= 2:
            end = offset + len(word)
            return (offset, end) if sentence[offset:end] == word else None
        offset += len(word)
    return None


def _first_span(pattern: re.Pattern[str], text: str, pos: int = 0) -> tuple[int, int] | None:
    """The span of ``pattern``'s first match in ``text`` from ``pos`` written with a digit,
    else of its first match (统一部署 and 七台河 read as numbers only when nothing else is);
    None when it has none."""
    first = None
    for match in pattern.finditer(text, pos):
        if any(char.isdigit() for char in match.group()):
            return match.span()
        first = first or match.span()
    return first


def _date_span(text: str) -> tuple[int, int] | None:
    """The first date or time in ``text``, its adjoining parts joined (2023年3月5日)."""
    span = None
    for match in DATE.finditer(text):
        if span is None:
            span = match.span()
        elif match.start() == span[1]:
            span = (span[0], match.end())
        else:
            break
    return span


def _asked_place(question: str) -> str:
    """The endings of the place or body a question asks for ("" when it asks for none)."""
    english = is_english(question)  # not an English title inside a Chinese question
    for chinese_kind, english_kind, endings in PLACE_KINDS:
        if re.search(f"哪一?[所家个座间]?(?:{chinese_kind})", question) or (
            english
            and re.search(
                rf"\b(?:which|what)\s+(?:[\w'-]+\s+){{0,2}}?(?:{english_kind})\b", question, re.I
            )
        ):
            return endings
    where = WHERE_QUESTION.search(question)
    return ANY_PLACE if where and (english or not where.group().isascii()) else ""


def _asked_attribute(question: str) -> str:
    """The attribute a "how much" question asks about: 总投资 in 「项目的总投资是多少」.

    The last content word before the question word (a leading 总 kept with it);
    "" for questions that ask no quantity or name no attribute.
    """
    folded = fold(question)
    if not QUANTITY_QUESTION.search(folded) or DATE_QUESTION.search(folded):
        return ""  # 几点/几月 ask for a time, not an amount
    after = ASKED_NOUN.search(folded)  # 多少薪水, 多少票房: the noun after the question word
    if after and not _asked_unit(question):
        word, flag = _tagged_sentence(after.group(1))[0]
        if len(word) >= 2 and flag.startswith("n"):
            return word
    match = FOCUS.search(folded)
    if not match:
        return ""
    words = [w for w in load_jieba().lcut(match.group(1)) if w not in FILLER_WORDS]
    while words and len(words[-1]) < 2:
        words.pop()
    if not words or NOT_AN_ATTRIBUTE.search(words[-1]):
        return ""
    total = "总" if len(words) > 1 and words[-2] == "总" else ""
    return total + words[-1]


def _asked_unit(question: str) -> str:
    """The measure words that answer a "how many" question ("" when it names none)."""
    match = UNIT_QUESTION.search(fold(question))
    if not match:
        return _asked_english_unit(question)
    group = next((group for group in UNIT_GROUPS if match.group(1) in group), "")
    return COUNT_WORDS if group == GENERIC_UNIT else group


def _asked_english_unit(question: str) -> str:
    """The measure words that answer "how many days/people…", "how much invested", "how old".

    A "how many" without a known noun is answered by a counted number (614个 sites);
    a "how much" without one by any amount, so it names none.
    """
    how = HOW_MANY.search(question) if is_english(question) else None
    if not how:
        return ""
    if how.group(1).lower() == "old":
        return "岁"
    noun = ENGLISH_UNIT.search(question, how.end())
    if noun:
        return ENGLISH_UNITS[noun.lastindex - 1][1] if noun.lastindex else ""
    return COUNT_WORDS if how.group(1).lower() == "many" else ""


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
    sentence_fits: list[bool] = field(default_factory=list)  # holds the asked-for form
    literal_weight: float = 0.0  # of literal evidence against the cosines (Calibration)
    lead: str = ""  # the opening sentences of its article (Retriever fills it in)
    # per sentence: share of the question's bigrams beyond the lead that it holds
    sentence_details: list[float] = field(default_factory=list)

    @property
    def sentences(self) -> list[str]:
        """The texts of its sentences, as :func:`mark_sentences` split them (``spans``)."""
        return [self.chunk.text[a:b] for a, b in self.spans]

    @property
    def best_sentence(self) -> int:
        """Index of the sentence that best answers: meaning plus literal evidence."""
        scores = self.sentence_scores
        if len(self.sentence_cosines) == len(scores):
            scores = [
                cos + self.literal_weight * lit
                for cos, lit in zip(self.sentence_cosines, scores, strict=True)
            ]
        return max(range(len(scores)), key=scores.__getitem__) if scores else 0

    @property
    def fits(self) -> bool:
        """Whether a sentence of the passage holds the kind of answer asked for."""
        return any(self.sentence_fits) if self.sentence_fits else True

    @property
    def best_fits(self) -> bool:
        """Whether the best sentence holds the kind of answer asked for."""
        return self.sentence_fits[self.best_sentence] if self.sentence_fits else True

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


# The lead a question's words are held against (see QueryTerms.beyond_lead): news
# articles state who, what and where in their first two sentences.
LEAD_SENTENCES = 2


def lead_of(text: str) -> str:
    """The first :data:`LEAD_SENTENCES` sentences of an article's first passage."""
    return "".join(text[a:b] for a, b in sentence_spans(text)[:LEAD_SENTENCES])


def mark_sentences(candidates: list[Candidate], terms: QueryTerms) -> None:
    """Split each candidate into sentences and score them against the question."""
    for c in candidates:
        c.spans = sentence_spans(c.chunk.text)
        sentences = c.sentences
        c.sentence_fits = [terms.fits(text) for text in sentences]
        detail = terms.beyond_lead(c.lead, c.chunk.title)
        c.sentence_details = [
            len(detail & _bigrams(fold(text))) / len(detail) if detail else 0.0
            for text in sentences
        ]
        # the detail share is literal evidence like the overlap: it helps pick the sentence
        c.sentence_scores = [
            terms.sentence_score(text, fits) + share
            for text, fits, share in zip(
                sentences, c.sentence_fits, c.sentence_details, strict=True
            )
        ]


def candidate_features(candidates: list[Candidate], terms: QueryTerms) -> np.ndarray:
    """The second stage's features of each candidate, in :data:`~rag.calibration.FEATURES` order.

    A chunk only the lexical search found gets the lowest cosine seen.

    Args:
        candidates: fused candidates with sentences marked.
        terms: the question's matchable terms.

    Returns:
        A ``(len(candidates), len(FEATURES))`` array.
    """
    cosines = [c.dense for c in candidates if c.dense is not None]
    floor = min(cosines) if cosines else 0.0
    top_lexical = max((c.lexical or 0.0 for c in candidates), default=0.0) or 1.0
    rows = []
    for c in candidates:
        a, b = c.best_span
        sentence = c.chunk.text[a:b]
        rows.append(
            (
                c.dense if c.dense is not None else floor,
                max(c.sentence_cosines, default=floor),
                (c.lexical or 0.0) / top_lexical,
                terms.overlap(sentence),
                terms.overlap(c.chunk.title),
                float(terms.answers_quantity(sentence)),
                float(terms.asks_form and c.best_fits),
                float(c.fits),
                float(c.chunk.start == 0),
                max(c.sentence_details, default=0.0),
            )
        )
    return np.array(rows, dtype=np.float64).reshape(len(candidates), len(FEATURES))


def rerank(
    candidates: list[Candidate], terms: QueryTerms, calibration: Calibration
) -> list[Candidate]:
    """Second stage: score each candidate by its features, weighted by the calibration.

    Args:
        candidates: fused candidates with sentences marked.
        terms: the question's matchable terms.
        calibration: holds the weights.

    Returns:
        The candidates, best first, ``score`` set.
    """
    scores = candidate_features(candidates, terms) @ np.array(calibration.weight_vector())
    for c, score in zip(candidates, scores, strict=True):
        c.score = float(score)
    return sorted(candidates, key=lambda c: -c.score)
