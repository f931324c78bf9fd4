"""Quality gate: retrieval and refusal on the seeds Q&A set may not fall below today's figures.

The thresholds sit one question under the figures measured when they were set (README
"Retrieval quality": Hit@1 0.964, Hit@5 1.000, MRR@10 0.978, unanswerable refused 0.760,
answerable wrongly refused 0.015 over 137 answerable and 25 unanswerable questions), so
a change that loses more than one question fails here rather than in a report nobody reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.qa import load_jsonl
from eval.run import evaluate
from rag import Config

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ANSWERABLE, UNANSWERABLE = 137, 25
FLOORS = {
    "hit_rate@1": 0.964 - 1 / ANSWERABLE,
    "hit_rate@5": 1.000 - 1 / ANSWERABLE,
    "mrr@10": 0.978 - 1 / ANSWERABLE,
}
MIN_REFUSED_UNANSWERABLE = 0.760 - 1 / UNANSWERABLE
MAX_REFUSED_ANSWERABLE = 0.015 + 1 / ANSWERABLE


def test_seeds_set_keeps_its_figures(with_model: Path, tmp_path: Path) -> None:
    pairs = load_jsonl(ROOT / "eval" / "qa_seeds.jsonl")
    assert sum(p.answerable for p in pairs) == ANSWERABLE
    [report] = evaluate(pairs, Config(index_dir=tmp_path / "ix"), [{}], progress=False)
    for metric, floor in FLOORS.items():
        assert report.metrics[metric] >= floor - 1e-9, (metric, report.metrics[metric])
    assert report.refused_unanswerable is not None
    assert report.refused_unanswerable >= MIN_REFUSED_UNANSWERABLE - 1e-9, (
        report.refused_unanswerable
    )
    assert report.refused_answerable <= MAX_REFUSED_ANSWERABLE + 1e-9, report.refused_answerable
