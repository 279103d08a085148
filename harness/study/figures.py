"""Figure 4 on the mini world: per-round held-out loss, benchmark index and the five mini benchmarks, one
line per main arm (mean over seeds, shaded ± one std), one figure per setting and scenario."""
from __future__ import annotations

from pathlib import Path
from typing import List

from harness.report.cells import mean_std
from harness.study.runner import RunSpec
from harness.study.spec import main_rows
from harness.study.tables import LABEL, METRICS, Results


def figure4(res: Results, setting: str, scenario: str, out: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5), sharex=True)
    rounds = list(range(1, res.cfg.rounds + 1))
    for ax, metric in zip(axes.flat, METRICS):
        for label, a in main_rows():
            curves = [res.summaries[spec].curve(metric) for spec in
                      (RunSpec(setting, scenario, seed, a) for seed in res.cfg.seeds) if spec in res.summaries]
            if not curves:
                continue
            stats = [mean_std([c.get(t) for c in curves]) for t in rounds]
            xs = [t for t, (m, _) in zip(rounds, stats) if m is not None]
            means = [m for m, _ in stats if m is not None]
            style = dict(lw=2.4, color="black") if a.key == "fedcmp" else dict(lw=1.2)
            line, = ax.plot(xs, means, label=label, **style)
            spread = [(m - s, m + s) for m, s in stats if m is not None and s is not None]
            if len(spread) == len(xs):
                ax.fill_between(xs, [lo for lo, _ in spread], [hi for _, hi in spread], color=line.get_color(), alpha=0.12)
        ax.set_title(LABEL[metric])
        ax.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    axes.flat[-1].axis("off")
    axes.flat[-1].legend(handles, labels, loc="center", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("round")
    fig.suptitle(f"Fed-MA-mini {scenario.upper()}, {setting}: per-round trajectories "
                 f"(mean ± std over {len(res.cfg.seeds)} seeds)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def all_figures(res: Results, out_dir: Path) -> List[Path]:
    main = {a for _, a in main_rows()}
    pairs = dict.fromkeys((s.setting, s.scenario) for s in res.summaries if s.arm in main)
    return [figure4(res, st, sc, Path(out_dir) / f"figure4_{st}_{sc}.png") for st, sc in pairs]
