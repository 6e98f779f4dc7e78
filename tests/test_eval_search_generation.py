"""Search in the loop at evaluation time: a RAG QA task in search mode is generated through
tasks.search_loop (retrieval between turns, the <information> blocks kept in the recorded
completion), under cache keys of its own; `assay eval run world:DIR:search` routes there."""

from __future__ import annotations

import json

from lm_forcing import forcing_processor

import tasks
from eval.cache import Cache
from eval.generation import GenerationConfig, Generator
from eval.search_generation import SearchGenerator, search_config, search_generator
from tasks.search_loop import Passage, SearchConfig, SearchRollout

CORPUS = [
    "A wing stalls when the angle of attack exceeds the critical angle and the flow separates.",
    "Penguins are flightless birds of the southern hemisphere.",
]
QUERY = "wing stall angle"
PROMPT = [{"role": "user", "content": "Why do wings stall?"}]


def force_search(monkeypatch, query: str) -> None:
    """Every search rollout's model opens with ``<search>query</search>`` (a fresh forcing per batch)."""
    from transformers import LogitsProcessorList

    real = SearchRollout.generate

    def forced(self, model, tokenizer, prompts, **kw):
        call = tokenizer(f"<search>{query}</search>", add_special_tokens=False)["input_ids"]
        return real(self, model, tokenizer, prompts,
                    generate_kwargs={"logits_processor": LogitsProcessorList([forcing_processor(call)])}, **kw)

    monkeypatch.setattr(SearchRollout, "generate", forced)


def wing_retrieve(query: str, k: int) -> list[Passage]:
    words = set(query.lower().split())
    ranked = sorted(CORPUS, key=lambda t: -len(words & set(t.lower().replace(".", "").split())))
    return [Passage(t, f"doc{CORPUS.index(t)}", 0, len(t)) for t in ranked[:k]]


def test_search_generation_pastes_information_and_has_its_own_cache_keys(tiny_lm, tmp_path, monkeypatch):
    force_search(monkeypatch, QUERY)
    cache = Cache(tmp_path / "cache.sqlite")
    gen = Generator(str(tiny_lm), GenerationConfig(max_new_tokens=24, backend="transformers"), cache=cache,
                    progress=False)
    one_shot = gen.generate([PROMPT])[0][0]  # the same prompt, one shot, in the same cache
    sg = SearchGenerator(gen, SearchRollout(wing_retrieve, SearchConfig(max_turns=2, top_k=1, max_turn_tokens=64)),
                         index_version="v1")
    rendered = sg.render(PROMPT)
    assert rendered == gen.render(PROMPT) and sg.keys(rendered, 1) != gen.keys(rendered, 1)
    again = SearchGenerator(gen, sg.rollout, index_version="v2")  # a rebuilt index: searched afresh
    assert again.keys(rendered, 1) != sg.keys(rendered, 1)

    out = sg.generate([PROMPT, PROMPT], n=2)
    first = out[0][0]
    assert not first.cached and first.text != one_shot.text
    assert first.text.startswith(f"<search>{QUERY}</search>\n<information>[1] {CORPUS[0]}</information>\n")
    assert first.tokens <= 24 and first.finish_reason in ("stop", "length")  # pasted tokens are not the model's
    assert [g.text for gs in out for g in gs] == [first.text] * 4  # greedy: one completion, repeated
    assert sg.generate([PROMPT])[0][0].cached  # the rerun is a lookup
    assert gen._model is not None  # the wrapped generator's model, loaded once for both


def test_only_search_mode_rag_qa_is_wrapped(tmp_path):
    from tasks.knowledge_world import WorldConfig, generate, write_world

    world = tmp_path / "world"
    write_world(generate(WorldConfig(seed=3, docs=150, questions=120)), world)
    gen = Generator("SmolLM2-135M-Instruct", GenerationConfig(backend="transformers"), progress=False)
    assert search_generator(gen, tasks.get_task(f"world:{world}:closed_book")) is gen
    assert search_generator(gen, tasks.get_task("gsm8k")) is gen
    cfg = search_config(tasks.get_task(f"world:{world}:search:k=4:retriever=hybrid"))
    assert (cfg.max_turns, cfg.top_k, cfg.mode, cfg.max_turn_tokens) == (2, 4, "hybrid", 64)  # bench's settings


def test_eval_run_in_search_mode_searches_the_world_index(tiny_lm, tmp_path, monkeypatch, capsys, hash_embedder):
    """`assay eval run world:DIR:search`: the model's <search> goes to the world's index (BM25,
    k=3), the results are pasted into the recorded completion and scored from there."""
    from assay.cli import main
    from tasks.knowledge_world import WorldConfig, generate, write_world

    monkeypatch.setenv("ASSAY_CACHE", str(tmp_path / "cache"))
    world = tmp_path / "world"
    write_world(generate(WorldConfig(seed=3, docs=150, questions=120)), world)
    name = f"world:{world}:search:types=single"
    row = tasks.get_task(name).load()[0]
    force_search(monkeypatch, row["entities"][0])

    code = main(["eval", "run", name, "--model", str(tiny_lm), "--limit", "2", "--max-new-tokens", "24",
                 "--no-cache", "--out", str(tmp_path / "run"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["n"] == 2
    search = summary["generation"]["search"]
    assert (search["max_turns"], search["top_k"], search["mode"], search["max_turn_tokens"]) == (2, 3, "bm25", 64)
    assert search["index_version"] and summary["search_calls"] == 1.0
    samples = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    first = samples[0]
    assert first["id"] == row["id"]
    gold = next(json.loads(line)["text"] for line in (world / "corpus.jsonl").read_text().splitlines()
                if json.loads(line)["_id"] == row["gold_docs"][0])
    assert first["completion"].startswith(f"<search>{row['entities'][0]}</search>\n<information>[1] ")
    assert " ".join(gold.split())[:100] in first["completion"]  # the gold document, found by BM25 and pasted
    assert first["recall@k"] == 1.0 and first["search_calls"] == 1.0  # read back from the completion
