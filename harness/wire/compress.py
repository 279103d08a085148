"""Compressed uploads: what a client sends in place of its float32 update Delta_k = theta_k - theta, per
tensor, and how the server decodes it (the server rebuilds theta_k = theta + decode(...) for every rule,
so the rules themselves are unchanged).

    fp16, bf16   Delta cast to half precision (2 bytes an entry; NVFlare's fp16 quantizer)
    int8         blockwise absmax (NVFlare's and bitsandbytes' blockwise 8-bit, with a linear code, not
                 bitsandbytes' dynamic map): the flat tensor in blocks of B entries (``block``; default
                 4096, bitsandbytes' quantize_blockwise default), q = round(127 x / absmax(block)) as int8,
                 the absmax per block as float32: 1 + 4/B bytes an entry
    topk         the ``fraction`` of entries of largest magnitude of c = Delta + r, sent as int32 indices
                 and float32 values (8 bytes a kept entry); the rest, r <- c - sent, stays on the client
                 and is added next round (error feedback: Stich et al., NeurIPS 2018; Karimireddy et al.,
                 ICML 2019), checkpointed as the client's persistent state
Bytes sent are the payload tensors' bytes: values, scales and indices, nothing else.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch

CODECS = ("none", "fp16", "bf16", "int8", "topk")
Payload = Dict[str, torch.Tensor]


def encode(codec: str, delta: torch.Tensor, residual: Optional[torch.Tensor], block: int, fraction: float
           ) -> Tuple[Payload, Optional[torch.Tensor]]:
    """One tensor's update -> (payload, the residual to keep; None but for topk)."""
    flat = delta.detach().reshape(-1).to(torch.float32)
    if codec in ("fp16", "bf16"):
        return {"v": flat.to(torch.float16 if codec == "fp16" else torch.bfloat16)}, None
    if codec == "int8":
        return int8_encode(flat, block), None
    if codec == "topk":
        return topk_encode(flat if residual is None else flat + residual.reshape(-1), fraction)
    raise ValueError(f"compression={codec!r}: valid codecs are {', '.join(CODECS)}")


def decode(codec: str, payload: Payload, numel: int, block: int) -> torch.Tensor:
    """payload -> the flat float32 update the server uses."""
    if codec in ("fp16", "bf16"):
        return payload["v"].to(torch.float32)
    if codec == "int8":
        return int8_decode(payload, numel, block)
    if codec == "topk":
        out = torch.zeros(numel, dtype=torch.float32)
        out[payload["idx"].long()] = payload["val"]
        return out
    raise ValueError(f"compression={codec!r}: valid codecs are {', '.join(CODECS)}")


def _blocks(flat: torch.Tensor, block: int) -> torch.Tensor:
    pad = (-flat.numel()) % block
    return torch.nn.functional.pad(flat, (0, pad)).reshape(-1, block)


def int8_encode(flat: torch.Tensor, block: int) -> Payload:
    blocks = _blocks(flat, block)
    absmax = blocks.abs().amax(dim=1)
    scale = torch.where(absmax > 0, absmax, torch.ones_like(absmax))   # an all-zero block codes as zeros
    q = torch.round(blocks / scale[:, None] * 127).clamp_(-127, 127).to(torch.int8)
    return {"q": q.reshape(-1)[:flat.numel()].clone(), "absmax": absmax}


def int8_decode(payload: Payload, numel: int, block: int) -> torch.Tensor:
    blocks = _blocks(payload["q"].to(torch.float32), block)
    return (blocks * (payload["absmax"][:, None] / 127)).reshape(-1)[:numel]


def topk_encode(c: torch.Tensor, fraction: float) -> Tuple[Payload, torch.Tensor]:
    k = max(1, math.ceil(fraction * c.numel()))
    idx = torch.topk(c.abs(), k, sorted=False).indices.sort().values
    residual = c.clone()
    residual[idx] = 0.0
    return {"idx": idx.to(torch.int32), "val": c[idx]}, residual


def payload_bytes(payload: Payload) -> int:
    return sum(t.numel() * t.element_size() for t in payload.values())
