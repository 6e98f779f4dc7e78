"""Issue 13, items 1 and 2: two writers on one index, and readers beside a writer.

Races are made deterministic with named fault points: `ASSAY_FAULT=NAME=pause:BASE`
stops a real `assay` process at that point (it creates BASE.reached and waits for
BASE.go) while the test runs another process."""

from __future__ import annotations

import json
import time

from rag import Index


def _setup(env, n=10):
    a = env.write_corpus(env.root / "srcA", "alpha", n)
    b = env.write_corpus(env.root / "srcB", "beta", n, extra=2)
    c = env.write_corpus(env.root / "srcC", "gamma", n)
    env.warm(a, b, c)
    idx = env.root / "idx"
    Index.build([a], idx, env.config(), progress=False, embedder=env.embedder())
    return a, b, c, idx


def _texts_tag(index):
    return {c.text.split()[0] for c in index.chunks if c.text.split()[1:2] == ["document"]}


def test_second_writer_fails_naming_the_holder_instead_of_destroying_the_index(env):
    a, b, c, idx = _setup(env)
    pause = env.root / "w1"
    w1 = env.assay_bg("index", b, "--index", idx, "--quiet", fault=f"index:before_commit=pause:{pause}")
    env.wait_for(pause.with_suffix(".reached"), w1)
    # writer 1 has written its version directory and is about to commit it
    w2 = env.assay("index", c, "--index", idx, "--quiet", ASSAY_INDEX_LOCK_TIMEOUT=1)
    (pause.with_suffix(".go")).touch()
    out1, err1 = w1.communicate(timeout=60)
    assert w1.returncode == 0, err1
    # never both succeed: the second writer failed, in one line naming the index and the holder
    assert w2.returncode == 2, (w2.returncode, w2.stdout, w2.stderr)
    lines = w2.stderr.strip().splitlines()
    assert len(lines) == 1 and str(idx) in lines[0] and f"pid {w1.pid}" in lines[0], w2.stderr
    index = Index.open(idx)  # writer 1's update is there, complete
    assert _texts_tag(index) == {"beta"} and len(index.doc_ids) == 12
    assert len(env.entries(idx)["versions"]) == 1


def test_second_writer_waits_for_the_first_and_no_update_is_lost(env):
    a, b, c, idx = _setup(env)
    pause = env.root / "w1"
    w1 = env.assay_bg("index", b, "--index", idx, "--quiet", "--json", fault=f"index:before_commit=pause:{pause}")
    env.wait_for(pause.with_suffix(".reached"), w1)
    pause2 = env.root / "w2"
    w2 = env.assay_bg("index", c, "--index", idx, "--quiet", "--json", fault=f"index:locked=pause:{pause2}")
    time.sleep(1.5)
    # writer 2 is waiting for the lock: it has not got past it while writer 1 holds it
    assert w2.poll() is None and not pause2.with_suffix(".reached").exists()
    (pause.with_suffix(".go")).touch()
    out1, err1 = w1.communicate(timeout=60)
    assert w1.returncode == 0, err1
    env.wait_for(pause2.with_suffix(".reached"), w2)
    (pause2.with_suffix(".go")).touch()
    out2, err2 = w2.communicate(timeout=60)
    assert w2.returncode == 0, err2
    s1, s2 = json.loads(out1), json.loads(out2)
    # writer 2 saw writer 1's commit (12 beta docs) and replaced it by its sources
    assert s1["added"] == 2 and s1["changed"] == 10
    assert s2["removed"] == 2 and s2["changed"] == 10
    index = Index.open(idx)
    assert _texts_tag(index) == {"gamma"} and len(index.doc_ids) == 10
    assert len(env.entries(idx)["versions"]) == 1


def test_reader_between_manifest_and_files_survives_a_commit(env):
    a, b, c, idx = _setup(env)
    pause = env.root / "r"
    r = env.assay_bg("search", "wing lift", "--index", idx, "--mode", "bm25", "--json",
                     fault=f"open:after_manifest=pause:{pause}")
    env.wait_for(pause.with_suffix(".reached"), r)
    # the reader has read manifest.json (old version) but no file yet; a writer commits
    w = env.assay("index", b, "--index", idx, "--quiet")
    assert w.returncode == 0, w.stderr
    (pause.with_suffix(".go")).touch()
    out, err = r.communicate(timeout=60)
    assert r.returncode == 0, err
    hits = json.loads(out)["hits"]
    assert hits and all(h["text"] for h in hits)


def test_a_leased_version_is_not_removed_under_its_reader(env):
    a, b, c, idx = _setup(env)
    old = Index.open(idx).manifest["version"]
    pause = env.root / "r"
    r = env.assay_bg("search", "wing lift", "--index", idx, "--mode", "bm25", "--json",
                     fault=f"open:leased=pause:{pause}")
    env.wait_for(pause.with_suffix(".reached"), r)
    # the reader holds its lease on the old version and is about to read its files
    w = env.assay("index", b, "--index", idx, "--quiet")
    assert w.returncode == 0, w.stderr
    assert (idx / old).is_dir()  # kept for the reader
    (pause.with_suffix(".go")).touch()
    out, err = r.communicate(timeout=60)
    assert r.returncode == 0, err
    texts = " ".join(h["text"] for h in json.loads(out)["hits"])
    assert "alpha" in texts and "beta" not in texts  # the version it opened, whole
    # once the reader is gone, the next write (even one that changes nothing) removes it
    again = env.assay("index", b, "--index", idx, "--quiet")
    assert again.returncode == 0, again.stderr
    assert not (idx / old).exists() and len(env.entries(idx)["versions"]) == 1


WRITER = """
import sys
from rag import Index
idx, a, b, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
for i in range(n):
    Index.build([a if i % 2 else b], idx, progress=False)
print("done")
"""


def test_search_loop_beside_repeated_writers(env):
    a, b, c, idx = _setup(env)
    import subprocess
    import sys

    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(idx), str(a), str(b), "6"], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env.proc_env())
               for _ in range(2)]
    errors, opened = [], 0
    while any(w.poll() is None for w in writers) or opened < 5:
        try:
            index = Index.open(idx)
            hits = index.search("wing lift", k=3, mode="bm25")
            assert hits and len({c.text.split()[0] for c in index.chunks if c.start == 0}) == 1  # one version, never a mix
            index.dense_search_vectors(index.vectors[:1], 1)
            opened += 1
        except Exception as exc:  # noqa: BLE001 - counted, reported below
            errors.append(f"{type(exc).__name__}: {exc}")
    for w in writers:
        out, err = w.communicate(timeout=60)
        assert w.returncode == 0 and out.strip() == "done", err[-3000:]
    assert not errors, errors[:5]
    assert opened >= 5
    final = Index.open(idx)
    assert final.manifest["version"] in env.entries(idx)["versions"]
    # the last writer may have kept the previous version for a reader that was opening it;
    # the next write, even one that changes nothing, removes it
    assert Index.build([a], idx, progress=False).last_update["written"] is False
    assert env.entries(idx)["versions"] == [final.manifest["version"]]
