"""The code the docs name exists: every repository path (``harness/engine/rounds.py``, ``tests/...``,
``results/...``, ``harness/engine/rounds.py:run_federation``), relative link (``[x](../tests/y.py)``, a test named
as its text must be defined there), ``python -m`` module and ``make`` target named in README.md and
docs/*.md.

A path that a command writes (after ``--out``, ``--work``, ``>``) is an example, not a reference; one
that git ignores (run outputs such as ``results/demo/index.html``) is produced by a command, not
committed, and is not checked either, nor is a path under a directory a command of the same page writes
(``--out results/tune``, then ``results/tune/tuned.yaml``). ``<placeholder>``, an upper-case segment
(``slurm/profiles/NAME.yaml``), ``*`` and ``{a,b}`` are matched as globs.
``python -m tests.unit.doc_refs`` prints every missing reference as ``FILE:LINE: what``."""
from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List, NamedTuple

ROOT = Path(__file__).resolve().parents[2]
TOP = ("harness", "baselines", "launchers", "perf", "slurm", "tests", "results", "requirements", "docs",
       "paper", ".ci")
PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w.{},*<>/+-]*[\w}>*/])(?::(\w+))?" % "|".join(map(re.escape, TOP)))
MODULE = re.compile(r"python -m ([\w.]+)")
LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s#:]+)(?:#[^)\s]*)?\)")     # relative links; not http:, mailto:
IDENT = re.compile(r"`([A-Za-z_]\w*)`")     # [`test_x`](...): a name in code
MAKE = re.compile(r"(?<![\w-])make ([a-z][\w-]*\w)(?![\w<-])")     # not `make test-<marker>`
WRITES = re.compile(r"(--out|--work|--output_path|-o|>)\s*[=]?\s*$")
PLACEHOLDER = re.compile(r"<[^>]*>|(?<![\w])[A-Z][A-Z_]+(?![\w])")


class Ref(NamedTuple):
    doc: str          # the page, relative to the repository
    line: int
    what: str         # as written: a path (with :name), "python -m X" or "make X"


def documents() -> List[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def references(doc: Path) -> List[Ref]:
    return references_in(str(doc.relative_to(ROOT)), doc.read_text())


def references_in(name: str, text: str) -> List[Ref]:
    out, written = [], []
    for number, line in enumerate(text.splitlines(), 1):
        for m in PATH.finditer(line):
            if WRITES.search(line[:m.start()]):
                written.append(m.group(1).rstrip("/") + "/")
            elif not m.group(1).startswith(tuple(written)):
                out.append(Ref(name, number, m.group(0)))
        out += [Ref(name, number, "python -m " + m.group(1)) for m in MODULE.finditer(line)]
        out += [Ref(name, number, "make " + m.group(1)) for m in MAKE.finditer(line)]
        out += [Ref(name, number, link_target(name, m.group(1), m.group(2))) for m in LINK.finditer(line)]
    return out


def link_target(page: str, text: str, target: str) -> str:
    """A relative link as a repository path; ``path:name`` when the text names a function in a .py file
    (``[`test_x`](../tests/unit/test_y.py)``)."""
    path = os.path.normpath(os.path.join(os.path.dirname(page), target))
    ident = IDENT.fullmatch(text.strip())
    return f"{path}:{ident.group(1)}" if ident and path.endswith(".py") else path


def expand(pattern: str) -> List[str]:
    """``a/{b,c}.py`` -> ``a/b.py``, ``a/c.py``; ``<x>`` and ``NAME`` -> ``*``."""
    pattern = PLACEHOLDER.sub("*", pattern)
    parts = re.split(r"\{([^{}]*)\}", pattern)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def path_exists(pattern: str) -> bool:
    return all(any(ROOT.glob(p.rstrip("/"))) if "*" in p else (ROOT / p).exists() for p in expand(pattern))


def name_in(path: str, name: str) -> bool:
    """``path:name``: a def, class or assignment of ``name`` in the file."""
    file = ROOT / path
    return file.is_file() and re.search(rf"^\s*(def|class)\s+{name}\b|^\s*{name}\s*[:=]", file.read_text(), re.M)


def module_exists(module: str) -> bool:
    if module.split(".")[0] not in TOP:
        return True       # another package's module (lmms_eval, torch.distributed.run): not ours to check
    base = ROOT / module.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def make_targets() -> set:
    """Every target a Makefile rule names (``a b: x`` and static pattern rules ``a b: %: x`` name a and b)."""
    rules = re.findall(r"^(\w[\w -]*):(?!=)", (ROOT / "Makefile").read_text(), re.M)
    return {name for rule in rules for name in rule.split()}


def ignored(paths: List[str]) -> set:
    """The paths git ignores (outputs of the commands the docs show)."""
    res = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT, input="\n".join(paths),
                         capture_output=True, text=True)
    return set(res.stdout.split())


def missing(refs: List[Ref]) -> List[Ref]:
    targets = make_targets()
    out = []
    for ref in refs:
        if ref.what.startswith("make "):
            ok = ref.what[5:] in targets
        elif ref.what.startswith("python -m "):
            ok = module_exists(ref.what[10:])
        else:
            path, _, name = ref.what.partition(":")
            ok = path_exists(path) and (not name or name_in(path, name))
        if not ok:
            out.append(ref)
    skip = ignored([r.what.partition(":")[0] for r in out if not r.what.startswith(("make ", "python -m "))])
    return [r for r in out if r.what.partition(":")[0] not in skip]


def report(refs: List[Ref]) -> str:
    return "\n".join(f"{r.doc}:{r.line}: {r.what}" for r in refs)


if __name__ == "__main__":
    lost = missing([r for d in documents() for r in references(d)])
    print(report(lost) or "every path, module and make target the docs name exists")
    sys.exit(1 if lost else 0)
