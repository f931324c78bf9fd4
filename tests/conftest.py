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
    """A cache folder holding the default model and its export for the default runtime,
    built once per test session.

    A developer's already-built model and export are reused when present, so repeated
    local runs do not pay for them; CI starts clean and builds them here.
    """
    from rag.config import Config
    from rag.embedding import DEFAULT_MODEL_DIRNAME, DEFAULT_MODEL_REVISION, ensure_default_model

    cache = tmp_path_factory.mktemp("cache")
    (cache / "models").mkdir()
    user_models = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "newsqa" / "models"
    )
    name = f"{DEFAULT_MODEL_DIRNAME}-r{DEFAULT_MODEL_REVISION}"
    old = os.environ.get("NEWSQA_CACHE")
    os.environ["NEWSQA_CACHE"] = str(cache)
    try:
        if (user_models / name / "modules.json").is_file():
            (cache / "models" / name).symlink_to(user_models / name)
        else:
            ensure_default_model()
        runtime = Config().effective_runtime
        if runtime != "torch":
            from rag.onnx_runtime import META_FILE, ensure_runtime_model, runtime_dir

            export = runtime_dir(Config().model, runtime)
            if (user_models / export.name / META_FILE).is_file():
                export.symlink_to(user_models / export.name)
            ensure_runtime_model(Config().model, runtime)
    finally:
        if old is None:
            os.environ.pop("NEWSQA_CACHE", None)
        else:
            os.environ["NEWSQA_CACHE"] = old
    return cache


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
