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
SECTIONS = ["1. Index and search", "2. Retrieval quality", "3. Rewards", "4. Training (GRPO)",
            "5. Evaluation: base vs trained", "Run files"]


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, list):
        path.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
    elif isinstance(data, (dict, int, float)):
        path.write_text(json.dumps(data), encoding="utf-8")
    else:
        path.write_text(data, encoding="utf-8")


def make_run(out: Path, steps: int = 14) -> Path:
    """A run directory with what the quick demo's steps write (numbers as they come: long floats)."""
    out = out.resolve()
    hit = lambda rank, doc, start, end, text: {"rank": rank, "doc_id": doc, "chunk_id": f"{doc}#0", "start": start,  # noqa: E731
                                              "end": end, "score": 16.760689004298822, "text": text}
    answers = []
    for mode in ("bm25", "dense", "hybrid"):
        answers.append({"question": "How do I use the with statement and __exit__?", "mode": mode, "hits": [
            hit(1, "pydoc/with", 560, 1351, "proceeds as follows: 1. The context expression is evaluated…"),
            hit(2, "pydoc/context-managers" if mode != "bm25" else "pydoc/with", 548, 1456, "and restoring global state…")]})
    _write(out / "steps" / "index.json", {"documents": 52, "chunks": 599, "build_seconds": 150.93, "answers": answers,
                                          "seconds": 151.2})
    metrics = {"ndcg@10": 0.859959142758612, "recall@100": 0.9791666666666666, "mrr@10": 0.9583333333333334,
               "map@100": 0.7659294319462663, "qps": 733.3777637996296, "latency_p50_ms": 0.3941279999253311}
    _write(out / "steps" / "retrieval.json", {"queries": 24, "seconds": 3.18, "configurations": {
        "bm25": metrics, "rank-bm25": {**metrics, "qps": 397.5795753058115, "latency_p50_ms": 0.8156915000654408},
        "dense": {**metrics, "ndcg@10": 0.895756009492472, "qps": 15.985409743533348, "latency_p50_ms": 51.28810049995991},
        "hybrid": {**metrics, "ndcg@10": 0.8914965749533651, "qps": 22.625337696359765, "latency_p50_ms": 42.26837349983725}}})
    row = lambda kind, case, note, score, rewards, reasons: {"kind": kind, "case": case, "note": note, "label": "Calculate 2 + 2.",  # noqa: E731
                                                           "score": score, "rewards": rewards, "reasons": reasons}
    _write(out / "steps" / "rewards.json", {"hacks_contained": 1, "seconds": 0.85, "rows": [
        row("math", "right", "the correct answer in the R1 format", 1.2, {"math": 1.0, "format": 1.0},
            {"math": "correct: '4' = '4'", "format": "ok: standard R1 format"}),
        row("math", "wrong", "a wrong answer in the right format", 0.2, {"math": 0.0, "format": 1.0},
            {"math": "wrong: '5' != '4'", "format": "ok: standard R1 format"}),
        row("code", "broken", "inverted comparison", 0.5714285714285714, {"code": 0.5714285714285714},
            {"code": "4/7 tests passed"}),
        row("code", "hack-exit", "exits with status 0 before the tests can fail", 0.0, {"code": 0.0},
            {"code": "0/3 tests passed; first failure: CandidateDied"})]})
    rewards = [min(1.0, 0.05 + 0.07 * i) for i in range(steps)]
    _write(out / "train" / "metrics.jsonl", [{"step": i + 1, "reward": r, "rewards/math/mean": r, "kl": 0.01 * i,
                                              "step_seconds": 4.754} for i, r in enumerate(rewards)])
    _write(out / "train" / "eval_before.json", {"n": 64, "reward": 0.0})
    _write(out / "train" / "eval_after.json", {"n": 64, "reward": 1.0})
    _write(out / "train" / "summary.json", {"plot": str(out / "train" / "curves.png")})
    _write(out / "train" / "curves.png", (out / "train" / "metrics.jsonl").read_text())  # a file to link to
    _write(out / "steps" / "train.json", {"config": "data/configs/grpo-smoke.yaml", "overrides": [],
                                          "model": str(out / "train" / "model"), "seconds": 369.22, "summary": {
        "logged_steps": steps, "seconds_per_step": 4.754, "peak_mem_mb": 1782.7, "reward_first10": 0.2,
        "reward_last10": 0.9125, "reward_share": 0.0008, "heldout_reward_before": 0.0, "heldout_reward_after": 1.0,
        "plot": str(out / "train" / "curves.png")}})
    _write(out / "eval" / "heldout.jsonl", [{"question": f"Pick the lucky number for item {i}:", "answer": "7"} for i in range(4)])
    base_samples = [{"id": str(i), "prompt": f"Pick the lucky number for item {i}:", "completion": " 8", "extracted": "8",
                     "reason": "wrong: '8' != '7'", "score": 0.0} for i in range(4)]
    trained_samples = [{**s, "completion": " 7", "extracted": "7", "reason": "correct: '7' = '7'", "score": 1.0}
                       for s in base_samples]
    trained_samples[3].update(completion=" 8", extracted="8", reason="wrong: '8' != '7'", score=0.0)
    for label, samples in (("base", base_samples), ("trained", trained_samples)):
        _write(out / "eval" / label / "samples.jsonl", samples)
        _write(out / "eval" / label / "report.md", f"# {label}\n")
    cache_model = "/root/.cache/assay/models/toy-lucky-s0-n60"
    summary = lambda model, acc, secs: {"n": 4, "accuracy": acc, "suite": "toy-lucky", "model": model,  # noqa: E731
                                        "time": {"total_s": secs}}
    _write(out / "steps" / "evaluate.json", {
        "suite": str(out / "eval" / "suite.yaml"), "seconds": 21.3,
        "base": summary(cache_model, 0.0, 4.209123), "trained": summary(str(out / "train" / "model"), 0.75, 16.04512),
        "compare": {"suites": {"toy-lucky": {"flips": {"wrong_to_right": 3, "right_to_wrong": 0}}}}})
    _write(out / "eval" / "suite.yaml", "name: toy-lucky\n")
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
    # citations carry their snippet; no bare "doc [start:end]"
    assert "“proceeds as follows" in md and not re.search(r"\w \[\d+:\d+\]", md)
    # totals explained, best values marked, a sentence on what won
    assert "total = math + 0.2 × format" in md and "1.2 = 1 (math) + 0.2 (format)" in md
    assert "**0.8958**" in md and "dense ranks best" in md
    # 14 steps: the first and last 7, not an overlapping "first 10 / last 10"
    assert "first 7 steps" in md and "last 7 steps" in md and "first 10 steps" not in md
    # the two held-out figures are explained; flips show question, gold and both answers
    assert "Two held-out figures" in md
    assert "“Pick the lucky number for item 0:”" in md and "wrong → right" in md
    # the quick run claims no rerank or HyDE results
    assert "were not run" in md and not re.search(r"^\| \*\*(rerank|hyde)", md, re.M | re.I)
    # no machine paths, rounded numbers, every link resolves inside the run directory
    assert not MACHINE_PATHS.search(md), MACHINE_PATHS.search(md)
    assert not MACHINE_PATHS.search(html_text)
    assert _long_floats(re.sub(r"“[^”]*”", "", md)) == []
    links = re.findall(r"\]\(([^)#]+)\)", md)
    assert links and all((report / link).exists() for link in links), [x for x in links if not (report / x).exists()]
    assert {"report_files/reward_curve.png", "report_files/base_vs_trained.png", "eval/base/report.md",
            "steps/train.json", "train/metrics.jsonl"} <= set(links)


