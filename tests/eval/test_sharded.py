"""Evaluation sharded over a 2-process torchrun world gives exactly the 1-process scores and answers."""
import json
from types import SimpleNamespace

import pytest

from tests.distributed.conftest import torchrun
from tests.eval.run_shard import evaluate_once

pytestmark = pytest.mark.eval


def test_two_processes_score_like_one(data_root, tmp_path):
    proc = torchrun(2, "-m", "tests.eval.run_shard", str(data_root), str(tmp_path / "two.json"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = json.loads((tmp_path / "two.json").read_text())
    records, answers, lm = evaluate_once(SimpleNamespace(rank=0, size=1, is_server=True, broadcast=None), str(data_root))
    # every rank computed a share, the shares add up, and the gathered answers are the 1-process answers
    assert two["size"] == 2 and two["seen"] == lm.calls["generate_until"] == lm.calls["computed"]
    assert all(c > 0 for c in two["computed"]) and sum(two["computed"]) == two["seen"]
    assert two["answers"] == answers and any(a.strip() for a in answers)
    key = lambda r: (r["benchmark"], r["metric"])
    assert {key(r): r["value"] for r in records} == {key(r): r["value"] for r in two["records"]}
    assert {r["benchmark"] for r in records} == {"pope", "mme", "seed", "mmbench", "mmvet"}
