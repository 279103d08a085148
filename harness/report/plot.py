"""Figure 4: per-round trajectories of one benchmark metric, one line per method (mean over seeds,
shaded ± std when several seeds). ``local`` is the mean over its clients. Matplotlib with Agg."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from harness.core.errors import ConfigError, DataError
from harness.report.runs import PRETTY, Run
from harness.report.cells import mean_std


def parse_metric(spec: str):
    """``"pope.pope_accuracy"`` -> ("pope", "pope_accuracy"); ConfigError otherwise."""
    bench, dot, metric = spec.partition(".")
    if not dot or not bench or not metric:
        raise ConfigError(f"--metric: expected BENCH.METRIC (e.g. heldout.caption_loss), got '{spec}'")
    return bench, metric


def trajectory(run: Run, bench: str, metric: str) -> dict[int, float]:
    """{round: value} for a run: the global record, or the mean over clients (``local``)."""
    by_round = defaultdict(dict)
    for r in run.records:
        if r["benchmark"] == bench and r["metric"] == metric and r["value"] is not None:
            by_round[r["round"]][r["client"]] = r["value"]
    out = {}
    for rnd, clients in by_round.items():
        if "global" in clients:
            out[rnd] = clients["global"]
        else:
            out[rnd] = sum(clients.values()) / len(clients)
    return out


def method_curves(runs: list[Run], bench: str, metric: str) -> dict:
    """{label: (rounds, [(mean, std) per round])}, one line per method (or variant) in the paper's order,
    mean over the runs (seeds) that share it; {} when no run has the metric."""
    from harness.report.runs import curve_key, pretty_name, row_order
    per_method = defaultdict(list)
    for run in runs:
        traj = trajectory(run, bench, metric)
        if traj:
            per_method[curve_key(run)].append(traj)
    out = {}
    for method in row_order(per_method):
        rounds = sorted({r for t in per_method[method] for r in t})
        label = pretty_name(method) if "[" not in method else method
        out[label] = (rounds, [mean_std([t.get(r) for t in per_method[method]]) for r in rounds])
    return out


def plot_runs(runs: list[Run], spec: str, out) -> Path:
    """Write the figure to ``out``; DataError if no run has the metric."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bench, metric = parse_metric(spec)
    curves = method_curves(runs, bench, metric)
    if not curves:
        raise DataError(f"no records for {bench}.{metric} in the given runs")
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (rounds, stats) in curves.items():
        means = [m for m, _ in stats]
        ax.plot(rounds, means, marker="o", label=label)
        if any(s is not None for _, s in stats):
            ax.fill_between(rounds, [m - (s or 0) for m, s in stats], [m + (s or 0) for m, s in stats], alpha=0.2)
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel(f"{PRETTY.get(bench, bench)} {metric}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
