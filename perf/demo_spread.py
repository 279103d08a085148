"""How far two demo outputs (two machines, or two kernel sets on one) differ, run by run.

    python -m perf.demo_spread results/demo /tmp/demo-other --label "AVX512 vs AVX2" [--out results/bench]

For every run under ``A/runs`` and ``B/runs``: the largest difference of the held-out caption loss over
the rounds, the final round's, and the final scores of the five mini benchmarks (in the tables' units,
and in questions: a POPE point of 72 questions is 1/0.72 of a question). Writes ``OUT/demo_spread.md``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.core.rundir import is_run_dir
from harness.mini.reference import SCORED
from harness.report.plot import trajectory
from harness.report.runs import BENCHMARKS, load_run, pretty_name, score


def run_dirs(root: Path) -> dict:
    return {p.relative_to(root / "runs").as_posix(): p for p in sorted((root / "runs").glob("*/*"))
            if is_run_dir(p)}


def compare(a: Path, b: Path) -> dict:
    ra, rb = load_run(a), load_run(b)
    la, lb = trajectory(ra, "heldout", "caption_loss"), trajectory(rb, "heldout", "caption_loss")
    rounds = sorted(set(la) & set(lb))
    row = {"loss_max": max(abs(la[t] - lb[t]) for t in rounds), "loss_final": abs(la[rounds[-1]] - lb[rounds[-1]])}
    for bench in SCORED:
        x, y = score(ra, bench), score(rb, bench)
        row[bench] = None if x is None or y is None else abs(x - y)
    return row


def small(x: float) -> str:
    return "0 (identical)" if x == 0 else f"{x:.1e}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.demo_spread", description=__doc__.splitlines()[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--label", default="", help="what differs between A and B (machines, kernels)")
    p.add_argument("--out", default="results/bench")
    args = p.parse_args(argv)
    a, b = run_dirs(Path(args.a)), run_dirs(Path(args.b))
    lines = [f"# Demo spread: {args.label or 'A vs B'}", "", f"- A: `{args.a}`, B: `{args.b}`",
             "- per run: largest |difference| of the held-out caption loss over the rounds and at the final round; "
             "|difference| of each final benchmark score (percent; MME points)", "",
             "| run | loss, max over rounds | loss, final | " + " | ".join(BENCHMARKS[s] for s in SCORED) + " |",
             "|---|---:|---:|" + "---:|" * len(SCORED)]
    for name in sorted(set(a) & set(b)):
        r = compare(a[name], b[name])
        cells = ["–" if r[s] is None else f"{r[s]:.1f}" for s in SCORED]
        lines.append(f"| {pretty_name(name.split('/')[1])} ({name.split('/')[0].upper()}) | {small(r['loss_max'])} | "
                     f"{small(r['loss_final'])} | " + " | ".join(cells) + " |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo_spread.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
