"""`assay data sample` / `data decontaminate` / `data prefs`: verified, filtered, decontaminated data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assay.cli import main
from recipes import filters as F
from recipes.decontamination import Decontaminator, build


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _gsm(shared_data: Path, split: str, n: int) -> list[dict]:
    with open(shared_data / "gsm8k" / f"{split}.jsonl", encoding="utf-8") as fh:
        return [json.loads(next(fh)) for _ in range(n)]


def _gold(row: dict) -> str:
    return row["answer"].rsplit("####", 1)[1].strip()


@pytest.fixture
def traces(tmp_path, shared_data):
    """Teacher traces for two GSM8K train problems: right, wrong and unreadable ones, and one
    that copies a GSM8K test question into its reasoning."""
    train, test = _gsm(shared_data, "train", 2), _gsm(shared_data, "test", 1)
    g = _gold(train[0])
    rows = [
        {"id": "a", "question": train[0]["question"], "answer": train[0]["answer"], "completions": [
            f"She sold 48 / 2 = 24 clips in May, so 48 + 24 = {g} in all. The answer is {g}.",
            f"She sold  48/2 = 24 clips in May,  so 48 + 24 = {g} in all.  The answer is {g}.",  # a near-duplicate
            "The answer is 3.",  # wrong
            "Let me think. " + "we add the clips again and " * 8 + f"The answer is {g}.",  # a loop
            f"```python\nprint(48 + 24)\n```\nThe answer is {g}.",  # a code block in a math task
            "Nous calculons étape par étape : en mai elle vend la moitié, donc le total est "
            f"quarante-huit plus vingt-quatre. La réponse est {g}.",  # another language
        ]},
        {"id": "b", "question": train[1]["question"], "answer": train[1]["answer"],
         "completion": f"Similar to: {test[0]['question']} So the answer is {_gold(train[1])}."},
    ]
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_traces_are_verified_filtered_and_decontaminated(traces, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["data", "sample", "--task", "gsm8k", "--traces", str(traces), "--out", str(out), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    dropped = {d["id"]: d["filter"] for d in _jsonl(out / "dropped.jsonl")}
    assert dropped == {"a/1": "near_duplicate", "a/2": "verified", "a/3": "repetition", "a/4": "code_blocks",
                       "a/5": "language", "b": "contaminated"}
    sft = _jsonl(out / "sft.jsonl")
    assert [r["id"] for r in sft] == ["a/0"]
    assert sft[0]["prompt"][-1]["role"] == "user" and sft[0]["completion"][0]["role"] == "assistant"  # chat form
    assert sft[0]["answer"].endswith("#### 72")  # the gold travels, so the data can be re-scored
    pairs = _jsonl(out / "pairs.jsonl")
    assert [(p["id"], p["rejected_id"]) for p in pairs] == [("a/0", "a/2")]
    assert manifest["counts"]["kept"] == 1 and manifest["counts"]["dropped"]["verified"] == 1
    assert manifest["sha256"] and manifest["decontaminated_against"]["sources"]["gsm8k"] == 1319
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    assert main(["data", "sample", "--task", "gsm8k", "--traces", str(traces), "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    after = {f.name: f.read_bytes() for f in out.iterdir()}
    assert {k: v for k, v in after.items() if k != "manifest.json"} == {k: v for k, v in before.items() if k != "manifest.json"}


def test_a_switched_off_filter_keeps_what_it_would_drop(traces, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["data", "sample", "--task", "gsm8k", "--traces", str(traces), "--out", str(out), "--json",
                 "--no-filter", "code_blocks", "--decontaminate", "math500"]) == 0
    capsys.readouterr()
    kept = {r["id"] for r in _jsonl(out / "sft.jsonl")}
    assert {"a/4", "b"} <= kept  # the code block is kept; gsm8k was not in the decontamination list


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.jsonl", "no such file"),
    (lambda d: (d / "bad.jsonl").write_text('{"id": "x", "question": "q", "answer": "#### 1"}\n') and d / "bad.jsonl",
     "bad.jsonl:1: missing field 'completion'"),
    (lambda d: (d / "bad2.jsonl").write_text('{"id": "x", "completion": "1"}\n') and d / "bad2.jsonl",
     "bad2.jsonl:1: missing field 'question'"),
])
def test_bad_traces_are_one_line_and_write_nothing(tmp_path, capsys, make, message):
    path = make(tmp_path)
    out = tmp_path / "out"
    assert main(["data", "sample", "--task", "gsm8k", "--traces", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_an_unknown_benchmark_fails_before_any_sampling(traces, tmp_path, capsys):
    assert main(["data", "sample", "--task", "gsm8k", "--traces", str(traces), "--out", str(tmp_path / "o"),
                 "--decontaminate", "gsm8kk"]) == 2
    assert "gsm8kk: no such file" in capsys.readouterr().err


def test_a_model_samples_and_a_rerun_generates_nothing(tiny_lm, tmp_path, capsys, repo_root):
    args = ["data", "sample", "--task", str(repo_root / "data" / "suites" / "capitals.yaml"), "--model", str(tiny_lm),
            "--k", "3", "--max-new-tokens", "4", "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "c.sqlite"),
            "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["counts"]["samples"] == 3 * first["counts"]["prompts"] == first["counts"]["generated"]
    ids = [d["id"] for d in _jsonl(tmp_path / "o" / "dropped.jsonl")] + [r["id"] for r in _jsonl(tmp_path / "o" / "sft.jsonl")]
    assert len(ids) == len(set(ids)) == first["counts"]["samples"]  # every sample accounted for once
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["counts"]["generated"] == 0 and second["counts"]["from_cache"] == first["counts"]["samples"]
    assert second["counts"] == {**first["counts"], "generated": 0, "from_cache": first["counts"]["samples"]}


# ---- decontamination ---------------------------------------------------------------------

def test_an_edited_test_question_is_still_caught(shared_data):
    dec = build(["gsm8k"], data_root=str(shared_data))
    q = _gsm(shared_data, "test", 3)[2]["question"]
    assert dec.match(q) is not None
    edited = q.replace("Josh", "Maria").replace("house", "cabin")
    assert edited != q and dec.match(edited).source == "gsm8k/2"
    assert dec.match("A farmer has 12 cows and buys 5 more. How many cows does the farmer have now?") is None


def test_short_items_use_a_shorter_ngram():
    dec = Decontaminator(ngram=13, min_ngram=6)
    dec.add_many(["What is the smallest prime number greater than two hundred and ten?"], "toy")
    assert dec.n_for(12) == 6 and dec.n_for(40) == 13
    # one word changed in the middle: a 6-gram on one side survives
    assert dec.match("Tell me: what is the smallest prime number larger than two hundred and ten?") is not None
    assert dec.match("the smallest number") is None


@given(st.lists(st.sampled_from("alpha beta gamma delta one two three x y z plus minus".split()), min_size=14, max_size=40),
       st.text(alphabet="abc ", max_size=30), st.text(alphabet="xyz ", max_size=30))
def test_any_verbatim_copy_is_found(item_words, before, after):
    dec = Decontaminator()
    item = " ".join(item_words)
    dec.add(item, "item")
    assert dec.match(f"{before} {item.upper()} {after}") is not None


def test_decontaminate_a_file(tmp_path, shared_data, capsys):
    test = _gsm(shared_data, "test", 1)[0]["question"]
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"id": 1, "prompt": [{"role": "user", "content": test}]}) + "\n"
                    + json.dumps({"id": 2, "question": "How many legs do three spiders have?"}) + "\n")
    assert main(["data", "decontaminate", str(path), "--against", "gsm8k", "--out", str(tmp_path / "clean.jsonl"),
                 "--json", "--data-root", str(shared_data)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["contaminated"] == 1 and stats["examples"][0]["id"] == 1
    assert [r["id"] for r in _jsonl(tmp_path / "clean.jsonl")] == [2]


# ---- the filters one by one -------------------------------------------------------------

def test_filter_rules():
    assert F.truncated("length", "4") and F.truncated("stop", None) and F.truncated("stop", "4") is None
    assert F.repetition("ok " * 3 + "hahahahahahahahahahaha") and F.repetition("a b c d e f " * 7)
    assert F.repetition("a normal sentence that says one thing once.") is None
    assert F.code_blocks("text\n```python\nx = 1\n```") and F.code_blocks("inline `x` only") is None
    assert F.long_paragraphs("x" * 40, max_chars=30) and F.long_paragraphs("x" * 20 + "\n\n" + "y" * 20, max_chars=30) is None
    assert F.language("We add the two numbers and get the total of the clips.", "en") is None
    assert F.language("我们把两个数相加，得到总数。所以答案是七十二。", "en")
    dedup = F.NearDuplicates(0.8)
    assert dedup.check("one two three four five six seven", "x/0") is None
    assert dedup.check("One two  three four five six seven", "x/1").startswith("near_duplicate")
    assert dedup.check("a completely different line of reasoning here", "x/2") is None


def test_filter_config_says_did_you_mean():
    from core.config import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'repetition'"):
        F.FilterConfig(enabled=["repetiton"])
