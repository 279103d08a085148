"""Optional dependencies: every third-party module the code imports is a core requirement or belongs to an
extra that declares it (setup.cfg), and a command run without that extra ends in one line naming it."""
import ast
import configparser
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core.extras import EXTRAS

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"harness", "baselines", "launchers", "perf", "tests"}


def declared() -> dict:
    """{extra or 'core': {normalized distribution names}} from setup.cfg."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    names = lambda text: {re.split(r"[\[<>=!~; ]", line.strip())[0].lower().replace("_", "-")
                          for line in text.splitlines() if line.strip()}
    out = {extra: names(text) for extra, text in cfg["options.extras_require"].items()}
    out["core"] = names(cfg["options"]["install_requires"])
    return out


def imported_modules() -> dict:
    """{top-level third-party module: a file importing it} over harness/, launchers/, baselines/."""
    out = {}
    for path in sorted(p for d in ("harness", "launchers", "baselines") for p in (ROOT / d).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                    out.setdefault(top, str(path.relative_to(ROOT)))
    return out


def test_every_imported_module_is_core_or_in_an_extra():
    core = {"numpy", "yaml", "safetensors", "rich", "torch"}
    assert {m: f for m, f in imported_modules().items() if m not in core and m not in EXTRAS} == {}


def test_each_extra_module_is_declared_by_its_extra():
    """markdown came through tensorboard and no extra named it: declared now, and held so."""
    wants, dists = declared(), importlib.metadata.packages_distributions()
    wrong = {}
    for module, extra in EXTRAS.items():
        provided = {d.lower().replace("_", "-") for d in dists.get(module, [])}
        if not provided & (wants[extra] | wants["core"]):
            wrong[module] = f"from {sorted(provided)}, but [{extra}] declares {sorted(wants[extra])}"
    assert wrong == {}
    assert "markdown" in wants["observe"] and {"mkdocs-material"} <= wants["docs"]


def hidden(tmp_path: Path, *modules: str) -> dict:
    """An environment in which importing ``modules`` fails as if their extra were not installed."""
    for name in modules:
        (tmp_path / f"{name}.py").write_text(f"raise ModuleNotFoundError({f'No module named {name!r}'!r}, name={name!r})\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), "OMP_NUM_THREADS": "1"}


def fedma(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


@pytest.mark.parametrize("module, command", [
    ("markdown", ["mini", "demo", "--rounds", "1", "--methods", "fedavg"]),
    ("plotly", ["mini", "demo", "--rounds", "1"]),
    ("markdown", ["report", "RUNS"]),
])
def test_a_command_without_its_extra_ends_in_one_line_naming_it(tmp_path, module, command):
    """The demo checks before its runs (its report, at the end, needs plotly and markdown)."""
    (tmp_path / "hide").mkdir()
    out = tmp_path / "out"
    res = fedma(hidden(tmp_path / "hide", module), *[str(tmp_path) if a == "RUNS" else a for a in command],
                "--out", str(out))
    assert res.returncode == 2, res.stderr[-3000:]
    assert res.stderr.strip().splitlines() == [
        f"error: this command needs the 'observe' extra (no module named '{module}'): "
        f"pip install 'fedma-harness[observe]'"]
    assert not out.exists()          # nothing was built or run before the line
