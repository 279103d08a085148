"""``fedma demo`` until the round engine lands: the nine server rules on the convex toy federation."""
from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from harness.registry import METHODS
from harness.toy import ToyWorld, run_toy

SHOWN_ROUNDS = (1, 2, 5, 10)


def aggregation_demo(rounds: int = 10, seed: int = 0) -> dict:
    console = Console()
    console.print("[bold]Fed-MA harness: aggregation demonstration[/] (the round engine, data and "
                  "evaluation arrive with later changes)")
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
