"""Fault injection for tests and drills, from the environment (so it never changes the config hash):

    FEDMA_INJECT="raise:client=1:round=2,nan:client=3:round=2,slow:client=0:round=1,kill:round=2:phase=train"

``raise`` makes a client's training fail, ``nan`` poisons its upload, ``slow`` sleeps 1 s per step
(to trip ``client_timeout_s``), ``kill`` sends SIGKILL to this process at a phase of a round
(train, aggregate, checkpoint; optionally ``rank=R``), ``freeze`` SIGSTOPs it there (a hung node: its
sockets stay open, so only the heartbeat watchdog notices).
"""
from __future__ import annotations

import os
import signal
from typing import Dict, List

ENV = "FEDMA_INJECT"


def parse(spec: str) -> List[Dict[str, str]]:
    faults = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        kind, *fields = item.split(":")
        entry = {"kind": kind}
        entry.update(f.split("=", 1) for f in fields)
        faults.append(entry)
    return faults


def active(kind: str, **where) -> bool:
    for fault in parse(os.environ.get(ENV, "")):
        if fault["kind"] == kind and all(str(v) == fault[k] for k, v in where.items() if k in fault):
            if all(k in where for k in fault if k not in ("kind", "phase", "rank")):
                return True
    return False


def maybe_kill(phase: str, round_: int) -> None:
    rank = os.environ.get("RANK", "0")
    for kind, sig in (("kill", signal.SIGKILL), ("freeze", signal.SIGSTOP)):
        if active(kind, round=round_, phase=phase, rank=rank):
            os.kill(os.getpid(), sig)
