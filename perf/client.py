"""Client training benchmark: DeepSpeed ClientTrainer vs a bare PyTorch loop on the same model and
batches (alternating blocks in one process), on the tiny and mini presets; engine start-up and reset
cost, the vision-feature cache, one round's wall time split by phase (from a real ``run_federation``),
and the paper's widths with few layers (:mod:`perf.paper_shallow`), extrapolated to 32 layers.

Every timed row is set against the machine's limits measured in the same run (:mod:`perf.roofline`,
at the start and the end, the higher kept), its FLOPs and bytes estimated from the model's shapes
(:mod:`perf.cost`). Timings are best of N interleaved blocks (the least disturbed: the machine may
be shared); the DeepSpeed / bare ratio is given in process CPU time (one torch thread: the work itself,
whatever the load) and in wall time.

Writes ``OUT/client.csv`` and ``OUT/client.md``. ``--quick`` uses fewer samples and repetitions.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from perf import paper_shallow, roofline
from perf.cost import StepCost, step_cost
from perf.table import write_table
from harness.engine.client import CaptionModel, ClientTrainer, TrainSettings
from harness.core.config import ClientConfig, load_config
from harness.core.rundir import RunDir
from harness.data.collate import plain_batch
from harness.data.layout import round_dir
from harness.data.reader import SkipReport, ordered_samples
from harness.data.synthetic import write_synthetic_federation
from harness.engine.dist import init_world
from harness.engine.rounds import run_federation
from harness.fedcmp.align import alignment_errors
from harness.model.build import build_bundle, get_projector, init_projector, projector
from harness.engine.runner import quiet_libraries

LR, BATCH, CAPTION = 1e-3, 16, 64


def batches_of(samples, size):
    return [samples[i:i + size] for i in range(0, len(samples), size)]


def collate(bundle, batch):
    return plain_batch([s.caption for s in batch], bundle.tokenizer, bundle.image_token_id, bundle.num_image_tokens,
                       CAPTION)


class Clock:
    """Wall and process CPU seconds of a block. With one torch thread the CPU time is the work itself:
    on a shared machine it does not count the time spent waiting for a core."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def bare_loop(bundle, trainer, start, batches) -> Clock:
    """The client's work in plain PyTorch: the same forward (CaptionModel), the alignment error Fed-CMP
    reads (every client reports it), clipping and a torch AdamW."""
    with Clock() as clock:
        module = CaptionModel(bundle)
        trainer.reset(start)
        params = [p for p in projector(bundle.model).parameters()]
        opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
        for batch in batches:
            inputs = collate(bundle, batch)
            loss, proj, emb = module(inputs["input_ids"], inputs["attention_mask"], inputs["labels"],
                                     trainer.features(batch))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            float(alignment_errors(proj.detach(), emb.detach(), inputs["caption_mask"]).sum())
    return clock


def engine_clock(trainer, start, batches) -> Clock:
    with Clock() as clock:
        trainer.train(start, start, None, iter(batches), [LR] * len(batches))
    return clock


def engine_loop(trainer, start, batches) -> float:
    return engine_clock(trainer, start, batches).wall


def pass_cost(bundle, batches, vision: bool, elt: int = 4) -> StepCost:
    """FLOPs and bytes of one pass: each micro-batch at its own padded length (``elt``: bytes per
    element of the frozen model, 4 for float32, 2 for bf16)."""
    total = StepCost(0.0, 0.0)
    for batch in batches:
        tokens = collate(bundle, batch)["input_ids"].shape[1]
        total = total + step_cost(bundle.model.config, tokens, len(batch), vision, elt).times(len(batch))
    return total


def rate_rows(preset, bundle, trainer, samples, reps) -> tuple:
    """Blocks of the three loops, interleaved ``reps`` times (a shared machine's load then hits all
    three alike); each loop's best block gives its rate; the DeepSpeed / bare ratios of the best blocks,
    in CPU and in wall time."""
    start = init_projector(bundle.model, 0)
    batches = batches_of(samples, BATCH)
    engine_loop(trainer, start, batches)            # warm the feature cache and the allocator
    clocks = {"deepspeed": [], "bare": [], "deepspeed, no feature cache": []}
    for _ in range(reps):
        clocks["deepspeed"].append(engine_clock(trainer, start, batches))
        clocks["bare"].append(bare_loop(bundle, trainer, start, batches))
        trainer.cache_features = False
        clocks["deepspeed, no feature cache"].append(engine_clock(trainer, start, batches))
        trainer.cache_features = True
    n, rows = len(samples), []
    for name, cs in clocks.items():
        cost = pass_cost(bundle, batches, vision=name.endswith("no feature cache"))
        wall, cpu = min(c.wall for c in cs), min(c.cpu for c in cs)
        rows.append({"what": f"samples/s, {preset}, {name}", "value": n / wall, "unit": "samples/s",
                     "cost": (wall, cost.nbytes, cost.flops),
                     "note": f"best of {reps} interleaved blocks of {n} samples, batch {BATCH}; "
                             f"{n / cpu:.0f} per CPU second"})
    best = lambda name, key: min(getattr(c, key) for c in clocks[name])   # noqa: E731
    return rows, (best("deepspeed", "cpu") / best("bare", "cpu"), best("deepspeed", "wall") / best("bare", "wall"))


