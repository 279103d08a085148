"""Past the paper's limits: client-level DP (DP-FedAvg), communication accounting, outages and
stragglers, against hand-worked numbers and an independent computation of the subsampled Gaussian's
Renyi DP (Mironov, Talwar, Zhang 2019, integer orders, by the binomial expansion), never against the
accountant's own output."""
import math

import pytest
import torch

from harness import ClientUpdate, build_aggregator
from harness.core.config import PrivacyConfig, load_config
from harness.core.errors import ConfigError

pytestmark = pytest.mark.unit
F64 = torch.float64


def test_updates_are_clipped_to_norm_c_and_weighted_equally():
    """theta = 0; client 0 moves (3, 4) (norm 5) -> (0.6, 0.8) with C = 1; client 1 moves (0.3, 0.4),
    inside the ball, unchanged; z = 0 adds no noise; both weights become 1: the mean is (0.45, 0.6)."""
    from harness.engine.privacy import noise_generator, privatize
    g = {"w": torch.zeros(2, dtype=F64)}
    ups = [ClientUpdate(0, {"w": torch.tensor([3.0, 4.0], dtype=F64)}, 100),
           ClientUpdate(1, {"w": torch.tensor([0.3, 0.4], dtype=F64)}, 1)]
    out, clipped = privatize(g, ups, PrivacyConfig(clip=1.0, noise_multiplier=0.0), noise_generator(0, 1))
    assert out[0].state["w"].tolist() == pytest.approx([0.6, 0.8]) and out[1].state["w"].tolist() == pytest.approx([0.3, 0.4])
    assert clipped == 0.5 and [u.num_samples for u in out] == [1, 1]
    assert build_aggregator("fedavg").aggregate(g, out)["w"].tolist() == pytest.approx([0.45, 0.6])


def test_the_noise_on_the_mean_has_std_z_c_over_m_and_is_seeded():
    """m = 4 clients that did not move, C = 2, z = 1.5: each client's noise has std z C / sqrt(m) = 1.5,
    the FedAvg mean's z C / m = 0.75 (200,000 draws: the sample std is within 1% of it)."""
    from harness.engine.privacy import noise_generator, privatize
    g = {"w": torch.zeros(200_000, dtype=F64)}
    ups = [ClientUpdate(k, {"w": torch.zeros(200_000, dtype=F64)}, 1) for k in range(4)]
    cfg = PrivacyConfig(clip=2.0, noise_multiplier=1.5)
    out, _ = privatize(g, ups, cfg, noise_generator(0, 3))
    assert float(out[0].state["w"].std()) == pytest.approx(1.5, rel=0.01)
    mean = build_aggregator("fedavg").aggregate(g, out)["w"]
    assert float(mean.std()) == pytest.approx(0.75, rel=0.01)
    again, _ = privatize(g, ups, cfg, noise_generator(0, 3))
    other, _ = privatize(g, ups, cfg, noise_generator(0, 4))
    assert torch.equal(out[2].state["w"], again[2].state["w"]) and not torch.equal(out[2].state["w"], other[2].state["w"])


def log_a(q: float, sigma: float, alpha: int) -> float:
    """log E[(p/q)^alpha] of the Poisson-subsampled Gaussian: log sum_k C(alpha,k) (1-q)^(alpha-k) q^k
    exp((k^2 - k) / (2 sigma^2)) (Mironov et al. 2019, Section 3.3)."""
    terms = [math.lgamma(alpha + 1) - math.lgamma(k + 1) - math.lgamma(alpha - k + 1)
             + (alpha - k) * math.log1p(-q) + k * math.log(q) + (k * k - k) / (2 * sigma ** 2) for k in range(alpha + 1)]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


def independent_epsilon(q: float, sigma: float, rounds: int, delta: float) -> float:
    """min over integer orders of T rdp(alpha) + log((alpha-1)/alpha) - (log delta + log alpha)/(alpha-1)
    (Balle et al. 2020's conversion); without subsampling rdp(alpha) = alpha / (2 sigma^2)."""
    best = math.inf
    for a in range(2, 257):
        rdp = rounds * (log_a(q, sigma, a) / (a - 1) if q < 1 else a / (2 * sigma ** 2))
        best = min(best, rdp + math.log((a - 1) / a) - (math.log(delta) + math.log(a)) / (a - 1))
    return best


