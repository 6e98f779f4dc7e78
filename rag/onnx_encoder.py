"""Sentence embeddings through ONNX Runtime: fp32, or int8 with dynamic quantization.

On CPU the embedder's cost is the transformer's matrix products; ONNX Runtime runs them as
int8 (VNNI/AMX where the CPU has them) after `onnxruntime.quantization.quantize_dynamic`.
The graph is exported here, once per model weights, with `torch.onnx.export` from the local
weights (nothing is downloaded), and cached under `<assay cache>/onnx/<model>-<fingerprint>/`
(`model.onnx`, `model.int8.onnx`, `meta.json`), built in a temporary directory and swapped in
whole (core.files.atomic_dir), so a killed export leaves nothing that is read.

What was measured on this 2-core machine (Cranfield chunks, all-MiniLM-L6-v2; bench/embedding.py):
- Each text runs alone, unpadded (`input_ids` only: no attention mask, no padding tokens):
  the mask add, softmax and matmuls over padding are a large share of an int8 forward pass,
  and a text's vector never depends on which texts share its batch (dynamic quantization
  picks activation ranges per run, so in a padded batch it would). fp32 runs texts of equal
  token length together (no padding either, so the same vectors).
- Weights are quantized per output channel: per-tensor int8 took the minimum cosine to
  sentence-transformers to 0.88. The FFN down-projection of the first half of the layers
  stays fp32: its input (the GELU output) has outlier channels there (max |x| ~25 vs ~5 in
  the last layers) that a per-tensor uint8 activation range cannot hold; with all of them
  int8 the minimum cosine over Cranfield's 2,463 chunks was 0.987, with these three fp32 0.994.
- Texts of fewer than 8 tokens (a word or two, an empty string) run in fp32 even in the int8
  variant: dynamic quantization over 2-3 token activations is coarse (cosine to torch down to
  0.981 for "" and "x"; 0.992 and up from 4 tokens, 0.994 from 8), and they cost nothing.
- Parallelism is over texts, not inside a forward pass: each run has one intra-op thread and
  `threads` (default: the cores) runs go at once from a thread pool (ONNX Runtime releases
  the GIL). One text is too small a job to split: ORT's 2-thread runs spin-wait for each
  other, and on this shared machine they went at 30 chunks/s against 78-84 for one thread per
  run (torch's encode: 17 in the same run).
- ORT's transformer optimizer (fused Attention/SkipLayerNorm) was not faster than ORT's own
  graph optimizations at load time, so the plain export is used.

Only models of a shape the export is checked for are taken: sentence-transformers folders
Transformer -> Pooling (mean or CLS) -> [Normalize] over a `bert` model without lower-casing;
`unsupported_reason` says why any other is left to torch.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from core.files import atomic_dir, atomic_write_json, atomic_write_text

VARIANTS = ("onnx-int8", "onnx", "torch")
ENCODERS = ("auto",) + VARIANTS
EXPORT_VERSION = 1  # bump when the exported graph or the quantization recipe changes
_ST_PREFIX = "sentence_transformers.models."
_SUPPORTED_TYPES = ("bert",)
FP32_BELOW_TOKENS = 8  # the int8 variant runs shorter texts in fp32 (see above)


class OnnxExportError(RuntimeError):
    """The model cannot be exported (or its export does not match torch)."""


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _pooling(path: Path) -> tuple[str, bool] | str:
    """(pooling mode, normalize) of a sentence-transformers folder, or why it is unsupported."""
    try:
        modules = _read_json(path / "modules.json")
    except (OSError, ValueError):
        return "no readable modules.json (not a sentence-transformers folder)"
    types = [m.get("type", "") for m in modules]
    if (len(modules) not in (2, 3) or types[0] != _ST_PREFIX + "Transformer" or modules[0].get("path")
            or types[1] != _ST_PREFIX + "Pooling" or types[2:] not in ([], [_ST_PREFIX + "Normalize"])):
        return f"modules {[t.rsplit('.', 1)[-1] for t in types]} are not Transformer -> Pooling -> [Normalize]"
    try:
        pooling = _read_json(path / modules[1]["path"] / "config.json")
    except (OSError, ValueError, KeyError):
        return "no readable pooling config"
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if modes == ["pooling_mode_mean_tokens"]:
        mode = "mean"
    elif modes == ["pooling_mode_cls_token"]:
        mode = "cls"
    else:
        return f"pooling {modes} (only mean or CLS pooling is exported)"
    if pooling.get("include_prompt", True) is not True:
        return "pooling excludes the prompt"
    return mode, len(modules) == 3


def unsupported_reason(path: str | os.PathLike) -> str | None:
    """Why the model folder at `path` cannot take the ONNX path, or None when it can."""
    import importlib.util

    for mod in ("onnxruntime", "onnx"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed"
    path = Path(path)
    if not path.is_dir():
        return f"{path} is not a local model folder"
    pooled = _pooling(path)
    if isinstance(pooled, str):
        return pooled
    try:
        config = _read_json(path / "config.json")
    except (OSError, ValueError):
        return "no readable config.json"
    if config.get("model_type") not in _SUPPORTED_TYPES:
        return f"model type {config.get('model_type')!r} (the export is checked for {', '.join(_SUPPORTED_TYPES)})"
    if config.get("position_embedding_type", "absolute") != "absolute":
        return "relative position embeddings"
    st = _read_json(path / "sentence_bert_config.json") if (path / "sentence_bert_config.json").exists() else {}
    if st.get("do_lower_case"):
        return "lower-casing before the tokenizer"
    if not (path / "tokenizer.json").exists():
        return "no tokenizer.json (fast tokenizer)"
    if not _weight_files(path):
        return "no model.safetensors or pytorch_model.bin"
    return None


def _weight_files(path: Path) -> list[Path]:
    return [p for p in (path / "model.safetensors", path / "pytorch_model.bin") if p.exists()][:1]


_FINGERPRINTS: dict[tuple, str] = {}


def fingerprint(path: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """sha256 of the model's weights and config (and the export recipe's version).

    Hashing 90 MB costs ~0.3 s, more than a cold query's forward pass, so the digest is kept
    under `<root>/fingerprints/`, named by the files' paths, sizes and mtimes: a changed
    weights file is hashed again."""
    path = Path(path)
    files = [path / "config.json", *_weight_files(path)]
    stamp = tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if stamp not in _FINGERPRINTS:
        memo = (Path(root) if root is not None else default_onnx_dir()) / "fingerprints" / (
            hashlib.sha256(repr((EXPORT_VERSION, stamp)).encode()).hexdigest()[:32])
        try:
            digest = memo.read_text(encoding="ascii").strip()
        except OSError:
            digest = ""
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            h = hashlib.sha256(f"assay-onnx-export-{EXPORT_VERSION}".encode())
            for f in files:
                with open(f, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 22), b""):
                        h.update(block)
            digest = h.hexdigest()
            try:
                atomic_write_text(memo, digest)
            except OSError:
                pass  # a read-only cache: hash again next time
        _FINGERPRINTS[stamp] = digest
    return _FINGERPRINTS[stamp]


def default_onnx_dir() -> Path:
    from core.models import cache_dir

    return cache_dir() / "onnx"


def export_dir(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The cached export of the model at `path`: exported (and quantized) on first use."""
    path = Path(path)
    root = Path(root) if root is not None else default_onnx_dir()
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", path.resolve().name if path.name != "model" else path.resolve().parent.name)
    target = root / f"{name[:60]}-{fingerprint(path, root)[:16]}"
    if (target / "meta.json").exists():
        return target
    reason = unsupported_reason(path)
    if reason:
        raise OnnxExportError(reason)
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / f".{target.name}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one exporter at a time; the others then read its result
        if not (target / "meta.json").exists():
            with atomic_dir(target) as tmp:
                meta = _export(path, tmp / "model.onnx")
                meta["int8_fp32_nodes"] = _quantize(tmp / "model.onnx", tmp / "model.int8.onnx")
                atomic_write_json(tmp / "meta.json", meta)  # last: the export's completion mark
    finally:
        os.close(fd)
    return target


