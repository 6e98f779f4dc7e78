"""assay's PPO: the pure pieces against hand-computed values, then real runs on a tiny model."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import ConfigError
from rewards.base import get
from train.ppo import (
    PPOConfig,
    PPOError,
    PPORunner,
    completion_mask,
    gae,
    kl_penalty,
    masked_mean,
    policy_loss,
    train_ppo,
    value_loss,
    whiten,
)
from train.runs import RunDir

pytestmark = pytest.mark.slow  # trains or runs a real model end to end (the fast loop: -m 'not slow')

T = torch.tensor


# ---- KL estimators -----------------------------------------------------------------------

def test_kl_k1_and_k3_hand_computed():
    logp = T([[math.log(0.5), math.log(0.2)]])
    ref = T([[math.log(0.25), math.log(0.4)]])
    # k1 = log p - log q
    assert torch.allclose(kl_penalty(logp, ref, "k1"), T([[math.log(2.0), math.log(0.5)]]), atol=1e-6)
    # k3 = (r - 1) - log r with r = q / p: r = 0.5 -> -0.5 + ln 2 ; r = 2 -> 1 - ln 2
    expected = T([[-0.5 + math.log(2.0), 1.0 - math.log(2.0)]])
    assert torch.allclose(kl_penalty(logp, ref, "k3"), expected, atol=1e-6)
    assert (kl_penalty(logp, ref, "k3") >= 0).all()
    assert torch.equal(kl_penalty(ref, ref, "k3"), torch.zeros_like(ref))
    with pytest.raises(ValueError):
        kl_penalty(logp, ref, "k2")


def test_k1_and_k3_agree_in_expectation():
    # Both are unbiased estimators of KL(p || q) for samples from p.
    p = T([0.6, 0.3, 0.1])
    q = T([0.2, 0.5, 0.3])
    true_kl = float((p * (p / q).log()).sum())
    k1 = float((p * kl_penalty(p.log(), q.log(), "k1")).sum())
    k3 = float((p * kl_penalty(p.log(), q.log(), "k3")).sum())
    assert k1 == pytest.approx(true_kl, abs=1e-6)
    assert k3 == pytest.approx(true_kl, abs=1e-6)


# ---- GAE --------------------------------------------------------------------------------

def test_gae_hand_computed():
    rewards = T([[0.0, 0.0, 1.0]])
    values = T([[0.5, 0.6, 0.7]])
    mask = T([[1, 1, 1]])
    gamma, lam = 0.9, 0.8
    # deltas: d2 = 1 - 0.7 = 0.3 ; d1 = 0 + 0.9*0.7 - 0.6 = 0.03 ; d0 = 0 + 0.9*0.6 - 0.5 = 0.04
    # A2 = 0.3 ; A1 = 0.03 + 0.72*0.3 = 0.246 ; A0 = 0.04 + 0.72*0.246 = 0.21712
    adv, ret = gae(rewards, values, mask, gamma, lam)
    assert torch.allclose(adv, T([[0.21712, 0.246, 0.3]]), atol=1e-6)
    assert torch.allclose(ret, T([[0.71712, 0.846, 1.0]]), atol=1e-6)


def test_gae_padding_after_the_end_is_ignored():
    rewards = T([[0.0, 2.0, 0.0, 0.0]])
    values = T([[1.0, 1.5, 9.0, 9.0]])  # junk values on padding must not leak in
    mask = T([[1, 1, 0, 0]])
    adv, ret = gae(rewards, values, mask, 1.0, 1.0)
    # lam = gamma = 1: A_t = (sum of rewards from t) - V_t
    assert torch.allclose(adv, T([[1.0, 0.5, 0.0, 0.0]]))
    assert torch.allclose(ret, T([[2.0, 2.0, 0.0, 0.0]]))


def test_gae_steps_over_a_masked_block_in_the_middle():
    # tokens 1-2 were pasted in by a tool: GAE must behave as if they were not there
    rewards = T([[0.1, 0.0, 0.0, 1.0]])
    values = T([[0.4, 7.0, 7.0, 0.8]])
    mask = T([[1, 0, 0, 1]])
    gamma, lam = 0.9, 0.5
    adv, _ = gae(rewards, values, mask, gamma, lam)
    compact, _ = gae(T([[0.1, 1.0]]), T([[0.4, 0.8]]), T([[1, 1]]), gamma, lam)
    assert torch.allclose(adv[:, [0, 3]], compact)
    assert torch.equal(adv[:, 1:3], torch.zeros(1, 2))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-2, 2), st.floats(-2, 2)), min_size=1, max_size=8), st.integers(0, 8))
def test_gae_with_unit_gamma_lambda_is_return_minus_value(steps, pad):
    rewards = T([[r for r, _ in steps] + [0.0] * pad], dtype=torch.float64)
    values = T([[v for _, v in steps] + [5.0] * pad], dtype=torch.float64)
    mask = T([[1] * len(steps) + [0] * pad])
    adv, ret = gae(rewards, values, mask, 1.0, 1.0)
    n = len(steps)
    suffix = torch.flip(torch.cumsum(torch.flip(rewards[0, :n], [0]), 0), [0])
    assert torch.allclose(adv[0, :n], suffix - values[0, :n])
    assert torch.allclose(ret[0, :n], suffix)
    assert torch.all(adv[0, n:] == 0)


# ---- losses -----------------------------------------------------------------------------

def test_clipped_surrogate_hand_computed():
    old = T([[0.0, 0.0, 0.0, 0.0]])
    new = torch.log(T([[1.5, 0.5, 1.1, 0.9]]))  # ratios
    adv = T([[1.0, -1.0, 2.0, -2.0]])
    mask = T([[1, 1, 1, 1]])
    loss, clipfrac, _ = policy_loss(new, old, adv, mask, cliprange=0.2)
    # per token max(-A r, -A clip(r)): 1.5/A=1 -> max(-1.5,-1.2) = -1.2 (clipped)
    #                                   0.5/A=-1 -> max(0.5, 0.8) = 0.8 (clipped)
    #                                   1.1/A=2 -> max(-2.2,-2.2) = -2.2 ; 0.9/A=-2 -> 1.8
    assert float(loss) == pytest.approx((-1.2 + 0.8 - 2.2 + 1.8) / 4, abs=1e-6)
    assert float(clipfrac) == pytest.approx(0.5)


def test_clipped_surrogate_keeps_pessimistic_side_and_masks():
    old = T([[0.0, 0.0, 0.0]])
    new = torch.log(T([[0.5, 1.5, 123.0]]))
    adv = T([[1.0, -1.0, 50.0]])
    mask = T([[1, 1, 0]])  # the last token is padding: no effect at all
    loss, clipfrac, _ = policy_loss(new, old, adv, mask, cliprange=0.2)
    # r=0.5, A=1: max(-0.5, -0.8) = -0.5 (unclipped, the worse side); r=1.5, A=-1: max(1.5, 1.2) = 1.5
    assert float(loss) == pytest.approx((-0.5 + 1.5) / 2, abs=1e-6)
    assert float(clipfrac) == 0.0


def test_value_loss_clipping_hand_computed():
    old = T([[1.0, 1.0, 1.0]])
    new = T([[1.5, 0.9, 2.0]])
    ret = T([[2.0, 1.0, 0.0]])
    mask = T([[1, 1, 1]])
    loss, clipfrac = value_loss(new, old, ret, mask, cliprange_value=0.2)
    # token 0: unclipped (1.5-2)^2 = 0.25, clipped (1.2-2)^2 = 0.64 -> 0.64 (clip binds)
    # token 1: (0.9-1)^2 = 0.01 both -> 0.01
    # token 2: unclipped (2-0)^2 = 4, clipped (1.2-0)^2 = 1.44 -> 4
    assert float(loss) == pytest.approx(0.5 * (0.64 + 0.01 + 4.0) / 3, abs=1e-6)
    assert float(clipfrac) == pytest.approx(1 / 3)


def test_whiten_and_masked_mean():
    x = T([[1.0, 2.0, 3.0, 100.0]])
    mask = T([[1, 1, 1, 0]])
    assert float(masked_mean(x, mask)) == pytest.approx(2.0)
    w = whiten(x, mask)
    assert torch.allclose(w, T([[-1.0, 0.0, 1.0, 0.0]]), atol=1e-4)  # unbiased std of 1,2,3 is 1


def test_completion_mask_stops_after_first_eos():
    ids = T([[5, 6, 2, 2, 2], [5, 6, 7, 8, 9], [2, 0, 0, 0, 0]])
    assert completion_mask(ids, [2]).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


def test_config_validation_errors():
    with pytest.raises(ConfigError, match="mini_batch_size"):
        PPOConfig(batch_size=8, mini_batch_size=3)
    with pytest.raises(ConfigError, match="kl_estimator"):
        PPOConfig(kl_estimator="k2")
    with pytest.raises(ConfigError, match="lam"):
        PPOConfig(lam=1.5)


# ---- real runs on a tiny model ----------------------------------------------------------

@pytest.fixture(scope="module")
def toy_lm():
    """The smoke tests' tiny model (train/toy.py): answers `toy:lucky` prompts with a random digit."""
    from train.toy import toy_model

    return str(toy_model())


