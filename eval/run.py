"""Running a Q&A set against one or several configurations, through rag's public API only."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import fields, replace
from pathlib import Path

from tqdm import tqdm

from rag import Config, Retriever

from .qa import QAPair
from .scoring import QuestionResult, Report, summarise

DEPTH = 10  # passages retrieved per question: the deepest cutoff of the metrics


def _to_bool(text: str) -> bool:
    if text.lower() in ("true", "yes", "on", "1"):
        return True
    if text.lower() in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, not {text!r}")


_CONVERTERS: dict[str, Callable[[str], object]] = {"int": int, "float": float, "bool": _to_bool}


def parse_variations(specs: Iterable[str]) -> list[dict[str, object]]:
    """``["mode=dense,hybrid", "chunk_size=200,300"]`` → the cartesian product of settings.

    Args:
        specs: ``key=value1,value2`` strings naming :class:`rag.Config` fields.

    Returns:
        One dict of overrides per configuration (``[{}]`` when ``specs`` is empty).

    Raises:
        ValueError: an unknown key or a malformed spec.
    """
    types = {f.name: f.type for f in fields(Config)}
    axes = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in types:
            raise ValueError(f"--vary {spec!r}: expected KEY=V1,V2 with KEY one of {sorted(types)}")
        kind = str(types[key])
        convert = Path if "Path" in kind else _CONVERTERS.get(kind, str)
        axes.append([(key, convert(v.strip())) for v in values.split(",") if v.strip()])
    return [dict(combo) for combo in itertools.product(*axes)] if axes else [{}]


def config_name(overrides: dict[str, object]) -> str:
    """A short column name for a configuration."""
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "default"


def run_pairs(
    retriever: Retriever, pairs: list[QAPair], progress: bool = True, label: str = ""
) -> list[QuestionResult]:
    """Ask every question and record what came back.

    Args:
        retriever: an opened retriever.
        pairs: the Q&A set.
        progress: show a progress bar.
        label: progress bar label.

    Returns:
        One result per pair.
    """
    results = []
    retriever.clear_cache()  # time every configuration from the same, cold, query cache
    for pair in tqdm(pairs, desc=label or "questions", disable=not progress, unit="q"):
        start = time.perf_counter()
        answer = retriever.ask(pair.question, DEPTH)
        latency = (time.perf_counter() - start) * 1000
        results.append(
            QuestionResult(
                pair=pair,
                ranked=[(h.chunk_id, h.citation.file, h.text) for h in answer.hits],
                found=answer.found,
                top_sentence=answer.sentence,
                latency_ms=latency,
                scores=[h.score for h in answer.hits],
                threshold=answer.threshold,
                fits=[h.fits_question for h in answer.hits],
                also_files=[tuple(c.file for c in h.also_cited) for h in answer.hits],
            )
        )
    return results


def evaluate(
    pairs: list[QAPair],
    base: Config,
    variations: list[dict[str, object]],
    progress: bool = True,
    evidence_removed: tuple[Path, list[QAPair]] | None = None,
) -> list[Report]:
    """Score each configuration on the pairs.

    Args:
        pairs: the Q&A set.
        base: settings shared by all configurations (corpus, index location…).
        variations: per-configuration overrides, from :func:`parse_variations`.
        progress: show progress bars.
        evidence_removed: a copy of the corpus without the sentences holding the
            evidence and the questions it no longer answers (``qa.cached_evidence_removed``):
            each configuration also asks those, for ``refused_evidence_removed``.

    Returns:
        One report per configuration, in order.
    """
    reports = []
    for overrides in variations:
        config = _with_own_index(base.with_(**overrides), base, overrides, "")
        retriever = Retriever.from_config(config, progress=progress)
        name = config_name(overrides)
        report = summarise(name, run_pairs(retriever, pairs, progress, label=name))
        if evidence_removed is not None:
            folder, removed_pairs = evidence_removed
            removed_config = _with_own_index(
                config.with_(corpus_dir=folder), base, overrides, "evidence-removed"
            )
            removed = Retriever.from_config(removed_config, progress=progress)
            results = run_pairs(removed, removed_pairs, progress, label=f"{name}, evidence removed")
            share = sum(not r.found for r in results) / len(results) if results else None
            report = replace(
                report,
                refused_evidence_removed=share,
                evidence_removed_questions=len(results),
                evidence_removed_results=results,
            )
        reports.append(report)
    return reports


def _with_own_index(
    config: Config, base: Config, overrides: dict[str, object], kind: str
) -> Config:
    """``config`` with its own index next to the base one's, when the base names one."""
    if base.index_dir is None or not (overrides or kind):
        return config  # the default index location is already per corpus and settings
    parts = ([kind] if kind else []) + [f"{k}{v}" for k, v in overrides.items()]
    tag = "-".join(parts)
    return config.with_(index_dir=Path(f"{base.index_dir}-{tag.replace('/', '_')}"))
