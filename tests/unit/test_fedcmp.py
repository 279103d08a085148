"""Fed-CMP against an independent numpy re-derivation (tests/unit/fedcmp_reference.py) and the
identities of SPEC section 2."""
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from harness import ClientUpdate, build_aggregator
from tests.unit.fedcmp_reference import NumpyFedCMP

pytestmark = pytest.mark.unit
SHAPES = {"a.weight": (6, 4), "a.bias": (6,), "b.weight": (5, 6), "b.bias": (5,)}


def make_round(seed, k=3, scale=0.5, shapes=SHAPES, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    glob = {n: torch.randn(s, generator=g, dtype=dtype) for n, s in shapes.items()}
    ups = [ClientUpdate(c, {n: t + scale * torch.randn(t.shape, generator=g, dtype=dtype) for n, t in glob.items()},
                        num_samples=10 * (c + 1), align_error=0.1 + 0.2 * c) for c in range(k)]
    return glob, ups


def to_np(state):
    return {k: v.numpy().copy() for k, v in state.items()}


def run_federation(agg, rounds=3, seed=0, **kw):
    """Each round: clients move away from the current global; returns the list of global states."""
    glob, _ = make_round(seed, **kw)
    states = []
    for t in range(rounds):
        _, ups = make_round(seed + 100 + t, **kw)
        ups = [ClientUpdate(u.client_id, {n: glob[n] + (u.state[n] - _[n]) for n in glob}, u.num_samples,
                            u.align_error) for u in ups]
        glob = agg.aggregate(glob, ups)
        states.append((glob, ups))
    return states


def max_diff(a, b):
    return max(float(np.abs(np.asarray(a[k]) - np.asarray(b[k])).max()) for k in a)


@pytest.mark.parametrize("svd", ["gram", "full"])
@pytest.mark.parametrize("bias_as_column", [True, False])
@pytest.mark.parametrize("operand", ["weights", "updates"])
def test_identity_with_fedavg(svd, bias_as_column, operand):
    """Full rank, coef_merge=mean, rwf=none, opm=False: X = U U^T sum_k w_k X_k = FedAvg exactly."""
    glob, ups = make_round(1)
    got = build_aggregator("fedcmp", rwf="none", opm=False, svd=svd, bias_as_column=bias_as_column,
                           operand=operand).aggregate(glob, ups)
    n = np.array([u.num_samples for u in ups], float)
    expected = {k: sum(w * u.state[k].numpy() for w, u in zip(n / n.sum(), ups)) for k in glob}
    assert max_diff(to_np(got), expected) < 1e-12


def test_identity_when_operands_are_low_rank():
    """d_out = 9 > K (d_in + 1) = 6: three components are numerically zero and dropped by tol."""
    glob, ups = make_round(2, k=2, shapes={"a.weight": (9, 2), "a.bias": (9,)})
    got = build_aggregator("fedcmp", rwf="none", opm=False).aggregate(glob, ups)
    n = np.array([u.num_samples for u in ups], float)
    expected = {k: sum(w * u.state[k].numpy() for w, u in zip(n / n.sum(), ups)) for k in glob}
    assert max_diff(to_np(got), expected) < 1e-10


@pytest.mark.parametrize("kw", [
    {}, {"operand": "updates"}, {"bias_as_column": False}, {"rwf": "mag"}, {"rwf": "qua", "lam": 2.0},
    {"coef_merge": "ties", "ties_density": 0.5}, {"opm": False, "rwf": "full"},
    {"beta_min": 0.2, "beta_max": 0.95, "gamma": 50.0}, {"opm_align": "sign"}, {"opm_gap": 0.0},
    {"opm_gap": 0.3}, {"opm_gap": 1.0}, {"opm_gap": 1.0, "coef_merge": "ties", "operand": "updates"},
    {"opm_delta": "change"}, {"opm_delta": "change", "opm_gap": 1.0}, {"opm_delta": "change", "operand": "updates"},
    {"opm_delta": "change", "bias_as_column": False, "gamma": 20.0},
])
@pytest.mark.parametrize("svd", ["gram", "full"])
def test_three_rounds_match_numpy_reference(kw, svd):
    """opm_gap=1.0 puts every full-rank spectrum in one group: the harness takes its fast path, the
    reference the general one."""
    ref = NumpyFedCMP(**kw)
    glob, _ = make_round(0)
    glob = to_np(glob)
    for (got, ups) in run_federation(build_aggregator("fedcmp", svd=svd, **kw), rounds=3):
        expected = ref.aggregate(glob, [to_np(u.state) for u in ups], [u.num_samples for u in ups],
                                 [u.align_error for u in ups])
        assert max_diff(to_np(got), expected) < 1e-9
        glob = to_np(got)


def test_gram_and_full_svd_paths_agree():
    a = run_federation(build_aggregator("fedcmp", svd="gram"), rounds=4)
    b = run_federation(build_aggregator("fedcmp", svd="full"), rounds=4)
    for (ga, _), (gb, _) in zip(a, b):
        assert max_diff(to_np(ga), to_np(gb)) < 1e-9


def test_opm_keeps_the_basis_orthonormal():
    agg = build_aggregator("fedcmp")
    run_federation(agg, rounds=4)
    bases = [v for k, v in agg.state_dict()["tensors"].items() if k.startswith("U/")]
    assert len(bases) == 2
    for u in bases:
        assert float((u.T @ u - torch.eye(u.shape[1], dtype=u.dtype)).abs().max()) < 1e-10
    assert all(0.5 <= d["beta"] <= 0.9 for k, d in agg.diagnostics.items() if k != "omega")


def _flip_columns(fn, which):
    def flipped(*args, **kwargs):
        out = fn(*args, **kwargs)
        sign = torch.where(torch.arange(out[which].shape[-1]) % 2 == 0, -1.0, 1.0).to(out[which].dtype)
        parts = list(out)
        parts[which] = parts[which] * sign
        if len(parts) == 3:   # svd: flip the matching rows of V^H too
            parts[2] = parts[2] * sign[: parts[2].shape[0], None]
        return type(out)(parts) if not isinstance(out, tuple) else tuple(parts)
    return flipped


@pytest.mark.parametrize("svd", ["gram", "full"])
def test_result_does_not_depend_on_svd_column_signs(svd, monkeypatch):
    plain = run_federation(build_aggregator("fedcmp", svd=svd), rounds=3)
    monkeypatch.setattr(torch.linalg, "eigh", _flip_columns(torch.linalg.eigh, 1))
    monkeypatch.setattr(torch.linalg, "svd", _flip_columns(torch.linalg.svd, 0))
    flipped = run_federation(build_aggregator("fedcmp", svd=svd), rounds=3)
    for (a, _), (b, _) in zip(plain, flipped):
        assert max_diff(to_np(a), to_np(b)) < 1e-10


@pytest.mark.parametrize("kw", [{}, {"opm_align": "sign"}, {"opm_gap": 1.0}, {"opm_gap": 0.3}, {"csc": False},
                                {"csc": False, "operand": "updates"}, {"opm_delta": "change"},
                                {"opm_delta": "change", "opm_gap": 1.0}, {"opm_delta": "change", "csc": False}])
def test_state_dict_round_trip_continues_bit_identically(kw, tmp_path):
    full = run_federation(build_aggregator("fedcmp", **kw), rounds=3)
    first = build_aggregator("fedcmp", **kw)
    run_federation(first, rounds=1)
    sd = first.state_dict()
    save_file(sd["tensors"], tmp_path / "agg.safetensors")
    resumed = build_aggregator("fedcmp", **kw)
    resumed.load_state_dict({"round": sd["round"], "tensors": load_file(tmp_path / "agg.safetensors")})
    glob = full[0][0]
    for t in (1, 2):
        glob = resumed.aggregate(glob, full[t][1])
        assert all(torch.equal(glob[k], full[t][0][k]) for k in glob)


def test_inputs_are_not_modified():
    glob, ups = make_round(3, dtype=torch.float32)
    before = ({k: v.clone() for k, v in glob.items()}, [{k: v.clone() for k, v in u.state.items()} for u in ups])
    out = build_aggregator("fedcmp", coef_merge="ties").aggregate(glob, ups)
    assert all(torch.equal(glob[k], before[0][k]) for k in glob)
    assert all(torch.equal(u.state[k], s[k]) for u, s in zip(ups, before[1]) for k in glob)
    assert all(out[k].dtype == torch.float32 for k in out)


def test_reliability_weights_by_hand():
    """Deltas of norm 3 and 4, errors 0 and ln 2: omega ~ (3 * 1, 4 * 1/2) = (0.6, 0.4)."""
    glob = {"w": torch.zeros(1, 2, dtype=torch.float64)}
    ups = [ClientUpdate(0, {"w": torch.tensor([[3.0, 0.0]], dtype=torch.float64)}, 1, 0.0),
           ClientUpdate(1, {"w": torch.tensor([[0.0, 4.0]], dtype=torch.float64)}, 1, float(np.log(2)))]
    agg = build_aggregator("fedcmp", csc=False, opm=False)
    out = agg.aggregate(glob, ups)
    assert agg.diagnostics["omega"] == pytest.approx({0: 0.6, 1: 0.4}, abs=1e-12)
    assert out["w"][0].tolist() == pytest.approx([1.8, 1.6], abs=1e-12)


def test_opm_without_csc_is_an_adaptive_ema_by_hand():
    """Round 1 stores x1 = (1, 0); round 2 fuses x2 = (1, 1): delta = 1 - 1/sqrt2 = 0.2929,
    beta = clip(0.5 + 2 * 0.2929) = 0.9 (capped), theta = 0.9 x1 + 0.1 x2 = (1.0, 0.1)."""
    agg = build_aggregator("fedcmp", csc=False, rwf="none")
    glob = {"w": torch.zeros(1, 2, dtype=torch.float64)}
    agg.aggregate(glob, [ClientUpdate(0, {"w": torch.tensor([[1.0, 0.0]], dtype=torch.float64)}, 1)])
    out = agg.aggregate(glob, [ClientUpdate(0, {"w": torch.tensor([[1.0, 1.0]], dtype=torch.float64)}, 1)])
    assert out["w"][0].tolist() == pytest.approx([1.0, 0.1], abs=1e-12)
    assert agg.diagnostics["w"]["delta"] == pytest.approx(1 - 2 ** -0.5, abs=1e-12)
    assert agg.diagnostics["w"]["change"] == pytest.approx(0.9 / 2 ** 0.5, abs=1e-12)   # |(0,-0.9)| / |(1,1)|


def test_opm_change_is_the_distance_from_fedavg():
    """With rwf=none at full rank the fusion before momentum is FedAvg (SPEC identity), so the
    recorded change is ||theta_opm - FedAvg|| / ||FedAvg|| per block, bias as its last column."""
    agg = build_aggregator("fedcmp", rwf="none")
    states = run_federation(agg, rounds=2)
    out, ups = states[-1]
    n = np.array([u.num_samples for u in ups], dtype=float)
    for layer in ("a", "b"):
        def block(state):
            return np.concatenate([np.asarray(state[f"{layer}.weight"]), np.asarray(state[f"{layer}.bias"])[:, None]], 1)
        avg = sum(w * block(u.state) for w, u in zip(n / n.sum(), ups))
        want = np.linalg.norm(block(out) - avg) / np.linalg.norm(avg)
        assert agg.diagnostics[f"{layer}.weight+bias"]["change"] == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("kw, words", [
    ({"rwf": "ful"}, ["fedcmp.rwf", "did you mean 'full'", "mag"]),
    ({"svd": "randomized"}, ["fedcmp.svd", "gram", "full"]),
    ({"tol": 1e-9}, ["fedcmp.tol", "svd=full"]),
    ({"rank": 0}, ["fedcmp.rank"]),
    ({"beta_max": 0.2}, ["fedcmp.beta_max"]),
    ({"opm_align": "signs"}, ["fedcmp.opm_align", "did you mean 'sign'", "subspace"]),
    ({"opm_gap": 1.5}, ["fedcmp.opm_gap"]),
    ({"lamda": 1.0}, ["lamda", "did you mean 'lam'"]),
])
def test_bad_hyperparameters_give_one_line(kw, words):
    with pytest.raises(ValueError) as err:
        build_aggregator("fedcmp", **kw)
    msg = str(err.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_missing_alignment_error_is_named():
    glob, ups = make_round(4)
    ups[1] = ClientUpdate(ups[1].client_id, ups[1].state, ups[1].num_samples, None)
    with pytest.raises(ValueError, match=r"align_error.*\[1\]"):
        build_aggregator("fedcmp").aggregate(glob, ups)
    build_aggregator("fedcmp", rwf="mag").aggregate(glob, ups)   # magnitude alone needs no e_k


@pytest.mark.parametrize("kind", ["mix of bases", "rank deficient"])
def test_polar_matches_scipy(kind):
    from scipy.linalg import polar as scipy_polar
    from harness.fedcmp.opm import polar
    gen = torch.Generator().manual_seed(3)
    q1, q2 = (torch.linalg.qr(torch.randn(40, 40, generator=gen, dtype=torch.float64))[0] for _ in range(2))
    a = 0.7 * q1 + 0.3 * (q1 + 0.1 * q2)                # well conditioned: the eigh route
    if kind == "rank deficient":                         # kappa = inf: the SVD route
        a[:, -1] = 0.0
        a[:, 0] = 1e-9 * a[:, 1]
    want, _ = scipy_polar(a.numpy())
    got = polar(a)
    if kind == "mix of bases":
        assert np.abs(got.numpy() - want).max() < 1e-12
        assert float((got.T @ got - torch.eye(40, dtype=torch.float64)).abs().max()) < 1e-12
    else:   # the polar factor is not unique on the null space: compare on the range only
        assert np.abs((got.numpy() - want)[:, 1:-1]).max() < 1e-6
