"""``fedma demo --instruct``: the paper's Appendix B on Fed-MA-mini, after the stage-1 demo.

The demo's final global projectors of Fed-CMP, FedAvg and FedAvg+TIES (``OUT/runs/ii/<method>/final``)
each start a stage-2 federation (``instruct-mini``: projector + LoRA, weighted FedAvg, 5 clients with an
even split of the GQA-style and OCRVQA-style sets, :mod:`harness.mini.instruct`), and so does the
seeded random projector (the reference row). Every client's fine-tuned model and the aggregated one
are scored on both sets at the final round; Tables 5 and 6 land in ``OUT/tables`` and
``OUT/instruct.md``. The world and its recipe are fixed before anything is measured: nothing here is
tuned toward a ranking.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from harness.core.rundir import RunDir

INITS = ("fedcmp", "fedavg", "fedavg_ties")


def stage2_jobs(out: Path, stage1: Path, seed: int, data_root: Path, bench_root: Path) -> dict:
    from harness.mini.bench import EVAL
    jobs = {}
    for name in (*INITS, "random"):
        init = "random" if name == "random" else str((stage1 / name).resolve())
        if init != "random" and not RunDir(init).final_projector().is_file():
            raise FileNotFoundError(f"{RunDir(init).final_projector()}: the stage-1 demo run of {name} is missing")
        run_dir = out / "runs" / "instruct" / name
        shutil.rmtree(run_dir, ignore_errors=True)
        jobs[str(run_dir)] = [f"init.projector={init}", f"data.root={data_root}", f"eval.data_root={bench_root}",
                              "eval.per_client=true", f"eval.max_new_tokens={EVAL['max_new_tokens']}",
                              f"federation.seed={seed}"]
    return jobs


def instruct_demo(out, seed: int, workers: int, console, scenario: str = "ii") -> list:
    """Stage 2 from the stage-1 demo's projectors in ``out``; returns the tables written."""
    import time

    from harness.mini.bench import ensure_benchmarks
    from harness.mini.workers import run_all
    from harness.mini.instruct import ensure_instruct_world
    out, clock = Path(out), time.perf_counter()
    jobs = stage2_jobs(out, out / "runs" / scenario, seed, ensure_instruct_world(seed), ensure_benchmarks(seed=0))
    run_all(jobs, workers, console, preset="instruct-mini")
    tables = write_instruct_outputs(out, [Path(d) for d in jobs])
    console.print(f"[green]instruction tuning done[/] in {time.perf_counter() - clock:.0f} s: {out / 'instruct.md'}")
    return tables


def write_instruct_outputs(out: Path, run_dirs: list) -> list:
    from harness.report.instruct import instruct_tables
    from harness.report.render import to_markdown, write_tables
    from harness.report.runs import load_run
    tables = instruct_tables([load_run(d) for d in run_dirs], paper=True)
    write_tables(tables, ["csv", "latex", "md"], out / "tables")
    from harness.mini.workers import SYNTHETIC_NOTE
    body = "\n\n".join(to_markdown(t) for t in tables)
    (out / "instruct.md").write_text(f"# Instruction tuning on Fed-MA-mini (Appendix B)\n\n{SYNTHETIC_NOTE}\n\n{body}\n")
    return tables
