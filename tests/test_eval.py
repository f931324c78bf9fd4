"""The eval script: relevance rule, metric values on hand-computed runs, report shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from eval.cli import eval_command
from eval.qa import Fact, QAPair, load_jsonl, load_squad, remove_evidence
from eval.report import markdown_tradeoff
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
    assert zero.evidence_removed_refused is None  # not measured
    # the same questions asked again with their evidence cut out: margins 0.08, -0.05
    cut = [
        scored(_pair("a1", ()), ["doc.txt"], [1.08]),
        scored(_pair("a2", ()), ["doc.txt"], [0.95]),
    ]
    low, zero, high = abstention_tradeoff([strong, weak, unanswerable], [-0.1, 0.0, 0.1], cut)
    assert [p.evidence_removed_refused for p in (low, zero, high)] == [0, 0.5, 1]
    table = markdown_tradeoff([low, zero, high], "default")
    assert (
        "| evidence removed: refused |" in table
        and "| +0.00 | 0.000 | 1.000 | 0.500 | 0.500 |" in table
    )


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


def _qa_line(id_: str, question: str, answer: str | None, doc: str, evidence: str | None) -> str:
    return json.dumps(
        {"id": id_, "question": question, "answer": answer, "doc": doc, "evidence": evidence,
         "type": "factoid"},
        ensure_ascii=False,
    )  # fmt: skip


def _evidence_corpus(tmp_path: Path) -> tuple[Path, list[QAPair]]:
    corpus = tmp_path / "articles"
    corpus.mkdir()
    (corpus / "a.txt").write_text(
        "星光队昨晚主场迎战海风队。全场观众达到两万三千人。星光队以三比一获胜。\n", encoding="utf-8"
    )
    (corpus / "b.txt").write_text(
        "新馆总投资八亿元。新馆总投资八亿元，明年开放。\n", encoding="utf-8"
    )
    (corpus / "c.pdf").write_bytes(b"%PDF-1.4 not text")
    qa = tmp_path / "qa.jsonl"
    lines = [
        _qa_line("q1", "星光队那场比赛有多少观众？", "两万三千人", "a.txt", "观众达到两万三千人"),
        _qa_line("q2", "新馆总投资多少？", "八亿元", "b.txt", "新馆总投资八亿元"),
        _qa_line("q3", "报告的页数？", "十页", "c.pdf", "共十页"),
        _qa_line("q4", "海风队的主教练是谁？", None, "", None),
    ]
    qa.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return corpus, load_jsonl(qa)


def test_evidence_is_cut_from_a_copy_and_the_questions_become_unanswerable(
    tmp_path: Path,
) -> None:
    corpus, pairs = _evidence_corpus(tmp_path)
    before = {p.name: p.read_bytes() for p in corpus.iterdir()}
    removed = remove_evidence(pairs, corpus, tmp_path / "copy")
    # the sentence stating the attendance is gone; its neighbours stay
    assert (tmp_path / "copy" / "a.txt").read_text(encoding="utf-8") == (
        "星光队昨晚主场迎战海风队。星光队以三比一获胜。\n"
    )
    # both sentences stating the investment go, so b's question is unanswerable too;
    # a PDF cannot be cut and its question is left out, as is the unanswerable one
    assert [(p.id, p.type, p.answerable) for p in removed] == [
        ("q1", "evidence_removed", False),
        ("q2", "evidence_removed", False),
    ]
    assert (tmp_path / "copy" / "c.pdf").read_bytes() == before["c.pdf"]
    assert {p.name: p.read_bytes() for p in corpus.iterdir()} == before  # only read


def test_a_question_whose_answer_the_article_repeats_elsewhere_is_not_asked_again(
    tmp_path: Path,
) -> None:
    corpus, pairs = _evidence_corpus(tmp_path)
    (corpus / "a.txt").write_text(
        "全场观众达到两万三千人。据统计，两万三千人创下纪录\n", encoding="utf-8"
    )
    removed = remove_evidence(pairs, corpus, tmp_path / "copy")
    assert [p.id for p in removed] == ["q2"]


@pytest.mark.filterwarnings("ignore:.*(cannot be read as a PDF|the file is empty)")
def test_eval_reports_refusals_with_the_evidence_removed(tmp_path: Path) -> None:
    corpus, _ = _evidence_corpus(tmp_path)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        eval_command,
        [str(tmp_path / "qa.jsonl"), "--folder", str(corpus), "--compare", "embedder=hash",
         "--remove-evidence", "--json-out", str(out), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 asked again with their evidence removed" in result.output
    assert "| evidence removed: refused |" in result.output
    [report] = json.loads(out.read_text(encoding="utf-8"))
    assert report["evidence_removed_questions"] == 2
    assert 0 <= report["refused_evidence_removed"] <= 1
    assert "星光队以三比一获胜" in (corpus / "a.txt").read_text(encoding="utf-8")
    assert "观众达到两万三千人" in (corpus / "a.txt").read_text(encoding="utf-8")
