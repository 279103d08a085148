"""Client training benchmark: DeepSpeed ClientTrainer vs a bare PyTorch loop on the same model and
batches (alternating blocks in one process), on the tiny and mini presets; engine start-up and reset
cost, the vision-feature cache, one round's wall time split by phase (from a real ``run_federation``),
and the paper's widths with few layers (:mod:`benchmarks.paper_shallow`), extrapolated to 32 layers.

Every timed row is set against the machine's limits measured in the same run (:mod:`benchmarks.roofline`),
its FLOPs and bytes estimated from the model's shapes (:mod:`benchmarks.cost`). Timings are best of N
(the least disturbed pass: the machine may be shared), the median in the note.

Writes ``OUT/client.csv`` and ``OUT/client.md``. ``--quick`` uses fewer samples and repetitions.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import paper_shallow, roofline
from benchmarks.cost import StepCost, step_cost
from benchmarks.table import write_table
from harness.client import CaptionModel, ClientTrainer, TrainSettings
from harness.config import load_config
from harness.data.collate import plain_batch
from harness.data.layout import round_dir
from harness.data.reader import SkipReport, ordered_samples
from harness.data.synthetic import write_synthetic_federation
from harness.dist import init_world
from harness.engine import run_federation
from harness.model import build_bundle, get_projector, init_projector, projector
from harness.runner import quiet_libraries

LR, BATCH, CAPTION = 1e-3, 16, 64


def batches_of(samples, size):
    return [samples[i:i + size] for i in range(0, len(samples), size)]


def collate(bundle, batch):
    return plain_batch([s.caption for s in batch], bundle.tokenizer, bundle.image_token_id, bundle.num_image_tokens,
                       CAPTION)


def bare_loop(bundle, trainer, start, batches) -> float:
    """The same forward as the engine (CaptionModel), a torch AdamW and clipping; returns seconds."""
    module = CaptionModel(bundle)
    trainer.reset(start)
    params = [p for p in projector(bundle.model).parameters()]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    began = time.perf_counter()
    for batch in batches:
        inputs = collate(bundle, batch)
        loss, _, _ = module(inputs["input_ids"], inputs["attention_mask"], inputs["labels"], trainer.features(batch))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return time.perf_counter() - began


def engine_loop(trainer, start, batches) -> float:
    began = time.perf_counter()
    trainer.train(start, start, None, iter(batches), [LR] * len(batches))
    return time.perf_counter() - began


def pass_cost(bundle, batches, vision: bool, elt: int = 4) -> StepCost:
    """FLOPs and bytes of one pass: each micro-batch at its own padded length (``elt``: bytes per
    element of the frozen model, 4 for float32, 2 for bf16)."""
    total = StepCost(0.0, 0.0)
    for batch in batches:
        tokens = collate(bundle, batch)["input_ids"].shape[1]
        total = total + step_cost(bundle.model.config, tokens, len(batch), vision, elt).times(len(batch))
    return total


def rate_rows(preset, bundle, trainer, samples, reps, limits) -> list:
    start = init_projector(bundle.model, 0)
    batches = batches_of(samples, BATCH)
    engine_loop(trainer, start, batches)            # warm the feature cache and the allocator
    times = {"deepspeed": [], "bare": [], "deepspeed, no feature cache": []}
    for _ in range(reps):                            # alternate, so drift hits all three alike
        times["deepspeed"].append(engine_loop(trainer, start, batches))
        times["bare"].append(bare_loop(bundle, trainer, start, batches))
        trainer.cache_features = False
        times["deepspeed, no feature cache"].append(engine_loop(trainer, start, batches))
        trainer.cache_features = True
    n, rows = len(samples), []
    for name, ts in times.items():
        cost = pass_cost(bundle, batches, vision=name.endswith("no feature cache"))
        rows.append({"what": f"samples/s, {preset}, {name}", "value": n / min(ts), "unit": "samples/s",
                     **roofline.position(min(ts), cost.nbytes, cost.flops, limits, torch.float32).cells(),
                     "note": f"best of {reps} passes over the same {n} samples, batch {BATCH} "
                             f"(median {n / statistics.median(ts):.0f}/s)"})
    pairs = [d / b for d, b in zip(times["deepspeed"], times["bare"])]
    return rows, (min(times["deepspeed"]) / min(times["bare"]), statistics.median(pairs))


def startup_rows(bundle, world, limits) -> tuple:
    began = time.perf_counter()
    trainer = ClientTrainer(bundle, TrainSettings(micro_batch=BATCH), world.group)
    init_s = time.perf_counter() - began
    state = get_projector(bundle.model)
    began = time.perf_counter()
    for _ in range(50):
        trainer.reset(state)
    reset_s = (time.perf_counter() - began) / 50
    moved = 2 * 4 * sum(v.numel() for v in state.values())       # the projector read and written once
    return trainer, [{"what": "engine start-up (deepspeed.initialize)", "value": init_s, "unit": "s", "note": ""},
                     {"what": "engine reset between clients", "value": reset_s * 1000, "unit": "ms",
                      **roofline.position(reset_s, moved, 0.0, limits, torch.float32).cells(),
                      "note": "mean of 50; bytes: the projector copied in"}]


def round_split_rows(data: Path, out: Path, limits) -> list:
    cfg = load_config("tiny", [f"data.root={data}", "method=fedcmp", "rounds=2"])
    run_federation(cfg, out / "run")
    last = [json.loads(line) for line in (out / "run" / "timings.jsonl").read_text().splitlines()][-1]
    bundle = build_bundle("tiny")
    cost = StepCost(0.0, 0.0)
    for k in range(cfg.federation.clients):          # round 2's new samples: the vision tower runs on each
        samples = list(ordered_samples(round_dir(data, k, 2), cfg.federation.seed, k, 2, SkipReport()))
        cost = cost + pass_cost(bundle, batches_of(samples, cfg.client.batch_size), vision=True)
    rows = []
    for phase, sec in last.items():
        if phase == "round":
            continue
        roof = roofline.position(sec, cost.nbytes, cost.flops, limits, torch.float32).cells() if phase == "train" else {}
        rows.append({"what": f"round 2 wall, {phase}", "value": sec, "unit": "s", **roof,
                     "note": "tiny, 5 clients x 64 samples"})
    return rows


def ratio_line(preset: str, best: float, median: float) -> str:
    return (f"- {preset}: DeepSpeed time / bare PyTorch time = {best:.3f} best of N "
            f"({median:.3f} median of the paired ratios; target <= 1.05)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.client", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="results/bench")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 by default: 2-thread timings collapse when anything else runs)")
    p.add_argument("--presets", default="tiny,mini", help="presets for the DeepSpeed vs bare rows")
    p.add_argument("--no-paper", action="store_true", help="skip the paper-width rows (minutes of CPU)")
    args = p.parse_args(argv)
    quiet_libraries()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    limits = roofline.measure(quick=args.quick)
    n, reps = (128, 2) if args.quick else (512, 7)
    rows, lines = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_synthetic_federation(tmp / "data", clients=5, rounds=2, per_round=min(n, 64), heldout=16)
        big = write_synthetic_federation(tmp / "big", clients=1, rounds=1, per_round=n, heldout=1)
        samples = list(ordered_samples(round_dir(big, 0, 1), 0, 0, 1, SkipReport()))
        world = init_world(1, 600)
        for preset in args.presets.split(","):
            bundle = build_bundle(preset)
            trainer, start_rows = startup_rows(bundle, world, limits)
            got, (best, median) = rate_rows(preset, bundle, trainer, samples, reps, limits)
            rows += got + (start_rows if preset == "tiny" else [])
            lines.append(ratio_line(preset, best, median))
        rows += round_split_rows(data, tmp, limits)
    if not args.no_paper:
        rows += paper_shallow.rows(limits, samples=1 if args.quick else 3, threads=args.threads)
    header = [f"- torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
              f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end (2 cores; other jobs share them)", limits.line(), *lines]
    write_table(rows, Path(args.out), "client", "Client training benchmark", header)
    print((Path(args.out) / "client.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
