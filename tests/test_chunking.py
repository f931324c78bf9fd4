"""Chunking: offsets and line ranges round-trip to the source; no chunk crosses an article."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.chunking import chunk_articles
from rag.corpus import load_folder, parse_articles

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def seeds() -> dict[str, list]:
    return load_folder(SEEDS)


@pytest.mark.parametrize("size,overlap", [(300, 60), (150, 30), (500, 0)])
def test_offsets_and_lines_round_trip_for_every_chunk(
    seeds: dict[str, list], size: int, overlap: int
) -> None:
    for name, articles in seeds.items():
        source = (SEEDS / name).read_text(encoding="utf-8").splitlines()
        chunks = chunk_articles(articles, size, overlap)
        assert chunks
        for chunk in chunks:
            article = articles[chunk.article_index]
            assert chunk.file == name and chunk.title == article.title
            assert article.text[chunk.start : chunk.end] == chunk.text
            assert len(chunk.text) <= size
            cited = _squash("".join(source[chunk.line_start - 1 : chunk.line_end]))
            for paragraph in chunk.text.split("\n"):
                assert _squash(paragraph) in cited, (chunk.id, paragraph[:20])
            # the columns point at the chunk's first and last characters
            assert source[chunk.line_start - 1][chunk.col_start - 1] == chunk.text[0]
            assert source[chunk.line_end - 1][chunk.col_end - 1] == chunk.text[-1]
            assert not chunk.long_line and str(chunk.citation).startswith(f"{name}:")


def test_no_chunk_crosses_an_article(seeds: dict[str, list]) -> None:
    for articles in seeds.values():
        for chunk in chunk_articles(articles, 300, 60):
            assert chunk.text in articles[chunk.article_index].text
            assert chunk.id.startswith(f"{chunk.file}#{chunk.article_index}:")


def test_sentence_punctuation_stays_with_its_sentence(seeds: dict[str, list]) -> None:
    chunks = [c for articles in seeds.values() for c in chunk_articles(articles, 150, 30)]
    assert not [c.id for c in chunks if c.text[0] in "。！？；，,!?;"]
    ended = sum(c.text[-1] in "。！？；”!?;" for c in chunks)
    assert ended / len(chunks) > 0.8


def test_overlap_repeats_text_between_neighbours(seeds: dict[str, list]) -> None:
    chunks = chunk_articles(seeds[sorted(seeds)[0]], 150, 60)
    same_article = [
        (a, b)
        for a, b in zip(chunks, chunks[1:], strict=False)
        if a.article_index == b.article_index
    ]
    assert any(b.start < a.end for a, b in same_article)


def test_embedded_text_carries_the_title(seeds: dict[str, list]) -> None:
    chunk = chunk_articles(seeds[sorted(seeds)[0]], 300, 60)[0]
    assert chunk.embed_text.startswith(chunk.title) and chunk.embed_text.endswith(chunk.text)


def test_long_line_chunks_round_trip_by_column() -> None:
    line = "标题在这里本报讯(记者 张三)" + "正文第一句说明情况，第二句给出数字，总投资10亿元。" * 60
    [article] = parse_articles(line + "\n", "one.txt")
    assert article.title == "标题在这里"
    chunks = chunk_articles([article], 300, 60)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.long_line and chunk.line_start == chunk.line_end == 1
        assert line[chunk.col_start - 1 : chunk.col_end] == chunk.text
        assert str(chunk.citation) == f"one.txt:1:{chunk.col_start}-{chunk.col_end}"
