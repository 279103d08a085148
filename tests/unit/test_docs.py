"""The documentation does not rot: the site builds with ``mkdocs build --strict`` (a broken link, anchor or
nav entry fails), and every path, ``python -m`` module and ``make`` target that README.md and docs/ name
exists (tests/unit/doc_refs.py; ``python -m tests.unit.doc_refs`` lists the missing ones)."""
import os
import runpy
import subprocess
import sys
from types import SimpleNamespace
from pathlib import Path

import pytest
import yaml

from tests.unit.doc_refs import Ref, documents, missing, references, references_in, report

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def nav_pages(nav) -> list:
    out = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        out += nav_pages(value) if isinstance(value, list) else [value]
    return out


def test_the_site_builds_strictly_with_every_page(tmp_path):
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
                          "--site-dir", str(tmp_path / "site")], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert res.returncode == 0, res.stderr[-4000:]
    pages = nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    on_disk = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert sorted(pages) == on_disk                     # every page is in the nav, and the nav names no other
    for page in pages:
        built = tmp_path / "site" / ("index.html" if page == "index.md" else page[:-3] + "/index.html")
        assert built.is_file(), page


def test_every_path_module_and_make_target_the_docs_name_exists():
    refs = [r for doc in documents() for r in references(doc)]
    assert len(refs) > 100                              # the check reads the docs at all
    lost = missing(refs)
    assert lost == [], "missing:\n" + report(lost)


def test_the_reference_check_names_what_is_missing():
    """Hand-written: the existing references pass (a brace pair, a placeholder, a function in a file, a
    static-pattern make target, links to code and to a test in it), the invented ones are listed; a path
    a command writes is no reference."""
    text = ("see `harness/engine/rounds.py:run_federation`, `harness/mini/{lmtext,qa}.py`, `slurm/profiles/NAME.yaml`\n"
            "`make test-unit` and `python -m perf.data`; `harness/nowhere.py`, `make nothing`\n"
            "`harness/engine/rounds.py:no_such_function`, `python -m harness.nowhere`, `tests/unit/test_{docs,nope}.py`\n"
            "fedma tables runs --out results/new_tables\n"
            "then read `results/new_tables/table1_ii.md`\n"
            "[`run_federation`](../harness/engine/rounds.py), [gone](../harness/gone.py), [`test_nope`](../tests/unit/test_docs.py)\n")
    refs = references_in("docs/page.md", text)
    assert [r.what for r in refs] == [
        "harness/engine/rounds.py:run_federation", "harness/mini/{lmtext,qa}.py", "slurm/profiles/NAME.yaml",
        "harness/nowhere.py", "python -m perf.data", "make test-unit", "make nothing",
        "harness/engine/rounds.py:no_such_function", "tests/unit/test_{docs,nope}.py", "python -m harness.nowhere",
        "harness/engine/rounds.py:run_federation", "harness/gone.py", "tests/unit/test_docs.py:test_nope"]
    assert report(missing(refs)) == (
        "docs/page.md:2: harness/nowhere.py\ndocs/page.md:2: make nothing\n"
        "docs/page.md:3: harness/engine/rounds.py:no_such_function\ndocs/page.md:3: tests/unit/test_{docs,nope}.py\n"
        "docs/page.md:3: python -m harness.nowhere\n"
        "docs/page.md:6: harness/gone.py\ndocs/page.md:6: tests/unit/test_docs.py:test_nope")
    assert missing([Ref("docs/page.md", 1, "results/demo/index.html")]) == []   # git-ignored: made by `make demo`


def test_a_link_to_code_becomes_its_path_in_the_site_and_a_broken_one_stays_a_link():
    """docs/hooks.py: GitHub follows ../tests/x.py from a page; the site has no code pages."""
    hooks = runpy.run_path(str(ROOT / "docs" / "hooks.py"))
    page = SimpleNamespace(file=SimpleNamespace(abs_src_path=str(ROOT / "docs" / "page.md")))
    text = ("[`tests/unit/test_docs.py`](../tests/unit/test_docs.py), [`test_x`](../tests/unit/test_docs.py#L3), "
            "[gone](../harness/gone.py), [tests](tests.md), `[in code](../tests/unit/test_docs.py)`")
    assert hooks["on_page_markdown"](text, page, None, None) == (
        "`tests/unit/test_docs.py`, `test_x` (`tests/unit/test_docs.py`), [gone](../harness/gone.py), [tests](tests.md), "
        "`[in code](../tests/unit/test_docs.py)`")
