"""Batched generation (tiny random Llama with SmolLM2's tokenizer) and its SQLite cache."""

from __future__ import annotations

import pytest

from eval.cache import Cache, model_fingerprint
from eval.generation import (
    GenerationConfig,
    GenerationError,
    Generator,
    cut_at_stop,
    pick_backend,
    vllm_available,
    vllm_sampling_kwargs,
)

PROMPTS = [
    "Question: what is two plus two?\nAnswer:",
    "Hi",
    "The quick brown fox jumps over the lazy dog and keeps running far away because",
    "List three colors:",
]


@pytest.fixture(scope="module")
def shared_model(tiny_lm):
    """One loaded model for the module; Generators share it so tests do not reload."""
    from core.models import load_causal_lm

    return load_causal_lm(str(tiny_lm))


def make_gen(tiny_lm, shared_model, cache=None, **cfg):
    gen = Generator(str(tiny_lm), GenerationConfig(**{"max_new_tokens": 10, "batch_size": 4, **cfg}),
                    cache=cache if cache is not None else Cache(None), progress=False)
    gen._model, gen._tokenizer = shared_model
    return gen


def test_batched_equals_one_by_one_with_left_padding(tiny_lm, shared_model):
    batched = make_gen(tiny_lm, shared_model).generate(PROMPTS[:3])
    single = [make_gen(tiny_lm, shared_model, batch_size=1).generate([p])[0] for p in PROMPTS[:3]]
    assert [g[0].text for g in batched] == [g[0].text for g in single]
    assert all(g[0].tokens == 10 and g[0].finish_reason == "length" for g in batched)


def test_stop_strings_cut_the_text_before_the_stop(tiny_lm, shared_model):
    full = make_gen(tiny_lm, shared_model).generate(PROMPTS[:1])[0][0].text
    stop = full[len(full) // 2:len(full) // 2 + 3]
    assert stop.strip(), full
    # The first prompt ends with ":" -- a stop string must match generated text only.
    got = make_gen(tiny_lm, shared_model, stop=[stop]).generate(PROMPTS[:1])[0][0]
    assert got.text == cut_at_stop(full, [stop])[0]
    assert stop not in got.text and got.finish_reason == "stop"


def test_cache_serves_reruns_and_resumes_interrupted_runs(tiny_lm, shared_model, tmp_path):
    path = tmp_path / "cache.sqlite"
    first = make_gen(tiny_lm, shared_model, cache=Cache(path))
    part = first.generate(PROMPTS[:2])  # an "interrupted" run: only two prompts done
    assert first.stats["generated"] == 2
    # A new process: fresh Generator, same cache file, model NOT loaded yet.
    again = Generator(str(tiny_lm), GenerationConfig(max_new_tokens=10, batch_size=4), cache=Cache(path),
                      progress=False)
    again._tokenizer = shared_model[1]
    cached = again.generate(PROMPTS[:2])
    assert again._model is None, "a fully cached run must not load the model"
    assert [g[0].text for g in cached] == [g[0].text for g in part] and all(g[0].cached for g in cached)
    again._model = shared_model[0]
    resumed = again.generate(PROMPTS)
    assert again.stats["generated"] == 2 and again.stats["cached"] == 4
    assert [g[0].cached for g in resumed] == [True, True, False, False]


def test_cache_key_tracks_settings_and_weights(tiny_lm, shared_model, tmp_path):
    import shutil

    a = make_gen(tiny_lm, shared_model)
    b = make_gen(tiny_lm, shared_model, max_new_tokens=13)
    assert a.keys("x", 1) != b.keys("x", 1)
    # Greedy ignores sampling knobs, so they do not split the cache.
    assert a.keys("x", 1) == make_gen(tiny_lm, shared_model, top_p=0.5, seed=3).keys("x", 1)
    # Same folder name and size, different weights (a retrained checkpoint): a new identity.
    other = tmp_path / "retrained"
    shutil.copytree(tiny_lm, other)
    weights = other / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-8:] = bytes(255 - x for x in data[-8:])
    weights.write_bytes(bytes(data))
    assert model_fingerprint(str(other)) != model_fingerprint(str(tiny_lm))
    assert model_fingerprint(str(tiny_lm)) == model_fingerprint(str(tiny_lm))


def test_n_samples_with_sampling_are_distinct_and_seeded(tiny_lm, shared_model):
    cfg = dict(temperature=1.0, top_k=50, max_new_tokens=6, seed=7)
    one = make_gen(tiny_lm, shared_model, **cfg).generate(PROMPTS[:1], n=3)
    two = make_gen(tiny_lm, shared_model, **cfg).generate(PROMPTS[:1], n=3)
    assert [[g.text for g in gs] for gs in one] == [[g.text for g in gs] for gs in two]
    assert all(len(gs) == 3 for gs in one)
    assert len({g.text for g in one[0]}) > 1
    greedy = make_gen(tiny_lm, shared_model, max_new_tokens=6).generate(PROMPTS[:1], n=3)
    assert len({g.text for g in greedy[0]}) == 1  # greedy: one generation, repeated


def test_chat_prompts_use_the_chat_template(tiny_lm, shared_model):
    gen = make_gen(tiny_lm, shared_model, system_prompt="Be brief.")
    text = gen.render([{"role": "user", "content": "hello"}])
    assert text.startswith("<|im_start|>system\nBe brief.") and text.endswith("<|im_start|>assistant\n")
    assert gen.render("plain") == "plain"
    out = gen.generate([[{"role": "user", "content": "hello"}]])
    assert isinstance(out[0][0].text, str)


def test_vllm_backend_is_config_level_and_guarded():
    kw = vllm_sampling_kwargs(GenerationConfig(temperature=0.7, top_p=0.9, top_k=0, stop=["\n\n"],
                                               max_new_tokens=100), n=4)
    assert kw == {"n": 4, "max_tokens": 100, "temperature": 0.7, "stop": ["\n\n"], "seed": 0, "top_p": 0.9, "top_k": -1}
    greedy = vllm_sampling_kwargs(GenerationConfig(), n=1)
    assert greedy["temperature"] == 0.0 and "top_p" not in greedy and greedy["max_tokens"] == 2048
    if not vllm_available():
        assert pick_backend(GenerationConfig(backend="auto")) == "transformers"
        with pytest.raises(GenerationError, match="vllm is not installed"):
            pick_backend(GenerationConfig(backend="vllm"))
    with pytest.raises(GenerationError):
        GenerationConfig(backend="tgi").validate()
    with pytest.raises(GenerationError):
        GenerationConfig(top_p=0).validate()


def test_default_budget_is_long_enough_for_reasoning():
    assert GenerationConfig().max_new_tokens >= 1024


def test_unloadable_model_is_a_clear_error(tmp_path):
    gen = Generator(str(tmp_path / "no-such-model"), GenerationConfig(), progress=False)
    from core.errors import UserError

    with pytest.raises(UserError, match="cannot load"):  # one line naming the model, no traceback
        gen.generate([[{"role": "user", "content": "hi"}]])
