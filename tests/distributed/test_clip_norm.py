"""Gradient clipping in a client group of several ranks sees the true norm of the averaged gradient."""
import json

import pytest

from harness.data.synthetic import write_synthetic_federation
from tests.distributed.conftest import torchrun

pytestmark = pytest.mark.dist


def test_a_two_rank_client_group_clips_at_the_true_norm(tmp_path):
    """ZeRO-0: DeepSpeed's clip norm equals sqrt(sum g^2) of the averaged gradient (it was sqrt(2) times
    that while the client group stood in as the model-parallel group); ZeRO-2 reports the same norm."""
    data = write_synthetic_federation(tmp_path / "d", clients=1, rounds=1, per_round=8, heldout=1)
    res = torchrun(2, "tests/distributed/run_clip_norm.py", str(data), str(tmp_path / "norms.json"))
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads((tmp_path / "norms.json").read_text())
    assert got["group"] == [0, 1]
    (ds0, true), (ds2, _) = got["norms"]["0"], got["norms"]["2"]
    assert ds0 == pytest.approx(true, rel=1e-5)
    assert ds2 == pytest.approx(true, rel=1e-5)
