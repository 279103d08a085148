"""Loggers from the record store: ``logging.backends=[tensorboard, wandb, mlflow]`` (any subset).

Rank 0 mirrors every record as the server adds it (train loss and alignment error per client, held-out
loss, benchmark scores, Fed-CMP's server internals, communication, privacy) and each round's phase
timings, with the round as the step: tag ``BENCHMARK/METRIC`` for the global model and
``BENCHMARK/METRIC/client_KK`` for a client's. The resolved config goes in as hyperparameters, the run id
and config hash as tags. The record store stays the source of truth: a backend that cannot start or
log (package missing, no network, bad key) costs one warning line and is switched off, never the run.
Everything works offline: TensorBoard event files in ``RUN/tensorboard``, W&B in offline mode under
``RUN/wandb``, MLflow in a file store ``RUN/mlruns`` (``logging.mlflow_uri`` for a server).
``fedma log sync RUN --backend X`` replays a finished run's records.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from harness.core.rundir import RunDir

log = logging.getLogger(__name__)
BACKENDS = ("tensorboard", "wandb", "mlflow")


def tag_of(record: dict) -> Optional[str]:
    """The scalar's name, or None for a record without a numeric value."""
    if record.get("value") is None:
        return None
    who = record.get("client")
    base = f"{record['benchmark']}/{record['metric']}"
    return base if who in (None, "global") else f"{base}/client_{int(who):02d}" if str(who).isdigit() else f"{base}/{who}"


def scalars_by_round(records: Iterable[dict]) -> Dict[int, Dict[str, float]]:
    out: Dict[int, Dict[str, float]] = {}
    for r in records:
        tag = tag_of(r)
        if tag is not None:
            out.setdefault(int(r["round"]), {})[tag] = float(r["value"])
    return out


class TensorBoard:
    def __init__(self, run_dir: Path, run_id: str, config: dict, tags: dict):
        import yaml
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        self.writer.add_text("config", "```\n" + yaml.safe_dump(config, sort_keys=True) + "```", 0)
        self.writer.add_text("tags", ", ".join(f"{k}={v}" for k, v in tags.items()), 0)

    def log(self, step: int, scalars: Dict[str, float]) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def finish(self) -> None:
        self.writer.close()


class WandB:
    def __init__(self, run_dir: Path, run_id: str, config: dict, tags: dict, project: str = "fedma"):
        import os
        import wandb
        os.environ.setdefault("WANDB_MODE", "offline")      # online only when the user asks for it
        os.environ.setdefault("WANDB_SILENT", "true")
        if os.environ["WANDB_MODE"] == "disabled":          # asked for and switched off: say so, once
            raise RuntimeError("WANDB_MODE=disabled in the environment; unset it (offline is the default)")
        (run_dir / "wandb").mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, name=run_id, dir=str(run_dir), config=config,
                              tags=[f"{k}={v}" for k, v in tags.items()], reinit="create_new")
        self.run.define_metric("round")
        self.run.define_metric("*", step_metric="round")    # resumed rounds may repeat a step

    def log(self, step: int, scalars: Dict[str, float]) -> None:
        self.run.log({**scalars, "round": step})

    def finish(self) -> None:
        self.run.finish()


class MLflow:
    def __init__(self, run_dir: Path, run_id: str, config: dict, tags: dict, uri: Optional[str] = None,
                 project: str = "fedma"):
        import os
        from mlflow.tracking import MlflowClient
        if uri is None:   # MLflow 3 keeps its file store behind an opt-in; a server or database is logging.mlflow_uri
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=uri or (run_dir / "mlruns").resolve().as_uri())
        exp = self.client.get_experiment_by_name(project)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(project)
        self.run_id = self.client.create_run(exp_id, run_name=run_id, tags=tags).info.run_id
        from harness.core.config import _flatten   # dotted keys, as the config hash and --explain use them
        flat = _flatten(config)
        for key in sorted(flat):
            self.client.log_param(self.run_id, key, str(flat[key])[:500])

    def log(self, step: int, scalars: Dict[str, float]) -> None:
        from mlflow.entities import Metric
        import time
        now = int(time.time() * 1000)
        metrics = [Metric(_mlflow_key(k), v, now, step) for k, v in scalars.items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def finish(self) -> None:
        self.client.set_terminated(self.run_id)


def _mlflow_key(tag: str) -> str:
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in tag)


class Loggers:
    """The chosen backends; each failure switches that backend off with one warning."""

    def __init__(self, backends: List[str], run_dir, run_id: str, config: dict, tags: dict, **options):
        self.active = {}
        makers = {"tensorboard": TensorBoard, "wandb": WandB, "mlflow": MLflow}
        wants = {"tensorboard": (), "wandb": ("project",), "mlflow": ("uri", "project")}   # each maker's options
        for name in backends:
            try:
                extra = {k: options[k] for k in wants[name] if k in options}
                self.active[name] = makers[name](Path(run_dir), run_id, config, tags, **extra)
            except Exception as e:   # the record store is the source of truth: never the run
                log.warning("logging backend %s is off: %s: %s", name, type(e).__name__, e)

    def log_records(self, records: Iterable[dict]) -> None:
        for step, scalars in sorted(scalars_by_round(records).items()):
            self.log(step, scalars)

    def log(self, step: int, scalars: Dict[str, float]) -> None:
        for name in list(self.active):
            self._call(name, "log", step, scalars)

    def finish(self) -> None:
        for name in list(self.active):
            self._call(name, "finish")

    def _call(self, name: str, what: str, *args) -> None:
        try:
            getattr(self.active[name], what)(*args)
        except Exception as e:
            log.warning("logging backend %s is off after a failed %s: %s: %s", name, what, type(e).__name__, e)
            self.active.pop(name, None)


def for_run(cfg, run_dir, base: dict) -> Loggers:
    lg = cfg.logging
    return Loggers(list(lg.backends), run_dir, base["run_id"], cfg.to_dict(),
                   {"run_id": base["run_id"], "config_hash": base["config_hash"], "method": base["method"]},
                   project=lg.project, uri=lg.mlflow_uri)


def sync(run_dir, backends: List[str], project: str = "fedma", uri: Optional[str] = None) -> Dict[str, int]:
    """Replay a finished run's records (and timings) into ``backends``; {backend: scalars written}."""
    import json
    from harness.core.config import read_yaml
    from harness.core.records import read_records
    run_dir = Path(run_dir)
    paths = RunDir(run_dir)
    records = read_records(paths.records)
    cfg = read_yaml(str(paths.config)) if paths.config.is_file() else {}
    first = records[0] if records else {}
    tags = {"run_id": first.get("run_id", run_dir.name), "config_hash": first.get("config_hash", ""),
            "method": first.get("method", "")}
    out = Loggers(backends, run_dir, tags["run_id"], cfg, tags, project=project, uri=uri)
    by_round = scalars_by_round(records)
    timings = paths.timings
    for line in (timings.read_text().splitlines() if timings.is_file() else []):
        row = json.loads(line)
        by_round.setdefault(int(row.pop("round")), {}).update({f"timing/{k}_s": float(v) for k, v in row.items()})
    for step, scalars in sorted(by_round.items()):
        out.log(step, scalars)
    out.finish()
    return {name: sum(len(s) for s in by_round.values()) for name in out.active}
