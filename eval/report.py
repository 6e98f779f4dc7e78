"""Run directories, Markdown reports, plots, and side-by-side comparison of two runs.

A suite's run directory:

    summary.json     metrics (n, accuracy, pass@k, ...), groups, timing, settings
    samples.jsonl    one item per line: id, prompt, completion, extracted, reason, score
    report.md        the summary as tables, the worst groups, example failures
    plots/*.png      score distribution, per-group accuracy, pass@k curve

`assay eval run` with several suites writes one such directory per suite under --out and
an index summary.json beside them; `compare` accepts either level.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.files import atomic_dir, atomic_open, atomic_write_json, atomic_write_text

HEADLINE_ORDER = ("accuracy", "strict_match", "flexible_extract", "exact_match", "f1", "supported", "recall@k")


class CompareError(UserError, ValueError):
    pass


def metric_names(summary: dict) -> list[str]:
    names = [k for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
             and k not in ("n", "samples")]
    return sorted(names, key=lambda k: (HEADLINE_ORDER.index(k) if k in HEADLINE_ORDER else len(HEADLINE_ORDER),
                                        _k_of(k), k))


def _k_of(name: str) -> int:
    return int(name.split("@")[1]) if "@" in name and name.split("@")[1].isdigit() else 0


def write_run(out: Path, suite, summary: dict, recs: list[dict]) -> None:
    """The run directory, replaced as a whole: an interrupted write leaves the old one."""
    with atomic_dir(out) as tmp:
        with atomic_open(tmp / "samples.jsonl") as fh:
            for r in recs:
                fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
        plots = write_plots(tmp, summary, recs)
        summary["plots"] = [str(p.relative_to(tmp)) for p in plots]
        atomic_write_json(tmp / "summary.json", summary)
        atomic_write_text(tmp / "report.md", markdown_report(summary, recs, suite.description))


def write_index(out: Path, summaries: dict[str, dict], dirs: dict[str, str]) -> None:
    atomic_write_json(out / "summary.json", {"suites": {name: {"dir": dirs[name], **{k: v for k, v in s.items()
                                              if k in ("n", "samples", "model") or k in metric_names(s)}}
                                              for name, s in summaries.items()}})


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _interval(bounds: list[float] | None) -> str:
    return "[{:.4f}, {:.4f}]".format(*bounds) if bounds else "–"  # an interval, not a passage number


def markdown_report(summary: dict, recs: list[dict], description: str = "") -> str:
    lines = [f"# {summary.get('suite')} — {summary.get('model') or summary.get('predictions')}", ""]
    if description:
        lines += [f"_{description}_", ""]
    lines += [f"{summary['n']} items × {summary.get('samples', 1)} sample(s).", ""]
    ci = summary.get("ci95", {})
    lines += ["| metric | value | 95% interval |", "|---|---|---|"]
    lines += [f"| {k} | {_fmt(summary[k])} | {_interval(ci.get(k))} |" for k in metric_names(summary)]
    t = summary.get("time", {})
    if t:
        lines += ["", "| time | seconds |", "|---|---|"] + [f"| {k} | {v} |" for k, v in t.items()]
    g = summary.get("generations")
    if g:
        lines += ["", f"Generations: {g['new']} new, {g['cached']} from cache, {g['new_tokens']} new tokens "
                  f"({g['backend']}). Settings: `{json.dumps(summary.get('generation', {}))}`"]
    for field, buckets in summary.get("groups", {}).items():
        lines += ["", f"## Accuracy by {field}", "", f"| {field} | n | accuracy |", "|---|---|---|"]
        lines += [f"| {k} | {b['n']} | {b['accuracy']:.4f} |" for k, b in buckets.items()]
    if summary.get("plots"):
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in summary["plots"]]
    wrong = [r for r in recs if r.get("score") is not None and r["score"] < 1][:5]
    if wrong:
        lines += ["", "## Example failures", ""]
        for r in wrong:
            tail = (r.get("completion") or "")[-300:].replace("\n", " ")
            lines += [f"- **{r['id']}**: extracted `{r.get('extracted')}` — {r.get('reason')}  ", f"  …{tail}"]
    return "\n".join(lines) + "\n"


def write_plots(out: Path, summary: dict, recs: list[dict]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots_dir = out / "plots"
    plots_dir.mkdir(exist_ok=True)
    made: list[Path] = []

    def save(fig, name):
        path = plots_dir / name
        tmp = path.with_name(f".{name}.tmp.png")
        fig.tight_layout()
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        os.replace(tmp, path)
        made.append(path)

    model = summary.get("model")
    # A model given as a path is named by its last part: titles carry no machine paths.
    shown = Path(str(model)).name if model and ("/" in str(model) or "\\" in str(model)) else model
    title = f"{summary.get('suite')} — {shown or 'predictions'}"
    scores = [r.get("mean_score", r.get("score")) for r in recs]
    scores = [0.0 if s is None else s for s in scores]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(scores, bins=min(20, max(2, len(set(scores)) * 2)), range=(0, 1), color="#4c72b0", edgecolor="white")
    ax.set_xlabel("score per item" + (" (mean over samples)" if summary.get("samples", 1) > 1 else ""))
    ax.set_ylabel("items")
    ax.set_title(title, fontsize=9)
    save(fig, "score_distribution.png")

    for field, buckets in summary.get("groups", {}).items():
        names = list(buckets)
        fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(names) + 2), 3.4))
        ax.bar(range(len(names)), [buckets[k]["accuracy"] for k in names], color="#55a868")
        ax.set_xticks(range(len(names)), [f"{k}\n(n={buckets[k]['n']})" for k in names], rotation=30, ha="right",
                      fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.set_title(f"{title}: accuracy by {field}", fontsize=9)
        save(fig, f"accuracy_by_{field}.png")

    ks = sorted((_k_of(k), summary[k]) for k in summary if k.startswith("pass@") and summary[k] is not None)
    if len(ks) > 1:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot([k for k, _ in ks], [v for _, v in ks], marker="o")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.set_title(title, fontsize=9)
        save(fig, "pass_at_k.png")
    return made


# --------------------------------------------------------------------- compare

def load_run(path: str | Path) -> dict[str, tuple[dict, list[dict]]]:
    """{suite name: (summary, records)} for a suite directory or a multi-suite directory."""
    p = Path(path)
    if not (p / "summary.json").exists():
        raise CompareError(f"{p}: not a run directory (no summary.json)")
    summary = json.loads((p / "summary.json").read_text(encoding="utf-8"))
    if "suites" in summary and "n" not in summary:
        out = {}
        for name, entry in summary["suites"].items():
            out.update(load_run(p / entry["dir"]))
        return out
    recs = []
    samples = p / "samples.jsonl"
    if samples.exists():
        with open(samples, encoding="utf-8") as fh:
            recs = [json.loads(line) for line in fh if line.strip()]
    return {summary.get("suite", p.name): (summary, recs)}


def compare(run_a: str | Path, run_b: str | Path, *, max_flips: int = 10) -> dict[str, Any]:
    a, b = load_run(run_a), load_run(run_b)
    common = [s for s in a if s in b]
    if not common:
        raise CompareError(f"no suite in common: {run_a} has {', '.join(a)}; {run_b} has {', '.join(b)}")
    result: dict[str, Any] = {"a": str(run_a), "b": str(run_b), "suites": {}}
    for s in common:
        (sa, ra), (sb, rb) = a[s], b[s]
        names = [m for m in metric_names(sa) if m in sb]
        metrics = {m: {"a": sa[m], "b": sb[m], "delta": (None if sa[m] is None or sb[m] is None else sb[m] - sa[m])}
                   for m in names}
        by_a = {r["id"]: r for r in ra}
        gained, lost, both = [], [], 0
        for r in rb:
            ra_ = by_a.get(r["id"])
            if ra_ is None:
                continue
            both += 1
            ca, cb = _correct(ra_), _correct(r)
            if ca and not cb:
                lost.append({"id": r["id"], "a": ra_.get("extracted"), "b": r.get("extracted"), "reason_b": r.get("reason")})
            elif cb and not ca:
                gained.append({"id": r["id"], "a": ra_.get("extracted"), "b": r.get("extracted"), "reason_a": ra_.get("reason")})
        result["suites"][s] = {"n_a": sa.get("n"), "n_b": sb.get("n"), "n_common": both, "metrics": metrics,
                               "flips": {"wrong_to_right": len(gained), "right_to_wrong": len(lost),
                                         "examples_wrong_to_right": gained[:max_flips],
                                         "examples_right_to_wrong": lost[:max_flips]},
                               "model_a": sa.get("model"), "model_b": sb.get("model")}
    return result


def _correct(rec: dict) -> bool:
    s = rec.get("mean_score", rec.get("score"))
    return s is not None and s >= 0.5 if "mean_score" in rec else (s is not None and s >= 1 - 1e-9)


def format_compare(result: dict) -> str:
    lines = [f"A: {result['a']}", f"B: {result['b']}"]
    for s, r in result["suites"].items():
        lines += ["", f"== {s}  (A: {r['model_a']}, n={r['n_a']} | B: {r['model_b']}, n={r['n_b']}; {r['n_common']} items in common)"]
        width = max([len(m) for m in r["metrics"]] + [6])
        lines.append(f"{'metric':<{width}}  {'A':>8}  {'B':>8}  {'B-A':>8}")
        for m, v in r["metrics"].items():
            d = "" if v["delta"] is None else f"{v['delta']:+.4f}"
            lines.append(f"{m:<{width}}  {_fmt(v['a']):>8}  {_fmt(v['b']):>8}  {d:>8}")
        f = r["flips"]
        lines.append(f"flips: {f['wrong_to_right']} wrong->right, {f['right_to_wrong']} right->wrong")
        for e in f["examples_wrong_to_right"]:
            lines.append(f"  + {e['id']}: {e['a']!r} -> {e['b']!r}")
        for e in f["examples_right_to_wrong"]:
            lines.append(f"  - {e['id']}: {e['a']!r} -> {e['b']!r}  ({e.get('reason_b')})")
    return "\n".join(lines)
