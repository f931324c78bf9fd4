"""Scoring: the relevance rule, IR metrics through ranx, abstention and answer-sentence rates."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from .qa import QAPair, normalise

CUTOFFS = (1, 3, 5, 10)
METRICS = [f"hit_rate@{k}" for k in CUTOFFS] + ["mrr@10", "ndcg@10", "recall@10"]
LABELS = {f"hit_rate@{k}": f"Hit@{k}" for k in CUTOFFS} | {
    "mrr@10": "MRR@10",
    "ndcg@10": "nDCG@10",
    "recall@10": "Recall@10",
}


def contains_evidence(chunk_text: str, evidence: str) -> bool:
    """Whether a chunk holds a piece of evidence.

    Whitespace-, width- and case-insensitive. Evidence cut by a chunk boundary counts
    when the chunk holds at least half of it (and 4 characters) across that boundary.

    Args:
        chunk_text: the retrieved passage.
        evidence: the supporting text.

    Returns:
        True when the chunk is relevant for this evidence.
    """
    chunk, needle = normalise(chunk_text), normalise(evidence)
    if not needle:
        return False
    if needle in chunk:
        return True
    need = max(4, (len(needle) + 1) // 2)
    for size in range(len(needle) - 1, need - 1, -1):
        if chunk.endswith(needle[:size]) or chunk.startswith(needle[-size:]):
            return True
    return False


@dataclass
class QuestionResult:
    """What the system returned for one question."""

    pair: QAPair
    ranked: list[tuple[str, str, str]]  # (chunk id, file, text), best first
    found: bool
    top_sentence: str
    latency_ms: float
    scores: list[float] = field(default_factory=list)  # of ``ranked``
    threshold: float | None = None  # what ``found`` was decided against
    fits: list[bool] = field(default_factory=list)  # of ``ranked``: holds the asked-for form
    # of ``ranked``: the other files holding the same passage (a hit cites them all)
    also_files: list[tuple[str, ...]] = field(default_factory=list)

    def files_at(self, index: int) -> set[str]:
        """Every file the hit at ``index`` (0-based) cites."""
        also = self.also_files[index] if index < len(self.also_files) else ()
        return {self.ranked[index][1], *also}

    def margin(self, exclude_answer_docs: bool = False) -> float | None:
        """Top score minus the threshold (``None`` without a threshold or hits).

        With ``exclude_answer_docs``, hits from the answer's own documents are skipped:
        the margin the question would get were its documents not in the corpus. A top
        hit without the kind of answer asked for is refused at any threshold (``-inf``).
        """
        if self.threshold is None:
            return None
        docs = {f.doc for f in self.pair.facts} if exclude_answer_docs else set()
        fits = self.fits or [True] * len(self.ranked)
        kept = [
            (score, fit)
            for index, (score, fit) in enumerate(zip(self.scores, fits, strict=True))
            if not self.files_at(index) & docs
        ]
        if not kept:
            return None
        score, fit = kept[0]
        return score - self.threshold if fit else float("-inf")

    def evidence_ranks(self) -> dict[str, int]:
        """1-based rank of the first chunk holding each fact (facts not found absent)."""
        ranks: dict[str, int] = {}
        for rank, (_, _, text) in enumerate(self.ranked, start=1):
            files = self.files_at(rank - 1)
            for index, fact in enumerate(self.pair.facts):
                key = f"fact{index}"
                if (
                    key not in ranks
                    and fact.doc in files
                    and any(contains_evidence(text, t) for t in fact.texts)
                ):
                    ranks[key] = rank
        return ranks


@dataclass
class Report:
    """Every figure of one configuration's run."""

    name: str
    questions: int
    answerable: int
    metrics: dict[str, float]
    by_type: dict[str, dict[str, float]]
    refused_unanswerable: float | None
    refused_answerable: float
    answer_sentence: float
    latency_median_ms: float
    latency_p95_ms: float
    # share of the answerable questions refused when the sentences holding their evidence
    # are cut from the corpus (eval --remove-evidence; None when not measured)
    refused_evidence_removed: float | None = None
    evidence_removed_questions: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    results: list[QuestionResult] = field(default_factory=list, repr=False)
    evidence_removed_results: list[QuestionResult] = field(default_factory=list, repr=False)


