"""``fedma run``: logging and progress around :func:`harness.engine.rounds.run_federation`."""
from __future__ import annotations

import logging
import os
import warnings


def quiet_libraries() -> None:
    """DeepSpeed and transformers print a lot on every rank; keep warnings and errors only."""
    warnings.filterwarnings("ignore", category=UserWarning)
    for name in ("DeepSpeed", "deepspeed", "transformers", "torch.distributed"):
        logging.getLogger(name).setLevel(logging.ERROR)


def evaluation_hooks(ctx) -> list:
    """Held-out caption loss every round, plus the lmms-eval benchmarks when they are configured.

    The lmms-eval hook does collectives, so whether it runs depends on the config alone (same on every
    rank). The engine checks before training that configured benchmarks have their local data
    (``eval.data_root``: a run must not reach for a hub mid-training) and lmms-eval installed.
    """
    from harness.eval.hook import enabled, lmms_hook
    from harness.eval.heldout import heldout_hook
    records = heldout_hook(ctx)
    if enabled(ctx.cfg):
        records += lmms_hook(ctx)
    return records


evaluation_hooks.scores_benchmarks = True   # the engine checks the benchmark data before training


def peer_lost(e: RuntimeError, rank: int):
    """One clear error for a collective that failed because another rank went away (a gloo/NCCL error
    naming the peer), or None for any other error."""
    import torch.distributed as dist
    from harness.core.errors import HarnessError
    text = str(e)
    if not (isinstance(e, dist.DistError) or any(w in text for w in ("gloo", "NCCL", "Connection closed", "Broken pipe"))):
        return None
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(e).__name__)
    return HarnessError(f"rank {rank}: another rank stopped during a collective ({first[:160]}); the last complete "
                        f"checkpoint is intact: rerun the same command with --resume to continue")


def run_from_cli(cfg, out, resume: bool, allow_config_change: bool) -> int:
    from rich.console import Console
    from rich.logging import RichHandler
    rank = int(os.environ.get("RANK", "0"))
    console = Console(stderr=True)
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)])
    quiet_libraries()
    from harness.engine.rounds import run_federation
    from harness.core.launch_record import record_start
    record_start(out)
    try:
        run_federation(cfg, out, resume=resume, allow_config_change=allow_config_change,
                       eval_hook=evaluation_hooks, progress=console.print if rank == 0 else None)
    except RuntimeError as e:
        raise peer_lost(e, rank) or e
    if rank == 0:
        console.print(f"[green]done:[/] {out}/final")
    return 0
