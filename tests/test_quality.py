"""Quality gate: retrieval and refusal may not fall below today's figures.

Each floor sits one question under the figure measured when it was set, so a change that
loses more than one question on a set fails here rather than in a report nobody reads.
The sets: the seeds Q&A set over the five seed pages, and the news-dev questions over a
fixed 150-article subset of ``news-dev.tsv`` (every article a question is about, then
every seventh other one as distractors; skipped where the TSV is absent).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from eval.qa import load_jsonl, split_tsv
from eval.run import evaluate
from eval.scoring import Report
from rag import Config

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
NEWS_QA = ROOT / "eval" / "qa_news_dev.jsonl"
NEWS_TSV = ROOT.parent / "shared" / "benchmarks" / "news-dev.tsv"
SUBSET_SIZE = 150


@dataclass(frozen=True)
class Measured:
    """A set's figures when its floors were set, and its question counts."""

    answerable: int
    unanswerable: int
    hit1: float
    hit5: float
    mrr: float
    refused: float
    wrongly_refused: float

    def check(self, report: Report) -> None:
        """Fail when ``report`` is more than one question below these figures."""
        one = 1 / self.answerable
        assert report.answerable == self.answerable
        for metric, value in (
            ("hit_rate@1", self.hit1),
            ("hit_rate@5", self.hit5),
            ("mrr@10", self.mrr),
        ):
            assert report.metrics[metric] >= value - one - 1e-9, (metric, report.metrics[metric])
        assert report.refused_unanswerable is not None
        floor = self.refused - 1 / self.unanswerable - 1e-9
        assert report.refused_unanswerable >= floor, report.refused_unanswerable
        assert report.refused_answerable <= self.wrongly_refused + one + 1e-9, (
            report.refused_answerable
        )


# Measured at the commit that set them (README "Retrieval quality"), on the default
# runtime (int8 passages since stop 15, English questions' top two re-scored in full
# precision; PyTorch is one question higher on the seeds' Hit@1).
SEEDS = Measured(137, 25, hit1=0.956, hit5=1.000, mrr=0.976, refused=0.760, wrongly_refused=0.007)
NEWS_SUBSET = Measured(
    128, 32, hit1=0.867, hit5=0.992, mrr=0.923, refused=0.531, wrongly_refused=0.094
)


def news_subset(folder: Path) -> Path:
    """The 150 news-dev articles of the gate: those the questions are about, then distractors."""
    everything = folder / "all"
    files = split_tsv(NEWS_TSV, everything)
    named = set()
    for line in NEWS_QA.read_text(encoding="utf-8").splitlines():
        pair = json.loads(line)
        named.update(pair[key] for key in ("doc", "doc2", "about") if pair.get(key))
    others = [f for f in files if f.name not in named]
    chosen = [f for f in files if f.name in named] + others[::7]
    subset = folder / "subset"
    subset.mkdir()
    for path in chosen[:SUBSET_SIZE]:
        shutil.copy(path, subset / path.name)
    return subset


def test_seeds_set_keeps_its_figures(with_model: Path, tmp_path: Path) -> None:
    pairs = load_jsonl(ROOT / "eval" / "qa_seeds.jsonl")
    [report] = evaluate(pairs, Config(index_dir=tmp_path / "ix"), [{}], progress=False)
    SEEDS.check(report)


@pytest.mark.skipif(not NEWS_TSV.is_file(), reason="news-dev.tsv is not beside the repository")
def test_news_dev_subset_keeps_its_figures(with_model: Path, tmp_path: Path) -> None:
    corpus = news_subset(tmp_path)
    assert len(list(corpus.iterdir())) == SUBSET_SIZE
    config = Config(corpus_dir=corpus, index_dir=tmp_path / "ix")
    [report] = evaluate(load_jsonl(NEWS_QA), config, [{}], progress=False)
    NEWS_SUBSET.check(report)
