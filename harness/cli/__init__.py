"""The ``fedma`` command line: one entry point, one subcommand per step.

Errors the harness raises on purpose (bad config, bad data, ...) print as one red line and exit 2;
``--debug`` shows the traceback. Heavy imports happen inside the subcommands, so ``--help`` is quick.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from harness.core.errors import HarnessError
from harness.core.extras import missing_extra

# Subcommands that live in their own modules: name -> ("module:function", help). ``function(parser)``
# adds the subcommand's arguments and sets ``func``.
PLUGINS = {
    "data": ("harness.cli.data:add_parser", "the data pipeline (embed, cluster, cap, split, stats, tsne, prepare)"),
    "sweep": ("launchers.cli:add_sweep_parser", "expand method x scenario x seed into a Slurm job array"),
    "eval": ("harness.cli.eval:add_parser", "score a checkpoint or run with lmms-eval"),
    "tables": ("harness.cli.report:add_tables_parser", "the paper's tables as CSV, LaTeX and Markdown"),
    "plot": ("harness.cli.report:add_plot_parser", "per-round trajectories (Figure 4)"),
    "export": ("harness.cli.report:add_export_parser", "the projector as LLaVA mm_projector.bin or HF checkpoint"),
    "mini": ("harness.cli.mini:add_parser", "the Fed-MA-mini world: build (cache), demo [--toy]"),
    "study": ("harness.cli.study:add_parser", "the Fed-MA-mini study of the paper's claims (Tables 3, 4, Figure 4)"),
    "compare": ("harness.cli.compare:add_parser", "paired comparisons against a reference: intervals, adjusted p"),
    "tune": ("launchers.tune:add_parser", "equal tuning budgets: Optuna trials per method on tuning seeds"),
    "log": ("harness.cli.observe:add_log_parser", "replay a run's records into TensorBoard, W&B or MLflow"),
    "report": ("harness.cli.observe:add_report_parser", "one self-contained HTML page of runs or a sweep"),
}


def cmd_methods(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from harness.core.registry import METHODS
    table = Table("name", "table name", "reference", title="server rules (fedma methods)")
    for name, entry in METHODS.items():
        table.add_row(name, entry.pretty, entry.reference)
    table.add_row("flwr:<ClassName>", "<ClassName> (Flower)", "a strategy of flwr.serverapp.strategy, arguments under "
                  "aggregator.flwr (the extra flower; docs/flower.md)")
    Console().print(table)
    return 0


def cmd_config(args) -> int:
    from harness.core.config import descriptions, dump_config, explain, load_config
    if args.explain:
        keys = descriptions() if args.explain == "all" else [args.explain]
        sys.stdout.write("".join(explain(k) + "\n" for k in keys))
        return 0
    cfg = load_config(args.config, args.overrides)
    sys.stdout.write(dump_config(cfg))
    sys.stdout.write(f"# config hash: {cfg.hash()}\n")
    return 0


def cmd_demo(args) -> int:
    from harness.data.prepare import scenarios
    from harness.cli.demo import aggregation_demo
    from harness.cli.mini import demo_out, federation_size
    size = federation_size(args.clients, args.clients_per_round)
    aggregation_demo(rounds=args.rounds, seed=args.seed, scenarios=scenarios(args.scenarios), workers=args.workers,
                     instruct=args.instruct, out=demo_out(None, args.clients), **size)
    return 0


def cmd_run(args) -> int:
    from harness.core.config import load_config
    cfg = load_config(args.config, args.overrides)     # every config error before any heavy import
    from harness.core.presets import completions
    extra = completions(cfg)            # what the preset fills in (mini: its cached world)
    if extra:
        if int(os.environ.get("RANK", "0")) == 0:
            sys.stderr.write(f"{cfg.model.preset} preset: " + " ".join(extra) + " (the cached Fed-MA-mini world)\n")
        cfg = load_config(args.config, [*args.overrides, *extra])
    if args.nproc and "RANK" not in os.environ:        # start the world here: torchrun --standalone
        from launchers.local import run_local
        return run_local(args.nproc, args.config, args.overrides, args.out, args.resume)
    from harness.engine.runner import run_from_cli
    return run_from_cli(cfg, args.out, args.resume, args.allow_config_change)


def add_plugin(sub, name: str) -> None:
    target, help_text = PLUGINS[name]
    module, attr = target.split(":")
    getattr(importlib.import_module(module), attr)(sub.add_parser(name, help=help_text))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedma", description="Fed-MA harness: federated pretraining "
                                     "of multimodal LLMs (Fed-CMP and eight baselines).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = sub.add_parser("demo", help="run the embedded default demonstration")
    demo.add_argument("--rounds", type=int, default=10)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--scenarios", default=os.environ.get("SCENARIOS") or "ii",
                      help="ii (default), tt, it, xm, a comma list or 'all' (env SCENARIOS)")
    demo.add_argument("--workers", type=int, default=2, help="methods run side by side, one thread each")
    demo.add_argument("--instruct", action="store_true", help="then stage 2: instruction-tune from the Fed-CMP, "
                                                              "FedAvg and FedAvg+TIES projectors (Tables 5, 6)")
    from harness.cli.mini import add_size_args
    add_size_args(demo)
    demo.set_defaults(func=cmd_demo)
    config = sub.add_parser("config", help="print a resolved config and its hash")
    config.add_argument("config", nargs="?", default="tiny", help="packaged name (tiny, mini, paper) or YAML path")
    config.add_argument("overrides", nargs="*", help="dotted.key=value overrides")
    config.add_argument("--explain", metavar="KEY", help="what a key means, its default ('all': every key)")
    config.set_defaults(func=cmd_config)
    sub.add_parser("methods", help="list the server rules").set_defaults(func=cmd_methods)
    run = sub.add_parser("run", help="run (or resume) one federation; start it under torchrun for several ranks")
    run.add_argument("config", help="packaged name (tiny, mini, paper) or YAML path (`extends: mini` layers it "
                     "over a preset)")
    run.add_argument("overrides", nargs="*", help="dotted.key=value overrides; every key: fedma config --explain all")
    run.add_argument("--out", required=True, help="run directory (checkpoints, records, final projector)")
    run.add_argument("--resume", action="store_true", help="continue from the last complete round")
    run.add_argument("--allow-config-change", action="store_true", help="resume even if the config hash differs")
    run.add_argument("--nproc", type=int, default=None, help="start a torchrun world of N processes on this machine")
    run.set_defaults(func=cmd_run)
    for name in PLUGINS:
        add_plugin(sub, name)
    return parser


def main(argv=None) -> int:
    from harness.engine.jit import prepare_torch_extensions
    prepare_torch_extensions()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may follow options (`run tiny --out d rounds=3`); argparse stops at the option
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except (HarnessError, ValueError, ModuleNotFoundError) as e:
        if args.debug:
            raise
        from rich.console import Console
        from rich.markup import escape
        message = missing_extra(e) if isinstance(e, ModuleNotFoundError) else str(e)
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
