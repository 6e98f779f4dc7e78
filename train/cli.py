"""`assay train ...`: parse arguments, call train's front doors (`assay data ...` is recipes.cli).

    assay train grpo --config data/configs/grpo-smoke.yaml --out runs/grpo-smoke [--set grpo.max_steps=5] [--resume]
    assay train export --adapter runs/grpo/model --out models/merged

Multi-GPU: `accelerate launch --config_file data/configs/accelerate/<name>.yaml -m assay train ...`.
Nothing heavy is imported until a handler runs.
"""

from __future__ import annotations

import argparse
import json
import sys

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


def print_summary(summary: dict, as_json: bool) -> None:
    """A run's summary: one JSON object with --json, else one aligned `key  value` line each."""
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
    print_summary(summary, args.json)
    if summary.get("interrupted"):
        print(f"stopped at step {summary.get('global_step')}; resume with --resume --out {summary['out']}", file=sys.stderr)
        return 130
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from train.export import export_merged

    print(export_merged(args.adapter, args.out, base=args.base))
    return 0
