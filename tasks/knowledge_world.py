"""A seeded knowledge world: an offline RAG QA benchmark about things that do not exist.

    world = generate(WorldConfig(seed=0))            # ~3,000 documents, ~4,000 questions
    write_world(world, "data/world")                 # corpus.jsonl, questions.jsonl, qrels/, ...
    assay data world --out data/world --seed 0       # the same, from the shell

Why invent a world: a model cannot have memorised facts about people, towns, guilds and
books that were made up a moment ago, so closed-book accuracy is near chance *by
construction* and a RAG system is measured on what it retrieves and reads, not on what its
pretraining saw. Everything is drawn from one `random.Random` per split, seeded from
`WorldConfig.seed`; no set or dict is iterated unsorted, so the same config gives the same
bytes on every machine (tested).

What is in it. Four kinds of entity, each with one document (its title is the name):

- places (towns): province, population, year founded, river; sometimes twinned with another town
- people: birth year (or full date, or "(born 1843, died 1901)"), birthplace (a town), occupation;
  sometimes a correspondent or teacher (another person)
- organisations ("the Orvane Guild"): founder (a person), year founded, headquarters (a
  town), number of members, field
- works ("Letters of Dorevan"): author (a person), year published, genre

Names are built from syllables (consonant-vowel, the last syllable closed), so they are
pronounceable and made up. Every invented word is used by one entity only (person first
names excepted), and never equals a word of the prose templates, so a name occurs in the
corpus only where that entity is meant: a question's target name is unique (tested).

Distractors. With probability `distractor_rate` an entity gets a near-duplicate sibling:
one interior vowel of one word changed ("Varno Keltis" / "Varno Keltin", "Orvane Guild" /
"Orvine Guild"), the same kind of facts with close but different values (birth years a few
years apart, ...), sometimes a "not to be confused with" note. Every person has a birth
year, every town a population: the corpus is full of similar facts about other entities.

Prose varies: several templates per fact and per document opening, facts in shuffled
order, pronouns and descriptions in place of the name, filler sentences. Relations are
stated in one direction only: an organisation's document names its founder and its town,
a work's names its author, a person's names their birthplace -- and the person's document
does not mention what they founded or wrote. So a bridge question needs two documents.

Questions (`questions.jsonl`: id, question, answers, type, split, gold_docs, entities):

- ``single``: one fact from one document ("In what year was the Orvane Guild founded?")
- ``two_hop``: a bridge ("Where was the founder of the Orvane Guild born?"): the first
  document names the bridge entity, the second holds the answer; gold_docs in hop order,
  the bridge's name in ``bridge``. The question shares no rare word with the second
  document, so the question alone rarely retrieves it (measured in the tests).
- ``comparison``: "Which was founded first, X or Y?"; the answer is one of the two names.
- ``unanswerable``: about an attribute the corpus never states (some facts are left out
  with probability `unstated_rate`, everywhere) or about an entity that does not exist (a
  fresh name, or a one-letter variant of a real one); ``answers: []``, ``gold_docs: []``.
  The right answer is to say the documents do not say.

Answers are high-cardinality on purpose (names, years, counts; occupations, genres and
fields appear in the prose but are never asked), so guessing the most frequent training
answer scores near 0 (tested). Aliases: counts with and without thousands separators,
organisations with and without "the", titles without a leading "The".

Splits are *by entity*: the world is three disjoint sub-worlds (train, dev, test) whose
entities only relate to entities of the same split; all their documents form one corpus
(retrieval searches everything), but no test entity appears in a train question or in a
train question's gold documents, so no test fact is seen in training.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.errors import UserError

FORMAT_VERSION = 1
SPLITS = ("train", "dev", "test")
QUESTION_TYPES = ("single", "two_hop", "comparison", "unanswerable")
KINDS = ("place", "person", "org", "work")
# Share of each split's documents per entity kind (the rest of the split are works).
KIND_MIX = {"place": 0.2, "person": 0.4, "org": 0.2, "work": 0.2}


class WorldError(UserError, ValueError):
    """A bad world setting or output directory (one line, exit 2 from the CLI)."""


@dataclass
class WorldConfig:
    """Settings of `generate`. Defaults give ~3,000 documents and 4,000 questions in ~2 s."""

    seed: int = 0
    """Seed of every random choice; the same config always gives byte-identical files."""
    docs: int = 3000
    """Documents in the corpus (one per entity), over all splits; the smallest split needs at least 12."""
    questions: int = 4000
    """Questions over all splits (each split gets its share of `split_fractions`). At least 10."""
    train_fraction: float = 0.8
    """Share of entities (hence documents and questions) in the train split."""
    dev_fraction: float = 0.1
    """Share in the dev split; test gets the rest (1 - train - dev, must be > 0)."""
    single_fraction: float = 0.45
    """Share of `single` questions (one fact, one document)."""
    two_hop_fraction: float = 0.25
    """Share of `two_hop` bridge questions (two documents, in hop order)."""
    comparison_fraction: float = 0.15
    """Share of `comparison` questions ("Which was founded first, X or Y?")."""
    unanswerable_fraction: float = 0.15
    """Share of `unanswerable` questions (answers: []). The four type shares must sum to 1."""
    distractor_rate: float = 0.3
    """Chance that an entity gets a near-duplicate-named sibling with similar facts."""
    unstated_rate: float = 0.12
    """Chance that an omissible fact (a birth year, a population, ...) is stated nowhere."""
    confusable_unanswerable: float = 0.5
    """Share of the non-existent-entity questions that use a one-letter variant of a real
    name (the rest use a fresh name)."""

    def __post_init__(self) -> None:
        for name in ("seed", "docs", "questions"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise WorldError(f"{name} must be an integer, got {v!r}")
        if self.questions < 10:
            raise WorldError(f"questions must be at least 10, got {self.questions}")
        fractions = ("train_fraction", "dev_fraction", "single_fraction", "two_hop_fraction",
                     "comparison_fraction", "unanswerable_fraction", "distractor_rate", "unstated_rate",
                     "confusable_unanswerable")
        for name in fractions:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= v <= 1.0:
                raise WorldError(f"{name} must be a number in [0, 1], got {v!r}")
        if self.train_fraction <= 0 or self.dev_fraction <= 0 or self.train_fraction + self.dev_fraction >= 1:
            raise WorldError(f"train_fraction ({self.train_fraction}) and dev_fraction ({self.dev_fraction}) must "
                             "be > 0 and leave a test share > 0")
        total = self.single_fraction + self.two_hop_fraction + self.comparison_fraction + self.unanswerable_fraction
        if abs(total - 1.0) > 1e-6:
            raise WorldError(f"the question type fractions must sum to 1, got {total:g}")
        smallest = min(_shares(self.docs, self.split_fractions()).values())
        if smallest < 12:
            raise WorldError(f"docs={self.docs} leaves the smallest split {smallest} documents; "
                             "it needs at least 12 (raise --docs or the split fractions)")

    def split_fractions(self) -> dict[str, float]:
        return {"train": self.train_fraction, "dev": self.dev_fraction,
                "test": 1.0 - self.train_fraction - self.dev_fraction}

    def type_fractions(self) -> dict[str, float]:
        return {"single": self.single_fraction, "two_hop": self.two_hop_fraction,
                "comparison": self.comparison_fraction, "unanswerable": self.unanswerable_fraction}


# ---- vocabulary ------------------------------------------------------------------------

_ONSETS = ("b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "r", "s", "st",
           "t", "th", "tr", "v", "z", "sh", "j", "c", "w")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ei", "ou", "ia")
_CODAS = ("n", "r", "l", "s", "m", "th", "nd", "rn", "lt", "sk", "x", "v")
_PLAIN_VOWELS = "aeiou"

OCCUPATIONS = ("cartographer", "glassblower", "composer", "physician", "astronomer", "shipwright",
               "botanist", "engraver", "magistrate", "poet", "clockmaker", "surveyor", "weaver",
               "apothecary", "architect", "translator", "sculptor", "merchant", "linguist", "printer")
ORG_KINDS = ("Guild", "Institute", "Company", "Society", "Foundation", "Academy", "Observatory",
             "Trading House", "Shipyard", "Bank", "Conservatory", "Press", "Brotherhood", "Museum")
ORG_FIELDS = ("river trade", "lens grinding", "maritime insurance", "the study of tides", "bookbinding",
              "dye making", "seed collection", "bell founding", "mapmaking", "the training of pilots",
              "music printing", "mineral surveys", "the care of orchards", "weather records")
WORK_NOUNS = ("Chronicle", "Letters", "Winter", "Harbour", "Lantern", "Orchard", "Testament", "Crossing",
              "Garden", "Song", "Bridge", "Mirror", "Atlas", "Elegy", "Ledger", "Almanac", "Voyage")
WORK_ADJS = ("Silent", "Last", "Long", "Hollow", "Amber", "Northern", "Quiet", "Second", "Burning",
             "Distant", "Narrow", "Salt")
WORK_KINDS = ("novel", "play", "treatise", "memoir", "poem cycle", "essay collection", "travelogue")
GENRES = ("historical", "satirical", "pastoral", "philosophical", "comic", "tragic", "epistolary",
          "allegorical", "didactic", "lyrical")
PRODUCTS = ("slate roofs", "woollen cloth", "smoked eels", "copper bells", "rope works", "pear brandy",
            "stone bridges", "salt pans", "glass beads", "horse fairs", "tide mills", "painted tiles")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")

# ---- prose templates -------------------------------------------------------------------
# {N} = the entity's name (as written in prose), {S} = subject (name, pronoun or description).

PLACE_INTRO = (
    "{N} is a town in the province of {region}.",
    "{N} is a market town on the {river}, in the province of {region}.",
    "Lying in the province of {region}, {N} is a town of modest size.",
    "{N} is a settlement in {region} province.",
)
PLACE_FACTS = {
    "population": ("{S} has a population of {population}.", "Some {population} people live in {N}.",
                   "At the last count {N} was home to {population} inhabitants.",
                   "{S} is home to about {population} residents."),
    "founded_year": ("{S} was founded in {founded_year}.", "The town dates from {founded_year}, when it was first settled.",
                     "{N} was established in {founded_year}.", "Records show {N} was founded in the year {founded_year}."),
    "river": ("{S} stands on the banks of the {river}.", "The {river} runs through the centre of {N}."),
    "twin": ("{S} is twinned with {twin}.", "{N} keeps close ties with the town of {twin}."),
}
PLACE_FILLER = ("The town is known for its {product}.", "Visitors come for its {product}.",
                "A weekly market is held in the main square.", "The old quarter keeps its narrow lanes.")

PERSON_INTRO = (
    "{N} was {a_occupation}.",
    "{N} (born {birth_year}, died {death_year}) was {a_occupation}.",
    "{N} was {a_occupation} of some renown.",
    "{N} is remembered as {a_occupation}.",
)
PERSON_FACTS = {
    "birth_year": ("{S} was born in {birth_year}.", "{S} was born on {day} {month} {birth_year}.",
                   "Born in {birth_year}, {N} showed an early talent.", "{N}'s birth year was {birth_year}."),
    "birthplace": ("{S} was born in {birthplace}.", "{N} grew up in {birthplace}, the town of {poss} birth.",
                   "{N} was a native of {birthplace}, where {pron} was born.", "{poss_cap} birthplace was {birthplace}."),
    "death_year": ("{S} died in {death_year}.", "{N} died in {death_year}."),
    "contact": ("{S} corresponded for years with {contact}.", "{N} was a pupil of {contact}."),
}
PERSON_FILLER = ("{pron_cap} worked as {a_occupation} for most of {poss} life.",
                 "{pron_cap} travelled widely in {poss} youth.",
                 "Little of {poss} private correspondence survives.",
                 "{pron_cap} was known for a patient, exacting manner.")

ORG_INTRO = (
    "{N_the_cap} is {a_field_kind} devoted to {field}.",
    "{N_the_cap} is an organisation working in {field}.",
    "{N_the_cap} is {a_field_kind} with a long history.",
    "Among institutions of its kind, {N_the} is one of the best known.",
)
ORG_FACTS = {
    "founder": ("{S} was founded by {founder}.", "{founder} established {N_the}.",
                "{N_the_cap} owes its existence to its founder, {founder}.", "The founder of {N_the} was {founder}."),
    "founded_year": ("{S} was founded in {founded_year}.", "{N_the_cap} was established in {founded_year}.",
                     "It dates back to {founded_year}, the year of its founding.", "{N_the_cap} opened its doors in {founded_year}."),
    "hq": ("{S} is headquartered in {hq}.", "{N_the_cap} has its seat in {hq}.",
           "Its headquarters are in {hq}.", "{N_the_cap} is based in the town of {hq}."),
    "members": ("{S} has {members} members.", "Today {N_the} counts {members} members.",
                "Membership stands at {members}."),
}
ORG_FILLER = ("It publishes an annual report on {field}.", "Its archive is open to scholars by appointment.",
              "It specialises in {field}.", "A council of elders governs its affairs.")

WORK_INTRO = (
    "{N} is {a_genre} {work_kind}.",
    "{N} is {a_work_kind}, {genre} in tone.",
    "{N} is {a_genre} {work_kind} set in the province of {region}.",
    "The {work_kind} {N} is counted among the {genre} classics.",
)
WORK_FACTS = {
    "author": ("{S} was written by {author}.", "{author} wrote {N}.", "{N} is the work of {author}.",
               "Its author was {author}."),
    "year": ("{S} was first published in {year}.", "{N} appeared in {year}.",
             "It was published in {year}.", "The first edition of {N} came out in {year}."),
}
WORK_FILLER = ("Critics praised its {genre} style.", "It has been translated into several languages.",
               "The first edition ran to a few hundred copies.", "Scholars still debate its ending.")

CONFUSABLE = ("Not to be confused with {twin}.", "{N} should not be confused with {twin}.")

# Question templates: single facts per (kind, attribute); {X} = the entity as named in a question.
SINGLE_Q = {
    ("person", "birth_year"): ("In what year was {X} born?", "What year was {X} born in?", "{X} was born in which year?"),
    ("person", "birthplace"): ("Where was {X} born?", "In which town was {X} born?", "What is the birthplace of {X}?"),
    ("place", "population"): ("What is the population of {X}?", "How many people live in {X}?"),
    ("place", "founded_year"): ("When was {X} founded?", "In what year was the town of {X} founded?"),
    ("place", "region"): ("In which province is {X}?", "{X} lies in which province?"),
    ("org", "founded_year"): ("In what year was {X} founded?", "When was {X} established?"),
    ("org", "founder"): ("Who founded {X}?", "Who established {X}?", "Who was the founder of {X}?"),
    ("org", "hq"): ("Where is {X} headquartered?", "In which town is {X} based?"),
    ("org", "members"): ("How many members does {X} have?", "What is the membership of {X}?"),
    ("work", "author"): ("Who wrote {X}?", "Who is the author of {X}?"),
    ("work", "year"): ("When was {X} first published?", "In what year did {X} appear?"),
}
# (kind, bridge attribute, bridge kind, answer attribute) -> templates
TWO_HOP_Q = {
    ("org", "founder", "person", "birthplace"): ("Where was the founder of {X} born?",
                                                 "In which town was the person who founded {X} born?"),
    ("org", "founder", "person", "birth_year"): ("In what year was the founder of {X} born?",
                                                 "When was the person who established {X} born?"),
    ("work", "author", "person", "birthplace"): ("Where was the author of {X} born?",
                                                 "In which town was the writer of {X} born?"),
    ("work", "author", "person", "birth_year"): ("In what year was the author of {X} born?",
                                                 "When was the writer of {X} born?"),
    ("org", "hq", "place", "population"): ("What is the population of the town where {X} is headquartered?",
                                           "How many people live in the town that is home to {X}?"),
    ("org", "hq", "place", "founded_year"): ("When was the town where {X} has its seat founded?",),
    ("person", "birthplace", "place", "region"): ("In which province is the birthplace of {X}?",
                                                  "{X} was born in a town of which province?"),
    ("person", "birthplace", "place", "population"): ("How many people live in the town where {X} was born?",),
}
COMPARISON_Q = {
    ("org", "founded_year"): ("Which was founded first, {A} or {B}?", "Which is older, {A} or {B}?"),
    ("person", "birth_year"): ("Who was born first, {A} or {B}?", "Who is older, {A} or {B}?"),
    ("place", "population"): ("Which town has more inhabitants, {A} or {B}?", "Which is larger by population, {A} or {B}?"),
    ("work", "year"): ("Which was published first, {A} or {B}?", "Which appeared earlier, {A} or {B}?"),
    ("place", "founded_year"): ("Which town was founded first, {A} or {B}?",),
}
# Larger wins for these attributes; smaller (earlier) for the rest.
LARGER_WINS = {"population", "members"}
OMISSIBLE = {"person": ("birth_year", "birthplace"), "place": ("population", "founded_year"),
             "org": ("founded_year", "members"), "work": ("year",)}
ENTITY_VALUED = {"birthplace", "founder", "hq", "author"}


def _template_words() -> frozenset[str]:
    words: set[str] = set()
    texts: list[str] = []
    for group in (PLACE_INTRO, PLACE_FILLER, PERSON_INTRO, PERSON_FILLER, ORG_INTRO, ORG_FILLER, WORK_INTRO,
                  WORK_FILLER, CONFUSABLE, OCCUPATIONS, ORG_KINDS, ORG_FIELDS, WORK_NOUNS, WORK_ADJS, WORK_KINDS,
                  GENRES, PRODUCTS, MONTHS):
        texts.extend(group)
    for table in (PLACE_FACTS, PERSON_FACTS, ORG_FACTS, WORK_FACTS, SINGLE_Q, TWO_HOP_Q, COMPARISON_Q):
        for group in table.values():
            texts.extend(group)
    for t in texts:
        words.update(w.lower() for w in re.findall(r"[A-Za-z]+", t))
    return frozenset(words | {"river", "province", "town", "the", "of", "and", "she", "he", "they"})


_RESERVED = _template_words()


# ---- the world -------------------------------------------------------------------------

@dataclass
class Entity:
    key: str
    """Internal key, e.g. ``test/person/12``."""
    kind: str
    name: str
    split: str
    attrs: dict = field(default_factory=dict)
    """Every fact of the entity (stated or not); entity-valued facts hold entity keys."""
    unstated: list = field(default_factory=list)
    """Omissible facts that no document states."""
    twin: str | None = None
    """The near-duplicate sibling's key, if any."""
    doc_id: str = ""
    mentions: list = field(default_factory=list)
    """Keys of every entity named in this entity's document (itself first)."""


