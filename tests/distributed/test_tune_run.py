"""A real ``fedma tune``: tiny federations in worker processes, scored on validation rows, resumed."""
import json
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.core.config import load_config

pytestmark = pytest.mark.dist


def validation_auc(run_dir: Path) -> float:
    """The objective recomputed by hand from the run's records: the mean over rounds of the validation loss."""
    recs = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    losses = [r["value"] for r in recs if r["benchmark"] == "validation" and r["client"] == "global"]
    assert len(losses) == 2                       # one per round
    return sum(losses) / len(losses)


def test_tune_two_methods_on_tiny_then_resume(world5, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "tune"
    args = ["tune", "tiny", f"data.root={world5}", "federation.rounds=2", "client.batch_size=8",
            "--methods", "fedavg,fedavgm", "--trials", "2", "--seeds", "7", "--batch", "2",
            "--validation", str(world5 / "heldout"), "--out", str(out), "--workers", "2"]
    assert main(args) == 0
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    done = {(t["method"], t["number"]): t for t in trials if t["state"] == "complete"}
    assert set(done) == {("fedavg", 0), ("fedavg", 1), ("fedavgm", 0), ("fedavgm", 1)}
    assert done[("fedavgm", 0)]["params"] == {"momentum": 0.9, "server_lr": 1.0}
    for (method, number), t in done.items():
        run = out / "runs" / method / "ii" / f"{method}+trial{number:03d}" / "seed7"
        assert t["value"] == pytest.approx(validation_auc(run), rel=1e-12)
        recs = (run / "records.jsonl").read_text()
        assert '"benchmark": "heldout"' in recs and '"benchmark": "pope"' not in recs   # benchmarks off
    best = min((t for t in done.values() if t["method"] == "fedavg"), key=lambda t: t["value"])
    tuned = yaml.safe_load((out / "tuned.yaml").read_text())
    assert tuned["extends"] == "tiny" and tuned["aggregator"]["hparams"]["fedavg"] == best["params"]
    assert load_config(str(out / "tuned.yaml"), ["method=fedavg"]).aggregator.build().server_lr == \
        best["params"]["server_lr"]
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("final/projector.safetensors")}
    assert main(args) == 0                        # everything finished: nothing runs again
    assert {p: p.stat().st_mtime_ns for p in out.rglob("final/projector.safetensors")} == stamps
    doc = json.loads((out / "tune.json").read_text())
    assert len(doc["invocations"]) == 2 and doc["settings"]["seeds"] == [7]
