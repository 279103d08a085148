"""Secure aggregation (harness.wire.secagg): fixed point, pairwise masks, dropout recovery, the rules
that run on sums, and the config-time refusals. Expected values are worked by hand or computed with
Python integers mod 2^64 and float64 numpy sums, never by the code under test."""
import numpy as np
import pytest
import scipy.stats
import torch

from harness import build_aggregator
from harness.core.config import load_config
from harness.core.errors import ConfigError
from harness.core.registry import METHODS
from harness.core.types import ClientUpdate
from harness.wire import secagg

MOD = 2 ** 64
SUMS = ["fedavg", "fedprox", "fedadam", "fedavgm"]


def test_fixed_point_by_hand():
    # 0.5 * 2^32 = 2^31; -2^-32 is -1 in fixed point, 2^64 - 1 as a field word; 1.25 * 2^32 = 5 * 2^30
    words = secagg.encode(np.array([0.5, -2.0 ** -32, 1.25]))
    assert [int(w) for w in words] == [2 ** 31, MOD - 1, 5 * 2 ** 30]
    assert secagg.decode(words).tolist() == [0.5, -2.0 ** -32, 1.25]


def test_masks_match_a_hand_computation_with_python_integers():
    """Three clients, y_k = v_k + b_k + sum_{j>k} s_kj - sum_{j<k} s_jk mod 2^64, entry by entry."""
    seed, rnd, size = 7, 3, 4
    v = {k: secagg.encode(np.arange(size) * (k + 1) * 0.25) for k in range(3)}
    words = lambda s: [int(w) for w in secagg.prg(s, size)]   # noqa: E731
    s01, s02, s12 = (words(secagg.pair_seed(seed, rnd, i, j)) for i, j in ((0, 1), (0, 2), (1, 2)))
    b = {k: words(secagg.self_seed(seed, rnd, k)) for k in range(3)}
    want = {0: [(int(v[0][e]) + b[0][e] + s01[e] + s02[e]) % MOD for e in range(size)],
            1: [(int(v[1][e]) + b[1][e] - s01[e] + s12[e]) % MOD for e in range(size)],
            2: [(int(v[2][e]) + b[2][e] - s02[e] - s12[e]) % MOD for e in range(size)]}
    for k in range(3):
        assert [int(w) for w in secagg.mask(v[k], k, [0, 1, 2], seed, rnd)] == want[k]
    assert secagg.pair_seed(seed, rnd, 2, 1) == secagg.pair_seed(seed, rnd, 1, 2)


def masked_round(x, participants, seed=0, rnd=1):
    return {k: secagg.mask(secagg.encode(x[k]), k, participants, seed, rnd) for k in participants}


@pytest.mark.parametrize("dropped", [[], [2], [0, 4]])
def test_recovered_sum_equals_the_plain_sum_with_dropouts(dropped):
    rng = np.random.default_rng(0)
    x = {k: rng.normal(scale=3.0, size=1000) for k in range(5)}
    masked = masked_round(x, list(range(5)))
    survivors = {k: y for k, y in masked.items() if k not in dropped}
    got = secagg.decode(secagg.unmask_sum(survivors, list(range(5)), 0, 1))
    plain = np.sum([x[k] for k in survivors], axis=0)
    # each entry of each survivor is rounded to a multiple of 2^-32: error <= K 2^-33
    assert np.abs(got - plain).max() <= len(survivors) * 2.0 ** -33
    assert np.abs(got - plain).max() > 0          # it is fixed point, not a float copy


def test_masked_uploads_look_like_noise():
    """No upload correlates with its client's values, and the words are uniform (their top bytes)."""
    rng = np.random.default_rng(1)
    n = 20000
    x = {k: rng.normal(size=n) + 0.1 * k for k in range(4)}
    masked = masked_round(x, [0, 1, 2, 3], seed=3, rnd=2)
    for k, y in masked.items():
        as_float = y.view(np.int64).astype(np.float64)
        r = np.corrcoef(as_float, x[k])[0, 1]
        assert abs(r) < 4 / np.sqrt(n)
        top = (y >> np.uint64(56)).astype(np.int64)
        assert scipy.stats.chisquare(np.bincount(top, minlength=256)).pvalue > 1e-4
    # the same values masked in another round give unrelated words
    again = masked_round(x, [0, 1, 2, 3], seed=3, rnd=3)
    assert not np.any(again[0] == masked[0])


def run_on_sums(agg, theta, updates, dropped=()):
    """The whole wire: client vectors, fixed point, masks, the survivors' unmasked sum, the rule."""
    participants = [u.client_id for u in updates]
    masked = {}
    for u in updates:
        x, peak = secagg.client_vector(u.state, theta, u.num_samples, len(updates))
        assert peak < secagg.SUM_BOUND
        masked[u.client_id] = secagg.mask(secagg.encode(x), u.client_id, participants, 5, 1)
    total = secagg.unmask_sum({k: y for k, y in masked.items() if k not in dropped}, participants, 5, 1)
    sums, n = secagg.split_sum(total, theta)
    return agg.aggregate_sums(theta, sums, n, len(masked) - len(dropped))