@dataclass
class World:
    config: WorldConfig
    entities: dict[str, Entity]
    corpus: list[dict]
    questions: list[dict]

    def entity_by_doc(self) -> dict[str, Entity]:
        return {e.doc_id: e for e in self.entities.values()}

    def stats(self) -> dict:
        by_type: dict[str, int] = {}
        by_split: dict[str, int] = {}
        for q in self.questions:
            by_type[q["type"]] = by_type.get(q["type"], 0) + 1
            by_split[q["split"]] = by_split.get(q["split"], 0) + 1
        return {"docs": len(self.corpus), "questions": len(self.questions),
                "types": {t: by_type.get(t, 0) for t in QUESTION_TYPES},
                "splits": {s: by_split.get(s, 0) for s in SPLITS}}


class _Names:
    """Invented words; each is handed out once (first names excepted) and never collides
    with a word of the templates."""

    def __init__(self, rng) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.first_names: list[str] = []
        while len(self.first_names) < 160:
            w = self._word(2, closed=self.rng.random() < 0.5)
            if self._free(w):
                self.used.add(w.lower())
                self.first_names.append(w)

    def _word(self, syllables: int, closed: bool = True) -> str:
        r = self.rng
        parts = [r.choice(_ONSETS) + r.choice(_VOWELS) for _ in range(syllables)]
        if closed:
            parts[-1] += r.choice(_CODAS)
        return "".join(parts).capitalize()

    def _free(self, w: str) -> bool:
        lw = w.lower()
        return 4 <= len(lw) <= 11 and lw not in self.used and lw not in _RESERVED

    def fresh(self, syllables: tuple[int, ...] = (2, 3)) -> str:
        while True:
            w = self._word(self.rng.choice(syllables), closed=self.rng.random() < 0.75)
            if self._free(w):
                self.used.add(w.lower())
                return w

    def variant(self, word: str) -> str | None:
        """`word` with one interior vowel changed (never in the last two letters, so a
        stemmer cannot map both to one stem); None when no free variant exists."""
        positions = [i for i, c in enumerate(word[:-2]) if i > 0 and c.lower() in _PLAIN_VOWELS]
        self.rng.shuffle(positions)
        for i in positions:
            for v in self.rng.sample(_PLAIN_VOWELS, len(_PLAIN_VOWELS)):
                if v == word[i].lower():
                    continue
                w = word[:i] + v + word[i + 1:]
                if self._free(w):
                    self.used.add(w.lower())
                    return w
        return None


