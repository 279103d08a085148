"""The units Fed-CMP fuses: a weight matrix (optionally with its bias appended as one more column,
KnOTS-style) or a standalone tensor (a bias kept apart, or anything that is not a matrix)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Optional

import torch

F64 = torch.float64


@dataclass(frozen=True)
class Block:
    name: str
    key: str                    # the weight (or standalone tensor) name
    bias_key: Optional[str]     # appended as the last column when set
    is_matrix: bool


def split_blocks(state: Mapping[str, torch.Tensor], bias_as_column: bool) -> list:
    """Blocks in sorted key order; every tensor of ``state`` belongs to exactly one block."""
    blocks, absorbed = [], set()
    for key in sorted(state):
        if state[key].dim() != 2:
            continue
        bias = key[: -len("weight")] + "bias" if key.endswith(".weight") else None
        use_bias = bias_as_column and bias in state and state[bias].shape == state[key].shape[:1]
        blocks.append(Block(key + ("+bias" if use_bias else ""), key, bias if use_bias else None, True))
        absorbed.update({key, bias} if use_bias else {key})
    blocks += [Block(k, k, None, False) for k in sorted(state) if k not in absorbed]
    return blocks


def block_tensor(state: Mapping[str, torch.Tensor], block: Block) -> torch.Tensor:
    """The block's values from ``state`` as one float64 tensor (bias as the last column)."""
    x = state[block.key].to(F64)
    if block.bias_key is not None:
        x = torch.cat([x, state[block.bias_key].to(F64)[:, None]], dim=1)
    return x


def unblock(x: torch.Tensor, block: Block) -> Dict[str, torch.Tensor]:
    """Inverse of :func:`block_tensor`."""
    if block.bias_key is None:
        return {block.key: x}
    return {block.key: x[:, :-1], block.bias_key: x[:, -1]}
