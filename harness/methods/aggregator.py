"""The method interface: a server rule plus what it asks of the clients (:mod:`harness.methods.objective`).

An aggregator is a pure function of (global state, client updates) plus explicit server state:
``aggregate`` never modifies its inputs, does its arithmetic in float64 and casts the result back
to each parameter's dtype; ``state_dict``/``load_state_dict`` carry the server state (momenta,
round counter, previous bases, per-client state such as MOON's previous projectors or Local's own
models) across a restart so that a resumed federation continues exactly. ``configure`` says what each
client starts from and receives, ``client_objective`` what it optimizes and returns, and
``evaluation_targets`` which projectors are scored (the global one, or each client's). What a method
can be combined with is said here too, not in lists of names elsewhere: ``supports_dp`` (DP-FedAvg's
clip and noise, :mod:`harness.engine.privacy`), ``supports_lora`` (stage 2's adapters), each with the reason
when not, and ``synthetic_uploads`` (what its clients upload besides the projector, for benchmarks that
feed it made-up clients).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Dict, Iterable, Sequence

import torch

from harness.core.errors import NonFiniteUpdate
from harness.methods.objective import ClientObjective, ClientPlan
from harness.core.typecheck import check_fields
from harness.core.types import ClientUpdate, State

F64 = torch.float64


@dataclasses.dataclass
class Aggregator:
    """Base class: subclasses declare hyperparameters as typed dataclass fields."""

    name: ClassVar[str] = ""
    per_client_models: ClassVar[bool] = False   # True: every client keeps its own projector (Local)
    supports_dp: ClassVar[bool] = True          # privacy.clip may privatize its uploads
    no_dp_reason: ClassVar[str] = ""            # why not, where not (the config error says it)
    supports_lora: ClassVar[bool] = True        # model.lora.r > 0 may train adapters beside the projector
    no_lora_reason: ClassVar[str] = ""
    # the hyperparameters worth tuning and their ranges (harness.methods.space; fedma tune gives every method the
    # same number of trials over its own); {} for a method with nothing to tune
    tunable: ClassVar[dict] = {}
    # secure aggregation (harness.wire): True when the rule is a function of the sample-weighted mean
    # update alone, so the server may see only sum_k n_k Delta_k, sum_k n_k and the count; otherwise
    # the reason, one line naming what the rule needs of each client
    supports_secure_aggregation: ClassVar[bool] = False
    secure_aggregation_reason: ClassVar[str] = "its server rule reads each client's upload"

    def __post_init__(self) -> None:
        check_fields(self, self.name)
        self.validate()
        self.round = 0     # number of completed aggregations; part of the server state
        self.diagnostics: dict = {}   # the last round's internals for the records (see Server), not state
        self.num_clients: int | None = None   # the federation's K (set by the server; None: the participants)

    # -- both sides of a round ------------------------------------------------------------------
    def client_objective(self) -> ClientObjective:
        """What every client optimizes and returns (default: plain training)."""
        return ClientObjective()

    def configure(self, round_: int, clients: Iterable[int], global_state: State) -> Dict[int, ClientPlan]:
        """What each client of the round starts from and receives (default: the global projector)."""
        return {k: ClientPlan(global_state) for k in clients}

    def evaluation_targets(self, global_state: State) -> Dict[object, State]:
        """The projectors the round's evaluation scores: {"global": theta}, or one per client."""
        return {"global": global_state}

    def validate(self) -> None:
        """Range checks beyond types; raise ConfigError naming the hyperparameter."""

    @classmethod
    def synthetic_uploads(cls, global_state: State, generator: torch.Generator) -> Dict[str, State]:
        """Made-up extra uploads of one client (ClientUpdate.extras) of plausible size, drawn from
        ``generator``, for benchmarks that time the rule on synthetic clients; {} for a plain method."""
        return {}

    def hparams(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    def aggregate(self, global_state: State, updates: Sequence[ClientUpdate]) -> Dict[str, torch.Tensor]:
        updates = list(updates)
        check_uploads(global_state, updates)
        new_state = self._aggregate(global_state, updates)
        self.round += 1
        return {k: new_state[k].to(global_state[k].dtype).contiguous() for k in global_state}

    def _aggregate(self, global_state: State, updates: list) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    def aggregate_sums(self, global_state: State, update_sum: State, total_samples: float,
                       count: int) -> Dict[str, torch.Tensor]:
        """The round from sums only (secure aggregation): ``update_sum`` = sum_k n_k Delta_k (float64),
        ``total_samples`` = sum_k n_k, ``count`` = how many clients the sum holds. A rule that declares
        ``supports_secure_aggregation`` depends on the uploads only through their weighted mean, so it
        is run on that mean as one upload, theta + sum n_k Delta_k / sum n_k."""
        if not self.supports_secure_aggregation:
            raise ValueError(f"{self.name} cannot run on sums: {self.secure_aggregation_reason}")
        mean = {k: global_state[k].to(F64) + update_sum[k] / total_samples for k in global_state}
        new_state = self._aggregate(global_state, [ClientUpdate(0, mean, 1)])
        self.round += 1
        return {k: new_state[k].to(global_state[k].dtype).contiguous() for k in global_state}

    def state_dict(self) -> dict:
        """Server state as plain values and tensors (tensors under 'tensors', saved as safetensors)."""
        return {"round": self.round, "tensors": {k: v.contiguous().clone() for k, v in self._tensors().items()}}

    def load_state_dict(self, sd: dict) -> None:
        self.round = int(sd["round"])
        self._load_tensors({k: v.clone() for k, v in sd.get("tensors", {}).items()})

    def _tensors(self) -> Dict[str, torch.Tensor]:
        return {}

    def _load_tensors(self, tensors: Dict[str, torch.Tensor]) -> None:
        if tensors:
            raise ValueError(f"{self.name}: has no tensor state, got {sorted(tensors)}")


def check_uploads(global_state: State, updates: Sequence[ClientUpdate]) -> None:
    """Every upload has the global keys and shapes, finite values, and a positive sample count."""
    if not updates:
        raise ValueError("aggregate: no client updates")
    for u in updates:
        if set(u.state) != set(global_state):
            missing = sorted(set(global_state) - set(u.state))
            extra = sorted(set(u.state) - set(global_state))
            raise ValueError(f"client {u.client_id}: tensor names differ from the global state "
                             f"(missing {missing}, unexpected {extra})")
        if u.client_id < 0:
            raise ValueError(f"client {u.client_id}: client_id must be >= 0")
        if u.num_samples <= 0:
            raise ValueError(f"client {u.client_id}: num_samples={u.num_samples} must be > 0")
        for k, t in u.state.items():
            if t.shape != global_state[k].shape:
                raise ValueError(f"client {u.client_id}: tensor {k} has shape {tuple(t.shape)}, "
                                 f"global has {tuple(global_state[k].shape)}")
            if not all_finite(t):
                raise NonFiniteUpdate(f"client {u.client_id}: tensor {k} contains NaN or Inf")


def all_finite(t: torch.Tensor) -> bool:
    """No NaN or Inf in ``t``: its minimum and maximum are finite (a NaN propagates to both, an Inf
    is one of them). One reading pass and no mask the size of ``t``, where isfinite(t).all() writes
    one: 11x faster on 20 paper-sized uploads here."""
    if t.numel() == 0 or not (t.is_floating_point() or t.is_complex()):
        return True
    low, high = torch.aminmax(t if not t.is_complex() else torch.view_as_real(t))
    return bool(torch.isfinite(low) & torch.isfinite(high))


def sample_weights(updates: Sequence[ClientUpdate]) -> torch.Tensor:
    """n_k / sum n_k in float64."""
    n = torch.tensor([u.num_samples for u in updates], dtype=F64)
    return n / n.sum()


def delta(u: ClientUpdate, global_state: State, key: str) -> torch.Tensor:
    """Delta_k = theta_k - theta for one tensor, in float64."""
    return u.state[key].to(F64) - global_state[key].to(F64)


def flatten_clients(prefix: str, per_client: Dict[int, State]) -> Dict[str, torch.Tensor]:
    """{k: {name: t}} -> {"prefix/k/name": t}: per-client server state as checkpointable tensors."""
    return {f"{prefix}/{k}/{n}": t for k, state in per_client.items() for n, t in state.items()}


def unflatten_clients(prefix: str, tensors: Dict[str, torch.Tensor]) -> Dict[int, Dict[str, torch.Tensor]]:
    out: Dict[int, Dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        if key.startswith(prefix + "/"):
            _, client, name = key.split("/", 2)
            out.setdefault(int(client), {})[name] = t
    return out
