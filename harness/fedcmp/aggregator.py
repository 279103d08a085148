"""Fed-CMP — "A Step Toward Federated Pretraining of Multimodal Large Language Models", Sec. 4
(canonical space construction, reliability-weighted fusion, orthogonality-preserved momentum).

Server rule per weight matrix (bias appended as a column when ``bias_as_column``), with operand
X_k = theta_k (``operand=weights``) or Delta_k (``operand=updates``) and weights omega from RWF:
  CSC   X_k = U Sigma V_k^T on the shared basis of M = [X_1 ... X_K] (``svd=gram|full``, ``tol``, ``rank``)
  fuse  V = sum_k omega_k V_k (``coef_merge=mean``) or TIES on the V_k with omega (``ties``, ``ties_density``)
  OPM   (round >= 2) align U to U_prev per group of near-degenerate singular values (Procrustes; a
        singleton is the paper's sign flip), beta from the basis shift (``opm_delta=basis``) or from the
        fusion's relative change against the last output (``change``), U = polar(beta U_prev + (1-beta) U),
        S = beta Sigma_prev + (1-beta) S (block-diagonal), diagonalized per group (:mod:`harness.fedcmp.opm`)
  X = U Sigma V^T;  theta <- X (weights) or theta + X (updates).
Tensors that are not matrices are fused as sum_k omega_k X_k. With ``csc=False`` every block is fused
as merge({X_k}, omega) and OPM becomes an adaptive EMA of the fused operand (server momentum for
updates). Full rank, ``coef_merge=mean``, ``rwf=none`` and ``opm=False`` give exactly FedAvg.

Defaults (SPEC section 2): csc=True, rwf=full, lam=1.0, opm=True, operand=weights, bias_as_column=True,
svd=gram, tol=1e-6, rank=None, coef_merge=mean, ties_density=0.2, opm_align=subspace, opm_gap=0.1,
opm_delta=basis, beta_min=0.5, beta_max=0.9, gamma=2.0, align_metric=cosine (the client's e_k; carried here so one config drives both sides).
Server state: the round counter, per matrix the spectrum and the basis (or, after OPM's fast path,
A = U diag(sigma) U^T) and, without CSC, the previous fused operand per block; with opm_delta=change
also the last output per matrix (X/<block>).
"""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional

import torch

from harness.methods.aggregator import Aggregator
from harness.core.errors import ConfigError
from harness.fedcmp import csc
from harness.fedcmp.blocks import Block, block_tensor, split_blocks, unblock
from harness.fedcmp.opm import Memory, ema_step, opm_step, relative_change
from harness.fedcmp.rwf import reliability_weights
from harness.methods.merging import ties_merge_streamed, weighted_sum
from harness.methods.streaming import streamed_weighted_sum
from harness.methods.objective import ClientObjective
from harness.methods.space import Range
from harness.core.typecheck import check_range


