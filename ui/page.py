"""The chat page's layout and styles (no behaviour: see ui.app for the wiring)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from rag import K_MAX, K_MIN

from .chat import Conversation
from .render import ZH

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

INTRO = (
    "## 新闻问答 · 有出处的检索\n"
    "向文章库提问（中文或英文），每个回答都标明出自哪篇文章、哪几行。"
    "可以追问（如「那它的总投资呢？」），也可以上传新文章。"
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
"""


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


def build_layout(
    status: str, articles: str, default_k: int = 5, default_mode: str | None = None
) -> Page:
    """Lay out the page; call inside a ``gr.Blocks`` context.

    Args:
        status: the initial status line (Markdown).
        articles: the initial article list (HTML, escaped).
        default_k: the initial number of passages per reply.
        default_mode: the retrieval mode selected at first (None: the library's own,
            named in the status line, until the user picks one).

    Returns:
        The components to wire events to.
    """
    gr.Markdown(INTRO)
    status_md = gr.Markdown(status, elem_id="nq-status")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            chatbot = _chatbot()
            with gr.Row():
                question = gr.Textbox(
                    placeholder="输入问题，例如：七台河冰雪经济产业园研创中心项目的总建筑面积是多少？",
                    show_label=False,
                    scale=8,
                    max_lines=4,
                    elem_id="nq-question",
                )
                ask = gr.Button("提问", variant="primary", scale=1, min_width=80, elem_id="nq-ask")
            hint = gr.Markdown("", visible=False, elem_id="nq-hint")
            examples = gr.Dataset(
                components=[question],
                samples=[[q] for q in EXAMPLES],
                label="示例问题（点击即问）",
                elem_id="nq-examples",
            )
        with gr.Column(scale=2):
            k, mode, clear = _settings(default_k, default_mode)
            upload, upload_status = _upload_panel()
            with gr.Accordion("已索引的文章", open=False):
                articles_html = gr.HTML(articles, elem_id="nq-articles")
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
    )


def _chatbot() -> gr.Chatbot:
    return gr.Chatbot(
        label="对话",
        show_label=False,
        buttons=[],  # no share/copy: replies are HTML, the citations are the point
        height=640,
        autoscroll=False,  # see SHOW_LATEST_QUESTION_JS
        elem_id="nq-chat",
        latex_delimiters=[],  # "$" in news text is money, not maths
        feedback_options=None,
        placeholder="在下方输入问题，或点击示例问题。",
        sanitize_html=True,
        line_breaks=False,
    )


def _settings(default_k: int, default_mode: str | None) -> tuple[gr.Slider, gr.Radio, gr.Button]:
    with gr.Accordion("设置", open=True):
        k = gr.Slider(K_MIN, K_MAX, value=default_k, step=1, label="显示段落数", elem_id="nq-k")
        mode = gr.Radio(
            MODE_CHOICES,
            value=default_mode,
            label="检索方式",
            info="混合：向量与关键词结果融合后重排（推荐）",
            elem_id="nq-mode",
        )
        clear = gr.Button("新对话", size="sm", elem_id="nq-clear")
    return k, mode, clear


def _upload_panel() -> tuple[gr.UploadButton, gr.Markdown]:
    with gr.Accordion("上传文章", open=True):
        upload = gr.UploadButton(
            "上传文章（.txt .md .html .docx .pdf .csv .jsonl .tsv）",
            file_types=[".txt", ".md", ".html", ".htm", ".docx", ".pdf", ".jsonl", ".csv", ".tsv"],
            file_count="multiple",
            elem_id="nq-upload",
        )
        gr.Markdown(
            "纯文本（UTF-8 或 GBK/GB18030）、网页、Word、带文字层的 PDF，"
            "或每行一篇的表格（CSV/JSONL/TSV）；上传后立即可问。"
        )
        upload_status = gr.Markdown("", elem_id="nq-upload-status")
    return upload, upload_status
