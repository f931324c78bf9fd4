"""The Gradio web chat: ask the articles, follow up, upload more, every answer cited."""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gradio as gr
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from rag import Config, Retriever

from . import history as kept
from .article import article_routes
from .chat import ChatBackend, Conversation
from .feedback import FeedbackStore, feedback_path, feedback_routes
from .library import RetrieverService, chat_config
from .manager import CSS as MANAGER_CSS
from .manager import LibraryManager, build_manager_tab, wire_manager
from .page import (
    CLEAR_SENT_QUESTION_JS,
    CSS,
    HEAD,
    PAGE_JS,
    SHOW_LATEST_QUESTION_JS,
    Page,
    Sidebar,
    build_layout,
    build_sidebar,
    localize,
)
from .render import render_articles
from .strings import ZH_CODE, preferred_language, text

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
CONCURRENCY = 4  # questions answered at once (2-4 cores); the rest wait in the queue
QUEUE_SIZE = 64
ROUTE_WAIT = 10.0  # seconds /article and /feedback wait for an index still opening
MAX_UPLOAD = "20mb"  # the library refuses oversized articles itself, with a clear message
PRIVATE: dict[str, Any] = {"api_visibility": "private"}  # page-only events, not in the API
LOCAL_FILES_ONLY = "只能上传本地文件，不接受网址 (only local files can be uploaded, not URLs)"
CROSS_ORIGIN = "cross-origin requests are refused: use the chat page itself or an API client"
# a file "path" Gradio would fetch (http://, https://) or that is no local path at all
_REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?[/\\]{2}", re.IGNORECASE)
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Gradio reads a handler's progress tracker from its default value; tqdm bars (the
# embedding passes) are mirrored on the page.
UPLOAD_PROGRESS = gr.Progress(track_tqdm=True)

Message = dict[str, Any]
Source = Config | Callable[[], Retriever] | RetrieverService


class SameOriginOnly:
    """ASGI middleware: refuse (403) requests that change something sent from another site.

    A browser adds ``Origin`` to every POST; a page of another site (or a sandboxed one,
    ``Origin: null``) must not upload articles or ask questions through a visitor's
    browser. Requests without ``Origin`` (API clients, curl) and the chat page's own
    requests (same scheme, host and port as the ``Host`` or ``X-Forwarded-Host`` they
    were sent to) pass. WebSocket handshakes from other sites are refused the same way.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        checked = scope["type"] == "websocket" or (
            scope["type"] == "http" and scope["method"] in _UNSAFE_METHODS
        )
        if checked:
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not is_same_origin(origin, headers):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await PlainTextResponse(CROSS_ORIGIN, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def is_same_origin(origin: str, headers: Headers) -> bool:
    """Whether ``origin`` names the host a request was sent to (port included)."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False  # "null" (sandboxed pages, files) and anything odd
    default = ":443" if parts.scheme == "https" else ":80"
    wanted = parts.netloc.lower().removesuffix(default)
    for name in ("host", "x-forwarded-host"):
        sent = (headers.get(name) or "").split(",")[0].strip().lower().removesuffix(default)
        if sent and sent == wanted:
            return True
    return False


def has_remote_file(data: Any) -> bool:
    """Whether ``data`` holds a file whose ``path`` is a URL (at any depth, no recursion)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            path = item.get("path")
            if isinstance(path, str) and _REMOTE.match(path):
                return True
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


class ChatBlocks(gr.Blocks):
    """``gr.Blocks`` that keeps the chat offline and its uploads local.

    - Gradio's analytics and version check are off (``analytics_enabled=False``): no
      request to api.gradio.app or huggingface.co at start or later.
    - A file whose ``path`` is a URL is refused before Gradio would download it on the
      server (``processing_utils.async_move_files_to_cache`` fetches ``http(s)://``
      paths into its cache): "only local files can be uploaded".
    - :meth:`launch` adds :class:`SameOriginOnly`, whatever launches it, and the
      chat's own routes (:attr:`routes`: the article pages, feedback) ahead of Gradio's.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("analytics_enabled", False)
        super().__init__(**kwargs)
        self.routes: list[Any] = []  # Starlette routes served beside the page

    def launch(self, *args: Any, **kwargs: Any) -> Any:
        """``gr.Blocks.launch`` with cross-origin requests refused and :attr:`routes` added."""
        app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
        app_kwargs["middleware"] = [*app_kwargs.get("middleware", []), Middleware(SameOriginOnly)]
        app_kwargs["routes"] = [*app_kwargs.get("routes", []), *self.routes]
        return super().launch(*args, app_kwargs=app_kwargs, **kwargs)

    async def preprocess_data(
        self, block_fn: Any, inputs: list[Any], state: Any, explicit_call: bool = False
    ) -> Any:
        """Refuse URLs in place of files, then Gradio's own preprocessing."""
        if has_remote_file(inputs):
            raise gr.Error(LOCAL_FILES_ONLY, print_exception=False)
        return await super().preprocess_data(block_fn, inputs, state, explicit_call)


