"""The embedding runtime choice (PyTorch or ONNX Runtime int8) and sentence vectors pooled
from the chunk pass: config, manifest, rebuilds, the missing-package message, quality."""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import make_chunk

from rag.config import DEFAULT_MODEL, SENTENCE_MAP_VERSION, Config
from rag.embedding import HashEmbedder, create_embedder, pool_spans
from rag.errors import InvalidArgumentError
from rag.index import MANIFEST, CorpusIndex, IndexRebuildWarning
from rag.sentences import (
    SentenceMap,
    embed_chunks,
    fit_sentence_map,
    map_for,
    map_key,
    pool_sentences,
)

ARTICLES = {
    "a.txt": "# 哈尔滨冰雪大世界开园\n\n第二十六届哈尔滨冰雪大世界12月18日开园。园区占地面积100万平方米。\n",
    "b.txt": "# 七台河短道速滑馆\n\n七台河体育中心短道速滑馆培养了多名奥运冠军。馆内每天有二百名小队员训练。\n",
}
SENTENCES = [
    "第二十六届哈尔滨冰雪大世界12月18日开园，园区占地面积100万平方米。",
    "七台河体育中心短道速滑馆培养了多名奥运冠军。",
    "绥芬河铁路口岸今年进出口货运量突破千万吨。",
    "10月18日，总投资10.89亿元的宝泰隆一矿正式竣工投产。",
    "How many jobs will the new coal mine in Qitaihe create?",
]


@pytest.fixture()
def config(tmp_path: Path) -> Config:
    folder = tmp_path / "articles"
    folder.mkdir()
    for name, text in ARTICLES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return Config(corpus_dir=folder, index_dir=tmp_path / "index", embedder="hash")


def _open(config: Config) -> tuple[CorpusIndex, object]:
    return CorpusIndex.open(config, create_embedder(config))


def test_runtime_and_sentence_vectors_are_validated() -> None:
    with pytest.raises(
        InvalidArgumentError, match="runtime must be one of auto, torch, onnx, onnx-int8"
    ):
        Config(runtime="tensorrt")
    with pytest.raises(InvalidArgumentError, match="sentence_vectors must be one of"):
        Config(sentence_vectors="both")


def test_torch_params_match_indexes_built_before_the_choice() -> None:
    # torch + separate sentence vectors are what every older index holds: not recorded,
    # so those indexes (and their folders, named by the params) stay valid with torch
    params = Config(runtime="torch").index_params()
    assert "runtime" not in params and "sentence_vectors" not in params
    other = Config(runtime="onnx-int8", sentence_vectors="pooled")
    assert other.index_params()["runtime"] == "onnx-int8"
    assert other.index_params()["sentence_vectors"] == "pooled"
    assert other.index_params()["sentence_map"] == SENTENCE_MAP_VERSION  # a new map rebuilds
    assert other.index_path != Config(runtime="torch").index_path


def test_the_default_runtime_is_int8_where_installed() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    assert Config().runtime == "auto" and Config().effective_runtime == "onnx-int8"
    assert Config().index_path == Config(runtime="onnx-int8").index_path
    assert Config().index_path != Config(runtime="torch").index_path


