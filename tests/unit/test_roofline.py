"""The limits every benchmark row is measured against (benchmarks/roofline.py)."""
import pytest
import torch

from benchmarks import roofline

pytestmark = pytest.mark.unit
LIMITS = roofline.Limits(bandwidth=10e9, gemm_f32=100e9, gemm_f64=50e9, threads=2, device="cpu")


def test_memory_bound_row_by_hand():
    """8.4 GB read at 10 GB/s: floor 0.84 s; measured 2.1 s is 2.5x the floor, 40% of the bandwidth;
    1 GFLOP in float64 over 2.1 s is 1/105 of 50 GFLOP/s."""
    p = roofline.position(2.1, 8.4e9, 1e9, LIMITS, torch.float64)
    assert p.floor_s == pytest.approx(0.84)
    assert p.times_floor == pytest.approx(2.5)
    assert p.bandwidth_frac == pytest.approx(0.4)
    assert p.flop_frac == pytest.approx(1e9 / 2.1 / 50e9)


def test_compute_bound_row_uses_the_dtype_peak():
    """172 GFLOP in float64 at 50 GFLOP/s: floor 3.44 s; the same work in float32 has half that floor."""
    assert roofline.position(6.88, 1e6, 172e9, LIMITS, torch.float64).times_floor == pytest.approx(2.0)
    assert roofline.position(6.88, 1e6, 172e9, LIMITS, torch.float32).floor_s == pytest.approx(1.72)


def test_nothing_to_measure_is_an_error():
    with pytest.raises(ValueError, match="must be > 0"):
        roofline.position(1.0, 0, 0, LIMITS)


def test_measured_limits_are_plausible():
    """A quick measurement on this machine: positive, float32 GEMM at least as fast as float64, and a
    copy faster than 0.1 GB/s (any machine since 1995)."""
    lim = roofline.measure(quick=True)
    assert lim.bandwidth > 1e8 and lim.gemm_f64 > 0 and lim.gemm_f32 > 0.8 * lim.gemm_f64
    assert "GB/s" in lim.line() and lim.threads == torch.get_num_threads()
