"""The calibrate command: fit the second stage's weights and the answer thresholds on Q&A sets.

``newsqa calibrate --set seeds=eval/qa_seeds.jsonl --set cmrc=cmrc2018_trial.json
--set news=eval/qa_news_dev.jsonl:news-dev.tsv`` reports, per set, the current
calibration, one fitted without that set (leave-one-set-out cross-validation: the figure
to trust) and one fitted on all sets; ``--out`` writes the fitted calibration, ``--apply``
records it in an index folder.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from rag import (
    FEATURES,
    Calibration,
    Config,
    LabelledQuestion,
    RagError,
    Retriever,
    SetFigures,
    fit_calibration,
    set_figures,
)

from .qa import QAPair, cached_squad, cached_tsv_corpus, load_jsonl
from .scoring import contains_evidence


@dataclass
class QASet:
    """A named Q&A set and the article folder its questions are about."""

    name: str
    qa_file: Path
    pairs: list[QAPair]
    corpus: Path

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "qa_file": self.qa_file.name,
            "corpus": self.corpus.name,
            "questions": len(self.pairs),
            "answerable": sum(p.answerable for p in self.pairs),
        }


def parse_set(spec: str, default_corpus: Path) -> QASet:
    """``NAME=QA_FILE[:CORPUS]`` → a :class:`QASet`.

    A ``.json`` QA_FILE is SQuAD-format (its paragraphs are the corpus); CORPUS is a
    folder, or a ``category<TAB>text`` file split into one article per line.

    Raises:
        click.BadParameter: a malformed spec or a missing file.
    """
    name, sep, rest = spec.partition("=")
    if not sep or not name.strip() or not rest:
        raise click.BadParameter(f"{spec!r}: expected NAME=QA_FILE[:CORPUS]", param_hint="--set")
    qa_text, _, corpus_text = rest.partition(":")
    qa_file = Path(qa_text).expanduser()
    if not qa_file.is_file():
        raise click.BadParameter(f"{qa_file}: no such Q&A file", param_hint="--set")
    if qa_file.suffix == ".json":
        corpus, pairs = cached_squad(qa_file)
        return QASet(name.strip(), qa_file, pairs, corpus)
    corpus = Path(corpus_text).expanduser() if corpus_text else default_corpus
    if corpus.is_file():
        corpus = cached_tsv_corpus(corpus)
    elif not corpus.is_dir():
        raise click.BadParameter(f"{corpus}: no such article folder or file", param_hint="--set")
    return QASet(name.strip(), qa_file, load_jsonl(qa_file), corpus)


def label(
    qa_set: QASet, base: Config, progress: bool
) -> tuple[list[LabelledQuestion], Calibration]:
    """Ask every question of the set and label its candidates against the evidence.

    Returns:
        The labelled questions, and the calibration the set's index answers with.
    """
    retriever = Retriever.from_config(base.with_(corpus_dir=qa_set.corpus), progress=progress)
    labelled = []
    for pair in tqdm(qa_set.pairs, desc=qa_set.name, disable=not progress, unit="q"):
        rows = retriever.candidate_features(pair.question)
        if not rows:
            continue
        relevant = [
            any(
                row.chunk.file == fact.doc
                and any(contains_evidence(row.chunk.text, t) for t in fact.texts)
                for fact in pair.facts
            )
            for row in rows
        ]
        labelled.append(
            LabelledQuestion(
                set_name=qa_set.name,
                answerable=pair.answerable,
                features=np.array([row.features for row in rows]),
                relevant=np.array(relevant, dtype=bool),
                fits=np.array([row.fits_question for row in rows], dtype=bool),
                kinds=[row.threshold_kind for row in rows],
            )
        )
    return labelled, retriever.calibration


def _row(name: str, figures: SetFigures) -> str:
    refused = "–" if figures.refused is None else f"{figures.refused:.3f}"
    return (
        f"| {name} | {figures.hit1:.3f} | {figures.mrr:.3f} | {refused} "
        f"| {figures.wrongly_refused:.3f} |"
    )


def report(
    sets: list[QASet],
    labelled: dict[str, list[LabelledQuestion]],
    current: Calibration,
    strength: float,
    thresholds_only: bool = False,
    only: tuple[str, ...] = (),
) -> tuple[str, Calibration]:
    """The comparison table and the calibration fitted on every set."""
    everything = [q for qs in labelled.values() for q in qs]
    fitted_on = [s.describe() for s in sets]
    full = fit_calibration(everything, current, fitted_on, strength, thresholds_only, only)
    lines = [
        "| set · calibration | Hit@1 | MRR@10 | unanswerable refused"
        " | answerable wrongly refused |",
        "|---|---|---|---|---|",
    ]
    worst = {"current": 1.0, "held-out": 1.0}
    for qa_set in sets:
        own = labelled[qa_set.name]
        others = [q for q in everything if q.set_name != qa_set.name]
        rows = [("current", "current", current)]
        if others:
            held_out = fit_calibration(others, current, [], strength, thresholds_only, only)
            rows.append(("held-out", "held-out (fitted without this set)", held_out))
        rows.append(("", "fitted on all", full))
        for key, name, calibration in rows:
            figures = set_figures(own, calibration)
            lines.append(_row(f"{qa_set.name} · {name}", figures))
            if key:
                worst[key] = min(worst[key], figures.hit1)
    lines.append("")
    lines.append(
        f"worst Hit@1 over the sets: current {worst['current']:.3f},"
        f" held-out fit {worst['held-out']:.3f}"
    )
    lines.append("")
    lines.append("fitted on all sets:")
    lines.append("  weights: " + ", ".join(f"{k}={v:g}" for k, v in full.weights.items()))
    lines.append("  thresholds: " + ", ".join(f"{k}={v:g}" for k, v in full.thresholds.items()))
    return "\n".join(lines), full


@click.command("calibrate")
@click.option(
    "--set",
    "specs",
    multiple=True,
    required=True,
    metavar="NAME=QA_FILE[:CORPUS]",
    help="A Q&A set and its articles (folder, or category<TAB>text file); a .json QA_FILE "
    "is SQuAD-format. Repeat for several sets.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the fitted calibration here.",
)
@click.option(
    "--apply",
    "apply_to",
    type=click.Path(file_okay=False, path_type=Path),
    help="Record the fitted calibration in the index of this article folder.",
)
@click.option(
    "--strength",
    type=float,
    default=1.0,
    show_default=True,
    help="Inverse regularisation of the weights.",
)
@click.option(
    "--thresholds-only", is_flag=True, help="Keep the current weights; fit the thresholds only."
)
@click.option(
    "--fit",
    "only",
    multiple=True,
    type=click.Choice(FEATURES),
    help="Fit only this feature's weight (repeatable), the others kept as they are.",
)
@click.option(
    "--embedder",
    type=click.Choice(["sentence-transformers", "hash"]),
    default="sentence-transformers",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def calibrate_command(
    specs: tuple[str, ...],
    out: Path | None,
    apply_to: Path | None,
    strength: float,
    thresholds_only: bool,
    only: tuple[str, ...],
    embedder: str,
    quiet: bool,
) -> None:
    """Fit the second-stage weights and answer thresholds on Q&A sets, and report the trade-off."""
    base = Config(embedder=embedder)
    progress = not quiet and sys.stderr.isatty()
    try:
        sets = [parse_set(spec, base.corpus) for spec in specs]
        if len({s.name for s in sets}) != len(sets):
            raise click.BadParameter("each --set needs its own NAME", param_hint="--set")
        runs = [label(s, base, progress) for s in sets]
        labelled = {s.name: questions for s, (questions, _) in zip(sets, runs, strict=True)}
        current = runs[0][1]  # what the first set's index answers with
        table, fitted = report(sets, labelled, current, strength, thresholds_only, only)
        click.echo(table)
        if out:
            fitted.save(out)
            click.echo(f"calibration written to {out}")
        if apply_to:
            retriever = Retriever.from_config(base.with_(corpus_dir=apply_to))
            retriever.record_calibration(fitted)
            click.echo(f"calibration recorded in the index of {apply_to}")
    except RagError as exc:
        raise click.ClickException(str(exc)) from exc
