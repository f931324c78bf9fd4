"""Lexical search: Chinese tokenising, pinyin for English names, BM25 persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag import IndexCorruptError
from rag.lexical import BM25sIndex, create_lexical_index
from rag.text import normalise_query, tokenize

TEXTS = [
    "七台河冰雪经济产业园研创中心项目总建筑面积2800平方米。",
    "绥芬河市2021年以来签约项目141个，签约额达到三百亿元。",
    "五大连池市选取了614个风机点位，规划风电总装机容量3837.5MW。",
]


def test_jieba_tokens_are_words_without_stopwords() -> None:
    tokens = tokenize("七台河冰雪经济产业园的总建筑面积是多少？", "jieba")
    assert {"七台河", "产业园", "建筑面积"} <= set(tokens)
    assert not {"的", "是", "多少", "？"} & set(tokens)


def test_bigram_tokens_cover_every_pair_and_keep_numbers_whole() -> None:
    assert tokenize("签约项目141个", "bigram") == ["签约", "约项", "项目", "141", "个"]


def test_width_and_case_are_folded() -> None:
    assert tokenize("ＧＤＰ增长５．２％", "jieba")[:2] == ["gdp", "增长"]


def test_pinyin_lets_english_names_match_chinese_text() -> None:
    index = BM25sIndex("jieba")
    index.index(np.arange(3), TEXTS)
    _, ids = index.search("How many wind turbine sites did Wudalianchi select?", 3)
    assert ids.tolist()[:1] == [2]
    _, ids = index.search("Suifenhe signed projects", 3)
    assert ids.tolist()[:1] == [1]


@pytest.mark.parametrize("tokenizer", ["jieba", "bigram"])
def test_search_remove_and_save_load_round_trip(tokenizer: str, tmp_path: Path) -> None:
    index = create_lexical_index("bm25s", tokenizer)
    index.index(np.array([10, 11, 12]), TEXTS)
    scores, ids = index.search("绥芬河签约了多少个项目", 2)
    assert ids.tolist()[0] == 11 and scores[0] > 0
    index.save(tmp_path)
    loaded = create_lexical_index("bm25s", tokenizer)
    loaded.load(tmp_path)
    assert loaded.search("绥芬河签约了多少个项目", 2)[1].tolist() == ids.tolist()
    assert loaded.remove(np.array([11, 99])) == 1
    assert 11 not in loaded.search("绥芬河签约了多少个项目", 3)[1].tolist()
    assert len(loaded) == 2


def test_a_query_with_no_known_word_finds_nothing() -> None:
    index = BM25sIndex("jieba")
    index.index(np.arange(3), TEXTS)
    scores, ids = index.search("火星", 3)
    assert len(ids) == 0 and len(scores) == 0


def test_damaged_files_raise_index_corrupt(tmp_path: Path) -> None:
    index = BM25sIndex("jieba")
    index.index(np.arange(3), TEXTS)
    index.save(tmp_path)
    path = tmp_path / index.file_names[1]
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(IndexCorruptError):
        BM25sIndex("jieba").load(tmp_path)


def test_unknown_backend_or_tokenizer_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="unknown lexical backend"):
        create_lexical_index("whoosh", "jieba")
    with pytest.raises(Exception, match="unknown lexical tokenizer"):
        create_lexical_index("bm25s", "words")


def test_traditional_and_full_width_questions_are_folded() -> None:
    assert (
        normalise_query("七臺河冰雪經濟產業園總建築面積是多少？")
        == "七台河冰雪经济产业园总建筑面积是多少?"
    )
    assert normalise_query("ＧＤＰ增長５．２％") == "GDP增长5.2%"


def test_bm25s_is_the_version_its_private_state_was_written_for() -> None:
    from importlib import metadata

    from rag.lexical import BM25S_VERSION

    installed = metadata.version("bm25s")
    assert installed == BM25S_VERSION, (
        f"bm25s {installed} installed; BM25sIndex.load restores bm25s {BM25S_VERSION}'s "
        "internal state: check it against the new version, then update BM25S_VERSION "
        "and the pin in pyproject.toml"
    )
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert f'"bm25s=={BM25S_VERSION}"' in pyproject


def test_a_word_of_a_removed_text_is_no_longer_known(tmp_path: Path) -> None:
    index = BM25sIndex("jieba")
    index.index(np.arange(3), TEXTS)
    assert index.knows("绥芬河")
    index.remove(np.array([1]))  # the only text naming 绥芬河
    assert not index.knows("绥芬河")
    index.save(tmp_path)
    loaded = BM25sIndex("jieba")
    loaded.load(tmp_path)
    assert not loaded.knows("绥芬河") and len(loaded) == 2


def test_an_update_staged_without_rebuilding_is_searchable_after_commit() -> None:
    index = BM25sIndex("jieba")
    index.index(np.arange(3), TEXTS)
    staged = index.stage(np.array([0]), np.array([7]), ["松花江上的冰雕节开幕"], build=False)
    index.commit(staged)
    assert index.search("冰雕节", 3)[1].tolist() == [7]
    assert 0 not in index.search(TEXTS[0][:8], 3)[1].tolist()
