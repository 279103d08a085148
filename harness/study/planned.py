"""A planned study's outputs, all recomputed from its archived records (``OUT/records``, committed):

- ``tables/compare_<setting>_<metric>_<summary>``: every arm against the plan's reference (``fedma compare``);
- ``findings.md`` / ``findings.json``: the planned comparisons with their Holm-adjusted verdicts;
  ``unevaluated.json``: the planned comparisons whose arms had not all finished (also in ``findings.md``);
  ``provenance.json``: runs archived of planned, their code versions and machines, their run time;
- ``figures/findings_<family>.png``: every evaluated line's Δ with its interval, coloured by verdict;
- ``figures/curves_<setting>_<scenario>.png``: held-out loss and benchmark index per round, mean ± std;
- ``figures/beta_<setting>.png`` and ``tables/beta_<setting>``: OPM's beta per round for every arm with OPM;
- ``figures/omega_<setting>.png`` and ``tables/omega_<setting>``: RWF's weight omega_k and the alignment error
  e_k of every client per round (the data-quality regime: which clients RWF trusts).
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

from harness.report.cells import Cell, Table, mean_std


def write_planned(cfg, out: Path, note: str, console) -> None:
    from harness.compare.observations import load
    from harness.report.render import to_markdown, write_tables
    from harness.study.claims import findings, markdown, unevaluated
    from harness.study.evidence import archive_records, provenance
    archive_records(cfg, out)
    observations = load(out / "records")
    pretty = {cfg.arm_of(name).key: name for name in cfg.aliases}
    tables = comparison_tables(cfg, observations, pretty) + diagnostic_tables(cfg, out, pretty)
    for t in tables:
        t.note = (t.note + " " if t.note else "") + note
    write_tables(tables, ["csv", "latex", "md"], out / "tables")
    (out / "tables.md").write_text("\n".join(to_markdown(t) for t in tables))
    rows = findings(cfg, observations)
    (out / "findings.json").write_text(json.dumps(rows, indent=1))
    missing = unevaluated(cfg, observations)
    (out / "unevaluated.json").write_text(json.dumps(missing, indent=1))
    made = provenance(cfg, out)
    (out / "provenance.json").write_text(json.dumps(made, indent=1))
    (out / "findings.md").write_text(provenance_text(made) + "\n\n" + markdown(rows, note, missing))
    figures = curve_figures(cfg, observations, pretty, out / "figures") + diagnostic_figures(cfg, out, pretty) \
        + forest_figures(rows, out / "figures")
    console.print(f"{len(observations)} archived runs -> {len(tables)} tables, {len(figures)} figures, "
                  f"{len(rows)} planned comparison lines ({len(missing)} comparisons not evaluated) in "
                  f"{out}/findings.md")


def provenance_text(made: dict) -> str:
    """One paragraph: how many runs, from which code and machines, and how long their rounds took."""
    def listed(counts):
        return "; ".join(f"{k} ({v} runs)" for k, v in counts.items())
    return (f"**Runs**: {made['archived']} of the {made['planned']} planned runs finished and archived. Code: "
            f"{listed(made['code_versions'])}. Machines: {listed(made['machines'])}. Their rounds took "
            f"{made['run_seconds'] / 3600:.1f} h of run time over the {made['runs_timed']} runs timed (runs side by "
            f"side share the machine's wall time).")


def comparison_tables(cfg, observations, pretty) -> List[Table]:
    from harness.compare.observations import higher_is_better
    from harness.compare.render import to_table
    from harness.compare.summaries import summary_higher_is_better
    from harness.compare.table import compare
    reference = cfg.arm_of(cfg.plan.get("reference", "fedavg")).key
    tables = []
    for setting in dict.fromkeys(o.setting for o in observations):
        subset = [o for o in observations if o.setting == setting]
        if reference not in {o.row for o in subset}:
            continue
        for spec in [*cfg.metrics, *cfg.secondary_metrics]:
            metric, summary = spec.split(":")
            lines = compare(subset, reference, metric, summary)
            for line in lines:
                line.method = pretty.get(line.method, line.method)
            higher = summary_higher_is_better(summary, higher_is_better(metric))
            tables.append(to_table(lines, pretty.get(reference, reference), higher,
                                   name=f"compare_{setting}_{metric}_{summary}"))
    return tables


def curve_figures(cfg, observations, pretty, out_dir: Path) -> List[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = []
    for setting, scenario in dict.fromkeys((o.setting, o.scenario) for o in observations):
        here = [o for o in observations if (o.setting, o.scenario) == (setting, scenario)]
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
        for ax, metric, title in zip(axes, ("loss", "index"), ("held-out caption loss", "benchmark index")):
            for row in dict.fromkeys(o.row for o in here):
                _band(ax, [o.curves.get(metric, {}) for o in here if o.row == row], pretty.get(row, row))
            ax.set_title(title)
            ax.set_xlabel("round")
            ax.grid(alpha=0.3)
        axes[1].legend(fontsize=7, loc="lower right")
        fig.suptitle(f"{scenario.upper()}, {setting}: mean ± std over seeds")
        paths.append(_save(fig, out_dir / f"curves_{setting}_{scenario}.png"))
    return paths


def _band(ax, curves: List[Dict[int, float]], label: str) -> None:
    rounds = sorted({t for c in curves for t in c})
    stats = [mean_std([c.get(t) for c in curves]) for t in rounds]
    means = [m for m, _ in stats]
    if not rounds:
        return
    line, = ax.plot(rounds, means, label=label, lw=1.4)
    if all(s is not None for _, s in stats):
        ax.fill_between(rounds, [m - s for m, s in stats], [m + s for m, s in stats], color=line.get_color(), alpha=0.12)


def forest_figures(rows: List[dict], out_dir: Path) -> List[Path]:
    """``figures/findings_<family>.png`` per family: every evaluated line's Δ = A − B with its 95% interval,
    one panel per metric, the point coloured by its Holm-adjusted verdict (``findings.json`` rows)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = []
    for family in dict.fromkeys(r["family"] for r in rows):
        mine = [r for r in rows if r["family"] == family]
        panels = list(dict.fromkeys((r["metric"], r["summary"]) for r in mine))
        most = max(sum((r["metric"], r["summary"]) == p for r in mine) for p in panels)
        fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 0.38 * most + 1.6), squeeze=False)
        for ax, (metric, summary) in zip(axes[0], panels):
            _panel(ax, [r for r in mine if (r["metric"], r["summary"]) == (metric, summary)], metric, summary)
        fig.suptitle(f"{family}: Δ = A − B with 95% interval; green holds, red does not hold, grey cannot tell "
                     f"(Holm over the family)", fontsize=9)
        paths.append(_save(fig, out_dir / f"findings_{family}.png"))
    return paths


