"""What each server rule must at least move and compute, for the aggregation benchmark's roofline columns,
and the phases of Fed-CMP's round timed apart.

Bytes (float32 uploads of n entries, K clients): every rule reads the K uploads once per pass over them
(two for TIES' sign consensus: elect, then merge, which keeps memory independent of K; three for
Fed-CMP: RWF's magnitudes, the Gram, the weighted operand sum), reads the global state where it uses
updates, writes the new state, and reads and writes its server state (FedAvgM's v and FedAdam's m, v in
float64; SCAFFOLD's c and each participant's c_i, plus the uploaded control-variate deltas). Flower's
rows move what the same rule must move.

FLOPs: the element-wise rules do a few per uploaded entry (negligible against a GEMM peak). Fed-CMP per
weight matrix with r = d_out rows and c = d_in + 1 columns: the Gram as a symmetric rank-c update per
client, K r (r + 1) c; the coefficients and the reconstruction, 2 r^2 c each; in round 2 OPM's fast
path, A~ = U S U^T (2 r^3) and A (U V^T) (4 r^2 c); eigh of the Gram counted as its Householder
tridiagonalization and back-transformation, 10/3 r^3, and OPM's eigvalsh as the tridiagonalization,
4/3 r^3 (lower bounds: the tridiagonal solver itself is not counted).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Dict, Optional

F32 = 4
PASSES = {"fedavg_ties": 2, "fedavg_dare_ties": 2, "fedcmp": 3}
USES_GLOBAL = {"fedadam", "fedavgm", "scaffold", "fedavg_ta", "fedavg_ties", "fedavg_dare", "fedavg_dare_ties",
               "fedcmp"}
STATE_BYTES = {"fedavgm": 16, "fedadam": 32}         # per entry: float64 state read and written


def numel(shapes: dict) -> int:
    total = 0
    for shape in shapes.values():
        size = 1
        for d in shape:
            size *= d
        total += size
    return total


def rule_of(method: str) -> str:
    """Our registered method for a row's method ("flower:fedavg" -> "fedavg")."""
    return method.split(":", 1)[-1]


def bytes_moved(method: str, k: int, shapes: dict) -> float:
    rule, n = rule_of(method), numel(shapes)
    if rule == "local":
        return 2.0 * F32 * n                          # returns the global state: read it, write a copy
    total = PASSES.get(rule, 1) * k * n * F32 + n * F32 + STATE_BYTES.get(rule, 0) * n
    if rule in USES_GLOBAL:
        total += n * F32
    if rule == "scaffold":                            # delta_c read; c and every c_i read and written
        total += k * n * F32 + 2 * n * F32 + 2 * k * n * F32
    return float(total)


def matrices(shapes: dict, bias_as_column: bool = True) -> list:
    """(r, c) of every weight matrix as Fed-CMP fuses it (bias appended as a column by default)."""
    out = []
    for name, shape in shapes.items():
        if len(shape) == 2:
            bias = name[: -len("weight")] + "bias"
            extra = 1 if bias_as_column and bias in shapes else 0
            out.append((shape[0], shape[1] + extra))
    return out


def fedcmp_flops(k: int, shapes: dict, opm_round: bool) -> Dict[str, float]:
    """Fed-CMP's FLOPs by phase: gram (symmetric rank-k updates), eigen (eigh, eigvalsh), gemm (the
    products outside the Gram)."""
    phases = {"gram": 0.0, "eigen": 0.0, "gemm": 0.0}
    for r, c in matrices(shapes):
        phases["gram"] += k * r * (r + 1) * c
        phases["eigen"] += 10 / 3 * r ** 3 + (4 / 3 * r ** 3 if opm_round else 0.0)
        phases["gemm"] += 4 * r * r * c + ((2 * r ** 3 + 4 * r * r * c) if opm_round else 0.0)
    return phases


def flops(method: str, hparams: dict, k: int, shapes: dict) -> Optional[float]:
    """Round 2's FLOPs (None where not modelled: Fed-CMP's full SVD, the sign rule's general path)."""
    rule = rule_of(method)
    if rule != "fedcmp":
        return 3.0 * k * numel(shapes)
    if hparams.get("svd", "gram") != "gram" or hparams.get("opm_align", "subspace") != "subspace":
        return None
    return sum(fedcmp_flops(k, shapes, opm_round=hparams.get("opm", True)).values())


class PhaseTimer:
    """Exclusive wall time per phase: a wrapped call's time minus that of the wrapped calls inside it."""

    def __init__(self):
        self.seconds: Dict[str, float] = {}
        self._stack: list = []

    def wrap(self, phase: str, fn):
        def timed(*args, **kwargs):
            with self.phase(phase):
                return fn(*args, **kwargs)
        return timed

    @contextmanager
    def phase(self, name: str):
        self._stack.append(0.0)
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            inner = self._stack.pop()
            self.seconds[name] = self.seconds.get(name, 0.0) + spent - inner
            if self._stack:
                self._stack[-1] += spent


def instrument_fedcmp(timer: PhaseTimer) -> None:
    """Route Fed-CMP's Gram updates, eigensolvers and products through ``timer`` (in this process)."""
    import torch
    from harness.fedcmp import csc, opm
    csc.add_upper_gram = timer.wrap("gram", csc.add_upper_gram)
    torch.linalg.eigh = timer.wrap("eigen", torch.linalg.eigh)
    torch.linalg.eigvalsh = timer.wrap("eigen", torch.linalg.eigvalsh)
    csc.coefficients = timer.wrap("gemm", csc.coefficients)
    csc.reconstruct = timer.wrap("gemm", csc.reconstruct)
    opm._one_group_square = timer.wrap("gemm", opm._one_group_square)
