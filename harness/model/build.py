"""Model presets, all built as ``transformers.LlavaForConditionalGeneration``.

Only ``multi_modal_projector`` (linear_1 -> GELU -> linear_2) is trained and communicated; the vision
tower and the LLM are frozen, in eval mode, without gradients. Presets:

- ``tiny``: random CLIP-vision + Llama configs and a byte-level tokenizer, built offline in a second
  (tests and smoke runs);
- ``mini``: the embedded default's pretrained tiny encoder and LM (:mod:`harness.mini`);
- ``llava-1.5-7b``: CLIP ViT-L/14-336 + Vicuna-7B v1.5 from ``model.vision_path``/``model.llm_path``
  (local paths or hub ids); ``random:`` in front of a path builds that architecture with random weights
  (throughput benchmarks on machines that cannot download). Projector 1024 -> 4096 -> 4096.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Dict, Tuple

import torch

from harness.core import presets
from harness.core.presets import resolve
from harness.core.errors import ConfigError
from harness.core.threads import scoped

PROJECTOR_KEYS = ("linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class LlavaBundle:
    """A LLaVA model with what the data path needs to feed it."""
    model: "torch.nn.Module"
    tokenizer: object
    image_size: int
    image_token_id: int
    num_image_tokens: int
    image_mean: Tuple[float, ...] = CLIP_MEAN
    image_std: Tuple[float, ...] = CLIP_STD
    name: str = ""


def build_bundle(preset: str, vision_path=None, llm_path=None, dtype=torch.float32, lora=None,
                 seed: int = 0) -> LlavaBundle:
    """``lora``: ``model.lora`` (a LoraSettings or its dict from a run's config.yaml); with ``r > 0`` LoRA
    adapters are injected into the frozen LLM, seeded by ``seed`` (stage 2, :mod:`harness.instruct`)."""
    build = resolve(presets.preset(preset).bundle)
    # Weights are created in the target dtype on the GPU when there is one: drawing 7B random weights
    # on the CPU takes minutes; on the GPU, a second. The engine would move them there anyway.
    with default_dtype(dtype), init_device():
        bundle = build(vision_path=vision_path, llm_path=llm_path)
    bundle.model.to(dtype)
    freeze_all_but_projector(bundle.model)
    r = (lora.get("r") if isinstance(lora, dict) else getattr(lora, "r", 0)) or 0
    if r > 0:
        from harness.model import lora as adapters
        get = lora.get if isinstance(lora, dict) else lambda k: getattr(lora, k)
        adapters.attach(bundle.model, r, get("alpha"), get("dropout"), get("targets"), seed)
        bundle.model.to(dtype)
    bundle.name = preset
    return bundle


def default_dtype(dtype: torch.dtype):
    return scoped(torch.get_default_dtype, torch.set_default_dtype, dtype)


def init_device():
    if not torch.cuda.is_available():
        return contextlib.nullcontext()
    return torch.device("cuda", torch.cuda.current_device())


def projector(model) -> torch.nn.Module:
    return model.model.multi_modal_projector


def freeze_all_but_projector(model) -> None:
    model.requires_grad_(False)
    model.eval()
    projector(model).requires_grad_(True)


def get_projector(model) -> Dict[str, torch.Tensor]:
    """The communicated state as a flat dict, copied to the CPU, where the server keeps, aggregates and
    checkpoints states whatever the model's device: the projector (linear_1.weight, linear_1.bias,
    linear_2.weight, linear_2.bias) and, in stage 2, the LoRA adapters (``lora/...``)."""
    from harness.model import lora
    out = {k: v.detach().to("cpu", copy=True) for k, v in projector(model).state_dict().items()}
    return {**out, **lora.state(model)}


def set_projector(model, state: Dict[str, torch.Tensor]) -> None:
    from harness.model import lora
    with torch.no_grad():
        for k, p in [*projector(model).state_dict().items(), *lora.parameters(model)]:
            if k not in state:
                raise KeyError(f"the state to load lacks {k!r}: a stage-1 projector has no LoRA tensors "
                               f"(stage 2 starts from one with init.projector)")
            p.copy_(state[k].to(p.dtype))


def projector_only(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {k: state[k] for k in PROJECTOR_KEYS}


def init_projector(model, seed: int) -> Dict[str, torch.Tensor]:
    """A seeded random projector (PyTorch's Linear init), identical on every process (with the model's
    LoRA adapters as :func:`build_bundle` seeded them, in stage 2)."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    for layer in (projector(model).linear_1, projector(model).linear_2):
        layer.reset_parameters()
    torch.random.set_rng_state(gen_state)
    return get_projector(model)


