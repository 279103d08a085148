"""Reading run directories into per-run scores: which records count, and which ablation row a run is.

A run directory holds ``records.jsonl`` and ``config.yaml`` (written by the round engine). A cell of a
paper table is one benchmark's *primary* metric (``PRIMARY``) at the chosen round, taken from the
``global`` records, or, for a method that scores each client's projector (``local``), the mean over the
clients' records (n/a if any client is n/a).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.rundir import CHECKPOINTS, RECORDS, RunDir, is_run_dir
from harness.core.errors import DataError

from harness.core.benchmarks import FRACTION_METRICS, PRETRAIN, PRETTY, PRIMARY  # noqa: F401 (re-exported)

BENCHMARKS = {n: PRETTY[n] for n in PRETRAIN}   # the stage-1 tables' columns (stage 2's: tables_instruct)
# Fed-CMP variants that get a row of their own in the main tables, beside Fed-CMP at its defaults
# (key: (pretty name, the hyperparameters that differ from the defaults))
MAIN_VARIANTS = {"fedcmp_sign": ("Fed-CMP (sign OPM)", {"opm_align": "sign"})}
ABLATION_KEYS = {"csc", "rwf", "opm"}        # what Table 3 varies
RWF_KEYS = {"rwf", "lam"}                    # what Table 4 varies


@dataclass
class Run:
    """One run directory: its records and the parts of its config the tables need."""
    path: Path
    method: str
    scenario: str
    seed: object
    hparams: dict = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)
    variant: str | None = None     # a sweep's --variant name (from ROOT/SCENARIO/METHOD+VARIANT/seedS)
    config: dict = field(default_factory=dict)   # RUN/config.yaml as written


def load_run(path) -> Run:
    """Read ``RUN/records.jsonl`` (+ ``RUN/config.yaml`` when present); DataError if there are no records."""
    from harness.core.records import read_records
    path = Path(path)
    records = read_records(RunDir(path).records)
    if not records:
        raise DataError(f"{path}: no records.jsonl (or it is empty); is this a run directory?")
    cfg = _read_config(RunDir(path).config)
    method = records[0].get("method") or cfg.get("aggregator", {}).get("method")
    hparams = (cfg.get("aggregator", {}).get("hparams") or {}).get(method, {}) or {}
    variant = path.parent.name.split("+", 1)[1] if path.name.startswith("seed") and "+" in path.parent.name else None
    return Run(path, method, str(records[0].get("scenario") or "").upper(), records[0].get("seed"),
               hparams, records, variant, cfg)


def discover(paths) -> list[Path]:
    """Run directories: each path that is one (it has records.jsonl), else every run directory under it
    (a sweep or study root); DataError naming a path that holds none."""
    found = []
    for p in map(Path, paths):
        if is_run_dir(p):
            found.append(p)
            continue
        # a checkpoint holds a copy of its run's records up to its round: not a run of its own
        under = sorted(r.parent for r in p.rglob(RECORDS)
                       if not any(part.startswith(".") or part == CHECKPOINTS for part in r.relative_to(p).parts))
        if not under:
            raise DataError(f"{p}: no run directories (records.jsonl) in it or under it")
        found += under
    return list(dict.fromkeys(found))


def _read_config(path: Path) -> dict:
    if not path.exists():
        return {}
    import yaml
    return yaml.safe_load(path.read_text()) or {}


def data_json(run: Run, name: str) -> dict | None:
    """``DATA/<name>`` (a JSON file the data pipeline wrote beside the run's shards), or None."""
    root = (run.config.get("data") or {}).get("root")
    path = Path(root) / name if root else None
    return json.loads(path.read_text()) if path and path.is_file() else None


def final_round(run: Run) -> int:
    """The last round with any benchmark record."""
    rounds = [r["round"] for r in run.records if r["benchmark"] in PRETTY]
    return max(rounds) if rounds else 0


def score(run: Run, bench: str, round_sel="final", metric: str | None = None) -> float | None:
    """One benchmark's value for a run (percent scale), None when missing.

    ``round_sel="final"``: the last round that has this benchmark; an int: exactly that round."""
    metric = metric or PRIMARY[bench]
    recs = [r for r in run.records if r["benchmark"] == bench and r["metric"] == metric]
    if not recs:
        return None
    rnd = max(r["round"] for r in recs) if round_sel == "final" else int(round_sel)
    recs = [r for r in recs if r["round"] == rnd]
    value = _client_value(recs, run.method)
    if value is not None and metric in FRACTION_METRICS:
        value *= 100.0
    return value


def score_se(run: Run, bench: str, round_sel="final") -> float | None:
    """The question-sampling standard error of :func:`score` (from the record's question count n)."""
    from harness.eval.sampling import sampling_se
    recs = [r for r in run.records if r["benchmark"] == bench and r["metric"] == PRIMARY[bench]]
    if not recs:
        return None
    rnd = max(r["round"] for r in recs) if round_sel == "final" else int(round_sel)
    n = next((r.get("n") for r in recs if r["round"] == rnd), 0)
    return sampling_se(bench, score(run, bench, round_sel), n)


def _client_value(recs: list[dict], method: str) -> float | None:
    """The global value; for a method that scores each client's projector (``local``: no global record)
    the mean over the clients (None if any is missing)."""
    glob = [r for r in recs if r["client"] == "global"]
    if glob:
        return glob[-1]["value"]
    per_client = {r["client"]: r["value"] for r in recs}
    if not per_client or any(v is None for v in per_client.values()):
        return None
    return sum(per_client.values()) / len(per_client)


def pretty_name(name: str) -> str:
    """A method's, a named variant's or a sweep variant's (``method+variant``) name as the tables print it."""
    from harness.core.registry import is_method, method_entry
    if name in MAIN_VARIANTS:
        return MAIN_VARIANTS[name][0]
    method, _, variant = name.partition("+")
    pretty = method_entry(method).pretty if is_method(method) else method     # flwr:FedYogi: "FedYogi (Flower)"
    return f"{pretty} ({variant})" if variant else pretty


def row_order(keys) -> list:
    """Row keys in the paper's method order, each method followed by its named and sweep variants."""
    from harness.core.registry import METHODS
    keys = set(keys)
    out = []
    for m in METHODS:
        out += [k for k in [m, *(v for v in MAIN_VARIANTS if v.startswith(m))] if k in keys]
        out += sorted(k for k in keys if k.startswith(m + "+"))
    return out + sorted(keys - set(out))


def variant_overrides(name: str) -> list:
    """``key=value`` overrides that run a method or a named variant (``fedcmp_sign``)."""
    if name not in MAIN_VARIANTS:
        return [f"method={name}"]
    return ["method=fedcmp", *(f"aggregator.fedcmp.{k}={v}" for k, v in MAIN_VARIANTS[name][1].items())]


def fedcmp_defaults() -> dict:
    """Every Fed-CMP hyperparameter's default, from the method itself."""
    import dataclasses
    from harness.core.registry import method_class
    return {f.name: f.default for f in dataclasses.fields(method_class("fedcmp")) if f.init}


def changes(run: Run) -> dict:
    """The hyperparameters of a Fed-CMP run that differ from the defaults ({} for any other method)."""
    if run.method != "fedcmp":
        return {}
    defaults = fedcmp_defaults()
    return {k: v for k, v in run.hparams.items() if defaults.get(k, object()) != v}


def ablation_label(run: Run) -> str | None:
    """Table 3 row of a Fed-CMP run that changes only csc, rwf (full or none: mag and qua are Table 4's)
    or opm: the enabled modules joined by '+', ``none`` when all three are off. FedAvg runs are row
    ``none`` too (the paper's row 1 equals FedAvg). None for any other run."""
    if run.method == "fedavg":
        return "none"
    if run.method != "fedcmp" or not set(changes(run)) <= ABLATION_KEYS:
        return None
    hp = {**fedcmp_defaults(), **run.hparams}
    if hp["rwf"] not in ("full", "none"):
        return None
    mods = [m for m, on in (("csc", hp["csc"]), ("rwf", hp["rwf"] != "none"), ("opm", hp["opm"])) if on]
    return "+".join(mods) or "none"


def rwf_label(run: Run) -> str | None:
    """Table 4 row of a Fed-CMP run that changes only rwf or lam: ``no_rwf``, ``rwf_mag``, ``rwf_qua``
    or ``lambda=<lam>`` (rwf=full); None for any other run."""
    if run.method != "fedcmp" or not set(changes(run)) <= RWF_KEYS:
        return None
    hp = {**fedcmp_defaults(), **run.hparams}
    if hp["rwf"] == "full":
        return f"lambda={float(hp['lam'])}"
    return {"none": "no_rwf", "mag": "rwf_mag", "qua": "rwf_qua"}.get(hp["rwf"])


def is_default_variant(run: Run) -> bool:
    """Fed-CMP at every default (any other method: always)."""
    return not changes(run)


def main_row(run: Run) -> str | None:
    """A run's row in the main tables: its method, its sweep variant (``method+variant``), a named
    variant (``MAIN_VARIANTS``), or None (a Fed-CMP run off its defaults that no name describes)."""
    if run.variant:
        return f"{run.method}+{run.variant}"
    diff = changes(run)
    if not diff:
        return run.method
    return next((key for key, (_, hp) in MAIN_VARIANTS.items() if diff == hp), None)


def curve_key(run: Run) -> str:
    """A run's line in a plot: its main-table row, else its method and the hyperparameters it changes."""
    return main_row(run) or run.method + "[" + ",".join(f"{k}={v}" for k, v in sorted(changes(run).items())) + "]"
