"""Test driver: the ``paper`` config (LLaVA-1.5-7B preset, Fed-CMP, ZeRO-2) on shallow paper-width
checkpoints (harness.mini.shallow), one round of five clients through the round engine, float32 on the CPU.

    torchrun --nproc_per_node 1 tests/distributed/run_paper_shallow.py VISION LLM DATA OUT [key=value ...]

Besides the run itself it writes, for the test to check against its own arithmetic:
- ``OUT/start.safetensors``, ``OUT/uploads.safetensors`` + ``OUT/uploads.json``: the round's start
  projector and what the server aggregated (each client's projector, n_k, e_k), recorded by
  wrapping ``Server.aggregate`` (the real one still runs);
- ``OUT/adapter.json``: the fedma_llava adapter on two questions with the round's global projector
  (their NLLs from one padded batch, the padded one's NLL from a plain unpadded forward, a greedy answer);
- ``OUT/measure.json``: training seconds per sample and the process's peak RSS.
"""
import json
import resource
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from harness.engine import server
from harness.core.config import load_config
from harness.engine.rounds import run_federation
from harness.engine.runner import quiet_libraries
from harness.core.types import ClientResult

QUESTIONS = [("What colour is the square in the picture?", " red"), ("Size?", " a small one")]   # 2nd is padded

class Req:
    def __init__(self, *args):
        self.args = args


def keep_uploads(out: Path):
    aggregate = server.Server.aggregate

    def wrapped(self, round_, results):
        ok = [r for r in results if isinstance(r, ClientResult)]
        save_file({f"{r.client_id}/{k}": v.contiguous() for r in ok for k, v in r.state.items()},
                  str(out / "uploads.safetensors"))
        (out / "uploads.json").write_text(json.dumps(
            {str(r.client_id): {"n": r.num_samples, "align_error": r.align_error} for r in ok}))
        save_file({k: v.contiguous() for k, v in self.global_state.items()}, str(out / "start.safetensors"))
        return aggregate(self, round_, results)

    server.Server.aggregate = wrapped


def adapter_hook(out: Path):
    def hook(ctx):
        from PIL import Image

        from harness.data.reader import pixels
        from harness.eval.adapter import FedmaLlava
        image = Image.new("RGB", (336, 336), (220, 30, 30))
        lm = FedmaLlava(bundle=ctx.trainer.bundle, batch_size=2, max_new_tokens=1)
        lm.model.eval()
        lm.set_projector(ctx.global_state)
        lm.task_dict = {"t": {"test": [{"image": image}]}}
        reqs = [Req(q, a, lambda doc: [doc["image"]], 0, "t", "test") for q, a in QUESTIONS]
        batched = [r.text[0] for r in lm.loglikelihood(reqs)]             # one forward, the 2nd row padded
        ctx_ids, cont = lm._prompt_ids(QUESTIONS[1][0], True), lm._encode(QUESTIONS[1][1])
        b = ctx.trainer.bundle
        with torch.no_grad():                                             # the same request, unpadded, by hand
            logits = b.model(input_ids=torch.tensor([ctx_ids + cont]),
                             pixel_values=pixels([image], b.image_size, b.image_mean, b.image_std)).logits[0]
        lp = torch.log_softmax(logits.float(), -1)
        by_hand = -sum(lp[len(ctx_ids) - 1 + j, t].item() for j, t in enumerate(cont))
        answer = lm.generate_until([Req(QUESTIONS[0][0], {"max_new_tokens": 1}, lambda doc: [doc["image"]], 0,
                                        "t", "test")])
        lengths = [len(lm._prompt_ids(q, True) + lm._encode(a)) for q, a in QUESTIONS]
        (out / "adapter.json").write_text(json.dumps({"batched": batched, "by_hand": by_hand, "answer": answer,
                                                      "lengths": lengths, "answer_tokens": len(cont)}))
        return []
    return hook


if __name__ == "__main__":
    vision, llm, data, out, *overrides = sys.argv[1:]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    quiet_libraries()
    keep_uploads(out)
    cfg = load_config("paper", [f"model.vision_path={vision}", f"model.llm_path={llm}", f"data.root={data}",
                                "model.dtype=float32", "federation.rounds=1", "client.warmup_ratio=0",
                                "eval.tasks=[]", "eval.final_tasks=[]", "federation.server_threads=1", *overrides])
    run_federation(cfg, out / "run", eval_hook=adapter_hook(out))
    train = [json.loads(line) for line in (out / "run" / "timings.jsonl").read_text().splitlines()][-1]["train"]
    (out / "measure.json").write_text(json.dumps({"train_s": train, "samples": 5, "peak_rss_gib":
                                                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}))
