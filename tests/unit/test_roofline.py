"""The limits every benchmark row is measured against (perf/roofline.py)."""
import pytest
import torch

from perf import roofline

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


def test_half_precision_uses_the_measured_tensor_core_peak_when_there_is_one():
    """On a GPU the bf16 GEMM is measured (tensor cores: many times float32); elsewhere bf16 work is
    set against the float32 figure."""
    gpu = roofline.Limits(bandwidth=1e12, gemm_f32=50e12, gemm_f64=25e12, threads=1, device="cuda", gemm_bf16=700e12)
    assert gpu.peak(torch.bfloat16) == 700e12 and gpu.peak(torch.float32) == 50e12
    assert LIMITS.peak(torch.bfloat16) == 100e9
    assert "bfloat16 700000.0 GFLOP/s" in gpu.line() and "bfloat16" not in LIMITS.line()


def test_tables_show_the_fractions_and_na_where_there_is_nothing_to_compare(tmp_path):
    """A row 2.5x above its floor at 40% of the bandwidth reads "2.5x | 0.952% | 40%"; a start-up row
    without FLOPs or bytes reads n/a in the three columns."""
    from perf.table import write_table
    cells = roofline.position(2.1, 8.4e9, 1e9, LIMITS, torch.float64).cells()
    rows = [{"what": "pass", "value": 1.0, "unit": "s", "note": "", **cells},
            {"what": "start-up", "value": 2.0, "unit": "s", "note": ""}]
    write_table(rows, tmp_path, "t", "T", [])
    md = (tmp_path / "t.md").read_text().splitlines()
    assert md[-2] == "| pass | 1 | s | 2.5x | 0.952% | 40% |  |"
    assert md[-1] == "| start-up | 2 | s | n/a | n/a | n/a |  |"
    assert (tmp_path / "t.csv").read_text().splitlines()[0] == "what,value,unit,note,floor_s,x_floor,flop_frac,bw_frac"
