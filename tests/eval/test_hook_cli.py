"""The round-engine hook (in process, a world of one) and ``fedma eval`` on a file and a run directory."""
import json
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.eval


def world_of_one():
    return SimpleNamespace(rank=0, size=1, is_server=True, broadcast=lambda obj: obj)


def states(bundle, seeds):
    from harness.model.build import init_projector
    return {k: init_projector(bundle.model, s) for k, s in seeds.items()}


def test_hook_scores_every_client_projector_for_local(data_root, tiny_bundle):
    from harness.core.config import load_config
    from harness.eval.hook import lmms_hook, score, suite_for
    cfg = load_config("tiny", [f"eval.data_root={data_root}", "eval.tasks=[pope, mmvet]", "eval.final_tasks=[mme]",
                               "aggregator.method=local", "federation.rounds=2"])
    clients = states(tiny_bundle, {0: 1, 1: 2})
    ctx = SimpleNamespace(cfg=cfg, world=world_of_one(), trainer=SimpleNamespace(bundle=tiny_bundle, device="cpu"),
                          round=1, global_state=None, targets=clients, base_record={"run_id": "r"})
    records = lmms_hook(ctx, max_new_tokens=4)
    assert {(r["client"], r["benchmark"]) for r in records} == {(c, b) for c in (0, 1) for b in ("pope", "mmvet")}
    assert all(r["round"] == 1 and r["run_id"] == "r" for r in records)
    assert [r["value"] for r in records if r["benchmark"] == "mmvet"] == [None, None]
    final = lmms_hook(SimpleNamespace(**{**vars(ctx), "round": 2}), max_new_tokens=4)
    assert {r["benchmark"] for r in final} == {"pope", "mmvet", "mme"}
    # the hook's numbers are the adapter's on that client's projector
    from harness.eval.adapter import FedmaLlava
    lm = FedmaLlava(bundle=tiny_bundle, max_new_tokens=4)
    lm.set_projector(clients[1])
    direct = {(r[0], r[1]): r[2] for r in score(suite_for(("pope", "mmvet"), str(data_root), None, None), lm)}
    assert {(r["benchmark"], r["metric"]): r["value"] for r in records if r["client"] == 1} == direct


def test_fedma_eval_on_a_projector_file_and_on_a_local_run(data_root, tiny_bundle, tmp_path):
    from safetensors.torch import save_file

    from harness.engine.checkpoint import save_checkpoint
    from harness.cli import main
    from harness.core.config import load_config
    proj = states(tiny_bundle, {0: 3})[0]
    save_file(proj, str(tmp_path / "p.safetensors"))
    out = tmp_path / "file.jsonl"
    common = ["--data-root", str(data_root), "--max-new-tokens", "3", "--batch-size", "4"]
    assert main(["eval", str(tmp_path / "p.safetensors"), "--tasks", "pope,llava_bench", "--out", str(out), *common]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["client"] for r in rows} == {"global"}
    assert [r["value"] for r in rows if r["benchmark"] == "llava_bench"] == [None]
    assert any(r["metric"] == "pope_f1_score" and r["value"] is not None for r in rows)
    # a 'local' run: one checkpoint holding two clients' projectors
    cfg = load_config("tiny", ["aggregator.method=local"])
    two = states(tiny_bundle, {0: 4, 1: 5})
    flat = {f"own/{k}/{n}": v for k, s in two.items() for n, v in s.items()}
    save_checkpoint(tmp_path / "run", 3, {"projector": proj, "clients": flat},
                    {"round": 3, "method": "local", "config": cfg.to_dict(), "config_hash": cfg.hash()}, [])
    assert main(["eval", str(tmp_path / "run"), "--tasks", "mme", *common]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "eval_records.jsonl").read_text().splitlines()]
    assert {(r["client"], r["round"], r["method"]) for r in rows} == {(0, 3, "local"), (1, 3, "local")}
    assert {r["metric"] for r in rows} == {"mme_perception_score", "mme_cognition_score"}


def test_lmms_eval_command_line_with_the_written_tasks_matches_fedma_eval(data_root, tiny_bundle, tmp_path):
    """`fedma eval tasks` writes the task folder; lmms-eval's own CLI, given a run directory as the projector
    (its preset read from the checkpoint), scores POPE exactly as `fedma eval RUN` does; a projector of
    another preset's shapes is refused in one line naming preset=."""
    import glob
    import os
    import subprocess
    import sys

    from harness.engine.checkpoint import save_checkpoint
    from harness.cli import main
    from harness.core.config import load_config
    from harness.eval.adapter import FedmaLlava
    assert main(["eval", "tasks", "--out", str(tmp_path / "tasks"), "--data-root", str(data_root)]) == 0
    written = sorted(p.name for p in (tmp_path / "tasks").glob("*.yaml"))
    assert "fedma_pope.yaml" in written and "fedma_mmbench_en_dev_static.yaml" in written and len(written) == 10
    assert "fedma_gqa.yaml" in written and "fedma_ocrvqa.yaml" in written
    cfg = load_config("tiny")
    proj = states(tiny_bundle, {0: 6})[0]
    save_checkpoint(tmp_path / "run", 1, {"projector": proj}, {"round": 1, "method": "fedavg", "config": cfg.to_dict(),
                                                                  "config_hash": cfg.hash()}, [], keep=2)
    assert main(["eval", str(tmp_path / "run"), "--tasks", "pope", "--data-root", str(data_root),
                 "--max-new-tokens", "3", "--out", str(tmp_path / "mine.jsonl")]) == 0
    mine = {json.loads(line)["metric"]: json.loads(line)["value"] for line in (tmp_path / "mine.jsonl").read_text().splitlines()}
    repo = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    res = subprocess.run([sys.executable, "-m", "lmms_eval", "--model", "fedma_llava", "--model_args",
                          f"projector={tmp_path / 'run'},max_new_tokens=3", "--tasks", "fedma_pope",
                          "--include_path", str(tmp_path / "tasks"), "--batch_size", "8",
                          "--output_path", str(tmp_path / "out")], capture_output=True, text=True, timeout=600,
                         cwd=repo, env={**os.environ, "PYTHONPATH": repo})
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    result = json.loads(open(sorted(glob.glob(str(tmp_path / "out" / "**" / "*results*.json"), recursive=True))[-1]).read())
    theirs = result["results"]["fedma_pope"]
    assert theirs["pope_accuracy,none"] == mine["pope_accuracy"] and theirs["pope_f1_score,none"] == mine["pope_f1_score"]
    import torch
    wide = {k: torch.zeros(tuple(2 * d for d in v.shape)) for k, v in proj.items()}
    from safetensors.torch import save_file
    save_file(wide, str(tmp_path / "wide.safetensors"))
    with pytest.raises(ValueError, match=r"preset 'tiny' needs .*pass the preset it was trained with .*preset=mini"):
        FedmaLlava(projector=str(tmp_path / "wide.safetensors"))
