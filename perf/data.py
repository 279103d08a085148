"""Data pipeline benchmark: embedding throughput (tiny random CLIP on CPU), and spherical k-means over
N x 1024 float16 memory-mapped vectors (ours, blocked torch passes) vs scikit-learn's MiniBatchKMeans
(streamed with ``partial_fit`` over the same chunks), side by side: wall time, rows/s, peak memory, and
ARI against the planted five families. Both extrapolate linearly to CC12M's 10M pairs.

Every clustering row says how far it is from the machine's limits, measured in the same run
(``perf.roofline``: copy bandwidth, float32 GEMM): bytes read from the vectors (float16 from the
store; float32 of the in-memory subsample) and the scoring GEMM's 2 N d k FLOPs per pass. Ours reports
its phases (restarts on the subsample, full Lloyd passes, the label pass) from ``cluster.json``;
sklearn's work is estimated (two epochs and a predict pass over the store).

Each clustering run happens in its own process; its peak resident memory is read from VmHWM, which
includes the file-backed pages of the memory map it touched, and its peak anonymous memory (RssAnon,
sampled every 10 ms), which a streamer keeps flat in N. Writes ``OUT/data.csv`` and ``OUT/data.md``.
``--quick``: 100K vectors instead of 1M, fewer samples; ``--rows 10000000 --clusterers ours --store DIR``
measures the 10M stream (20 GB of float16 kept in DIR).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from perf.table import write_table

CC12M = 10_000_000
DIM, K, PART = 1024, 5, 100_000


def planted_store(work: Path, n: int, seed: int = 0) -> np.ndarray:
    """n unit float16 vectors in 5 noisy families, written as embed parts; returns the families
    (kept in ``work/families.npy``: a store of the same n and seed is reused)."""
    from harness.data.layout import write_json
    from harness.data.store import embed_dir, part_path
    done = Path(work) / f"families-n{n}-s{seed}.npy"
    if done.is_file():
        return np.load(done)
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
    np.save(done, fam)
    return fam


def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmHWM: peak resident set, which unlike ru_maxrss is not
    inherited over fork; RssAnon: anonymous memory now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class AnonPeak:
    """The peak of RssAnon while the block runs, sampled every 10 ms by a thread."""

    def __enter__(self):
        self.peak, self.stop = status_kib("RssAnon"), threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, status_kib("RssAnon"))

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def run_ours(work: str, queue) -> None:
    import json

    import torch

    from harness.data.cluster import cluster
    torch.set_num_threads(2)
    shutil.rmtree(Path(work) / "ii", ignore_errors=True)       # a kept store: cluster again, not a no-op
    with AnonPeak() as anon:
        began = time.perf_counter()
        cluster(work, "ii", k=K, seed=0, restarts=3, max_iter=20, sample=100_000)
        sec = time.perf_counter() - began
    out = Path(work) / "ii"
    queue.put((sec, status_kib("VmHWM"), anon.peak, np.load(out / "labels.npy"),
               json.loads((out / "cluster.json").read_text())["work"]))


def run_sklearn(work: str, queue) -> None:
    from sklearn.cluster import MiniBatchKMeans

    from harness.data.store import EmbeddingStore
    store = EmbeddingStore(work)
    with AnonPeak() as anon:
        began = time.perf_counter()
        km = MiniBatchKMeans(n_clusters=K, batch_size=4096, random_state=0, n_init=3)
        for _ in range(2):                                   # two epochs of partial_fit over the chunks
            for _, x, _ in store.chunks(65536):
                km.partial_fit(np.asarray(x, np.float32))
        labels = np.concatenate([km.predict(np.asarray(x, np.float32)) for _, x, _ in store.chunks(65536)])
        sec = time.perf_counter() - began
    n = len(labels)                                          # estimated: 3 passes reading float16, scoring
    work = {"all": {"seconds": sec, "rows": 3 * n, "bytes": 3 * n * DIM * 2, "flops": 3 * 2 * n * DIM * K}}
    queue.put((sec, status_kib("VmHWM"), anon.peak, labels, work))


def in_child(fn, work: Path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=fn, args=(str(work), queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


CLUSTERERS = {"ours": ("ours (blocked torch passes, 3 restarts on 100K + full passes)", run_ours, "spherical"),
              "sklearn": ("sklearn MiniBatchKMeans (partial_fit, 2 epochs)", run_sklearn, "euclidean")}
PHASES = {"restarts": "k-means++ and Lloyd steps on the 100K subsample in memory",
          "passes": "full Lloyd passes streamed over the store", "labels": "the label pass over the store"}


def cluster_rows(n: int, store: Path, limits, names=("ours", "sklearn"), repeats: int = 1) -> list:
    """Each clusterer ``repeats`` times, interleaved (ours, sklearn, ours, ...) so that both see the same
    load; the rows report each one's fastest run and list all."""
    fam = planted_store(store, n)
    runs = {key: [] for key in names}
    for _ in range(repeats):
        for key in names:
            runs[key].append(in_child(CLUSTERERS[key][1], store))
            runs[key][-1] += (os.getloadavg()[0],)
    rows = [row for key in names for row in clusterer_rows(key, runs[key], fam, limits)]
    rate, from_disk = store_read_rate(store)
    rows.append({"what": "store read rate (first 2 GiB of the vectors, after the runs)", "value": rate / 1e6,
                 "unit": "MB/s", "note": f"{from_disk:.0%} from the disk, the rest from the page cache; a full "
                 f"pass over {n * DIM * 2 / 1e9:.1f} GB at this rate: {n * DIM * 2 / rate:.1f} s"})
    if {"ours", "sklearn"} <= set(runs):
        best = {key: min(r[0] for r in runs[key]) for key in runs}
        pairs = ", ".join(f"{b[0] / a[0]:.2f}" for a, b in zip(runs["ours"], runs["sklearn"]))
        rows.append({"what": "cluster speed-up, ours over MiniBatchKMeans", "value": best["sklearn"] / best["ours"],
                     "unit": "x", "note": f"best of {repeats} each; run by run: {pairs}"})
    return rows


