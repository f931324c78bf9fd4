"""Corpus loading and cleaning: files → decoded text → repaired paragraphs → articles."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorpusError, UnreadableFileError
from .lexical import load_jieba
from .records import Article

SUFFIXES = (".txt", ".md")
MAX_FILE_BYTES = 20 * 1024 * 1024

TERMINAL = set("。！？!?；;…")
CLOSERS = set("”’」』)）】》")
SOFT_END = set("，,、：:“‘《（(【—-·")
PROSE_PUNCT = set("，,。；;：:！？!?")

CAPTION_END = re.compile(r"(\S摄|提供|供图|资料图)$")
CREDIT_ONLY = re.compile(r"^\S{1,6}摄$")
PHOTO_MARKER = re.compile(r"^[①-⑳\d]{1,2}$")
PAGE_NOTE = re.compile(r"^[（(]本版.*[）)]$")
BYLINE_LINE = re.compile(r"^(□|本报记者|黑龙江日报\s*全媒体记者|全媒体记者|记者\s)")
# "本报讯（吴明巍 记者赵宇清）…", "本报讯 张凯 记者袁小峰报道…", "本报讯 …"
NEWS_FLASH = re.compile(r"^本报讯\s*(?:[（(][^）)]{1,40}[）)]|\S{1,8}\s*记者\s*\S{1,5}?报道|)\s*")


class SkippedFileWarning(UserWarning):
    """A corpus file was skipped (binary, undecodable, empty or too large)."""


@dataclass
class _Paragraph:
    """A run of joined source lines with the source line of every character."""

    text: str = ""
    line_of: list[int] = field(default_factory=list)
    kind: str = "body"  # body | heading | byline | caption | marker | note
    level: int = 0  # markdown heading level, 0 when inferred

    def append(self, text: str, line: int) -> None:
        last, first = self.text[-1:], text[:1]
        latin = last.isascii() and last.isalnum() and first.isascii() and first.isalnum()
        if latin or self.text.startswith("□"):  # keep words and byline names apart
            self.text += " "
            self.line_of.append(self.line_of[-1])
        self.text += text
        self.line_of.extend([line] * len(text))

    def drop_prefix(self, n: int) -> None:
        self.text, self.line_of = self.text[n:], self.line_of[n:]


def decode_bytes(data: bytes, name: str) -> str:
    """Decode a file's bytes as UTF-8, else GB18030 (a superset of GBK/GB2312).

    Args:
        data: raw file content.
        name: file name, for the error message.

    Returns:
        The decoded text, BOM removed.

    Raises:
        UnreadableFileError: the bytes are binary or in no encoding we can decode.
    """
    if b"\x00" in data[:65536]:
        raise UnreadableFileError(f"{name}: looks like a binary file (NUL bytes), skipped")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        controls = sum(
            1 for c in text[:20000] if unicodedata.category(c) == "Cc" and c not in "\r\n\t\f"
        )
        if controls > max(5, len(text[:20000]) // 100):
            raise UnreadableFileError(f"{name}: looks like a binary file, skipped")
        return text
    raise UnreadableFileError(f"{name}: not UTF-8 or GBK/GB18030 text, skipped")


def iter_corpus_files(folder: Path) -> Iterator[Path]:
    """Every ``.txt``/``.md`` file below ``folder``, in a stable order."""
    if not folder.is_dir():
        raise CorpusError(f"corpus folder not found: {folder}")
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in SUFFIXES and not path.name.startswith("."):
            yield path


def file_digest(path: Path) -> str:
    """Content hash used to notice changed files."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_file(path: Path, name: str | None = None) -> list[Article]:
    """Read, decode and clean one file into articles.

    Args:
        path: the file.
        name: the name to cite it by (default: its file name).

    Returns:
        The file's articles, repeats removed.

    Raises:
        UnreadableFileError: binary, undecodable, empty or oversized file.
    """
    name = name or path.name
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise UnreadableFileError(f"{name}: {size} bytes is over the {MAX_FILE_BYTES} byte limit")
    return load_bytes(path.read_bytes(), name)


