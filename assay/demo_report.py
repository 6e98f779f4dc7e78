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
from rewards.conventions import cited_passages, claim

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

    def add_root(self, root: str | Path) -> None:
        """Another name of the run directory: where it was when a step recorded its paths
        (a run directory moved or copied after the run)."""
        text = str(root).rstrip("/")
        if text and text not in ("", ".") and text not in self._roots:
            self._roots = sorted([*self._roots, text], key=len, reverse=True)

    def scrub(self, text: str, run: str = "") -> str:
        """Free text with any run-directory path made relative (or, given `run`, written
        from that placeholder: `<run>/world`, as in a command)."""
        for root in self._roots:
            text = text.replace(root.rstrip("/") + "/", f"{run}/" if run else "").replace(root, run or ".")
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
    "world": "A knowledge world",
    "train": "Training: answering from passages (SFT)",
    "evaluate": "Evaluation: base vs trained, same retrieval",
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
               "measured, model outputs scored by verifiable rewards; then a world of invented entities written "
               "and indexed, a model trained to answer its questions from retrieved passages and cite them (or "
               "say the passages do not say), and that model evaluated against the one it started from, with the "
               "same retrieval, on entities it never saw. Every section names the command that reproduces it "
               "alone; paths are relative to the run directory "), C("<run>"), T(" (default "), C("runs/demo"), T(")."))
    kind: Inline = ([T("quick ("), C("assay demo --quick"), T("): a small world, a tiny random model trained for a "
                      "few steps (it shows the training path, not the skill) and the first-stage retrievers; "
                      "reranking and training SmolLM2 are left to the full demo, HyDE to --hyde")]
                    if rep.quick else [T("full ("), C("assay demo"), T(")")])
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


def _fusion(rep: Report) -> tuple[str, str]:
    """(short, long) description of how hybrid search fuses BM25 and dense: the fusion the
    run's index records (rag.fusion.FusionConfig, as `search` uses it), else the default."""
    from rag.fusion import FusionConfig

    manifest = _json(rep.out / "index" / "manifest.json")
    recorded = (manifest.get("config") or {}).get("fusion")
    try:
        cfg = FusionConfig.from_manifest(recorded) if isinstance(recorded, dict) else FusionConfig()
    except Exception:  # noqa: BLE001 - an unreadable manifest: describe the default
        cfg = FusionConfig()
    if cfg.method == "rrf":
        return "reciprocal rank fusion", f"fused by reciprocal rank: each passage scores 1 / ({cfg.rrf_k} + its rank) per search"
    scale = "standardised to mean 0 and sd 1" if cfg.normalization == "zscore" else "scaled to 0–1"
    short = "z-score fusion" if cfg.normalization == "zscore" else "min-max score fusion"
    if cfg.weighting == "confidence":
        short = "confidence-weighted " + short
    long = f"combined by {short}: per query each search's scores are {scale} and added"
    if cfg.weighting == "confidence":
        long += ", each search weighted by how far its top score stands out of its own list"
    return short, long