def vision_features(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """Frozen visual tokens [B, N, D] as LLaVA feeds them to the projector (layer, CLS per config)."""
    cfg = model.config
    with torch.no_grad():
        out = model.model.vision_tower(pixel_values.to(model.dtype), output_hidden_states=True)
        feats = out.hidden_states[cfg.vision_feature_layer]
        return feats[:, 1:] if cfg.vision_feature_select_strategy == "default" else feats


def byte_tokenizer():
    """A byte-level tokenizer needing no training: specials <pad> <s> </s> <unk> <image>, then 256 bytes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    specials = ["<pad>", "<s>", "</s>", "<unk>", "<image>"]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(specials + sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", unk_token="<unk>",
                                   extra_special_tokens={"image_token": "<image>"})


def tiny_bundle(vision_path=None, llm_path=None, seed: int = 1234) -> LlavaBundle:
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration
    tok = byte_tokenizer()
    image, patch = 32, 8
    vc = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                          image_size=image, patch_size=patch)
    tc = LlamaConfig(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=2,
                     num_key_value_heads=2, vocab_size=len(tok), max_position_embeddings=256,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    n_img = (image // patch) ** 2
    cfg = LlavaConfig(vision_config=vc, text_config=tc, image_token_index=tok.convert_tokens_to_ids("<image>"),
                      image_seq_length=n_img, vision_feature_layer=-2)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(cfg)
    return LlavaBundle(model, tok, image, cfg.image_token_index, n_img)


def llava15_bundle(vision_path=None, llm_path=None) -> LlavaBundle:
    """LLaVA-1.5-7B's architecture: CLIP ViT-L/14-336 (layer -2, CLS dropped) + Vicuna-7B v1.5."""
    from transformers import (AutoTokenizer, CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM,
                              LlavaConfig, LlavaForConditionalGeneration)
    if not vision_path or not llm_path:
        raise ConfigError("model.vision_path and model.llm_path are required for llava-1.5-7b "
                          "(local paths or hub ids; 'random:<id>' for random weights)")
    vc = _load_config(CLIPVisionConfig, vision_path, LLAVA15_VISION)
    tc = _load_config(LlamaConfig, llm_path, LLAVA15_TEXT)
    tok = _llava_tokenizer(AutoTokenizer, llm_path)
    cfg = LlavaConfig(vision_config=vc, text_config=tc, image_token_index=tok.convert_tokens_to_ids("<image>"),
                      image_seq_length=(vc.image_size // vc.patch_size) ** 2, vision_feature_layer=-2,
                      projector_hidden_act="gelu")
    model = LlavaForConditionalGeneration(cfg)
    if not vision_path.startswith("random:"):
        model.model.vision_tower.load_state_dict(CLIPVisionModel.from_pretrained(vision_path).state_dict())
    if not llm_path.startswith("random:"):
        lm = LlamaForCausalLM.from_pretrained(llm_path)
        model.model.language_model.load_state_dict(lm.model.state_dict())
        model.lm_head.load_state_dict(lm.lm_head.state_dict())
    # The added <image> row: its input embedding is never read (the projector's output takes the image
    # slots) and its lm_head row starts like any weight. transformers' default (mean_resizing) draws the
    # new rows from the old rows' 4096 x 4096 covariance, 1 TFLOP per matrix: 79 s of a 104 s build on
    # this CPU at the paper's widths (profiled), milliseconds on a GPU.
    model.resize_token_embeddings(max(len(tok), tc.vocab_size), mean_resizing=False)
    return LlavaBundle(model, tok, vc.image_size, cfg.image_token_index, cfg.image_seq_length)


LLAVA15_VISION = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                      image_size=336, patch_size=14, projection_dim=768)
LLAVA15_TEXT = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                    num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096, rms_norm_eps=1e-5)


def _load_config(cls, path: str, fallback: dict):
    if path.startswith("random:"):
        return cls(**fallback)
    cfg = cls.from_pretrained(path)
    return getattr(cfg, "vision_config", cfg)


def _llava_tokenizer(auto, llm_path: str):
    if llm_path.startswith("random:"):
        tok = byte_tokenizer()
    else:
        tok = auto.from_pretrained(llm_path, use_fast=True)
        tok.add_tokens(["<image>"], special_tokens=True)
    if tok.pad_token is None:
        tok.pad_token = tok.unk_token
    return tok
