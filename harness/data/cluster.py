"""Step 2, ``cluster``: spherical k-means under the four similarities of Appendix E.2 (Eqs. 20-23).

With x_i, y_i the unit image and caption embeddings, each metric is a sample vector z_i, centroids C_k
and a score s(i, k) = z_i . w_k that is maximized (argmax assignment):

    II  z = x,      w_k = c_k                 s = x_i.c_k           c_k = normalize(sum_{i in k} x_i)
    TT  z = y,      w_k = c_k                 s = y_i.c_k           c_k = normalize(sum_{i in k} y_i)
    IT  z = [x; y], w_k = c_k                 s = x_i.c_kx + y_i.c_ky, c_k = normalize(sum [x_i; y_i])
    XM  z = [x; y], w_k = [c_ky; c_kx]        s = x_i.c_ky + y_i.c_kx, c_kx, c_ky normalized separately

IT is k-means on the concatenation [x; y] (one joint normalization). XM assigns a sample to the
centroid pair whose *text* centroid matches its image and whose *image* centroid matches its caption.

Algorithm: ``restarts`` seeded k-means++ starts, each refined by Lloyd steps on a seeded in-memory
subsample (``sample`` rows); the best (highest mean score) is then refined by full Lloyd passes over
the memory-mapped float16 embeddings in chunks (memory O(chunk * d)), on CPU or GPU with torch.
An empty cluster is re-seeded with the worst-scoring sample of the last pass.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable

import numpy as np

from harness.data.layout import write_json
from harness.data.store import METRICS, EmbeddingStore, metric_dir
from harness.typecheck import bad_choice

log = logging.getLogger(__name__)


def view(metric: str, x, y):
    """The sample vectors z of ``metric`` (a torch tensor or numpy array, rows are samples)."""
    if metric == "ii":
        return x
    if metric == "tt":
        return y
    import torch
    return torch.cat([x, y], 1) if isinstance(x, torch.Tensor) else np.concatenate([x, y], 1)


def normalize(metric: str, sums, dx: int):
    """Centroids from per-cluster sums: unit rows (XM: each modality half separately)."""
    import torch
    if metric != "xm":
        return sums / sums.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return torch.cat([normalize("ii", sums[:, :dx], dx), normalize("ii", sums[:, dx:], dx)], 1)


def weights(metric: str, cent, dx: int):
    """w_k such that the score is z . w_k (XM swaps the modality halves)."""
    import torch
    return torch.cat([cent[:, dx:], cent[:, :dx]], 1) if metric == "xm" else cent


def assign(metric: str, z, cent, dx: int) -> tuple:
    """(best score, label) of every row of z."""
    return (z @ weights(metric, cent, dx).T).max(1)


def kmeanspp(metric: str, z, k: int, dx: int, gen):
    """k-means++ seeding: next centroid drawn with probability proportional to (bound - best score)."""
    import torch
    first = int(torch.randint(len(z), (1,), generator=gen))
    cent = normalize(metric, z[first:first + 1].clone(), dx)
    bound = 2.0 if metric in ("it", "xm") else 1.0
    for _ in range(1, k):
        best, _ = assign(metric, z, cent, dx)
        gap = (bound - best).clamp_min(0) + 1e-12
        pick = int(torch.multinomial(gap / gap.sum(), 1, generator=gen))
        cent = torch.cat([cent, normalize(metric, z[pick:pick + 1].clone(), dx)])
    return cent


def lloyd_step(metric: str, chunks: Iterable, cent, dx: int):
    """One pass: new centroids, total score, and the worst-scoring sample (for empty clusters)."""
    import torch
    k = len(cent)
    sums = torch.zeros_like(cent)
    counts = torch.zeros(k, dtype=torch.long, device=cent.device)
    total, worst, worst_z = 0.0, float("inf"), None
    for z in chunks:
        best, label = assign(metric, z, cent, dx)
        sums.index_add_(0, label, z)
        counts += torch.bincount(label, minlength=k)
        total += float(best.double().sum())
        i = int(best.argmin())
        if float(best[i]) < worst:
            worst, worst_z = float(best[i]), z[i:i + 1].clone()
    new = normalize(metric, sums, dx)
    for j in torch.nonzero(counts == 0).flatten().tolist():
        new[j] = normalize(metric, worst_z, dx)[0]
    return new, total, counts


def fit(metric: str, store: EmbeddingStore, k: int = 5, seed: int = 0, restarts: int = 3, max_iter: int = 50,
        sample: int = 100_000, chunk: int = 65536, tol: float = 1e-6, device: str = "cpu"):
    """Centroids (k, d) as a torch tensor, after subsample restarts and full chunked Lloyd passes."""
    import torch
    if metric not in METRICS:
        raise bad_choice("metric", metric, METRICS)
    n, dx = len(store), store.meta["dim_image"]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n, sample), replace=False))
    z = torch.from_numpy(view(metric, *store.take(rows))).to(device)
    gen = torch.Generator().manual_seed(seed)
    best = None
    for r in range(restarts):
        cent = kmeanspp(metric, z, k, dx, gen)
        cent, score = _iterate(metric, lambda: [z], cent, dx, max_iter, tol, len(z))
        log.info("cluster %s restart %d: mean score %.6f", metric, r, score)
        if best is None or score > best[1]:
            best = (cent, score)

    def chunks():
        for _, x, y in store.chunks(chunk):
            yield view(metric, torch.from_numpy(np.asarray(x, np.float32)),
                       torch.from_numpy(np.asarray(y, np.float32))).to(device)
    cent, _ = _iterate(metric, chunks, best[0], dx, max_iter if len(z) < n else 0, tol, n)
    return cent


def _iterate(metric, chunks, cent, dx, max_iter, tol, n):
    prev = -float("inf")
    for _ in range(max_iter):
        cent, total, _ = lloyd_step(metric, chunks(), cent, dx)
        if total - prev <= tol * n:
            break
        prev = total
    return cent, prev / n if prev > -float("inf") else 0.0


def label_all(metric: str, store: EmbeddingStore, cent, chunk: int = 65536, device: str = "cpu"):
    """Labels (int32) and scores s(i, label_i) (float32) of every row, chunk by chunk."""
    import torch
    labels, scores = np.empty(len(store), np.int32), np.empty(len(store), np.float32)
    dx = store.meta["dim_image"]
    for start, x, y in store.chunks(chunk):
        z = view(metric, torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.float32)))
        best, label = assign(metric, z.to(device), cent, dx)
        labels[start:start + len(z)] = label.cpu().numpy()
        scores[start:start + len(z)] = best.cpu().numpy()
    return labels, scores


def cluster(work, metric: str, k: int = 5, seed: int = 0, restarts: int = 3, max_iter: int = 50,
            sample: int = 100_000, chunk: int = 65536, device: str = "cpu") -> dict:
    """Cluster the embeddings in ``WORK`` under ``metric``; a finished identical run is a no-op."""
    if metric not in METRICS:
        raise bad_choice("metric", metric, METRICS)
    store = EmbeddingStore(work)
    params = {"metric": metric, "k": k, "seed": seed, "restarts": restarts, "max_iter": max_iter,
              "sample": sample, "embedded": len(store), "model": store.meta["model"]}
    out = metric_dir(work, metric)
    done = out / "cluster.json"
    if done.is_file() and json.loads(done.read_text())["params"] == params:
        return json.loads(done.read_text())
    cent = fit(metric, store, k, seed, restarts, max_iter, sample, chunk, device=device)
    labels, scores = label_all(metric, store, cent, chunk, device)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "centroids.npy", cent.cpu().numpy())
    np.save(out / "labels.npy", labels)
    np.save(out / "scores.npy", scores)
    report = {"step": "cluster", "params": params, "rows": len(store), "mean_score": float(scores.mean()),
              "counts": np.bincount(labels, minlength=k).tolist()}
    write_json(done, report)
    return report
