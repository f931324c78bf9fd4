"""The Gradio web chat: ask the articles, follow up, upload more, every answer cited."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from html import escape
from typing import Any

import gradio as gr

from rag import Config, Retriever

from .chat import ChatBackend
from .library import RetrieverService, chat_config
from .page import CSS, SHOW_LATEST_QUESTION_JS, Page, build_layout
from .render import render_articles

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
CONCURRENCY = 4  # questions answered at once (2-4 cores); the rest wait in the queue
QUEUE_SIZE = 64
MAX_UPLOAD = "20mb"  # the library refuses oversized articles itself, with a clear message
PRIVATE: dict[str, Any] = {"api_visibility": "private"}  # page-only events, not in the API

Message = dict[str, Any]
Source = Config | Callable[[], Retriever] | RetrieverService


class Handlers:
    """The page's event handlers over one shared :class:`~ui.chat.ChatBackend`."""

    def __init__(self, backend: ChatBackend) -> None:
        """Args:
        backend: answers questions and takes uploads.
        """
        self.backend = backend

    def take_question(self, text: str, messages: list[Message]) -> tuple[str, list[Message], str]:
        """Move the typed question into the chat and the pending slot (refuse blank ones)."""
        if not text.strip():
            gr.Warning("请输入问题。")
            return text, messages, ""
        shown = {"role": "user", "content": escape(text.strip())}
        return "", [*messages, shown], text.strip()

    def answer(
        self,
        text: str,
        messages: list[Message],
        history: list[str],
        k: float,
        mode: str | None = None,
    ) -> Iterator[tuple[list[Message], list[str]]]:
        """Answer the pending question; a notice comes first while the index is building."""
        if not text:
            yield messages, history
            return
        notice = self.backend.pending_notice()
        if notice:
            yield [*messages, {"role": "assistant", "content": notice}], history
        reply = self.backend.reply(text, history, int(k), mode)
        new_history = [*history, reply.query] if reply.query else history
        yield [*messages, {"role": "assistant", "content": reply.html}], new_history

    def add_uploads(self, files: list[str] | None) -> tuple[str, str]:
        """Index uploaded files; say which articles were added and which files refused."""
        result = self.backend.add_files(list(files or []))
        for name, reason in result.failed:
            gr.Warning(f"未能加入 {name}：{reason}")
        if result.added:
            gr.Info(f"已加入 {len(result.added)} 个文件，现在就可以提问。")
        lines = result.summary().splitlines()
        return "\n".join(f"- {escape(line)}" for line in lines), self.article_list()

    def refresh(self) -> tuple[str, str, gr.Timer]:
        """The status line and article list; polling stops once the index is open."""
        state = self.backend.service.state()
        polling = not (state.ready or state.error)
        return self.backend.status_text(), self.article_list(), gr.Timer(active=polling)

    def article_list(self) -> str:
        """The indexed articles as escaped HTML."""
        return render_articles(self.backend.articles())

    def ask_api(
        self, question: str, history: list[str] | None = None, k: int = 5, mode: str = ""
    ) -> dict[str, Any]:
        """API: answer ``question`` (a follow-up of ``history``, the earlier queries).

        ``mode`` is ``"hybrid"``, ``"dense"`` or ``"lexical"``; empty for the library's.

        Returns the searched query, whether the articles answer, the best sentence, the
        top citation, the hits and the reply HTML; errors come back in ``error``.
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
        The Gradio app, queued; serve it with :func:`serve` (which adds the styles).
    """
    handlers = Handlers(ChatBackend(_service(source).start()))
    mode = source.mode if isinstance(source, Config) else None
    with gr.Blocks(title="newsqa · 新闻问答") as app:
        page = build_layout(
            handlers.backend.status_text(), handlers.article_list(), default_mode=mode
        )
        _wire(app, page, handlers)
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
        css=CSS,
        theme=gr.themes.Soft(primary_hue="amber"),
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


def _wire(app: gr.Blocks, page: Page, handlers: Handlers) -> None:
    """Connect the page's events to the handlers and publish the API."""
    turn = [page.question, page.chatbot]
    answer_args = {
        "fn": handlers.answer,
        "inputs": [page.pending, page.chatbot, page.queries, page.k, page.mode],
        "outputs": [page.chatbot, page.queries],
        **PRIVATE,
    }
    take_args = {
        "fn": handlers.take_question,
        "inputs": turn,
        "outputs": [*turn, page.pending],
        "queue": False,
        **PRIVATE,
    }
    show_question = {"fn": None, "js": SHOW_LATEST_QUESTION_JS, "queue": False, **PRIVATE}
    clicked = page.examples.click(
        lambda sample: sample[0], page.examples, page.question, queue=False, **PRIVATE
    )
    for taken in (
        page.question.submit(**take_args),
        page.ask.click(**take_args),
        clicked.then(**take_args),
    ):
        taken.then(**show_question)
        taken.then(**answer_args).then(**show_question)
    page.clear.click(lambda: ([], []), None, [page.chatbot, page.queries], queue=False, **PRIVATE)
    page.chatbot.clear(lambda: [], None, page.queries, queue=False, **PRIVATE)
    page.upload.upload(
        handlers.add_uploads,
        page.upload,
        [page.upload_status, page.articles],
        concurrency_limit=1,  # one writer at a time; questions go on meanwhile
        api_name="upload",
    )
    refresh_outputs = [page.status, page.articles, page.timer]
    page.timer.tick(handlers.refresh, None, refresh_outputs, queue=False, **PRIVATE)
    app.load(handlers.refresh, None, refresh_outputs, queue=False, **PRIVATE)
    gr.api(handlers.ask_api, api_name="ask")
    gr.api(handlers.status_api, api_name="status", queue=False)


def _service(source: Source | None) -> RetrieverService:
    if isinstance(source, RetrieverService):
        return source
    if source is None or isinstance(source, Config):
        return RetrieverService.for_config(chat_config(source))
    return RetrieverService(source)
