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
An empty cluster is re-seeded with the worst-scoring sample of the last pass. Every pass goes through
``harness.data.scan`` (cache-sized blocks, worker threads), which keeps the arithmetic and its order
of the plain loop: the same embeddings give the same centroids, labels and scores bit for bit.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from harness.data.layout import write_json
from harness.data.store import METRICS, EmbeddingStore, metric_dir
from harness.core.typecheck import bad_choice

if TYPE_CHECKING:                # torch is imported on first use: `fedma --help` imports this module
    from harness.data.scan import Scanner

log = logging.getLogger(__name__)


def view(metric: str, x, y):
    """The sample vectors z of ``metric`` (a torch tensor or numpy array, rows are samples)."""
    if metric == "ii":
        return x
    if metric == "tt":
        return y
    import torch
    return torch.cat([x, y], 1) if isinstance(x, torch.Tensor) else np.concatenate([x, y], 1)


def columns(metric: str, x, y) -> tuple:
    """The column groups whose concatenation is the sample vector z of ``metric`` (nothing copied)."""
    return (x,) if metric == "ii" else (y,) if metric == "tt" else (x, y)


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


def best_scores(scan: Scanner, z, w):
    """The best score z_i . w_k over k of every row of the in-memory z."""
    import torch
    return torch.cat([best for _, best, _ in scan.blocks((z,), w)])


def kmeanspp(metric: str, z, k: int, dx: int, gen, scan: Scanner):
    """k-means++ seeding: next centroid drawn with probability proportional to (bound - best score)."""
    import torch
    first = int(torch.randint(len(z), (1,), generator=gen))
    cent = normalize(metric, z[first:first + 1].clone(), dx)
    bound = 2.0 if metric in ("it", "xm") else 1.0
    for _ in range(1, k):
        best = best_scores(scan, z, weights(metric, cent, dx))
        gap = (bound - best).clamp_min(0) + 1e-12
        pick = int(torch.multinomial(gap / gap.sum(), 1, generator=gen))
        cent = torch.cat([cent, normalize(metric, z[pick:pick + 1].clone(), dx)])
    return cent


def lloyd_step(metric: str, chunks: Iterable, cent, dx: int, scan: Scanner):
    """One pass over ``chunks`` (column groups, see :func:`columns`): new centroids, total score, and
    the counts; an empty cluster gets the worst-scoring sample (its first occurrence)."""
    import torch
    k, w = len(cent), weights(metric, cent, dx)
    sums = torch.zeros_like(cent)
    counts = torch.zeros(k, dtype=torch.long, device=cent.device)
    total, worst, worst_z = 0.0, float("inf"), None
    for chunk in chunks:
        bests = []
        for z, best, label in scan.blocks(chunk, w):           # in row order: the sums' order is fixed
            sums.index_add_(0, label, z)
            counts += torch.bincount(label, minlength=k)
            i = int(best.argmin())
            if float(best[i]) < worst:
                worst, worst_z = float(best[i]), z[i:i + 1].clone()
            bests.append(best)
        total += float(torch.cat(bests).double().sum())        # per chunk, as the plain loop summed it
    new = normalize(metric, sums, dx)
    for j in torch.nonzero(counts == 0).flatten().tolist():
        new[j] = normalize(metric, worst_z, dx)[0]
    return new, total, counts


def fit(metric: str, store: EmbeddingStore, k: int = 5, seed: int = 0, restarts: int = 3, max_iter: int = 50,
        sample: int = 100_000, chunk: int = 65536, tol: float = 1e-6, device: str = "cpu",
        workers: int | None = None, work: dict | None = None):
    """Centroids (k, d) as a torch tensor, after subsample restarts and full chunked Lloyd passes
    (``workers``: scoring threads on CPU, default torch's thread count; the result does not depend on it;
    ``work``: a dict that receives each phase's :class:`~harness.data.scan.Tally`)."""
    if metric not in METRICS:
        raise bad_choice("metric", metric, METRICS)
    n, dx = len(store), store.meta["dim_image"]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n, sample), replace=False))
    from harness.data.scan import Scanner
    with Scanner(device, workers) as scan, scan.phase("restarts", work):
        cent = best_restart(metric, store, rows, k, seed, restarts, max_iter, tol, device, scan)

    def chunks():
        return (columns(metric, x, y) for _, x, y in store.chunks(chunk))
    with Scanner(device, workers) as scan, scan.phase("passes", work):
        cent, _ = _iterate(metric, chunks, cent, dx, max_iter if rows.size < n else 0, tol, n, scan)
    return cent


