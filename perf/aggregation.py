"""Server-rule benchmark: wall time and peak extra memory of every aggregator.

Shapes (the paper's projector, float32): linear_1.weight [4096, 1024], linear_1.bias [4096],
linear_2.weight [4096, 4096], linear_2.bias [4096]; ``--quick`` uses 512x128 and 512x512.
The first K of ``--ks`` (5) runs every registered method, Fed-CMP with svd=gram and svd=full; the
other K run fedavg (a reference) and both Fed-CMP paths (svd=full only at ``--full-ks``).

Every row runs in a fresh subprocess (``--one``): it builds the global state and K clients
(global + 1e-3 noise, seeded), reads VmRSS, resets the peak RSS (``/proc/self/clear_refs``), runs
aggregations on the same inputs: round 1, then up to ``REPEATS`` more while they take under
``REPEAT_BUDGET_S`` together (at least one; from round 2 on Fed-CMP takes OPM's step), and reports round
1 and the best of the later rounds ("round 2", the steady state: the machine is shared, so the best of a
few is the least disturbed), and extra memory = VmHWM - VmRSS after the inputs (peak over all rounds,
so it includes the server state kept from round 1). Each row is placed against the machine's limits
measured at the start of the run (:mod:`perf.roofline`; bytes and FLOPs per rule:
:mod:`perf.agg_model`), and each rule Flower also has is timed in Flower's own implementation on
the same uploads (:mod:`perf.flower_rules`). Rows whose estimated memory exceeds
``--mem-limit-gb`` are skipped, rows that run past ``--timeout`` are killed and recorded.
Writes OUT/aggregation.csv and OUT/aggregation.md.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from perf import agg_model, agg_report, flower_rules, roofline

ROOT = Path(__file__).resolve().parents[1]
REPEATS, REPEAT_BUDGET_S = 4, 20.0
MIB, GIB = 2 ** 20, 2 ** 30
SHAPES = {
    "paper": {"linear_1.weight": [4096, 1024], "linear_1.bias": [4096],
              "linear_2.weight": [4096, 4096], "linear_2.bias": [4096]},
    "quick": {"linear_1.weight": [512, 128], "linear_1.bias": [512],
              "linear_2.weight": [512, 512], "linear_2.bias": [512]},
}
PHASES = ["gram_s", "eigen_s", "gemm_s"]            # Fed-CMP's round 2 by phase (perf.agg_model)
LIMITS = ["bandwidth", "gemm_f32", "gemm_f64"]      # this run's measured limits (perf.roofline)
NUMERIC = ["round1_s", "round2_s", "extra_mib", "inputs_mib", "load1"] + PHASES + LIMITS
FIELDS = ["label", "method", "hparams", "k", "status", "round1_s", "round2_s", "extra_mib",
          "inputs_mib", "est_gib", "load1", "gbytes", "gflop", "floor_s", "x_floor", "bw_frac",
          "flop_frac"] + PHASES + LIMITS


# ---------------------------------------------------------------- child: one measurement

def proc_status_mib(field: str) -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE).group(1)) / 1024


def reset_peak_rss() -> bool:
    """Set VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def make_inputs(shapes: dict, k: int, seed: int, method: str = ""):
    """The global state and K clients (global + 1e-3 noise), with the extra uploads the method's clients
    send (SCAFFOLD's control-variate update; from a second generator, so every rule sees the same states)."""
    import torch
    from harness import ClientUpdate
    from harness.core.registry import method_class
    gen = torch.Generator().manual_seed(seed)
    global_state = {n: 0.02 * torch.randn(s, generator=gen) for n, s in shapes.items()}
    updates = [ClientUpdate(i, {n: t + 1e-3 * torch.randn(t.shape, generator=gen)
                                for n, t in global_state.items()}, 100 + 10 * i, 0.3 + 0.01 * i)
               for i in range(k)]
    control = torch.Generator().manual_seed(seed + 1)
    for u in updates:
        u.extras.update(method_class(method).synthetic_uploads(global_state, control) if method else {})
    return global_state, updates


