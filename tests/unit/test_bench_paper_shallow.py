"""The extrapolation of the paper-width shallow measurements to the full depth (perf/paper_shallow.py)."""
import pytest

from perf.paper_shallow import extrapolated

pytestmark = pytest.mark.unit
GIB = 2 ** 30


def test_linear_in_the_layers_by_hand():
    """1 text layer: 10 s, 3 GiB; 2 text layers: 16 s, 4 GiB; the 2-layer tower's forward 1 s. Per text
    layer 6 s and 1 GiB, per vision layer 0.5 s and 12.6M fp32 weights: 32 + 24 layers take
    10 + 31 x 6 + 22 x 0.5 = 207 s and 3 + 31 GiB + 22 x 50.4 MB."""
    runs = {1: {"step_s": 10.0, "vision_s": 1.0, "train_peak": 3 * GIB, "threads": 1},
            2: {"step_s": 16.0, "vision_s": 1.0, "train_peak": 4 * GIB, "threads": 1}}
    seconds, memory = extrapolated(runs)
    assert seconds["value"] == pytest.approx(207.0)
    assert memory["value"] == pytest.approx(34 + 22 * 50.4e6 / GIB)
    assert "6.00 s per text layer" in seconds["note"] and "1.00 GiB per text layer" in memory["note"]
