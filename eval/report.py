"""Reports: a side-by-side Markdown table, a JSON file, and Hit@k curves."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .scoring import CUTOFFS, LABELS, METRICS, Report, TradeoffPoint


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown(reports: list[Report], title: str = "") -> str:
    """The figures of every configuration side by side, then a per-type breakdown.

    Args:
        reports: one per configuration.
        title: a heading line (e.g. the Q&A file).

    Returns:
        Markdown text.
    """
    header = "| metric | " + " | ".join(r.name for r in reports) + " |"
    rule = "|---|" + "---:|" * len(reports)
    rows = [
        f"| {LABELS[m]} | " + " | ".join(_pct(r.metrics[m]) for r in reports) + " |"
        for m in METRICS
    ]
    rows += [
        "| unanswerable refused | "
        + " | ".join(_pct(r.refused_unanswerable) for r in reports)
        + " |",
        "| answerable wrongly refused | "
        + " | ".join(_pct(r.refused_answerable) for r in reports)
        + " |",
    ]
    if any(r.refused_evidence_removed is not None for r in reports):
        rows.append(
            "| evidence removed: refused | "
            + " | ".join(_pct(r.refused_evidence_removed) for r in reports)
            + " |"
        )
    rows += [
        "| answer sentence | " + " | ".join(_pct(r.answer_sentence) for r in reports) + " |",
        "| latency median (ms) | "
        + " | ".join(f"{r.latency_median_ms:.1f}" for r in reports)
        + " |",
        "| latency p95 (ms) | " + " | ".join(f"{r.latency_p95_ms:.1f}" for r in reports) + " |",
    ]
    first = reports[0]
    lines = [
        f"### {title}" if title else "",
        f"{first.questions} questions, {first.answerable} answerable"
        + (
            f"; {first.evidence_removed_questions} asked again with their evidence removed"
            if first.refused_evidence_removed is not None
            else ""
        ),
        "",
        header,
        rule,
        *rows,
    ]
    types = sorted({t for r in reports for t in r.by_type})
    if len(types) > 1:
        lines += [
            "",
            "By question type (Hit@1 / Hit@5 / MRR@10):",
            "",
            "| type | " + " | ".join(r.name for r in reports) + " |",
            "|---|" + "---:|" * len(reports),
        ]
        for kind in types:
            cells = []
            for r in reports:
                m = r.by_type.get(kind)
                cells.append(
                    "–"
                    if m is None
                    else f"{m['hit_rate@1']:.2f} / {m['hit_rate@5']:.2f} / {m['mrr@10']:.2f}"
                )
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(line for line in lines if line is not None).strip() + "\n"


def write_json(reports: list[Report], path: Path) -> None:
    """All figures as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            [
                {
                    k: v
                    for k, v in asdict(r).items()
                    if k not in ("results", "evidence_removed_results")
                }
                for r in reports
            ],
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )


def plot_hit_curves(reports: list[Report], path: Path) -> None:
    """Hit@k against k, one line per configuration (matplotlib, written as PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for report in reports:
        axes.plot(
            CUTOFFS,
            [report.metrics[f"hit_rate@{k}"] for k in CUTOFFS],
            marker="o",
            label=report.name,
        )
    axes.set_xlabel("k")
    axes.set_ylabel("Hit@k")
    axes.set_xticks(CUTOFFS)
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def markdown_tradeoff(points: list[TradeoffPoint], name: str) -> str:
    """The abstention trade-off of one configuration as a Markdown table.

    Args:
        points: from :func:`~eval.scoring.abstention_tradeoff`.
        name: the configuration's name.

    Returns:
        Markdown text.
    """

    def cell(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    cut = any(p.evidence_removed_refused is not None for p in points)
    lines = [
        f"Abstention trade-off ({name}; offset added to the configured thresholds):",
        "",
        "| offset | answerable wrongly refused | unanswerable refused"
        " | answer's document removed: refused |" + " evidence removed: refused |" * cut,
        "|---:|---:|---:|---:|" + "---:|" * cut,
    ]
    lines += [
        f"| {p.offset:+.2f} | {cell(p.answerable_refused)} | {cell(p.unanswerable_refused)}"
        f" | {cell(p.removed_refused)} |" + f" {cell(p.evidence_removed_refused)} |" * cut
        for p in points
    ]
    return "\n".join(lines)