@pytest.mark.parametrize("q, sigma, rounds", [(1.0, 1.0, 10), (1.0, 3.0, 100), (0.1, 1.2, 20), (0.05, 0.8, 50)])
def test_epsilon_is_the_subsampled_gaussians_rdp(q, sigma, rounds):
    from harness.engine.privacy import epsilon
    cfg = PrivacyConfig(clip=1.0, noise_multiplier=sigma, delta=1e-5)
    got = epsilon(cfg, rounds, sampled=round(q * 100), clients=100)
    assert got == pytest.approx(independent_epsilon(q, sigma, rounds, 1e-5), rel=1e-6)


def test_dp_refuses_rules_it_cannot_privatize_and_bad_values():
    with pytest.raises(ConfigError, match="aggregator.method=scaffold with privacy.clip: its control-variate uploads"):
        load_config("tiny", ["method=scaffold", "privacy.clip=1.0"])
    with pytest.raises(ConfigError, match="privacy.clip"):
        load_config("tiny", ["privacy.clip=0"])
    with pytest.raises(ConfigError, match="privacy.delta"):
        load_config("tiny", ["privacy.clip=1", "privacy.delta=1"])
    assert load_config("tiny", ["privacy.clip=0.5"]).hash() != load_config("tiny").hash()


def test_bytes_count_what_each_side_sends():
    """A plan of a 3x4 float32 projector and a 3x4 bfloat16 extra: 48 + 24 bytes; an upload of the
    projector and a 12-element float64 extra: 48 + 96; a failed client uploads nothing."""
    from harness.engine.comm import plan_bytes, upload_bytes
    from harness.core.types import ClientResult, FailedClient
    from harness.methods.objective import ClientPlan
    w = {"w": torch.zeros(3, 4)}
    assert plan_bytes(ClientPlan(w, {"c": {"w": torch.zeros(3, 4, dtype=torch.bfloat16)}})) == 72
    assert upload_bytes(ClientResult(0, w, 1, 0.0, 0.0, 0.0, uploads={"dc": {"w": torch.zeros(12, dtype=F64)}})) == 144
    assert upload_bytes(FailedClient(1, "boom").result) == 0


def test_outages_speed_factors_and_the_deadline_by_hand():
    """is_up: availability 1 always up; otherwise up iff the seeded uniform draw is below it. Speed
    factor exp(spread * z) with the seeded standard normal z (spread 0: 1). The deadline drops a
    simulated time past it, keeps one at it."""
    import random
    from harness.engine.availability import is_up, late, speed_factor
    assert all(is_up(1.0, 0, t, k) for t in range(3) for k in range(50))
    draws = [(t, k) for t in range(1, 4) for k in range(200)]
    assert [is_up(0.3, 7, t, k) for t, k in draws] == [random.Random(f"up-7-{t}-{k}").random() < 0.3 for t, k in draws]
    assert 0.25 < sum(is_up(0.3, 7, t, k) for t, k in draws) / len(draws) < 0.35
    assert speed_factor(0.0, 0, 4) == 1.0
    assert speed_factor(0.5, 0, 4) == pytest.approx(math.exp(0.5 * random.Random("speed-0-4").gauss(0.0, 1.0)))
    assert late(2.0, 2.0) is None and late(2.5, None) is None
    assert late(2.5, 2.0) == "simulated round time 2.5 s past federation.deadline_s=2"


def test_the_demo_size_is_checked_before_any_work(capsys):
    from harness.cli import main
    from harness.cli.mini import demo_out
    assert main(["demo", "--clients", "20", "--clients-per-round", "30"]) == 2
    assert "--clients 20 --clients-per-round 30: need 1 <= clients-per-round <= clients" in capsys.readouterr().err
    assert (demo_out(None, 5), demo_out(None, 20), demo_out("x", 20)) == ("results/demo", "results/demo-k20", "x")
