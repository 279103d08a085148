"""Where stage 2 starts: ``init.projector`` names a stage-1 run (its global projector: ``RUN/final`` or its
latest checkpoint), a round checkpoint or a ``.safetensors`` file; ``random`` (or None) keeps the seeded
random projector (the paper's reference row). Read and checked before any model is built."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import torch

from harness.core.rundir import load_projector
from harness.core.errors import ConfigError
from harness.model.build import PROJECTOR_KEYS


def read_init(spec: Optional[str]) -> Optional[Dict[str, torch.Tensor]]:
    """The projector tensors ``init.projector`` names (the LoRA tensors of a stage-2 run are not taken)."""
    if spec in (None, "random"):
        return None
    try:
        state = load_projector(Path(spec))
    except ConfigError as e:
        raise ConfigError(f"init.projector={spec!r}: {e}") from None
    missing = [k for k in PROJECTOR_KEYS if k not in state]
    if missing:
        raise ConfigError(f"init.projector={spec!r} lacks {', '.join(missing)} (a projector has {', '.join(PROJECTOR_KEYS)})")
    return {k: state[k] for k in PROJECTOR_KEYS}


def start_state(init: Dict[str, torch.Tensor], loaded: Optional[Dict[str, torch.Tensor]], spec, preset: str):
    """The federation's theta_0: the seeded state with its projector replaced by the loaded one."""
    if loaded is None:
        return init
    for k, v in loaded.items():
        if tuple(v.shape) != tuple(init[k].shape):
            raise ConfigError(f"init.projector={spec!r}: {k} has shape {tuple(v.shape)}, model.preset={preset} "
                              f"needs {tuple(init[k].shape)} (stage 2 uses the stage-1 run's preset)")
    return {**init, **{k: v.to(init[k].dtype) for k, v in loaded.items()}}
