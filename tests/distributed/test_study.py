"""``fedma study`` end to end at smoke size (the CI run of the same command the committed study used): two
runs through the real round engine and lmms-eval, the outputs, and a second invocation that skips them."""
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.dist


def study(out, *extra):
    return subprocess.run([sys.executable, "-m", "harness.cli", "study", "smoke", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=900)


def test_smoke_study_runs_writes_its_outputs_and_skips_finished_runs(tmp_path):
    out = tmp_path / "study"
    res = study(out)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 runs, 0 finished, 2 to run" in res.stdout
    runs = sorted(p.relative_to(out / "runs").as_posix() for p in (out / "runs").glob("*/*/*/seed*") if p.is_dir())
    assert runs == ["base/ii/fedavg/seed0", "base/ii/fedcmp/seed0"]
    main = (out / "tables" / "main_base_ii.md").read_text()
    assert "| FedAvg |" in main and "| Fed-CMP |" in main and "POPE (paper)" in main
    rows = (out / "runs.csv").read_text().splitlines()
    assert rows[0].startswith("setting,scenario,seed,arm,final_loss,final_index") and len(rows) == 3
    assert json.loads((out / "findings.json").read_text()) == []    # one seed: no paired comparison to make
    assert "Verdict rule (fixed before the results)" in (out / "findings.md").read_text()
    assert (out / "figures" / "figure4_base_ii.png").stat().st_size > 10_000
    doc = json.loads((out / "study.json").read_text())
    assert doc["invocations"][0]["runs"] == 2 and doc["invocations"][0]["machine"]["cores"] >= 1
    again = study(out)
    assert again.returncode == 0 and "2 runs, 2 finished, 0 to run" in again.stdout, again.stdout
