"""What ``fedma compare`` compares: one observation per run, keyed by (row, setting, scenario, seed).

A row is a method with the hyperparameters it changes from the method's defaults (``fedcmp[opm=False]``,
the study's arm key) and its sweep variant (``fedavg+lr2``); two runs pair when their setting,
scenario and seed agree. Runs come from either
- run directories under ROOT (a sweep ``ROOT/SCENARIO/METHOD[+VARIANT]/seedS``, a study
  ``ROOT/runs/SETTING/SCENARIO/ARM/seedS``, a demo): every summary of every metric, from the records;
- a study's archived records (``OUT/records/SETTING/SCENARIO/ARM/seedS.jsonl.gz``, committed): every
  summary, as from the run directories;
- a study's ``runs.csv`` (committed without its run directories): the ``final`` and ``oscillation``
  summaries it holds.

Metrics: ``loss`` (held-out caption loss), ``validation`` (the validation rows' caption loss, what
``fedma tune`` scores), any benchmark of the registry (its primary metric, percent scale; MME points),
and ``index``: the mean over the mini world's judge-free benchmarks of (score - chance) / (best - chance).
"""
from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from harness.compare.summaries import summarize
from harness.core.errors import DataError
from harness.core.benchmarks import BENCHMARKS, FRACTION_METRICS, MINI_SCORED, PRIMARY
from harness.eval.sampling import index_se, sampling_se

LOSSES = {"loss": "heldout", "validation": "validation"}
METRICS = ("index", *LOSSES, *BENCHMARKS)


def higher_is_better(metric: str) -> bool:
    return metric not in LOSSES


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        from harness.core.typecheck import bad_choice
        raise bad_choice("metric", metric, METRICS)


@dataclass
class Observation:
    row: str
    setting: str
    scenario: str
    seed: object
    curves: Dict[str, Dict[int, float]] = field(default_factory=dict)     # metric -> round -> value
    ses: Dict[str, Dict[int, float]] = field(default_factory=dict)        # metric -> round -> sampling SE
    fixed: Dict[tuple, float] = field(default_factory=dict)               # (metric, summary) -> value (runs.csv)

    @property
    def pair_key(self) -> tuple:
        return self.setting, self.scenario, self.seed

    def value(self, metric: str, summary: str, threshold: Optional[float] = None) -> Optional[float]:
        if (metric, summary) in self.fixed:
            return self.fixed[(metric, summary)]
        if self.fixed:
            raise DataError(f"summary {summary!r} of {metric!r} needs each run's records; a study's runs.csv holds "
                            f"only {sorted({s for _, s in self.fixed})} (commit or point at the run directories)")
        curve = self.curves.get(metric)
        return summarize(curve, summary, higher_is_better(metric), threshold) if curve else None

    def sampling_se(self, metric: str, summary: str) -> Optional[float]:
        """A run's question-sampling SE of the summarized score: at the final round for ``final``, the mean
        over rounds for ``auc``; None for other summaries and for losses."""
        se = self.ses.get(metric)
        if not se or summary not in ("final", "auc"):
            return None
        return se[max(se)] if summary == "final" else sum(se.values()) / len(se)


def arm_label(method: str, hparams: dict, variant: Optional[str] = None) -> str:
    """``method[k=v,...]`` with the hyperparameters that differ from the method's defaults, ``+variant``."""
    from harness.core.registry import METHODS, method_class
    defaults = {f.name: f.default for f in dataclasses.fields(method_class(method)) if f.init} \
        if method in METHODS else {}
    diff = {k: v for k, v in (hparams or {}).items() if defaults.get(k, object()) != v}
    inner = ",".join(f"{k}={v}" for k, v in sorted(diff.items()))
    return method + (f"[{inner}]" if inner else "") + (f"+{variant}" if variant else "")


