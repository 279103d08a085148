"""Fed-MA harness: federated pretraining of multimodal LLMs (Fed-MA benchmark, Fed-CMP and baselines).

Public API (SPEC section 3)::

    from harness import ClientUpdate, build_aggregator
    agg = build_aggregator("fedcmp", lam=1.0)
    new_state = agg.aggregate(global_state, updates)
"""
from harness.core.registry import build_aggregator, method_names
from harness.core.types import ClientUpdate
from harness.core.version import VERSION as __version__

__all__ = ["ClientUpdate", "__version__", "build_aggregator", "method_names"]
