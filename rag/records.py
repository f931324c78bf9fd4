"""Plain typed records passed between the pipeline stages: Article → Chunk → Hit."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Article:
    """One cleaned news article.

    ``text`` is the cleaned body: whole paragraphs joined by ``"\\n"``. ``line_of[i]`` is
    the 1-based line of the source file that character ``text[i]`` came from, so any
    span of ``text`` can be cited as ``file:line-line``.
    """

    file: str
    index: int
    title: str
    byline: str
    text: str
    line_of: tuple[int, ...]
    title_line: int
    captions: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.file}#{self.index}"

    def lines(self, start: int, end: int) -> tuple[int, int]:
        """Source line range (inclusive) of ``text[start:end]``."""
        if not self.line_of:
            return (self.title_line, self.title_line)
        end = max(end, start + 1)
        return (self.line_of[start], self.line_of[min(end, len(self.line_of)) - 1])


@dataclass(frozen=True)
class Chunk:
    """A passage of one article, the unit that is embedded, indexed and cited.

    ``start``/``end`` are character offsets into the article's ``text``
    (``article.text[start:end] == text``); ``line_start``/``line_end`` the source lines.
    """

    id: str
    file: str
    article_index: int
    title: str
    byline: str
    start: int
    end: int
    line_start: int
    line_end: int
    text: str

    @property
    def embed_text(self) -> str:
        """What is embedded: the passage with its article title as context."""
        return f"{self.title}\n{self.text}" if self.title else self.text

    @property
    def citation(self) -> Citation:
        """Where this chunk comes from, as a hit cites it."""
        return Citation(
            file=self.file,
            title=self.title,
            byline=self.byline,
            line_start=self.line_start,
            line_end=self.line_end,
            start=self.start,
            end=self.end,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**data)


@dataclass(frozen=True)
class Citation:
    """Where a passage comes from: file, article, byline, source lines and offsets."""

    file: str
    title: str
    byline: str
    line_start: int
    line_end: int
    start: int
    end: int

    def __str__(self) -> str:
        lines = (
            f"{self.line_start}"
            if self.line_start == self.line_end
            else f"{self.line_start}-{self.line_end}"
        )
        return f"{self.file}:{lines}"


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with its citation and the sentence that best answers.

    ``sentence_start``/``sentence_end`` are offsets into ``text`` of that sentence.
    ``fits_question`` is ``False`` when no sentence of the passage holds the kind of
    answer the question asks for (a number with the asked unit, the asked attribute, a
    date, a person's name), or its article does not name the place the question names.
    """

    rank: int
    score: float
    text: str
    citation: Citation
    chunk_id: str
    sentence_start: int = 0
    sentence_end: int = 0
    fits_question: bool = True
    extra: dict[str, float] = field(default_factory=dict, compare=False)
    also_cited: tuple[Citation, ...] = ()  # the same passage found in other files or places

    @property
    def sentence(self) -> str:
        return self.text[self.sentence_start : self.sentence_end]

    def to_dict(self) -> dict[str, Any]:
        """The hit as JSON-ready data: every field, the sentence, and the citation both
        nested (with its ``ref``, ``file:lines``) and as flat ``ref``/``file``/``title``/
        ``byline`` fields (the form the chat's ``/ask`` API has always given)."""
        data = asdict(self)
        data["sentence"] = self.sentence
        data["citation"]["ref"] = str(self.citation)
        data.update(
            ref=str(self.citation),
            file=self.citation.file,
            title=self.citation.title,
            byline=self.citation.byline,
        )
        data["also_cited"] = [
            {**asdict(citation), "ref": str(citation)} for citation in self.also_cited
        ]
        return data
