"""OPM as SPEC section 2 (amended) defines it: groups of near-degenerate singular values, Procrustes
alignment inside a group, the paper's sign flip for a singleton, the block-diagonal spectrum momentum
and its per-group eigendecomposition, and the one-group fast path."""
import math

import numpy as np
import pytest
import torch

from harness import build_aggregator
from harness.fedcmp.opm import Memory, opm_step, spectral_groups
from tests.unit.test_fedcmp import max_diff, run_federation, to_np

pytestmark = pytest.mark.unit
F64 = torch.float64
C, S = math.sqrt(3) / 2, 0.5          # a rotation by 30 degrees


def rotated_round():
    """U_prev = I, sigma_prev = (4, 2, 2); this round U~ = [-e1, R30 e2, R30 e3] (the pair rotated by 30
    degrees in the (e2, e3) plane), sigma~ = (4, 2.1, 2.0), V~ = I."""
    u_tilde = torch.tensor([[-1.0, 0, 0], [0, C, -S], [0, S, C]], dtype=F64)
    return torch.eye(3, dtype=F64), torch.tensor([4.0, 2.0, 2.0], dtype=F64), u_tilde, \
        torch.tensor([4.0, 2.1, 2.0], dtype=F64), torch.eye(3, dtype=F64)


def test_two_groups_by_hand():
    """rho_prev = (0.5, 0), rho~ = (0.475, 0.048): one cut (after component 1) at g = 0.1, so groups
    {1} and {2, 3}. Group {1}: <u~1, e1> = -1 < 0, flip: u^1 = e1, v^1 = -e1. Group {2, 3}: U~_G^T U_prev,G
    = [[c, s], [-s, c]] is orthogonal, so R = that matrix and U^_G = U_prev,G: delta = 0, beta = 0.5, U = I.
    S^_G = R^T diag(2.1, 2) R; S_G = 0.5 diag(2, 2) + 0.5 S^_G has the eigenvalues 1 + 0.5 (2.1, 2) =
    (2.05, 2.0) on the eigenvectors R^T e_i = u~2, u~3. Stored: U = [e1, u~2, u~3], sigma = (4, 2.05, 2);
    X = [-4 e1, 2.05 u~2, 2.0 u~3]: momentum evens out the pair's spectrum and keeps its rotation."""
    u_prev, s_prev, u, s, v = rotated_round()
    assert spectral_groups(s, s_prev, "subspace", 0.1) == [range(0, 1), range(1, 3)]
    res = opm_step(Memory(s_prev, u=u_prev), u, s, v, 0.5, 0.9, 2.0, "subspace", 0.1)
    assert res.groups == 2 and res.beta == pytest.approx(0.5, abs=1e-15) and res.delta == pytest.approx(0.0, abs=1e-15)
    assert res.memory.s.tolist() == pytest.approx([4.0, 2.05, 2.0], abs=1e-12) and res.memory.a is None
    want_u = torch.tensor([[1.0, 0, 0], [0, C, -S], [0, S, C]], dtype=F64)
    assert torch.allclose(res.memory.u.abs(), want_u.abs(), atol=1e-12)      # eigenvector signs are free
    want_x = torch.tensor([[-4.0, 0, 0], [0, 2.05 * C, -2.0 * S], [0, 2.05 * S, 2.0 * C]], dtype=F64)
    assert torch.allclose(res.x, want_x, atol=1e-12)


def test_the_sign_rule_rotates_the_pair_by_hand():
    """The paper's rule on the same round: no flip for the pair (<u~2, e2> = <u~3, e3> = c > 0), delta =
    (0 + 2 (1 - c)) / 3 = 0.0893, beta = 0.5 + 2 delta = 0.6786; U = polar(beta I + (1 - beta) [e1, u~2, u~3])
    rotates the pair by phi with tan(phi) = (1 - beta) s / (beta + (1 - beta) c): the output directions of
    the pair move towards last round's although the coefficients are this round's."""
    u_prev, s_prev, u, s, v = rotated_round()
    res = opm_step(Memory(s_prev, u=u_prev), u, s, v, 0.5, 0.9, 2.0, "sign")
    delta = 2 * (1 - C) / 3
    beta = 0.5 + 2 * delta
    phi = math.atan2((1 - beta) * S, beta + (1 - beta) * C)
    assert (res.groups, res.delta, res.beta) == (3, pytest.approx(delta, abs=1e-12), pytest.approx(beta, abs=1e-12))
    want_u = torch.tensor([[1.0, 0, 0], [0, math.cos(phi), -math.sin(phi)], [0, math.sin(phi), math.cos(phi)]],
                          dtype=F64)
    assert torch.allclose(res.memory.u, want_u, atol=1e-12)
    assert res.memory.s.tolist() == pytest.approx([4.0, beta * 2 + (1 - beta) * 2.1, 2.0], abs=1e-12)