class Handlers:
    """The page's event handlers over one shared :class:`~ui.chat.ChatBackend`."""

    def __init__(self, backend: ChatBackend, upload_folder: Path | None = None) -> None:
        """Args:
        backend: answers questions and takes uploads.
        upload_folder: the web server's upload cache; the temporary copies of
            uploaded files in it are deleted once read.
        """
        self.backend = backend
        self.upload_folder = upload_folder
        self.lock = threading.Lock()  # guards every session's Conversation (briefly)

    def take_question(
        self,
        question: str,
        conversation: Conversation,
        k: float = 5,
        mode: str | None = None,
        request: gr.Request | None = None,
    ) -> tuple[Any, Any]:
        """Queue the typed question and show it at once; an empty one leaves a hint.

        Runs for every Enter or click, even while earlier questions wait for their
        replies (:meth:`answer_queue` answers them in order). The page empties the box
        itself as it sends (``CLEAR_SENT_QUESTION_JS``). Returns the chat and the hint
        under the box (in the page's language).
        """
        if not isinstance(question, str) or not question.strip():
            return gr.skip(), gr.Markdown(text("empty_hint", _lang(request)), visible=True)
        with self.lock:
            conversation.ask(question.strip(), k, mode)
            messages = conversation.messages()
        return messages, gr.Markdown("", visible=False)

    def answer_queue(self, conversation: Conversation) -> Iterator[Any]:
        """Answer the conversation's waiting questions, oldest first, showing each reply.

        One event per conversation does the answering; one started meanwhile (another
        question sent) leaves the chat alone, its question being answered by the first.
        A notice comes first while the index is still being built.
        """
        token = object()
        with self.lock:
            busy = conversation.answerer is not None
            if not busy:
                conversation.answerer = token
        if busy:  # never yield holding the lock
            yield gr.skip()
            return
        shown = False
        try:
            while True:
                with self.lock:
                    turn = conversation.next_waiting()
                    if turn is None:
                        conversation.answerer = None
                        break
                    history = list(conversation.queries)
                notice = self.backend.pending_notice()
                if notice:
                    with self.lock:
                        turn.html = notice
                        messages = conversation.messages()
                    shown = True
                    yield messages
                reply = self.backend.reply(turn.question, history, turn.k, turn.mode)
                with self.lock:
                    turn.html, turn.answered = reply.html, True
                    turn.query, turn.markdown = reply.query, reply.markdown
                    if reply.query and conversation.holds(turn):
                        conversation.queries.append(reply.query)
                    messages = conversation.messages()
                shown = True
                yield messages
        finally:
            with self.lock:
                if conversation.answerer is token:  # stopped early: let the next one answer
                    conversation.answerer = None
        if not shown:
            yield gr.skip()

    def new_conversation(self, conversation: Conversation) -> list[Message]:
        """Empty the chat and forget the earlier queries."""
        with self.lock:
            conversation.clear()
        return []

    def add_uploads(
        self,
        files: list[str] | None,
        progress: gr.Progress = UPLOAD_PROGRESS,
        request: gr.Request | None = None,
    ) -> tuple[str, str, str]:
        """Index uploaded files; say which articles were added and which files refused.

        The embedding passes show as a progress bar on the upload panel; questions are
        answered meanwhile. Returns the upload summary, the article list and the status
        line (so the library's size shown is current), in the page's language.
        """
        lang = _lang(request)
        progress(0, desc=text("adding", lang))
        result = self.backend.add_files(list(files or []), self.upload_folder, progress=True)
        for name, reason in result.failed:
            refused = text("refused_file", lang, name=name, reason=reason)
            gr.Warning(refused, title=text("warning", lang))
        if result.added:
            gr.Info(text("added", lang, count=len(result.added)), title=text("info", lang))
        lines = result.summary(lang).splitlines()
        summary = "\n".join(f"- {escape(line)}" for line in lines)
        return summary, self.article_list(), self.backend.status_text(lang)

    def refresh(self, request: gr.Request | None = None) -> tuple[str, str, gr.Timer]:
        """The status line and article list; polling stops once the index is open."""
        state = self.backend.service.state()
        polling = not (state.ready or state.error)
        status = self.backend.status_text(_lang(request))
        return status, self.article_list(), gr.Timer(active=polling)

    def save_history(
        self, conversation: Conversation, history: Any, request: gr.Request | None = None
    ) -> tuple[Any, Any]:
        """Keep the conversation in the browser's store; the sidebar lists it.

        Returns:
            The store's new value and the sidebar's list (the conversation selected).
        """
        with self.lock:
            data = kept.saved(history, conversation.id, conversation.saved_turns())
            current = conversation.id
        return data, self._listed(data, current, request)

    def restore_history(
        self, conversation: Conversation, history: Any, request: gr.Request | None = None
    ) -> tuple[list[Message], Any]:
        """On page load: the conversation the browser was showing (a reload keeps it)."""
        data = kept.cleaned(history)
        return self._switch(conversation, data, data["current"], request)

    def switch_conversation(
        self,
        conversation: Conversation,
        history: Any,
        wanted: str | None,
        request: gr.Request | None = None,
    ) -> tuple[list[Message], Any, Any]:
        """Show another kept conversation (picked in the sidebar)."""
        data = kept.cleaned(history)
        messages, listed = self._switch(conversation, data, wanted or "", request)
        data["current"] = conversation.id
        return messages, listed, data

    def rename_conversation(
        self,
        conversation: Conversation,
        history: Any,
        title: str,
        request: gr.Request | None = None,
    ) -> tuple[Any, Any, str]:
        """Give the conversation shown a name of the user's (empties the name box)."""
        data = kept.renamed(history, conversation.id, title)
        return data, self._listed(data, conversation.id, request), ""

    def delete_conversation(
        self, conversation: Conversation, history: Any, request: gr.Request | None = None
    ) -> tuple[list[Message], Any, Any]:
        """Forget the conversation shown; the newest other one (or a new one) is shown."""
        data = kept.deleted(history, conversation.id)
        messages, listed = self._switch(conversation, data, data["current"], request)
        data["current"] = conversation.id
        return messages, listed, data

    def export_conversation(
        self, conversation: Conversation, history: Any, request: gr.Request | None = None
    ) -> Any:
        """The conversation shown as a Markdown file (with the full citations) to download."""
        lang = _lang(request)
        with self.lock:
            data = kept.saved(history, conversation.id, conversation.saved_turns())
        item = kept.find(data, conversation.id)
        if item is None:
            gr.Info(text("nothing_to_export", lang), title=text("info", lang))
            return gr.File(visible=False)
        folder = Path(self.upload_folder or tempfile.gettempdir()) / "exports" / item["id"]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"newsqa-{item['id']}.md"
        base = str(request.base_url) if request is not None else ""
        path.write_text(kept.to_markdown(item, base, lang), encoding="utf-8")
        return gr.File(value=str(path), visible=True)

    def _switch(
        self, conversation: Conversation, data: kept.History, wanted: str, request: Any
    ) -> tuple[list[Message], Any]:
        item = kept.find(data, wanted)
        with self.lock:
            if item is None:
                conversation.clear()
            else:
                conversation.restore(item["id"], item["turns"])
            messages = conversation.messages()
            current = conversation.id
        return messages, self._listed(data, current, request)

    @staticmethod
    def _listed(data: kept.History, current: str, request: Any) -> Any:
        choices = kept.choices(data, _lang(request))
        value = current if any(cid == current for _, cid in choices) else None
        return gr.Radio(choices=choices, value=value)

    def article_list(self) -> str:
        """The indexed articles as escaped HTML."""
        return render_articles(self.backend.articles())

    def ask_api(
        self, question: str, history: list[str] | None = None, k: int = 5, mode: str = ""
    ) -> dict[str, Any]:
        """API: answer ``question`` (a follow-up of ``history``, the earlier queries).

        ``mode`` is ``"hybrid"``, ``"dense"`` or ``"lexical"``; empty for the library's.

        Returns the searched query, whether the articles answer, the best sentence, the
        top citation, the hits and the reply HTML; errors come back in ``error``, also
        for arguments of the wrong type (e.g. a null question) or ``k`` out of range.
        """
        return self.backend.reply(question, history or [], k, mode).to_dict()

    def status_api(self) -> dict[str, Any]:
        """API: whether the index is open, the library's size and the retrieval mode."""
        return self.backend.status()


