"""The bundled Q&A set eval/qa_seeds.jsonl: well-formed, its evidence really in the seeds.

Plain ``json`` only (no project imports, no model), so these checks stay fast and
independent of the loader in ``eval.qa``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent
SEEDS = ROOT / "seeds"
QA_FILE = ROOT / "eval" / "qa_seeds.jsonl"

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


def _load() -> list[dict[str, Any]]:
    lines = QA_FILE.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


PAIRS = _load()
SEED_TEXT = {path.name: path.read_text(encoding="utf-8") for path in sorted(SEEDS.glob("*.txt"))}


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
