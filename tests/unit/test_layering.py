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
    peer = ROOT / "perf" / "flower_rules.py"
    files = [p for d in ("harness", "baselines", "launchers", "perf") for p in (ROOT / d).rglob("*.py")
             if (ROOT / "harness" / "flower") not in p.parents and p != peer]
    assert offenders(files, ("flwr",)) == []


# -- the file graph and the core layer (issue 27) ------------------------------------------------------
# The foundations every other layer builds on; a module here imports only these (and harness.core).
CORE = ("harness.core", "harness.errors", "harness.typecheck", "harness.types", "harness.registry", "harness.config")
# The one indirection allowed past the layers: registry targets ("module:attr" strings resolved with
# importlib on first use), e.g. harness.registry.METHODS and PREFIXES, harness.core.presets.PRESETS.


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def file_graph(sources: dict) -> dict:
    """{module: modules of the same tree it imports}, module-level and inside functions alike (ast.walk);
    ``from pkg import name`` counts as pkg.name where that is a module, else as pkg."""
    graph = {}
    for name, text in sources.items():
        out = set()
        for node in ast.walk(ast.parse(text)):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in sources else node.module
                           for a in node.names]
            for t in targets:
                while t and t not in sources:
                    t = t.rpartition(".")[0]
                if t and t != name and not name.startswith(t + "."):   # a package's own __init__ is no edge
                    out.add(t)
        graph[name] = out
    return graph


def cycles(graph: dict) -> list:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def harness_sources() -> dict:
    return {module_name(p): p.read_text() for p in sorted((ROOT / "harness").rglob("*.py"))}


def test_no_import_cycles_between_files():
    """Every import counts, inside functions too: an import moved into a function to dodge a cycle is
    still a cycle here (mini/world <-> mini/qa, mini/demo <-> mini/instruct_demo, report/tables <->
    report/instruct and registry <-> flower were four, broken by moving code where it belongs)."""
    assert cycles(file_graph(harness_sources())) == []


def upward(graph: dict) -> list:
    return sorted(f"{m} -> {t}" for m, ts in graph.items() if m.startswith("harness.core")
                  for t in ts if not any(t == c or t.startswith(c + ".") for c in CORE))


def test_the_core_imports_only_the_core():
    assert upward(file_graph(harness_sources())) == []


def test_the_checks_fail_on_a_planted_cycle_and_a_planted_upward_import():
    sources = harness_sources()
    sources["harness.core.rundir"] += "\nfrom harness.engine import run_federation\n"          # core -> engine
    sources["harness.engine"] = sources["harness.engine"] + "\ndef f():\n    import harness.core.rundir\n"
    graph = file_graph(sources)
    assert "harness.core.rundir -> harness.engine" in upward(graph)
    assert any({"harness.core.rundir", "harness.engine"} <= set(c) for c in cycles(graph))
    planted = {"harness.a": "def f():\n    from harness import b\n", "harness.b": "import harness.a\n", "harness": ""}
    assert cycles(file_graph(planted)) == [["harness.a", "harness.b"]]