def lucky_rows(n: int = 64) -> list[dict]:
    from train.toy import rows

    return [dict(r, prompt=r["question"]) for r in rows(size=n)]


def math_reward(completions, rows):
    """assay's own math verifier, as the GRPO smoke run uses it (lenient: the last number counts)."""
    return [r.score or 0.0 for r in get("math").fn(completions, rows, lenient=True)]


def test_ppo_learns_the_toy_task(toy_lm, tmp_path):
    """The GRPO smoke task (toy:lucky, gold 7, reward ~0.1 at start): PPO must learn it too."""
    config = PPOConfig(steps=10, batch_size=16, mini_batch_size=8, ppo_epochs=2, learning_rate=2e-3,
                       max_new_tokens=4, kl_coef=0.02, save_every=0, seed=0)
    run = RunDir(tmp_path / "run")
    summary = train_ppo(toy_lm, lucky_rows(), math_reward, config, run)
    rows = run.metrics()
    assert [r["step"] for r in rows] == list(range(1, 11))
    for key in ("reward", "kl", "entropy", "clipfrac", "value_loss", "policy_loss", "reward_time", "step_time",
                "peak_memory_mb", "samples"):
        assert key in rows[0], key
    first = sum(r["reward"] for r in rows[:3]) / 3
    last = sum(r["reward"] for r in rows[-3:]) / 3
    assert last >= 2 * first and last >= 0.5, (first, last, [round(r["reward"], 3) for r in rows])
    assert rows[-1]["kl"] > 0  # the policy moved away from the reference, and the penalty saw it
    assert summary["checkpoint"] and (run.checkpoint_dir(10) / "value_head.safetensors").exists()
    assert summary["seconds_per_step"] > 0 and summary["peak_memory_mb"] > 0


