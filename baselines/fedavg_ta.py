"""FedAvg + Task Arithmetic — Ilharco et al., "Editing Models with Task Arithmetic", ICLR 2023
(arXiv:2212.04089), applied to client updates as task vectors.

Server rule: theta <- theta + lambda * sum_k Delta_k with lambda = ``scale`` = 0.3 (SPEC section 2;
task arithmetic's usual range 0.3-0.5): :mod:`baselines.task_arithmetic` with no sparsification, uniform
weights, no sign consensus. No server state. Client objective: plain.
"""
from __future__ import annotations

import dataclasses

from baselines.task_arithmetic import TaskArithmetic
from harness.space import Range
from harness.typecheck import check_range


@dataclasses.dataclass
class FedAvgTA(TaskArithmetic):
    name = "fedavg_ta"
    secure_aggregation_reason = ("it adds the unweighted sum of the updates, while the masked upload here "
                                 "carries n_k Delta_k (an unweighted masked sum would serve it; not built)")
    tunable = {"scale": Range(0.05, 1.0, log=True)}
    scale: float = 0.3

    def validate(self):
        check_range("fedavg_ta.scale", self.scale, lo=-1e6, hi=1e6)
