"""An arm: a method with the hyperparameters it changes from the method's defaults, named the same way
in a study's plan, its run directories and ``fedma compare``'s rows (``fedcmp[opm=False,rwf=none]``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

import yaml

from harness.core.errors import ConfigError


@dataclass(frozen=True)
class Arm:
    method: str
    hparams: tuple = ()          # sorted (name, value) pairs that differ from the method's defaults

    @property
    def key(self) -> str:
        """``fedcmp[coef_merge=ties,opm=False]``: the arm's name in tables and records."""
        inner = ",".join(f"{k}={v}" for k, v in self.hparams)
        return f"{self.method}[{inner}]" if inner else self.method

    @property
    def slug(self) -> str:
        """The arm's directory name: ``fedcmp__coef_merge-ties__opm-False``."""
        return self.method + "".join(f"__{k}-{v}" for k, v in self.hparams)

    def overrides(self) -> List[str]:
        return [f"method={self.method}", *(f"aggregator.{self.method}.{k}={yaml_value(v)}" for k, v in self.hparams)]


def arm(method: str, **hparams) -> Arm:
    return Arm(method, tuple(sorted(hparams.items())))


def arm_from_slug(slug: str) -> Arm:
    """Inverse of :attr:`Arm.slug`: ``fedcmp__coef_merge-ties__opm-False`` -> Arm."""
    method, *items = slug.split("__")
    return arm(method, **{k: yaml.safe_load(v) for k, _, v in (i.partition("-") for i in items)})


def parse_arm(text: str) -> Arm:
    """``fedcmp[opm=False,rwf=none]`` -> Arm (values read as YAML scalars: False, 0.5, none)."""
    from harness.core.registry import method_entry
    text = text.strip()
    method, _, inner = text.partition("[")
    if inner and not inner.endswith("]"):
        raise ConfigError(f"arm {text!r}: expected METHOD or METHOD[key=value,...]")
    method_entry(method)
    hparams = {}
    for item in filter(None, inner[:-1].split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"arm {text!r}: {item!r} is not key=value")
        hparams[key.strip()] = yaml.safe_load(value)
    return arm(method, **hparams)


def yaml_value(v) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)
