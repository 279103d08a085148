"""``fedma mini``: build the Fed-MA-mini world and models into the cache, or run its demo."""
from __future__ import annotations

import os


def cmd_build(args) -> int:
    from harness.data.prepare import scenarios
    from harness.mini.bench import ensure_benchmarks
    from harness.mini.models import ensure_clip, ensure_models, ensure_world
    from harness.mini.scenario import ensure_scenario
    chosen = scenarios(args.scenarios)
    if args.rebuild:
        os.environ["FEDMA_MINI_REBUILD"] = "1"
    print(f"clip      {ensure_clip()}")
    print(f"llava     {ensure_models()}")
    print(f"domains   {ensure_world(per_round=args.per_round, seed=args.seed)}")
    print(f"benchmarks {ensure_benchmarks(seed=args.seed)}")
    for s in chosen:
        print(f"scenario  {s}: {ensure_scenario(s, per_round=args.per_round, seed=args.seed)}")
    return 0


def cmd_demo(args) -> int:
    from harness.data.prepare import scenarios
    from harness.cli.demo import toy_demo
    if args.toy:
        toy_demo(args.rounds, args.seed)
        return 0
    from harness.cli.mini_demo import mini_demo
    methods = args.methods.split(",") if args.methods else None
    if methods:
        from harness.flower import is_flower_method
        from harness.cli.mini_demo import demo_names
        from harness.core.registry import build_aggregator
        from harness.core.typecheck import bad_choice
        for m in methods:               # one error line naming the valid names, before any work
            if is_flower_method(m):     # a Flower strategy at its defaults: "FedYogi (Flower)" in the tables
                build_aggregator(m)
            elif m not in demo_names():
                raise bad_choice("--methods", m, [*demo_names(), "flwr:<ClassName>"])
    mini_demo(args.rounds, args.seed, demo_out(args.out, args.clients), args.per_round, methods,
              scenarios(args.scenarios), args.workers, benchmarks=not args.no_benchmarks, instruct=args.instruct,
              **federation_size(args.clients, args.clients_per_round))
    return 0


def federation_size(clients: int, per_round) -> dict:
    """--clients / --clients-per-round, checked in one line before any work."""
    from harness.core.errors import ConfigError
    if clients < 1 or (per_round is not None and not 1 <= per_round <= clients):
        raise ConfigError(f"--clients {clients} --clients-per-round {per_round}: need 1 <= clients-per-round "
                          f"<= clients (e.g. CLIENTS=20 PER_ROUND_CLIENTS=5)")
    return {"clients": clients, "per_round_clients": per_round}


def demo_out(out, clients: int):
    """results/demo for the five-client demo; results/demo-kK beside it for another K."""
    if out is not None:
        return out
    return "results/demo" if clients == 5 else f"results/demo-k{clients}"


def add_size_args(parser) -> None:
    import os
    env = os.environ.get
    parser.add_argument("--clients", type=int, default=int(env("CLIENTS") or 5),
                        help="K clients (env CLIENTS; other than 5: the clusters dealt among them, Dirichlet alpha 1)")
    parser.add_argument("--clients-per-round", type=int, default=int(env("PER_ROUND_CLIENTS") or 0) or None,
                        help="clients sampled each round (env PER_ROUND_CLIENTS; default all)")


def add_parser(parser) -> None:
    sub = parser.add_subparsers(dest="mini_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="pretrain the tiny CLIP and LLaVA, write the pool, the domain world, "
                                         "the scenario data and the benchmark sets into the cache "
                                         "($FEDMA_CACHE or ~/.cache/fedma)")
    build.add_argument("--per-round", type=int, default=256, help="samples per client per round")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--scenarios", default="ii", help="ii, tt, it, xm, a comma list or 'all'")
    build.add_argument("--rebuild", action="store_true", help="pretrain the CLIP and LLaVA from their recipes "
                                                                "into the cache instead of using the shipped ones")
    build.set_defaults(func=cmd_build)
    demo = sub.add_parser("demo", help="all methods on the mini world (what `fedma demo` runs)")
    demo.add_argument("--toy", action="store_true", help="the convex-toy aggregation demo instead")
    demo.add_argument("--instruct", action="store_true", help="then instruction-tune from the Fed-CMP, FedAvg and "
                                                              "FedAvg+TIES projectors (Appendix B: Tables 5, 6)")
    demo.add_argument("--rounds", type=int, default=10)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--per-round", type=int, default=256, help="samples per client per round")
    demo.add_argument("--methods", default=None, help="comma-separated subset (default: all nine methods and "
                                                          "fedcmp_sign, Fed-CMP with the paper's sign OPM); "
                                                          "flwr:<ClassName> adds a Flower strategy at its defaults "
                                                          "(the extra flower)")
    demo.add_argument("--scenarios", default=os.environ.get("SCENARIOS") or "ii",
                      help="ii (default), tt, it, xm, a comma list or 'all' (env SCENARIOS)")
    demo.add_argument("--workers", type=int, default=2, help="methods run side by side, one thread each")
    demo.add_argument("--no-benchmarks", action="store_true",
                      help="held-out caption loss only (skip the mini benchmarks through lmms-eval)")
    demo.add_argument("--out", default=None, help="default results/demo (results/demo-kK for --clients K != 5)")
    add_size_args(demo)
    demo.set_defaults(func=cmd_demo)
