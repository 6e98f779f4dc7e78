"""The demo's report: every step's results as one page, report.md and report.html.

Reads only what the steps wrote under the run directory (`steps/*.json`, the training
metrics, the evaluation samples), so it can be rebuilt at any time with
`assay demo --steps report --fresh`. Its charts are drawn here, into `report_files/`.

One source of truth: the page is built once as a list of blocks (headings, paragraphs,
lists, tables, figures) whose text is made of spans (plain, bold, code, link, quoted
snippet); `render_markdown` and `render_html` are two printers of that list. Numbers go
through `num` (at most 4 significant digits); paths through `Report.path` (relative to the
run directory, or just a name: no machine path reaches the page). A section appears only
for a step that ran, and says what it did not run.
"""

from __future__ import annotations

import html
import json
import math
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.files import atomic_write_text

FILES_DIR = "report_files"

# ------------------------------------------------------------------ numbers and spans


def num(value: Any, digits: int = 4) -> str:
    """A number for people: at most `digits` significant digits, no trailing zeros, no
    exponent below 10,000 (then a rounded integer); None is an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 10 ** digits:
        return f"{round(value):,}"
    if value == 0:
        return "0"
    text = f"{value:.{digits}g}"
    if "e" in text:  # tiny: keep the exponent, it is still <= 4 significant digits
        return text
    return text


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{num(value, 3)} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest} s"


def percent(share: float | None) -> str:
    return "—" if share is None else f"{num(100 * share, 2)}%"


@dataclass(frozen=True)
class Span:
    kind: str  # text | bold | em | code | link | quote
    text: str
    href: str = ""


def T(text: Any) -> Span:
    return Span("text", str(text))


def B(text: Any) -> Span:
    return Span("bold", str(text))


def I(text: Any) -> Span:  # noqa: E743 - a span constructor, like T and B
    return Span("em", str(text))


def C(text: Any) -> Span:
    return Span("code", str(text))


def L(text: Any, href: str, strong: bool = False) -> Span:
    return Span("strong-link" if strong else "link", str(text), href)


def Q(text: Any) -> Span:
    """Quoted data (a retrieved snippet, a model's answer): shown as it is."""
    return Span("quote", " ".join(str(text).split()))


Inline = list[Span]


def _spans(value: Any) -> Inline:
    if isinstance(value, Span):
        return [value]
    if isinstance(value, list):
        return value
    if isinstance(value, (int, float)) or value is None:
        return [T(num(value))]
    return [T(value)]


@dataclass
class Cell:
    spans: Inline
    best: bool = False
    numeric: bool = False


@dataclass
class Block:
    kind: str  # heading | para | list | table | figure | note
    spans: Inline = field(default_factory=list)
    level: int = 2
    anchor: str = ""
    items: list[Inline] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)
    src: str = ""


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


# ------------------------------------------------------------------ the report


class Report:
    def __init__(self, out: Path, quick: bool) -> None:
        self.out = out
        self.quick = quick
        self.blocks: list[Block] = []
        self.sections: list[tuple[str, str]] = []  # (title, anchor) for the contents
        self._roots = sorted({str(p) for p in (out, out.resolve()) if str(p) not in ("", ".")}, key=len, reverse=True)

    # building
    def heading(self, text: str, level: int = 2) -> None:
        anchor = slug(text)
        if level == 2:
            self.sections.append((text, anchor))
        self.blocks.append(Block("heading", [T(text)], level=level, anchor=anchor))

    def para(self, *spans: Any) -> None:
        self.blocks.append(Block("para", [s for v in spans for s in _spans(v)]))

    def note(self, *spans: Any) -> None:
        self.blocks.append(Block("note", [s for v in spans for s in _spans(v)]))

    def bullets(self, items: list[list[Any] | Span | str]) -> None:
        self.blocks.append(Block("list", items=[[s for v in (it if isinstance(it, list) else [it]) for s in _spans(v)]
                                                for it in items]))

    def table(self, header: list[str], rows: list[list[Any]], best: set[tuple[int, int]] = frozenset()) -> None:
        cells = [[Cell(_spans(v), (r, c) in best, isinstance(v, (int, float)) and not isinstance(v, bool))
                  for c, v in enumerate(row)] for r, row in enumerate(rows)]
        self.blocks.append(Block("table", header=header, rows=cells))

    def figure(self, src: str, caption: str) -> None:
        self.blocks.append(Block("figure", [T(caption)], src=src))

    # paths
    def path(self, value: str | Path | None) -> str:
        """`value` relative to the run directory, or its last component when it is elsewhere
        (a model in a cache, a temporary folder): never a machine path."""
        if not value:
            return ""
        text = str(value)
        for root in self._roots:
            if text == root:
                return "."
            if text.startswith(root.rstrip("/") + "/"):
                return text[len(root.rstrip("/")) + 1:]
        return Path(text).name or text

    def scrub(self, text: str) -> str:
        """Free text with any run-directory path made relative."""
        for root in self._roots:
            text = text.replace(root.rstrip("/") + "/", "").replace(root, ".")
        return text

    def exists(self, rel: str) -> bool:
        return (self.out / rel).exists()


