"""The reading room in Chromium: the cited article beside the chat and at its own link, the
conversations kept in the browser, copy and export, feedback that ``newsqa eval`` reads, the
page's language, a 390-px phone and both themes, with screenshots. One chat server for the
module, in this process, on the hash embedder (answers come from the keyword mode)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import AREA_FILE, SEED_ANSWERS, ask_in_page, served_seed_chat
from test_ui import _contrast, browser  # noqa: F401 - browser: a fixture

from eval.qa import load_jsonl
from rag import Config

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SCREENS_COPY = os.environ.get("NEWSQA_UI_SCREENS")  # also copy screenshots here, if set
AREA = SEED_ANSWERS[0][0]  # 七台河冰雪经济产业园研创中心项目的总建筑面积是多少？
AREA_TITLE = "七台河 锤炼作风强动能"
PHONE = {"width": 390, "height": 844}
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing"),
]


@dataclass(frozen=True)
class Room:
    """The running chat: its address, settings and HTTP client."""

    url: str
    config: Config
    http: httpx.Client

    @property
    def feedback(self) -> Path:
        from ui.feedback import feedback_path

        return feedback_path(self.config)


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    """``newsqa chat --folder <copy of the seeds> --embedder hash``, served in this process."""
    with served_seed_chat(tmp_path_factory.mktemp("reading-room")) as (url, _, config, http):
        yield Room(url, config, http)


@pytest.fixture()
def open_page(browser: Any, room: Room) -> Iterator[Any]:  # noqa: F811 - the fixture
    """Open the chat in a new browser context: ``open_page(scheme, viewport, locale)``."""
    from playwright.sync_api import expect

    contexts: list[Any] = []

    def opener(
        scheme: str = "light", viewport: dict[str, int] | None = None, locale: str = "zh-CN"
    ) -> Any:
        phone = viewport is not None and viewport["width"] < 500
        context = browser.new_context(
            viewport=viewport or {"width": 1400, "height": 1000},
            color_scheme=scheme,
            locale=locale,
            is_mobile=phone,
            has_touch=phone,
        )
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.dismiss())
        page.goto(f"{room.url}?__theme={scheme}")
        ready = "Ready" if locale.startswith("en") else "已就绪"
        expect(page.locator("#nq-status")).to_contain_text(ready, timeout=30_000)
        return page

    yield opener
    for context in contexts:
        context.close()


def ask(page: Any, question: str, keywords: bool = True) -> Any:
    """Ask in the page (in the keyword mode, where the hash embedder's answers are found);
    the new reply's locator."""
    if keywords:
        page.locator("#nq-mode").get_by_text("关键词", exact=True).click()
    return ask_in_page(page, question, timeout=30_000)


def screenshot(page: Any, tmp_path: Path, name: str, full: bool = False) -> Path:
    """Save a screenshot as a test artifact (and in ``$NEWSQA_UI_SCREENS``)."""
    out = tmp_path / "test-output"
    out.mkdir(exist_ok=True)
    path = out / name
    page.screenshot(path=str(path), full_page=full)
    if SCREENS_COPY:
        Path(SCREENS_COPY).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SCREENS_COPY) / name)
    return path


def no_horizontal_overflow(page: Any) -> None:
    width = page.evaluate("() => innerWidth")
    scroll = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide on a {width}-px screen"


