"""Evaluation benchmark: the ``fedma_llava`` adapter vs lmms-eval's own ``llava_hf`` on the same tiny
checkpoint and tasks (alternating repetitions in one process), and the per-round cost split into task
set-up (once per process) and, per round, model time vs lmms-eval's own overhead.

Both models answer the same requests with the same generation length (the tasks' ``max_new_tokens``
is set to ``--tokens`` for both). ``llava_hf`` supports batch size 1 only; the adapter runs at batch 1
and at ``--batch``. lmms-eval 0.7.3 imports ``decord`` in ``llava_hf`` (for videos); when it is not
installed a stand-in module is registered (no video task runs here).

Writes ``OUT/eval.csv`` and ``OUT/eval.md``. ``--quick`` uses fewer samples and repetitions.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "disabled",
           "TOKENIZERS_PARALLELISM": "false"}

import torch
from perf.table import write_table

TASKS = ("pope", "mme", "seed")


def image(i: int, size: int = 40):
    from PIL import Image
    img = Image.new("RGB", (size, size), ((37 * i) % 256, (91 * i) % 256, (53 * i) % 256))
    img.putpixel((i % size, (7 * i) % size), (255, 255, 255))
    return img


def write_data(root: Path, n: int) -> None:
    """n POPE rows, n MME rows (n/2 pairs), n SEED rows, in the real schemas."""
    from datasets import Dataset, Features, Image, Sequence, Value
    s = Value("string")
    root.mkdir(parents=True, exist_ok=True)
    Dataset.from_list([{"question_id": str(i), "question": f"Is there object {i} in the image?",
                        "answer": "yes" if i % 2 else "no", "image": image(i), "image_source": "b",
                        "category": "random"} for i in range(n)],
                      features=Features(question_id=s, question=s, answer=s, image=Image(), image_source=s,
                                        category=s)).to_parquet(str(root / "pope.parquet"))
    Dataset.from_list([{"question_id": f"q{i // 2}", "question": f"Is this thing {i}? Please answer yes or no.",
                        "answer": "Yes" if i % 2 else "No", "category": "existence", "image": image(i)}
                       for i in range(n - n % 2)],
                      features=Features(question_id=s, question=s, answer=s, category=s, image=Image())
                      ).to_parquet(str(root / "mme.parquet"))
    Dataset.from_list([{"question_id": f"s{i}", "question": f"What is in picture {i}?", "choice_a": "cat",
                        "choice_b": "dog", "choice_c": "car", "choice_d": "tree", "answer": "ABCD"[i % 4],
                        "data_type": "image", "image": [image(i)]} for i in range(n)],
                      features=Features(question_id=s, question=s, choice_a=s, choice_b=s, choice_c=s, choice_d=s,
                                        answer=s, data_type=s, image=Sequence(Image()))
                      ).to_parquet(str(root / "seedbench.parquet"))


def save_hf_checkpoint(bundle, path: Path) -> None:
    """The tiny bundle as a HF LLaVA checkpoint with a processor, as llava_hf loads it."""
    from transformers import CLIPImageProcessor, LlavaProcessor
    bundle.model.save_pretrained(path)
    proc = LlavaProcessor(CLIPImageProcessor(size={"shortest_edge": bundle.image_size},
                                             crop_size={"height": bundle.image_size, "width": bundle.image_size},
                                             image_mean=list(bundle.image_mean), image_std=list(bundle.image_std)),
                          bundle.tokenizer, patch_size=bundle.model.config.vision_config.patch_size,
                          vision_feature_select_strategy="default", num_additional_image_tokens=1)
    proc.save_pretrained(path)


class Timed:
    """Wraps a model's request methods to add up model time."""

    def __init__(self, lm):
        self.lm, self.seconds = lm, 0.0
        for name in ("generate_until", "loglikelihood"):
            fn = getattr(lm, name)

            def timed(requests, fn=fn):
                began = time.perf_counter()
                try:
                    return fn(requests)
                finally:
                    self.seconds += time.perf_counter() - began
            setattr(lm, name, timed)


