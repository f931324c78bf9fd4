"""Readers' 👍/👎 on replies, kept as Q&A lines ``newsqa eval`` reads (a test set grown by use)."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any, TypeGuard

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from rag import Answer, Config, InvalidArgumentError, RagError, Retriever, article_id, cache_dir

from .strings import Labels

FEEDBACK_SUFFIX = ".feedback.jsonl"
MAX_QUESTION = 2000  # characters, as the retriever's own limit
MAX_BODY = 256_000  # bytes of one feedback request
_REPLY_ID = re.compile(r"^[0-9a-f]{12}$")


def feedback_path(config: Config) -> Path:
    """Where a library's feedback is kept: beside its index, under the cache folder.

    ``<index folder>.feedback.jsonl`` next to the index folder (the index folder itself
    holds only what the index writes); never inside the article folder: should the index
    folder's parent be in it, the file goes to ``<cache>/feedback/`` instead.

    Args:
        config: the chat's settings (its index and article folders).

    Returns:
        The JSONL file's path (it may not exist yet).
    """
    index = config.index_path
    path = index.parent / f"{index.name}{FEEDBACK_SUFFIX}"
    if path.resolve().is_relative_to(config.corpus):
        path = cache_dir() / "feedback" / path.name
    return path


def new_reply_id() -> str:
    """A fresh id for one reply (its feedback line's id: a second vote replaces the first)."""
    return uuid.uuid4().hex[:12]


def reply_payload(reply_id: str, question: str, answer: Answer) -> dict[str, Any]:
    """What the page sends back with a vote: the question and where each passage's
    answering sentence and span lie (offsets into its article's text, not the text:
    the server reads it from the library).

    Args:
        reply_id: from :func:`new_reply_id`.
        question: what the user typed.
        answer: the retriever's answer to it (``answer.question``: what was searched).

    Returns:
        JSON-ready data, kept in the reply's HTML (so a vote works after a reload too):
        ``rid``, ``asked``, ``query``, ``found`` and per passage ``n`` (its rank), ``id``
        (its article), ``ref`` and ``s``/``a`` (sentence and span offsets, ``[]`` if none).
    """
    hits = []
    for hit in answer.hits:
        base = hit.citation.start
        span = [base + hit.answer_start, base + hit.answer_end] if hit.answer else []
        sentence = [base + hit.sentence_start, base + hit.sentence_end]
        ref = str(hit.citation)
        hits.append({"n": hit.rank, "id": article_id(hit.chunk_id), "ref": ref, "s": sentence})
        hits[-1]["a"] = span
    return {
        "rid": reply_id,
        "asked": question,
        "query": answer.question,
        "found": answer.found,
        "hits": hits,
    }


def actions_html(payload: dict[str, Any], words: Labels) -> str:
    """The reply's action row: 👍, 👎 (then "the right passage was…") and copy.

    The chat's sanitizer drops ``data-*`` attributes, so what the page's script needs
    (the reply's :func:`reply_payload` and the labels) rides in a hidden input's value
    as JSON. "Copy" reads the reply itself (the page's script).

    Args:
        payload: from :func:`reply_payload`.
        words: the reply's labels.

    Returns:
        One line of escaped HTML; the page's script handles the clicks.
    """
    data = {
        "reply": payload,
        "labels": {
            "right": words.right_passage,
            "none": words.none_right,
            "thanks": words.thanks,
            "copied": words.copied,
            "question": words.question + words.colon,
            "answer": words.answer + words.colon,
        },
    }
    value = _attribute(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return (
        '<div class="nq-actions">'
        f'<input type="hidden" class="nq-fb-data" value=\'{value}\'>'
        f'<a href="#" role="button" class="nq-act nq-up" title="{escape(words.good)}">👍</a>'
        f'<a href="#" role="button" class="nq-act nq-down" title="{escape(words.bad)}">👎</a>'
        f'<a href="#" role="button" class="nq-act nq-copy">{escape(words.copy)}</a>'
        '<span class="nq-fb-note"></span></div>'
    )


def feedback_entry(
    retriever: Retriever, payload: Any, rating: Any, rank: Any = None
) -> dict[str, Any] | None:
    """One vote as a Q&A line of the ``newsqa eval`` format (see ``eval/qa.py``).

    - 👍 on an answer: the top passage's sentence is the evidence, its span the answer;
      👍 on "not found": the question is unanswerable from the library.
    - 👎 with the right passage's rank: that passage's sentence is the evidence; with
      rank 0 ("none of them"): unanswerable. A bare 👎 (no rank) is not a test item yet.

    Every passage is checked against the library: its article must be indexed, under
    the same file, and hold the sentence.

    Args:
        retriever: the open retriever.
        payload: the reply's :func:`reply_payload`, as the page sent it back.
        rating: ``"up"`` or ``"down"``.
        rank: for ``"down"``: the right passage's rank, 0 for none, None when not chosen.

    Returns:
        The line (a dict), or None for a bare 👎.

    Raises:
        InvalidArgumentError: a malformed vote, or evidence the library does not hold.
    """
    if not isinstance(payload, dict) or rating not in ("up", "down"):
        raise InvalidArgumentError("feedback needs the reply and a rating (up or down)")
    reply_id, query = payload.get("rid"), payload.get("query")
    hits = payload.get("hits")
    if not isinstance(reply_id, str) or not _REPLY_ID.match(reply_id):
        raise InvalidArgumentError("feedback: the reply id is missing")
    if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUESTION:
        raise InvalidArgumentError("feedback: the question is missing")
    if not isinstance(hits, list):
        raise InvalidArgumentError("feedback: the passages are missing")
    if rating == "up":
        rank = 1 if payload.get("found") is True else 0
    elif rank is None:
        return None
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank <= len(hits):
        raise InvalidArgumentError(f"feedback: no passage [{rank}] in this reply")
    asked = payload.get("asked")
    entry: dict[str, Any] = {
        "id": f"fb-{reply_id}",
        "question": query.strip(),
        "answer": None,
        "doc": None,
        "evidence": None,
        "type": "unanswerable",
        "rating": rating,
        "rank": rank,
        "asked": asked if isinstance(asked, str) else query,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if rank:
        hit = next((h for h in hits if isinstance(h, dict) and h.get("n") == rank), None)
        if hit is None:
            raise InvalidArgumentError(f"feedback: no passage [{rank}] in this reply")
        file, sentence, answer = _checked_evidence(retriever, hit)
        entry.update(
            answer=answer or sentence,
            doc=file,
            evidence=sentence,
            type="feedback",
            ref=str(hit.get("ref", "")),
        )
    return entry


class FeedbackStore:
    """The feedback JSONL file: one line per reply (a new vote on it replaces the old)."""

    def __init__(self, path: Callable[[], Path]) -> None:
        """Args:
        path: returns the file's path (asked at each write: the library may be opening).
        """
        self.path = path
        self.lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> Path:
        """Add ``entry``, replacing a line with the same id; atomic (temp file + rename).

        Returns:
            The file written.
        """
        path = self.path()
        with self.lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = []
            if path.is_file():
                for line in path.read_text(encoding="utf-8").splitlines():
                    try:
                        same = json.loads(line).get("id") == entry["id"]
                    except (json.JSONDecodeError, AttributeError):
                        same = False
                    if line.strip() and not same:
                        lines.append(line)
            lines.append(json.dumps(entry, ensure_ascii=False))
            tmp = path.with_name(f".{path.name}.part")
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        return path


def feedback_routes(retriever: Callable[[], Retriever], store: FeedbackStore) -> list[BaseRoute]:
    """The web server's ``POST /feedback``: ``{"reply": payload, "rating": ..., "rank": ...}``.

    Args:
        retriever: returns the ready retriever.
        store: where the lines go.

    Returns:
        The routes to add to the app (JSON answers: ``stored``, or an ``error``).
    """

    async def vote(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "feedback too large"}, 413)
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError:
            return JSONResponse({"error": "feedback must be a JSON object"}, 400)
        try:
            entry = await run_in_threadpool(
                feedback_entry, retriever(), data.get("reply"), data.get("rating"), data.get("rank")
            )
            if entry is None:
                return JSONResponse({"stored": False})
            await run_in_threadpool(store.write, entry)
        except InvalidArgumentError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        except (RagError, OSError) as exc:
            return JSONResponse({"error": f"feedback not stored: {type(exc).__name__}"}, 503)
        return JSONResponse({"stored": True, "id": entry["id"], "type": entry["type"]})

    return [Route("/feedback", vote, methods=["POST"])]


def _checked_evidence(retriever: Retriever, hit: dict[str, Any]) -> tuple[str, str, str]:
    """The passage's file, answering sentence and answer span, read from the library.

    Raises:
        InvalidArgumentError: the article is not indexed, is not the cited file, or the
            offsets are not a sentence of one of its passages.
    """
    aid, ref, sentence, span = hit.get("id"), hit.get("ref"), hit.get("s"), hit.get("a")
    if not isinstance(aid, str) or not isinstance(ref, str) or not _is_span(sentence):
        raise InvalidArgumentError("feedback: the passage has no sentence to keep")
    article = retriever.article(aid)
    start, end = sentence
    inside = any(c.start <= start < end <= c.end for c in article.passages)
    if not ref.startswith(article.file) or not inside or not article.text[start:end].strip():
        raise InvalidArgumentError("feedback: the library does not hold this passage")
    answer = ""
    if _is_span(span) and start <= span[0] < span[1] <= end:
        answer = article.text[span[0] : span[1]].strip()
    return article.file, article.text[start:end].strip(), answer


def _is_span(value: Any) -> TypeGuard[list[int]]:
    """Whether ``value`` is ``[start, end]``: two whole numbers, ``0 <= start < end``."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and 0 <= value[0] < value[1]
    )


def _folded(text: str) -> str:
    """Width-, case- and whitespace-insensitive, as ``newsqa eval`` compares evidence."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def _attribute(text: str) -> str:
    """``text`` escaped for a single-quoted HTML attribute (``"`` is left as it is, the
    JSON stays short), line breaks kept (as ``&#10;``)."""
    for char, entity in (("&", "&amp;"), ("'", "&#39;"), ("<", "&lt;"), (">", "&gt;")):
        text = text.replace(char, entity)
    return text.replace("\n", "&#10;").replace("\r", "")
