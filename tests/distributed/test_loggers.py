"""The record store mirrored to TensorBoard, W&B (offline) and MLflow (file store), read back with each
package's own reader and compared with ``records.jsonl``: every numeric record is a scalar named
BENCHMARK/METRIC (or BENCHMARK/METRIC/client_KK) at step = round, with the same value."""
import glob
import json

import pytest

from harness.core.records import read_records
from tests.distributed.conftest import fedma_run, torchrun

pytestmark = pytest.mark.dist


def expected(run_dir) -> dict:
    """{(tag, round): value} from the records, named here independently of the code under test."""
    out = {}
    for r in read_records(run_dir / "records.jsonl"):
        if r["value"] is None:
            continue
        who = r["client"]
        suffix = "" if who == "global" else f"/client_{int(who):02d}"
        out[f"{r['benchmark']}/{r['metric']}{suffix}", r["round"]] = r["value"]
    return out


def tensorboard_scalars(run_dir) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return {(tag, e.step): e.value for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)}


def wandb_scalars(run_dir) -> dict:
    from wandb.proto import wandb_internal_pb2 as pb
    from wandb.sdk.internal import datastore
    [path] = glob.glob(str(run_dir / "wandb" / "offline-run-*" / "run-*.wandb"))
    store, out = datastore.DataStore(), {}
    store.open_for_scan(path)
    while (data := store.scan_data()) is not None:
        rec = pb.Record()
        rec.ParseFromString(data)
        if rec.WhichOneof("record_type") == "history":
            row = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
            out.update({(k, row["round"]): v for k, v in row.items() if not k.startswith("_") and k != "round"})
    return out


def mlflow_scalars(run_dir) -> dict:
    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri=(run_dir / "mlruns").resolve().as_uri())
    [exp] = [e for e in client.search_experiments() if e.name == "fedma"]
    [run] = client.search_runs([exp.experiment_id])
    out = {(m.key, m.step): m.value for key in run.data.metrics for m in client.get_metric_history(run.info.run_id, key)}
    return out, run


def same_values(got: dict, want: dict, rel: float) -> None:
    missing = sorted(set(want) - set(got))
    assert not missing, missing[:5]
    bad = [(k, got[k], v) for k, v in want.items() if got[k] != pytest.approx(v, rel=rel, abs=1e-12)]
    assert not bad, bad[:5]


def test_a_run_with_all_three_backends_mirrors_its_records(world5, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)       # tests/eval/conftest.py disables W&B for lmms-eval
    run = tmp_path / "r"
    res = fedma_run(1, run, f"data.root={world5}", "method=fedcmp", "rounds=2",
                    "logging.backends=[tensorboard, wandb, mlflow]")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "logging backend" not in res.stderr
    want = expected(run)
    assert {t for t, _ in want} >= {"train/loss/client_00", "heldout/caption_loss", "server/omega/client_04",
                                    "comm/bytes_up/client_03"}
    tb = tensorboard_scalars(run)
    same_values(tb, want, rel=1e-6)                              # event files hold float32
    assert {s for t, s in tb if t == "timing/train_s"} == {1, 2}
    same_values(wandb_scalars(run), want, rel=0)
    metrics, mlrun = mlflow_scalars(run)
    # MLflow's metric names allow letters, digits and _ - . / space: Fed-CMP's fused "weight+bias" blocks
    # arrive as "weight_bias"
    same_values(metrics, {(t.replace("+", "_"), s): v for (t, s), v in want.items()}, rel=0)
    cfg_hash = read_records(run / "records.jsonl")[0]["config_hash"]
    assert mlrun.data.tags["config_hash"] == cfg_hash and mlrun.data.params["aggregator.method"] == "fedcmp"


def test_a_failing_backend_costs_one_warning_and_sync_replays_afterwards(world5, tmp_path):
    run = tmp_path / "r"
    res = fedma_run(1, run, f"data.root={world5}", "method=fedavg", "rounds=1", "logging.backends=[mlflow]",
                    "logging.mlflow_uri=nosuchscheme://x")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "logging backend mlflow is off" in res.stderr and (run / "final" / "projector.safetensors").is_file()
    sync = torchrun(1, "-m", "harness.cli", "log", "sync", str(run), "--backend", "tensorboard")
    assert sync.returncode == 0, sync.stderr[-2000:]
    same_values(tensorboard_scalars(run), expected(run), rel=1e-6)
