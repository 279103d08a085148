"""Round checkpoints, written atomically by rank 0: a temporary directory, fsync, then rename.

    OUT/checkpoints/round_003/{projector,aggregator,clients}.safetensors, state.json, records.jsonl

``state.json`` holds everything that is not a tensor (round, aggregator scalars, per-client state,
RNG states, data cursor, resolved config and hash). Nothing is ever unpickled from a run directory.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from safetensors.torch import load_file, save_file

from harness.core.rundir import STATE, RunDir
from harness.engine.faults import maybe_kill
from harness.core.records import read_records, write_records


def checkpoint_dir(run_dir, round_: int) -> Path:
    return RunDir(run_dir).checkpoint(round_)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_tensors(path: Path, tensors: Dict[str, torch.Tensor]) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


def save_checkpoint(run_dir, round_: int, tensors: Dict[str, Dict[str, torch.Tensor]], state: dict,
                    records: list, keep: int = 2) -> Path:
    root = RunDir(run_dir).checkpoints
    root.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir(run_dir, round_)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, group in tensors.items():
        save_tensors(tmp / f"{name}.safetensors", group)
    (tmp / STATE).write_text(json.dumps(state, indent=1, sort_keys=True))
    write_records(RunDir(tmp).records, records)
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    maybe_kill("checkpoint", round_)
    if final.exists():   # a round re-run after resume: move the old one aside first
        old = root / f".old-{final.name}-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)
    _fsync_dir(root)
    prune(root, keep)
    return final


def prune(root: Path, keep: int) -> None:
    done = sorted(p for p in root.glob("round_*") if (p / STATE).exists())
    for p in done[:-keep] if keep > 0 else []:
        shutil.rmtree(p)
    for p in root.glob(".tmp-*"):
        shutil.rmtree(p, ignore_errors=True)


def latest_checkpoint(run_dir) -> Optional[Path]:
    return RunDir(run_dir).latest_checkpoint()


def load_checkpoint(path: Path) -> Tuple[Dict[str, Dict[str, torch.Tensor]], dict, list]:
    tensors = {p.stem: load_file(str(p)) for p in sorted(path.glob("*.safetensors"))}
    state = json.loads((path / STATE).read_text())
    return tensors, state, read_records(RunDir(path).records)
