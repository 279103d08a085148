"""``fedma mini``: build the Fed-MA-mini world and models into the cache, or run its demo."""
from __future__ import annotations


def cmd_build(args) -> int:
    from harness.mini import ensure_benchmarks, ensure_models, ensure_world
    print(ensure_models())
    print(ensure_world(per_round=args.per_round, seed=args.seed))
    print(ensure_benchmarks(seed=args.seed))
    return 0


def cmd_demo(args) -> int:
    from harness.demo import mini_demo, toy_demo
    if args.toy:
        toy_demo(args.rounds, args.seed)
    else:
        methods = args.methods.split(",") if args.methods else None
        mini_demo(args.rounds, args.seed, args.out, args.per_round, methods)
    return 0


def add_parser(parser) -> None:
    sub = parser.add_subparsers(dest="mini_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="pretrain the tiny LLaVA, write the world and the benchmark sets into the cache "
                                         "($FEDMA_CACHE or ~/.cache/fedma)")
    build.add_argument("--per-round", type=int, default=256, help="samples per client per round")
    build.add_argument("--seed", type=int, default=0)
    build.set_defaults(func=cmd_build)
    demo = sub.add_parser("demo", help="all methods on the mini world (what `fedma demo` runs)")
    demo.add_argument("--toy", action="store_true", help="the convex-toy aggregation demo instead")
    demo.add_argument("--rounds", type=int, default=10)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--per-round", type=int, default=256, help="samples per client per round")
    demo.add_argument("--methods", default=None, help="comma-separated subset (default: all nine)")
    demo.add_argument("--out", default="results/demo")
    demo.set_defaults(func=cmd_demo)
