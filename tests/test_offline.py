"""The chat stays offline and local: watched at the socket level, not trusted from settings.

A ``sys.addaudithook`` hook records every ``socket.getaddrinfo``/``gethostbyname``/
``gethostbyaddr``/``connect`` of this process whose host is not loopback, while a test
has switched recording on (audit hooks cannot be removed, so the hook checks a
module-level flag and is installed once).

Whose traffic is recorded: every thread's, on purpose. Gradio's analytics run in threads
started by ``gr.Blocks()`` and ``launch()`` (from the test's own thread), and both
Gradio and gradio_client send their telemetry through huggingface_hub's one shared
telemetry worker thread, so neither a thread filter nor a time window could tell the
server's calls from a client's. The tests therefore speak the Gradio HTTP API with
plain ``httpx`` to ``127.0.0.1`` instead of ``gradio_client`` (whose ``Client`` starts a
telemetry thread to huggingface.co that its ``analytics_enabled=False`` does not stop:
it is or-ed with ``GRADIO_ANALYTICS_ENABLED``). The test's own requests are loopback and
not recorded, so any recorded event is the chat's.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import call_result, submit_call

from rag import Config
from rag.config import K_MAX, K_MIN
from ui.app import Handlers, build_app, serve
from ui.chat import ChatBackend
from ui.library import RetrieverService

AREA = "七台河冰雪经济产业园研创中心项目的总建筑面积是多少？"
NEW_ARTICLE = "# 漠河北极村迎来首场降雪\n\n本报讯 漠河北极村今年首场降雪厚度达到十八厘米。\n"
EVIL = "http://evil.example"

# ----------------------------------------------------------------------------- the watcher

WATCHED = {
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyname_ex",
    "socket.gethostbyaddr",
    "socket.connect",
}


@dataclass
class _Watch:
    on: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (event, host, thread)
    installed: bool = False


_WATCH = _Watch()


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host is None:  # getaddrinfo(None, port): a local address to bind
        return True
    name = str(host).strip("[]").lower()
    if name in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        return False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _WATCH.on or event not in WATCHED:
        return
    if event == "socket.connect":
        address = args[1]
        if not isinstance(address, tuple):  # AF_UNIX: a local socket file
            return
        host = address[0]
    else:
        host = args[0]
    if not _is_loopback(host):
        _WATCH.events.append((event, str(host), threading.current_thread().name))


@contextmanager
def watch_sockets() -> Iterator[list[tuple[str, str, str]]]:
    """Record the non-loopback lookups and connections made meanwhile, by any thread."""
    if not _WATCH.installed:
        sys.addaudithook(_hook)
        _WATCH.installed = True
    _WATCH.events = []
    _WATCH.on = True
    try:
        yield _WATCH.events
    finally:
        _WATCH.on = False


def test_the_watcher_sees_an_outward_lookup_and_ignores_loopback() -> None:
    with watch_sockets() as events:
        socket.getaddrinfo("127.0.0.1", 80)
        socket.getaddrinfo("localhost", 80)
        with contextlib.suppress(OSError):  # no resolver here: still attempted
            socket.getaddrinfo("newsqa-watcher-check.invalid", 80)
    assert [(event, host) for event, host, _ in events] == [
        ("socket.getaddrinfo", "newsqa-watcher-check.invalid")
    ]


# ----------------------------------------------------------------------------- the server


@dataclass
class Chat:
    url: str
    corpus: Path
    uploads: Path  # Gradio's upload cache (GRADIO_TEMP_DIR)
    http: httpx.Client

    def call(self, api: str, *data: Any) -> tuple[str, Any]:
        """Call a named endpoint through Gradio's HTTP API: ``(event, data)`` at its end."""
        return call_result(self.http, api, submit_call(self.http, api, *data))

    def upload(self, path: Path, origin: str | None = None) -> httpx.Response:
        """Post ``path`` to Gradio's upload route, as the page's upload button does."""
        headers = {"Origin": origin} if origin else {}
        with path.open("rb") as handle:
            return self.http.post(
                "gradio_api/upload", files={"files": (path.name, handle)}, headers=headers
            )

    def wait_ready(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event, data = self.call("status")
            assert event == "complete", data
            status: dict[str, Any] = data[0]
            if status["ready"] or status["error"]:
                return status
            time.sleep(0.2)
        raise AssertionError("the chat did not open its index in time")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def chat_server(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **settings: Any
) -> Iterator[Chat]:
    """The chat in this process over ``corpus`` (hash embedder unless told otherwise)."""
    uploads = tmp_path / "gradio-uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    config = Config(corpus_dir=corpus, **{"embedder": "hash", **settings})
    app = build_app(config)
    url = serve(app, port=_free_port(), block=False)
    try:
        with httpx.Client(base_url=url, timeout=60, trust_env=False) as http:
            yield Chat(url, corpus, uploads, http)
    finally:
        app.close()


def _says_local_files_only(message: str | None) -> bool:
    return message is not None and "只能上传本地文件" in message and "only local files" in message


def _file_data(path: str, name: str) -> dict[str, Any]:
    return {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def test_a_chat_session_looks_nothing_up_and_connects_nowhere_but_loopback(
    seed_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start, status, a question, bad API values, an upload and a URL upload: no outward
    lookup or connection (before the fix: api.gradio.app, huggingface.co, example.invalid)."""
    article = tmp_path / "mohe_first_snow.txt"
    article.write_text(NEW_ARTICLE, encoding="utf-8")
    with watch_sockets() as events:
        with chat_server(seed_copy, tmp_path, monkeypatch) as chat:
            assert chat.wait_ready()["ready"]
            event, data = chat.call("ask", AREA, [], 3, "")
            assert event == "complete" and not data[0]["error"] and data[0]["hits"]
            event, data = chat.call("ask", None, [], 3, "")
            assert event == "complete" and data[0]["error"] and not data[0]["hits"]

            uploaded = chat.upload(article)
            assert uploaded.status_code == 200, uploaded.text
            event, data = chat.call("upload", [_file_data(uploaded.json()[0], article.name)])
            assert event == "complete" and "已加入 mohe_first_snow.txt" in data[0]

            remote = _file_data("http://example.invalid/a.txt", "a.txt")
            event, data = chat.call("upload", [{**remote, "url": remote["path"]}])
            assert event == "error" and _says_local_files_only(data["error"])
            event, data = chat.call("upload", [_file_data("HTTPS://example.invalid/b.md", "b")])
            assert event == "error" and _says_local_files_only(data["error"])
            assert not (seed_copy / "a.txt").exists() and not (seed_copy / "b.md").exists()
        time.sleep(0.5)  # any analytics thread started meanwhile has made its lookup
    assert not events, "\n".join(map(str, events))


@pytest.mark.slow  # starts a Ray cluster (~20 s)
def test_indexing_on_ray_into_milvus_connects_nowhere_but_loopback(
    seed_copy: Path, tmp_path: Path
) -> None:
    """Starting a one-machine Ray cluster (usage statistics off), its workers' results and
    the milvus-lite writes: no outward lookup or connection from this process."""
    pytest.importorskip("ray")
    pytest.importorskip("pymilvus")
    from rag.distributed import index_with_ray

    config = Config(
        corpus_dir=seed_copy, embedder="hash", backend="milvus", milvus_uri=str(tmp_path / "l.db")
    )
    with watch_sockets() as events:
        report = index_with_ray(config, workers=1)
        import ray

        assert not ray.is_initialized()  # the one-machine cluster it started is stopped
    assert report.chunks > 50 and not report.failures
    assert not events, "\n".join(map(str, events))


# ----------------------------------------------------------------------------- uploads


def test_uploads_from_another_site_are_refused(
    seed_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    article = tmp_path / "cross.txt"
    article.write_text(NEW_ARTICLE, encoding="utf-8")
    with chat_server(seed_copy, tmp_path, monkeypatch) as chat:
        chat.wait_ready()
        for origin in (EVIL, "null", chat.url.replace("127.0.0.1", "127.0.0.2")):
            refused = chat.upload(article, origin=origin)
            assert refused.status_code == 403, (origin, refused.text)
        asked = chat.http.post(
            "gradio_api/call/ask", json={"data": [AREA, [], 3, ""]}, headers={"Origin": EVIL}
        )
        assert asked.status_code == 403
        assert not any(chat.uploads.rglob("cross.txt"))  # nothing was stored

        own_page = chat.upload(article, origin=chat.url.rstrip("/"))
        assert own_page.status_code == 200, own_page.text
        event, data = chat.call("upload", [_file_data(own_page.json()[0], article.name)])
        assert event == "complete" and "已加入 cross.txt" in data[0]
        assert chat.upload(article).status_code == 200  # an API client sends no Origin
        page = chat.http.get("", headers={"Origin": EVIL})
        assert page.status_code == 200  # reading is not refused, only changes


def test_the_temporary_copy_of_an_upload_is_deleted_once_added(
    seed_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    article = tmp_path / "mohe_first_snow.txt"
    article.write_text(NEW_ARTICLE, encoding="utf-8")
    with chat_server(seed_copy, tmp_path, monkeypatch) as chat:
        chat.wait_ready()
        uploaded = chat.upload(article)
        temp_copy = Path(uploaded.json()[0])
        assert temp_copy.is_file() and temp_copy.is_relative_to(chat.uploads)
        event, data = chat.call("upload", [_file_data(str(temp_copy), article.name)])
        assert event == "complete" and "已加入 mohe_first_snow.txt" in data[0]
        assert not temp_copy.exists() and not temp_copy.parent.exists()
        assert chat.uploads.is_dir()  # the cache folder itself stays
        assert (seed_copy / "mohe_first_snow.txt").read_text(encoding="utf-8") == NEW_ARTICLE
        assert article.is_file()  # the user's own file is untouched

        refused = tmp_path / "broken.txt"
        refused.write_bytes(bytes(range(256)) * 8)
        temp_refused = Path(chat.upload(refused).json()[0])
        event, data = chat.call("upload", [_file_data(str(temp_refused), refused.name)])
        assert event == "complete" and "未能加入 broken.txt" in data[0]
        assert not temp_refused.exists()  # a refused file's copy goes too


# ----------------------------------------------------------------------------- status, errors


def test_status_names_the_library_folder_but_never_its_path(seed_copy: Path) -> None:
    service = RetrieverService.for_config(Config(corpus_dir=seed_copy, embedder="hash"))
    backend = ChatBackend(service.start())
    service.get(timeout=60)
    status = backend.status()
    assert status["ready"] and status["corpus"] == seed_copy.name == "corpus"
    assert str(seed_copy.parent) not in json.dumps(status, ensure_ascii=False)


def test_errors_in_the_status_line_carry_no_server_path(
    seed_copy: Path, isolated_cache: Path
) -> None:
    library = seed_copy
    index = isolated_cache / "indexes" / "corpus-0123456789"

    def broken() -> Any:
        raise OSError(f"cannot read {library}/000.txt; index {index} is locked; see {library}")

    service = RetrieverService(broken, library=library).start()
    backend = ChatBackend(service)
    with pytest.raises(Exception):  # noqa: B017 - the opening's own error
        service.get(timeout=10)
    status, line = backend.status(), backend.status_text()
    for text in (status["error"], line):
        assert str(library) not in text and str(isolated_cache) not in text
        assert str(Path.home()) not in text or str(Path.home()) == "/"
    assert status["error"] == (
        "cannot read corpus/000.txt; index <cache>/indexes/corpus-0123456789 is locked; see corpus"
    )
    assert "无法打开索引" in line and "corpus/000" in line.replace("\\", "")
    reply = backend.reply("问题？", [], 5)  # the same error in a reply is cleaned too
    assert str(library) not in reply.html and str(library) not in reply.error


def test_a_folder_named_like_the_library_but_longer_is_left_alone(seed_copy: Path) -> None:
    backend = ChatBackend(RetrieverService(lambda: None, library=seed_copy))  # type: ignore[arg-type,return-value]
    text = f"{seed_copy}-old/a.txt and {seed_copy}/b.txt"
    assert backend.hide_paths(text) == f"{seed_copy}-old/a.txt and corpus/b.txt"


# ----------------------------------------------------------------------------- bad API values


@pytest.fixture()
def handlers(seed_copy: Path) -> Handlers:
    service = RetrieverService.for_config(Config(corpus_dir=seed_copy, embedder="hash"))
    service.start().get(timeout=60)
    return Handlers(ChatBackend(service))


def _deep(depth: int) -> list[Any]:
    nested: list[Any] = []
    for _ in range(depth):
        nested = [nested]
    return nested


@pytest.mark.parametrize(
    ("question", "kind"),
    [(None, "null"), (42, "int"), (3.5, "float"), (["七台河"], "list"), ({"q": 1}, "dict")],
)
def test_a_question_that_is_not_text_gets_an_error_reply(
    handlers: Handlers, question: Any, kind: str
) -> None:
    result = handlers.ask_api(question, [], 5)
    assert result["error"] and kind in result["error"] and "问题必须是文字" in result["error"]
    assert result["hits"] == [] and result["found"] is False and result["question"] == ""
    assert "nq-error" in result["html"]


def test_huge_nesting_anywhere_gets_an_error_reply_not_a_crash(handlers: Handlers) -> None:
    deep = _deep(200_000)  # far beyond the recursion limit: nothing may walk it recursively
    cases: list[tuple[Any, ...]] = [(deep, [], 5), (AREA, deep, 5), (AREA, [], deep)]
    for args in [*cases, (AREA, [], 5, deep)]:
        result = handlers.ask_api(*args)
        assert result["error"] and "list" in result["error"] and result["hits"] == []


@pytest.mark.parametrize("k", [0, -1, K_MAX + 1, 50, 2.5, "5", None, True, [5]])
def test_k_out_of_range_or_not_a_number_is_an_error_naming_the_range(
    handlers: Handlers, k: Any
) -> None:
    result = handlers.ask_api(AREA, [], k)
    assert result["hits"] == [] and result["error"]
    assert f"from {K_MIN} to {K_MAX}" in result["error"]


def test_k_at_the_bounds_is_answered_with_that_many_passages(handlers: Handlers) -> None:
    assert len(handlers.ask_api(AREA, [], K_MIN)["hits"]) == K_MIN
    most = handlers.ask_api(AREA, [], K_MAX)
    assert not most["error"] and K_MIN < len(most["hits"]) <= K_MAX
    assert not handlers.ask_api(AREA, [], 3.0)["error"]  # type: ignore[arg-type]  # a slider's


@pytest.mark.parametrize(
    ("history", "mode"), [(5, ""), ([1, 2], ""), ("七台河", ""), ([], 7), ([], "bogus")]
)
def test_bad_history_or_mode_gets_an_error_reply(
    handlers: Handlers, history: Any, mode: Any
) -> None:
    result = handlers.ask_api(AREA, history, 5, mode)
    assert result["error"] and result["hits"] == []


# ----------------------------------------------------------------------------- the model loader


class _Recorder:
    """Stands in for ``SentenceTransformer``: records calls, fails the local-only ones."""

    def __init__(self, local_fails: bool) -> None:
        self.calls: list[dict[str, Any]] = []
        self.local_fails = local_fails

    def __call__(self, name: str, **kwargs: Any) -> str:
        from huggingface_hub import constants

        self.calls.append({"name": name, "offline": constants.HF_HUB_OFFLINE, **kwargs})
        if kwargs.get("local_files_only") and self.local_fails:
            raise OSError("not in the local cache")
        return f"model {name}"


@pytest.fixture()
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Recorder]:
    import sentence_transformers
    from huggingface_hub import constants

    from rag.embedding import load_sentence_transformer

    fake = _Recorder(local_fails=True)
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", fake)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # as if a hub were reachable
    load_sentence_transformer.cache_clear()
    yield fake
    load_sentence_transformer.cache_clear()


def test_a_local_model_folder_is_loaded_with_the_hub_off(
    recorder: _Recorder, tmp_path: Path
) -> None:
    from huggingface_hub import constants

    from rag import ModelError
    from rag.embedding import load_sentence_transformer

    recorder.local_fails = False
    assert load_sentence_transformer(str(tmp_path)) == f"model {tmp_path}"
    assert recorder.calls == [
        {"name": str(tmp_path), "offline": True, "device": "cpu", "local_files_only": True}
    ]
    assert constants.HF_HUB_OFFLINE is False  # switched back afterwards
    recorder.local_fails = True  # a broken local folder is an error, never a download
    (tmp_path / "broken").mkdir()
    with pytest.raises(ModelError):
        load_sentence_transformer(str(tmp_path / "broken"))
    assert len(recorder.calls) == 2 and recorder.calls[1]["local_files_only"] is True


def test_a_hub_id_not_available_locally_is_still_downloaded(recorder: _Recorder) -> None:
    from rag.embedding import load_sentence_transformer

    assert load_sentence_transformer("some-org/some-model") == "model some-org/some-model"
    local_only, download = recorder.calls
    assert local_only["local_files_only"] is True and local_only["offline"] is True
    assert "local_files_only" not in download and download["offline"] is False


def test_a_relative_local_model_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.embedding import resolve_model_path

    (tmp_path / "models" / "e5").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("models/e5") == str(tmp_path / "models" / "e5")
    assert resolve_model_path("some-org/some-model") == "some-org/some-model"


def _fresh_hub_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget what this process learnt from (or failed to get from) the Hub."""
    from huggingface_hub.utils import _detect_agent

    from rag.embedding import load_sentence_transformer

    monkeypatch.setattr(_detect_agent, "_registry", None)
    load_sentence_transformer.cache_clear()


@pytest.mark.slow
def test_the_real_model_loads_from_a_relative_folder_without_a_lookup(
    with_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the fix, ``models/<name>`` was looked up on huggingface.co as a model id."""
    from rag.embedding import default_model_dir, load_sentence_transformer

    monkeypatch.chdir(with_model)
    relative = str(default_model_dir().relative_to(with_model))
    assert relative.count("/") == 1  # "models/<name>": also a valid Hub id
    _fresh_hub_state(monkeypatch)
    try:
        with watch_sockets() as events:
            model = load_sentence_transformer(relative)
            assert model.encode(["query: 七台河"]).shape == (1, 384)
        assert not events, "\n".join(map(str, events))
    finally:
        load_sentence_transformer.cache_clear()


@pytest.mark.slow
def test_a_hub_id_in_the_local_cache_loads_without_a_lookup(
    with_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the fix, huggingface_hub fetched its agent registry (and sentence-transformers
    the model's info) from huggingface.co although every file was in the cache."""
    from huggingface_hub import constants

    from rag.embedding import default_model_dir, load_sentence_transformer

    revision = "0" * 40
    repo = tmp_path / "hub" / "models--newsqa-test--e5-small"
    shutil.copytree(default_model_dir().resolve(), repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    _fresh_hub_state(monkeypatch)
    try:
        with watch_sockets() as events:
            model = load_sentence_transformer("newsqa-test/e5-small")
            assert model.encode(["query: 七台河"]).shape == (1, 384)
        assert not events, "\n".join(map(str, events))
    finally:
        load_sentence_transformer.cache_clear()
