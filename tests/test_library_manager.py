"""The 文库 (library) tab in Chromium, over one chat server on the hash embedder: the list,
search by title, remove / restore (answers follow at once), uploads with progress per file,
re-index, download, and a status line kept current."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import SEED_ANSWERS, ask_in_page, served_seed_chat
from test_ui import SEEDS, Api, browser, screenshot  # noqa: F401 - a fixture

from rag import Config, Retriever

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")

# (question, the seed file that answers it)
LIANSHUN, LIANSHUN_FILE = SEED_ANSWERS[4][0], SEED_ANSWERS[4][1]
SNOW = "北极村首场降雪有多厚？"
SNOW_ARTICLE = (
    "# 漠河北极村迎来首场降雪\n\n本报讯（记者丁一）漠河北极村今年首场降雪厚度达到十八厘米，"
    "游客纷纷前来赏雪。\n"
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """``newsqa chat --folder <copy of the seeds> --embedder hash --index-dir …``, in this
    process (the steps of :func:`ui.app.launch`, not blocking), one per module."""
    started = time.monotonic()
    with served_seed_chat(tmp_path_factory.mktemp("library-server")) as (url, corpus, _, http):
        print(f"library server ready in {time.monotonic() - started:.1f} s")
        yield Api(url, corpus, http)


@pytest.fixture()
def page(browser: Any, api: Api) -> Iterator[Any]:  # noqa: F811 - the imported fixture
    """The chat, ready; fails the test on any JavaScript dialog."""
    from playwright.sync_api import expect

    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, locale="zh-CN", accept_downloads=True
    )
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(api.url)
    expect(page.locator("#nq-status")).to_contain_text("已就绪", timeout=30_000)
    yield page
    context.close()
    assert not dialogs, f"the page opened dialogs: {dialogs}"


def open_library(page: Any) -> Any:
    """Switch to the 文库 tab; its table's locator."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="文库").click()
    table = page.locator("#nq-lib-table")
    expect(table).to_be_visible()
    return table


def open_chat(page: Any) -> None:
    page.get_by_role("tab", name="问答").click()


def row(page: Any, file: str) -> Any:
    return page.locator(f'#nq-lib-table tr[data-file="{file}"]')


def pick(page: Any, file: str) -> None:
    """Select ``file`` in the picker (typed, then clicked in the list)."""
    from playwright.sync_api import expect

    box = page.locator("#nq-lib-pick input")
    box.click()
    box.fill(file)
    option = page.locator('#nq-lib-pick [role="option"]', has_text=file)
    expect(option).to_have_count(1)
    option.click()
    expect(box).to_have_value(re.compile(re.escape(f" · {file}")))


def act(page: Any, button: str, expected: str) -> str:
    """Click one of the tab's buttons; the message once it says ``expected``."""
    from playwright.sync_api import expect

    message = page.locator("#nq-lib-message")
    page.locator(f"#nq-lib-{button}").click()
    expect(message).to_contain_text(expected, timeout=30_000)
    return str(message.inner_text())


def ask(page: Any, question: str) -> list[str]:
    """Ask in the chat tab; the citations of the reply's passages."""
    open_chat(page)
    reply = ask_in_page(page, question, timeout=30_000)
    return [str(cite.inner_text()) for cite in reply.locator(".nq-hit .nq-cite").all()]


