"""What several test modules share: seed questions with their answers, Gradio's HTTP API."""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.records import Chunk

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def make_chunk(text: str, title: str = "标题", id: str = "x") -> Chunk:
    """A one-line passage of ``a.txt`` (article 0), for tests of ranking and embedding."""
    return Chunk(
        id=id,
        file="a.txt",
        article_index=0,
        title=title,
        byline="",
        start=0,
        end=len(text),
        line_start=1,
        line_end=1,
        text=text,
    )


AREA_FILE = "000_e1705054eebe6bde.txt"
# (question, the file that answers it, text the answering passage holds), one or two per seed
SEED_ANSWERS = [
    ("七台河冰雪经济产业园研创中心项目的总建筑面积是多少？", AREA_FILE, "2800平方米"),
    ("宝泰隆一矿的设计产能是多少？", AREA_FILE, "90万吨/年"),
    ("绥芬河市2021年以来签约了多少个项目？", "001_46b047b0685aa754.txt", "签约项目141个"),
    ("关成亮在绥芬河站担任什么工作？", "001_46b047b0685aa754.txt", "调车长"),
    ("联顺生物项目每年消耗多少玉米和大豆？", "002_0e4bc0f4ab5fa543.txt", "110万吨"),
    ("万锂泰二期项目建成后全年产值能达到多少？", "002_0e4bc0f4ab5fa543.txt", "12.5亿元"),
    ("五大连池市规划的风力发电总装机容量是多少？", "003_80151df246a9c92a.txt", "3837.5MW"),
    ("How many wind turbine sites did Wudalianchi select?", "003_80151df246a9c92a.txt", "614"),
    ("七台河援助湖北孝感医疗队有多少名队员？", "004_acfe561def3928f2.txt", "12名医疗队队员"),
    ("截至3月24日七台河市省百大项目开复工多少个？", "004_acfe561def3928f2.txt", "开复工21个"),
]


def submit_call(http: httpx.Client, name: str, *data: Any) -> str:
    """Queue a call of the chat's endpoint ``/name`` through Gradio's HTTP API; its event id."""
    started = http.post(f"gradio_api/call/{name}", json={"data": list(data)})
    started.raise_for_status()
    return str(started.json()["event_id"])


def call_result(http: httpx.Client, name: str, event_id: str) -> tuple[str, Any]:
    """``(event, data)`` at the end of a submitted call: "complete" or "error"."""
    event = ""
    with http.stream("GET", f"gradio_api/call/{name}/{event_id}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = line.removeprefix("data:").strip()
                return event, json.loads(payload) if payload else None
    raise AssertionError(f"no result from /{name}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served_seed_chat(root: Path) -> Iterator[tuple[str, Path, Any, httpx.Client]]:
    """``newsqa chat --folder <copy of the seeds> --embedder hash --index-dir …``, served in
    this process (the steps of :func:`ui.app.launch`, not blocking) under ``root``.

    The real app, queue and API over the hash embedder, so it is ready in seconds and
    needs no model; quality claims belong to the slow tests over the real model.

    Yields:
        Its url, the copy of the seeds it serves, its config, and an HTTP client on it,
        once ``/status`` says it is ready.
    """
    from rag.cli import make_config
    from ui.app import build_app, serve
    from ui.library import chat_config

    corpus = root / "corpus"
    shutil.copytree(SEEDS, corpus)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NEWSQA_CACHE", str(root / "cache"))
        env.setenv("GRADIO_TEMP_DIR", str(root / "uploads"))
        config = chat_config(make_config(folder=corpus, index_dir=root / "index", embedder="hash"))
        app = build_app(config)
        try:
            url = serve(app, port=free_port(), block=False)
            with httpx.Client(base_url=url, timeout=60, trust_env=False) as http:
                deadline = time.monotonic() + 60
                while not (
                    status := call_result(http, "status", submit_call(http, "status"))[1][0]
                )["ready"]:
                    assert not status["error"], status["error"]
                    assert time.monotonic() < deadline, f"not ready in 60 s: {status}"
                    time.sleep(0.1)
                yield url, corpus, config, http
        finally:
            app.close()


def ask_in_page(page: Any, question: str, timeout: int = 60_000) -> Any:
    """Type ``question`` in the chat, press Enter, and return the new reply's locator."""
    from playwright.sync_api import expect

    replies = page.locator("#nq-chat .nq-reply:not(.nq-notice)")
    before = replies.count()
    box = page.locator("#nq-question textarea")
    box.fill(question)
    box.press("Enter")
    expect(replies).to_have_count(before + 1, timeout=timeout)
    return replies.nth(before)
