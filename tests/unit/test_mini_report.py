"""The demo's Fed-CMP momentum table and console line, from hand-made ``server`` records."""
import pytest

from harness.mini.report import largest_momentum_change, momentum_markdown

pytestmark = pytest.mark.unit


def server(round_, metric, value, client="global"):
    return {"round": round_, "client": client, "benchmark": "server", "metric": metric, "value": value}


RECORDS = [server(1, "omega", 0.5, 0), server(1, "omega", 0.5, 1),
           *[server(t, f"{q}/{b}", v) for t, vals in ((2, (0.9, 0.6, 12, 0.97)), (3, (0.55, 0.025, 1, 0.08)))
             for b in ("linear_1.weight+bias", "linear_2.weight+bias")
             for q, v in zip(("beta", "delta", "groups", "change"), vals)],
           {"round": 2, "client": "global", "benchmark": "heldout", "metric": "caption_loss", "value": 1.3}]


def test_momentum_table_has_a_row_per_block_and_quantity_and_a_column_per_momentum_round():
    md = momentum_markdown({("ii", "fedcmp"): RECORDS, ("ii", "fedcmp_sign"): RECORDS}, "synthetic")
    rows = [line for line in md.splitlines() if line.startswith("| linear_")]
    assert len(rows) == 16
    assert "| block | quantity | round 2 | round 3 |" in md
    assert "| linear_2.weight+bias | delta (basis shift, mean 1 - cos) | 0.600 | 0.025 |" in rows
    assert "| linear_1.weight+bias | groups (of near-degenerate singular values) | 12 | 1 |" in rows
    assert md.startswith("_synthetic_") and "Scenario II, Fed-CMP:" in md and "Scenario II, Fed-CMP (sign OPM):" in md


def test_console_line_names_the_largest_change():
    line = largest_momentum_change({("it", "fedcmp_sign"): RECORDS[:2] + [server(4, "change/linear_2.weight+bias", 1.074)]
                                    + RECORDS[2:], ("it", "fedcmp"): RECORDS})
    assert "Fed-CMP (sign OPM): OPM's largest move was 107% of the fused linear_2.weight+bias (scenario IT, round 4)" in line
    assert "Fed-CMP: OPM's largest move was 97% of the fused" in line
    assert "no momentum step" in largest_momentum_change({("ii", "fedcmp"): RECORDS[:2]})
