"""One reader per file type: web pages, Word, PDF and table rows become cited articles."""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
import zipfile
from pathlib import Path

import pytest

import rag
from rag import Config, Retriever
from rag.chunking import chunk_articles
from rag.corpus import SUFFIXES, SkippedFileWarning, load_bytes, load_folder, scan_corpus
from rag.errors import UnreadableFileError
from rag.records import Chunk, Citation


def _chunks(data: bytes, name: str) -> list[Chunk]:
    return chunk_articles(load_bytes(data, name), 300, 50)


# ----------------------------------------------------------------------------- HTML

# Boilerplate every page below carries somewhere; none of it may reach an article.
BOILERPLATE = [
    "首页", "国内新闻", "体育频道", "相关新闻", "哈尔滨冰雪大世界开园迎客", "齐齐哈尔丹顶鹤回迁",
    "网友评论", "支持家乡建设", "版权所有", "联系我们", "ICP备", "热门排行", "扫码关注",
    "上一篇", "下一篇", "责任编辑",
]  # fmt: skip

# A news site's page: navigation menu, article, related-links list, comments, footer.
PAGE_NAV = """<!DOCTYPE html><html><head><meta charset="utf-8">
<title>五大连池风电项目开工 - 黑龙江新闻网</title>
<meta name="author" content="张三">
<meta property="article:published_time" content="2021-03-15T08:00:00+08:00"></head>
<body><nav><ul><li><a href="/">首页</a></li><li><a href="/gn">国内新闻</a></li>
<li><a href="/ty">体育频道</a></li></ul></nav>
<article><h1>五大连池风电项目开工</h1><p class="byline">记者 张三</p>
<p>本报讯 五大连池风电项目十五日正式开工建设，项目总投资十二亿元，装机容量二十万千瓦。</p>
<p>据介绍，项目建成后每年可发电四亿千瓦时，节约标准煤十二万吨，减少二氧化碳排放三十万吨。</p>
<p>当地政府表示，将全力保障项目建设用地和电网接入，力争明年年底前全部并网发电。</p></article>
<div class="related"><h3>相关新闻</h3><ul><li><a href="/a1">哈尔滨冰雪大世界开园迎客</a></li>
<li><a href="/a2">齐齐哈尔丹顶鹤回迁</a></li></ul></div>
<div id="comments" class="comments"><h3>网友评论</h3><div class="comment">
<p>这个项目太好了，支持家乡建设！网友小王说道。</p></div></div>
<footer><p>版权所有 黑龙江新闻网 联系我们 黑ICP备12345678号</p></footer></body></html>"""

# A portal's layout: div soup, sidebar with a hot list, date in the text, editor line and
# previous/next links, GBK encoded.
PAGE_PORTAL = """<html><head><meta http-equiv="Content-Type" content="text/html; charset=gbk">
<title>绥芬河口岸货运量创新高_新闻中心</title></head><body>
<div id="header"><a href="/">首页</a> | <a href="/news">国内新闻</a> | <a href="/sports">体育频道</a></div>
<div id="main"><div class="left">
<h1 class="title">绥芬河口岸货运量创新高</h1>
<div class="info"><span class="time">2022-07-08 10:30</span> <span class="source">来源：东北网</span></div>
<div class="content" id="article-body">
<p>今年上半年，绥芬河铁路口岸进出口货运量达到六百五十万吨，同比增长百分之十八，创历史同期新高。</p>
<p>口岸工作人员介绍，中欧班列开行数量持续增加，木材、粮食和化肥是主要进口货物。</p>
<p>海关部门推行提前申报和快速验放，货物通关时间比去年压缩了三分之一。</p>
</div>
<div class="editor">责任编辑：李四</div>
<div class="pager"><a href="/p">上一篇</a> <a href="/n">下一篇</a></div>
</div>
<div class="right sidebar"><h3>热门排行</h3><ol><li><a href="/h1">哈尔滨冰雪大世界开园迎客</a></li>
<li><a href="/h2">齐齐哈尔丹顶鹤回迁</a></li></ol><p>扫码关注我们的公众号</p></div></div>
<div id="footer">联系我们 | 版权所有 东北网 | 黑ICP备87654321号</div></body></html>"""