def ir_metrics(results: list[QuestionResult]) -> dict[str, float]:
    """Hit@k, MRR@10, nDCG@10 and Recall@10 over answerable questions, computed by ranx.

    Relevance is per fact: a question's relevant "documents" are its facts, and a
    retrieved chunk stands for every fact it holds, at the rank it was retrieved.
    """
    from ranx import Qrels, Run, evaluate

    answerable = [r for r in results if r.pair.answerable]
    if not answerable:
        return {metric: 0.0 for metric in METRICS}
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for result in answerable:
        qid = result.pair.id
        qrels[qid] = {f"fact{i}": 1 for i in range(len(result.pair.facts))}
        scores: dict[str, float] = {}
        facts_at: dict[int, list[str]] = defaultdict(list)
        for key, rank in result.evidence_ranks().items():
            facts_at[rank].append(key)
        for rank, (chunk_id, _, _) in enumerate(result.ranked, start=1):
            # a chunk holding a fact (first time seen) stands for that fact at its rank
            for key in facts_at.get(rank) or [f"chunk:{chunk_id}"]:
                scores[key] = 1.0 / rank
        run[qid] = scores or {"none": 0.0}
    values = evaluate(Qrels(qrels), Run(run), METRICS, make_comparable=True)
    if isinstance(values, float):  # pragma: no cover - ranx returns a float for one metric
        values = {METRICS[0]: values}
    return {metric: float(values[metric]) for metric in METRICS}


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


def summarise(name: str, results: list[QuestionResult]) -> Report:
    """All figures for one configuration's results."""
    answerable = [r for r in results if r.pair.answerable]
    unanswerable = [r for r in results if not r.pair.answerable]
    by_type: dict[str, list[QuestionResult]] = defaultdict(list)
    for result in answerable:
        by_type[result.pair.type].append(result)
    latencies = [r.latency_ms for r in results]
    sentence_hits = [
        any(normalise(a) in normalise(r.top_sentence) for a in r.pair.answers)
        for r in answerable
        if r.pair.answers
    ]
    return Report(
        name=name,
        questions=len(results),
        answerable=len(answerable),
        metrics=ir_metrics(results),
        by_type={kind: ir_metrics(group) for kind, group in sorted(by_type.items())},
        refused_unanswerable=(
            sum(not r.found for r in unanswerable) / len(unanswerable) if unanswerable else None
        ),
        refused_answerable=(
            sum(not r.found for r in answerable) / len(answerable) if answerable else 0.0
        ),
        answer_sentence=sum(sentence_hits) / len(sentence_hits) if sentence_hits else 0.0,
        latency_median_ms=statistics.median(latencies) if latencies else 0.0,
        latency_p95_ms=percentile(latencies, 0.95),
        results=results,
    )


@dataclass(frozen=True)
class TradeoffPoint:
    """Refusal rates were every threshold moved by ``offset``."""

    offset: float
    answerable_refused: float
    unanswerable_refused: float | None
    removed_refused: float | None
    evidence_removed_refused: float | None = None


def abstention_tradeoff(
    results: list[QuestionResult],
    offsets: list[float],
    evidence_removed: Sequence[QuestionResult] = (),
) -> list[TradeoffPoint]:
    """The cost of each refusal threshold: answerable refused vs unanswerable answered.

    Three groups: answerable questions (refusing them is wrong), unanswerable ones
    (refusing is right) and answerable questions asked as if their documents were
    removed from the corpus (their best hit from any *other* document; refusing is
    right). The last stands in for re-indexing without the document: only the BM25
    statistics of the removed document differ. A fourth when given: the questions
    asked of the corpus with their evidence cut out (``eval --remove-evidence``).

    Args:
        results: one configuration's results (with scores and thresholds).
        offsets: shifts to apply to the configured thresholds, e.g. ``[-0.1, 0, 0.1]``.
        evidence_removed: that configuration's results with the evidence removed.

    Returns:
        One point per offset.
    """
    answerable = [m for r in results if r.pair.answerable and (m := r.margin()) is not None]
    unanswerable = [m for r in results if not r.pair.answerable and (m := r.margin()) is not None]
    removed = [
        m
        for r in results
        if r.pair.answerable and (m := r.margin(exclude_answer_docs=True)) is not None
    ]
    cut = [m for r in evidence_removed if (m := r.margin()) is not None]

    def refused(margins: list[float], offset: float) -> float | None:
        return sum(m < offset for m in margins) / len(margins) if margins else None

    return [
        TradeoffPoint(
            offset=offset,
            answerable_refused=refused(answerable, offset) or 0.0,
            unanswerable_refused=refused(unanswerable, offset),
            removed_refused=refused(removed, offset),
            evidence_removed_refused=refused(cut, offset),
        )
        for offset in offsets
    ]
