"""The aggregation benchmark's model of what each rule must move and compute (perf/agg_model.py),
its summary lines against the limits (perf/agg_report.py) and Flower's rules on our uploads
(perf/flower_rules.py). Expected numbers are worked by hand in the docstrings."""
import json

import numpy as np
import pytest
import torch

from perf import agg_model, agg_report, flower_rules
from harness import ClientUpdate, build_aggregator

pytestmark = pytest.mark.unit
TINY = {"l.weight": [2, 3], "l.bias": [2]}       # n = 8 entries; one matrix, r = 2, c = 3 + 1 (bias column)


@pytest.mark.parametrize("method, expected", [
    ("fedavg", 3 * 32 + 32),                      # K = 3 uploads of 8 float32 read, the result written
    ("flower:fedavg", 3 * 32 + 32),               # Flower's row moves what the same rule must
    ("fedadam", 3 * 32 + 32 + 32 + 32 * 8),       # + the global state read, m and v float64 read and written
    ("fedavg_ties", 2 * 3 * 32 + 32 + 32),        # two passes over the uploads (elect, merge)
    ("scaffold", 3 * 32 + 32 + 32 + 3 * 32 + 2 * 32 + 2 * 3 * 32),   # + delta_c; c and each c_i in and out
    ("local", 2 * 32),                            # the global state copied
])
def test_bytes_by_hand(method, expected):
    assert agg_model.bytes_moved(method, 3, TINY) == expected


def test_fedcmp_flops_by_hand():
    """r = 2, c = 4, K = 3: Gram 3 * 2 * 3 * 4 = 72; eigh 10/3 * 8 + eigvalsh 4/3 * 8 = 112/3;
    products 4 * 4 * 4 = 64 (coefficients, reconstruction) + 2 * 8 + 4 * 4 * 4 = 80 (OPM) = 144."""
    phases = agg_model.fedcmp_flops(3, TINY, opm_round=True)
    assert phases == pytest.approx({"gram": 72, "eigen": 112 / 3, "gemm": 144})
    assert agg_model.fedcmp_flops(3, TINY, opm_round=False)["gemm"] == 64
    assert agg_model.flops("fedcmp", {"svd": "full"}, 3, TINY) is None


def test_phase_timer_counts_exclusive_time(monkeypatch):
    """A fake clock ticking 1 per reading: outer starts at 0, inner runs 1 -> 2 (1 s), outer ends at 3:
    outer 3 - 1 (inner) = 2 s, inner 1 s."""
    ticks = iter(range(100))
    monkeypatch.setattr(agg_model.time, "perf_counter", lambda: float(next(ticks)))
    timer = agg_model.PhaseTimer()
    inner = timer.wrap("inner", lambda: None)
    with timer.phase("outer"):
        inner()
    assert timer.seconds == {"outer": 2.0, "inner": 1.0}


def row(method, k, round2, x_floor, **extra):
    return {"method": method, "hparams": json.dumps(extra.pop("hparams", {})), "k": k, "round2_s": round2,
            "x_floor": x_floor, "bandwidth": 10e9, "gemm_f32": 100e9, "gemm_f64": 50e9, **extra}


def test_bandwidth_and_flower_lines_by_hand():
    """fedavg at K=100 2.5x its floor (met; its K=5 row is not the largest K), fedadam 4x (not met);
    fedavg 1.0 s against Flower's 2.0 s: 0.50x; fedadam 3 s against 2 s: 1.50x, slower."""
    rows = [row("fedavg", 5, 0.1, 9.0), row("fedavg", 100, 1.0, 2.5), row("flower:fedavg", 100, 2.0, 5.0),
            row("fedadam", 100, 3.0, 4.0), row("flower:fedadam", 100, 2.0, 2.7)]
    line = agg_report.bandwidth_line(rows)
    assert "**met** by fedavg 2.5x (K=100)" in line and "**NOT met** by fedadam 4.0x (K=100)" in line
    line = agg_report.flower_line(rows)
    assert "fedavg K=100: 0.50x" in line and "fedadam K=100: 1.50x" in line and "NOT met** at fedadam K=100" in line


def test_fedcmp_line_by_hand():
    """Paper shapes, K=100, float64 peak 50 GFLOP/s. Gram: 100 * 4096 * 4097 * (4097 + 1025) flops
    = 8,595.9 GFLOP = 171.9 s at the peak; measured 343.8 s is 2.00x. Eigen: 2 * (10/3 + 4/3) 4096^3
    = 641.3 GFLOP (12.8 s), products: 2 * 2 * 4096^3 + 8 * 4096^2 * (4097 + 1025) = 962.0 GFLOP (19.2 s);
    measured 25.6 s + 19.2 s = 44.8 s over 32.1 s = 1.40x: met."""
    from perf.aggregation import SHAPES
    gram = 100 * 4096 * 4097 * (4097 + 1025) / 50e9
    rows = [row("fedcmp", 100, 400.0, 1.0, hparams={"svd": "gram"}, gram_s=2 * gram, eigen_s=25.6, gemm_s=19.2)]
    line = agg_report.fedcmp_line(rows, SHAPES["paper"])
    assert "= 2.00x its float64 GEMM floor" in line and "the rest of the O(n^3) work 1.40x" in line
    assert "**met**" in line


def uploads(k=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    glob = {"w": torch.randn(4, 3, generator=gen), "b": torch.randn(4, generator=gen)}
    return glob, [ClientUpdate(i, {n: t + 0.1 * torch.randn(t.shape, generator=gen) for n, t in glob.items()},
                               10 * (i + 1)) for i in range(k)]


@pytest.mark.parametrize("rule", ["fedavg", "fedprox", "fedavgm"])
def test_flower_computes_the_same_rule_as_ours(rule):
    """Two rounds on the same uploads: Flower's float32 result equals ours within float32 rounding
    (FedAdam is left out: Flower always applies a bias-corrected step size, ours by default not)."""
    glob, ups = uploads()
    ours = build_aggregator(rule)
    strategy = flower_rules.build_strategy(rule, glob)
    messages = flower_rules.replies([ClientUpdate(u.client_id, dict(u.state), u.num_samples) for u in ups])
    for server_round in (1, 2):
        theirs = flower_rules.aggregate(strategy, server_round, messages)
        mine = ours.aggregate(glob, ups)
        for key in glob:
            assert np.abs(theirs[key].numpy() - mine[key].numpy()).max() < 1e-6, (rule, key)


def test_rows_of_several_runs_are_placed_against_the_best_limits():
    """Run A measured 10 GB/s and 100 / 50 GFLOP/s, run B (quieter) 20 GB/s and 80 / 60: the yardstick
    is 20 GB/s, 100 / 60. FedAvg at K=3 on TINY moves 128 bytes: floor 6.4 ns; 12.8 ns is 2.0x."""
    from perf.aggregation import with_position
    a = dict(row("fedavg", 3, 12.8e-9, None), label="fedavg")
    b = dict(row("local", 3, 1.0, None), label="local", bandwidth=20e9, gemm_f32=80e9, gemm_f64=60e9)
    best = agg_report.best_limits([a, b])
    assert (best.bandwidth, best.gemm_f32, best.gemm_f64) == (20e9, 100e9, 60e9)
    assert with_position(a, TINY, best)["x_floor"] == pytest.approx(2.0)
    assert with_position(a, TINY)["x_floor"] == pytest.approx(1.0)         # its own run's 10 GB/s
    assert "best of the 2 measurement(s)" in agg_report.limits_line([a, b])