def measure(case: dict, shapes: dict, seed: int, threads: int, device: str = "cpu") -> dict:
    import torch
    torch.set_num_threads(threads)
    if case["method"].startswith("flower:"):
        return measure_flower(case, shapes, seed)
    gpu = device.startswith("cuda")
    rss_start = proc_status_mib("VmRSS")
    global_state, updates = make_inputs(shapes, case["k"], seed, case["method"])
    if gpu:
        global_state = {n: t.to(device) for n, t in global_state.items()}
        for u in updates:
            u.state.update({n: t.to(device) for n, t in u.state.items()})
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    rss_inputs = proc_status_mib("VmRSS")
    clean = gpu or reset_peak_rss()
    from harness import build_aggregator
    agg = build_aggregator(case["method"], **case["hparams"])
    timer = agg_model.PhaseTimer()
    if case["method"] == "fedcmp":
        agg_model.instrument_fedcmp(timer)
    times = timed_rounds(lambda: agg.aggregate(global_state, updates), torch.cuda.synchronize if gpu else None,
                         timer)
    extra = ((torch.cuda.max_memory_allocated() - base) / MIB if gpu
             else proc_status_mib("VmHWM") - rss_inputs)
    return dict(times, extra_mib=extra, inputs_mib=rss_inputs - rss_start,
                status="ok" if clean else "ok (peak not reset)")


def timed_rounds(step, sync=None, timer=None) -> dict:
    """round1_s, and round2_s = the best of the later rounds, with that round's phases (``timer``)."""
    def one():
        if timer:
            timer.seconds.clear()
        start = time.perf_counter()
        step()
        if sync:
            sync()
        return time.perf_counter() - start, dict(timer.seconds) if timer else {}
    first, _ = one()
    later = [one()]
    while len(later) < REPEATS and sum(t for t, _ in later) < REPEAT_BUDGET_S:
        later.append(one())
    best, phases = min(later, key=lambda item: item[0])
    return {"round1_s": first, "round2_s": best, "rounds": 1 + len(later), **{f"{n}_s": s for n, s in phases.items()}}


def measure_flower(case: dict, shapes: dict, seed: int) -> dict:
    """Flower's strategy on the same uploads (as Flower reply messages, built before the clock)."""
    rule = agg_model.rule_of(case["method"])
    rss_start = proc_status_mib("VmRSS")
    global_state, updates = make_inputs(shapes, case["k"], seed, rule)
    strategy, messages = flower_rules.build_strategy(rule, global_state), flower_rules.replies(updates)
    rss_inputs = proc_status_mib("VmRSS")
    clean = reset_peak_rss()
    rounds = iter(range(1, 1000))
    times = timed_rounds(lambda: flower_rules.aggregate(strategy, next(rounds), messages))
    return dict(times, extra_mib=proc_status_mib("VmHWM") - rss_inputs, inputs_mib=rss_inputs - rss_start,
                status="ok" if clean else "ok (peak not reset)")


# ---------------------------------------------------------------- parent: plan and run rows

def case(method: str, k: int, **hparams) -> dict:
    name = flower_rules.label(agg_model.rule_of(method)) if method.startswith("flower:") else method
    label = name + "".join(f" {key}={val}" for key, val in hparams.items())
    return {"label": label, "method": method, "hparams": hparams, "k": k}


def with_flower(cases: list) -> list:
    """Each row of a rule Flower also has followed by Flower's row at the same K."""
    out = []
    for c in cases:
        out.append(c)
        if c["method"] in flower_rules.FLOWER and not c["hparams"]:
            out.append(case("flower:" + c["method"], c["k"]))
    return out


def per_k(k: int) -> list:
    return [case("fedavg", k), case("fedcmp", k, svd="gram"), case("fedcmp", k, svd="full")]