def llava_hf(path: Path):
    if "decord" not in sys.modules:
        try:
            import decord  # noqa: F401
        except ImportError:
            sys.modules["decord"] = types.SimpleNamespace(VideoReader=None, cpu=None)
    from lmms_eval.models.simple.llava_hf import LlavaHf
    lm = LlavaHf(pretrained=str(path), device="cpu", device_map="cpu", dtype="float32", batch_size=1)
    lm.clean = lambda: None   # keep the model across evaluate() calls
    return lm


def run(args) -> list:
    from harness.eval.adapter import FedmaLlava
    from harness.eval.suite import Suite
    from harness.model.build import build_bundle
    torch.set_num_threads(args.threads)
    n, reps = (8, 2) if args.quick else (32, 3)
    work = Path(tempfile.mkdtemp(prefix="fedma-bench-eval-"))
    write_data(work / "data", n)
    bundle = build_bundle("tiny")
    save_hf_checkpoint(bundle, work / "hf")
    began = time.perf_counter()
    suite = Suite(TASKS, data_root=str(work / "data"), workdir=str(work / "suite"))
    setup_s = time.perf_counter() - began
    for tasks in suite.tasks.values():
        for t in tasks.values():
            t.config.generation_kwargs["max_new_tokens"] = args.tokens
    docs = sum(suite.docs(b) for b in TASKS)
    models = {"fedma_llava, batch 1": Timed(FedmaLlava(bundle=bundle, batch_size=1)),
              f"fedma_llava, batch {args.batch}": Timed(FedmaLlava(bundle=bundle, batch_size=args.batch)),
              "llava_hf (lmms-eval), batch 1": Timed(llava_hf(work / "hf"))}
    walls = {name: [] for name in models}
    model_s = {name: [] for name in models}
    for name, m in models.items():   # warm-up (first-call costs, datasets cache)
        suite.evaluate(m.lm)
    for _ in range(reps):
        for name, m in models.items():
            m.seconds = 0.0
            began = time.perf_counter()
            suite.evaluate(m.lm)
            walls[name].append(time.perf_counter() - began)
            model_s[name].append(m.seconds)
    note = f"{docs} docs ({', '.join(TASKS)}), {args.tokens} new tokens, median of {reps}, {args.threads} thread(s)"
    rows = [{"what": f"samples/s, {name}", "value": docs / statistics.median(walls[name]), "unit": "samples/s",
             "note": note} for name in models]
    rows.append({"what": "task set-up (Suite: YAML, TaskManager, datasets), once per process", "value": setup_s,
                 "unit": "s", "note": f"{len(TASKS)} tasks"})
    for name in models:
        wall, model = statistics.median(walls[name]), statistics.median(model_s[name])
        rows.append({"what": f"per-round model time, {name}", "value": model, "unit": "s", "note": note})
        rows.append({"what": f"per-round lmms-eval overhead, {name}", "value": wall - model, "unit": "s",
                     "note": "evaluate() wall minus model time"})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.eval", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="results/bench")
    p.add_argument("--tokens", type=int, default=8, help="generated tokens per answer, both models")
    p.add_argument("--batch", type=int, default=8, help="the adapter's batch size for the batched row")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    for k, v in OFFLINE.items():   # everything is local: never ask the hub
        os.environ.setdefault(k, v)
    rows = run(args)
    get = {r["what"]: r["value"] for r in rows}
    ref = get["samples/s, llava_hf (lmms-eval), batch 1"]
    header = [(f"- adapter / llava_hf throughput: batch 1 {get['samples/s, fedma_llava, batch 1'] / ref:.2f}x, "
              f"batch {args.batch} {get[f'samples/s, fedma_llava, batch {args.batch}'] / ref:.2f}x (target >= 0.8x)"),
              "- device: " + ("cuda" if torch.cuda.is_available() else f"cpu, {args.threads} thread(s)")]
    write_table(rows, Path(args.out), "eval", "Evaluation benchmark (lmms-eval)", header)
    print((Path(args.out) / "eval.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
