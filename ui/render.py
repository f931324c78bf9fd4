"""HTML for the chat: one reply per question, every piece of article text escaped."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from rag import Answer, Citation, Hit, article_id

from .strings import Labels, labels_for

MAX_WEAK = 3  # closest candidates shown when the articles do not answer
COLLAPSE_AT = 220  # passages longer than this (characters) are folded
EXCERPT_CONTEXT = 60  # characters of context around the answer in a folded passage


def render_reply(
    answer: Answer, query: str, question: str, english: bool = False, mode: str = ""
) -> str:
    """The chat reply to one question, as one self-contained HTML block.

    Args:
        answer: what the retriever returned for ``query``.
        query: the text actually searched (the contextualized question).
        question: what the user typed; ``query`` is shown when it differs.
        english: reply in English rather than Chinese.
        mode: the retrieval mode, named in the reply when the user chose one other
            than the library's ("" for the library's).

    Returns:
        HTML with all article text escaped: the quoted answering sentence with its
        citation marker, then the numbered passages (or, when nothing answers, a plain
        statement and at most :data:`MAX_WEAK` weak candidates). Each passage is
        labelled from the answer decision (see :func:`verdict`); only those that pass it
        have their sentence highlighted, with the answering span in bold.
    """
    words = labels_for(english)
    parts = []
    if query.strip() != question.strip():
        parts.append(f'<div class="nq-query">{words.searched}{words.colon}{escape(query)}</div>')
    if mode:
        name = escape(words.modes.get(mode, mode))
        parts.append(f'<div class="nq-query nq-mode">{words.mode}{words.colon}{name}</div>')
    if answer.found and answer.best is not None:
        parts.append(_render_best(answer.best))
        parts.append(_render_hits(answer, answer.hits, words, weak=False))
    else:
        parts.append(f'<div class="nq-none">{words.not_found}</div>')
        if answer.hits:
            parts.append(f'<div class="nq-weak-note">{words.weak_note}</div>')
            parts.append(_render_hits(answer, answer.hits[:MAX_WEAK], words, weak=True))
    return _block("nq-reply", "".join(parts))


def render_error(message: str, english: bool = False) -> str:
    """A library error as a visible, escaped chat reply.

    Args:
        message: the error's text.
        english: label it in English rather than Chinese.

    Returns:
        An HTML block.
    """
    words = labels_for(english)
    return _block("nq-reply nq-error", f"<b>{words.error}{words.colon}</b>{escape(message)}")


def render_notice(message: str) -> str:
    """A neutral notice (e.g. "still indexing") as an escaped chat reply."""
    return _block("nq-reply nq-notice", escape(message))


def render_articles(articles: Sequence[tuple[str, str]]) -> str:
    """The indexed articles, grouped by source file, escaped.

    Args:
        articles: ``(file, title)`` pairs in corpus order.

    Returns:
        An HTML list with one foldable entry per file.
    """
    by_file: dict[str, list[str]] = {}
    for file, title in articles:
        by_file.setdefault(file, []).append(title)
    if not by_file:
        return _block("nq-articles", "—")
    entries = [
        f"<details><summary><code>{escape(file)}</code> · {len(titles)}</summary><ol>"
        + "".join(f"<li>{escape(title) or '—'}</li>" for title in titles)
        + "</ol></details>"
        for file, titles in by_file.items()
    ]
    return _block("nq-articles", "".join(entries))


def highlight(hit: Hit, marked: bool = True) -> str:
    """The passage text, escaped, with its answering sentence wrapped in ``<mark>`` and,
    inside it, the answering span (``hit.answer_start``/``answer_end``) in
    ``<strong class="nq-span">``.

    Args:
        hit: a retrieved passage.
        marked: highlight the sentence; False for a passage that fails the answer check.

    Returns:
        HTML; paragraph breaks become ``<br>``.
    """
    start, end = _sentence_span(hit)
    if start == end or not marked:
        return _text(hit.text)
    return _text(hit.text[:start]) + _marked(hit, start, end) + _text(hit.text[end:])


def verdict(answer: Answer, hit: Hit, words: Labels) -> tuple[str, str, bool]:
    """What the answer decision makes of one passage, for a reader.

    Returns:
        ``(label, reason, passes)``: 「答案」 for the top hit of a found answer (its
        reason the answer's), 「相关」 for another hit that holds the kind of answer
        asked for when the question is answered, 「弱相关」 otherwise; ``passes`` is
        whether its sentence is highlighted.
    """
    if answer.hits and hit is answer.hits[0]:
        label = words.answer if answer.found and hit.fits_question else words.weakly
        return label, answer.reason, label == words.answer
    if hit.fits_question and answer.found:  # when nothing answers, nothing is "related"
        return words.related, words.fits, True
    return words.weakly, words.unfit, False


def locator(citation: Citation) -> str:
    """The citation's locator: its reference without the file (``51-53``, ``1:37-290``,
    ``p.3``), what a link to the article names after ``#``."""
    return str(citation)[len(citation.file) :].lstrip(":").strip()