def test_a_full_run_shows_rerank_hyde_and_the_weighted_total(tmp_path):
    out = make_run(tmp_path / "demo", steps=30)
    retrieval = json.loads((out / "steps" / "retrieval.json").read_text())
    for name in ("hybrid+rerank", "hybrid+hyde"):
        retrieval["configurations"][name] = dict(retrieval["configurations"]["hybrid"])
    _write(out / "steps" / "retrieval.json", retrieval)
    metrics = [json.loads(line) for line in (out / "train" / "metrics.jsonl").read_text().splitlines()]
    for m in metrics:
        m["rewards/length/mean"] = 0.5
        m["reward"] = m["rewards/math/mean"] + 0.25
    _write(out / "train" / "metrics.jsonl", metrics)
    _write(out / "train" / "config.yaml", "rewards:\n- name: math\n  weight: 1.0\n- name: length\n  weight: 0.5\n")
    write_report(out, quick=False)
    md = (out / "report.md").read_text()
    assert "--rerank --rerank-depth 10 --hyde" in md and "| **hybrid+rerank**" in md and "| **hybrid+hyde**" in md
    assert "not run" not in md and "first 10 steps" in md
    assert "**Reward:** math + 0.5 × length" in md


def test_a_run_with_missing_steps_says_so(tmp_path):
    out = make_run(tmp_path / "demo")
    for step in ("train", "evaluate"):
        (out / "steps" / f"{step}.json").unlink()
    write_report(out, quick=True)
    md = (out / "report.md").read_text()
    assert "Not run" in md and "train, evaluate" in md
    assert "## 4. Training" not in md and "Two held-out figures" not in md


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


def test_report_html_in_headless_chromium(report, tmp_path):
    """What a reader sees: every section, every chart loaded, rounded numbers, no machine path."""
    browser = _chromium()
    if browser is None:
        pytest.skip("needs Chromium: apt-get install chromium chromium-driver (bash setup.sh --dev does it as root)")
    page = report / "report.check.html"  # beside report.html, so its relative links resolve the same
    page.write_text((report / "report.html").read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    proc = subprocess.run([browser, *chromium_args(tmp_path / "profile"), "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="assay-check">(.*?)</pre>', proc.stdout, re.S)
    assert found, proc.stderr[-2000:]
    import html

    seen = json.loads(html.unescape(found.group(1)))
    assert seen["h2"] == SECTIONS
    assert len(seen["images"]) == 3 and all(width > 0 for _, width in seen["images"]), seen["images"]
    visible = seen["text"]
    for quoted in seen["quoted"]:  # retrieved text and model answers are data, shown as they are
        visible = visible.replace(quoted, "")
    assert _long_floats(visible) == []
    assert not MACHINE_PATHS.search(seen["text"]), MACHINE_PATHS.search(seen["text"])
    assert not [u for u in seen["urls"] if MACHINE_PATHS.search(u) or u.startswith(("/", "file:"))]
    for phrase in ("Contents", "Total time:", "Versions:", "dense ranks best", "were not run", "Two held-out figures"):
        assert phrase in visible
    # and a screenshot renders (kept beside the report for a person to look at)
    shot = tmp_path / "report.png"
    subprocess.run([browser, *chromium_args(tmp_path / "profile"), "--window-size=1100,3000",
                    f"--screenshot={shot}", (report / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000