def test_manifest_records_the_runtime_and_a_change_rebuilds(config: Config) -> None:
    onnx = config.with_(runtime="onnx-int8")
    _open(onnx)
    manifest = json.loads((onnx.index_path / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["params"]["runtime"] == "onnx-int8"
    again, report = _open(onnx)
    assert not report.rebuilt and report.embedded == 0
    with pytest.warns(IndexRebuildWarning, match="runtime 'onnx-int8' → 'torch'"):
        _, report = _open(config.with_(runtime="torch"))  # vectors are never mixed
    assert report.rebuilt and report.embedded == len(again) > 0
    with pytest.warns(IndexRebuildWarning, match="sentence_vectors 'separate' → 'pooled'"):
        _, report = _open(config.with_(sentence_vectors="pooled"))
    assert report.rebuilt


def test_asking_for_onnx_without_onnxruntime_names_the_pip_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if missing
    with pytest.raises(ImportError, match=r'pip install "onnxruntime>=1.18" "onnx>=1.16"'):
        # a batch size no other test uses, so not an embedder cached by an earlier test
        create_embedder(Config(runtime="onnx-int8", batch_size=7))


def test_auto_runtime_falls_back_to_torch_with_one_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import rag.embedding

    made: list[tuple] = []
    monkeypatch.setattr(rag.embedding, "cached_embedder", lambda *args: made.append(args))
    rag.embedding._warn_torch_fallback.cache_clear()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # find_spec: not installed
    auto = Config(runtime="auto")
    assert auto.effective_runtime == "torch" and "runtime" not in auto.index_params()
    with pytest.warns(rag.embedding.RuntimeFallbackWarning, match=r"pip install onnxruntime onnx"):
        create_embedder(auto)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process: the second one stays quiet
        create_embedder(auto)
    assert made[-1][-1] == "torch"
    monkeypatch.delitem(sys.modules, "onnxruntime")
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):
        assert auto.effective_runtime == "onnx-int8"
        assert auto.index_params()["runtime"] == "onnx-int8"
        create_embedder(auto)
        assert made[-1][-1] == "onnx-int8"


def test_pool_spans_averages_the_overlapping_tokens() -> None:
    states = np.asarray([[9, 9], [1, 0], [3, 0], [0, 2], [9, 9], [7, 7]], dtype=np.float32)
    offsets = np.asarray([[0, 0], [0, 2], [2, 4], [4, 6], [0, 0], [0, 0]])
    mask = np.asarray([1, 1, 1, 1, 1, 0])  # CLS, three tokens, SEP, padding
    pooled = pool_spans(states, mask, offsets, [(0, 3), (4, 6), (3, 5), (10, 12)])
    np.testing.assert_allclose(pooled[0], [1, 0])  # tokens 1 and 2: mean (2, 0)
    np.testing.assert_allclose(pooled[1], [0, 1])
    np.testing.assert_allclose(pooled[2], np.asarray([3, 2]) / np.hypot(3, 2), rtol=1e-6)
    assert np.isnan(pooled[3]).all()  # past the tokens: left for a separate pass


def test_embed_chunks_without_token_states_embeds_sentences_separately() -> None:
    chunks = [make_chunk("开园了。面积很大！", "冰雪大世界"), make_chunk("训练。", "")]
    embedder = HashEmbedder()
    separate = embed_chunks(embedder, chunks, "separate")
    pooled = embed_chunks(embedder, chunks, "pooled")
    assert separate[1] == pooled[1] == [2, 1]
    np.testing.assert_allclose(separate[0], pooled[0])
    np.testing.assert_allclose(separate[2], pooled[2])
    np.testing.assert_allclose(separate[2][0], embedder.encode_passages(["开园了。"])[0])


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_a_sentence_map_learns_the_context_a_pooled_vector_carries(tmp_path: Path) -> None:
    # pooled = own + some of the chunk's context: the map has to take the context out
    rng = np.random.default_rng(1)
    counts = [3] * 400
    chunks = _unit(rng.normal(size=(len(counts), 8)))
    own = _unit(rng.normal(size=(sum(counts), 8)))
    pooled = _unit(own + 0.8 * np.repeat(chunks, counts, axis=0))
    fitted = SentenceMap.fit(pooled[:900], chunks[:300], counts[:300], own[:900], "m|p: ")
    assert fitted.held_out_cosine > 0.98 and fitted.model == "m|p: "
    mapped = fitted.apply(pooled[900:], chunks[300:], counts[300:])
    np.testing.assert_allclose(np.linalg.norm(mapped, axis=1), 1.0, atol=1e-5)
    assert np.sum(mapped * own[900:], axis=1).mean() > 0.98
    assert np.sum(pooled[900:] * own[900:], axis=1).mean() < 0.9  # what it starts from
    fitted.save(tmp_path / "map.npz")
    again = SentenceMap.load(tmp_path / "map.npz")
    assert (again.model, again.ridge) == (fitted.model, fitted.ridge)
    np.testing.assert_allclose(
        again.apply(pooled[900:], chunks[300:], counts[300:]), mapped, atol=2e-3
    )


def test_the_shipped_map_serves_only_the_model_it_was_fitted_for() -> None:
    class Pooling(HashEmbedder):
        pools_spans = True

    default = Pooling()
    default.name, default.passage_prefix = DEFAULT_MODEL, "passage: "
    shipped = map_for(default)
    assert shipped is not None and shipped.model == map_key(DEFAULT_MODEL, "passage: ")
    assert shipped.weights.shape == (2 * 384 + 1, 384)
    other_prefix = Pooling()
    other_prefix.name, other_prefix.passage_prefix = DEFAULT_MODEL, ""
    other_model = Pooling()
    other_model.name, other_model.passage_prefix = "BAAI/bge-small-zh-v1.5", "passage: "
    not_pooling = HashEmbedder()  # embeds sentences on their own: nothing to map
    not_pooling.name, not_pooling.passage_prefix = DEFAULT_MODEL, "passage: "
    assert map_for(other_prefix) is map_for(other_model) is map_for(not_pooling) is None


def test_fitting_a_map_needs_an_embedder_that_pools() -> None:
    with pytest.raises(InvalidArgumentError, match="embeds sentences separately"):
        fit_sentence_map(["冰雪大世界开园了。面积很大！"], Config(embedder="hash"))


def test_a_sentence_shared_by_overlapping_chunks_is_embedded_once() -> None:
    chunks = [make_chunk("开园了。面积很大！", ""), make_chunk("面积很大！游客很多。", "")]
    seen: list[str] = []

    class Counting(HashEmbedder):
        def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
            seen.extend(texts)
            return super().encode_passages(texts, progress)

    embedder = Counting()
    _, counts, flat = embed_chunks(embedder, chunks, "separate")
    assert counts == [2, 2]
    assert seen.count("面积很大！") == 1
    np.testing.assert_allclose(flat[1], flat[2])  # each chunk still has the sentence's row
    expected = HashEmbedder().encode_passages(
        ["开园了。", "面积很大！", "面积很大！", "游客很多。"]
    )
    np.testing.assert_allclose(flat, expected)


def test_matmuls_fed_by_activation_outliers_stay_fp32(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from rag.onnx_runtime import outlier_matmuls

    rng = np.random.default_rng(0)
    spike = np.ones(2048, dtype=np.float32)
    spike[3] = 500.0  # one channel of 2,048 far outside the rest, as in e5-small's layer 4
    weights = {
        "w1": rng.normal(size=(8, 2048)).astype(np.float32),
        "spike": spike,
        "w2": rng.normal(size=(2048, 4)).astype(np.float32),
    }
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["input_ids"], ["x"], to=TensorProto.FLOAT),
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="plain"),
            helper.make_node("Mul", ["h", "spike"], ["h2"]),
            helper.make_node("MatMul", ["h2", "w2"], ["out"], name="fed_by_outliers"),
        ],
        "g",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", 4])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    feeds = {"input_ids": rng.integers(1, 5, size=(64, 8))}
    assert outlier_matmuls(path, feeds) == ["fed_by_outliers"]


