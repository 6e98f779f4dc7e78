"""One query through a sentence-transformers BERT, in numpy: no torch, no sentence-transformers.

A cold `assay search` in hybrid mode needs one query vector. Importing torch and
sentence-transformers for it costs ~10 s on a cold machine, far more than running the model:
all-MiniLM-L6-v2 is a 6-layer BERT (22 M parameters) followed by mean pooling and L2
normalization, which numpy runs on one short text in milliseconds. The weights are read
from the model's `model.safetensors` (memory-mapped; only the rows of the word embedding the
query uses are touched) and the text is tokenized by `tokenizers` from the model's own
`tokenizer.json`, with sentence-transformers' settings (no padding, truncation at
`max_seq_length`).

Only models of exactly that shape are taken (modules Transformer -> mean Pooling ->
[Normalize], a `bert` config with absolute positions and exact GELU, float32/float16
safetensors); `LightQueryEncoder.load` returns None for anything else and the caller uses the
full model. The arithmetic is float32 like torch's, on one BLAS thread: the vector matches
`SentenceTransformer.encode` to float32 rounding (max abs difference ~2e-7 here; the test
asserts < 1e-6), and one query costs about what the torch forward pass does (~25 ms vs ~29 ms
for a 40-token query on one core of this machine).
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16}
_ST_PREFIX = "sentence_transformers.models."


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _safetensors(path: Path) -> dict[str, np.ndarray] | None:
    """name -> read-only memory-mapped array (None if a dtype is not float32/16)."""
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(meta["dtype"])
        if dtype is None:
            if name.endswith("position_ids"):
                continue  # a buffer, not a weight
            return None
        start, end = meta["data_offsets"]
        out[name] = raw[start:end].view(dtype).reshape(meta["shape"])
    return out


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


# erfc(z) for z >= 0 as a Chebyshev series in t = 2 / (2 + z) (the expansion of Press et al.,
# Numerical Recipes 3rd ed., section 6.2.2): within 4e-16 of math.erf on [-12, 12], and
# vectorized (math.erf element by element took ~1 s on a 256-token query).
_ERFC_COF = (-1.3026537197817094, 6.4196979235649026e-1, 1.9476473204185836e-2, -9.561514786808631e-3,
             -9.46595344482036e-4, 3.66839497852761e-4, 4.2523324806907e-5, -2.0278578112534e-5,
             -1.624290004647e-6, 1.303655835580e-6, 1.5626441722e-8, -8.5238095915e-8, 6.529054439e-9,
             5.059343495e-9, -9.91364156e-10, -2.27365122e-10, 9.6467911e-11, 2.394038e-12, -6.886027e-12,
             8.94487e-13, 3.13092e-13, -1.12708e-13, 3.81e-16, 7.106e-15, -1.523e-15, -9.4e-17, 1.21e-16,
             -2.8e-17)


def _erf(x: np.ndarray) -> np.ndarray:
    z = np.abs(x)
    t = 2.0 / (2.0 + z)
    ty = 4.0 * t - 2.0
    d = np.zeros_like(z)
    dd = np.zeros_like(z)
    for c in _ERFC_COF[:0:-1]:  # Clenshaw's recurrence, highest coefficient first
        d, dd = ty * d - dd + c, d
    r = 1.0 - t * np.exp(-z * z + 0.5 * (_ERFC_COF[0] + ty * d) - dd)
    return np.where(x < 0, -r, r)


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * Phi(x), as torch's default (erf, not the tanh approximation)."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def sentence_tokenizer(path: str | os.PathLike) -> Any:
    """The model folder's fast tokenizer (`tokenizer.json`) with sentence-transformers'
    settings: no padding, truncation at `max_seq_length` (else the smaller of the model's
    and the tokenizer's limits). Shared with rag/onnx_encoder.py."""
    from tokenizers import Tokenizer

    path = Path(path)
    config = _read_json(path / "config.json")
    st = _read_json(path / "sentence_bert_config.json") if (path / "sentence_bert_config.json").exists() else {}
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    limit = st.get("max_seq_length")
    if not limit:
        limits = [int(config.get("max_position_embeddings") or 512)]
        if (path / "tokenizer_config.json").exists():
            model_max = _read_json(path / "tokenizer_config.json").get("model_max_length")
            if isinstance(model_max, int) and model_max < 10**6:
                limits.append(model_max)
        limit = min(limits)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=int(limit))
    return tokenizer


