"""Shared fixtures: a temp cache per test, one real model per session, the seed corpus."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the default model, built once per test session.

    A developer's already-built model is reused when present, so repeated local runs
    do not pay the build; CI starts clean and builds it here.
    """
    from rag.embedding import DEFAULT_MODEL_DIRNAME, DEFAULT_MODEL_REVISION, ensure_default_model

    cache = tmp_path_factory.mktemp("cache")
    name = f"{DEFAULT_MODEL_DIRNAME}-r{DEFAULT_MODEL_REVISION}"
    user_copy = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "newsqa" / "models" / name
    )
    old = os.environ.get("NEWSQA_CACHE")
    os.environ["NEWSQA_CACHE"] = str(cache)
    try:
        if (user_copy / "modules.json").is_file():
            (cache / "models").mkdir()
            (cache / "models" / name).symlink_to(user_copy)
        else:
            ensure_default_model()
        _prepare_int8_runtime(user_copy.parent)
    finally:
        if old is None:
            os.environ.pop("NEWSQA_CACHE", None)
        else:
            os.environ["NEWSQA_CACHE"] = old
    return cache


def _prepare_int8_runtime(user_models: Path) -> None:
    """The int8 ONNX export, once per session (a developer's is linked)."""
    import importlib.util

    from rag.config import Config
    from rag.onnx_runtime import ensure_runtime_model, runtime_dir

    if not (importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx")):
        return
    config, runtime = Config(), "onnx-int8"
    target = runtime_dir(config.model, runtime)
    existing = user_models / target.name
    if (existing / "runtime.json").is_file() and not target.exists():
        target.symlink_to(existing)
    ensure_runtime_model(config.model, runtime)


@pytest.fixture(autouse=True)
def isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Point every cache/index write of a test at its own temp folder."""
    cache = tmp_path_factory.mktemp("newsqa-cache")
    monkeypatch.setenv("NEWSQA_CACHE", str(cache))
    yield cache


@pytest.fixture()
def with_model(model_cache: Path, isolated_cache: Path) -> Path:
    """Make the session's built model visible in this test's cache folder."""
    (isolated_cache / "models").mkdir(exist_ok=True)
    for entry in (model_cache / "models").iterdir():
        link = isolated_cache / "models" / entry.name
        if not link.exists():
            link.symlink_to(entry.resolve())
    return isolated_cache


@pytest.fixture()
def seed_copy(tmp_path: Path) -> Path:
    """A private copy of the seed articles a test may change."""
    target = tmp_path / "corpus"
    shutil.copytree(SEEDS, target)
    return target