def _export(path: Path, out: Path) -> dict[str, Any]:
    """torch.onnx.export of BERT + pooling (no normalization: the caller normalizes)."""
    import torch
    from transformers import AutoModel

    mode, _ = _pooling(path)
    try:
        bert = AutoModel.from_pretrained(str(path), attn_implementation="eager").eval()
    except Exception as exc:  # noqa: BLE001 - any loading failure means "not exportable"
        raise OnnxExportError(f"transformers cannot load it ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None

    class Pooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids):
            hidden = self.model(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            return hidden.mean(1) if mode == "mean" else hidden[:, 0]

    wrapped = Pooled(bert).eval()
    probe = torch.tensor([[101, 7592, 2088, 1010, 2023, 2003, 1037, 3231, 1012, 102]]) % bert.config.vocab_size
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapped, (probe,), str(out), dynamo=False, input_names=["input_ids"],
                              output_names=["embedding"], opset_version=17, do_constant_folding=True,
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}})
            want = wrapped(probe).numpy()
    except Exception as exc:  # noqa: BLE001
        raise OnnxExportError(f"torch.onnx.export failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    got = _session(out, threads=1).run(None, {"input_ids": probe.numpy()})[0]
    err = float(np.abs(got - want).max())
    if not err < 1e-3:
        raise OnnxExportError(f"the exported graph differs from torch by {err:.2g}")
    return {"export_version": EXPORT_VERSION, "pooling": mode, "hidden": int(want.shape[1]),
            "layers": int(bert.config.num_hidden_layers), "source": str(path), "max_abs_diff_to_torch": err}


def _quantize(src: Path, dst: Path) -> list[str]:
    """Dynamic int8, weights per channel; the FFN down-projections of the first half of the
    layers stay fp32 (see the module docstring). Returns those nodes' names."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False).graph
    down = {}
    for node in graph.node:
        m = re.search(r"layer\.(\d+)/output/dense/MatMul", node.name)
        if node.op_type == "MatMul" and m and "attention" not in node.name:
            down[int(m.group(1))] = node.name
    keep = [down[i] for i in sorted(down) if i < (max(down) + 1) / 2] if down else []
    import logging

    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" on every call
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=keep)
    finally:
        logging.getLogger().setLevel(level)
    return keep


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _session(model_file: Path, threads: int = 1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for name, value in (("intra_op_num_threads", threads), ("inter_op_num_threads", 1),
                        ("graph_optimization_level", ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
                        ("log_severity_level", 3)):
        setattr(so, name, value)
    return ort.InferenceSession(str(model_file), so, providers=["CPUExecutionProvider"])


class OnnxEncoder:
    """`encode(texts)` -> (n, d) float32 L2-normalized rows, through ONNX Runtime."""

    def __init__(self, model_path: str | os.PathLike, variant: str = "onnx-int8", *,
                 cache_root: str | os.PathLike | None = None, threads: int | None = None) -> None:
        if variant not in ("onnx-int8", "onnx"):
            raise ValueError(f"OnnxEncoder runs onnx or onnx-int8, not {variant!r}")
        self.path = Path(model_path)
        self.variant = variant
        self.dir = export_dir(self.path, cache_root)
        self.meta = _read_json(self.dir / "meta.json")
        self.threads = threads or default_threads()
        self._sessions: dict[str, Any] = {}  # file name -> session (one intra-op thread), on first use
        self._pool: Any = None  # a thread pool of `threads` workers, when there is more than one job
        from rag.query_encoder import sentence_tokenizer

        self.tokenizer = sentence_tokenizer(self.path)

    @property
    def dim(self) -> int:
        return int(self.meta["hidden"])

    def _file(self, tokens: int) -> str:
        """The graph a text of `tokens` tokens runs through."""
        return "model.int8.onnx" if self.variant == "onnx-int8" and tokens >= FP32_BELOW_TOKENS else "model.onnx"

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Texts are tokenized as sentence-transformers does (truncated at max_seq_length);
        int8 runs each text alone, fp32 texts of equal length together: never padding."""
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))] if texts else []
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        per_run = 1 if self.variant == "onnx-int8" else max(1, int(batch_size))
        by_len: dict[int, list[int]] = {}
        for i, seq in enumerate(ids):
            by_len.setdefault(len(seq), []).append(i)
        jobs = [rows[s:s + per_run] for length in sorted(by_len, reverse=True)
                for rows in (by_len[length],) for s in range(0, len(rows), per_run)]

        def job(part: list[int]) -> None:
            batch = np.asarray([ids[i] for i in part], dtype=np.int64)
            out[part] = self._sessions[self._file(batch.shape[1])].run(None, {"input_ids": batch})[0]

        for name in {self._file(len(ids[part[0]])) for part in jobs}:
            if name not in self._sessions:  # loaded before the workers start, not by two of them
                self._sessions[name] = _session(self.dir / name)
        if self.threads > 1 and len(jobs) > 1:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="assay-onnx")
            list(self._pool.map(job, jobs))  # list(): re-raises a worker's exception
        else:
            for part in jobs:
                job(part)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.ascontiguousarray(out / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def gpu_present() -> bool:
    """Whether an NVIDIA GPU is visible, without importing torch (a cheap check)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return os.path.exists("/dev/nvidia0") or os.path.isdir("/proc/driver/nvidia/gpus")


def choose_variant(model_path: str | os.PathLike | None, requested: str | None, device: str | None) -> tuple[str, str]:
    """(variant, why) for an embedder. `auto`: onnx-int8 on CPU for a model it supports,
    else torch (GPUs, unsupported models). An explicit onnx variant the model cannot take
    is an error (OnnxExportError); `torch` is always possible."""
    requested = (requested or "auto").strip().lower()
    if requested not in ENCODERS:
        raise ValueError(f"unknown embedder backend {requested!r}; use one of {', '.join(ENCODERS)}")
    if requested == "torch":
        return "torch", "requested"
    reason = None
    if device not in (None, "cpu") and requested == "auto":
        reason = f"device {device}"
    elif device is None and requested == "auto" and gpu_present():
        reason = "a GPU is present"
    elif model_path is None:
        reason = "not a local model folder"
    else:
        reason = unsupported_reason(model_path)
    if reason is None:
        return ("onnx-int8" if requested == "auto" else requested), "supported"
    if requested == "auto":
        return "torch", reason
    raise OnnxExportError(f"embedder backend {requested} is not available for this model: {reason}")