def load_bytes(data: bytes, name: str) -> list[Article]:
    """Decode and clean one document's content into articles.

    Args:
        data: the raw file content.
        name: the name to cite it by.

    Returns:
        The document's articles, repeats removed.

    Raises:
        UnreadableFileError: wrong file type, binary, undecodable, empty or oversized.
    """
    if Path(name).suffix.lower() not in SUFFIXES:
        raise UnreadableFileError(f"{name}: only .txt and .md articles can be added")
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableFileError(
            f"{name}: {len(data)} bytes is over the {MAX_FILE_BYTES} byte limit"
        )
    text = decode_bytes(data, name)
    if not text.strip():
        raise UnreadableFileError(f"{name}: the file is empty")
    articles = parse_articles(text, name)
    if not articles:
        raise UnreadableFileError(f"{name}: no article text found, skipped")
    return articles


def load_folder(folder: Path) -> dict[str, list[Article]]:
    """Load every readable article file of a folder.

    Unreadable files are skipped with a :class:`SkippedFileWarning` naming them.

    Args:
        folder: the corpus folder.

    Returns:
        Articles by file name (path relative to ``folder``).
    """
    result: dict[str, list[Article]] = {}
    for path in iter_corpus_files(folder):
        name = path.relative_to(folder).as_posix()
        try:
            result[name] = load_file(path, name)
        except (UnreadableFileError, OSError) as exc:
            warnings.warn(str(exc), SkippedFileWarning, stacklevel=2)
    return result


# ----------------------------------------------------------------------------- parsing


def parse_articles(text: str, name: str) -> list[Article]:
    """Split one file's text into cleaned articles.

    Args:
        text: the decoded file content.
        name: the file name recorded in each article.

    Returns:
        The articles in file order; repeated articles and paragraphs kept once.
    """
    blocks = [
        (line.strip().replace("\u3000", " ").strip(), number)
        for number, line in enumerate(text.splitlines(), start=1)
    ]
    blocks = [(line, number) for line, number in blocks if line]
    paragraphs = _classify(_join_lines(blocks))
    return _assemble(paragraphs, name)


def _is_wrapped(blocks: list[tuple[str, int]]) -> bool:
    """True for hard-wrapped files (every line cut at a narrow fixed width)."""
    lengths = sorted(len(line) for line, _ in blocks if not line.startswith("#"))
    return len(lengths) >= 20 and lengths[len(lengths) // 2] <= 24


def _ends_sentence(line: str) -> bool:
    last = line[-1]
    return last in TERMINAL or (last in CLOSERS and len(line) > 1 and line[-2] in TERMINAL)


def _standalone(line: str) -> bool:
    """Lines that end a paragraph and never take the next line."""
    return bool(
        line.startswith("#")
        or PHOTO_MARKER.match(line)
        or PAGE_NOTE.match(line)
        or CAPTION_END.search(line)
    )


def _punctuation_free(line: str) -> bool:
    return not any(c in PROSE_PUNCT for c in line)


def _word_spans(left: str, right: str) -> bool:
    """True when a dictionary word runs across the line break (e.g. 领|导)."""
    window = left[-4:] + right[:4]
    cut = len(left[-4:])
    position = 0
    for token in load_jieba().cut(window, HMM=False):
        end = position + len(token)
        if position < cut < end:
            return True
        position = end
    return False


def _join_lines(blocks: list[tuple[str, int]]) -> list[_Paragraph]:
    wrapped = _is_wrapped(blocks)
    paragraphs: list[_Paragraph] = []
    current: _Paragraph | None = None
    last_line = ""
    for line, number in blocks:
        if current is not None and _joins(last_line, line, wrapped, current):
            current.append(line, number)
        else:
            current = _Paragraph()
            current.append(line, number)
            paragraphs.append(current)
        last_line = line
    return paragraphs


def _joins(last_line: str, line: str, wrapped: bool, paragraph: _Paragraph) -> bool:
    """Decide whether the break between two source lines is layout damage to repair."""
    if _standalone(last_line) or line.startswith(("#", "本报讯")):
        return False
    if PHOTO_MARKER.match(line) or PAGE_NOTE.match(line):
        return False
    if last_line.startswith("□"):  # a byline continues only with the rest of the byline
        return len(line) <= 20 and "记者" in line and not _ends_sentence(line)
    if BYLINE_LINE.match(line) or _ends_sentence(last_line):
        return False
    if CAPTION_END.search(line):  # a caption joins only the start of its own first word
        return _word_spans(last_line, line)
    if last_line[-1] in SOFT_END:
        return True
    if wrapped:
        # Two punctuation-free lines opening a paragraph are headlines (the list of
        # headlines at the foot of a hard-wrapped page), not a wrapped sentence.
        opening = paragraph.text == last_line and not last_line.startswith("本报讯")
        return not (opening and _punctuation_free(last_line) and _punctuation_free(line))
    return not _punctuation_free(last_line) or _word_spans(last_line, line)


def _classify(paragraphs: list[_Paragraph]) -> list[_Paragraph]:
    for i, para in enumerate(paragraphs):
        text = para.text
        if text.startswith("#"):
            level = len(text) - len(text.lstrip("#"))
            para.drop_prefix(len(text) - len(text[level:].lstrip()))
            para.kind, para.level = "heading", level
        elif PHOTO_MARKER.match(text):
            para.kind = "marker"
        elif PAGE_NOTE.match(text):
            para.kind = "note"
        elif BYLINE_LINE.match(text) and len(text) <= 40 and not _ends_sentence(text):
            para.kind = "byline"
        elif CAPTION_END.search(text) and len(text) <= 80:
            para.kind = "caption"
        elif (
            len(text) <= 40
            and i + 1 < len(paragraphs)
            and CREDIT_ONLY.match(paragraphs[i + 1].text)
        ):
            para.kind = "caption"  # caption whose photographer credit sits on the next line
        elif (
            len(text) <= 40
            and not any(c in "，,。；;" for c in text)
            and text[-1] not in "。…"
            and not text.startswith("本报讯")
        ):
            para.kind = "heading"
    return paragraphs


@dataclass
class _Draft:
    title: str = ""
    byline: str = ""
    title_line: int = 0
    parent: str = ""
    flash: bool = False  # opened by a 本报讯 news flash
    body: list[_Paragraph] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)