# A blog-like layout: header menu, <main> with <time>, comment section, a related list
# after the text and a footer.
PAGE_BLOG = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<title>漠河北极村迎来首场降雪</title>
<meta property="og:title" content="漠河北极村迎来首场降雪">
<meta name="date" content="2023-09-21"></head><body>
<header><div class="logo">北国日报</div><ul class="menu"><li><a href="/">首页</a></li>
<li><a href="/c/gn">国内新闻</a></li><li><a href="/c/ty">体育频道</a></li></ul></header>
<main><h1>漠河北极村迎来首场降雪</h1><time datetime="2023-09-21">2023年9月21日</time>
<p>九月二十日夜间，漠河北极村迎来今年首场降雪，积雪厚度达到十八厘米，比往年提前十天。</p>
<p>气象部门提醒，降雪后路面湿滑，过往车辆要减速慢行，游客出行注意防寒保暖。</p>
<p>当地旅游部门表示，首场降雪吸引了大批摄影爱好者前来拍摄雪景，客栈入住率明显上升。</p>
</main>
<aside class="related-posts"><h2>相关新闻</h2><ul><li><a href="/x">哈尔滨冰雪大世界开园迎客</a></li>
<li><a href="/y">齐齐哈尔丹顶鹤回迁</a></li></ul></aside>
<section class="comments"><h2>网友评论</h2><ol><li class="comment"><p>太美了，支持家乡建设，明年一定去看看。</p></li></ol></section>
<footer>版权所有 北国日报 · 联系我们 · 黑ICP备11112222号</footer></body></html>"""

HTML_PAGES = [
    # (name, bytes, title, date, a sentence of the body, byline part or "")
    (
        "wind.html",
        PAGE_NAV.encode(),
        "五大连池风电项目开工",
        "2021-03-15",
        "装机容量二十万千瓦",
        "张三",
    ),
    (
        "port.htm",
        PAGE_PORTAL.encode("gbk"),
        "绥芬河口岸货运量创新高",
        "2022-07-08",
        "六百五十万吨",
        "",
    ),
    ("snow.html", PAGE_BLOG.encode(), "漠河北极村迎来首场降雪", "2023-09-21", "十八厘米", ""),
]


@pytest.mark.parametrize(("name", "data", "title", "date", "fact", "byline"), HTML_PAGES)
def test_a_web_page_gives_its_main_text_title_and_date(
    name: str, data: bytes, title: str, date: str, fact: str, byline: str
) -> None:
    articles = load_bytes(data, name)
    assert len(articles) == 1
    article = articles[0]
    assert article.title == title and article.date == date
    assert byline in article.byline
    assert fact in article.text
    assert not article.text.startswith(title)  # the headline is not repeated as text
    chunks = chunk_articles(articles, 300, 50)
    assert chunks
    for chunk in chunks:
        for junk in BOILERPLATE:
            assert junk not in chunk.text and junk not in chunk.embed_text, (junk, chunk.text)
        assert chunk.title == title and chunk.date == date
        assert chunk.unit == "para" and re.fullmatch(
            rf"{name} para \d+(-\d+)?", str(chunk.citation)
        )


def test_a_web_page_is_cited_by_paragraph_of_its_main_text() -> None:
    chunks = chunk_articles(load_bytes(PAGE_NAV.encode(), "wind.html"), 60, 0)
    third = next(c for c in chunks if "全力保障" in c.text)
    assert str(third.citation) == "wind.html para 3"


def test_a_page_without_main_text_is_skipped() -> None:
    page = b"<html><head><title>x</title></head><body><script>var a = 1;</script></body></html>"
    with pytest.raises(UnreadableFileError, match="no article text"):
        load_bytes(page, "menu.html")


# ----------------------------------------------------------------------------- Word


def _docx(paragraphs: list[tuple[str, str | None]]) -> bytes:
    import docx

    document = docx.Document()
    for text, style in paragraphs:
        document.add_paragraph(text, style=style)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_a_word_document_gives_paragraphs_and_its_titled_heading() -> None:
    data = _docx(
        [
            ("七台河冰雪经济产业园开工", "Title"),
            ("七台河冰雪经济产业园研创中心项目今日开工，总建筑面积2800平方米。", None),
            ("", None),
            ("项目建成后将举办冰雪赛事，带动当地旅游和体育产业发展。", None),
        ]
    )
    articles = load_bytes(data, "qth.docx")
    assert [a.title for a in articles] == ["七台河冰雪经济产业园开工"]
    assert articles[0].text == (
        "七台河冰雪经济产业园研创中心项目今日开工，总建筑面积2800平方米。\n"
        "项目建成后将举办冰雪赛事，带动当地旅游和体育产业发展。"
    )
    chunks = chunk_articles(articles, 40, 0)
    refs = {str(c.citation) for c in chunks}
    assert refs == {"qth.docx para 2", "qth.docx para 3"}  # empty paragraphs not counted


def test_a_word_document_without_a_heading_takes_its_first_sentence_as_title() -> None:
    data = _docx([("绥芬河今年以来签约项目141个，总投资超过百亿元。口岸经济持续向好。", None)])
    (article,) = load_bytes(data, "sfh.docx")
    assert article.title == "绥芬河今年以来签约项目141个，总投资超过百亿元"
    assert article.unit == "para" and article.date == ""


def test_a_word_tables_rows_are_read_in_place_and_cited_as_paragraphs() -> None:
    import docx

    document = docx.Document()
    document.add_heading("一季度全省重点项目进展", level=0)
    document.add_paragraph("各市重点项目开复工情况如下。")
    table = document.add_table(rows=3, cols=3)
    for row, values in zip(
        table.rows,
        [
            ("城市", "开复工项目", "完成投资"),
            ("七台河", "21个", "15亿元"),
            ("绥芬河", "14个", "9亿元"),
        ],
        strict=True,
    ):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    table.rows[0].cells[1].merge(table.rows[0].cells[2]).text = "进展"  # a merged header
    document.add_paragraph("全省项目建设总体顺利。")
    buffer = io.BytesIO()
    document.save(buffer)
    (article,) = load_bytes(buffer.getvalue(), "q1.docx")
    assert article.text.split("\n") == [
        "各市重点项目开复工情况如下。",
        "城市 | 进展。",
        "七台河 | 21个 | 15亿元。",
        "绥芬河 | 14个 | 9亿元。",
        "全省项目建设总体顺利。",
    ]
    chunks = chunk_articles([article], 14, 0)
    row = next(c for c in chunks if "七台河 | 21个" in c.text)
    assert str(row.citation) == "q1.docx para 4"


def test_heading_styles_become_sections() -> None:
    data = _docx(
        [
            ("全省重点项目建设综述", "Heading 1"),
            ("全省重点项目建设进展顺利，一季度开复工项目数量同比增长。", None),
            ("七台河", "Heading 2"),
            ("七台河市省百大项目开复工21个，完成投资十五亿元。", None),
        ]
    )
    titles = [a.title for a in load_bytes(data, "sum.docx")]
    assert titles == ["全省重点项目建设综述", "全省重点项目建设综述 · 七台河"]


# ----------------------------------------------------------------------------- PDF


def _pdf(pages: list[list[str]]) -> bytes:
    """A PDF with a real CJK text layer (reportlab's built-in STSong-Light CID font)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for lines in pages:
        pdf.setFont("STSong-Light", 12)
        for i, line in enumerate(lines):
            pdf.drawString(72, 760 - 20 * i, line)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


PDF_PAGES = [
    [
        "五大连池风电规划发布",
        "本报讯 五大连池市近日发布风力发电规划，全市选定风机点位614个，",
        "规划建设八个风电场，带动装备制造和运维服务就业。",
    ],
    [
        "规划的风力发电总装机容量为3837.5MW，预计二〇三〇年前全部建成。",
        "项目全部投产后，每年可减少二氧化碳排放约六百万吨。",
    ],
]


def test_a_pdf_is_read_page_by_page_and_cited_by_page() -> None:
    articles = load_bytes(_pdf(PDF_PAGES), "wind.pdf")
    text = "\n".join(a.text for a in articles)
    assert "614个，规划建设八个风电场" in text  # a line wrapped by the layout is repaired
    assert articles[0].title == "五大连池风电规划发布"
    chunks = chunk_articles(articles, 40, 0)
    answer = next(c for c in chunks if "3837.5MW" in c.text)
    assert str(answer.citation) == "wind.pdf p.2"
    first = next(c for c in chunks if "614" in c.text)
    assert str(first.citation) == "wind.pdf p.1"
    # a passage running over the page break cites both pages
    whole = chunk_articles(articles, 500, 0)
    assert [str(c.citation) for c in whole] == ["wind.pdf p.1-2"]


def test_a_pdf_answer_on_page_two_is_retrieved_and_cited_p2(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "wind.pdf").write_bytes(_pdf(PDF_PAGES))
    retriever = Retriever.from_folder(
        corpus, Config(embedder="hash", chunk_size=60, chunk_overlap=10)
    )
    hits = retriever.retrieve("五大连池规划的风力发电总装机容量是多少？", k=3)
    hit = next(h for h in hits if "3837.5MW" in h.text)
    assert str(hit.citation) == "wind.pdf p.2"
    assert hit.to_dict()["ref"] == "wind.pdf p.2"


@pytest.mark.parametrize("pages", [[[]], [[], []]])
def test_a_pdf_without_a_text_layer_is_skipped(pages: list[list[str]]) -> None:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for _ in pages:
        pdf.rect(72, 72, 300, 400, fill=1)  # a "scanned" page: a picture, no text
        pdf.showPage()
    pdf.save()
    with pytest.raises(UnreadableFileError, match="no text layer"):
        load_bytes(buffer.getvalue(), "scan.pdf")


# ----------------------------------------------------------------------------- rows


def test_csv_rows_are_articles_cited_by_row() -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["title", "date", "source", "text"])
    writer.writerow(
        [
            "漠河首场降雪",
            "2023-09-21",
            "北国日报",
            "漠河北极村迎来今年首场降雪，积雪厚度达到十八厘米。",
        ]
    )
    writer.writerow(["", "", "", ""])
    writer.writerow(
        [
            "绥芬河口岸",
            "2022-07-08",
            "东北网",
            "绥芬河口岸上半年货运量六百五十万吨。\n同比增长百分之十八。",
        ]
    )
    articles = load_bytes(buffer.getvalue().encode(), "news.csv")
    assert [(a.title, a.date, a.byline) for a in articles] == [
        ("漠河首场降雪", "2023-09-21", "北国日报"),
        ("绥芬河口岸", "2022-07-08", "东北网"),
    ]
    assert articles[1].text == "绥芬河口岸上半年货运量六百五十万吨。\n同比增长百分之十八。"
    refs = [str(c.citation) for c in chunk_articles(articles, 300, 0)]
    assert refs == ["news.csv row 2", "news.csv row 4"]  # the header is row 1