def plan(ks: list, only_fedcmp: bool = False, methods=None, flower: bool = True) -> list:
    """The rows to measure: ``methods`` (registered names; fedcmp on the Gram path) at every K, or
    the full plan; with ``flower``, Flower's row after each rule Flower also has."""
    from harness import method_names
    if methods:
        rows = [case(m, k, **({"svd": "gram"} if m == "fedcmp" else {})) for k in ks for m in methods]
    else:
        first = [] if only_fedcmp else [case(m, ks[0]) for m in method_names() if m != "fedcmp"]
        literal = [case("fedcmp", ks[0], svd="gram", opm_align="sign")]   # OPM's general path: the paper's rule
        rows = first + per_k(ks[0])[1:] + literal + [c for k in ks[1:] for c in per_k(k)]
    return with_flower(rows) if flower else rows


def estimate_gib(c: dict, shapes: dict) -> float:
    """Rough peak RSS (inputs + extra): K+1 float32 states, plus for Fed-CMP per largest block
    ~12 d_out^2 float64 (Gram, eigenvectors, polar, reconstruction) and, for svd=full, ~4 copies of
    M = [X_1 ... X_K] in float64 (operands + M during the concatenation, LAPACK's copy, V^T)."""
    state = 4 * sum(_numel(s) for s in shapes.values())
    d_out, d_in = max((s for s in shapes.values() if len(s) == 2), key=_numel)
    extra = 2 * state * 8                                      # baselines: float64 copies
    if c["method"].startswith("flower:"):
        extra = 4 * state                                      # float32 sums and temporaries (numpy)
    if c["method"] == "fedcmp":
        extra = 12 * 8 * d_out ** 2 + 4 * state
        if c["hparams"].get("svd") == "full":
            extra += 4 * 8 * d_out * c["k"] * (d_in + 1)
    return ((c["k"] + 1) * state + extra) / GIB


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def child_env(threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_case(c: dict, args, shapes: dict) -> dict:
    row = dict(c, hparams=json.dumps(c["hparams"]), est_gib=estimate_gib(c, shapes),
               load1=os.getloadavg()[0])
    if c["hparams"].get("svd") == "full" and c["k"] not in args.full_ks:
        return dict(row, status="not run (--full-ks)")
    if row["est_gib"] > args.mem_limit_gb:
        return dict(row, status=f"skipped: needs ~{row['est_gib']:.1f} GB")
    cmd = [sys.executable, "-m", "perf.aggregation", "--one", json.dumps(c),
           "--threads", str(args.threads), "--seed", str(args.seed), "--device", args.device] + (["--quick"] if args.quick else [])
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=child_env(args.threads), capture_output=True,
                              text=True, timeout=args.timeout, check=False)
    except subprocess.TimeoutExpired:
        return dict(row, status=f"timeout (>{args.timeout:.0f} s)")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"killed by signal {-proc.returncode}"])[-1]
        return dict(row, status=f"error rc={proc.returncode}: {last[:120]}")
    limits = {f: getattr(args.limits, f) for f in LIMITS}
    return with_position(dict(row, **json.loads(proc.stdout.strip().splitlines()[-1]), **limits), shapes)


def with_position(row: dict, shapes: dict, limits: roofline.Limits | None = None) -> dict:
    """The row with its bytes, FLOPs and place against ``limits`` (default: its own run's) in round 2,
    the steady state."""
    hparams = row["hparams"] if isinstance(row["hparams"], dict) else json.loads(row["hparams"])
    nbytes = agg_model.bytes_moved(row["method"], row["k"], shapes)
    flop = agg_model.flops(row["method"], hparams, row["k"], shapes)
    row = dict(row, gbytes=nbytes / 1e9, gflop=None if flop is None else flop / 1e9)
    if "round2_s" not in row or "bandwidth" not in row:
        return row
    lim = limits or roofline.Limits(row["bandwidth"], row["gemm_f32"], row["gemm_f64"], 0, "")
    pos = roofline.position(row["round2_s"], nbytes, flop or 0.0, lim)
    return {**row, **pos.cells(), "flop_frac": pos.flop_frac if flop else None}


