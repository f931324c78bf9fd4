"""The eval script: relevance rule, metric values on hand-computed runs, report shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from eval.cli import eval_command
from eval.qa import Fact, QAPair, load_jsonl, load_squad
from eval.run import parse_variations
from eval.scoring import (
    QuestionResult,
    abstention_tradeoff,
    contains_evidence,
    ir_metrics,
    summarise,
)
from rag import Config

ROOT = Path(__file__).resolve().parent.parent


def _pair(qid: str, facts: tuple[Fact, ...], answers: tuple[str, ...] = ("x",)) -> QAPair:
    return QAPair(
        qid, "q?", answers if facts else (), facts, "factoid" if facts else "unanswerable"
    )


def _result(
    pair: QAPair, texts: list[str], found: bool = True, sentence: str = ""
) -> QuestionResult:
    ranked = [(f"c{i}", "doc.txt", t) for i, t in enumerate(texts)]
    return QuestionResult(pair, ranked, found, sentence, latency_ms=10.0)


class TestRelevance:
    def test_whitespace_and_width_insensitive(self) -> None:
        assert contains_evidence("总投资 68 亿元，九龙抽水蓄能", "总投资68亿元，九龙")
        assert contains_evidence("签约项目141个,总投资5亿元", "签约项目141个，总投资5亿元")
        assert contains_evidence("ＡＢＣ公司", "abc公司")

    def test_evidence_split_by_a_chunk_boundary(self) -> None:
        evidence = "总建筑面积2800平方米，包含四层办公区域"
        assert contains_evidence("该项目总投资1000万元，总建筑面积2800平方米，", evidence)
        assert contains_evidence("平方米，包含四层办公区域和两层生产车间。", evidence)
        assert not contains_evidence(
            "包含四层办公区域和两层生产车间。", "总建筑面积2800平方米，包含四层办公区域，另有"
        )

    def test_unrelated_text_is_not_relevant(self) -> None:
        assert not contains_evidence("七台河市开展招商考察", "总建筑面积2800平方米")
        assert not contains_evidence("anything", "")


class TestMetrics:
    def test_hand_computed_run(self) -> None:
        fact = Fact("doc.txt", ("答案甲",))
        first = _result(_pair("q1", (fact,)), ["答案甲在此", "无关", "无关"])
        third = _result(_pair("q2", (fact,)), ["无关", "无关", "答案甲在此"])
        missing = _result(_pair("q3", (fact,)), ["无关"] * 10)
        metrics = ir_metrics([first, third, missing])
        assert metrics["hit_rate@1"] == pytest.approx(1 / 3)
        assert metrics["hit_rate@3"] == pytest.approx(2 / 3)
        assert metrics["mrr@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)
        assert metrics["ndcg@10"] == pytest.approx((1 + 0.5 + 0) / 3)  # 1/log2(3+1) = 0.5
        assert metrics["recall@10"] == pytest.approx(2 / 3)

    def test_two_fact_question_hit_on_either_recall_on_both(self) -> None:
        pair = _pair("q", (Fact("doc.txt", ("事实一",)), Fact("doc.txt", ("事实二",))))
        metrics = ir_metrics([_result(pair, ["无关", "事实二在这里"])])
        assert metrics["hit_rate@1"] == 0 and metrics["hit_rate@3"] == 1
        assert metrics["recall@10"] == pytest.approx(0.5)
        both = ir_metrics([_result(pair, ["事实一和事实二都在"])])
        assert both["hit_rate@1"] == 1 and both["recall@10"] == 1

    def test_a_chunk_from_another_file_is_not_relevant(self) -> None:
        pair = _pair("q", (Fact("other.txt", ("答案甲",)),))
        assert ir_metrics([_result(pair, ["答案甲"])])["hit_rate@1"] == 0

    def test_abstention_and_answer_sentence_rates(self) -> None:
        fact = Fact("doc.txt", ("答案甲",))
        answered = _result(_pair("a1", (fact,), ("答案甲",)), ["答案甲"], True, "答案甲。")
        refused = _result(_pair("a2", (fact,), ("答案甲",)), ["答案甲"], False, "别的句子")
        right_refusal = _result(_pair("u1", ()), ["无关"], False)
        wrong_answer = _result(_pair("u2", ()), ["无关"], True)
        report = summarise("x", [answered, refused, right_refusal, wrong_answer])
        assert report.refused_unanswerable == 0.5 and report.refused_answerable == 0.5
        assert report.answer_sentence == 0.5 and report.answerable == 2


def test_abstention_tradeoff_counts_each_group_at_each_offset() -> None:
    fact = Fact("doc.txt", ("答案",))

    def scored(pair: QAPair, files: list[str], scores: list[float]) -> QuestionResult:
        ranked = [(f"c{i}", f, "答案" if f == "doc.txt" else "无关") for i, f in enumerate(files)]
        return QuestionResult(pair, ranked, True, "", 1.0, scores=scores, threshold=1.0)

    strong = scored(_pair("a1", (fact,)), ["doc.txt", "x.txt"], [1.3, 0.9])
    weak = scored(_pair("a2", (fact,)), ["doc.txt", "y.txt"], [1.05, 1.02])
    unanswerable = scored(_pair("u1", ()), ["x.txt"], [0.97])
    low, zero, high = abstention_tradeoff([strong, weak, unanswerable], [-0.1, 0.0, 0.1])
    # margins: answerable 0.3, 0.05; unanswerable -0.03; answer's doc removed -0.1, 0.02
    assert (zero.answerable_refused, zero.unanswerable_refused, zero.removed_refused) == (0, 1, 0.5)
    assert (low.answerable_refused, low.unanswerable_refused, low.removed_refused) == (0, 0, 0)
    assert (high.answerable_refused, high.unanswerable_refused, high.removed_refused) == (0.5, 1, 1)


def test_a_top_hit_without_the_asked_form_is_refused_at_any_threshold() -> None:
    fact = Fact("doc.txt", ("答案",))
    ranked = [("c0", "doc.txt", "答案"), ("c1", "x.txt", "无关")]
    result = QuestionResult(
        _pair("a1", (fact,)), ranked, False, "", 1.0, [1.5, 1.2], 1.0, fits=[False, True]
    )
    assert result.margin() == float("-inf")
    assert result.margin(exclude_answer_docs=True) == pytest.approx(0.2)
    (point,) = abstention_tradeoff([result], [-0.5])
    assert point.answerable_refused == 1 and point.removed_refused == 0


def test_parse_variations_cartesian() -> None:
    assert parse_variations([]) == [{}]
    combos = parse_variations(["mode=dense,hybrid", "chunk_size=200,300"])
    assert len(combos) == 4 and {"mode": "hybrid", "chunk_size": 300} in combos
    with pytest.raises(ValueError, match="KEY"):
        parse_variations(["nonsense=1"])


def test_a_corpus_folder_can_be_compared(tmp_path: Path) -> None:
    # --compare corpus_dir=A,B gave paths as text, which Config could not use
    [first, second] = parse_variations([f"corpus_dir={tmp_path / 'a'},{tmp_path / 'b'}"])
    assert Config().with_(**first).corpus == (tmp_path / "a").resolve()
    assert Config().with_(**second).corpus == (tmp_path / "b").resolve()


def test_a_hit_citing_the_answer_file_among_others_counts(tmp_path: Path) -> None:
    pair = load_jsonl(ROOT / "eval" / "qa_seeds.jsonl")[0]
    fact = pair.facts[0]
    result = QuestionResult(
        pair=pair,
        ranked=[("x", "copy.txt", fact.texts[0])],
        found=True,
        top_sentence="",
        latency_ms=1.0,
        also_files=[(fact.doc,)],
    )
    assert result.evidence_ranks() == {"fact0": 1}


def test_loaders(tmp_path: Path) -> None:
    pairs = load_jsonl(ROOT / "eval" / "qa_seeds.jsonl")
    assert len(pairs) >= 60 and any(not p.answerable for p in pairs)
    assert any(len(p.facts) == 2 for p in pairs)
    squad = {
        "data": [
            {
                "title": "标题",
                "id": "A",
                "paragraphs": [
                    {
                        "id": "P1",
                        "context": "北京是首都。",
                        "qas": [
                            {
                                "id": "Q1",
                                "question": "首都是哪里？",
                                "answers": [{"text": "北京", "answer_start": 0}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    [pair] = load_squad(path, tmp_path / "docs")
    assert pair.facts == (Fact("P1.txt", ("北京",)),)
    assert (tmp_path / "docs" / "P1.txt").read_text(encoding="utf-8") == "# 标题\n\n北京是首都。\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:1: missing"):
        load_jsonl(bad)


@pytest.mark.slow
def test_smoke_run_on_five_pairs(tmp_path: Path, with_model: Path) -> None:
    lines = (ROOT / "eval" / "qa_seeds.jsonl").read_text(encoding="utf-8").splitlines()
    answerable = [line for line in lines if json.loads(line)["answer"] is not None][:4]
    unanswerable = [line for line in lines if json.loads(line)["answer"] is None][:1]
    qa = tmp_path / "five.jsonl"
    qa.write_text("\n".join(answerable + unanswerable) + "\n", encoding="utf-8")
    out, png = tmp_path / "report.json", tmp_path / "curves.png"
    result = CliRunner().invoke(
        eval_command, [str(qa), "--json-out", str(out), "--plot", str(png), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    text = result.output
    assert "5 questions, 4 answerable" in text
    for label in (
        "Hit@1",
        "Hit@3",
        "Hit@5",
        "Hit@10",
        "MRR@10",
        "nDCG@10",
        "Recall@10",
        "unanswerable refused",
        "answerable wrongly refused",
        "answer sentence",
        "latency median (ms)",
        "latency p95 (ms)",
    ):
        assert f"| {label} |" in text
    [report] = json.loads(out.read_text(encoding="utf-8"))
    assert report["questions"] == 5 and 0 <= report["metrics"]["mrr@10"] <= 1
    assert png.stat().st_size > 1000
