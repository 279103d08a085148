"""FedAvg + TIES — Yadav et al., "TIES-Merging: Resolving Interference When Merging Models",
NeurIPS 2023 (arXiv:2306.01708), applied to the client updates Delta_k.

Server rule, per tensor (:mod:`baselines.task_arithmetic`: magnitude sparsification, sign consensus):
  1. trim: keep the top ``density`` (0.2) fraction of each client's Delta_k by magnitude, zero the rest;
  2. elect: s = sign(sum_k trimmed_k) (total mass);
  3. disjoint mean: per coordinate, the mean of the trimmed values whose sign equals s (zeros excluded);
  theta <- theta + ``scale`` (1.0) * merged.
Unweighted across clients, as in the paper. No server state. Client objective: plain.
"""
from __future__ import annotations

import dataclasses

from baselines.task_arithmetic import TaskArithmetic
from harness.space import Range
from harness.typecheck import check_range


@dataclasses.dataclass
class FedAvgTies(TaskArithmetic):
    name = "fedavg_ties"
    secure_aggregation_reason = ("TIES trims each client's update and elects signs per entry across "
                                 "clients: neither can be computed from their sum")
    sparsify = "magnitude"
    consensus = True
    tunable = {"density": Range(0.05, 0.9), "scale": Range(0.25, 4.0, log=True)}
    density: float = 0.2
    scale: float = 1.0

    def validate(self):
        check_range("fedavg_ties.density", self.density, lo=0.0, hi=1.0, lo_open=True)
        check_range("fedavg_ties.scale", self.scale, lo=-1e6, hi=1e6)
