"""The eval command: ``newsqa eval QA_FILE`` or ``python -m eval QA_FILE``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rag import Config, RagError

from .qa import cached_evidence_removed, cached_squad, cached_tsv_corpus, load_jsonl
from .report import markdown, markdown_tradeoff, plot_hit_curves, write_json
from .run import evaluate, parse_variations
from .scoring import abstention_tradeoff

TRADEOFF_OFFSETS = [round(x * 0.02 - 0.12, 2) for x in range(13)]


@click.command("eval")
@click.argument("qa_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--squad",
    is_flag=True,
    help="QA_FILE is SQuAD-format (e.g. CMRC 2018): every paragraph becomes a document.",
)
@click.option(
    "--articles-tsv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Corpus given as a category<TAB>text file (e.g. news-dev.tsv): each line becomes "
    "one article file in the cache.",
)
@click.option(
    "--folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Corpus folder of a JSONL set (default: the bundled seeds).",
)
@click.option(
    "--vary",
    "--compare",
    "vary",
    multiple=True,
    metavar="KEY=V1,V2",
    help="Compare configurations, e.g. --compare mode=dense,lexical,hybrid "
    "--compare chunk_size=200,300 (cartesian product).",
)
@click.option("--limit", type=int, help="Only the first N questions.")
@click.option(
    "--json-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every figure as JSON here.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw Hit@k curves per configuration into this PNG.",
)
@click.option(
    "--tradeoff",
    is_flag=True,
    help="Also print the abstention trade-off around the configured thresholds.",
)
@click.option(
    "--remove-evidence",
    is_flag=True,
    help="Also ask every answerable question of a copy of the corpus (in the cache) with "
    "the sentences holding its evidence cut out, and report how many are refused: "
    "questions about articles that name what they ask about but not the answer.",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def eval_command(
    qa_file: Path,
    squad: bool,
    articles_tsv: Path | None,
    folder: Path | None,
    vary: tuple[str, ...],
    limit: int | None,
    json_out: Path | None,
    plot: Path | None,
    tradeoff: bool,
    remove_evidence: bool,
    quiet: bool,
) -> None:
    """Score retrieval on QA_FILE and print a Markdown report."""
    try:
        variations = parse_variations(vary)
        if squad:
            folder, pairs = cached_squad(qa_file)
        else:
            if articles_tsv:
                folder = cached_tsv_corpus(articles_tsv)
            pairs = load_jsonl(qa_file)
        pairs = pairs[:limit] if limit else pairs
        if not pairs:
            raise click.ClickException(f"{qa_file} holds no questions")
        base = Config(corpus_dir=folder) if folder else Config()
        removed = cached_evidence_removed(pairs, base.corpus) if remove_evidence else None
        reports = evaluate(
            pairs, base, variations, not quiet and sys.stderr.isatty(), evidence_removed=removed
        )
    except (RagError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(markdown(reports, title=qa_file.name))
    if tradeoff:
        for report in reports:
            if all(r.threshold is None for r in report.results):
                continue  # this configuration has no calibrated threshold to move
            points = abstention_tradeoff(
                report.results, TRADEOFF_OFFSETS, report.evidence_removed_results
            )
            click.echo("\n" + markdown_tradeoff(points, report.name))
    if json_out:
        write_json(reports, json_out)
        click.echo(f"figures written to {json_out}")
    if plot:
        plot_hit_curves(reports, plot)
        click.echo(f"Hit@k curves drawn in {plot}")