# ---------------------------------------------------------------- reports

def fmt(value, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "–"


def host_info(args, shapes: dict, when: datetime.datetime) -> list:
    import torch
    from harness.core.machine import cpu_model
    mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) / 2 ** 20
    shape_text = ", ".join(f"{n} {s}" for n, s in shapes.items())
    return [f"- machine: {cpu_model()}, {os.cpu_count()} cores, "
            f"{mem:.1f} GiB RAM, {platform.system()} {platform.release()}",
            f"- device {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device != "cpu" else "")
            + f", torch {torch.__version__}, Python {platform.python_version()}, "
            f"torch threads = {args.threads} (torch.set_num_threads, OMP/MKL_NUM_THREADS)",
            f"- date: {when:%Y-%m-%d %H:%M} UTC (last row finished)",
            f"- shapes ({'quick' if args.quick else 'paper'}), float32 inputs: {shape_text}",
            f"- per row on the same inputs: round 1, then up to {REPEATS} more while under {REPEAT_BUDGET_S:.0f} s "
            f"together (round 2 = the best of those); extra memory = peak RSS over all rounds "
            f"minus RSS after building the inputs; memory limit {args.mem_limit_gb} GB, "
            f"timeout {args.timeout:.0f} s per row; load1 = 1-min load average when the row started",
            f"- command: `python -m perf.aggregation {' '.join(args.argv)}`"] + [
            f"- note: {note}" for note in args.note]


def table(rows: list) -> list:
    lines = ["| method | K | status | round 1 (s) | round 2 (s) | GB moved | GFLOP | floor (s) | x floor "
             "| BW frac | FLOP frac | extra (MiB) | inputs (MiB) | est. peak (GiB) | load1 |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['k']} | {r['status']} | {fmt(r.get('round1_s'), '.2f')} "
                     f"| {fmt(r.get('round2_s'), '.2f')} | {fmt(r.get('gbytes'), '.2f')} | {fmt(r.get('gflop'), '.1f')} "
                     f"| {fmt(r.get('floor_s'), '.3f')} | {fmt(r.get('x_floor'), '.1f')} | {fmt(r.get('bw_frac'), '.3f')} "
                     f"| {fmt(r.get('flop_frac'), '.3f')} | {fmt(r.get('extra_mib'), '.0f')} "
                     f"| {fmt(r.get('inputs_mib'), '.0f')} | {r['est_gib']:.1f} | {r['load1']:.1f} |")
    return lines


def finished(rows: list, method: str, **hparams) -> dict:
    """{K: row} of the rows of ``method`` with exactly these hyperparameters that finished."""
    return {r["k"]: r for r in rows if r["method"] == method and
            json.loads(r["hparams"]) == hparams and "extra_mib" in r}


def measured(rows: list, svd: str) -> dict:
    """{K: row} of the Fed-CMP rows with this svd path (and default OPM) that finished."""
    return finished(rows, "fedcmp", svd=svd)


def opm_line(rows: list, k: int) -> str:
    """OPM's one-group fast path (the default rule at these shapes) against its general path (the
    paper's sign rule: a polar factor of the basis), both on the Gram path, round 2."""
    fast = measured(rows, "gram").get(k)
    sign = finished(rows, "fedcmp", svd="gram", opm_align="sign").get(k)
    if not (fast and sign):
        return f"- OPM fast path vs the sign rule's general path at K={k}: not measured."
    return (f"- OPM at K={k}, round 2 (Gram path): default rule (one group: the fast path) {fast['round2_s']:.2f} s, "
            f"the paper's sign rule (general path: polar factor) {sign['round2_s']:.2f} s "
            f"({sign['round2_s'] / fast['round2_s']:.2f}x); round 1 (no OPM) {fast['round1_s']:.2f} s / "
            f"{sign['round1_s']:.2f} s.")


