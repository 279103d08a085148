"""``fedma study`` end to end at smoke size (the CI run of the machinery the committed study uses): four
runs through the real round engine and lmms-eval, the archived records, the planned findings from them, a
second invocation that skips the runs, and ``--verify``: a rerun equals its archive bit for bit."""
import gzip
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.dist


def study(out, *extra):
    return subprocess.run([sys.executable, "-m", "harness.cli", "study", "smoke", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=1200)


def test_smoke_study_archives_its_records_finds_and_verifies(tmp_path):
    out = tmp_path / "study"
    res = study(out)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "4 runs, 0 finished, 4 to run" in res.stdout
    archived = sorted(p.relative_to(out / "records").as_posix() for p in (out / "records").rglob("*.jsonl.gz"))
    assert archived == ["base/ii/fedavg/seed0.jsonl.gz", "base/ii/fedavg/seed1.jsonl.gz",
                        "base/ii/fedcmp/seed0.jsonl.gz", "base/ii/fedcmp/seed1.jsonl.gz"]
    run = out / "runs" / "base" / "ii" / "fedcmp" / "seed1"
    assert gzip.decompress((out / "records" / archived[3]).read_bytes()) == (run / "records.jsonl").read_bytes()
    timings = out / "records" / "base" / "ii" / "fedcmp" / "seed1.timings.jsonl"
    assert timings.read_bytes() == (run / "timings.jsonl").read_bytes()
    seconds = sum(v for t in (out / "runs").rglob("timings.jsonl") for line in t.read_text().splitlines()
                  for k, v in json.loads(line).items() if k != "round")
    made = json.loads((out / "provenance.json").read_text())
    assert (made["archived"], made["planned"], made["runs_timed"]) == (4, 4, 4)
    assert made["run_seconds"] == round(seconds) and sum(made["code_versions"].values()) == 4
    assert json.loads((out / "unevaluated.json").read_text()) == []
    rows = json.loads((out / "findings.json").read_text())
    # two primary lines (loss AUC and index AUC on II, two pairs each) and one secondary (final loss)
    assert [(r["metric"], r["summary"], r["family"], r["n_pairs"]) for r in rows] == [
        ("loss", "auc", "primary", 2), ("index", "auc", "primary", 2), ("loss", "final", "secondary", 1 + 1)]
    assert all(r["verdict"] == "cannot tell" for r in rows)      # 2 pairs: p >= 0.5
    assert "## Fed-CMP beats FedAvg" in (out / "findings.md").read_text()
    assert (out / "tables" / "compare_base_loss_auc.md").is_file()
    assert (out / "figures" / "curves_base_ii.png").stat().st_size > 10_000
    assert (out / "figures" / "findings_primary.png").is_file() and (out / "figures" / "findings_secondary.png").is_file()
    assert (out / "figures" / "beta_base.png").is_file() and (out / "tables" / "omega_base.csv").is_file()
    doc = json.loads((out / "study.json").read_text())
    assert doc["invocations"][0]["ended"] is True and doc["invocations"][0]["runs"] == 4
    again = study(out)
    assert again.returncode == 0 and "4 runs, 4 finished, 0 to run" in again.stdout, again.stdout
    verified = study(out, "--verify", "2")
    assert verified.returncode == 0, verified.stdout + verified.stderr[-2000:]
    assert verified.stdout.count("bit for bit (same machine and build)") == 2
