"""Generalized task arithmetic on client updates, the way mergekit's ``generalized_task_arithmetic`` does
it: one rule, parameterised, and four registered methods that fix its settings and expose their own
hyperparameters, as mergekit registers its merge methods (:data:`VARIANTS`, the classes below it).

Per tensor, with the client updates Delta_k = theta_k - theta as task vectors and weights w_k:
  1. sparsify: ``none``; ``magnitude`` (keep the top ``density`` fraction of |Delta_k|, TIES' trim); or
     ``random`` (drop each entry with probability p = ``drop_rate``, DARE; masks seeded by (seed, round,
     client), tensors in sorted-name order), the survivors rescaled by 1/(1-p) when ``rescale``;
  2. combine: without sign consensus sum_k w_k Delta~_k; with it (TIES' elect + disjoint merge) the sign
     s = sign(sum_k w_k Delta~_k) and per entry the w-weighted mean of the Delta~_k that agree with s;
  3. theta <- theta + scale * combined.
The clients are streamed: without sign consensus block by block (each client read once, float64 only in
a cache-sized scratch, DARE's masks drawn block by block); with it one client's sparsified updates in
memory at a time, in two passes (the first electing s, the second merging; DARE's masks regenerated
from their seeds). Either way the server's memory does not grow with K.
``weights``: ``uniform`` (w_k = 1), ``samples`` (w_k = n_k / sum n_k). No server state but the round
counter; client objective: plain.
"""
from __future__ import annotations

import dataclasses
import typing

import numpy as np
import torch

from harness.methods.aggregator import Aggregator, delta, sample_weights
from harness.methods.merging import DisjointMean, WeightedSum, trim_top_magnitude
from harness.methods.space import Range
from harness.methods.streaming import streamed_weighted_sum
from harness.core.typecheck import check_range

# the ranges of the hyperparameters a registered variant may expose (checked in its field order)
LIMITS = {"density": dict(lo=0.0, hi=1.0, lo_open=True), "drop_rate": dict(lo=0.0, hi=1.0, hi_open=True),
          "seed": dict(lo=0), "scale": dict(lo=-1e6, hi=1e6)}


def dare_generator(seed: int, round_: int, client_id: int) -> torch.Generator:
    """A CPU generator whose stream depends only on (seed, round, client)."""
    entropy = np.random.SeedSequence([seed, round_, client_id]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(entropy[0]) << 32 | int(entropy[1]))


def dare_drop(x: torch.Tensor, p: float, gen: torch.Generator, rescale: bool = True) -> torch.Tensor:
    """Zero each entry with probability p and scale the rest by 1/(1-p) (``rescale``)."""
    keep = torch.rand(x.shape, generator=gen, dtype=torch.float64) >= p
    return torch.where(keep, x / (1.0 - p) if rescale else x, torch.zeros_like(x))


