"""The run's result store: one JSON object per line in ``OUT/records.jsonl``, appended by rank 0.

Schema (every record): run_id, method, scenario, seed, round (1-based), client ("global" or an id),
benchmark, metric, value (a number, or null when missing: printed n/a), n (samples behind the
value), judge (model name or null), config_hash, code_version; optional: note.
Besides scores: benchmark "train" (client loss, align_error), "federation" (dropped clients) and
"server" (the aggregator's diagnostics, e.g. Fed-CMP's omega per client and, per fused block, beta/, delta/,
groups/ and change/<block>).
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Iterable, List, Optional

from harness.core.version import VERSION

log = logging.getLogger(__name__)
FIELDS = ("run_id", "method", "scenario", "seed", "round", "client", "benchmark", "metric", "value", "n",
          "judge", "config_hash", "code_version")


def code_version() -> str:
    """Package version plus the git commit when running from a checkout."""
    here = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{VERSION}+{sha}" if sha else VERSION


def make_record(base: dict, round_: int, client, benchmark: str, metric: str, value: Optional[float],
                n: int = 0, judge: Optional[str] = None, note: Optional[str] = None) -> dict:
    rec = {**base, "round": round_, "client": client, "benchmark": benchmark, "metric": metric,
           "value": None if value is None else float(value), "n": int(n), "judge": judge}
    if note:
        rec["note"] = note
    return rec


def append_records(path, records: Iterable[dict]) -> None:
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    if not lines:
        return
    with open(path, "a") as f:
        f.write(lines)
        f.flush()
        os.fsync(f.fileno())


def write_records(path, records: List[dict]) -> None:
    """Replace the store atomically (used on resume to drop records of an unfinished round)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    os.replace(tmp, path)


def read_archived(path) -> List[dict]:
    """A gzip-compressed records file (a study's archive, ``seedS.jsonl.gz``)."""
    import gzip
    return [json.loads(line) for line in gzip.decompress(Path(path).read_bytes()).decode().splitlines() if line]


def read_records(path) -> List[dict]:
    path = Path(path)
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines[:-1]]
    if lines:
        try:   # a crash during an append can leave a half-written last line: it is not a record
            records.append(json.loads(lines[-1]))
        except json.JSONDecodeError:
            log.warning("%s: ignoring a truncated last line", path)
    return records