def clusterer_rows(key: str, runs: list, fam: np.ndarray, limits) -> list:
    from sklearn.metrics import adjusted_rand_score
    name, _, note = CLUSTERERS[key]
    sec, _, _, labels, work, _ = min(runs, key=lambda r: r[0])
    n = len(fam)
    tag = (f"{n} x {DIM} float16, k={K}, {note}, ARI {adjusted_rand_score(fam, labels):.3f}; best of {len(runs)}: "
           + ", ".join(f"{r[0]:.1f} s (load {r[-1]:.1f})" for r in runs))
    total = {f: sum(p[f] for p in work.values()) for f in ("bytes", "flops")}
    cells = limit_cells(sec, total, limits)
    rows = [{"what": f"cluster wall, {name}", "value": sec, "unit": "s", "note": tag, **cells},
            {"what": f"cluster rows/s, {name}", "value": n / sec, "unit": "rows/s", "note": tag, **cells},
            {"what": f"cluster peak RSS, {name}", "value": max(r[1] for r in runs) / 1024, "unit": "MiB",
             "note": "VmHWM incl. memory-mapped pages touched, largest run"},
            {"what": f"cluster peak anonymous memory, {name}", "value": max(r[2] for r in runs) / 1024, "unit": "MiB",
             "note": "RssAnon sampled every 10 ms, largest run: flat in N for a streamer"},
            {"what": f"cluster extrapolated to 10M, {name}", "value": sec * CC12M / n / 60, "unit": "min",
             "note": "linear in rows"}]
    return rows + [phase_row(key, phase, work[phase], n, limits) for phase in PHASES if work.get(phase, {}).get("rows")]


def store_read_rate(store: Path, nbytes: int = 2 << 30) -> tuple[float, float]:
    """Bytes/s of reading the store's first ``nbytes`` of vectors with plain reads, and the fraction that
    came from the disk (not the page cache): the limit of a pass once N x d x 2 bytes outgrow the RAM."""
    def disk_bytes() -> int:
        return next(int(line.split()[1]) for line in open("/proc/self/io") if line.startswith("read_bytes"))
    buf, done, began, disk = bytearray(16 << 20), 0, time.perf_counter(), disk_bytes()
    for path in sorted((store / "embed" / "parts").glob("*.img.npy")):
        with open(path, "rb", buffering=0) as f:
            while done < nbytes and (got := f.readinto(buf)):
                done += got
    return done / (time.perf_counter() - began), (disk_bytes() - disk) / max(done, 1)


def limit_cells(seconds: float, work: dict, limits) -> dict:
    import torch

    from perf.roofline import position
    return position(seconds, work["bytes"], work["flops"], limits, torch.float32).cells()


def phase_row(key: str, phase: str, work: dict, n: int, limits) -> dict:
    passes = f"{work['rows'] / n:.2f} x N rows scored, " if phase != "restarts" else f"{work['rows']} rows scored, "
    return {"what": f"cluster phase {phase}, {key}", "value": work["seconds"], "unit": "s",
            "note": passes + PHASES[phase], **limit_cells(work["seconds"], work, limits)}


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
    p = argparse.ArgumentParser(prog="python -m perf.data", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="results/bench")
    p.add_argument("--rows", type=int, default=None, help="vectors to cluster (default 1M; 100K with --quick)")
    p.add_argument("--clusterers", default="ours,sklearn", help="comma-separated subset of ours,sklearn")
    p.add_argument("--no-embed", action="store_true", help="skip the embedding rows")
    p.add_argument("--store", default=None, help="keep the planted vectors in this folder (reused if there)")
    p.add_argument("--repeats", type=int, default=None, help="runs of each clusterer (default 2; 1 with --quick)")
    args = p.parse_args(argv)
    names = [c for c in args.clusterers.split(",") if c]
    if set(names) - set(CLUSTERERS):
        p.error(f"--clusterers {args.clusterers!r}: valid names are {', '.join(CLUSTERERS)}")
    n = args.rows or (100_000 if args.quick else 1_000_000)
    import torch

    from perf.roofline import measure
    torch.set_num_threads(2)                             # the threads each clustering child uses
    limits = measure(quick=args.quick)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [] if args.no_embed else embed_rows(256 if args.quick else 1024, Path(tmp))
        rows += cluster_rows(n, Path(args.store or tmp) / "vec", limits, names,
                             args.repeats or (1 if args.quick else 2))
    header = [(f"- torch {torch.__version__}, CPU, date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
               f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the end"),
              limits.line(),
              (f"- clustering: {n} planted vectors (5 families), metric II; sklearn runs Euclidean k-means "
               "on the same unit vectors; limit columns: bytes read and scoring FLOPs (2 N d k a pass) against "
               "the limits above (embedding rows: not modelled)")]
    write_table(rows, Path(args.out), "data", "Data pipeline benchmark", header, digits=4)
    print((Path(args.out) / "data.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
