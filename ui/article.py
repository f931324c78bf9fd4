"""The cited article, whole: its own page (``/article/<id>#<locator>``) and the side panel."""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from rag import IndexedArticle, InvalidArgumentError, RagError, Retriever

from .render import locator
from .strings import preferred_language, text

# Finds the passage a link names (``#<locator>&s=<start>-<end>&a=<start>-<end>``: the
# citation locator, then the answering sentence and its answer span as offsets into the
# article text), wraps it (span.nq-passage), the sentence (mark) and the span
# (strong.nq-span) with DOM nodes (never HTML from the link), and scrolls it into view.
# Offsets count characters (code points), as Python does, not UTF-16 units.
HIGHLIGHT_JS = r"""
window.nqShowPassage = (root, hash, scroller) => {
  if (!root) return null;
  const parts = String(hash || '').replace(/^#/, '').split('&');
  let loc = '';
  try { loc = decodeURIComponent(parts.shift() || ''); } catch (e) { loc = ''; }
  const params = {};
  for (const part of parts) {
    const at = part.indexOf('=');
    if (at > 0) params[part.slice(0, at)] = part.slice(at + 1);
  }
  const span = (v) => {
    const m = /^(\d+)-(\d+)$/.exec(v || '');
    return m ? [+m[1], +m[2]] : null;
  };
  const sentence = span(params.s), answer = span(params.a);
  let passages = [];
  try { passages = JSON.parse(root.dataset.passages || '[]'); } catch (e) { passages = []; }
  let found = passages.filter((p) => p.loc === loc);
  if (sentence) {
    const holding = found.filter((p) => p.start <= sentence[0] && sentence[1] <= p.end);
    if (holding.length) found = holding;
  }
  const ranges = [];
  if (found.length) ranges.push([found[0].start, found[0].end, 'span', 'nq-passage']);
  if (sentence) ranges.push([sentence[0], sentence[1], 'mark', '']);
  if (answer) ranges.push([answer[0], answer[1], 'strong', 'nq-span']);
  const paragraphs = root.querySelectorAll('.nq-article-text p[data-start]');
  paragraphs.forEach((p) => p.replaceChildren(document.createTextNode(p.textContent)));
  // ranges nest (passage > sentence > span): each becomes one element inside the last
  const build = (chars, first, from, to, level) => {
    if (from >= to) return [];
    if (level >= ranges.length) {
      return [document.createTextNode(chars.slice(from - first, to - first).join(''))];
    }
    const [x, y, tag, css] = ranges[level];
    const a = Math.max(x, from), b = Math.min(y, to);
    if (a >= b) return build(chars, first, from, to, level + 1);
    const wrap = document.createElement(tag);
    if (css) wrap.className = css;
    wrap.append(...build(chars, first, a, b, level + 1));
    return [
      ...build(chars, first, from, a, level + 1),
      wrap,
      ...build(chars, first, b, to, level + 1),
    ];
  };
  for (const p of paragraphs) {
    const chars = Array.from(p.textContent);
    const first = +p.dataset.start, last = first + chars.length;
    if (!ranges.some(([x, y]) => x < last && y > first)) continue;
    p.replaceChildren(...build(chars, first, first, last, 0));
  }
  const target = root.querySelector('.nq-article-text mark')
    || root.querySelector('.nq-article-text .nq-passage');
  if (target) {
    if (scroller) {
      const offset = target.getBoundingClientRect().top - scroller.getBoundingClientRect().top;
      scroller.scrollTop += offset - scroller.clientHeight / 3;
    } else {
      target.scrollIntoView({ block: 'center' });
    }
  }
  return target;
};
"""

