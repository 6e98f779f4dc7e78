"""A pipeline run's report: report.md and report.html from one list of blocks.

It reads only what the stages wrote (each stage's stage.json and the files it names): the
eval stages' models side by side -- every metric with its 95% bootstrap interval, the
best of each column marked --, each sample stage's kept and dropped counts, each training
stage's curves, and every stage's wall and CPU seconds. Paths in it are relative to the
run directory, so a moved run keeps its report.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any


def _metric_columns(models: dict[str, dict]) -> list[str]:
    """accuracy (mean@n: every sample counts), then pass@n and maj@n at the largest n evaluated."""
    present = {k for s in models.values() for k in s}
    n = max((int(k.split("@")[1]) for k in present if k.startswith("pass@")), default=1)
    wanted = ("accuracy", f"pass@{n}", f"maj@{n}") if n > 1 else ("accuracy",)
    return [k for k in (*wanted, "exact_match") if k in present]


def _cell(summary: dict, metric: str) -> str:
    v = summary.get(metric)
    if v is None:
        return "–"
    ci = (summary.get("ci95") or {}).get(metric)
    return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{v:.3f}"


def blocks(out: Path, config, results: list[dict[str, Any]]) -> list[tuple]:
    """The report as (kind, ...) blocks: ("h", level, text), ("p", text), ("table", head, rows), ("img", path, alt)."""
    b: list[tuple] = [("h", 1, f"Pipeline {config.name or out.name}")]
    if config.description:
        b.append(("p", config.description))
    b.append(("p", "Stages in order: " + " → ".join(f"{r['name']} ({r['kind']})" for r in results) + "."))
    b.append(("h", 2, "Stages"))
    rows = []
    for r in results:
        note = "skipped: done before, unchanged" if r.get("skipped") else ""
        rows.append([r["name"], r["kind"], f"{r.get('wall_s', 0):.0f}", f"{r.get('cpu_s', 0):.0f}", note])
    b.append(("table", ["stage", "kind", "wall s", "CPU s", ""], rows))
    for r in results:
        summary = r.get("summary") or {}
        if r["kind"] == "eval":
            models = summary.get("models", {})
            cols = _metric_columns(models)
            best = {c: max((s.get(c) for s in models.values() if s.get(c) is not None), default=None) for c in cols}
            table = []
            for label, s in models.items():
                cells = [_cell(s, c) + (" **best**" if s.get(c) is not None and s.get(c) == best[c] and len(models) > 1
                                        else "") for c in cols]
                table.append([label, str(s.get("n", "")), *cells])
            b.append(("h", 2, f"{r['name']}: held-out evaluation on {summary.get('task')}"))
            b.append(("p", "Each cell: the mean over items and its 95% bootstrap interval (items resampled, 1,000 "
                           "rounds). Two models differ beyond noise where their intervals do not overlap."))
            b.append(("table", ["model", "items", *cols], table))
            paired = _paired(models)
            if paired:
                b.append(("p", f"The best model ({paired[0][0]}) against each other one, accuracy, same items: the "
                               "mean difference and its paired 95% bootstrap interval (10,000 rounds). An interval above "
                               "zero is a difference beyond the noise of which items were drawn."))
                b.append(("table", ["comparison", "difference", "95% interval"],
                          [[f"{best} − {other}", f"{d:+.3f}", f"[{lo:+.3f}, {hi:+.3f}]"] for best, other, d, lo, hi in paired]))
        elif r["kind"] == "sample":
            counts = summary.get("counts", {})
            b.append(("h", 2, f"{r['name']}: verified data"))
            passes = ", ".join(f"{k} {v:.3f}" for k, v in summary.items() if k.startswith("pass@") and v is not None)
            b.append(("p", f"{counts.get('prompts')} prompts, {counts.get('samples')} samples ({passes}): kept "
                           f"{counts.get('kept')}, DPO pairs {counts.get('pairs')}."))
            dropped = counts.get("dropped", {})
            if dropped:
                b.append(("table", ["filter", "dropped"], [[k, str(v)] for k, v in dropped.items()]))
        else:
            b.append(("h", 2, f"{r['name']}: {r['kind']} training"))
            facts = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in summary.items() if k != "plot")
            b.append(("p", facts or "(no summary)"))
            plot = out / "stages" / r["name"] / "run" / "curves.png"
            if plot.is_file():
                b.append(("img", str(plot.relative_to(out)), f"{r['name']} curves"))
    return b


def _paired(models: dict[str, dict]) -> list[tuple[str, str, float, float, float]]:
    from eval.metrics import paired_difference

    have = {k: s for k, s in models.items() if s.get("items") and s.get("accuracy") is not None}
    if len(have) < 2 or len({len(s["items"]) for s in have.values()}) != 1:
        return []
    best = max(have, key=lambda k: have[k]["accuracy"])
    return [(best, other, *paired_difference(have[best]["items"], s["items"])) for other, s in have.items() if other != best]


def to_markdown(bs: list[tuple]) -> str:
    lines: list[str] = []
    for blk in bs:
        if blk[0] == "h":
            lines += ["#" * blk[1] + " " + blk[2], ""]
        elif blk[0] == "p":
            lines += [blk[1], ""]
        elif blk[0] == "table":
            lines += ["| " + " | ".join(blk[1]) + " |", "|" + "---|" * len(blk[1])]
            lines += ["| " + " | ".join(row) + " |" for row in blk[2]] + [""]
        elif blk[0] == "img":
            lines += [f"![{blk[2]}]({blk[1]})", ""]
    return "\n".join(lines)


def to_html(bs: list[tuple], title: str) -> str:
    e = html.escape
    body: list[str] = []
    for blk in bs:
        if blk[0] == "h":
            body.append(f"<h{blk[1]}>{e(blk[2])}</h{blk[1]}>")
        elif blk[0] == "p":
            body.append(f"<p>{e(blk[1])}</p>")
        elif blk[0] == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in blk[1])
            rows = "".join("<tr>" + "".join(f"<td>{_strong(e(c))}</td>" for c in row) + "</tr>" for row in blk[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif blk[0] == "img":
            body.append(f'<figure><img src="{e(blk[1])}" alt="{e(blk[2])}"><figcaption>{e(blk[2])}</figcaption></figure>')
    style = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
             "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;"
             "text-align:left}th{background:#f3f3f3}img{max-width:100%}")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{e(title)}</title><style>{style}</style>"
            f"</head><body>{''.join(body)}</body></html>\n")


def _strong(cell: str) -> str:
    return cell.replace(" **best**", " <strong>best</strong>")


def write_pipeline_report(out: Path, config, results: list[dict[str, Any]]) -> Path:
    from core.files import atomic_write_json, atomic_write_text

    bs = blocks(out, config, results)
    atomic_write_text(out / "report.md", to_markdown(bs))
    atomic_write_text(out / "report.html", to_html(bs, f"Pipeline {config.name or out.name}"))
    atomic_write_json(out / "summary.json", {"name": config.name, "stages": results})
    return out / "report.html"