def _load(out: Path, step: str) -> dict[str, Any] | None:
    path = out / "steps" / f"{step}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


STEP_TITLES = {
    "index": "Index and search",
    "retrieval": "Retrieval quality",
    "rewards": "Rewards",
    "train": "Training (GRPO)",
    "evaluate": "Evaluation: base vs trained",
}


def _versions() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = [f"Python {platform.python_version()}"]
    for dist in ("assay", "torch", "transformers", "trl", "sentence-transformers", "faiss-cpu"):
        try:
            out.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            pass
    return out


def _header(rep: Report, steps: dict[str, dict[str, Any] | None]) -> None:
    ran = [name for name, data in steps.items() if data is not None]
    markers = [rep.out / "steps" / f"{name}.json" for name in ran]
    finished = max((m.stat().st_mtime for m in markers), default=time.time())
    total = sum(float(steps[name].get("seconds") or 0) for name in ran)
    rep.blocks.append(Block("heading", [T("assay demo report")], level=1, anchor="assay-demo-report"))
    rep.para(T("The whole platform end to end on one CPU, offline: a corpus indexed and searched, retrieval "
               "measured, model outputs scored by verifiable rewards, a small model trained with those rewards "
               "and evaluated before and after. Every section names the command that reproduces it alone; "
               "paths are relative to the run directory "), C("<run>"), T(" (default "), C("runs/demo"), T(")."))
    kind: Inline = ([T("quick ("), C("assay demo --quick"), T("): a toy model and the first-stage retrievers; "
                      "reranking and HyDE are left to the full demo")] if rep.quick else [T("full ("), C("assay demo"), T(")")])
    rep.bullets([
        [B("Run:"), T(" "), *kind],
        [B("Finished:"), T(" " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(finished)))],
        [B("Total time:"), T(f" {seconds(total)} over {len(ran)} steps ("),
         T(", ".join(f"{name} {seconds(steps[name].get('seconds'))}" for name in ran)), T(")")],
        [B("Versions:"), T(" " + ", ".join(_versions()))],
    ])
    cpu = [steps[name].get("cpu_seconds") for name in ran]
    if cpu and all(c is not None for c in cpu):
        rep.blocks[-1].items.insert(3, [B("CPU time:"), T(f" {seconds(sum(cpu))} (this process and the ones it started; "
                                                          "on a busy machine the wall time above runs longer)")])
    missing = [name for name in STEP_TITLES if steps.get(name) is None]
    if missing:
        rep.note(T("Not run (no results in this run directory): " + ", ".join(missing) + "."))


# ------------------------------------------------------------------ 1. index and search


def _section_index(rep: Report, idx: dict[str, Any]) -> None:
    rep.heading("1. Index and search")
    rep.para(C("assay index <run>/corpus/corpus.jsonl --index <run>/index"), T(f": {num(idx['documents'])} documents "
             f"(CPython's own reference pages, the pydoc topics, and assay's README) split into "
             f"{num(idx['chunks'])} chunks and embedded in {seconds(idx.get('build_seconds'))}."))
    rep.para(T("Then three questions, each searched three ways: "), B("BM25"), T(" (word matching), "), B("dense"),
             T(" (embedding similarity, all-MiniLM-L6-v2) and "), B("hybrid"),
             T(" (both, fused by reciprocal rank). Each passage found is cited once with where it comes from "
               "(document, character range) and its opening words; the ranks say which search found it."))
    by_question: dict[str, list[dict[str, Any]]] = {}
    for a in idx["answers"]:
        by_question.setdefault(a["question"], []).append(a)
    for question, answers in by_question.items():
        rep.heading(question, level=3)
        rep.para(C(f'assay search "{question}" --index <run>/index --k 3 --mode hybrid'))
        found: dict[tuple[str, int, int], dict[str, Any]] = {}
        for a in answers:
            for h in a["hits"]:
                key = (h["doc_id"], h["start"], h["end"])
                entry = found.setdefault(key, {"hit": h, "ranks": {}})
                entry["ranks"][a["mode"]] = h["rank"]
        modes = [a["mode"] for a in answers]
        ordered = sorted(found.items(), key=lambda kv: (min(kv[1]["ranks"].values()), -len(kv[1]["ranks"])))
        items = []
        for (doc, start, end), entry in ordered:
            ranks = ", ".join(f"{m} #{entry['ranks'][m]}" for m in modes if m in entry["ranks"])
            items.append([B(doc), T(f" characters {start}–{end} — found by {ranks}: "), Q(entry["hit"].get("text", ""))])
        rep.bullets(items)
        tops = {a["mode"]: a["hits"][0]["doc_id"] if a["hits"] else None for a in answers}
        if len(set(tops.values())) == 1:
            rep.para(T(f"All three searches put {next(iter(tops.values()))} first."))
        else:
            rep.para(T("The searches disagree on the best passage: "
                       + "; ".join(f"{m} puts {d} first" for m, d in tops.items()) + "."))


# ------------------------------------------------------------------ 2. retrieval


