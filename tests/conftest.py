"""The suite is hermetic: it never reads or writes the user's Fed-MA-mini cache (``$FEDMA_CACHE`` or
``~/.cache/fedma``), so an earlier ``make demo`` cannot break ``make test`` and ``make test`` cannot
change what ``make demo`` finds. It uses ``$FEDMA_TEST_CACHE`` (the Makefile names one directory, so
a second run reuses the pool, embeddings and benchmark sets) or else a fresh directory per run, and
keeps DeepSpeed's JIT-compiled ops and Hugging Face's datasets cache there too. Subprocesses, torchrun
ranks and Slurm jobs inherit the environment. A guard fails the run if the user's cache changed."""
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from tests.markers import folder_marker

USER_CACHE = Path(os.environ.get("FEDMA_CACHE") or Path.home() / ".cache" / "fedma")
_state = {}


def snapshot(root: Path) -> dict:
    """(size, mtime) of every entry under ``root``: what the guard compares before and after."""
    if not root.exists():
        return {}
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return      # a pytest-xdist worker: the controller set this environment and guards the user's cache
    test_cache = os.environ.get("FEDMA_TEST_CACHE")
    if not test_cache:      # the controller's fresh directory; pytest-xdist's workers inherit it
        test_cache = _state["tmp"] = tempfile.mkdtemp(prefix="fedma-test-cache-")
        os.environ["FEDMA_TEST_CACHE"] = test_cache
    test_cache = str(Path(test_cache).resolve())
    if Path(test_cache) == USER_CACHE.resolve():
        raise pytest.UsageError(f"FEDMA_TEST_CACHE={test_cache} is the user's cache; name another directory")
    os.environ["FEDMA_CACHE"] = test_cache
    # torch's JIT build records the venv's absolute paths: one directory per interpreter prefix, so two
    # clones sharing this cache do not rebuild DeepSpeed's op each time the other one ran
    prefix = hashlib.sha1(sys.prefix.encode()).hexdigest()[:10]
    os.environ["TORCH_EXTENSIONS_DIR"] = str(Path(test_cache) / "torch_extensions" / prefix)
    os.environ["HF_HOME"] = str(Path(test_cache) / "huggingface")
    _state["before"] = snapshot(USER_CACHE)


def pytest_xdist_make_scheduler(config, log):
    """``make test`` runs on two pytest-xdist workers (``-n 2``), each taking a whole scope at a time: a test
    file, so its module fixtures (every method's runs, a trained world) are built once; or all of
    tests/slurm, which shares one local cluster (its node names and ports exist once per machine)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/slurm" if path.startswith("tests/slurm/") else path
    return ByFile(config, log)


def pytest_sessionfinish(session, exitstatus):
    if _state.get("before") is not None and snapshot(USER_CACHE) != _state["before"]:
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"ERROR: the test run changed the user's cache {USER_CACHE} (tests must use FEDMA_TEST_CACHE)", red=True)
        session.exitstatus = 1
    if "tmp" in _state:
        shutil.rmtree(_state["tmp"], ignore_errors=True)


@pytest.hookimpl(tryfirst=True)         # before -m selects by marker
def pytest_collection_modifyitems(config, items):
    """Every test gets its folder's marker (tests/markers.py); gpu tests skip without a GPU."""
    for item in items:
        try:
            item.add_marker(folder_marker(item.path))
        except KeyError as e:
            raise pytest.UsageError(e.args[0]) from None

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
