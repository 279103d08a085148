"""Type checking and coercion of configuration values against dataclass annotations.

Shared by the job config and the aggregators' hyperparameters so that both give the same
one-line errors: the full dotted key, the bad value, and what is valid.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Iterable, Literal, Union

from harness.core.errors import ConfigError


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest valid choice, or '' when none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def bad_choice(key: str, value: Any, choices: Iterable[Any]) -> ConfigError:
    choices = list(choices)
    listed = ", ".join(repr(c) if not isinstance(c, str) else c for c in choices)
    return ConfigError(f"{key}={value!r} is not valid{did_you_mean(value, choices)}; valid: {listed}")


def unknown_key(key: str, valid: Iterable[str]) -> ConfigError:
    valid = sorted(valid)
    return ConfigError(f"{key}: unknown key{did_you_mean(key.rsplit('.', 1)[-1], valid)}; "
                       f"valid here: {', '.join(valid)}")


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if _is_union(tp):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Return ``value`` checked against annotation ``tp`` (ints widen to float), else raise."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise bad_choice(key, value, typing.get_args(tp))
        return value
    if _is_union(tp):
        for arm in typing.get_args(tp):
            try:
                return coerce(key, value, arm)
            except ConfigError:
                continue
        raise ConfigError(f"{key}={value!r} must be {_type_name(tp)}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={value!r} must be a list")
        (item,) = typing.get_args(tp)[:1] or (Any,)
        return [coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}={value!r} must be a mapping")
        return dict(value)
    return _coerce_scalar(key, value, tp)


def _coerce_scalar(key: str, value: Any, tp: Any) -> Any:
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):   # YAML 1.1 reads "2e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"unsupported annotation {tp!r} for {key}")
    raise ConfigError(f"{key}={value!r} must be {_type_name(tp)}")


def check_fields(obj: Any, prefix: str) -> None:
    """Coerce every init field of dataclass instance ``obj`` in place (``prefix`` names it)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if f.init and not dataclasses.is_dataclass(hints[f.name]):
            key = f"{prefix}.{f.name}" if prefix else f.name
            object.__setattr__(obj, f.name, coerce(key, getattr(obj, f.name), hints[f.name]))


def check_range(key: str, value: float, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> None:
    """Raise ConfigError unless lo <(=) value <(=) hi (NaN is never in range)."""
    if value != value:
        raise ConfigError(f"{key}={value!r} is not a number")
    too_low = lo is not None and (value <= lo if lo_open else value < lo)
    too_high = hi is not None and (value >= hi if hi_open else value > hi)
    if too_low or too_high:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else f"{lo:g}"
        hi_s = "inf" if hi is None else f"{hi:g}"
        raise ConfigError(f"{key}={value!r} is out of range; valid: {left}{lo_s}, {hi_s}{right}")
