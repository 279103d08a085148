"""A study's evidence: every run's records committed (compressed), and ``--verify``: rerun some, compare.

``OUT/records/<setting>/<scenario>/<arm slug>/seed<k>.jsonl.gz`` holds a finished run's ``records.jsonl``
(gzip without a timestamp, so the same records give the same bytes), with ``machine.json`` and the run's
seconds per round and phase (``timings.jsonl``) beside it; every
number of the study's tables and findings can be recomputed from these files (``fedma compare OUT/records``).

``fedma study CONFIG --out OUT --verify N`` reruns N finished runs (spread over the study's blocks) at the
current code into a scratch directory and compares every record value with the archived one: on the same
machine and build (CPU model, cores, torch, GPU) they must be equal bit for bit; elsewhere within the
spread measured across CPU kernels (``results/bench/demo_spread.md``: held-out loss 1e-3, a benchmark
score 5 points, MME 40 points; anything else a relative 1e-3).
"""
from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

from harness.core.rundir import RunDir, timed_seconds
from harness.core.records import read_archived
from harness.study.runner import RunSpec, archive_path, finished, plan

# what is not a result: wall times differ on every run
TIMING = {("train", "seconds")}
TOLERANCE = {"heldout": 1e-3, "validation": 1e-3, "mme": 40.0}
SCORE_TOLERANCE = 5.0          # percentage points (scores recorded as fractions: 0.05)
RELATIVE = 1e-3


def archive_records(cfg, out) -> int:
    """Compress every finished run's records into ``OUT/records`` (only new or changed ones are written)."""
    out, written = Path(out), 0
    for spec in plan(cfg):
        run = spec.path(out)
        if not finished(run):
            continue
        data = RunDir(run).records.read_bytes()
        dest = archive_path(out, spec)
        _keep_timings(RunDir(run).timings, dest.with_name(f"seed{spec.seed}.timings.jsonl"))
        if dest.is_file() and gzip.decompress(dest.read_bytes()) == data:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(gzip.compress(data, mtime=0))
        if RunDir(run).machine.is_file():
            shutil.copyfile(RunDir(run).machine, dest.with_name(f"seed{spec.seed}.machine.json"))
        written += 1
    return written


def _keep_timings(source: Path, dest: Path) -> None:
    """The run's seconds per round and phase, beside its records (how long the study took, per run)."""
    if source.is_file() and not (dest.is_file() and dest.read_bytes() == source.read_bytes()):
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)


def provenance(cfg, out) -> dict:
    """From the archive: runs archived of planned, the code versions and machines that made them, and the
    seconds their rounds took (sum over runs; several workers share the machine's wall time)."""
    from collections import Counter
    out, specs = Path(out), plan(cfg)
    versions, machines, seconds, timed = Counter(), Counter(), 0.0, 0
    for path, seed in ((archive_path(out, s), s.seed) for s in specs):
        if not path.is_file():
            continue
        with gzip.open(path, "rt") as f:
            versions[json.loads(f.readline() or "{}").get("code_version")] += 1
        where = path.with_name(f"seed{seed}.machine.json")
        machines[json.loads(where.read_text())["machine"] if where.is_file() else None] += 1
        run_seconds = timed_seconds(path.with_name(f"seed{seed}.timings.jsonl"))
        if run_seconds is not None:
            timed += 1
            seconds += run_seconds
    return {"archived": sum(versions.values()), "planned": len(specs), "code_versions": dict(versions),
            "machines": dict(machines), "runs_timed": timed, "run_seconds": round(seconds)}