def clients(dtype=torch.float64, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    theta = {"a": torch.randn(6, 5, generator=g, dtype=dtype), "b": torch.randn(7, generator=g, dtype=dtype)}
    ups = [ClientUpdate(i, {n: t + 0.05 * torch.randn(t.shape, generator=g, dtype=dtype) for n, t in theta.items()},
                        10 * (i + 1)) for i in range(k)]
    return theta, ups


@pytest.mark.parametrize("method", SUMS)
def test_rules_on_sums_equal_their_plain_results(method):
    theta, ups = clients()
    plain, masked = build_aggregator(method), build_aggregator(method)
    for rnd in range(2):    # two rounds: FedAdam's and FedAvgM's server state carries over
        want = plain.aggregate(theta, ups)
        got = run_on_sums(masked, theta, ups)
        # n_k Delta_k rounded to 2^-33, over sum n_k = 100: FedAvg within 4 2^-33 / 100; FedAdam's step
        # multiplies the error by at most eta (1 - beta1) / tau = 1
        for k in theta:
            assert torch.allclose(got[k], want[k], rtol=0, atol=4 * 2.0 ** -33)
        theta, ups = want, clients(seed=rnd + 1)[1]
    assert masked.round == plain.round == 2


def test_fedavg_on_sums_matches_numpy_and_recovers_a_dropped_client():
    theta, ups = clients()
    got = run_on_sums(build_aggregator("fedavg"), theta, ups, dropped=[1])
    kept = [u for u in ups if u.client_id != 1]
    n = np.array([u.num_samples for u in kept], dtype=np.float64)
    for k in theta:
        want = sum(w * u.state[k].numpy() for w, u in zip(n / n.sum(), kept))
        assert np.abs(got[k].numpy() - want).max() <= 3 * 2.0 ** -33


@pytest.mark.parametrize("method", sorted(METHODS))
def test_only_rules_on_sums_pass_the_config_check(method):
    args = [f"method={method}", "federation.secure_aggregation=true", "federation.min_clients=2"]
    if method in SUMS:
        assert load_config("tiny", args).federation.secure_aggregation
        return
    with pytest.raises(ConfigError) as e:
        load_config("tiny", args)
    line = str(e.value)
    assert "\n" not in line and f"{method} cannot run on sums: " in line
    if method == "fedcmp":
        assert "SVD of the concatenated operands" in line and "RWF" in line


@pytest.mark.parametrize("extra, named", [("federation.compression=int8", "federation.compression"),
                                          ("privacy.clip=1.0", "privacy.clip"),
                                          ("eval.per_client=true", "eval.per_client"),
                                          ("federation.min_clients=1", "federation.min_clients")])
def test_settings_that_read_single_uploads_are_refused(extra, named):
    args = ["method=fedavg", "federation.secure_aggregation=true", "federation.min_clients=2", extra]
    with pytest.raises(ConfigError, match=f"federation.secure_aggregation with {named}: "):
        load_config("tiny", args)


def test_the_server_rule_never_receives_an_individual_upload(tmp_path, monkeypatch):
    """Server.aggregate under secure aggregation: what arrives holds no projector, the rule's per-upload
    entry is never called, and the result is the weighted mean of the survivors (client 2 fails)."""
    from harness.engine.server import Server
    from harness.wire.hooks import client_send
    cfg = load_config("tiny", ["method=fedavg", "federation.secure_aggregation=true", "federation.min_clients=2",
                               "federation.clients=4"])
    theta, ups = clients(dtype=torch.float32)
    server = Server(cfg, tmp_path, theta, {"run_id": "t"})
    package = server.round_package(1)
    from harness.core.types import ClientResult, FailedClient
    reports = [ClientResult(u.client_id, dict(u.state), u.num_samples, 0.5, 1.0, 0.1) for u in ups]
    reports[2] = FailedClient(2, "failed")
    sent = [client_send(cfg, package, r) for r in reports]
    assert isinstance(sent[2], FailedClient) and sent[2].result is None
    assert all(r.state is None and r.masked.dtype == np.uint64 for r in sent if isinstance(r, ClientResult))

    def refuse(*a, **k):
        raise AssertionError("the rule received individual uploads")
    monkeypatch.setattr(server.aggregator, "aggregate", refuse)
    server.aggregate(1, sent)
    kept = [u for u in ups if u.client_id != 2]
    n = np.array([u.num_samples for u in kept], dtype=np.float64)
    for k in theta:
        want = sum(w * u.state[k].double().numpy() for w, u in zip(n / n.sum(), kept))
        assert np.allclose(server.global_state[k].numpy(), want, rtol=0, atol=1e-6)
