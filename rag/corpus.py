"""Corpus loading and cleaning: files → decoded text → repaired paragraphs → articles."""

from __future__ import annotations

import codecs
import errno
import hashlib
import json
import os
import re
import stat
import time
import unicodedata
import warnings
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from .config import Config, cache_dir
from .errors import CorpusError, LibraryError, UnreadableFileError, UnsafePathError
from .records import LONG_LINE, Article
from .text import load_jieba

# SUFFIXES (every type a corpus file or upload may have) is set below, from READERS.
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
    """A run of joined source lines with the source line and column of every character."""

    text: str = ""
    line_of: list[int] = field(default_factory=list)
    col_of: list[int] = field(default_factory=list)
    kind: str = "body"  # body | heading | byline | caption | marker | note
    level: int = 0  # markdown heading level, 0 when inferred

    def append(self, text: str, line: int, col: int = 1) -> None:
        """Add ``text``, which starts at column ``col`` of source line ``line``."""
        last, first = self.text[-1:], text[:1]
        latin = last.isascii() and last.isalnum() and first.isascii() and first.isalnum()
        if latin or self.text.startswith("□"):  # keep words and byline names apart
            self.text += " "  # not in the source: located at the character before it
            self.line_of.append(self.line_of[-1])
            self.col_of.append(self.col_of[-1])
        self.text += text
        self.line_of.extend([line] * len(text))
        self.col_of.extend(range(col, col + len(text)))

    def drop_prefix(self, n: int) -> None:
        self.text, self.line_of, self.col_of = self.text[n:], self.line_of[n:], self.col_of[n:]


# Byte order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one).
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_bytes(data: bytes, name: str) -> str:
    """Decode a file's bytes: by its byte order mark, else UTF-8, else GB18030.

    A byte order mark selects UTF-8, UTF-16 (LE/BE) or UTF-32 (LE/BE); without one the
    text is tried as UTF-8, then GB18030 (a superset of GBK/GB2312).

    Args:
        data: raw file content.
        name: file name, for the error message.

    Returns:
        The decoded text, BOM removed.

    Raises:
        UnreadableFileError: the bytes are binary or in no encoding we can decode.
    """
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(encoding).removeprefix("\ufeff")
            except UnicodeDecodeError:
                continue
            if encoding == "utf-8-sig" or _plausible(text):
                return _refuse_binary(text, name)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # UTF-32 marks too
        raise UnreadableFileError(
            f"{name}: starts with a UTF-16 byte order mark but is not UTF-16 text, skipped"
        )
    if b"\x00" in data[:65536]:
        raise UnreadableFileError(f"{name}: looks like a binary file (NUL bytes), skipped")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return _refuse_binary(text, name)
    raise UnreadableFileError(f"{name}: not UTF-8 or GBK/GB18030 text, skipped")


