"""What the web chat does, free of any widget: answer a turn, add uploaded files, report status."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag import Answer, RagError, Retriever, contextualize, is_english

from .library import RetrieverService
from .render import render_error, render_notice, render_reply

MAX_K = 10  # the most passages a reply may show


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
    """

    question: str
    query: str
    html: str
    answer: Answer | None = None
    error: str = ""
    mode: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The reply as JSON-ready data (the ``ask`` API's result)."""
        answer = self.answer
        hits = answer.hits if answer is not None else []
        return {
            "question": self.question,
            "query": self.query,
            "found": bool(answer and answer.found),
            "sentence": answer.sentence if answer is not None else "",
            "citation": str(hits[0].citation) if hits else "",
            "hits": [
                {
                    "rank": hit.rank,
                    "score": round(hit.score, 4),
                    "ref": str(hit.citation),
                    "file": hit.citation.file,
                    "title": hit.citation.title,
                    "byline": hit.citation.byline,
                    "sentence": hit.sentence,
                }
                for hit in hits
            ],
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

    def summary(self) -> str:
        """A short Markdown-free text summary, one line per file."""
        lines = [
            f"已加入 {name}：" + ("、".join(f"《{t}》" for t in titles) or "（无标题）")
            for name, titles in self.added
        ]
        lines += [f"未能加入 {name}：{reason}" for name, reason in self.failed]
        return "\n".join(lines)


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
        k: int = 5,
        mode: str | None = None,
    ) -> Reply:
        """Answer one chat turn.

        Args:
            question: what the user typed.
            history: the queries searched earlier in this conversation, oldest first;
                a follow-up is resolved against the last of them.
            k: how many passages to show (clamped to 1–:data:`MAX_K`).
            mode: ``"hybrid"``, ``"dense"`` or ``"lexical"`` (default: the library's).

        Returns:
            The :class:`Reply`; library errors become a visible message, never raised.
        """
        english = is_english(question)
        try:
            query = contextualize(question.strip(), list(history or []))
            answer = self.retriever.ask(query, _clamp(k), mode or None)
        except (RagError, ValueError) as exc:
            return Reply(question, "", render_error(_message(exc), english), error=_message(exc))
        default = self.retriever.config.mode
        shown_mode = mode if mode and mode != default else ""
        return Reply(
            question,
            answer.question,
            render_reply(answer, answer.question, question, english, shown_mode),
            answer,
            mode=mode or default,
        )

    def add_files(self, paths: list[str]) -> UploadResult:
        """Add uploaded ``.txt``/``.md`` files to the library and index them.

        Args:
            paths: local paths of the uploaded files (their names are kept).

        Returns:
            Which files were added (with their article titles) and which were refused
            and why; a refused file leaves the index unchanged.
        """
        result = UploadResult()
        for path in paths:
            name = Path(path).name
            try:
                report = self.retriever.add_document(name, Path(path).read_bytes())
            except (RagError, ValueError, OSError) as exc:
                result.failed.append((name, _message(exc).removeprefix(f"{name}: ")))
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
            "error": state.error,
            "seconds": round(state.seconds, 1),
            "building": state.building,
            "progress": state.progress,
        }
        if state.ready:
            retriever = self.retriever
            articles = retriever.articles()
            data.update(
                articles=len(articles),
                files=len({file for file, _ in articles}),
                mode=retriever.config.mode,
                corpus=str(retriever.config.corpus),
            )
        return data

    def status_text(self) -> str:
        """The status line shown above the chat (Markdown)."""
        data = self.status()
        if data["error"]:
            return f"**无法打开索引**：{_md_escape(data['error'])}"
        if not data["ready"]:
            what = (
                "首次启动，正在为文章建立索引（约需一两分钟）"
                if data["building"]
                else "正在载入模型与索引"
            )
            progress = f"，嵌入{data['progress']}" if data["progress"] else ""
            return f"**请稍候**：{what}{progress}…… 已用 {data['seconds']:.0f} 秒"
        return (
            f"**已就绪**：{data['files']} 个文件、{data['articles']} 篇文章 · "
            f"默认检索方式 `{data['mode']}` · 用时 {data['seconds']:.1f} 秒载入"
        )

    def pending_notice(self) -> str | None:
        """A chat notice while the index is not ready yet (None once it is)."""
        state = self.service.state()
        if state.ready or state.error:
            return None
        return render_notice("索引仍在建立中，回答会在完成后出现，请稍候……")


def _clamp(k: int | float | None) -> int:
    return max(1, min(MAX_K, int(k or 5)))


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if text == "the question is empty":
        return "问题不能为空 (the question is empty)"
    return text


def _md_escape(text: str) -> str:
    return "".join(f"\\{ch}" if ch in "\\`*_{}[]<>()#+-.!|" else ch for ch in text)
