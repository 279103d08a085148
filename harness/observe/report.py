"""``fedma report RUNS_OR_SWEEP --out DIR``: one static, self-contained page, ``DIR/index.html``.

No server and no network: Plotly's JavaScript is inlined once, images are embedded as data URIs. The
page holds the paper-layout tables (``fedma tables`` with the paper's numbers beside ours), one
interactive per-round figure per scenario and benchmark (Figure 4; a legend click toggles a method),
the paired comparisons against a reference (``fedma compare``: the benchmark index and the held-out loss,
final and AUC), the cluster statistics (Table 9) and t-SNE (Figure 5) when given, the study's findings when the root
has ``findings.md``, and each run's config hash, machine and wall time (with its config folded away).
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import List, Optional

from harness.core.rundir import RunDir, timed_seconds
from harness.core.benchmarks import PRETTY, PRIMARY
from harness.report.cells import Table

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:center}
td:first-child{text-align:left}.best{font-weight:bold}.second{text-decoration:underline}.note{color:#666;font-size:13px}
.figs{display:flex;flex-wrap:wrap}.fig{width:560px;height:380px}details{margin:.3em 0}pre{font-size:12px;background:#f6f6f6}"""


def table_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    rows = "".join("<tr>" + "".join(f'<td class="{c.style}">{html.escape(c.text + c.mark)}</td>' for c in row) + "</tr>"
                   for row in t.rows)
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    return f'<h3>{html.escape(t.title)}</h3><table data-name="{t.name}"><tr>{head}</tr>{rows}</table>{note}'


def figure_html(runs, scenario: str, bench: str, metric: str, first: bool) -> Optional[str]:
    """One Plotly figure (a trace per method, ± std band as error bars), or None without data."""
    import plotly.graph_objects as go
    from harness.report.plot import method_curves
    curves = method_curves([r for r in runs if r.scenario == scenario], bench, metric)
    if not curves:
        return None
    fig = go.Figure()
    for label, (rounds, stats) in curves.items():
        fig.add_trace(go.Scatter(x=rounds, y=[m for m, _ in stats], name=label, mode="lines+markers",
                                 error_y={"type": "data", "array": [s or 0 for _, s in stats], "visible": True}))
    name = "held-out caption loss" if bench == "heldout" else f"{PRETTY.get(bench, bench)} {metric}"
    from plotly.colors import qualitative
    fig.update_layout(title=f"{scenario}: {name}", xaxis_title="round", margin={"l": 50, "r": 10, "t": 40, "b": 40},
                      legend={"font": {"size": 10}}, colorway=qualitative.Dark24)   # 13 methods: no repeats
    div = fig.to_html(full_html=False, include_plotlyjs="inline" if first else False,
                      div_id=f"fig-{scenario}-{bench}", config={"displaylogo": False})
    return f'<div class="fig">{div}</div>'


def figures_html(runs) -> tuple:
    """(html, number of figures): held-out loss and every scored benchmark's primary metric, per scenario,
    from the stage-1 runs (a stage-2 run is scored once, in its final round: Table 6, not a trajectory)."""
    from harness.report.instruct import is_instruct
    runs = [r for r in runs if not is_instruct(r)]
    out, n = [], 0
    for scenario in sorted({r.scenario for r in runs}):
        benches = [("heldout", "caption_loss")] + [(b, PRIMARY[b]) for b in PRETTY
                                                   if any(x["benchmark"] == b for r in runs for x in r.records)]
        for bench, metric in benches:
            div = figure_html(runs, scenario, bench, metric, first=n == 0)
            if div:
                out.append(div)
                n += 1
    return '<div class="figs">' + "".join(out) + "</div>", n


def run_html(run) -> str:
    rounds = sorted({r["round"] for r in run.records})
    paths = RunDir(run.path)
    wall = timed_seconds(paths.timings)
    machine = paths.machine
    info = json.loads(machine.read_text()) if machine.is_file() else {}
    cfg = paths.config
    first = run.records[0]
    summary = (f"{html.escape(str(run.path.name))} · {html.escape(run.method)} · {run.scenario} · seed {run.seed} · "
               f"hash {first.get('config_hash', '?')} · rounds {rounds[-1] if rounds else 0} · "
               f"{'%.0f s' % wall if wall is not None else 'wall time n/a'} · "
               f"{html.escape(info.get('machine', 'machine n/a'))}")
    body = html.escape(cfg.read_text()) if cfg.is_file() else "(no config.yaml)"
    return f"<details><summary>{summary}</summary><pre>{body}</pre></details>"


def image_html(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" style="max-width:100%" src="data:image/png;base64,{data}">'


def build_report(paths: List[str], out, title: str = "Fed-MA results", note: str = "", stats=None,
                 tsne=None, paper: bool = True, reference: str = "fedavg") -> Path:
    import markdown
    from harness.compare.run import page_tables
    from harness.report.runs import discover, load_run
    from harness.report.tables import all_tables
    runs = [load_run(d) for d in discover(paths)]
    tables = all_tables(runs, "final", paper, stats)
    figs, _ = figures_html(runs)
    parts = [f"<h1>{html.escape(title)}</h1>", f'<p class="note">{html.escape(note)}</p>' if note else "",
             "<h2>Tables</h2>", *(table_html(t) for t in tables)]
    comparisons = page_tables(paths, reference)
    if comparisons:
        parts += [f"<h2>Paired comparisons (fedma compare --reference {html.escape(reference)})</h2>",
                  *(table_html(t) for t in comparisons)]
    parts += ["<h2>Per-round trajectories</h2>", figs]
    if tsne and Path(tsne).is_file():
        parts += ["<h2>t-SNE of the partitions (Figure 5)</h2>", image_html(Path(tsne), "t-SNE")]
    findings = [Path(p) / "findings.md" for p in paths if (Path(p) / "findings.md").is_file()]
    for f in findings:
        parts += ["<h2>Findings</h2>", markdown.markdown(f.read_text(), extensions=["tables"])]
    parts += [f"<h2>Runs ({len(runs)})</h2>", *(run_html(r) for r in runs)]
    page = (f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".index.html.tmp"
    tmp.write_text(page)
    tmp.replace(out / "index.html")
    return out / "index.html"
