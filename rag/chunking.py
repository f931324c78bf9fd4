"""Chunking: split each article into overlapping passages that never cross an article."""

from __future__ import annotations

from collections.abc import Iterable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from .records import Article, Chunk

# Paragraph first, then sentence ends (full- and half-width: 001 uses half-width), then
# clause commas; the separator stays at the end of its sentence ("end"), never moving a
# 。 to the start of the next chunk.
SEPARATORS = ["\n", "。", "！", "？", "；", "!", "?", ";", "，", ",", "、", ""]


def make_splitter(chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    """The Chinese-aware splitter used for every article.

    Args:
        chunk_size: maximum characters per chunk.
        chunk_overlap: characters shared by neighbouring chunks.

    Returns:
        A configured ``RecursiveCharacterTextSplitter``.
    """
    return RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        keep_separator="end",
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        length_function=len,
        is_separator_regex=False,
        strip_whitespace=True,
    )


def chunk_article(article: Article, splitter: RecursiveCharacterTextSplitter) -> list[Chunk]:
    """Split one article into chunks with offsets, source lines and columns.

    Args:
        article: a cleaned article.
        splitter: from :func:`make_splitter`.

    Returns:
        The chunks in reading order; ``article.text[c.start:c.end] == c.text`` for each.
    """
    chunks: list[Chunk] = []
    cursor = 0
    for piece in splitter.split_text(article.text):
        # Pieces are exact substrings in order; overlap means the next one starts
        # before the previous one ends, so search from just after the previous start.
        start = article.text.find(piece, cursor)
        if start < 0:  # pragma: no cover - would mean the splitter rewrote text
            raise AssertionError(f"chunk not found in article {article.id}")
        end = start + len(piece)
        line_start, line_end = article.lines(start, end)
        col_start, col_end = article.columns(start, end)
        chunks.append(
            Chunk(
                id=f"{article.id}:{len(chunks)}",
                file=article.file,
                article_index=article.index,
                title=article.title,
                byline=article.byline,
                start=start,
                end=end,
                line_start=line_start,
                line_end=line_end,
                text=piece,
                col_start=col_start,
                col_end=col_end,
                long_line=article.in_long_line(start, end),
                unit=article.unit,
                date=article.date,
            )
        )
        cursor = start + 1
    return chunks


def chunk_articles(articles: Iterable[Article], chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Chunk many articles with one splitter.

    Args:
        articles: cleaned articles.
        chunk_size: maximum characters per chunk.
        chunk_overlap: characters shared by neighbouring chunks.

    Returns:
        All chunks, article by article.
    """
    splitter = make_splitter(chunk_size, chunk_overlap)
    return [chunk for article in articles for chunk in chunk_article(article, splitter)]
