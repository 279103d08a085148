"""Server arithmetic streamed block by block over the clients: each client's upload is read once and
converted to float64 only in a cache-sized scratch block, so no full-size float64 copy of a client is
ever made (SPEC section 2: float64 arithmetic, results cast back).

On a CPU the blocks run through numpy's ufuncs, split over ``torch.get_num_threads()`` threads by
contiguous ranges of blocks: a ufunc costs about a microsecond to call, runs on one core and releases
the GIL, where a torch call over a cache-sized block costs several and, on a busy machine, splits over
torch's threads and waits at a barrier for a descheduled partner. The operations are IEEE float64
conversion, subtraction, multiplication and addition either way, so both give the same bits. On a GPU
(or for dtypes numpy lacks, or with a per-block torch transform) the blocks are torch operations.
Measured (this 2-core CPU, loaded, load1 ~8; K=5 x 16.8 M float32 with a shift, best of 4): torch
blocks of 2^15 1.36 s; numpy 2^15 one thread 1.01 s, two threads 0.51 s; whole-tensor torch (the
earlier weighted_sum over deltas) ~3x slower than torch blocks.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

F64 = torch.float64
NUMPY_DTYPES = (torch.float32, torch.float64, torch.float16)
# float64 entries per block: 256 KiB, so a block of the result and the scratch holding one client's
# float64 copy of it stay in a core's L2 while all K clients pass through. Measured with torch blocks
# (2-core CPU, loaded, K=10 x 21 M float32): 0.45 s at 2^15, 0.55 s at 2^14, and at 2^16-2^20 up to 60x
# slower while the machine was busy (each operation split over torch's threads); whole tensors 4.1 s
BLOCK = 1 << 15


def block_size(x: torch.Tensor) -> int:
    """Entries per block: cache-sized on a CPU; on a GPU the whole tensor (one kernel per operation)."""
    return BLOCK if x.device.type == "cpu" else max(1, x.numel())


def block_slices(numel: int, block: int) -> Iterable[slice]:
    return (slice(i, min(i + block, numel)) for i in range(0, numel, block))


def squared_distance(x: torch.Tensor, base: torch.Tensor) -> float:
    """||x - base||^2 in float64, block by block: a cache-sized float64 scratch, no full-size copy."""
    xf, bf = x.reshape(-1), base.reshape(-1)
    block = block_size(xf)
    scratch = torch.empty(min(block, xf.numel()), dtype=F64, device=x.device)
    total = torch.zeros((), dtype=F64, device=x.device)
    for sl in block_slices(xf.numel(), block):
        d = scratch[: sl.stop - sl.start].copy_(xf[sl]).sub_(bf[sl])
        total += torch.dot(d, d)
    return float(total)


def streamed_weighted_sum(tensors: Sequence[torch.Tensor], weights: Sequence[float] | torch.Tensor,
                          base: torch.Tensor | None = None,
                          prepare: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """sum_k w_k f_k(x_k - base) in float64 (``base`` None: no shift), block by block: for each
    cache-sized block of the result every client's entries are converted into one float64 scratch
    block, shifted, transformed in place by ``prepare(k, block)`` (f_k; e.g. DARE's drop, called for
    the blocks in order, so a per-client generator draws as over the whole tensor), scaled and added.
    The clients are read once and nothing of their size is allocated. Per entry the same float64
    operations in the same order as :func:`weighted_sum` over f_k(x_k.to(float64) - base.to(float64)),
    hence the same result bit for bit."""
    if not tensors:
        raise ValueError("weighted_sum: no tensors")
    flat = [t.reshape(-1) for t in tensors]
    base_flat = None if base is None else base.reshape(-1)
    scales = [float(w) for w in weights]
    out = torch.empty(flat[0].numel(), dtype=F64, device=flat[0].device)
    if prepare is None and numpy_ready(*flat, *([] if base_flat is None else [base_flat])):
        _numpy_sum(out.numpy(), [x.numpy() for x in flat], scales,
                   None if base_flat is None else base_flat.numpy())
        return out.reshape(tensors[0].shape)
    block = block_size(out)
    scratch = torch.empty(min(block, out.numel()), dtype=F64, device=out.device)
    for sl in block_slices(out.numel(), block):
        acc, term = out[sl], scratch[: sl.stop - sl.start]
        for k, (x, w) in enumerate(zip(flat, scales)):
            dst = acc if k == 0 else term
            dst.copy_(x[sl])
            if base_flat is not None:
                dst.sub_(base_flat[sl])
            if prepare is not None:
                prepare(k, dst)
            dst.mul_(w)
            if k:
                acc.add_(term)
    return out.reshape(tensors[0].shape)




def map_blocks(fn: Callable[..., None], arrays: Sequence[np.ndarray]) -> None:
    """fn(*blocks) for each cache-sized block of the equally long flat ``arrays`` (fn writes its outputs
    in place), the blocks split into one contiguous range per torch thread."""
    size = arrays[0].size
    threads = max(1, min(torch.get_num_threads(), -(-size // BLOCK)))
    cuts = [size * i // threads // BLOCK * BLOCK for i in range(threads)] + [size]

    def blocks(lo: int, hi: int) -> None:
        for start in range(lo, hi, BLOCK):
            stop = min(start + BLOCK, hi)
            fn(*(a[start:stop] for a in arrays))
    if threads == 1:
        blocks(0, size)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(blocks, cuts[:-1], cuts[1:]))


def numpy_ready(*tensors) -> bool:
    """Whether the numpy path serves these tensors (on the CPU, in a dtype numpy has)."""
    return all(t.device.type == "cpu" and t.dtype in NUMPY_DTYPES for t in tensors)


def _numpy_sum(out: np.ndarray, xs: list, scales: list, base) -> None:
    """out = sum_k w_k (x_k - base) block by block (:func:`map_blocks`)."""
    def block(acc, *parts):
        term = np.empty_like(acc)
        for k, (x, w) in enumerate(zip(parts, scales)):
            dst = acc if k == 0 else term
            np.copyto(dst, x)
            if base is not None:
                np.subtract(dst, parts[-1], out=dst)
            np.multiply(dst, w, out=dst)
            if k:
                np.add(acc, term, out=acc)
    map_blocks(block, [out, *xs] + ([] if base is None else [base]))
