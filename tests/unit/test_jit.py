"""The JIT build folder: one per interpreter prefix, and a build lock left by a killed build is cleared."""
import os
import time

import pytest

from harness.engine.jit import STALE_S, clear_stale_locks, prepare_torch_extensions

pytestmark = pytest.mark.unit


def test_a_stale_lock_is_removed_and_a_fresh_one_kept(tmp_path):
    stale, fresh = tmp_path / "deepspeed_shm_comm" / "lock", tmp_path / "other_op" / "lock"
    for lock in (stale, fresh):
        lock.parent.mkdir()
        lock.touch()
    old = time.time() - STALE_S - 5
    os.utime(stale, (old, old))
    assert clear_stale_locks(tmp_path) == [stale]
    assert not stale.exists() and fresh.exists()


def test_an_interpreter_folder_unless_the_variable_is_set(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "mine"))
    assert prepare_torch_extensions() == tmp_path / "mine"
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    root = prepare_torch_extensions()
    assert root.parent == tmp_path / ".cache" / "torch_extensions" and root.name.startswith("fedma-")