def speedup_line(rows: list, k: int) -> str:
    gram, full = measured(rows, "gram").get(k), measured(rows, "full").get(k)
    if not (gram and full):
        return f"- Gram vs full SVD at K={k}: not measured (a row did not finish)."
    r1, r2 = (full[f] / gram[f] for f in ("round1_s", "round2_s"))
    verdict = "met" if r2 >= 3 else "NOT met"
    return (f"- Gram vs full SVD at K={k}: {r2:.2f}x faster in round 2 (with OPM), {r1:.2f}x in round 1; "
            f"target >= 3x (judged on round 2, the steady-state round): **{verdict}**.")


def fedavg_ratio_line(rows: list) -> str:
    """Fed-CMP (Gram path) round-2 time over FedAvg's at every K where both finished (issue 17's goal:
    within 3x at K=100, judged on a GPU; on a CPU the line states the ratios only)."""
    gram, fedavg = measured(rows, "gram"), finished(rows, "fedavg")
    both = sorted(set(gram) & set(fedavg))
    if not both:
        return "- Fed-CMP vs FedAvg time: no K with both rows measured."
    parts = [f"K={k}: {gram[k]['round2_s'] / fedavg[k]['round2_s']:.1f}x" for k in both]
    return (f"- Fed-CMP (svd=gram) round-2 time over FedAvg's: {', '.join(parts)} "
            f"(goal on a GPU: within 3x at K=100).")


def memory_line(rows: list, svd: str, shapes: dict) -> str:
    got = measured(rows, svd)
    if len(got) < 2:
        return f"- Extra memory of svd={svd} across K: fewer than two K measured."
    ks = sorted(got)
    values = ", ".join(f"K={k}: {got[k]['extra_mib']:.0f} MiB" for k in ks)
    lo, hi = min(r["extra_mib"] for r in got.values()), max(r["extra_mib"] for r in got.values())
    growth = got[ks[-1]]["extra_mib"] - got[ks[0]]["extra_mib"]
    slope = growth / (ks[-1] - ks[0])
    client = 8 * sum(_numel(s) for s in shapes.values()) / MIB
    verdict = "independent of K" if growth <= max(0.1 * got[ks[0]]["extra_mib"], 16) else "GROWS with K"
    return (f"- Extra memory of svd={svd}: {values}; spread {hi - lo:.0f} MiB, {slope:+.1f} MiB per "
            f"extra client (one client state in float64: {client:.0f} MiB): **{verdict}** "
            f"(criterion: at K={ks[-1]} at most max(10%, 16 MiB) above K={ks[0]}).")


