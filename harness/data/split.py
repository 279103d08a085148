"""Step 4, ``split``: each client's kept samples into T disjoint seeded round subsets, resharded.

Client k is cluster k (or, with ``clients=K``, a Dirichlet(alpha) mix of the clusters: ``dirichlet_clients``,
counts in ``ROOT/client_clusters.json``). Its kept rows (ascending) are permuted by ``numpy.random.default_rng([seed, k])``
and cut by ``numpy.array_split`` into T nearly equal parts: round t (1..T) trains on part t-1. The
subsets are disjoint and cover the capped set.

Resharding streams the source shards once: source shard s contributes ``shard-sssss.tar`` to every
``client_KK/round_TT`` directory of the layout (``harness.data.layout``) that has records from it, so
the step resumes per source shard (a marker per finished shard) and never holds a round in memory.
``index.json`` per round and ``manifest.json`` (written last) finish it; an identical rerun is a no-op.
``heldout`` rows (default 1000), a seeded sample of the rows that ``cap`` pruned, go to ``ROOT/heldout``
for the built-in held-out caption loss; they never appear in any client's rounds.
"""
from __future__ import annotations

import json
import os
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np

from harness.data.embed import IMAGE_EXTS
from harness.data.layout import _add, heldout_dir, round_dir, write_json
from harness.data.store import EmbeddingStore, metric_dir
from harness.core.errors import DataError


def assign_rounds(labels: np.ndarray, keep: np.ndarray, k: int, rounds: int, seed: int) -> np.ndarray:
    """Round number (1..T) of every kept row, 0 for rows pruned by ``cap``."""
    out = np.zeros(len(labels), np.int16)
    for c in range(k):
        rows = np.flatnonzero(keep & (labels == c))
        rows = rows[np.random.default_rng([seed, c]).permutation(len(rows))]
        for t, part in enumerate(np.array_split(rows, rounds), start=1):
            out[part] = t
    return out


def dirichlet_clients(labels: np.ndarray, keep: np.ndarray, k: int, clients: int, alpha: float, seed: int) -> np.ndarray:
    """Client id (0..K-1) of every row: each cluster's kept rows are shuffled and cut among the K clients
    in proportions p ~ Dirichlet(alpha, ..., alpha) drawn per cluster (Hsu et al., 2019; FedMLLM uses
    alpha = 0.5, 1, 5): small alpha gives each cluster to few clients, large alpha an even mix."""
    out = np.full(len(labels), -1, np.int32)
    for c in range(k):
        rng = np.random.default_rng([seed, 7, c])
        rows = np.flatnonzero(keep & (labels == c))
        rows = rows[rng.permutation(len(rows))]
        cuts = (np.cumsum(rng.dirichlet(np.full(clients, alpha))) * len(rows)).round().astype(int)[:-1]
        for client, part in enumerate(np.split(rows, cuts)):
            out[part] = client
    return out


def client_cluster_counts(clients: np.ndarray, labels: np.ndarray, keep: np.ndarray, k: int, n: int) -> list:
    """[client][cluster] kept-row counts: the per-client statistics of a Dirichlet split."""
    counts = np.zeros((n, k), int)
    np.add.at(counts, (clients[keep], labels[keep]), 1)
    return counts.tolist()