RETRIEVAL_COLUMNS = [  # (key, header, higher is better)
    ("ndcg@10", "nDCG@10", True), ("mrr@10", "MRR@10", True), ("recall@100", "Recall@100", True),
    ("map@100", "MAP@100", True), ("latency_p50_ms", "median ms per query", False), ("qps", "queries/s", True),
]
CONFIG_NOTES = {
    "bm25": "assay's BM25 (word matching)",
    "dense": "embedding similarity (FAISS)",
    "hybrid": "BM25 + dense, reciprocal rank fusion",
    "rank-bm25": "the rank-bm25 library on the same tokens: a reference for assay's BM25",
    "hybrid+rerank": "hybrid, then SmolLM2-135M reorders the top 10",
    "hybrid+hyde": "hybrid searching with a generated answer passage (HyDE)",
}


def _section_retrieval(rep: Report, ret: dict[str, Any]) -> None:
    cfgs: dict[str, dict[str, Any]] = ret["configurations"]
    names = list(cfgs)
    rep.heading("2. Retrieval quality")
    ran_rerank, ran_hyde = any("rerank" in n for n in names), any("hyde" in n for n in names)
    flags = (" --rerank --rerank-depth 10" if ran_rerank else "") + (" --hyde" if ran_hyde else "")
    rep.para(C(f"assay eval retrieval --data <run>/corpus --index <run>/index --compare{flags}"),
             T(f": {num(ret['queries'])} questions, each with the pages judged relevant (graded 2 = answers it, "
               "1 = related). nDCG@10 rewards putting the best pages first; MRR@10 is 1 / rank of the first relevant "
               "page; Recall@100 the share of relevant pages found at all. Bold: the best value in each column."))
    best: set[tuple[int, int]] = set()
    for c, (key, _, higher) in enumerate(RETRIEVAL_COLUMNS, start=1):
        values = [cfgs[n].get(key) for n in names]
        known = [v for v in values if v is not None]
        if known:
            top = max(known) if higher else min(known)
            best |= {(r, c) for r, v in enumerate(values) if v is not None and num(v) == num(top)}
    rows = [[[B(n), T(" — " + CONFIG_NOTES.get(n, ""))] if n in CONFIG_NOTES else n]
            + [cfgs[n].get(key) for key, _, _ in RETRIEVAL_COLUMNS] for n in names]
    rep.table(["configuration"] + [h for _, h, _ in RETRIEVAL_COLUMNS], rows, best)
    src = _retrieval_chart(rep, cfgs)
    if src:
        rep.figure(src, "nDCG@10 per configuration (0 to 1; higher is better).")
    quality = {n: cfgs[n].get("ndcg@10") for n in names if cfgs[n].get("ndcg@10") is not None}
    if quality:
        winner = max(quality, key=quality.get)
        sentence = f"{winner} ranks best (nDCG@10 {num(quality[winner])}"
        if "bm25" in quality and winner != "bm25" and quality["bm25"]:
            sentence += f", {num(100 * (quality[winner] / quality['bm25'] - 1), 2)}% above BM25's {num(quality['bm25'])}"
        sentence += ")"
        fast = {n: cfgs[n].get("latency_p50_ms") for n in names if cfgs[n].get("latency_p50_ms")}
        if "bm25" in fast and winner in fast and winner != "bm25":
            sentence += (f", but BM25 answers in {num(fast['bm25'], 2)} ms where {winner} needs {num(fast[winner], 2)} ms "
                         "(the query has to go through the embedding model)")
        sentence += "."
        if winner in ("dense", "hybrid"):
            sentence += (" Why it matters: questions are worded differently from the pages that answer them, and "
                         "embedding search finds pages that share the meaning but not the words.")
        rep.para(T(sentence))
    if "rank-bm25" in cfgs and "bm25" in cfgs:
        same = all(num(cfgs["bm25"].get(k)) == num(cfgs["rank-bm25"].get(k)) for k in ("ndcg@10", "recall@100", "map@100"))
        text = ("rank-bm25 scores the same as assay's BM25 on every quality measure (a correctness check)" if same
                else "rank-bm25 scores differently from assay's BM25 (they should agree: a bug to report)")
        if cfgs["rank-bm25"].get("qps") and cfgs["bm25"].get("qps"):
            text += f"; assay's answers {num(cfgs['bm25']['qps'] / cfgs['rank-bm25']['qps'], 2)}× as many queries per second"
        rep.para(T(text + "."))
    missing = [what for what, ran in (("Reranking (SmolLM2-135M judging each passage)", ran_rerank),
                                      ("HyDE (searching with a generated answer)", ran_hyde)) if not ran]
    if missing:
        rep.note(T(" and ".join(missing) + (" were" if len(missing) > 1 else " was") + " not run in this "
                   + ("quick run: they take seconds per query on a CPU. The full demo (" if rep.quick else "run. The full demo (")),
                 C("assay demo"), T(") adds " + ("both rows." if len(missing) > 1 else "that row.")))