def build_app(source: Source | None = None) -> gr.Blocks:
    """The chat page over one article library.

    Args:
        source: a :class:`rag.Config` (its corpus folder is the library; default: the
            writable library under the cache, seeded from the bundled articles), a
            function returning a ready :class:`rag.Retriever`, or a
            :class:`~ui.library.RetrieverService`. Opening starts at once, in the
            background; the page shows its progress.

    Returns:
        The Gradio app (a :class:`ChatBlocks`: offline, local uploads only, same-origin
        writes only), queued; serve it with :func:`serve` (which adds the styles).
    """
    handlers = Handlers(ChatBackend(_service(source).start()))
    mode = source.mode if isinstance(source, Config) else None
    with ChatBlocks(title="newsqa · 新闻问答") as app:
        handlers.upload_folder = Path(app.GRADIO_CACHE)
        manager = LibraryManager(handlers.backend, handlers.upload_folder)
        sidebar = build_sidebar()  # the kept conversations, beside every tab
        with gr.Tabs(elem_id="nq-tabs"):
            with gr.Tab(text("lib_chat_tab"), id="chat", elem_id="nq-chat-tab") as chat_tab:
                page = build_layout(
                    handlers.backend.status_text(), handlers.article_list(), default_mode=mode
                )
            library = build_manager_tab(manager)  # the 文库 tab
        answered = _wire(app, page, handlers)
        _wire_reading_room(app, page, sidebar, handlers, answered)
        wire_manager(app, library, manager, page.status, page.articles, chat_tab)

    def opened() -> Retriever:  # the article and feedback routes never wait for long
        return handlers.backend.service.get(timeout=ROUTE_WAIT)

    store = FeedbackStore(lambda: feedback_path(opened().config))
    app.routes = article_routes(opened) + feedback_routes(opened, store)
    app.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return app


