"""FLOPs and bytes of one client training step, estimated from the model's shapes (the roofline's input).

A step is the projector-only LLaVA step of :class:`harness.engine.client.CaptionModel`: (optionally) the frozen
vision tower's forward, the projector, the frozen LLM's forward over the whole padded sequence (image
slots and caption), the loss over the full-vocabulary logits, and the backward pass back to the
projector. Matrix products only (2 FLOPs per multiply-add); norms, activations, rotary embeddings and
softmaxes are left out (under 1% of the products at every preset here).

FLOPs per sample, sequence length L, visual tokens N:
- LLM layer, forward: 2 L P_lin (P_lin: q, k, v, o, gate, up, down weights) + 4 L^2 d_attn (Q K^T and
  A V, the full L x L square: CPU attention computes it whole and masks);
- lm_head: 2 L d V (logits at every position: the loss reads them all);
- projector: 2 N (d_v h_p + h_p d);
- vision tower (forward only, when features are not cached): 2 T P_lin,v + 4 T^2 d_v per layer
  (T = patches + 1), every layer (transformers runs all of them, LLaVA reads the penultimate), plus the
  patch embedding 2 (patches) 3 p^2 d_v.
Backward: the frozen linears only propagate (input gradients, 1x their forward), attention's two
products need four (2x), linear_2 of the projector needs input and weight gradients (2x), linear_1
weight gradients only (1x).

Bytes (a lower bound per sample): every frozen weight read once forward and once backward (vision:
forward only) per step, divided by the batch; the projector's weights, gradients and AdamW's update
(param, grad, m, v read; param, m, v written); each product's input and output crossing memory once
forward and once backward; the logits written, read by the loss and their gradient written.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepCost:
    flops: float          # per sample
    nbytes: float         # per sample, lower bound

    def __add__(self, other: "StepCost") -> "StepCost":
        return StepCost(self.flops + other.flops, self.nbytes + other.nbytes)

    def times(self, k: float) -> "StepCost":
        return StepCost(self.flops * k, self.nbytes * k)


def decoder_layer(d: int, heads: int, kv_heads: int, head_dim: int, inter: int, tokens: int, mlp_mats: int,
                  elt: int, batch: int, backward: bool) -> StepCost:
    """One transformer layer (Llama: gate/up/down, ``mlp_mats=3``; CLIP: fc1/fc2, ``mlp_mats=2``)."""
    q, kv = heads * head_dim, kv_heads * head_dim
    weights = d * q + 2 * d * kv + q * d + mlp_mats * d * inter
    io = (d + q) + 2 * (d + kv) + (q + d) + (mlp_mats - 1) * (d + inter) + (inter + d)   # inputs + outputs
    fwd = StepCost(2 * tokens * weights + 4 * tokens ** 2 * q,
                   (weights * elt) / batch + tokens * io * elt)
    if not backward:
        return fwd
    return StepCost(fwd.flops + 2 * tokens * weights + 8 * tokens ** 2 * q, 2 * fwd.nbytes)


def text_cost(tc, tokens: int, elt: int, batch: int) -> StepCost:
    head_dim = getattr(tc, "head_dim", None) or tc.hidden_size // tc.num_attention_heads
    layer = decoder_layer(tc.hidden_size, tc.num_attention_heads, tc.num_key_value_heads, head_dim,
                          tc.intermediate_size, tokens, 3, elt, batch, backward=True)
    vocab = tc.vocab_size
    head = StepCost(2 * 2 * tokens * tc.hidden_size * vocab,
                    2 * tc.hidden_size * vocab * elt / batch + 3 * tokens * vocab * 4)
    return layer.times(tc.num_hidden_layers) + head


def vision_cost(vc, elt: int, batch: int) -> StepCost:
    patches = (vc.image_size // vc.patch_size) ** 2
    tokens = patches + 1
    layer = decoder_layer(vc.hidden_size, vc.num_attention_heads, vc.num_attention_heads,
                          vc.hidden_size // vc.num_attention_heads, vc.intermediate_size, tokens, 2, elt, batch,
                          backward=False)
    embed = 2 * patches * 3 * vc.patch_size ** 2 * vc.hidden_size
    return layer.times(vc.num_hidden_layers) + StepCost(embed, patches * 3 * vc.patch_size ** 2 * elt)


def projector_cost(d_in: int, hidden: int, d_out: int, visual: int, batch: int) -> StepCost:
    """fp32 projector: forward, backward (linear_1 weight grads; linear_2 weight and input grads), AdamW."""
    params = d_in * hidden + hidden + hidden * d_out + d_out
    fwd = 2 * visual * (d_in * hidden + hidden * d_out)
    bwd = 2 * visual * d_in * hidden + 2 * 2 * visual * hidden * d_out
    weights = (3 + 7) * params * 4 / batch            # read fwd, read bwd, write grad; AdamW 4 reads + 3 writes
    io = 2 * visual * (d_in + 2 * hidden + d_out) * 4
    return StepCost(fwd + bwd, weights + io)


def step_cost(config, tokens: int, batch: int, vision: bool, elt: int = 4) -> StepCost:
    """Per sample of a micro-batch of ``batch`` padded to ``tokens`` (a ``LlavaConfig``; ``vision``: the
    frozen tower runs in the step, no feature cache; ``elt``: bytes per element of the frozen model)."""
    tc, vc = config.text_config, config.vision_config
    visual = config.image_seq_length
    proj = projector_cost(vc.hidden_size, tc.hidden_size, tc.hidden_size, visual, batch)
    cost = text_cost(tc, tokens, elt, batch) + proj
    return cost + vision_cost(vc, elt, batch) if vision else cost