def _retrieval_chart(rep: Report, cfgs: dict[str, dict[str, Any]]) -> str | None:
    names = [n for n in cfgs if cfgs[n].get("ndcg@10") is not None]
    if not names:
        return None
    plt = _pyplot()
    values = [float(cfgs[n]["ndcg@10"]) for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    _hbars(ax, names, values, xmax=1.0, best=max(values))
    ax.set_xlabel("nDCG@10 (0 = no relevant page in the top 10, 1 = ideal order)")
    ax.set_title("Retrieval quality per configuration")
    return _save(rep, fig, "retrieval.png")


# ------------------------------------------------------------------ 3. rewards


def _formula(spec: str) -> str:
    parts = []
    for item in spec.split(","):
        name, _, weight = item.strip().partition(":")
        parts.append(name if not weight or float(weight) == 1 else f"{num(float(weight))} × {name}")
    return " + ".join(parts)


def _section_rewards(rep: Report, rew: dict[str, Any]) -> None:
    try:
        from assay.demo import _REWARDS_BY_KIND as specs
    except ImportError:  # pragma: no cover - the demo module always ships with the report
        specs = {}
    rep.heading("3. Rewards")
    rep.para(C("assay score --rewards SPEC --input <rows>"), T(" on the hand-written outputs of "),
             C("data/demo/outputs.jsonl"), T(": right, wrong, hedged and reward-hacking answers, each scored with "
                                            "the reason the verifier gave."))
    rows = rew["rows"]
    hacks = [r for r in rows if r["case"].startswith("hack")]
    if hacks:
        rep.para(B(("Both" if len(hacks) == 2 else f"All {len(hacks)}") + " hacking attempts scored 0"), T(" ("
                 + "; ".join(f"{r['case']}: {r['note']}" for r in hacks) + ")."))
    for kind in dict.fromkeys(r["kind"] for r in rows):
        group = [r for r in rows if r["kind"] == kind]
        spec = specs.get(kind)
        rep.heading(f"{kind.capitalize()} outputs", level=3)
        if spec:
            example = next((r for r in group if len(r["rewards"]) > 1 and all(v == 1 for v in r["rewards"].values())), None)
            formula = _formula(spec)
            text = f"total = {formula}"
            if example:
                weights = {}
                for item in spec.split(","):
                    name, _, w = item.strip().partition(":")
                    weights[name] = float(w) if w else 1.0
                text += (f"; a right answer in the right format scores {num(example['score'])} = "
                         + " + ".join(f"{num(weights.get(k, 1.0) * v)} ({k})" for k, v in example["rewards"].items()))
            if "format" in spec:
                text += ". Format is worth a fifth of correctness, so a well-formatted wrong answer never totals as much as a right one."
            rep.para(C(f"--rewards {spec}"), T(": " + text))
        table_rows = []
        for r in group:
            detail: Inline = []
            for i, (name, value) in enumerate(r["rewards"].items()):
                if i:
                    detail.append(T("; "))
                detail += [B(f"{name} {num(value)}"), T(f" — {rep.scrub(str(r['reasons'].get(name, '')))}")]
            table_rows.append([r["case"], r["label"] or "—", r.get("note", ""), r["score"], detail])
        rep.table(["case", "item", "what it tests", "total", "each reward and its reason"], table_rows)


# ------------------------------------------------------------------ 4. training


def _window_means(values: list[float]) -> tuple[int, float, float] | None:
    """(window, mean of the first window, mean of the last): 10 steps each, or half the
    steps when there are fewer than 20 (the two windows never overlap)."""
    if len(values) < 2:
        return None
    w = min(10, len(values) // 2)
    return w, sum(values[:w]) / w, sum(values[-w:]) / w


def _section_train(rep: Report, tr: dict[str, Any], has_eval: bool) -> None:
    s = tr["summary"]
    rep.heading("4. Training (GRPO)")
    sets = "".join(f" --set {o}" for o in tr.get("overrides", []))
    rep.para(C(f"assay train grpo --config {tr['config']} --out <run>/train{sets}"),
             T(": the model writes several answers per prompt, the reward harness scores them, and GRPO moves the "
               "model towards the answers that scored above their group's average."))
    metrics = _jsonl(rep.out / "train" / "metrics.jsonl")
    steps = [m for m in metrics if "reward" in m and "step" in m]
    rewards = [float(m["reward"]) for m in steps]
    items: list[list[Any]] = [
        [B("Steps:"), T(f" {num(s.get('logged_steps') or len(steps))}, {seconds(s.get('seconds_per_step'))} per step"
                         + (f", peak memory {num(s['peak_mem_mb'] / 1024, 3)} GB" if s.get("peak_mem_mb") else ""))],
    ]
    window = _window_means(rewards)
    if window:
        w, first, last = window
        items.append([B("Mean reward:"), T(f" first {w} steps {num(first, 3)} → last {w} steps {num(last, 3)}"
                                            + (f" (of {len(rewards)} steps)" if len(rewards) < 20 else ""))])
    elif s.get("reward_first10") is not None:
        items.append([B("Mean reward:"), T(f" first steps {num(s['reward_first10'], 3)} → last steps {num(s['reward_last10'], 3)}")])
    before, after = s.get("heldout_reward_before"), s.get("heldout_reward_after")
    held_n = _json(rep.out / "train" / "eval_before.json").get("n")
    if before is not None and after is not None:
        items.append([B("Held-out reward (the trainer's own check): "),
                      T(f"{num(before, 3)} before training → {num(after, 3)} after, on "
                        f"{num(held_n) if held_n else 'the'} held-out prompts of the training task")])
    if s.get("reward_share") is not None:
        items.append([B("Reward scoring:"), T(f" {percent(s['reward_share'])} of the step time (the rest is generation "
                                               "and the gradient step)")])
    weights = _train_reward_weights(rep.out / "train" / "config.yaml")
    formula = " + ".join(n if w == 1 else f"{num(w)} × {n}" for n, w in weights.items())
    if weights:
        items.insert(0, [B("Reward:"), T(f" {formula}" + (" (the total: the curve's black line)" if len(weights) > 1 else "")
                                       + "; GRPO compares each completion's reward with the mean of its group")])
    rep.bullets(items)
    src = _reward_chart(rep, steps, window, formula)
    if src:
        rep.figure(src, "Reward per training step (mean over the step's completions), one line per reward; the shaded "
                        "windows are the first and last steps averaged above. Below: how far the model has moved from "
                        "where it started.")
    if has_eval and before is not None:
        rep.para(T("Two held-out figures appear in this report: the one above is computed by the trainer itself, "
                   "on prompts set aside from the training data, with the training reward; section 5 is a separate "
                   "benchmark run afterwards by "), C("assay eval"),
                 T(" on new problems (its own seed), base and trained model alike, as accuracy. They measure the same "
                   "skill on different problems, so they need not match exactly."))


def _train_reward_weights(path: Path) -> dict[str, float]:
    """{reward name: weight} from the training run's resolved config.yaml ({} if unreadable)."""
    if not path.exists():
        return {}
    try:
        import yaml

        rewards = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("rewards") or []
        return {str(r["name"]): float(r.get("weight", 1.0)) for r in rewards if isinstance(r, dict) and "name" in r}
    except Exception:  # noqa: BLE001 - unreadable or odd YAML: the report goes on without the formula
        return {}


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _reward_chart(rep: Report, steps: list[dict[str, Any]], window, formula: str = "") -> str | None:
    if not steps:
        return None
    plt = _pyplot()
    x = [int(m["step"]) for m in steps]
    per_reward = sorted({k[len("rewards/"):-len("/mean")] for m in steps for k in m
                         if k.startswith("rewards/") and k.endswith("/mean")})
    has_kl = any(m.get("kl") is not None for m in steps)
    fig, axes = plt.subplots(2 if has_kl else 1, 1, figsize=(7.5, 5.2 if has_kl else 3.4), sharex=True,
                             gridspec_kw={"height_ratios": [2, 1]} if has_kl else None)
    ax = axes[0] if has_kl else axes
    for name in per_reward:
        ax.plot(x, [m.get(f"rewards/{name}/mean") for m in steps], marker="o", ms=3, lw=1.4, label=f"{name} reward")
    if len(per_reward) != 1:
        ax.plot(x, [m.get("reward") for m in steps], color="black", lw=2, label=f"total = {formula}" if formula else "total (weighted sum)")
    if window:
        w, first, last = window
        ax.axvspan(x[0] - 0.5, x[w - 1] + 0.5, color="#d9534f", alpha=0.08)
        ax.axvspan(x[-w] - 0.5, x[-1] + 0.5, color="#5cb85c", alpha=0.10)
        ax.hlines([first], x[0], x[w - 1], colors="#d9534f", linestyles="--", lw=1.2, label=f"mean, first {w} steps")
        ax.hlines([last], x[-w], x[-1], colors="#2e7d32", linestyles="--", lw=1.2, label=f"mean, last {w} steps")
    single = len(per_reward) == 1 and per_reward[0] in ("math", "code", "exact_match", "qa")
    ax.set_ylabel("mean reward per completion" + ("\n(0 = wrong, 1 = right)" if single else ""))
    ax.set_title("GRPO training: reward per step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if has_kl:
        kx = axes[1]
        kx.plot(x, [m.get("kl") for m in steps], color="#7b5ea7", lw=1.2, marker=".", ms=3)
        kx.set_ylabel("KL to the start\n(nats per token)")
        kx.grid(alpha=0.3)
        kx.set_title("Distance from the starting model", fontsize=10)
    (axes[-1] if has_kl else ax).set_xlabel("training step")
    return _save(rep, fig, "reward_curve.png")


# ------------------------------------------------------------------ 5. evaluation


def _section_evaluate(rep: Report, ev: dict[str, Any]) -> None:
    rep.heading("5. Evaluation: base vs trained")
    suite = rep.path(ev.get("suite")) or "eval/suite.yaml"
    base, trained = ev["base"], ev["trained"]
    rep.para(C(f"assay eval run <run>/{suite} --model MODEL --out <run>/eval/base"), T(" (and "), C("…/eval/trained"),
             T("), then "), C("assay eval compare <run>/eval/base <run>/eval/trained"),
             T(f": the model before and after training on the same {num(base.get('n'))} held-out problems "
               f"({base.get('suite', 'suite')}), greedy decoding, scored by the math verifier."))
    best_acc = max(base.get("accuracy") or 0, trained.get("accuracy") or 0)
    rows, best = [], set()
    for r, (label, sm) in enumerate((("base", base), ("trained", trained))):
        rows.append([label, rep.path(sm.get("model")), sm.get("n"), sm.get("accuracy"), sm.get("time", {}).get("total_s")])
        if sm.get("accuracy") == best_acc:
            best.add((r, 3))
    rep.table(["model", "weights", "problems", "accuracy", "time (s)"], rows, best)
    src = _eval_chart(rep, ev)
    if src:
        rep.figure(src, "Held-out accuracy before and after training, on one scale (0 to 1), with how many problems "
                        "changed from wrong to right and back.")
    d_acc = (trained.get("accuracy") or 0) - (base.get("accuracy") or 0)
    rep.para(T(f"Training moved accuracy from {num(base.get('accuracy'), 3)} to {num(trained.get('accuracy'), 3)} "
               f"({'+' if d_acc >= 0 else ''}{num(d_acc, 3)}). "
               "The reward the model was trained on is the same verifier that grades it here, so this is the "
               "harness doing its job end to end, on problems that were not in the training data."))
    for name, comp in ev.get("compare", {}).get("suites", {}).items():
        flips = comp.get("flips", {})
        rep.heading(f"Problems that changed ({name})", level=3)
        rep.para(T(f"{num(flips.get('wrong_to_right', 0))} went wrong → right, "
                   f"{num(flips.get('right_to_wrong', 0))} right → wrong."))
        table = _flip_rows(rep)
        if table:
            shown = table[:10]
            rep.table(["#", "question", "gold", "base answer", "trained answer", "why"], shown)
            if len(table) > len(shown):
                rep.para(T(f"… and {len(table) - len(shown)} more: every answer is in "),
                         L("eval/base/samples.jsonl", "eval/base/samples.jsonl"), T(" and "),
                         L("eval/trained/samples.jsonl", "eval/trained/samples.jsonl"), T("."))


def _flip_rows(rep: Report) -> list[list[Any]]:
    base = {str(r["id"]): r for r in _jsonl(rep.out / "eval" / "base" / "samples.jsonl")}
    trained = {str(r["id"]): r for r in _jsonl(rep.out / "eval" / "trained" / "samples.jsonl")}
    gold_rows = _jsonl(rep.out / "eval" / "heldout.jsonl")
    gold = {str(r.get("id", i)): r for i, r in enumerate(gold_rows)}
    rows = []
    for key, b in base.items():
        t = trained.get(key)
        if t is None or (b.get("score") or 0) == (t.get("score") or 0):
            continue
        g = gold.get(key, {})
        question = g.get("question") or (b["prompt"] if isinstance(b.get("prompt"), str) else "")
        direction = "wrong → right" if (t.get("score") or 0) > (b.get("score") or 0) else "right → wrong"
        why = [T(f"{direction}. base: "), T(rep.scrub(str(b.get("reason", "")))), T("; trained: "),
               T(rep.scrub(str(t.get("reason", ""))))]
        rows.append([key, [Q(question)], [Q(g.get("answer", "—"))], [Q(b.get("extracted") or b.get("completion", ""))],
                     [Q(t.get("extracted") or t.get("completion", ""))], why])
    return rows


def _eval_chart(rep: Report, ev: dict[str, Any]) -> str | None:
    base, trained = ev["base"].get("accuracy"), ev["trained"].get("accuracy")
    if base is None or trained is None:
        return None
    plt = _pyplot()
    fig, (ax, fx) = plt.subplots(1, 2, figsize=(8.5, 2.6), gridspec_kw={"width_ratios": [3, 2]})
    n = ev["base"].get("n")
    notes = [f"{round(float(a) * n)} of {n} right" for a in (base, trained)] if n else None
    _hbars(ax, ["base", "trained"], [float(base), float(trained)], xmax=1.0, best=max(base, trained),
           colors=["#8c8c8c", "#2e7d32"], notes=notes)
    ax.set_xlabel(f"accuracy on {num(ev['base'].get('n'))} held-out problems (0 to 1)")
    ax.set_title("Base vs trained, same scale")
    flips = next(iter(ev.get("compare", {}).get("suites", {}).values()), {}).get("flips", {})
    counts = [int(flips.get("wrong_to_right", 0)), int(flips.get("right_to_wrong", 0))]
    _hbars(fx, ["wrong → right", "right → wrong"], [float(c) for c in counts], xmax=max(1, ev["base"].get("n") or max(counts)),
           colors=["#2e7d32", "#c62828"], integer=True)
    fx.set_xlabel("problems")
    fx.set_title("Answers that changed")
    fig.tight_layout()
    return _save(rep, fig, "base_vs_trained.png")


# ------------------------------------------------------------------ charts


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _hbars(ax, labels: list[str], values: list[float], *, xmax: float, best: float | None = None,
           colors: list[str] | None = None, integer: bool = False, notes: list[str] | None = None) -> None:
    """Horizontal bars with their values written beside them; a zero is drawn as a thin
    outlined stub and labelled, so a bar of 0 is visibly there, not missing."""
    stub = xmax * 0.006
    ys = list(range(len(labels)))[::-1]
    for i, (y, v) in enumerate(zip(ys, values)):
        color = colors[i] if colors else ("#2e7d32" if best is not None and num(v) == num(best) else "#5b7fb3")
        ax.barh(y, max(v, stub), color=color, edgecolor="#333333", linewidth=0.8, height=0.6)
        text = str(int(round(v))) if integer else num(v, 3)
        if notes:
            text += f" ({notes[i]})"
        elif v == 0:
            text += " (none)"
        ax.text(max(v, stub) + xmax * 0.015, y, text, va="center", fontsize=9)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels)
    ax.set_xlim(0, xmax * (1.5 if notes else 1.18))
    ax.set_xticks([t for t in ax.get_xticks() if 0 <= t <= xmax])  # no scale past the largest possible value
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)


def _save(rep: Report, fig, name: str) -> str:
    from core.files import atomic_open

    folder = rep.out / FILES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    with atomic_open(folder / name, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110, metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f"{FILES_DIR}/{name}"


# ------------------------------------------------------------------ files


FILE_NOTES = {
    "steps": "each step's results (what this report is built from)",
    "corpus": "the indexed corpus, questions and relevance judgements (BEIR layout)",
    "index": "the search index (open it with assay search --index)",
    "train": "training: config, per-step metrics, curves, samples, the trained model",
    "eval": "evaluation: the suite, the held-out problems, per-model summaries, samples and sub-reports",
    FILES_DIR: "this report's charts",
}
_SKIP_UNDER = ("index/v", "train/checkpoints/", "train/model/", "train/merged/")


def _section_files(rep: Report) -> None:
    rep.heading("Run files")
    rep.para(T("Everything the demo wrote, relative to the run directory (sub-reports in bold)."))
    files = sorted(p.relative_to(rep.out).as_posix() for p in rep.out.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(rep.out).parts))
    groups: dict[str, list[str]] = {}
    for rel in files:
        if rel in ("report.md", "report.html"):
            continue
        top = rel.split("/", 1)[0] if "/" in rel else ""
        groups.setdefault(top, []).append(rel)
    items = []
    for top, rels in groups.items():
        shown = [r for r in rels if not r.startswith(_SKIP_UNDER)]
        folded = sorted({"/".join(r.split("/")[:2]) + "/" for r in rels if r.startswith(_SKIP_UNDER)})
        spans: Inline = [B(f"{top}/") if top else B("(top level)")]
        if top in FILE_NOTES:
            spans.append(T(f" — {FILE_NOTES[top]}: "))
        else:
            spans.append(T(": "))
        for i, rel in enumerate(shown + folded):
            if i:
                spans.append(T(", "))
            name = rel[len(top) + 1:] if top else rel
            spans.append(L(name, rel, strong=rel.endswith("report.md")))
        items.append(spans)
    rep.bullets(items)


# ------------------------------------------------------------------ renderers


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def _md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_inline(spans: Inline) -> str:
    out = []
    for s in spans:
        if s.kind == "text":
            out.append(_md_escape(s.text))
        elif s.kind == "bold":
            out.append(f"**{_md_escape(s.text)}**")
        elif s.kind == "em":
            out.append(f"*{_md_escape(s.text)}*")
        elif s.kind == "code":
            fence = "``" if "`" in s.text else "`"
            out.append(f"{fence}{s.text}{fence}")
        elif s.kind in ("link", "strong-link"):
            strong = "**" if s.kind == "strong-link" else ""
            out.append(f"{strong}[{_md_escape(s.text)}]({s.href}){strong}")
        elif s.kind == "quote":
            out.append(f"“{_md_escape(s.text)}”")
    return "".join(out).replace("\n", " ")


def render_markdown(rep: Report) -> str:
    lines: list[str] = []
    facts = _header_end(rep)
    for i, b in enumerate(rep.blocks):
        if b.kind == "heading":
            lines += ["#" * b.level + " " + _md_inline(b.spans), ""]
        elif b.kind == "para":
            lines += [_md_inline(b.spans), ""]
        elif b.kind == "note":
            lines += ["> " + _md_inline(b.spans), ""]
        elif b.kind == "list":
            lines += [f"- {_md_inline(item)}" for item in b.items] + [""]
        elif b.kind == "table":
            lines.append("| " + " | ".join(_md_escape(h) for h in b.header) + " |")
            lines.append("|" + "".join("---:|" if any(r[c].numeric for r in b.rows) else "---|"
                                       for c in range(len(b.header))))
            for row in b.rows:
                cells = []
                for cell in row:
                    text = _md_inline(cell.spans)
                    cells.append(f"**{text}**" if cell.best else text)
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        elif b.kind == "figure":
            caption = _md_inline(b.spans)
            lines += [f"![{caption}]({b.src})", "", f"*{caption}*", ""]
        if i == facts:
            lines += _md_contents(rep)
    return "\n".join(lines).rstrip() + "\n"


def _header_end(rep: Report) -> int:
    """Index of the run-facts list: the contents follow it."""
    return next((i for i, b in enumerate(rep.blocks) if b.kind == "list"), 0)


def _md_contents(rep: Report) -> list[str]:
    if not rep.sections:
        return []
    return ["**Contents:** " + " · ".join(f"[{_md_escape(t)}](#{a})" for t, a in rep.sections), ""]


def _html_inline(spans: Inline) -> str:
    out = []
    for s in spans:
        t = html.escape(s.text)
        if s.kind == "text":
            out.append(t)
        elif s.kind == "bold":
            out.append(f"<strong>{t}</strong>")
        elif s.kind == "em":
            out.append(f"<em>{t}</em>")
        elif s.kind == "code":
            out.append(f"<code>{t}</code>")
        elif s.kind in ("link", "strong-link"):
            link = f'<a href="{html.escape(s.href, quote=True)}">{t}</a>'
            out.append(f"<strong>{link}</strong>" if s.kind == "strong-link" else link)
        elif s.kind == "quote":
            out.append(f'<span class="quote">“{t}”</span>')
    return "".join(out)


CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1f2328;
 max-width:1000px;margin:2em auto;padding:0 1.2em}
