"""``fedma demo``: the embedded default, Fed-MA-mini end to end (:mod:`harness.cli.mini_demo`); the convex
toy stays available as ``fedma mini demo --toy`` (or ``FEDMA_DEMO=toy fedma demo``)."""
from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from harness.core.registry import METHODS
from harness.methods.toy import ToyWorld, run_toy

SHOWN_ROUNDS = (1, 2, 5, 10)


def aggregation_demo(rounds: int = 10, seed: int = 0, scenarios=("ii",), workers: int = 2, instruct: bool = False,
                     out="results/demo", **size) -> dict:
    """What ``fedma demo`` calls: the mini demo, or the convex toy when FEDMA_DEMO=toy."""
    import os
    if os.environ.get("FEDMA_DEMO", "mini") == "toy":
        return toy_demo(rounds, seed)
    from harness.cli.mini_demo import mini_demo
    return mini_demo(rounds, seed, out, scenarios=scenarios, workers=workers, instruct=instruct, **size)


def toy_demo(rounds: int = 10, seed: int = 0) -> dict:
    console = Console()
    console.print("[bold]Fed-MA harness: aggregation demonstration[/] (convex toy; `fedma demo` without "
                  "--toy runs the real pipeline on the mini world)")
    console.print("Convex toy: 5 non-IID clients fit one 12x16 linear map; relative error "
                  "||theta - theta*|| / ||theta*|| after each round (lower is better). FedProx and MOON "
                  "train plainly here, so they equal FedAvg; Fed-CMP uses its defaults.")
    world = ToyWorld(seed=seed)
    shown = [r for r in SHOWN_ROUNDS if r <= rounds] or [rounds]
    table = Table("method", *[f"round {r}" for r in shown], "seconds")
    results = {}
    for name, entry in METHODS.items():
        start = time.perf_counter()
        errors = run_toy(name, rounds=rounds, world=world)
        results[name] = errors
        table.add_row(entry.pretty, *[f"{errors[r - 1]:.3f}" for r in shown],
                      f"{time.perf_counter() - start:.2f}")
    console.print(table)
    return results