def article_href(hit: Hit, marked: bool = True) -> str:
    """The link to the hit's whole article, scrolled to it: ``article/<id>#<locator>``.

    Args:
        hit: a retrieved passage.
        marked: also name the answering sentence (``&s=``) and its span (``&a=``),
            as offsets into the article text, so they are highlighted there.

    Returns:
        A link relative to the chat page (not escaped).
    """
    c = hit.citation
    fragment = quote(locator(c), safe=":-.")
    start, end = _sentence_span(hit)
    if marked and start < end:
        fragment += f"&s={c.start + start}-{c.start + end}"
        if 0 <= hit.answer_start < hit.answer_end:
            fragment += f"&a={c.start + hit.answer_start}-{c.start + hit.answer_end}"
    return f"article/{article_id(hit.chunk_id)}#{fragment}"


def _marked(hit: Hit, start: int, end: int) -> str:
    """``hit.text[start:end]`` escaped in ``<mark>``, its answering span in bold."""
    a, b = hit.answer_start, hit.answer_end
    if not start <= a < b <= end:
        return f"<mark>{_text(hit.text[start:end])}</mark>"
    return (
        f"<mark>{_text(hit.text[start:a])}"
        f'<strong class="nq-span">{_text(hit.text[a:b])}</strong>'
        f"{_text(hit.text[b:end])}</mark>"
    )


def _render_best(hit: Hit) -> str:
    start, end = _sentence_span(hit)
    sentence = hit.text[start:end]
    stripped = sentence.strip()
    a, b = hit.answer_start - start, hit.answer_end - start
    lead = len(sentence) - len(sentence.lstrip())
    if stripped and 0 <= a - lead < b - lead <= len(stripped):
        a, b = a - lead, b - lead
        quoted = _quoted(stripped)
        shift = quoted.index(stripped)
        a, b = a + shift, b + shift
        inner = (
            f'{_text(quoted[:a])}<strong class="nq-span">{_text(quoted[a:b])}</strong>'
            f"{_text(quoted[b:])}"
        )
    else:
        inner = _text(_quoted(stripped or hit.text.strip()))
    return (
        f'<blockquote class="nq-answer">{inner}'
        f'<sup class="nq-marker" title="{escape(str(hit.citation))}">'
        f'<a class="nq-open" href="{escape(article_href(hit))}">[{hit.rank}]</a></sup>'
        "</blockquote>"
    )


def _render_hits(answer: Answer, hits: Sequence[Hit], words: Labels, weak: bool) -> str:
    heading = "" if weak else f'<div class="nq-heading">{words.passages}</div>'
    return heading + "".join(_render_hit(answer, hit, words, weak) for hit in hits)


def _render_hit(answer: Answer, hit: Hit, words: Labels, weak: bool) -> str:
    c = hit.citation
    label, reason, passes = verdict(answer, hit, words)
    href = escape(article_href(hit, passes))
    badge = f'<span class="nq-badge">{words.weak}</span>' if weak else ""
    byline = f'<span class="nq-byline"> · {escape(c.byline)}</span>' if c.byline else ""
    head = (
        f'<div class="nq-head"><a class="nq-open" href="{href}">'
        f'<span class="nq-num">[{hit.rank}]</span> '
        f'<span class="nq-title">{escape(c.title) or "—"}</span></a>{byline}{badge}</div>'
    )
    also = "".join(
        f' · {words.also_in} <code class="nq-cite">{escape(str(other))}</code>'
        for other in hit.also_cited
    )
    meta = (
        f'<div class="nq-meta"><a class="nq-open" href="{href}">'
        f'<code class="nq-cite">{escape(str(c))}</code></a>'
        f' · <span class="nq-label" title="{escape(reason)}">{label}</span>{also}</div>'
    )
    css = "nq-hit nq-weak" if weak else "nq-hit"
    return f'<div class="{css}">{head}{meta}{_render_text(hit, words, passes)}</div>'


