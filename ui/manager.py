"""The library manager tab (文库): the articles listed, searched, removed, restored, re-indexed,
downloaded and uploaded with progress per file."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr

from rag import (
    LibraryArticle,
    LibraryChange,
    LibraryError,
    RagError,
    Retriever,
    UnknownArticleError,
    UnsafePathError,
)

from .chat import ChatBackend
from .render import render_articles
from .strings import EN_CODE, ZH_CODE, preferred_language, text

TICK_SECONDS = 2.0  # how often an open page checks the library for changes made elsewhere
DOWNLOADS = "newsqa-originals"  # sub-folder of the upload cache holding originals to download
FILE_TYPES = [".txt", ".md", ".html", ".htm", ".docx", ".pdf", ".jsonl", ".csv", ".tsv"]
# Gradio reads a handler's progress tracker from its default value (tqdm bars mirrored).
UPLOAD_PROGRESS = gr.Progress(track_tqdm=True)
PRIVATE: dict[str, Any] = {"api_visibility": "private"}  # page-only events, not in the API
ONE_WRITER: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "newsqa-library"}
COLUMNS = ("title", "date", "size", "chunks", "indexed", "state", "file")

CSS = """
#nq-lib-table { overflow-x: auto; max-width: 100%; }
#nq-lib-table table { width: 100%; border-collapse: collapse; font-size: .92em; }
#nq-lib-table th, #nq-lib-table td { text-align: left; padding: .3em .5em;
  border: none; border-bottom: 1px solid var(--border-color-primary); vertical-align: top; }
#nq-lib-table td.nq-num { text-align: right; white-space: nowrap; }
#nq-lib-table tr.nq-excluded td { color: var(--body-text-color-subdued); font-style: italic; }
#nq-lib-table .nq-file { font-family: var(--font-mono); font-size: .85em; word-break: break-all; }
#nq-lib-table .nq-more { color: var(--body-text-color-subdued); font-size: .9em; }
#nq-lib-table .nq-shown { color: var(--body-text-color-subdued); font-size: .9em; }
#nq-lib-message .nq-error { color: #9f1c1c; }
.dark #nq-lib-message .nq-error { color: #fca5a5; }
#nq-lib-progress ol { margin: .2em 0 .2em 1.4em; }
@media (max-width: 640px) {
  #nq-lib-table th:nth-child(2), #nq-lib-table td:nth-child(2),
  #nq-lib-table th:nth-child(5), #nq-lib-table td:nth-child(5),
  #nq-lib-table th:nth-child(7), #nq-lib-table td:nth-child(7) { display: none; }
}
"""


def words(key: str, lang: str = ZH_CODE, **values: object) -> str:
    """One of the tab's texts (``lib_<key>`` in :data:`ui.strings.UI`), filled in."""
    return text(f"lib_{key}", lang, **values)


def language(request: gr.Request | None) -> str:
    """The page language the request's browser prefers ("zh" unless it prefers English)."""
    if request is None:
        return ZH_CODE
    return preferred_language(request.headers.get("accept-language"))


def format_size(size: int) -> str:
    """A file size as a reader reads it: ``812 B``, ``12.3 KB``, ``4.0 MB``."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def format_time(seconds: float, lang: str = ZH_CODE) -> str:
    """An epoch time as the server's local ``YYYY-MM-DD HH:MM`` ("—" when unknown)."""
    if seconds <= 0:
        return words("unknown", lang)
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def matches(row: LibraryArticle, query: str) -> bool:
    """Whether any title of the file (or, for a file without titles, its name) holds ``query``.

    Case is ignored; every word of the query must appear in the same title, in any order.
    """
    terms = query.lower().split()
    if not terms:
        return True
    haystacks = [title.lower() for title in row.titles] or [row.file.lower()]
    return any(all(term in hay for term in terms) for hay in haystacks)


def row_label(row: LibraryArticle, lang: str = ZH_CODE) -> str:
    """How a file is named in the picker: its first title, its file name, excluded or not."""
    title = row.title or words("no_title", lang)
    mark = f" ({words('state_excluded', lang)})" if row.excluded else ""
    return f"{title} · {row.file}{mark}"


