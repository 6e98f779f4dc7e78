"""Eval generation on a Ray cluster: the prompts the cache does not hold, sharded over
generator actors; every result written to the cache by the driver.

    gen = RayGenerator("SmolLM2-135M-Instruct", GenerationConfig(), cache=db)   # a Generator
    assay eval run gsm8k -m SmolLM2-135M-Instruct --ray [ADDRESS]

`RayGenerator.generate` is `Generator.generate`: the driver renders the prompts, looks them
up in the SQLite cache and only the missing ones go out. It sorts them by token length and
cuts them into the very batches one process would make (same order, same batch size, same
per-batch seed), and hands whole batches to the actors, two in flight per actor; each
finished batch is written to the cache at once, so greedy outputs are the one-process
outputs, a killed run keeps what finished, and a rerun generates nothing.

Actors: transformers on CPU (one per `RayGenConfig.cpus_per_actor` CPUs), or one per GPU
(vLLM where installed, given all of an actor's prompts at once). Each loads the model from
its path, so on a multi-node cluster the model must be at the same path on every node (a
shared filesystem or the same download). What crosses the network: rendered prompts and
cache keys out, generated text and token counts back.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from eval.generation import GenerationConfig, Generator


@dataclass
class RayGenConfig:
    """How eval generation uses the cluster."""

    address: str | None = None
    """Cluster to join (None: $RAY_ADDRESS, a running cluster, or a new local one)."""
    actors: int | None = None
    """Generator actors (None: one per GPU when the cluster has GPUs, else one per `cpus_per_actor` CPUs)."""
    cpus_per_actor: float = 1.0
    """CPUs each transformers actor reserves (torch uses as many threads)."""
    in_flight: int = 2
    """Batches queued per actor (the next one is ready when one finishes)."""


class _Collect:
    """Stands in for the actor's cache: keeps the rows a batch produced, to send back."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def put_generations(self, model: str, rows) -> None:
        self.rows.extend(rows)

    def get_generations(self, keys):
        return {}


class GeneratorActor:
    """One model on one actor: generates whole batches, returns their cache rows."""

    def __init__(self, model: str, config: dict[str, Any], identity: str, path: str) -> None:
        cfg = GenerationConfig(**config)
        self.base_seed = cfg.seed
        self.gen = Generator(model, cfg, cache=_Collect(), progress=False)  # type: ignore[arg-type]
        self.gen._identity, self.gen._path = identity, path
        self.gen.load()

    def ready(self) -> bool:
        return True

    def run(self, start: int, prompts: list[str], n: int, keys: dict[str, list[str]], add_special: bool) -> dict:
        gen = self.gen
        gen.cache = _Collect()  # type: ignore[assignment]
        before = dict(gen.stats)
        t0 = time.perf_counter()
        if gen.backend == "vllm":
            gen._generate_vllm(prompts, n, keys)
        else:
            gen.config.seed = self.base_seed + start  # the seed one process gives this batch
            gen._generate_hf(prompts, n, keys, add_special)
        return {"rows": gen.cache.rows, "new_tokens": gen.stats["new_tokens"] - before["new_tokens"],
                "seconds": time.perf_counter() - t0}


class RayGenerator(Generator):
    """A `Generator` whose missing generations are made by actors on a Ray cluster."""

    def __init__(self, model: str, config: GenerationConfig | None = None, *, ray: RayGenConfig | None = None,
                 **kwargs: Any) -> None:
        super().__init__(model, config, **kwargs)
        self.ray_config = ray or RayGenConfig()
        self._actors: list[Any] = []
        self.stats.update(actors=0, batches=0)

    def load(self) -> None:
        """Start the actors (each loads the model); the driver loads only the tokenizer."""
        self._ensure_actors()

    def _ensure_actors(self) -> list[Any]:
        if self._actors:
            return self._actors
        from core.ray_cluster import init_ray

        rc = self.ray_config
        ray = init_ray(rc.address)
        res = ray.cluster_resources()
        gpus = int(res.get("GPU", 0))
        if rc.actors:
            count = rc.actors
        else:
            count = gpus if gpus else max(1, int(res.get("CPU", 1) // rc.cpus_per_actor))
        cls = ray.remote(GeneratorActor).options(num_cpus=rc.cpus_per_actor, num_gpus=1 if gpus else 0)
        config = asdict(self.config)
        self._actors = [cls.remote(self.model_name, config, self.identity, self.path) for _ in range(count)]
        ray.get([a.ready.remote() for a in self._actors])  # model loading is not generation time
        self.stats["actors"] = count
        return self._actors

    def _generate_hf(self, prompts: list[str], n: int, keys: dict[str, list[str]], add_special: bool) -> None:
        tok = self.tokenizer
        lengths = {p: len(ids) for p, ids in zip(prompts, tok(prompts, add_special_tokens=add_special)["input_ids"])}
        order = sorted(prompts, key=lambda p: -lengths[p])  # as one process orders them
        bs = self.config.batch_size
        self._dispatch([(s, order[s:s + bs]) for s in range(0, len(order), bs)], n, keys, add_special)

    def _generate_vllm(self, prompts: list[str], n: int, keys: dict[str, list[str]]) -> None:
        actors = self._ensure_actors()
        per = -(-len(prompts) // len(actors))
        self._dispatch([(s, prompts[s:s + per]) for s in range(0, len(prompts), per)], n, keys, False)

    def _dispatch(self, batches: list[tuple[int, list[str]]], n: int, keys: dict[str, list[str]],
                  add_special: bool) -> None:
        import ray

        actors = self._ensure_actors()
        pending = list(reversed(batches))
        inflight: dict[Any, int] = {}
        load = {i: 0 for i in range(len(actors))}
        depth = max(1, self.ray_config.in_flight)
        while pending or inflight:
            for i, actor in enumerate(actors):
                while pending and load[i] < depth:
                    start, batch = pending.pop()
                    ref = actor.run.remote(start, batch, n, {p: keys[p] for p in batch}, add_special)
                    inflight[ref] = i
                    load[i] += 1
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                load[inflight.pop(ref)] -= 1
                try:
                    out = ray.get(ref)
                except ray.exceptions.RayError as exc:  # finished batches are cached: a rerun resumes
                    from eval.generation import GenerationError

                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                    raise GenerationError(f"a generator actor failed ({type(exc).__name__}: {first}); "
                                          f"{self.stats['batches']} batches finished and are cached, "
                                          "rerun to generate the rest") from None
                self.cache.put_generations(self.identity, out["rows"])
                self.stats["generated"] += len(out["rows"])
                self.stats["new_tokens"] += out["new_tokens"]
                self.stats["batches"] += 1

    def close(self) -> None:
        import ray

        for a in self._actors:
            ray.kill(a)
        self._actors = []


__all__ = ["GeneratorActor", "RayGenConfig", "RayGenerator"]
