"""Answering: the hits, the sentence that best answers, and whether the articles answer at all."""

from __future__ import annotations

from dataclasses import dataclass, field

from .records import Hit


@dataclass(frozen=True)
class Answer:
    """The reply to one question.

    ``found`` is ``False`` when the articles most likely do not hold the answer; the
    hits are then only the closest candidates, to be shown as weak. ``threshold`` is
    ``None`` where no calibrated threshold exists (lexical mode, or no second stage).
    """

    question: str
    hits: list[Hit] = field(default_factory=list)
    found: bool = False
    threshold: float | None = None  # the top-hit score ``found`` was decided against

    @property
    def best(self) -> Hit | None:
        """The top hit, whose highlighted sentence is the answer."""
        return self.hits[0] if self.hits else None

    @property
    def sentence(self) -> str:
        """The best answering sentence ("" when nothing was retrieved)."""
        return self.hits[0].sentence if self.hits else ""


def decide_found(hits: list[Hit], min_score: float | None) -> bool:
    """Whether the top hit counts as an answer.

    It must score at least the calibrated threshold (when there is one) and its
    answering sentence must hold the kind of answer asked for: a passage about the right
    project that never states its 总投资 does not answer 「…的总投资是多少？」.

    Args:
        hits: ranked hits.
        min_score: the calibrated threshold on the top hit's score, or ``None``.

    Returns:
        True when the articles are taken to answer the question.
    """
    if not hits or not hits[0].fits_question:
        return False
    return min_score is None or hits[0].score >= min_score
