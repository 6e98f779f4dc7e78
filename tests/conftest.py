"""Fixtures shared by the whole suite. Everything here is offline and deterministic."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from core.files import shared_data_root

# Property tests draw the same examples on every run (the suite is deterministic); a
# failure found once is pinned with @example beside its test.
settings.register_profile("assay", derandomize=True, database=None)
settings.load_profile("assay")

# Nothing is downloaded at test time: known models resolve to packaged copies.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parent.parent
# The shared data sets (GSM8K, MATH-500, AIME24, AMC23, Cranfield) live beside the repo;
# tests read them in place and never copy them in.
SHARED_DATA = shared_data_root()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"shared data not found at {SHARED_DATA} (set ASSAY_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    """A tiny random Llama model (built from a config) with SmolLM2's real tokenizer."""
    from core.models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("models") / "tiny-llama", seed=0)


@pytest.fixture(scope="session")
def smollm2() -> str:
    """Path of the real SmolLM2-135M-Instruct (converted once from the packaged GGUF)."""
    from core.models import resolve

    return resolve("SmolLM2-135M-Instruct")


@pytest.fixture(scope="session")
def minilm() -> str:
    from core.models import resolve

    return resolve("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def ray_cluster():
    """Real Ray, started once for the whole suite: two simulated nodes on this machine
    (`ray.cluster_utils.Cluster`, 1 CPU and a 128 MiB object store each). Yields the cluster;
    `cluster.address` is what a second process (the CLI) joins."""
    ray = pytest.importorskip("ray", reason="needs Ray: pip install 'assay[ray]'")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False, "object_store_memory": 128 << 20})
    cluster.add_node(num_cpus=1, object_store_memory=128 << 20)
    ray.init(address=cluster.address, namespace="assay", logging_level="WARNING")
    yield cluster
    from rewards.ray_hosts import shutdown_hosts

    shutdown_hosts()
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture
def hash_embedder(monkeypatch, tmp_path):
    """Indexes opened or built in the test embed with deterministic unit vectors from a hash
    of the text (no model; the embedding cache is the real one): for tests of BM25, fusion
    and index plumbing that should not pay for MiniLM."""
    import hashlib

    import numpy as np

    from rag.embeddings import Embedder

    class HashEmbedder(Embedder):
        def __init__(self, model="all-MiniLM-L6-v2", **kw):
            kw.pop("device", None)
            super().__init__(model, **kw)

        @property
        def dim(self) -> int:
            return 16

        def _encode_model(self, texts, progress):
            out = []
            for t in texts:
                seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
                v = np.random.default_rng(seed).normal(size=16)
                out.append(v / np.linalg.norm(v))
            return np.asarray(out, dtype=np.float32)

        def encode_query(self, query):
            self.model_calls += 1
            return self._encode_model([query], False)[0]

    # its vectors must never reach the user's embedding cache, where MiniLM's are kept
    monkeypatch.setattr("rag.embeddings.default_cache_dir", lambda: tmp_path / "hash-embeddings")
    monkeypatch.setattr("rag.index.Embedder", HashEmbedder)
    return HashEmbedder
