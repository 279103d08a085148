"""FedAvg + DARE — Yu et al., "Language Models are Super Mario: Absorbing Abilities from Homologous
Models as a Free Lunch", ICML 2024 (arXiv:2311.03099), applied to the client updates Delta_k.

Server rule (:mod:`baselines.task_arithmetic`: random sparsification with rescaling, sample weights, no
sign consensus): drop each coordinate of Delta_k independently with probability p = ``drop_rate`` (0.2)
and rescale the survivors by 1/(1-p) (so E[Delta~_k] = Delta_k), then
theta <- theta + sum_k n_k Delta~_k / sum_k n_k.
Masks are reproducible: client k's generator in round t is seeded from (seed, t, k), and the
tensors draw from it in sorted-name order. Server state: the round counter.
"""
from __future__ import annotations

import dataclasses

from baselines.task_arithmetic import TaskArithmetic
from harness.space import Range
from harness.typecheck import check_range


@dataclasses.dataclass
class FedAvgDare(TaskArithmetic):
    name = "fedavg_dare"
    secure_aggregation_reason = ("its drop masks are drawn per client on the server, on each "
                                 "client's update (moved to the clients it would be a sum; not built)")
    sparsify = "random"
    weights = "samples"
    tunable = {"drop_rate": Range(0.05, 0.9)}
    drop_rate: float = 0.2
    seed: int = 0

    def validate(self):
        check_range(f"{self.name}.drop_rate", self.drop_rate, lo=0.0, hi=1.0, hi_open=True)
        check_range(f"{self.name}.seed", self.seed, lo=0)
