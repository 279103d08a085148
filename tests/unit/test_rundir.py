"""The run folder (harness.core.rundir): its layout spelled out by hand, and the one load_projector on each
thing a path may name, including a checkpoint of a method with per-client models, whose projectors the
method names (Local's own models are the states its clients uploaded)."""
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from harness import ClientUpdate, build_aggregator
from harness.engine.checkpoint import save_checkpoint
from harness.core.rundir import RunDir, checkpoint_targets, final_name, load_projector
from harness.core.errors import ConfigError, DataError

pytestmark = pytest.mark.unit


def test_the_layout_by_hand(tmp_path):
    run = RunDir(tmp_path)
    rel = {name: str(getattr(run, name).relative_to(tmp_path)) for name in
           ("config", "records", "timings", "machine", "launch", "checkpoints", "final", "samples")}
    assert rel == {"config": "config.yaml", "records": "records.jsonl", "timings": "timings.jsonl",
                   "machine": "machine.json", "launch": "launch.jsonl", "checkpoints": "checkpoints",
                   "final": "final", "samples": "samples"}
    assert run.checkpoint(3) == tmp_path / "checkpoints" / "round_003"
    assert run.samples_of(12) == tmp_path / "samples" / "round_012.json"
    assert run.final_projector() == tmp_path / "final" / "projector.safetensors"
    assert run.final_client(4) == tmp_path / "final" / "client_04.safetensors"
    assert (final_name("global"), final_name(7)) == ("projector", "client_07")
    assert not tmp_path.joinpath("final").exists()        # asking creates nothing


def _local_checkpoint(run_dir: Path) -> dict:
    """Two rounds of Local over clients 0 and 2, checkpointed as the server does; returns the uploads."""
    agg = build_aggregator("local")
    g = {"w": torch.zeros(2)}
    ups = {0: {"w": torch.tensor([1.0, 2.0])}, 2: {"w": torch.tensor([5.0, -1.0])}}
    agg.aggregate(g, [ClientUpdate(k, s, 3) for k, s in ups.items()])
    sd = agg.state_dict()
    state = {"round": 1, "aggregator_round": sd["round"], "method": "local", "config": {"aggregator": {"method": "local"}}}
    save_checkpoint(run_dir, 1, {"projector": g, "aggregator": sd["tensors"]}, state, [])
    return ups


def test_a_checkpoint_of_local_holds_each_clients_upload(tmp_path):
    ups = _local_checkpoint(tmp_path)
    targets = checkpoint_targets(RunDir(tmp_path).checkpoint(1))
    assert sorted(targets) == [0, 2]
    assert all(torch.equal(targets[k]["w"], ups[k]["w"]) for k in ups)
    assert torch.equal(load_projector(tmp_path, client=2)["w"], ups[2]["w"])     # a run without final/
    with pytest.raises(ConfigError, match="one projector per client"):
        load_projector(tmp_path)


def test_a_global_checkpoint_a_file_and_final(tmp_path):
    g = {"w": torch.tensor([0.5, 0.25])}
    save_checkpoint(tmp_path, 1, {"projector": g, "aggregator": {}}, {"round": 1, "method": "fedavg"}, [])
    assert checkpoint_targets(RunDir(tmp_path).checkpoint(1)).keys() == {"global"}
    assert torch.equal(load_projector(RunDir(tmp_path).checkpoint(1))["w"], g["w"])
    with pytest.raises(DataError, match="has the run finished"):
        load_projector(tmp_path, final_only=True)
    final = {"w": torch.tensor([9.0, 8.0])}
    RunDir(tmp_path).final.mkdir()
    save_file(final, str(RunDir(tmp_path).final_projector()))
    assert torch.equal(load_projector(tmp_path)["w"], final["w"])          # final/ wins over the checkpoints
    assert torch.equal(load_projector(RunDir(tmp_path).final_projector())["w"], final["w"])
    with pytest.raises(ConfigError, match="neither a projector"):
        load_projector(tmp_path / "nothing")


def test_timed_seconds_adds_every_phase_of_every_round(tmp_path):
    """1.5 + 2.0 in round 1 and 0.25 in round 2 (the round number itself is not a time): 3.75; none without the file."""
    import json

    from harness.core.rundir import timed_seconds
    path = tmp_path / "timings.jsonl"
    path.write_text(json.dumps({"round": 1, "train": 1.5, "evaluate": 2.0}) + "\n"
                    + json.dumps({"round": 2, "train": 0.25}) + "\n")
    assert timed_seconds(path) == 3.75
    assert timed_seconds(tmp_path / "absent.jsonl") is None