def test_jsonl_rows_are_cited_by_line() -> None:
    lines = [
        json.dumps(
            {
                "title": "哈尔滨冰雪大世界开园",
                "date": "2024-12-18",
                "text": "哈尔滨冰雪大世界今日开园，园区面积一百万平方米。",
            },
            ensure_ascii=False,
        ),
        "",
        json.dumps(
            {"text": "齐齐哈尔扎龙保护区的丹顶鹤今春提前回迁，数量超过四百只。"}, ensure_ascii=False
        ),
    ]
    articles = load_bytes("\n".join(lines).encode(), "news.jsonl")
    assert articles[0].title == "哈尔滨冰雪大世界开园" and articles[0].date == "2024-12-18"
    assert (
        articles[1].title == "齐齐哈尔扎龙保护区的丹顶鹤今春提前回迁，数量超过…"
    )  # first sentence, cut
    assert [str(c.citation) for c in chunk_articles(articles, 300, 0)] == [
        "news.jsonl row 1",
        "news.jsonl row 3",
    ]


def test_headerless_tsv_is_label_and_text() -> None:
    data = "体育\t黑龙江冰球队夺得全国锦标赛冠军，决赛三比一战胜对手。\n财经\t七台河一季度地区生产总值增长百分之六。\n"
    articles = load_bytes(data.encode(), "thuc.tsv")
    assert [a.title for a in articles] == [
        "体育 · 黑龙江冰球队夺得全国锦标赛冠军，决赛三比一战胜对…",
        "财经 · 七台河一季度地区生产总值增长百分之六",
    ]
    assert str(chunk_articles(articles, 300, 0)[1].citation) == "thuc.tsv row 2"


