"""The answer decision, in one place: do the articles answer the question, and why.

The ranked hits arrive with :attr:`Hit.fits_question` already set by the second stage
(the passage holds the kind of answer asked for, and its article names the places the
question names); here the top hit is also held against the calibrated score threshold
for the question's language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .calibration import Calibration
from .ranking import QueryTerms, is_cross_lingual
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


def decide(
    question: str,
    terms: QueryTerms,
    hits: list[Hit],
    calibration: Calibration,
    calibrated: bool = True,
    library_size: int = 1,
) -> Answer:
    """Whether the articles answer ``question``, and why.

    Args:
        question: the question as asked.
        terms: its matchable terms (``QueryTerms.of`` the normalised question).
        hits: the ranked hits, best first.
        calibration: holds the thresholds.
        calibrated: whether the scores are the second stage's, which the thresholds are
            calibrated on (not in lexical mode or without the second stage).
        library_size: chunks in the library (0: say that it is empty).

    Returns:
        The :class:`Answer` with ``found``, the ``threshold`` used and the ``reason``.
    """
    threshold = (
        score_threshold(question, terms, hits[0], calibration) if hits and calibrated else None
    )
    found, reason = _verdict(hits, threshold)
    if not hits and not library_size:
        reason = "the library holds no articles yet"
    return Answer(question=question, hits=hits, found=found, threshold=threshold, reason=reason)


def threshold_kind(question: str, terms: QueryTerms, text: str, title: str) -> str:
    """Which of :data:`~rag.calibration.THRESHOLD_KINDS` applies when a passage tops the list.

    Questions in another language have their own thresholds (their cosines to Chinese
    text run lower), split by whether the passage (``text``, its article's ``title``)
    shares a name with the question.
    """
    if not is_cross_lingual(question):
        return "chinese"
    if terms.overlap(text) > 0 or terms.overlap(title) > 0:
        return "cross_lingual_named"
    return "cross_lingual_unnamed"


def score_threshold(question: str, terms: QueryTerms, top: Hit, calibration: Calibration) -> float:
    """The calibrated score the top hit needs (see :func:`threshold_kind`)."""
    kind = threshold_kind(question, terms, top.text, top.citation.title)
    return calibration.thresholds[kind]


def _verdict(hits: list[Hit], threshold: float | None) -> tuple[bool, str]:
    """``(found, reason)`` for the top hit against ``threshold`` (``None``: no threshold)."""
    if not hits:
        return False, "no passage shares a word or meaning with the question"
    top = hits[0]
    if not top.fits_question:
        return False, "no sentence of the best passage states the kind of answer asked for"
    if threshold is None:
        return True, "the best passage states the kind of answer asked for (no score threshold)"
    if top.score < threshold:
        return False, f"best score {top.score:.2f} below {threshold:.2f}"
    return True, f"best score {top.score:.2f} reaches {threshold:.2f}"
