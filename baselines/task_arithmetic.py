"""Generalized task arithmetic on client updates, the way mergekit's ``generalized_task_arithmetic`` does
it: one rule, parameterised, that FedAvg+TA, +TIES, +DARE and +DARE-TIES are configurations of.

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
``weights``: ``uniform`` (w_k = 1), ``samples`` (w_k = n_k / sum n_k). Configurations (their files hold
the papers and defaults): fedavg_ta = none/uniform/no consensus, scale 0.3 (a sum of task vectors);
fedavg_ties = magnitude 0.2/uniform/consensus, scale 1; fedavg_dare = random p 0.2 + rescale/samples/no
consensus, scale 1; fedavg_dare_ties = random + rescale/samples/consensus, scale 1.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch

from harness.aggregator import Aggregator, delta, sample_weights
from harness.merging import DisjointMean, WeightedSum, trim_top_magnitude
from harness.streaming import streamed_weighted_sum


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
    """The generic rule; a registered method fixes the ClassVars and declares its hyperparameters."""
    sparsify: ClassVar[str] = "none"         # none | magnitude (uses ``density``) | random (``drop_rate``, ``seed``)
    rescale: ClassVar[bool] = True           # random: survivors scaled by 1/(1-p)
    consensus: ClassVar[bool] = False
    weights: ClassVar[str] = "uniform"       # uniform | samples

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
        scale = getattr(self, "scale", 1.0)
        return {k: global_state[k].to(torch.float64) + scale * merged[k] for k in keys}

    def _streamed(self, global_state, updates, w, keys) -> dict:
        """sum_k w_k Delta~_k block by block (:func:`harness.streaming.streamed_weighted_sum`): each
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
