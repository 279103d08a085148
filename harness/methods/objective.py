"""The client side of a method (Flower's ``configure_fit`` + the client's loss, torchtitan's TrainSpec).

A method's server rule (:class:`harness.methods.aggregator.Aggregator`) owns both sides of a round:
- ``configure(round, clients, global_state)`` -> a :class:`ClientPlan` per client: the projector it starts
  from and the named tensors its objective needs (MOON's previous projector, SCAFFOLD's control
  variates, ...), taken from the server rule's own per-client state;
- ``client_objective()`` -> a :class:`ClientObjective`: the term added to the caption loss at every step,
  the uploads it returns besides the trained projector, and the alignment metric the client reports;
- ``aggregate`` consumes those uploads; ``evaluation_targets`` says which projectors are scored.
The round engine, the client trainer, evaluation and reports ask the method, never its name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List

if TYPE_CHECKING:
    import torch

    from harness.core.types import State


@dataclass
class ClientPlan:
    """What the server sends one client for a round."""
    start: "State"                                        # the projector the client starts from
    extras: Dict[str, "State"] = field(default_factory=dict)


@dataclass
class TermInputs:
    """What a client objective's term sees at one optimizer micro-step."""
    params: Dict[str, "torch.Tensor"]                     # the local projector's parameters (differentiable)
    proj: "torch.Tensor"                                  # projector outputs [batch, visual tokens, dim]
    feats: "torch.Tensor"                                 # the frozen visual tokens it was applied to
    global_state: "State"                                 # the round's global projector, on the device
    extras: Dict[str, "State"]                            # the plan's extras, on the device
    project_with: Callable[["State", "torch.Tensor"], "torch.Tensor"]   # the projector with other weights


class ClientObjective:
    """Plain LLaVA stage-1 training: no extra term, no extra upload."""
    name = "plain"

    def __init__(self, align_metric: str = "cosine"):
        self.align_metric = align_metric      # Fed-CMP's e_k metric, reported by every client

    def term(self, x: TermInputs) -> "torch.Tensor":
        return x.proj.new_zeros(())

    def uploads(self, start: "State", trained: "State", extras: Dict[str, "State"], lrs: List[float]
                ) -> Dict[str, "State"]:
        """Named tensors the client returns besides its projector (``lrs``: this round's step sizes)."""
        return {}
