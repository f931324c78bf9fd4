"""Plain typed records passed between the pipeline stages: Article → Chunk → Hit."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Characters. A source line longer than this is not a paragraph but a whole article (or
# more) on one line, as news dumps store them: a passage in it is cited by column. Longer
# than any ordinary paragraph line (the seed pages' longest is 398 characters), so files
# laid out a paragraph per line keep their plain ``file:line`` references.
LONG_LINE = 500

# How a reference names the unit a non-text format is cited by (see :class:`Citation`).
UNIT_LABELS = {"page": "p.", "row": "row ", "para": "para "}


@dataclass(frozen=True)
class Article:
    """One cleaned news article.

    ``text`` is the cleaned body: whole paragraphs joined by ``"\\n"``. ``line_of[i]`` is
    the 1-based line of the source file that character ``text[i]`` came from and
    ``col_of[i]`` its 1-based column in that line (counted in characters), so any span of
    ``text`` can be cited as ``file:line-line`` or, inside a long line, by column.
    ``long_lines`` holds the source lines longer than :data:`LONG_LINE` characters. A
    headline split off the start of a one-line article is the ``title`` and not part of
    ``text``.

    ``unit`` says what ``line_of`` counts: ``""`` source lines of a text file,
    ``"page"`` pages of a PDF, ``"row"`` rows of a table (CSV/TSV/JSONL) and ``"para"``
    paragraphs of a Word document or of a web page's extracted main text. ``date`` is
    the publication date (ISO ``YYYY-MM-DD``) when the source states one, else ``""``.
    """

    file: str
    index: int
    title: str
    byline: str
    text: str
    line_of: tuple[int, ...]
    title_line: int
    captions: tuple[str, ...] = ()
    col_of: tuple[int, ...] = ()
    long_lines: frozenset[int] = frozenset()
    unit: str = ""
    date: str = ""

    @property
    def id(self) -> str:
        return f"{self.file}#{self.index}"

    def lines(self, start: int, end: int) -> tuple[int, int]:
        """Source line range (inclusive) of ``text[start:end]``."""
        if not self.line_of:
            return (self.title_line, self.title_line)
        end = max(end, start + 1)
        return (self.line_of[start], self.line_of[min(end, len(self.line_of)) - 1])

    def columns(self, start: int, end: int) -> tuple[int, int]:
        """Source columns (1-based, inclusive) of the first and last character of
        ``text[start:end]``, each in its own line; ``(0, 0)`` when unknown."""
        if not self.col_of:
            return (0, 0)
        end = max(end, start + 1)
        return (self.col_of[start], self.col_of[min(end, len(self.col_of)) - 1])

    def in_long_line(self, start: int, end: int) -> bool:
        """True when ``text[start:end]`` starts or ends in a line over :data:`LONG_LINE`."""
        first, last = self.lines(start, end)
        return first in self.long_lines or last in self.long_lines


@dataclass(frozen=True)
class Chunk:
    """A passage of one article, the unit that is embedded, indexed and cited.

    ``start``/``end`` are character offsets into the article's ``text``
    (``article.text[start:end] == text``); ``line_start``/``line_end`` the source lines,
    ``col_start``/``col_end`` the source columns, and ``long_line``, ``unit`` and
    ``date`` as in :class:`Citation`.
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
    col_start: int = 0
    col_end: int = 0
    long_line: bool = False
    unit: str = ""
    date: str = ""

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
            col_start=self.col_start,
            col_end=self.col_end,
            long_line=self.long_line,
            unit=self.unit,
            date=self.date,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**data)


@dataclass(frozen=True)
class Citation:
    """Where a passage comes from: file, article, byline, and a locator in the file.

    The locator is the source lines ``line_start``-``line_end`` (1-based, inclusive) plus
    a character span: ``col_start`` is the column of the passage's first character in
    ``line_start`` and ``col_end`` the column of its last character in ``line_end``
    (1-based, inclusive, counted in characters of the decoded text, not bytes; 0 when
    unknown). ``start``/``end`` are offsets into the cleaned article text instead.
    ``long_line`` is True when the passage starts or ends in a source line longer than
    :data:`LONG_LINE` characters (e.g. a one-line article).

    ``str(citation)``, the reference shown everywhere (terminal, chat, JSON ``ref``):

    - ``file.txt:3`` or ``file.txt:3-5``: lines of at most :data:`LONG_LINE` characters;
    - ``file.txt:1:37-290``: inside one long line, line 1, columns 37 to 290;
    - ``file.txt:3:120-5:40``: from line 3 column 120 to line 5 column 40, when the
      passage spans lines and one of its end lines is long.

    Other formats count another ``unit`` in ``line_start``/``line_end`` (columns 0):

    - ``file.pdf p.3`` or ``file.pdf p.3-4``: pages of a PDF (``unit="page"``);
    - ``file.csv row 12``: a row of a table, one article per row (``unit="row"``);
    - ``file.docx para 4`` or ``file.html para 2-3``: paragraphs of a Word document or
      of a web page's main text (``unit="para"``).

    ``date`` is the article's publication date (``YYYY-MM-DD``) when known, else ``""``;
    it is not part of the reference.
    """

    file: str
    title: str
    byline: str
    line_start: int
    line_end: int
    start: int
    end: int
    col_start: int = 0
    col_end: int = 0
    long_line: bool = False
    unit: str = ""
    date: str = ""

    def __str__(self) -> str:
        if self.unit in UNIT_LABELS:
            label = UNIT_LABELS[self.unit]
            span = (
                f"{self.line_start}"
                if self.line_start == self.line_end
                else f"{self.line_start}-{self.line_end}"
            )
            return f"{self.file} {label}{span}"
        if self.long_line and self.col_start > 0 and self.col_end > 0:
            if self.line_start == self.line_end:
                cols = (
                    f"{self.col_start}"
                    if self.col_start == self.col_end
                    else f"{self.col_start}-{self.col_end}"
                )
                return f"{self.file}:{self.line_start}:{cols}"
            return f"{self.file}:{self.line_start}:{self.col_start}-{self.line_end}:{self.col_end}"
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
    ``answer_start``/``answer_end`` are offsets into ``text`` of the span inside the
    sentence that answers (the number with its unit, the date, the name; see
    :meth:`rag.ranking.QueryTerms.answer_span`), ``-1`` when there is none or the
    passage does not fit the question.
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
    answer_start: int = -1
    answer_end: int = -1

    @property
    def sentence(self) -> str:
        return self.text[self.sentence_start : self.sentence_end]

    @property
    def answer(self) -> str:
        """The answering span of the sentence ("" when none is marked)."""
        if 0 <= self.answer_start < self.answer_end:
            return self.text[self.answer_start : self.answer_end]
        return ""

    def to_dict(self) -> dict[str, Any]:
        """The hit as JSON-ready data: every field (``answer_start``/``answer_end`` among
        them), the sentence, its answering span as ``answer``, and the citation both
        nested (with its ``ref``, ``str(citation)``) and as flat ``ref``/``file``/``title``/
        ``byline`` fields (the form the chat's ``/ask`` API has always given)."""
        data = asdict(self)
        data["sentence"] = self.sentence
        data["answer"] = self.answer
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