# The chat page's side panel: a click on [n], a passage's title or its citation (links
# a.nq-open in the chat) opens the article beside the chat (a sheet on a phone), scrolled
# to the passage; a click with a modifier key, or the panel's own link, opens the page.
PANEL_JS = r"""
(() => {
  const panel = document.createElement('aside');
  panel.id = 'nq-panel';
  panel.hidden = true;
  panel.setAttribute('role', 'dialog');
  panel.innerHTML = '<div class="nq-panel-body" tabindex="-1"></div>';
  document.body.appendChild(panel);
  const body = panel.querySelector('.nq-panel-body');
  const close = () => {
    panel.hidden = true;
    document.body.classList.remove('nq-panel-open');
  };
  window.nqClosePanel = close;
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !panel.hidden) close();
  });
  panel.addEventListener('click', (e) => {
    if (e.target.closest('.nq-panel-close')) { e.preventDefault(); close(); }
  });
  window.nqOpenArticle = async (href) => {
    const url = new URL(href, location.href);
    panel.hidden = false;
    document.body.classList.add('nq-panel-open');
    body.replaceChildren(document.createTextNode('…'));
    let html = '';
    try {
      const response = await fetch(url.pathname + '?part=panel', { credentials: 'same-origin' });
      html = await response.text();
    } catch (e) {
      html = '<p class="nq-error">' + String(e).replace(/[<&>]/g, '') + '</p>';
    }
    body.innerHTML = html;  // the server's HTML: every piece of article text escaped
    const link = body.querySelector('.nq-panel-link');
    if (link) link.href = url.href;
    body.scrollTop = 0;
    const shown = window.nqShowPassage(body.querySelector('.nq-article'), url.hash, body);
    body.focus({ preventScroll: true });
    return shown;
  };
  document.addEventListener('click', (e) => {
    const link = e.target.closest && e.target.closest('#nq-chat a.nq-open');
    if (!link || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    e.stopPropagation();
    window.nqOpenArticle(link.getAttribute('href'));
  }, true);
})();
"""

ARTICLE_CSS = """
.nq-article { line-height: 1.8; }
.nq-article-title { font-size: 1.35em; margin: .2em 0 .3em; line-height: 1.4; }
.nq-article-meta { color: #555; font-size: .9em; margin-bottom: 1em; overflow-wrap: anywhere; }
.nq-article-text p { margin: 0 0 .8em; overflow-wrap: anywhere; }
.nq-article .nq-passage { background: rgba(232, 163, 61, .16);
  box-shadow: -3px 0 0 #e8a33d; }
.nq-article mark { background: #fde68a; color: #1f2937; padding: 0 .1em; border-radius: 2px; }
.nq-article .nq-span { font-weight: 700; text-decoration: underline; text-underline-offset: 3px; }
"""

PAGE_CSS = (
    """
:root { color-scheme: light dark; }
body { margin: 0; font-family: system-ui, "Noto Sans CJK SC", "PingFang SC", sans-serif;
  background: #fff; color: #1f2937; }
.nq-page { max-width: 46em; margin: 0 auto; padding: 1em 1.2em 4em; }
.nq-page nav { margin-bottom: 1em; font-size: .9em; }
.nq-page a { color: #b45309; }
@media (prefers-color-scheme: dark) {
  body { background: #0f172a; color: #e5e7eb; }
  .nq-article-meta { color: #9ca3af; }
  .nq-article mark { background: #713f12; color: #fef9c3; }
  .nq-page a { color: #fbbf24; }
}
"""
    + ARTICLE_CSS
)

ArticleSource = Callable[[], Retriever]


