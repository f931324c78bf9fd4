"""Corpus loading and cleaning, on the messy seed pages and on bad files."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from rag.corpus import SkippedFileWarning, decode_bytes, load_file, load_folder, parse_articles
from rag.errors import CorpusError, UnreadableFileError

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
F000, F001, F002, F003, F004 = sorted(p.name for p in SEEDS.glob("*.txt"))


@pytest.fixture(scope="module")
def seeds() -> dict[str, list]:
    return load_folder(SEEDS)


def test_all_five_seed_files_load(seeds: dict[str, list]) -> None:
    assert sorted(seeds) == [F000, F001, F002, F003, F004]
    assert all(seeds[name] for name in seeds)


def test_hard_wrapped_file_comes_out_as_whole_sentences(seeds: dict[str, list]) -> None:
    paragraphs = [p for a in seeds[F003] for p in a.text.split("\n")]
    assert len(paragraphs) >= 30
    for paragraph in paragraphs:
        # every cleaned paragraph ends a sentence (the source broke lines every ~16 chars)
        assert paragraph[-1] in "。！？”…", paragraph
    body = "\n".join(a.text for a in seeds[F003])
    assert "黑龙江省逊克县翠宏山铁多金属矿作为黑龙江省唯一被列入国家重点推进的铁矿项目" in body


def test_words_split_across_lines_are_joined(seeds: dict[str, list]) -> None:
    text_002 = "\n".join(a.text for a in seeds[F002])
    text_004 = "\n".join(a.text for a in seeds[F004])
    text_000 = "\n".join(a.text for a in seeds[F000])
    assert "七台河市成立接驳返岗人员领导小组" in text_004
    assert "很多企业延缓了今年的复工时间" in text_004
    assert "该项目总投资1000万元，总建筑面积2800平方米" in text_000
    assert "万锂泰" in text_002


def test_titles_and_bylines_recognised(seeds: dict[str, list]) -> None:
    by_title = {a.title: a for articles in seeds.values() for a in articles}
    assert by_title["救助异乡人 他乡变“暖乡”"].byline == "周驰 本报记者 赵宇清"
    assert by_title["研学活动助力广纳贤才"].byline == "本报讯（吴明巍 记者赵宇清）"
    assert "七台河 重点项目集聚 城市蓄力蝶变" in by_title  # kicker line joined to its title
    assert by_title["沐春风！ 联顺生物项目抢工期"].byline == "詹俊驰 黑龙江日报全媒体记者 赵宇清"
    # 003 has no title markup: titles come from the headline list at the foot of the page
    flash = by_title["伊春市金林区以法治服务优化营商环境"]
    assert flash.byline == "本报讯 张凯 记者袁小峰报道"
    assert "金林区" in flash.text
    assert by_title["逊克县以一流营商环境助力民营经济发展"].byline == "本报讯 本报记者 袁小峰"
    # bylines are not left in the body text
    for articles in seeds.values():
        for article in articles:
            assert not article.text.startswith(("□", "本报讯"))


def test_photo_captions_are_kept_apart_from_body(seeds: dict[str, list]) -> None:
    article = next(a for a in seeds[F002] if a.title.endswith("联顺生物项目抢工期"))
    assert "联顺绿色生物医药产业项目全景。 李福摄" in article.captions
    assert "李福摄" not in article.text


def test_repeated_article_is_kept_once(seeds: dict[str, list]) -> None:
    # printed four times on the page (lines 130, 141, 152, 163)
    opening = "七台河市援助湖北孝感医疗队队员、勃利县人民医院普外科医生董志厚瘦了"
    bodies = [a.text for a in seeds[F004] if a.text.startswith(opening)]
    assert len(bodies) == 1
    # the repeated paragraphs inside one article are kept once too
    main_story = next(a.text for a in seeds[F004] if a.text.startswith("21日下午"))
    assert sum(p.startswith("从没有硝烟的战场") for p in main_story.split("\n")) == 1


def test_every_character_maps_back_to_its_source_line_and_column(seeds: dict[str, list]) -> None:
    for name, articles in seeds.items():
        source = (SEEDS / name).read_text(encoding="utf-8").splitlines()
        for article in articles:
            assert len(article.line_of) == len(article.col_of) == len(article.text)
            for char, line, col in zip(article.text, article.line_of, article.col_of, strict=True):
                if not char.isspace():
                    assert source[line - 1][col - 1] == char, (name, line, col, char)


def test_columns_count_from_the_raw_line_start(tmp_path: Path) -> None:
    # leading ideographic and plain spaces are stripped but still counted as columns
    text = "# 标题\n\n\u3000\u3000第一段正文，说明情况。\n  第二段 正文。\n"
    [article] = parse_articles(text, "x.txt")
    assert article.text == "第一段正文，说明情况。\n第二段 正文。"
    assert (article.line_of[0], article.col_of[0]) == (3, 3)
    second = article.text.index("第二段")
    assert (article.line_of[second], article.col_of[second]) == (4, 3)
    assert article.columns(0, len(article.text)) == (3, 9)


def test_seed_pages_have_no_long_lines(seeds: dict[str, list]) -> None:
    # paragraph-per-line pages keep their plain file:line references
    for articles in seeds.values():
        for article in articles:
            assert not article.long_lines


def test_gbk_file_is_decoded(tmp_path: Path) -> None:
    text = "# 哈尔滨冰雪大世界开园\n\n本报讯（记者张三）第二十六届哈尔滨冰雪大世界于12月18日开园，占地面积100万平方米。\n"
    (tmp_path / "gbk.txt").write_bytes(text.encode("gbk"))
    [article] = load_file(tmp_path / "gbk.txt")
    assert article.title == "哈尔滨冰雪大世界开园"
    assert "占地面积100万平方米" in article.text
    assert article.byline == "本报讯（记者张三）"


def test_traditional_characters_are_kept(tmp_path: Path) -> None:
    (tmp_path / "trad.md").write_text(
        "# 黑龍江新聞\n\n哈爾濱市舉辦冰雪節，遊客超過百萬人次。\n", encoding="utf-8"
    )
    [article] = load_file(tmp_path / "trad.md")
    assert article.text == "哈爾濱市舉辦冰雪節，遊客超過百萬人次。"


def test_bad_files_are_skipped_with_a_warning_naming_them(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("# 标题\n\n正文第一句。\n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "empty.md").write_text("   \n\n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes(b"\xff\xfe\xfa caf\xe9 " * 50)
    (tmp_path / "ignored.pdf").write_bytes(b"%PDF")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load_folder(tmp_path)
    assert list(result) == ["good.txt"]
    messages = " ".join(str(w.message) for w in caught if w.category is SkippedFileWarning)
    for name in ("binary.txt", "empty.md", "latin1.txt"):
        assert name in messages


def test_decode_refuses_binary() -> None:
    with pytest.raises(UnreadableFileError, match="binary"):
        decode_bytes(b"PK\x03\x04\x00\x00", "archive.txt")


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not found"):
        load_folder(tmp_path / "nope")


def test_headings_split_a_markdown_file_into_articles() -> None:
    text = (
        "# 第一篇\n\n□文/摄 记者甲\n\n第一篇正文。\n\n## 第二篇\n\n本报讯（记者乙）第二篇正文。\n"
    )
    first, second = parse_articles(text, "x.md")
    assert (first.title, first.byline, first.text) == ("第一篇", "文/摄 记者甲", "第一篇正文。")
    assert (second.title, second.text) == ("第二篇", "第二篇正文。")
    assert second.lines(0, len(second.text)) == (9, 9)
    assert re.fullmatch(r"本报讯（记者乙）", second.byline)