@pytest.fixture(scope="module")
def embedders(model_cache: Path) -> tuple[object, object]:
    """The default model on torch and on ONNX Runtime int8 (the session's export)."""
    pytest.importorskip("onnxruntime")
    mp = pytest.MonkeyPatch()
    mp.setenv("NEWSQA_CACHE", str(model_cache))
    try:
        built = (
            create_embedder(Config(runtime="torch")),
            create_embedder(Config(runtime="onnx-int8")),
        )
    finally:
        mp.undo()
    return built


@pytest.mark.slow
def test_onnx_int8_vectors_match_fp32(embedders: tuple) -> None:
    # measured on 400 news-dev chunks: cosine min 0.9978, mean 0.9987 (per-channel int8,
    # outlier inputs kept in fp32)
    torch_path, onnx_path = embedders
    assert onnx_path.runtime == "onnx-int8" and onnx_path.dim == torch_path.dim
    ours, reference = onnx_path.encode_passages(SENTENCES), torch_path.encode_passages(SENTENCES)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert np.sum(ours * reference, axis=1).min() >= 0.99
    # activations are quantised per batch: a text's vector moves only a little with its batch
    alone = np.stack([onnx_path.encode_passages([text])[0] for text in SENTENCES])
    assert np.sum(ours * alone, axis=1).min() >= 0.998
    # questions are embedded in full precision, on the same model on PyTorch
    np.testing.assert_allclose(
        onnx_path.embed_queries(SENTENCES), torch_path.embed_queries(SENTENCES), atol=1e-6
    )
    # and the same question still finds the same sentence first
    scores = (
        onnx_path.encode_passages(SENTENCES) @ onnx_path.embed_queries(["冰雪大世界哪天开园"])[0]
    )
    assert int(np.argmax(scores)) == 0


