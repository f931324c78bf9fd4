"""Fit the map from pooled to separate sentence vectors (``rag/sentence_map.npz``).

``python -m eval.fit_sentence_map cmrc2018_dev.json [more SQuAD-format files] --out
rag/sentence_map.npz`` chunks every paragraph of the files as the index does, embeds
each chunk's sentences both ways (pooled from the chunk's forward pass, and on their
own) with the default model and runtime, and fits :class:`rag.SentenceMap` (ridge
strength chosen by cross-validation over chunks). Fit it on public text that no
reported eval set is drawn from: the shipped map is fitted on the CMRC 2018 *dev*
paragraphs (the reported CMRC figures are on the *trial* set).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from rag import Config, fit_sentence_map


def squad_paragraphs(path: Path) -> list[str]:
    """The distinct paragraphs (``context``) of a SQuAD-format file, in file order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    contexts = (p["context"] for a in data["data"] for p in a["paragraphs"])
    return list(dict.fromkeys(contexts))


@click.command()
@click.argument(
    "squad_files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def main(squad_files: tuple[Path, ...], out: Path) -> None:
    """Fit the sentence map on the paragraphs of SQUAD_FILES and write it to OUT."""
    config = Config()
    paragraphs = [text for path in squad_files for text in squad_paragraphs(path)]
    sentence_map = fit_sentence_map(paragraphs, config, progress=True)
    sentence_map.save(out)
    click.echo(
        f"{len(paragraphs)} paragraphs; model {sentence_map.model}, runtime "
        f"{config.effective_runtime}; ridge {sentence_map.ridge:g}, held-out cosine to the "
        f"sentences' own vectors {sentence_map.held_out_cosine:.4f}; written to {out}"
    )


if __name__ == "__main__":
    sys.exit(main())