def test_a_citation_click_opens_the_article_beside_the_chat_scrolled_to_the_sentence(
    open_page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_page()
    reply = ask(page, AREA)
    expect(reply.locator(".nq-answer strong.nq-span")).to_contain_text("2800")
    reply.locator(".nq-answer a.nq-open").click()  # the [1] after the quoted answer
    panel = page.locator("#nq-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".nq-article-title")).to_contain_text(AREA_TITLE)
    expect(panel.locator(".nq-article-meta")).to_contain_text(AREA_FILE)
    expect(panel.locator(".nq-article-meta")).to_contain_text("赵宇清")  # the byline
    mark = panel.locator(".nq-article-text mark")
    expect(mark.first).to_be_in_viewport(ratio=1)
    expect(mark.first.locator("strong.nq-span")).to_contain_text("2800")
    expect(mark.first).to_contain_text("总建筑面积2800平方米")
    assert panel.locator(".nq-passage").count() >= 1
    # the whole article is there, not just the passage
    assert len(panel.locator(".nq-article-text").inner_text()) > 3 * len(mark.first.inner_text())
    chat, beside = page.locator("#nq-chat").bounding_box(), panel.bounding_box()
    assert chat["x"] + chat["width"] <= beside["x"] + 1, (chat, beside)  # beside, not over it
    screenshot(page, tmp_path, "article-panel.png")

    # a passage's title and its citation open it too; the panel links to the article's page
    second = reply.locator(".nq-hit").nth(1)
    cite = second.locator(".nq-cite").inner_text()
    second.locator(".nq-meta a.nq-open").click()
    expect(panel.locator(".nq-article-meta")).to_contain_text(cite.split(":")[0])
    expect(panel.locator(".nq-passage").first).to_be_in_viewport()
    link = panel.locator(".nq-panel-link")
    assert link.get_attribute("href").startswith(f"{page.url.split('?')[0]}article/")
    panel.locator(".nq-panel-close").click()
    expect(panel).to_be_hidden()
    second.locator(".nq-head a.nq-open").click()
    expect(panel.locator(".nq-article-meta")).to_contain_text(cite.split(":")[0])
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()


def test_the_article_link_is_shareable_and_an_unknown_id_is_a_404(
    open_page: Any, room: Room
) -> None:
    from playwright.sync_api import expect

    page = open_page()
    reply = ask(page, AREA)
    href = reply.locator(".nq-answer a.nq-open").get_attribute("href")
    assert re.fullmatch(r"article/[0-9a-f]{12}#[\d:.-]+&s=\d+-\d+&a=\d+-\d+", href), href
    shared = page.context.new_page()  # a colleague opening the link
    shared.goto(room.url + href)
    expect(shared.locator("h1")).to_contain_text(AREA_TITLE)
    expect(shared.locator("mark").first).to_be_in_viewport(ratio=1)
    expect(shared.locator("mark strong.nq-span").first).to_contain_text("2800")
    assert "2800平方米" in room.http.get(href.split("#")[0]).text  # served whole, no script needed

    for unknown in ("0123456789ab", "..%2F..%2Fcorpus%2F" + AREA_FILE, AREA_FILE):
        missing = room.http.get(f"article/{unknown}")
        assert missing.status_code == 404, unknown
        assert "找不到这篇文章" in missing.text and "2800" not in missing.text
    english = room.http.get("article/0123456789ab", headers={"Accept-Language": "en-GB,en"})
    assert english.status_code == 404 and "Article not found" in english.text


def test_a_reload_keeps_the_conversation_and_the_sidebar_switches_renames_deletes(
    open_page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_page()
    ask(page, SEED_ANSWERS[1][0])
    ask(page, "那它的总投资呢？", keywords=False)  # a follow-up: resolved again after reload
    listed = page.locator("#nq-conversations label")
    expect(listed.first).to_contain_text(" · 2")  # kept in the browser, both questions
    page.reload()
    expect(page.locator("#nq-status")).to_contain_text("已就绪", timeout=30_000)
    replies = page.locator("#nq-chat .nq-reply")
    expect(replies).to_have_count(2, timeout=10_000)
    expect(page.locator('#nq-chat [data-testid="user"]').first).to_have_text(SEED_ANSWERS[1][0])
    expect(replies.nth(1).locator(".nq-query").first).to_contain_text("宝泰隆一矿")
    third = ask(page, "那它的设计产能呢？", keywords=False)  # follow-ups still resolve
    expect(third.locator(".nq-query").first).to_contain_text("宝泰隆一矿")

    page.locator("#nq-sidebar .toggle-button").click()
    expect(listed).to_have_count(1)
    expect(listed.first).to_contain_text(SEED_ANSWERS[1][0][:10])
    page.locator("#nq-new").click()
    expect(replies).to_have_count(0)
    ask(page, SEED_ANSWERS[2][0])
    expect(listed).to_have_count(2)
    listed.filter(has_text=SEED_ANSWERS[1][0][:10]).click()  # back to the first one
    expect(replies).to_have_count(3)
    page.locator("#nq-title textarea, #nq-title input").first.fill("宝泰隆采访")
    page.locator("#nq-rename").click()
    expect(listed.filter(has_text="宝泰隆采访")).to_have_count(1)
    screenshot(page, tmp_path, "history.png")
    page.reload()
    expect(page.locator("#nq-chat .nq-reply")).to_have_count(3, timeout=30_000)
    page.locator("#nq-sidebar .toggle-button").click()
    expect(listed.filter(has_text="宝泰隆采访")).to_have_count(1)
    page.locator("#nq-delete").click()
    expect(listed).to_have_count(1)
    expect(page.locator("#nq-chat .nq-reply")).to_have_count(1)  # the other one is shown
    expect(page.locator('#nq-chat [data-testid="user"]').first).to_have_text(SEED_ANSWERS[2][0])


def test_an_answer_copies_and_a_conversation_exports_with_its_full_citations(
    open_page: Any, room: Room
) -> None:
    from playwright.sync_api import expect

    page = open_page()
    reply = ask(page, AREA)
    first_ref = reply.locator(".nq-cite").first.inner_text()
    reply.locator(".nq-copy").click()
    expect(reply.locator(".nq-fb-note")).to_have_text("已复制")
    copied = page.evaluate("() => window.nqCopied")
    assert AREA in copied and "2800平方米" in copied and f"`{first_ref}`" in copied
    assert f"《{AREA_TITLE}" in copied and "<" not in copied  # text, not HTML
    ask(page, SEED_ANSWERS[4][0])

    page.locator("#nq-sidebar .toggle-button").click()
    page.locator("#nq-export").click()
    download = page.locator("#nq-exported a[download], #nq-exported a").first
    expect(download).to_be_visible(timeout=10_000)
    markdown = room.http.get(download.get_attribute("href")).text
    assert markdown.startswith("# ") and AREA in markdown and SEED_ANSWERS[4][0] in markdown
    assert f"`{first_ref}`" in markdown and "2800平方米" in markdown and "赵宇清" in markdown
    links = re.findall(r"\]\((http://[^)]+/article/[0-9a-f]{12}#[^)]+)\)", markdown)
    assert links and all(link.startswith(room.url) for link in links)
    assert room.http.get(links[0].split("#")[0]).status_code == 200  # the links work


def test_feedback_lands_in_the_jsonl_beside_the_index_and_newsqa_eval_reads_it(
    open_page: Any, room: Room
) -> None:
    from playwright.sync_api import expect

    room.feedback.unlink(missing_ok=True)
    page = open_page()
    good = ask(page, SEED_ANSWERS[1][0])
    good.locator(".nq-up").click()
    expect(good.locator(".nq-fb-note")).to_have_text("谢谢，已记录。")
    wrong = ask(page, SEED_ANSWERS[8][0])
    wrong.locator(".nq-down").click()
    expect(wrong.locator(".nq-choose")).to_contain_text("正确的段落是")
    second_ref = wrong.locator(".nq-cite").nth(1).inner_text()
    wrong.locator(".nq-pick", has_text="[2]").click()
    expect(wrong.locator(".nq-fb-note")).to_have_text("谢谢，已记录。")
    none = ask(page, "北极村首场降雪有多厚？")
    none.locator(".nq-down").click()
    none.locator(".nq-pick", has_text="都不是").click()
    expect(none.locator(".nq-fb-note")).to_have_text("谢谢，已记录。")
    path = room.feedback
    good.evaluate("e => e.querySelector('.nq-fb-note').textContent = ''")
    good.locator(".nq-up").click()  # voting twice on a reply keeps one line (the last)
    expect(good.locator(".nq-fb-note")).to_have_text("谢谢，已记录。")
    assert path.is_file() and not path.resolve().is_relative_to(room.config.corpus)
    assert path.parent == room.config.index_path.parent  # beside the index
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["rating"] for line in lines] == ["down", "down", "up"]
    by_rating = {(line["rating"], line["rank"]): line for line in lines}
    up, picked, unanswerable = by_rating["up", 1], by_rating["down", 2], by_rating["down", 0]
    assert up["doc"] == SEED_ANSWERS[1][1] and "90万吨" in up["evidence"]
    assert picked["ref"] == second_ref and picked["doc"] == second_ref.split(":")[0]
    assert unanswerable["type"] == "unanswerable" and unanswerable["evidence"] is None
    pairs = load_jsonl(path)  # what newsqa eval reads
    assert [p.answerable for p in pairs] == [True, False, True]
    assert pairs[2].facts[0].doc == SEED_ANSWERS[1][1]

    # `newsqa eval` on the file, over the chat's own library and index (in this process:
    # the command, not a copy of its steps; the index is the chat's, so nothing is rebuilt)
    from click.testing import CliRunner

    from rag.cli import main

    arguments = ["eval", str(path), "--folder", str(room.config.corpus), "--quiet"]
    arguments += ["--compare", "embedder=hash", "--compare", f"index_dir={room.config.index_path}"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output[-2000:]
    assert "3 questions, 2 answerable" in result.output, result.output[-2000:]

    bad = room.http.post("feedback", json={"reply": {"rid": "x"}, "rating": "up"})
    assert bad.status_code == 400 and "error" in bad.json()
    forged = json.loads(good.locator("input.nq-fb-data").get_attribute("value"))["reply"]
    forged["hits"][0]["s"] = [forged["hits"][0]["s"][0], 10**7]  # past the article's end
    refused = room.http.post("feedback", json={"reply": forged, "rating": "up"})
    assert refused.status_code == 400 and "does not hold" in refused.json()["error"]
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3


def test_a_390_px_phone_has_no_horizontal_overflow_and_the_article_is_a_sheet(
    open_page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_page(viewport=PHONE)
    no_horizontal_overflow(page)
    box = page.locator("#nq-question textarea").bounding_box()
    settings = page.locator("#nq-settings").bounding_box()
    assert box["width"] >= 0.6 * PHONE["width"], box  # the box keeps the width
    assert settings["y"] >= box["y"] + box["height"], (box, settings)  # settings below it
    reply = ask(page, AREA)
    no_horizontal_overflow(page)
    page.evaluate("() => document.querySelector('#nq-chat').scrollIntoView()")
    screenshot(page, tmp_path, "phone.png")
    reply.locator(".nq-answer a.nq-open").click()
    sheet = page.locator("#nq-panel")
    expect(sheet.locator(".nq-article-text mark").first).to_be_in_viewport(ratio=1)
    frame = sheet.bounding_box()
    assert frame["width"] == PHONE["width"] and frame["x"] == 0  # a sheet across the screen
    assert abs(frame["y"] + frame["height"] - PHONE["height"]) <= 1  # from the bottom up
    no_horizontal_overflow(page)
    screenshot(page, tmp_path, "phone-article.png")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_both_themes_keep_the_highlights_readable(
    open_page: Any, tmp_path: Path, scheme: str
) -> None:
    from playwright.sync_api import expect

    page = open_page(scheme)
    assert page.evaluate("() => document.body.classList.contains('dark')") == (scheme == "dark")
    reply = ask(page, AREA)
    screenshot(page, tmp_path, f"desktop-{scheme}.png")
    reply.locator(".nq-answer a.nq-open").click()
    marks = [reply.locator(".nq-hit mark").first, page.locator("#nq-panel mark").first]
    for mark in marks:
        expect(mark).to_be_visible()
        text, background = mark.evaluate(
            "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]"
        )
        ratio = _contrast(text, background)
        assert ratio >= 4.5, f"{scheme}: {text} on {background} is {ratio:.2f}:1"


def test_the_page_speaks_the_browsers_language_without_leftovers(open_page: Any) -> None:
    from playwright.sync_api import expect

    chinese = open_page()
    words = (
        chinese.locator("#nq-chat-tab").inner_text() + chinese.locator("#nq-status").inner_text()
    )
    for leftover in ("hybrid", "dense", "lexical", "Info", "Warning", "Settings"):
        assert leftover not in words, leftover
    english = open_page(locale="en-US")
    expect(english.locator("#nq-intro")).to_contain_text("News Q&A")
    expect(english.locator("#nq-ask")).to_have_text("Ask")
    expect(english.locator("#nq-mode")).to_contain_text("lexical (keywords)")
    settings = english.locator("#nq-settings").inner_text()
    assert not re.search(r"[\u4e00-\u9fff]", settings), settings
    english.locator("#nq-question textarea").press("Enter")
    expect(english.locator("#nq-hint")).to_contain_text("Type a question")
