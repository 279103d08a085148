"""Package boundaries: the harness core never imports the baselines or the launchers (methods reach it
through the registry's "module:Class" strings; the CLI composes the launchers' subcommands);
harness/eval does not import harness/report; the mini world's report calls report functions, not the CLI."""
import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def imports(path: Path) -> set:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def offenders(files, banned) -> list:
    return sorted(f"{p.relative_to(ROOT)}: {m}" for p in files for m in imports(p)
                  if any(m == b or m.startswith(b + ".") for b in banned))


def test_the_core_imports_neither_baselines_nor_launchers():
    core = [p for p in (ROOT / "harness").rglob("*.py") if p != ROOT / "harness" / "cli.py"]
    assert offenders(core, ("baselines", "launchers")) == []


def test_eval_does_not_import_report_and_mini_report_not_the_cli():
    assert offenders((ROOT / "harness" / "eval").rglob("*.py"), ("harness.report",)) == []
    assert offenders([ROOT / "harness" / "mini" / "report.py"], ("harness.cli",)) == []


def test_only_harness_flower_imports_flwr():
    """Flower is an optional extra: everything else runs without it (a flwr: method names the install). The
    one other place is the aggregation benchmark's Flower rows, which time Flower's own strategies as a peer."""
    peer = ROOT / "benchmarks" / "flower_rules.py"
    files = [p for d in ("harness", "baselines", "launchers", "benchmarks") for p in (ROOT / d).rglob("*.py")
             if (ROOT / "harness" / "flower") not in p.parents and p != peer]
    assert offenders(files, ("flwr",)) == []
