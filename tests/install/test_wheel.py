"""The package works outside the checkout: the wheel, installed with its extras into a fresh virtual
environment in a temporary directory, runs `fedma --help`, a 1-round tiny run, `fedma tables --paper`
and an sbatch dry run, with the packaged presets, profiles, sbatch template and the paper's numbers.

No network: the fresh environment sees this environment's installed dependencies (pip among them) through
a plain path line (not a site directory, so this checkout's editable install is not visible), and pip
installs the wheel with --no-index, resolving its extras against them."""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.install
REPO = Path(__file__).resolve().parents[2]


def outside_env() -> dict:
    """This environment without PYTHONPATH: the installed wheel, never the checkout (the Slurm tests export
    PYTHONPATH=checkout for their jobs, for the rest of a pytest process's session)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def sh(*cmd, cwd, env=None, timeout=600):
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                         env=env or outside_env())
    assert res.returncode == 0, f"{cmd}: {(res.stdout + res.stderr)[-3000:]}"
    return res


def test_wheel_installed_outside_the_checkout_runs_the_commands(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in ("harness", "baselines", "launchers"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "wheel", src,
       cwd=tmp_path)
    wheel = next((tmp_path / "wheel").glob("fedma_harness-*.whl"))
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)   # pip (and setuptools) come from the deps
    purelib = Path(sh(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                      cwd=tmp_path).stdout.strip())
    (purelib / "zz_fedma_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # the 'eval' extra is importable too, but lmms-eval's pin on torchvision cannot resolve here: the Makefile
    # removes PyPI's CUDA-linked torchvision beside a CPU torch (it would not import)
    sh(venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-index", f"{wheel}[train,results,launch]",
       cwd=tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    fedma = venv / "bin" / "fedma"
    where = sh(venv / "bin" / "python", "-c", "import harness, launchers; print(harness.__file__, launchers.__file__)",
               cwd=work).stdout
    assert str(REPO) not in where and str(purelib) in where, where
    assert "sweep" in sh(fedma, "--help", cwd=work).stdout
    sh(fedma, "data", "synthetic", "--out", work / "data", "--rounds", "1", "--per-round", "8", cwd=work)
    sh(fedma, "run", "tiny", f"data.root={work / 'data'}", "rounds=1", "method=fedavg", "--out", work / "run", cwd=work)
    assert (work / "run" / "final" / "projector.safetensors").is_file()
    sh(fedma, "tables", work / "run", "--paper", "--format", "csv", "--out", work / "tables", cwd=work)
    assert "MM-Vet (paper)" in (work / "tables" / "table1_ii.csv").read_text()
    dry = sh(fedma, "sweep", "tiny", f"data.root={work / 'data'}", "rounds=1", "--methods", "fedavg,fedcmp", "--out",
             work / "sweep", "--profile", "paper", "--sbatch", "--dry-run", cwd=work)
    script = (work / "sweep" / "slurm" / "sweep-000.sbatch").read_text()
    assert "wrote" in dry.stdout and "#SBATCH --gpus-per-node=8" in script and "#SBATCH --array=0-1%4" in script
    assert f"cd {work}" in script                                    # the submitting directory, not a checkout
