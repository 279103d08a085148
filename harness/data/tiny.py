"""A tiny random CLIP dual encoder saved with ``save_pretrained`` (offline), standing in for SigLIP2.

Used by the tests and the benchmark to run ``embed`` through the same HF loading path as the real
model: 32x32 images, 8x8 patches, one layer per tower, 16-dimensional embeddings, byte-level tokenizer.
"""
from __future__ import annotations

from pathlib import Path


def save_tiny_clip(path, seed: int = 0) -> Path:
    """Write a random tiny CLIPModel, its tokenizer and image processor to ``path``; returns it."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from harness.model.build import byte_tokenizer
    tok = byte_tokenizer()
    ids = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    cfg = CLIPConfig(text_config=dict(vocab_size=len(tok), max_position_embeddings=64, **ids, **small),
                     vision_config=dict(image_size=32, patch_size=8, **small), projection_dim=16)
    torch.manual_seed(seed)
    CLIPModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return Path(path)
