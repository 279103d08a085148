"""Fed-CMP's client-side alignment error, accumulated during the local epoch (no extra pass).

For sample i: v_i = mean of its projected visual tokens, t_i = mean of the LLM input embeddings of its
caption tokens. ``cosine``: e_i = 1 - cos(v_i, t_i) (SPEC section 2). ``l2``: the Euclidean distance
of the L2-normalized means, ||v_i/|v_i| - t_i/|t_i||| (scale-free, = sqrt(2 (1 - cos))).
The client reports e_k = mean_i e_i.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

ALIGN_METRICS = ("cosine", "l2")


def alignment_errors(visual: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                     metric: str = "cosine") -> torch.Tensor:
    """Per-sample errors [B] from visual [B, Nv, D], text [B, Nt, D] and a caption mask [B, Nt]."""
    if metric not in ALIGN_METRICS:
        raise ValueError(f"align_metric={metric!r} is not valid; valid: {', '.join(ALIGN_METRICS)}")
    v = visual.float().mean(dim=1)
    m = text_mask.to(text.dtype).unsqueeze(-1)
    t = (text * m).sum(dim=1).float() / m.sum(dim=1).float().clamp_min(1.0)
    if metric == "cosine":
        return 1.0 - F.cosine_similarity(v, t, dim=-1)
    return (F.normalize(v, dim=-1) - F.normalize(t, dim=-1)).norm(dim=-1)
