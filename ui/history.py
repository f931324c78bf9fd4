"""Conversations kept in the browser: list, switch, rename, delete, export as Markdown."""

from __future__ import annotations

import time
import uuid
from typing import Any

from .strings import text

MAX_CONVERSATIONS = 30  # the oldest beyond this are dropped (the browser's storage is small)
MAX_TURNS = 100  # questions kept per conversation
MAX_TITLE = 40  # characters of a conversation's name
History = dict[str, Any]


def new_id() -> str:
    """A fresh conversation id."""
    return uuid.uuid4().hex[:12]


def empty_history() -> History:
    """No conversation yet: ``{"current": "", "items": []}``."""
    return {"current": "", "items": []}


def cleaned(history: Any) -> History:
    """The stored history as this module writes it, whatever the browser sent back.

    Anything malformed (another app's value under the key, an old layout, a hand-edited
    store) is left out rather than failing the page.

    Args:
        history: the ``gr.BrowserState`` value.

    Returns:
        ``{"current": id, "items": [conversation, ...]}``, newest first; each
        conversation ``{"id", "title", "updated", "turns": [{"question", "html",
        "query", "markdown"}]}``.
    """
    if not isinstance(history, dict):
        return empty_history()
    items = []
    for item in history.get("items") or []:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        turns = [
            {key: str(turn.get(key) or "") for key in ("question", "html", "query", "markdown")}
            for turn in item.get("turns") or []
            if isinstance(turn, dict) and isinstance(turn.get("question"), str)
        ]
        title = item.get("title") if isinstance(item.get("title"), str) else ""
        updated = item.get("updated") if isinstance(item.get("updated"), int | float) else 0
        items.append({"id": item["id"], "title": title, "updated": updated, "turns": turns})
    items.sort(key=lambda item: item["updated"], reverse=True)
    current = history.get("current") if isinstance(history.get("current"), str) else ""
    return {"current": current, "items": items[:MAX_CONVERSATIONS]}


def title_of(question: str) -> str:
    """A conversation's default name: its first question, shortened."""
    words = " ".join(question.split())
    return words if len(words) <= MAX_TITLE else words[: MAX_TITLE - 1] + "…"


def saved(history: Any, conversation_id: str, turns: list[dict[str, str]]) -> History:
    """``history`` with the conversation ``conversation_id`` holding ``turns`` (answered
    questions, oldest first), now the current one and the newest.

    A conversation without turns is not kept (a new, still empty one is only current).
    """
    data = cleaned(history)
    items = data["items"]
    old = next((item for item in items if item["id"] == conversation_id), None)
    data["current"] = conversation_id
    if not turns:
        return data
    title = old["title"] if old and old["title"] else title_of(turns[0]["question"])
    item = {
        "id": conversation_id,
        "title": title,
        "updated": time.time(),
        "turns": turns[-MAX_TURNS:],
    }
    data["items"] = [item, *(i for i in items if i["id"] != conversation_id)][:MAX_CONVERSATIONS]
    return data


def find(history: History, conversation_id: str) -> dict[str, Any] | None:
    """The stored conversation with this id (None when there is none)."""
    return next((i for i in history["items"] if i["id"] == conversation_id), None)


def renamed(history: Any, conversation_id: str, title: str) -> History:
    """``history`` with the conversation given a new name (blank: unchanged)."""
    data = cleaned(history)
    item = find(data, conversation_id)
    name = " ".join(str(title or "").split())[:MAX_TITLE]
    if item is not None and name:
        item["title"] = name
    return data


def deleted(history: Any, conversation_id: str) -> History:
    """``history`` without the conversation; the newest other one becomes current."""
    data = cleaned(history)
    data["items"] = [i for i in data["items"] if i["id"] != conversation_id]
    data["current"] = data["items"][0]["id"] if data["items"] else ""
    return data


def choices(history: History, lang: str = "zh") -> list[tuple[str, str]]:
    """The sidebar's list: ``(name · questions, id)`` per stored conversation, newest first."""
    return [
        (f"{item['title'] or text('untitled', lang)} · {len(item['turns'])}", item["id"])
        for item in history["items"]
    ]


def to_markdown(item: dict[str, Any], base_url: str = "", lang: str = "zh") -> str:
    """A stored conversation as a Markdown document with the full citations.

    Args:
        item: a conversation of :func:`cleaned`.
        base_url: the chat's address (``http://host:port/``), so the links to the
            articles work outside the page ("" keeps them relative).
        lang: the heading's language.

    Returns:
        A title line, then each question's reply (:func:`ui.render.render_markdown`).
    """
    title = item["title"] or text("untitled", lang)
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(item["updated"] or time.time()))
    parts = [f"# {title}", "", f"newsqa · {stamp}", ""]
    for turn in item["turns"]:
        body = turn["markdown"] or f"**?** {turn['question']}\n"
        if base_url:
            body = body.replace("](article/", f"]({base_url.rstrip('/')}/article/")
        parts += ["---", "", body.rstrip(), ""]
    return "\n".join(parts).rstrip() + "\n"
