"""Flower's strategies as our server rule (harness.flower.theirs), checked against our own rules and against
NumPy re-derivations: a peer implementation nobody here wrote."""
import math
import pickle
import random
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load, save

from harness import ClientUpdate, build_aggregator
from harness.core.config import load_config
from harness.core.errors import ConfigError, HarnessError

pytestmark = pytest.mark.unit
SHAPES = {"linear_1.weight": (12, 6), "linear_1.bias": (12,), "linear_2.weight": (12, 12), "linear_2.bias": (12,)}


def start(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) for k, s in SHAPES.items()}


def uploads(state, round_, k=5, scale=0.1):
    g = torch.Generator().manual_seed(100 + round_)
    return [ClientUpdate(c, {n: t + scale * torch.randn(t.shape, generator=g) for n, t in state.items()},
                         num_samples=10 + 17 * c, align_error=0.1 * c, loss=1.0 + c) for c in range(k)]


def federate(agg, rounds=4, state=None, first=1):
    state = start() if state is None else state
    for t in range(first, first + rounds):
        state = agg.aggregate(state, uploads(state, t))
    return state


def within_float32(a, b, roundings=1):
    """|a - b| <= ``roundings`` float32 roundings at each tensor's scale (eps32 * max |a|)."""
    eps = torch.finfo(torch.float32).eps
    return all(float((a[k] - b[k]).abs().max()) <= roundings * eps * float(a[k].abs().max()) for k in a)


def test_flwr_fedavg_equals_ours_and_the_weighted_mean():
    """Flower computes in the dtype it is handed: float64 here (the bridge's choice), so the only difference
    left is the cast back to float32. Measured on this machine: max |diff| = 0 (bit-identical) over 4 rounds;
    handing Flower the float32 arrays instead differs by up to 4.8e-7 absolute (docs/flower.md)."""
    ours, theirs = federate(build_aggregator("fedavg")), federate(build_aggregator("flwr:FedAvg"))
    assert within_float32(ours, theirs)
    state = start()
    ups = uploads(state, 1)
    n = np.array([u.num_samples for u in ups], dtype=np.float64)
    for key in SHAPES:   # the weighted mean by hand, in NumPy
        stack = np.stack([u.state[key].double().numpy() for u in ups])
        want = torch.from_numpy(np.tensordot(n / n.sum(), stack, axes=1).astype(np.float32))
        got = build_aggregator("flwr:FedAvg").aggregate(state, ups)[key]
        assert within_float32({key: got}, {key: want})


@pytest.mark.parametrize("beta, lr", [(0.9, 1.0), (0.5, 0.7)])
def test_flwr_fedavgm_equals_ours(beta, lr):
    """Flower: pg = old - avg; v = pg (round 1), beta v + pg after; new = old - lr v. Ours: d = avg - old,
    v = d then beta v + d, new = old + lr v: the same rule with v's sign flipped. Flower keeps its own float64
    copy of ``old`` from round 1 on where ours restarts from the float32 broadcast, so they part by float32
    rounding each round (measured: 2.4e-7 absolute after 4 rounds, values of magnitude ~3)."""
    theirs = build_aggregator("flwr:FedAvgM", server_momentum=beta, server_learning_rate=lr)
    ours = build_aggregator("fedavgm", momentum=beta, server_lr=lr)
    a, b = federate(ours), federate(theirs)
    assert within_float32(a, b, roundings=4) and not within_float32(a, federate(build_aggregator("fedavg")), 100)


def flower_adam_eta(eta, beta1, beta2, t):
    """Flower's FedAdam step size in round t (Kingma and Ba's alpha_t, with the exponent t + 1)."""
    return eta * math.sqrt(1 - beta2 ** (t + 1)) / (1 - beta1 ** (t + 1))