def test_a_csv_without_a_text_column_is_skipped() -> None:
    with pytest.raises(UnreadableFileError, match="no text column"):
        load_bytes(b"a,b\n1,2\n", "numbers.csv")


def test_a_bad_jsonl_line_skips_only_its_row_and_is_named() -> None:
    lines = ['{"text": "第一篇正文。"}', "{oops", "[1, 2]", '{"text": "第四篇正文。"}']
    with pytest.warns(SkippedFileWarning, match="line 2 is not a JSON object.*line 3"):
        articles = load_bytes("\n".join(lines).encode(), "dump.jsonl")
    assert [a.text for a in articles] == ["第一篇正文。", "第四篇正文。"]
    assert [a.line_of[0] for a in articles] == [1, 4]


def test_a_jsonl_file_with_no_good_line_is_skipped() -> None:
    with pytest.raises(UnreadableFileError, match="line 1"):
        load_bytes(b"{oops\n[1]\n", "bad.jsonl")


# ------------------------------------------------------------------ records and errors


def test_citation_and_chunk_round_trip_the_new_fields() -> None:
    (chunk,) = chunk_articles(load_bytes(_pdf(PDF_PAGES[1:]), "p.pdf"), 500, 0)
    assert Chunk.from_dict(json.loads(json.dumps(chunk.to_dict()))) == chunk
    rows = chunk_articles(
        load_bytes(
            b"title,date,text\nT,2020-01-02,\xe6\xad\xa3\xe6\x96\x87\xe3\x80\x82\n", "r.csv"
        ),
        300,
        0,
    )
    assert Chunk.from_dict(rows[0].to_dict()) == rows[0] and rows[0].date == "2020-01-02"
    # the text file forms are unchanged
    assert str(Citation("a.txt", "t", "", 3, 5, 0, 9)) == "a.txt:3-5"
    assert str(Citation("a.txt", "t", "", 1, 1, 0, 9, 37, 290, True)) == "a.txt:1:37-290"