@pytest.mark.slow
def test_pooled_sentence_vectors_come_from_the_chunk_pass(embedders: tuple) -> None:
    long_tail = "。".join(SENTENCES[:3]) * 30  # past 512 tokens: the end is truncated
    texts = ["。".join(SENTENCES[:4]), long_tail]
    spans = [
        [(0, len(SENTENCES[0]))],
        [(0, len(SENTENCES[0])), (len(long_tail) - 10, len(long_tail))],
    ]
    for embedder in embedders:
        vectors, pooled = embedder.encode_passages_with_spans(texts, spans)
        np.testing.assert_allclose(vectors, embedder.encode_passages(texts), atol=1e-5)
        assert [len(m) for m in pooled] == [1, 2] and not np.isnan(pooled[1]).any()
        # the truncated span was embedded on its own
        alone = embedder.encode_passages([long_tail[-10:]])[0]
        np.testing.assert_allclose(pooled[1][1], alone, atol=1e-5)
        # a pooled sentence is close to, but not the same as, the sentence embedded alone
        own = embedder.encode_passages([SENTENCES[0]])[0]
        assert 0.8 < float(pooled[0][0] @ own) < 0.9999


@pytest.mark.slow
def test_pooled_index_vectors_are_mapped_towards_the_sentences_own(embedders: tuple) -> None:
    article = "".join(SENTENCES[:4]) + "园区内新建了冰雕展区和滑雪场。游客可以乘坐观光车游览。"
    chunks = [make_chunk(article, "冰雪大世界"), make_chunk("".join(SENTENCES[1:4]), "")]
    for embedder in embedders:
        vectors, counts, raw = pool_sentences(embedder, chunks)
        _, counts_again, mapped = embed_chunks(embedder, chunks, "pooled")
        _, _, own = embed_chunks(embedder, chunks, "separate")
        assert counts == counts_again and len(mapped) == len(own) == sum(counts)
        # the index stores the mapped vectors, nearer the sentences' own than the raw ones
        raw_cosine = np.sum(raw * own, axis=1)
        mapped_cosine = np.sum(mapped * own, axis=1)
        assert mapped_cosine.mean() > raw_cosine.mean() + 0.01
        assert mapped_cosine.min() > 0.9


def test_a_damaged_export_names_the_folder_to_delete(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from rag.errors import ModelError
    from rag.onnx_runtime import META_FILE, OnnxEmbedder, runtime_dir

    source = tmp_path / "my-model"
    source.mkdir()
    export = runtime_dir(str(source), "onnx-int8")
    export.mkdir(parents=True)
    meta = {"file": "model_int8.onnx", "inputs": ["input_ids"], "max_seq_length": 512}
    (export / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ModelError, match="delete the folder"):  # no "dim": unreadable
        OnnxEmbedder(str(source))
    (export / META_FILE).write_text(json.dumps({**meta, "dim": 384}), encoding="utf-8")
    (export / "model_int8.onnx").write_bytes(b"not a model")
    embedder = OnnxEmbedder(str(source))  # opening an index needs neither file
    assert embedder.dim == 384
    with pytest.raises(ModelError, match=f"{export.name}.*delete the folder"):
        embedder.encode_passages(["一篇文章"])  # the tokenizer is missing
    assert export.is_dir()  # reported, never deleted