@dataclasses.dataclass
class FedCMP(Aggregator):
    name = "fedcmp"
    secure_aggregation_reason = ("it needs each client's projector: its SVD of the concatenated operands "
                                 "and RWF's per-client weights cannot be computed from their sum")
    # the momentum's range and RWF's temperature (beta_max's range starts at the beta_min drawn)
    tunable = {"beta_min": Range(0.0, 0.9), "beta_max": Range("beta_min", 0.99), "lam": Range(0.1, 10.0, log=True)}
    csc: bool = True
    rwf: Literal["full", "mag", "qua", "none"] = "full"
    lam: float = 1.0
    opm: bool = True
    operand: Literal["weights", "updates"] = "weights"
    bias_as_column: bool = True
    svd: Literal["gram", "full"] = "gram"
    tol: float = 1e-6
    rank: Optional[int] = None
    coef_merge: Literal["mean", "ties"] = "mean"
    ties_density: float = 0.2
    opm_align: Literal["subspace", "sign"] = "subspace"
    opm_gap: float = 0.1
    opm_delta: Literal["basis", "change"] = "basis"
    beta_min: float = 0.5
    beta_max: float = 0.9
    gamma: float = 2.0
    align_metric: Literal["cosine", "l2"] = "cosine"

    def __post_init__(self):
        super().__post_init__()
        self.memory: dict = {}        # "S/<block>" and "U/<block>" or "A/<block>" (CSC), or "ema/<block>" (no CSC)

    def validate(self):
        check_range("fedcmp.tol", self.tol, lo=0.0, hi=1.0)
        check_range("fedcmp.lam", self.lam, lo=0.0, hi=1e6)
        check_range("fedcmp.gamma", self.gamma, lo=0.0, hi=1e6)
        check_range("fedcmp.ties_density", self.ties_density, lo=0.0, hi=1.0, lo_open=True)
        check_range("fedcmp.opm_gap", self.opm_gap, lo=0.0, hi=1.0)
        check_range("fedcmp.beta_min", self.beta_min, lo=0.0, hi=1.0)
        check_range("fedcmp.beta_max", self.beta_max, lo=self.beta_min, hi=1.0)
        if self.rank is not None:
            check_range("fedcmp.rank", self.rank, lo=1)
        if self.csc and self.svd == "gram" and self.tol < 1e-7:
            raise ConfigError(f"fedcmp.tol={self.tol!r} is below what the Gram path resolves "
                              "(sigma^2 in float64); valid: tol >= 1e-7 with svd=gram, or svd=full")

    def client_objective(self):
        """Plain training; every client reports its alignment error e_k under ``align_metric``."""
        return ClientObjective(self.align_metric)

    def _aggregate(self, global_state, updates):
        omega = reliability_weights(updates, global_state, self.rwf, self.lam)
        self.diagnostics = {"omega": {u.client_id: float(w) for u, w in zip(updates, omega)}}
        out = {}
        for block in split_blocks(global_state, self.bias_as_column):
            def operands(block=block):
                return (self._operand(u.state, global_state, block) for u in updates)
            if self.csc and block.is_matrix:
                mean = self._mean_operand(global_state, updates, block, omega)
                fused = self._fuse_canonical(block, operands, mean, omega, global_state[block.key].shape[0])
            else:
                fused = self._fuse_raw(block, operands, omega)
            if self.operand == "updates":
                fused = block_tensor(global_state, block) + fused
            out.update(unblock(fused, block))
        return out

    def _operand(self, state, global_state, block: Block) -> torch.Tensor:
        x = block_tensor(state, block)
        return x - block_tensor(global_state, block) if self.operand == "updates" else x

    def _merge(self, tensors, omega) -> torch.Tensor:
        """merge({x_k}, omega) over ``tensors()``, a fresh iterator per pass: one x_k in memory at a time
        (TIES takes two passes)."""
        if self.coef_merge == "ties":
            return ties_merge_streamed(tensors, self.ties_density, omega)
        return weighted_sum(tensors(), omega)

    def _mean_operand(self, global_state, updates, block, omega):
        """sum_k omega_k X_k for the block, each of its tensors streamed block by block
        (:func:`harness.methods.streaming.streamed_weighted_sum`): the same bits as weighted_sum over the
        float64 operands, without a float64 copy of each client."""
        keys = [block.key] + ([block.bias_key] if block.bias_key else [])
        base = self.operand == "updates"
        return lambda: block_tensor({key: streamed_weighted_sum([u.state[key] for u in updates], omega,
                                                                 base=global_state[key] if base else None)
                                     for key in keys}, block)

    def _fuse_canonical(self, block, operands, mean, omega, d_out) -> torch.Tensor:
        u, s = csc.canonical_basis(operands, d_out, self.svd, self.rank, self.tol)
        if self.coef_merge == "mean":   # sum_k w_k X_k^T U S^+ without holding the K coefficient sets
            v = csc.coefficients(mean(), u, s)
        else:
            v = self._merge(lambda: (csc.coefficients(x, u, s) for x in operands()), omega)
        fused = csc.reconstruct(u, s, v)
        if not self.opm:
            return fused
        state = Memory(u=u.contiguous(), s=s)       # round 1 keeps this round's basis as is
        if f"S/{block.name}" in self.memory:
            delta = relative_change(fused, self.memory[f"X/{block.name}"]) if self.opm_delta == "change" else None
            res = opm_step(self._memory_of(block), u, s, v, self.beta_min, self.beta_max, self.gamma,
                           self.opm_align, self.opm_gap, delta=delta)
            self._record_momentum(block, res, fused)
            state, fused = res.memory, res.x
        if self.opm_delta == "change":        # the shift is measured against this round's output
            self.memory[f"X/{block.name}"] = fused
        for kind, tensor in (("U", state.u), ("A", state.a), ("S", state.s)):
            self.memory.pop(f"{kind}/{block.name}", None)
            if tensor is not None:
                self.memory[f"{kind}/{block.name}"] = tensor
        return fused

    def _memory_of(self, block) -> Memory:
        return Memory(self.memory[f"S/{block.name}"], self.memory.get(f"U/{block.name}"),
                      self.memory.get(f"A/{block.name}"))

    def _record_momentum(self, block, res, before: torch.Tensor) -> None:
        """Note how far momentum moved this round's fusion ("change": ||X_opm - X|| / ||X||), since
        with operand=weights that is how far OPM moves the projector itself."""
        self.diagnostics[block.name] = {"beta": res.beta, "delta": res.delta, "groups": res.groups,
                                        "change": relative_change(res.x, before)}

    def _fuse_raw(self, block, operands, omega) -> torch.Tensor:
        fused = self._merge(operands, omega)
        if not (self.opm and not self.csc):   # with CSC, OPM acts on the bases of matrices only
            return fused
        prev = self.memory.get(f"ema/{block.name}")
        if prev is not None:
            smoothed, beta, delta = ema_step(prev, fused, self.beta_min, self.beta_max, self.gamma, self.opm_delta)
            self.diagnostics[block.name] = {"beta": beta, "delta": delta, "change": relative_change(smoothed, fused)}
            fused = smoothed
        self.memory[f"ema/{block.name}"] = fused
        return fused

    def _tensors(self):
        return dict(self.memory)

    def _load_tensors(self, tensors):
        self.memory = dict(tensors)
