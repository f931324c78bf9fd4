"""The bundled Q&A sets: well-formed, their evidence really in their articles.

``eval/qa_seeds.jsonl`` is about the seeds; ``eval/qa_news_dev.jsonl`` about the
news-dev articles (``../shared/benchmarks/news-dev.tsv``, one file per line as
``eval.qa.split_tsv`` names them; skipped where that file is absent). Plain ``json``
reads the Q&A lines, so these checks stay independent of the loader in ``eval.qa``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from eval.qa import tsv_file_name

ROOT = Path(__file__).parent.parent
SEEDS = ROOT / "seeds"
QA_FILE = ROOT / "eval" / "qa_seeds.jsonl"
NEWS_QA_FILE = ROOT / "eval" / "qa_news_dev.jsonl"
NEWS_TSV = ROOT.parent / "shared" / "benchmarks" / "news-dev.tsv"

REQUIRED = ("id", "question", "answer", "doc", "evidence", "type")
TYPES = {
    "factoid",
    "paraphrase",
    "numeric",
    "english",
    "two_fact",
    "unanswerable",
    "disambiguation",
}
MIN_PAIRS = 60
MIN_ANSWERABLE_PER_FILE = 8


def _load(path: Path = QA_FILE) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


PAIRS = _load()
SEED_TEXT = {path.name: path.read_text(encoding="utf-8") for path in sorted(SEEDS.glob("*.txt"))}
NEWS_PAIRS = _load(NEWS_QA_FILE)


@pytest.fixture(scope="module")
def news_text() -> dict[str, str]:
    """The news-dev articles by the file name ``split_tsv`` gives them."""
    if not NEWS_TSV.is_file():
        pytest.skip(f"{NEWS_TSV} is not here")
    lines = [line for line in NEWS_TSV.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {
        tsv_file_name(number, line.partition("\t")[0].strip()): line.partition("\t")[2].strip()
        for number, line in enumerate(lines)
    }


def _evidence(pair: dict[str, Any]) -> list[tuple[str, str]]:
    """(doc, evidence) for every piece of evidence a pair names."""
    found = []
    if pair.get("evidence") is not None:
        found.append((pair["doc"], pair["evidence"]))
    if pair.get("evidence2") is not None:
        found.append((pair.get("doc2") or pair["doc"], pair["evidence2"]))
    return found


def test_enough_pairs() -> None:
    assert len(PAIRS) >= MIN_PAIRS


def test_ids_unique() -> None:
    duplicates = [qid for qid, n in Counter(p.get("id") for p in PAIRS).items() if n > 1]
    assert not duplicates


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: str(p.get("id")))
def test_required_keys_and_type(pair: dict[str, Any]) -> None:
    missing = [key for key in REQUIRED if key not in pair]
    assert not missing, f"missing {missing}"
    assert pair["type"] in TYPES
    assert isinstance(pair["question"], str) and pair["question"].strip()


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: str(p.get("id")))
def test_answerable_and_unanswerable_fields(pair: dict[str, Any]) -> None:
    if pair["type"] == "unanswerable":
        assert pair["answer"] is None
        assert pair["evidence"] is None and pair["doc"] is None
        assert "evidence2" not in pair or pair["evidence2"] is None
    else:
        assert isinstance(pair["answer"], str) and pair["answer"].strip()
        assert pair["doc"] in SEED_TEXT, f"unknown doc {pair['doc']!r}"
        assert isinstance(pair["evidence"], str) and pair["evidence"].strip()
    if pair["type"] == "two_fact":
        assert pair.get("evidence2"), "two_fact needs evidence2"
        assert pair.get("doc2") in SEED_TEXT, f"unknown doc2 {pair.get('doc2')!r}"


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: str(p.get("id")))
def test_evidence_is_exact_substring_of_one_line(pair: dict[str, Any]) -> None:
    for doc, evidence in _evidence(pair):
        assert "\n" not in evidence and "\r" not in evidence
        assert evidence in SEED_TEXT[doc], f"{evidence!r} not in {doc}"


def test_every_type_present() -> None:
    assert {p["type"] for p in PAIRS} == TYPES


def test_every_seed_file_has_enough_answerable_pairs() -> None:
    per_file = Counter(p["doc"] for p in PAIRS if p["type"] != "unanswerable")
    short = {doc: per_file[doc] for doc in SEED_TEXT if per_file[doc] < MIN_ANSWERABLE_PER_FILE}
    assert not short, f"too few answerable pairs: {short}"


# ---------------------------------------------------------------- the news-dev set


def test_news_dev_set_has_its_share_of_english_and_unanswerable_questions() -> None:
    types = Counter(p["type"] for p in NEWS_PAIRS)
    english = [p for p in NEWS_PAIRS if p["question"].isascii()]
    assert len(NEWS_PAIRS) >= 150
    assert len(english) >= len(NEWS_PAIRS) / 5 and types["english"] >= len(NEWS_PAIRS) / 5
    assert types["unanswerable"] >= len(NEWS_PAIRS) / 5
    duplicates = [qid for qid, n in Counter(p["id"] for p in NEWS_PAIRS).items() if n > 1]
    assert not duplicates


@pytest.mark.parametrize("pair", NEWS_PAIRS, ids=lambda p: str(p.get("id")))
def test_news_dev_evidence_is_in_its_article(
    pair: dict[str, Any], news_text: dict[str, str]
) -> None:
    assert list(pair)[: len(REQUIRED)] == list(REQUIRED) and pair["type"] in TYPES
    if pair["type"] == "unanswerable":
        assert pair["answer"] is None and pair["doc"] is None and pair["evidence"] is None
        assert pair["about"] in news_text  # the article whose names the question borrows
        return
    for doc, evidence in _evidence(pair):
        assert doc in news_text, f"unknown doc {doc!r}"
        assert evidence in news_text[doc], f"{evidence!r} not in {doc}"
