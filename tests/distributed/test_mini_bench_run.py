"""The mini benchmarks in a real Fed-MA-mini federation (fedavg, mini preset, under torchrun): the round
engine scores them every round through lmms-eval with ``bench.eval_overrides``, and they measure the
projector: the trained one beats the random-initialized one and chance on every benchmark.

Chance (uniform random answers): POPE accuracy 0.5; MME perception 4 x (50 acc + 25 acc+) = 300;
MMBench 25; SEED 0.25; MMVP accuracy 0.5. A projector that carries nothing leaves the LM at chance (or
at a constant answer, which is at or below it), so "trained > chance + margin" is learning.
"""
import json
import os
import time

import pytest

from harness.mini import ensure_benchmarks, ensure_models, ensure_world
from harness.records import read_records
from tests.distributed.conftest import BIN, REPO, run_session, torchrun

pytestmark = pytest.mark.dist
ROUNDS = 2
SCORED = {"pope": "pope_accuracy", "mme": "mme_perception_score", "mmbench": "gpt_eval_score",
          "seed": "seed_image", "mmvp": "mmvp_accuracy"}
CHANCE = {"pope": 0.5, "mme": 300.0, "mmbench": 25.0, "seed": 0.25, "mmvp": 0.5}
MARGIN = {"pope": 0.1, "mme": 60.0, "mmbench": 10.0, "seed": 0.1, "mmvp": 0.1}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("minibench")
    ensure_models()
    bench = ensure_benchmarks()
    world = ensure_world(tmp / "world", per_round=256, heldout=20, rounds=ROUNDS)
    start = time.perf_counter()
    res = torchrun(1, "tests/distributed/run_mini_bench.py", str(world), str(bench), str(tmp / "run"),
                   "method=fedavg", f"federation.rounds={ROUNDS}", timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    print(f"federation with per-round lmms-eval: {time.perf_counter() - start:.1f} s")
    return tmp, bench, read_records(tmp / "run" / "records.jsonl")


def test_every_round_records_the_mini_benchmarks_and_judged_ones_na(run):
    _, _, recs = run
    for t in range(1, ROUNDS + 1):
        got = {r["metric"]: r for r in recs if r["round"] == t and r["client"] == "global"}
        for bench, metric in SCORED.items():
            assert got[metric]["benchmark"] == bench and isinstance(got[metric]["value"], float), (t, metric)
        judged = {r["benchmark"]: r["value"] for r in recs if r["round"] == t and r["benchmark"] in ("mmvet", "llava_bench")}
        assert judged == ({"mmvet": None, "llava_bench": None} if t == ROUNDS else {"mmvet": None}), (t, judged)


def scores(target, bench, out, *extra) -> dict:
    """``fedma eval`` (a fresh process, offline) on the mini benchmarks: {benchmark: primary value}."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [str(BIN / "python"), "-m", "harness.cli", "eval", str(target), "--data-root", str(bench),
           "--tasks", ",".join(SCORED), "--batch-size", "16", "--max-new-tokens", "2", "--out", str(out), *extra]
    res = run_session(cmd, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    return {b: next(r["value"] for r in recs if r["metric"] == m) for b, m in SCORED.items()}


def test_trained_projector_beats_random_and_chance(run):
    from safetensors.torch import save_file

    from harness.model import build_bundle, init_projector
    tmp, bench, recs = run
    random_proj = tmp / "random_projector.safetensors"   # the federation's start (federation.seed 0)
    save_file({k: v.contiguous() for k, v in init_projector(build_bundle("mini").model, 0).items()}, str(random_proj))
    untrained = scores(random_proj, bench, tmp / "random.jsonl", "--preset", "mini")
    trained = scores(tmp / "run", bench, tmp / "trained.jsonl")
    last = {b: next(r["value"] for r in recs if r["round"] == ROUNDS and r["metric"] == m) for b, m in SCORED.items()}
    print({b: (CHANCE[b], untrained[b], trained[b]) for b in SCORED})
    assert trained == pytest.approx(last)          # fedma eval reproduces the round engine's own scores
    for b in SCORED:
        assert trained[b] > CHANCE[b] + MARGIN[b], (b, trained[b])
        assert trained[b] > untrained[b], (b, trained[b], untrained[b])
