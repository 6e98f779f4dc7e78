"""PPO for language models, on torch + transformers + peft, in one readable file.

TRL removed its PPOTrainer in 1.13, so assay keeps its own. The algorithm, per step:

    1. rollout   sample one completion per prompt with `model.generate` (temperature sampling)
    2. score     assay's verifiers (`reward_fn`) and/or a trained reward model give one
                 scalar per completion
    3. evaluate  with no grad: the policy's log-probs and values, the frozen reference's
                 log-probs (with LoRA, the same weights with the adapters switched off)
    4. rewards   per token: -kl_coef * KL(policy || reference) at every generated token,
                 plus the score on the last one
    5. GAE       advantages A_t and returns R_t = A_t + V_t from (gamma, lambda)
    6. update    `ppo_epochs` passes over shuffled minibatches of the rollout: clipped
                 surrogate, clipped value loss, entropy bonus; whitened advantages
    7. log       one record per step in the run's metrics.jsonl
    8. checkpoint  every `save_every` steps, at the end, and on SIGINT

`PPORunner` is one run: its constructor builds the models, optimizer and counters (resuming
from the last checkpoint if asked), it has one method per step (`rollout`, `score`,
`evaluate`, `advantages` for 4-5, `update`, `log`, `checkpoint`), and `train()` is the loop
that calls them in that order, short enough to read as the algorithm. `train_ppo` builds
one and runs it; the rest of assay calls that.

Tokens that the policy did not write (padding after EOS; `<information>` blocks pasted in
by a search tool) carry mask 0: they get no reward, no advantage and no loss, and GAE
steps over them as if they were part of the environment.

The pure pieces (`kl_penalty`, `gae`, `policy_loss`, `value_loss`, `whiten`) are small
functions so that tests can check them against hand-computed values.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import resource
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence

from core.config import ConfigError
from core.errors import UserError
from core.files import atomic_dir

if TYPE_CHECKING:  # heavy imports stay inside functions
    import torch

    from train.rollouts import SearchConfig
    from train.runs import RunDir


@dataclass
class PPOConfig:
    """PPO hyperparameters. Every field has the default shown."""

    steps: int = 100  # PPO iterations: one rollout of `batch_size` prompts + its update epochs
    batch_size: int = 16  # prompts (= completions) per rollout
    mini_batch_size: int = 8  # completions per optimizer step inside an update epoch
    ppo_epochs: int = 4  # passes over each rollout; >1 is what makes the clipping matter
    learning_rate: float = 1e-5  # AdamW lr for the policy (and value head)
    value_learning_rate: float | None = None  # lr for the value head; None = learning_rate
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0  # gradient clipping of the summed loss
    max_new_tokens: int = 64  # completion length cap at generation
    max_prompt_length: int = 512  # prompts longer than this (in tokens) are cut from the left
    temperature: float = 1.0  # sampling temperature; log-probs are computed at the same one
    top_k: int = 0  # 0 = no top-k filtering (PPO wants the full distribution)
    top_p: float = 1.0
    gamma: float = 1.0  # discount; 1.0 since the episode is one short completion
    lam: float = 0.95  # GAE lambda: bias/variance trade-off of the advantage
    cliprange: float = 0.2  # epsilon of the clipped surrogate ratio
    cliprange_value: float = 0.2  # values move at most this far from the rollout's values
    vf_coef: float = 0.1  # weight of the value loss in the summed loss
    ent_coef: float = 0.0  # weight of the entropy bonus (subtracted from the loss)
    kl_coef: float = 0.05  # beta of the per-token KL penalty against the reference
    kl_estimator: Literal["k1", "k3"] = "k1"  # k1 = log p - log q (unbiased, noisy); k3 = (r-1) - log r, r=q/p (>=0, low variance)
    whiten_advantages: bool = True  # normalise advantages over the rollout's valid tokens
    whiten_rewards: bool = False  # normalise scores across the rollout before adding them
    score_clip: float | None = None  # clip scores to [-score_clip, score_clip]
    missing_eos_penalty: float | None = None  # subtract this from completions that hit max_new_tokens
    reward_model_coef: float = 1.0  # weight of the reward model's score when one is given
    forward_batch_size: int = 8  # rows per no-grad forward pass during evaluation (memory cap)
    gradient_checkpointing: bool = False
    dtype: str = "auto"  # "auto" = float32 on CPU, bfloat16 on a GPU that supports it
    seed: int = 0
    save_every: int = 50  # checkpoint every N steps (and at the end); 0 = only at the end
    save_total_limit: int = 2  # keep this many newest checkpoints; 0 = keep all
    log_completions: int = 2  # completions sampled into each log record

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "mini_batch_size", "ppo_epochs", "max_new_tokens", "forward_batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"ppo.{name}: must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.mini_batch_size:
            raise ConfigError(f"ppo.mini_batch_size ({self.mini_batch_size}) must divide ppo.batch_size ({self.batch_size})")
        if self.kl_estimator not in ("k1", "k3"):
            raise ConfigError(f"ppo.kl_estimator: must be 'k1' or 'k3', got {self.kl_estimator!r}")
        if self.temperature <= 0:
            raise ConfigError(f"ppo.temperature: must be > 0, got {self.temperature}")
        for name in ("gamma", "lam"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"ppo.{name}: must be in [0, 1], got {getattr(self, name)}")


class PPOError(UserError, ValueError):
    pass


# --------------------------------------------------------------------------------------
# The pure pieces: tensors in, tensors out. Shapes are (batch, completion_tokens); `mask`
# is 1 on tokens the policy wrote.
# --------------------------------------------------------------------------------------


def masked_mean(x: "torch.Tensor", mask: "torch.Tensor", dim: int | None = None) -> "torch.Tensor":
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def whiten(x: "torch.Tensor", mask: "torch.Tensor", shift_mean: bool = True) -> "torch.Tensor":
    """(x - mean) / std over the masked entries; masked-out entries come back as 0."""
    import torch

    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    n = mask.sum()
    if n > 1:  # unbiased variance, as a std over few tokens is otherwise too small
        var = var * n / (n - 1)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        out = out + mean
    return out * mask.to(x.dtype)


def kl_penalty(logprobs: "torch.Tensor", ref_logprobs: "torch.Tensor", estimator: str = "k1") -> "torch.Tensor":
    """Per-token estimate of KL(policy || reference) from the sampled token's log-probs.

    With samples from the policy p and log r = log q - log p (q the reference):
      k1 = -log r            unbiased, but single samples can be negative
      k3 = (r - 1) - log r   unbiased too, always >= 0 and lower variance (Schulman's note)
    """
    import torch

    log_ratio = logprobs - ref_logprobs
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        # clamp before exp: a huge ratio on one token must not overflow to inf
        neg = torch.clamp(-log_ratio, max=20.0)
        return torch.expm1(neg) - neg
    raise ValueError(f"unknown KL estimator {estimator!r} (k1 or k3)")


def gae(rewards: "torch.Tensor", values: "torch.Tensor", mask: "torch.Tensor", gamma: float, lam: float):
    """Generalised advantage estimation over the masked tokens; returns (advantages, returns).

        delta_t = r_t + gamma * V_{t'} - V_t          (t' = the next token with mask 1)
        A_t     = delta_t + gamma * lam * A_{t'}
        R_t     = A_t + V_t

    Masked tokens are skipped rather than treated as steps: padding after the end
    contributes V = 0 beyond the last token, and a retrieved block in the middle passes
    the value and the advantage straight through, as the environment's move.
    """
    import torch

    batch, length = rewards.shape
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros(batch, dtype=rewards.dtype, device=rewards.device)
    next_adv = torch.zeros_like(next_value)
    valid = mask.bool()
    for t in reversed(range(length)):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        adv_t = delta + gamma * lam * next_adv
        m = valid[:, t]
        advantages[:, t] = torch.where(m, adv_t, torch.zeros_like(adv_t))
        next_value = torch.where(m, values[:, t], next_value)
        next_adv = torch.where(m, adv_t, next_adv)
    returns = (advantages + values) * mask.to(values.dtype)
    return advantages, returns


def policy_loss(logprobs, old_logprobs, advantages, mask, cliprange: float):
    """The clipped surrogate: mean over tokens of max(-A*ratio, -A*clip(ratio, 1-e, 1+e)).

    Returns (loss, clipfrac, approx_kl). Taking the max of the two negated terms is the
    pessimistic bound: a step that would move the ratio past the clip earns nothing more.
    """
    import torch

    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).float(), mask)
    approx_kl = masked_mean(0.5 * log_ratio**2, mask)
    return loss, clipfrac.detach(), approx_kl.detach()


def value_loss(values, old_values, returns, mask, cliprange_value: float):
    """0.5 * mean over tokens of max((V - R)^2, (clip(V, V_old +- e) - R)^2); returns (loss, clipfrac).

    Clipping keeps the critic near the values the advantages were computed from, so one
    update cannot make them stale.
    """
    import torch

    clipped_values = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    loss_unclipped = (values - returns) ** 2
    loss_clipped = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(loss_unclipped, loss_clipped), mask)
    clipfrac = masked_mean((loss_clipped > loss_unclipped).float(), mask)
    return loss, clipfrac.detach()


def entropy_from_logits(logits: "torch.Tensor") -> "torch.Tensor":
    import torch

    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def completion_mask(completion_ids: "torch.Tensor", eos_token_ids: Sequence[int]) -> "torch.Tensor":
    """1 up to and including the first EOS of each row, 0 after (generate pads with EOS/pad)."""
    import torch

    is_eos = torch.zeros_like(completion_ids, dtype=torch.bool)
    for e in eos_token_ids:
        is_eos |= completion_ids == e
    length = completion_ids.shape[1]
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1), torch.full_like(is_eos[:, 0], length, dtype=torch.long))
    positions = torch.arange(length, device=completion_ids.device).unsqueeze(0)
    return (positions <= first.unsqueeze(1)).long()


# --------------------------------------------------------------------------------------
# Model plumbing
# --------------------------------------------------------------------------------------


class ValueHead:
    """A linear critic on the policy's last hidden state (shared trunk, one extra layer)."""

    def __init__(self, hidden_size: int, device, dtype, seed: int):
        import torch

        gen = torch.Generator().manual_seed(seed)
        self.linear = torch.nn.Linear(hidden_size, 1).to(dtype=torch.float32)
        with torch.no_grad():  # small init: early values near 0 keep the first advantages sane
            self.linear.weight.copy_(torch.randn(self.linear.weight.shape, generator=gen) * (1.0 / math.sqrt(hidden_size + 1)) * 0.1)
            self.linear.bias.zero_()
        self.linear.to(device=device)

    def __call__(self, hidden: "torch.Tensor") -> "torch.Tensor":
        return self.linear(hidden.float()).squeeze(-1)


def _forward(model, input_ids, attention_mask, logits_from: int, temperature: float, want_hidden: bool):
    """Logits (at `temperature`) predicting tokens input_ids[:, logits_from:], plus last hidden states there.

    Position ids come from the attention mask, as `generate` builds them: with left-padded
    prompts, raw arange positions would differ from those the tokens were sampled with.
    """
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    keep = input_ids.shape[1] - logits_from + 1
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                output_hidden_states=want_hidden, logits_to_keep=keep, use_cache=False)
    logits = out.logits[:, :-1].float() / temperature
    hidden = out.hidden_states[-1][:, logits_from - 1 : -1] if want_hidden else None
    return logits, hidden


def _token_logprobs(logits: "torch.Tensor", tokens: "torch.Tensor") -> "torch.Tensor":
    import torch

    return torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def _prompt_text(prompt: Any, tokenizer) -> str:
    """Chat messages go through the tokenizer's chat template; a string is used as is (as TRL does)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(m, dict) and "content" in m for m in prompt):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    raise PPOError(f"a prompt must be a string or a list of chat messages, got {type(prompt).__name__}")


def _peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class RewardModelScorer:
    """Scores (prompt, completion) with a sequence-classification reward model (RewardTrainer's output)."""

    def __init__(self, path: str, device):
        import torch

        from core.models import load_pretrained

        self.model, self.tokenizer = load_pretrained(path, dtype=torch.float32, head="reward")
        self.tokenizer.padding_side = "right"
        self.model.to(device).eval().requires_grad_(False)
        self.device = device

    def __call__(self, prompts: list, completions: list[str]) -> list[float]:
        import torch

        texts = []
        for prompt, completion in zip(prompts, completions):
            if isinstance(prompt, list) and getattr(self.tokenizer, "chat_template", None):
                texts.append(self.tokenizer.apply_chat_template(
                    prompt + [{"role": "assistant", "content": completion}], tokenize=False))
            else:
                texts.append(_prompt_text(prompt, self.tokenizer) + completion)
        scores = []
        for i in range(0, len(texts), 8):
            enc = self.tokenizer(texts[i : i + 8], return_tensors="pt", padding=True, truncation=True, max_length=2048)
            with torch.no_grad():
                logits = self.model(**{k: v.to(self.device) for k, v in enc.items()}).logits
            scores.extend(logits[:, 0].float().tolist())
        return scores


# --------------------------------------------------------------------------------------
# Checkpoints: HF folder (full model or adapter) + value head + optimizer + state, all
# written into a temporary sibling and renamed into place, so a killed run never leaves a
# half checkpoint that resume would trust.
# --------------------------------------------------------------------------------------


def _save_checkpoint(run: "RunDir", step: int, policy, tokenizer, value_head: ValueHead, optimizer,
                     state: dict, config: PPOConfig) -> Path:
    import torch
    from safetensors.torch import save_file

    final = run.checkpoint_dir(step)
    with atomic_dir(final) as tmp:
        policy.save_pretrained(tmp / "policy", safe_serialization=True)
        tokenizer.save_pretrained(tmp / "policy")
        save_file({k: v.detach().cpu().contiguous() for k, v in value_head.linear.state_dict().items()}, tmp / "value_head.safetensors")
        opt = optimizer.state_dict()
        tensors = {}
        for idx, slot in opt["state"].items():
            for name, value in slot.items():
                tensors[f"{idx}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
        tensors["rng.torch"] = torch.get_rng_state()
        save_file(tensors, tmp / "optimizer.safetensors")
        meta = {"step": step, "param_groups": opt["param_groups"], "state": state, "config": asdict(config),
                "python_rng": repr(random.getstate())}
        (tmp / "trainer_state.json").write_text(json.dumps(meta, default=str), encoding="utf-8")
    if config.save_total_limit > 0:
        done = sorted(p for p in final.parent.iterdir() if p.is_dir() and not p.name.startswith("."))
        for old in done[: -config.save_total_limit]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _load_optimizer(optimizer, ckpt: Path) -> None:
    import torch
    from safetensors.torch import load_file

    meta = json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
    tensors = load_file(ckpt / "optimizer.safetensors")
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("rng."):
            continue
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])


# --------------------------------------------------------------------------------------
# The trainer: one PPO run as an object. Setup puts the models, the optimizer, the run
# directory and the counters on the instance; each step of the algorithm is a method that
# takes and returns tensors; `train()` is the loop that calls them in order.
# --------------------------------------------------------------------------------------


def _batch_indices(n: int, step: int, batch_size: int, seed: int) -> list[int]:
    """Prompts for `step`: walk a per-epoch shuffle, so resuming at step s sees the same prompts."""
    out = []
    for j in range(step * batch_size, (step + 1) * batch_size):
        epoch, pos = divmod(j, n)
        perm = list(range(n))
        random.Random(seed * 1_000_003 + epoch).shuffle(perm)
        out.append(perm[pos])
    return out


@dataclass
class Rollout:
    """One step's prompts and what the policy wrote for them; token tensors are (batch, tokens)."""

    rows: list[dict]  # the prompt rows, with `contexts` added when the policy searched
    texts: list[str]  # the prompts as the policy read them
    completions: list[str]  # decoded, up to and including the first EOS
    input_ids: torch.Tensor  # left-padded prompt + completion: what every forward pass reads
    attention: torch.Tensor
    prompt_len: int  # completion tokens start at this column of input_ids
    completion_ids: torch.Tensor
    policy_mask: torch.Tensor  # float, 1 on tokens the policy wrote: the only ones with reward, advantage, loss
    truncated: torch.Tensor  # bool per row, on the CPU: stopped by max_new_tokens, not by an EOS
    search_calls: float | None  # mean `<search>` calls per completion, with search in the loop


@dataclass
class Scores:
    """One scalar per completion, in the forms the rewards and the log need."""

    shaped: torch.Tensor  # what the rewards add: raw, whitened and clipped if configured (on the device)
    raw: torch.Tensor  # verifiers + reward model - missing-EOS penalty: what the log reports
    verifier: torch.Tensor  # the verifiers' part alone
    seconds: float  # time in reward_fn and the reward model, the share of a step the log tracks


class PPORunner:
    """One PPO run of `model` on `prompts`: the loop in `train()`, one method per step.

    State lives on the instance: policy (with LoRA, also the reference: adapters off),
    reference (a frozen copy otherwise), value head, optimizer, tokenizer, config, the
    run directory metrics and checkpoints go to, and the step counters. `train_ppo` is the
    entry point; the arguments are documented there.
    """

    def __init__(self, model: str, prompts: list[dict], reward_fn: Callable[[list[str], list[dict]], list[float]] | None,
                 config: PPOConfig, run: "RunDir", *, lora: dict | None = None, resume: bool = False,
                 reward_model: str | None = None, search: "SearchConfig | None" = None,
                 search_index: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM

        from core.models import load_pretrained, pick_device, torch_dtype

        if not prompts:
            raise PPOError("no prompts to train on")
        for i, row in enumerate(prompts):
            if "prompt" not in row:
                raise PPOError(f"prompt row {i}: missing field 'prompt'")
        if reward_fn is None and reward_model is None:
            raise PPOError("PPO needs a reward: give reward_fn (assay rewards) and/or reward_model")

        # Seeded before any model is built: the copy, the LoRA init and sampling all draw from here.
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        self.config, self.run, self.prompts, self.reward_fn, self.search = config, run, prompts, reward_fn, search
        self.device = device = pick_device()
        dtype = torch_dtype(config.dtype, device)

        ckpt = run.last_checkpoint() if resume else None
        base, tokenizer = load_pretrained(model, dtype=dtype)
        tokenizer.padding_side = "left"
        tokenizer.truncation_side = "left"  # an over-long prompt keeps its end, where the question is
        base.generation_config.pad_token_id = tokenizer.pad_token_id
        self.tokenizer = tokenizer

        if lora:
            from peft import LoraConfig, PeftModel, get_peft_model

            if ckpt is not None:
                policy = PeftModel.from_pretrained(base, ckpt / "policy", is_trainable=True)
            else:
                policy = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", **lora))
            reference = None  # the same weights with the adapters disabled
        else:
            # The reference is the starting model, frozen; the policy is a trainable copy
            # (loaded from the checkpoint when resuming).
            reference = base
            reference.eval().requires_grad_(False)
            policy = (AutoModelForCausalLM.from_pretrained(ckpt / "policy", dtype=dtype) if ckpt is not None
                      else copy.deepcopy(base))
            policy.requires_grad_(True)
            reference.to(device)
        policy.to(device)
        if config.gradient_checkpointing:
            policy.gradient_checkpointing_enable()
            if lora:
                policy.enable_input_require_grads()
        self.policy, self.reference = policy, reference
        hidden_size = policy.config.get_text_config().hidden_size
        self.value_head = ValueHead(hidden_size, device, dtype, config.seed)
        if ckpt is not None:
            from safetensors.torch import load_file

            self.value_head.linear.load_state_dict(load_file(ckpt / "value_head.safetensors"))

        policy_params = [p for p in policy.parameters() if p.requires_grad]
        value_params = list(self.value_head.linear.parameters())
        self.params = policy_params + value_params  # what the gradient norm is clipped over
        self.optimizer = torch.optim.AdamW(
            [{"params": policy_params, "lr": config.learning_rate},
             {"params": value_params, "lr": config.value_learning_rate or config.learning_rate}],
            weight_decay=config.weight_decay,
        )
        self.start_step, self.state = 0, {}
        if ckpt is not None:
            _load_optimizer(self.optimizer, ckpt)
            meta = json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
            self.start_step, self.state = int(meta["step"]), meta.get("state", {})

        self.scorer = RewardModelScorer(reward_model, device) if reward_model else None
        # generate stops at any of them; they also end the completion mask and the decoded text
        self.eos_ids = sorted({tokenizer.eos_token_id, *(_as_list(policy.generation_config.eos_token_id))} - {None})
        self.search_rollout = None
        if search is not None:
            from train.rollouts import SearchRollout

            if not search_index:
                raise PPOError("search in the loop needs search_index (an assay index directory)")
            self.search_rollout = SearchRollout.from_index(search_index, search)

        self.step_times: list[float] = []
        self.rewards_seen: list[float] = []  # mean raw score of each step run
        self.last_ckpt: Path | None = ckpt
        self.stop = False  # set by SIGINT: finish the step, checkpoint, return

    # ---- the loop -----------------------------------------------------------------------

    def train(self) -> dict:
        """Run steps start_step+1 .. config.steps; returns the summary `train_ppo` documents."""
        config = self.config
        with self._sigint_finishes_the_step():
            for step in range(self.start_step, config.steps):
                t0 = time.perf_counter()
                batch = self.rollout(step)
                t_gen = time.perf_counter()
                scores = self.score(batch)
                # A frozen snapshot of the policy as it sampled: the update's ratios and clipping are relative to it
                logprobs, values, ref_logprobs = self.evaluate(batch)
                advantages, returns, kl = self.advantages(batch, scores.shaped, logprobs, values, ref_logprobs)
                stats = self.update(step, batch, logprobs, values, advantages, returns)
                self.log(step, batch, scores, kl, stats, generation_time=t_gen - t0, step_time=time.perf_counter() - t0)
                done = step + 1
                # an interrupted run saves where it stopped, so resume loses nothing
                if self.stop or done == config.steps or (config.save_every and done % config.save_every == 0):
                    self.checkpoint(done)
                if self.stop:
                    break
        return self.summary()

    # ---- the steps ------------------------------------------------------------------------

    def rollout(self, step: int) -> Rollout:
        """1. Sample one completion per prompt of this step's batch, at config.temperature."""
        import torch

        config, tokenizer, policy, device = self.config, self.tokenizer, self.policy, self.device
        rows = [self.prompts[i] for i in _batch_indices(len(self.prompts), step, config.batch_size, config.seed)]
        texts = [_prompt_text(r["prompt"], tokenizer) for r in rows]
        search_calls = None
        policy.eval()  # no dropout while sampling and scoring: log-probs must match
        with torch.no_grad():
            if self.search_rollout is not None:
                from train.rollouts import prompt_texts

                texts = prompt_texts([r["prompt"] for r in rows], tokenizer, self.search.instructions, {})
                gen = self.search_rollout.generate(policy, tokenizer, texts, max_new_tokens=config.max_new_tokens,
                                                   temperature=config.temperature, top_k=config.top_k, top_p=config.top_p,
                                                   max_prompt_length=config.max_prompt_length)
                padded = {k: v.to(device) for k, v in gen.padded(tokenizer.pad_token_id).items()}
                prompt_ids, prompt_mask = padded["prompt_ids"], padded["prompt_mask"]
                completion_ids = padded["completion_ids"]
                mask = padded["completion_mask"]  # 1 on every real token (incl. retrieved ones)
                policy_mask = padded["policy_mask"]  # 1 on tokens the policy wrote
                # the retrieved chunks, numbered as the policy saw them, for the grounding reward
                rows = [dict(r, contexts=[p.text for p in ps]) for r, ps in zip(rows, gen.passages)]
                search_calls = sum(gen.search_calls_list) / len(rows)
            else:
                enc = tokenizer(texts, return_tensors="pt", padding=True, truncation=True,
                                max_length=config.max_prompt_length, add_special_tokens=False)
                prompt_ids, prompt_mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
                sequences = policy.generate(
                    input_ids=prompt_ids, attention_mask=prompt_mask, do_sample=True,
                    temperature=config.temperature, top_k=config.top_k, top_p=config.top_p,  # top_k=0 explicitly: None would mean generation_config's default (50), and log-probs would no longer match the sampler
                    max_new_tokens=config.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=self.eos_ids,
                )
                completion_ids = sequences[:, prompt_ids.shape[1]:]
                mask = completion_mask(completion_ids, self.eos_ids)
                policy_mask = mask
        completions = tokenizer.batch_decode(completion_ids * mask + tokenizer.pad_token_id * (1 - mask),
                                             skip_special_tokens=True)
        return Rollout(rows=rows, texts=texts, completions=completions,
                       input_ids=torch.cat([prompt_ids, completion_ids], 1), attention=torch.cat([prompt_mask, mask], 1),
                       prompt_len=prompt_ids.shape[1], completion_ids=completion_ids, policy_mask=policy_mask.float(),
                       truncated=~_ends_with_eos(completion_ids, mask, self.eos_ids), search_calls=search_calls)

    def score(self, batch: Rollout) -> Scores:
        """2. One scalar per completion: reward_fn (assay's verifiers) plus the reward model's score."""
        import torch

        config = self.config
        t_r = time.perf_counter()
        scores = torch.zeros(len(batch.rows), dtype=torch.float32)
        if self.reward_fn is not None:
            got = self.reward_fn(batch.completions, batch.rows)
            if len(got) != len(batch.rows):
                raise RuntimeError(f"reward_fn returned {len(got)} scores for {len(batch.rows)} completions")
            scores += torch.tensor([0.0 if s is None else float(s) for s in got])
        verifier = scores.clone()
        if self.scorer is not None:
            scores += config.reward_model_coef * torch.tensor(self.scorer([r["prompt"] for r in batch.rows], batch.completions))
        seconds = time.perf_counter() - t_r
        if config.missing_eos_penalty is not None:
            scores -= config.missing_eos_penalty * batch.truncated.float().cpu()
        raw = scores.clone()
        if config.whiten_rewards and len(scores) > 1:
            scores = (scores - scores.mean()) / (scores.std() + 1e-8)
        if config.score_clip is not None:
            scores = scores.clamp(-config.score_clip, config.score_clip)
        return Scores(shaped=scores.to(self.device), raw=raw, verifier=verifier, seconds=seconds)

    def evaluate(self, batch: Rollout):
        """3. With no grad: the policy's log-probs and values, the reference's log-probs.

        Returns (logprobs, values, ref_logprobs), each (batch, completion tokens); values are 0
        where the policy did not write, so GAE and the value loss see only its tokens.
        """
        import torch

        config = self.config
        self.policy.eval()  # as in the rollout: these must be the log-probs the tokens were sampled with
        logprobs, values, ref_logprobs = [], [], []
        with torch.no_grad():
            for i in range(0, len(batch.rows), config.forward_batch_size):
                sl = slice(i, i + config.forward_batch_size)
                ids, att, tokens = batch.input_ids[sl], batch.attention[sl], batch.completion_ids[sl]
                logits, hidden = _forward(self.policy, ids, att, batch.prompt_len, config.temperature, True)
                logprobs.append(_token_logprobs(logits, tokens))
                values.append(self.value_head(hidden))
                with self._reference() as reference:
                    ref_logits, _ = _forward(reference, ids, att, batch.prompt_len, config.temperature, False)
                ref_logprobs.append(_token_logprobs(ref_logits, tokens))
        return torch.cat(logprobs), torch.cat(values) * batch.policy_mask, torch.cat(ref_logprobs)

    def advantages(self, batch: Rollout, scores, logprobs, values, ref_logprobs):
        """4-5. Per-token rewards, then GAE; returns (advantages, returns, kl).

        The reward is -kl_coef * KL(policy || reference) on every token the policy wrote, so
        the penalty lands where the drift happened, plus the score on its last token, as
        the completion is judged only once it is finished.
        """
        import torch

        config, pm = self.config, batch.policy_mask
        kl = kl_penalty(logprobs, ref_logprobs, config.kl_estimator) * pm
        rewards = -config.kl_coef * kl
        last = (pm * torch.arange(pm.shape[1], device=self.device)).argmax(1)  # last policy-written token
        rewards[torch.arange(len(batch.rows), device=self.device), last] += scores
        advantages, returns = gae(rewards, values, pm, config.gamma, config.lam)
        if config.whiten_advantages:
            advantages = whiten(advantages, pm)
        return advantages, returns, kl

    def update(self, step: int, batch: Rollout, old_logprobs, old_values, advantages, returns) -> dict[str, float]:
        """6. `ppo_epochs` passes over shuffled minibatches; returns the mean of each loss statistic."""
        import torch

        config = self.config
        self.policy.train()
        self.value_head.linear.train()
        stats: dict[str, list[float]] = {k: [] for k in ("policy_loss", "value_loss", "entropy", "clipfrac",
                                                          "vf_clipfrac", "approx_kl", "grad_norm")}
        # its own generator, seeded by step: a resumed run shuffles its minibatches as an unbroken one would
        gen_torch = torch.Generator().manual_seed(config.seed * 7919 + step)
        for _ in range(config.ppo_epochs):
            order = torch.randperm(len(batch.rows), generator=gen_torch).tolist()
            for i in range(0, len(batch.rows), config.mini_batch_size):
                idx = torch.tensor(order[i : i + config.mini_batch_size], device=self.device)
                logits, hidden = _forward(self.policy, batch.input_ids[idx], batch.attention[idx], batch.prompt_len,
                                          config.temperature, True)
                logprobs = _token_logprobs(logits, batch.completion_ids[idx])
                values = self.value_head(hidden)
                m = batch.policy_mask[idx]
                pg_loss, clipfrac, approx_kl = policy_loss(logprobs, old_logprobs[idx], advantages[idx], m, config.cliprange)
                vf_loss, vf_clipfrac = value_loss(values, old_values[idx], returns[idx], m, config.cliprange_value)
                entropy = masked_mean(entropy_from_logits(logits), m)
                loss = pg_loss + config.vf_coef * vf_loss - config.ent_coef * entropy
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(self.params, config.max_grad_norm)
                self.optimizer.step()
                for k, v in (("policy_loss", pg_loss), ("value_loss", vf_loss), ("entropy", entropy),
                             ("clipfrac", clipfrac), ("vf_clipfrac", vf_clipfrac), ("approx_kl", approx_kl),
                             ("grad_norm", grad_norm)):
                    stats[k].append(float(v.detach()) if hasattr(v, "detach") else float(v))
        return {k: sum(v) / len(v) for k, v in stats.items()}

    def log(self, step: int, batch: Rollout, scores: Scores, kl, stats: dict[str, float], *,
            generation_time: float, step_time: float) -> None:
        """7. One record in the run's metrics.jsonl: rewards, KL, losses, lengths, timings, a few samples."""
        self.step_times.append(step_time)
        raw = scores.raw
        reward_mean = raw.mean().item()
        self.rewards_seen.append(reward_mean)
        record = {
            "step": step + 1,
            "reward": reward_mean,
            "reward_std": raw.std().item() if len(raw) > 1 else 0.0,
            "verifier_reward": scores.verifier.mean().item() if self.reward_fn is not None else None,
            "kl": (kl.sum(1)).mean().item(),  # per sequence: the sum over its tokens
            "entropy": stats["entropy"],
            "clipfrac": stats["clipfrac"],
            "vf_clipfrac": stats["vf_clipfrac"],
            "approx_kl": stats["approx_kl"],
            "policy_loss": stats["policy_loss"],
            "value_loss": stats["value_loss"],
            "grad_norm": stats["grad_norm"],
            "completion_length": batch.policy_mask.sum(1).mean().item(),
            "truncated_ratio": batch.truncated.float().mean().item(),
            "reward_time": scores.seconds,
            "generation_time": generation_time,
            "step_time": step_time,
            "reward_time_share": scores.seconds / step_time if step_time > 0 else 0.0,
            "peak_memory_mb": _peak_memory_mb(),
            "samples": [{"prompt": batch.texts[i][-200:], "completion": batch.completions[i], "score": raw[i].item()}
                        for i in range(min(self.config.log_completions, len(batch.rows)))],
        }
        if batch.search_calls is not None:
            record["search_calls"] = batch.search_calls
        self.run.log(record)

    def checkpoint(self, step: int) -> None:
        """8. Save everything resume needs after `step` steps (see the checkpoint section above)."""
        self.last_ckpt = _save_checkpoint(self.run, step, self.policy, self.tokenizer, self.value_head, self.optimizer,
                                          self.state, self.config)

    def summary(self) -> dict:
        steps_run = len(self.step_times)
        return {
            "steps": self.start_step + steps_run,
            "steps_run": steps_run,
            "interrupted": self.stop,
            "reward_first": self.rewards_seen[0] if self.rewards_seen else None,
            "reward_last": self.rewards_seen[-1] if self.rewards_seen else None,
            "seconds_per_step": sum(self.step_times) / steps_run if steps_run else None,
            "peak_memory_mb": _peak_memory_mb(),
            "checkpoint": str(self.last_ckpt) if self.last_ckpt else None,
        }

    # ---- plumbing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reference(self):
        """The frozen reference model: its own copy, or with LoRA the policy with its adapters off."""
        if self.reference is not None:
            yield self.reference
        else:
            with self.policy.disable_adapter():
                yield self.policy

    @contextlib.contextmanager
    def _sigint_finishes_the_step(self):
        """A first SIGINT sets `self.stop` (the step finishes, checkpoints, train() returns); a
        second one interrupts at once. Main thread only: signal handlers cannot be installed elsewhere."""
        old_handler = None
        if threading.current_thread() is threading.main_thread():
            def _on_sigint(signum, frame):
                if self.stop:
                    raise KeyboardInterrupt
                self.stop = True
            old_handler = signal.signal(signal.SIGINT, _on_sigint)
        try:
            yield
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)


def train_ppo(model: str, prompts: list[dict], reward_fn: Callable[[list[str], list[dict]], list[float]] | None,
              config: PPOConfig, run: "RunDir", *, lora: dict | None = None, resume: bool = False,
              reward_model: str | None = None, search: "SearchConfig | None" = None,
              search_index: str | None = None) -> dict:
    """Train `model` with PPO on `prompts`; returns a summary (steps, rewards, speed, memory, last checkpoint).

    prompts: rows with `prompt` (a string or chat messages) plus whatever fields reward_fn reads.
    reward_fn(completions, rows) -> one float per completion (None counts as 0).
    reward_model: path of a sequence-classification reward model whose score is added
    (times `config.reward_model_coef`). lora: peft LoraConfig arguments; the reference is
    then the base with adapters disabled. search / search_index: let the policy call
    `<search>` against an assay index during rollouts (see train/rollouts.py).
    """
    return PPORunner(model, prompts, reward_fn, config, run, lora=lora, resume=resume, reward_model=reward_model,
                     search=search, search_index=search_index).train()


def _as_list(x) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _ends_with_eos(completion_ids, mask, eos_ids) -> "torch.Tensor":
    import torch

    last = (mask.sum(1) - 1).clamp(min=0)
    tok = completion_ids[torch.arange(len(completion_ids), device=completion_ids.device), last]
    out = torch.zeros_like(tok, dtype=torch.bool)
    for e in eos_ids:
        out |= tok == e
    return out.cpu()
