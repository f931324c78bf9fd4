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
    if (user_copy / "modules.json").is_file():
        (cache / "models").mkdir()
        (cache / "models" / name).symlink_to(user_copy)
        return cache
    old = os.environ.get("NEWSQA_CACHE")
    os.environ["NEWSQA_CACHE"] = str(cache)
    try:
        ensure_default_model()
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