def _section_index(rep: Report, idx: dict[str, Any]) -> None:
    rep.heading("1. Index and search")
    rep.para(C("assay index <run>/corpus/corpus.jsonl --index <run>/index"), T(f": {num(idx['documents'])} documents "
             f"(CPython's own reference pages, the pydoc topics, and assay's README) split into "
             f"{num(idx['chunks'])} chunks and embedded in {seconds(idx.get('build_seconds'))}."))
    rep.para(T("Then three questions, each searched three ways: "), B("BM25"), T(" (word matching), "), B("dense"),
             T(" (embedding similarity, all-MiniLM-L6-v2) and "), B("hybrid"),
             T(f" (both, {_fusion(rep)[1]}). Each passage found is cited once with where it comes from "
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
    notes = {**CONFIG_NOTES, "hybrid": f"BM25 + dense, {_fusion(rep)[0]}"}
    rows = [[[B(n), T(" — " + notes[n])] if n in notes else n]
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
            ratio = cfgs["bm25"]["qps"] / cfgs["rank-bm25"]["qps"]
            text += (f"; assay's answers {num(ratio, 2)}× as many queries per second" if abs(ratio - 1) > 0.1
                     else "; the two answer about as many queries per second")
        rep.para(T(text + "."))
    missing = [what for what, ran in (("Reranking (SmolLM2-135M judging each passage)", ran_rerank),
                                      ("HyDE (searching with a generated answer)", ran_hyde)) if not ran]
    if missing:  # the full demo reranks; HyDE (minutes on a CPU) is asked for with --hyde
        rep.note(T(" and ".join(missing) + (" were" if len(missing) > 1 else " was") + " not run in this "
                   + ("quick run: they take seconds per query on a CPU. " if rep.quick else "run. ")),
                 *([C("assay demo"), T(" adds reranking; ")] if not ran_rerank else []),
                 C("assay demo --hyde"), T(" adds HyDE."))


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
    specs = rew.get("specs") or {}  # what the rewards step scored with, as it wrote it
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


# ------------------------------------------------------------------ 4. a knowledge world

QUESTION_TYPES = ("single", "two_hop", "comparison", "unanswerable")
RETRIEVERS = {"bm25": "BM25", "dense": "dense search", "hybrid": "hybrid search"}


def _world_spec(steps: dict[str, dict[str, Any] | None]) -> str:
    """The world task the demo trained and evaluated on (`world:DIR:…:k=3:types=…`), or ""."""
    if steps.get("evaluate") and steps["evaluate"].get("task"):
        return str(steps["evaluate"]["task"])
    for o in (steps.get("train") or {}).get("overrides", []):
        if o.startswith("data.source="):
            return o.partition("=")[2]
    return ""


def _spec_option(spec: str, key: str, default: str) -> str:
    found = re.search(rf"(?:^|:){key}=([^:]+)", spec)
    return found.group(1) if found else default


def _excerpt(text: str, focus: list[str] | tuple[str, ...] = (), chars: int = 150) -> str:
    """A passage's opening words; when it holds one of `focus` (a gold answer) further on,
    the opening, then the sentence that holds it."""
    flat = " ".join(str(text).split())
    if len(flat) <= chars:
        return flat
    lower = flat.lower()
    for f in focus:
        at = lower.find(str(f).lower()) if f else -1
        if at < 0:
            continue
        if at + len(f) <= chars - 2:
            break
        start = flat.rfind(". ", 0, at)
        start = 0 if start < 0 else start + 2
        end = flat.find(". ", at)
        sentence = flat[start:] if end < 0 else flat[start:end + 1]
        return f"{_cut(flat, max(30, chars - len(sentence) - 3))} … {sentence}"
    return _cut(flat, chars - 1) + "…"


def _cut(text: str, chars: int) -> str:
    """The first `chars` characters of `text`, back to the last whole word."""
    head = text[:chars + 1]
    return (head.rsplit(" ", 1)[0] if " " in head and len(text) > chars else head[:chars]).rstrip(" ,;:")


def _holds(text: str, answers: list[str]) -> bool:
    from tasks.rag_qa_metrics import answer_supported

    return any(answer_supported(a, [text]) for a in answers)


def _section_world(rep: Report, world: dict[str, Any], spec: str) -> None:
    sizes, counts = world.get("sizes") or {}, world.get("counts") or {}
    retriever = RETRIEVERS.get(_spec_option(spec, "retriever", "bm25"), "BM25")
    k = _spec_option(spec, "k", "3")
    rep.heading("4. A knowledge world")
    rep.para(C(f"assay data world --out <run>/world --seed 0 --docs {sizes.get('docs')} --questions {sizes.get('questions')}"),
             T(" then "), C("assay index <run>/world/corpus.jsonl --index <run>/world/index"),
             T(f": {num(sizes.get('docs'))} documents about invented people, towns, organisations and works, "
               f"{num(sum(counts.values()))} questions about them, and the documents indexed in "
               f"{seconds(world.get('index_seconds'))}."))
    rep.para(B("Why invent a world:"), T(" no model has read about these entities, so a model asked without the "
             "passages (closed book) cannot know the answers: a right answer has to come from what retrieval shows "
             "it. And the world is split by entity: the test questions are about entities that no training question "
             "mentions, so section 6 measures reading and citing, not answers remembered from training."))
    types = [t for t in QUESTION_TYPES if any(key.endswith(f"/{t}") for key in counts)]
    types += sorted({key.split("/", 1)[1] for key in counts} - set(types))
    rows = []
    for split in ("train", "dev", "test"):
        row = [counts.get(f"{split}/{t}", 0) for t in types]
        if any(row):
            rows.append([split, *row, sum(row)])
    if rows:
        rep.table(["split", *[t.replace("_", "-") for t in types], "total"], rows)
    used = _spec_option(spec, "types", "").split(",") if _spec_option(spec, "types", "") else []
    left = [t for t in types if used and t not in used]
    if left:
        why = (": a two-hop question's answer sits in a document the question does not name, found only by a second "
               "search, which one-shot retrieval rarely shows" if left == ["two_hop"] else "")
        rep.para(T(f"Training and evaluation here use {', '.join(t.replace('_', '-') for t in used)} questions; "
                   f"{', '.join(t.replace('_', '-') for t in left)} ones are left out{why}."))
    ex = world.get("example")
    if ex:
        answers = [str(a) for a in ex.get("answers") or []]
        rep.para(T("A test question: "), Q(ex.get("question", "")), T(" (gold: "),
                 Q(answers[0]) if answers else T("none, it is unanswerable"),
                 T(f"). The {k} passages {retriever} retrieves for it from the world's index, numbered as the "
                   "prompt shows them:"))
        items = []
        for n, (doc, text) in enumerate(zip(ex.get("retrieved") or [], ex.get("contexts") or []), 1):
            holds = bool(answers) and _holds(text, answers)
            items.append([B(f"[{n}] {doc}"), T(" (holds the answer): " if holds else ": "), Q(_excerpt(text, answers))])
        rep.bullets(items)


def _target(row: dict[str, Any]) -> str:
    """The SFT target for a retrieve-mode row, by the rule of tasks.rag_qa.RagQA.target: the
    first gold answer with the passages that hold it cited, else the abstention."""
    from tasks.rag_qa import ABSTAIN_TEXT

    answers = [str(a) for a in row.get("answers") or []]
    holds = [n for n, text in enumerate(row.get("contexts") or [], 1) if answers and _holds(text, answers)]
    gold = {str(g) for g in row.get("gold_docs") or []}
    shown_gold = [n for n, d in enumerate(row.get("retrieved") or [], 1) if str(d) in gold]
    cites = [n for n in holds if n in shown_gold] or holds
    return f"{answers[0]} {''.join(f'[{n}]' for n in cites)}" if cites else ABSTAIN_TEXT


# ------------------------------------------------------------------ 5. training


def _window_means(values: list[float]) -> tuple[int, float, float] | None:
    """(window, mean of the first window, mean of the last): 10 steps each, or half the
    steps when there are fewer than 20 (the two windows never overlap)."""
    if len(values) < 2:
        return None
    w = min(10, len(values) // 2)
    return w, sum(values[:w]) / w, sum(values[-w:]) / w


def _yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except Exception:  # noqa: BLE001 - unreadable or odd YAML: the report goes on without it
        return {}


def _train_settings(rep: Report, tr: dict[str, Any]) -> dict[str, Any]:
    """The training run's resolved config (train/config.yaml), else the recipe with the
    demo's --set overrides applied."""
    cfg = _yaml(rep.out / "train" / "config.yaml")
    if cfg:
        return cfg
    from assay import REPO_ROOT

    cfg = _yaml(REPO_ROOT / str(tr.get("config", ""))) if tr.get("config") else {}
    for o in tr.get("overrides", []):
        key, _, value = o.partition("=")
        *parents, last = key.split(".")
        node = cfg
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        try:
            import yaml

            node[last] = yaml.safe_load(value)
        except Exception:  # noqa: BLE001 - not YAML: keep the text
            node[last] = value
    return cfg


def _section_train(rep: Report, tr: dict[str, Any], world: dict[str, Any] | None, spec: str) -> None:
    s = tr.get("summary") or {}
    cfg = _train_settings(rep, tr)
    model = str((cfg.get("model") or {}).get("name") or "the model")
    lora, sft = cfg.get("lora") or {}, cfg.get("sft") or {}
    toy = model.startswith("toy:")
    metrics = _jsonl(rep.out / "train" / "metrics.jsonl")
    steps = [m for m in metrics if m.get("loss") is not None and "step" in m]
    n_steps = s.get("logged_steps") or len(steps)
    rep.heading("5. Training: answering from passages (SFT)")
    sets = "".join(f" --set {rep.scrub(o, '<run>')}" for o in tr.get("overrides", []))
    rep.para(C(f"assay train sft --config {tr.get('config')} --out <run>/train{sets}"),
             T(": supervised fine-tuning on the world's training questions. Each prompt is the top "
               f"{_spec_option(spec, 'k', '3')} passages retrieved for the question, numbered [1], [2], …, then "
               "the question; the target is the short gold answer followed by the citation of the passage that "
               "holds it, or "), Q("The passages do not say."),
             T(" when the question is unanswerable or no shown passage holds the answer. The loss falls on the "
               "target only, never on the prompt."))
    ex = (world or {}).get("example")
    if ex and ex.get("contexts"):
        rep.para(T("For the test question of section 4 (never trained on) the target would be "), Q(_target(ex)), T("."))
    if toy:
        rep.note(B("Quick run: this model only shows the path."),
                 T(f" {model} is a tiny model with random weights, trained whole for {num(n_steps)} steps: the "
                   "world's prompts, the training loop, a saved model and its evaluation, end to end in seconds. It is "
                   "not expected to learn the task, and its answers in section 6 are noise. The full demo ("),
                 C("assay demo"), T(f") trains SmolLM2-135M-Instruct with LoRA for {tr.get('full_run_steps') or 'a few dozen'} steps."))
    if lora.get("enabled"):
        weights = f" with LoRA adapters (rank {lora.get('r')}; the model's own weights stay frozen)"
    else:
        weights = " (random weights), every weight trained" if toy else ", every weight trained"
    items: list[list[Any]] = [[B("Model:"), T(f" {model}{weights}")]]
    used = _spec_option(spec, "types", "")
    counts = (world or {}).get("counts") or {}
    n_train = sum(c for key, c in counts.items() if key.startswith("train/") and (not used or key[6:] in used.split(",")))
    if n_train:
        items.append([B("Data:"), T(f" {num(n_train)} questions of the world's train split"
                                     + (f" ({used.replace(',', ', ')})" if used else "") + "; no test entity appears in them")])
    batch = sft.get("per_device_train_batch_size")
    items.append([B("Steps:"), T(f" {num(n_steps)}" + (f" ({num(batch)} prompts each)" if batch else "")
                                  + f", {seconds(s.get('seconds_per_step'))} per step"
                                  + (f", peak memory {num(s['peak_mem_mb'] / 1024, 3)} GB" if s.get("peak_mem_mb") else ""))])
    window = _window_means([float(m["loss"]) for m in steps])
    if window:
        w, first, last = window
        change = f" ({num(abs(100 * (last / first - 1)), 2)}% {'lower' if last < first else 'higher'})" if first else ""
        items.append([B("Loss:"), T(f" mean of the first {w} steps {num(first, 3)} → last {w} steps {num(last, 3)}{change}"
                                     + (f", of {len(steps)} steps" if len(steps) < 20 else ""))])
    elif s.get("loss_first10") is not None:
        items.append([B("Loss:"), T(f" first steps {num(s['loss_first10'], 3)} → last steps {num(s.get('loss_last10'), 3)}")])
    accuracy = _window_means([float(m["mean_token_accuracy"]) for m in steps if m.get("mean_token_accuracy") is not None])
    if accuracy:
        w, first, last = accuracy
        items.append([B("Token accuracy"), T(f" (share of target tokens predicted right): first {w} steps {num(first, 3)} "
                                             f"→ last {w} steps {num(last, 3)}")])
    trained = rep.path(tr.get("model"))
    if trained:
        items.append([B("Trained model:"), T(" "), L(trained, trained) if rep.exists(trained) else C(trained)])
    rep.bullets(items)
    src = _loss_chart(rep, steps, window)
    if src:
        rep.figure(src, "Training loss per step (cross-entropy on the target tokens, nats per token; lower is "
                        "better). The shaded windows are the first and last steps averaged above.")


def _loss_chart(rep: Report, steps: list[dict[str, Any]], window) -> str | None:
    if not steps:
        return None
    plt = _pyplot()
    x, y = [int(m["step"]) for m in steps], [float(m["loss"]) for m in steps]
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    ax.plot(x, y, marker="o", ms=3, lw=1.6, color="#2f5f98", label="loss")
    if window:
        w, first, last = window
        ax.axvspan(x[0] - 0.5, x[w - 1] + 0.5, color="#d9534f", alpha=0.08)
        ax.axvspan(x[-w] - 0.5, x[-1] + 0.5, color="#5cb85c", alpha=0.10)
        ax.hlines([first], x[0], x[w - 1], colors="#d9534f", linestyles="--", lw=1.2,
                  label=f"mean, first {w} steps: {num(first, 3)}")
        ax.hlines([last], x[-w], x[-1], colors="#2e7d32", linestyles="--", lw=1.2,
                  label=f"mean, last {w} steps: {num(last, 3)}")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (nats per target token)")
    ax.set_title("SFT on grounded prompts: training loss per step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return _save(rep, fig, "loss_curve.png")


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# ------------------------------------------------------------------ 6. evaluation

EVAL_COLUMNS = [  # (key, header, higher is better)
    ("exact_match", "exact match", True), ("contains_answer", "answer in response", True), ("f1", "F1", True),
    ("citation_precision", "citation precision", True),
    ("abstention", "abstention on unanswerable", True),
]


def _runs(ev: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return ev.get("runs") or {k: ev[k] for k in ("base", "trained") if ev.get(k)}


def _mode(label: str, summary: dict[str, Any]) -> str:
    suite = str(summary.get("suite", ""))
    if ":closed_book" in suite or "closed-book" in label:
        return "none (closed book)"
    if ":search" in suite:
        return "search in the loop"
    return f"top {_spec_option(suite, 'k', '3')} ({RETRIEVERS.get(_spec_option(suite, 'retriever', 'bm25'), 'BM25')})"


def _type_measure(kind: str) -> tuple[str, str]:
    return ("abstention", "abstention") if kind == "unanswerable" else ("exact_match", "exact match")


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [float(r[key]) for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def _by_type(rep: Report, labels: list[str]) -> dict[str, dict[str, float | None]]:
    """{question type: {run label: the type's measure}} from each run's samples.jsonl (exact
    match on answerable types, abstention on unanswerable ones), plus "all": the score."""
    samples = {label: _jsonl(rep.out / "eval" / label / "samples.jsonl") for label in labels}
    kinds = sorted({str(r.get("type") or "") for rows in samples.values() for r in rows} - {""},
                   key=lambda t: (QUESTION_TYPES.index(t) if t in QUESTION_TYPES else len(QUESTION_TYPES), t))
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        key = _type_measure(kind)[0]
        out[kind] = {label: _mean([r for r in rows if r.get("type") == kind], key) for label, rows in samples.items()}
        out[kind]["n"] = max(sum(1 for r in rows if r.get("type") == kind) for rows in samples.values())
    if any(samples.values()):
        out["all"] = {label: _mean(rows, "score") for label, rows in samples.items()}
        out["all"]["n"] = max(len(rows) for rows in samples.values())
    return out


def _best_cells(rows: list[list[Any]], columns: list[tuple[int, bool]]) -> set[tuple[int, int]]:
    """(row, column) of each column's best value (ties included); none where all are equal."""
    best = set()
    for c, higher in columns:
        values = [r[c] if isinstance(r[c], (int, float)) else None for r in rows]
        known = {num(v) for v in values if v is not None}
        if len(known) < 2:
            continue
        top = num((max if higher else min)(v for v in values if v is not None))
        best |= {(r, c) for r, v in enumerate(values) if v is not None and num(v) == top}
    return best


def _section_evaluate(rep: Report, ev: dict[str, Any], train: dict[str, Any] | None) -> None:
    runs = _runs(ev)
    task = rep.scrub(str(ev.get("task") or ev.get("base", {}).get("suite", "")), "<run>")
    models = ev.get("models") or {}
    base_name = str(((_train_settings(rep, train) if train else {}).get("model") or {}).get("name") or "")
    n = next((sm.get("n") for sm in runs.values() if sm.get("n")), None)
    rep.heading("6. Evaluation: base vs trained, same retrieval")
    closed = task.replace(":retrieve", ":closed_book")
    trained_at = rep.path(models.get("trained") or runs.get("trained", {}).get("model"))
    trained_arg = f"<run>/{trained_at}" if trained_at and rep.exists(trained_at) else "TRAINED"
    rep.para(C(f"assay eval run {task} --model {base_name or 'BASE'} --out <run>/eval/base"), T(" (and "),
             C(f"--model {trained_arg} --out <run>/eval/trained"), T("; "), C(closed),
             T(" for "), C("eval/trained-closed-book"), T("), then "),
             C("assay eval compare <run>/eval/base <run>/eval/trained"),
             T(f": the model before and after section 5 on the world's {num(n)} test questions (entities no training "
               "question mentions), greedy decoding, both shown the same passages; and the trained model once more "
               "with the question alone."))
    rep.para(T("Exact match and F1 score the short answer against the gold on answerable questions; answer in "
               "response (FlashRAG's lenient accuracy) only asks that the gold occur somewhere in what the model "
               "wrote, so a right answer in a full sentence counts there and not in exact match; citation "
               "precision is the share of cited passages that hold the answer (over the answers that cite; — when "
               "none does); abstention is the share of unanswerable questions where the model says the passages do "
               "not say. Bold: the best value in each score column (none where the runs tie)."))
    rows = []
    for label, sm in runs.items():
        which = "base" if label == "base" else "trained"
        who = (f"{base_name} (before training)" if which == "base" and base_name
               else rep.path(models.get(which) or sm.get("model")) + (" (after section 5)" if which == "trained" else ""))
        took = (sm.get("time") or {}).get("total_s")
        generated = sm.get("generations") or {}
        if took is not None and generated.get("cached") and not generated.get("new"):
            took = [T(f"{num(took)} (answers from the cache)")]
        rows.append([[L(label, f"eval/{label}/report.md")] if rep.exists(f"eval/{label}/report.md") else label, who,
                     _mode(label, sm), sm.get("n"), *[sm.get(key) for key, _, _ in EVAL_COLUMNS], took])
    best = _best_cells(rows, [(4 + i, higher) for i, (_, _, higher) in enumerate(EVAL_COLUMNS)])
    rep.table(["run", "model", "passages", "questions", *[h for _, h, _ in EVAL_COLUMNS], "time (s)"], rows, best)
    reports = [label for label in runs if rep.exists(f"eval/{label}/report.md")]
    if reports:
        spans: list[Any] = [T("Each run's own report (every metric, accuracy by type, plots): ")]
        for i, label in enumerate(reports):
            spans += [T(", ") if i else T(""), L(f"eval/{label}/report.md", f"eval/{label}/report.md", strong=True)]
        rep.para(*spans, T("."))

    by_type = _by_type(rep, list(runs))
    if by_type:
        rep.heading("By question type", level=3)
        labels = list(runs)
        type_rows = []
        for kind, values in by_type.items():
            measure = "right answers (exact match or abstention)" if kind == "all" else _type_measure(kind)[1]
            type_rows.append([kind.replace("_", "-"), values.get("n"), measure, *[values.get(label) for label in labels]])
        best = set()
        for r, row in enumerate(type_rows):  # the best run per type (none where all are equal)
            values = [v for v in row[3:] if v is not None]
            if len({num(v) for v in values}) > 1:
                best |= {(r, 3 + i) for i, v in enumerate(row[3:]) if v is not None and num(v) == num(max(values))}
        rep.table(["type", "questions", "measure", *labels], type_rows, best)
        src = _eval_chart(rep, by_type)
        if src:
            rep.figure(src, "Base vs trained on one scale (0 to 1), per question type: exact match on answerable "
                            "types, abstention on unanswerable ones, and all questions together.")
    _verdict(rep, runs, by_type)
    _flips_table(rep, n)


def _verdict(rep: Report, runs: dict[str, dict[str, Any]], by_type: dict[str, dict[str, Any]]) -> None:
    """What won, by how much, and why it matters; what closed book shows."""
    overall = by_type.get("all") or {label: sm.get("accuracy") for label, sm in runs.items()}
    base, trained = overall.get("base"), overall.get("trained")
    if base is None or trained is None:
        return
    n = (by_type.get("all") or {}).get("n") or runs.get("base", {}).get("n")
    right = (lambda share: f"{round(share * n)} of {n}") if n else (lambda share: num(share, 3))
    if num(trained, 3) == num(base, 3):
        text = (f"Base and trained answer the same share right ({num(trained, 3)}, {right(trained)}): training changed "
                "nothing measurable here.")
    else:
        won = trained > base
        text = (f"{'The trained model wins' if won else 'The base model does better'}: {right(trained)} test questions "
                f"answered right after training against {right(base)} before ({num(base, 3)} → {num(trained, 3)}), "
                "with the same passages in front of both.")
        gains = {k: (v.get("trained") or 0) - (v.get("base") or 0) for k, v in by_type.items()
                 if k != "all" and v.get("trained") is not None and v.get("base") is not None}
        if gains and won:
            kind = max(gains, key=gains.get)
            if gains[kind] > 0:
                text += f" The largest gain is on {kind.replace('_', '-')} questions (+{num(gains[kind], 3)})."
        if won:
            text += (" Why it matters: retrieval was the same for both, so the difference is what training taught: to "
                     "read the passages, answer in a few words, cite the passage that holds the answer, and say when "
                     "they do not say.")
    recall = runs.get("base", {}).get("recall@k")
    if recall is not None:
        k = _spec_option(str(runs["base"].get("suite", "")), "k", "3")
        text += (f" Retrieval's part: recall@{k} = {num(recall, 3)}, the share of the answerable questions' gold "
                 f"documents among the {k} passages shown.")
    closed = runs.get("trained-closed-book")
    if closed and closed.get("exact_match") is not None:
        em, with_passages = closed["exact_match"], runs.get("trained", {}).get("exact_match")
        if em <= 0.1:
            text += (f" Without the passages (closed book) the trained model's exact match stays near zero ({num(em, 3)}): "
                     "the entities are invented, so no model knows them, and the task needs retrieval.")
        else:
            text += (f" Without the passages (closed book) the trained model still gets exact match {num(em, 3)}: some "
                     "answers can be guessed (a comparison names both candidates).")
        if with_passages is not None and num(with_passages, 3) == num(em, 3) and rep.quick:
            text += " Here it scores the same with passages, as the quick model learned nothing; the full demo shows the gap."
    rep.para(T(text))
    if rep.quick:
        rep.note(T("Quick run: these numbers come from the tiny random model of section 5 and mean nothing about the "
                   "method; they show that every step ran. The full demo ("), C("assay demo"),
                 T(") evaluates SmolLM2-135M-Instruct before and after training."))


def _flips_table(rep: Report, n: int | None) -> None:
    found = flips(rep.out)
    samples = [L(f"eval/{label}/samples.jsonl", f"eval/{label}/samples.jsonl") for label in ("base", "trained")
               if rep.exists(f"eval/{label}/samples.jsonl")]
    where: list[Any] = []
    if samples:
        where = [T("every answer is in "), samples[0]] + ([T(" and "), samples[1]] if len(samples) > 1 else [])
    rep.heading("Questions that changed", level=3)
    up = sum(1 for f in found if f["direction"] == "wrong → right")
    if not found:
        rep.para(T(f"No question changed its score between base and trained{f' (of {n})' if n else ''}"),
                 *([T("; ")] + where if where else []), T("."))
        return
    rep.para(T(f"{up} went wrong → right, {len(found) - up} right → wrong. For each, the passage the right answer "
               "cited, as the prompt showed it:"))
    rows = []
    for f in found[:10]:
        gold = f["gold"]
        cited: list[Any] = []
        for i, (k, doc, text) in enumerate(f["cited"]):
            cited += ([T("; ")] if i else []) + [B(f"[{k}] {doc}:"), T(" "), Q(_excerpt(text, [gold], 120))]
        why = [T(f"{f['direction']}. base: {rep.scrub(str(f['base_reason']))}; trained: {rep.scrub(str(f['trained_reason']))}")]
        rows.append([[Q(f["question"]), T(f" ({f['type'].replace('_', '-')})" if f["type"] else "")], [Q(gold)],
                     [Q(f["base"])], [Q(f["trained"])], cited or [T("— (no passage cited)")], why])
    rep.table(["question", "gold", "base answer", "trained answer", "cited passage", "why"], rows)
    if len(found) > len(rows):
        rep.para(T(f"… and {len(found) - len(rows)} more: "), *where, T("."))
    elif where:
        rep.para(T("Every answer is in "), *where[1:], T("."))


def flips(out: Path) -> list[dict[str, Any]]:
    """Questions whose score changed from the base to the trained model (wrong -> right
    first), each with both answers and the passages the better answer cited ([n] markers
    mapped to the passages the prompt showed, from eval/questions.jsonl)."""
    base = {str(r["id"]): r for r in _jsonl(out / "eval" / "base" / "samples.jsonl")}
    trained = {str(r["id"]): r for r in _jsonl(out / "eval" / "trained" / "samples.jsonl")}
    rows = {str(r["id"]): r for r in _jsonl(out / "eval" / "questions.jsonl")}
    found = []
    for key, b in base.items():
        t = trained.get(key)
        if t is None or (b.get("score") or 0) == (t.get("score") or 0):
            continue
        row = rows.get(key, {})
        gained = (t.get("score") or 0) > (b.get("score") or 0)
        better = t if gained else b
        contexts, retrieved = row.get("contexts") or [], row.get("retrieved") or []
        cited = []
        for n in cited_passages(claim(str(better.get("completion", "")))):
            if 1 <= n <= len(contexts):
                cited.append((n, retrieved[n - 1] if n <= len(retrieved) else "", contexts[n - 1]))
        found.append({"id": key, "question": row.get("question", ""), "type": row.get("type", ""),
                      "gold": (row.get("answers") or ["(unanswerable: the passages do not say)"])[0],
                      "direction": "wrong → right" if gained else "right → wrong",
                      "base": str(b.get("completion", "")).strip(), "trained": str(t.get("completion", "")).strip(),
                      "base_reason": b.get("reason", ""), "trained_reason": t.get("reason", ""), "cited": cited})
    return sorted(found, key=lambda f: f["direction"] != "wrong → right")


def _eval_chart(rep: Report, by_type: dict[str, dict[str, Any]]) -> str | None:
    groups = [k for k, v in by_type.items() if v.get("base") is not None and v.get("trained") is not None]
    if not groups:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    width, stub = 0.38, 0.006
    for i, (label, color) in enumerate((("base", "#8c8c8c"), ("trained", "#2e7d32"))):
        xs = [g + (i - 0.5) * width for g in range(len(groups))]
        values = [float(by_type[k][label]) for k in groups]
        ax.bar(xs, [max(v, stub) for v in values], width=width * 0.95, color=color, edgecolor="#333333",
               linewidth=0.8, label=label)
        for x, v in zip(xs, values):
            ax.text(x, max(v, stub) + 0.02, num(v, 2), ha="center", va="bottom", fontsize=8)
    names = []
    for k in groups:
        measure = "right" if k == "all" else _type_measure(k)[1]
        names.append(f"{k.replace('_', '-')}\n{measure}, n={by_type[k].get('n')}")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_ylim(0, 1.15)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_ylabel("share of questions (0 to 1)")
    ax.set_title("Base vs trained, same retrieval: per question type")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="upper left", ncols=2)
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
    "world": "the knowledge world: documents, questions of every split, relevance judgements, its index, cached retrievals",
    "train": "training: the resolved config, per-step metrics (loss), curves, summary, the trained model",
    "eval": "evaluation: the test questions with the passages shown, then per run a summary, every answer "
            "(samples.jsonl), plots and a sub-report",
    FILES_DIR: "this report's charts",
}
_SKIP_UNDER = ("index/v", "world/index/v", "train/checkpoints/", "train/model/", "train/merged/")


def _section_files(rep: Report) -> None:
    rep.heading("7. Report and run files")
    rep.para(C("assay demo --steps report --fresh"), T(" rebuilds this page (report.md and report.html) from the "
             "files below, any time; its charts are drawn into "), C(f"{FILES_DIR}/"),
             T(". Everything the demo wrote, relative to the run directory (sub-reports in bold):"))
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
    # where the run directory was when the steps wrote their paths (it may have moved since)
    for recorded, tail in (((steps["world"] or {}).get("dir"), ("world",)),
                           (((steps["train"] or {}).get("summary") or {}).get("out"), ("train",)),
                           (((steps["evaluate"] or {}).get("compare") or {}).get("a"), ("eval", "base"))):
        if recorded and Path(recorded).parts[-len(tail):] == tail:
            rep.add_root(Path(recorded).parents[len(tail) - 1])
    _header(rep, steps)
    if steps["index"] is not None:
        _section_index(rep, steps["index"])
    if steps["retrieval"] is not None:
        _section_retrieval(rep, steps["retrieval"])
    if steps["rewards"] is not None:
        _section_rewards(rep, steps["rewards"])
    spec = _world_spec(steps)
    if steps["world"] is not None:
        _section_world(rep, steps["world"], spec)
    if steps["train"] is not None:
        _section_train(rep, steps["train"], steps["world"], spec)
    if steps["evaluate"] is not None:
        _section_evaluate(rep, steps["evaluate"], steps["train"])
    _section_files(rep)
    return rep


def markdown(out: Path, quick: bool) -> str:
    return render_markdown(build(out, quick))


def write_report(out: Path, quick: bool) -> list[Path]:
    rep = build(Path(out), quick)
    atomic_write_text(rep.out / "report.md", render_markdown(rep))
    atomic_write_text(rep.out / "report.html", render_html(rep))
    return [rep.out / "report.md", rep.out / "report.html"]
