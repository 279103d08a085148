"""FedAvg + DARE-TIES — DARE's random drop and rescale (Yu et al., ICML 2024, arXiv:2311.03099) followed
by TIES' sign election and disjoint mean (Yadav et al., NeurIPS 2023, arXiv:2306.01708), as mergekit's
``dare_ties``, on the client updates with sample weights: :mod:`baselines.task_arithmetic` with random
sparsification, rescale and sign consensus. Defaults as FedAvg+DARE (``drop_rate`` 0.2, ``seed`` 0),
``scale`` 1.0. Server state: the round counter. Client objective: plain.
"""
from __future__ import annotations

import dataclasses

from baselines.fedavg_dare import FedAvgDare
from harness.space import Range
from harness.typecheck import check_range


@dataclasses.dataclass
class FedAvgDareTies(FedAvgDare):
    name = "fedavg_dare_ties"
    secure_aggregation_reason = ("TIES trims each client's update and elects signs per entry across "
                                 "clients: neither can be computed from their sum")
    consensus = True
    tunable = {"drop_rate": Range(0.05, 0.9), "scale": Range(0.25, 4.0, log=True)}
    scale: float = 1.0

    def validate(self):
        super().validate()
        check_range("fedavg_dare_ties.scale", self.scale, lo=-1e6, hi=1e6)
