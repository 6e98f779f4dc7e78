"""`assay train ...` and `assay data prefs ...`: parse arguments, call train's front doors.

    assay train grpo --config data/configs/grpo-smoke.yaml --out runs/grpo-smoke [--set grpo.max_steps=5] [--resume]
    assay train export --adapter runs/grpo/model --out models/merged
    assay data prefs --model SmolLM2-135M-Instruct --data gsm8k --rewards math --k 4 --out prefs.jsonl
    assay data world --out data/world --seed 0 --docs 3000 --questions 4000

Multi-GPU: `accelerate launch --config_file data/configs/accelerate/<name>.yaml -m assay train ...`.
Nothing heavy is imported until a handler runs.
"""

from __future__ import annotations

import argparse
import json
import sys

from core.options import NON_NEGATIVE_FLOAT, POSITIVE_INT

TRAINER_HELP = {
    "sft": "supervised fine-tuning (TRL SFTTrainer)",
    "dpo": "direct preference optimization (TRL DPOTrainer; loss variants via dpo.loss_type)",
    "grpo": "group relative policy optimization with assay rewards (TRL GRPOTrainer; grpo/dapo/dr_grpo/bnpo/... via grpo.loss_type)",
    "ppo": "proximal policy optimization (assay's own, train.ppo)",
    "reward": "a reward model from preference pairs (TRL RewardTrainer)",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to the `assay` parser."""
    p = sub.add_parser("train", help="train a model: sft, dpo, grpo, ppo, reward; export a LoRA adapter",
                       description="Train with one YAML config per run; every run writes a run directory "
                       "(config.yaml, metrics.jsonl, checkpoints/, model/, curves.png, summary.json).")
    p.set_defaults(help_parser=p)
    tsub = p.add_subparsers(dest="trainer", metavar="TRAINER")
    for name, help_ in TRAINER_HELP.items():
        t = tsub.add_parser(name, help=help_, description=help_)
        t.add_argument("--config", required=True, help="run config (YAML or TOML), e.g. data/configs/%s-smoke.yaml" % name)
        t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set grpo.max_steps=10 (repeatable)")
        t.add_argument("--out", default=None, help="run directory (default: runs/<config name>)")
        t.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
        t.add_argument("--fresh", action="store_true",
                       help="replace the run directory as a whole (an existing run needs --resume or --fresh)")
        t.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                       help="a module that registers rewards, added to the config's rewards_import (repeatable)")
        t.add_argument("--json", action="store_true", help="print the summary as one JSON object")
        t.set_defaults(handler=_run_train)
    e = tsub.add_parser("export", help="merge a LoRA adapter into its base model; write a plain model folder")
    e.add_argument("--adapter", required=True, help="adapter folder (a run's model/ or a checkpoint)")
    e.add_argument("--out", required=True, help="output model folder")
    e.add_argument("--base", default=None, help="base model (default: the adapter's base_model_name_or_path)")
    e.set_defaults(handler=_run_export)

    d = sub.add_parser("data", help="build data: preference pairs from verifier outcomes; the offline knowledge world")
    d.set_defaults(help_parser=d)
    dsub = d.add_subparsers(dest="data_command", metavar="COMMAND")
    pr = dsub.add_parser("prefs", help="sample k completions per prompt, pair passing (chosen) with failing (rejected)",
                         description="Writes DPO JSONL: question, prompt, chosen, rejected, scores, gold fields.")
    pr.add_argument("--config", default=None, help="a run config: its model, data and rewards sections are used")
    pr.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    pr.add_argument("--model", default=None, help="model name/path (model.name)")
    pr.add_argument("--data", default=None, help="data source (data.source), e.g. gsm8k, reasoning_gym:basic_arithmetic")
    pr.add_argument("--limit", type=POSITIVE_INT, default=None, help="use at most N prompts")
    pr.add_argument("--rewards", default=None, help='reward spec, e.g. "math,format:0.2" (default: the config\'s, else math)')
    pr.add_argument("--k", type=POSITIVE_INT, default=4, help="completions per prompt (default 4)")
    pr.add_argument("--temperature", type=NON_NEGATIVE_FLOAT, default=0.8)
    pr.add_argument("--max-new-tokens", type=POSITIVE_INT, default=256)
    pr.add_argument("--threshold", type=float, default=1.0, help="a completion passes when its total >= this (default 1)")
    pr.add_argument("--pairs-per-prompt", type=int, default=1)
    pr.add_argument("--batch-size", type=POSITIVE_INT, default=8)
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--out", required=True, help="output JSONL")
    pr.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                    help="a module that registers rewards (repeatable)")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(handler=_run_prefs)
    w = dsub.add_parser("world", help="generate the offline knowledge-world RAG QA benchmark (tasks.knowledge_world)",
                        description="Writes DIR/corpus.jsonl, queries.jsonl, qrels/{train,dev,test}.tsv (BEIR), "
                        "questions.jsonl and world.json: invented entities, so only retrieval can answer.")
    w.add_argument("--out", required=True, metavar="DIR", help="output directory (written atomically)")
    w.add_argument("--seed", type=int, default=0, help="seed (default 0); the same seed gives identical files")
    w.add_argument("--docs", type=int, default=3000, help="documents (default 3000)")
    w.add_argument("--questions", type=int, default=4000, help="questions (default 4000)")
    w.add_argument("--force", action="store_true", help="replace an existing non-empty DIR")
    w.add_argument("--json", action="store_true")
    w.set_defaults(handler=_run_world)


def _print_summary(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, default=str))
        return
    width = max(len(k) for k in summary) if summary else 0
    for k, v in summary.items():
        if isinstance(v, float):
            v = f"{v:.4g}"
        elif isinstance(v, (dict, list)):
            v = json.dumps(v, default=str)
        print(f"{k:<{width}}  {v}")


def _run_train(args: argparse.Namespace) -> int:
    from train.trainers import run

    summary = run(args.trainer, args.config, out=args.out, overrides=args.overrides, resume=args.resume,
                  fresh=args.fresh, progress=not args.json, imports=args.imports)
    _print_summary(summary, args.json)
    if summary.get("interrupted"):
        print(f"stopped at step {summary.get('global_step')}; resume with --resume --out {summary['out']}", file=sys.stderr)
        return 130
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from train.export import export_merged

    print(export_merged(args.adapter, args.out, base=args.base))
    return 0


def _run_prefs(args: argparse.Namespace) -> int:
    from core.config import load_config
    from rewards import parse_spec
    from train.config import RunConfig
    from train.prefs import PrefsConfig, make_prefs

    overrides = list(args.overrides)
    if args.model:
        overrides.append(f"model.name={args.model}")
    if args.data:
        overrides.append(f"data.source={args.data}")
    if args.limit is not None:
        overrides.append(f"data.limit={args.limit}")
    cfg = load_config(RunConfig, args.config, overrides)
    if cfg.rewards_import or args.imports:
        from pathlib import Path

        from rewards.base import import_modules

        import_modules(args.imports)
        import_modules(cfg.rewards_import, search=[Path(args.config).parent] if args.config else [],
                       what="rewards_import:")
    if args.rewards or not cfg.rewards:
        from train.config import RewardConfig

        cfg.rewards = [RewardConfig(name=n, weight=w) for n, w in parse_spec(args.rewards or "math")]
    opts = PrefsConfig(k=args.k, temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                        threshold=args.threshold, pairs_per_prompt=args.pairs_per_prompt,
                        batch_size=args.batch_size, seed=args.seed)
    _print_summary(make_prefs(cfg, args.out, opts), args.json)
    return 0


def _run_world(args: argparse.Namespace) -> int:
    from tasks.knowledge_world import WorldConfig, generate, write_world

    world = generate(WorldConfig(seed=args.seed, docs=args.docs, questions=args.questions))
    out = write_world(world, args.out, force=args.force)
    _print_summary({"out": str(out), **world.stats()}, args.json)
    return 0