def test_flwr_fedadam_is_ours_with_its_bias_corrected_step():
    """By hand, one scalar, theta = 0, one client at 1 (Delta = 1), eta = 0.1, beta1 = 0.9, beta2 = 0.99,
    tau = 1e-3. Round 1: m = 0.1, v = 0.01, sqrt(v) = 0.1; Flower's step eta_1 = 0.1 * sqrt(1 - 0.99^2) /
    (1 - 0.9^2) = 0.1 * 0.1410674 / 0.19 = 0.0742460, so theta = 0.0742460 * 0.1 / 0.101 = 0.0735109, where
    ours (bias_correction=False) gives 0.1 * 0.1 / 0.101 = 0.0990099. Mapping: ours with eta_t set to Flower's
    step each round equals Flower's FedAdam."""
    hp = dict(eta=0.1, beta1=0.9, beta2=0.99, tau=1e-3)
    one = [ClientUpdate(0, {"w": torch.ones(1, dtype=torch.float64)}, 1)]
    zero = {"w": torch.zeros(1, dtype=torch.float64)}
    theirs = build_aggregator("flwr:FedAdam", eta=0.1, beta_1=0.9, beta_2=0.99, tau=1e-3).aggregate(zero, one)
    assert float(theirs["w"]) == pytest.approx(0.0735109, abs=1e-7)
    assert float(build_aggregator("fedadam", **hp).aggregate(zero, one)["w"]) == pytest.approx(0.0990099, abs=1e-7)

    theirs = build_aggregator("flwr:FedAdam", eta=0.05, beta_1=0.9, beta_2=0.99, tau=1e-3)
    ours = build_aggregator("fedadam", eta=0.05, beta1=0.9, beta2=0.99, tau=1e-3, bias_correction=False)
    a = b = start()
    for t in range(1, 5):
        ours.eta = flower_adam_eta(0.05, 0.9, 0.99, t)
        a, b = ours.aggregate(a, uploads(a, t)), theirs.aggregate(b, uploads(b, t))
        assert within_float32(a, b), t


def test_flwr_fedmedian_and_krum_against_numpy():
    state = start()
    ups = uploads(state, 1)
    ups[4] = ClientUpdate(4, {k: v + 50.0 for k, v in ups[4].state.items()}, 40)       # one attacker
    median = build_aggregator("flwr:FedMedian").aggregate(state, ups)
    for key in SHAPES:
        want = np.median(np.stack([u.state[key].double().numpy() for u in ups]), axis=0)
        assert within_float32({key: median[key]}, {key: torch.from_numpy(want.astype(np.float32))})
    # Krum (f = 1): the client whose n - f - 2 = 2 nearest others are closest in squared distance
    flat = np.stack([np.concatenate([u.state[k].double().numpy().ravel() for k in SHAPES]) for u in ups])
    d2 = ((flat[:, None] - flat[None]) ** 2).sum(-1)
    scores = [np.sort(np.delete(d2[i], i))[:2].sum() for i in range(5)]
    chosen = ups[int(np.argmin(scores))].state
    krum = build_aggregator("flwr:Krum", num_malicious_nodes=1).aggregate(state, ups)
    assert all(torch.equal(krum[k], chosen[k]) for k in SHAPES)


@pytest.mark.parametrize("name, hp", [("flwr:FedAdam", {"eta": 0.05}), ("flwr:FedAvgM", {"server_momentum": 0.9}),
                                      ("flwr:FedYogi", {}),
                                      ("flwr:DifferentialPrivacyServerSideFixedClipping",
                                       {"strategy": {"class": "FedAvgM", "server_momentum": 0.5},
                                        "noise_multiplier": 0.5, "clipping_norm": 0.5, "num_sampled_clients": 5})])
def test_state_survives_a_checkpoint_and_continues_bit_identically(name, hp):
    """2 rounds, state_dict through safetensors bytes (as the checkpoint stores it), a fresh aggregator loads
    it and runs rounds 3-4: the same arrays, bit for bit, as 4 uninterrupted rounds (m_t, v_t, momentum,
    the DP noise of rounds 3-4 all continue)."""
    whole = federate(build_aggregator(name, **hp), rounds=4)
    first = build_aggregator(name, **hp)
    half = federate(first, rounds=2)
    sd = first.state_dict()
    restored = build_aggregator(name, **hp)
    restored.load_state_dict({"round": sd["round"], "tensors": load(save(sd["tensors"]))})
    rest = federate(restored, rounds=2, state=half, first=3)
    assert all(torch.equal(whole[k], rest[k]) for k in SHAPES)
    assert not all(torch.equal(whole[k], federate(build_aggregator(name, **hp), rounds=2, state=half, first=3)[k])
                   for k in SHAPES)          # a fresh strategy (state lost) would not continue the same way


def test_flower_randomness_is_seeded_per_round_and_restored():
    hp = {"strategy": "FedAvg", "noise_multiplier": 1.0, "clipping_norm": 1.0, "num_sampled_clients": 5}
    name = "flwr:DifferentialPrivacyServerSideFixedClipping"
    random.seed(7)
    np.random.seed(7)
    before = (random.getstate(), pickle.dumps(np.random.get_state()))
    a = federate(build_aggregator(name, **hp), rounds=2)
    assert (random.getstate(), pickle.dumps(np.random.get_state())) == before
    b = federate(build_aggregator(name, **hp), rounds=2)
    c = federate(build_aggregator(name, **hp, seed=1), rounds=2)
    assert all(torch.equal(a[k], b[k]) for k in SHAPES) and not torch.equal(a["linear_1.weight"], c["linear_1.weight"])