def serve(
    app: gr.Blocks, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, block: bool = True
) -> str:
    """Serve ``app`` with the chat's styles.

    Args:
        app: from :func:`build_app`.
        host: interface to listen on (``0.0.0.0`` for the whole network).
        port: TCP port.
        block: keep serving until interrupted (False: return once listening).

    Returns:
        The local URL.
    """
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        css=CSS + MANAGER_CSS,
        theme=gr.themes.Soft(primary_hue="amber"),
        js=PAGE_JS,
        head=HEAD,
        max_file_size=MAX_UPLOAD,
        prevent_thread_lock=not block,
        show_error=False,
        quiet=True,
        footer_links=["api"],
    )
    return url


def launch(
    config: Config | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> None:
    """Open the library's index (in the background) and serve the chat until interrupted.

    Args:
        config: settings; without a corpus folder the chat uses the writable library
            under the cache, created from the bundled seeds on first start.
        host: interface to listen on.
        port: TCP port.
    """
    config = chat_config(config)
    app = build_app(config)
    print(f"newsqa chat: library {config.corpus}")
    print(f"newsqa chat: open http://{host}:{port} in a browser (Ctrl+C to stop)", flush=True)
    serve(app, host, port, block=True)


def _wire(app: gr.Blocks, page: Page, handlers: Handlers) -> list[Any]:
    """Connect the page's events to the handlers and publish the API.

    Every question sent is taken (``trigger_mode="multiple"``: also while replies are
    pending, Gradio's default "once" would drop it), shown at once and queued in the
    session's conversation; the answering event then answers the queue in order.

    Returns:
        The answering event of each way of sending a question (done: replies shown).
    """
    answer_args = {
        "fn": handlers.answer_queue,
        "inputs": page.conversation,
        "outputs": page.chatbot,
        "trigger_mode": "multiple",
        **PRIVATE,
    }
    take_args = {
        "fn": handlers.take_question,
        "inputs": [page.question, page.conversation, page.k, page.mode],
        "outputs": [page.chatbot, page.hint],
        "js": CLEAR_SENT_QUESTION_JS,
        "queue": False,
        "trigger_mode": "multiple",
        **PRIVATE,
    }
    show_question = {"fn": None, "js": SHOW_LATEST_QUESTION_JS, "queue": False, **PRIVATE}
    clicked = page.examples.click(
        lambda sample: sample[0],
        page.examples,
        page.question,
        queue=False,
        trigger_mode="multiple",
        **PRIVATE,
    )
    answered: list[Any] = []  # the answering event of each way of sending a question
    for taken in (
        page.question.submit(**take_args),
        page.ask.click(**take_args),
        clicked.then(**take_args),
    ):
        taken.then(**show_question)
        replied = taken.then(**answer_args)
        replied.then(**show_question)
        answered.append(replied)
    page.clear.click(
        handlers.new_conversation, page.conversation, page.chatbot, queue=False, **PRIVATE
    )
    page.chatbot.clear(
        handlers.new_conversation, page.conversation, page.chatbot, queue=False, **PRIVATE
    )
    page.upload.upload(
        handlers.add_uploads,
        page.upload,
        [page.upload_status, page.articles, page.status],
        concurrency_limit=1,  # one writer at a time; questions go on meanwhile
        api_name="upload",
    )
    refresh_outputs = [page.status, page.articles, page.timer]
    page.timer.tick(handlers.refresh, None, refresh_outputs, queue=False, **PRIVATE)
    app.load(handlers.refresh, None, refresh_outputs, queue=False, **PRIVATE)
    gr.api(handlers.ask_api, api_name="ask")
    gr.api(handlers.status_api, api_name="status", queue=False)
    return answered


def _wire_reading_room(
    app: gr.Blocks, page: Page, sidebar: Sidebar, handlers: Handlers, answered: list[Any]
) -> None:
    """The kept conversations (restored on load, saved after each reply, switched,
    renamed, deleted, exported) and the page's language (English for a browser that
    prefers it)."""
    history, listed = sidebar.history, sidebar.conversations
    save = {
        "fn": handlers.save_history,
        "inputs": [page.conversation, history],
        "outputs": [history, listed],
        "queue": False,
        **PRIVATE,
    }
    for event in answered:  # once the replies are shown, not while they are awaited
        event.then(**save)
    for button in (sidebar.new, page.clear):
        button.click(
            handlers.new_conversation, page.conversation, page.chatbot, queue=False, **PRIVATE
        ).then(**save)
    listed.input(
        handlers.switch_conversation,
        [page.conversation, history, listed],
        [page.chatbot, listed, history],
        queue=False,
        **PRIVATE,
    )
    sidebar.rename.click(
        handlers.rename_conversation,
        [page.conversation, history, sidebar.title],
        [history, listed, sidebar.title],
        queue=False,
        **PRIVATE,
    )
    sidebar.delete.click(
        handlers.delete_conversation,
        [page.conversation, history],
        [page.chatbot, listed, history],
        queue=False,
        **PRIVATE,
    )
    sidebar.export.click(
        handlers.export_conversation, [page.conversation, history], sidebar.exported, **PRIVATE
    )
    app.load(
        handlers.restore_history,
        [page.conversation, history],
        [page.chatbot, listed],
        queue=False,
        **PRIVATE,
    )
    localized = page.localized + sidebar.localized

    def localize_page(request: gr.Request) -> list[Any]:
        return localize(localized, _lang(request))

    app.load(
        localize_page,
        None,
        [component for component, _ in localized],
        queue=False,
        **PRIVATE,
    )


def _lang(request: gr.Request | None) -> str:
    """The page language the request's browser prefers ("zh" unless it prefers English)."""
    if request is None:
        return ZH_CODE
    return preferred_language(request.headers.get("accept-language"))


def _service(source: Source | None) -> RetrieverService:
    if isinstance(source, RetrieverService):
        return source
    if source is None or isinstance(source, Config):
        return RetrieverService.for_config(chat_config(source))
    return RetrieverService(source)
