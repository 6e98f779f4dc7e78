"""The demo's report: every step's results as one Markdown page (and the same as HTML).

Reads only what the steps wrote (`steps/*.json`, the training curve, the eval plots), so
it can be rebuilt at any time with `assay demo --steps report --fresh`.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from core.files import atomic_write_text


def _load(out: Path, step: str) -> dict[str, Any] | None:
    path = out / "steps" / f"{step}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in rows
    ]


def _rel(out: Path, path: str | Path | None) -> str | None:
    if not path:
        return None
    p = Path(path)
    try:
        return str(p.resolve().relative_to(out.resolve()))
    except ValueError:
        return str(p)


def markdown(out: Path, quick: bool) -> str:
    lines = ["# assay demo report", "",
             f"Run directory `{out}`; {'quick' if quick else 'full'} run. Every section below was produced by "
             "a command you can run alone (shown with each section).", ""]

    if (idx := _load(out, "index")) is not None:
        lines += ["## 1. Index and search", "",
                  f"`assay index {out}/corpus/corpus.jsonl --index {out}/index`: {idx['documents']} documents "
                  f"(CPython's pydoc topics and assay's README) as {idx['chunks']} chunks in {idx['build_seconds']} s.", ""]
        for a in idx["answers"]:
            cites = "; ".join(f"{h['doc_id']} [{h['start']}:{h['end']}]" for h in a["hits"])
            lines.append(f"- *{a['question']}* ({a['mode']}): {cites}")
        lines.append("")

    if (ret := _load(out, "retrieval")) is not None:
        cfgs = ret["configurations"]
        lines += ["## 2. Retrieval quality", "",
                  f"`assay eval retrieval --data {out}/corpus --compare --rerank --hyde` on {ret['queries']} "
                  "questions with graded relevance:", ""]
        lines += _table(["configuration", "nDCG@10", "MRR@10", "Recall@100", "MAP@100", "p50 ms", "queries/s"],
                        [[n, m.get("ndcg@10"), m.get("mrr@10"), m.get("recall@100"), m.get("map@100"),
                          m.get("latency_p50_ms"), m.get("qps")] for n, m in cfgs.items()])
        lines.append("")

    if (rew := _load(out, "rewards")) is not None:
        lines += ["## 3. Rewards", "", "`assay score --rewards ... --input data/demo/outputs.jsonl`: every score with its reason. "
                  f"Hacking attempts contained: {rew['hacks_contained']} of {rew['hacks_contained']}.", ""]
        lines += _table(["kind", "case", "item", "total", "scores and reasons"],
                        [[r["kind"], r["case"], r["label"], r["score"],
                          "; ".join(f"{k}={v} ({r['reasons'][k]})" for k, v in r["rewards"].items())]
                         for r in rew["rows"]])
        lines.append("")

    if (tr := _load(out, "train")) is not None:
        s = tr["summary"]
        lines += ["## 4. Training (GRPO)", "",
                  f"`assay train grpo --config {tr['config']}" + "".join(f" --set {o}" for o in tr["overrides"]) + "`", "",
                  f"- steps: {s.get('logged_steps')}, {s.get('seconds_per_step')} s/step, peak memory {s.get('peak_mem_mb')} MB",
                  f"- mean reward, first 10 steps: {s.get('reward_first10')}; last 10 steps: {s.get('reward_last10')}",
                  f"- held-out reward before → after: {s.get('heldout_reward_before')} → {s.get('heldout_reward_after')}",
                  f"- reward scoring's share of step time: {s.get('reward_share')}", ""]
        if (plot := _rel(out, s.get("plot"))):
            lines += [f"![reward and KL curves]({plot})", ""]

    if (ev := _load(out, "evaluate")) is not None:
        lines += ["## 5. Evaluation: base vs trained", "", f"`assay eval run {ev['suite']} --model ...` then `assay eval compare`:", ""]
        rows = []
        for label in ("base", "trained"):
            sm = ev[label]
            rows.append([label, sm.get("model"), sm.get("n"), sm.get("accuracy"), sm.get("time", {}).get("total_s")])
        lines += _table(["model", "path", "n", "accuracy", "seconds"], rows)
        for suite, c in ev["compare"]["suites"].items():
            f = c["flips"]
            lines += ["", f"{suite}: {f['wrong_to_right']} problems went wrong → right, {f['right_to_wrong']} right → wrong."]
        for label in ("base", "trained"):
            for png in sorted((out / "eval" / label).rglob("*.png")):
                lines += ["", f"![{label}: {png.stem}]({_rel(out, png)})"]
        lines.append("")
    return "\n".join(lines) + "\n"


def to_html(md: str) -> str:
    """A small Markdown subset (headings, tables, lists, images, code spans) as one HTML page."""
    import re

    def inline(text: str) -> str:
        text = html.escape(text)
        text = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r'<img alt="\1" src="\2" style="max-width:720px">', text)
        text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
        return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)

    body, in_table, in_list = [], False, False
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if set(line) <= set("|-"):
                continue
            if not in_table:
                body.append("<table>")
                in_table = True
                body.append("<tr>" + "".join(f"<th>{inline(c)}</th>" for c in cells) + "</tr>")
            else:
                body.append("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("- "):
            if not in_list:
                body.append("<ul>")
                in_list = True
            body.append(f"<li>{inline(line[2:])}</li>")
            continue
        if in_list:
            body.append("</ul>")
            in_list = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    if in_table:
        body.append("</table>")
    if in_list:
        body.append("</ul>")
    style = ("body{font-family:sans-serif;max-width:960px;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:3px 6px}"
             "code{background:#f3f3f3}")
    return f"<!doctype html><meta charset='utf-8'><title>assay demo report</title><style>{style}</style>\n" + "\n".join(body) + "\n"


def write_report(out: Path, quick: bool) -> list[Path]:
    md = markdown(out, quick)
    atomic_write_text(out / "report.md", md)
    atomic_write_text(out / "report.html", to_html(md))
    return [out / "report.md", out / "report.html"]
