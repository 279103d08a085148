"""Registry of server rules: name -> "module:Class", a pretty name as in the paper's tables, and the
method's reference. Modules are imported on first use, so listing methods imports nothing heavy.
Besides these names, ``flwr:<ClassName>`` is any of Flower's strategies (the extra ``flower``,
:mod:`harness.flower.theirs`), printed "<ClassName> (Flower)" in the tables: :data:`PREFIXES` maps the
prefix to the builder, imported on first use like the methods' targets (so this module, which the Flower
package itself uses, imports nothing of it).
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Dict, NamedTuple

from harness.core.errors import ConfigError
from harness.core.typecheck import bad_choice, unknown_key


class MethodEntry(NamedTuple):
    target: str       # "module:Class"
    pretty: str       # as in the paper's tables
    reference: str


METHODS: Dict[str, MethodEntry] = {
    "local": MethodEntry("baselines.local:Local", "Local",
                         "each client trains alone (no communication)"),
    "fedavg": MethodEntry("baselines.fedavg:FedAvg", "FedAvg",
                          "McMahan et al., AISTATS 2017, arXiv:1602.05629"),
    "fedadam": MethodEntry("baselines.fedadam:FedAdam", "FedAdam",
                           "Reddi et al., ICLR 2021, arXiv:2003.00295"),
    "fedprox": MethodEntry("baselines.fedprox:FedProx", "FedProx",
                           "Li et al., MLSys 2020, arXiv:1812.06127"),
    "moon": MethodEntry("baselines.moon:Moon", "MOON",
                        "Li, He, Song, CVPR 2021, arXiv:2103.16257"),
    "fedavg_ta": MethodEntry("baselines.task_arithmetic:FedAvgTA", "FedAvg+TA",
                             "Ilharco et al., ICLR 2023, arXiv:2212.04089"),
    "fedavg_ties": MethodEntry("baselines.task_arithmetic:FedAvgTies", "FedAvg+TIES",
                               "Yadav et al., NeurIPS 2023, arXiv:2306.01708"),
    "fedavg_dare": MethodEntry("baselines.task_arithmetic:FedAvgDare", "FedAvg+DARE",
                               "Yu et al., ICML 2024, arXiv:2311.03099"),
    "fedavg_dare_ties": MethodEntry("baselines.task_arithmetic:FedAvgDareTies", "FedAvg+DARE-TIES",
                                    "Yu et al., ICML 2024 + Yadav et al., NeurIPS 2023 (mergekit dare_ties)"),
    "fedavgm": MethodEntry("baselines.fedavgm:FedAvgM", "FedAvgM",
                           "Hsu, Qi, Brown, 2019, arXiv:1909.06335"),
    "scaffold": MethodEntry("baselines.scaffold:Scaffold", "SCAFFOLD",
                            "Karimireddy et al., ICML 2020, arXiv:1910.06378"),
    "fedcmp": MethodEntry("harness.fedcmp.aggregator:FedCMP", "Fed-CMP",
                          "A Step Toward Federated Pretraining of MLLMs (Fed-CMP), Sec. 4"),
}


def method_names() -> list:
    """Methods in the paper's table order."""
    return list(METHODS)


FLOWER_PREFIX = "flwr:"
PREFIXES = {FLOWER_PREFIX: "harness.flower.theirs:flower_aggregator"}   # prefix -> "module:builder(name, hparams)"
FLOWER = MethodEntry("harness.flower.theirs:FlowerStrategy", "{} (Flower)",
                     "Flower's flwr.serverapp.strategy.{} (Beutel et al., arXiv:2007.14390), via harness.flower")


def is_flower_method(name: str) -> bool:
    return isinstance(name, str) and name.startswith(FLOWER_PREFIX)


def resolve(target: str):
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def is_method(name: str) -> bool:
    """One of ours, or ``flwr:<ClassName>`` (the class itself is checked when it is built)."""
    return name in METHODS or (is_flower_method(name) and len(name) > len("flwr:"))


def method_entry(name: str) -> MethodEntry:
    if is_flower_method(name):
        cls = name.split(":", 1)[1]
        return MethodEntry(FLOWER.target, FLOWER.pretty.format(cls), FLOWER.reference.format(cls))
    if name not in METHODS:
        raise bad_choice("method", name, METHODS)
    return METHODS[name]


def method_class(name: str) -> type:
    return resolve(method_entry(name).target)


def hyperparameter_names(name: str) -> list:
    return [f.name for f in dataclasses.fields(method_class(name)) if f.init]


def build_aggregator(name: str, **hparams):
    """The aggregator ``name`` with ``hparams`` (SPEC section 2 names; for ``flwr:<Class>`` the class's
    keyword arguments); ValueError on anything unknown."""
    if is_flower_method(name):
        return resolve(PREFIXES[FLOWER_PREFIX])(name, hparams)
    cls = method_class(name)
    valid = hyperparameter_names(name)
    for key in hparams:
        if key not in valid:
            raise unknown_key(f"{name}.{key}", valid) if valid else ConfigError(
                f"{name} takes no hyperparameters, got '{key}'")
    return cls(**hparams)
