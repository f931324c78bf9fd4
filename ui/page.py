"""The chat page's layout and styles (no behaviour: see ui.app for the wiring)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from rag import K_MAX, K_MIN

from .article import ARTICLE_CSS, HIGHLIGHT_JS, PANEL_JS
from .chat import Conversation
from .history import empty_history
from .strings import EN, EN_CODE, ZH, text

EXAMPLES = [
    "七台河冰雪经济产业园研创中心项目的总建筑面积是多少？",
    "宝泰隆一矿的设计产能是多少？",
    "绥芬河市2021年以来签约了多少个项目？",
    "联顺生物项目每年消耗多少玉米和大豆？",
    "七台河援助湖北孝感医疗队有多少名队员？",
    "How many wind turbine sites did Wudalianchi select?",
    "What is the total investment of the Jiulong pumped storage power station?",
]

MODE_CHOICES = [(label, mode) for mode, label in ZH.modes.items()]
MODE_CHOICES_EN = [(label, mode) for mode, label in EN.modes.items()]
HISTORY_KEY = "newsqa-history"  # the browser's localStorage key of the kept conversations
# BrowserState encrypts in the browser with a key it sends to every page, so it is no
# secret; a fixed one (not Gradio's random one per start) keeps the history readable
# after the server restarts.
HISTORY_KEY_SECRET = "newsqa-history-v1"

INTRO = text("intro")

# The page's own script, run once on load: the article side panel and the reply actions.
# 👍 and "the right passage was [n]" post the reply's data to /feedback; 👎 offers the
# passages to choose from; copy puts the answer and its citations on the clipboard. The
# data, text and labels come from the reply's hidden ``input.nq-fb-data`` (JSON).
ACTIONS_JS = r"""
(() => {
  const data = (row) => {
    const input = row.querySelector('input.nq-fb-data');
    try { return JSON.parse(input.getAttribute('value')); } catch (e) { return null; }
  };
  const note = (row, message) => {
    const box = row.querySelector('.nq-fb-note');
    if (box) box.textContent = message;
  };
  const vote = async (row, rating, rank) => {
    const info = data(row);
    if (!info) return;
    let answer = {};
    try {
      const response = await fetch('feedback', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        credentials: 'same-origin',
        body: JSON.stringify({ reply: info.reply, rating, rank }),
      });
      answer = await response.json();
    } catch (e) { answer = { error: String(e) }; }
    if (answer.stored) {
      row.classList.remove('nq-voted-up', 'nq-voted-down');
      row.classList.add('nq-voted-' + rating);
      note(row, info.labels.thanks);
      const choose = row.querySelector('.nq-choose');
      if (choose) choose.remove();
    } else if (answer.error) {
      note(row, answer.error);
    }
  };
  const chooser = (row) => {
    const info = data(row);
    if (!info || row.querySelector('.nq-choose')) return;
    const box = document.createElement('div');
    box.className = 'nq-choose';
    box.appendChild(document.createTextNode(info.labels.right + ' '));
    const pick = (rank, label) => {
      const link = document.createElement('a');
      link.href = '#';
      link.setAttribute('role', 'button');
      link.className = 'nq-act nq-pick';
      link.setAttribute('data-rank', String(rank));
      link.textContent = label;
      box.appendChild(link);
    };
    for (const hit of info.reply.hits || []) pick(hit.n, '[' + hit.n + ']');
    pick(0, info.labels.none);
    row.appendChild(box);
  };
  // the answer and its citations as text, read from the reply as shown
  const copyText = (row, info) => {
    const reply = row.closest('.nq-reply');
    const clean = (node) => (node ? node.textContent : '').replace(/\s+/g, ' ').trim();
    const lines = [info.labels.question + (info.reply.asked || '').trim(), ''];
    const searched = reply.querySelector('.nq-query:not(.nq-mode)');
    if (searched) lines.push(clean(searched), '');
    const best = reply.querySelector('.nq-answer');
    if (best) lines.push(info.labels.answer + clean(best), '');
    else lines.push(clean(reply.querySelector('.nq-none')), '');
    for (const hit of reply.querySelectorAll('.nq-hit')) {
      const byline = clean(hit.querySelector('.nq-byline')).replace(/^·\s*/, '');
      const title = clean(hit.querySelector('.nq-title'));
      const cite = clean(hit.querySelector('.nq-meta .nq-cite'));
      const head = [clean(hit.querySelector('.nq-num')) + ' 《' + title + '》', byline,
        '`' + cite + '`', clean(hit.querySelector('.nq-label'))];
      lines.push(head.filter(Boolean).join(' · '));
      const mark = hit.querySelector('mark');
      const text = mark || hit.querySelector('.nq-full') || hit.querySelector('.nq-text');
      lines.push('    > ' + clean(text));
    }
    return lines.join('\n') + '\n';
  };
  const copy = async (value) => {
    window.nqCopied = value;
    try {
      await navigator.clipboard.writeText(value);
      return true;
    } catch (e) {
      const area = document.createElement('textarea');
      area.value = value;
      area.style.position = 'fixed';
      area.style.opacity = '0';
      document.body.appendChild(area);
      area.select();
      const done = document.execCommand('copy');
      area.remove();
      return done;
    }
  };
  document.addEventListener('click', async (e) => {
    const act = e.target.closest && e.target.closest('#nq-chat .nq-actions .nq-act');
    if (!act) return;
    e.preventDefault();
    e.stopPropagation();
    const row = act.closest('.nq-actions');
    if (act.classList.contains('nq-copy')) {
      const info = data(row);
      if (info && await copy(copyText(row, info))) note(row, info.labels.copied);
    } else if (act.classList.contains('nq-up')) {
      await vote(row, 'up', null);
    } else if (act.classList.contains('nq-down')) {
      row.classList.add('nq-voted-down');
      chooser(row);
    } else if (act.classList.contains('nq-pick')) {
      await vote(row, 'down', Number(act.getAttribute('data-rank')));
    }
  }, true);
})();
"""

PAGE_JS = (
    "() => {\n if (window.nqReady) return;\n window.nqReady = true;\n"
    + (HIGHLIGHT_JS + PANEL_JS + ACTIONS_JS)
    + "}"
)

# Replies are long (answer, then up to K_MAX passages). Instead of Gradio's jump to the
# bottom of the chat, the latest question is brought to the top of the chat, with the
# start of its reply (where the answer is) under it. Run as an event's ``js`` after the
# question is shown and after the reply; the frame waits for the update to be drawn.
SHOW_LATEST_QUESTION_JS = """
() => requestAnimationFrame(() => {
  const rows = document.querySelectorAll('#nq-chat .message-row.user-row');
  const question = rows[rows.length - 1];
  let box = question && question.parentElement;
  while (box && box.scrollHeight <= box.clientHeight + 1) box = box.parentElement;
  if (!box) return;
  const offset = question.getBoundingClientRect().top - box.getBoundingClientRect().top;
  box.scrollTop += offset - 8;
})
"""

# Run in the browser as the sending event's ``js``, after Gradio has read the inputs: empty
# the question box at once. Clearing it from the server's response instead would wipe a
# question typed meanwhile (sent back to back, the next one is already in the box).
CLEAR_SENT_QUESTION_JS = """
(text, ...rest) => {
  if (typeof text === 'string' && text.trim()) {
    const box = document.querySelector('#nq-question textarea');
    if (box) {
      box.value = '';
      box.dispatchEvent(new Event('input', { bubbles: true }));
    }
  }
  return [text, ...rest];
}
"""

CSS = """
#nq-status { padding: .35em .8em; border-radius: 8px; background: var(--block-background-fill); }
.nq-reply { line-height: 1.65; }
.nq-reply .nq-query { font-size: .9em; color: var(--body-text-color-subdued); margin-bottom: .4em; }
.nq-reply .nq-answer { margin: 0 0 .8em 0; padding: .5em .9em; border-left: 4px solid #e8a33d;
  background: rgba(232, 163, 61, .10); font-size: 1.05em; }
