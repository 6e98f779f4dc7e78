"""The `language` reward: language consistency of the reasoning, as DeepSeek-R1 defines it —
the proportion of words in the chain of thought that are in the target language.

Which text: the ``<think>`` block when there is one, else the whole completion. Which words:
letters only; numbers, LaTeX commands (``\\frac``), single Latin letters (math variables)
and code-ish tokens are not words. Each Han/Hiragana/Katakana character counts as one word
(those scripts do not separate words); other scripts are split into letter runs.

Which language a word is in:
- by its Unicode script where the script says it: CJK for zh/ja (Hangul for ko), Cyrillic,
  Arabic, Hebrew, Greek, Devanagari, Thai, ...;
- for Latin-script words, by langid (it ships its model; loaded once per process, lazily,
  only when a Latin-script target needs it) run on each sentence's Latin words. Sentences
  with fewer than 3 Latin words are too short to identify and count as the target language
  when the target is Latin-script.

The row field ``language`` (ISO 639-1, default "en") names the target. Score in [0, 1];
None when the reasoning has no words at all.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Any, Sequence

from rewards.base import RewardResult, register

# Target language -> the scripts its words are written in.
SCRIPTS: dict[str, set[str]] = {
    "zh": {"HAN"}, "ja": {"HAN", "HIRAGANA", "KATAKANA"}, "ko": {"HANGUL", "HAN"},
    "ru": {"CYRILLIC"}, "uk": {"CYRILLIC"}, "bg": {"CYRILLIC"}, "sr": {"CYRILLIC"}, "be": {"CYRILLIC"},
    "kk": {"CYRILLIC"}, "mk": {"CYRILLIC"}, "mn": {"CYRILLIC"},
    "ar": {"ARABIC"}, "fa": {"ARABIC"}, "ur": {"ARABIC"}, "he": {"HEBREW"}, "el": {"GREEK"},
    "hi": {"DEVANAGARI"}, "mr": {"DEVANAGARI"}, "ne": {"DEVANAGARI"}, "bn": {"BENGALI"},
    "th": {"THAI"}, "ka": {"GEORGIAN"}, "hy": {"ARMENIAN"}, "ta": {"TAMIL"}, "te": {"TELUGU"},
    "gu": {"GUJARATI"}, "kn": {"KANNADA"}, "ml": {"MALAYALAM"}, "pa": {"GURMUKHI"}, "am": {"ETHIOPIC"},
}
# Latin-script languages langid chooses among (the target is always added).
LATIN_CANDIDATES = ["en", "fr", "de", "es", "it", "pt", "nl", "sv", "da", "no", "pl", "cs", "tr", "id", "vi", "ro", "hu", "fi"]
_PER_CHAR = {"HAN", "HIRAGANA", "KATAKANA"}
_KNOWN = {s for v in SCRIPTS.values() for s in v} | {"LATIN", "BENGALI"}
_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.S)
_SENTENCE = re.compile(r"[.!?。！？\n;:]+")
_LATEX = re.compile(r"\\[A-Za-z]+|\$[^$]*\$|`[^`]*`")


def script_of(ch: str) -> str | None:
    """The script of a letter (LATIN, HAN, CYRILLIC, ...), None for a non-letter."""
    if not ch.isalpha():
        return None
    if ch.isascii():
        return "LATIN"
    name = unicodedata.name(ch, "")
    if name.startswith("CJK") or "IDEOGRAPH" in name:
        return "HAN"
    first = name.split(" ", 1)[0]
    return first if first in _KNOWN else first or None


def words_by_script(text: str) -> list[tuple[str, str]]:
    """[(word, script)] in order, per the rules in the module doc."""
    text = _LATEX.sub(" ", text)
    out: list[tuple[str, str]] = []
    cur, cur_script = [], None
    for ch in text + " ":
        s = script_of(ch)
        if s is not None and s in _PER_CHAR:
            if cur:
                out.append(("".join(cur), cur_script))
                cur, cur_script = [], None
            out.append((ch, s))
        elif s is not None and (s == cur_script or not cur):
            cur.append(ch)
            cur_script = s
        elif s is not None:
            out.append(("".join(cur), cur_script))
            cur, cur_script = [ch], s
        elif ch in "'’-" and cur:
            cur.append(ch)
        else:
            if cur:
                out.append(("".join(cur), cur_script))
            cur, cur_script = [], None
    words = []
    for w, s in out:
        w = w.strip("'’-")
        if not w or (s not in _PER_CHAR and len(w) < 2):  # x, θ: math variables
            continue
        words.append((w, s))
    return words


def ascii_words(text: str) -> list[str]:
    """`words_by_script`'s words of a text whose letters are all a-z, A-Z, without the walk
    over every character: LaTeX and code spans out, single letters (variables) out."""
    return [w.strip("'-") for w in re.findall(r"[A-Za-z][A-Za-z'-]*", _LATEX.sub(" ", text)) if len(w.strip("'-")) > 1]


_IDENT = None
_IDENT_LOCK = threading.Lock()


def _model_cache_path():
    import os
    from pathlib import Path

    from langid.langid import model

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "assay"
    return base / f"langid-model-{len(model)}.npz"


def _identifier():
    """langid's identifier, with its model decoded once per machine.

    langid ships its model bz2-compressed inside the package: decompressing it costs
    3-10 s on every start. The decoded arrays are cached as a numpy .npz (an open format,
    no pickle) under ~/.cache/assay, which then loads in a fraction of a second.
    """
    global _IDENT
    with _IDENT_LOCK:
        if _IDENT is not None:
            return _IDENT
        import array

        import numpy as np
        from langid.langid import LanguageIdentifier, model

        from core.files import atomic_open

        path = _model_cache_path()
        try:
            z = np.load(path, allow_pickle=False)
            nb_ptc, nb_pc = z["nb_ptc"], z["nb_pc"]
            classes = [str(c) for c in z["nb_classes"]]
            nextmove = array.array(str(z["tk_typecode"]), z["tk_nextmove"].tobytes())
            keys, offsets, values = z["out_keys"], z["out_offsets"], z["out_values"].tolist()
            output = {int(k): tuple(values[offsets[i] : offsets[i + 1]]) for i, k in enumerate(keys)}
            numfeats = nb_ptc.shape[0]
            _IDENT = LanguageIdentifier(nb_ptc, nb_pc, numfeats, classes, nextmove, output, norm_probs=True)
            return _IDENT
        except (OSError, KeyError, ValueError):
            pass
        _IDENT = LanguageIdentifier.from_modelstring(model, norm_probs=True)
        try:
            keys = sorted(_IDENT.tk_output)
            offsets = np.cumsum([0] + [len(_IDENT.tk_output[k]) for k in keys])
            values = [v for k in keys for v in _IDENT.tk_output[k]]
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(path, "wb", encoding=None) as fh:
                np.savez(
                    fh, nb_ptc=_IDENT.nb_ptc, nb_pc=_IDENT.nb_pc, nb_classes=np.array(_IDENT.nb_classes),
                    tk_nextmove=np.frombuffer(_IDENT.tk_nextmove.tobytes(), dtype=np.uint8),
                    tk_typecode=np.array(_IDENT.tk_nextmove.typecode),
                    out_keys=np.array(keys, dtype=np.int64), out_offsets=offsets.astype(np.int64),
                    out_values=np.array(values, dtype=np.int64),
                )
        except OSError:
            pass  # a read-only home: just slower next time
        return _IDENT


def latin_language(words: list[str], target: str) -> str:
    ident = _identifier()
    langs = sorted(set(LATIN_CANDIDATES) | ({target} if target in ident.nb_classes else set()))
    with _IDENT_LOCK:  # set_languages mutates the identifier
        ident.set_languages(langs)
        lang, _ = ident.classify(" ".join(words))
    return lang


def consistency(text: str, target: str = "en") -> tuple[float | None, str]:
    target = (target or "en").lower().split("-")[0].split("_")[0]
    m = _THINK.search(text)
    reasoning = m.group(1) if m else text
    target_scripts = SCRIPTS.get(target, {"LATIN"})
    latin_target = "LATIN" in target_scripts
    total = hits = 0
    foreign: dict[str, int] = {}
    for sentence in _SENTENCE.split(reasoning):
        words = words_by_script(sentence)
        if not words:
            continue
        latin = [w for w, s in words if s == "LATIN"]
        latin_ok = False
        latin_lang = "latin"
        if latin and latin_target:
            if len(latin) < 3:
                latin_ok = True
            else:
                latin_lang = latin_language(latin, target)
                latin_ok = latin_lang == target
        for w, s in words:
            total += 1
            ok = latin_ok if s == "LATIN" else s in target_scripts
            if ok:
                hits += 1
            else:
                key = latin_lang if s == "LATIN" else s.lower()
                foreign[key] = foreign.get(key, 0) + 1
    if total == 0:
        return None, "no words: nothing to judge in the reasoning"
    other = ", ".join(f"{k} {v}" for k, v in sorted(foreign.items(), key=lambda kv: -kv[1])[:3])
    return hits / total, f"{hits}/{total} words in {target}" + (f" (others: {other})" if other else "")


@register("language")
def language_reward(completions: Sequence[str], rows: Sequence[dict], *, default_language: str = "en", **_: Any) -> list[RewardResult]:
    """Share of reasoning words in the row's target `language` (DeepSeek-R1's consistency reward)."""
    out = []
    for text, row in zip(completions, rows):
        score, reason = consistency(text, row.get("language") or default_language)
        out.append(RewardResult(score, reason))
    return out