def test_groups_need_a_gap_in_both_spectra():
    s = torch.tensor([10.0, 5.0, 4.9, 1.0, 0.0, 0.0], dtype=F64)
    prev = torch.tensor([10.0, 9.5, 4.0, 1.0, 0.5, 0.0], dtype=F64)
    # rho = (0.5, 0.02, 0.796, 1, 0); rho_prev = (0.05, 0.579, 0.75, 0.5, 1): cuts after 3 and 4 only
    assert spectral_groups(s, prev, "subspace", 0.1) == [range(0, 3), range(3, 4), range(4, 6)]
    assert spectral_groups(s, prev, "subspace", 0.0) == [range(j, j + 1) for j in range(6)]
    assert spectral_groups(s, prev, "sign", 0.1) == [range(j, j + 1) for j in range(6)]


@pytest.mark.parametrize("kw", [{}, {"coef_merge": "ties"}, {"operand": "updates"}, {"bias_as_column": False}])
def test_sign_rule_is_subspace_at_gap_zero_bit_for_bit(kw):
    a = run_federation(build_aggregator("fedcmp", opm_align="sign", **kw), rounds=4)
    b = run_federation(build_aggregator("fedcmp", opm_align="subspace", opm_gap=0.0, **kw), rounds=4)
    for (ga, _), (gb, _) in zip(a, b):
        assert all(torch.equal(ga[k], gb[k]) for k in ga)


@pytest.mark.parametrize("align, gap", [("subspace", 0.1), ("subspace", 1.0), ("sign", 0.1)])
def test_beta_zero_reproduces_the_fusion(align, gap):
    """beta = 0: U = polar(U^) = U^, S = S^, X = U^ S^ V^^T = X~ (the fusion without momentum)."""
    with_opm = run_federation(build_aggregator("fedcmp", beta_min=0.0, beta_max=0.0, opm_align=align,
                                               opm_gap=gap), rounds=3)
    without = run_federation(build_aggregator("fedcmp", opm=False), rounds=3)
    for (ga, _), (gb, _) in zip(with_opm, without):
        assert max_diff(to_np(ga), to_np(gb)) < 1e-12


@pytest.mark.parametrize("align, gap", [("subspace", 0.1), ("subspace", 0.5), ("subspace", 1.0), ("sign", 0.1)])
def test_the_stored_basis_stays_orthonormal(align, gap):
    """A stored basis U has orthonormal columns; a stored A (after the fast path) is U diag(s) U^T for an
    orthonormal U: symmetric, with the stored s as its eigenvalues."""
    agg = build_aggregator("fedcmp", opm_align=align, opm_gap=gap)
    run_federation(agg, rounds=5)
    tensors = agg.state_dict()["tensors"]
    blocks = {k.split("/", 1)[1] for k in tensors}
    assert len(blocks) == 2 and all(f"S/{b}" in tensors for b in blocks)
    for b in blocks:
        if f"U/{b}" in tensors:
            u = tensors[f"U/{b}"]
            assert float((u.T @ u - torch.eye(u.shape[1], dtype=F64)).abs().max()) < 1e-12, b
        else:
            a = tensors[f"A/{b}"]
            assert torch.equal(a, a.T) or float((a - a.T).abs().max()) < 1e-14
            u, s = Memory(tensors[f"S/{b}"], a=a).basis()
            assert float((u.T @ u - torch.eye(u.shape[1], dtype=F64)).abs().max()) < 1e-12
            assert torch.allclose((u * s) @ u.T, a, atol=1e-12) and torch.allclose(s, tensors[f"S/{b}"], atol=1e-12)
        assert (f"U/{b}" in tensors) != (f"A/{b}" in tensors)
    if align == "sign":
        assert all(bool((t[:-1] >= t[1:]).all()) for k, t in tensors.items() if k.startswith("S/"))


def random_step(seed, n=7, d_in=9, degenerate=True):
    g = torch.Generator().manual_seed(seed)
    q = [torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))[0] for _ in range(2)]
    s = torch.linspace(3.0, 2.7, n, dtype=F64) if degenerate else torch.linspace(5.0, 0.5, n, dtype=F64)
    return q[0], s * 1.01, q[1], s, torch.randn(d_in, n, generator=g, dtype=F64)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("stored", ["basis", "gram root"])
def test_the_fast_path_equals_the_general_path(seed, stored):
    """One group, square U: the general path's result and state A = U diag(sigma) U^T equal the fast
    path's, and both equal (beta_min A_prev + (1 - beta_min) A~) A~^+ X~ computed here with numpy, whether
    the previous state is a basis (round 1) or an A (a fast-path round before)."""
    u_prev, s_prev, u, s, v = random_step(seed)
    prev = Memory(s_prev, u=u_prev) if stored == "basis" else Memory(s_prev, a=(u_prev * s_prev) @ u_prev.T)
    fast = opm_step(prev, u, s, v, 0.5, 0.9, 2.0, "subspace", 0.1, fast=True)
    slow = opm_step(prev, u, s, v, 0.5, 0.9, 2.0, "subspace", 0.1, fast=False)
    assert fast.groups == slow.groups == 1 and fast.beta == 0.5 and slow.beta == pytest.approx(0.5, abs=1e-12)
    assert fast.memory.u is None and slow.memory.a is None
    assert torch.allclose(fast.x, slow.x, atol=1e-12)
    assert torch.allclose(fast.memory.gram_root(), slow.memory.gram_root(), atol=1e-12)
    assert torch.allclose(fast.memory.s, slow.memory.s, atol=1e-12)
    up, sp, un, sn, vn = (t.numpy() for t in (u_prev, s_prev, u, s, v))
    a_prev, a_new = up @ np.diag(sp) @ up.T, un @ np.diag(sn) @ un.T
    want = (0.5 * a_prev + 0.5 * a_new) @ np.linalg.pinv(a_new) @ (un @ np.diag(sn) @ vn.T)
    assert np.abs(fast.x.numpy() - want).max() < 1e-10