class LightQueryEncoder:
    """`encode(text)` -> the (d,) float32 L2-normalized sentence vector, in numpy."""

    def __init__(self, tokenizer: Any, weights: dict[str, np.ndarray], config: dict[str, Any],
                 prefix: str, normalize: bool, dtype: Any = np.float32) -> None:
        self.tokenizer = tokenizer
        self.weights = weights
        self.config = config
        self.prefix = prefix
        self.normalize = normalize
        self.dtype = np.dtype(dtype)
        self._cast: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LightQueryEncoder | None":
        """The encoder for the sentence-transformers model folder `path`, or None when that
        model is not a mean-pooled BERT this module runs exactly (the caller then loads it
        with sentence-transformers)."""
        path = Path(path)
        try:
            modules = _read_json(path / "modules.json")
            types = [m.get("type", "") for m in modules]
            if (len(modules) not in (2, 3) or types[0] != _ST_PREFIX + "Transformer" or modules[0].get("path")
                    or types[1] != _ST_PREFIX + "Pooling" or types[2:] not in ([], [_ST_PREFIX + "Normalize"])):
                return None
            pooling = _read_json(path / modules[1]["path"] / "config.json")
            modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
            if modes != {"pooling_mode_mean_tokens"} or pooling.get("include_prompt", True) is not True:
                return None
            config = _read_json(path / "config.json")
            if (config.get("model_type") != "bert" or config.get("hidden_act") != "gelu"
                    or config.get("position_embedding_type", "absolute") != "absolute"):
                return None
            st = _read_json(path / "sentence_bert_config.json") if (path / "sentence_bert_config.json").exists() else {}
            if st.get("do_lower_case"):
                return None  # sentence-transformers would lowercase before the tokenizer
            if not (path / "tokenizer.json").exists() or not (path / "model.safetensors").exists():
                return None
            weights = _safetensors(path / "model.safetensors")
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, struct.error):
            return None
        if weights is None:
            return None
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
        if prefix + "embeddings.word_embeddings.weight" not in weights:
            return None
        return cls(sentence_tokenizer(path), weights, config, prefix, normalize=len(modules) == 3)

    def _w(self, name: str) -> np.ndarray:
        w = self._cast.get(name)
        if w is None:
            w = self._cast[name] = np.ascontiguousarray(self.weights[self.prefix + name], dtype=self.dtype)
        return w

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self._w(name + ".weight").T + self._w(name + ".bias")

    def encode(self, text: str) -> np.ndarray:
        """One text's vector. BLAS runs on one thread: a short sequence is too small a job to
        split, and on a busy machine threads waiting for each other made it ~6x slower."""
        with _one_blas_thread():
            return self._encode(text)

    def _encode(self, text: str) -> np.ndarray:
        cfg = self.config
        eps = float(cfg.get("layer_norm_eps", 1e-12))
        heads = int(cfg["num_attention_heads"])
        ids = np.asarray(self.tokenizer.encode(text).ids, dtype=np.int64)
        n = len(ids)
        words = np.asarray(self.weights[self.prefix + "embeddings.word_embeddings.weight"][ids], dtype=self.dtype)
        x = words + self._w("embeddings.position_embeddings.weight")[:n] + self._w("embeddings.token_type_embeddings.weight")[0]
        x = _layer_norm(x, self._w("embeddings.LayerNorm.weight"), self._w("embeddings.LayerNorm.bias"), eps)
        d = x.shape[1]
        hd = d // heads
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            q, k, v = (self._linear(x, p + f"attention.self.{m}").reshape(n, heads, hd).transpose(1, 0, 2)
                       for m in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            ctx = (scores / scores.sum(-1, keepdims=True)) @ v
            ctx = ctx.transpose(1, 0, 2).reshape(n, d)
            x = _layer_norm(self._linear(ctx, p + "attention.output.dense") + x,
                            self._w(p + "attention.output.LayerNorm.weight"), self._w(p + "attention.output.LayerNorm.bias"), eps)
            h = _gelu(self._linear(x, p + "intermediate.dense"))
            x = _layer_norm(self._linear(h, p + "output.dense") + x,
                            self._w(p + "output.LayerNorm.weight"), self._w(p + "output.LayerNorm.bias"), eps)
        vec = x.mean(0)
        if self.normalize:
            norm = float(np.linalg.norm(vec))
            vec = vec / norm if norm > 0 else vec
        return np.ascontiguousarray(vec, dtype=np.float32)


class _one_blas_thread:
    """Limit numpy's BLAS to one thread inside the block (threadpoolctl, when installed)."""

    def __enter__(self):
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            self._limits = None
        else:
            self._limits = threadpool_limits(1, user_api="blas")
        return self

    def __exit__(self, *exc):
        if self._limits is not None:
            self._limits.restore_original_limits()
