"""Answering: the hits, the sentence that best answers, and whether the articles answer at all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    reason: str = ""  # why ``found`` came out as it did, in words a reader can check

    @property
    def best(self) -> Hit | None:
        """The top hit, whose highlighted sentence is the answer."""
        return self.hits[0] if self.hits else None

    @property
    def sentence(self) -> str:
        """The best answering sentence ("" when nothing was retrieved)."""
        return self.hits[0].sentence if self.hits else ""

    def to_dict(self) -> dict[str, Any]:
        """The answer as JSON-ready data (the CLI's ``--json`` and the chat's ``/ask``).

        Returns:
            ``question``, ``found``, ``reason``, ``sentence``, ``citation`` (of the best
            hit, "" when none) and ``hits`` (each with its citation and sentence).
        """
        return {
            "question": self.question,
            "found": self.found,
            "reason": self.reason,
            "sentence": self.sentence,
            "citation": str(self.hits[0].citation) if self.hits else "",
            "hits": [hit.to_dict() for hit in self.hits],
        }


def decide(hits: list[Hit], min_score: float | None) -> tuple[bool, str]:
    """Whether the top hit counts as an answer, and why.

    Args:
        hits: ranked hits.
        min_score: the calibrated threshold on the top hit's score, or ``None``.

    Returns:
        ``(found, reason)``.
    """
    if not hits:
        return False, "no passage shares a word or meaning with the question"
    top = hits[0]
    if not top.fits_question:
        return False, "no sentence of the best passage states the kind of answer asked for"
    if min_score is None:
        return True, "the best passage states the kind of answer asked for (no score threshold)"
    if top.score < min_score:
        return False, f"best score {top.score:.2f} below {min_score:.2f}"
    return True, f"best score {top.score:.2f} reaches {min_score:.2f}"