def best_limits(a: roofline.Limits, b: roofline.Limits) -> roofline.Limits:
    """The higher of two measurements of each limit (taken at the start and the end of a run on a
    shared machine: the rows' best passes may fall in quieter moments than either)."""
    return roofline.Limits(max(a.bandwidth, b.bandwidth), max(a.gemm_f32, b.gemm_f32), max(a.gemm_f64, b.gemm_f64),
                           a.threads, a.device)


def startup_rows(bundle, world) -> tuple:
    began = time.perf_counter()
    trainer = ClientTrainer(bundle, ClientConfig(batch_size=BATCH, zero_stage=0), TrainSettings(), world.group)
    init_s = time.perf_counter() - began
    state = get_projector(bundle.model)
    began = time.perf_counter()
    for _ in range(50):
        trainer.reset(state)
    reset_s = (time.perf_counter() - began) / 50
    moved = 2 * 4 * sum(v.numel() for v in state.values())       # the projector read and written once
    return trainer, [{"what": "engine start-up (deepspeed.initialize)", "value": init_s, "unit": "s", "note": ""},
                     {"what": "engine reset between clients", "value": reset_s * 1000, "unit": "ms",
                      "cost": (reset_s, moved, 0.0),
                      "note": "mean of 50; bytes: the projector copied in"}]


def round_split_rows(data: Path, out: Path) -> list:
    cfg = load_config("tiny", [f"data.root={data}", "method=fedcmp", "rounds=2"])
    run_federation(cfg, out / "run")
    last = [json.loads(line) for line in RunDir(out / "run").timings.read_text().splitlines()][-1]
    bundle = build_bundle("tiny")
    cost = StepCost(0.0, 0.0)
    for k in range(cfg.federation.clients):          # round 2's new samples: the vision tower runs on each
        samples = list(ordered_samples(round_dir(data, k, 2), cfg.federation.seed, k, 2, SkipReport()))
        cost = cost + pass_cost(bundle, batches_of(samples, cfg.client.batch_size), vision=True)
    rows = []
    for phase, sec in last.items():
        if phase == "round":
            continue
        roof = {"cost": (sec, cost.nbytes, cost.flops)} if phase == "train" else {}
        rows.append({"what": f"round 2 wall, {phase}", "value": sec, "unit": "s", **roof,
                     "note": "tiny, 5 clients x 64 samples"})
    return rows


def ratio_line(preset: str, cpu: float, wall: float) -> str:
    return (f"- {preset}: DeepSpeed time / bare PyTorch time = {cpu:.3f} in CPU time, {wall:.3f} in wall time "
            f"(best blocks; target <= 1.05)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.client", description=__doc__.splitlines()[0])
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
    n, reps = (64, 2) if args.quick else (128, 25)
    rows, lines = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_synthetic_federation(tmp / "data", clients=5, rounds=2, per_round=min(n, 64), heldout=16)
        big = write_synthetic_federation(tmp / "big", clients=1, rounds=1, per_round=n, heldout=1)
        samples = list(ordered_samples(round_dir(big, 0, 1), 0, 0, 1, SkipReport()))
        world = init_world(1, 600)
        for preset in args.presets.split(","):
            bundle = build_bundle(preset)
            trainer, start_rows = startup_rows(bundle, world)
            got, ratios = rate_rows(preset, bundle, trainer, samples, reps)
            rows += got + (start_rows if preset == "tiny" else [])
            lines.append(ratio_line(preset, *ratios))
        rows += round_split_rows(data, tmp)
    if not args.no_paper:
        rows += paper_shallow.rows(samples=1 if args.quick else 3, threads=args.threads)
    limits = best_limits(limits, roofline.measure(quick=args.quick))
    header = [f"- torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
              f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} cores)", limits.line(), *lines]
    for row in rows:   # every timed row against the run's limits: (seconds, bytes, FLOPs) -> its cells
        if "cost" in row:
            row.update(roofline.position(*row.pop("cost"), limits, torch.float32).cells())
    write_table(rows, Path(args.out), "client", "Client training benchmark", header)
    print((Path(args.out) / "client.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
