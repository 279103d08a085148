"""How much the mini checkpoints' rebuild varies with the CPU's float kernels, measured on one machine.

Another CPU sums floats in another order: PyTorch dispatches its elementwise and reduction kernels by
instruction set (``ATEN_CPU_CAPABILITY``: avx512, avx2, default) and MKL picks its GEMM code path by CPU
(``MKL_CBWR`` pins one: AVX2 is what an AMD EPYC gets, COMPATIBLE the portable SSE path). Each variant
rebuilds the CLIP and the LM from their recipes (one thread, ``FEDMA_MINI_REBUILD=1``) in its own process,
then scores the shipped and the rebuilt checkpoints *under the same kernels* (as the ``build`` test does
on whatever machine runs it: :mod:`harness.mini.function`). The largest difference per figure over the
variants is the measured spread the test's tolerances are derived from.

    python -m perf.rebuild_spread [--out results/bench] [--work DIR] [--jobs 2]

Writes ``OUT/rebuild_spread.csv`` and ``OUT/rebuild_spread.md``; about 10 min of one core per variant.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

VARIANTS = {
    "native": {},                                                     # this machine's own dispatch
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"},
    "portable": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"},
}
FIGURES = ("clip_retrieval", "caption_loss", "answer_accuracy", "answer_accuracy_other_image")

BUILD_AND_SCORE = """
import json, sys, torch
torch.set_num_threads(1)
from safetensors.torch import load_file
from harness.mini import models
from harness.mini.cache import SHIPPED
from harness.mini.function import clip_scores, lm_scores
built = {"clip": models.ensure_clip(), "llava": models.ensure_models()}
out = {"capability": torch.backends.cpu.get_cpu_capability()}
for kind, path in built.items():
    mine, theirs = (load_file(str(p / "model.safetensors")) for p in (path, SHIPPED / path.name))
    out[f"{kind}_max_abs_diff"] = max(float((mine[k].double() - theirs[k].double()).abs().max()) for k in mine)
    score = clip_scores if kind == "clip" else lm_scores
    out[f"{kind}_rebuilt"], out[f"{kind}_shipped"] = score(path), score(SHIPPED / path.name)
print("RESULT " + json.dumps(out))
"""


def run_variant(name: str, work: Path) -> dict:
    env = {**os.environ, **VARIANTS[name], "FEDMA_CACHE": str(work / name), "FEDMA_MINI_REBUILD": "1",
           "OMP_NUM_THREADS": "1"}
    began = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", BUILD_AND_SCORE], env=env, capture_output=True, text=True)
    lines = [line for line in res.stdout.splitlines() if line.startswith("RESULT ")]
    if res.returncode or not lines:
        raise RuntimeError(f"variant {name} failed:\n{res.stderr[-3000:]}")
    return {**json.loads(lines[-1][7:]), "seconds": time.perf_counter() - began}


def rows_of(results: dict) -> list:
    rows = []
    for name, r in results.items():
        rebuilt, shipped = ({**r[f"clip_{w}"], **r[f"llava_{w}"]} for w in ("rebuilt", "shipped"))
        rows.append({"variant": name, "kernels": r["capability"] + " " + VARIANTS[name].get("MKL_CBWR", "auto"),
                     "clip_max_abs_diff": r["clip_max_abs_diff"], "llava_max_abs_diff": r["llava_max_abs_diff"],
                     **{f"{f}_shipped": shipped[f] for f in FIGURES}, **{f"{f}_rebuilt": rebuilt[f] for f in FIGURES},
                     **{f"{f}_diff": rebuilt[f] - shipped[f] for f in FIGURES}, "seconds": round(r["seconds"])})
    return rows


def write(rows: list, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "rebuild_spread.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = ["# Mini checkpoint rebuild across CPU kernels", "",
             f"- torch dispatch and MKL code path per variant (see the module docstring); date "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores",
             "- max |w| diff: largest weight difference of the rebuilt checkpoint from the shipped one "
             "(0 = byte-identical)", "- each figure: shipped -> rebuilt (difference), both scored under "
             "the variant's kernels", "- native is this machine with its own dispatch: the shipped checkpoints "
             "were built on another machine, so even it does not rebuild them byte for byte", "",
             "| variant | kernels | CLIP max abs diff | LM max abs diff | " + " | ".join(FIGURES) + " |",
             "|---|---|---:|---:|" + "---|" * len(FIGURES)]
    for r in rows:
        cells = [f"{r[f + '_shipped']:.4f} -> {r[f + '_rebuilt']:.4f} ({r[f + '_diff']:+.4f})" for f in FIGURES]
        lines.append(f"| {r['variant']} | {r['kernels']} | {r['clip_max_abs_diff']:.3g} | "
                     f"{r['llava_max_abs_diff']:.3g} | " + " | ".join(cells) + " |")
    spread = {f: max(abs(r[f + "_diff"]) for r in rows) for f in FIGURES}
    lines += ["", "Largest |difference| over the variants: " +
              ", ".join(f"{f} {v:.4f}" for f, v in spread.items())]
    (out / "rebuild_spread.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.rebuild_spread", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/bench")
    p.add_argument("--work", default="/tmp/fedma-rebuild-spread", help="one cache per variant under it")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--jobs", type=int, default=2, help="variants built side by side (one thread each)")
    p.add_argument("--quick", action="store_true", help="accepted for perf.run; does nothing here")
    a = p.parse_args(argv)
    names = a.variants.split(",")
    with ThreadPoolExecutor(a.jobs) as pool:
        results = dict(zip(names, pool.map(lambda n: run_variant(n, Path(a.work)), names)))
    write(rows_of(results), Path(a.out))
    print((Path(a.out) / "rebuild_spread.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