def test_separated_spectra_take_the_general_path():
    u_prev, s_prev, u, s, v = random_step(0, degenerate=False)
    res = opm_step(Memory(s_prev, u=u_prev), u, s, v, 0.5, 0.9, 2.0, "subspace", 0.1)
    assert res.groups == 7 and res.delta > 0


def test_groups_are_recorded_per_block():
    agg = build_aggregator("fedcmp", opm_gap=1.0)
    run_federation(agg, rounds=2)
    assert {k: d["groups"] for k, d in agg.diagnostics.items() if k != "omega"} == \
        {"a.weight+bias": 1, "b.weight+bias": 1}


def same_weights_round(w: torch.Tensor, k: int = 3):
    """k clients all uploading the matrix w (no bias): every fusion is w itself."""
    from harness.core.types import ClientUpdate
    return [ClientUpdate(i, {"w": w.clone()}, num_samples=10, align_error=0.2) for i in range(k)]


@pytest.mark.parametrize("second,path", [(3.9, "fast (one group)"), (2.0, "general (two groups)")])
def test_opm_delta_change_by_hand(second, path):
    """Round 1 uploads W1 = diag(4, s2), round 2 W2 = diag(4.5, s2): the fusion is W2 itself, and
    delta = ||W2 - W1|| / ||W1|| = 0.5 / sqrt(16 + s2^2); beta = 0.5 + 2 delta. With A = sqrt(K) W (W
    diagonal) the step is (beta A1 + (1 - beta) A2) A2^+ W2 = diag(4 beta + 4.5 (1 - beta), s2) on both
    paths. The basis reading on the one-group fast path keeps beta = 0.5: diag(4.25, s2)."""
    w1, w2 = torch.diag(torch.tensor([4.0, second], dtype=F64)), torch.diag(torch.tensor([4.5, second], dtype=F64))
    delta = 0.5 / math.sqrt(16 + second ** 2)
    beta = 0.5 + 2.0 * delta
    agg = build_aggregator("fedcmp", rwf="none", opm_delta="change")
    agg.aggregate({"w": w1}, same_weights_round(w1))
    out = agg.aggregate({"w": w1}, same_weights_round(w2))["w"]
    assert agg.diagnostics["w"]["delta"] == pytest.approx(delta, rel=1e-12)
    assert agg.diagnostics["w"]["beta"] == pytest.approx(beta, rel=1e-12)
    assert agg.diagnostics["w"]["groups"] == (1 if second == 3.9 else 2), path
    expected = torch.diag(torch.tensor([4 * beta + 4.5 * (1 - beta), second], dtype=F64))
    assert torch.allclose(out, expected, atol=1e-12)
    if second == 3.9:
        basis = build_aggregator("fedcmp", rwf="none")
        basis.aggregate({"w": w1}, same_weights_round(w1))
        got = basis.aggregate({"w": w1}, same_weights_round(w2))["w"]
        assert basis.diagnostics["w"]["beta"] == 0.5 and basis.diagnostics["w"]["delta"] == 0.0
        assert torch.allclose(got, torch.diag(torch.tensor([4.25, second], dtype=F64)), atol=1e-12)


def test_opm_delta_change_without_csc_by_hand():
    """The EMA on the fused operand: delta = ||W2 - W1|| / ||W1|| = 0.5 / 5 = 0.1 (W1 = diag(3, 4)), beta =
    0.7, output 0.7 W1 + 0.3 W2 = diag(3.15, 4); the basis reading uses 1 - cos(W1, W2) instead."""
    w1, w2 = torch.diag(torch.tensor([3.0, 4.0], dtype=F64)), torch.diag(torch.tensor([3.5, 4.0], dtype=F64))
    agg = build_aggregator("fedcmp", csc=False, rwf="none", opm_delta="change")
    agg.aggregate({"w": w1}, same_weights_round(w1))
    out = agg.aggregate({"w": w1}, same_weights_round(w2))["w"]
    assert agg.diagnostics["w"]["beta"] == pytest.approx(0.7)
    assert torch.allclose(out, torch.diag(torch.tensor([3.15, 4.0], dtype=F64)), atol=1e-12)
    cos = (3 * 3.5 + 16) / (5 * math.sqrt(3.5 ** 2 + 16))
    basis = build_aggregator("fedcmp", csc=False, rwf="none")
    basis.aggregate({"w": w1}, same_weights_round(w1))
    basis.aggregate({"w": w1}, same_weights_round(w2))
    assert basis.diagnostics["w"]["delta"] == pytest.approx(1 - cos)
