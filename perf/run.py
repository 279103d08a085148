"""Run every benchmark module in turn: ``python -m perf.run [--quick] [--out DIR] [--only a,b]``.

A benchmark module exposes ``main(argv) -> int`` accepting ``--quick`` and ``--out DIR``; options
specific to one benchmark are given by running it directly (``python -m perf.aggregation -h``).
To add a benchmark, append its name to ``BENCHMARKS``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time


BENCHMARKS = ["aggregation", "client", "data", "eval", "wire"]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m perf.run", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small shapes: a fast smoke run")
    p.add_argument("--out", default="results/bench", help="output folder (default: results/bench)")
    p.add_argument("--only", default=",".join(BENCHMARKS),
                   help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; valid: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    common = ["--out", args.out] + (["--quick"] if args.quick else [])
    failed = []
    for name in names:
        start = time.perf_counter()
        print(f"== benchmark {name}", flush=True)
        rc = importlib.import_module(f"perf.{name}").main(common)
        print(f"== benchmark {name}: rc={rc} in {time.perf_counter() - start:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
