"""Fed-MA harness: federated pretraining of multimodal LLMs (Fed-MA benchmark, Fed-CMP and baselines).

Public API (SPEC section 3)::

    from harness import ClientUpdate, build_aggregator
    agg = build_aggregator("fedcmp", lam=1.0)
    new_state = agg.aggregate(global_state, updates)
"""
from harness.registry import build_aggregator, method_names
from harness.types import ClientUpdate

__all__ = ["ClientUpdate", "build_aggregator", "method_names"]
__version__ = "0.1.0"
