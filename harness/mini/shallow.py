"""LLaVA-1.5-7B at the paper's widths with few layers, as local checkpoints the ``llava-1.5-7b`` preset
loads through its real path (``model.vision_path`` / ``model.llm_path``: config, weights, LLaVA's tokenizer
handling), so a CPU can run the paper's shapes end to end.

- vision: CLIP ViT-L/14-336's widths (1024, 16 heads, MLP 4096, 336 px, patch 14: 576 visual tokens);
- LLM: Vicuna-7B's widths (4096, 32 heads, MLP 11008, vocabulary 32,000) and a Llama tokenizer;
- weights: random (normal, std 0.02; norms 1, biases 0) from a seed, stored in bfloat16 (exact in float32).

The tokenizer is Llama's (byte-fallback BPE after a Metaspace ``▁``, <unk> <s> </s> = 0 1 2, bytes
<0x00>..<0xFF> = 3..258), with a generated vocabulary of exactly 32,000 pieces: 67 characters, then
word-initial pieces ``▁x``, ``▁xy``, ``▁xyz`` over a-z (merged first, so short words are one token), then
word-inner pieces ``xy`` and the first 12,720 ``xyz``. The preset then adds ``<image>`` (id 32,000), as
LLaVA-1.5's tokenizer has it, and uses <unk> as padding.
"""
from __future__ import annotations

import json
import string
from pathlib import Path

import torch

VISION = dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, image_size=336, patch_size=14,
              projection_dim=768)
TEXT = dict(hidden_size=4096, intermediate_size=11008, num_attention_heads=32, num_key_value_heads=32,
            vocab_size=32000, max_position_embeddings=4096, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2)
RECIPE = 1                      # bump when what write_shallow_llava writes changes
LOWER = string.ascii_lowercase
SINGLES = "▁" + LOWER + string.ascii_uppercase + string.digits + ".,'-"


def llama_vocab(size: int = 32000):
    """(vocab, merges) of the generated Llama tokenizer, ``size`` pieces in all."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"<0x{b:02X}>": 3 + b for b in range(256)}}
    merges = []

    def add(left: str, right: str) -> None:
        if len(vocab) < size:
            vocab[left + right] = len(vocab)
            merges.append((left, right))

    for c in SINGLES:
        vocab[c] = len(vocab)
    starts = ["▁" + c for c in LOWER]
    for grow in (lambda: [("▁", c) for c in LOWER], lambda: [(s, c) for s in starts for c in LOWER],
                 lambda: [(s + a, c) for s in starts for a in LOWER for c in LOWER]):
        for left, right in grow():
            add(left, right)
    inner = [a + b for a in LOWER for b in LOWER]
    for left, right in [(a, b) for a in LOWER for b in LOWER] + [(p, c) for p in inner for c in LOWER]:
        add(left, right)
    return vocab, merges


def write_tokenizer(directory: Path, size: int = 32000) -> None:
    from transformers import LlamaTokenizer
    vocab, merges = llama_vocab(size)
    LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True).save_pretrained(directory)   # as Vicuna's


def random_state(model, seed: int) -> dict:
    """Every tensor of ``model`` (built on the meta device) drawn from ``seed``, in bfloat16."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, t in model.state_dict().items():
        if "norm" in name and name.endswith("weight"):
            out[name] = torch.ones(t.shape, dtype=torch.bfloat16)
        elif name.endswith("bias"):
            out[name] = torch.zeros(t.shape, dtype=torch.bfloat16)
        else:
            out[name] = (torch.randn(t.shape, generator=gen) * 0.02).to(torch.bfloat16)
    return out


def write_checkpoint(directory: Path, model_cls, config, seed: int) -> None:
    """``config.json`` + ``model.safetensors`` (bf16), what ``model_cls.from_pretrained`` reads."""
    from safetensors.torch import save_file
    directory.mkdir(parents=True, exist_ok=True)
    config.dtype = torch.bfloat16
    with torch.device("meta"):
        model = model_cls(config)
    save_file(random_state(model, seed), str(directory / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(directory)


def write_shallow_llava(root, vision_layers: int = 2, text_layers: int = 1, seed: int = 0) -> tuple:
    """``root/clip`` and ``root/vicuna``: (vision_path, llm_path) for ``model.preset=llava-1.5-7b``."""
    from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM
    root = Path(root)
    vision, llm = root / "clip", root / "vicuna"
    write_checkpoint(vision, CLIPVisionModel, CLIPVisionConfig(num_hidden_layers=vision_layers, **VISION), seed)
    write_checkpoint(llm, LlamaForCausalLM, LlamaConfig(num_hidden_layers=text_layers, **TEXT), seed + 1)
    write_tokenizer(llm)
    (root / "shallow.json").write_text(json.dumps({"vision_layers": vision_layers, "text_layers": text_layers,
                                                   "seed": seed}) + "\n")
    return str(vision), str(llm)


def ensure_shallow_llava(vision_layers: int = 2, text_layers: int = 1, seed: int = 0) -> tuple:
    """The checkpoints above in the cache (``$FEDMA_CACHE/shallow/...``, beside ``mini/``), written on
    first use; the name carries a hash of the recipe, so a changed recipe never reuses a stale build."""
    from harness.mini.cache import cache_root, cached, recipe_tag
    tag = recipe_tag({"vision": VISION, "text": TEXT, "vocab": len(SINGLES), "version": RECIPE})
    name = f"llava15-v{vision_layers}-t{text_layers}-s{seed}-{tag}"
    root = cached(cache_root().parents[1] / "shallow" / name,
                  lambda tmp: write_shallow_llava(tmp, vision_layers, text_layers, seed))
    return str(root / "clip"), str(root / "vicuna")
