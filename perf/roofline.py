"""The machine's limits, measured in the same run as the benchmark that quotes them.

Every benchmark table says how far each row is from what the hardware allows: a STREAM-like copy gives
the memory bandwidth (bytes read + written per second), a large matrix multiply the FLOP/s of the
machine's GEMM in float32 and float64. A row that moves B bytes and does F floating-point operations in
t seconds has the floor ``max(B / bandwidth, F / peak)`` and sits ``t / floor`` times above it; its
fractions of the limits are ``B / t / bandwidth`` and ``F / t / peak``.

Measured with the threads the benchmark itself uses (``torch.get_num_threads()``) on its device, best
of a few repetitions, so the limit is what the same run could reach, not a datasheet number.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import torch


@dataclass(frozen=True)
class Limits:
    bandwidth: float          # bytes per second (copy: read + write)
    gemm_f32: float           # FLOP/s of an n x n x n float32 matmul
    gemm_f64: float           # FLOP/s of the same in float64
    threads: int
    device: str
    gemm_bf16: Optional[float] = None   # measured on a GPU only (its tensor cores); else the float32 figure

    def peak(self, dtype: torch.dtype = torch.float64) -> float:
        if dtype in (torch.float16, torch.bfloat16) and self.gemm_bf16:
            return self.gemm_bf16
        return self.gemm_f32 if dtype in (torch.float32, torch.float16, torch.bfloat16) else self.gemm_f64

    def line(self) -> str:
        bf16 = f", bfloat16 {self.gemm_bf16 / 1e9:.1f} GFLOP/s" if self.gemm_bf16 else ""
        return (f"- limits measured in this run ({self.device}, {self.threads} thread(s)): memory copy "
                f"{self.bandwidth / 1e9:.1f} GB/s, GEMM float32 {self.gemm_f32 / 1e9:.1f} GFLOP/s, "
                f"float64 {self.gemm_f64 / 1e9:.1f} GFLOP/s{bf16}")

    def as_dict(self) -> dict:
        return asdict(self)


def best_seconds(fn: Callable[[], object], repeats: int, device: str) -> float:
    """The fastest of ``repeats`` timed calls (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def copy_bandwidth(nbytes: int, device: str = "cpu", repeats: int = 5) -> float:
    """Bytes per second of ``dst.copy_(src)`` over ``nbytes`` (far beyond the caches), read + write."""
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    return 2 * src.nbytes / best_seconds(lambda: dst.copy_(src), repeats, device)


def gemm_flops(n: int, dtype: torch.dtype, device: str = "cpu", repeats: int = 3) -> float:
    """FLOP/s of an n x n by n x n matmul (2 n^3 operations)."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen, dtype=dtype).to(device)
    b = torch.randn(n, n, generator=gen, dtype=dtype).to(device)
    out = torch.empty(n, n, dtype=dtype, device=device)
    return 2.0 * n ** 3 / best_seconds(lambda: torch.matmul(a, b, out=out), repeats, device)


def measure(device: str = "cpu", quick: bool = False) -> Limits:
    """Bandwidth and GEMM peaks of this machine (``quick``: smaller arrays, a rougher figure)."""
    nbytes = (64 if quick else 1024) << 20
    n = 1024 if quick else (8192 if device.startswith("cuda") else 4096)
    gpu = device.startswith("cuda")
    return Limits(copy_bandwidth(nbytes, device), gemm_flops(n, torch.float32, device),
                  gemm_flops(n, torch.float64, device), torch.get_num_threads(), device,
                  gemm_flops(n, torch.bfloat16, device) if gpu else None)


@dataclass(frozen=True)
class Position:
    """Where one measured row stands against the limits."""
    floor_s: float            # max(bytes / bandwidth, flops / peak)
    times_floor: float        # measured seconds / floor
    bandwidth_frac: float     # bytes / seconds / bandwidth
    flop_frac: float          # flops / seconds / peak

    def cells(self) -> dict:
        return {"floor_s": self.floor_s, "x_floor": self.times_floor,
                "bw_frac": self.bandwidth_frac, "flop_frac": self.flop_frac}


def position(seconds: float, nbytes: float, flops: float, limits: Limits,
             dtype: Optional[torch.dtype] = torch.float64) -> Position:
    """The floor of a row that moves ``nbytes`` and does ``flops`` (in ``dtype``) and how far above it
    ``seconds`` is."""
    peak = limits.peak(dtype)
    floor = max(nbytes / limits.bandwidth, flops / peak)
    if seconds <= 0 or floor <= 0:
        raise ValueError(f"position: seconds={seconds} and the floor {floor} must be > 0")
    return Position(floor, seconds / floor, nbytes / seconds / limits.bandwidth, flops / seconds / peak)
