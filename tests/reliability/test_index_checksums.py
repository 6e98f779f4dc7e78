"""Issue 13, item 3: corruption is never served silently.

Every file of an index version is checksummed in the manifest (and the manifest
checksums itself); the embedding cache checksums each shard. A flipped byte anywhere is
either detected — a one-line user error naming the file and how to recover — or provably
harmless (the index opens to exactly the same data and results)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.errors import UserError
from rag import Index
from rag.index import IndexDirectoryError

QUERIES = ["wing lift", "shock boundary layer", "flutter panel heat"]


@pytest.fixture()
def built(env):
    src = env.write_corpus(env.root / "src", "alpha", 12)
    idx = Index.build([src], env.root / "idx", env.config(), progress=False, embedder=env.embedder())
    return src, idx


def _version_files(idx_dir: Path) -> list[str]:
    manifest = json.loads((idx_dir / "manifest.json").read_text())
    vdir = idx_dir / manifest["version"]
    return sorted(str(p.relative_to(vdir)) for p in vdir.rglob("*") if p.is_file())


def _snapshot(index: Index):
    return {
        "chunks": [(c.id, c.doc_id, c.start, c.end, c.text) for c in index.chunks],
        "docs": index.doc_ids,
        "vectors": np.asarray(index.vectors).tobytes(),
        "bm25": [[(h.chunk.id, round(h.score, 6)) for h in index.search(q, k=5, mode="bm25")] for q in QUERIES],
        "dense": index.dense_search_vectors(np.asarray(index.vectors[:3]), 5),
        "config": json.dumps(index.manifest.get("config"), sort_keys=True),
    }


def _assert_user_error(exc: BaseException, name: str) -> None:
    msg = str(exc)
    assert isinstance(exc, IndexDirectoryError) and isinstance(exc, UserError), repr(exc)
    assert "\n" not in msg, msg
    assert name in msg and "--rebuild" in msg, msg


def _offsets(size: int) -> list[int]:
    if size <= 256:
        return list(range(size))
    spread = list(np.linspace(48, size - 49, 64).astype(int))
    return sorted(set(list(range(48)) + spread + list(range(size - 48, size))))


def test_every_file_of_a_version_is_checksummed(built):
    _, idx = built
    manifest = json.loads((idx.directory / "manifest.json").read_text())
    files = _version_files(idx.directory)
    assert set(manifest["checksums"]) == set(files)
    for rel in files:
        entry = manifest["checksums"][rel]
        assert entry["size"] == (idx.directory / manifest["version"] / rel).stat().st_size
        assert len(entry["sha256"]) == 64


def test_byte_flips_in_every_file_are_detected_or_harmless(built, env):
    _, idx = built
    work = env.root / "work"
    shutil.copytree(idx.directory, work)
    baseline = _snapshot(Index.open(work))
    version = json.loads((work / "manifest.json").read_text())["version"]
    targets = [("manifest.json", work / "manifest.json")] + [
        (rel, work / version / rel) for rel in _version_files(work)]
    detected = harmless = 0
    for name, path in targets:
        original = path.read_bytes()
        for off in _offsets(len(original)):
            data = bytearray(original)
            data[off] ^= 1 << (off % 8)
            path.write_bytes(bytes(data))
            try:
                snap = _snapshot(Index.open(work))
            except Exception as exc:  # noqa: BLE001 - must be the one-line user error
                _assert_user_error(exc, name)
                detected += 1
            else:
                assert snap == baseline, f"flip at {name}:{off} served different data"
                harmless += 1
        path.write_bytes(original)
    assert detected > 0
    assert _snapshot(Index.open(work)) == baseline


def test_cli_prints_one_line_for_a_corrupt_file(built, capsys):
    from assay.cli import main

    _, idx = built
    version = idx.manifest["version"]
    path = idx.directory / version / "bm25" / "weights.npy"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    path.write_bytes(bytes(data))
    assert main(["search", "wing", "--index", str(idx.directory), "--mode", "bm25"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bm25/weights.npy" in err[0] and "--rebuild" in err[0], err


def test_flipped_exponent_in_faiss_is_not_served(built):
    _, idx = built
    path = idx.directory / idx.manifest["version"] / "dense.faiss"
    data = bytearray(path.read_bytes())
    n, d = idx.vectors.shape
    data[len(data) - n * d * 4 + 3] ^= 0x40  # first stored float's exponent: ~1e37
    path.write_bytes(bytes(data))
    with pytest.raises(Exception) as info:
        again = Index.open(idx.directory)
        print(again.dense_search_vectors(np.asarray(again.vectors[:1]), 1))  # before: cosine ~1e36
    _assert_user_error(info.value, "dense.faiss")


def test_changed_letter_in_chunk_store_is_not_served(built):
    _, idx = built
    path = idx.directory / idx.manifest["version"] / "chunks.jsonl"
    text = path.read_text()
    path.write_text(text.replace("wing", "wang", 1))
    with pytest.raises(Exception) as info:
        again = Index.open(idx.directory)
        print(again.chunk(0).text)  # before: the changed text was served
    _assert_user_error(info.value, "chunks.jsonl")


def test_flipped_vector_row_is_not_copied_into_the_next_version(built, env, monkeypatch):
    import rag.index

    src, idx = built
    # an index too large for open to hash vectors.npy (it is memory-mapped, not read)
    monkeypatch.setattr(rag.index, "VERIFY_ON_OPEN_MAX_BYTES", 0, raising=False)
    path = idx.directory / idx.manifest["version"] / "vectors.npy"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40
    path.write_bytes(bytes(data))
    again = Index.open(idx.directory, embedder=env.embedder())
    (src / "doc000.txt").write_text("a changed document about wings")
    with pytest.raises(Exception) as info:
        again.update([src], progress=False)  # before: the bad row went into the new FAISS
    _assert_user_error(info.value, "vectors.npy")
    with pytest.raises(Exception) as info:
        Index.open(idx.directory).verify()
    _assert_user_error(info.value, "vectors.npy")


def test_verify_from_the_cli(built, capsys):
    from assay.cli import main

    _, idx = built
    assert main(["index", "--index", str(idx.directory), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and str(idx.directory) in out
    report = Index.open(idx.directory).verify()
    assert report["files"] == len(_version_files(idx.directory)) + 1  # and the manifest
    path = idx.directory / idx.manifest["version"] / "vectors.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    assert main(["index", "--index", str(idx.directory), "--verify"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vectors.npy" in err[0] and "--rebuild" in err[0]


def _shards(env):
    d = next(p for p in env.emb_cache.iterdir() if p.is_dir())
    return sorted(d.glob("*.keys.npy")), sorted(d.glob("*.vecs.npy"))


def test_flipped_vector_in_the_cache_is_dropped_and_recomputed(env, capsys):
    src = env.write_corpus(env.root / "src", "alpha", 6)
    env.warm(src)
    (vecs,) = _shards(env)[1]
    data = bytearray(vecs.read_bytes())
    data[-2] ^= 0x40  # the last vector's last component: a huge value
    vecs.write_bytes(bytes(data))
    emb = env.embedder()
    idx = Index.build([src], env.root / "idx", env.config(), progress=False, embedder=emb)
    expected = np.stack([env.fake_vector(c.text) for c in idx.chunks])
    np.testing.assert_array_equal(np.asarray(idx.vectors), expected)  # before: the flipped vector was reused
    assert emb.model_calls == len(idx)  # the bad shard was dropped: its texts were recomputed
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and vecs.name.split(".")[0] in warnings[0], warnings
    # and only once: the bad shard is gone, the recomputed one is good
    again = env.embedder()
    again.encode([c.text for c in idx.chunks])
    assert again.model_calls == 0 and "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("which", ["keys", "vecs"])
def test_zero_byte_cache_shard_does_not_break_later_builds(env, capsys, which):
    src = env.write_corpus(env.root / "src", "alpha", 6)
    env.warm(src)
    keys, vecs = _shards(env)
    (keys[0] if which == "keys" else vecs[0]).write_bytes(b"")
    for attempt in range(2):  # before: every later build crashed (EOFError)
        emb = env.embedder()
        idx = Index.build([src], env.root / f"idx{attempt}", env.config(), progress=False, embedder=emb)
        expected = np.stack([env.fake_vector(c.text) for c in idx.chunks])
        np.testing.assert_array_equal(np.asarray(idx.vectors), expected)
    assert emb.model_calls == 0  # the second build found the recomputed shard
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1, warnings


def test_rebuild_recovers_a_corrupt_file_a_lost_and_a_corrupt_manifest(built, env, capsys, monkeypatch):
    from assay.cli import main

    monkeypatch.setenv("ASSAY_CACHE", str(env.cache_root))
    src, idx = built
    d = str(idx.directory)
    rebuild = ["index", str(src), "--index", d, "--rebuild", "--chunk-size", "200", "--chunk-overlap", "40",
               "--quiet"]

    def one_line_error(argv, *needles):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and all(n in err[0] for n in needles), err

    # a corrupt file: update refuses in one line, --rebuild repairs
    chunks = idx.directory / idx.manifest["version"] / "chunks.jsonl"
    chunks.write_bytes(chunks.read_bytes()[:-10] + b"\xff" * 10)
    one_line_error(["index", str(src), "--index", d, "--quiet"], "chunks.jsonl", "--rebuild")
    one_line_error(["search", "wing", "--index", d, "--mode", "bm25"], "chunks.jsonl", "--rebuild")
    assert main(rebuild) == 0
    capsys.readouterr()
    assert len(Index.open(d)) == len(idx)

    # manifest.json gone: search says to index; --rebuild (and a plain index) rebuilds
    (idx.directory / "manifest.json").unlink()
    one_line_error(["search", "wing", "--index", d, "--mode", "bm25"], "assay index")
    assert main(rebuild) == 0
    capsys.readouterr()
    assert len(Index.open(d)) == len(idx)

    # manifest.json corrupt: one line each, --rebuild repairs
    (idx.directory / "manifest.json").write_text('{"format": "assay-index", "vers')
    one_line_error(["search", "wing", "--index", d, "--mode", "bm25"], "manifest.json", "--rebuild")
    one_line_error(["index", str(src), "--index", d, "--quiet"], "manifest.json", "--rebuild")
    assert main(rebuild) == 0
    capsys.readouterr()
    assert len(Index.open(d)) == len(idx)
    assert len(env.entries(idx.directory)["versions"]) == 1


def test_an_index_from_before_checksums_opens_and_gains_them_at_its_next_write(built, env):
    src, idx = built
    path = idx.directory / "manifest.json"
    legacy = json.loads(path.read_text())
    del legacy["checksums"], legacy["checksum"]
    path.write_text(json.dumps(legacy, indent=2))
    again = Index.open(idx.directory, embedder=env.embedder())
    assert len(again) == len(idx) and Index.open(idx.directory).verify()["checksummed"] is False
    (src / "doc000.txt").write_text("a changed document about wings")
    again.update([src], progress=False)
    manifest = json.loads(path.read_text())
    assert set(manifest["checksums"]) == set(_version_files(idx.directory))
    assert Index.open(idx.directory).verify()["checksummed"] is True
