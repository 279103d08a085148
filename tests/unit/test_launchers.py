"""Launchers without a cluster: the paper's sbatch script against a golden file, profile resolution, the
submitit parameters, and sweep expansion and skipping."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core.config import load_config
from harness.core.errors import ConfigError
from launchers.profile import load_profile, profile_names, resolve_profile
from launchers.sbatch import first_error, render_array, render_sbatch
from launchers.sweep import describe, expand, is_finished

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
PAPER_ARGS = dict(config="paper", overrides=["data.root=/data/cc12m/{scenario}", "method=fedcmp", "seed=0"],
                  out="/runs/paper/ii/fedcmp/seed0", name="fedma-fedcmp-ii-s0", python="python",
                  workdir="/path/to/fed-ma")


def test_paper_sbatch_matches_golden_file():
    """Regenerate with: python -c 'from tests.unit.test_launchers import regenerate; regenerate()'."""
    profile = resolve_profile(load_config("paper").launch)
    assert render_sbatch(profile, **PAPER_ARGS) == (GOLDEN / "paper.sbatch").read_text()


ARRAY_RUNS = [(["data.root=/data/cc12m/{scenario}", f"method={m}", "seed=0"], f"/runs/paper/ii/{m}/seed0")
              for m in ("fedavg", "fedcmp")]


def paper_array() -> str:
    return render_array(resolve_profile(load_config("paper").launch), "paper", ARRAY_RUNS, "/runs/paper/slurm",
                        python="python", workdir="/path/to/fed-ma")


def regenerate():   # pragma: no cover - a maintenance helper, run by hand after a deliberate change
    (GOLDEN / "paper.sbatch").write_text(render_sbatch(resolve_profile(load_config("paper").launch), **PAPER_ARGS))
    (GOLDEN / "paper_array.sbatch").write_text(paper_array())


def test_sweep_array_sbatch_matches_golden_file_and_runs_task_i_as_run_i():
    """The same template as one run's script, plus ``--array=0-1%4`` (array_parallelism 4) and a case on
    SLURM_ARRAY_TASK_ID choosing each task's arguments; executing its selection shows task 1 is fedcmp."""
    script = paper_array()
    assert script == (GOLDEN / "paper_array.sbatch").read_text()
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert "#SBATCH --array=0-1%4" in script and "#SBATCH --output=/runs/paper/slurm/%A_%a.out" in script
    select = script[script.index('case "$SLURM_ARRAY_TASK_ID"'):script.index("esac") + 4]
    shown = subprocess.run(["bash", "-c", select + '\nprintf "%s\\n" "${RUN_ARGS[@]}"'], capture_output=True,
                           text=True, env={"SLURM_ARRAY_TASK_ID": "1", "PATH": os.environ["PATH"]}).stdout.split("\n")
    assert shown[:5] == ["paper", "data.root=/data/cc12m/{scenario}", "method=fedcmp", "seed=0", "--out"]


def test_first_error_prefers_fatal_then_error_lines():
    assert first_error("sinfo: error: dns\nsinfo: fatal: no configuration") == "sinfo: fatal: no configuration"
    assert first_error("ok\nsbatch: error: Batch job submission failed") == "sbatch: error: Batch job submission failed"
    assert first_error("") == "no message"


def test_paper_sbatch_is_valid_bash_and_asks_for_the_papers_cluster():
    script = (GOLDEN / "paper.sbatch").read_text()
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    # 2 nodes x 8 A100 = 16 ranks: one srun task per node, torchrun starts 8 ranks on each
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --cpus-per-task=80", "#SBATCH --requeue", "--nproc_per_node=8", "--resume"):
        assert line in script
    assert "--partition" not in script and "--account" not in script   # unset values leave no line


def test_paper_profile_is_two_nodes_of_eight_gpus():
    p = load_profile("paper")
    assert (p.nodes, p.gpus_per_node, p.tasks_per_node, p.world_size) == (2, 8, 8, 16)
    assert {"paper", "local"} <= set(profile_names())


def test_profile_resolution_order():
    """profile < non-default launch.* of the job config < --set."""
    cfg = load_config("tiny", ["launch.profile=paper", "launch.partition=gpu", "launch.time_min=30"])
    p = resolve_profile(cfg.launch)
    assert (p.name, p.nodes, p.partition, p.time_min) == ("paper", 2, "gpu", 30)
    p = resolve_profile(cfg.launch, overrides={"time_min": 10, "qos": "high"})
    assert (p.time_min, p.qos) == (10, "high")
    assert resolve_profile(None).name == "local"
    cpu = resolve_profile(None, "local", {"tasks_per_node": None, "gpus_per_node": 0})
    assert cpu.tasks_per_node == 1   # no GPUs and no explicit count: one task per node


