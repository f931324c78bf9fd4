"""What the web chat does, free of any widget: answer a turn, add uploaded files, report status."""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from rag import (
    Answer,
    InvalidArgumentError,
    QuestionError,
    RagError,
    Retriever,
    cache_dir,
    check_k,
    check_mode,
    contextualize,
    is_english,
)

from .feedback import actions_html, new_reply_id, reply_payload
from .history import new_id
from .library import RetrieverService
from .render import render_error, render_markdown, render_notice, render_reply
from .strings import ZH_CODE, labels_for, mode_name
from .strings import text as ui_text

SHOWN_SKIPPED = 3  # skipped entries named in the status line (all are in /status)
EMPTY_QUESTION = "问题不能为空 (the question is empty)"
EMPTY_HINT = ui_text("empty_hint")  # under the box after an empty Enter
QUESTION_HINT = "问题无法检索"  # before a QuestionError whose text has no Chinese
_CJK = re.compile(r"[\u3400-\u9fff]")
_PATH_END = r"(?=$|[/\\\s'\",:;)\]}])"  # a folder's name ends here, not inside a longer one


@dataclass(frozen=True)
class Reply:
    """The outcome of one question.

    Attributes:
        question: what the user typed.
        query: what was searched (the contextualized question; "" after an error).
        html: the chat reply, escaped and ready to show.
        answer: the retriever's answer (None after an error).
        error: the error message ("" when the question was answered).
        mode: the retrieval mode that answered ("" after an error).
        markdown: the reply as Markdown with its full citations and links to the
            articles (what an exported conversation holds; "" after an error).
    """

    question: str
    query: str
    html: str
    answer: Answer | None = None
    error: str = ""
    mode: str = ""
    markdown: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The reply as JSON-ready data (the ``ask`` API's result).

        The answer's own fields (:meth:`rag.Answer.to_dict`: ``found``, ``reason``,
        ``sentence``, ``citation``, ``hits``), the same as ``newsqa ask --json`` prints,
        plus ``query``, ``mode``, ``error`` and the reply's ``html``.
        """
        answer = self.answer.to_dict() if self.answer is not None else Answer("").to_dict()
        return {
            **answer,
            "question": self.question,
            "query": self.query,
            "mode": self.mode,
            "error": self.error,
            "html": self.html,
        }


@dataclass
class UploadResult:
    """What adding uploaded files did.

    Attributes:
        added: ``(stored file name, article titles)`` for each file indexed.
        failed: ``(uploaded file name, reason)`` for each file refused.
    """

    added: list[tuple[str, list[str]]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self, lang: str = ZH_CODE) -> str:
        """A short Markdown-free text summary, one line per file, in ``lang``."""
        lines = [
            ui_text("added_file", lang, name=name)
            + ("、".join(f"《{t}》" for t in titles) or ui_text("no_title", lang))
            for name, titles in self.added
        ]
        lines += [
            ui_text("refused_file", lang, name=name, reason=reason) for name, reason in self.failed
        ]
        return "\n".join(lines)


@dataclass(eq=False)
class Turn:
    """One question of a conversation, with the settings it was sent with.

    Attributes:
        question: what the user typed (stripped).
        k: the number of passages asked for when it was sent.
        mode: the retrieval mode picked when it was sent (None or "": the library's).
        html: the reply shown under it ("" while it waits; a notice while the index
            is still being built).
        answered: whether ``html`` is the reply.
        query: what was searched for it (once answered).
        markdown: the reply as Markdown (once answered; see :attr:`Reply.markdown`).
    """

    question: str
    k: int | float = 5
    mode: str | None = None
    html: str = ""
    answered: bool = False
    query: str = ""
    markdown: str = ""


@dataclass(eq=False)
class Conversation:
    """The chat of one page: every question sent, in order, and the replies so far.

    Questions are appended the moment they are sent and answered one at a time, oldest
    first, so none is lost when several are sent before a reply arrives. It lives in a
    page session's ``gr.State`` (one object per session, shared by its events); callers
    guard changes with one lock.

    Attributes:
        turns: the questions, oldest first.
        queries: the searched queries of the answered turns (for follow-ups).
        answerer: the token of the event answering the queue (None when idle).
        id: names it in the browser's stored history (a new one after :meth:`clear`).
    """

    turns: list[Turn] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    answerer: object | None = None
    id: str = field(default_factory=new_id)

    def ask(self, question: str, k: int | float = 5, mode: str | None = None) -> Turn:
        """Queue a question (shown at once, answered after the earlier ones)."""
        turn = Turn(question, k, mode)
        self.turns.append(turn)
        return turn

    def next_waiting(self) -> Turn | None:
        """The oldest question not answered yet."""
        return next((turn for turn in self.turns if not turn.answered), None)

    def holds(self, turn: Turn) -> bool:
        """Whether ``turn`` is still part of this conversation (not cleared meanwhile)."""
        return any(t is turn for t in self.turns)

    def clear(self) -> None:
        """Start over (a reply still being computed is then dropped)."""
        self.turns = []
        self.queries = []
        self.id = new_id()

    def saved_turns(self) -> list[dict[str, str]]:
        """The answered questions as the browser keeps them (see :mod:`ui.history`)."""
        return [
            {"question": t.question, "html": t.html, "query": t.query, "markdown": t.markdown}
            for t in self.turns
            if t.answered
        ]

    def restore(self, conversation_id: str, turns: list[dict[str, str]]) -> None:
        """Become the stored conversation ``conversation_id`` (its answered turns).

        Follow-ups resolve against its searched queries as before the reload.
        """
        self.turns = [
            Turn(
                t["question"],
                html=t["html"],
                answered=True,
                query=t["query"],
                markdown=t["markdown"],
            )
            for t in turns
        ]
        self.queries = [t["query"] for t in turns if t["query"]]
        self.id = conversation_id

    def messages(self) -> list[dict[str, str]]:
        """The chat's messages: each question (escaped), then its reply once there is one."""
        messages = []
        for turn in self.turns:
            messages.append({"role": "user", "content": escape(turn.question)})
            if turn.html:
                messages.append({"role": "assistant", "content": turn.html})
        return messages


class ChatBackend:
    """Answers chat turns and takes uploads over one (shared, thread-safe) retriever."""

    def __init__(self, service: RetrieverService) -> None:
        """Args:
        service: hands out the retriever once it is open.
        """
        self.service = service

    @property
    def retriever(self) -> Retriever:
        """The retriever, waiting while it is still being opened."""
        return self.service.get()

    def reply(
        self,
        question: str,
        history: list[str] | None = None,
        k: int | float = 5,
        mode: str | None = None,
    ) -> Reply:
        """Answer one chat turn.

        Every argument may come straight from the API, so each is checked here: a value
        of the wrong type or out of range gives an error reply, never an exception.

        Args:
            question: what the user typed.
            history: the queries searched earlier in this conversation, oldest first;
                a follow-up is resolved against the last of them.
            k: how many passages to show, from ``rag.config.K_MIN`` to ``K_MAX`` (a
                whole float, as a slider sends, is accepted; nothing is clamped).
            mode: ``"hybrid"``, ``"dense"`` or ``"lexical"`` (None or "": the library's).

        Returns:
            The :class:`Reply`; library errors become a visible message, never raised.
        """
        text = question if isinstance(question, str) else ""
        english = bool(text) and is_english(text)
        try:
            query = contextualize(_question(question), _history(history))
            answer = self.retriever.ask(query, check_k(k), _mode(mode))
        except (RagError, ValueError) as exc:
            message = self.message(exc)
            return Reply(text, "", render_error(message, english), error=message)
        default = self.retriever.config.mode
        shown_mode = mode if mode and mode != default else ""
        html = render_reply(answer, answer.question, text, english, shown_mode)
        actions = actions_html(reply_payload(new_reply_id(), text, answer), labels_for(english))
        return Reply(
            text,
            answer.question,
            html.removesuffix("</div>") + actions + "</div>",
            answer,
            mode=mode or default,
            markdown=render_markdown(answer, text, english),
        )

    def add_files(
        self, paths: list[str], temp_folder: Path | None = None, progress: bool = False
    ) -> UploadResult:
        """Add uploaded article files (any type ``load_bytes`` reads) and index them.

        Args:
            paths: local paths of the uploaded files (their names are kept).
            temp_folder: the web server's upload cache (Gradio's temp folder): a file
                lying inside it is a temporary copy and is deleted once read, whether
                it was added or refused. Files anywhere else are never deleted.
            progress: show the embedding passes' progress bars.

        Returns:
            Which files were added (with their article titles) and which were refused
            and why; a refused file leaves the index unchanged.
        """
        result = UploadResult()
        for path in paths:
            name = Path(path).name
            try:
                data = Path(path).read_bytes()
                if temp_folder is not None:
                    discard_temp_copy(Path(path), temp_folder)
                report = self.retriever.add_document(name, data, progress=progress)
            except (RagError, ValueError, OSError) as exc:
                result.failed.append((name, self.message(exc).removeprefix(f"{name}: ")))
                continue
            for stored in report.added or report.changed:
                result.added.append((stored, self.titles_of(stored)))
        return result

    def titles_of(self, file: str) -> list[str]:
        """The titles of the indexed articles of one file."""
        return [title for name, title in self.retriever.articles() if name == file]

    def articles(self) -> list[tuple[str, str]]:
        """The indexed ``(file, title)`` pairs; empty while the index is still opening."""
        if not self.service.state().ready:
            return []
        return self.retriever.articles()

    def status(self) -> dict[str, Any]:
        """The loading state and library size, as JSON-ready data."""
        state = self.service.state()
        data: dict[str, Any] = {
            "ready": state.ready,
            "error": self.hide_paths(state.error),
            "seconds": round(state.seconds, 1),
            "building": state.building,
            "files_done": state.files_done,
            "files_total": state.files_total,
            "eta": None if state.eta is None else round(state.eta),
        }
        if state.ready:
            retriever = self.retriever
            articles = retriever.articles()
            data.update(
                articles=len(articles),
                files=len({file for file, _ in articles}),
                mode=retriever.config.mode,
                corpus=retriever.config.corpus.name,  # the folder's name, never its path
                skipped=[
                    {"file": name, "reason": self.hide_paths(reason)}
                    for name, reason in retriever.last_update.skipped.items()
                ],
            )
        return data

    @property
    def library(self) -> Path | None:
        """The library folder (None when unknown: a retriever from a bare factory)."""
        if self.service.library is not None:
            return self.service.library
        if self.service.state().ready:
            return self.retriever.config.corpus
        return None

    def message(self, exc: BaseException) -> str:
        """An error's text for the page and API, recognised by type, without server paths.

        A :class:`rag.QuestionError` is shown with a Chinese hint unless its text
        already is Chinese.
        """
        text = self.hide_paths(str(exc).strip() or type(exc).__name__)
        if isinstance(exc, QuestionError) and not _CJK.search(text):
            return f"{QUESTION_HINT} ({text})"
        return text

    def hide_paths(self, text: str) -> str:
        """``text`` with the server's folders named, not spelled out.

        The library folder becomes its name, the cache folder ``<cache>`` and the
        home folder ``~`` (longest first, whole path components only).
        """
        if not text:
            return text
        names: dict[str, str] = {}
        library = self.library
        if library is not None:
            for form in (library, library.expanduser().resolve()):
                names[str(form)] = library.name
        for form in (cache_dir(), cache_dir().resolve()):
            names.setdefault(str(form), "<cache>")
        home = Path.home()
        names.setdefault(str(home), "~")
        for prefix in sorted(names, key=len, reverse=True):
            if len(prefix) > 1:  # never "/"
                name = names[prefix].replace("\\", "\\\\")  # literal in re.sub
                text = re.sub(re.escape(prefix) + _PATH_END, name, text)
        return text

    def status_text(self, lang: str = ZH_CODE) -> str:
        """The status line shown above the chat (Markdown), in ``lang`` ("zh" or "en")."""
        data = self.status()
        if data["error"]:
            return ui_text("status_error", lang, error=_md_escape(data["error"]))
        if not data["ready"]:
            what = ui_text("status_building" if data["building"] else "status_loading", lang)
            progress = ""
            if data["files_total"]:
                progress = ui_text(
                    "status_progress", lang, done=data["files_done"], total=data["files_total"]
                )
                if data["eta"] is not None:
                    progress += ui_text("status_eta", lang, eta=data["eta"])
            return ui_text(
                "status_wait", lang, what=what, progress=progress, seconds=data["seconds"]
            )
        ready = ui_text(
            "status_ready",
            lang,
            files=data["files"],
            articles=data["articles"],
            mode=mode_name(data["mode"], lang),
            seconds=data["seconds"],
        )
        if not data["articles"]:
            ready += ui_text("status_empty", lang)
        skipped = data["skipped"]
        if skipped:
            shown = "；".join(f"{s['file']}（{s['reason']}）" for s in skipped[:SHOWN_SKIPPED])
            more = (
                ui_text("status_more", lang, count=len(skipped))
                if len(skipped) > SHOWN_SKIPPED
                else ""
            )
            ready += ui_text("status_skipped", lang, shown=_md_escape(shown), more=more)
        return ready

    def pending_notice(self, lang: str = ZH_CODE) -> str | None:
        """A chat notice while the index is not ready yet (None once it is)."""
        state = self.service.state()
        if state.ready or state.error:
            return None
        return render_notice(ui_text("pending", lang))


def _question(question: object) -> str:
    """The typed question, checked: text with something in it."""
    if not isinstance(question, str):
        raise QuestionError(
            f"问题必须是文字 (the question must be text, not {_type_name(question)})"
        )
    if not question.strip():
        raise QuestionError(EMPTY_QUESTION)
    return question.strip()


def _history(history: object) -> list[str]:
    """The earlier queries, checked: a list of texts (None for a first question)."""
    if history is None:
        return []
    if not isinstance(history, list | tuple) or not all(isinstance(q, str) for q in history):
        raise InvalidArgumentError(
            f"history must be a list of the earlier queries (text), not {_type_name(history)}"
        )
    return list(history)


def _mode(mode: object) -> str | None:
    """The retrieval mode, checked (None or "": the library's own)."""
    return None if mode is None or mode == "" else check_mode(mode)


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def discard_temp_copy(path: Path, temp_folder: Path) -> bool:
    """Delete the file ``path`` if it lies strictly inside ``temp_folder``.

    Its folder is resolved, but a symbolic link is neither followed nor deleted. The
    folder holding the file is removed too when that is then empty and itself inside
    ``temp_folder`` (Gradio keeps each upload in a folder named by its hash).

    Returns:
        Whether a file was deleted. Anything outside ``temp_folder`` is left alone.
    """
    try:
        root = temp_folder.expanduser().resolve()
        given = Path(os.path.abspath(path.expanduser()))
        target = given.parent.resolve() / given.name  # the entry itself, not a link's target
    except (OSError, RuntimeError):
        return False
    if not target.is_relative_to(root) or target == root:
        return False
    if target.is_symlink() or not target.is_file():
        return False
    try:
        target.unlink()
    except OSError:
        return False
    parent = target.parent
    if parent != root and parent.is_relative_to(root):
        with contextlib.suppress(OSError):  # only an empty folder can be removed
            parent.rmdir()
    return True


def _md_escape(text: str) -> str:
    return "".join(f"\\{ch}" if ch in "\\`*_{}[]<>()#+-.!|" else ch for ch in text)
