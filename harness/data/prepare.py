"""``prepare``: embed once, then cluster, cap and split every requested scenario, then stats (and t-SNE).

Every step is idempotent, so rerunning ``prepare`` after an interruption resumes where it stopped.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

from harness.data.cap import cap as cap_step
from harness.data.cluster import cluster
from harness.data.embed import DEFAULT_MODEL, embed
from harness.data.split import split
from harness.data.stats import stats
from harness.data.store import METRICS, list_shards
from harness.core.typecheck import bad_choice

log = logging.getLogger(__name__)


def scenarios(name: str) -> Sequence[str]:
    """'all' or a comma-separated subset of ii, tt, it, xm (validated)."""
    chosen = list(METRICS) if name == "all" else [m.strip() for m in name.split(",") if m.strip()]
    for m in chosen:
        if m not in METRICS:
            raise bad_choice("scenario", m, METRICS + ("all",))
    return chosen


def prepare(shards: str, work, scenario: str = "all", model: str = DEFAULT_MODEL, batch: int = 64,
            device: str = "cpu", k: int = 5, seed: int = 0, restarts: int = 3, max_iter: int = 50,
            sample: int = 100_000, cap: int = 1_000_000, rounds: int = 10, heldout: int = 1000,
            tsne_samples: int = 2000, embedder=None, progress: bool = True) -> dict:
    """The whole pipeline; returns the per-step reports."""
    metrics = scenarios(scenario)
    urls = list_shards(shards)
    reports = {"embed": embed(shards, work, model, batch, device, embedder, progress)}
    for m in metrics:
        reports[f"cluster/{m}"] = cluster(work, m, k, seed, restarts, max_iter, sample, device=device)
        reports[f"cap/{m}"] = cap_step(work, m, cap)
        reports[f"split/{m}"] = split(work, m, rounds, seed, heldout=heldout, shards=urls)
        log.info("scenario %s ready: %s", m.upper(), reports[f"split/{m}"]["per_client_round"])
    reports["stats"] = stats(work)          # every capped scenario in WORK, as Table 9
    if tsne_samples > 0:
        from harness.data.tsne import tsne
        reports["tsne"] = str(tsne(work, metrics, samples=tsne_samples, seed=seed))
    return reports
