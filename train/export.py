"""Merge a LoRA adapter into its base model and write a plain model folder.

    assay train export --adapter runs/grpo/model --out models/grpo-merged

The base is read from the adapter's `adapter_config.json` (or given with `--base`); the
result loads with `AutoModelForCausalLM.from_pretrained` and no peft. Written to a
temporary sibling and renamed, so OUT is complete or absent.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import UserError
from core.files import atomic_dir


class ExportError(UserError, ValueError):
    pass


def export_merged(adapter: str | Path, out: str | Path, *, base: str | None = None) -> Path:
    import torch
    from peft import PeftModel
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    from core.models import resolve

    adapter, out = Path(adapter), Path(out)
    cfg_path = adapter / "adapter_config.json"
    if not cfg_path.exists():
        raise ExportError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json)")
    acfg = json.loads(cfg_path.read_text())
    base = base or acfg.get("base_model_name_or_path")
    if not base:
        raise ExportError(f"{cfg_path}: no base_model_name_or_path; pass --base")
    base_path = resolve(base)
    auto = AutoModelForSequenceClassification if acfg.get("task_type") == "SEQ_CLS" else AutoModelForCausalLM
    kwargs = {"num_labels": 1} if auto is AutoModelForSequenceClassification else {}
    from transformers.utils import logging as hf_logging

    from train.trainers import quiet

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a reward model's head is "MISSING" until the adapter brings it
    try:
        with quiet():
            model = auto.from_pretrained(base_path, dtype=torch.float32, **kwargs)
            merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    finally:
        hf_logging.set_verbosity(level)
    tok_src = adapter if (adapter / "tokenizer_config.json").exists() else base_path
    tok = AutoTokenizer.from_pretrained(str(tok_src))
    with atomic_dir(out) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    return out
