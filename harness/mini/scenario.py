"""The mini world through the real data pipeline (SPEC 5): an unlabeled pool of the five domains in unequal
shares, embedded by the contrastive tiny CLIP (standing in for SigLIP2), clustered into five clients under
a scenario's similarity (II, TT, IT, XM), capped, split into ten rounds and resharded.

Clients are clusters, not domains: each mixes domains and attributes in its own proportions, and the four
scenarios give different partitions of the same pool (measured by ``partition_agreement``).
"""
from __future__ import annotations

import fcntl
from pathlib import Path

from harness.mini import world
from harness.mini.cache import cache_root, cached, content_tag, recipe_tag

POOL = {"n": 16000, "seed": 0}
CLIENTS = 5


def ensure_pool(n: int = POOL["n"], seed: int = POOL["seed"]) -> Path:
    return cached(cache_root() / f"pool-s{seed}-n{n}", lambda tmp: world.write_pool(tmp, n, seed))


def ensure_validation(n: int = 500, seed: int = 0) -> Path:
    """Validation pairs (``fedma tune``'s objective), drawn like the pool on a stream of their own."""
    from harness.data.layout import write_shards
    return cached(cache_root() / f"validation-s{seed}-n{n}",
                  lambda tmp: write_shards(tmp, world.validation_records(n, seed)))


def ensure_scenario(scenario: str = "ii", per_round: int = 256, rounds: int = 10, heldout: int = 250,
                    seed: int = 0, pool: dict = POOL, clients: int = CLIENTS, alpha: float = 1.0) -> Path:
    """The engine-ready data root of one scenario (or ``all``: every scenario prepared, II returned).

    Each cluster is capped at ``per_round * rounds`` samples, so a client trains on at most ``per_round``
    samples per round; the held-out rows are drawn from the samples the cap pruned. ``clients`` other
    than the five clusters: the clusters dealt among them in Dirichlet(``alpha``) proportions."""
    from harness.data.prepare import prepare, scenarios
    from harness.mini.models import ensure_clip
    metrics = scenarios(scenario)
    pool_dir = ensure_pool(pool["n"], pool["seed"])
    clip = ensure_clip()
    embedded = ensure_embedded(pool_dir, clip)
    params = dict(k=CLIENTS, seed=seed, cap=per_round * rounds, rounds=rounds, heldout=heldout)
    work = cache_root() / f"work-{recipe_tag(pool, params, {'clip': content_tag(clip)})}"
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "embed").exists():          # every cap/split variant shares one embedding of the pool
        # relative, so that a moved or copied cache keeps its links
        (work / "embed").symlink_to(Path("..") / embedded.name / "embed", target_is_directory=True)
    with open(work / ".prepare.lock", "w") as lock:        # prepare resumes in place; one writer at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all((data_root(work, m) / "manifest.json").is_file() for m in metrics):
            prepare(str(pool_dir), work, ",".join(metrics), model=str(clip), batch=256, tsne_samples=0,
                    progress=False, **params)
        if clients != CLIENTS:
            return dirichlet_root(work, metrics[0], clients, alpha, params)
    return data_root(work, metrics[0])


def dirichlet_root(work: Path, metric: str, clients: int, alpha: float, params: dict) -> Path:
    """The scenario's five clusters dealt among ``clients`` (``fedma data split --clients``), beside it."""
    from harness.data.split import split
    root = Path(work) / metric / f"data-k{clients}-a{alpha:g}"
    split(work, metric, params["rounds"], params["seed"], out=root, heldout=params["heldout"],
          clients=clients, alpha=alpha)
    return root


def ensure_embedded(pool_dir: Path, clip: Path) -> Path:
    """The pool's image and caption embeddings by the tiny CLIP (the pipeline's ``embed`` step), cached
    under the CLIP's content hash: a CLIP rebuilt from its recipe on another CPU has the same name and
    other bytes, and must not reuse embeddings of the shipped one."""
    from harness.data.embed import embed
    return cached(cache_root() / f"embed-{pool_dir.name}-{content_tag(clip)}",
                  lambda tmp: embed(str(pool_dir), tmp, str(clip), batch=256, progress=False))


def data_root(work: Path, metric: str) -> Path:
    return Path(work) / metric / "data"


def partition_agreement(work: Path, metrics=("ii", "tt", "it", "xm")) -> dict:
    """Adjusted Rand index between every pair of prepared scenarios' cluster labels."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score
    from harness.data.store import metric_dir
    labels = {m: np.load(metric_dir(work, m) / "labels.npy") for m in metrics
              if (metric_dir(work, m) / "labels.npy").is_file()}
    names = sorted(labels)
    return {f"{a}-{b}": float(adjusted_rand_score(labels[a], labels[b]))
            for i, a in enumerate(names) for b in names[i + 1:]}
