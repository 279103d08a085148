"""Bounded hangs: every rank of a world beats a counter in the process group's store, and watches the
others'. A rank whose counter has not moved for ``slack_s`` seconds (it died, or its node did), or a
store that stopped answering (rank 0, which hosts it, died), ends this rank with one clear error line
instead of waiting in a collective until the process-group timeout (hours: it must cover the slowest
client round). The last complete checkpoint is intact (checkpoints are written to a temporary directory
and renamed), so ``--resume`` continues the run.

A store that hangs (rank 0's node is frozen: its sockets stay open, nothing answers) blocks a store
call for good: a TCPStore timeout does not bound it (seen: a ``get`` stuck for minutes after its 3 s
timeout warning). So the store calls run in a thread of their own, and this thread only checks that a
round of them completed within ``slack_s``.

Counters, not timestamps: no clock needs to agree across nodes. torchrun's agent already stops a
node's surviving workers when one fails; this covers what it cannot see: the other nodes' ranks, and
jobs whose tasks are plain processes (submitit, srun without torchrun).
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time

log = logging.getLogger(__name__)
EXIT_CODE = 3


class Watchdog(threading.Thread):
    def __init__(self, store, rank: int, size: int, slack_s: float, prefix: str = "fedma/heartbeat",
                 interval_s: float | None = None):
        super().__init__(name="fedma-watchdog", daemon=True)
        self.store, self.rank, self.size, self.slack_s, self.prefix = store, rank, size, slack_s, prefix
        self.interval_s = interval_s or max(0.5, min(5.0, slack_s / 6))
        self.stopped = threading.Event()

    def run(self) -> None:
        self.answered = time.monotonic()
        threading.Thread(target=self.beat, name="fedma-heartbeat", daemon=True).start()
        while not self.stopped.wait(self.interval_s):
            if time.monotonic() - self.answered > self.slack_s:
                self.fail(f"the process group's store has not answered for {self.slack_s:g} s "
                          f"(federation.heartbeat_s): rank 0's node hung or died")

    def beat(self) -> None:
        """Beat this rank's counter and read the others', every ``interval_s``; ``answered`` is when a
        round of store calls last completed."""
        beats, seen = 0, {}
        while not self.stopped.wait(self.interval_s):
            try:
                beats += 1
                self.store.set(f"{self.prefix}/{self.rank}", str(beats))
                now = time.monotonic()
                for other in range(self.size):
                    if other == self.rank:
                        continue
                    value = self.store.get(f"{self.prefix}/{other}") if self._has(other) else b"0"
                    if value == b"done":        # that rank finished its run
                        continue
                    if seen.get(other, (None,))[0] != value:
                        seen[other] = (value, now)
                    elif now - seen[other][1] > self.slack_s:
                        self.fail(f"rank {other} has sent no heartbeat for {self.slack_s:g} s (federation.heartbeat_s): "
                                  f"it died or its node did")
                self.answered = time.monotonic()
            except Exception as e:   # the store lives in rank 0: rank 0 is gone
                if not self.stopped.is_set():
                    self.fail(f"the process group's store stopped answering ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}): rank 0 died or its node did")

    def _has(self, other: int) -> bool:
        return self.store.check([f"{self.prefix}/{other}"])

    def fail(self, why: str) -> None:
        sys.stderr.write(f"error: rank {self.rank}: {why}; stopping this rank. The last complete checkpoint is "
                         f"intact: rerun the same command with --resume to continue\n")
        sys.stderr.flush()
        os._exit(EXIT_CODE)

    def finish(self) -> None:
        """This rank's run is over: say so, so that ranks still writing the final outputs do not wait for it."""
        self.stopped.set()
        try:
            self.store.set(f"{self.prefix}/{self.rank}", "done")
        except Exception:   # the store may already be gone with rank 0's exit
            pass


_started = [0]   # federations started in this process: every rank starts the same ones, in the same order


def start(slack_s: float):
    """A running watchdog for this world's next federation (None for a world of one, or ``slack_s=0``)."""
    import torch.distributed as dist
    if not dist.is_initialized() or dist.get_world_size() < 2 or slack_s <= 0:
        return None
    from torch.distributed.distributed_c10d import _get_default_store
    _started[0] += 1
    dog = Watchdog(_get_default_store(), dist.get_rank(), dist.get_world_size(), slack_s,
                   prefix=f"fedma/heartbeat/{_started[0]}")
    dog.start()
    return dog
