"""Hybrid fusion against hand-computed values."""

from __future__ import annotations

import pytest

from rag.fusion import OLD_DEFAULT, FusionConfig, FusionError, confidence, fuse

BM25 = [(1, 12.0), (2, 8.0), (3, 4.0)]
DENSE = [(2, 0.9), (4, 0.7), (1, 0.5)]


def test_rrf_hand_computed():
    out = fuse({"bm25": BM25, "dense": DENSE}, FusionConfig(method="rrf", rrf_k=60, weighting="fixed"), k=4)
    got = {p: s for p, s, _ in out}
    assert got[2] == pytest.approx(1 / 62 + 1 / 61)
    assert got[1] == pytest.approx(1 / 61 + 1 / 63)
    assert got[3] == pytest.approx(1 / 63) and got[4] == pytest.approx(1 / 62)
    assert [p for p, _, _ in out] == [2, 1, 4, 3]
    assert out[0][2] == {"bm25": 8.0, "dense": 0.9}


def test_rrf_weights_and_depth():
    cfg = FusionConfig(method="rrf", weighting="fixed", rrf_k=0, weights={"bm25": 2.0, "dense": 1.0}, depth={"bm25": 1, "dense": 3})
    out = fuse({"bm25": BM25, "dense": DENSE}, cfg, k=1)
    # depth 1 for bm25 (k=1): only doc 1 from it; doc 1 = 2/1 + 1/3
    assert out[0][0] == 1 and out[0][1] == pytest.approx(2 + 1 / 3)


def test_convex_minmax_hand_computed():
    cfg = FusionConfig(method="convex", normalization="minmax", weights={"bm25": 0.3, "dense": 0.7}, weighting="fixed")
    got = {p: s for p, s, _ in fuse({"bm25": BM25, "dense": DENSE}, cfg, k=10)}
    # bm25 -> 1:1, 2:.5, 3:0 ; dense -> 2:1, 4:.5, 1:0 ; missing -> 0
    assert got[1] == pytest.approx(0.3)
    assert got[2] == pytest.approx(0.15 + 0.7)
    assert got[3] == pytest.approx(0.0)
    assert got[4] == pytest.approx(0.35)


def test_convex_zscore_missing_get_the_lists_floor():
    cfg = FusionConfig(method="convex", normalization="zscore", weighting="fixed")
    got = {p: s for p, s, _ in fuse({"bm25": BM25, "dense": DENSE}, cfg, k=10)}
    z_b = {1: 1.224744871, 2: 0.0, 3: -1.224744871}
    z_d = {2: 1.224744871, 4: 0.0, 1: -1.224744871}
    assert got[3] == pytest.approx(z_b[3] + min(z_d.values()))
    assert got[4] == pytest.approx(min(z_b.values()) + z_d[4])
    assert got[2] == pytest.approx(z_b[2] + z_d[2])


def test_single_list_and_bad_config():
    assert [p for p, _, _ in fuse({"bm25": BM25}, k=2)] == [1, 2]
    with pytest.raises(FusionError):
        FusionConfig(method="max")


def test_confidence_weighting_hand_computed():
    # bm25's top score stands out of its list, dense's scores are nearly flat
    bm25 = [(1, 10.0), (2, 2.0), (3, 1.0), (4, 1.0)]
    dense = [(4, 0.52), (3, 0.51), (2, 0.50), (1, 0.49)]
    c_b, c_d = confidence([s for _, s in bm25]), confidence([s for _, s in dense])
    assert c_b == pytest.approx((10 - 3.5) / 3.774917217635375)
    assert c_d == pytest.approx(0.015 / 0.011180339887498959)
    w_b, w_d = 2 * c_b / (c_b + c_d), 2 * c_d / (c_b + c_d)
    cfg = FusionConfig(method="rrf", rrf_k=0, weighting="confidence")
    got = {p: s for p, s, _ in fuse({"bm25": bm25, "dense": dense}, cfg, k=4)}
    assert got[1] == pytest.approx(w_b / 1 + w_d / 4)
    assert got[4] == pytest.approx(w_b / 4 + w_d / 1)
    fixed = fuse({"bm25": bm25, "dense": dense}, FusionConfig(method="rrf", rrf_k=0, weighting="fixed"), k=4)
    assert fixed[0][1] == pytest.approx(fixed[1][1])  # a tie without confidence (1 + 1/4 each)
    assert max(got, key=got.get) == 1  # the confident leg's top wins
    # flat lists on both sides: the weights as given
    flat = [(1, 1.0), (2, 1.0)]
    assert confidence([1.0, 1.0]) == 0.0 and confidence([3.0]) == 0.0
    assert fuse({"bm25": flat, "dense": flat}, cfg, k=2)[0][1] == pytest.approx(2.0)


def test_the_default_and_old_manifests():
    d = FusionConfig()
    assert (d.method, d.normalization, d.weighting) == ("convex", "zscore", "confidence")
    # written before `weighting`: the old default becomes the new one, a chosen setting keeps its meaning
    assert FusionConfig.from_manifest(dict(OLD_DEFAULT)) == FusionConfig()
    chosen = {**OLD_DEFAULT, "rrf_k": 20}
    assert FusionConfig.from_manifest(chosen) == FusionConfig(method="rrf", rrf_k=20, normalization="minmax",
                                                              weighting="fixed")
    with pytest.raises(FusionError):
        FusionConfig(weighting="adaptive")
