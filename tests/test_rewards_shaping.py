"""Format, language consistency and length rewards."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.compose import score
from rewards.language import consistency, words_by_script

GOOD = "<think>\nadd them\n</think>\n<answer>\n4\n</answer>"


@pytest.mark.parametrize(
    "text,fmt,strict,lenient,tags",
    [
        (GOOD, 1.0, 1.0, 1.0, 1.0),
        ("<think>add</think> <answer>4</answer>", 1.0, 0.0, 1.0, 1.0),
        ("intro <think>add</think><answer>4</answer>", 0.0, 0.0, 1.0, 1.0),
        ("<think>add</think><answer>4</answer><answer>5</answer>", 0.0, 0.0, 1.0, 0.5),
        ("<answer>4</answer><think>add</think>", 0.0, 0.0, 0.0, 1.0),
        ("<think> </think><answer>4</answer>", 0.0, 0.0, 0.0, 1.0),
        ("<think>add</think>", 0.0, 0.0, 0.0, 0.5),
        ("just 4", 0.0, 0.0, 0.0, 0.0),
    ],
)
def test_format_family(text, fmt, strict, lenient, tags):
    rep = score("format,format_strict,format_lenient,tag_count", [text], [{}])
    got = [rep.scores(n)[0] for n in ("format", "format_strict", "format_lenient", "tag_count")]
    assert got == [fmt, strict, lenient, tags], rep.per_row()


def test_prefilled_think_and_code_fence():
    rep = score("format", ["add\n</think>\n<answer>4</answer>"], [{}], options={"format": {"prefilled_think": True}})
    assert rep.scores("format") == [1.0]
    code_ok = "<think>plan</think><answer>\n```python\ndef f():\n    return 1\n```\n</answer>"
    no_fence = "<think>plan</think><answer>def f(): return 1</answer>"
    wrong_lang = "<think>plan</think><answer>\n```js\nf()\n```\n</answer>"
    rep = score("format_code", [code_ok, no_fence, wrong_lang, "```python\nx=1\n```"], [{}] * 4)
    assert rep.scores("format_code") == [1.0, 0.0, 0.0, 0.0]


def test_language_scripts_and_langid():
    assert [s for _, s in words_by_script("我们 go да")] == ["HAN", "HAN", "LATIN", "CYRILLIC"]
    score_zh, reason = consistency("<think>我们先计算面积 then we add</think><answer>4</answer>", "zh")
    assert score_zh == pytest.approx(7 / 10) and "latin 3" in reason
    assert consistency("Let us compute the area of the triangle first.", "en")[0] == 1.0
    fr = "Nous calculons d'abord l'aire du triangle. Ensuite nous ajoutons les deux nombres."
    assert consistency(fr, "fr")[0] == 1.0
    assert consistency(fr, "en")[0] == 0.0
    mixed = "Let us compute the area of the triangle first. Ensuite nous ajoutons les deux nombres."
    s, _ = consistency(mixed, "en")
    assert 0.3 < s < 0.7
    assert consistency("Считаем площадь треугольника", "ru")[0] == 1.0
    assert consistency("$x^2 + 1 = 5$ 42", "en")[0] is None  # no words: does not apply
    rep = score("language", ["我们计算", "we compute it"], [{"language": "zh"}, {}])
    assert rep.scores("language") == [1.0, 1.0]


def test_overlong_dapo():
    rows = [{"completion_ids": list(range(n))} for n in (10, 12, 14, 16, 20)]
    rep = score("overlong", ["x"] * 5, rows, options={"overlong": {"max_len": 16, "cache_len": 4}})
    assert rep.scores("overlong") == [0.0, 0.0, -0.5, -1.0, -1.0]
    assert "tokens" in rep.results["overlong"][0].reason
    words = score("overlong", ["a b c", "a " * 30], [{}, {}], options={"overlong": {"max_len": 20, "cache_len": 5}})
    assert words.scores("overlong") == [0.0, -1.0] and "words" in words.results["overlong"][0].reason


def test_repetition():
    rep = score("repetition", ["the cat sat on the mat", "go go go go go go", "hi"], [{}] * 3)
    s = rep.scores("repetition")
    assert s[0] == 0.0 and s[1] == pytest.approx(-0.75) and s[2] == 0.0


def test_cosine_length_orders_by_length_and_correctness():
    short_right, long_right = "\\boxed{4}", "word " * 500 + "\\boxed{4}"
    short_wrong, long_wrong = "\\boxed{5}", "word " * 500 + "\\boxed{5}"
    rep = score("cosine_length", [short_right, long_right, short_wrong, long_wrong], [{"answer": "4"}] * 4)
    a, b, c, d = rep.scores("cosine_length")
    assert a > b > 0 > d > c
    assert a == pytest.approx(1.0, abs=1e-4) and c == pytest.approx(-1.0, abs=1e-4)


def test_kimi_group_length():
    rows = [{"answer": "4", "prompt": "p1"}] * 3 + [{"answer": "4", "prompt": "p2"}]
    comps = ["\\boxed{4}", "a b c d \\boxed{4}", "a b c d e f g h \\boxed{5}", "\\boxed{4}"]
    rep = score("length", comps, rows)
    s = rep.scores("length")
    assert s[0] == pytest.approx(0.5) and s[1] == pytest.approx(0.0) and s[2] == pytest.approx(-0.5)
    assert s[3] == 0.0  # a group of one has no spread
    rep = score("length", comps[:2], [{"answer": "4", "prompt": "p", "correct": False}] * 2)
    assert rep.scores("length") == [0.0, -0.5]  # a `correct` column overrides the math check


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 3000), st.booleans())
def test_cosine_bounds(n, correct):
    from rewards.length import cosine_length_reward

    r = cosine_length_reward(["w " * n], [{"answer": "1", "correct": correct}], max_len=1000)[0]
    lo, hi = (0.5, 1.0) if correct else (-1.0, -0.5)
    assert lo - 1e-9 <= r.score <= hi + 1e-9 and not math.isnan(r.score)


def test_overlong_counts_tokens_with_a_named_tokenizer(smollm2):
    from tokenizers import Tokenizer

    text = "The quick brown fox jumps over the lazy dog. " * 3
    n = len(Tokenizer.from_file(f"{smollm2}/tokenizer.json").encode(text, add_special_tokens=False).ids)
    rep = score("overlong", [text], [{}], options={"overlong": {"max_len": n + 1, "cache_len": 2, "tokenizer": smollm2}})
    # one token into the 2-token cache zone: halfway to -1; a word count would say otherwise
    assert rep.scores("overlong") == [-0.5] and f"{n} tokens" in rep.results["overlong"][0].reason
    assert len(text.split()) != n
