"""The mini comparison of docs/wire.md: what compressing the upload (and summing it securely) costs each
method, every mode against the same method's uncompressed run on the same seeds.

    nice -n 10 python -m harness.study.wire --out RUNS --results results/compression [--workers 2]

Runs (Fed-MA-mini, scenario II, 10 rounds, seeds 0-2, held-out loss only): FedAvg, FedAdam, FedAvg+TIES
and Fed-CMP under none, int8 and topk; Fed-CMP under fp16; FedAvg under secure aggregation. They sit in
``RUNS/METHOD/ii/METHOD+MODE/seedS`` (a sweep root per method, ``none`` as the plain ``METHOD``), so
``fedma compare RUNS/METHOD --reference METHOD`` pairs every mode with its own uncompressed run. Then
each run's records and config are copied to ``RESULTS/runs/...`` (the same layout: compare reruns there)
and the comparisons land in ``RESULTS/METHOD/compare.{csv,md}``. Finished runs are skipped, so the
command continues where it stopped.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

MODES = {"none": [], "int8": ["federation.compression=int8"], "topk": ["federation.compression=topk"],
         "fp16": ["federation.compression=fp16"],
         "secagg": ["federation.secure_aggregation=true", "federation.min_clients=2"]}
PLAN = {"fedavg": ["none", "int8", "topk", "secagg"], "fedadam": ["none", "int8", "topk"],
        "fedavg_ties": ["none", "int8", "topk"], "fedcmp": ["none", "int8", "topk", "fp16"]}
SEEDS = (0, 1, 2)
ROUNDS = 10


def run_dir(root: Path, method: str, mode: str, seed: int) -> Path:
    row = method if mode == "none" else f"{method}+{mode}"
    return root / method / "ii" / row / f"seed{seed}"


def jobs(root: Path) -> dict:
    from harness.mini.scenario import ensure_scenario
    from harness.study.runner import finished
    out = {}
    for seed in SEEDS:
        data = ensure_scenario("ii", per_round=256, rounds=ROUNDS, seed=seed)
        for method, modes in PLAN.items():
            for mode in modes:
                d = run_dir(root, method, mode, seed)
                if not finished(d):
                    out[str(d)] = [f"data.root={data}", "data.scenario=ii", f"method={method}",
                                   f"federation.rounds={ROUNDS}", f"federation.seed={seed}",
                                   "eval.tasks=[]", "eval.final_tasks=[]", *MODES[mode]]
    return out


def archive(root: Path, results: Path) -> None:
    """Each finished run's records.jsonl and config.yaml, in the same layout (no checkpoints)."""
    for records in root.rglob("records.jsonl"):
        d = records.parent
        if "checkpoints" in d.parts or not (d / "final").is_dir():
            continue
        dest = results / "runs" / d.relative_to(root)
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("records.jsonl", "config.yaml"):
            shutil.copy2(d / name, dest / name)


def compare(results: Path) -> None:
    for method in PLAN:
        root = results / "runs" / method
        if not root.is_dir():
            continue
        for summary in ("auc", "final"):
            subprocess.run([sys.executable, "-m", "harness.cli", "compare", str(root), "--reference", method,
                            "--metric", "loss", "--summary", summary, "--out", str(results / method / summary)],
                           check=False)


def bytes_up(results: Path, method: str, row: str) -> float:
    """Mean comm/bytes_up per client-round of a row's archived runs."""
    from harness.core.records import read_records
    values = [r["value"] for f in sorted((results / "runs" / method / "ii" / row).glob("seed*/records.jsonl"))
              for r in read_records(f) if r["metric"] == "bytes_up"]
    return sum(values) / len(values) if values else float("nan")


def summarize(results: Path) -> None:
    """RESULTS/summary.md: per method and mode, the held-out loss (AUC over rounds 1-10, final) of both
    arms, the paired difference with its interval and Holm verdict (from compare.csv), and the bytes."""
    import csv
    lines = ["| method | mode | bytes up per client-round | loss AUC: mode / none | diff [95% CI] | verdict (Holm) "
             "| final loss: mode / none | diff [95% CI] | verdict (Holm) | seeds |",
             "|---|---|---:|---|---|---|---|---|---|---:|"]
    for method, modes in PLAN.items():
        rows = {}
        for summary in ("auc", "final"):
            path = results / method / summary / "compare.csv"
            for r in csv.DictReader(open(path)) if path.is_file() else []:
                if r["scenario"] == "ii" and r["method"] != method:
                    rows[(r["method"], summary)] = r
        for mode in modes[1:]:
            row = f"{method}+{mode}"
            cells = []
            for summary in ("auc", "final"):
                r = rows.get((row, summary))
                cells += ["n/a"] * 3 if r is None else [
                    f"{float(r['method_mean']):.4f} / {float(r['reference_mean']):.4f}",
                    f"{float(r['mean_diff']):+.3g} [{float(r['ci_low']):+.3g}, {float(r['ci_high']):+.3g}]",
                    r["verdict"]]
            n = rows.get((row, "auc"), {}).get("n_pairs", "0")
            lines.append(f"| {method} | {mode} | {bytes_up(results, method, row):,.0f} (none: "
                         f"{bytes_up(results, method, method):,.0f}) | " + " | ".join(cells) + f" | {n} |")
    (results / "summary.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.study.wire", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="where the runs go (checkpoints and all)")
    p.add_argument("--results", default="results/compression", help="where records and comparisons are committed")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--compare-only", action="store_true", help="archive what finished and compare; run nothing")
    args = p.parse_args(argv)
    root, results = Path(args.out), Path(args.results)
    if not args.compare_only:
        from rich.console import Console
        from harness.mini.workers import build_deepspeed_ops, run_all
        todo = jobs(root)
        build_deepspeed_ops()
        run_all(todo, args.workers, Console(), name=lambda d: str(Path(d).relative_to(root)))
    archive(root, results)
    compare(results)
    summarize(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
