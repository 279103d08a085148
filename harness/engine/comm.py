"""Communication accounting (the paper's cost argument: only the projector travels).

Per client and round the server records ``comm/bytes_down`` (its round plan: the start projector and any
extras the rule sends with it, e.g. SCAFFOLD's control variate or MOON's previous projector, which this
harness keeps on the server) and ``comm/bytes_up`` (the trained state and any extra uploads). Bytes are
the tensors' size as sent, ``numel x element size``: bf16 at the paper's scale, uncompressed.
"""
from __future__ import annotations

from typing import Dict, Iterable

import torch


def nbytes(states: Iterable[Dict[str, torch.Tensor]]) -> int:
    return sum(t.numel() * t.element_size() for s in states if s for t in s.values())


def plan_bytes(plan) -> int:
    """What one client receives for a round (a ClientPlan)."""
    return nbytes([plan.start, *plan.extras.values()])


def upload_bytes(result) -> int:
    """What one client sends back: a ClientResult's state and extra uploads, or under a wire mode the
    encoded size it recorded (harness.wire); 0 for None: it failed before uploading."""
    if result is None:
        return 0
    if result.wire_bytes is not None:
        return result.wire_bytes
    return nbytes([result.state, *result.uploads.values()])
