"""Fitting a calibration from labelled questions: weights by pairwise logistic regression,
thresholds refusing all they can within the wrong-refusal budget, each Q&A set counting equally."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .calibration import FEATURES, THRESHOLD_KINDS, Calibration

MAX_PAIRS_PER_QUESTION = 60  # relevant × non-relevant pairs kept per question (the hardest)
# A kind of question with fewer examples of either outcome keeps the base threshold:
# a threshold moved by two or three questions is fitted to noise.
MIN_PER_OUTCOME = 5
# The share of answerable questions the thresholds may refuse (the product's target).
MAX_WRONGLY_REFUSED = 0.03


@dataclass
class LabelledQuestion:
    """One question's candidates, labelled against its Q&A set.

    Attributes:
        set_name: the Q&A set it comes from (sets are weighted equally).
        answerable: whether the articles answer it.
        features: ``(candidates, len(FEATURES))`` values.
        relevant: per candidate, whether it holds the evidence.
        fits: per candidate, whether a sentence of it holds the kind of answer asked for.
        kinds: per candidate, its threshold kind if it tops the list.
    """

    set_name: str
    answerable: bool
    features: np.ndarray
    relevant: np.ndarray
    fits: np.ndarray
    kinds: list[str]


@dataclass
class SetFigures:
    """How a calibration does on one set: ranking and the answer decision."""

    questions: int = 0
    answerable: int = 0
    hit1: float = 0.0
    mrr: float = 0.0
    refused: float | None = None  # share of unanswerable questions refused
    wrongly_refused: float = 0.0  # share of answerable questions refused


def scores(question: LabelledQuestion, weights: np.ndarray) -> np.ndarray:
    """The second-stage score of each candidate."""
    return np.asarray(question.features @ weights, dtype=np.float64)


def fit_weights(questions: Sequence[LabelledQuestion], strength: float = 1.0) -> np.ndarray:
    """Weights that rank relevant candidates above the others (pairwise logistic regression).

    Each pair (relevant, non-relevant) of a question is one example of the difference
    of their features; each set's pairs weigh as much in all as any other set's.

    Args:
        questions: the labelled questions (unanswerable ones and those without both a
            relevant and a non-relevant candidate add nothing).
        strength: inverse regularisation strength (scikit-learn's ``C``).

    Returns:
        One weight per feature, scaled so the two cosine weights sum to 2 (the scale
        the thresholds and the reasons shown to readers have always used).
    """
    from sklearn.linear_model import LogisticRegression

    x, y, w = _pairwise(questions, lambda q: q.features)
    model = LogisticRegression(C=strength, fit_intercept=False, max_iter=2000)
    model.fit(x, y, sample_weight=w * len(w))
    coef = model.coef_[0]
    cosine = coef[0] + coef[1]
    return coef * (2.0 / cosine) if cosine > 0 else coef


def fit_some_weights(
    questions: Sequence[LabelledQuestion], weights: np.ndarray, names: Sequence[str]
) -> np.ndarray:
    """Fit the weights of the features ``names`` only, the others held as they are.

    The other features enter as one column, their weighted sum (the current score); a
    pairwise logistic regression over that column and the named features gives each
    named feature's weight relative to it. With a handful of parameters and thousands
    of pairs the regression needs no regularisation.

    Args:
        questions: the labelled questions.
        weights: the current weights, in :data:`FEATURES` order.
        names: the features whose weights are fitted.

    Returns:
        All weights: the named ones fitted, the others unchanged.
    """
    from sklearn.linear_model import LogisticRegression

    columns = [FEATURES.index(name) for name in names]
    held = np.array(weights, dtype=np.float64)
    held[columns] = 0.0

    def design(q: LabelledQuestion) -> np.ndarray:
        return np.column_stack([q.features @ held, q.features[:, columns]])

    x, y, w = _pairwise(questions, design)
    model = LogisticRegression(C=1e12, fit_intercept=False, max_iter=5000)  # unregularised
    model.fit(x, y, sample_weight=w * len(w))
    coef = model.coef_[0]
    fitted = np.array(weights, dtype=np.float64)
    if coef[0] > 0:  # the current score must still count for something
        fitted[columns] = coef[1:] / coef[0]
    return fitted


def _pairwise(
    questions: Sequence[LabelledQuestion], design: Callable[[LabelledQuestion], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Differences of ``design`` rows of (relevant, non-relevant) candidate pairs, both ways.

    Returns:
        ``(x, y, sample_weight)``: each set weighs as much as any other.
    """
    diffs, weights = [], []
    per_set: dict[str, int] = defaultdict(int)
    pairs_of: list[tuple[str, np.ndarray]] = []
    for q in questions:
        if not q.answerable or q.relevant.all() or not q.relevant.any():
            continue
        rows = design(q)
        s = q.features[:, 0] + q.features[:, 1]  # the hardest non-relevant: closest in meaning
        negatives = np.flatnonzero(~q.relevant)
        negatives = negatives[np.argsort(-s[negatives])]
        positives = np.flatnonzero(q.relevant)
        keep = max(1, MAX_PAIRS_PER_QUESTION // len(positives))
        pairs = np.array([rows[p] - rows[n] for p in positives for n in negatives[:keep]])
        pairs_of.append((q.set_name, pairs))
        per_set[q.set_name] += 1
    for set_name, pairs in pairs_of:
        share = 1.0 / (len(per_set) * per_set[set_name] * len(pairs))
        diffs.extend([pairs, -pairs])
        weights.extend([np.full(len(pairs), share)] * 2)
    x = np.concatenate(diffs)
    y = np.concatenate(
        [np.ones(len(d)) if i % 2 == 0 else np.zeros(len(d)) for i, d in enumerate(diffs)]
    )
    return x, y, np.concatenate(weights)


def fit_thresholds(
    questions: Sequence[LabelledQuestion],
    weights: np.ndarray,
    base: dict[str, float],
    max_wrongly_refused: float = MAX_WRONGLY_REFUSED,
) -> dict[str, float]:
    """Per kind of question, the highest threshold that still answers nearly every answerable one.

    Refusing an answerable question costs the reader an answer that was there; answering
    an unanswerable one shows a wrong passage marked as weak only by its score. So the
    threshold refuses as much as it can while the answerable questions it refuses stay
    within ``max_wrongly_refused`` (each set's questions weighing as much as any other
    set's).

    Args:
        questions: the labelled questions.
        weights: the second-stage weights the scores are computed with.
        base: thresholds kept for kinds with too few examples (:data:`MIN_PER_OUTCOME`).
        max_wrongly_refused: the share of answerable questions the threshold may refuse.

    Returns:
        One threshold per :data:`THRESHOLD_KINDS` entry.
    """
    fitted = dict(base)
    for kind in THRESHOLD_KINDS:
        rows = []  # (top score, answerable, set) of questions whose top candidate fits
        for q in questions:
            s = scores(q, weights)
            top = int(np.argmax(s))
            if q.kinds[top] == kind and q.fits[top]:
                rows.append((float(s[top]), q.answerable, q.set_name))
        positives = [r for r in rows if r[1]]
        negatives = [r for r in rows if not r[1]]
        if len(positives) < MIN_PER_OUTCOME or len(negatives) < MIN_PER_OUTCOME:
            continue
        fitted[kind] = _highest_cut(positives, max_wrongly_refused)
    return fitted


def _highest_cut(positives: list[tuple[float, bool, str]], budget: float) -> float:
    """The highest cut refusing at most ``budget`` of the answerable (set-weighted) questions."""
    count: dict[str, int] = defaultdict(int)
    for _, _, name in positives:
        count[name] += 1
    ordered = sorted(positives)
    refused = 0.0
    cut = ordered[0][0] - 1e-3
    for index, (score, _, name) in enumerate(ordered):
        refused += 1.0 / (len(count) * count[name])
        if refused > budget + 1e-12:
            break
        following = ordered[index + 1][0] if index + 1 < len(ordered) else score + 2e-3
        cut = (score + following) / 2
    return round(float(cut), 4)


def fit_calibration(
    questions: Sequence[LabelledQuestion],
    base: Calibration,
    fitted_on: list[dict[str, Any]],
    strength: float = 1.0,
    thresholds_only: bool = False,
    only: Sequence[str] = (),
) -> Calibration:
    """A calibration fitted on ``questions``.

    Args:
        questions: labelled questions of one or more sets.
        base: supplies what is not fitted (sentence choice weight, thresholds of kinds
            with too few examples, and with ``only`` the other weights).
        fitted_on: a description of the sets, recorded in the calibration.
        strength: inverse regularisation strength of the weights.
        thresholds_only: keep ``base``'s weights, fit the thresholds only.
        only: fit just these features' weights (:func:`fit_some_weights`).

    Returns:
        The fitted :class:`Calibration`.
    """
    if thresholds_only:
        weights = np.array(base.weight_vector())
    elif only:
        weights = fit_some_weights(questions, np.array(base.weight_vector()), only)
    else:
        weights = fit_weights(questions, strength)
    thresholds = fit_thresholds(questions, weights, base.thresholds)
    return Calibration(
        weights={name: round(float(w), 4) for name, w in zip(FEATURES, weights, strict=True)},
        thresholds=thresholds,
        sentence_literal=base.sentence_literal,
        fitted_on=fitted_on,
        method=(
            (
                "weights kept"
                if thresholds_only
                else f"weights of {', '.join(only)} by pairwise logistic regression against"
                " the score of the others (kept)"
                if only
                else "pairwise logistic regression of relevant"
                f" over non-relevant candidates (C={strength})"
            )
            + f"; per-kind thresholds refusing at most {MAX_WRONGLY_REFUSED:.0%} of answerable"
            " questions; each set weighted equally"
        ),
    )


def set_figures(questions: Sequence[LabelledQuestion], calibration: Calibration) -> SetFigures:
    """Hit@1, MRR over the candidates, refusals and wrong refusals under ``calibration``.

    Args:
        questions: labelled questions (of one set, usually).
        calibration: the weights and thresholds to apply.

    Returns:
        The figures.
    """
    weights = np.array(calibration.weight_vector())
    out = SetFigures(questions=len(questions))
    hits, reciprocal, refused, wrongly = 0, 0.0, 0, 0
    unanswerable = 0
    for q in questions:
        s = scores(q, weights)
        order = np.argsort(-s, kind="stable")
        top = int(order[0])  # found as rag.answer decides it for the top candidate
        found = bool(q.fits[top]) and s[top] >= calibration.thresholds[q.kinds[top]]
        if q.answerable:
            out.answerable += 1
            ranks = np.flatnonzero(q.relevant[order])
            hits += bool(q.relevant[top])
            reciprocal += 1.0 / (ranks[0] + 1) if len(ranks) and ranks[0] < 10 else 0.0
            wrongly += not found
        else:
            unanswerable += 1
            refused += not found
    if out.answerable:
        out.hit1 = hits / out.answerable
        out.mrr = reciprocal / out.answerable
        out.wrongly_refused = wrongly / out.answerable
    out.refused = refused / unanswerable if unanswerable else None
    return out
