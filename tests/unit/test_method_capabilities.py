"""What a method can be combined with is said by its spec, not by lists of names elsewhere: the config
refuses DP for Local and SCAFFOLD and LoRA for SCAFFOLD with the reasons their classes give; the aggregation
benchmark's made-up clients upload what the method's hook draws; the four task-arithmetic methods are
registered configurations of one rule, each exposing exactly its own hyperparameters (listed by hand)."""
import pytest
import torch

from harness import build_aggregator
from harness.core.config import load_config
from harness.core.errors import ConfigError
from harness.core.registry import hyperparameter_names, method_class

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("overrides, message", [
    (["method=local", "privacy.clip=1.0"], "aggregator.method=local with privacy.clip: it aggregates nothing"),
    (["method=scaffold", "model.lora.r=4"], "aggregator.method=scaffold: SCAFFOLD's control variates are defined"),
])
def test_the_config_refuses_what_the_spec_does_not_support(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", overrides)
    assert load_config("tiny", ["method=fedavg", *overrides[1:]]).aggregator.method == "fedavg"


def test_planting_a_capability_on_a_spec_changes_the_config_check(monkeypatch):
    """The check reads the class: fedavg refused once its spec says so, with its reason."""
    monkeypatch.setattr(method_class("fedavg"), "supports_dp", False)
    monkeypatch.setattr(method_class("fedavg"), "no_dp_reason", "planted reason")
    with pytest.raises(ConfigError, match="planted reason"):
        load_config("tiny", ["method=fedavg", "privacy.clip=1.0"])


def test_synthetic_uploads_come_from_the_method():
    g = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}
    gen = torch.Generator().manual_seed(0)
    extra = method_class("scaffold").synthetic_uploads(g, gen)
    assert list(extra) == ["delta_c"] and {k: tuple(v.shape) for k, v in extra["delta_c"].items()} == {"a": (2, 3), "b": (4,)}
    assert 0 < float(extra["delta_c"]["a"].abs().max()) < 1e-2         # small beside an update
    assert method_class("fedavg").synthetic_uploads(g, gen) == {}


@pytest.mark.parametrize("name, names, fixed", [
    ("fedavg_ta", ["scale"], {"sparsify": "none", "consensus": False, "weights": "uniform"}),
    ("fedavg_ties", ["density", "scale"], {"sparsify": "magnitude", "consensus": True, "weights": "uniform"}),
    ("fedavg_dare", ["drop_rate", "seed"], {"sparsify": "random", "consensus": False, "weights": "samples", "scale": 1.0}),
    ("fedavg_dare_ties", ["drop_rate", "seed", "scale"], {"sparsify": "random", "consensus": True, "weights": "samples"}),
])
def test_task_arithmetic_variants_expose_their_own_hyperparameters(name, names, fixed):
    assert hyperparameter_names(name) == names
    agg = build_aggregator(name)
    assert {k: getattr(agg, k) for k in fixed} == fixed
    assert list(agg.hparams()) == names
    with pytest.raises(ConfigError, match=f"{name}.sparsify"):      # a fixed setting is not a hyperparameter
        build_aggregator(name, sparsify="none")
