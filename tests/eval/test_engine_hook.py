"""The lmms hook inside a real 2-process federation: records for every client land in the store."""
import pytest

from harness.data.synthetic import write_synthetic_federation
from harness.core.records import read_records
from tests.distributed.conftest import torchrun

pytestmark = pytest.mark.eval


def test_local_federation_records_every_client_every_round(data_root, tmp_path):
    fed = write_synthetic_federation(tmp_path / "fed", clients=2, rounds=1, per_round=4, heldout=0)
    out = tmp_path / "run"
    proc = torchrun(2, "tests/eval/run_engine.py", str(fed), str(data_root), str(out), "federation.clients=2",
                    "federation.rounds=1", "method=local", timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = [r for r in read_records(out / "records.jsonl") if r["benchmark"] in ("pope", "mme", "mmvet")]
    got = {(r["round"], r["client"], r["benchmark"]) for r in recs}
    assert got == {(1, c, b) for c in (0, 1) for b in ("pope", "mme", "mmvet")}   # round 1 is the last: + mmvet
    assert all(r["method"] == "local" and r["config_hash"] for r in recs)
    assert all(r["value"] is None for r in recs if r["benchmark"] == "mmvet")
    assert all(r["value"] is not None for r in recs if r["metric"] in ("pope_accuracy", "mme_perception_score"))