def test_flwr_fedprox_trains_our_clients_with_its_mu_and_qfedavg_reads_the_loss():
    objective = build_aggregator("flwr:FedProx", proximal_mu=0.3).client_objective()
    assert objective.name == "fedprox" and objective.mu == 0.3
    assert build_aggregator("flwr:FedAvg").client_objective().name == "plain"
    state = start()
    ups = uploads(state, 1)
    same_loss = [ClientUpdate(u.client_id, u.state, u.num_samples, loss=1.0) for u in ups]
    q = {"q": 1.0, "client_learning_rate": 0.1}
    a = build_aggregator("flwr:QFedAvg", **q).aggregate(state, ups)
    b = build_aggregator("flwr:QFedAvg", **q).aggregate(state, same_loss)
    assert not torch.equal(a["linear_1.weight"], b["linear_1.weight"])


@pytest.mark.parametrize("overrides, words", [
    (["method=flwr:FedAdm"], ["aggregator.method=flwr:FedAdm", "did you mean 'FedAdam'", "flwr:FedYogi"]),
    (["method=flwr:FedAdam", "aggregator.flwr.et=0.1"], ["aggregator.flwr.et", "valid: beta_1, beta_2, eta"]),
    (["method=flwr:FedAdam", "aggregator.flwr.fraction_train=0.5"], ["round engine's", "clients_per_round"]),
    (["method=flwr:Krum", "aggregator.flwr.num_malicious_nodes=x"], ["aggregator.flwr.num_malicious_nodes='x'", "int"]),
    (["method=flwr:DifferentialPrivacyServerSideFixedClipping", "aggregator.flwr.strategy=FedAvg",
      "aggregator.flwr.noise_multiplier=-1", "aggregator.flwr.clipping_norm=1", "aggregator.flwr.num_sampled_clients=5"],
     ["refused", "non-negative"]),
    (["method=flwr:DifferentialPrivacyServerSideFixedClipping"], ["needs clipping_norm, noise_multiplier"]),
    (["method=flwr:DifferentialPrivacyClientSideFixedClipping"], ["clients would clip"]),
    (["method=fedavg", "aggregator.flwrr.eta=1"], ["aggregator.flwrr", "flwr"]),
])
def test_bad_flower_config_is_one_line_naming_the_valid_choices(overrides, words):
    with pytest.raises(ConfigError) as e:
        load_config("tiny", overrides)
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


def test_without_the_extra_a_flwr_method_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "flwr", None)          # what an environment without Flower imports
    with pytest.raises(ConfigError, match=r"needs Flower.*pip install 'fedma-harness\[flower\]'"):
        load_config("tiny", ["method=flwr:FedAvg"])
    assert load_config("tiny", ["method=fedavg"]).aggregator.build().name == "fedavg"


def test_flower_rows_are_named_as_flowers_in_the_tables():
    from harness.core.registry import method_entry
    from harness.report.runs import pretty_name
    assert pretty_name("flwr:FedYogi") == "FedYogi (Flower)" == method_entry("flwr:FedYogi").pretty
    cfg = load_config("tiny", ["method=flwr:FedYogi", "aggregator.flwr.eta=0.01"])
    assert cfg.aggregator.build().impl.eta == 0.01


def test_a_round_flower_cannot_aggregate_stops_with_one_line():
    """Bulyan needs at least 4 f + 3 = 3 replies (f = 0): with 2 clients Flower skips the round."""
    state = start()
    with pytest.raises(HarnessError, match=r"round 1: flwr:Bulyan aggregated nothing from 2 replies"):
        build_aggregator("flwr:Bulyan").aggregate(state, uploads(state, 1, k=2))


def test_flwr_fedyogi_round_one_is_our_uncorrected_fedadam():
    """Yogi: v_1 = 0 - (1 - beta2) Delta^2 sign(0 - Delta^2) = (1 - beta2) Delta^2, Adam's v_1; m_1 is the same and
    Flower's FedYogi applies no bias correction, so round 1 equals our fedadam (bias_correction=False)."""
    state = start()
    ups = uploads(state, 1)
    yogi = build_aggregator("flwr:FedYogi", eta=0.01, beta_1=0.9, beta_2=0.99, tau=1e-3).aggregate(state, ups)
    adam = build_aggregator("fedadam", eta=0.01, beta1=0.9, beta2=0.99, tau=1e-3).aggregate(state, ups)
    assert within_float32(yogi, adam)