def chosen(cfg, out: Path, n: int) -> List[RunSpec]:
    """N archived runs, taken in turn from each block and, within a block, from each of its arms in turn
    (first seed, setting and scenario first), so a few runs span as many arms and blocks as have finished."""
    per_block = []
    for block in cfg.blocks:
        arms = cfg.block_arms(block)
        per_block.append([RunSpec(st, sc, seed, a) for seed in block.seeds or cfg.seeds for st in block.settings
                          for sc in block.scenarios for a in arms])
    picked: List[RunSpec] = []
    for i in range(max(map(len, per_block), default=0)):
        for specs in per_block:
            if i < len(specs) and specs[i] not in picked and archive_path(out, specs[i]).is_file():
                picked.append(specs[i])
    return picked[:n]


def compare_records(archived: List[dict], rerun: List[dict], exact: bool) -> List[str]:
    """The differences, one line each ([] when they agree)."""
    a, b = _values(archived), _values(rerun)
    problems = [f"{k}: only in the archive" for k in sorted(set(a) - set(b), key=str)]
    problems += [f"{k}: only in the rerun" for k in sorted(set(b) - set(a), key=str)]
    for k in sorted(set(a) & set(b), key=str):
        x, y = a[k], b[k]
        if x == y:
            continue
        if exact or x is None or y is None or abs(x - y) > _tolerance(k, x):
            problems.append(f"{k}: archived {x!r}, rerun {y!r}")
    return problems


def _values(records: List[dict]) -> Dict[Tuple, float]:
    return {(r["round"], str(r["client"]), r["benchmark"], r["metric"]): r["value"] for r in records
            if (r["benchmark"], r["metric"]) not in TIMING}


def _tolerance(key: Tuple, value: float) -> float:
    bench, metric = key[2], key[3]
    if bench in TOLERANCE:
        return TOLERANCE[bench]
    from harness.core.benchmarks import BENCHMARKS, FRACTION_METRICS
    if bench in BENCHMARKS:
        return SCORE_TOLERANCE / 100.0 if metric in FRACTION_METRICS else SCORE_TOLERANCE
    return RELATIVE * max(1.0, abs(value))


def same_machine(archived_machine: Path) -> bool:
    """The archived run's machine line equals this one's, host name aside."""
    from harness.core.machine import machine_line
    if not archived_machine.is_file():
        return False
    theirs = json.loads(archived_machine.read_text())["machine"].split(": ", 1)[-1]
    return theirs == machine_line().split(": ", 1)[-1]


def verify(cfg, out, n: int, workers: int, console) -> bool:
    """Rerun ``n`` archived runs and compare; prints one line per run; True when every one agrees."""
    from harness.mini.workers import build_deepspeed_ops, run_all
    from harness.study.runner import evaluation, overrides, world_roots
    out = Path(out)
    specs = chosen(cfg, out, n)
    if len(specs) < n:
        from harness.core.errors import DataError
        raise DataError(f"--verify {n}: only {len(specs)} archived run(s) in {out / 'records'}")
    scoring = evaluation(cfg)
    build_deepspeed_ops()
    roots = world_roots(cfg, specs)
    ok = True
    with tempfile.TemporaryDirectory(prefix="fedma-verify-") as tmp:
        jobs = {str(Path(tmp) / f"run{i}"): overrides(cfg, s, roots[(s.setting, s.scenario, s.seed)], scoring)
                for i, s in enumerate(specs)}
        run_all(jobs, workers, console, name=lambda d: Path(d).name)
        for (d, _), s in zip(jobs.items(), specs):
            arch = archive_path(out, s)
            exact = same_machine(arch.with_name(f"seed{s.seed}.machine.json"))
            problems = compare_records(read_archived(arch), _read(RunDir(d).records), exact)
            how = "bit for bit (same machine and build)" if exact else "within the cross-CPU spread"
            console.print(f"{'ok' if not problems else 'DIFFERS'}: {s.setting}/{s.scenario}/{s.arm.key}/seed{s.seed} "
                          f"{how}" + (f": {problems[0]} (+{len(problems) - 1} more)" if problems else ""),
                          markup=False)
            ok = ok and not problems
    return ok


def _read(path: Path) -> List[dict]:
    from harness.core.records import read_records
    return read_records(path)