def write_reports(rows: list, args, shapes: dict, when=None) -> None:
    when = when or datetime.datetime.now(datetime.timezone.utc)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    best = agg_report.best_limits(rows)     # rows merged from runs under different loads: one yardstick
    rows = [with_position(r, shapes, best) for r in rows]
    with open(out / "aggregation.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    first = min(r["k"] for r in rows)
    summary = [agg_report.limits_line(rows), agg_report.bandwidth_line(rows), agg_report.flower_line(rows),
               agg_report.fedcmp_line(rows, shapes), speedup_line(rows, first), opm_line(rows, first),
               memory_line(rows, "gram", shapes), memory_line(rows, "full", shapes), fedavg_ratio_line(rows)]
    md = (["# Aggregation benchmark", ""] + host_info(args, shapes, when) + [""] + table(rows)
          + ["", "## Summary", ""] + summary + [""])
    (out / "aggregation.md").write_text("\n".join(md))


# ---------------------------------------------------------------- command line

def read_rows(path: Path, shapes: dict) -> list:
    """Rows of an earlier run's CSV, with the estimates recomputed by the current code."""
    rows = []
    with open(path, newline="") as f:
        raw = list(csv.DictReader(f))
    for row in raw:
        row = {f: v for f, v in row.items() if v != ""}
        row.update({f: float(row[f]) for f in NUMERIC if f in row}, k=int(row["k"]))
        row["est_gib"] = estimate_gib(dict(row, hparams=json.loads(row["hparams"])), shapes)
        rows.append(with_position(row, shapes))
    return rows


def merge_rows(earlier: list, new: list) -> list:
    """``earlier`` with each row of the same (label, K) as a new row replaced, the rest appended,
    sorted by K (stable, so each K keeps its order)."""
    fresh = {(r["label"], r["k"]): r for r in new}
    kept = [fresh.pop((r["label"], r["k"]), r) for r in earlier]
    return sorted(kept + list(fresh.values()), key=lambda r: r["k"])


def int_list(text: str) -> list:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m perf.aggregation", description=__doc__.splitlines()[0])
    p.add_argument("--ks", type=int_list, default=[5, 10, 20, 50],
                   help="client counts; the first runs every method (default 5,10,20,50)")
    p.add_argument("--full-ks", type=int_list, default=None,
                   help="K values at which Fed-CMP svd=full runs (default: all of --ks)")
    p.add_argument("--quick", action="store_true", help="512x128 and 512x512: a fast smoke run")
    p.add_argument("--out", default="results/bench")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per row (default 600)")
    p.add_argument("--mem-limit-gb", type=float, default=12.0, help="skip rows estimated above this")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--from-csv", help="rebuild the reports from this CSV without measuring")
    p.add_argument("--note", action="append", default=[], help="a line for the .md header")
    p.add_argument("--device", default="cpu", help="cpu, or cuda: inputs and aggregation on the GPU "
                   "(extra memory is then the CUDA allocator's peak)")
    p.add_argument("--only-fedcmp", action="store_true", help="only the Fed-CMP gram/full rows (and fedavg)")
    p.add_argument("--merge-into", metavar="CSV", help="add this run's rows to an earlier run's CSV "
                   "(same shapes), replacing the rows of the same method and K")
    p.add_argument("--methods", type=lambda t: [m for m in t.split(",") if m],
                   help="only these methods at every K of --ks (comma-separated; fedcmp = svd=gram)")
    p.add_argument("--no-flower", action="store_true", help="without Flower's rows (on a CPU each rule "
                   "Flower also has gets a 'Flower <Rule>' row at every K it runs)")
    p.add_argument("--one", help=argparse.SUPPRESS)   # internal: run one case (JSON) in this process
    args = p.parse_args(argv)
    args.full_ks = args.ks if args.full_ks is None else args.full_ks
    if args.methods:
        from harness import method_names
        unknown = [m for m in args.methods if m not in method_names()]
        if unknown:
            p.error(f"--methods: unknown {', '.join(unknown)}; valid: {', '.join(method_names())}")
    args.argv = [a for a in argv if a not in ("--from-csv", args.from_csv, "--note", *args.note)]
    return args


def measure_limits(args) -> roofline.Limits:
    """Bandwidth and GEMM peaks with the rows' thread count, in this run."""
    import torch
    torch.set_num_threads(args.threads)
    return roofline.measure(args.device, quick=args.quick)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    shapes = SHAPES["quick" if args.quick else "paper"]
    if args.one:
        print(json.dumps(measure(json.loads(args.one), shapes, args.seed, args.threads, args.device)))
        return 0
    if args.from_csv:
        path = Path(args.from_csv)
        when = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc)
        write_reports(read_rows(path, shapes), args, shapes, when)
        return 0
    earlier = read_rows(Path(args.merge_into), shapes) if args.merge_into else []
    args.limits = measure_limits(args)
    print(f"[aggregation] {args.limits.line()[2:]}", flush=True)
    rows = []
    flower = args.device == "cpu" and not args.no_flower
    for c in plan(args.ks, args.only_fedcmp, methods=args.methods, flower=flower):
        start = time.perf_counter()
        rows.append(run_case(c, args, shapes))
        print(f"[aggregation] {c['label']} K={c['k']}: {rows[-1]['status']} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
        write_reports(merge_rows(earlier, rows), args, shapes)   # after every row, so a long run can be followed
    print(f"[aggregation] wrote {args.out}/aggregation.csv and aggregation.md", flush=True)
    return 0 if all(not r["status"].startswith("error") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