def best_restart(metric: str, store: EmbeddingStore, rows, k: int, seed: int, restarts: int, max_iter: int,
                 tol: float, device: str, scan: Scanner):
    """The centroids of the best (highest mean score) of ``restarts`` k-means++ starts refined by Lloyd
    steps on the in-memory subsample ``rows`` (freed on return, before the full passes)."""
    import torch
    dx = store.meta["dim_image"]
    z = torch.from_numpy(view(metric, *store.take(rows))).to(device)
    gen = torch.Generator().manual_seed(seed)
    best = None
    for r in range(restarts):
        cent = kmeanspp(metric, z, k, dx, gen, scan)
        cent, score = _iterate(metric, lambda: [(z,)], cent, dx, max_iter, tol, len(z), scan)
        log.info("cluster %s restart %d: mean score %.6f", metric, r, score)
        if best is None or score > best[1]:
            best = (cent, score)
    return best[0]


def _iterate(metric, chunks, cent, dx, max_iter, tol, n, scan):
    prev = -float("inf")
    for _ in range(max_iter):
        cent, total, _ = lloyd_step(metric, chunks(), cent, dx, scan)
        if total - prev <= tol * n:
            break
        prev = total
    return cent, prev / n if prev > -float("inf") else 0.0


def label_all(metric: str, store: EmbeddingStore, cent, chunk: int = 65536, device: str = "cpu",
              out: tuple | None = None, workers: int | None = None, work: dict | None = None):
    """Labels (int32) and scores s(i, label_i) (float32) of every row, chunk by chunk, into ``out``
    (two arrays of len(store), e.g. memory-mapped files) or new arrays."""
    from harness.data.scan import Scanner
    labels, scores = out or (np.empty(len(store), np.int32), np.empty(len(store), np.float32))
    dx = store.meta["dim_image"]
    w = weights(metric, cent, dx)
    with Scanner(device, workers) as scan, scan.phase("labels", work):
        for start, x, y in store.chunks(chunk):
            for _, best, label in scan.blocks(columns(metric, x, y), w):
                labels[start:start + len(best)] = label.cpu().numpy()
                scores[start:start + len(best)] = best.cpu().numpy()
                start += len(best)
    return labels, scores


def cluster(work, metric: str, k: int = 5, seed: int = 0, restarts: int = 3, max_iter: int = 50,
            sample: int = 100_000, chunk: int = 65536, device: str = "cpu", workers: int | None = None) -> dict:
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
    done.unlink(missing_ok=True)                  # labels are rewritten in place: never beside a stale report
    work = {}
    cent = fit(metric, store, k, seed, restarts, max_iter, sample, chunk, device=device, workers=workers, work=work)
    out.mkdir(parents=True, exist_ok=True)
    files = [np.lib.format.open_memmap(out / f"{name}.npy", "w+", dtype, (len(store),))   # O(1) memory at any N
             for name, dtype in (("labels", np.int32), ("scores", np.float32))]
    labels, scores = label_all(metric, store, cent, chunk, device, out=files, workers=workers, work=work)
    np.save(out / "centroids.npy", cent.cpu().numpy())
    report = {"step": "cluster", "params": params, "rows": len(store), "mean_score": float(scores.mean()),
              "counts": np.bincount(labels, minlength=k).tolist(), "work": work}
    for f in files:
        f.flush()
    write_json(done, report)
    return report
