"""Plain data types exchanged between clients and the server."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, Mapping, Optional

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
