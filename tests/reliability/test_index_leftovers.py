"""Issue 13, items 4 and 5: what killed runs leave behind.

A real `assay index` process is killed (status 137) at a named write point; the next
run must accept the directory as assay's own and leave nothing stale behind."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rag import Index

CHUNK_ARGS = ["--chunk-size", "200", "--chunk-overlap", "40", "--quiet"]


@pytest.mark.parametrize("point", ["index:locked", "index:version_dir", "index:after_vectors",
                                   "index:before_commit", "index:manifest_written"])
def test_killed_first_build_is_recognised_and_finished_by_the_next_run(env, point):
    src = env.write_corpus(env.root / "src", "alpha", 8)
    env.warm(src)
    idx = env.root / "idx"
    killed = env.assay("index", src, "--index", idx, *CHUNK_ARGS, fault=point)
    assert killed.returncode == 137, killed.stderr
    search = env.assay("search", "wing", "--index", idx, "--mode", "bm25")
    assert search.returncode == 2 and "assay index" in search.stderr  # it says what to run ...
    again = env.assay("index", src, "--index", idx, *CHUNK_ARGS, "--json")
    assert again.returncode == 0, again.stderr  # ... and that works (before: "not an assay index")
    assert json.loads(again.stdout)["total_documents"] == 8
    entries = env.entries(idx)
    assert len(entries["versions"]) == 1 and not entries["other_dirs"]
    assert not [f for f in entries["files"] if f.endswith(".tmp")]
    assert len(Index.open(idx)) > 8


def test_half_built_directory_of_an_older_assay_is_recognised(env):
    """A first build killed before this fix left only `.tmp-v000001-xxxxxx/` (no marker)."""
    src = env.write_corpus(env.root / "src", "alpha", 4)
    env.warm(src)
    idx = env.root / "idx"
    (idx / ".tmp-v000001-1a2b3c").mkdir(parents=True)
    (idx / ".tmp-v000001-1a2b3c" / "docs.jsonl").write_text('{"id": "x"}\n')
    again = env.assay("index", src, "--index", idx, *CHUNK_ARGS)
    assert again.returncode == 0, again.stderr
    assert not (idx / ".tmp-v000001-1a2b3c").exists()


def test_a_foreign_directory_is_still_refused(env):
    src = env.write_corpus(env.root / "src", "alpha", 2)
    other = env.root / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("not an index")
    r = env.assay("index", src, "--index", other, *CHUNK_ARGS)
    assert r.returncode == 2 and "not an assay index" in r.stderr
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]  # nothing written into it


def test_leftovers_of_killed_updates_are_removed_by_a_no_change_run(env):
    a = env.write_corpus(env.root / "srcA", "alpha", 6)
    b = env.write_corpus(env.root / "srcB", "beta", 6)
    env.warm(a, b)
    idx = env.root / "idx"
    assert env.assay("index", a, "--index", idx, *CHUNK_ARGS).returncode == 0
    # killed after the commit: the previous version directory is left
    assert env.assay("index", b, "--index", idx, "--quiet", fault="index:after_commit").returncode == 137
    # killed before the commit: a complete but unreferenced version directory
    assert env.assay("index", a, "--index", idx, "--quiet", fault="index:before_commit").returncode == 137
    # killed while writing: a temporary directory
    assert env.assay("index", a, "--index", idx, "--quiet", fault="index:after_bm25").returncode == 137
    # killed while replacing the manifest: its temporary file
    assert env.assay("index", a, "--index", idx, "--quiet", fault="index:manifest_written").returncode == 137
    live = json.loads((idx / "manifest.json").read_text())["version"]
    before = env.entries(idx)
    assert len(before["versions"]) >= 3 and before["other_dirs"]
    assert [f for f in before["files"] if f.startswith(".manifest.json.") and f.endswith(".tmp")]
    same = env.assay("index", b, "--index", idx, "--quiet", "--json")  # nothing changed ...
    assert same.returncode == 0 and json.loads(same.stdout)["written"] is False, same.stderr
    after = env.entries(idx)  # ... and nothing stale is left
    assert after["versions"] == [live] and not after["other_dirs"]
    assert not [f for f in after["files"] if f.endswith(".tmp")]
    assert all(not f.endswith(".lease") or f == f".{live}.lease" for f in after["files"])
    assert json.loads((idx / "manifest.json").read_text())["version"] == live


CACHE_WRITE = """
import numpy as np
from rag.embeddings import EmbeddingCache
EmbeddingCache({root!r}, {model!r}).put_many(["orphan text"], np.ones((1, 32), np.float32) / 32 ** 0.5)
"""


def test_orphan_cache_shards_are_removed_by_the_next_run(env):
    src = env.write_corpus(env.root / "src", "alpha", 4)
    env.warm(src)
    from rag.embeddings import variant_id

    # the cache the index's embedder reads: one per encoder variant
    code = CACHE_WRITE.format(root=str(env.emb_cache), model=variant_id("all-MiniLM-L6-v2", env.embedder().encoder))
    killed = subprocess.run([sys.executable, "-c", code], env=env.proc_env("cache:after_vecs"),
                            capture_output=True, text=True)
    assert killed.returncode == 137, killed.stderr
    shard_dir = next(p for p in env.emb_cache.iterdir() if p.is_dir() and any(p.glob("*.vecs.npy"))
                     and any(not (p / n.name.replace(".vecs.npy", ".keys.npy")).exists() for n in p.glob("*.vecs.npy")))
    names = lambda: sorted(p.name for p in shard_dir.iterdir())  # noqa: E731
    orphans = [n for n in names() if n.endswith(".vecs.npy")
               and not (shard_dir / n.replace(".vecs.npy", ".keys.npy")).exists()]
    assert len(orphans) == 1
    Index.build([src], env.root / "idx", env.config(), progress=False, embedder=env.embedder())
    assert orphans[0] not in names()
    for n in names():  # every remaining shard is complete
        if n.endswith(".vecs.npy"):
            assert (shard_dir / n.replace(".vecs.npy", ".keys.npy")).exists()
