"""The data benchmark's clustering rows against the machine's limits (perf/data.py, table.py).

Worked by hand with limits of 10 GB/s and 100 GFLOP/s (float32): a phase that reads 2e9 bytes and does
1e10 FLOPs has the floor max(0.2 s, 0.1 s) = 0.2 s; in 0.8 s it is 4x the floor, at 0.25 of the
bandwidth and 0.125 of the FLOP peak.
"""
from __future__ import annotations

import csv

import pytest

from perf import data
from perf.roofline import Limits
from perf.table import write_table

pytestmark = pytest.mark.unit
LIMITS = Limits(bandwidth=10e9, gemm_f32=100e9, gemm_f64=50e9, threads=2, device="cpu")


def test_phase_row_places_the_phase_against_the_limits():
    row = data.phase_row("ours", "passes", {"seconds": 0.8, "rows": 3_000_000, "bytes": 2e9, "flops": 1e10},
                         1_000_000, LIMITS)
    assert row["value"] == 0.8 and row["note"].startswith("3.00 x N rows scored")
    assert row["floor_s"] == pytest.approx(0.2) and row["x_floor"] == pytest.approx(4.0)
    assert row["bw_frac"] == pytest.approx(0.25) and row["flop_frac"] == pytest.approx(0.125)


def test_table_gets_limit_columns_only_where_a_row_has_them(tmp_path):
    rows = [{"what": "a", "value": 0.8, "unit": "s", "note": "n", "floor_s": 0.2, "x_floor": 4.0, "bw_frac": 0.25,
             "flop_frac": 0.125},
            {"what": "b", "value": 12.0, "unit": "MiB", "note": "m"}]
    write_table(rows, tmp_path, "t", "T", ["- h"])
    md = (tmp_path / "t.md").read_text().splitlines()
    assert md[4] == "| what | value | unit | x floor | % GEMM peak | % copy bandwidth | note |"
    assert md[6] == "| a | 0.8 | s | 4x | 12.5% | 25% | n |"
    assert md[7] == "| b | 12 | MiB | n/a | n/a | n/a | m |"
    with open(tmp_path / "t.csv") as f:
        got = list(csv.DictReader(f))
    assert got[0]["x_floor"] == "4.0" and got[1]["x_floor"] == ""
    write_table(rows[1:], tmp_path, "plain", "T", [])
    assert "| what | value | unit | note |" in (tmp_path / "plain.md").read_text()


def test_unknown_clusterer_is_one_clear_error(capsys):
    with pytest.raises(SystemExit):
        data.main(["--clusterers", "ours,faiss"])
    assert "valid names are ours, sklearn" in capsys.readouterr().err
