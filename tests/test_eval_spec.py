"""Custom YAML suites: prompt templates (chat and plain), few-shot, config errors."""

from __future__ import annotations

import pytest

from eval.suites import SuiteError, load_suite


def write(tmp_path, spec: str, rows: str):
    (tmp_path / "d.jsonl").write_text(rows)
    (tmp_path / "s.yaml").write_text(spec)
    return str(tmp_path / "s.yaml")


ROWS = "".join(f'{{"q": "{a} + {b}", "a": "{a + b}"}}\n' for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)])


def test_plain_fewshot_prompt(tmp_path):
    path = write(tmp_path, "data: d.jsonl\nanswer_field: a\nprompt:\n  style: plain\n  system: Add.\n"
                 "  template: \"Q: {q}\\nA:\"\n  answer_template: ' {a}'\n  fewshot: 2\nstop: ['Q:']\n", ROWS)
    suite = load_suite(path)
    rows = suite.load()
    assert len(rows) == 2  # the first two rows became the examples
    assert suite.prompt(rows[0]) == "Add.\n\nQ: 1 + 2\nA: 3\n\nQ: 3 + 4\nA: 7\n\nQ: 5 + 6\nA:"
    assert suite.stop == ("Q:",)


def test_chat_fewshot_prompt_alternates_turns(tmp_path):
    path = write(tmp_path, "data: d.jsonl\nanswer_field: a\nprompt:\n  template: '{q} = ?'\n  fewshot: 1\n", ROWS)
    suite = load_suite(path)
    msgs = suite.prompt(suite.load()[0])
    assert msgs == [{"role": "user", "content": "1 + 2 = ?"}, {"role": "assistant", "content": "3"},
                    {"role": "user", "content": "3 + 4 = ?"}]


def test_spec_errors_name_the_file_and_key(tmp_path):
    with pytest.raises(Exception, match="s.yaml.*(promt|unknown)"):
        load_suite(write(tmp_path, "data: d.jsonl\npromt: {}\n", ROWS))
    with pytest.raises(SuiteError, match="prompt.style must be chat or plain"):
        load_suite(write(tmp_path, "data: d.jsonl\nprompt:\n  style: fancy\n", ROWS))
    with pytest.raises(SuiteError, match="give `data: FILE.jsonl` or `hub"):
        load_suite(write(tmp_path, "name: x\n", ROWS))
    with pytest.raises(SuiteError, match="does not exist"):
        load_suite(str(tmp_path / "missing.yaml"))


def test_hub_spec_is_accepted_without_a_local_file(tmp_path):
    suite = load_suite(write(tmp_path, "hub: {id: openai/gsm8k, split: test, config: main}\nanswer_field: answer\n"
                             "prompt: {template: '{question}'}\n", ""))
    assert suite.source() == "hub:openai/gsm8k"


def test_metric_options_reach_the_reward_and_the_score_cache_key(tmp_path):
    from eval.cache import Cache
    from eval.suites.spec import load_spec_suite

    (tmp_path / "d.jsonl").write_text('{"q": "2+2", "answer": "4"}\n')
    spec = tmp_path / "s.yaml"
    spec.write_text("data: d.jsonl\nprompt: {template: '{q}'}\nmetrics: [math]\n")
    cache = Cache(tmp_path / "cache.sqlite")
    worked = "First I add the two.\nThe shop sold 4 after lunch"
    strict = load_spec_suite(str(spec)).score_cached([worked], [{"q": "2+2", "answer": "4"}], cache)
    assert strict[0].score == 0.0  # unmarked lines of working commit to nothing in default mode
    spec.write_text("data: d.jsonl\nprompt: {template: '{q}'}\nmetrics: [math]\nmetric_options: {math: {lenient: true}}\n")
    lenient = load_spec_suite(str(spec)).score_cached([worked], [{"q": "2+2", "answer": "4"}], cache)
    assert lenient[0].score == 1.0  # not the cached strict verdict


def test_every_row_is_checked_for_the_reward_fields_not_only_the_first():
    """Scoring goes through rewards.score: a later row missing the gold field is an error
    naming that row (the old path checked rows[0] only and scored the rest as wrong)."""
    import pytest

    from core.errors import UserError
    from eval.suites import reward_scores

    rows = [{"answer": "4"}, {"answer": "5"}, {"question": "no gold here"}]
    with pytest.raises(UserError, match=r"row 2: missing field 'answer'"):
        reward_scores("math", ["\\boxed{4}", "\\boxed{5}", "\\boxed{6}"], rows)
