"""Every method's projector after two rounds on the tiny and the mini preset, through the ``fedma`` command
line only (so the same script runs at any commit), and a comparison of two such folders.

    python tests/golden/run_projectors.py run OUT            # writes OUT/<preset>/<method>/final/*.safetensors
    python tests/golden/run_projectors.py run OUT --presets tiny   # one preset only (both when omitted)
    python tests/golden/run_projectors.py compare OUT_A OUT_B   # bit for bit, per tensor; exit 1 on a difference

Run both at two commits with the same interpreter (``PYTHONPATH=<checkout>``) to show a change kept every
method's results, as the restructuring of issue 27 had to.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

METHODS = ["local", "fedavg", "fedadam", "fedprox", "moon", "fedavg_ta", "fedavg_ties", "fedavg_dare",
           "fedavg_dare_ties", "fedavgm", "scaffold", "fedcmp", "fedcmp:opm_align=sign", "fedcmp:operand=updates",
           "fedcmp:coef_merge=ties"]
COMMON = ["federation.rounds=2", "eval.tasks=[]", "eval.final_tasks=[]"]


def fedma(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"fedma {' '.join(args)} failed:\n{res.stderr[-2000:]}")


def run(out: Path, presets: tuple[str, ...] = ("tiny", "mini")) -> None:
    data = out / "tiny-data"
    if not (data / "manifest.json").is_file():
        fedma("data", "synthetic", "--out", str(data))
    for preset, extra in (("tiny", [f"data.root={data}", "client.batch_size=8"]), ("mini", [])):
        if preset not in presets:
            continue
        for spec in METHODS:
            method, _, hp = spec.partition(":")
            name = method + (f"+{hp.replace('=', '-')}" if hp else "")
            run_dir = out / preset / name
            if (run_dir / "final").is_dir():
                continue
            hparams = [f"aggregator.{method}.{hp}"] if hp else []
            fedma("run", preset, f"method={method}", *hparams, *COMMON, *extra, "--out", str(run_dir))
            print(f"{preset}/{name}", flush=True)


def compare(a: Path, b: Path) -> int:
    from safetensors.torch import load_file
    import torch
    files = sorted(p.relative_to(a) for p in a.rglob("final/*.safetensors"))
    differ = []
    for rel in files:
        x, y = load_file(str(a / rel)), load_file(str(b / rel)) if (b / rel).is_file() else None
        if y is None or set(x) != set(y) or not all(torch.equal(x[k], y[k]) for k in x):
            differ.append(str(rel))
    print(f"{len(files) - len(differ)} of {len(files)} projector files bit-identical")
    for rel in differ:
        print(f"DIFFERS: {rel}")
    return 1 if differ or not files else 0


if __name__ == "__main__":
    if sys.argv[1] == "run":
        chosen = sys.argv[sys.argv.index("--presets") + 1].split(",") if "--presets" in sys.argv else ["tiny", "mini"]
        run(Path(sys.argv[2]), tuple(chosen))
    else:
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
