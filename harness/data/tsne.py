"""Step 5b, ``tsne``: the paper's Figure 5, every partition viewed under every metric.

For partition P (rows: clusterings II..XM, their capped samples) and viewing metric V (columns), a
seeded subsample is embedded by scikit-learn's Barnes-Hut t-SNE on the
precomputed distances of V (x, y unit embeddings):

    II  d = 1 - x_i.x_j          TT  d = 1 - y_i.y_j
    IT  d = 1 - (x_i.x_j + y_i.y_j) / 2
    XM  d = 1 - (x_i.y_j + y_i.x_j) / 2   (diagonal set to 0; negative values clipped to 0)

and colored by client (cluster). Written as ``WORK/tsne/figure5.png`` with matplotlib's Agg backend.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.data.store import METRICS, EmbeddingStore, metric_dir


def distances(metric: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pairwise distances of the viewing metric (formulas in the module docstring)."""
    if metric == "ii":
        s = x @ x.T
    elif metric == "tt":
        s = y @ y.T
    elif metric == "it":
        s = (x @ x.T + y @ y.T) / 2
    else:
        s = (x @ y.T + y @ x.T) / 2
    d = np.clip(1.0 - s, 0.0, None)
    np.fill_diagonal(d, 0.0)
    return d


def project(d: np.ndarray, seed: int, max_iter: int = 500) -> np.ndarray:
    from sklearn.manifold import TSNE
    perplexity = float(min(30, max(2, (len(d) - 1) // 3)))
    return TSNE(metric="precomputed", init="random", random_state=seed, perplexity=perplexity,
                max_iter=max_iter).fit_transform(d)


def _legend(fig, plt, k: int) -> None:
    cmap = plt.get_cmap("tab10")
    handles = [plt.Line2D([], [], marker="o", ls="", color=cmap(c), label=f"client {c}") for c in range(k)]
    fig.legend(handles=handles, loc="lower center", ncol=k, fontsize=8, frameon=False)


def tsne(work, partitions: Sequence[str] = METRICS, views: Sequence[str] = METRICS, samples: int = 2000,
         seed: int = 0, max_iter: int = 500, out=None) -> Path:
    """Draw the grid partition x view; returns the PNG path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    store = EmbeddingStore(work)
    parts = [p for p in partitions if (metric_dir(work, p) / "keep.npy").is_file()]
    fig, axes = plt.subplots(len(parts), len(views), figsize=(3 * len(views), 3 * len(parts)), squeeze=False)
    for r, p in enumerate(parts):
        labels, keep = np.load(metric_dir(work, p) / "labels.npy"), np.load(metric_dir(work, p) / "keep.npy")
        rows = np.flatnonzero(keep)
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=min(samples, len(rows)), replace=False))
        x, y = store.take(rows)
        for c, v in enumerate(views):
            xy = project(distances(v, x, y), seed, max_iter)
            ax = axes[r][c]
            ax.scatter(xy[:, 0], xy[:, 1], c=labels[rows], cmap="tab10", vmin=0, vmax=9, s=2)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"partition {p.upper()}, view {v.upper()}", fontsize=8)
    _legend(fig, plt, max(int(np.load(metric_dir(work, p) / "labels.npy").max()) for p in parts) + 1)
    out = Path(out) if out else Path(work) / "tsne"
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(out / "figure5.png", dpi=120)
    plt.close(fig)
    return out / "figure5.png"
