"""End to end over the bundled seeds: the answering passage is in the top 3, correctly cited.

Ranking and refusal claims run on the real model (slow); what does not depend on the
model's quality (errors, truncation, normalisation, modes, uploads) runs on the hash
embedder.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import SEED_ANSWERS

import rag
from rag import Config, QuestionError, Retriever
from rag.embedding import HashEmbedder
from rag.retrieval import QuestionTooLongWarning
from rag.text import normalise_query, sentence_spans

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

QUESTIONS = SEED_ANSWERS  # (question, file, text the answering passage must contain)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def retriever(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    """The seeds on the real model."""
    index_dir = tmp_path_factory.mktemp("seed-index")
    with pytest.MonkeyPatch.context() as env:  # the model's cache for this build only
        env.setenv("NEWSQA_CACHE", str(model_cache))
        return Retriever.from_config(Config(index_dir=index_dir))


@pytest.fixture(scope="module")
def hashed(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    """The seeds on the hash embedder: no model, open in seconds."""
    root = tmp_path_factory.mktemp("seed-index-hash")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NEWSQA_CACHE", str(root / "cache"))
        return Retriever.from_config(Config(index_dir=root / "index", embedder="hash"))


@pytest.mark.slow
@pytest.mark.parametrize("question,file,answer", QUESTIONS, ids=[q[0][:12] for q in QUESTIONS])
def test_answering_passage_in_top_3_and_cited(
    retriever: Retriever, question: str, file: str, answer: str
) -> None:
    hits = retriever.retrieve(question, k=3)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score
    good = [h for h in hits if answer in h.text]
    assert good, [h.text[:40] for h in hits]
    hit = good[0]
    assert hit.citation.file == file
    source = (SEEDS / file).read_text(encoding="utf-8").splitlines()
    cited = _squash("".join(source[hit.citation.line_start - 1 : hit.citation.line_end]))
    assert _squash(answer) in cited  # the cited lines hold the answer
    # the highlighted answer is one whole sentence of the passage, not a fragment
    assert (hit.sentence_start, hit.sentence_end) in sentence_spans(hit.text)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("宝泰隆一矿的设计产能是多少？", "90万吨/年"),
        ("关成亮在绥芬河站担任什么工作？", "调车长"),
        ("七台河援助湖北孝感医疗队有多少名队员？", "12名"),
        ("How many days did the Qitaihe medical team fight in Hubei?", "39天"),
        ("How many wind turbine sites did Wudalianchi select?", "614"),
        ("Which school's students took part in the forest study trip in Hegang?", "第十三中学"),
        ("Where was the Suifenhe Chinese pastry vocational skills competition held?", "金成"),
    ],
)
def test_best_sentence_points_at_the_answer(
    retriever: Retriever, question: str, answer: str
) -> None:
    hit = retriever.retrieve(question, 1)[0]
    assert answer in hit.sentence


def test_empty_question_is_a_value_error(hashed: Retriever) -> None:
    for question in ("", "   \n\t "):
        with pytest.raises(ValueError, match="empty"):
            hashed.retrieve(question)
    with pytest.raises(QuestionError):
        hashed.retrieve("")


def test_huge_question_is_truncated_with_a_warning_and_still_answered(hashed: Retriever) -> None:
    with pytest.warns(QuestionTooLongWarning):
        hits = hashed.retrieve("七台河冰雪经济产业园" * 1000, 2)
    assert "七台河冰雪经济产业园" in hits[0].text


def test_traditional_and_half_width_questions_are_searched_as_simplified(
    hashed: Retriever,
) -> None:
    def found(question: str) -> list[tuple[str, float]]:
        return [(h.chunk_id, h.score) for h in hashed.retrieve(question, 3)]

    simplified = found("七台河冰雪经济产业园研创中心项目的总建筑面积是多少？")
    assert found("七臺河冰雪經濟產業園研創中心項目的總建築面積是多少?") == simplified
    assert simplified != found("七台河冰雪经济产业园研创中心项目的开工时间是什么时候？")


@pytest.mark.slow
def test_module_level_retrieve_uses_the_bundled_seeds(with_model: Path) -> None:
    rag.retrieval.default_retriever.cache_clear()
    hits = rag.retrieve("宝泰隆一矿总投资多少？", k=2)
    assert len(hits) == 2 and hits[0].citation.file.startswith("000_")
    assert set(rag.__all__) >= {"retrieve", "Retriever", "Hit", "Config", "Article", "Chunk"}


@pytest.fixture()
def small_retriever(tmp_path: Path) -> Retriever:
    """One seed article on the hash embedder, for tests that change the library."""
    corpus = tmp_path / "library"
    corpus.mkdir()
    shutil.copy(SEEDS / "001_46b047b0685aa754.txt", corpus)
    return Retriever.from_folder(corpus, Config(embedder="hash"))


def test_an_added_document_is_answered_and_cited_at_once(small_retriever: Retriever) -> None:
    article = (
        "# 漠河北极村迎来首场降雪\n\n本报讯（记者丁）漠河北极村今年首场降雪厚度达到十八厘米。\n"
    )
    report = small_retriever.add_document("mohe.txt", article.encode("gb18030"))
    assert report.added == ["mohe.txt"] and report.embedded == 1
    hit = small_retriever.retrieve("北极村首场降雪有多厚？", k=1)[0]
    assert hit.citation.file == "mohe.txt" and "十八厘米" in hit.sentence
    assert ("mohe.txt", "漠河北极村迎来首场降雪") in small_retriever.articles()
    # the same name again is stored beside it, not over it
    again = small_retriever.add_document("mohe.txt", article.encode("utf-8"))
    assert again.added == ["mohe-2.txt"]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("empty.txt", b"  \n\n"),
        ("binary.txt", bytes(range(256)) * 4),
        ("photo.jpg", "# 标题\n\n正文。".encode()),
        ("latin1.txt", "caf\xe9 \xff\xfe".encode("latin-1") * 50),
    ],
)
def test_a_bad_document_is_refused_and_changes_nothing(
    small_retriever: Retriever, name: str, data: bytes
) -> None:
    before = (
        sorted(p.name for p in small_retriever.config.corpus.iterdir()),
        len(small_retriever.index),
    )
    with pytest.raises(rag.UnreadableFileError, match=re.escape(name)):
        small_retriever.add_document(name, data)
    after = (
        sorted(p.name for p in small_retriever.config.corpus.iterdir()),
        len(small_retriever.index),
    )
    assert after == before


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    ["火星上有没有水？", "2022年世界杯冠军是哪支球队？", "What is the capital of Australia?"],
)
def test_off_topic_questions_are_answered_with_not_found(
    retriever: Retriever, question: str
) -> None:
    answer = retriever.ask(question)
    assert not answer.found
    # the closest candidates are all still there, for the reply to show as weak matches
    assert len(answer.hits) == retriever.config.k


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    [
        # the project is in the articles, its total investment is not
        "联顺绿色生物医药产业项目的总投资是多少？",
        # the closest passage counts 七台河's projects, not 佳木斯's
        "佳木斯市今年有多少个省重点项目开工？",
        # the articles name the contest, not its winner
        "绥芬河中式面点职业技能竞赛的第一名是谁？",
    ],
)
def test_tempting_questions_the_articles_do_not_answer_are_refused(
    retriever: Retriever, question: str
) -> None:
    answer = retriever.ask(question)
    assert not answer.found and not answer.hits[0].fits_question


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    [
        "Who won the 2022 football World Cup?",
        "How many bones are in the human body?",
        "How many legs does a spider have?",
    ],
)
def test_off_topic_english_questions_are_refused(retriever: Retriever, question: str) -> None:
    # their cosines reach the named threshold; sharing no name, they need the higher one
    answer = retriever.ask(question)
    assert not answer.found
    assert answer.threshold == retriever.calibration.thresholds["cross_lingual_unnamed"]


@pytest.mark.slow
def test_an_english_question_naming_a_place_of_the_passage_gets_the_lower_threshold(
    retriever: Retriever,
) -> None:
    thresholds = retriever.calibration.thresholds
    named = retriever.ask("How many wind turbine sites did Wudalianchi select?")
    assert named.found and named.threshold == thresholds["cross_lingual_named"]
    unnamed = retriever.ask("To how many were the AI seats of Harbin's 12345 hotline increased?")
    assert unnamed.threshold == thresholds["cross_lingual_unnamed"] > named.threshold
    assert unnamed.found  # Harbin is written haerbin in pinyin: found on its score alone


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("宝泰隆一矿的设计产能是多少？", "90万吨/年"),
        ("How many wind turbine sites did Wudalianchi select?", "614"),
        ("七台河援助湖北孝感医疗队有多少名队员？", "12名"),
        ("七台河市与希腊的哪个城市建立了友好交流关系？", "马拉松市"),
    ],
)
def test_answerable_questions_are_found_with_the_answering_sentence(
    retriever: Retriever, question: str, answer: str
) -> None:
    found = retriever.ask(question)
    assert found.found and answer in found.sentence


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_every_mode_finds_a_chinese_factoid(retriever: Retriever, mode: str) -> None:
    hits = retriever.retrieve("绥芬河市2021年以来签约了多少个项目？", k=3, mode=mode)
    assert any("签约项目141个" in h.text for h in hits)


@pytest.mark.parametrize("mode", ["dense", "lexical"])
def test_a_mode_chosen_per_call_searches_as_a_library_set_to_it(
    hashed: Retriever, mode: str
) -> None:
    def found(retriever: Retriever, mode: str | None = None) -> list[tuple[str, float]]:
        hits = retriever.retrieve("绥芬河市2021年以来签约了多少个项目？", k=3, mode=mode)
        return [(h.chunk_id, h.score) for h in hits]

    configured = Retriever(hashed.config.with_(mode=mode), hashed.embedder, hashed.index)
    assert found(hashed, mode) == found(configured)
    assert found(configured) != found(hashed)  # not the library's hybrid search
    assert found(configured, "hybrid") == found(hashed)


def test_a_mode_chosen_per_call_changes_only_that_call(hashed: Retriever) -> None:
    question = "How many wind turbine sites did Wudalianchi select?"
    lexical = hashed.ask(question, k=3, mode="lexical")
    assert lexical.threshold is None  # lexical scores have no calibrated threshold
    assert hashed.ask(question, k=3).threshold is not None
    assert hashed.config.mode == "hybrid"


def test_an_unknown_mode_is_refused(hashed: Retriever) -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        Config(mode="semantic")
    with pytest.raises(ValueError, match="mode must be one of"):
        hashed.retrieve("七台河在哪里？", mode="semantic")


def test_an_english_question_is_searched_in_chinese_words_too(tmp_path: Path) -> None:
    corpus = tmp_path / "articles"
    corpus.mkdir()
    (corpus / "film.txt").write_text(
        "# 新片上映\n\n这部电影首周票房达到两千万元，观众反响热烈。\n", "utf-8"
    )
    (corpus / "farm.txt").write_text("# 春耕\n\n农民开始播种玉米和大豆，农机已经下地。\n", "utf-8")
    question = "What was the box office in its first week?"
    for expand, expected in ((True, "film.txt"), (False, None)):
        config = Config(corpus_dir=corpus, index_dir=tmp_path / f"ix{expand}", embedder="hash")
        hits = Retriever.from_config(config.with_(expand_english=expand)).retrieve(
            question, mode="lexical"
        )
        assert (hits[0].citation.file if hits else None) == expected


def test_english_terms_get_their_common_chinese_word() -> None:
    from rag.text import chinese_for_english

    words = chinese_for_english("What was the box office of the university's film?")
    assert words[:2] == ["票房", "大学"]  # the phrase, not "box" and "office"; question order
    assert chinese_for_english("How many are there?") == []  # question and function words


class _FullPrecision(HashEmbedder):
    """Stands in for the unquantised model: records each call, and gives texts holding
    ``favoured`` the question's own vector (cosine 1), every other text its opposite."""

    def __init__(self, question_vector: np.ndarray, favoured: str) -> None:
        super().__init__()
        self.question_vector, self.favoured = question_vector, favoured
        self.calls: list[list[str]] = []

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        self.calls.append(texts)
        return np.stack([self.question_vector * (1 if self.favoured in t else -1) for t in texts])