def _assemble(paragraphs: list[_Paragraph], name: str) -> list[Article]:
    drafts: list[_Draft] = []
    draft = _Draft()
    top = _Draft()  # the current top-level article, parent of section headings
    pending: list[_Paragraph] = []  # inferred headings not yet attached
    captions: list[str] = []
    page_byline = ""

    def start(title: str, line: int, byline: str = "", parent: str = "") -> _Draft:
        nonlocal captions
        new = _Draft(title=title, byline=byline, title_line=line, parent=parent, captions=captions)
        captions = []
        drafts.append(new)
        return new

    def followed_by_byline(i: int) -> bool:
        for later in paragraphs[i + 1 : i + 4]:
            if later.kind in ("caption", "marker"):
                continue
            return later.kind == "byline" or later.text.startswith("本报讯")
        return False

    for i, para in enumerate(paragraphs):
        kind = para.kind
        if kind == "note":
            page_byline = _page_byline(para.text) or page_byline
        elif kind == "marker":
            continue
        elif kind == "caption":
            captions.append(para.text)
        elif kind == "heading" and para.level == 1:
            draft = top = start(para.text, para.line_of[0])
        elif kind == "heading" and para.level >= 2:
            # A sub-heading with its own byline is a separate story; without one it is a
            # section of the page's lead (level-1) article.
            if followed_by_byline(i):
                draft = start(para.text, para.line_of[0])
            else:
                draft = start(para.text, para.line_of[0], top.byline, parent=top.title)
        elif kind == "heading":
            pending.append(para)
        elif kind == "byline":
            if pending or draft.body or not drafts:
                draft = top = _start_from_pending(start, pending, para)
            draft.byline = _join_byline(draft.byline, para.text)
        else:  # body
            flash = NEWS_FLASH.match(para.text) if para.text.startswith("本报讯") else None
            if flash is not None and (draft.body or pending or not drafts):
                draft = top = _start_from_pending(start, pending, para)
                draft.flash = True
            elif pending and draft.body:
                heading = pending.pop()
                if pending:  # several headings in a row: a kicker line above a title
                    heading.text = " ".join(p.text for p in pending) + " " + heading.text
                    pending.clear()
                draft = start(heading.text, heading.line_of[0], top.byline, parent=top.title)
            elif pending or not drafts:
                draft = top = _start_from_pending(start, pending, para)
            if flash is not None:
                byline = flash.group(0).strip()
                draft.byline = _join_byline(draft.byline, byline)
                para.drop_prefix(flash.end())
            if para.text:
                draft.body.append(para)
    _title_from_headline_list(drafts, pending)
    return _finish(drafts, name, page_byline)


