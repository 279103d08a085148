"""Which configurations can run under secure aggregation and compressed uploads: one line each that
names the method (or the setting) and why not, at config time, before any model is built."""
from __future__ import annotations

from harness.core.errors import ConfigError


def sum_refusal(method: str) -> str | None:
    """None when ``method``'s server rule can run on sums only; else why not."""
    from harness.core import registry
    from harness.core.registry import is_flower_method
    if is_flower_method(method):
        return "a Flower strategy receives each client's parameters (Flower's own SecAgg+ is a Flower mod)"
    cls = registry.method_class(method)
    return None if cls.supports_secure_aggregation else cls.secure_aggregation_reason


def check_wire(cfg) -> None:
    """``cfg``: the JobConfig. Secure aggregation needs a rule that runs on sums, at least two
    survivors (a sum of one upload is that upload), and nothing else that reads individual uploads."""
    fed = cfg.federation
    if not fed.secure_aggregation:
        return
    reason = sum_refusal(cfg.aggregator.method)
    if reason:
        raise ConfigError(f"federation.secure_aggregation: {cfg.aggregator.method} cannot run on sums: {reason}")
    others = {"federation.compression": (fed.compression != "none",
                                         "masked uploads are uniform 64-bit field words, nothing to compress; "
                                         "choose one of the two"),
              "privacy.clip": (cfg.privacy.clip is not None,
                               "DP-FedAvg here clips each upload on the server, which sees sums only"),
              "eval.per_client": (cfg.eval.per_client, "it scores each client's upload, which the server never sees"),
              "federation.min_clients": (fed.min_clients < 2,
                                         "must be >= 2 (SecAgg's threshold: a sum of one upload is that upload)")}
    for key, (bad, why) in others.items():
        if bad:
            raise ConfigError(f"federation.secure_aggregation with {key}: {why}")
