"""Follow-up questions in a chat: resolve pronouns and ellipsis against the previous question."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .rules import (
    EN_AUX,
    EN_LEAD,
    EN_POSSESSIVE_LEAD,
    EN_PREDICATE,
    EN_PRONOUN,
    EN_STARTS_FOLLOW_UP,
    EN_WH,
    END_PUNCT,
    ZH_ATTRIBUTE_TAILS,
    ZH_CONNECTIVES,
    ZH_DEMONSTRATIVES,
    ZH_ENTITY_END,
    ZH_GENERIC_NOUNS,
    ZH_PERSONAL,
    ZH_PURE_TAIL,
    ZH_QUESTION,
)
from .text import is_english, load_jieba, normalise_query

__all__ = ["Topic", "contextualize", "topic_of"]


@dataclass(frozen=True)
class Topic:
    """What a self-contained question is about.

    Attributes:
        subject: the thing asked about ("七台河冰雪经济产业园研创中心项目").
        tail: the question words that end it ("是多少"), reusable after an ellipsis;
            "" when the question does not end in bare question words.
    """

    subject: str
    tail: str = ""


def contextualize(question: str, history: list[str]) -> str:
    """Turn a follow-up question into a self-contained one using the previous question.

    Short or elliptical follow-ups ("那它的总投资呢？", "该项目什么时候投产？",
    "what about its investment?") are combined with the topic of the most recent
    question in ``history``; pronouns are replaced by that topic and a bare ellipsis
    borrows the previous question's question words. Rule based and deterministic.

    Args:
        question: what the user just asked.
        history: earlier questions of the conversation, oldest first; pass the
            already-resolved (searched) forms so chains of follow-ups keep their topic.

    Returns:
        The question to search with: the resolved form, or ``question`` unchanged when
        it is self-contained or there is nothing to resolve it against.
    """
    previous = next((q for q in reversed(history) if q and q.strip()), "")
    if not previous or not question.strip():
        return question
    # in simplified characters, as the searched query is shown: a self-contained question
    # in traditional ones stays as typed in the history, and its subject is reused here
    previous = normalise_query(previous)
    if is_english(question):
        resolved = _resolve_english(question, previous)
    else:
        resolved = _resolve_chinese(normalise_query(question), previous)
    return resolved if resolved is not None else question


def topic_of(question: str) -> Topic:
    """The subject of a self-contained question and its reusable question words.

    Args:
        question: a Chinese or English question.

    Returns:
        Its :class:`Topic`.
    """
    if is_english(question):
        return _english_topic(question)
    return _chinese_topic(question)


# ----------------------------------------------------------------------------- Chinese


def _chinese_topic(question: str) -> Topic:
    text = _strip_end(question).removeprefix("请问").strip()
    match = ZH_QUESTION.search(text)
    if match is None:
        head, tail = text, ""
    elif match.start() == 0:
        # "哪些项目总投资超过10亿元": the question word leads; the rest is the topic.
        return Topic(subject=text[match.end() :] or text)
    else:
        head, tail = text[: match.start()], text[match.start() :]
    tail = tail if ZH_PURE_TAIL.match(tail) else ""
    return Topic(subject=_zh_subject(head) or head, tail=tail)


def _zh_subject(head: str) -> str:
    """The subject within the part of a question before its question words."""
    head = head.strip()
    if "的" in head[1:]:
        return head[: head.rindex("的")].strip()
    named = ZH_ENTITY_END.match(head)
    return named.group(0) if named else head


def _resolve_chinese(question: str, previous: str) -> str | None:
    tokens = _zh_tokens(_strip_end(question))
    led = bool(tokens) and tokens[0] in ZH_CONNECTIVES
    while len(tokens) > 1 and tokens[0] in ZH_CONNECTIVES:
        tokens = tokens[1:]
    elliptical = bool(tokens) and tokens[-1] == "呢"
    if elliptical:
        tokens = tokens[:-1]
    topic = topic_of(previous)
    body = _replace_zh_pronoun(tokens, topic.subject)
    if body is None:
        rest = "".join(tokens)
        if not elliptical or (not led and len(rest) > 8):
            return None  # no pronoun and no short "…呢": a question of its own
        if not rest:
            return topic.subject  # "还有呢？": more about the same thing
        # "那总投资呢？" borrows the subject; "那七台河市的人口呢？" names its own.
        body = rest if "的" in rest else f"{topic.subject}的{rest}"
    if elliptical and not ZH_QUESTION.search(body):
        body += _zh_tail_for(body, topic.tail)
    return body


def _zh_tail_for(body: str, previous_tail: str) -> str:
    """Question words to close an elliptical follow-up: by its attribute, else reused."""
    for endings, tail in ZH_ATTRIBUTE_TAILS:
        if body.endswith(endings):
            return tail
    return previous_tail


def _replace_zh_pronoun(tokens: list[str], subject: str) -> str | None:
    """``tokens`` joined with the first pronoun replaced by ``subject`` (None: no pronoun)."""
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token in ZH_PERSONAL:
            glue = "的" if token == "其" and following not in ("", "的") else ""
            return "".join(tokens[:i]) + subject + glue + "".join(tokens[i + 1 :])
        if token in ZH_DEMONSTRATIVES and (following in ZH_GENERIC_NOUNS or token == "该"):
            skip = 2 if following in ZH_GENERIC_NOUNS else 1
            return "".join(tokens[:i]) + subject + "".join(tokens[i + skip :])
    return None


def _zh_tokens(text: str) -> list[str]:
    return [t for t in load_jieba().lcut(text) if t.strip()]


# ----------------------------------------------------------------------------- English


def _english_topic(question: str) -> Topic:
    text = _strip_end(question)
    if re.search(r"\bof\b", text, re.IGNORECASE):
        subject = re.split(r"\bof\b", text, flags=re.IGNORECASE)[-1].strip()
    else:
        subject = EN_AUX.sub("", EN_WH.sub("", text)).strip()
        subject = EN_PREDICATE.split(subject, maxsplit=1)[0].strip()
    return Topic(subject=subject or text)


def _resolve_english(question: str, previous: str) -> str | None:
    text = _strip_end(question)
    led = bool(EN_STARTS_FOLLOW_UP.match(text))
    if not led and not EN_PRONOUN.search(text):
        return None
    subject = topic_of(previous).subject
    if led:
        attribute = EN_POSSESSIVE_LEAD.sub("", EN_LEAD.sub("", text, count=1)).strip()
        if not EN_WH.match(attribute):
            return f"What is the {attribute} of {subject}" if attribute else subject
        text = attribute
    return EN_PRONOUN.sub(lambda m: _en_replacement(m.group(1), subject), text, count=1)


def _en_replacement(pronoun: str, subject: str) -> str:
    return f"{subject}'s" if pronoun.lower() in ("its", "their") else subject


def _strip_end(text: str) -> str:
    return text.strip().rstrip(END_PUNCT).strip()
