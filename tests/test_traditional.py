"""Articles and questions in traditional characters are compared in simplified ones.

Questions are searched in simplified characters; an article written in traditional ones
must be read the same way by every literal comparison (bigram overlap, the asked
attribute, unit, place, person and date, the names a question mentions, BM25 tokens),
or the passage that answers is found and then refused.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from rag import Config
from rag.conversation import contextualize
from rag.lexical import BM25sIndex
from rag.ranking import QueryTerms
from rag.retrieval import Retriever
from rag.text import fold, normalise_query, tokenize

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"

# The sentence answering 「宝泰隆一矿的设计产能是多少？」, in both scripts.
CAPACITY_SIMPLIFIED = "这座煤炭资源储量1.38亿吨，设计产能90万吨/年的现代化矿井"
CAPACITY_TRADITIONAL = "這座煤炭資源儲量1.38億噸，設計產能90萬噸/年的現代化礦井"


# ----------------------------------------------------------------------------- folding


def test_fold_writes_traditional_text_in_simplified_characters() -> None:
    assert fold("寶泰隆一礦設計產能９０萬噸／年") == "宝泰隆一矿设计产能90万吨/年"
    assert fold(CAPACITY_TRADITIONAL) == fold(CAPACITY_SIMPLIFIED)
    article = "\n".join(f"{CAPACITY_TRADITIONAL}；第{i}句。乾隆年間，反覆" for i in range(100))
    assert len(article) > 2000  # converted sentence by sentence
    assert fold(article) == fold(
        article.replace(CAPACITY_TRADITIONAL, CAPACITY_SIMPLIFIED).replace(
            "乾隆年間，反覆", "乾隆年间,反复"
        )
    )
    assert normalise_query("寶泰隆一礦的設計產能是多少？") == "宝泰隆一矿的设计产能是多少?"


def test_simplified_text_keeps_its_characters_and_phrases_are_converted() -> None:
    for text in (CAPACITY_SIMPLIFIED, "什么时候覆盖全市？", "GDP 增长 5.2%", ""):
        assert fold(text) == unicodedata.normalize("NFKC", text).lower()
    assert fold("乾隆年間，反覆") == "乾隆年间,反复"  # phrases, not only characters


# ----------------------------------------------------------------------------- the answer's form


def test_a_traditional_sentence_fits_and_overlaps_a_simplified_question() -> None:
    terms = QueryTerms.of("宝泰隆一矿的设计产能是多少？")
    assert terms.attribute == "产能"
    assert terms.fits(CAPACITY_SIMPLIFIED)
    assert terms.fits(CAPACITY_TRADITIONAL)
    assert terms.overlap(CAPACITY_TRADITIONAL) == terms.overlap(CAPACITY_SIMPLIFIED) > 0.3
    assert terms.sentence_score(CAPACITY_TRADITIONAL) == terms.sentence_score(CAPACITY_SIMPLIFIED)
    assert terms.answers_quantity(CAPACITY_TRADITIONAL)


def test_a_traditional_question_reads_as_its_simplified_form() -> None:
    simplified = QueryTerms.of("宝泰隆一矿的设计产能是多少？")
    assert QueryTerms.of("寶泰隆一礦的設計產能是多少？") == simplified
    assert simplified.fits(CAPACITY_TRADITIONAL)


@pytest.mark.parametrize(
    ("question", "answer", "other"),
    [
        # a unit: 多少台 is answered by 32臺 (台 is 臺 in traditional)
        ("七台河今年又装了多少台公共充电桩？", "今年新裝公共充電樁32臺。", "今年新裝公共充電樁。"),
        # an amount with its unit: 多少个 by 160個
        (
            "哈尔滨12345热线的人工座席增加到了多少个？",
            "人工座席從日均120個增加到160個。",
            "人工座席有所增加。",
        ),
        # a kind of place: 哪所学校 by 第一中學
        (
            "哪所学校的学生参加了研学？",
            "七臺河市第一中學的學生參加了研學活動。",
            "學生參加了研學活動。",
        ),
        # a time: 什么时候 by 建成之後
        ("项目什么时候带动就业？", "項目建成之後將帶動就業。", "項目將帶動就業。"),
        # a total, named exactly: 总投资 by 總投資
        ("项目的总投资是多少？", "項目總投資68億元。", "項目投資68億元。"),
    ],
    ids=["unit", "count", "place", "date", "total"],
)
def test_traditional_sentences_hold_the_asked_form(question: str, answer: str, other: str) -> None:
    terms = QueryTerms.of(question)
    assert terms.asks_form
    assert terms.fits(answer)
    assert not terms.fits(other)


# ----------------------------------------------------------------------------- BM25 tokens

TEXTS = [
    "七台河冰雪经济产业园研创中心项目总建筑面积2800平方米。",
    "绥芬河市2021年以来签约项目141个，签约额达到三百亿元。",
    "五大连池市选取了614个风机点位，规划风电总装机容量3837.5MW。",
]
TEXTS_TRADITIONAL = [
    "七臺河冰雪經濟產業園研創中心項目總建築面積2800平方米。",
    "綏芬河市2021年以來簽約項目141個，簽約額達到三百億元。",
    "五大連池市選取了614個風機點位，規劃風電總裝機容量3837.5MW。",
]


@pytest.mark.parametrize("tokenizer", ["jieba", "bigram"])
def test_traditional_text_is_tokenised_in_simplified_words(tokenizer: str) -> None:
    for simplified, traditional in zip(TEXTS, TEXTS_TRADITIONAL, strict=True):
        assert tokenize(traditional, tokenizer) == tokenize(simplified, tokenizer)
        assert tokenize(traditional, tokenizer, pinyin=True) == tokenize(
            simplified, tokenizer, pinyin=True
        )


def test_simplified_queries_find_traditional_articles_lexically() -> None:
    index = BM25sIndex("jieba")
    index.index(np.arange(3), TEXTS_TRADITIONAL)
    assert index.search("绥芬河签约了多少个项目", 3)[1].tolist()[:1] == [1]
    assert index.search("綏芬河簽約了多少個項目", 3)[1].tolist()[:1] == [1]
    assert index.search("冰雪经济产业园的总建筑面积", 3)[1].tolist()[:1] == [0]
    assert index.knows("绥芬河市") and index.knows("五大连池")


# ----------------------------------------------------------------------------- follow-ups


def test_a_follow_up_to_a_traditional_question_is_resolved_in_simplified() -> None:
    history = ["寶泰隆一礦的設計產能是什麼？"]
    assert contextualize("那它呢？", history) == "宝泰隆一矿是什么"
    assert contextualize("那總投資呢？", ["寶泰隆一礦的設計產能是多少？"]) == (
        "宝泰隆一矿的总投资是多少"
    )


# ----------------------------------------------------------------------------- end to end

# Answerable seed questions (eval/qa_seeds.jsonl) found on the simplified seeds, over four
# articles: an attribute (产能), a unit (几场, 多少个), a place named (哈尔滨, 七台河).
QUESTION_IDS = ("s011", "s039", "s108", "s128")


def _questions() -> list[dict[str, str]]:
    rows = [json.loads(line) for line in (ROOT / "eval" / "qa_seeds.jsonl").open(encoding="utf-8")]
    return [row for row in rows if row["id"] in QUESTION_IDS]


def _s2t(text: str) -> str:
    from opencc import OpenCC

    return str(OpenCC("s2t").convert(text))


def _plain(text: str) -> str:
    """``text`` in simplified, half-width characters, converted here, not by ``rag``."""
    from opencc import OpenCC

    return unicodedata.normalize("NFKC", OpenCC("t2s").convert(text))


def _failures(retriever: Retriever, questions: list[tuple[str, dict[str, str]]]) -> list[str]:
    """The questions not answered (found, the right passage first), described."""
    failures = []
    for question, row in questions:
        answer = retriever.ask(question)
        top = answer.hits[0] if answer.hits else None
        right = (
            top is not None
            and top.citation.file == row["doc"]
            and _plain(row["evidence"]) in _plain(top.text)
        )
        if not (answer.found and right):
            where = top.citation.file if top else None
            failures.append(
                f"{question}: found={answer.found}, top passage right={right} ({where})"
            )
    return failures


@pytest.mark.slow
def test_traditional_articles_answer_questions_in_either_script(
    with_model: Path, tmp_path: Path
) -> None:
    corpus = tmp_path / "traditional"
    corpus.mkdir()
    for path in sorted(SEEDS.glob("*.txt")):
        (corpus / path.name).write_text(_s2t(path.read_text(encoding="utf-8")), encoding="utf-8")
    retriever = Retriever.from_folder(corpus, Config())
    rows = _questions()
    assert len(rows) == len(QUESTION_IDS)
    asked = [(row["question"], row) for row in rows] + [
        (_s2t(row["question"]), row) for row in rows
    ]
    assert "寶泰隆一礦的設計產能是多少？" in [question for question, _ in asked]
    assert _failures(retriever, asked) == []


@pytest.mark.slow
def test_simplified_articles_answer_questions_typed_in_traditional(
    with_model: Path, tmp_path: Path
) -> None:
    retriever = Retriever.from_folder(SEEDS, Config())
    asked = [(_s2t(row["question"]), row) for row in _questions()]
    assert _failures(retriever, asked) == []
