"""Loading a job configuration: packaged YAML (``harness/configs/NAME.yaml``) -> a user YAML over it
(``extends: NAME``) -> ``dotted.key=value`` overrides (values parsed as YAML; short forms ``method=
rounds= seed= scenario= clients=``). Every key, type and choice is checked before any heavy work and a bad
one fails with one line naming the full dotted key, the bad value and what is valid. Aggregator
hyperparameters sit under ``aggregator.<method>.<name>`` and are checked against that method's signature.
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, List, Optional

import yaml

from harness.core.config.sections import FLOWER_KEY, AggregatorConfig, JobConfig
from harness.core.errors import ConfigError
from harness.core.typecheck import bad_choice, check_fields, unknown_key

CONFIG_DIR = Path(__file__).parents[2] / "configs"     # harness/configs
SHORT_KEYS = {"method": "aggregator.method", "rounds": "federation.rounds", "seed": "federation.seed",
              "scenario": "data.scenario", "clients": "federation.clients"}


def packaged_configs() -> list:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def read_yaml(name_or_path: str) -> dict:
    path = Path(name_or_path)
    if not path.suffix and (CONFIG_DIR / f"{name_or_path}.yaml").exists():
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise bad_choice("config", name_or_path, packaged_configs() + ["<path to a .yaml file>"])
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: the top level must be a mapping")
    return data


def apply_override(data: dict, item: str) -> None:
    """Set ``a.b.c=value`` in the nested dict (value parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value (e.g. rounds=3)")
    key, raw = item.split("=", 1)
    key = SHORT_KEYS.get(key.strip(), key.strip())
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: '{part}' is a value, not a section")
    node[parts[-1]] = value


def build_section(cls, data: Any, prefix: str):
    """Instantiate dataclass ``cls`` from a dict, checking keys, types and ranges."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'} must be a mapping, got {data!r}")
    if cls is AggregatorConfig:
        data = _split_hparams(data)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in names:
            raise unknown_key(dotted, names)
        sub = hints[key]
        kwargs[key] = build_section(sub, value, dotted) if dataclasses.is_dataclass(sub) else value
    obj = cls(**kwargs)
    check_fields(obj, prefix)
    if hasattr(obj, "validate"):
        obj.validate(prefix)
    return obj


def _split_hparams(data: dict) -> dict:
    """aggregator: {method: m, fedcmp: {lam: 1}} -> {method: m, hparams: {fedcmp: {lam: 1}}}."""
    from harness.core.registry import METHODS
    out = {k: v for k, v in data.items() if k in ("method", "hparams")}
    hparams = dict(out.get("hparams") or {})
    for key, value in data.items():
        if key in ("method", "hparams"):
            continue
        if key not in METHODS and key != FLOWER_KEY:
            raise unknown_key(f"aggregator.{key}", ["method", *METHODS, FLOWER_KEY])
        if not isinstance(value, dict):
            raise ConfigError(f"aggregator.{key} must be a mapping of {key}'s hyperparameters")
        hparams[key] = {**hparams.get(key, {}), **value}
    out["hparams"] = hparams
    return out


def layered(name_or_path: str) -> dict:
    """A config's YAML over the packaged preset it names with ``extends: PRESET`` (packaged or a path),
    merged key by key (a user YAML states only what it changes)."""
    data = read_yaml(name_or_path)
    base = data.pop("extends", None)
    return _merge(layered(base), data) if base else data


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(name_or_path: str = "tiny", overrides: Optional[List[str]] = None) -> JobConfig:
    """Packaged preset -> a user YAML over it (``extends: mini``) -> ``key=value`` overrides."""
    data = layered(name_or_path)
    for item in overrides or []:
        apply_override(data, item)
    return build_section(JobConfig, data, "")


def dump_config(cfg: JobConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