class _Quantised(HashEmbedder):
    """Stands in for an int8 runtime: its full-precision twin is ``full``."""

    def __init__(self, full: HashEmbedder) -> None:
        super().__init__()
        self.full = full

    def full_precision(self) -> HashEmbedder:
        return self.full


def test_english_questions_rescore_their_top_passages_in_full_precision(
    hashed: Retriever,
) -> None:
    english = "How many wind turbine sites did Wudalianchi select?"
    before = hashed.retrieve(english, k=3)
    favoured = before[1].text[:12]  # the runner-up's opening: full precision prefers it
    vector = hashed.embedder.encode_queries([normalise_query(english)])[0]
    full = _FullPrecision(vector, favoured)
    quantised = Retriever(hashed.config, _Quantised(full), hashed.index)
    after = quantised.retrieve(english, k=3)
    assert after[0].chunk_id == before[1].chunk_id  # the second stage ran again on them
    # one pass over the top two chunks, then their sentences
    [texts] = full.calls
    assert sum(favoured in t for t in texts[:2]) == 1 and len(texts) > 2
    # asked again (or a follow-up on the same passages): their vectors come from the cache
    full.calls.clear()
    assert quantised.retrieve(english, k=3)[0].chunk_id == after[0].chunk_id
    assert full.calls == []
    full.passage_cache.clear()
    quantised.retrieve(english, k=3)
    assert full.calls == [texts]
    # Chinese questions, and a retriever told not to, never use it
    full.calls.clear()
    full.passage_cache.clear()
    quantised.retrieve("五大连池市选了多少个风电场址？", k=3)
    off = Retriever(hashed.config.with_(refine_cross_lingual=0), _Quantised(full), hashed.index)
    off.retrieve(english, k=3)
    assert full.calls == []
