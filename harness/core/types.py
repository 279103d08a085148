"""Plain data types exchanged between clients and the server."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Union

if TYPE_CHECKING:  # keep `import harness` (and `fedma --help`) free of torch
    import torch

State = Mapping[str, "torch.Tensor"]


@dataclass(frozen=True)
class ClientUpdate:
    """What one client uploads after its local round.

    ``state`` is the client's trained projector theta_k (not the difference), ``num_samples`` the
    number n_k of samples it trained on this round, ``align_error`` Fed-CMP's e_k (None for methods
    that do not use it), ``extras`` what the method's client objective returns besides the projector
    (SCAFFOLD's control-variate update), ``loss`` its mean training loss this round (None where not
    reported; Flower's QFedAvg weighs clients by it, :mod:`harness.flower`).
    """

    client_id: int
    state: State
    num_samples: int
    align_error: Optional[float] = None
    extras: Dict[str, State] = field(default_factory=dict)
    loss: Optional[float] = None


@dataclass
class ClientResult:
    """What one client reports after its local round (Flower's FitRes): the upload the server rule
    aggregates (:meth:`update`) and what the records say about the round. Never modified after it is made."""

    client_id: int
    state: State                       # theta_k, the trained projector
    num_samples: int                   # n_k
    align_error: float                 # Fed-CMP's e_k (reported by every method)
    loss: float                        # mean training loss this round
    seconds: float                     # wall seconds of the local round (x the availability speed factor)
    steps: int = 0                     # micro-batches consumed on this rank
    keys: List[str] = field(default_factory=list)             # the samples it read (federation.log_samples)
    uploads: Dict[str, State] = field(default_factory=dict)   # the client objective's extra uploads
    skipped: Dict[str, int] = field(default_factory=dict)     # bad records skipped, by reason
    # under a wire mode (harness.wire) the client sends these instead of ``state`` (then None): a compressed
    # update or a masked vector, their size, and its persistent wire state (topk's residual, kept for it)
    payload: Optional[Dict[str, object]] = None
    masked: Optional[object] = None
    wire_bytes: Optional[int] = None
    client_state: Dict[str, "torch.Tensor"] = field(default_factory=dict)

    def update(self) -> ClientUpdate:
        return ClientUpdate(self.client_id, self.state, self.num_samples, self.align_error, self.uploads, self.loss)


@dataclass(frozen=True)
class FailedClient:
    """A client the round goes on without (Flower's failures): ``error`` says why; ``down`` marks an outage
    (nothing was sent either way); ``result`` is what it did send before being dropped (late, no samples,
    non-finite values), None when it failed before uploading."""

    client_id: int
    error: str
    down: bool = False
    result: Optional[ClientResult] = None

    @property
    def skipped(self) -> Dict[str, int]:
        return self.result.skipped if self.result is not None else {}


ClientReport = Union[ClientResult, FailedClient]