.nq-reply .nq-span { font-weight: 700; text-decoration: underline; text-underline-offset: 3px; }
.nq-reply .nq-marker { color: #b45309; font-weight: 600; margin-left: .2em; }
.nq-reply .nq-heading { font-weight: 600; margin: .6em 0 .3em; }
.nq-reply .nq-hit { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: .5em .8em; margin: .45em 0; }
.nq-reply .nq-weak { opacity: .8; border-style: dashed; }
.nq-reply .nq-head { font-weight: 600; }
.nq-reply .nq-num { color: #b45309; }
.nq-reply .nq-byline { font-weight: 400; color: var(--body-text-color-subdued); }
.nq-reply .nq-badge { margin-left: .5em; padding: 0 .45em; border-radius: 4px; font-size: .8em;
  font-weight: 600; background: #fde2e1; color: #9f1c1c; }
.nq-reply .nq-meta { font-size: .85em; color: var(--body-text-color-subdued);
  margin: .15em 0 .35em; }
.nq-reply .nq-text { font-size: .95em; }
.nq-reply details.nq-text > summary { cursor: pointer; list-style: none; }
.nq-reply details.nq-text[open] > summary .nq-excerpt { display: none; }
.nq-reply .nq-expand { font-size: .85em; color: var(--link-text-color); white-space: nowrap; }
.nq-reply mark { background: #fde68a; color: #1f2937; padding: 0 .1em; border-radius: 2px; }
.dark .nq-reply mark { background: #713f12; color: #fef9c3; }
.dark .nq-reply .nq-marker, .dark .nq-reply .nq-num { color: #fbbf24; }
.dark .nq-error { color: #fca5a5; }
.nq-reply .nq-none { font-weight: 600; margin-bottom: .4em; }
.nq-reply .nq-weak-note { font-size: .9em; color: var(--body-text-color-subdued); }
.nq-error { color: #9f1c1c; }
.nq-notice { color: var(--body-text-color-subdued); }
.nq-articles details { margin: .2em 0; }
.nq-articles ol { margin: .2em 0 .4em 1.4em; font-size: .9em; }
.nq-reply a.nq-open { color: inherit; text-decoration: none; cursor: pointer; }
.nq-reply a.nq-open:hover .nq-title, .nq-reply a.nq-open:hover code,
.nq-reply .nq-marker a.nq-open:hover { text-decoration: underline; }
.nq-reply .nq-marker a.nq-open { color: #b45309; }
.dark .nq-reply .nq-marker a.nq-open { color: #fbbf24; }
.nq-reply .nq-actions { margin-top: .6em; font-size: .9em; display: flex; flex-wrap: wrap;
  gap: .3em .6em; align-items: center; }
.nq-reply .nq-act { text-decoration: none; cursor: pointer; padding: .05em .45em;
  border: 1px solid var(--border-color-primary); border-radius: 6px; color: inherit; }
.nq-reply .nq-act:hover { background: var(--background-fill-secondary); }
.nq-reply .nq-voted-up .nq-up, .nq-reply .nq-voted-down .nq-down {
  background: rgba(232, 163, 61, .25); }
.nq-reply .nq-choose { flex-basis: 100%; display: flex; flex-wrap: wrap; gap: .3em; }
.nq-reply .nq-fb-note { color: var(--body-text-color-subdued); }
"""


# Rules for what lies outside Gradio's own container (the side panel, appended to the
# body; the page's padding) and every media query: Gradio scopes the ``css`` it is given
# to its container, so these go into the page's head as they are.
HEAD_CSS = """
#nq-panel { position: fixed; top: 0; right: 0; bottom: 0; width: min(600px, 42vw);
  z-index: 1000;
  background: #fff; color: #1f2937;
  border-left: 1px solid var(--border-color-primary, #ddd);
  box-shadow: -6px 0 24px rgba(0, 0, 0, .18); display: flex; flex-direction: column; }
#nq-panel[hidden] { display: none; }
#nq-panel .nq-panel-body { overflow-y: auto; padding: .4em 1.2em 2em; flex: 1; outline: none; }
#nq-panel .nq-panel-bar { position: sticky; top: 0; display: flex; gap: 1em;
  justify-content: space-between; align-items: center; padding: .5em 0;
  background: inherit; border-bottom: 1px solid var(--border-color-primary, #ddd);
  font-size: .9em; }
#nq-panel .nq-panel-body > .nq-panel-bar { background: #fff; z-index: 1; }
#nq-panel .nq-panel-link { color: var(--link-text-color, #b45309); }
#nq-panel .nq-panel-close { font-size: 1.5em; line-height: 1; border: 0; background: none;
  cursor: pointer; color: inherit; padding: 0 .3em; }
.dark #nq-panel { background: #0f172a; color: #e5e7eb; }
.dark #nq-panel .nq-panel-body > .nq-panel-bar { background: #0f172a; }
.dark #nq-panel .nq-article mark { background: #713f12; color: #fef9c3; }
.dark #nq-panel .nq-article-meta { color: #9ca3af; }
@media (min-width: 901px) {
  body.nq-panel-open gradio-app { padding-right: min(600px, 42vw); }
}
@media (max-width: 900px) {
  #nq-panel { top: auto; left: 0; width: 100%; height: 82vh; border-left: 0;
    border-radius: 14px 14px 0 0; box-shadow: 0 -6px 24px rgba(0, 0, 0, .25); }
}
@media (max-width: 640px) {
  .gradio-container .main.app { padding-left: 8px !important; padding-right: 8px !important; }
  #nq-question { min-width: 0 !important; }
  #nq-intro p { display: none; }
  #nq-tabs [role='tablist'] { padding-left: 36px; }
  #nq-chat { height: min(640px, 58vh) !important; max-height: 58vh; }
  #nq-ask-row { flex-wrap: nowrap; }
  #nq-ask { min-width: 64px !important; }
  .nq-reply { overflow-wrap: anywhere; }
  .nq-reply code { white-space: normal; word-break: break-all; }
  #nq-settings-col { order: 2; }
}
"""
HEAD = f"<style>{HEAD_CSS}{ARTICLE_CSS}</style>"


@dataclass(frozen=True)
class Page:
    """The components of the chat page that events read or write."""

    status: gr.Markdown
    chatbot: gr.Chatbot
    question: gr.Textbox
    ask: gr.Button
    examples: gr.Dataset
    k: gr.Slider
    mode: gr.Radio
    clear: gr.Button
    upload: gr.UploadButton
    upload_status: gr.Markdown
    articles: gr.HTML
    hint: gr.Markdown  # under the question box: why nothing was sent
    conversation: gr.State  # this session's questions, replies and searched queries
    timer: gr.Timer  # polls the status while the index is opening
    localized: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)


def build_layout(
    status: str, articles: str, default_k: int = 5, default_mode: str | None = None
) -> Page:
    """Lay out the chat; call inside a ``gr.Blocks`` (or ``gr.Tab``) context.

    Args:
        status: the initial status line (Markdown).
        articles: the initial article list (HTML, escaped).
        default_k: the initial number of passages per reply.
        default_mode: the retrieval mode selected at first (None: the library's own,
            named in the status line, until the user picks one).

    Returns:
        The components to wire events to; ``localized`` lists each component's words in
        English (the layout is Chinese; :func:`localize` switches it for a browser that
        prefers English).
    """
    en: list[tuple[Any, dict[str, Any]]] = []
    intro = gr.Markdown(INTRO, elem_id="nq-intro")
    en.append((intro, {"value": text("intro", EN_CODE)}))
    status_md = gr.Markdown(status, elem_id="nq-status")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            chatbot = _chatbot()
            en.append((chatbot, {"placeholder": text("chat_placeholder", EN_CODE)}))
            with gr.Row(elem_id="nq-ask-row"):
                question = gr.Textbox(
                    placeholder=text("placeholder"),
                    show_label=False,
                    scale=8,
                    max_lines=4,
                    elem_id="nq-question",
                )
                ask = gr.Button(
                    text("ask"), variant="primary", scale=1, min_width=64, elem_id="nq-ask"
                )
            en += [
                (question, {"placeholder": text("placeholder", EN_CODE)}),
                (ask, {"value": text("ask", EN_CODE)}),
            ]
            hint = gr.Markdown("", visible=False, elem_id="nq-hint")
            examples = gr.Dataset(
                components=[question],
                samples=[[q] for q in EXAMPLES],
                label=text("examples"),
                elem_id="nq-examples",
            )
            en.append((examples, {"label": text("examples", EN_CODE)}))
        with gr.Column(scale=2, min_width=260, elem_id="nq-settings-col"):
            k, mode, clear = _settings(default_k, default_mode, en)
            upload, upload_status = _upload_panel(en)
            with gr.Accordion(text("articles"), open=False) as shelf:
                articles_html = gr.HTML(articles, elem_id="nq-articles")
            en.append((shelf, {"label": text("articles", EN_CODE)}))
    return Page(
        status=status_md,
        chatbot=chatbot,
        question=question,
        ask=ask,
        examples=examples,
        k=k,
        mode=mode,
        clear=clear,
        upload=upload,
        upload_status=upload_status,
        articles=articles_html,
        hint=hint,
        conversation=gr.State(Conversation()),
        timer=gr.Timer(1.0),
        localized=en,
    )


@dataclass(frozen=True)
class Sidebar:
    """The kept conversations: the browser's store and the sidebar listing them."""

    history: gr.BrowserState
    conversations: gr.Radio
    new: gr.Button
    title: gr.Textbox
    rename: gr.Button
    delete: gr.Button
    export: gr.Button
    exported: gr.File
    localized: list[tuple[Any, dict[str, Any]]]


def build_sidebar() -> Sidebar:
    """The sidebar of kept conversations (new, switch, rename, delete, export).

    Call inside the ``gr.Blocks`` context, outside any tab. The conversations live in the
    browser's local storage (``gr.BrowserState``), so a reload keeps them.
    """
    history = gr.BrowserState(empty_history(), storage_key=HISTORY_KEY, secret=HISTORY_KEY_SECRET)
    en: list[tuple[Any, dict[str, Any]]] = []
    with gr.Sidebar(open=False, elem_id="nq-sidebar", label=text("history")) as bar:
        heading = gr.Markdown(f"### {text('history')}")
        new = gr.Button(text("new"), size="sm", variant="primary", elem_id="nq-new")
        conversations = gr.Radio(
            [], value=None, label=text("history_list"), elem_id="nq-conversations"
        )
        with gr.Row():
            title = gr.Textbox(
                placeholder=text("rename_placeholder"),
                show_label=False,
                max_lines=1,
                scale=3,
                elem_id="nq-title",
            )
            rename = gr.Button(text("rename"), size="sm", scale=1, elem_id="nq-rename")
        delete = gr.Button(text("delete"), size="sm", variant="stop", elem_id="nq-delete")
        export = gr.Button(text("export"), size="sm", elem_id="nq-export")
        exported = gr.File(label=text("export_file"), visible=False, elem_id="nq-exported")
    en += [
        (bar, {"label": text("history", EN_CODE)}),
        (heading, {"value": f"### {text('history', EN_CODE)}"}),
        (new, {"value": text("new", EN_CODE)}),
        (conversations, {"label": text("history_list", EN_CODE)}),
        (title, {"placeholder": text("rename_placeholder", EN_CODE)}),
        (rename, {"value": text("rename", EN_CODE)}),
        (delete, {"value": text("delete", EN_CODE)}),
        (export, {"value": text("export", EN_CODE)}),
        (exported, {"label": text("export_file", EN_CODE)}),
    ]
    return Sidebar(history, conversations, new, title, rename, delete, export, exported, en)


def localize(localized: list[tuple[Any, dict[str, Any]]], lang: str) -> list[Any]:
    """The updates that put the page in ``lang``: English words, or nothing for Chinese.

    Args:
        localized: ``(component, {property: English value})`` pairs.
        lang: ``"zh"`` (the layout's own) or ``"en"``.

    Returns:
        One update per component, in order.
    """
    if lang != EN_CODE:
        return [gr.skip() for _ in localized]
    return [gr.update(**props) for _, props in localized]


def _chatbot() -> gr.Chatbot:
    return gr.Chatbot(
        label="对话",
        show_label=False,
        buttons=[],  # no share/copy: replies are HTML; each has its own copy action
        height=640,
        autoscroll=False,  # see SHOW_LATEST_QUESTION_JS
        elem_id="nq-chat",
        latex_delimiters=[],  # "$" in news text is money, not maths
        feedback_options=None,
        placeholder=text("chat_placeholder"),
        sanitize_html=True,
        line_breaks=False,
    )


def _settings(
    default_k: int, default_mode: str | None, en: list[tuple[Any, dict[str, Any]]]
) -> tuple[gr.Slider, gr.Radio, gr.Button]:
    with gr.Accordion(text("settings"), open=True, elem_id="nq-settings") as settings:
        k = gr.Slider(K_MIN, K_MAX, value=default_k, step=1, label=text("k"), elem_id="nq-k")
        mode = gr.Radio(
            MODE_CHOICES,
            value=default_mode,
            label=text("mode"),
            info=text("mode_info"),
            elem_id="nq-mode",
        )
        clear = gr.Button(text("new"), size="sm", elem_id="nq-clear")
    en += [
        (settings, {"label": text("settings", EN_CODE)}),
        (k, {"label": text("k", EN_CODE)}),
        (
            mode,
            {
                "label": text("mode", EN_CODE),
                "info": text("mode_info", EN_CODE),
                "choices": MODE_CHOICES_EN,
            },
        ),
        (clear, {"value": text("new", EN_CODE)}),
    ]
    return k, mode, clear


def _upload_panel(en: list[tuple[Any, dict[str, Any]]]) -> tuple[gr.UploadButton, gr.Markdown]:
    with gr.Accordion(text("upload_panel"), open=True) as panel:
        upload = gr.UploadButton(
            text("upload"),
            file_types=[".txt", ".md", ".html", ".htm", ".docx", ".pdf", ".jsonl", ".csv", ".tsv"],
            file_count="multiple",
            elem_id="nq-upload",
        )
        note = gr.Markdown(text("upload_note"))
        upload_status = gr.Markdown("", elem_id="nq-upload-status")
    en += [
        (panel, {"label": text("upload_panel", EN_CODE)}),
        (upload, {"label": text("upload", EN_CODE)}),
        (note, {"value": text("upload_note", EN_CODE)}),
    ]
    return upload, upload_status