def test_bad_profile_values_fail_with_the_key():
    with pytest.raises(ConfigError, match="nodes"):
        resolve_profile(None, "local", {"nodes": 0})
    with pytest.raises(ConfigError, match="partiton.*did you mean 'partition'"):
        resolve_profile(None, "local", {"partiton": "gpu"})
    with pytest.raises(ConfigError, match="valid: local, paper"):
        load_profile("papr")


def test_submitit_parameters_from_the_paper_profile():
    from launchers.slurm import executor_parameters
    params = executor_parameters(load_profile("paper"), "x")
    assert params["nodes"] == 2 and params["tasks_per_node"] == 8 and params["gpus_per_node"] == 8
    assert params["slurm_signal_delay_s"] == 120 and params["slurm_additional_parameters"] == {"requeue": True}
    assert params["slurm_constraint"] == "a100-40g" and "slurm_partition" not in params
    assert "gpus_per_node" not in executor_parameters(load_profile("local"))


def test_sweep_expands_methods_scenarios_seeds_variants(tmp_path):
    plan = expand("tiny", tmp_path, ["fedavg", "fedcmp"], ["ii", "xm"], [0, 1], ["rounds=2"],
                  {"r8": ["aggregator.fedcmp.rank=8"], "full": []})
    assert len(plan.runs) == 2 * 2 * 2 * 2
    first = plan.runs[0]
    assert first.out == tmp_path / "ii" / "fedavg+r8" / "seed0"
    assert first.overrides == ["rounds=2", "method=fedavg", "scenario=ii", "seed=0", "aggregator.fedcmp.rank=8"]
    assert len({r.out for r in plan.runs}) == len(plan.runs)   # no two runs share a directory
    plain = expand("tiny", tmp_path, ["fedavg"], ["ii"], [3])
    assert [r.out for r in plain.runs] == [tmp_path / "ii" / "fedavg" / "seed3"]


def test_sweep_skips_finished_runs_only(tmp_path):
    done = tmp_path / "ii" / "fedavg" / "seed0"
    (done / "final").mkdir(parents=True)
    (done / "final" / "projector.safetensors").write_bytes(b"x")
    partial = tmp_path / "ii" / "fedavg" / "seed1"     # checkpoints but no final: resumed, not skipped
    (partial / "checkpoints" / "round_001").mkdir(parents=True)
    (tmp_path / "ii" / "fedavg" / "seed2" / "final").mkdir(parents=True)   # empty final: an interrupted write
    plan = expand("tiny", tmp_path, ["fedavg"], ["ii"], [0, 1, 2])
    assert [r.seed for r in plan.skipped] == [0] and [r.seed for r in plan.todo] == [1, 2]
    assert is_finished(done) and not is_finished(partial)
    text = "\n".join(describe(plan, load_profile("local")))
    assert "3 run(s): 2 to submit, 1 finished" in text and "skip (finished)" in text


def test_sweep_dry_run_cli_prints_the_plan_and_submits_nothing(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run([sys.executable, "-m", "harness.cli", "sweep", "tiny", "rounds=2", "--methods",
                          "fedavg,fedcmp", "--seeds", "0,1", "--out", str(tmp_path / "s"), "--dry-run"],
                         capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, res.stderr
    assert "sweep of 4 run(s): 4 to submit" in res.stdout and "fedcmp-ii-s1" in res.stdout
    assert not (tmp_path / "s").exists()
    bad = subprocess.run([sys.executable, "-m", "harness.cli", "sweep", "tiny", "--methods", "fedxx", "--out",
                          str(tmp_path / "b"), "--dry-run"], capture_output=True, text=True, env=env,
                         cwd=Path(__file__).resolve().parents[2])
    assert bad.returncode == 2 and "did you mean 'fedprox'" in bad.stderr


def test_local_launcher_command_is_a_standalone_torchrun_world():
    from launchers.local import torchrun_command
    cmd = torchrun_command(2, "tiny", ["method=fedavg"], "/r", resume=True, python="py")
    assert cmd == ["py", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "harness.cli",
                   "run", "tiny", "method=fedavg", "--out", "/r", "--resume"]