h1{font-size:1.9em;margin-bottom:.2em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em;margin-top:1.4em}
nav{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.5em 1em;margin:1em 0}
nav ol{margin:.3em 0;padding-left:1.4em}
table{border-collapse:collapse;font-size:90%;margin:.6em 0;width:100%}
td,th{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.best{background:#dafbe1;font-weight:600}tr:nth-child(even) td:not(.best){background:#fbfcfd}
code{background:#eff1f3;padding:.1em .3em;border-radius:4px;font-size:88%}
.quote{color:#57606a;font-style:italic}
.note{background:#fff8c5;border:1px solid #d4a72c66;border-radius:6px;padding:.5em 1em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #d0d7de;border-radius:4px}
figcaption{color:#57606a;font-size:90%}
ul.facts{list-style:none;padding-left:0}
"""


def render_html(rep: Report) -> str:
    body: list[str] = []
    facts = _header_end(rep)
    for i, b in enumerate(rep.blocks):
        if b.kind == "heading":
            body.append(f'<h{b.level} id="{b.anchor}">{_html_inline(b.spans)}</h{b.level}>')
        elif b.kind == "para":
            body.append(f"<p>{_html_inline(b.spans)}</p>")
        elif b.kind == "note":
            body.append(f'<p class="note">{_html_inline(b.spans)}</p>')
        elif b.kind == "list":
            cls = ' class="facts"' if i == facts else ""
            body.append(f"<ul{cls}>" + "".join(f"<li>{_html_inline(it)}</li>" for it in b.items) + "</ul>")
            if i == facts and rep.sections:
                body.append("<nav><strong>Contents</strong><ol>" + "".join(
                    f'<li><a href="#{a}">{html.escape(t)}</a></li>' for t, a in rep.sections) + "</ol></nav>")
        elif b.kind == "table":
            numeric = [any(r[c].numeric for r in b.rows) for c in range(len(b.header))]
            rows = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in b.header) + "</tr>"]
            for row in b.rows:
                cells = []
                for c, cell in enumerate(row):
                    cls = " ".join(x for x, on in (("num", numeric[c]), ("best", cell.best)) if on)
                    cells.append(f'<td class="{cls}">' if cls else "<td>")
                    cells[-1] += _html_inline(cell.spans) + "</td>"
                rows.append("<tr>" + "".join(cells) + "</tr>")
            body.append("<table>" + "".join(rows) + "</table>")
        elif b.kind == "figure":
            caption = _html_inline(b.spans)
            body.append(f'<figure><img src="{html.escape(b.src, quote=True)}" alt="{html.escape(b.spans[0].text, quote=True)}">'
                        f"<figcaption>{caption}</figcaption></figure>")
    return ("<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>assay demo report</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# ------------------------------------------------------------------ front door


def build(out: Path, quick: bool) -> Report:
    out = Path(out)
    rep = Report(out, quick)
    steps = {name: _load(out, name) for name in STEP_TITLES}
    _header(rep, steps)
    if steps["index"] is not None:
        _section_index(rep, steps["index"])
    if steps["retrieval"] is not None:
        _section_retrieval(rep, steps["retrieval"])
    if steps["rewards"] is not None:
        _section_rewards(rep, steps["rewards"])
    if steps["train"] is not None:
        _section_train(rep, steps["train"], has_eval=steps["evaluate"] is not None)
    if steps["evaluate"] is not None:
        _section_evaluate(rep, steps["evaluate"])
    _section_files(rep)
    return rep


def markdown(out: Path, quick: bool) -> str:
    return render_markdown(build(out, quick))


def write_report(out: Path, quick: bool) -> list[Path]:
    rep = build(Path(out), quick)
    atomic_write_text(rep.out / "report.md", render_markdown(rep))
    atomic_write_text(rep.out / "report.html", render_html(rep))
    return [rep.out / "report.md", rep.out / "report.html"]