@dataclasses.dataclass
class TaskArithmetic(Aggregator):
    """The generic rule, every setting a field; a registered variant (:func:`variant`) keeps some as its
    hyperparameters (init fields, in this order) and fixes the rest (``init=False``)."""
    density: float = 1.0                     # magnitude: the fraction of |Delta_k| kept
    drop_rate: float = 0.0                   # random: p
    seed: int = 0                            # random: seeds the masks with (round, client)
    scale: float = 1.0                       # lambda of theta + lambda * combined
    sparsify: str = "none"                   # none | magnitude | random
    rescale: bool = True                     # random: survivors scaled by 1/(1-p)
    consensus: bool = False                  # TIES' sign election and disjoint mean
    weights: str = "uniform"                 # uniform | samples

    def validate(self):
        for f in dataclasses.fields(self):
            if f.init and f.name in LIMITS:
                check_range(f"{self.name}.{f.name}", getattr(self, f.name), **LIMITS[f.name])

    def _aggregate(self, global_state, updates):
        keys = sorted(global_state)
        w = sample_weights(updates) if self.weights == "samples" else [1.0] * len(updates)
        if not self.consensus and self.sparsify != "magnitude":
            merged = self._streamed(global_state, updates, w, keys)
        else:
            merged = self._accumulate(global_state, updates, w, {k: WeightedSum() for k in keys})
        if self.consensus:
            signs = {k: torch.sign(m) for k, m in merged.items()}
            merged = self._accumulate(global_state, updates, w, {k: DisjointMean(signs[k]) for k in keys})
        return {k: global_state[k].to(torch.float64) + self.scale * merged[k] for k in keys}

    def _streamed(self, global_state, updates, w, keys) -> dict:
        """sum_k w_k Delta~_k block by block (:func:`harness.methods.streaming.streamed_weighted_sum`): each
        client read once, its drop mask drawn block by block from its own generator (tensors in
        sorted-name order, so the same draws as a whole-tensor ``dare_drop``); bit-identical to
        :meth:`_accumulate` with :meth:`_sparsify`."""
        prepare = None
        if self.sparsify == "random":
            gens = [dare_generator(self.seed, self.round, u.client_id) for u in updates]

            def prepare(k, block):
                drop = torch.rand(block.shape, generator=gens[k], dtype=torch.float64) < self.drop_rate
                if self.rescale:
                    block.div_(1.0 - self.drop_rate)
                block.masked_fill_(drop, 0.0)
        return {key: streamed_weighted_sum([u.state[key] for u in updates], w, base=global_state[key],
                                           prepare=prepare) for key in keys}

    def _accumulate(self, global_state, updates, w, accumulators: dict) -> dict:
        """One pass over the clients: each client's sparsified updates go into the accumulators."""
        for u, wk in zip(updates, w):
            sparse = self._sparsify(u, global_state, sorted(accumulators))
            for k, acc in accumulators.items():
                acc.add(sparse[k], wk)
        return {k: acc.value() for k, acc in accumulators.items()}

    def _sparsify(self, u, global_state, keys) -> dict:
        if self.sparsify == "random":
            gen = dare_generator(self.seed, self.round, u.client_id)
            return {k: dare_drop(delta(u, global_state, k), self.drop_rate, gen, self.rescale) for k in keys}
        if self.sparsify == "magnitude":
            return {k: trim_top_magnitude(delta(u, global_state, k), self.density) for k in keys}
        return {k: delta(u, global_state, k) for k in keys}


@dataclasses.dataclass(frozen=True)
class Variant:
    """A registered configuration of the rule: its fixed settings and its hyperparameters' defaults."""
    name: str
    doc: str
    fixed: dict                  # settings it fixes (the rest of the rule's settings keep their defaults)
    hyperparameters: dict        # name -> default (exposed in TaskArithmetic's field order)
    tunable: dict
    secure_aggregation_reason: str    # why the server needs each client's update (docs/wire.md)


def variant(cls_name: str, v: Variant) -> type:
    """The method class of ``v``: TaskArithmetic with its hyperparameters as the only init fields."""
    hints = typing.get_type_hints(TaskArithmetic)
    fields = [(n, hints[n], dataclasses.field(default=d)) for n, d in v.hyperparameters.items()]
    fields += [(f.name, hints[f.name], dataclasses.field(default=v.fixed.get(f.name, f.default), init=False))
               for f in dataclasses.fields(TaskArithmetic) if f.init and f.name not in v.hyperparameters]
    return dataclasses.make_dataclass(cls_name, fields, bases=(TaskArithmetic,), namespace={
        "name": v.name, "tunable": v.tunable, "__doc__": v.doc,
        "secure_aggregation_reason": v.secure_aggregation_reason, "__module__": __name__})


