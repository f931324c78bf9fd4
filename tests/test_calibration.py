"""The calibration: a record in the index manifest, never a rebuild; fitted by `newsqa calibrate`."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rag import (
    Calibration,
    Config,
    InvalidArgumentError,
    LabelledQuestion,
    Retriever,
    default_calibration,
    fit_calibration,
    set_figures,
)
from rag.calibration import FEATURES, SHIPPED_DEFAULTS, THRESHOLD_KINDS
from rag.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def config(seed_copy: Path, tmp_path: Path) -> Config:
    return Config(corpus_dir=seed_copy, index_dir=tmp_path / "index", embedder="hash")


def _with(base: Calibration, **thresholds: float) -> Calibration:
    return Calibration(
        weights=base.weights,
        thresholds={**base.thresholds, **thresholds},
        sentence_literal=base.sentence_literal,
        method="test",
    )


def test_the_shipped_calibration_names_every_feature_and_kind() -> None:
    calibration = default_calibration()
    assert list(calibration.weights) == list(FEATURES)
    assert list(calibration.thresholds) == list(THRESHOLD_KINDS)
    assert Calibration.from_dict(calibration.to_dict()) == calibration


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"weights": {}, "thresholds": {}}',
        json.dumps({**default_calibration().to_dict(), "thresholds": {"chinese": "high"}}),
    ],
)
def test_a_bad_calibration_file_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cal.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match="calibrat"):
        Calibration.load(path)


def test_a_new_index_records_a_calibration_only_when_given_one(
    config: Config, tmp_path: Path
) -> None:
    # the default is not recorded: the index follows the package's default as it changes
    assert Retriever.from_config(config).calibration == default_calibration()
    manifest = json.loads((config.index_path / "manifest.json").read_text(encoding="utf-8"))
    assert "calibration" not in manifest
    given = tmp_path / "given.json"
    _with(default_calibration(), chinese=2.5).save(given)
    other = config.with_(index_dir=tmp_path / "other-index", calibration=given)
    Retriever.from_config(other)
    manifest = json.loads((other.index_path / "manifest.json").read_text(encoding="utf-8"))
    assert Calibration.from_dict(manifest["calibration"]).thresholds["chinese"] == 2.5
    # it keeps answering with it when the file is no longer named
    assert (
        Retriever.from_config(other.with_(calibration=None)).calibration.thresholds["chinese"]
        == 2.5
    )


def test_a_calibration_file_changes_answers_without_a_rebuild(
    config: Config, tmp_path: Path
) -> None:
    question = "九龙抽水蓄能电站项目的总投资是多少？"
    before = Retriever.from_config(config)
    strict = tmp_path / "strict.json"
    _with(default_calibration(), chinese=99.0).save(strict)
    after = Retriever.from_config(config.with_(calibration=strict))
    assert after.last_update.rebuilt == "" and not after.last_update.touched
    assert after.index.path == before.index.path
    refused = after.ask(question)
    assert not refused.found and "below 99.00" in refused.reason


def test_a_recorded_calibration_is_used_after_reopening(config: Config) -> None:
    retriever = Retriever.from_config(config)
    lenient = _with(default_calibration(), chinese=-99.0)
    retriever.record_calibration(lenient)
    reopened = Retriever.from_config(config)
    assert reopened.calibration == lenient
    assert reopened.ask("九龙抽水蓄能电站项目的总投资是多少？").threshold == -99.0
    assert not reopened.last_update.touched  # recording re-embedded nothing


def test_an_explicit_calibration_file_wins_over_the_recorded_one(
    config: Config, tmp_path: Path
) -> None:
    Retriever.from_config(config).record_calibration(_with(default_calibration(), chinese=-99.0))
    explicit = tmp_path / "explicit.json"
    _with(default_calibration(), chinese=5.0).save(explicit)
    assert (
        Retriever.from_config(config.with_(calibration=explicit)).calibration.thresholds["chinese"]
        == 5.0
    )


def test_a_damaged_recorded_calibration_falls_back_to_the_default_and_keeps_the_index(
    config: Config,
) -> None:
    Retriever.from_config(config)
    manifest_path = config.index_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["calibration"] = {"weights": "broken"}
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        retriever = Retriever.from_config(config)
    assert retriever.calibration == default_calibration()
    assert retriever.last_update.rebuilt == ""
    assert any("default calibration" in str(w.message) for w in caught)


def test_the_weights_decide_the_ranking(config: Config) -> None:
    # weighting only the title's overlap puts the article whose title names the topic first
    retriever = Retriever.from_config(config)
    title_only = Calibration(
        weights={name: (1.0 if name == "title_overlap" else 0.0) for name in FEATURES},
        thresholds=default_calibration().thresholds,
    )
    rows = retriever.candidate_features("五大连池风电项目")
    index = FEATURES.index("title_overlap")
    best_title = max(row.features[index] for row in rows)
    retriever.calibration = title_only
    top = retriever.retrieve("五大连池风电项目", k=1)[0]
    top_row = next(row for row in rows if row.chunk.id == top.chunk_id)
    assert top_row.features[index] == best_title > 0


def _question(
    set_name: str, relevant_feature: int, answerable: bool, rng: np.random.Generator
) -> LabelledQuestion:
    features = rng.random((12, len(FEATURES)))
    relevant = np.zeros(12, dtype=bool)
    if answerable:
        features[3, relevant_feature] += 1.0  # only this feature tells the answer apart
        relevant[3] = True
    else:
        features[:, relevant_feature] *= 0.5
    return LabelledQuestion(
        set_name, answerable, features, relevant, np.ones(12, dtype=bool), ["chinese"] * 12
    )


def test_fitting_finds_the_feature_that_tells_answers_apart() -> None:
    rng = np.random.default_rng(0)
    lexical = FEATURES.index("lexical")
    questions = [
        _question(name, lexical, i % 4 != 0, rng) for name in ("a", "b") for i in range(40)
    ]
    fitted = fit_calibration(questions, default_calibration(), [{"name": "a"}, {"name": "b"}])
    assert max(fitted.weights, key=lambda k: fitted.weights[k]) == "lexical"
    figures = set_figures(questions, fitted)
    assert figures.hit1 == 1.0
    assert figures.refused is not None and figures.refused >= 0.9 and figures.wrongly_refused <= 0.1
    assert fitted.fitted_on == [{"name": "a"}, {"name": "b"}]
    # the default weights, which ignore nothing but favour the cosines, do worse here
    assert set_figures(questions, default_calibration()).hit1 < 1.0


def test_calibrate_command_reports_writes_and_applies(seed_copy: Path, tmp_path: Path) -> None:
    qa = ROOT / "eval" / "qa_seeds.jsonl"
    lines = qa.read_text(encoding="utf-8").splitlines()
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("\n".join(lines[::2]) + "\n", encoding="utf-8")
    second.write_text("\n".join(lines[1::2]) + "\n", encoding="utf-8")
    out = tmp_path / "fitted.json"
    result = CliRunner().invoke(
        main,
        [
            "calibrate",
            "--set", f"even={first}:{seed_copy}",
            "--set", f"odd={second}:{seed_copy}",
            "--embedder", "hash",
            "--quiet",
            "--out", str(out),
            "--apply", str(seed_copy),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "even · held-out (fitted without this set)" in result.output
    assert "odd · fitted on all" in result.output
    fitted = Calibration.load(out)
    assert [s["name"] for s in fitted.fitted_on] == ["even", "odd"]
    reopened = Retriever.from_config(Config(corpus_dir=seed_copy, embedder="hash"))
    assert reopened.calibration == fitted


def test_calibrate_refuses_a_malformed_set_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["calibrate", "--set", "no-equals-sign", "--embedder", "hash"]
    )
    assert result.exit_code == 2 and "NAME=QA_FILE" in result.output
    missing = CliRunner().invoke(main, ["calibrate", "--set", f"x={tmp_path / 'none.jsonl'}"])
    assert missing.exit_code == 2 and "no such Q&A file" in missing.output


def test_a_calibration_from_before_a_feature_existed_gives_it_no_weight() -> None:
    data = default_calibration().to_dict()
    del data["weights"]["lead"]
    assert Calibration.from_dict(data).weights["lead"] == 0.0
    data["weights"]["no_such_feature"] = 1.0
    with pytest.raises(InvalidArgumentError):
        Calibration.from_dict(data)


def test_fitting_one_weight_keeps_the_others() -> None:
    rng = np.random.default_rng(1)
    detail = FEATURES.index("detail")
    questions = [_question(name, detail, True, rng) for name in ("a", "b") for _ in range(40)]
    for q in questions:  # the kept weights tell the answer apart a little too
        q.features[3, FEATURES.index("dense")] += 0.2
    base = default_calibration().to_dict()
    base["weights"]["detail"] = 0.0
    fitted = fit_calibration(questions, Calibration.from_dict(base), [], only=("detail",))
    assert fitted.weights["detail"] > 0.5
    assert {k: v for k, v in fitted.weights.items() if k != "detail"} == {
        k: v for k, v in base["weights"].items() if k != "detail"
    }
    assert "weights of detail" in fitted.method
    assert (
        set_figures(questions, fitted).hit1
        > set_figures(questions, Calibration.from_dict(base)).hit1
    )


@pytest.mark.parametrize("shipped", SHIPPED_DEFAULTS)
def test_an_index_that_recorded_an_earlier_default_answers_with_the_current_one(
    config: Config, shipped: tuple[dict[str, float], dict[str, float]]
) -> None:
    weights, thresholds = shipped
    old = Calibration.from_dict({"weights": weights, "thresholds": thresholds})
    Retriever.from_config(config).record_calibration(old)
    assert Retriever.from_config(config).calibration == default_calibration()
    # a calibration fitted for the library is kept, even if it differs only a little
    fitted = Calibration.from_dict(
        {"weights": weights | {"detail": 0.05}, "thresholds": thresholds}
    )
    Retriever.from_config(config).record_calibration(fitted)
    assert Retriever.from_config(config).calibration == fitted
