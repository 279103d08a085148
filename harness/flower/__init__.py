"""Flower both ways (the optional extra ``flower``: ``pip install 'fedma-harness[flower]'``).

- Flower's strategies in our round engine: ``aggregator.method=flwr:<ClassName>`` with the class's keyword
  arguments under ``aggregator.flwr`` (:mod:`harness.flower.theirs`): the server step hands each round's
  uploads to the strategy's ``aggregate_train`` as Flower messages and takes back the new global arrays;
  the strategy object is part of our checkpoint, so ``--resume`` continues it exactly.
- Our rules as Flower strategies: :func:`strategy` (``strategy("fedcmp", lam=1.0)``) returns a
  ``flwr.serverapp.strategy.Strategy`` whose ``aggregate_train`` calls our pure aggregator
  (:mod:`harness.flower.ours`); :mod:`harness.flower.example` runs it in ``flwr.simulation.run_simulation``.

Nothing outside this package imports ``flwr``, and nothing here imports it before it is needed, so the
harness runs without the extra; a ``flwr:`` method without it is one error line (:func:`require_flwr`).
Docs: docs/flower.md.
"""
from __future__ import annotations

from harness.core.errors import ConfigError
from harness.core.registry import FLOWER_PREFIX as PREFIX, is_flower_method  # noqa: F401 (the prefix is the registry's)

INSTALL = "pip install 'fedma-harness[flower]'"


def require_flwr(what: str):
    """The ``flwr`` module, or ConfigError naming the extra that brings it."""
    try:
        import flwr
    except ImportError:
        raise ConfigError(f"{what} needs Flower, which is not installed: {INSTALL}") from None
    return flwr


def strategy(name: str, flower: dict | None = None, **hparams):
    """Our method ``name`` (any name of :data:`harness.core.registry.METHODS`) with ``hparams`` as a Flower
    strategy; ``flower``: FedAvg's sampling and evaluation arguments (``{"fraction_evaluate": 0.0}``)."""
    require_flwr(f"harness.flower.strategy({name!r})")
    from harness.flower.ours import HarnessStrategy
    return HarnessStrategy(name, hparams, **(flower or {}))
