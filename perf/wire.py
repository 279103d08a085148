"""Wire benchmark: bytes per client-round and encode/decode time of every upload mode at the paper's
projector shapes (1024 -> 4096 -> 4096, 20.99 M float32 entries), and secure aggregation's masking
(one client, K participants) and unmasking (the server, K survivors with one dropped).

The update is synthetic (Gaussian, std 1e-3 per entry; a real client's update is heavier-tailed, so the
relative errors of int8 and topk here are a lower bound on what training sees). Times are the best of
``--repeats`` on a shared machine; each row is placed against the limits measured in the same run
(:mod:`perf.roofline`) as bytes moved: the float32 update read plus the payload written (encode),
or the payload read plus the float32 update written (decode); for masking, K 64-bit words per entry
generated and added. Writes OUT/wire.csv and OUT/wire.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

import numpy as np
import torch

from perf import roofline
from perf.aggregation import SHAPES
from perf.table import write_table
from harness.wire import compress, secagg


def make_update(shapes: dict, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {n: 1e-3 * torch.randn(s, generator=gen) for n, s in shapes.items()}


def codec_rows(mode: str, delta: dict, block: int, fraction: float, repeats: int, limits) -> list:
    numel = sum(t.numel() for t in delta.values())
    encoded = {}

    def enc():
        for k, t in delta.items():
            encoded[k] = compress.encode(mode, t, None, block, fraction)[0]

    def dec():
        return {k: compress.decode(mode, encoded[k], t.numel(), block) for k, t in delta.items()}
    enc_s = roofline.best_seconds(enc, repeats, "cpu")
    dec_s = roofline.best_seconds(dec, repeats, "cpu")
    sent = sum(compress.payload_bytes(p) for p in encoded.values())
    back = dec()
    err = float(torch.sqrt(sum(((back[k].reshape(t.shape) - t) ** 2).sum() for k, t in delta.items())
                           / sum((t ** 2).sum() for t in delta.values())))
    note = {"int8": f"block {block}", "topk": f"fraction {fraction}"}.get(mode, "")
    moved = 4 * numel + sent
    return [{"what": f"{mode}: bytes per client-round", "value": sent, "unit": "B",
             "note": f"{4 * numel / sent:.2f}x smaller than float32; {note}".rstrip("; ")},
            {"what": f"{mode}: encode", "value": enc_s, "unit": "s",
             **roofline.position(enc_s, moved, 0, limits, torch.float32).cells(), "note": note},
            {"what": f"{mode}: decode", "value": dec_s, "unit": "s",
             **roofline.position(dec_s, moved, 0, limits, torch.float32).cells(), "note": note},
            {"what": f"{mode}: relative error of the decoded update", "value": err, "unit": "",
             "note": "||decode - Delta|| / ||Delta||"
                     + ("; one round, before error feedback" if mode == "topk" else "")}]


def secagg_rows(delta: dict, k: int, repeats: int, limits) -> list:
    theta = {n: torch.zeros_like(t) for n, t in delta.items()}
    x, _ = secagg.client_vector(delta, theta, 1000, k)
    words = secagg.encode(x)
    masked = {}

    def mask_all():
        for c in range(k):
            masked[c] = secagg.mask(words, c, list(range(k)), 0, 1)
    mask_s = roofline.best_seconds(lambda: secagg.mask(words, 0, list(range(k)), 0, 1), repeats, "cpu")
    mask_all()
    survivors = {c: y for c, y in masked.items() if c != k - 1}
    unmask_s = roofline.best_seconds(lambda: secagg.unmask_sum(survivors, list(range(k)), 0, 1), repeats, "cpu")
    n = words.size
    return [{"what": f"secagg K={k}: bytes per client-round", "value": 8 * n, "unit": "B",
             "note": f"{8 * n / (4 * (n - 1)):.2f}x the float32 upload (64-bit field words, and n_k)"},
            {"what": f"secagg K={k}: mask (one client)", "value": mask_s, "unit": "s",
             **roofline.position(mask_s, 8 * n * (2 * k + 1), 0, limits, torch.float32).cells(),
             "note": f"{k} PRG streams of 64-bit words added"},
            {"what": f"secagg K={k}: unmask (server, {k - 1} survivors, 1 dropped)", "value": unmask_s, "unit": "s",
             **roofline.position(unmask_s, 8 * n * (3 * (k - 1) + 1), 0, limits, torch.float32).cells(),
             "note": f"{k - 1} uploads summed, {k - 1} self masks and {k - 1} recovered pair masks removed"}]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m perf.wire", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small shapes: a fast smoke run")
    p.add_argument("--out", default="results/bench", help="output folder (default: results/bench)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--k", type=int, default=5, help="participants for the secure-aggregation rows")
    p.add_argument("--block", type=int, default=4096, help="int8 block size")
    p.add_argument("--fraction", type=float, default=0.01, help="topk fraction")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    shapes = SHAPES["quick" if args.quick else "paper"]
    delta = make_update(shapes)
    load = os.getloadavg()[0]
    limits = roofline.measure(quick=args.quick)
    rows = [r for mode in ("fp16", "bf16", "int8", "topk")
            for r in codec_rows(mode, delta, args.block, args.fraction, args.repeats, limits)]
    rows += secagg_rows(delta, args.k, args.repeats, limits)
    numel = sum(int(np.prod(s)) for s in shapes.values())
    from harness.core.machine import cpu_model
    header = [f"- machine: {cpu_model()}, {os.cpu_count()} cores; torch "
              f"{torch.__version__}, {torch.get_num_threads()} thread(s); load1 {load:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end (a shared machine: times are best of {args.repeats})",
              f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
              f"- shapes ({'quick' if args.quick else 'paper'}): {shapes}; {numel} entries, "
              f"float32 upload {4 * numel} B (mode none)",
              "- update: synthetic Gaussian, std 1e-3 per entry",
              limits.line(),
              f"- command: `python -m perf.wire {' '.join(argv if argv is not None else sys.argv[1:])}`"]
    write_table(rows, Path(args.out), "wire", "Wire benchmark: compressed uploads and secure aggregation", header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
