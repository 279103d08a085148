"""``fedma data embed | cluster | cap | split | stats | tsne | prepare`` (SPEC section 5) and ``instruct``
(stage 2's even split, :mod:`harness.instruct.data`).

All steps share ``--work DIR`` (intermediate results) and are idempotent. Heavy imports (torch,
transformers, sklearn) happen inside the commands, so ``fedma --help`` stays light.
"""
from __future__ import annotations

import argparse
import json
import sys

DEFAULT_MODEL = "google/siglip2-large-patch16-512"   # repeated here so --help imports nothing heavy
METRIC_CHOICES = "ii, tt, it, xm, a comma list or 'all'"


def _print(report) -> int:
    sys.stdout.write(json.dumps(report, indent=1, default=str) + "\n")
    return 0


def _metrics(args):
    from harness.data.prepare import scenarios
    return scenarios(args.metric)


def cmd_instruct(a) -> int:
    from harness.instruct.data import prepare_instruct
    return _print(prepare_instruct(a.source, a.out, a.clients, a.rounds, a.seed, a.images))


def cmd_embed(a) -> int:
    from harness.data.embed import embed
    return _print(embed(a.shards, a.work, a.model, a.batch, a.device, progress=not a.no_progress))


def cmd_cluster(a) -> int:
    from harness.data.cluster import cluster
    return _print({m: cluster(a.work, m, a.k, a.seed, a.restarts, a.max_iter, a.sample, device=a.device)
                   for m in _metrics(a)})


def cmd_cap(a) -> int:
    from harness.data.cap import cap
    return _print({m: cap(a.work, m, a.cap) for m in _metrics(a)})


def cmd_split(a) -> int:
    from harness.data.split import split
    metrics = _metrics(a)
    if a.out and len(metrics) > 1:
        from harness.core.errors import ConfigError
        raise ConfigError("split --out names one data root: give one --metric with it")
    shards = None
    if a.shards:
        from harness.data.store import list_shards
        shards = list_shards(a.shards)
    return _print({m: split(a.work, m, a.rounds, a.seed, a.out, a.heldout, shards, a.clients, a.alpha) for m in metrics})


def cmd_stats(a) -> int:
    from harness.data.stats import markdown, stats
    sys.stdout.write(markdown(stats(a.work, _metrics(a), a.out)))
    return 0


def cmd_tsne(a) -> int:
    from harness.data.tsne import tsne
    return _print(str(tsne(a.work, _metrics(a), samples=a.samples, seed=a.seed, out=a.out)))


def cmd_prepare(a) -> int:
    from harness.data.prepare import prepare
    return _print(prepare(a.shards, a.work, a.metric, a.model, a.batch, a.device, a.k, a.seed, a.restarts,
                          a.max_iter, a.sample, a.cap, a.rounds, a.heldout, a.tsne_samples,
                          progress=not a.no_progress))


def cmd_synthetic(a) -> int:
    from harness.data.synthetic import write_synthetic_federation
    root = write_synthetic_federation(a.out, clients=a.clients, rounds=a.rounds, per_round=a.per_round,
                                      heldout=a.heldout, seed=a.seed)
    sys.stdout.write(f"{root} (data.root for `fedma run tiny`)\n")
    return 0


def _common(p, metric=True, seed=True) -> None:
    p.add_argument("--work", required=True, help="working directory shared by all steps")
    if metric:
        p.add_argument("--metric", "--scenario", dest="metric", default="all", help=METRIC_CHOICES)
    if seed:
        p.add_argument("--seed", type=int, default=0)


def _embed_args(p) -> None:
    p.add_argument("--shards", required=True, help="directory of .tar shards, glob, brace pattern, URL or .txt list")
    p.add_argument("--model", default=DEFAULT_MODEL, help="HF SigLIP/SigLIP2/CLIP id or local path")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    p.add_argument("--no-progress", action="store_true")


def _cluster_args(p) -> None:
    p.add_argument("--k", type=int, default=5, help="clusters = clients (default 5)")
    p.add_argument("--restarts", type=int, default=3)
    p.add_argument("--max-iter", type=int, default=50)
    p.add_argument("--sample", type=int, default=100_000, help="rows for the seeded restarts")


def add_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="STEP", required=True)
    p = sub.add_parser("synthetic", help="a small ready federation of coloured squares (for the tiny preset)")
    p.add_argument("--out", required=True, help="the data root to write")
    for flag, default in (("--clients", 5), ("--rounds", 3), ("--per-round", 16), ("--heldout", 16), ("--seed", 0)):
        p.add_argument(flag, type=int, default=default)
    p.set_defaults(func=cmd_synthetic)
    p = sub.add_parser("instruct", help="stage 2: LLaVA instruction records split evenly among the clients")
    p.add_argument("--source", action="append", required=True, metavar="NAME=PATH",
                   help="a source dataset: LLaVA JSON list (with --images) or KEY.jpg+KEY.json shards; repeat")
    p.add_argument("--images", default=None, help="the folder a JSON list's image paths are relative to")
    p.add_argument("--out", required=True, help="the data root to write (data.root of the stage-2 run)")
    for flag, default in (("--clients", 5), ("--rounds", 1), ("--seed", 0)):
        p.add_argument(flag, type=int, default=default)
    p.set_defaults(func=cmd_instruct)
    p = sub.add_parser("embed", help="SigLIP2/CLIP image and caption embeddings (float16, per shard)")
    _common(p, metric=False, seed=False), _embed_args(p)
    p.set_defaults(func=cmd_embed)
    p = sub.add_parser("cluster", help="spherical k-means under II, TT, IT or XM")
    _common(p), _cluster_args(p)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_cluster)
    p = sub.add_parser("cap", help="keep the --cap samples closest to each centroid")
    _common(p, seed=False)
    p.add_argument("--cap", type=int, default=1_000_000)
    p.set_defaults(func=cmd_cap)
    p = sub.add_parser("split", help="T disjoint seeded round subsets per client, resharded")
    _common(p)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--heldout", type=int, default=1000, help="pruned rows written to ROOT/heldout")
    p.add_argument("--out", default=None, help="data root (default WORK/<metric>/data)")
    p.add_argument("--clients", type=int, default=None, help="K clients other than the k clusters: each cluster "
                   "dealt among them in Dirichlet(--alpha) proportions (counts in ROOT/client_clusters.json)")
    p.add_argument("--alpha", type=float, default=1.0, help="Dirichlet concentration (FedMLLM: 0.5, 1, 5)")
    p.add_argument("--shards", default=None, help="where the embedded source shards are now (default: the "
                   "paths recorded by embed; checked by content)")
    p.set_defaults(func=cmd_split)
    p = sub.add_parser("stats", help="Table 9 as CSV, LaTeX and Markdown")
    _common(p, seed=False)
    p.add_argument("--out", default=None, help="default WORK/stats")
    p.set_defaults(func=cmd_stats)
    p = sub.add_parser("tsne", help="Figure 5: t-SNE grid partition x viewing metric")
    _common(p)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--out", default=None, help="default WORK/tsne")
    p.set_defaults(func=cmd_tsne)
    p = sub.add_parser("prepare", help="all steps for one or all four scenarios")
    _common(p), _embed_args(p), _cluster_args(p)
    p.add_argument("--cap", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--heldout", type=int, default=1000, help="pruned rows written to ROOT/heldout")
    p.add_argument("--tsne-samples", type=int, default=2000, help="0 skips the t-SNE figure")
    p.set_defaults(func=cmd_prepare)
