"""The web chat: reply rendering, chat logic over a stand-in retriever, the real app's API over
HTTP on the hash embedder (fast), and the real app on the real model, in Chromium (slow)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import (
    AREA_FILE,
    SEED_ANSWERS,
    ask_in_page,
    call_result,
    free_port,
    served_seed_chat,
    submit_call,
)

from rag import (
    Answer,
    Citation,
    Config,
    Hit,
    QuestionError,
    RagError,
    UnreadableFileError,
    article_id,
)
from rag.config import K_MAX, K_MIN
from rag.index import UpdateReport
from ui.chat import ChatBackend, Conversation
from ui.library import RetrieverService, chat_config, default_library_dir, ensure_library
from ui.render import MAX_WEAK, highlight, render_articles, render_error, render_reply

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
CHROMIUM = Path(os.environ.get("NEWSQA_CHROMIUM", "/usr/bin/chromium"))
SCREENS_COPY = os.environ.get("NEWSQA_UI_SCREENS")  # also copy screenshots here, if set
AREA = "七台河冰雪经济产业园研创中心项目的总建筑面积是多少？"
INJECTION = "<script>alert(1)</script><b>x</b>"
# Gradio's queue, served in this process by the fast API tests, warns about pandas
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")


# ----------------------------------------------------------------------------- rendering


def make_hit(
    text: str,
    sentence: str | None = None,
    rank: int = 1,
    score: float = 1.2,
    file: str = "a.txt",
    title: str = "标题",
    byline: str = "本报记者 张三",
) -> Hit:
    """A hit over ``text`` whose answering sentence is ``sentence`` (default: all)."""
    sentence = text if sentence is None else sentence
    start = text.index(sentence)
    citation = Citation(file, title, byline, 3, 4, 0, len(text))
    return Hit(rank, score, text, citation, f"{file}#0:0", start, start + len(sentence))


def test_article_text_title_and_byline_are_escaped() -> None:
    hit = make_hit(
        f"前文。{INJECTION}答案在此。后文。", "答案在此。", title="<i>t</i>", byline="<img src=x>"
    )
    html = render_reply(Answer("q", [hit], found=True), "q", "q")
    assert "<script>" not in html and "<b>x</b>" not in html and "<i>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in html
    assert "&lt;i&gt;t&lt;/i&gt;" in html and "&lt;img src=x&gt;" in html


def test_the_answering_sentence_is_quoted_cited_and_highlighted() -> None:
    hit = make_hit("第一句。总投资1000万元。第三句。", "总投资1000万元。", file="f.txt")
    html = render_reply(Answer("q", [hit], found=True), "q", "q")
    assert "“总投资1000万元。”" in html
    assert ">[1]</a></sup>" in html and 'title="f.txt:3-4"' in html
    # [1], the title and the citation open the article at the passage, the sentence marked
    link = f'<a class="nq-open" href="article/{article_id("f.txt#0:0")}#3-4&amp;s=4-14"'
    assert html.count(link) == 3
    assert highlight(hit) == "第一句。<mark>总投资1000万元。</mark>第三句。"
    assert "f.txt:3-4" in html and "标题" in html and "本报记者 张三" in html
    assert "1.200" not in html  # a label a reader understands instead of the raw score


def test_the_answer_span_is_bold_inside_the_highlighted_sentence() -> None:
    text = "前文<b>。五大连池市选取了614个风机点位。后文。"
    sentence = "五大连池市选取了614个风机点位。"
    start = text.index("614个")
    hit = replace(make_hit(text, sentence), answer_start=start, answer_end=start + 4)
    marked = '<mark>五大连池市选取了<strong class="nq-span">614个</strong>风机点位。</mark>'
    assert highlight(hit) == "前文&lt;b&gt;。" + marked + "后文。"
    html = render_reply(Answer("q", [hit], found=True, reason="r"), "q", "q")
    assert marked in html
    assert '“五大连池市选取了<strong class="nq-span">614个</strong>风机点位。”' in html
    long = replace(hit, text="甲" * 300 + text, answer_start=start + 300, answer_end=start + 304)
    long = replace(long, sentence_start=hit.sentence_start + 300)
    long = replace(long, sentence_end=hit.sentence_end + 300)
    folded = render_reply(Answer("q", [long], found=True), "q", "q")
    summary = folded[folded.index("<summary>") : folded.index("</summary>")]
    assert marked in summary


def test_passages_are_labelled_from_the_answer_decision_not_by_raw_score() -> None:
    top = make_hit("项目总投资9亿元。", score=1.8412)
    fits = make_hit("另一篇：投资8亿元。", rank=2, score=0.9731)
    unfit = replace(make_hit("无关的一段话。", rank=3, score=0.5123), fits_question=False)
    answer = Answer("q", [top, fits, unfit], found=True, reason="the top passage <fits>")
    html = render_reply(answer, "q", "q")
    for raw in ("1.84", "1.841", "0.973", "0.512", "相关度"):
        assert raw not in html
    assert '<span class="nq-label" title="the top passage &lt;fits&gt;">答案</span>' in html
    assert '<span class="nq-label" title="含所问的信息类型">相关</span>' in html
    assert '<span class="nq-label" title="不含所问的信息类型">弱相关</span>' in html
    assert "<mark>项目总投资9亿元。</mark>" in html and "<mark>另一篇" in html
    assert "<mark>无关" not in html and "无关的一段话。" in html  # fails the check: unmarked
    assert html.count("<mark>") == 2


def test_a_top_hit_that_is_not_an_answer_is_weak_and_unhighlighted() -> None:
    hits = [make_hit("候选一。"), make_hit("候选二。", rank=2)]
    html = render_reply(Answer("q", hits, found=False, reason="score below 0.5"), "q", "q")
    assert '<span class="nq-label" title="score below 0.5">弱相关</span>' in html
    # when nothing answers, no passage is marked, not even one holding the asked form
    assert "<mark>" not in html and ">相关</span>" not in html
    english = render_reply(Answer("q", hits, found=False), "q", "q", english=True)
    assert ">weakly related</span>" in english and ">related</span>" not in english


def test_a_quoted_sentence_is_not_quoted_twice() -> None:
    hit = make_hit("“水更清了！”", "“水更清了！”")
    assert "““" not in render_reply(Answer("q", [hit], found=True), "q", "q")


def test_a_long_passage_folds_but_keeps_its_highlight_visible() -> None:
    text = "甲" * 300 + "答案句。" + "乙" * 300
    html = render_reply(Answer("q", [make_hit(text, "答案句。")], found=True), "q", "q")
    summary = html[html.index("<summary>") : html.index("</summary>")]
    assert "<details" in html and "<mark>答案句。</mark>" in summary and "…" in summary
    assert "展开全文（604 字）" in summary
    short = render_reply(Answer("q", [make_hit("短文。")], found=True), "q", "q")
    assert "<details" not in short


def test_paragraph_breaks_become_br_and_the_block_has_no_blank_line() -> None:
    html = render_reply(Answer("q", [make_hit("第一段。\n\n第二段。")], found=True), "q", "q")
    assert "第一段。<br><br>第二段。" in html
    assert "\n" not in html  # one HTML block: Markdown never touches article text


def test_not_found_says_so_and_marks_at_most_three_candidates_weak() -> None:
    hits = [make_hit(f"候选{i}。", rank=i, score=0.3) for i in range(1, 6)]
    html = render_reply(Answer("q", hits, found=False), "q", "火星上有水吗？")
    assert "资料中没有找到相关内容" in html
    assert html.count("低相关") == MAX_WEAK == 3
    assert html.count('class="nq-hit nq-weak"') == 3 and "候选4" not in html
    assert "nq-answer" not in html  # no quoted "answer" when there is none
    english = render_reply(Answer("q", hits, found=False), "q", "Water on Mars?", english=True)
    assert "The articles do not contain this." in english and "weak match" in english


def test_the_searched_query_is_shown_only_when_the_question_was_rewritten() -> None:
    answer = Answer("q", [make_hit("句。")], found=True)
    assert "检索语句" not in render_reply(answer, "同一个问题", "同一个问题")
    html = render_reply(answer, "项目的总投资<是>多少", "那它的总投资呢？")
    assert "检索语句：项目的总投资&lt;是&gt;多少" in html


def test_errors_and_article_lists_are_escaped() -> None:
    assert "&lt;b&gt;" in render_error("<b>bad</b>") and "<b>bad" not in render_error("<b>bad</b>")
    html = render_articles([("a.txt", "<em>一</em>"), ("a.txt", "二"), ("b.md", "三")])
    assert html.count("<details>") == 2 and "&lt;em&gt;一&lt;/em&gt;" in html


# ----------------------------------------------------------------------------- chat logic


class FakeRetriever:
    """Stands in for :class:`rag.Retriever`: records queries, answers from one passage."""

    def __init__(self) -> None:
        self.config = Config(mode="lexical")
        self.queries: list[str] = []
        self.files: dict[str, str] = {"a.txt": "七台河"}
        self.warmed_up = False
        self.modes: list[str | None] = []
        self.last_update = UpdateReport()

    def warm_up(self) -> None:
        self.warmed_up = True

    def ask(self, question: str, k: int | None = None, mode: str | None = None) -> Answer:
        if not question.strip():
            raise QuestionError("the question is empty")
        self.queries.append(question)
        self.modes.append(mode)
        hits = [make_hit("项目总投资1000万元。", rank=i) for i in range(1, (k or 5) + 1)]
        return Answer(question.strip(), hits, found=True)

    def add_document(self, filename: str, data: bytes, progress: bool = False) -> UpdateReport:
        if b"\0" in data:
            raise UnreadableFileError(f"{filename}: looks like a binary file (NUL bytes), skipped")
        self.files[filename] = data.decode().splitlines()[0].lstrip("# ")
        return UpdateReport(added=[filename], embedded=1)

    def articles(self) -> list[tuple[str, str]]:
        return sorted(self.files.items())


@pytest.fixture()
def fake() -> FakeRetriever:
    return FakeRetriever()


@pytest.fixture()
def backend(fake: FakeRetriever) -> ChatBackend:
    return ChatBackend(RetrieverService(lambda: fake).start())  # type: ignore[arg-type,return-value]


def test_a_follow_up_is_searched_as_the_resolved_question(
    backend: ChatBackend, fake: FakeRetriever
) -> None:
    first = backend.reply(AREA, [], k=3)
    second = backend.reply("那它的总投资呢？", [first.query], k=3)
    assert fake.queries == [AREA, "七台河冰雪经济产业园研创中心项目的总投资是多少"]
    assert second.query == fake.queries[-1] and "检索语句" in second.html
    assert "检索语句" not in first.html
    assert len(second.to_dict()["hits"]) == 3 and second.to_dict()["found"] is True


def test_k_outside_the_librarys_bound_is_an_error_never_clamped(
    backend: ChatBackend, fake: FakeRetriever
) -> None:
    from rag.config import K_MAX, K_MIN

    for k in (0, K_MAX + 1, 50):
        reply = backend.reply("问题？", [], k=k)
        assert f"from {K_MIN} to {K_MAX}" in reply.error and reply.to_dict()["hits"] == []
    assert fake.queries == []  # nothing was searched with a changed k
    assert len(backend.reply("问题？", [], k=K_MAX).to_dict()["hits"]) == K_MAX
    assert len(backend.reply("问题？", [], k=2.0).to_dict()["hits"]) == 2  # the slider's


def test_the_page_slider_spans_the_librarys_bound(fake: FakeRetriever) -> None:
    from rag.config import K_MAX, K_MIN
    from ui.app import build_app

    app = build_app(lambda: fake)  # type: ignore[arg-type]
    (slider,) = [c for c in app.config["components"] if c["props"].get("elem_id") == "nq-k"]
    assert (slider["props"]["minimum"], slider["props"]["maximum"]) == (K_MIN, K_MAX)


def test_a_mode_picked_in_the_page_is_used_and_named_in_the_reply(
    backend: ChatBackend, fake: FakeRetriever
) -> None:
    picked = backend.reply("项目总投资是多少？", [], k=3, mode="dense")
    default = backend.reply("项目总投资是多少？", [], k=3, mode=None)
    same = backend.reply("项目总投资是多少？", [], k=3, mode="lexical")  # the library's own
    assert fake.modes == ["dense", None, "lexical"]
    assert "检索方式：向量" in picked.html and picked.to_dict()["mode"] == "dense"
    assert "检索方式" not in default.html and default.to_dict()["mode"] == "lexical"
    assert "检索方式" not in same.html
    english = backend.reply("What is the total investment?", [], k=3, mode="dense")
    assert "Retrieval mode: dense (vectors)" in english.html


def test_library_errors_become_visible_messages_not_exceptions(backend: ChatBackend) -> None:
    reply = backend.reply("   ", [], k=3)
    assert (
        reply.error and "问题不能为空" in reply.html and 'class="nq-reply nq-error"' in reply.html
    )
    assert reply.to_dict()["hits"] == [] and reply.query == ""


def test_errors_are_recognised_by_type_not_by_their_english_text(backend: ChatBackend) -> None:
    hinted = backend.message(QuestionError("the question is empty"))
    assert hinted.startswith("问题无法检索") and "the question is empty" in hinted
    assert backend.message(RagError("the question is empty")) == "the question is empty"
    chinese = "问题里没有可以检索的词 (the question has no word to search for)"
    assert backend.message(QuestionError(chinese)) == chinese  # already Chinese: as is


def test_uploads_report_added_titles_and_refused_files(
    backend: ChatBackend, fake: FakeRetriever, tmp_path: Path
) -> None:
    good = tmp_path / "good.txt"
    good.write_text("# 新文章\n\n正文。\n", encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\0\1\2")
    result = backend.add_files([str(good), str(bad)])
    assert result.added == [("good.txt", ["新文章"])]
    assert result.failed == [("bad.txt", "looks like a binary file (NUL bytes), skipped")]
    assert "已加入 good.txt：《新文章》" in result.summary()
    assert "未能加入 bad.txt" in result.summary() and "bad.txt" not in fake.files


def test_uploaded_temp_copies_are_deleted_but_nothing_outside_the_upload_folder(
    backend: ChatBackend, fake: FakeRetriever, tmp_path: Path
) -> None:
    uploads = tmp_path / "gradio"
    (uploads / "0a1b").mkdir(parents=True)
    temp_copy = uploads / "0a1b" / "new.txt"
    temp_copy.write_text("# 新文章\n\n正文。\n", encoding="utf-8")
    own = tmp_path / "own.txt"
    own.write_text("# 自己的\n\n正文。\n", encoding="utf-8")
    linked = uploads / "link.txt"  # a link in the folder to a file outside it
    linked.symlink_to(own)
    result = backend.add_files([str(temp_copy), str(own), str(linked)], temp_folder=uploads)
    assert [name for name, _ in result.added] == ["new.txt", "own.txt", "link.txt"]
    assert not temp_copy.exists() and not (uploads / "0a1b").exists() and uploads.is_dir()
    assert own.is_file() and linked.is_symlink()  # never deleted, nor followed
    kept = tmp_path / "kept.txt"
    kept.write_text("# 留下\n\n正文。\n", encoding="utf-8")
    backend.add_files([str(kept)])  # without an upload folder nothing is deleted
    assert kept.is_file()


def test_status_reports_the_library_once_ready(backend: ChatBackend, fake: FakeRetriever) -> None:
    backend.service.get(timeout=5)
    assert fake.warmed_up  # "ready" means a first question is answered at full speed
    status = backend.status()
    assert status["ready"] and status["files"] == 1 and status["mode"] == "lexical"
    assert "已就绪" in backend.status_text() and "「关键词」" in backend.status_text()
    assert not re.search("[A-Za-z]{2,}", backend.status_text())  # no English on the zh page
    assert "Ready" in backend.status_text("en") and "lexical" in backend.status_text("en")


def test_a_failed_opening_is_shown_and_questions_get_the_reason() -> None:
    def broken() -> Any:
        raise RagError("corpus folder not found: /nowhere")

    backend = ChatBackend(RetrieverService(broken).start())
    with pytest.raises(RagError):
        backend.service.get(timeout=5)
    assert "无法打开索引" in backend.status_text() and "/nowhere" in backend.status_text()
    reply = backend.reply("问题？", [], 5)
    assert "corpus folder not found" in reply.html and backend.articles() == []


def _still_opening(fake: FakeRetriever) -> tuple[RetrieverService, threading.Event]:
    """A service building its index until the event is set, then handing out ``fake``."""
    gate = threading.Event()

    def slow() -> Any:
        gate.wait(10)
        return fake

    return RetrieverService(slow, building=True).start(), gate


def test_questions_asked_while_the_index_builds_get_a_notice_then_the_answer(
    fake: FakeRetriever,
) -> None:
    from ui.app import Handlers

    service, gate = _still_opening(fake)
    handlers = Handlers(ChatBackend(service))
    assert "首次启动" in handlers.backend.status_text()
    assert handlers.backend.articles() == []
    conversation = Conversation()
    conversation.ask("宝泰隆一矿的设计产能是多少？", 3)
    steps = handlers.answer_queue(conversation)
    messages = next(steps)
    assert "nq-notice" in messages[-1]["content"] and conversation.queries == []
    gate.set()
    messages = next(steps)
    assert "nq-answer" in messages[-1]["content"] and len(messages) == 2
    assert conversation.queries == ["宝泰隆一矿的设计产能是多少？"]
    assert "已就绪" in handlers.backend.status_text()


def test_the_status_line_counts_the_files_of_a_running_build_in_the_page_language(
    fake: FakeRetriever,
) -> None:
    from tqdm import tqdm

    from rag import PROGRESS_DESC

    service, gate = _still_opening(fake)
    backend = ChatBackend(service)
    with tqdm(total=600, desc=PROGRESS_DESC, disable=False) as bar:
        bar.update(150)
        zh, en = backend.status_text(), backend.status_text("en")
    gate.set()
    assert "已处理 150/600 个文件" in zh and not re.search("[A-Za-z]{2,}", zh)
    assert "150/600 files done" in en


def test_questions_sent_while_one_is_answered_are_queued_and_answered_in_order(
    backend: ChatBackend, fake: FakeRetriever
) -> None:
    from ui.app import Handlers

    handlers = Handlers(backend)
    conversation = Conversation()
    messages, _ = handlers.take_question("  项目总投资是多少？ ", conversation, 2, "dense")
    assert messages == [{"role": "user", "content": "项目总投资是多少？"}]
    answering = handlers.answer_queue(conversation)
    first = next(answering)  # the first reply is out; two more questions are sent meanwhile
    assert [m["role"] for m in first] == ["user", "assistant"]
    handlers.take_question("那它的总投资呢？", conversation, 3, "")
    shown, _ = handlers.take_question("<b>第三个问题？</b>", conversation, 4, "")
    assert [m["role"] for m in shown] == ["user", "assistant", "user", "user"]
    assert shown[-1]["content"] == "&lt;b&gt;第三个问题？&lt;/b&gt;"  # escaped
    # their own events find the queue being answered and leave the chat alone
    assert [type(update).__name__ for update in handlers.answer_queue(conversation)] == ["dict"]
    rest = list(answering)
    assert [m["role"] for m in rest[-1]] == ["user", "assistant"] * 3
    assert fake.modes == ["dense", None, None]  # each with the settings it was sent with
    assert fake.queries[1] != "那它的总投资呢？"  # resolved against the first question
    assert len(conversation.queries) == 3 and conversation.answerer is None
    assert "nq-answer" in rest[-1][-1]["content"]
    assert [type(update).__name__ for update in handlers.answer_queue(conversation)] == ["dict"]


def test_an_empty_question_is_not_queued_and_a_new_conversation_starts_over(
    backend: ChatBackend, fake: FakeRetriever
) -> None:
    from ui.app import Handlers
    from ui.chat import EMPTY_HINT

    handlers = Handlers(backend)
    conversation = Conversation()
    for blank in ("", "  \n ", None):
        chat, hint = handlers.take_question(blank, conversation)  # type: ignore[arg-type]
        assert hint.value == EMPTY_HINT and hint.visible and conversation.turns == []
    handlers.take_question("项目总投资是多少？", conversation)
    ask = fake.ask

    def cleared_meanwhile(question: str, k: int | None = None, mode: str | None = None) -> Answer:
        assert handlers.new_conversation(conversation) == []  # "新对话" while answering
        return ask(question, k, mode)

    fake.ask = cleared_meanwhile  # type: ignore[method-assign]
    assert list(handlers.answer_queue(conversation)) == [[]]  # the late reply is dropped
    assert conversation.queries == [] and fake.queries == ["项目总投资是多少？"]


def test_the_default_library_is_a_writable_copy_of_the_seeds(isolated_cache: Path) -> None:
    config = chat_config(Config())
    assert config.corpus == default_library_dir().resolve()
    assert default_library_dir().parent == isolated_cache
    assert sorted(p.name for p in config.corpus.iterdir()) == sorted(
        p.name for p in SEEDS.iterdir()
    )
    (config.corpus / "extra.txt").write_text("x", encoding="utf-8")
    assert ensure_library(config.corpus) is False  # an existing library is left alone
    assert (config.corpus / "extra.txt").exists()
    custom = Config(corpus_dir=SEEDS)
    assert chat_config(custom) is custom


def test_the_app_publishes_ask_upload_and_status(fake: FakeRetriever) -> None:
    from ui.app import build_app

    app = build_app(lambda: fake)  # type: ignore[arg-type,return-value]
    endpoints = set(app.get_api_info()["named_endpoints"])
    assert {"/ask", "/status", "/upload"} <= endpoints
    assert not any("take_question" in name or "answer" in name for name in endpoints)


# ----------------------------------------------------------------------------- the API, fast


@dataclass(frozen=True)
class Api:
    """The chat's HTTP API, spoken as a program does (Gradio's ``/gradio_api/call/<name>``).

    Plain ``httpx`` rather than ``gradio_client``, whose ``Client`` starts a telemetry
    thread to huggingface.co (see tests/test_offline.py): the fast tier stays offline.
    """

    url: str
    corpus: Path
    http: httpx.Client

    def submit(self, name: str, *data: Any) -> str:
        """Queue a call of endpoint ``/name`` (the server starts it at once); its event id."""
        return submit_call(self.http, name, *data)

    def result(self, name: str, event_id: str) -> tuple[str, Any]:
        """``(event, data)`` at the end of a submitted call: "complete" or "error"."""
        return call_result(self.http, name, event_id)

    def call(self, name: str, *data: Any) -> Any:
        """The outputs of a completed call (fails on a Gradio error event)."""
        event, outputs = self.result(name, self.submit(name, *data))
        assert event == "complete", outputs
        return outputs

    def ask(self, question: Any, history: Any = (), k: Any = 5, mode: Any = "") -> dict[str, Any]:
        reply: dict[str, Any] = self.call("ask", question, list(history), k, mode)[0]
        return reply

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.call("status")[0]
        return status

    def upload(self, *files: Path) -> list[str]:
        """Upload ``files`` as the page's upload button does: summary, article list, status."""
        sent = []
        for path in files:
            with path.open("rb") as handle:
                stored = self.http.post("gradio_api/upload", files={"files": (path.name, handle)})
            stored.raise_for_status()
            sent.append(
                {
                    "path": stored.json()[0],
                    "orig_name": path.name,
                    "meta": {"_type": "gradio.FileData"},
                }
            )
        outputs: list[str] = self.call("upload", sent)
        return outputs


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The chat as ``newsqa chat --folder <copy of the seeds> --embedder hash`` serves it."""
    with served_seed_chat(tmp_path_factory.mktemp("api-server")) as (url, corpus, _, http):
        yield Api(url, corpus, http)


def test_the_api_answers_and_resolves_a_follow_up_from_its_history(api: Api) -> None:
    first = api.ask(AREA, [], 5)
    assert first["question"] == first["query"] == AREA and not first["error"]
    assert [hit["rank"] for hit in first["hits"]] == [1, 2, 3, 4, 5]
    assert first["hits"][0]["file"] == AREA_FILE and first["mode"] == "hybrid"
    assert first["citation"] == first["hits"][0]["ref"] and first["citation"].startswith(
        f"{AREA_FILE}:"
    )
    assert "检索语句" not in first["html"]

    follow = api.ask("那它的总投资呢？", [first["query"]], 3)
    resolved = "七台河冰雪经济产业园研创中心项目的总投资是多少"
    assert follow["question"] == "那它的总投资呢？" and follow["query"] == resolved
    assert f"检索语句：{resolved}" in follow["html"]
    assert len(follow["hits"]) == 3 and follow["hits"][0]["file"] == AREA_FILE


def test_a_mode_asked_through_the_api_is_used_for_that_question_only(api: Api) -> None:
    replies = {mode: api.ask(AREA, [], 3, mode) for mode in ("", "dense", "lexical")}
    assert [reply["mode"] for reply in replies.values()] == ["hybrid", "dense", "lexical"]
    assert "检索方式" not in replies[""]["html"]
    assert "检索方式：向量" in replies["dense"]["html"]
    assert "检索方式：关键词" in replies["lexical"]["html"]
    scores = {tuple(hit["score"] for hit in reply["hits"]) for reply in replies.values()}
    assert len(scores) == 3  # each mode searched its own way, not just named
    assert api.ask(AREA, [], 3)["hits"] == replies[""]["hits"]  # the library's mode again


@pytest.mark.parametrize(
    ("question", "history", "k", "mode", "error"),
    [
        ("   ", [], 5, "", "问题不能为空"),
        (None, [], 5, "", "问题必须是文字"),
        (AREA, "七台河", 5, "", "history must be a list"),
        (AREA, [], K_MAX + 1, "", f"from {K_MIN} to {K_MAX}"),
        (AREA, [], 5, "semantic", "mode must be one of"),
    ],
    ids=["blank", "null", "history", "k", "mode"],
)
def test_bad_api_calls_get_an_error_reply_not_a_failed_call(
    api: Api, question: Any, history: Any, k: Any, mode: Any, error: str
) -> None:
    event, outputs = api.result("ask", api.submit("ask", question, history, k, mode))
    assert event == "complete", outputs  # a reply the client can show, not a Gradio error
    reply = outputs[0]
    assert error in reply["error"] and error in reply["html"] and "nq-error" in reply["html"]
    assert reply["hits"] == [] and reply["found"] is False and reply["citation"] == ""


def _cited(reply: dict[str, Any]) -> tuple[Any, ...]:
    """What a reply answers and cites (scores aside)."""
    hits = tuple((hit["ref"], hit["chunk_id"], hit["sentence"]) for hit in reply["hits"])
    return reply["question"], reply["query"], reply["found"], reply["citation"], hits


def test_ten_questions_asked_at_once_each_get_their_own_cited_reply(api: Api) -> None:
    alone = {question: api.ask(question, [], 3) for question, _, _ in SEED_ANSWERS}
    # all queued before any result is read: the server answers them side by side
    events = [api.submit("ask", question, [], 3, "") for question, _, _ in SEED_ANSWERS]
    results = [api.result("ask", event) for event in events]
    # (which article comes first is the ranking's business, tested with the real model)
    for (question, _, _), (event, outputs) in zip(SEED_ANSWERS, results, strict=True):
        assert event == "complete", outputs
        reply = outputs[0]
        assert not reply["error"] and reply["hits"], (question, reply)
        assert _cited(reply) == _cited(alone[question])


def test_an_api_upload_is_cited_at_once_and_a_bad_file_changes_nothing(
    api: Api, tmp_path: Path
) -> None:
    question = "北极村首场降雪有多厚？"
    assert not api.ask(question, [], 3)["citation"].startswith("mohe_first_snow.txt:")
    article = tmp_path / "mohe_first_snow.txt"
    article.write_text(
        "# 漠河北极村迎来首场降雪\n\n本报讯（记者丁一）漠河北极村今年首场降雪厚度达到十八厘米，"
        "游客纷纷前来赏雪。\n",
        encoding="utf-8",
    )
    broken = tmp_path / "broken.txt"
    broken.write_bytes(bytes(range(256)) * 8)
    before = api.status()
    summary, articles, _ = api.upload(article, broken)
    assert "已加入 mohe_first_snow.txt：《漠河北极村迎来首场降雪》" in summary
    assert "未能加入 broken.txt" in summary
    assert "漠河北极村迎来首场降雪" in articles
    after = api.status()
    assert (after["files"], after["articles"]) == (before["files"] + 1, before["articles"] + 1)
    assert (api.corpus / article.name).is_file() and not (api.corpus / broken.name).exists()
    reply = api.ask(question, [], 3)
    assert reply["citation"].startswith("mohe_first_snow.txt:") and "十八厘米" in reply["sentence"]


# ----------------------------------------------------------------------------- real app


@dataclass(frozen=True)
class Server:
    url: str
    corpus: Path
    log: Path


def _wait_ready(server: Server, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll the status API until the index is open (fail with the server log if it dies)."""
    from gradio_client import Client

    deadline = time.monotonic() + timeout
    client = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"chat server exited:\n{server.log.read_text()[-3000:]}")
        try:
            client = client or Client(server.url, verbose=False)
            status = client.predict(api_name="/status")
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(1)
            continue
        if status["error"]:
            pytest.fail(f"chat server cannot open the index: {status['error']}")
        if status["ready"]:
            return
        time.sleep(1)
    pytest.fail(f"chat server not ready after {timeout} s:\n{server.log.read_text()[-3000:]}")


