"""The powered study's pilots (``harness/study/configs/pilot.yaml``): FedAvg alone fixes the study's rounds
and its two regimes, by the rules written in that config before the pilots ran.

    python -m harness.study.pilot base --out results/study-pilot          # FedAvg, 30 rounds: the plateau
    python -m harness.study.pilot regimes --out results/study-pilot       # candidates at the T found
    python -m harness.study.pilot decide --out results/study-pilot        # decisions.json / decisions.md

Every decision reads the archived records (``OUT/<stage>/records``), so it can be recomputed.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Dict, List

OSCILLATION_MIN = 0.02        # the sum of FedAvg's loss rises that makes a regime "oscillating"
HARM_MIN = 0.02               # the held-out-loss AUC a corruption must add to FedAvg's
PLATEAU_SHARE = 0.05          # within 5% of the total decrease from round 1 to the last


def mean_curve(observations, setting: str) -> Dict[int, float]:
    curves = [o.curves["loss"] for o in observations if o.setting == setting and "loss" in o.curves]
    rounds = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    return {t: sum(c[t] for c in curves) / len(curves) for t in rounds}


def plateau_round(curve: Dict[int, float]) -> int:
    """The smallest t with loss(t) - loss(T) <= 5% of (loss(1) - loss(T)), rounded up to a multiple of 5."""
    first, last = curve[min(curve)], curve[max(curve)]
    t = next(t for t in sorted(curve) if curve[t] - last <= PLATEAU_SHARE * (first - last))
    return int(5 * math.ceil(t / 5))


def summary(observations, setting: str, what: str) -> float:
    values = [o.value("loss", what) for o in observations if o.setting == setting]
    return sum(values) / len(values)


def oscillating(observations, candidates: List[str]) -> dict:
    rows = {c: {"oscillation": summary(observations, c, "oscillation"),
                "learns": mean_curve(observations, c)[max(mean_curve(observations, c))] <
                mean_curve(observations, c)[1]} for c in candidates if any(o.setting == c for o in observations)}
    chosen = next((c for c in candidates if c in rows and rows[c]["learns"]
                   and rows[c]["oscillation"] >= OSCILLATION_MIN), None)
    if chosen is None:
        learning = [c for c in rows if rows[c]["learns"]]
        chosen = max(learning, key=lambda c: rows[c]["oscillation"]) if learning else None
    return {"measured": rows, "chosen": chosen}


def quality(observations, candidates: List[str]) -> dict:
    clean = summary(observations, "clean", "auc")
    rows = {c: {"auc": summary(observations, c, "auc"), "harm": summary(observations, c, "auc") - clean}
            for c in candidates if any(o.setting == c for o in observations)}
    chosen = next((c for c in candidates if c in rows and rows[c]["harm"] >= HARM_MIN), candidates[-1])
    return {"clean_auc": clean, "measured": rows, "chosen": chosen}


def run_stage(stage: str, out: Path, workers: int, rounds: int = 0, settings=None) -> None:
    from rich.console import Console
    from harness.study.planned import write_planned
    from harness.study.runner import run_study
    from harness.study.spec import Block, load_study
    cfg = load_study("pilot")
    if rounds:
        cfg.rounds = rounds
    if settings:
        cfg.blocks = [Block(families=[], arms=["FedAvg"], scenarios=["ii"], settings=settings)]
    console = Console()
    run_study(cfg, out / stage, workers, console)
    write_planned(cfg, out / stage, "pilot (FedAvg only)", console)


def decide(out: Path) -> dict:
    from harness.compare.observations import load
    from harness.study.spec import load_study
    cfg = load_study("pilot")
    base = load(out / "base" / "records")
    decisions = {"rounds": plateau_round(mean_curve(base, "base")), "base_curve": mean_curve(base, "base")}
    if (out / "regimes" / "records").is_dir():
        reg = load(out / "regimes" / "records")
        decisions["oscillating"] = oscillating(reg, cfg.plan["regimes"]["oscillating"])
        decisions["quality"] = quality(reg, cfg.plan["regimes"]["quality"])
    (out / "decisions.json").write_text(json.dumps(decisions, indent=1))
    return decisions


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.study.pilot")
    p.add_argument("stage", choices=["base", "regimes", "decide"])
    p.add_argument("--out", default="results/study-pilot")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.stage == "base":
        run_stage("base", out, args.workers)
    elif args.stage == "regimes":
        run_regimes(out, args.workers)
    print(json.dumps(decide(out), indent=1))
    return 0


def run_regimes(out: Path, workers: int) -> None:
    """The clean world and the quality candidates, then the oscillating candidates one at a time in the
    rule's order until one qualifies (the later ones are never needed by the rule)."""
    from harness.study.spec import load_study
    rounds = decide(out)["rounds"]
    regimes = load_study("pilot").plan["regimes"]
    settings = ["clean", *regimes["quality"]]
    for candidate in regimes["oscillating"]:
        settings.append(candidate)
        run_stage("regimes", out, workers, rounds, settings)
        measured = decide(out)["oscillating"]["measured"][candidate]
        if measured["learns"] and measured["oscillation"] >= OSCILLATION_MIN:
            break


if __name__ == "__main__":
    sys.exit(main())
