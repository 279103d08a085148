"""The layers of harness/ (issue 27), each a set of folders, and the direction of every import between them:
a module imports its own layer and the layers below, never above, and no two packages (or files) import
each other, even through an import inside a function. Also: the harness never imports the baselines or the
launchers (methods reach it through the registry's "module:Class" strings; the CLI composes the launchers'
subcommands the same way), and only harness/flower imports Flower."""
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


def test_the_harness_below_the_app_imports_neither_baselines_nor_launchers():
    """Below the app: the app (harness/cli) starts the launchers, as they start the harness."""
    below_app = [p for p in (ROOT / "harness").rglob("*.py") if (ROOT / "harness" / "cli") not in p.parents]
    assert offenders(below_app, ("baselines", "launchers")) == []


def test_only_harness_flower_imports_flwr():
    """Flower is an optional extra: everything else runs without it (a flwr: method names the install). The
    one other place is the aggregation benchmark's Flower rows, which time Flower's own strategies as a peer."""
    peer = ROOT / "perf" / "flower_rules.py"
    files = [p for d in ("harness", "baselines", "launchers", "perf") for p in (ROOT / d).rglob("*.py")
             if (ROOT / "harness" / "flower") not in p.parents and p != peer]
    assert offenders(files, ("flwr",)) == []


# -- the layers, the file graph, the package graph (issue 27) ------------------------------------------
# Bottom to top; a package's layer is the first whose list names it (harness itself: its __init__ re-exports
# the public API from the foundations). README.md's code map and docs/architecture.md draw the same.
LAYERS = (
    ("foundations", ("harness", "harness.core")),               # types, errors, registries, config, run folder
    ("methods", ("harness.methods", "harness.fedcmp")),         # the method API, merging math, Fed-CMP
    ("parts", ("harness.model", "harness.data", "harness.instruct", "harness.eval", "harness.wire")),
    ("engine", ("harness.engine",)),                            # Algorithm 1: rounds, server, clients, world
    ("features", ("harness.mini", "harness.report", "harness.compare", "harness.observe", "harness.study",
                  "harness.tune", "harness.flower")),
    ("app", ("harness.cli",)),                                   # fedma and its subcommands, the demos
)
# The one indirection allowed past the layers: registry targets ("module:attr" strings resolved with
# importlib on first use), e.g. harness.core.registry.METHODS and PREFIXES, harness.core.presets.PRESETS.


def package(module: str) -> str:
    """The package a module belongs to: harness.X for anything under harness/X (harness for the root)."""
    return ".".join(module.split(".")[:2])


def layer(module: str) -> int:
    pkg = package(module)
    found = [i for i, (_, pkgs) in enumerate(LAYERS) if pkg in pkgs]
    if not found:
        raise KeyError(f"{pkg}: in no layer; add it to LAYERS in tests/unit/test_layering.py "
                       f"(layers: {', '.join(n for n, _ in LAYERS)})")
    return found[0]


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
    """Every import of a module from a higher layer, as "importer (layer) -> imported (layer)"."""
    return sorted(f"{m} ({LAYERS[layer(m)][0]}) -> {t} ({LAYERS[layer(t)][0]})" for m, ts in graph.items()
                  for t in ts if layer(t) > layer(m))


def package_graph(graph: dict) -> dict:
    out = {}
    for m, ts in graph.items():
        out.setdefault(package(m), set()).update(package(t) for t in ts if package(t) != package(m))
    return out


def test_every_package_is_in_a_layer():
    assert sorted({package(m) for m in harness_sources()} - {p for _, ps in LAYERS for p in ps}) == []


def test_no_import_reaches_a_higher_layer():
    assert upward(file_graph(harness_sources())) == []


def test_no_import_cycles_between_packages():
    """Packages of one layer may use each other one way only (mini uses report, report never mini)."""
    assert cycles(package_graph(file_graph(harness_sources()))) == []


def test_the_checks_fail_on_a_planted_cycle_and_a_planted_upward_import():
    sources = harness_sources()
    sources["harness.core.rundir"] += "\nfrom harness.engine.rounds import run_federation\n"          # core -> engine
    sources["harness.engine.rounds"] += "\ndef f():\n    import harness.core.rundir\n"
    graph = file_graph(sources)
    assert "harness.core.rundir (foundations) -> harness.engine.rounds (engine)" in upward(graph)
    assert any({"harness.core.rundir", "harness.engine.rounds"} <= set(c) for c in cycles(graph))
    sources = harness_sources()
    sources["harness.report.cells"] += "\ndef f():\n    from harness.mini import world\n"     # report <-> mini
    assert ["harness.mini", "harness.report"] in cycles(package_graph(file_graph(sources)))
    planted = {"harness.a": "def f():\n    from harness import b\n", "harness.b": "import harness.a\n", "harness": ""}
    assert cycles(file_graph(planted)) == [["harness.a", "harness.b"]]