def _remember_index(pytestconfig: pytest.Config, index: Path) -> None:
    """Keep the freshly opened seed index in pytest's cache so later runs skip the build."""
    cache = getattr(pytestconfig, "cache", None)
    if cache is None:
        return
    target = cache.mkdir("newsqa-ui-seed-index")
    staging = target.with_name(target.name + ".part")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(index, staging)
    shutil.rmtree(target)
    staging.rename(target)


def _remembered_index(pytestconfig: pytest.Config) -> Path | None:
    cache = getattr(pytestconfig, "cache", None)
    if cache is None:
        return None
    path = cache.mkdir("newsqa-ui-seed-index")
    return path if (path / "manifest.json").is_file() else None


@pytest.fixture(scope="module")
def server(
    model_cache: Path, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Server]:
    """``newsqa chat`` in a subprocess over a private copy of the seeds, on a free port."""
    root = tmp_path_factory.mktemp("chat-server")
    corpus, index, cache = root / "corpus", root / "index", root / "cache"
    shutil.copytree(SEEDS, corpus)
    remembered = _remembered_index(pytestconfig)
    if remembered is not None:
        shutil.copytree(remembered, index)
    (cache / "models").mkdir(parents=True)
    for entry in (model_cache / "models").iterdir():
        (cache / "models" / entry.name).symlink_to(entry.resolve())
    port = free_port()
    info = Server(f"http://127.0.0.1:{port}/", corpus, root / "server.log")
    command = [sys.executable, "-m", "rag.cli", "chat", "--folder", str(corpus)]
    command += ["--index-dir", str(index), "--port", str(port)]
    env = {**os.environ, "NEWSQA_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    with info.log.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(info, process, timeout=420)
        _remember_index(pytestconfig, index)
        yield info
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (set NEWSQA_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A fresh page on the chat, ready to ask; fails the test on any JavaScript dialog."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(server.url)
    expect(page.locator("#nq-status")).to_contain_text("已就绪", timeout=60_000)
    yield page
    context.close()
    assert not dialogs, f"the page opened dialogs: {dialogs}"


def upload_in_page(page: Any, *files: Path) -> str:
    """Upload ``files`` with the upload button; return the upload status text."""
    from playwright.sync_api import expect

    status = page.locator("#nq-upload-status")
    with page.expect_file_chooser() as chooser:
        page.locator("#nq-upload").click()
    chooser.value.set_files([str(f) for f in files])
    expect(status).to_contain_text(files[-1].name, timeout=60_000)
    return str(status.inner_text())


def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    """Save a screenshot under the test's output folder (and ``$NEWSQA_UI_SCREENS``)."""
    out = tmp_path / "test-output"
    out.mkdir(exist_ok=True)
    path = out / name
    page.screenshot(path=str(path), full_page=True)
    if SCREENS_COPY:
        shutil.copy(path, Path(SCREENS_COPY) / name)
    return path


def expect_answer_in_view(page: Any, reply: Any) -> None:
    """The chat shows the reply's answer, not the bottom of its last passage (the chat
    scrolls inside its own box, which clips what is outside it)."""
    from playwright.sync_api import expect

    expect(reply.locator(".nq-answer")).to_be_in_viewport(ratio=1)
    expect(page.locator("#nq-chat .user-row").last).to_be_in_viewport()


def first_cite(reply: Any) -> str:
    return str(reply.locator(".nq-cite").first.inner_text())


@pytest.mark.slow
def test_browser_question_follow_up_and_upload(page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    reply = ask_in_page(page, AREA)
    assert first_cite(reply).startswith(f"{AREA_FILE}:")
    expect(reply.locator(".nq-title").first).to_contain_text("七台河 锤炼作风强动能")
    expect(reply.locator(".nq-answer")).to_contain_text("[1]")
    assert reply.locator(".nq-hit").count() == 5
    # the quoted answer and the first passage are highlighted, the answer span in bold
    assert reply.locator("mark").count() >= 2
    expect(reply.locator(".nq-hit").first.locator("mark strong.nq-span").first).to_contain_text(
        "2800"
    )
    expect(reply.locator(".nq-hit").first).to_contain_text("2800平方米")
    expect_answer_in_view(page, reply)
    screenshot(page, tmp_path, "1-question.png")

    follow = ask_in_page(page, "那它的总投资呢？")
    expect(follow.locator(".nq-query")).to_contain_text(
        "检索语句：七台河冰雪经济产业园研创中心项目的总投资是多少"
    )
    cited = follow.locator(".nq-hit", has_text="总投资1000万元")
    expect(cited.first).to_be_attached()
    assert cited.first.locator(".nq-cite").inner_text().startswith(f"{AREA_FILE}:")
    expect_answer_in_view(page, follow)
    screenshot(page, tmp_path, "2-follow-up.png")

    article = tmp_path / "mohe_first_snow.txt"
    article.write_text(
        "# 漠河北极村迎来首场降雪\n\n本报讯（记者丁一）漠河北极村今年首场降雪厚度达到十八厘米，"
        "游客纷纷前来赏雪。\n",
        encoding="utf-8",
    )
    assert "已加入 mohe_first_snow.txt：《漠河北极村迎来首场降雪》" in upload_in_page(page, article)
    uploaded = ask_in_page(page, "北极村首场降雪有多厚？")
    assert first_cite(uploaded).startswith("mohe_first_snow.txt:")
    expect(uploaded.locator(".nq-answer")).to_contain_text("十八厘米")
    expect_answer_in_view(page, uploaded)
    screenshot(page, tmp_path, "3-upload.png")


@pytest.mark.slow
def test_html_in_an_uploaded_article_is_shown_as_text(page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    article = tmp_path / "ice_lantern.txt"
    article.write_text(
        f"# 松花江冰灯节开幕\n\n本报讯{INJECTION}松花江冰灯节今年共使用冰块四万三千立方米。\n",
        encoding="utf-8",
    )
    upload_in_page(page, article)
    reply = ask_in_page(page, "松花江冰灯节使用了多少立方米冰块？")
    assert first_cite(reply).startswith("ice_lantern.txt:")
    expect(reply.locator(".nq-hit").first).to_contain_text(INJECTION)  # visible, as text
    assert reply.locator("script").count() == 0
    assert reply.locator(".nq-hit b, .nq-answer b").count() == 0
    screenshot(page, tmp_path, "4-escaped-html.png")


@pytest.mark.slow
def test_an_example_click_asks_it_with_the_chosen_number_of_passages(page: Any) -> None:
    from playwright.sync_api import expect

    slider = page.locator("#nq-k input[type=number]")
    slider.fill("2")
    slider.press("Enter")
    replies = page.locator("#nq-chat .nq-reply")
    page.locator("#nq-examples").get_by_text("How many wind turbine sites").click()
    expect(replies).to_have_count(1, timeout=60_000)
    reply = replies.first
    expect(reply.locator(".nq-heading")).to_have_text("Sources")
    assert reply.locator(".nq-hit").count() == 2
    files = [str(cite.inner_text()) for cite in reply.locator(".nq-cite").all()]
    assert any(f.startswith("003_80151df246a9c92a.txt:") for f in files), files
    expect(reply.locator(".nq-answer")).to_contain_text("614个风机点位")


@pytest.mark.slow
def test_the_retrieval_mode_can_be_picked_in_the_settings(page: Any) -> None:
    from playwright.sync_api import expect

    page.locator("#nq-mode").get_by_text("关键词", exact=True).click()
    reply = ask_in_page(page, "宝泰隆一矿的设计产能是多少？")
    expect(reply.locator(".nq-mode")).to_have_text("检索方式：关键词")
    expect(reply.locator(".nq-answer")).to_contain_text("90万吨")
    page.locator("#nq-mode").get_by_text("混合", exact=True).click()
    again = ask_in_page(page, "宝泰隆一矿的设计产能是多少？")
    expect(again.locator(".nq-answer")).to_contain_text("90万吨")
    assert again.locator(".nq-mode").count() == 0  # the library's own mode is not named


@pytest.mark.slow
def test_a_bad_upload_is_refused_visibly_and_changes_nothing(
    page: Any, server: Server, tmp_path: Path
) -> None:
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    before = client.predict(api_name="/status")["articles"]
    broken = tmp_path / "broken.txt"
    broken.write_bytes(bytes(range(256)) * 8)
    assert "未能加入 broken.txt" in upload_in_page(page, broken)
    assert client.predict(api_name="/status")["articles"] == before
    assert not (server.corpus / "broken.txt").exists()
    screenshot(page, tmp_path, "5-refused-upload.png")


@pytest.mark.slow
def test_the_real_model_answers_ten_questions_asked_at_once_with_correct_citations(
    server: Server,
) -> None:
    """The real model on the queue's concurrent workers finds each answering passage.

    The reply contract under concurrency is checked fast, on the hash embedder; this one
    is about the model's answers when several questions are embedded at once.
    """
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    started = time.monotonic()
    jobs = [client.submit(question, [], 3, api_name="/ask") for question, _, _ in SEED_ANSWERS]
    results = [job.result(timeout=120) for job in jobs]
    elapsed = time.monotonic() - started
    for (question, file, answer), result in zip(SEED_ANSWERS, results, strict=True):
        assert result["question"] == question and not result["error"]
        assert any(answer in hit["text"] and hit["file"] == file for hit in result["hits"]), (
            question,
            result["hits"],
        )
    print(f"10 concurrent questions answered in {elapsed:.1f} s")


# ----------------------------------------------------------------------------- the page, fast
# The real page in Chromium, served by the fast ``api`` fixture (hash embedder): what the
# page does with questions and how it looks, not what the model finds.


@pytest.fixture()
def open_page(browser: Any, api: Api) -> Iterator[Any]:
    """Open the chat (``scheme``: "light" or "dark") once it is ready; fails on dialogs."""
    from playwright.sync_api import expect

    contexts: list[Any] = []
    dialogs: list[str] = []

    def refuse(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    def opener(scheme: str = "light") -> Any:
        context = browser.new_context(
            viewport={"width": 1400, "height": 1000}, color_scheme=scheme, locale="zh-CN"
        )
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", refuse)
        page.goto(f"{api.url}?__theme={scheme}")
        expect(page.locator("#nq-status")).to_contain_text("已就绪", timeout=30_000)
        return page

    yield opener
    for context in contexts:
        context.close()
    assert not dialogs, f"the page opened dialogs: {dialogs}"


@pytest.mark.slow
def test_questions_sent_back_to_back_are_shown_at_once_and_all_answered_in_order(
    open_page: Any, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three questions sent while the first reply is pending: none is dropped."""
    from playwright.sync_api import expect

    from rag import Retriever

    asked = [SEED_ANSWERS[0], SEED_ANSWERS[2], SEED_ANSWERS[4]]  # three different articles
    alone = {question: api.ask(question, [], 5)["hits"][0] for question, _, _ in asked}
    answer = Retriever.ask

    def slowly(self: Retriever, *args: Any, **kwargs: Any) -> Answer:
        time.sleep(0.6)  # each reply pending long enough for the next questions to be sent
        return answer(self, *args, **kwargs)

    monkeypatch.setattr(Retriever, "ask", slowly)
    page = open_page()
    box = page.locator("#nq-question textarea")
    replies = page.locator("#nq-chat .nq-reply:not(.nq-notice)")
    started = time.monotonic()
    for question, _, _ in asked:
        box.fill(question)
        box.press("Enter")
        expect(box).to_have_value("", timeout=5_000)  # sent: the box is free for the next
    sent = time.monotonic() - started
    # one element per message (the chat groups a role's consecutive messages in one row)
    questions = page.locator('#nq-chat [data-testid="user"]')
    expect(questions).to_have_count(3, timeout=5_000)
    shown = time.monotonic() - started
    assert sent < 1.2 and shown < 1.5, (sent, shown)  # shown before the replies (0.6 s each)
    expect(replies).to_have_count(3, timeout=30_000)
    messages = page.locator('#nq-chat [data-testid="user"], #nq-chat [data-testid="bot"]')
    expect(messages).to_have_count(6)
    for i, (question, file, _) in enumerate(asked):
        expect(messages.nth(2 * i)).to_have_attribute("data-testid", "user")
        expect(messages.nth(2 * i)).to_have_text(question)
        reply = messages.nth(2 * i + 1).locator(".nq-reply")
        assert "检索语句" not in reply.inner_text()  # searched as asked, not as a follow-up
        assert first_cite(reply) == alone[question]["ref"] and alone[question]["file"] == file
    assert box.input_value() == ""


@pytest.mark.slow
def test_an_empty_question_leaves_a_hint_under_the_box(open_page: Any) -> None:
    from playwright.sync_api import expect

    page = open_page()
    box = page.locator("#nq-question textarea")
    hint = page.locator("#nq-hint")
    for blank in ("", "   \n  "):
        box.fill(blank)
        box.press("Enter")
        expect(hint).to_be_visible(timeout=5_000)
        expect(hint).to_contain_text("请输入问题")
    page.locator("#nq-ask").click()
    page.wait_for_timeout(1_500)  # stays: not a toast that fades
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("请输入问题")
    assert page.locator('#nq-chat [data-testid="user"]').count() == 0  # nothing was sent
    box.fill(AREA)
    box.press("Enter")
    expect(page.locator("#nq-chat .nq-reply:not(.nq-notice)")).to_have_count(1, timeout=30_000)
    expect(hint).to_be_hidden()


def _luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0-255 channels)."""

    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(css_a: str, css_b: str) -> float:
    """WCAG contrast ratio of two opaque computed CSS colours (``rgb(...)``)."""
    values = []
    for css in (css_a, css_b):
        parts = [float(p) for p in re.findall(r"[\d.]+", css)]
        assert len(parts) == 3 or (len(parts) == 4 and parts[3] == 1), f"not opaque: {css}"
        values.append(_luminance((parts[0], parts[1], parts[2])))
    light, dark = max(values), min(values)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_highlighted_answering_sentence_is_readable_in_both_themes(
    open_page: Any, scheme: str
) -> None:
    from playwright.sync_api import expect

    page = open_page(scheme)
    dark = page.evaluate("() => document.body.classList.contains('dark')")
    assert dark == (scheme == "dark")  # the page really is in that theme
    box = page.locator("#nq-question textarea")
    box.fill(AREA)
    box.press("Enter")
    reply = page.locator("#nq-chat .nq-reply").last
    expect(reply).to_be_visible(timeout=30_000)
    # The hash embedder's scores may not reach the answer threshold, and only answers
    # are highlighted: style a highlight inside the real reply to read the page's CSS.
    reply.evaluate(
        "e => { if (!e.querySelector('mark')) { const m = document.createElement('mark');"
        " m.textContent = '五大连池市选取了614个风机点位。'; e.appendChild(m); } }"
    )
    mark = reply.locator("mark").first
    expect(mark).to_be_visible()
    text, background = mark.evaluate(
        "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]"
    )
    ratio = _contrast(text, background)
    assert ratio >= 4.5, f"{scheme}: {text} on {background} is {ratio:.2f}:1"


# ----------------------------------------------------------------------------- reading room
# The article panel's data, the kept conversations, feedback and the page's language, fast;
# the same in Chromium is tests/test_reading_room.py.

SNOW = "# 漠河北极村迎来首场降雪\n\n本报讯（记者丁一）漠河北极村今年首场降雪厚度达到十八厘米。\n\n"


@pytest.fixture()
def small_library(tmp_path: Path) -> Any:
    """A retriever (hash embedder) over two small articles, one with HTML in its text."""
    from rag import Retriever

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    long = "".join(f"第{i}段：游客们在北极村赏雪，气温零下{i}度。" for i in range(1, 30))
    (corpus / "snow.txt").write_text(SNOW + long + "\n", encoding="utf-8")
    (corpus / "lantern.txt").write_text(
        f"# 冰灯节开幕\n\n本报讯{INJECTION}冰灯节今年共使用冰块四万三千立方米。\n", encoding="utf-8"
    )
    config = Config(corpus_dir=corpus, index_dir=tmp_path / "index", embedder="hash")
    return Retriever.from_config(config)


def test_an_article_is_rebuilt_whole_and_found_by_its_id_only(small_library: Any) -> None:
    from rag import InvalidArgumentError
    from ui.article import render_article

    hits = small_library.retrieve("北极村首场降雪有多厚？", 5)
    snow = [hit for hit in hits if hit.citation.file == "snow.txt"]
    article = small_library.article(article_id(snow[0].chunk_id))
    assert article.title == "漠河北极村迎来首场降雪" and article.file == "snow.txt"
    assert len(article.passages) > 1  # the whole article, not one passage
    for hit in snow:  # every cited passage sits at its offsets in the rebuilt text
        c = hit.citation
        assert article.text[c.start : c.end] == hit.text
    for unknown in ("0123456789ab", "snow.txt", "../corpus/snow.txt", ""):
        with pytest.raises(InvalidArgumentError):
            small_library.article(unknown)
    lantern = small_library.retrieve("冰灯节使用了多少立方米冰块？", 1)[0]
    html = render_article(small_library.article(article_id(lantern.chunk_id)))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'data-passages="[{&quot;loc&quot;: &quot;3&quot;' in html


def test_citation_links_name_the_locator_and_the_sentence_offsets(small_library: Any) -> None:
    from ui.render import article_href, locator

    hit = small_library.retrieve("北极村首场降雪有多厚？", 1)[0]
    c = hit.citation
    assert locator(c) == str(c).removeprefix(f"{c.file}:")
    href = article_href(hit)
    start = c.start + hit.sentence_start
    assert href == (
        f"article/{article_id(hit.chunk_id)}#{locator(c)}&s={start}-{c.start + hit.sentence_end}"
        + (f"&a={c.start + hit.answer_start}-{c.start + hit.answer_end}" if hit.answer else "")
    )
    assert "&s=" not in article_href(hit, marked=False)


def test_the_browser_language_picks_the_page_words() -> None:
    from ui.strings import UI, preferred_language

    assert set(UI["zh"]) == set(UI["en"])
    for header, lang in [
        (None, "zh"),
        ("", "zh"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9", "en"),
        ("en-GB,zh;q=0.5", "en"),
        ("fr-FR,de;q=0.5", "zh"),  # neither: Chinese, the default
        ("zh;q=0.4,en;q=0.6", "en"),
        ("en;q=0,zh-TW", "zh"),
        ("garbage;;,", "zh"),
    ]:
        assert preferred_language(header) == lang, header


def test_kept_conversations_are_saved_renamed_deleted_and_exported() -> None:
    from ui import history as kept

    turn = {"question": "宝泰隆一矿的设计产能是多少？", "html": "<div>x</div>", "query": "q"}
    turn["markdown"] = "**问题**：宝泰隆一矿的设计产能是多少？\n[1] · [阅读全文](article/abc#49)\n"
    data = kept.saved(None, "one", [turn])
    data = kept.saved(data, "two", [])  # an empty conversation is current, not listed
    assert data["current"] == "two" and [i["id"] for i in data["items"]] == ["one"]
    data = kept.saved(data, "two", [{**turn, "question": "第二个"}])
    assert [i["id"] for i in data["items"]] == ["two", "one"]  # newest first
    assert kept.choices(data) == [
        ("第二个 · 1", "two"),
        ("宝泰隆一矿的设计产能是多少？ · 1", "one"),
    ]
    data = kept.renamed(data, "one", "  采访 \n 笔记 ")
    assert kept.find(data, "one")["title"] == "采访 笔记"
    markdown = kept.to_markdown(kept.find(data, "one"), "http://host:7860/")
    assert markdown.startswith("# 采访 笔记\n") and "(http://host:7860/article/abc#49)" in markdown
    data = kept.deleted(data, "two")
    assert data["current"] == "one" and len(data["items"]) == 1
    assert kept.cleaned({"items": [{"id": 3}, "x", {"id": "ok", "turns": [1, {}]}]}) == {
        "current": "",
        "items": [{"id": "ok", "title": "", "updated": 0, "turns": []}],
    }
    assert kept.cleaned("not a history") == kept.empty_history()
    many = None
    for n in range(kept.MAX_CONVERSATIONS + 5):
        many = kept.saved(many, f"c{n}", [turn])
    assert len(many["items"]) == kept.MAX_CONVERSATIONS and many["items"][0]["id"] == "c34"


def test_a_conversation_comes_back_as_it_was_and_follow_ups_resolve(
    backend: ChatBackend, fake: FakeRetriever
) -> None:
    from ui.app import Handlers

    handlers = Handlers(backend)
    conversation = Conversation()
    handlers.take_question(AREA, conversation, 3)
    list(handlers.answer_queue(conversation))
    history, _ = handlers.save_history(conversation, None)
    assert history["current"] == conversation.id and history["items"][0]["turns"][0]["markdown"]
    reloaded = Conversation()  # the page reloaded: a new session
    messages, _ = handlers.restore_history(reloaded, history)
    assert messages == conversation.messages() and reloaded.id == conversation.id
    handlers.take_question("那它的总投资呢？", reloaded, 3)
    list(handlers.answer_queue(reloaded))
    assert fake.queries[-1] == "七台河冰雪经济产业园研创中心项目的总投资是多少"


def test_copy_and_export_text_holds_the_full_citations() -> None:
    from ui.render import render_markdown

    top = replace(make_hit("前文。项目总投资9亿元。后文。", "项目总投资9亿元。"), answer_start=5)
    top = replace(top, answer_end=8, citation=replace(top.citation, date="2025-10-20"))
    other = make_hit("另一篇：投资8亿元。", rank=2, file="b.txt", title="第二篇")
    answer = Answer("项目总投资是多少", [top, other], found=True)
    text = render_markdown(answer, "总投资呢？", links=False)
    assert "**问题**：总投资呢？" in text and "检索语句：项目总投资是多少" in text
    assert "**答案**：“项目总投资9亿元。” [1]" in text
    assert "[1] 《标题》 · 本报记者 张三 · 2025-10-20 · `a.txt:3-4` · 答案" in text
    assert "[2] 《第二篇》" in text and "`b.txt:3-4`" in text and "article/" not in text
    linked = render_markdown(answer, "总投资呢？")
    assert f"[阅读全文](article/{article_id('a.txt#0:0')}#3-4&s=3-12&a=5-8)" in linked


def test_feedback_becomes_lines_newsqa_eval_reads(small_library: Any, tmp_path: Path) -> None:
    from eval.qa import load_jsonl
    from rag import InvalidArgumentError
    from ui.feedback import FeedbackStore, feedback_entry, feedback_path, reply_payload

    answer = small_library.ask("北极村首场降雪有多厚？", 3, "lexical")
    payload = reply_payload("0123456789ab", "有多厚？", answer)
    path = feedback_path(small_library.config)
    assert path.parent == small_library.config.index_path.parent
    assert not path.resolve().is_relative_to(small_library.config.corpus)
    store = FeedbackStore(lambda: path)
    up = feedback_entry(small_library, payload, "up")
    assert up is not None and up["question"] == answer.question and up["asked"] == "有多厚？"
    assert up["doc"] == "snow.txt" and "十八厘米" in up["evidence"]
    store.write(up)
    assert feedback_entry(small_library, payload, "down") is None  # not a test item yet
    store.write(feedback_entry(small_library, payload, "down", 0))  # replaces the 👍
    other = reply_payload(
        "ba9876543210", "冰块多少？", small_library.ask("冰灯节用了多少冰块？", 2)
    )
    store.write(feedback_entry(small_library, other, "down", 1))
    pairs = load_jsonl(path)
    assert [(p.id, p.answerable) for p in pairs] == [
        ("fb-0123456789ab", False),
        ("fb-ba9876543210", True),
    ]
    top = payload["hits"][0]
    beyond = {**payload, "hits": [{**top, "s": [top["s"][0], 10**6]}]}
    elsewhere = {**payload, "hits": [{**top, "id": other["hits"][0]["id"]}]}  # another file
    for bad in (
        (beyond, "up", None),
        (elsewhere, "up", None),
        ({**payload, "hits": [{**top, "s": "0-9"}]}, "up", None),
        (payload, "sideways", None),
        ({**payload, "rid": "../x"}, "up", None),
        (payload, "down", 9),
        (payload, "down", True),
        ("not a reply", "up", None),
    ):
        with pytest.raises(InvalidArgumentError):
            feedback_entry(small_library, *bad)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