def _panel(ax, lines: List[dict], metric: str, summary: str) -> None:
    for i, r in enumerate(lines):
        low, high = r["mean_diff"] - r["ci_low"], r["ci_high"] - r["mean_diff"]
        ax.errorbar(r["mean_diff"], i, xerr=[[low], [high]], fmt="o", ms=4, capsize=2,
                    color=VERDICT_COLOURS.get(r["verdict"], "tab:gray"))
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(range(len(lines)))
    ax.set_yticklabels([f"{r['comparison']} · {r['setting']} · {r['scenario']}" for r in lines], fontsize=7)
    ax.set_ylim(len(lines) - 0.5, -0.5)
    from harness.compare.observations import higher_is_better
    from harness.compare.summaries import summary_higher_is_better
    better = "higher" if summary_higher_is_better(summary, higher_is_better(metric)) else "lower"
    ax.set_title(f"{metric} ({summary}), {better} is better for A", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.locator_params(axis="x", nbins=5)
    ax.tick_params(axis="x", labelsize=7)


VERDICT_COLOURS = {"holds": "tab:green", "does not hold": "tab:red", "cannot tell": "tab:gray"}


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def diagnostics(out: Path) -> Dict[tuple, Dict[str, Dict[int, List[float]]]]:
    """{(setting, arm key): {series: {round: [value per seed]}}} of beta (per block), omega_k and e_k."""
    from harness.methods.arms import arm_from_slug
    from harness.core.records import read_archived
    found: Dict[tuple, Dict[str, Dict[int, List[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for path in sorted(Path(out, "records").rglob("seed*.jsonl.gz")):
        key = (path.parts[-4], arm_from_slug(path.parts[-2]).key)
        for r in read_archived(path):
            if r["value"] is None:
                continue
            if r["benchmark"] == "server" and r["metric"].startswith("beta/"):
                found[key][r["metric"]][r["round"]].append(r["value"])
            elif (r["benchmark"], r["metric"]) in (("server", "omega"), ("train", "align_error")):
                name = "omega" if r["metric"] == "omega" else "e"
                found[key][f"{name}/client {r['client']}"][r["round"]].append(r["value"])
    return found


def diagnostic_tables(cfg, out: Path, pretty) -> List[Table]:
    """Per setting: mean over seeds per round of every beta series, and of every client's omega and e_k."""
    tables = []
    found = diagnostics(out)
    for kind, prefix in (("beta", "beta/"), ("omega", "omega/"), ("omega", "e/")):
        for setting in dict.fromkeys(s for s, _ in found):
            rows = [(arm, series, by_round) for (s, arm), d in found.items() if s == setting
                    for series, by_round in sorted(d.items()) if series.startswith(prefix)]
            if not rows:
                continue
            rounds = sorted({t for _, _, by_round in rows for t in by_round})
            name = f"{kind}_{setting}" if prefix != "e/" else f"align_error_{setting}"
            what = {"beta/": "OPM's beta", "omega/": "RWF's omega_k", "e/": "alignment error e_k"}[prefix]
            table = Table(name, f"{what} per round, mean over seeds ({setting})",
                          ["arm", "series", *(f"r{t}" for t in rounds)])
            for arm, series, by_round in rows:
                table.rows.append([Cell(pretty.get(arm, arm)), Cell(series.split("/", 1)[1]),
                                   *(Cell(_mean_text(by_round.get(t))) for t in rounds)])
            tables.append(table)
    return tables


def _mean_text(values) -> str:
    return "n/a" if not values else f"{sum(values) / len(values):.3f}"


def diagnostic_figures(cfg, out: Path, pretty) -> List[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    found, paths = diagnostics(out), []
    for kind, prefixes in (("beta", ("beta/",)), ("omega", ("omega/", "e/"))):
        for setting in dict.fromkeys(s for s, _ in found):
            arms = [(arm, d) for (s, arm), d in found.items() if s == setting
                    and any(k.startswith(prefixes) for k in d)]
            if not arms:
                continue
            fig, axes = plt.subplots(1, len(prefixes), figsize=(6.5 * len(prefixes), 4.5), squeeze=False)
            for ax, prefix in zip(axes[0], prefixes):
                for arm, d in arms:
                    for series, by_round in sorted(d.items()):
                        if series.startswith(prefix):
                            rounds = sorted(by_round)
                            ax.plot(rounds, [sum(by_round[t]) / len(by_round[t]) for t in rounds],
                                    label=f"{pretty.get(arm, arm)}: {series.split('/', 1)[1]}", lw=1.2)
                ax.set_title({"beta/": "OPM beta", "omega/": "RWF omega_k", "e/": "alignment error e_k"}[prefix])
                ax.set_xlabel("round")
                ax.grid(alpha=0.3)
                ax.legend(fontsize=6)
            fig.suptitle(f"{setting}: mean over seeds")
            paths.append(_save(fig, out / "figures" / f"{kind}_{setting}.png"))
    return paths