def _fmt_count(n: int) -> str:
    return f"{n:,}"


def _round3(n: int) -> int:
    """Round to three significant figures (populations read as counts people quote)."""
    digits = len(str(n))
    if digits <= 3:
        return n
    q = 10 ** (digits - 3)
    return max(q, round(n / q) * q)


class _Builder:
    def __init__(self, cfg: WorldConfig) -> None:
        import random

        self.cfg = cfg
        self.rng = random.Random(f"knowledge-world:{cfg.seed}")
        self.names = _Names(self.rng)
        self.entities: dict[str, Entity] = {}
        self.by_split_kind: dict[tuple[str, str], list[str]] = {}
        self.regions: dict[str, list[str]] = {}
        self.rivers: dict[str, list[str]] = {}

    # ---- entities ----
    def _new(self, split: str, kind: str, name: str, attrs: dict) -> Entity:
        lst = self.by_split_kind.setdefault((split, kind), [])
        e = Entity(key=f"{split}/{kind}/{len(lst)}", kind=kind, name=name, split=split, attrs=attrs)
        lst.append(e.key)
        self.entities[e.key] = e
        return e

    def _twin_name(self, kind: str, name: str) -> str | None:
        words = name.split(" ")
        if kind == "person":
            idx = [1]
        elif kind == "org":
            idx = [0]
        elif kind == "work":
            idx = [i for i, w in enumerate(words) if w.lower() in self.names.used]
        else:
            idx = [0]
        for i in idx:
            v = self.names.variant(words[i])
            if v:
                return " ".join(words[:i] + [v] + words[i + 1:])
        return None

    def _kind_names(self, kind: str, n: int) -> list[tuple[str, int | None]]:
        """n names of a kind; (name, index of the sibling it is a near-duplicate of)."""
        r = self.rng
        out: list[tuple[str, int | None]] = []
        has_twin: set[int] = set()
        while len(out) < n:
            i = len(out) - 1
            if i >= 0 and out[i][1] is None and i not in has_twin and r.random() < self.cfg.distractor_rate:
                name = self._twin_name(kind, out[i][0])
                if name is not None:
                    has_twin.add(i)
                    out.append((name, i))
                    continue
            out.append((self._fresh_name(kind), None))
        return out

    def _fresh_name(self, kind: str) -> str:
        r, nm = self.rng, self.names
        if kind == "person":
            return f"{r.choice(nm.first_names)} {nm.fresh((2, 3))}"
        if kind == "place":
            return nm.fresh((2, 3))
        if kind == "org":
            return f"{nm.fresh((2, 3))} {r.choice(ORG_KINDS)}"
        tok = nm.fresh((2, 3))
        pattern = r.randrange(4)
        if pattern == 0:
            return f"The {tok} {r.choice(WORK_NOUNS)}"
        if pattern == 1:
            return f"{r.choice(WORK_NOUNS)} of {tok}"
        if pattern == 2:
            return f"The {r.choice(WORK_ADJS)} {r.choice(WORK_NOUNS)} of {tok}"
        return f"{tok}"

    def build_split(self, split: str, n_docs: int) -> None:
        r = self.rng
        counts = {k: max(3, round(n_docs * KIND_MIX[k])) for k in ("place", "person", "org")}
        counts["work"] = max(3, n_docs - sum(counts.values()))
        while sum(counts.values()) > n_docs:  # the minimums overshot a tiny split
            biggest = max(counts, key=lambda k: (counts[k], k))
            counts[biggest] -= 1
        self.regions[split] = [self.names.fresh((3,)) for _ in range(max(3, counts["place"] // 6))]
        self.rivers[split] = [self.names.fresh((2,)) for _ in range(max(3, counts["place"] // 4))]

        def near(value: int, lo: int, hi: int) -> int:
            v = value
            while v == value:
                v = min(hi, max(lo, value + r.choice((-1, 1)) * r.randint(1, 12)))
            return v

        def differ(pool: list, value):
            """A choice from `pool` other than `value` (twins never share an asked fact)."""
            return r.choice([x for x in pool if x != value])

        def omit(e: Entity) -> None:
            e.unstated = [a for a in OMISSIBLE[e.kind] if r.random() < self.cfg.unstated_rate]

        # places
        places: list[Entity] = []
        for name, sib in self._kind_names("place", counts["place"]):
            if sib is None:
                attrs = {"region": r.choice(self.regions[split]), "river": r.choice(self.rivers[split]),
                         "population": _round3(int(10 ** r.uniform(3.0, 6.3))), "founded_year": r.randint(820, 1880),
                         "product": r.choice(PRODUCTS)}
            else:
                s = places[sib].attrs
                pop = s["population"]
                while pop == s["population"]:
                    pop = _round3(int(pop * r.uniform(0.6, 1.6)))
                attrs = dict(s, population=pop, founded_year=near(s["founded_year"], 800, 1900),
                             river=r.choice(self.rivers[split]),
                             region=differ(self.regions[split], s["region"]))
            e = self._new(split, "place", name, attrs)
            if sib is not None:
                e.twin, places[sib].twin = places[sib].key, e.key
            omit(e)
            places.append(e)
        for e in places:
            if r.random() < 0.25:
                other = r.choice(places)
                if other.key != e.key:
                    e.attrs["twin_town"] = other.key

        # people
        people: list[Entity] = []
        for name, sib in self._kind_names("person", counts["person"]):
            if sib is None:
                by = r.randint(1620, 1960)
                attrs = {"birth_year": by, "birthplace": r.choice(places).key, "occupation": r.choice(OCCUPATIONS),
                         "pronoun": r.choice(("she", "he"))}
            else:
                s = people[sib].attrs
                attrs = dict(s, birth_year=near(s["birth_year"], 1600, 1975),
                             birthplace=differ([p.key for p in places], s["birthplace"]))
            attrs["death_year"] = attrs["birth_year"] + r.randint(38, 94)
            if attrs["death_year"] > 2023:
                attrs["death_year"] = None  # still living
            attrs["day"], attrs["month"] = r.randint(1, 28), r.choice(MONTHS)
            e = self._new(split, "person", name, attrs)
            if sib is not None:
                e.twin, people[sib].twin = people[sib].key, e.key
            omit(e)
            people.append(e)
        for e in people:
            if r.random() < 0.3:
                other = r.choice(people)
                if other.key != e.key:
                    e.attrs["contact"] = other.key

        # organisations
        orgs: list[Entity] = []
        for name, sib in self._kind_names("org", counts["org"]):
            founder = r.choice(people)
            fy = min(2015, founder.attrs["birth_year"] + r.randint(22, 60))
            members = int(10 ** r.uniform(1.3, 4.8))
            if sib is None:
                attrs = {"founder": founder.key, "founded_year": fy, "hq": r.choice(places).key,
                         "members": members, "field": r.choice(ORG_FIELDS)}
            else:
                s = orgs[sib].attrs
                fy = near(s["founded_year"], 1600, 2015)
                elders = [p.key for p in people if p.attrs["birth_year"] <= fy - 20 and p.key != s["founder"]]
                attrs = dict(s, founder=r.choice(elders) if elders else differ([p.key for p in people], s["founder"]),
                             founded_year=fy,
                             members=members if members != s["members"] else members + 7,
                             hq=differ([p.key for p in places], s["hq"]))
            e = self._new(split, "org", name, attrs)
            if sib is not None:
                e.twin, orgs[sib].twin = orgs[sib].key, e.key
            omit(e)
            orgs.append(e)

        # works
        works: list[Entity] = []
        for name, sib in self._kind_names("work", counts["work"]):
            author = r.choice(people)
            year = min(2020, author.attrs["birth_year"] + r.randint(19, 70))
            if sib is None:
                attrs = {"author": author.key, "year": year, "genre": r.choice(GENRES),
                         "work_kind": r.choice(WORK_KINDS), "setting": r.choice(self.regions[split])}
            else:
                s = works[sib].attrs
                year = near(s["year"], 1600, 2020)
                elders = [p.key for p in people if p.attrs["birth_year"] <= year - 18 and p.key != s["author"]]
                attrs = dict(s, author=r.choice(elders) if elders else differ([p.key for p in people], s["author"]),
                             year=year)
            e = self._new(split, "work", name, attrs)
            if sib is not None:
                e.twin, works[sib].twin = works[sib].key, e.key
            omit(e)
            works.append(e)

    # ---- prose ----
    def mention(self, key: str) -> str:
        e = self.entities[key]
        return f"the {e.name}" if e.kind == "org" else e.name

    def document(self, e: Entity) -> str:
        r = self.rng
        a = e.attrs
        ctx: dict = {"N": e.name, "product": a.get("product", ""), "occupation": a.get("occupation", ""),
                     "field": a.get("field", ""), "genre": a.get("genre", ""), "work_kind": a.get("work_kind", "")}
        for k in ("occupation", "genre", "work_kind"):
            ctx["a_" + k] = _a(ctx[k])
        mentions = [e.key]
        if e.kind == "org":
            ctx["N_the"] = f"the {e.name}"
            ctx["N_the_cap"] = f"The {e.name}"
            ctx["field_kind"] = e.name.split(" ", 1)[1].lower()
            ctx["a_field_kind"] = _a(ctx["field_kind"])
        if e.kind == "person":
            p = a["pronoun"]
            ctx.update(pron=p, pron_cap=p.capitalize(), poss="her" if p == "she" else "his",
                       poss_cap="Her" if p == "she" else "His", birth_year=a["birth_year"], death_year=a["death_year"],
                       day=a["day"], month=a["month"])
            bp = self.entities[a["birthplace"]]
            ctx["birthplace"] = bp.name
            ctx["region"] = bp.attrs["region"]
        for k in ("region", "river"):
            if k in a and k not in ctx:
                ctx[k] = a[k]
        if "river" in ctx:
            ctx["river"] = f"river {ctx['river']}" if r.random() < 0.5 else f"{ctx['river']} river"
        if e.kind == "place":
            ctx["population"] = _fmt_count(a["population"])
            ctx["founded_year"] = a["founded_year"]
        if e.kind == "org":
            ctx.update(founder=self.entities[a["founder"]].name, founded_year=a["founded_year"],
                       hq=self.entities[a["hq"]].name, members=_fmt_count(a["members"]))
        if e.kind == "work":
            author = self.entities[a["author"]]
            ctx.update(author=author.name, year=a["year"], region=a["setting"])

        if e.kind == "place":
            intros, facts, filler = PLACE_INTRO, PLACE_FACTS, PLACE_FILLER
            stated = ["population", "founded_year", "river"] + (["twin"] if "twin_town" in a else [])
            if "twin_town" in a:
                ctx["twin"] = self.entities[a["twin_town"]].name
                mentions.append(a["twin_town"])
        elif e.kind == "person":
            intros, facts, filler = PERSON_INTRO, PERSON_FACTS, PERSON_FILLER
            stated = ["birth_year", "birthplace"] + (["death_year"] if a["death_year"] else []) \
                + (["contact"] if "contact" in a else [])
            if "contact" in a:
                ctx["contact"] = self.entities[a["contact"]].name
                mentions.append(a["contact"])
        elif e.kind == "org":
            intros, facts, filler = ORG_INTRO, ORG_FACTS, ORG_FILLER
            stated = ["founder", "founded_year", "hq", "members"]
        else:
            intros, facts, filler = WORK_INTRO, WORK_FACTS, WORK_FILLER
            stated = ["author", "year"]
        stated = [s for s in stated if s not in e.unstated]
        if e.kind == "person" and "birth_year" in e.unstated:
            stated = [s for s in stated if s != "death_year"]  # a death year and an age would give it away
        if e.kind == "person" and "birthplace" in e.unstated:
            ctx["region"] = None  # the province would hint at the birthplace

        usable = [t for t in intros if all(ctx.get(f) not in (None, "") for f in re.findall(r"{(\w+)}", t))
                  and not ("{birth_year}" in t and "birth_year" in e.unstated)]
        intro = r.choice(usable)
        if "{birth_year}" in intro:  # the "(born 1843, died 1901)" opening states both years
            stated = [s for s in stated if s not in ("birth_year", "death_year")]
        sentences = [intro.format(**ctx)]
        fillers = list(filler)
        r.shuffle(fillers)
        r.shuffle(stated)
        for i, fact in enumerate(stated):
            subject = e.name if e.kind != "org" else f"The {e.name}"
            if e.kind == "person":
                subject = r.choice((e.name, ctx["pron_cap"]))
            elif e.kind == "place":
                subject = r.choice((e.name, "The town", "It"))
            elif e.kind == "org":
                subject = r.choice((f"The {e.name}", "It"))
            elif e.kind == "work":
                subject = r.choice((e.name, f"The {a['work_kind']}", "It"))
            ctx["S"] = subject
            sentences.append(r.choice(facts[fact]).format(**ctx))
            if i == 0 and r.random() < 0.6:
                sentences.append(fillers.pop().format(**ctx))
        while fillers and (len(sentences) < 3 or r.random() < 0.4):
            sentences.append(fillers.pop().format(**ctx))
        if e.twin and r.random() < 0.35:
            ctx["twin"] = self.mention(e.twin)
            sentences.append(r.choice(CONFUSABLE).format(**dict(ctx, N=ctx.get("N_the_cap", e.name))))
            mentions.append(e.twin)
        for fact, key_attr in (("founder", "founder"), ("hq", "hq"), ("author", "author"), ("birthplace", "birthplace")):
            if fact in stated and key_attr in a:
                mentions.append(a[key_attr])
        e.mentions = list(dict.fromkeys(mentions))
        return " ".join(_cap(x) for x in sentences)

    # ---- questions ----
    def answers_for(self, value, attr: str) -> list[str]:
        if attr in ENTITY_VALUED or attr == "entity":
            return self.entity_answers(value)
        if attr in ("population", "members"):
            return [_fmt_count(value), str(value)] if value >= 1000 else [str(value)]
        return [str(value)]

    def entity_answers(self, key: str) -> list[str]:
        e = self.entities[key]
        if e.kind == "org":
            return [e.name, f"the {e.name}"]
        if e.kind == "work" and e.name.startswith("The "):
            return [e.name, e.name[4:]]
        return [e.name]

    def stated(self, e: Entity, attr: str) -> bool:
        return attr not in e.unstated and attr in e.attrs

    def single_candidates(self, split: str) -> list[tuple]:
        out = []
        for (kind, attr) in SINGLE_Q:
            for key in self.by_split_kind.get((split, kind), []):
                if self.stated(self.entities[key], attr):
                    out.append(("single", kind, attr, key))
        return out

    def two_hop_candidates(self, split: str) -> list[tuple]:
        out = []
        for (kind, battr, bkind, aattr) in TWO_HOP_Q:
            for key in self.by_split_kind.get((split, kind), []):
                e = self.entities[key]
                if not self.stated(e, battr):
                    continue
                b = self.entities[e.attrs[battr]]
                if self.stated(b, aattr):
                    out.append(("two_hop", kind, battr, aattr, key))
        return out

    def make_single(self, kind: str, attr: str, key: str) -> dict:
        e = self.entities[key]
        q = self.rng.choice(SINGLE_Q[(kind, attr)]).format(X=self.mention(key))
        value = e.attrs[attr]
        ents = [e.name] + ([self.entities[value].name] if attr in ENTITY_VALUED else [])
        return {"question": _cap(q), "answers": self.answers_for(value, attr), "type": "single",
                "gold_docs": [e.doc_id], "entities": ents, "relation": f"{kind}.{attr}"}

    def make_two_hop(self, kind: str, battr: str, aattr: str, key: str) -> dict:
        e = self.entities[key]
        b = self.entities[e.attrs[battr]]
        bkind = b.kind
        q = self.rng.choice(TWO_HOP_Q[(kind, battr, bkind, aattr)]).format(X=self.mention(key))
        value = b.attrs[aattr]
        ents = [e.name, b.name] + ([self.entities[value].name] if aattr in ENTITY_VALUED else [])
        return {"question": _cap(q), "answers": self.answers_for(value, aattr), "type": "two_hop",
                "gold_docs": [e.doc_id, b.doc_id], "entities": ents, "bridge": b.name,
                "relation": f"{kind}.{battr}>{bkind}.{aattr}"}

    def make_comparison(self, split: str) -> dict | None:
        r = self.rng
        kind, attr = r.choice(sorted(COMPARISON_Q))
        pool = [k for k in self.by_split_kind.get((split, kind), []) if self.stated(self.entities[k], attr)]
        if len(pool) < 2:
            return None
        a = self.entities[r.choice(pool)]
        if a.twin and self.stated(self.entities[a.twin], attr) and r.random() < 0.3:
            b = self.entities[a.twin]  # the hard pair: near-duplicate names
        else:
            b = self.entities[r.choice(pool)]
        if a.key == b.key or a.attrs[attr] == b.attrs[attr]:
            return None
        if r.random() < 0.5:
            a, b = b, a
        larger = attr in LARGER_WINS
        win = a if (a.attrs[attr] > b.attrs[attr]) == larger else b
        q = r.choice(COMPARISON_Q[(kind, attr)]).format(A=self.mention(a.key), B=self.mention(b.key))
        return {"question": _cap(q), "answers": self.entity_answers(win.key), "type": "comparison",
                "gold_docs": [a.doc_id, b.doc_id], "entities": [a.name, b.name], "relation": f"{kind}.{attr}"}

    def make_unanswerable(self, split: str, unstated: list[tuple]) -> dict:
        r = self.rng
        if unstated and r.random() < 0.5:
            kind, attr, key = unstated.pop()
            e = self.entities[key]
            q = r.choice(SINGLE_Q[(kind, attr)]).format(X=self.mention(key))
            return {"question": _cap(q), "answers": [], "type": "unanswerable", "gold_docs": [],
                    "entities": [e.name], "relation": f"{kind}.{attr}", "reason": "unstated"}
        kind, attr = r.choice(sorted(SINGLE_Q))
        name = None
        reason = "nonexistent"
        pool = self.by_split_kind.get((split, kind), [])
        if pool and r.random() < self.cfg.confusable_unanswerable:
            name = self._twin_name(kind, self.entities[r.choice(pool)].name)
            reason = "nonexistent_variant"
        if name is None:
            name = self._fresh_name(kind)
            reason = "nonexistent"
        x = f"the {name}" if kind == "org" else name
        q = r.choice(SINGLE_Q[(kind, attr)]).format(X=x)
        return {"question": _cap(q), "answers": [], "type": "unanswerable", "gold_docs": [], "entities": [name],
                "relation": f"{kind}.{attr}", "reason": reason}

    def split_questions(self, split: str, n: int) -> list[dict]:
        r = self.rng
        fr = self.cfg.type_fractions()
        want = {t: int(n * fr[t]) for t in QUESTION_TYPES}
        for t in sorted(QUESTION_TYPES, key=lambda t: -(n * fr[t] - int(n * fr[t]))):
            if sum(want.values()) >= n:
                break
            want[t] += 1
        out: list[dict] = []
        seen: set[str] = set()

        def add(q: dict | None) -> bool:
            if q is None or q["question"] in seen:
                return False
            seen.add(q["question"])
            q["split"] = split
            out.append(q)
            return True

        two = self.two_hop_candidates(split)
        r.shuffle(two)
        got = 0
        while two and got < want["two_hop"]:
            _, kind, battr, aattr, key = two.pop()
            got += add(self.make_two_hop(kind, battr, aattr, key))
        want["single"] += want["two_hop"] - got
        got, tries = 0, 0
        while got < want["comparison"] and tries < 20 * want["comparison"] + 50:
            tries += 1
            got += add(self.make_comparison(split))
        want["single"] += want["comparison"] - got
        single = self.single_candidates(split)
        r.shuffle(single)
        got = 0
        while single and got < want["single"]:
            _, kind, attr, key = single.pop()
            got += add(self.make_single(kind, attr, key))
        want["unanswerable"] += want["single"] - got
        unstated = [(e.kind, a, e.key) for k in KINDS for e in (self.entities[x] for x in self.by_split_kind.get((split, k), []))
                    for a in e.unstated if (e.kind, a) in SINGLE_Q]
        r.shuffle(unstated)
        got, tries = 0, 0
        while got < want["unanswerable"]:
            tries += 1
            if tries > 100 * (want["unanswerable"] + 10):
                raise WorldError(f"cannot make {want['unanswerable']} distinct unanswerable questions for {split}")
            got += add(self.make_unanswerable(split, unstated))
        r.shuffle(out)
        return out


def _a(noun: str) -> str:
    """The noun with its indefinite article ("an architect", "a poet")."""
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun if noun else ""


def _cap(s: str) -> str:
    return s[0].upper() + s[1:] if s else s


def _shares(total: int, fractions: dict[str, float]) -> dict[str, int]:
    """Integer shares of `total` in the order of `fractions` (largest remainders get the rest)."""
    raw = {k: total * f for k, f in fractions.items()}
    out = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: -(raw[k] - out[k])):
        if sum(out.values()) >= total:
            break
        out[k] += 1
    return out


def generate(config: WorldConfig | None = None) -> World:
    """The world of `config`: entities, the corpus (BEIR records) and the questions."""
    cfg = config or WorldConfig()
    b = _Builder(cfg)
    doc_shares = _shares(cfg.docs, cfg.split_fractions())
    for split in SPLITS:
        b.build_split(split, doc_shares[split])
    # documents in one shuffled order, so an id says nothing about its split or kind
    keys = sorted(b.entities)
    b.rng.shuffle(keys)
    width = len(str(len(keys) - 1))
    for i, key in enumerate(keys):
        b.entities[key].doc_id = f"d{i:0{width}d}"
    corpus = []
    for key in keys:
        e = b.entities[key]
        corpus.append({"_id": e.doc_id, "title": e.name, "text": b.document(e)})
    questions: list[dict] = []
    q_shares = _shares(cfg.questions, cfg.split_fractions())
    for split in SPLITS:
        questions.extend(b.split_questions(split, q_shares[split]))
    qwidth = len(str(len(questions) - 1))
    ordered = []
    for i, q in enumerate(questions):
        rec = {"id": f"q{i:0{qwidth}d}", "question": q["question"], "answers": q["answers"], "type": q["type"],
               "split": q["split"], "gold_docs": q["gold_docs"], "entities": q["entities"]}
        for extra in ("bridge", "relation", "reason"):
            if extra in q:
                rec[extra] = q[extra]
        ordered.append(rec)
    return World(cfg, b.entities, corpus, ordered)


# ---- writing ---------------------------------------------------------------------------

def _jsonl(records) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def world_files(world: World) -> dict[str, str]:
    """Relative path -> file content of the world's directory."""
    files = {
        "corpus.jsonl": _jsonl(world.corpus),
        "questions.jsonl": _jsonl(world.questions),
        "queries.jsonl": _jsonl({"_id": q["id"], "text": q["question"]} for q in world.questions),
    }
    for split in SPLITS:
        lines = ["query-id\tcorpus-id\tscore\n"]
        for q in world.questions:
            if q["split"] == split:
                lines.extend(f"{q['id']}\t{d}\t1\n" for d in dict.fromkeys(q["gold_docs"]))
        files[f"qrels/{split}.tsv"] = "".join(lines)
    manifest = {"format": "assay-knowledge-world", "format_version": FORMAT_VERSION,
                "config": asdict(world.config), **world.stats(),
                "files": {"corpus.jsonl": "BEIR corpus: _id, title, text",
                          "questions.jsonl": "id, question, answers, type, split, gold_docs, entities "
                                             "(+ bridge, relation, reason)",
                          "queries.jsonl": "BEIR queries: _id, text (every question)",
                          "qrels/<split>.tsv": "BEIR qrels: the gold documents of the split's answerable questions"}}
    files["world.json"] = json.dumps(manifest, indent=2) + "\n"
    return files


def write_world(world: World, out: str | Path, *, force: bool = False) -> Path:
    """Write the world to directory `out` atomically: everything goes into a temporary
    sibling directory that is renamed into place at the end, so a failed or killed run
    leaves no partial `out`. An existing non-empty `out` is refused unless `force`."""
    from core.files import atomic_dir, fsync_dir

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise WorldError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise WorldError(f"{out}: exists and is not empty; pass --force to replace it")
    with atomic_dir(out, fault_point="world:before_rename") as tmp:
        for rel, text in world_files(world).items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        fsync_dir(tmp / "qrels")
    return out
