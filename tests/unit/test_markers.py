"""Markers match folders: tests/FOLDER's tests carry FOLDER's marker and no other folder's, so
`make test-<marker>` runs exactly one folder (tests/markers.py)."""
from fnmatch import fnmatch

import pytest

from tests.markers import FOLDER_MARKERS, TESTS, folder_marker, mismatches

# no pytestmark here: the last test checks that the conftest adds 'unit' from the folder alone


def test_no_test_file_is_marked_as_another_folder():
    assert mismatches() == []


def test_a_file_marked_as_another_folder_is_named(tmp_path):
    """The check can fail: a tests/unit file marked dist, and a decorator marking one test slurm."""
    (tmp_path / "unit").mkdir()
    (tmp_path / "unit" / "test_a.py").write_text("import pytest\npytestmark = pytest.mark.dist\n")
    (tmp_path / "unit" / "test_b.py").write_text("import pytest\n\n@pytest.mark.slurm\n"
                                                  "@pytest.mark.parametrize('x', [1])\ndef test_b(x): pass\n")
    (tmp_path / "unit" / "test_c.py").write_text("import pytest\npytestmark = pytest.mark.unit\n")
    assert mismatches(tmp_path) == ["tests/unit/test_a.py: marked dist, the folder is 'unit'",
                                    "tests/unit/test_b.py: marked slurm, the folder is 'unit'"]


def test_every_folder_of_tests_has_a_marker_and_every_marker_is_declared(pytestconfig):
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    assert folders <= set(FOLDER_MARKERS), folders - set(FOLDER_MARKERS)
    # a folder pytest does not recurse into (its default norecursedirs has build and dist) would vanish
    skipped = [f for f in FOLDER_MARKERS for pattern in pytestconfig.getini("norecursedirs") if fnmatch(f, pattern)]
    assert skipped == []
    declared = {line.split(":")[0].strip() for line in pytestconfig.getini("markers")}
    assert set(FOLDER_MARKERS.values()) <= declared
    with pytest.raises(KeyError, match="tests/nowhere: no marker for this folder"):
        folder_marker(TESTS / "nowhere" / "test_x.py")


def test_the_conftest_gives_each_test_its_folders_marker(request):
    assert request.node.get_closest_marker("unit") is not None
    assert folder_marker(TESTS / "distributed" / "test_engine.py") == "dist"
