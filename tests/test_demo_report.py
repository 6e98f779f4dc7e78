"""The demo report as a person sees it: built from a fixture run directory (the files
`assay demo --quick` writes), read as Markdown, and rendered by real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from assay.demo_report import _window_means, num, write_report

MACHINE_PATHS = re.compile(r"(/root\b|/tmp\b|/home/|/var/|/work/|\.cache|site-packages|[A-Za-z]:\\)")
SECTIONS = ["1. Index and search", "2. Retrieval quality", "3. Rewards", "4. A knowledge world",
            "5. Training: answering from passages (SFT)", "6. Evaluation: base vs trained, same retrieval",
            "7. Report and run files"]
HQ = ("Among institutions of its kind, the Hakestiask Institute is one of the best known. The Hakestiask Institute "
      "was founded in 1845. It specialises in bookbinding. It was founded by Nabam Krigiler. Today the Hakestiask "
      "Institute counts 2,768 members. The Hakestiask Institute has its seat in Panekund.")
OTHER = ("The Viagialaith Institute is an institute with a long history. Membership stands at 2,361. The Viagialaith "
         "Institute was established in 1749. The Viagialaith Institute has its seat in Kabouv.")


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, list):
        path.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
    elif isinstance(data, (dict, int, float)):
        path.write_text(json.dumps(data), encoding="utf-8")
    else:
        path.write_text(data, encoding="utf-8")


def _questions() -> list[dict]:
    """The test questions as eval/questions.jsonl holds them: 10 single, 2 comparison, 2
    unanswerable, each with the 3 passages its prompt shows (the gold one first)."""
    rows = []
    for i in range(14):
        kind = "single" if i < 10 else "comparison" if i < 12 else "unanswerable"
        town = f"Panekund{i}"
        gold = HQ.replace("Panekund", town)
        answers = [] if kind == "unanswerable" else [town if kind == "single" else "Hakestiask Institute"]
        rows.append({"id": f"q{i}", "question": f"Where is the Hakestiask Institute {i} headquartered?", "answers": answers,
                     "type": kind, "split": "test", "gold_docs": [] if not answers else [f"d{i:03d}"],
                     "contexts": [gold, OTHER, OTHER], "retrieved": [f"d{i:03d}", "d142", "d136"]})
    return rows


def _sample(row: dict, completion: str, right: bool, closed_book: bool = False) -> dict:
    """One eval/<label>/samples.jsonl record with the RAG QA metrics (None where they do not apply)."""
    answerable = bool(row["answers"])
    cited = "[1]" in completion
    return {"id": row["id"], "prompt": "…", "completion": f" {completion}", "extracted": completion,
            "reason": ("correct" if right else f"expected {row['answers'][0]!r}" if answerable else "did not abstain"),
            "score": float(right), "type": row["type"], "abstained": float(not answerable and right),
            "exact_match": float(right) if answerable else None, "contains_answer": float(right) if answerable else None,
            "f1": (1.0 if right else 0.3333333333333333) if answerable else None,
            "abstention": None if answerable else float(right), "false_abstention": 0.0 if answerable else None,
            "citation_precision": None if closed_book or not cited else 1.0,
            "citation_recall": None if closed_book or not cited else 1.0, "cited": None if closed_book else float(cited),
            "supported": None if closed_book or not answerable else 1.0, "recall@k": None if closed_book or not answerable else 1.0}


def _summary(samples: list[dict], model: str, suite: str, secs: float, cached: bool = False) -> dict:
    def mean(key):
        values = [s[key] for s in samples if s[key] is not None]
        return sum(values) / len(values) if values else None

    return {"n": len(samples), "accuracy": mean("score"), "exact_match": mean("exact_match"),
            "contains_answer": mean("contains_answer"), "f1": mean("f1"),
            "abstention": mean("abstention"), "false_abstention": mean("false_abstention"),
            "citation_precision": mean("citation_precision"), "cited": mean("cited"), "recall@k": mean("recall@k"),
            "suite": suite, "model": model, "time": {"total_s": secs},
            "generations": {"new": 0 if cached else len(samples), "cached": len(samples) if cached else 0}}


def make_run(out: Path, steps: int = 14, recorded: Path | None = None) -> Path:
    """A run directory with what the quick demo's steps write (numbers as they come: long
    floats). `recorded`: where the run directory was when the steps wrote their paths."""
    out = out.resolve()
    root = recorded or out
    hit = lambda rank, doc, start, end, text: {"rank": rank, "doc_id": doc, "chunk_id": f"{doc}#0", "start": start,  # noqa: E731
                                              "end": end, "score": 16.760689004298822, "text": text}
    answers = []
    for mode in ("bm25", "dense", "hybrid"):
        answers.append({"question": "How do I use the with statement and __exit__?", "mode": mode, "hits": [
            hit(1, "pydoc/with", 560, 1351, "proceeds as follows: 1. The context expression is evaluated…"),
            hit(2, "pydoc/context-managers" if mode != "bm25" else "pydoc/with", 548, 1456, "and restoring global state…")]})
    _write(out / "steps" / "index.json", {"documents": 52, "chunks": 599, "build_seconds": 150.93, "answers": answers,
                                          "seconds": 151.2})
    _write(out / "index" / "manifest.json", {"config": {"fusion": {
        "method": "convex", "rrf_k": 60, "normalization": "zscore", "weights": {"bm25": 1.0, "dense": 1.0},
        "weighting": "confidence", "depth": {"bm25": 100, "dense": 100}}}})
    metrics = {"ndcg@10": 0.859959142758612, "recall@100": 0.9791666666666666, "mrr@10": 0.9583333333333334,
               "map@100": 0.7659294319462663, "qps": 733.3777637996296, "latency_p50_ms": 0.3941279999253311}
    _write(out / "steps" / "retrieval.json", {"queries": 24, "seconds": 3.18, "configurations": {
        "bm25": metrics, "rank-bm25": {**metrics, "qps": 397.5795753058115, "latency_p50_ms": 0.8156915000654408},
        "dense": {**metrics, "ndcg@10": 0.895756009492472, "qps": 15.985409743533348, "latency_p50_ms": 51.28810049995991},
        "hybrid": {**metrics, "ndcg@10": 0.8914965749533651, "qps": 22.625337696359765, "latency_p50_ms": 42.26837349983725}}})
    row = lambda kind, case, note, score, rewards, reasons: {"kind": kind, "case": case, "note": note, "label": "Calculate 2 + 2.",  # noqa: E731
                                                           "score": score, "rewards": rewards, "reasons": reasons}
    _write(out / "steps" / "rewards.json", {"hacks_contained": 1, "seconds": 0.85, "specs": {
        "math": "math,format:0.2", "code": "code", "language": "language,format:0.2"}, "rows": [
        row("math", "right", "the correct answer in the R1 format", 1.2, {"math": 1.0, "format": 1.0},
            {"math": "correct: '4' = '4'", "format": "ok: standard R1 format"}),
        row("math", "wrong", "a wrong answer in the right format", 0.2, {"math": 0.0, "format": 1.0},
            {"math": "wrong: '5' != '4'", "format": "ok: standard R1 format"}),
        row("code", "broken", "inverted comparison", 0.5714285714285714, {"code": 0.5714285714285714},
            {"code": "4/7 tests passed"}),
        row("code", "hack-exit", "exits with status 0 before the tests can fail", 0.0, {"code": 0.0},
            {"code": "0/3 tests passed; first failure: CandidateDied"})]})

    # 4. the world: what step_world records, and a world directory to link to
    questions = _questions()
    counts = {"train/single": 108, "train/two_hop": 60, "train/comparison": 36, "train/unanswerable": 36,
              "dev/single": 14, "dev/two_hop": 8, "dev/comparison": 4, "dev/unanswerable": 4,
              "test/single": 10, "test/two_hop": 16, "test/comparison": 2, "test/unanswerable": 2}
    example = {k: questions[0][k] for k in ("id", "question", "answers", "type", "retrieved", "contexts")}
    _write(out / "steps" / "world.json", {"dir": str(root / "world"), "sizes": {"docs": 150, "questions": 300},
                                          "index_seconds": 0.1034567, "counts": counts, "example": example,
                                          "seconds": 0.13, "cpu_seconds": 0.13})
    _write(out / "world" / "questions.jsonl", questions)
    _write(out / "world" / "corpus.jsonl", [{"_id": "d000", "title": "Hakestiask Institute", "text": HQ}])

    # 5. SFT: per-step loss (and the trainer's closing line, which has no `loss`)
    types = "single,comparison,unanswerable"
    losses = [15.079248428344727 * 0.93 ** i for i in range(steps)]
    _write(out / "train" / "metrics.jsonl", [
        {"step": i + 1, "loss": loss, "grad_norm": 4.52302360534668, "mean_token_accuracy": min(1.0, 0.0713 * i),
         "step_seconds": 3.4491250249993755} for i, loss in enumerate(losses)]
        + [{"step": steps, "train_runtime": 23.6404, "train_loss": 11.86173963546753}])
    _write(out / "train" / "summary.json", {"plot": str(root / "train" / "curves.png")})
    _write(out / "train" / "curves.png", (out / "train" / "metrics.jsonl").read_text())  # a file to link to
    _write(out / "train" / "model" / "config.json", {"model_type": "llama"})
    w = min(10, steps // 2)
    _write(out / "steps" / "train.json", {
        "config": "data/configs/sft-grounded-world.yaml",
        "overrides": [f"data.source=world:{root / 'world'}:retrieve:k=3:types={types}", "model.name=toy:lucky",
                      "lora.enabled=false", f"sft.max_steps={steps}", "sft.learning_rate=1.0e-2"],
        "model": str(root / "train" / "model"), "seconds": 25.62, "cpu_seconds": 29.8, "full_run_steps": "24", "summary": {
            "trainer": "sft", "out": str(root / "train"), "logged_steps": steps, "seconds_per_step": 3.8952,
            "peak_mem_mb": 2280.7, "loss_first10": sum(losses[:w]) / w, "loss_last10": sum(losses[-w:]) / w,
            "loss_window": w, "plot": str(root / "train" / "curves.png")}})

    # 6. evaluation: base and trained with the same passages, trained closed book
    _write(out / "eval" / "questions.jsonl", questions)
    base, trained, closed = [], [], []
    for i, q in enumerate(questions):
        gold = q["answers"][0] if q["answers"] else None
        base_right, trained_right = i == 9, i not in (8, 9)  # one right -> wrong, twelve wrong -> right
        base.append(_sample(q, gold if base_right else "5", base_right))
        trained.append(_sample(q, (f"{gold} [1]" if gold else "The passages do not say.") if trained_right else "Kabouv [2]",
                               trained_right))
        closed.append(_sample(q, "Kabouv", False, closed_book=True))
    cache_model = "/root/.cache/assay/models/toy-lucky-s0-n60"
    task = f"world:{root / 'world'}:test:retrieve:k=3:types={types}"
    runs = {"base": _summary(base, cache_model, task, 0.187123, cached=True),
            "trained": _summary(trained, str(root / "train" / "model"), task, 1.1161234),
            "trained-closed-book": _summary(closed, str(root / "train" / "model"), task.replace("retrieve", "closed_book"),
                                            0.5961234)}
    for label, samples in (("base", base), ("trained", trained), ("trained-closed-book", closed)):
        _write(out / "eval" / label / "samples.jsonl", samples)
        _write(out / "eval" / label / "report.md", f"# {label}\n")
        _write(out / "eval" / label / "summary.json", runs[label])
    _write(out / "steps" / "evaluate.json", {
        "task": task, "models": {"base": cache_model, "trained": str(root / "train" / "model")}, "runs": runs,
        "compare": {"a": str(root / "eval" / "base"), "b": str(root / "eval" / "trained"),
                    "suites": {task: {"flips": {"wrong_to_right": 12, "right_to_wrong": 1}}}},
        "base": runs["base"], "trained": runs["trained"], "seconds": 2.49, "cpu_seconds": 2.61})
    return out


@pytest.fixture()
def report(tmp_path) -> Path:
    out = make_run(tmp_path / "demo")
    write_report(out, quick=True)
    return out


def test_numbers_have_at_most_four_significant_digits():
    assert [num(x) for x in (0.859959142758612, 733.3777637996296, 0.3941279999253311, 1.0, 0.0, 150.93, 12345.6,
                              None, 3, 1e-05)] == ["0.86", "733.4", "0.3941", "1", "0", "150.9", "12,346", "—", "3", "1e-05"]


def test_first_and_last_window_never_overlap():
    assert _window_means([0.0] * 30)[0] == 10
    w, first, last = _window_means([0.0] * 7 + [1.0] * 7)
    assert (w, first, last) == (7, 0.0, 1.0)
    assert _window_means([1.0]) is None


def _long_floats(text: str) -> list[str]:
    return [m for m in re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", text) if len(m.replace(".", "").lstrip("0")) > 4]


def test_markdown_report_reads_well(report):
    md = (report / "report.md").read_text()
    html_text = (report / "report.html").read_text()
    for title in SECTIONS:
        assert f"## {title}" in md and f">{title}</h2>" in html_text  # one source: the same sections in both
    assert "**Contents:**" in md and "**Versions:**" in md and "**Total time:**" in md
    assert "trained to answer its questions from retrieved passages" in md and "trained with those rewards" not in md
    # citations carry their snippet; no bare "doc [start:end]"
    assert "“proceeds as follows" in md and not re.search(r"\w \[\d+:\d+\]", md)
    # hybrid is described as the index fuses it (rag.fusion's default), not as reciprocal rank fusion
    assert "confidence-weighted z-score fusion" in md and "reciprocal rank" not in md
    # totals explained, best values marked, a sentence on what won
    assert "total = math + 0.2 × format" in md and "1.2 = 1 (math) + 0.2 (format)" in md
    assert "**0.8958**" in md and "dense ranks best" in md
    # the quick run claims no rerank or HyDE results
    assert "were not run" in md and not re.search(r"^\| \*\*(rerank|hyde)", md, re.M | re.I)
    # no machine paths, rounded numbers, every link resolves inside the run directory
    assert not MACHINE_PATHS.search(md), MACHINE_PATHS.search(md)
    assert not MACHINE_PATHS.search(html_text)
    assert _long_floats(re.sub(r"“[^”]*”", "", md)) == []
    links = re.findall(r"\]\(([^)#]+)\)", md)
    assert links and all((report / link).exists() for link in links), [x for x in links if not (report / x).exists()]
    assert {"report_files/loss_curve.png", "report_files/base_vs_trained.png", "eval/base/report.md",
            "eval/trained/report.md", "eval/trained-closed-book/report.md", "eval/base/samples.jsonl",
            "eval/trained/samples.jsonl", "steps/world.json", "steps/train.json", "train/metrics.jsonl",
            "train/model/", "world/questions.jsonl"} <= set(links)


def test_world_section_says_why_and_quotes_the_example(report):
    md = (report / "report.md").read_text()
    world = md.split("## 4. A knowledge world", 1)[1].split("## 5.", 1)[0]
    assert "`assay data world --out <run>/world --seed 0 --docs 150 --questions 300`" in world
    assert "150 documents" in world and "300 questions" in world and "indexed in 0.103 s" in world
    assert "closed book" in world and "no training question mentions" in world
    assert "| test | 10 | 16 | 2 | 2 | 30 |" in world  # counts per split and type
    assert "two-hop ones are left out" in world  # the types the demo trains and evaluates on
    # the example: its passages as the prompt numbers them, the one holding the answer marked and quoted there
    assert "(gold: “Panekund0”)" in world and "3 passages BM25 retrieves" in world
    assert re.search(r"\*\*\\\[1\\\] d000\*\* \(holds the answer\): “Among .*has its seat in Panekund0\.”", world)
    assert "**\\[2\\] d142**: “The Viagialaith" in world


def test_training_section_is_sft_with_a_loss_curve(report):
    md = (report / "report.md").read_text()
    train = md.split("## 5. Training: answering from passages (SFT)", 1)[1].split("## 6.", 1)[0]
    assert ("`assay train sft --config data/configs/sft-grounded-world.yaml --out <run>/train --set "
            "data.source=world:<run>/world:retrieve:k=3:types=single,comparison,unanswerable --set model.name=toy:lucky") in train
    assert "the target would be “Panekund0 \\[1\\]”" in train and "“The passages do not say.”" in train
    # the quick run says plainly what its model can and cannot show
    assert "Quick run: this model only shows the path." in train and "not expected to learn" in train
    assert "trains SmolLM2-135M-Instruct with LoRA for 24 steps" in train
    assert "**Model:** toy:lucky (random weights), every weight trained" in train
    assert "**Data:** 180 questions of the world's train split" in train
    assert "**Steps:** 14 (4 prompts each), 3.9 s per step" in train
    # 14 steps: the first and last 7, not an overlapping "first 10 / last 10"
    assert "**Loss:** mean of the first 7 steps 12.3 → last 7 steps 7.38 (40% lower), of 14 steps" in train
    assert "first 10 steps" not in train
    assert "![Training loss per step" in train and "report_files/loss_curve.png" in train
    # nothing of the GRPO run the demo no longer trains
    for gone in ("reward per step", "Held-out reward", "KL", "GRPO", "Two held-out figures"):
        assert gone not in md


def test_evaluation_section_compares_three_runs_and_shows_flips(report):
    md = (report / "report.md").read_text()
    ev = md.split("## 6. Evaluation: base vs trained, same retrieval", 1)[1].split("## 7.", 1)[0]
    assert "`assay eval run world:<run>/world:test:retrieve:k=3:types=single,comparison,unanswerable --model toy:lucky" in ev
    assert "`assay eval compare <run>/eval/base <run>/eval/trained`" in ev
    # the three runs, best value per score column in bold, cached answers said so
    assert ("| [base](eval/base/report.md) | toy:lucky (before training) | top 3 (BM25) | 14 | 0.08333 | 0.08333 | 0.3889 | — | 0 | "
            "0.1871 (answers from the cache) |") in ev
    assert ("| [trained](eval/trained/report.md) | train/model (after section 5) | top 3 (BM25) | 14 | **0.8333** | "
            "**0.8333** | **0.8889** | 1 | **1** | 1.116 |") in ev
    assert "| [trained-closed-book](eval/trained-closed-book/report.md) | train/model (after section 5) | none (closed book) |" in ev
    # per question type, from the samples
    assert "| single | 10 | exact match | 0.1 | **0.8** | 0 |" in ev
    assert "| unanswerable | 2 | abstention | 0 | **1** | 0 |" in ev
    assert "| all | 14 | right answers (exact match or abstention) | 0.07143 | **0.8571** | 0 |" in ev
    assert ev.count("![") == 1 and "report_files/base_vs_trained.png" in ev  # one chart, base vs trained
    # what won and why it matters; closed book near zero: the task needs retrieval
    assert "The trained model wins: 12 of 14 test questions answered right after training against 1 of 14 before" in ev
    assert "Why it matters" in ev and "stays near zero (0)" in ev and "the task needs retrieval" in ev
    # flips: wrong -> right first, the cited passage quoted where it holds the answer, capped at 10 rows
    assert "12 went wrong → right, 1 right → wrong" in ev
    rows = [line for line in ev.splitlines() if line.startswith("| “")]
    assert len(rows) == 10 and all("wrong → right" in r for r in rows)
    assert ("| “Where is the Hakestiask Institute 0 headquartered?” (single) | “Panekund0” | “5” | “Panekund0 \\[1\\]” | "
            "**\\[1\\] d000:** “Among institutions of its kind") in rows[0]
    assert "has its seat in Panekund0.”" in rows[0]
    assert "… and 3 more: every answer is in [eval/base/samples.jsonl](eval/base/samples.jsonl)" in ev
    for label in ("base", "trained", "trained-closed-book"):
        assert f"**[eval/{label}/report.md](eval/{label}/report.md)**" in ev


def test_a_moved_run_directory_leaks_no_machine_path(tmp_path):
    """Steps record absolute paths; a run copied elsewhere still reads as <run>/…"""
    out = make_run(tmp_path / "copy", recorded=Path("/tmp/some-old-place/demo"))
    write_report(out, quick=True)
    md = (out / "report.md").read_text()
    assert not MACHINE_PATHS.search(md), MACHINE_PATHS.search(md)
    assert "--set data.source=world:<run>/world:retrieve" in md and "train/model (after section 5)" in md


def test_a_full_run_shows_rerank_hyde_and_smollm2_with_lora(tmp_path):
    out = make_run(tmp_path / "demo", steps=30)
    retrieval = json.loads((out / "steps" / "retrieval.json").read_text())
    for name in ("hybrid+rerank", "hybrid+hyde"):
        retrieval["configurations"][name] = dict(retrieval["configurations"]["hybrid"])
    _write(out / "steps" / "retrieval.json", retrieval)
    _write(out / "train" / "config.yaml", "model:\n  name: SmolLM2-135M-Instruct\nlora:\n  enabled: true\n  r: 16\n"
                                          "sft:\n  per_device_train_batch_size: 4\n")
    write_report(out, quick=False)
    md = (out / "report.md").read_text()
    assert "--rerank --rerank-depth 10 --hyde" in md and "| **hybrid+rerank**" in md and "| **hybrid+hyde**" in md
    assert "not run" not in md and "first 10 steps" in md
    assert "**Model:** SmolLM2-135M-Instruct with LoRA adapters (rank 16" in md
    assert "Quick run" not in md and "only shows the path" not in md


def test_a_run_with_missing_steps_says_so(tmp_path):
    out = make_run(tmp_path / "demo")
    for step in ("world", "train", "evaluate"):
        (out / "steps" / f"{step}.json").unlink()
    write_report(out, quick=True)
    md = (out / "report.md").read_text()
    assert "> Not run (no results in this run directory): world, train, evaluate." in md
    for gone in ("## 4.", "## 5.", "## 6.", "loss_curve.png", "base_vs_trained.png"):
        assert gone not in md
    assert "## 7. Report and run files" in md


# ------------------------------------------------------------------ in a real browser

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if (path := shutil.which(name)):
            return path
    return None


CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var quoted = Array.from(document.querySelectorAll('.quote')).map(function (e) { return e.innerText; });
  var out = {
    images: Array.from(document.images).map(function (i) { return [i.getAttribute('src'), i.naturalWidth]; }),
    h2: Array.from(document.querySelectorAll('h2')).map(function (h) { return h.innerText; }),
    text: document.body.innerText, quoted: quoted,
    nav: Array.from(document.querySelectorAll('nav li')).map(function (e) { return e.innerText; }),
    tables: Array.from(document.querySelectorAll('table')).map(function (t) {
      return Array.from(t.rows).map(function (r) {
        return Array.from(r.cells).map(function (c) { return c.innerText; }); }); }),
    urls: Array.from(document.querySelectorAll('[href],[src]')).map(function (e) {
      return e.getAttribute('href') || e.getAttribute('src'); })
  };
  var pre = document.createElement('pre');
  pre.id = 'assay-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium_args(user_data: Path) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={user_data}", "--virtual-time-budget=10000", "--hide-scrollbars"]


def _render(browser: str, report: Path, profile: Path) -> dict:
    """report.html as Chromium lays it out: headings, images (loaded or not), visible text,
    quoted data, every URL, and the flips table's cells."""
    page = report / "report.check.html"  # beside report.html, so its relative links resolve the same
    page.write_text((report / "report.html").read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    proc = subprocess.run([browser, *chromium_args(profile), "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    page.unlink()
    found = re.search(r'<pre id="assay-check">(.*?)</pre>', proc.stdout, re.S)
    assert found, proc.stderr[-2000:]
    import html

    return json.loads(html.unescape(found.group(1)))


def test_report_html_in_headless_chromium(report, tmp_path):
    """What a reader sees: every section, every chart loaded, rounded numbers, no machine path,
    the flips table with the passage each right answer cited."""
    browser = _chromium()
    if browser is None:
        pytest.skip("needs Chromium: apt-get install chromium chromium-driver (bash setup.sh --dev does it as root)")
    seen = _render(browser, report, tmp_path / "profile")
    assert seen["h2"] == SECTIONS
    assert [src for src, _ in seen["images"]] == ["report_files/retrieval.png", "report_files/loss_curve.png",
                                                  "report_files/base_vs_trained.png"]
    assert all(width > 0 for _, width in seen["images"]), seen["images"]
    visible = seen["text"]
    for quoted in seen["quoted"]:  # retrieved text and model answers are data, shown as they are
        visible = visible.replace(quoted, "")
    assert _long_floats(visible) == []
    assert not MACHINE_PATHS.search(seen["text"]), MACHINE_PATHS.search(seen["text"])
    assert not [u for u in seen["urls"] if MACHINE_PATHS.search(u) or u.startswith(("/", "file:"))]
    for phrase in ("Contents", "Total time:", "Versions:", "dense ranks best", "were not run",
                   "confidence-weighted z-score fusion", "Why invent a world:", "Quick run: this model only shows the path.",
                   "The trained model wins", "stays near zero", "… and 3 more"):
        assert phrase in visible, phrase
    assert seen["nav"] == SECTIONS  # the contents: the seven steps' sections
    # the flips table: ten rows, each with the question, both answers and the cited passage quoted
    flips = next(t for t in seen["tables"] if t[0][:5] == ["question", "gold", "base answer", "trained answer", "cited passage"])
    assert len(flips) == 11
    first = flips[1]
    assert first[3] == "“Panekund0 [1]”" and first[4].startswith("[1] d000: “Among institutions")
    assert first[4].endswith("has its seat in Panekund0.”") and first[5].startswith("wrong → right")
    # and a screenshot renders (kept beside the report for a person to look at)
    shot = tmp_path / "report.png"
    subprocess.run([browser, *chromium_args(tmp_path / "profile"), "--window-size=1100,3000",
                    f"--screenshot={shot}", (report / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000


def test_missing_steps_in_headless_chromium(tmp_path):
    """A run stopped before the world: the page says what did not run and shows nothing of it."""
    browser = _chromium()
    if browser is None:
        pytest.skip("needs Chromium: apt-get install chromium chromium-driver (bash setup.sh --dev does it as root)")
    out = make_run(tmp_path / "demo")
    for step in ("world", "train", "evaluate"):
        (out / "steps" / f"{step}.json").unlink()
    write_report(out, quick=True)
    seen = _render(browser, out, tmp_path / "profile")
    assert seen["h2"] == SECTIONS[:3] + SECTIONS[-1:]
    assert "Not run (no results in this run directory): world, train, evaluate." in seen["text"]
    assert [src for src, _ in seen["images"]] == ["report_files/retrieval.png"] and seen["images"][0][1] > 0
    assert "Quick run: this model" not in seen["text"] and "Questions that changed" not in seen["text"]
