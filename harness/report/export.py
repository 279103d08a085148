"""Export a run's final projector for use outside the harness.

* ``llava``: ``OUT/mm_projector.bin``, ``torch.save`` of ``model.mm_projector.{0,2}.{weight,bias}``
  (LLaVA's ``mlp2x_gelu``: Sequential(Linear, GELU, Linear)), loadable by LLaVA's
  ``--pretrain_mm_mlp_adapter``; plus ``OUT/config.json`` with ``mm_projector_type`` and sizes.
* ``hf``: the run's whole model (its preset's frozen vision tower and LM, with the trained projector)
  written by ``save_pretrained`` with its tokenizer: ``LlavaForConditionalGeneration.from_pretrained(OUT)``
  loads it; ``OUT/projector.safetensors`` holds the projector alone under the same names
  (``multi_modal_projector.linear_{1,2}.{weight,bias}``), ``OUT/projector_config.json`` its shapes.
For method ``local`` there is no global projector: choose a client with ``client``.
"""
from __future__ import annotations

import json
from pathlib import Path

from harness.core import rundir
from harness.core.errors import ConfigError, DataError

LLAVA_NAMES = {"linear_1.weight": "model.mm_projector.0.weight", "linear_1.bias": "model.mm_projector.0.bias",
               "linear_2.weight": "model.mm_projector.2.weight", "linear_2.bias": "model.mm_projector.2.bias"}
HF_PREFIX = "multi_modal_projector."


def llava_projector(run_dir, client: int | None = None) -> dict:
    """A finished run's final projector (``client``: that client's own), checked for LLaVA's names."""
    state = rundir.load_projector(run_dir, client, final_only=True)
    missing = set(LLAVA_NAMES) - set(state)
    if missing:
        raise DataError(f"{run_dir}: projector lacks {sorted(missing)}")
    return state


def describe(state: dict, run_dir, fmt: str, client) -> dict:
    w1, w2 = state["linear_1.weight"], state["linear_2.weight"]
    return {"format": fmt, "mm_projector_type": "mlp2x_gelu", "mm_hidden_size": int(w1.shape[1]),
            "projector_hidden_size": int(w1.shape[0]), "hidden_size": int(w2.shape[0]),
            "dtype": str(w1.dtype).replace("torch.", ""), "source_run": str(Path(run_dir).resolve()),
            "client": client}


def export(run_dir, fmt: str, out_dir, client: int | None = None) -> Path:
    """Write the projector of ``run_dir`` in ``fmt`` (llava|hf) under ``out_dir``; returns the main file."""
    import torch
    if fmt not in ("llava", "hf"):
        raise ConfigError(f"--format: unknown export format '{fmt}'; valid: llava, hf")
    state = llava_projector(run_dir, client)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = describe(state, run_dir, fmt, client)
    if fmt == "llava":
        path = out / "mm_projector.bin"
        torch.save({LLAVA_NAMES[k]: v.contiguous() for k, v in state.items() if k in LLAVA_NAMES}, path)
        (out / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    else:
        from safetensors.torch import save_file
        save_pretrained_model(run_dir, state, out)
        path = out / "projector.safetensors"
        proj = {k: v for k, v in state.items() if k in LLAVA_NAMES}   # a stage-2 run's LoRA is merged above
        save_file({HF_PREFIX + k: v.contiguous() for k, v in proj.items()}, str(path), metadata={"format": "pt"})
        meta["weight_names"] = sorted(HF_PREFIX + k for k in proj)
        (out / "projector_config.json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


def save_pretrained_model(run_dir, state: dict, out: Path) -> None:
    """The run's preset with ``state`` as its projector, as a ``from_pretrained`` directory."""
    from harness.core.config import JobConfig, build_section, read_yaml
    from harness.model.build import build_bundle, get_projector, set_projector
    config = rundir.RunDir(run_dir).config
    if not config.is_file():
        raise DataError(f"{run_dir}: no config.yaml, so the model preset is unknown (the hf export writes the whole model)")
    model = build_section(JobConfig, read_yaml(str(config)), "").model
    bundle = build_bundle(model.preset, model.vision_path, model.llm_path, lora=model.lora)
    want = {k: tuple(v.shape) for k, v in get_projector(bundle.model).items()}
    if want != {k: tuple(v.shape) for k, v in state.items()}:
        raise DataError(f"{run_dir}: the projector's shapes are not preset {model.preset!r}'s {want}")
    set_projector(bundle.model, state)
    from harness.model.lora import has_lora, merge_into_base
    if has_lora(bundle.model):
        merge_into_base(bundle.model)
    bundle.model.save_pretrained(out)
    bundle.tokenizer.save_pretrained(out)