def render_article(article: IndexedArticle, lang: str = "zh", panel: bool = False) -> str:
    """The article as an escaped HTML section: title, byline, date, source file, text.

    Args:
        article: from :meth:`rag.Retriever.article`.
        lang: the page language (``"zh"`` or ``"en"``) of the labels.
        panel: add the side panel's bar (a link to the article's own page and a close
            button).

    Returns:
        HTML whose paragraphs carry their offset in the article text (``data-start``)
        and whose ``data-passages`` lists each passage's locator and offsets, for
        :data:`HIGHLIGHT_JS`.
    """
    passages = [{"loc": locator(c), "start": c.start, "end": c.end} for c in article.passages]
    meta = []
    if article.byline:
        meta.append(f'<span class="nq-byline">{escape(article.byline)}</span>')
    if article.date:
        meta.append(f"<span>{text('date', lang)}{_colon(lang)}{escape(article.date)}</span>")
    meta.append(
        f"<span>{text('source_file', lang)}{_colon(lang)}<code>{escape(article.file)}</code></span>"
    )
    paragraphs = []
    offset = 0
    for line in article.text.split("\n"):
        if line.strip():
            paragraphs.append(f'<p data-start="{offset}">{escape(line)}</p>')
        offset += len(line) + 1
    bar = (
        '<div class="nq-panel-bar">'
        f'<a class="nq-panel-link" href="article/{escape(article.id)}" target="_blank" '
        f'rel="noopener">{text("open_page", lang)}</a>'
        f'<button type="button" class="nq-panel-close" aria-label="{text("close", lang)}" '
        f'title="{text("close", lang)}">×</button></div>'
        if panel
        else ""
    )
    return (
        f'{bar}<article class="nq-article" data-id="{escape(article.id)}" '
        f'data-passages="{escape(json.dumps(passages))}">'
        f'<h1 class="nq-article-title">{escape(article.title) or "—"}</h1>'
        f'<div class="nq-article-meta">{" · ".join(meta)}</div>'
        f'<div class="nq-article-text">{"".join(paragraphs)}</div></article>'
    )


def article_page(article: IndexedArticle, lang: str = "zh") -> str:
    """The article's own page (a link to share), highlighting what its ``#`` names."""
    return _page(
        escape(article.title or article.file),
        render_article(article, lang),
        lang,
        "window.nqShowPassage(document.querySelector('.nq-article'), location.hash);"
        "window.addEventListener('hashchange', () => "
        "window.nqShowPassage(document.querySelector('.nq-article'), location.hash));",
    )


def missing_page(article_id: str, lang: str = "zh", panel: bool = False) -> str:
    """The page (or panel content) for an id no indexed article has."""
    body = (
        f'<h1 class="nq-article-title">{text("not_found_title", lang)}</h1>'
        f"<p>{escape(text('not_found', lang, id=article_id))}</p>"
    )
    if panel:
        close = text("close", lang)
        return (
            '<div class="nq-panel-bar"><span></span><button type="button" '
            f'class="nq-panel-close" aria-label="{close}" title="{close}">×</button></div>'
            f'<div class="nq-article nq-missing">{body}</div>'
        )
    return _page(text("not_found_title", lang), f'<div class="nq-missing">{body}</div>', lang)


def article_routes(retriever: ArticleSource) -> list[BaseRoute]:
    """The web server's ``GET /article/<id>`` (``?part=panel``: the side panel's content).

    Args:
        retriever: returns the ready retriever (raising :class:`rag.RagError` while it
            cannot); the id is looked up among its indexed articles, never used as a path.

    Returns:
        The routes to add to the app.
    """

    def show(request: Request) -> HTMLResponse:
        article_id = str(request.path_params.get("article_id", ""))
        lang = preferred_language(request.headers.get("accept-language"))
        panel = request.query_params.get("part") == "panel"
        headers = {"Cache-Control": "no-store", "Content-Language": lang}
        try:
            article = retriever().article(article_id)
        except InvalidArgumentError:
            return HTMLResponse(missing_page(article_id, lang, panel), 404, headers)
        except RagError as exc:
            message = f'<p class="nq-error">{escape(str(exc))}</p>'
            return HTMLResponse(message if panel else _page("newsqa", message, lang), 503)
        html = render_article(article, lang, panel=True) if panel else article_page(article, lang)
        return HTMLResponse(html, headers=headers)

    return [Route("/article/{article_id:path}", show, methods=["GET"])]


def _page(title: str, body: str, lang: str, script: str = "") -> str:
    """A whole HTML page around ``body`` (already escaped)."""
    return (
        f'<!doctype html><html lang="{"en" if lang == "en" else "zh-CN"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, '
        f'initial-scale=1"><title>{title} · newsqa</title><style>{PAGE_CSS}</style></head>'
        f'<body><main class="nq-page"><nav><a href="../">← {text("back", lang)}</a></nav>'
        f"{body}</main><script>{HIGHLIGHT_JS}{script}</script></body></html>"
    )


def _colon(lang: str) -> str:
    return ": " if lang == "en" else "："
