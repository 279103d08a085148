"""The inner loop of the clustering step: score every row of a chunk against the centroid weights,
block by block, so that a pass over float16 embeddings runs at the speed of the float32 GEMM.

Why blocks: the first version converted whole 64K-row float16 chunks to float32 with numpy (about 5 s
per 1M x 1024 rows, more than all the arithmetic) and ran each op multi-threaded over 256 MB arrays.
A block (``block_bytes`` of float32, 4 MiB: 1024 rows of 1024) is converted by torch into a reused
buffer and multiplied, reduced and accumulated while it is still in cache.

Why threads: ``workers`` threads score blocks ahead of the caller, each op single-threaded (an OpenMP
barrier per small op costs milliseconds when the CPU is shared), and the caller consumes the blocks in
row order. Every sum is therefore accumulated in the order of one pass over the rows, whatever the
number of workers, and the blocks give the same bits as one GEMM over the chunk (MKL computes a row the
same way in any block of two or more rows; a single row goes through GEMV, so no block is ever a single
row cut from a longer chunk).
"""
from __future__ import annotations

import collections
import contextlib
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import torch


def as_tensor(a) -> torch.Tensor:
    """A torch view of ``a`` (a numpy array, memory maps included, or a tensor), without copying."""
    if isinstance(a, torch.Tensor):
        return a
    with warnings.catch_warnings():             # read-only memory maps: we never write through the view
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.asarray(a))


def block_bounds(n: int, rows: int) -> list[tuple[int, int]]:
    """``n`` rows cut into near-equal blocks of at most ``rows`` (none of one row unless ``n`` is 1)."""
    count = max(1, -(-n // max(rows, 2)))
    edges = np.linspace(0, n, count + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


@dataclass
class Tally:
    """The work of one phase, for the benchmark's roofline: rows scored, bytes read (float16 from the
    store, float32 of an in-memory subsample), FLOPs of the scoring GEMM (2 * rows * d * k)."""
    seconds: float = 0.0
    rows: int = 0
    bytes: int = 0
    flops: int = 0


class Scanner:
    """Scores chunks block by block; a context manager that owns the worker threads (CPU only)."""

    def __init__(self, device: str = "cpu", workers: int | None = None, block_bytes: int = 4 << 20):
        self.device = torch.device(device)
        cpu = self.device.type == "cpu"
        self.workers = (workers or torch.get_num_threads()) if cpu else 1
        self.block_bytes = block_bytes if cpu else 1 << 30      # a GPU wants the whole chunk at once
        self.pool, self.threads = None, None
        self.tally = Tally()

    @contextlib.contextmanager
    def phase(self, name: str, into: dict | None):
        """Count the work done inside the block as phase ``name`` of ``into`` (a dict; None: not kept)."""
        self.tally, began = Tally(), time.perf_counter()
        yield
        self.tally.seconds = time.perf_counter() - began
        if into is not None:
            into[name] = asdict(self.tally)

    def __enter__(self) -> Scanner:
        if self.device.type == "cpu":
            self.threads = torch.get_num_threads()
            torch.set_num_threads(1)           # every op single-threaded; the parallelism is the workers
            if self.workers > 1:
                self.pool = ThreadPoolExecutor(self.workers, initializer=torch.set_num_threads, initargs=(1,))
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
        if self.threads is not None:
            torch.set_num_threads(self.threads)
            self.threads = None

    def blocks(self, columns: Sequence, w: torch.Tensor) -> Iterator[tuple]:
        """(z, best score, label) of consecutive row blocks of the chunk whose column groups are
        ``columns`` (z = their concatenation as float32 on the device; valid until the next block)."""
        width = sum(c.shape[1] for c in columns)
        bounds = block_bounds(len(columns[0]), self.block_bytes // (4 * width))
        rows = max(b - a for a, b in bounds)
        spare = collections.deque(torch.empty(rows, width, device=self.device)   # one per block in flight
                                  for _ in range(2 * self.workers + 1 if self.pool else 1))
        pending = collections.deque()
        self._count(columns, w)
        for a, b in bounds:
            task = (columns, a, b, w, spare)
            pending.append(self.pool.submit(self._score, *task) if self.pool else self._score(*task))
            while len(pending) > (2 * self.workers if self.pool else 0):
                yield from self._hand_over(pending.popleft(), spare)
        while pending:
            yield from self._hand_over(pending.popleft(), spare)

    def _count(self, columns, w) -> None:
        rows = len(columns[0])
        self.tally.rows += rows
        self.tally.bytes += sum(rows * c.shape[1] * c.dtype.itemsize for c in columns)
        self.tally.flops += 2 * rows * sum(c.shape[1] for c in columns) * len(w)

    def _hand_over(self, job, spare) -> Iterator[tuple]:
        z, best, label, buf = job.result() if self.pool else job
        yield z, best, label
        if buf is not None:
            spare.append(buf)

    def _score(self, columns, a: int, b: int, w, spare) -> tuple:
        buf = None
        if len(columns) == 1 and isinstance(columns[0], torch.Tensor) and columns[0].dtype == torch.float32 \
                and columns[0].device == self.device:
            z = columns[0][a:b]                                  # already float32 where we compute
        else:
            buf = spare.popleft()
            z, at = buf[:b - a], 0
            for c in columns:                                    # float16 -> float32 (exact) into the buffer
                z[:, at:at + c.shape[1]].copy_(as_tensor(c[a:b]))
                at += c.shape[1]
        best, label = torch.mm(z, w.T).max(1)
        return z, best, label, buf
