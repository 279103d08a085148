"""LoRA adapters on the frozen LLM, injected in place by peft (no wrapper model, so LLaVA's forward,
DeepSpeed and the evaluation adapter see the same module tree as in stage 1).

The adapters join the communicated state under ``lora/<module path>.<lora_A|lora_B>.weight``
(:func:`harness.model.build.get_projector`). They are created from a seed inside a forked RNG, so every
process draws the same initial A (Kaiming uniform, peft's default) and B = 0, and nothing else's random
stream moves. LLaVA-1.5's LoRA recipe: r=128, alpha=256, dropout 0.05 on q/k/v/o and gate/up/down.
"""
from __future__ import annotations

from typing import Dict, Iterator, Tuple

import torch

PREFIX = "lora/"


def language_model(model) -> torch.nn.Module:
    return model.model.language_model


def attach(model, r: int, alpha: float, dropout: float, targets, seed: int) -> None:
    """Inject LoRA (rank ``r``) into the LLM's ``targets`` linears; only the adapters become trainable."""
    from peft import LoraConfig, inject_adapter_in_model
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets), bias="none")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        inject_adapter_in_model(config, language_model(model))
    for _, p in parameters(model):
        p.requires_grad_(True)
    set_dropout(model, training=False)


def parameters(model) -> Iterator[Tuple[str, torch.nn.Parameter]]:
    """(state key, parameter) of every adapter tensor, in module order."""
    for name, p in language_model(model).named_parameters():
        if ".lora_" in name:
            yield PREFIX + name.replace(".default", ""), p


def state(model) -> Dict[str, torch.Tensor]:
    return {k: p.detach().to("cpu", copy=True) for k, p in parameters(model)}


def has_lora(model) -> bool:
    return next(parameters(model), None) is not None


def set_dropout(model, training: bool) -> None:
    """LoRA's dropout is active only while a client trains (the frozen model stays in eval mode)."""
    for name, m in language_model(model).named_modules():
        if "lora_dropout" in name and isinstance(m, torch.nn.Dropout):
            m.train(training)


def is_lora_key(key: str) -> bool:
    return key.startswith(PREFIX)


def merge_into_base(model) -> None:
    """Fold every adapter into its base linear (W + B A alpha / r) and drop the adapter modules, so the
    model saves as a plain ``from_pretrained`` LLaVA (``fedma export --format hf``)."""
    from peft.tuners.lora import LoraLayer
    lm = language_model(model)
    for name, module in list(lm.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent, _, child = name.rpartition(".")
            setattr(lm.get_submodule(parent) if parent else lm, child, module.get_base_layer())
