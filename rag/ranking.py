"""Ranking: query normalisation, fusion of dense and lexical results, the second stage."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .calibration import FEATURES, Calibration
from .records import Chunk
from .text import (
    english_words,
    fold,
    is_english,
    load_jieba,
    normalise_query,
    pinyin_text,
    sentence_spans,
)

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
# An aggregate named without 的 (项目总投资是多少) is asked about just the same.
FOCUS = re.compile(
    r"(?:的|(?=总))([\u4e00-\u9fff]{2,8}?)(?:是|有|为|达到|达|能达到)?"
    r"(?:多少|几|什么|哪|怎样|如何|何时|多大|多长|多高|多远)"
)
# Words before a question word that are no attribute: a predicate (投了), a time
# clause (死时) or a time or number (一年, 今年).
NOT_AN_ATTRIBUTE = re.compile(
    r"[了过着时]$|^(?:[一二两三四五六七八九十\d]+|[今去明每本上下])[年月天日周期]$"
)
ASKED_NOUN = re.compile(r"(?:多少|几)([\u4e00-\u9fff]{2,4})")
MONEY_UNIT = "元钱块美港欧镑"
# "多少名/几个/多少万吨": the measure word after the question word says what kind of
# number answers; words in one group answer alike (a question's 人 by the article's 名).
UNIT_GROUPS = ("名人位", "个项家户所", MONEY_UNIT, "平", "吨", "件", "米", "斤",
               "亩", "台", "座", "条", "种", "次", "辆", "架", "批", "处", "天", "年",
               "月", "岁", "倍", "层", "栋", "间", "张", "只", "头", "部", "份", "届",
               "期", "场", "篇", "双")  # fmt: skip
GENERIC_UNIT = "个项家户所"  # 几个 is answered by any word that counts things (3名子女)
# ... but not by an amount or a time: 多少个项目 is not answered by 11.87亿元 or 2023年.
AMOUNT_WORDS = "元钱块美港欧镑平吨米斤亩天年月岁"
COUNT_WORDS = "".join(c for c in "".join(UNIT_GROUPS) if c not in AMOUNT_WORDS)
# 哪几座/哪几个 ask for names, not a number.
UNIT_QUESTION = re.compile(r"(?<!哪)(?:多少|几)[万亿千百]*([\u4e00-\u9fff])")
NUMERAL = r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百千万亿几]+)(?:[万亿千百]|余|多)*"
# Time words counted with 个 between: 3个月, 一个多月, 两个小时, 10个工作日.
COUNTED_TIME = {"月": "个[多半]?月", "时": "个[多半]?小时", "天": "个?工作日"}
# News often leaves 元 out of a sum: 总价180万, 以400万的投资 answer 花了多少钱.
BARE_AMOUNT = re.compile(rf"{NUMERAL}[万亿](?![{''.join(UNIT_GROUPS)}])")
# An English "how many/much" question says its unit with a noun; the first one after
# "how" picks the measure words that answer it ("" for percentages: no measure word).
ENGLISH_UNITS = (
    (
        r"people|persons?|members?|staff|workers?|employees?|doctors?|nurses?|volunteers?"
        r"|individuals?|students?|residents?|athletes?|teachers?|officers?|talents?"
        r"|tourists?|visitors?|passengers?|patients?|children|farmers?|villagers?",
        "名人位",
    ),
    (r"yuan|money|invest\w*|costs?|funds?|funding|spen[dt]|revenue|price|profit", MONEY_UNIT),
    (r"weight|kilograms?|kg|jin", "斤克"),
    (r"tons?|tonnes?", "吨"),
    (r"square (?:met(?:er|re)s?|kilomet(?:er|re)s?)|sq", "平"),
    (r"kilomet(?:er|re)s?|met(?:er|re)s?|km", "米"),
    (r"mu", "亩"),
    (r"days?", "天"),
    (r"months?", "月"),
    (r"years?", "年"),
    (r"hours?", "时"),
    (r"pairs?", "双"),
    (r"cases?", "件起"),
    (r"times", "次倍"),
    (r"percent\w*|per cent|%", ""),
)
ENGLISH_UNIT = re.compile(
    r"\b(?:" + "|".join(f"({pattern})" for pattern, _ in ENGLISH_UNITS) + r")\b", re.I
)
HOW_MANY = re.compile(r"\bhow (many|much|old)\b", re.I)
# "哪天/什么时候/何时": answered by a sentence that states a date or time.
DATE_QUESTION = re.compile(
    r"哪天|哪一天|什么时候|何时|哪年|哪一年|几月|几号|几点|什么时间|哪个月|when", re.I
)
DATE = re.compile(
    r"\d+\s*(?:年|月|日|号|时|点)|[一二三四五六七八九十]+(?:月|日)|今年|去年|明年|年底|年初|年内|月底|月初"
    r"|上旬|中旬|下旬|春节|国庆|元旦|\b(?:19|20)\d\d\b"
    # eras, ages and times of day answer "when" as well (二十世纪初期, 十八岁, 早上)
    r"|世纪|年代|时期|时候|岁|季|早上|晚上|上午|下午|中午|凌晨|夜|周|星期|之后|以后"
)
# "谁/哪位/who" is answered by a sentence naming a person.
PERSON_QUESTION = re.compile(r"谁|哪位|何人|\bwho(?:m|se)?\b", re.I)
# "哪所学校/which hospital" is answered by a sentence naming a place or body of that kind
# (a word ending in one of its endings: 中学, 总医院, 体育局); "哪里/where" by any place
# or body. Rows: the kind as a Chinese question says it, as an English one does, endings.
PLACE_KINDS = (
    ("学校", r"schools?", "学校|中学|小学|大学|学院"),
    ("医院", r"hospitals?", "医院"),
    ("公司|企业", r"compan(?:y|ies)|firms?|enterprises?", "公司|企业|集团|厂"),
    ("银行", r"banks?", "银行"),
    (
        "部门|单位|机构",
        r"bod(?:y|ies)|departments?|bureaus?|agenc(?:y|ies)|authorit(?:y|ies)",
        "局|委|厅|部|办|中心|政府|委员会|协会|联合会",
    ),
    ("县", r"count(?:y|ies)", "县"),
    ("村", r"villages?", "村"),
)
ANY_PLACE = "|".join(endings for _, _, endings in PLACE_KINDS) + (
    "|省|市|区|州|镇|乡|街|路|馆|站|港|园|场|楼|山|湖|岛"  # where: 勃利服务区, 体育馆
)
WHERE_QUESTION = re.compile(r"哪里|哪儿|什么地方|何处|何地|\bwhere\b", re.I)
# jieba part-of-speech tags: person names; place and organisation names.
PERSON_TAGS = frozenset({"nr", "nrt", "nrfg"})
NAME_TAGS = frozenset({"ns", "nt"})
# Words jieba tags as places that name no particular one.
GENERIC_PLACES = frozenset(
    ["城市", "全国", "全省", "全市", "全县", "国内", "国外", "海外", "境内", "境外", "地区", "当地",
     "本地", "农村", "城乡", "乡村", "省内", "市内", "县城", "中外", "各地", "外地", "城区", "市区",
     "基层", "社区"]
)  # fmt: skip
# Words between the attribute and the question word that are not the attribute.
FILLER_WORDS = frozenset(
    ["大约", "大概", "一共", "共", "约", "总共", "预计", "能", "可", "可以", "将", "会", "到", "了",
     "到了", "达", "已", "已经", "目前", "分别", "各"]
)  # fmt: skip
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
        ending = re.compile(f"(?:{self.place})$")
        any_name = self.place == ANY_PLACE
        previous = ""
        for word, flag in _tagged_sentence(folded):
            name = word if len(word) > 2 else previous + word
            kind = ending.search(word) and (len(word) > 2 or previous)
            named = kind or (any_name and flag in NAME_TAGS and word not in GENERIC_PLACES)
            if named and name not in self.question:
                return True
            previous = word if flag[:1] in ("n", "m") else ""
        return False

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


def mark_sentences(candidates: list[Candidate], terms: QueryTerms) -> None:
    """Split each candidate into sentences and score them against the question."""
    for c in candidates:
        c.spans = sentence_spans(c.chunk.text)
        sentences = [c.chunk.text[a:b] for a, b in c.spans]
        c.sentence_fits = [terms.fits(text) for text in sentences]
        c.sentence_scores = [
            terms.sentence_score(text, fits)
            for text, fits in zip(sentences, c.sentence_fits, strict=True)
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
