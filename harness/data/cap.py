"""Step 3, ``cap``: keep at most ``cap`` samples per cluster, the ones closest to their centroid.

Closeness is the clustering metric's own score s(i, k_i) (cosine similarity for II/TT, the summed
similarities for IT/XM; see ``cluster``), so pruning removes the samples farthest from the centroid:

    keep_k = the min(cap, |k|) members of cluster k with the largest s(i, k), ties broken by lower row.

The paper caps each of its five clusters at 1M (Appendix E.2, Table 9).
"""
from __future__ import annotations

import json

import numpy as np

from harness.data.layout import write_json
from harness.data.store import metric_dir
from harness.core.errors import DataError


def select(labels: np.ndarray, scores: np.ndarray, cap: int) -> np.ndarray:
    """Boolean mask of the kept rows: per label, the ``cap`` highest scores (stable on ties)."""
    keep = np.zeros(len(labels), bool)
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        order = np.argsort(-scores[members], kind="stable")
        keep[members[order[:cap]]] = True
    return keep


def cap(work, metric: str, cap: int = 1_000_000) -> dict:
    """Write ``WORK/<metric>/keep.npy`` and ``cap.json``; a finished identical run is a no-op."""
    out = metric_dir(work, metric)
    done = out / "cap.json"
    if not (out / "cluster.json").is_file():
        raise DataError(f"{out}: not clustered yet (run 'fedma data cluster --metric {metric}' first)")
    stamp = json.loads((out / "cluster.json").read_text())["params"]
    if done.is_file():
        report = json.loads(done.read_text())
        if report["cap"] == cap and report["cluster"] == stamp:
            return report
    labels, scores = np.load(out / "labels.npy"), np.load(out / "scores.npy")
    k = int(stamp["k"])
    keep = select(labels, scores, cap)
    np.save(out / "keep.npy", keep)
    report = {"step": "cap", "cap": cap, "cluster": stamp,
              "before": np.bincount(labels, minlength=k).tolist(),
              "after": np.bincount(labels[keep], minlength=k).tolist()}
    write_json(done, report)
    return report
