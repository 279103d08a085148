"""The clustering step's blocked, threaded passes (harness/data/scan.py) against independent references:
a naive float64 numpy Lloyd step (the metric definitions of SPEC 5 written out again), scikit-learn's
KMeans on the unit vectors, and a plain unblocked torch loop (same machine: bit for bit).

Planted data as in test_data_pipeline: five family directions in R^32, unit samples around them, image and
caption sharing the family.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from harness.data.scan import Scanner, block_bounds
from harness.data.store import EmbeddingStore
from tests.unit.test_data_pipeline import K, family_vectors, unit, write_store

pytestmark = pytest.mark.unit
D, N = 32, 1500


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(11)
    mu = unit(rng.standard_normal((K, D)))
    fam = rng.integers(0, K, N)
    return fam, family_vectors(rng, fam, mu), family_vectors(rng, fam, mu)


def numpy_scores(metric, x, y, cent):
    """s(i, k) of SPEC 5 from scratch in float64: II x.c, TT y.c, IT x.c_x + y.c_y, XM x.c_y + y.c_x."""
    cx, cy = cent[:, :D], cent[:, D:]
    return {"ii": lambda: x @ cent.T, "tt": lambda: y @ cent.T, "it": lambda: x @ cx.T + y @ cy.T,
            "xm": lambda: x @ cy.T + y @ cx.T}[metric]()


def numpy_centroids(metric, x, y, labels):
    """Normalized member sums: one vector (II, TT), [x; y] jointly (IT), each half separately (XM)."""
    z = {"ii": x, "tt": y}.get(metric, np.concatenate([x, y], 1))
    sums = np.stack([z[labels == c].sum(0) for c in range(K)])
    if metric == "xm":
        return np.concatenate([unit(sums[:, :D]), unit(sums[:, D:])], 1)
    return unit(sums)


@pytest.mark.parametrize("metric", ["ii", "tt", "it", "xm"])
def test_result_is_a_fixed_point_of_a_naive_numpy_lloyd_step(tmp_path, planted, metric):
    """Streamed passes (subsample 300 of 1500 rows, chunks of 97, three parts): the saved labels are the
    argmax of the numpy scores under the saved centroids, the scores are those maxima, and one numpy
    Lloyd step from there gives the same centroids back (float32 against float64: 1e-5)."""
    from harness.data.cluster import cluster
    fam, x, y = planted
    write_store(tmp_path, x, y)
    cluster(tmp_path, metric, k=K, seed=0, restarts=2, sample=300, chunk=97, workers=3)
    cent = np.load(tmp_path / metric / "centroids.npy").astype(np.float64)
    labels, scores = np.load(tmp_path / metric / "labels.npy"), np.load(tmp_path / metric / "scores.npy")
    xs, ys = (a.astype(np.float16).astype(np.float64) for a in (x, y))        # what the store holds
    ref = numpy_scores(metric, xs, ys, cent)
    assert np.array_equal(labels, ref.argmax(1))
    np.testing.assert_allclose(scores, ref.max(1), atol=1e-5)
    np.testing.assert_allclose(numpy_centroids(metric, xs, ys, labels), cent, atol=1e-5)
    assert adjusted_rand_score(fam, labels) >= 0.95


def test_ii_partition_equals_sklearn_kmeans_on_unit_vectors(tmp_path, planted):
    """On unit vectors Euclidean k-means and spherical k-means agree on well separated families."""
    from harness.data.cluster import cluster
    _, x, y = planted
    write_store(tmp_path, x, y)
    cluster(tmp_path, "ii", k=K, seed=0, restarts=2, sample=400, chunk=128)
    ours = np.load(tmp_path / "ii" / "labels.npy")
    theirs = KMeans(K, n_init=5, random_state=0).fit_predict(x.astype(np.float16).astype(np.float32))
    assert adjusted_rand_score(theirs, ours) == 1.0


@pytest.mark.parametrize("workers,block_bytes", [(1, 4 << 20), (3, 4 * 2 * D * 7)])
def test_blocks_give_the_bits_of_one_unblocked_pass(tmp_path, planted, workers, block_bytes):
    """IT over two float16 column groups in 7-row blocks on three threads: labels, scores and the sums
    accumulated in block order equal one torch matmul and one index_add_ over the whole float32 chunk."""
    _, x, y = planted
    write_store(tmp_path, x, y, parts=1)
    (_, xs, ys), = EmbeddingStore(tmp_path).chunks(N)
    w = torch.nn.functional.normalize(torch.randn(K, 2 * D, generator=torch.Generator().manual_seed(0)), dim=1)
    z = torch.cat([torch.from_numpy(np.asarray(xs, np.float32)), torch.from_numpy(np.asarray(ys, np.float32))], 1)
    best, label = (z @ w.T).max(1)
    sums = torch.zeros(K, 2 * D).index_add_(0, label, z)
    got_best, got_label, got_sums = [], [], torch.zeros(K, 2 * D)
    with Scanner("cpu", workers, block_bytes) as scan:
        for zb, b, lab in scan.blocks((xs, ys), w):
            got_sums.index_add_(0, lab, zb)
            got_best.append(b.clone())
            got_label.append(lab.clone())
    assert torch.equal(torch.cat(got_best), best) and torch.equal(torch.cat(got_label), label)
    assert torch.equal(got_sums, sums)
    assert scan.tally.rows == N and scan.tally.bytes == N * 2 * D * 2 and scan.tally.flops == 2 * N * 2 * D * K


def test_block_bounds_cover_the_rows_and_never_cut_a_lone_row():
    """A one-row GEMM takes MKL's GEMV path (other bits): 1025 rows in blocks of <= 1024 are 512 + 513."""
    assert block_bounds(1025, 1024) == [(0, 512), (512, 1025)]
    assert block_bounds(1, 1024) == [(0, 1)] and block_bounds(5, 1) == [(0, 2), (2, 3), (3, 5)]
    for n, rows in [(7, 3), (100, 9), (65536, 1024), (2, 2)]:
        b = block_bounds(n, rows)
        assert b[0][0] == 0 and b[-1][1] == n and all(p[1] == q[0] for p, q in itertools.pairwise(b))
        assert all(1 < hi - lo <= max(rows, 2) for lo, hi in b)


def test_scanner_restores_torch_threads():
    before = torch.get_num_threads()
    with Scanner("cpu", 2) as scan:
        assert torch.get_num_threads() == 1 and scan.workers == 2
    assert torch.get_num_threads() == before


def test_the_cli_path_imports_no_torch():
    """``fedma --help`` reaches harness.data.prepare (and so cluster): torch only on first use."""
    import subprocess
    import sys
    code = "import sys, harness.data.prepare; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