VARIANTS = {
    "fedavg_ta": Variant(
        "fedavg_ta", """FedAvg + Task Arithmetic — Ilharco et al., "Editing Models with Task Arithmetic", ICLR 2023
        (arXiv:2212.04089), applied to client updates as task vectors: theta <- theta + lambda * sum_k Delta_k
        with lambda = ``scale`` = 0.3 (SPEC section 2; task arithmetic's usual range 0.3-0.5); no
        sparsification, uniform weights, no sign consensus.""",
        fixed={"sparsify": "none", "consensus": False, "weights": "uniform"}, hyperparameters={"scale": 0.3},
        tunable={"scale": Range(0.05, 1.0, log=True)},
        secure_aggregation_reason=("it adds the unweighted sum of the updates, while the masked upload here "
                                   "carries n_k Delta_k (an unweighted masked sum would serve it; not built)")),
    "fedavg_ties": Variant(
        "fedavg_ties", """FedAvg + TIES — Yadav et al., "TIES-Merging: Resolving Interference When Merging Models",
        NeurIPS 2023 (arXiv:2306.01708), on the client updates Delta_k, per tensor:
        1. trim: keep the top ``density`` (0.2) fraction of each client's Delta_k by magnitude, zero the rest;
        2. elect: s = sign(sum_k trimmed_k) (total mass);
        3. disjoint mean: per coordinate, the mean of the trimmed values whose sign equals s (zeros excluded);
        theta <- theta + ``scale`` (1.0) * merged. Unweighted across clients, as in the paper.""",
        fixed={"sparsify": "magnitude", "consensus": True, "weights": "uniform"},
        hyperparameters={"density": 0.2, "scale": 1.0},
        tunable={"density": Range(0.05, 0.9), "scale": Range(0.25, 4.0, log=True)},
        secure_aggregation_reason=("TIES trims each client's update and elects signs per entry across "
                                   "clients: neither can be computed from their sum")),
    "fedavg_dare": Variant(
        "fedavg_dare", """FedAvg + DARE — Yu et al., "Language Models are Super Mario: Absorbing Abilities from
        Homologous Models as a Free Lunch", ICML 2024 (arXiv:2311.03099), on the client updates Delta_k: drop
        each coordinate independently with probability p = ``drop_rate`` (0.2) and rescale the survivors by
        1/(1-p) (so E[Delta~_k] = Delta_k), then theta <- theta + sum_k n_k Delta~_k / sum_k n_k. Masks are
        reproducible: client k's generator in round t is seeded from (``seed``, t, k), and the tensors draw
        from it in sorted-name order.""",
        fixed={"scale": 1.0, "sparsify": "random", "rescale": True, "consensus": False, "weights": "samples"},
        hyperparameters={"drop_rate": 0.2, "seed": 0}, tunable={"drop_rate": Range(0.05, 0.9)},
        secure_aggregation_reason=("its drop masks are drawn per client on the server, on each "
                                   "client's update (moved to the clients it would be a sum; not built)")),
    "fedavg_dare_ties": Variant(
        "fedavg_dare_ties", """FedAvg + DARE-TIES — DARE's random drop and rescale (Yu et al., ICML 2024,
        arXiv:2311.03099) followed by TIES' sign election and disjoint mean (Yadav et al., NeurIPS 2023,
        arXiv:2306.01708), as mergekit's ``dare_ties``, on the client updates with sample weights. Defaults
        as FedAvg+DARE (``drop_rate`` 0.2, ``seed`` 0), ``scale`` 1.0.""",
        fixed={"sparsify": "random", "rescale": True, "consensus": True, "weights": "samples"},
        hyperparameters={"drop_rate": 0.2, "seed": 0, "scale": 1.0},
        tunable={"drop_rate": Range(0.05, 0.9), "scale": Range(0.25, 4.0, log=True)},
        secure_aggregation_reason=("TIES trims each client's update and elects signs per entry across "
                                   "clients: neither can be computed from their sum")),
}
FedAvgTA = variant("FedAvgTA", VARIANTS["fedavg_ta"])
FedAvgTies = variant("FedAvgTies", VARIANTS["fedavg_ties"])
FedAvgDare = variant("FedAvgDare", VARIANTS["fedavg_dare"])
FedAvgDareTies = variant("FedAvgDareTies", VARIANTS["fedavg_dare_ties"])