def load(root) -> List[Observation]:
    """Every observation under ``root``: its run directories, else its ``runs.csv``."""
    from harness.report.runs import discover
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such directory")
    try:
        dirs = discover([root])
    except DataError:
        archived = sorted(root.rglob("seed*.jsonl.gz"))
        if archived:
            return [from_archive(p) for p in archived]
        if (root / "runs.csv").is_file():
            return from_runs_csv(root / "runs.csv")
        raise DataError(f"{root}: no run directories (records.jsonl), archived records or runs.csv under it") from None
    return [from_run_dir(d, root) for d in dirs]


def from_run_dir(path: Path, root: Path) -> Observation:
    from harness.report.runs import load_run
    run = load_run(path)
    parts = path.relative_to(root).parts
    # a study: ROOT/runs/SETTING/SCENARIO/ARM/seedS
    setting = parts[-4] if len(parts) >= 5 and parts[-5] == "runs" else ""
    return observation(run.records, arm_label(run.method, run.hparams, run.variant), setting,
                       (run.scenario or "").lower(), run.seed)


def from_archive(path: Path) -> Observation:
    """``records/SETTING/SCENARIO/ARM_SLUG/seedS.jsonl.gz`` (a study's evidence)."""
    from harness.methods.arms import arm_from_slug
    from harness.core.records import read_archived
    records = read_archived(path)
    setting, scenario, slug = path.parts[-4], path.parts[-3], path.parts[-2]
    return observation(records, arm_from_slug(slug).key, setting, scenario, records[0]["seed"] if records else None)


def observation(records: List[dict], row: str, setting: str, scenario: str, seed) -> Observation:
    """The curves of one run's records."""
    obs = Observation(row, setting, scenario, seed)
    for metric, bench in LOSSES.items():
        curve, _ = _curve(records, bench, "caption_loss")
        if curve:
            obs.curves[metric] = curve
    for bench in BENCHMARKS:
        curve, ses = _curve(records, bench, PRIMARY[bench])
        if curve:
            obs.curves[bench], obs.ses[bench] = curve, ses
    _add_index(obs)
    return obs


def _curve(records: List[dict], bench: str, metric: str) -> tuple:
    """({round: value}, {round: sampling SE}): the global record, else the mean over clients."""
    by_round: Dict[int, Dict[object, dict]] = {}
    for r in records:
        if r["benchmark"] == bench and r["metric"] == metric and r["value"] is not None:
            by_round.setdefault(r["round"], {})[r["client"]] = r
    scale = 100.0 if metric in FRACTION_METRICS else 1.0
    curve, ses = {}, {}
    for rnd, clients in sorted(by_round.items()):
        recs = [clients["global"]] if "global" in clients else list(clients.values())
        curve[rnd] = scale * sum(r["value"] for r in recs) / len(recs)
        if bench in BENCHMARKS:
            ses[rnd] = sampling_se(bench, curve[rnd], recs[0].get("n") or 0)
    return curve, ses


def _add_index(obs: Observation) -> None:
    from harness.mini.bench import CHANCE
    benches = list(MINI_SCORED)
    if not all(b in obs.curves for b in benches):
        return
    chance = {b: _chance(b, CHANCE) for b in benches}
    span = {b: BENCHMARKS[b].best - chance[b] for b in benches}
    rounds = sorted(set.intersection(*(set(obs.curves[b]) for b in benches)))
    obs.curves["index"] = {t: sum((obs.curves[b][t] - chance[b]) / span[b] for b in benches) / len(benches)
                           for t in rounds}
    if all(b in obs.ses for b in benches):
        obs.ses["index"] = {t: index_se({b: obs.ses[b].get(t) for b in benches}, span) for t in rounds}


def _chance(bench: str, table: dict) -> float:
    metric = MINI_SCORED[bench]
    value = table[(bench, metric)]
    return 100.0 * value if metric in FRACTION_METRICS else value


def from_runs_csv(path: Path) -> List[Observation]:
    """A study's runs.csv: final_<metric> and oscillation_<metric> per run."""
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            obs = Observation(r["arm"], r.get("setting", ""), r["scenario"].lower(), int(r["seed"]))
            for col, text in r.items():
                summary, _, metric = col.partition("_")
                if summary in ("final", "oscillation") and text not in ("", None):
                    obs.fixed[(metric, summary)] = float(text)
            out.append(obs)
    return out
