"""``fedma tables``, ``fedma plot`` and ``fedma export``: argument parsing only; the work is in the
sibling modules, imported inside the commands so ``fedma --help`` stays light."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def _round(value: str):
    if value == "final":
        return value
    try:
        return int(value)
    except ValueError:
        from harness.core.errors import ConfigError
        raise ConfigError(f"--round: expected 'final' or a round number, got '{value}'") from None


def cmd_tables(args) -> int:
    from harness.report.render import parse_formats, write_tables
    from harness.report.runs import discover, load_run
    from harness.report.tables import all_tables
    formats = parse_formats(args.format)
    runs = [load_run(d) for d in discover(args.run_dirs)]
    tables = all_tables(runs, args.round, args.paper, args.stats)
    for t in tables:
        t.note = args.note or t.note
    paths = write_tables(tables, formats, args.out)
    for p in paths:
        print(p)
    return 0


def add_tables_parser(parser) -> None:
    parser.add_argument("run_dirs", nargs="+", help="run directories (records.jsonl + config.yaml), or sweep / "
                        "study roots holding them (mean ± std over seeds per scenario, method and variant)")
    parser.add_argument("--format", default="csv,latex,md", help="comma-separated: csv, latex, md")
    parser.add_argument("--paper", action="store_true", help="add the paper's numbers beside ours")
    parser.add_argument("--out", default="results/tables", help="output directory")
    parser.add_argument("--round", default="final", type=_round, help="'final' or a round number")
    parser.add_argument("--stats", default=None, help="cluster stats CSV (fedma data stats) for Table 9")
    parser.add_argument("--note", default="", help="one line printed under every Markdown/LaTeX table")
    parser.set_defaults(func=cmd_tables)


def cmd_plot(args) -> int:
    from harness.report.plot import plot_runs
    from harness.report.runs import discover, load_run
    print(plot_runs([load_run(d) for d in discover(args.run_dirs)], args.metric, args.out))
    return 0


def add_plot_parser(parser) -> None:
    parser.add_argument("run_dirs", nargs="+", help="run directories, or sweep roots holding them")
    parser.add_argument("--metric", default="heldout.caption_loss", help="BENCH.METRIC, e.g. pope.pope_accuracy")
    parser.add_argument("--out", required=True, help="output image (e.g. fig4.png)")
    parser.set_defaults(func=cmd_plot)


def cmd_export(args) -> int:
    from harness.report.export import export
    print(export(args.run, args.format, args.out, args.client))
    return 0


def add_export_parser(parser) -> None:
    parser.add_argument("run", help="a finished run directory")
    parser.add_argument("--format", required=True, choices=["llava", "hf"])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--client", type=int, default=None, help="client id (method 'local' only)")
    parser.set_defaults(func=cmd_export)