def _start_from_pending(
    start: Callable[[str, int], _Draft], pending: list[_Paragraph], para: _Paragraph
) -> _Draft:
    """Start an article titled by the headings seen just before it (kicker + title)."""
    if pending:
        title = " ".join(p.text for p in pending)
        line = pending[0].line_of[0]
        pending.clear()
        return start(title, line)
    return start("", para.line_of[0])


def _join_byline(existing: str, new: str) -> str:
    new = new.lstrip("□").strip()
    return f"{existing} {new}".strip() if new not in existing else existing


def _page_byline(note: str) -> str:
    match = re.search(r"本报记者\s*(\S{2,4}?)(采写|撰写|报道)", note)
    return f"本报记者 {match.group(1)}" if match else ""


def _title_from_headline_list(drafts: list[_Draft], headlines: list[_Paragraph]) -> None:
    """Title news flashes from the list of headlines printed at the foot of the page.

    On such pages a headline line standing between two flashes belongs to the flash
    above it (as its title, or as a caption when the list already titles it).
    """
    flashes = [d for d in drafts if d.flash and d.body]
    if not headlines or not flashes:
        return
    inline = {id(d): (d.title, d.title_line) for d in flashes}
    for d in flashes:
        d.title = ""
    pairs = []
    for d in flashes:
        body = _bigrams("".join(p.text for p in d.body))
        for h in headlines:
            grams = _bigrams(h.text)
            pairs.append((len(grams & body) / max(1, len(grams)), id(d), id(h), d, h))
    pairs.sort(key=lambda item: item[:3], reverse=True)
    used: set[int] = set()
    for score, draft_id, headline_id, d, h in pairs:
        if score >= 0.3 and draft_id not in used and headline_id not in used:
            d.title, d.title_line = h.text, h.line_of[0]
            used.update((draft_id, headline_id))
    for position, d in enumerate(drafts):
        title, line = inline.get(id(d), ("", 0))
        if not title or position == 0:
            continue
        above = drafts[position - 1]
        if above.title:
            above.captions.append(title)
        else:
            above.title, above.title_line = title, line


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def _fingerprint(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def _finish(drafts: list[_Draft], name: str, page_byline: str) -> list[Article]:
    articles: list[Article] = []
    seen_bodies: set[str] = set()
    for d in drafts:
        body = _unique_paragraphs(d.body)
        if not body:
            continue
        fingerprint = _fingerprint("".join(p.text for p in body))
        if fingerprint in seen_bodies:  # the same article printed again on the page
            continue
        seen_bodies.add(fingerprint)
        text = "\n".join(p.text for p in body)
        line_of: list[int] = []
        for p in body:
            line_of.extend(p.line_of)
            line_of.append(p.line_of[-1])
        line_of.pop()
        title = d.title or _title_from_text(text)
        if d.parent and d.parent != d.title:
            title = f"{d.parent} · {title}"
        byline = d.byline
        if page_byline and (not byline or byline.startswith("本报讯") and "记者" not in byline):
            byline = f"{byline} {page_byline}".strip()
        articles.append(
            Article(
                file=name,
                index=len(articles),
                title=title,
                byline=byline,
                text=text,
                line_of=tuple(line_of),
                title_line=d.title_line or body[0].line_of[0],
                captions=tuple(d.captions),
            )
        )
    return articles


def _unique_paragraphs(body: list[_Paragraph]) -> list[_Paragraph]:
    seen: set[str] = set()
    unique = []
    for p in body:
        key = _fingerprint(p.text)
        if key in seen:
            continue
        seen.add(key)
        unique.append(p)
    return unique


def _title_from_text(text: str) -> str:
    first = re.split(r"[。！？!?\n]", text, maxsplit=1)[0]
    return first if len(first) <= 24 else first[:24] + "…"
