"""GPU client benchmark: LLaVA-1.5-7B's architecture (random weights: nothing can be downloaded on a
GPU node without a hub mirror), bf16, DeepSpeed on one GPU, projector-only training.

Rows: bundle build time, engine start-up, and samples/s for each ZeRO stage asked for, both without the
feature cache (the Fed-MA case: every sample is seen once, so CLIP runs on every batch) and with it
(repeated passes), each against the GPU's limits measured in the same run (copy bandwidth, float32 and
bf16 GEMM: :mod:`perf.roofline`; the step's FLOPs and bytes from :mod:`perf.cost`). Skipped
with a clear line where no CUDA device is present.

Writes ``OUT/gpu.csv`` and ``OUT/gpu.md``. ``python -m perf.gpu [--quick] [--zero 0,2]``.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from perf import roofline
from perf.client import batches_of, engine_loop, pass_cost
from perf.table import write_table
from harness.engine.client import ClientTrainer, TrainSettings
from harness.core.config import ClientConfig
from harness.data.layout import round_dir
from harness.data.reader import SkipReport, ordered_samples
from harness.data.synthetic import write_synthetic_federation
from harness.engine.dist import init_world
from harness.model.build import build_bundle, init_projector
from harness.engine.runner import quiet_libraries


def rate(trainer, samples, batch: int, reps: int, cache: bool, limits) -> tuple:
    """(samples/s, roofline cells) of the median pass."""
    trainer.cache_features = cache
    start = init_projector(trainer.bundle.model, 0)
    batches = batches_of(samples, batch)
    engine_loop(trainer, start, batches[:2])                      # warm-up (kernels, allocator, cache)
    times = [engine_loop(trainer, start, batches) for _ in range(reps)]
    torch.cuda.synchronize()
    seconds = statistics.median(times)
    cost = pass_cost(trainer.bundle, batches, vision=not cache, elt=2)
    return len(samples) / seconds, roofline.position(seconds, cost.nbytes, cost.flops, limits, torch.bfloat16).cells()


def zero_rows(bundle, world, samples, zero: int, batch: int, reps: int, limits) -> list:
    began = time.perf_counter()
    trainer = ClientTrainer(bundle, ClientConfig(batch_size=batch, zero_stage=zero), TrainSettings(bf16=True),
                            world.group)
    rows = [{"what": f"engine start-up, ZeRO-{zero}", "value": time.perf_counter() - began, "unit": "s", "note": ""}]
    print(f"[gpu] ZeRO-{zero} engine ready in {rows[0]['value']:.1f} s", flush=True)
    for cache in (False, True):
        name = "feature cache (repeated passes)" if cache else "no feature cache (one pass, the Fed-MA case)"
        value, roof = rate(trainer, samples, batch, reps, cache, limits)
        rows.append({"what": f"samples/s, ZeRO-{zero}, {name}", "value": value, "unit": "samples/s", **roof,
                     "note": f"median of {reps} passes over {len(samples)} samples, micro-batch {batch}"})
    rows.append({"what": f"peak GPU memory, ZeRO-{zero}", "value": torch.cuda.max_memory_allocated() / 2 ** 30,
                 "unit": "GiB", "note": "since the bundle was built"})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.gpu", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="results/bench")
    p.add_argument("--zero", default="2", help="comma-separated ZeRO stages (default 2)")
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("perf.gpu: no CUDA device; nothing measured (run it on a GPU node)")
        return 0
    quiet_libraries()
    n, reps = (64, 2) if args.quick else (256, 3)
    world = init_world(1, 600)
    limits = roofline.measure(device="cuda", quick=args.quick)
    began = time.perf_counter()
    bundle = build_bundle("llava-1.5-7b", "random:clip", "random:vicuna", dtype=torch.bfloat16)
    rows = [{"what": "build LLaVA-1.5-7B (random, bf16)", "value": time.perf_counter() - began, "unit": "s",
             "note": "weights drawn on the GPU"}]
    print(f"[gpu] built the 7B bundle in {rows[0]['value']:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_synthetic_federation(Path(tmp), clients=1, rounds=1, per_round=n, heldout=1)
        samples = list(ordered_samples(round_dir(data, 0, 1), 0, 0, 1, SkipReport()))
    for zero in (int(z) for z in args.zero.split(",")):
        rows += zero_rows(bundle, world, samples, zero, args.batch, reps, limits)
    header = [f"- {torch.cuda.get_device_name()}, torch {torch.__version__}, bf16, projector only "
              f"(21M trainable of 7B), captions up to 64 tokens, 576 image tokens, "
              f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", limits.line()]
    write_table(rows, Path(args.out), "gpu", "GPU client benchmark (LLaVA-1.5-7B shapes)", header)
    print((Path(args.out) / "gpu.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
