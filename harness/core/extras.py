"""Optional dependencies: which extra of setup.cfg brings which top-level module, and the one line that a
missing one prints (``pip install 'fedma-harness[EXTRA]'``) in place of a traceback.

tests/unit/test_extras.py holds this table to setup.cfg: every third-party module the code imports is a
core requirement or listed here, under an extra that declares its distribution."""
from __future__ import annotations

import importlib

EXTRAS = {
    "torch": "train", "transformers": "train", "tokenizers": "train", "huggingface_hub": "train",
    "deepspeed": "train", "webdataset": "train", "braceexpand": "train", "sklearn": "train", "PIL": "train",
    "lmms_eval": "eval", "datasets": "eval", "filelock": "eval",
    "peft": "instruct",
    "dp_accounting": "privacy",
    "tensorboard": "observe", "wandb": "observe", "mlflow": "observe", "plotly": "observe", "markdown": "observe",
    "selenium": "observe",
    "pandas": "results", "matplotlib": "results", "pyarrow": "results", "scipy": "results",
    "submitit": "launch",
    "optuna": "tune",
    "flwr": "flower",
    "mkdocs": "docs", "material": "docs",
    "pytest": "dev",
}


def missing_extra(e: ModuleNotFoundError) -> str:
    """The one line for a missing optional module; any other missing module is a bug and re-raised."""
    top = (e.name or "").split(".")[0]
    if top not in EXTRAS:
        raise e                   # not an optional dependency: a real bug, keep its traceback
    extra = EXTRAS[top]
    return f"this command needs the '{extra}' extra (no module named {top!r}): pip install 'fedma-harness[{extra}]'"


def require(*modules: str) -> None:
    """Import ``modules`` now, so that a command whose last step needs them fails before its work starts."""
    for name in modules:
        importlib.import_module(name)
