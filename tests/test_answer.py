"""The answer decision: found or not, the threshold used, and the reason given."""

from __future__ import annotations

import pytest

from rag import Citation, Hit
from rag.answer import decide
from rag.calibration import default_calibration
from rag.ranking import QueryTerms
from rag.text import normalise_query

CALIBRATION = default_calibration()
THRESHOLD = CALIBRATION.thresholds


def hit(score: float, text: str = "五大连池市选取了614个风机点位。", fits: bool = True) -> Hit:
    citation = Citation("a.txt", "五大连池风电", "", 1, 1, 0, len(text))
    return Hit(1, score, text, citation, "a.txt#0:0", 0, len(text), fits)


def answer_to(question: str, hits: list[Hit], calibrated: bool = True, size: int = 10):  # type: ignore[no-untyped-def]
    terms = QueryTerms.of(normalise_query(question))
    return decide(question, terms, hits, CALIBRATION, calibrated, size)


def test_a_chinese_answer_needs_the_chinese_threshold() -> None:
    question = "五大连池选取了多少个风机点位？"
    found = answer_to(question, [hit(THRESHOLD["chinese"] + 0.01)])
    assert found.found and found.threshold == THRESHOLD["chinese"] and "reaches" in found.reason
    refused = answer_to(question, [hit(THRESHOLD["chinese"] - 0.01)])
    assert not refused.found and f"below {THRESHOLD['chinese']:.2f}" in refused.reason


def test_an_english_question_gets_the_lower_threshold_only_when_a_name_is_shared() -> None:
    between = (THRESHOLD["cross_lingual_named"] + THRESHOLD["cross_lingual_unnamed"]) / 2
    named = answer_to("How many wind turbine sites did Wudalianchi select?", [hit(between)])
    assert named.threshold == THRESHOLD["cross_lingual_named"] and named.found
    unnamed = answer_to("How many moons does Jupiter have?", [hit(between)])
    assert unnamed.threshold == THRESHOLD["cross_lingual_unnamed"] and not unnamed.found


def test_a_passage_without_the_asked_form_is_refused_whatever_its_score() -> None:
    refused = answer_to("五大连池选取了多少个风机点位？", [hit(9.0, fits=False)])
    assert not refused.found and "kind of answer" in refused.reason


def test_uncalibrated_scores_are_judged_by_the_form_alone() -> None:
    lexical = answer_to("五大连池选取了多少个风机点位？", [hit(0.1)], calibrated=False)
    assert lexical.found and lexical.threshold is None


@pytest.mark.parametrize(("size", "words"), [(0, "no articles"), (10, "shares a word")])
def test_nothing_retrieved_says_why(size: int, words: str) -> None:
    empty = answer_to("五大连池选取了多少个风机点位？", [], size=size)
    assert not empty.found and words in empty.reason and empty.to_dict()["hits"] == []