@pytest.mark.slow
def test_the_list_shows_the_seed_articles_with_titles_sizes_and_chunks(
    page: Any, api: Api, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    table = open_library(page)
    files = sorted(p.name for p in SEEDS.glob("*.txt"))
    expect(table.locator("tbody tr")).to_have_count(len(files))
    expect(row(page, "000_e1705054eebe6bde.txt").locator(".nq-title")).to_contain_text(
        "七台河 锤炼作风强动能 奋力冲刺四季度"
    )
    expect(row(page, LIANSHUN_FILE).locator(".nq-title")).to_contain_text("联顺生物项目抢工期")
    chunks = 0
    for file in files:
        cells = row(page, file).locator("td")
        size = (api.corpus / file).stat().st_size
        expect(cells.nth(2)).to_have_text(f"{size / 1024:.1f} KB")
        assert int(cells.nth(3).inner_text()) > 0
        chunks += int(cells.nth(3).inner_text())
        assert cells.nth(4).inner_text()[:4].isdigit()  # when it was indexed
        expect(cells.nth(5)).to_have_text("已收录")
    status = page.locator("#nq-lib-status")
    expect(status).to_contain_text(f"{len(files)} 个文件、{chunks} 个段落已收录")
    screenshot(page, tmp_path, "library-tab.png")


@pytest.mark.slow
def test_the_tab_fits_a_phone_screen(browser: Any, api: Api, tmp_path: Path) -> None:  # noqa: F811
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(api.url)
        expect(page.locator("#nq-status")).to_contain_text("已就绪", timeout=30_000)
        table = open_library(page)
        expect(table.locator("tbody tr")).to_have_count(5)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide at 390 px"
        expect(table.locator("td.nq-title").first).to_be_in_viewport()
        screenshot(page, tmp_path, "library-tab-phone.png")
    finally:
        context.close()


@pytest.mark.slow
def test_search_by_title_filters_the_list_and_the_picker(page: Any) -> None:
    from playwright.sync_api import expect

    table = open_library(page)
    search = page.locator("#nq-lib-search textarea, #nq-lib-search input").first
    search.fill("口岸")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(row(page, "001_46b047b0685aa754.txt")).to_be_visible()
    expect(table).to_contain_text("显示 1 / 5 个文件")
    page.locator("#nq-lib-pick input").click()
    expect(page.locator('#nq-lib-pick [role="option"]')).to_have_count(1)
    page.keyboard.press("Escape")
    search.fill("七台河")  # in the first title of two files, in a later title of a third
    expect(table.locator("tbody tr")).to_have_count(3)
    search.fill("火星")
    expect(table).to_contain_text("没有标题包含「火星」的文章")
    search.fill("")
    expect(table.locator("tbody tr")).to_have_count(5)


@pytest.mark.slow
def test_removing_an_article_removes_its_passages_from_answers_and_restore_brings_them_back(
    page: Any, api: Api
) -> None:
    from playwright.sync_api import expect

    seed = api.corpus / LIANSHUN_FILE
    original = seed.read_bytes()
    assert ask(page, LIANSHUN)[0].startswith(f"{LIANSHUN_FILE}:")  # answered from it before

    open_library(page)
    pick(page, LIANSHUN_FILE)
    message = act(page, "remove", "已将")
    assert LIANSHUN_FILE in message and "仍在磁盘上" in message
    expect(row(page, LIANSHUN_FILE).locator(".nq-state")).to_have_text("已移出（文件仍在磁盘上）")
    expect(page.locator("#nq-lib-status")).to_contain_text("4 个文件")
    expect(page.locator("#nq-lib-status")).to_contain_text("已移出 1 个")
    assert seed.read_bytes() == original  # stays on disk, untouched
    expect(page.locator("#nq-status")).to_contain_text("4 个文件")  # the chat's line too

    cites = ask(page, LIANSHUN)
    assert cites and not any(c.startswith(f"{LIANSHUN_FILE}:") for c in cites), cites
    assert not any(hit["file"] == LIANSHUN_FILE for hit in api.ask(LIANSHUN, [], 20)["hits"])

    open_library(page)
    pick(page, LIANSHUN_FILE)
    assert LIANSHUN_FILE in act(page, "restore", "已恢复")
    expect(row(page, LIANSHUN_FILE).locator(".nq-state")).to_have_text("已收录")
    expect(page.locator("#nq-lib-status")).to_contain_text("5 个文件")
    assert ask(page, LIANSHUN)[0].startswith(f"{LIANSHUN_FILE}:")


@pytest.mark.slow
def test_an_upload_shows_progress_per_file_and_removing_it_deletes_it(
    page: Any, api: Api, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    article = tmp_path / "mohe_first_snow.txt"
    article.write_text(SNOW_ARTICLE, encoding="utf-8")
    broken = tmp_path / "broken.txt"
    broken.write_bytes(bytes(range(256)) * 8)
    open_library(page)
    with page.expect_file_chooser() as chooser:
        page.locator("#nq-lib-upload").click()
    chooser.value.set_files([str(article), str(broken)])
    items = page.locator("#nq-lib-progress li")
    expect(items).to_have_count(2, timeout=30_000)
    expect(page.locator("#nq-lib-message")).to_contain_text("加入 1 个，未能加入 1 个")
    expect(items.nth(0)).to_contain_text("已加入：《漠河北极村迎来首场降雪》")
    expect(items.nth(1)).to_contain_text("未能加入")
    stored = api.corpus / article.name
    assert stored.is_file() and not (api.corpus / broken.name).exists()
    expect(row(page, article.name).locator(".nq-state")).to_have_text("已收录（上传）")
    assert ask(page, SNOW)[0].startswith(f"{article.name}:")

    open_library(page)
    pick(page, article.name)
    assert article.name in act(page, "remove", "已删除上传的文件")
    expect(row(page, article.name)).to_have_count(0)  # gone, not listed as excluded
    assert not stored.exists()
    assert not any(c.startswith(f"{article.name}:") for c in ask(page, SNOW))


@pytest.mark.slow
def test_a_chat_upload_and_one_from_another_client_appear_without_a_click(
    page: Any, api: Api, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    first = tmp_path / "ice_lantern.txt"
    first.write_text("# 松花江冰灯节开幕\n\n松花江冰灯节今年共使用冰块四万三千立方米。\n", "utf-8")
    with page.expect_file_chooser() as chooser:  # the chat tab's upload button
        page.locator("#nq-upload").click()
    chooser.value.set_files([str(first)])
    expect(page.locator("#nq-upload-status")).to_contain_text(first.name, timeout=30_000)
    open_library(page)
    expect(row(page, first.name)).to_have_count(1)
    expect(page.locator("#nq-lib-status")).to_contain_text("6 个文件")
    expect(page.locator("#nq-lib-status")).to_contain_text("其中上传 1 个")

    second = tmp_path / "harbin_metro.txt"
    second.write_text("# 哈尔滨地铁三号线贯通\n\n哈尔滨地铁三号线全长三十七公里。\n", "utf-8")
    api.upload(second)  # another client, while this page shows the tab
    expect(row(page, second.name)).to_have_count(1, timeout=10_000)
    expect(page.locator("#nq-lib-status")).to_contain_text("7 个文件")
    expect(page.locator("#nq-status")).to_contain_text("7 个文件")  # the chat tab's line too
    for name in (first.name, second.name):  # leave the library as the other tests expect
        pick(page, name)
        act(page, "remove", f"已删除上传的文件 {name}")
    expect(page.locator("#nq-lib-status")).to_contain_text("5 个文件")


@pytest.mark.slow
def test_reindex_one_and_all_and_download_the_original(page: Any, api: Api) -> None:
    from playwright.sync_api import expect

    open_library(page)
    file = "003_80151df246a9c92a.txt"
    pick(page, file)
    download = page.locator("#nq-lib-download")
    expect(download).to_be_enabled()
    with page.expect_download() as got:
        download.click()
    assert Path(got.value.path()).read_bytes() == (api.corpus / file).read_bytes()
    assert got.value.suggested_filename == file

    indexed = row(page, file).locator("td").nth(4)
    message = act(page, "reindex", f"已重新索引 {file}")
    chunks = int(row(page, file).locator("td").nth(3).inner_text())
    assert f"{chunks} 个段落" in message and indexed.inner_text()[:4].isdigit()
    assert "全部 5 个文件" in act(page, "reindex-all", "已重新索引全部")
    assert ask(page, SEED_ANSWERS[6][0])[0].startswith(f"{file}:")


# ----------------------------------------------------------------------------- handlers, fast


@pytest.fixture()
def manager(seed_copy: Path, tmp_path: Path) -> Any:
    """The tab's handlers over a seed copy's retriever (hash embedder), no server."""
    from ui.chat import ChatBackend
    from ui.library import RetrieverService
    from ui.manager import LibraryManager

    config = Config(corpus_dir=seed_copy, index_dir=tmp_path / "index", embedder="hash")
    manager = LibraryManager(ChatBackend(RetrieverService(lambda: Retriever.from_config(config))))
    manager.backend.service.start().get(60)
    return manager


def english() -> Any:
    import gradio as gr

    return gr.Request(headers={"accept-language": "en-US,en;q=0.9,zh;q=0.5"})


def test_an_unselected_action_and_a_bad_name_get_a_visible_message(manager: Any) -> None:
    message = manager.remove(None, "")[0]
    assert "请先选择一个文件" in message and "nq-error" in message
    assert "请先选择一个文件" in manager.remove("", "")[0]
    message = manager.remove("../../etc/passwd", "")[0]
    assert "操作未完成：文件名无效" in message and "not a file inside the article folder" in message
    message = manager.reindex("missing.txt", "")[0]
    assert "操作未完成：文库中没有这个文件" in message and "nq-error" in message
    message = manager.restore("000_e1705054eebe6bde.txt", "")[0]
    assert "文库无法完成这项更改" in message and "not excluded" in message
    table = manager.remove(None, "")[1]
    assert table.count("<tr data-file=") == 5  # nothing changed
    message = manager.remove(None, "", english())[0]
    assert "Select a file first." in message


def test_the_table_escapes_titles_and_follows_the_page_language(manager: Any) -> None:
    from rag import LibraryArticle
    from ui.manager import matches, render_table

    hostile = LibraryArticle(
        file='<b>"x".txt',
        titles=("<script>alert(1)</script>", "二"),
        date="",
        size=2048,
        chunks=3,
        indexed_at=0.0,
        uploaded=True,
    )
    html = render_table([hostile], 1, "")
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and 'data-file="&lt;b&gt;&quot;x&quot;.txt"' in html
    assert "2.0 KB" in html and "已收录（上传）" in html and "等 2 篇" in html
    assert (
        matches(hostile, "二") and matches(hostile, "SCRIPT alert") and not matches(hostile, "三")
    )
    table, _, status, _ = manager.view("", None, english())
    assert "<th>Title</th>" in table and "indexed" in table and "已收录" not in table
    assert status.startswith("**Library**: 5 files")
    table, picker, status, _ = manager.view("口岸", None)
    assert table.count("<tr data-file=") == 1 and "显示 1 / 5 个文件" in table
    assert [file for _, file in picker["choices"]] == ["001_46b047b0685aa754.txt"]
    assert status.startswith("**文库**：5 个文件")


@pytest.mark.slow
def test_a_browser_preferring_english_gets_the_tab_in_english(browser: Any, api: Api) -> None:  # noqa: F811
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    try:
        page = context.new_page()
        page.goto(api.url)
        page.get_by_role("tab", name="Library").click()
        table = page.locator("#nq-lib-table")
        expect(table.locator("th").first).to_have_text("Title", timeout=30_000)
        expect(page.locator("#nq-lib-status")).to_contain_text("Library: 5 files")
        expect(page.locator("#nq-lib-remove")).to_have_text("Remove from the library")
        assert (
            "已收录" not in table.inner_text()
            and "文库" not in page.locator("#nq-library").inner_text()
        )
    finally:
        context.close()
