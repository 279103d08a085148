"""One folder of tests/, one marker: the folder says what a test needs (torchrun, a Slurm, a browser, a
GPU), so `make test-<marker>` runs exactly that folder and a test cannot sit in one while marked as
another. The conftest adds the folder's marker to every test; `mismatches` finds a file that marks its
tests otherwise (tests/unit/test_markers.py holds the suite to none)."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import List

# folder under tests/ -> its marker (setup.cfg describes each; the Makefile has a target per marker)
FOLDER_MARKERS = {"unit": "unit", "distributed": "dist", "eval": "eval", "slurm": "slurm", "install": "install",
                  "browser": "browser", "gpu": "gpu", "rebuild": "build"}
TESTS = Path(__file__).resolve().parent


def folder_marker(path: Path, tests: Path = TESTS) -> str:
    """The marker of the folder a test file sits in; a folder without one is a usage error, named."""
    folder = Path(path).resolve().relative_to(tests).parts[0]
    if folder not in FOLDER_MARKERS:
        raise KeyError(f"tests/{folder}: no marker for this folder; add it to FOLDER_MARKERS in tests/markers.py "
                       f"(valid folders: {', '.join(FOLDER_MARKERS)})")
    return FOLDER_MARKERS[folder]


def marks_in(source: str) -> set:
    """The folder markers a test file names: ``pytestmark = pytest.mark.X`` and ``@pytest.mark.X``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and node.attr in FOLDER_MARKERS.values()
                and isinstance(node.value, ast.Attribute) and node.value.attr == "mark"):
            found.add(node.attr)
    return found


def mismatches(tests: Path = TESTS) -> List[str]:
    """``tests/FOLDER/FILE: marked X, the folder is Y`` for every test file whose markers disagree."""
    out = []
    for path in sorted(tests.glob("*/**/test_*.py")):
        want = folder_marker(path, tests)
        wrong = sorted(marks_in(path.read_text()) - {want})
        if wrong:
            out.append(f"tests/{path.relative_to(tests)}: marked {', '.join(wrong)}, the folder is '{want}'")
    return out
