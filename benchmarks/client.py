"""Client training benchmark: DeepSpeed ClientTrainer vs a bare PyTorch loop on the same model and
batches (alternating blocks in one process), engine start-up and reset cost, the vision-feature
cache, and one round's wall time split by phase (from a real ``run_federation``).

Writes ``OUT/client.csv`` and ``OUT/client.md``. ``--quick`` uses fewer samples and repetitions.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

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
from benchmarks.table import write_table

LR, BATCH = 1e-3, 16


def batches_of(samples, size):
    return [samples[i:i + size] for i in range(0, len(samples), size)]


def bare_loop(bundle, trainer, start, batches) -> float:
    """The same forward as the engine (CaptionModel), a torch AdamW and clipping; returns seconds."""
    module = CaptionModel(bundle)
    trainer.reset(start)
    params = [p for p in projector(bundle.model).parameters()]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    began = time.perf_counter()
    for batch in batches:
        inputs = plain_batch([s.caption for s in batch], bundle.tokenizer, bundle.image_token_id,
                             bundle.num_image_tokens, 64)
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


def rate_rows(bundle, trainer, samples, reps) -> list:
    start = init_projector(bundle.model, 0)
    batches = batches_of(samples, BATCH)
    engine_loop(trainer, start, batches)            # warm the feature cache and the allocator
    times = {"deepspeed": [], "bare": [], "deepspeed, no feature cache": []}
    for _ in range(reps):                            # alternate, so drift hits both alike
        times["deepspeed"].append(engine_loop(trainer, start, batches))
        times["bare"].append(bare_loop(bundle, trainer, start, batches))
        trainer.cache_features = False
        times["deepspeed, no feature cache"].append(engine_loop(trainer, start, batches))
        trainer.cache_features = True
    n = len(samples)
    return [{"what": f"samples/s, {name}", "value": n / statistics.median(ts), "unit": "samples/s",
             "note": f"median of {reps} passes over the same {n} samples, batch {BATCH}"}
            for name, ts in times.items()]


def startup_rows(bundle, world) -> tuple:
    began = time.perf_counter()
    trainer = ClientTrainer(bundle, TrainSettings(micro_batch=BATCH), world.group)
    init_s = time.perf_counter() - began
    state = get_projector(bundle.model)
    began = time.perf_counter()
    for _ in range(50):
        trainer.reset(state)
    reset_ms = (time.perf_counter() - began) / 50 * 1000
    return trainer, [{"what": "engine start-up (deepspeed.initialize)", "value": init_s, "unit": "s", "note": ""},
                     {"what": "engine reset between clients", "value": reset_ms, "unit": "ms", "note": "mean of 50"}]


def round_split_rows(data: Path, out: Path) -> list:
    cfg = load_config("tiny", [f"data.root={data}", "method=fedcmp", "rounds=2"])
    run_federation(cfg, out / "run")
    last = [json.loads(line) for line in (out / "run" / "timings.jsonl").read_text().splitlines()][-1]
    return [{"what": f"round 2 wall, {phase}", "value": sec, "unit": "s", "note": "tiny, 5 clients x 64 samples"}
            for phase, sec in last.items() if phase != "round"]


def ratio_line(rows) -> str:
    get = {r["what"]: r["value"] for r in rows}
    ds, bare = get["samples/s, deepspeed"], get["samples/s, bare"]
    cache = get["samples/s, deepspeed"] / get["samples/s, deepspeed, no feature cache"]
    return (f"- DeepSpeed time / bare PyTorch time = {bare / ds:.3f} (target <= 1.1); "
            f"feature cache speed-up = {cache:.2f}x")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.client", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="results/bench")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 by default: 2-thread timings collapse when anything else runs)")
    args = p.parse_args(argv)
    quiet_libraries()
    torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    n, reps = (128, 2) if args.quick else (512, 5)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_synthetic_federation(tmp / "data", clients=5, rounds=2, per_round=n if n < 64 else 64,
                                          heldout=16)
        big = write_synthetic_federation(tmp / "big", clients=1, rounds=1, per_round=n, heldout=1)
        samples = list(ordered_samples(round_dir(big, 0, 1), 0, 0, 1, SkipReport()))
        world = init_world(1, 600)
        bundle = build_bundle("tiny")
        trainer, rows = startup_rows(bundle, world)
        rows = rate_rows(bundle, trainer, samples, reps) + rows + round_split_rows(data, tmp)
    header = [f"- torch {torch.__version__}, {threads} threads, preset tiny, "
              f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ratio_line(rows)]
    write_table(rows, Path(args.out), "client", "Client training benchmark", header)
    print((Path(args.out) / "client.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
