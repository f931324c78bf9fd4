"""Follow-up questions are resolved against the previous question; others pass unchanged."""

from __future__ import annotations

import pytest

from rag import contextualize, is_english
from rag.conversation import Topic, topic_of

AREA = "七台河冰雪经济产业园研创中心项目的总建筑面积是多少？"
SUBJECT = "七台河冰雪经济产业园研创中心项目"
EN_AREA = "What is the total floor area of the Qitaihe ice and snow industrial park R&D center?"


@pytest.mark.parametrize(
    "follow_up,expected",
    [
        ("那它的总投资呢？", f"{SUBJECT}的总投资是多少"),
        ("它的总投资呢", f"{SUBJECT}的总投资是多少"),
        ("总投资呢？", f"{SUBJECT}的总投资是多少"),
        ("那么总投资呢？", f"{SUBJECT}的总投资是多少"),
        ("其总投资是多少？", f"{SUBJECT}的总投资是多少"),
        ("它们的产值呢？", f"{SUBJECT}的产值是多少"),
        ("该项目什么时候投产？", f"{SUBJECT}什么时候投产"),
        ("这个项目在哪里？", f"{SUBJECT}在哪里"),
        ("那它的开工时间呢？", f"{SUBJECT}的开工时间是什么时候"),
        ("还有呢？", SUBJECT),
    ],
)
def test_chinese_follow_ups_take_the_previous_subject(follow_up: str, expected: str) -> None:
    assert contextualize(follow_up, [AREA]) == expected


@pytest.mark.parametrize(
    "question",
    [
        "九龙抽水蓄能电站项目的总投资是多少？",
        "宝泰隆一矿的设计产能是多少？",
        "七台河市有哪些项目，其中最大的是哪个？",  # "其中" is not the pronoun "其"
        "其他项目的进度如何？",  # "其他" is not "其" either
        "绥芬河市签约了多少个项目？",
    ],
)
def test_self_contained_questions_are_returned_unchanged(question: str) -> None:
    assert contextualize(question, [AREA]) == question


def test_an_elliptical_question_naming_its_own_subject_keeps_it() -> None:
    assert contextualize("那七台河市的人口呢？", [AREA]) == "七台河市的人口是多少"


def test_a_follow_up_in_traditional_characters_is_searched_in_simplified() -> None:
    history = ["七台河冰雪经济产业园研创中心项目的总建筑面积是多少"]
    resolved = contextualize("那它的總投資呢？", history)
    assert resolved == "七台河冰雪经济产业园研创中心项目的总投资是多少"


def test_without_history_nothing_changes() -> None:
    assert contextualize("那它的总投资呢？", []) == "那它的总投资呢？"
    assert contextualize("那它的总投资呢？", ["", "  "]) == "那它的总投资呢？"


def test_the_most_recent_question_is_the_one_followed_up() -> None:
    history = ["宝泰隆一矿的设计产能是多少？", AREA]
    assert contextualize("那它的总投资呢？", history) == f"{SUBJECT}的总投资是多少"


def test_a_chain_of_follow_ups_keeps_its_topic_when_resolved_queries_are_passed() -> None:
    # the chat passes the searched queries back; the last one alone must carry the topic
    first = contextualize("那它的总投资呢？", [AREA])
    assert first == f"{SUBJECT}的总投资是多少"
    history = ["宝泰隆一矿的设计产能是多少？", first]  # the topic is only in the resolved one
    assert contextualize("该项目什么时候投产？", history) == f"{SUBJECT}什么时候投产"


def test_a_subject_without_de_ends_at_its_named_entity() -> None:
    assert topic_of("九龙抽水蓄能电站项目总投资多少？") == Topic("九龙抽水蓄能电站项目", "多少")
    assert topic_of("七台河市开展了哪些招商活动？").subject == "七台河市"


@pytest.mark.parametrize(
    "follow_up,expected",
    [
        (
            "what about its investment?",
            "What is the investment of the Qitaihe ice and snow industrial park R&D center",
        ),
        (
            "And the total investment?",
            "What is the total investment of the Qitaihe ice and snow industrial park R&D center",
        ),
        (
            "When will it be finished?",
            "When will the Qitaihe ice and snow industrial park R&D center be finished",
        ),
    ],
)
def test_english_follow_ups(follow_up: str, expected: str) -> None:
    assert contextualize(follow_up, [EN_AREA]) == expected


def test_english_self_contained_question_is_unchanged() -> None:
    question = "How many jobs will the Baotailong mine create?"
    assert contextualize(question, [EN_AREA]) == question


def test_english_subject_stops_before_the_predicate() -> None:
    topic = topic_of("When did the Jiulong pumped storage power station get approved?")
    assert topic.subject == "the Jiulong pumped storage power station"


def test_an_english_follow_up_of_a_chinese_question_uses_the_chinese_subject() -> None:
    assert contextualize("What about its investment?", [AREA]) == (
        f"What is the investment of {SUBJECT}"
    )


def test_is_english() -> None:
    assert is_english("How many turbines?")
    assert not is_english("风机有多少台？")
    assert not is_english("Jiulong 电站")
    assert not is_english("2021？")
