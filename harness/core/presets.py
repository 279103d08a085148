"""Model presets: what each ``model.preset`` is, in one table, so that no module branches on a preset's
name. A preset names the function that builds its LLaVA bundle (imported on first use, as the method
registry's targets are), the prompt template it was trained with, where its tokenizer comes from, and
optionally a ``completions`` hook: ``(cfg) -> ["key=value", ...]`` filling what a run of it left unset
(``mini``: its cached world and benchmark sets), applied by ``fedma run`` and the demo alike, and
optionally ``validation``: ``() -> directory`` of validation rows it provides (what ``fedma tune`` scores
when no ``--validation`` is given).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Dict, List, Optional

from harness.core.typecheck import bad_choice


@dataclass(frozen=True)
class PresetSpec:
    bundle: str                        # "module:function" returning its LlavaBundle
    template: str                      # prompt template of conversation records: plain | vicuna (LLaVA-1.5)
    tokenizer: str                     # where its tokenizer comes from (what `fedma methods`-style listings say)
    completions: Optional[str] = None  # "module:function" (cfg) -> overrides it fills in; None: nothing
    validation: Optional[str] = None   # "module:function" () -> its validation rows' directory; None: none


PRESETS: Dict[str, PresetSpec] = {
    "tiny": PresetSpec("harness.model.build:tiny_bundle", "plain", "a byte-level tokenizer built offline"),
    "mini": PresetSpec("harness.mini:mini_bundle", "plain", "the Fed-MA-mini LM's, from its cached world",
                       completions="harness.mini.preset:completions",
                       validation="harness.mini.scenario:ensure_validation"),
    "llava-1.5-7b": PresetSpec("harness.model.build:llava15_bundle", "vicuna", "Vicuna-v1.5's, from model.llm_path"),
}


def preset(name: str) -> PresetSpec:
    if name not in PRESETS:
        raise bad_choice("model.preset", name, PRESETS)
    return PRESETS[name]


def resolve(target: str):
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def template_of(name: str) -> str:
    """The prompt template a preset was trained with (``plain`` for a model that is no preset)."""
    return PRESETS[name].template if name in PRESETS else "plain"


def completions(cfg) -> List[str]:
    """``key=value`` overrides the run's preset fills in (none for a preset without the hook)."""
    hook = preset(cfg.model.preset).completions
    return resolve(hook)(cfg) if hook else []