def render_table(
    rows: Sequence[LibraryArticle], total: int, query: str, lang: str = ZH_CODE
) -> str:
    """The library as an escaped HTML table, one row per file."""
    if not total:
        return f'<p class="nq-empty">{escape(words("empty", lang))}</p>'
    if not rows:
        return f'<p class="nq-empty">{escape(words("no_match", lang, query=query.strip()))}</p>'
    head = "".join(f"<th>{escape(words(f'col_{name}', lang))}</th>" for name in COLUMNS)
    body = []
    for row in rows:
        title = escape(row.title or words("no_title", lang))
        if len(row.titles) > 1:
            more = escape(words("more_titles", lang, count=len(row.titles)))
            every = escape("\n".join(row.titles), quote=True)
            title = f'<span title="{every}">{title}</span> <span class="nq-more">{more}</span>'
        state = "excluded" if row.excluded else "uploaded" if row.uploaded else "indexed"
        css = ' class="nq-excluded"' if row.excluded else ""
        body.append(
            f'<tr{css} data-file="{escape(row.file, quote=True)}">'
            f'<td class="nq-title">{title}</td>'
            f"<td>{escape(row.date or words('unknown', lang))}</td>"
            f'<td class="nq-num">{escape(format_size(row.size))}</td>'
            f'<td class="nq-num">{row.chunks}</td>'
            f"<td>{escape(format_time(row.indexed_at, lang))}</td>"
            f'<td class="nq-state">{escape(words(f"state_{state}", lang))}</td>'
            f'<td class="nq-file">{escape(row.file)}</td></tr>'
        )
    shown = escape(words("shown", lang, shown=len(rows), total=total))
    return (
        f'<p class="nq-shown">{shown}</p><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def render_progress(names: Sequence[str], states: Sequence[str]) -> str:
    """The files of one upload, each with where it stands (escaped HTML)."""
    items = "".join(
        f'<li><span class="nq-file">{escape(name)}</span>: '
        f'<span class="nq-upload-state">{escape(state)}</span></li>'
        for name, state in zip(names, states, strict=True)
    )
    return f"<ol>{items}</ol>"


def message_html(message: str, error: bool = False) -> str:
    """A message under the buttons (escaped), styled as an error when it is one."""
    css = "nq-error" if error else "nq-done"
    return f'<p class="{css}">{escape(message)}</p>'


def describe(change: LibraryChange, lang: str = ZH_CODE) -> str:
    """A library change as the message under the buttons says it."""
    report = change.report
    if change.action in ("deleted", "excluded"):
        return words(change.action, lang, file=change.file, removed=report.removed)
    if change.action == "restored":
        return words("restored", lang, file=change.file, embedded=report.embedded)
    if change.file:
        return words("reindexed", lang, file=change.file, embedded=report.embedded)
    return words("reindexed_all", lang, files=len(report.changed), embedded=report.embedded)


def signature(rows: Sequence[LibraryArticle]) -> str:
    """A short signature of the library's state: it changes with any file's change."""
    listing = "\n".join(f"{r.file}\t{r.indexed_at}\t{r.excluded}\t{r.chunks}" for r in rows)
    return hashlib.sha1(listing.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class ManagerView:
    """The tab's components that events read or write.

    ``localized`` pairs each component with its English words (``{property: value}``),
    for a page whose browser prefers English (see ``ui.page.localize``).
    """

    tab: gr.Tab
    status: gr.Markdown
    search: gr.Textbox
    table: gr.HTML
    pick: gr.Dropdown
    remove: gr.Button
    restore: gr.Button
    reindex: gr.Button
    reindex_all: gr.Button
    download: gr.DownloadButton
    message: gr.HTML
    upload: gr.UploadButton
    progress: gr.HTML
    seen: gr.State  # the library's signature as this page last showed it
    timer: gr.Timer
    localized: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)


class LibraryManager:
    """What the tab does, over the chat's :class:`~ui.chat.ChatBackend`.

    Every handler takes the page's ``request`` (Gradio passes it) for the page language.
    """

    def __init__(self, backend: ChatBackend, upload_folder: Path | None = None) -> None:
        """Args:
        backend: the chat's backend (its retriever is the library).
        upload_folder: the web server's upload cache: temporary copies of uploads are
            deleted from it once read, and originals to download are copied into it.
        """
        self.backend = backend
        self.upload_folder = upload_folder

    # ------------------------------------------------------------------ reading

    def rows(self) -> list[LibraryArticle]:
        """Every file of the library (none while the index is still opening)."""
        if not self.backend.service.state().ready:
            return []
        return self.backend.retriever.library()

    def status_text(self, rows: Sequence[LibraryArticle] | None = None, lang: str = ZH_CODE) -> str:
        """The tab's status line (Markdown): counts and the time they were taken."""
        state = self.backend.service.state()
        if state.error:
            return words("status_error", lang, error=self.backend.hide_paths(state.error))
        if not state.ready:
            return words("status_waiting", lang)
        rows = self.rows() if rows is None else rows
        kept = [row for row in rows if not row.excluded]
        return words(
            "status",
            lang,
            files=len(kept),
            chunks=sum(row.chunks for row in kept),
            uploaded=sum(row.uploaded for row in kept),
            excluded=len(rows) - len(kept),
            time=time.strftime("%H:%M:%S"),
        )

    def filtered(
        self, query: str | None, selected: str | None, lang: str = ZH_CODE
    ) -> tuple[str, list[tuple[str, str]], str | None, str, str]:
        """The library filtered by ``query``.

        Returns:
            The table HTML, the picker's choices and value (``selected`` while it is
            listed), the status line and the library's signature.
        """
        rows = self.rows()
        query = query if isinstance(query, str) else ""
        shown = [row for row in rows if matches(row, query)]
        choices = [(row_label(row, lang), row.file) for row in shown]
        keep = selected if any(row.file == selected for row in shown) else None
        table = render_table(shown, len(rows), query, lang)
        return table, choices, keep, self.status_text(rows, lang), signature(rows)

    def view(
        self, query: str | None, selected: str | None, request: gr.Request | None = None
    ) -> tuple[str, Any, str, str]:
        """The table, picker update, status line and signature for ``query``.

        The picker's value is cleared only when its file is no longer listed: a file
        picked while this was computed stays picked.
        """
        table, choices, keep, status, sign = self.filtered(query, selected, language(request))
        if keep or not selected:
            return table, gr.update(choices=choices), status, sign
        return table, gr.update(choices=choices, value=None), status, sign

    def tick(
        self,
        seen: str,
        query: str | None,
        selected: str | None,
        request: gr.Request | None = None,
    ) -> tuple[Any, ...]:
        """The status line; when the library changed (an upload in the chat tab, another
        page, the API), also the table, the picker and the chat tab's status line and
        article list."""
        lang = language(request)
        unchanged = (gr.skip(),) * 2  # the chat tab's status line and article list
        if not self.backend.service.state().ready:
            return self.status_text(lang=lang), gr.skip(), gr.skip(), seen, *unchanged
        rows = self.rows()
        if signature(rows) == seen:
            return self.status_text(rows, lang), gr.skip(), gr.skip(), seen, *unchanged
        table, picker, status, sign = self.view(query, selected, request)
        return status, table, picker, sign, *self.chat_views(lang)

    def download(self, selected: str | None) -> Any:
        """The download button for the selected file's original (a copy in the upload cache).

        The copy's folder is named by the file's name, so each file has one copy at most.
        """
        if not selected or self.upload_folder is None:
            return gr.DownloadButton(value=None, interactive=False)
        try:
            original = self.backend.retriever.original(selected)
            folder = self.upload_folder / DOWNLOADS / hashlib.sha1(selected.encode()).hexdigest()
            folder.mkdir(parents=True, exist_ok=True)
            copy = folder / original.name
            shutil.copyfile(original, copy)
        except (RagError, OSError):
            return gr.DownloadButton(value=None, interactive=False)
        return gr.DownloadButton(value=str(copy), interactive=True)

    # ------------------------------------------------------------------ changing

    def remove(
        self, selected: str | None, query: str | None, request: gr.Request | None = None
    ) -> tuple[Any, ...]:
        """Remove the selected file: an upload is deleted, any other file excluded."""
        return self._change(selected or None, query, selected, Retriever.remove_article, request)

    def restore(
        self, selected: str | None, query: str | None, request: gr.Request | None = None
    ) -> tuple[Any, ...]:
        """Bring the selected excluded file back into the library."""
        return self._change(selected or None, query, selected, Retriever.restore_article, request)

    def reindex(
        self, selected: str | None, query: str | None, request: gr.Request | None = None
    ) -> tuple[Any, ...]:
        """Read and embed the selected file again."""
        return self._change(selected or None, query, selected, Retriever.reindex, request)

    def reindex_all(
        self, selected: str | None, query: str | None, request: gr.Request | None = None
    ) -> tuple[Any, ...]:
        """Read and embed every file of the library again."""
        return self._change("", query, selected, lambda r, _: r.reindex(), request)

    def _change(
        self,
        target: str | None,
        query: str | None,
        selected: str | None,
        act: Callable[[Retriever, str], LibraryChange],
        request: gr.Request | None,
    ) -> tuple[Any, ...]:
        """Run one change on ``target`` ("" for all; None: nothing selected) and show it.

        Returns:
            The message, table, picker, status line, signature and the chat tab's
            status line and article list (all current after the change).
        """
        lang = language(request)
        if target is None:
            message = message_html(words("none_selected", lang), error=True)
        else:
            try:
                message = message_html(describe(act(self.backend.retriever, target), lang))
            except (RagError, ValueError, OSError) as exc:
                message = message_html(self.failure(exc, lang), error=True)
        table, picker, status, sign = self.view(query, selected, request)
        return (message, table, picker, status, sign, *self.chat_views(lang))

    def failure(self, exc: BaseException, lang: str = ZH_CODE) -> str:
        """Why a change failed, recognised by the error's type, its detail after it."""
        detail = self.backend.message(exc)
        for kind, key in (
            (UnsafePathError, "bad_name"),
            (UnknownArticleError, "unknown_file"),
            (LibraryError, "library_refused"),
        ):
            if isinstance(exc, kind):
                reason = words("detail", lang, reason=words(key, lang), detail=detail)
                return words("failed", lang, reason=reason)
        return words("failed", lang, reason=detail)

    def chat_views(self, lang: str = ZH_CODE) -> tuple[str, str]:
        """The chat tab's status line and article list, as they are now."""
        return self.backend.status_text(lang), render_articles(self.backend.articles())

    def upload(
        self,
        files: list[str] | None,
        progress: gr.Progress = UPLOAD_PROGRESS,
        request: gr.Request | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Add uploaded files one at a time, showing where each stands as it goes.

        Questions are answered meanwhile; a refused file changes nothing.

        Yields:
            The per-file list, then (at the end) the message, table, picker, status
            line, signature and the chat tab's status line and article list.
        """
        lang = language(request)
        paths = list(files or [])
        names = [Path(path).name for path in paths]
        states = [words("upload_waiting", lang)] * len(paths)
        added = failed = 0
        for n, path in enumerate(paths):
            states[n] = words("upload_running", lang)
            desc = words("upload_progress", lang, name=names[n], n=n + 1, total=len(paths))
            progress((n, len(paths)), desc=desc)
            yield (render_progress(names, states), *(gr.skip(),) * 7)
            result = self.backend.add_files([path], self.upload_folder, progress=True)
            if result.added:
                titles = [f"《{title}》" for _, found in result.added for title in found]
                joined = words("title_join", lang).join(titles) or words("no_title", lang)
                states[n] = words("upload_added", lang, titles=joined)
                names[n] = result.added[0][0]  # the name it was stored under
                added += 1
            else:
                reason = "; ".join(reason for _, reason in result.failed)
                states[n] = words("upload_refused", lang, reason=reason)
                failed += 1
        progress((len(paths), len(paths)))
        done = words("upload_done", lang, added=added, failed=failed)
        table, picker, status, sign = self.view("", None, request)
        yield (
            render_progress(names, states),
            message_html(done, error=not added),
            table,
            picker,
            status,
            sign,
            *self.chat_views(lang),
        )


def build_manager_tab(manager: LibraryManager) -> ManagerView:
    """Lay out the 文库 tab (Chinese; English via ``localized``); call inside ``gr.Tabs``.

    The library is not read here (it may still be opening): the page's load event fills
    the table, the picker and the status line (:func:`wire_manager`).

    Args:
        manager: the tab's handlers.

    Returns:
        The components to wire events to (:func:`wire_manager`).
    """
    choices: list[tuple[str, str]] = []
    table, status, sign = "", words("status_waiting"), ""
    with gr.Tab(words("tab"), id="library", elem_id="nq-library") as tab:
        intro = gr.Markdown(words("intro"))
        status_md = gr.Markdown(status, elem_id="nq-lib-status")
        search = gr.Textbox(
            label=words("search"),
            placeholder=words("search_placeholder"),
            max_lines=1,
            elem_id="nq-lib-search",
        )
        table_html = gr.HTML(table, elem_id="nq-lib-table")
        with gr.Row(equal_height=True):
            pick = gr.Dropdown(
                choices=choices,
                value=None,
                label=words("pick"),
                filterable=True,
                allow_custom_value=True,  # the library checks every name itself
                scale=3,
                elem_id="nq-lib-pick",
            )
            download = gr.DownloadButton(
                words("download"), interactive=False, scale=1, elem_id="nq-lib-download"
            )
        with gr.Row():
            remove = gr.Button(words("remove"), variant="stop", elem_id="nq-lib-remove")
            restore = gr.Button(words("restore"), elem_id="nq-lib-restore")
            reindex = gr.Button(words("reindex"), elem_id="nq-lib-reindex")
            reindex_all = gr.Button(words("reindex_all"), elem_id="nq-lib-reindex-all")
        message = gr.HTML("", elem_id="nq-lib-message")
        upload = gr.UploadButton(
            words("upload"), file_types=FILE_TYPES, file_count="multiple", elem_id="nq-lib-upload"
        )
        progress = gr.HTML("", elem_id="nq-lib-progress")
    english = {
        tab: {"label": words("tab", EN_CODE)},
        intro: {"value": words("intro", EN_CODE)},
        search: {
            "label": words("search", EN_CODE),
            "placeholder": words("search_placeholder", EN_CODE),
        },
        pick: {"label": words("pick", EN_CODE)},
        download: {"label": words("download", EN_CODE)},
        remove: {"value": words("remove", EN_CODE)},
        restore: {"value": words("restore", EN_CODE)},
        reindex: {"value": words("reindex", EN_CODE)},
        reindex_all: {"value": words("reindex_all", EN_CODE)},
        upload: {"label": words("upload", EN_CODE)},
    }
    return ManagerView(
        tab=tab,
        status=status_md,
        search=search,
        table=table_html,
        pick=pick,
        remove=remove,
        restore=restore,
        reindex=reindex,
        reindex_all=reindex_all,
        download=download,
        message=message,
        upload=upload,
        progress=progress,
        seen=gr.State(sign),
        timer=gr.Timer(TICK_SECONDS),
        localized=list(english.items()),
    )


def wire_manager(
    app: gr.Blocks,
    view: ManagerView,
    manager: LibraryManager,
    chat_status: Any,
    chat_articles: Any,
    chat_tab: Any = None,
) -> None:
    """Connect the tab's events; call inside the ``gr.Blocks`` context.

    Every change (remove, restore, re-index, upload) refreshes the table, the picker, the
    tab's status line and the chat tab's status line and article list; a timer brings
    the tab up to date with changes made elsewhere (uploads in the chat tab, other pages,
    the API); opening the page or the tab shows it in the browser's language.

    Args:
        app: the page.
        view: from :func:`build_manager_tab`.
        manager: the handlers.
        chat_status: the chat tab's status line.
        chat_articles: the chat tab's article list.
        chat_tab: the chat's tab, named in the page's language with this one.
    """
    shown = [view.table, view.pick, view.status, view.seen]
    changed = [view.message, *shown, chat_status, chat_articles]
    filters = [view.search, view.pick]
    view.search.change(manager.view, filters, shown, queue=False, **PRIVATE)
    view.tab.select(manager.view, filters, shown, queue=False, **PRIVATE)
    app.load(manager.view, filters, shown, queue=False, **PRIVATE)
    for button, handler in (
        (view.remove, manager.remove),
        (view.restore, manager.restore),
        (view.reindex, manager.reindex),
        (view.reindex_all, manager.reindex_all),
    ):
        button.click(handler, [view.pick, view.search], changed, **ONE_WRITER, **PRIVATE)
    view.pick.change(manager.download, view.pick, view.download, **PRIVATE)
    view.upload.upload(
        manager.upload, view.upload, [view.progress, *changed], **ONE_WRITER, **PRIVATE
    )
    view.timer.tick(
        manager.tick,
        [view.seen, *filters],
        [view.status, view.table, view.pick, view.seen, chat_status, chat_articles],
        queue=False,
        **PRIVATE,
    )
    localized = view.localized
    if chat_tab is not None:
        localized = [*localized, (chat_tab, {"label": words("chat_tab", EN_CODE)})]

    def in_language(request: gr.Request) -> list[Any]:
        if language(request) != EN_CODE:
            return [gr.skip() for _ in localized]
        return [gr.update(**props) for _, props in localized]

    app.load(in_language, None, [component for component, _ in localized], **PRIVATE)