def test_ppo_lora_reference_is_the_base_and_resume_continues(toy_lm, tmp_path):
    lora = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    config = PPOConfig(steps=2, batch_size=4, mini_batch_size=2, ppo_epochs=1, learning_rate=1e-2,
                       max_new_tokens=3, kl_coef=0.1, kl_estimator="k3", save_every=1, save_total_limit=0)
    run = RunDir(tmp_path / "run")
    prompts = lucky_rows(8)
    train_ppo(toy_lm, prompts, math_reward, config, run, lora=lora)
    rows = run.metrics()
    # LoRA starts as the identity (B = 0): at step 1 policy == reference, so KL is exactly 0
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-6)
    assert (run.checkpoint_dir(1) / "policy" / "adapter_config.json").exists()
    assert (run.checkpoint_dir(2) / "optimizer.safetensors").exists()
    config.steps = 3
    summary = train_ppo(toy_lm, prompts, math_reward, config, run, lora=lora, resume=True)
    assert [r["step"] for r in run.metrics()] == [1, 2, 3]
    assert summary["steps_run"] == 1
    assert run.metrics()[2]["kl"] > 0  # the resumed adapters are the trained ones, not fresh (= base)


def test_ppo_runner_steps_by_hand_are_what_train_does(toy_lm, tmp_path):
    """PPORunner has one method per step; calling them in order by hand logs what train_ppo logs."""
    config = PPOConfig(steps=1, batch_size=4, mini_batch_size=2, ppo_epochs=2, learning_rate=1e-2, max_new_tokens=3,
                       save_every=0, seed=1)
    runner = PPORunner(toy_lm, lucky_rows(8), math_reward, config, RunDir(tmp_path / "by_hand"))
    batch = runner.rollout(0)
    assert len(batch.completions) == 4
    assert batch.input_ids.shape[1] == batch.prompt_len + batch.completion_ids.shape[1]
    scores = runner.score(batch)
    logprobs, values, ref_logprobs = runner.evaluate(batch)
    assert torch.equal(logprobs, ref_logprobs)  # before any update the policy is the reference
    assert torch.all(values[batch.policy_mask == 0] == 0)
    advantages, returns, kl = runner.advantages(batch, scores.shaped, logprobs, values, ref_logprobs)
    assert torch.all(kl == 0) and advantages.shape == returns.shape == batch.completion_ids.shape
    stats = runner.update(0, batch, logprobs, values, advantages, returns)
    runner.log(0, batch, scores, kl, stats, generation_time=0.0, step_time=1.0)
    runner.checkpoint(1)
    assert (runner.run.checkpoint_dir(1) / "value_head.safetensors").exists()

    run = RunDir(tmp_path / "loop")
    summary = train_ppo(toy_lm, lucky_rows(8), math_reward, config, run)
    timings = ("reward_time", "generation_time", "step_time", "reward_time_share", "peak_memory_mb")
    by_hand, looped = runner.run.metrics()[0], run.metrics()[0]
    assert list(by_hand) == list(looped)
    assert {k: v for k, v in by_hand.items() if k not in timings} == {k: v for k, v in looped.items() if k not in timings}
    assert summary["steps"] == runner.summary()["steps"] == 1