CORRUPT = {
    "broken.docx": b"PK\x03\x04 this is not really a zip archive" * 20,
    "truncated.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    + b"\x00garbage" * 50,
    "notapdf.pdf": "# 标题\n\n这其实是一个文本文件。".encode(),
    "binary.html": bytes(range(256)) * 8,
    "binary.csv": bytes(range(256)) * 8,
}


def _zip_without_document() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a word document")
    return buffer.getvalue()


@pytest.mark.parametrize("name", [*CORRUPT, "empty-zip.docx"])
def test_a_corrupt_file_of_each_format_is_skipped_with_a_reason(name: str) -> None:
    data = CORRUPT.get(name) or _zip_without_document()
    with pytest.raises(UnreadableFileError, match=re.escape(name)) as caught:
        load_bytes(data, name)
    assert "skipped" in str(caught.value)


def test_oversized_binary_files_are_refused_by_the_size_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("rag.corpus.MAX_FILE_BYTES", 1000)
    with pytest.raises(UnreadableFileError, match="byte limit"):
        load_bytes(_pdf(PDF_PAGES), "big.pdf")


def test_an_unsupported_type_names_the_supported_ones() -> None:
    with pytest.raises(UnreadableFileError, match=r"\.jpg files are not supported") as caught:
        load_bytes(b"\xff\xd8\xff", "photo.jpg")
    for suffix in (".txt", ".md", ".html", ".docx", ".pdf", ".csv"):
        assert suffix in str(caught.value)


