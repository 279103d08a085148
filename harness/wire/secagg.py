"""Secure aggregation, simulated faithfully in-process (Bonawitz et al., "Practical Secure Aggregation
for Privacy-Preserving Machine Learning", CCS 2017; Flower's SecAgg+ follows the same scheme).

Each participant k of round t encodes the vector x_k = [n_k * Delta_k (all projector entries, sorted
tensor names), n_k] in fixed point, v = round(x * 2^F) mod 2^64 (F = ``FRACTION_BITS`` = 32; the uint64
wraparound is the field Z_{2^64}), and uploads

    y_k = v_k + PRG(b_k) + sum_{j > k} PRG(s_kj) - sum_{j < k} PRG(s_jk)      (mod 2^64)

with b_k its self mask and s_ij the pair seed of (t, i, j) (here a hash of (seed, t, i, j); in a
deployment the Diffie-Hellman agreement of i's and j's keys). The pair masks cancel in the sum over all
participants. The server sees only the y_k. When a client drops after the masks were agreed, its pair
masks with the survivors do not cancel: the survivors reveal those pair seeds (SecAgg's recovery from
the secret shares of the dropped client's key) and the server removes them; the survivors' self masks
are removed likewise (revealed b_k), so the server learns sum_k v_k over the survivors and nothing else.

Precision: each entry of n_k Delta_k is rounded to the nearest multiple of 2^-32 (error <= 2^-33), so
the recovered weighted mean differs from the float64 one by at most K 2^-33 / sum n_k per entry.
Overflow bound: the sum is read as a signed 64-bit integer, so |sum_k n_k Delta_k| must stay below
2^31 per entry; each client checks |n_k Delta_k| < 2^31 / K before masking (a client over it drops).
Not simulated (a deployment adds them): key agreement and its public-key directory, Shamir secret
sharing of b_k and of the key with threshold t (here min_clients >= 2 plays t's role: a sum of one
upload is that upload), authenticated and encrypted channels, and the consistency round of the
malicious-server variant.
"""
from __future__ import annotations

import hashlib
from typing import Dict, Iterable, List, Tuple

import numpy as np
import torch

FRACTION_BITS = 32
SCALE = float(2 ** FRACTION_BITS)
SUM_BOUND = float(2 ** (63 - FRACTION_BITS))    # |sum of the encoded values| must stay below this


def encode(x: np.ndarray) -> np.ndarray:
    """float64 -> fixed point in Z_{2^64} (two's complement of round(x 2^F))."""
    return np.rint(x * SCALE).astype(np.int64).view(np.uint64)


def decode(v: np.ndarray) -> np.ndarray:
    """Z_{2^64} -> float64, reading the word as a signed integer over 2^F."""
    return v.view(np.int64).astype(np.float64) / SCALE


def _seed(*parts) -> int:
    digest = hashlib.sha256(("secagg-" + "-".join(map(str, parts))).encode()).digest()
    return int.from_bytes(digest[:16], "little")


def pair_seed(seed: int, round_: int, i: int, j: int) -> int:
    """s_ij for i < j (a hash here; the agreed Diffie-Hellman secret in a deployment)."""
    return _seed("pair", seed, round_, min(i, j), max(i, j))


def self_seed(seed: int, round_: int, k: int) -> int:
    return _seed("self", seed, round_, k)


def prg(seed: int, size: int) -> np.ndarray:
    """Uniform words of Z_{2^64} expanded from a seed (PCG64; a deployment uses AES-CTR or ChaCha)."""
    return np.random.Generator(np.random.PCG64(seed)).bit_generator.random_raw(size).astype(np.uint64, copy=False)


def mask(v: np.ndarray, me: int, participants: Iterable[int], seed: int, round_: int) -> np.ndarray:
    """y = v + PRG(b_me) + sum_{j > me} PRG(s) - sum_{j < me} PRG(s) (mod 2^64)."""
    y = v + prg(self_seed(seed, round_, me), v.size)
    for j in participants:
        if j != me:
            p = prg(pair_seed(seed, round_, me, j), v.size)
            y = y + p if me < j else y - p
    return y


def unmask_sum(masked: Dict[int, np.ndarray], participants: List[int], seed: int, round_: int) -> np.ndarray:
    """sum of the survivors' v (mod 2^64) from their masked uploads: their self masks and their pair
    masks with every dropped participant removed from the revealed seeds."""
    survivors = sorted(masked)
    dropped = [j for j in participants if j not in masked]
    size = next(iter(masked.values())).size
    total = np.zeros(size, dtype=np.uint64)
    for k in survivors:
        total += masked[k]
    for k in survivors:
        total -= prg(self_seed(seed, round_, k), size)
        for d in dropped:    # survivor k added +PRG(s_kd) if k < d, -PRG(s_kd) if k > d: undo it
            p = prg(pair_seed(seed, round_, k, d), size)
            total = total - p if k < d else total + p
    return total


def flatten(tensors: Dict[str, torch.Tensor], keys: List[str]) -> np.ndarray:
    return np.concatenate([tensors[k].detach().cpu().double().reshape(-1).numpy() for k in keys])


def client_vector(state, global_state, n: int, clients: int) -> Tuple[np.ndarray, float]:
    """x_k = [n_k Delta_k, n_k] in float64 and its largest magnitude (checked against the bound)."""
    keys = sorted(global_state)
    x = np.append(n * (flatten(state, keys) - flatten(global_state, keys)), float(n))
    return x, float(np.abs(x).max()) * clients


def split_sum(total: np.ndarray, global_state) -> Tuple[Dict[str, torch.Tensor], float]:
    """The decoded sum vector -> ({name: sum_k n_k Delta_k} in float64, sum_k n_k)."""
    values = decode(total)
    out, at = {}, 0
    for k in sorted(global_state):
        numel = global_state[k].numel()
        out[k] = torch.from_numpy(values[at:at + numel].copy()).reshape(global_state[k].shape)
        at += numel
    return out, float(values[at])
