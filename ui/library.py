"""The chat's writable article library and the retriever over it, opened in the background."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag import PROGRESS_DESC, Config, RagError, Retriever, bundled_seeds_dir, cache_dir

RetrieverFactory = Callable[[], Retriever]


def default_library_dir() -> Path:
    """Where the chat keeps its articles unless told otherwise: ``cache_dir()/library``."""
    return cache_dir() / "library"


def ensure_library(folder: Path, seeds: Path | None = None) -> bool:
    """Create ``folder`` holding a copy of the bundled seed articles, if it does not exist.

    The copy is made in a sibling temp folder and renamed into place, so an interrupted
    first start never leaves a half-filled library behind.

    Args:
        folder: the library folder.
        seeds: where to copy from (default: the bundled seeds).

    Returns:
        True when the library was created now, False when it already existed.
    """
    if folder.is_dir():
        return False
    source = seeds or bundled_seeds_dir()
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.with_name(f".{folder.name}.part")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial, ignore=shutil.ignore_patterns(".*"))
    partial.rename(folder)
    return True


def chat_config(config: Config | None = None) -> Config:
    """The chat's configuration: ``config`` with a writable corpus folder.

    Without a corpus folder the chat uses :func:`default_library_dir`, filled with the
    bundled seeds on first start, so uploads never write into the installed package.

    Args:
        config: the settings to start from (default: all defaults).

    Returns:
        A config whose ``corpus_dir`` is set.
    """
    config = config or Config()
    if config.corpus_dir is not None:
        return config
    library = default_library_dir()
    if ensure_library(library):
        print(f"newsqa chat: created the article library {library} from the bundled seeds")
    return config.with_(corpus_dir=library)


@dataclass(frozen=True)
class LoadState:
    """Where opening the retriever stands.

    Attributes:
        ready: the retriever can answer.
        error: why opening failed ("" when it did not).
        seconds: time spent opening so far (or in total, once done).
        building: the index is being built from scratch (the slow first start).
        files_done / files_total: files indexed so far and to index, while building.
        eta: seconds the build should still take (None until a rate is known).
    """

    ready: bool
    error: str
    seconds: float
    building: bool
    files_done: int = 0
    files_total: int = 0
    eta: float | None = None


class RetrieverService:
    """Opens a retriever in a background thread and hands it out once ready.

    The web server starts at once; questions and uploads that arrive while the index
    is still being built wait for it.
    """

    def __init__(
        self, factory: RetrieverFactory, building: bool = False, library: Path | None = None
    ) -> None:
        """Args:
        factory: builds the retriever (slow: loads the model, opens or builds the index).
        building: whether this opening builds an index from scratch (for the status).
        library: the article folder the retriever reads, when known (so messages can
            name it instead of spelling out its path, even before it is open).
        """
        self._factory = factory
        self._building = building
        self.library = library
        self._retriever: Retriever | None = None
        self._error = ""
        self._done = threading.Event()
        self._started = 0.0
        self._finished = 0.0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @classmethod
    def for_config(cls, config: Config) -> RetrieverService:
        """A service opening ``Retriever.from_config(config)`` with console progress."""
        building = not (config.index_path / "manifest.json").is_file()
        return cls(
            lambda: Retriever.from_config(config, progress=True),
            building=building,
            library=config.corpus,
        )

    def start(self) -> RetrieverService:
        """Begin opening in the background (only the first call does anything)."""
        with self._start_lock:
            if self._thread is None:
                self._started = time.monotonic()
                self._thread = threading.Thread(target=self._open, name="newsqa-open", daemon=True)
                self._thread.start()
        return self

    def get(self, timeout: float | None = None) -> Retriever:
        """The retriever, waiting for it to be ready.

        Args:
            timeout: seconds to wait at most (None: as long as it takes).

        Returns:
            The ready retriever.

        Raises:
            RagError: opening failed, or it is not ready within ``timeout``.
        """
        self.start()
        if not self._done.wait(timeout):
            raise RagError("the index is still being built; please try again shortly")
        if self._retriever is None:
            raise RagError(self._error or "the retriever could not be opened")
        return self._retriever

    def state(self) -> LoadState:
        """A snapshot of the loading state, for the status line."""
        done = self._done.is_set()
        end = self._finished if done else time.monotonic()
        return LoadState(
            ready=self._retriever is not None,
            error=self._error,
            seconds=max(0.0, end - self._started) if self._started else 0.0,
            building=self._building,
            **({} if done else _files_progress()),
        )

    def _open(self) -> None:
        if self._building:
            print("newsqa chat: building the index (first start, about a minute or two)…")
        try:
            retriever = self._factory()
            retriever.warm_up()  # the first user's question is answered at full speed
            self._retriever = retriever
        except (RagError, OSError, ValueError) as exc:
            self._error = str(exc)
            print(f"newsqa chat: cannot open the index: {exc}", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - shown in the page instead of a dead thread
            self._error = f"{type(exc).__name__}: {exc}"
            print(f"newsqa chat: cannot open the index: {self._error}", file=sys.stderr)
        finally:
            self._finished = time.monotonic()
            self._done.set()
        if self._retriever is not None:
            seconds = self._finished - self._started
            count = len(self._retriever.articles())
            print(f"newsqa chat: ready in {seconds:.1f} s ({count} articles)", flush=True)


def _files_progress() -> dict[str, Any]:
    """Files done and total and the ETA of a running index build, from its progress bar."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with sentence-transformers
        return {}
    for bar in list(getattr(tqdm, "_instances", ())):
        if getattr(bar, "desc", "") == PROGRESS_DESC and bar.total:
            rate = bar.format_dict.get("rate")
            eta = (bar.total - bar.n) / rate if rate else None
            return {"files_done": int(bar.n), "files_total": int(bar.total), "eta": eta}
    return {}