def test_a_folder_of_mixed_formats_loads_and_skips_bad_files(tmp_path: Path) -> None:
    (tmp_path / "wind.pdf").write_bytes(_pdf(PDF_PAGES))
    (tmp_path / "scan.pdf").write_bytes(CORRUPT["truncated.pdf"])
    (tmp_path / "snow.html").write_bytes(PAGE_BLOG.encode())
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    assert set(scan_corpus(tmp_path).files) == {"scan.pdf", "snow.html", "wind.pdf"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_folder(tmp_path)
    assert sorted(loaded) == ["snow.html", "wind.pdf"]
    assert any("scan.pdf" in str(w.message) for w in caught if w.category is SkippedFileWarning)
    assert set(SUFFIXES) >= {".html", ".htm", ".docx", ".pdf", ".jsonl", ".csv", ".tsv"}


# ----------------------------------------------------------------------------- uploads


@pytest.fixture()
def small(tmp_path: Path) -> Retriever:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "seed.txt").write_text("# 标题\n\n绥芬河今年以来签约项目141个。\n", encoding="utf-8")
    return Retriever.from_folder(corpus, Config(embedder="hash"))


@pytest.mark.parametrize(
    ("name", "data", "fact", "ref"),
    [
        ("wind.pdf", _pdf(PDF_PAGES), "3837.5MW", r"wind\.pdf p\.(2|1-2)"),
        (
            "qth.docx",
            _docx(
                [("七台河冰雪经济产业园开工", "Title"), ("研创中心总建筑面积2800平方米。", None)]
            ),
            "2800平方米",
            r"qth\.docx para 2",
        ),
        ("snow.html", PAGE_BLOG.encode(), "十八厘米", r"snow\.html para \d+(-\d+)?"),
        (
            "news.csv",
            "title,text\n降雪,漠河积雪厚度达到十八厘米。\n".encode(),
            "十八厘米",
            r"news\.csv row 2",
        ),
    ],
)
def test_uploads_accept_the_new_types(
    small: Retriever, name: str, data: bytes, fact: str, ref: str
) -> None:
    report = small.add_document(name, data)
    assert report.added == [name]
    hits = small.retrieve(fact, k=5)
    hit = next(h for h in hits if h.citation.file == name)
    assert re.fullmatch(ref, str(hit.citation)), str(hit.citation)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("broken.docx", CORRUPT["broken.docx"]),
        ("truncated.pdf", CORRUPT["truncated.pdf"]),
        ("photo.jpg", b"\xff\xd8\xff"),
    ],
)
def test_a_bad_upload_is_refused_and_changes_nothing(
    small: Retriever, name: str, data: bytes
) -> None:
    before = sorted(p.name for p in small.config.corpus.iterdir()), len(small.index)
    with pytest.raises(rag.UnreadableFileError, match=re.escape(name)):
        small.add_document(name, data)
    assert (sorted(p.name for p in small.config.corpus.iterdir()), len(small.index)) == before
