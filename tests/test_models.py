import json

import pytest

from core import models


def test_known_names_resolve_to_packaged_copies(minilm):
    assert models.is_offline_copy("all-MiniLM-L6-v2")
    assert models.is_offline_copy("sentence-transformers/all-MiniLM-L6-v2")
    assert (models.Path(minilm) / "model.safetensors").exists()


def test_unknown_hub_id_offline_fails_at_once(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.ModelError, match="not a known name.*SmolLM2-135M-Instruct.*HF_HUB_OFFLINE"):
        models.resolve("some-org/some-model")


def test_smollm2_converted_from_gguf_to_safetensors(smollm2):
    config = json.loads((models.Path(smollm2) / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert (models.Path(smollm2) / "model.safetensors").exists()
    # a second resolve reuses the cache
    assert models.resolve("HuggingFaceTB/SmolLM2-135M-Instruct") == smollm2


def test_tiny_lm_generates(tiny_lm):
    model, tok = models.load_causal_lm(str(tiny_lm))
    batch = tok(["hello", "a longer prompt here"], return_tensors="pt", padding=True)
    out = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert out.shape[0] == 2


def test_bad_dtype_is_user_error():
    with pytest.raises(models.ModelError):
        models.torch_dtype("int3", "cpu")
