"""Lexical index: BM25 (bm25s) over Chinese words (jieba) or character bigrams."""

from __future__ import annotations

import json
import re
import unicodedata
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexCorruptError, RagError

try:
    import bm25s

    BM25S_AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only without the extra installed
    BM25S_AVAILABLE = False

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

TOKENIZERS = ("jieba", "bigram")
# BM25sIndex.load restores bm25s.BM25's internal state (scores, vocab_dict) without
# re-indexing; that state is not public API, so the exact version is pinned in
# pyproject.toml and tests/test_lexical.py fails when another one is installed.
BM25S_VERSION = "0.3.16"
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


class LexicalIndex:
    """Finds the chunks sharing the most (rare) words with a query, under int64 ids."""

    backend: str
    file_names: tuple[str, ...]

    def __init__(self, tokenizer: str) -> None:
        self.tokenizer = tokenizer

    def index(self, ids: np.ndarray, texts: list[str]) -> None:
        """Add ``texts`` under ``ids``."""
        raise NotImplementedError

    def remove(self, ids: np.ndarray) -> int:
        """Remove the texts with these ids. Returns how many were removed."""
        raise NotImplementedError

    def stage(self, remove: np.ndarray, ids: np.ndarray, texts: list[str]) -> Any:
        """Prepare removing ``remove`` and adding ``texts`` under ``ids``, without applying it.

        Backends override this to do the slow part (tokenising, rebuilding) here, so that
        :meth:`commit` is quick and searches go on meanwhile.

        Returns:
            The staged change, for :meth:`commit`.
        """
        return remove, ids, texts

    def commit(self, staged: Any) -> None:
        """Apply a change prepared by :meth:`stage` (no other change in between)."""
        remove, ids, texts = staged
        self.remove(remove)
        self.index(ids, texts)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) for ``query``, best first (fewer when few match)."""
        raise NotImplementedError

    def knows(self, text: str) -> bool:
        """Whether any word of ``text`` (two characters or more) occurs in an indexed text."""
        raise NotImplementedError

    def save(self, folder: Path) -> None:
        """Write the index files (``file_names``) into ``folder``."""
        raise NotImplementedError

    def load(self, folder: Path) -> None:
        """Read the index from ``folder``; raises :class:`IndexCorruptError` when damaged."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class BM25sIndex(LexicalIndex):
    """BM25 with ``bm25s``: scores precomputed into a sparse matrix, so a query is a lookup.

    The token lists are kept beside the matrix so that an incremental update rebuilds the
    matrix without re-tokenising the whole corpus.
    """

    backend = "bm25s"
    file_names = ("lexical_tokens.jsonl", "lexical_bm25.npz")

    def __init__(self, tokenizer: str) -> None:
        _require(BM25S_AVAILABLE, "bm25s")
        if tokenizer not in TOKENIZERS:
            raise RagError(f"unknown lexical tokenizer {tokenizer!r}; choose one of {TOKENIZERS}")
        super().__init__(tokenizer)
        self._tokens: dict[int, list[str]] = {}
        self._model: Any = None
        self._ids = np.zeros(0, dtype=np.int64)

    def index(self, ids: np.ndarray, texts: list[str]) -> None:
        for vid, text in zip(ids.tolist(), texts, strict=True):
            self._tokens[int(vid)] = tokenize(text, self.tokenizer, pinyin=True)
        self._model = None

    def remove(self, ids: np.ndarray) -> int:
        removed = sum(self._tokens.pop(int(vid), None) is not None for vid in ids.tolist())
        if removed:
            self._model = None
        return removed

    def stage(self, remove: np.ndarray, ids: np.ndarray, texts: list[str]) -> Any:
        tokens = dict(self._tokens)
        for vid in remove.tolist():
            tokens.pop(int(vid), None)
        for vid, text in zip(ids.tolist(), texts, strict=True):
            tokens[int(vid)] = tokenize(text, self.tokenizer, pinyin=True)
        return (tokens, *_bm25_model(tokens))

    def commit(self, staged: Any) -> None:
        self._tokens, self._ids, self._model = staged

    def _built(self) -> Any:
        if self._model is None:
            self._ids, self._model = _bm25_model(self._tokens)
        return self._model

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        empty = (np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64))
        model = self._built()
        if model is None:
            return empty
        token_ids = model.get_tokens_ids(tokenize(query, self.tokenizer))
        if not token_ids:
            return empty
        scores = model.get_scores_from_ids(token_ids)
        k = min(k, int(np.count_nonzero(scores > 0)))
        if k == 0:
            return empty
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return scores[top].astype(np.float32), self._ids[top]

    def knows(self, text: str) -> bool:
        model = self._built()
        if model is None:
            return False
        words = [t for t in tokenize(text, self.tokenizer) if len(t) >= 2]
        return any(w in model.vocab_dict for w in words)

    def save(self, folder: Path) -> None:
        with (folder / self.file_names[0]).open("w", encoding="utf-8") as handle:
            for vid, tokens in self._tokens.items():
                handle.write(json.dumps([vid, tokens], ensure_ascii=False) + "\n")
        model = self._built()
        vocab = sorted(model.vocab_dict, key=model.vocab_dict.__getitem__) if model else []
        empty = np.zeros(0, dtype=np.float32)
        with (folder / self.file_names[1]).open("wb") as handle:
            np.savez(
                handle,
                ids=self._ids,
                data=model.scores["data"] if model else empty,
                indices=model.scores["indices"] if model else empty.astype(np.int32),
                indptr=model.scores["indptr"] if model else np.zeros(1, dtype=np.int32),
                num_docs=np.asarray(model.scores["num_docs"] if model else 0),
                vocab=np.asarray(json.dumps(vocab, ensure_ascii=False)),
            )

    def load(self, folder: Path) -> None:
        try:
            tokens: dict[int, list[str]] = {}
            with (folder / self.file_names[0]).open(encoding="utf-8") as handle:
                for line in handle:
                    vid, words = json.loads(line)
                    tokens[int(vid)] = words
            with np.load(folder / self.file_names[1], allow_pickle=False) as saved:
                model = bm25s.BM25()
                model.scores = {
                    "data": saved["data"],
                    "indices": saved["indices"],
                    "indptr": saved["indptr"],
                    "num_docs": int(saved["num_docs"]),
                }
                vocab = json.loads(str(saved["vocab"]))
                ids = saved["ids"]
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise IndexCorruptError(
                f"lexical index unreadable ({type(exc).__name__}: {exc})"
            ) from exc
        if len(ids) != len(tokens) or set(ids.tolist()) != set(tokens):
            raise IndexCorruptError("lexical index and its token lists disagree")
        model.vocab_dict = {word: i for i, word in enumerate(vocab)}
        model.nonoccurrence_array = None
        self._tokens, self._ids, self._model = tokens, ids, (model if tokens else None)

    def __len__(self) -> int:
        return len(self._tokens)


def _bm25_model(tokens: dict[int, list[str]]) -> tuple[np.ndarray, Any]:
    """The ids in order and a bm25s model over their token lists (None when there are none)."""
    ids = np.fromiter(sorted(tokens), dtype=np.int64, count=len(tokens))
    if not len(ids):
        return ids, None
    model = bm25s.BM25()
    # an empty token keeps every document non-empty, as bm25s requires
    model.index([tokens[int(v)] or [""] for v in ids], show_progress=False)
    return ids, model


LEXICAL_BACKENDS: dict[str, type[LexicalIndex]] = {"bm25s": BM25sIndex}


def create_lexical_index(backend: str, tokenizer: str) -> LexicalIndex:
    """The lexical index named ``backend`` (see ``LEXICAL_BACKENDS``).

    Args:
        backend: e.g. ``"bm25s"``.
        tokenizer: ``"jieba"`` or ``"bigram"``.

    Returns:
        An empty index.
    """
    try:
        cls = LEXICAL_BACKENDS[backend]
    except KeyError:
        raise RagError(
            f"unknown lexical backend {backend!r}; choose one of {sorted(LEXICAL_BACKENDS)}"
        ) from None
    return cls(tokenizer)
