"""``fedma log sync`` and ``fedma report``: argument parsing only (the work is in the sibling modules)."""
from __future__ import annotations


def cmd_sync(args) -> int:
    from harness.core.errors import ConfigError
    from harness.engine.loggers import BACKENDS, sync
    from harness.core.typecheck import bad_choice
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    for b in backends:
        if b not in BACKENDS:
            raise bad_choice("--backend", b, BACKENDS)
    if not backends:
        raise ConfigError(f"--backend: name at least one of {', '.join(BACKENDS)}")
    written = sync(args.run, backends, args.project, args.mlflow_uri)
    for name in backends:
        print(f"{name}: {written[name]} scalars" if name in written else f"{name}: off (see the warning above)")
    return 0 if set(written) == set(backends) else 1


def add_log_parser(parser) -> None:
    sub = parser.add_subparsers(dest="log_command", metavar="ACTION", required=True)
    p = sub.add_parser("sync", help="replay a run's records into TensorBoard, W&B (offline) or MLflow")
    p.add_argument("run", help="a run directory (records.jsonl)")
    p.add_argument("--backend", required=True, help="comma-separated: tensorboard, wandb, mlflow")
    p.add_argument("--project", default="fedma", help="W&B project / MLflow experiment")
    p.add_argument("--mlflow-uri", default=None, help="MLflow tracking URI (default: a file store in RUN/mlruns)")
    p.set_defaults(func=cmd_sync)


def cmd_report(args) -> int:
    from harness.observe.report import build_report
    print(build_report(args.runs, args.out, args.title, args.note, args.stats, args.tsne, paper=not args.no_paper,
                       reference=args.reference))
    return 0


def add_report_parser(parser) -> None:
    parser.add_argument("runs", nargs="+", help="run directories or sweep / study roots")
    parser.add_argument("--out", required=True, help="folder for index.html")
    parser.add_argument("--title", default="Fed-MA results")
    parser.add_argument("--note", default="", help="one line under the title")
    parser.add_argument("--stats", default=None, help="cluster stats CSV (fedma data stats) for Table 9")
    parser.add_argument("--tsne", default=None, help="Figure 5 PNG (fedma data tsne) to embed")
    parser.add_argument("--no-paper", action="store_true", help="leave out the paper's numbers")
    parser.add_argument("--reference", default="fedavg", help="the row of the paired comparisons (default fedavg)")
    parser.set_defaults(func=cmd_report)