def pick_heldout(rnd: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Mark (with -1) a seeded sample of ``n`` rows among those pruned by ``cap`` (never a training row)."""
    pruned = np.flatnonzero(rnd == 0)
    chosen = np.random.default_rng([seed, 10**6]).choice(pruned, size=min(n, len(pruned)), replace=False)
    out = rnd.copy()
    out[chosen] = -1
    return out


def reshard_one(store: EmbeddingStore, s: int, labels, rnd, root: Path, url: str | None = None) -> dict:
    """Write source shard ``s``'s kept records (read from ``url``, by default the path recorded when it was
    embedded) into the round directories; returns {"k/t": count}."""
    from harness.data.reader import SkipReport, iter_shards
    info = store.part_info(s)
    row = {key: int(store.offsets[s]) + i for i, key in enumerate(info["keys"])}
    tars, counts = {}, Counter()
    name = f"shard-{s:05d}.tar"
    for rec in iter_shards([url or info["url"]], SkipReport()):
        i = row.get(rec.get("__key__"))
        if i is None or rnd[i] == 0:
            continue                        # skipped at embed time (counted there) or pruned by cap
        where = (int(labels[i]), int(rnd[i])) if rnd[i] > 0 else HELDOUT
        if where not in tars:
            d = _out_dir(root, where)
            d.mkdir(parents=True, exist_ok=True)
            tars[where] = tarfile.open(d / f".{name}.tmp", "w", format=tarfile.USTAR_FORMAT)
        key, ext = rec["__key__"], next(e for e in IMAGE_EXTS if e in rec)
        _add(tars[where], f"{key}.jpg", rec[ext])
        _add(tars[where], f"{key}.txt", rec["txt"])
        _add(tars[where], f"{key}.json", rec.get("json") or b"{}")
        counts[_tag(where)] += 1
    for where, tar in tars.items():
        tar.close()
        d = _out_dir(root, where)
        os.replace(d / f".{name}.tmp", d / name)
    return dict(counts)


HELDOUT = ("heldout",)


def _out_dir(root: Path, where) -> Path:
    return heldout_dir(root) if where == HELDOUT else round_dir(root, *where)


def _tag(where) -> str:
    return "heldout" if where == HELDOUT else f"{where[0]}/{where[1]}"


def split(work, metric: str, rounds: int = 10, seed: int = 0, out=None, heldout: int = 1000,
          shards: list | None = None, clients: int | None = None, alpha: float = 1.0) -> dict:
    """Reshard the capped clusters of ``metric`` into ``out`` (default ``WORK/<metric>/data``).

    ``shards``: where the source shards are now (the list ``embed`` was given); by default the paths
    recorded when they were embedded, which another checkout or a moved cache may not have.
    ``clients``: K clients other than the k clusters, dealt by :func:`dirichlet_clients` (``alpha``)."""
    mdir = metric_dir(work, metric)
    if not (mdir / "cap.json").is_file():
        raise DataError(f"{mdir}: not capped yet (run 'fedma data cap --metric {metric}' first)")
    cap_report = json.loads((mdir / "cap.json").read_text())
    k = int(cap_report["cluster"]["k"])
    root = Path(out) if out else mdir / "data"
    params = {"rounds": rounds, "seed": seed, "heldout": heldout, "cap": cap_report["cap"],
              "cluster": cap_report["cluster"]}
    if clients is not None and clients != k:
        params["dirichlet"] = {"clients": clients, "alpha": alpha}
    manifest = root / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("params") == params:
        return json.loads(manifest.read_text())["report"]
    labels, keep = np.load(mdir / "labels.npy"), np.load(mdir / "keep.npy")
    if "dirichlet" in params:
        owner = dirichlet_clients(labels, keep, k, clients, alpha, seed)
        root.mkdir(parents=True, exist_ok=True)
        write_json(root / "client_clusters.json", {"alpha": alpha, "clusters": k,
                                                   "counts": client_cluster_counts(owner, labels, keep, k, clients)})
        labels, k = np.where(keep, owner, labels), clients
    rnd = pick_heldout(assign_rounds(labels, keep, k, rounds, seed), heldout, seed)
    store = EmbeddingStore(work)
    if shards is not None:
        check_sources(store, shards)
    marks = root / ".split_parts"
    _reset_if_changed(root, marks, params)
    per_shard = []
    for s in range(len(store.sizes)):
        mark = marks / f"{s:05d}.json"
        if not mark.is_file():
            write_json(mark, reshard_one(store, s, labels, rnd, root, shards[s] if shards else None))
        per_shard.append(json.loads(mark.read_text()))
    return _finish(root, k, rounds, metric, params, per_shard)


def check_sources(store: EmbeddingStore, shards: list) -> None:
    """The given source shards are the ones that were embedded (by content, wherever they lie now)."""
    from harness.data.embed import shards_mismatch
    from harness.data.identity import shard_identity
    recorded = store.meta.get("made_from", {}).get("shards")
    if recorded is None:   # embedded before content identities: the count is all that can be checked
        problem = None if len(shards) == len(store.sizes) else f"{len(store.sizes)} shards, not these {len(shards)}"
    else:
        problem = shards_mismatch(recorded, [shard_identity(u) for u in shards])
    if problem:
        raise DataError(f"split --shards: {store.work / 'embed'} was embedded from {problem}; give the shards "
                        f"it was embedded from, or embed these into a new --work directory")


def _reset_if_changed(root: Path, marks: Path, params: dict) -> None:
    stamp = marks / "params.json"
    if stamp.is_file() and json.loads(stamp.read_text()) != params:
        raise DataError(f"{root}: a split with other parameters is in progress; remove it or choose another --out")
    marks.mkdir(parents=True, exist_ok=True)
    write_json(stamp, params)


def _finish(root: Path, k: int, rounds: int, metric: str, params: dict, per_shard: list) -> dict:
    """index.json of every round directory (from the per-shard markers), then manifest.json."""
    per = [[0] * rounds for _ in range(k)]
    for c in range(k):
        for t in range(1, rounds + 1):
            d = round_dir(root, c, t)
            d.mkdir(parents=True, exist_ok=True)
            shards = {f"shard-{s:05d}.tar": n[f"{c}/{t}"] for s, n in enumerate(per_shard) if f"{c}/{t}" in n}
            write_json(d / "index.json", {"count": sum(shards.values()), "shards": shards})
            per[c][t - 1] = sum(shards.values())
    held = {f"shard-{s:05d}.tar": n["heldout"] for s, n in enumerate(per_shard) if "heldout" in n}
    if held:
        write_json(heldout_dir(root) / "index.json", {"count": sum(held.values()), "shards": held})
    report = {"step": "split", "clients": k, "rounds": rounds, "per_client_round": per,
              "total": int(sum(map(sum, per))), "heldout": sum(held.values())}
    write_json(root / "manifest.json", {"clients": k, "rounds": rounds, "scenario": metric.upper(),
                                        "seed": params["seed"], "params": params, "report": report})
    return report
