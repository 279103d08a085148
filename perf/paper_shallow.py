"""The paper's widths on a CPU, shallow: a client step of the ``llava-1.5-7b`` preset built from
:mod:`harness.mini.shallow` checkpoints (CLIP-L/336 width, 2 layers; Vicuna-7B width, 1 and 2 layers; 576
visual tokens; float32; DeepSpeed ZeRO-0; vision tower run on every batch, as the paper config does),
its seconds per sample and peak memory, and both extrapolated to the full depth (24 + 32 layers).

Each depth runs in its own process; its memory is the peak resident size while it trains (sampled),
beside the RSS after the build and the process's high-water mark.
Extrapolation is linear in the layers, from the two measured depths: per text layer, the difference
between the 2- and 1-layer runs; per vision layer, the tower's measured forward time over its depth and
its weights' bytes (frozen, no gradients: nothing else stays alive). Each step's FLOPs and bytes
(:mod:`perf.cost`) go to the caller's roofline columns.

``python -m perf.paper_shallow --child VISION LLM OUT.json`` is the per-depth measurement.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

FULL_VISION, FULL_TEXT, VISION_LAYERS = 24, 32, 2
BATCH = 1


def child(vision: str, llm: str, out: str, samples: int) -> None:
    """Build, train ``samples`` one-sample steps after a warm-up one, write seconds and memory."""
    from perf.client import batches_of
    from perf.cost import step_cost
    from harness.engine.client import ClientTrainer, TrainSettings
    from harness.core.config import ClientConfig
    from harness.data.layout import round_dir
    from harness.data.reader import SkipReport, ordered_samples
    from harness.data.synthetic import write_synthetic_federation
    from harness.engine.dist import init_world
    from harness.model.build import build_bundle, init_projector
    from harness.engine.runner import quiet_libraries
    quiet_libraries()
    began = time.perf_counter()
    bundle = build_bundle("llava-1.5-7b", vision, llm)
    build_s, built_rss = time.perf_counter() - began, rss()
    trainer = ClientTrainer(bundle, ClientConfig(batch_size=BATCH, zero_stage=0), TrainSettings(), init_world(1, 600).group,
                            cache_features=False)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_synthetic_federation(tmp, clients=1, rounds=1, per_round=samples + 1, heldout=1, image_size=336)
        batch = list(ordered_samples(round_dir(data, 0, 1), 0, 0, 1, SkipReport()))
    start = init_projector(bundle.model, 0)
    batches = batches_of(batch, BATCH)
    steps = []
    with RssPeak() as training:
        trainer.train(start, start, None, iter(batches[:1]), [1e-3])                # warm-up step
        for b in batches[1:]:
            began = time.perf_counter()
            trainer.train(start, start, None, iter([b]), [1e-3])
            steps.append(time.perf_counter() - began)
    began = time.perf_counter()
    trainer.encode(batches[1])
    vision_s = time.perf_counter() - began
    tokens = trainer.collate(batches[1])["input_ids"].shape[1]
    cost = step_cost(bundle.model.config, tokens, BATCH, vision=True)
    Path(out).write_text(json.dumps({"step_s": min(steps), "steps_s": steps, "vision_s": vision_s, "build_s": build_s,
                                     "built_rss": built_rss, "train_peak": training.peak, "tokens": tokens,
                                     "process_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0,
                                     "flops": cost.flops, "nbytes": cost.nbytes, "threads": torch.get_num_threads()}))


def rss() -> float:
    """This process's resident bytes now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssPeak:
    """The highest resident size while the block runs, sampled every 10 ms by a thread (the kernel's own
    high-water mark covers the whole process, the build's transient copies included)."""

    def __enter__(self):
        self.peak, self.done = rss(), threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)
        self.thread.start()
        return self

    def watch(self):
        while not self.done.wait(0.01):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, rss())


def measure(text_layers: int, samples: int, threads: int) -> dict:
    from harness.mini.shallow import ensure_shallow_llava
    vision, llm = ensure_shallow_llava(VISION_LAYERS, text_layers)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.json"
        cmd = [sys.executable, "-m", "perf.paper_shallow", "--child", vision, llm, str(out),
               "--samples", str(samples)]
        world = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")   # the parent's world of one
        env = {**{k: v for k, v in os.environ.items() if k not in world}, "OMP_NUM_THREADS": str(threads)}
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def rows(samples: int = 3, threads: int = 1) -> list:
    """Benchmark rows: per depth (text 1 and 2), and the extrapolation to 24 + 32 layers. A timed row's
    ``cost`` is (seconds, bytes, FLOPs) for the roofline columns."""
    runs = {t: measure(t, samples, threads) for t in (1, 2)}
    out = []
    for t, m in runs.items():
        what = f"paper widths, {VISION_LAYERS} vision + {t} text layer(s)"
        out += [{"what": f"{what}: s/sample", "value": m["step_s"], "unit": "s",
                 "cost": (m["step_s"], m["nbytes"], m["flops"]),
                 "note": f"train step, micro-batch {BATCH}, {m['tokens']} tokens, fp32, best of {len(m['steps_s'])}; "
                         f"{m['flops'] / 1e12:.2f} TFLOP/sample"},
                {"what": f"{what}: peak RSS while training", "value": m["train_peak"] / 2 ** 30, "unit": "GiB",
                 "note": f"{m['built_rss'] / 2 ** 30:.2f} GiB after the build ({m['build_s']:.0f} s); the process's "
                         f"high-water mark, the build included, {m['process_peak'] / 2 ** 30:.2f} GiB"}]
    return out + extrapolated(runs)


def extrapolated(runs: dict) -> list:
    one, two = runs[1], runs[2]
    per_text_s, per_vision_s = two["step_s"] - one["step_s"], one["vision_s"] / VISION_LAYERS
    per_text_b = two["train_peak"] - one["train_peak"]
    vision_weights = 12.6e6 * 4                    # one CLIP-L layer: 4 x 1024^2 + 2 x 1024 x 4096 weights, fp32
    seconds = one["step_s"] + (FULL_TEXT - 1) * per_text_s + (FULL_VISION - VISION_LAYERS) * per_vision_s
    memory = one["train_peak"] + (FULL_TEXT - 1) * per_text_b + (FULL_VISION - VISION_LAYERS) * vision_weights
    return [{"what": f"paper widths extrapolated to {FULL_VISION} + {FULL_TEXT} layers: s/sample", "value": seconds,
             "unit": "s", "note": f"linear: {per_text_s:.2f} s per text layer (2 - 1 layers), {per_vision_s:.2f} s "
                                  f"per vision layer (tower forward / depth); fp32, {one['threads']} thread(s)"},
            {"what": f"paper widths extrapolated to {FULL_VISION} + {FULL_TEXT} layers: peak RSS while training",
             "value": memory / 2 ** 30, "unit": "GiB",
             "note": f"linear: {per_text_b / 2 ** 30:.2f} GiB per text layer (fp32 weights 0.75 GiB + its "
                     f"activations at micro-batch {BATCH}), 0.05 GiB per vision layer"}]


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(prog="python -m perf.paper_shallow", description=__doc__.splitlines()[0])
    p.add_argument("--child", nargs=3, metavar=("VISION", "LLM", "OUT"), required=True)
    p.add_argument("--samples", type=int, default=3)
    a = p.parse_args()
    child(*a.child, a.samples)