def _render_text(hit: Hit, words: Labels, marked: bool = True) -> str:
    """The passage; a long one folded to its answering sentence and some context."""
    if len(hit.text) <= COLLAPSE_AT:
        return f'<div class="nq-text">{highlight(hit, marked)}</div>'
    return (
        f'<details class="nq-text"><summary><span class="nq-excerpt">'
        f"{_excerpt(hit, marked)}</span>"
        f' <span class="nq-expand">{words.expand}（{len(hit.text)} {words.chars}）</span>'
        f'</summary><div class="nq-full">{highlight(hit, marked)}</div></details>'
    )


def _excerpt(hit: Hit, marked: bool = True) -> str:
    """The answering sentence with a little context either side, escaped and marked."""
    start, end = _sentence_span(hit)
    left = max(0, start - EXCERPT_CONTEXT)
    right = min(len(hit.text), end + EXCERPT_CONTEXT)
    before = ("…" if left > 0 else "") + hit.text[left:start]
    after = hit.text[end:right] + ("…" if right < len(hit.text) else "")
    if end <= start:
        sentence = ""
    elif marked:
        sentence = _marked(hit, start, end)
    else:
        sentence = _text(hit.text[start:end])
    return _text(before) + sentence + _text(after)


def _quoted(sentence: str) -> str:
    """The sentence in quotation marks, unless it is already a quotation."""
    if sentence[:1] in '“"「' and sentence[-1:] in '”"」':
        return sentence
    return f"“{sentence}”"


def _sentence_span(hit: Hit) -> tuple[int, int]:
    start = min(max(hit.sentence_start, 0), len(hit.text))
    end = min(max(hit.sentence_end, start), len(hit.text))
    return start, end


def _text(text: str) -> str:
    """Escaped article text; line breaks kept as ``<br>`` (never a blank line)."""
    return "<br>".join(escape(line) for line in text.split("\n"))


def _block(css: str, inner: str) -> str:
    """One HTML block on one line, so the chat's Markdown renderer leaves it alone."""
    return f'<div class="{css}">{inner}</div>'


def render_markdown(
    answer: Answer, question: str, english: bool = False, links: bool = True
) -> str:
    """One reply as Markdown with its full citations (what "copy" and "export" give).

    Args:
        answer: what the retriever returned (``answer.question``: what was searched).
        question: what the user typed.
        english: label it in English rather than Chinese.
        links: add each passage's link to its article (relative to the chat page).

    Returns:
        The question, the quoted answer with its marker, then each cited passage: rank,
        title, byline, date, reference, label and sentence.
    """
    words = labels_for(english)
    lines = [f"**{words.question}**{words.colon}{question.strip()}", ""]
    if answer.question.strip() != question.strip():
        lines += [f"{words.searched}{words.colon}{answer.question}", ""]
    if answer.found and answer.best is not None:
        sentence = answer.best.sentence.strip() or answer.best.text.strip()
        lines += [f"**{words.answer}**{words.colon}{_quoted(sentence)} [{answer.best.rank}]", ""]
        hits = list(answer.hits)
    else:
        lines += [words.not_found, ""]
        hits = list(answer.hits[:MAX_WEAK])
    if hits:
        lines += [f"**{words.sources}**{words.colon}", ""]
    for hit in hits:
        c = hit.citation
        label, _, passes = verdict(answer, hit, words)
        about = " · ".join(
            part for part in (f"《{c.title}》" if c.title else "—", c.byline, c.date) if part
        )
        line = f"[{hit.rank}] {about} · `{c}` · {label}"
        if links:
            line += f" · [{words.open_article}]({article_href(hit, passes)})"
        lines.append(line)
        quoted = (hit.sentence if passes and hit.sentence.strip() else hit.text).strip()
        lines.append("    > " + " ".join(quoted.split()))
        for other in hit.also_cited:
            lines.append(f"    {words.also_in} `{other}`")
    return "\n".join(lines).rstrip() + "\n"