def test_ppo_bad_input_is_a_user_error(toy_lm, tmp_path):
    with pytest.raises(PPOError, match="missing field 'prompt'"):
        train_ppo(toy_lm, [{"question": "x"}], math_reward, PPOConfig(), RunDir(tmp_path))
    with pytest.raises(PPOError, match="needs a reward"):
        train_ppo(toy_lm, lucky_rows(4), None, PPOConfig(), RunDir(tmp_path))


def test_reward_model_score_is_used(toy_lm, tmp_path):
    """reward_model: a sequence-classification model (as TRL's RewardTrainer saves one) scores rollouts."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from train.ppo import RewardModelScorer

    tok = AutoTokenizer.from_pretrained(toy_lm)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, num_labels=1, pad_token_id=tok.pad_token_id)
    rm_path = tmp_path / "rm"
    LlamaForSequenceClassification(cfg).save_pretrained(rm_path)
    tok.save_pretrained(rm_path)

    scorer = RewardModelScorer(str(rm_path), "cpu")
    scores = scorer(["Pick the lucky number:", "Pick the lucky number:"], [" 7", " 3"])
    with torch.no_grad():
        direct = [float(scorer.model(**tok(t, return_tensors="pt")).logits[0, 0])
                  for t in ("Pick the lucky number: 7", "Pick the lucky number: 3")]
    assert scores == pytest.approx(direct, abs=1e-5)

    run = RunDir(tmp_path / "run")
    config = PPOConfig(steps=1, batch_size=4, mini_batch_size=4, ppo_epochs=1, max_new_tokens=3, save_every=0,
                       reward_model_coef=2.0)
    train_ppo(toy_lm, lucky_rows(4), None, config, run, reward_model=str(rm_path))
    record = run.metrics()[0]
    completions = [s["completion"] for s in record["samples"]]
    prompts = [s["prompt"] for s in record["samples"]]
    expected = [2.0 * s for s in scorer(prompts, completions)]
    assert [s["score"] for s in record["samples"]] == pytest.approx(expected, abs=1e-4)
