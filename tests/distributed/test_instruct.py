"""Stage 2 (instruction tuning) in real torchrun worlds: from a stage-1 run's output, projector + LoRA
through the same engine, scored per client on GQA and OCRVQA, bit-identical after kill -9 and resume."""
import pytest
import torch

from harness.core.records import read_records
from tests.distributed.conftest import fedma_run, projector, torchrun

pytestmark = pytest.mark.dist


@pytest.fixture(scope="module")
def stage1(world5, tmp_path_factory):
    out = tmp_path_factory.mktemp("stage1") / "fedavg"
    res = fedma_run(1, out, f"data.root={world5}", "method=fedavg", "rounds=1")
    assert res.returncode == 0, res.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def instruct_data(tmp_path_factory):
    from harness.instruct.synthetic import write_synthetic_instruct
    return write_synthetic_instruct(tmp_path_factory.mktemp("instruct") / "data", clients=5, rounds=2)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from harness.mini.bench import write_benchmarks
    return write_benchmarks(tmp_path_factory.mktemp("bench"), seed=0)


def stage2(nproc, out, *overrides, env=None, resume=False):
    extra = ["--resume"] if resume else []
    return torchrun(nproc, "-m", "harness.cli", "run", "instruct-tiny", *overrides, "--out", str(out), *extra, env=env)


def test_stage_two_trains_projector_and_lora_from_a_stage_one_run(stage1, instruct_data, bench, tmp_path):
    res = stage2(2, tmp_path / "s2", f"init.projector={stage1}", f"data.root={instruct_data}",
                 f"eval.data_root={bench}", "eval.final_tasks=[gqa, ocrvqa]", "eval.per_client=true",
                 "eval.limit=8", "eval.max_new_tokens=2")
    assert res.returncode == 0, res.stderr[-3000:]
    start, final = projector(stage1), projector(tmp_path / "s2")
    lora = [k for k in final if k.startswith("lora/")]
    assert len(lora) == 28 and set(final) - set(lora) == set(start)
    assert any(final[k].abs().sum() > 0 for k in lora if ".lora_B." in k)       # B left zero: adapters trained
    assert not torch.equal(final["linear_1.weight"], start["linear_1.weight"])
    recs = read_records(tmp_path / "s2" / "records.jsonl")
    scored = {(r["benchmark"], str(r["client"])) for r in recs if r["benchmark"] in ("gqa", "ocrvqa")}
    assert scored == {(b, c) for b in ("gqa", "ocrvqa") for c in ("0", "1", "2", "3", "4", "global")}
    assert all(r["round"] == 2 for r in recs if r["benchmark"] in ("gqa", "ocrvqa"))
    # the evaluation adapter loads the run with its LoRA tensors (from the run's own config.yaml)
    from harness.eval.adapter import FedmaLlava
    from harness.model.build import get_projector
    loaded = get_projector(FedmaLlava(pretrained=str(tmp_path / "s2")).model)
    assert set(loaded) == set(final) and all(torch.equal(loaded[k], final[k]) for k in final)


def test_the_initial_projector_is_the_stage_one_one(stage1, instruct_data, tmp_path):
    """Round 1 of two runs that differ only in init.projector (the stage-1 run vs random) uploads
    different states; the same init twice uploads the same (so the difference is the init)."""
    runs = {}
    for name, init in (("a", str(stage1)), ("b", str(stage1)), ("r", "random")):
        res = stage2(1, tmp_path / name, f"init.projector={init}", f"data.root={instruct_data}", "rounds=1")
        assert res.returncode == 0, res.stderr[-2000:]
        runs[name] = projector(tmp_path / name)
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    assert not torch.equal(runs["a"]["linear_1.weight"], runs["r"]["linear_1.weight"])


@pytest.mark.parametrize("nproc, kill", [(1, "kill:round=2:phase=train"), (2, "kill:round=2:phase=aggregate:rank=0")])
def test_sigkill_then_resume_is_bit_identical_with_lora(stage1, instruct_data, tmp_path, nproc, kill):
    args = (f"init.projector={stage1}", f"data.root={instruct_data}")
    whole = stage2(nproc, tmp_path / "whole", *args)
    assert whole.returncode == 0, whole.stderr[-2000:]
    cut = stage2(nproc, tmp_path / "cut", *args, env={"FEDMA_INJECT": kill})
    assert cut.returncode != 0 and not (tmp_path / "cut" / "final").exists()
    resumed = stage2(nproc, tmp_path / "cut", *args, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = projector(tmp_path / "whole"), projector(tmp_path / "cut")
    assert set(a) == set(b) and any(k.startswith("lora/") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