def _plausible(text: str) -> bool:
    """False when text decoded by a UTF-16/32 mark is mostly code points no text uses.

    Bytes that merely start with ``FF FE`` (a Latin-1 ``ÿþ``) decode as UTF-16 into
    unassigned, private-use and stray BOM characters, never into real text.
    """
    sample = text[:20000]
    odd = sum(1 for c in sample if c == "\ufeff" or unicodedata.category(c) in ("Cn", "Co", "Cs"))
    return odd <= max(5, len(sample) // 100)


def _refuse_binary(text: str, name: str) -> str:
    """Return ``text``, or raise when control characters show it is binary data."""
    sample = text[:20000]
    controls = sum(1 for c in sample if unicodedata.category(c) == "Cc" and c not in "\r\n\t\f")
    if "\x00" in sample or controls > max(5, len(sample) // 100):
        raise UnreadableFileError(f"{name}: looks like a binary file, skipped")
    return text


@dataclass
class CorpusScan:
    """The article files of a folder, and the entries that were left out and why.

    ``files`` maps each citable name (the POSIX path relative to the folder, valid
    UTF-8) to the path to read, in sorted name order. A symlink inside the folder is
    read through its resolved target, so the link cannot be swapped between the scan and
    the read. ``skipped`` maps an entry's name as shown to the user (undecodable bytes
    written as ``\\xff``) to a short English reason, in sorted name order.
    """

    files: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _is_article_name(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def _shown(name: str) -> str:
    """A printable form of a name that may hold undecodable bytes (as surrogates)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _valid_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def scan_corpus(
    folder: Path, exclude: Path | None = None, left_out: Collection[str] = ()
) -> CorpusScan:
    """Every readable article file (a type in :data:`SUFFIXES`) below ``folder``, sorted.

    The folder is walked without following symlinks. Entries that look like articles
    (or folders that may hold some) but cannot safely be read are reported in
    ``skipped`` with a reason rather than dropped silently: hidden files and folders,
    names that are not valid UTF-8, broken symlinks, symlinks resolving outside the
    folder (never followed, never read), folders named like articles (their contents
    are still scanned), special files (FIFOs, devices) and unreadable sub-folders.
    Symlinked folders are never descended. A symlinked file resolving inside the folder
    is indexed under the link's name, unless its target is itself one of the folder's
    articles (or another link's target): then it is skipped as a duplicate. Files that
    of no type in :data:`SUFFIXES` are not articles and are not reported.

    Args:
        folder: the corpus folder.
        exclude: a folder inside ``folder`` never to be read (the index folder, when a
            user put it there); it is skipped silently.
        left_out: names of files excluded from the library (:class:`LibraryRecord`):
            listed in ``skipped`` with :data:`EXCLUDED_REASON` instead of ``files``.

    Returns:
        The article files by citable name, and the skipped entries with their reasons.

    Raises:
        CorpusError: ``folder`` is missing, not a folder, or cannot be listed.
    """
    if not folder.is_dir():
        raise CorpusError(f"corpus folder not found: {folder}")
    root = folder.resolve()
    excluded = exclude.resolve() if exclude is not None else None
    scan = CorpusScan()
    links: list[tuple[str, Path]] = []  # (name, resolved target) of in-folder file links
    real: dict[Path, str] = {}  # resolved path -> name of every regular article file
    pending: list[tuple[Path, str]] = [(root, "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            if not prefix:
                raise CorpusError(f"corpus folder cannot be read: {folder} ({exc})") from exc
            scan.skipped[_shown(prefix.rstrip("/"))] = f"folder cannot be read ({_why(exc)})"
            continue
        for entry in entries:
            name = prefix + entry.name
            reason = _classify_entry(entry, name, root, excluded, pending, links)
            if reason is None:
                continue
            if reason:
                scan.skipped[_shown(name)] = reason
            else:  # a regular article file
                path = root / name
                real[path] = name
                scan.files[name] = path
    for name, target in sorted(links):
        if target in real:
            scan.skipped[name] = f"symlink to {real[target]}, already indexed under that name"
        else:
            real[target] = name
            scan.files[name] = target
    for name in set(left_out) & set(scan.files):
        del scan.files[name]
        scan.skipped[name] = EXCLUDED_REASON
    scan.files = dict(sorted(scan.files.items()))
    scan.skipped = dict(sorted(scan.skipped.items()))
    return scan


def _classify_entry(
    entry: os.DirEntry[str],
    name: str,
    root: Path,
    excluded: Path | None,
    pending: list[tuple[Path, str]],
    links: list[tuple[str, Path]],
) -> str | None:
    """Sort one directory entry: ``""`` an article file, a reason to report, or ``None``.

    Sub-folders to descend are pushed on ``pending``, in-folder file links on ``links``.
    """
    article = _is_article_name(entry.name)
    try:
        is_link = entry.is_symlink()
        is_dir = not is_link and entry.is_dir(follow_symlinks=False)
        is_file = not is_link and entry.is_file(follow_symlinks=False)
    except OSError as exc:
        return f"cannot be read ({_why(exc)})" if article else None
    if is_dir and excluded is not None and Path(entry.path) == excluded:
        return None  # the index folder: never read, not reported
    if not _valid_utf8(entry.name):
        if is_dir:
            return "folder name is not valid UTF-8: rename it"
        return "file name is not valid UTF-8: rename it" if article else None
    if entry.name.startswith("."):
        if is_dir:
            return "hidden folder"
        return "hidden file" if article else None
    if is_link:
        return _classify_link(Path(entry.path), name, article, root, excluded, links)
    if is_dir:
        pending.append((Path(entry.path), name + "/"))
        return "a folder, not a file" if article else None
    if not article:
        return None
    return "" if is_file else "not a regular file"


def _classify_link(
    path: Path,
    name: str,
    article: bool,
    root: Path,
    excluded: Path | None,
    links: list[tuple[str, Path]],
) -> str | None:
    try:
        target = path.resolve(strict=True)
        mode = target.stat().st_mode
    except (OSError, RuntimeError):  # missing target, loop, or no permission
        return "broken symlink" if article else None
    is_dir = stat.S_ISDIR(mode)
    if not (article or is_dir):
        return None
    kind = "folder" if is_dir else "file"
    if not _inside(target, root):
        return f"symlink to a {kind} outside the article folder"
    if excluded is not None and _inside(target, excluded):
        return f"symlink to a {kind} in the index folder"
    if is_dir:
        return "symlink to a folder inside the article folder, not followed"
    if not stat.S_ISREG(mode):
        return "symlink to something that is not a regular file"
    links.append((name, target))
    return None


def iter_corpus_files(folder: Path) -> Iterator[Path]:
    """Every readable article file below ``folder``, in a stable order.

    A thin wrapper over :func:`scan_corpus` (which see for what is left out) for callers
    that name a file by ``path.relative_to(folder)``: each path is ``folder / name``, so
    an in-folder symlink is yielded under its own name.

    Args:
        folder: the corpus folder.

    Returns:
        An iterator over the paths.

    Raises:
        CorpusError: ``folder`` is missing or cannot be listed.
    """
    for name in scan_corpus(folder).files:
        yield folder / name


def _why(exc: OSError) -> str:
    """A short reason for an operating system error."""
    if isinstance(exc, FileNotFoundError):
        return "it was moved or deleted"
    if isinstance(exc, PermissionError):
        return "permission denied: check the file's permissions"
    if isinstance(exc, IsADirectoryError):
        return "a folder, not a file"
    return exc.strerror or str(exc) or type(exc).__name__


def _open_error(name: str, exc: OSError) -> UnreadableFileError:
    return UnreadableFileError(f"{name}: cannot be read, {_why(exc)}")


def load_file(path: Path, name: str | None = None) -> list[Article]:
    """Read, decode and clean one file into articles.

    Args:
        path: the file.
        name: the name to cite it by (default: its file name).

    Returns:
        The file's articles, repeats removed.

    Raises:
        UnreadableFileError: binary, undecodable, empty, oversized or unreadable file
            (including one deleted or made unreadable since it was listed).
    """
    name = name or path.name
    return load_bytes(read_file(path, name), name)


def read_file(path: Path, name: str | None = None) -> bytes:
    """A listed file's bytes, never through a link swapped in since the folder was scanned.

    Args:
        path: the file.
        name: the name to report it by (default: its file name).

    Returns:
        Its content (at most one byte over :data:`MAX_FILE_BYTES`, which
        :func:`load_bytes` then refuses).

    Raises:
        UnreadableFileError: a link, not a regular file, oversized, or unreadable
            (deleted, no permission, ...).
    """
    name = name or path.name
    try:
        info = path.lstat()
        mode, size = info.st_mode, info.st_size
        if stat.S_ISLNK(mode):
            raise UnreadableFileError(f"{name}: became a symbolic link after the scan, skipped")
        if not stat.S_ISREG(mode):
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(errno.EISDIR, "Is a directory")
            raise UnreadableFileError(f"{name}: not a regular file, skipped")
        if size > MAX_FILE_BYTES:
            raise UnreadableFileError(
                f"{name}: {size} bytes is over the {MAX_FILE_BYTES} byte limit"
            )
        with path.open("rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1)  # the file may have grown since
    except OSError as exc:
        raise _open_error(name, exc) from exc


def load_bytes(data: bytes, name: str) -> list[Article]:
    """Read and clean one document's content into articles, by the reader for its type.

    The reader is chosen by the name's suffix from :data:`READERS` (text, web page,
    Word, PDF, table rows); every reader returns the same :class:`Article` records.

    Args:
        data: the raw file content.
        name: the name to cite it by.

    Returns:
        The document's articles, repeats removed.

    Raises:
        UnreadableFileError: unsupported file type, binary, undecodable, corrupt, empty,
            without a text layer, or oversized.
    """
    suffix = Path(name).suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        kind = f"{suffix} files" if suffix else "files without a suffix"
        raise UnreadableFileError(
            f"{name}: {kind} are not supported; supported types: {', '.join(SUFFIXES)}"
        )
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableFileError(
            f"{name}: {len(data)} bytes is over the {MAX_FILE_BYTES} byte limit"
        )
    if not data.strip():
        raise UnreadableFileError(f"{name}: the file is empty")
    try:
        articles = reader(data, name)
    except UnreadableFileError:
        raise
    except Exception as exc:  # a corrupt file must never crash indexing
        what = FORMAT_NAMES.get(suffix, suffix)
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UnreadableFileError(f"{name}: cannot be read as {what} ({reason}), skipped") from exc
    if not articles:
        raise UnreadableFileError(f"{name}: no article text found, skipped")
    return articles


def _read_text(data: bytes, name: str) -> list[Article]:
    """A ``.txt``/``.md`` file: decoded, repaired and split by :func:`parse_articles`."""
    text = decode_bytes(data, name)
    if not text.strip():
        raise UnreadableFileError(f"{name}: the file is empty")
    return parse_articles(text, name)


def load_folder(folder: Path) -> dict[str, list[Article]]:
    """Load every readable article file of a folder.

    Entries :func:`scan_corpus` leaves out, and files that cannot be read or decoded,
    are skipped with a :class:`SkippedFileWarning` naming them and saying why.

    Args:
        folder: the corpus folder.

    Returns:
        Articles by file name (path relative to ``folder``), in sorted name order.

    Raises:
        CorpusError: ``folder`` is missing or cannot be listed.
    """
    scan = scan_corpus(folder)
    for shown, reason in scan.skipped.items():
        warnings.warn(f"{shown}: {reason}, skipped", SkippedFileWarning, stacklevel=2)
    result: dict[str, list[Article]] = {}
    for name, path in scan.files.items():
        try:
            result[name] = load_file(path, name)
        except UnreadableFileError as exc:
            warnings.warn(str(exc), SkippedFileWarning, stacklevel=2)
    return result


# ----------------------------------------------------------------------------- parsing


def parse_articles(text: str, name: str) -> list[Article]:
    """Split one file's text into cleaned articles.

    Every character of an article keeps its source line and column. An untitled article
    whose text starts with one long line (a news dump's one-line article) has the
    headline glued to its lead split off as its title when :func:`split_headline` finds
    a reliable boundary; the headline is then not part of the article text.

    Args:
        text: the decoded file content.
        name: the file name recorded in each article.

    Returns:
        The articles in file order; repeated articles and paragraphs kept once.
    """
    lines = text.splitlines()
    # (cleaned line, line number, column of its first character); strip() also removes
    # U+3000, so only inner ideographic spaces become plain ones and columns still match.
    blocks = [
        (line.strip().replace("\u3000", " "), number, len(line) - len(line.lstrip()) + 1)
        for number, line in enumerate(lines, start=1)
    ]
    blocks = [block for block in blocks if block[0]]
    paragraphs = _classify(_join_lines(blocks))
    articles = _assemble(paragraphs, name) or _whole_text_article(paragraphs, name)
    long_lines = frozenset(n for n, line in enumerate(lines, start=1) if len(line) > LONG_LINE)
    return [replace(a, long_lines=long_lines) for a in articles] if long_lines else articles


def _whole_text_article(paragraphs: list[_Paragraph], name: str) -> list[Article]:
    """The one article of a text with no body paragraph (e.g. a lone headline).

    Its title is the first line, its body every paragraph whatever its kind, so a short
    file is indexed rather than dropped.
    """
    body = _unique_paragraphs([p for p in paragraphs if p.text])
    if not body:
        return []
    text, line_of, col_of = _joined(body)
    first = body[0]
    first_line = sum(1 for line in first.line_of if line == first.line_of[0])
    title = first.text[:first_line].strip()
    if len(title) > 60:
        title = title[:60] + "…"
    return [
        Article(
            file=name,
            index=0,
            title=title,
            byline="",
            text=text,
            line_of=tuple(line_of),
            title_line=first.line_of[0],
            col_of=tuple(col_of),
        )
    ]


def _is_wrapped(blocks: list[tuple[str, int, int]]) -> bool:
    """True for hard-wrapped files (every line cut at a narrow fixed width)."""
    lengths = sorted(len(line) for line, _, _ in blocks if not line.startswith("#"))
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


def _join_lines(blocks: list[tuple[str, int, int]]) -> list[_Paragraph]:
    wrapped = _is_wrapped(blocks)
    paragraphs: list[_Paragraph] = []
    current: _Paragraph | None = None
    last_line = ""
    for line, number, col in blocks:
        if current is not None and _joins(last_line, line, wrapped, current):
            current.append(line, number, col)
        else:
            current = _Paragraph()
            current.append(line, number, col)
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
        title_line = d.title_line or body[0].line_of[0]
        if _glued_lead(d, body[0]):
            split = split_headline(body[0].text)
            if split is not None:
                d.title, title_line = split.title, body[0].line_of[0]
                d.byline = split.byline
                body[0].drop_prefix(split.body_start)
        fingerprint = _fingerprint("".join(p.text for p in body))
        if fingerprint in seen_bodies:  # the same article printed again on the page
            continue
        seen_bodies.add(fingerprint)
        text, line_of, col_of = _joined(body)
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
                title_line=title_line,
                captions=tuple(d.captions),
                col_of=tuple(col_of),
            )
        )
    return articles


def _joined(body: list[_Paragraph]) -> tuple[str, list[int], list[int]]:
    """Paragraphs joined by newlines, with the source line and column of every character
    (a newline counts as just past its paragraph's last character)."""
    line_of: list[int] = []
    col_of: list[int] = []
    for p in body:
        line_of.extend(p.line_of)
        line_of.append(p.line_of[-1])
        col_of.extend(p.col_of)
        col_of.append(p.col_of[-1] + 1)
    line_of.pop()
    col_of.pop()
    return "\n".join(p.text for p in body), line_of, col_of


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


# ----------------------------------------------------------------- glued headlines

HEADLINE_MAX = 40  # characters: a longer opening is never taken for a headline
HEADLINE_MIN = 4
GLUED_LEAD_MIN = 50  # a first line shorter than this is not a headline glued to a lead

# News outlets whose name opens a lead, a dateline or a reporter credit ("北京考试报（记者
# …）", "中新网10月16日电", "每经记者 …"). Whole names only: from a bare suffix such as
# 晨报 one cannot tell where the name starts in "…热度不减北京晨报讯".
OUTLETS = (
    "本报", "本刊", "新华社", "新华网", "中新社", "中新网", "人民网", "中广网", "央视网",
    "国际在线", "环球网", "环球时报", "中国台湾网", "东方网", "全景网", "红网", "荆楚网",
    "千龙网", "南方网", "大洋网", "金羊网", "北青网", "凤凰网", "和讯网", "中国网",
    "中国经济网", "中国新闻网", "人民日报", "光明日报", "经济日报", "中国日报", "新京报",
    "京华时报", "北京青年报", "北京晨报", "北京晚报", "北京商报", "北京考试报", "法制晚报",
    "羊城晚报", "南方日报", "南方都市报", "广州日报", "信息时报", "新快报", "东方早报",
    "新闻晨报", "新闻晚报", "新民晚报", "解放日报", "文汇报", "每经", "每日经济新闻",
    "第一财经日报", "21世纪经济报道", "经济观察报", "证券时报", "中国证券报", "上海证券报",
    "证券日报", "理财周报", "投资者报", "华夏时报", "中国经营报", "扬子晚报", "现代快报",
    "钱江晚报", "今日早报", "都市快报", "楚天金报", "楚天都市报", "长江日报", "华西都市报",
    "成都商报", "重庆晨报", "齐鲁晚报", "大河报", "燕赵都市报", "半岛晨报", "辽沈晚报",
    "新文化报", "城市晚报", "黑龙江日报", "中国青年报", "中国教育报", "中国之声",
)  # fmt: skip
_OUTLET = "(?:" + "|".join(sorted(map(re.escape, OUTLETS), key=len, reverse=True)) + ")"
_WEIBO = r"(?:[(（]微博[)）])?"  # Sina's "(微博)" after a linked name
_DATE = r"[0-9〇零一二三四五六七八九十]{1,3}月[0-9〇零一二三四五六七八九十]{1,3}日"
_REPORTER = r"(?:(?:实习|见习|特约|驻\w{1,4}特约)?记者|特约(?:作者|主笔|撰稿人))"
# A headline that only a space or the lead's repetition ends: no clause or sentence
# punctuation, no brackets, no credit words (which would mean a boundary was missed).
_BARE_HEAD = r"(?:(?!记者|报道|讯)[^，,。；;？！?!()（）【】\[\]])"

# Where a one-line article's headline ends and its lead begins. Each pattern marks the
# headline's end with the empty group ``cut`` (and, when something between them is
# dropped, the lead's start with ``body``). The earliest cut of any rule wins; a cut
# leaving a headline that is not 4-40 characters, holds a comma or 。, ends in the middle
# of a clause or leaves a bracket open is ignored (see :func:`_plausible_headline`).
HEADLINE_RULES: tuple[re.Pattern[str], ...] = (
    # Sina's own dateline: 新浪体育讯, 新浪娱乐讯, 新浪财经讯 …
    re.compile(r"(?P<cut>)新浪\w{0,2}讯"),
    # an outlet's dateline, lead or credit: 中新网(微博)10月16日电, 新华网北京7月16日电,
    # 中新网8月16日 据…, 国际在线消息, 本报讯, 北京考试报（记者 …）, 每经记者 …, 文汇报报道,
    # 综合新华社电
    re.compile(
        rf"(?P<cut>)(?:综合)?{_OUTLET}{_WEIBO}(?:[^，。]{{0,14}}?{_DATE}(?:体育|财经)?)?\s*"
        rf"(?:电|讯|快讯|消息|报道|[(（【]?\s*{_REPORTER}|(?<=日)[\s，,：:])"
    ),
    # a dateline without an outlet, or a lead opening on its date: 2009年11月5日消息,
    # 9月26日电, 6月18日，卫生部发布… 2月10日晚间，… (a headline holds no comma; not
    # after 时间, 于, 在, 截至, a year …, which tie the date to the words before it)
    re.compile(
        rf"^{_BARE_HEAD}{{4,40}}?(?<!时间)(?<![于在至到从自截止年\d])(?P<cut>)"
        r"(?:\d{4}年|今年|去年)?\d{1,2}月\d{1,2}日"
        r"(?:电|讯|消息|(?:凌晨|早晨|上午|中午|下午|晚间|晚上|晚)?[，,])"
    ),
    # the time of a sports or entertainment lead: 北京时间4月12日
    re.compile(r"(?P<cut>)北京时间\s*\d"),
    # a reporter credit with no outlet: 记者黄振琳报道 (not "晚报记者", an outlet we do not
    # know, whose name would be left in the headline)
    re.compile(rf"(?<![报网社刊台经闻视])(?P<cut>){_REPORTER}\s?[\u4e00-\u9fff]{{2,4}}\s?报道"),
    # a byline or section mark before a credit: □本报记者 …, ⊙本报记者 …, ■ 今日视点
    # Comment□本报记者 …, □好买基金研究中心 … (a lone □ may stand for an undecodable
    # character of a name)
    re.compile(r"(?P<cut>)[□⊙■]\s*[^，。\s]{0,20}?(?:记者|撰稿人|研究中心|作者|编辑)"),
    # an attribution opening the lead: 据英国《华商报》报道， 据新华社电 (not 数据, 根据 …)
    re.compile(
        r"(?<![数根依证占凭论收])(?P<cut>)据[^，。\s]{1,20}?(?:报道|报导|消息|社电|网电|日电)"
        r"(?=[\s，,：:])"
    ),
    # the tag Sina ends a headline with: (图) (组图) (全文)
    re.compile(r"[(（](?:(?:组|多|附)?图|全文)[)）](?P<cut>)"),
    # a publisher tag opening the lead: 【ZOL-七天在线 it7t.com】 【本报讯】 [北京行情]
    # （中关村在线数码影像行情报道） (not 【青龙珏】, a name in brackets)
    re.compile(
        r"(?<!讯)(?P<cut>)[【\[(（][^】\])）]{0,20}"
        r"(?:在线|网|报道|讯|来源|行情|中关村|www|\.com|IT)[^】\])）]{0,20}[】\])）]"
    ),
    # a labelled lead: 导语： 导读： 核心提示： 编辑观点： 提要： 故事简介：
    re.compile(
        r"(?P<cut>)(?:导语|导读|核心提示|编者按|编辑观点|编辑点评|提要|温馨提示|"
        r"访谈时间|故事简介)[：:]"
    ),
    # a labelled lead that a headline may also hold ("NBA名宿点评：…"): only after 8+
    # characters, longer than a role or a name: …提升亲和力点评： …仅售1389元作者： 主持人：
    re.compile(r"^[^，,。]{8,40}?(?P<cut>)(?:点评|作者|主持人)[：:]"),
    # a writer's credit: 文/表 记者崔群
    re.compile(r"(?P<cut>)文[/／](?:表|图|摄)?\s*(?:本报)?记者"),
    # the headline's first 6+ characters repeated at the start of the lead, at most 12
    # characters later: 《海贼王》龙塔前三关盘点《海贼王》龙塔挑战规则…
    re.compile(rf"^(?P<rep>[^\s\d]{{6,}}){_BARE_HEAD}{{0,12}}?(?P<cut>)\s*(?P<body>)(?P=rep)"),
    # one space after a bare headline (not between Latin words), then a lead whose first
    # clause is at most 6 characters: "9成80后置业需贷款 无房苦，有房更苦，…" ("…有难度
    # “80后”，目前…"). A longer clause is as likely the headline's second half run into
    # the lead.
    re.compile(
        rf"^{_BARE_HEAD}{{4,40}}?(?<=[^\x00-\x7f])(?P<cut>)\s+(?P<body>)"
        r"(?=[^\s，,。；;(（【\[]{1,6}[，,、])"
    ),
    # a wide gap (3+ spaces) after a bare headline, before a lead that reaches a clause
    # end within 40 characters: "…仅售310元    消费者总是会在众多MP4中寻找…，"
    re.compile(
        rf"^{_BARE_HEAD}{{4,40}}?(?P<cut>)[ \t\xa0\u3000]{{3,}}(?P<body>)"
        r"(?=[^。(（【\[]{4,40}[，,。])"
    ),
)

# A reporter credit right after the headline, taken as the byline and dropped from the
# lead: "北京考试报（记者 马海丽）", "本报讯(记者 张艺)", "本报记者 王晓云报道", "□本报记者
# 江沂 ", "每经记者 翟敏 发自深圳".
_CREDIT = re.compile(
    rf"[□⊙■]?\s*(?:{_OUTLET}|新浪\w{{0,2}})?{_WEIBO}讯?\s*"
    rf"(?:[(（【]\s*[^)）】]{{0,12}}{_REPORTER}[^)）】]{{1,24}}[)）】]"
    rf"|{_REPORTER}[：:]?\s*[\u4e00-\u9fff]{{2,4}}?"
    rf"(?:\s*报道|\s+发自[\u4e00-\u9fff]{{2}}|\s+[\u4e00-\u9fff]{{2}}报道|(?=[\s“])))\s*"
)
# A reporter credit in brackets after a dateline, which stays in the lead:
# "中新社北京2月2日电(记者 阮煜琳)" gives the byline "记者 阮煜琳".
_DATELINE_CREDIT = re.compile(
    rf"[^，。]{{0,30}}?[(（【]\s*(?P<who>[^)）】，。]{{0,12}}{_REPORTER}[^)）】，。]{{1,24}})[)）】]"
)
_CLAUSE_CUT = set("，,、：:；;（(《“‘【[·/&")
_SEPARATORS = " \t\xa0\u3000-—_|~"
_PAIRS = (("《", "》"), ("（", "）"), ("(", ")"), ("“", "”"), ("【", "】"), ("[", "]"))


@dataclass(frozen=True)
class HeadlineSplit:
    """A headline found glued to the start of a one-line article.

    ``title`` is the headline, ``byline`` the reporter credit found at the start of the
    lead ("" when none), ``body_start`` where the article text starts in the line (after
    the headline, and after the credit when it was dropped).
    """

    title: str
    byline: str
    body_start: int


def split_headline(line: str) -> HeadlineSplit | None:
    """Split a headline of at most :data:`HEADLINE_MAX` characters off a one-line article.

    The headline ends at the earliest boundary any of :data:`HEADLINE_RULES` finds that
    leaves a plausible headline. When none does, ``None``: a wrong split is worse than
    none, and the caller keeps the article untitled.

    Args:
        line: the article's first line, stripped.

    Returns:
        The split, or ``None`` when no boundary is reliable.
    """
    window = line[: HEADLINE_MAX + 60]  # room for the rules' look at the lead
    best: tuple[int, int] | None = None  # (cut, body start)
    for rule in HEADLINE_RULES:
        for match in rule.finditer(window):
            cut = match.start("cut")
            # matches come in order: stop past the longest headline (plus separators)
            # or past the earliest cut found so far
            if cut > HEADLINE_MAX + 8 or (best is not None and cut >= best[0]):
                break
            if _plausible_headline(line[:cut].rstrip(_SEPARATORS)):
                best = (cut, match.start("body") if "body" in rule.groupindex else cut)
                break
    if best is None:
        return None
    cut, body = best
    while body < len(line) and line[body].isspace():
        body += 1
    byline = ""
    if (credit := _CREDIT.match(line, body)) is not None:
        byline, body = credit.group(0).strip(), credit.end()
    elif (dateline := _DATELINE_CREDIT.match(line, body)) is not None:
        byline = dateline.group("who").strip()
    if len(line) - body < 10:
        return None
    return HeadlineSplit(title=line[:cut].rstrip(_SEPARATORS), byline=byline, body_start=body)


def _plausible_headline(head: str) -> bool:
    """A headline is 4-40 characters, not a sentence or clauses, not cut mid-clause, and
    leaves no bracket or quotation open."""
    if not HEADLINE_MIN <= len(head) <= HEADLINE_MAX or any(c in head for c in "，,。"):
        return False
    if head[-1] in _CLAUSE_CUT:
        return False
    return all(head.count(a) == head.count(b) for a, b in _PAIRS)


def _glued_lead(draft: _Draft, first: _Paragraph) -> bool:
    """True when an untitled article opens with one long source line whose start may be
    a headline glued to the lead (the one-line article of a news dump)."""
    return (
        not draft.title
        and not draft.byline
        and not draft.flash
        and not draft.parent
        and len(first.text) >= GLUED_LEAD_MIN
        and first.line_of[0] == first.line_of[-1]
    )


# ----------------------------------------------------------------------------- formats
#
# One reader per file type behind :func:`load_bytes`. Each takes the raw bytes and the
# citable name and returns :class:`Article` records; the text-like ones (web page, Word,
# PDF) hand their paragraphs to :func:`parse_articles`, as a text file's lines, and cite
# by the paragraph or page each line came from. A reader may raise anything on a corrupt
# file: :func:`load_bytes` turns it into an :class:`UnreadableFileError`.

TEXT_COLUMNS = ("text", "content", "body", "正文", "内容")
TITLE_COLUMNS = ("title", "headline", "标题")
DATE_COLUMNS = ("date", "published", "time", "日期", "时间")
BYLINE_COLUMNS = ("author", "byline", "作者", "记者")
SOURCE_COLUMNS = ("source", "来源")


def _from_units(
    lines: list[tuple[str, int]],
    name: str,
    unit: str,
    title: str = "",
    byline: str = "",
    date: str = "",
) -> list[Article]:
    """Articles from ``(text, unit number)`` lines, cleaned as a text file's lines are.

    ``title`` (when the format states one) opens the text as a markdown heading; each
    article's ``line_of`` then holds the unit (page, paragraph) of every character.
    """
    kept = [
        (part.strip(), number)
        for text, number in lines
        for part in text.splitlines()
        if part.strip()
    ]
    title = " ".join(title.split())
    if title and kept and _fingerprint(kept[0][0]) == _fingerprint(title):
        kept.pop(0)  # the page's headline printed again above the body
    if not kept:
        return []
    if title:
        kept.insert(0, (f"# {title}", kept[0][1]))
    unit_of = [number for _, number in kept]

    def at(line: int) -> int:
        return unit_of[line - 1] if 1 <= line <= len(unit_of) else unit_of[0]

    articles = parse_articles("\n".join(text for text, _ in kept), name)
    return [
        replace(
            a,
            line_of=tuple(at(line) for line in a.line_of),
            title_line=at(a.title_line),
            col_of=(),
            long_lines=frozenset(),
            byline=_join_byline(a.byline, byline) if byline else a.byline,
            unit=unit,
            date=date,
        )
        for a in articles
    ]


def _read_html(data: bytes, name: str) -> list[Article]:
    """A web page: its main text, title, author and date, found by ``trafilatura``.

    Menus, related links, comments, footers and other boilerplate are left out. Cited
    by paragraph of the extracted main text, the headline not counted
    (``page.html para 3``).
    """
    import json

    import trafilatura

    html = decode_bytes(data, name)
    extracted = trafilatura.extract(
        html,
        output_format="json",
        with_metadata=True,
        include_comments=False,
        include_images=False,
        include_links=False,
        include_tables=True,
        favor_precision=True,
        deduplicate=False,
    )
    if not extracted:
        raise UnreadableFileError(f"{name}: no article text found in the web page, skipped")
    page = json.loads(extracted)
    title = " ".join((page.get("title") or "").split())
    paragraphs = [line for line in (page.get("text") or "").splitlines() if line.strip()]
    if title and paragraphs and _fingerprint(paragraphs[0]) == _fingerprint(title):
        paragraphs.pop(0)  # the headline: the title, not paragraph 1 of the text
    return _from_units(
        [(text, number) for number, text in enumerate(paragraphs, start=1)],
        name,
        "para",
        title=title,
        byline=" ".join((page.get("author") or "").split()),
        date=page.get("date") or "",
    )


def _read_docx(data: bytes, name: str) -> list[Article]:
    """A Word document: its paragraphs and table rows in order, Title/Heading styles as headings.

    The first non-empty paragraph styled Title or Heading is the article's title. A table
    row reads as one sentence, its cells joined by " | " (a merged cell once). Cited by
    non-empty paragraph or row (``report.docx para 4``).
    """
    import io

    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    lines: list[tuple[str, int]] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells = list(dict.fromkeys(row.cells))  # a merged cell repeats in row.cells
                text = " | ".join(t for t in (" ".join(c.text.split()) for c in cells) if t)
                if text:  # a full stop: a row is a sentence, never taken for a heading
                    lines.append((text + "。", len(lines) + 1))
            continue
        text = block.text.strip()
        if not text:
            continue
        style = (block.style.name or "") if block.style is not None else ""
        level = _heading_level(style)
        lines.append((f"{'#' * level} {text}" if level else text, len(lines) + 1))
    return _from_units(lines, name, "para")


def _heading_level(style: str) -> int:
    """Markdown heading level of a Word paragraph style: Title 1, Heading N → N, else 0."""
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading (\d)", style)
    return min(6, int(match.group(1))) if match else 0


def _read_pdf(data: bytes, name: str) -> list[Article]:
    """A PDF's text layer, page by page; cited by page (``paper.pdf p.3``).

    Raises:
        UnreadableFileError: password-protected, or no page has any text (a scanned or
            image-only PDF: "no text layer").
    """
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise UnreadableFileError(f"{name}: the PDF is password-protected, skipped")
    lines: list[tuple[str, int]] = []
    failure: Exception | None = None
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # one damaged page: keep the others
            failure = failure or exc
            continue
        lines.extend((line, number) for line in text.splitlines())
    if not any(line.strip() for line, _ in lines):
        if failure is not None:
            raise failure
        raise UnreadableFileError(
            f"{name}: no text layer (a scanned or image-only PDF needs OCR first), skipped"
        )
    return _from_units(lines, name, "page")


def _read_rows(data: bytes, name: str) -> list[Article]:
    """A table with one article per row, cited by row (``news.csv row 12``).

    ``.jsonl``: one JSON object per line, row = line number. ``.csv`` (and ``.tsv``
    with a header): columns ``title``, ``date``, ``source``/``author`` and ``text``,
    row = the record's number counting the header as row 1 (as a spreadsheet shows
    it). A ``.tsv`` without a header is ``label<TAB>text`` (the label, e.g. a news
    category, prefixes the title), row = record number.
    """
    import csv
    import io
    import json

    text = decode_bytes(data, name)
    suffix = Path(name).suffix.lower()
    rows: list[tuple[int, dict[str, str]]] = []
    if suffix == ".jsonl":
        # A broken line costs its own row only: a dump of thousands of articles with one
        # truncated line is still read, and the lines left out are named.
        bad: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                bad.append(f"line {number} is not a JSON object ({exc.msg})")
                continue
            if not isinstance(record, dict):
                bad.append(f"line {number} is not a JSON object")
                continue
            rows.append((number, {str(k).lower(): _cell(v) for k, v in record.items()}))
        if bad and not rows:
            raise UnreadableFileError(f"{name}: {bad[0]}, skipped")
        if bad:
            shown = "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
            warnings.warn(f"{name}: {shown}: those rows skipped", SkippedFileWarning, stacklevel=2)
    else:
        delimiter = "\t" if suffix == ".tsv" else ","
        csv.field_size_limit(MAX_FILE_BYTES)  # one cell may hold a whole long article
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        header = [cell.strip().lower().removeprefix("\ufeff") for cell in records[0]]
        if any(column in header for column in TEXT_COLUMNS):
            rows = [
                (number, dict(zip(header, record, strict=False)))
                for number, record in enumerate(records[1:], start=2)
            ]
        elif suffix == ".tsv":
            rows = [
                (number, {"label": record[0], "text": "\t".join(record[1:])})
                if len(record) > 1
                else (number, {"text": record[0] if record else ""})
                for number, record in enumerate(records, start=1)
            ]
        else:
            raise UnreadableFileError(
                f"{name}: no text column in the header row "
                "(expected columns title, date, source, text), skipped"
            )
    articles: list[Article] = []
    seen: set[str] = set()
    for number, row in rows:
        article = _row_article(row, number, name, len(articles))
        if article is None:
            continue
        key = _fingerprint(article.text)
        if key in seen:  # the same article in two rows
            continue
        seen.add(key)
        articles.append(article)
    return articles


def _cell(value: object) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _pick(row: dict[str, str], columns: tuple[str, ...]) -> str:
    for column in columns:
        value = (row.get(column) or "").strip()
        if value:
            return " ".join(value.split())
    return ""


def _row_article(row: dict[str, str], number: int, name: str, index: int) -> Article | None:
    body = "\n".join(
        cleaned
        for line in _pick_text(row).splitlines()
        if (cleaned := line.strip().replace("\u3000", " "))
    )
    if not body:
        return None
    title = _pick(row, TITLE_COLUMNS)
    byline = _pick(row, BYLINE_COLUMNS) or _pick(row, SOURCE_COLUMNS)
    if not title:
        split = split_headline(body) if len(body) >= GLUED_LEAD_MIN else None
        if split is not None:
            title, body = split.title, body[split.body_start :].strip()
            byline = byline or split.byline
        else:
            title = _title_from_text(body)
    label = _pick(row, ("label", "category", "类别"))
    if label:
        title = f"{label} · {title}"
    return Article(
        file=name,
        index=index,
        title=title,
        byline=byline,
        text=body,
        line_of=(number,) * len(body),
        title_line=number,
        unit="row",
        date=_pick(row, DATE_COLUMNS),
    )


def _pick_text(row: dict[str, str]) -> str:
    for column in TEXT_COLUMNS:
        value = row.get(column) or ""
        if value.strip():
            return value
    return ""


READERS: dict[str, Callable[[bytes, str], list[Article]]] = {
    ".txt": _read_text,
    ".md": _read_text,
    ".html": _read_html,
    ".htm": _read_html,
    ".docx": _read_docx,
    ".pdf": _read_pdf,
    ".jsonl": _read_rows,
    ".csv": _read_rows,
    ".tsv": _read_rows,
}
SUFFIXES = tuple(READERS)  # every type a corpus file or upload may have
FORMAT_NAMES = {
    ".html": "a web page",
    ".htm": "a web page",
    ".docx": "a Word document",
    ".pdf": "a PDF",
    ".jsonl": "JSON lines",
    ".csv": "CSV",
    ".tsv": "TSV",
}


# ----------------------------------------------------------------------------- the library

EXCLUDED_REASON = "excluded from the library (restore it in the chat's library tab)"
LIBRARY_RECORD_VERSION = 1


def library_record_path(config: Config) -> Path:
    """Where the library's record of ``config.corpus`` lives: beside its index, in the cache.

    With an index folder given, the record sits beside it (``<index>.library.json``);
    otherwise in the cache's ``indexes`` folder, one per article folder whatever the
    index settings, so exclusions hold for every index of the folder.

    Args:
        config: the shared configuration.

    Returns:
        The record's path (it may not exist yet).
    """
    if config.index_dir is not None:
        index = config.index_path
        return index.with_name(f"{index.name}.library.json")
    corpus = config.corpus
    tag = hashlib.sha1(str(corpus).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return cache_dir() / "indexes" / f"{corpus.name}-{tag}.library.json"


@dataclass
class LibraryRecord:
    """What the library knows of its folder beyond the files: which it stored, which to leave out.

    Kept in one JSON file under the cache (:func:`library_record_path`), never in the
    article folder.

    Attributes:
        path: the record file.
        uploaded: files the chat stored (name -> SHA-256 of the bytes written); such a
            file, still holding those bytes, is deleted when removed from the library.
        excluded: files left out of the library (name -> ``{"titles": [...],
            "excluded_at": epoch seconds}``); they stay on disk and can be restored.
    """

    path: Path
    uploaded: dict[str, str] = field(default_factory=dict)
    excluded: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> LibraryRecord:
        """The record at ``path`` (an empty one when there is none yet).

        A damaged record is read as empty, with a :class:`LibraryRecordWarning`: excluded
        files then come back into the library rather than the library being unusable.

        Args:
            path: the record file.

        Returns:
            The record.
        """
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            warnings.warn(f"library record {path}: {exc}; ignored", LibraryRecordWarning, 2)
            return cls(path)
        uploaded, excluded = (
            data.get(key) if isinstance(data, dict) else None for key in ("uploaded", "excluded")
        )
        if not isinstance(uploaded, dict) or not isinstance(excluded, dict):
            warnings.warn(f"library record {path} is malformed; ignored", LibraryRecordWarning, 2)
            return cls(path)
        return cls(
            path,
            {str(k): str(v) for k, v in uploaded.items()},
            {str(k): v if isinstance(v, dict) else {} for k, v in excluded.items()},
        )

    def save(self, corpus: Path) -> None:
        """Write the record atomically (a temporary file renamed into place).

        Args:
            corpus: the article folder (resolved), which the record must lie outside of.

        Raises:
            LibraryError: the record would lie in the article folder, or cannot be written.
        """
        target = self.path.expanduser().resolve()
        if target.is_relative_to(corpus):
            raise LibraryError(
                f"the library record {target} would lie inside the article folder {corpus}: "
                "choose an index folder outside it"
            )
        data = {
            "version": LIBRARY_RECORD_VERSION,
            "uploaded": dict(sorted(self.uploaded.items())),
            "excluded": dict(sorted(self.excluded.items())),
        }
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise LibraryError(
                f"the library record {target} cannot be written ({_why(exc)})"
            ) from exc


class LibraryRecordWarning(UserWarning):
    """The library's record was damaged and has been ignored."""


def excluded_files(config: Config) -> set[str]:
    """The names of the files excluded from ``config.corpus``'s library."""
    return set(LibraryRecord.load(library_record_path(config)).excluded)


def library_file(folder: Path, name: object) -> tuple[str, Path]:
    """A file a user names, confined to the article folder: its citable name and path.

    The name is taken as a path relative to ``folder`` (``/`` or ``\\`` separated);
    ``.`` parts are dropped. Whether the file exists or is in the library is not
    checked here.

    Args:
        folder: the article folder.
        name: what the user gave (from the page or the API: any value).

    Returns:
        The name as the library cites it (POSIX, relative) and the path to it inside
        ``folder`` (not resolved: a link inside the folder stays a link).

    Raises:
        UnsafePathError: not text, empty, absolute, with a ``..`` part or a NUL, or
            leading (through a symbolic link) outside ``folder`` or to ``folder`` itself.
    """
    if not isinstance(name, str):
        raise UnsafePathError(f"a file name must be text, not {type(name).__name__}")
    shown = _shown(name)[:200]
    if not name or "\x00" in name or len(name) > 4096 or not _valid_utf8(name):
        raise UnsafePathError(f"{shown!r} is not a usable file name")
    for form in (name, name.replace("\\", "/")):
        pure = PurePosixPath(form)
        if form.startswith("/") or re.match(r"^[A-Za-z]:", form) or ".." in pure.parts:
            raise UnsafePathError(
                f"{shown!r} is not a file inside the article folder (give its name there)"
            )
    parts = [part for part in PurePosixPath(name).parts if part != "."]
    if not parts:
        raise UnsafePathError(f"{shown!r} is not a usable file name")
    root = folder.expanduser().resolve()
    path = root.joinpath(*parts)
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:  # a link loop
        raise UnsafePathError(f"{shown!r} cannot be resolved ({exc})") from exc
    if resolved == root or not resolved.is_relative_to(root):
        raise UnsafePathError(f"{shown!r} leads outside the article folder")
    return "/".join(parts), path
