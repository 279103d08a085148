"""Data pipeline benchmark: embedding throughput (tiny random CLIP on CPU), and spherical k-means over
N x 1024 float16 memory-mapped vectors (ours, chunked torch) vs scikit-learn's MiniBatchKMeans
(streamed with ``partial_fit`` over the same chunks), side by side: wall time, rows/s, peak RSS, and
ARI against the planted five families. Both extrapolate linearly to CC12M's 10M pairs.

Each clustering run happens in its own process; its peak resident memory is read from VmHWM, which
includes the file-backed pages of the memory map it touched (so it grows with N even for a streamer).
Writes ``OUT/data.csv`` and ``OUT/data.md``. ``--quick``: 100K vectors instead of 1M, fewer samples.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np
from benchmarks.table import write_table

CC12M = 10_000_000
DIM, K, PART = 1024, 5, 100_000


def planted_store(work: Path, n: int, seed: int = 0) -> np.ndarray:
    """n unit float16 vectors in 5 noisy families, written as embed parts; returns the families."""
    from harness.data.layout import write_json
    from harness.data.store import embed_dir, part_path
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal((K, DIM)).astype(np.float32)
    mu /= np.linalg.norm(mu, axis=1, keepdims=True)
    fam = rng.integers(0, K, n)
    (embed_dir(work) / "parts").mkdir(parents=True, exist_ok=True)
    parts = range(0, n, PART)
    for i, a in enumerate(parts):
        f = fam[a:a + PART]
        x = mu[f] + 1.5 * rng.standard_normal((len(f), DIM), dtype=np.float32) / np.sqrt(DIM)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        np.save(part_path(work, i, "img.npy"), x.astype(np.float16))
        np.save(part_path(work, i, "txt.npy"), np.zeros((len(f), 8), np.float16))   # II reads only x
        write_json(part_path(work, i, "json"), {"url": f"p{i}", "keys": [str(j) for j in range(a, a + len(f))],
                                                "skipped": {}})
    write_json(embed_dir(work) / "manifest.json", {"model": "planted", "shards": [f"p{i}" for i in range(len(parts))],
                                                   "complete": True, "dim_image": DIM, "dim_text": 8})
    return fam


def peak_kib() -> int:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it is not inherited over fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def run_ours(work: str, queue) -> None:
    import torch

    from harness.data.cluster import cluster
    torch.set_num_threads(2)
    began = time.perf_counter()
    cluster(work, "ii", k=K, seed=0, restarts=3, max_iter=20, sample=100_000)
    queue.put((time.perf_counter() - began, peak_kib(),
               np.load(Path(work) / "ii" / "labels.npy")))


def run_sklearn(work: str, queue) -> None:
    from sklearn.cluster import MiniBatchKMeans

    from harness.data.store import EmbeddingStore
    store = EmbeddingStore(work)
    began = time.perf_counter()
    km = MiniBatchKMeans(n_clusters=K, batch_size=4096, random_state=0, n_init=3)
    for _ in range(2):                                   # two epochs of partial_fit over the chunks
        for _, x, _ in store.chunks(65536):
            km.partial_fit(np.asarray(x, np.float32))
    labels = np.concatenate([km.predict(np.asarray(x, np.float32)) for _, x, _ in store.chunks(65536)])
    queue.put((time.perf_counter() - began, peak_kib(), labels))


def in_child(fn, work: Path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=fn, args=(str(work), queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def cluster_rows(n: int, tmp: Path) -> list:
    from sklearn.metrics import adjusted_rand_score
    fam = planted_store(tmp / "vec", n)
    rows = []
    for name, fn, note in (("ours (chunked torch, 3 restarts on 100K + full passes)", run_ours, "spherical"),
                           ("sklearn MiniBatchKMeans (partial_fit, 2 epochs)", run_sklearn, "euclidean")):
        sec, rss_kb, labels = in_child(fn, tmp / "vec")
        ari = adjusted_rand_score(fam, labels)
        tag = f"{n} x {DIM} float16, k={K}, {note}, ARI {ari:.3f}"
        rows += [{"what": f"cluster wall, {name}", "value": sec, "unit": "s", "note": tag},
                 {"what": f"cluster rows/s, {name}", "value": n / sec, "unit": "rows/s", "note": tag},
                 {"what": f"cluster peak RSS, {name}", "value": rss_kb / 1024, "unit": "MiB",
                  "note": "VmHWM incl. memory-mapped pages touched"},
                 {"what": f"cluster extrapolated to 10M, {name}", "value": sec * CC12M / n / 60, "unit": "min",
                  "note": "linear in rows"}]
    return rows


def embed_rows(n: int, tmp: Path) -> list:
    import random

    import torch

    from harness.data.embed import embed
    from harness.data.layout import write_shards
    from harness.data.synthetic import synthetic_record
    from harness.data.tiny import save_tiny_clip
    model = save_tiny_clip(tmp / "clip")
    rng = random.Random(0)
    write_shards(tmp / "src", [synthetic_record(rng, i % 5, f"{i:06d}") for i in range(n)], per_shard=256)
    torch.set_num_threads(2)
    began = time.perf_counter()
    report = embed(str(tmp / "src"), tmp / "work", model=str(model), batch=64, progress=False)
    sec = time.perf_counter() - began
    rate = report["embedded"] / sec
    return [{"what": "embed samples/s, tiny random CLIP (CPU, 2 threads)", "value": rate, "unit": "samples/s",
             "note": f"{n} 32x32 JPEGs, batch 64, incl. decode and model load"},
            {"what": "embed extrapolated to 10M, tiny CLIP (CPU)", "value": CC12M / rate / 3600, "unit": "h",
             "note": "plumbing only: SigLIP2-L on GPU is the real cost (not measured here)"}]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.data", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="results/bench")
    p.add_argument("--rows", type=int, default=None, help="vectors to cluster (default 1M; 100K with --quick)")
    args = p.parse_args(argv)
    n = args.rows or (100_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        rows = embed_rows(256 if args.quick else 1024, Path(tmp)) + cluster_rows(n, Path(tmp))
    import torch
    header = [f"- torch {torch.__version__}, CPU, date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
              f"- clustering: {n} planted vectors (5 families), metric II; sklearn runs Euclidean k-means "
              "on the same unit vectors"]
    write_table(rows, Path(args.out), "data", "Data pipeline benchmark", header, digits=4)
    print((Path(args.out) / "data.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
