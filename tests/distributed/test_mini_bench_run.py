"""The mini benchmarks in a real Fed-MA-mini federation (2 rounds of fedavg, mini preset, under torchrun):
the round engine scores them every round through lmms-eval with ``bench.eval_overrides`` (judged ones
n/a), and ``fedma eval`` reproduces its scores. Whether they measure the projector: a projector trained
plainly (2 rounds of federation are too few to leave chance) against the random-initialized one.

Chance (uniform random answers): POPE accuracy 0.5; MME perception 4 x (50 acc + 25 acc+) = 300;
MMBench 25; SEED 0.25; MMVP accuracy 0.5. A projector that carries nothing leaves the LM at chance (or
at a constant answer, at or below it), so "trained > chance + margin" is learning. Margins are about two
standard deviations of chance on these set sizes.
"""
import json
import os
import time

import pytest

from harness.mini import ensure_benchmarks, ensure_models, ensure_world
from harness.core.records import read_records
from tests.distributed.conftest import BIN, REPO, run_session, torchrun
from harness.mini.function import train_projector

pytestmark = pytest.mark.dist
ROUNDS = 2
SCORED = {"pope": "pope_accuracy", "mme": "mme_perception_score", "mmbench": "gpt_eval_score",
          "seed": "seed_image", "mmvp": "mmvp_accuracy"}
CHANCE = {"pope": 0.5, "mme": 300.0, "mmbench": 25.0, "seed": 0.25, "mmvp": 0.5}
MARGIN = {"pope": 0.1, "mme": 60.0, "mmbench": 10.0, "seed": 0.1, "mmvp": 0.1}
BEST = {"pope": 1.0, "mme": 800.0, "mmbench": 100.0, "seed": 1.0, "mmvp": 1.0}


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
    return primary(recs)


def primary(recs, round_=None) -> dict:
    return {b: next(r["value"] for r in recs if (r["benchmark"], r["metric"]) == (b, m)
                    and round_ in (None, r["round"])) for b, m in SCORED.items()}


@pytest.fixture(scope="module")
def measured(run):
    """{benchmark: (chance, random-initialized projector, trained projector)} through ``fedma eval``."""
    import torch
    from safetensors.torch import save_file

    from harness.model.build import build_bundle, init_projector
    tmp, bench, _ = run
    torch.set_num_threads(1)
    bundle = build_bundle("mini")
    got = {}
    for name, state in (("random", init_projector(bundle.model, 0)), ("trained", train_projector(bundle))):
        path = tmp / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        got[name] = scores(path, bench, tmp / f"{name}.jsonl", "--preset", "mini")
    out = {b: (CHANCE[b], got["random"][b], got["trained"][b]) for b in SCORED}
    print(out)
    return out


def test_the_engine_scores_match_fedma_eval(run):
    tmp, bench, recs = run
    assert scores(tmp / "run", bench, tmp / "engine.jsonl") == pytest.approx(primary(recs, ROUNDS))


# Measured (2026-11-26, the grounded LM "lm-qa-2" built on one thread), (chance, random, trained):
# POPE (0.5, 0.5, 0.75), MME (300, 225, 437.5), MMBench (25, 25, 58.3), SEED (0.25, 0.21, 0.50),
# MMVP (0.5, 0.5, 0.625). The text-only LM before it ("lm-qa-1") reached POPE 0.53, MME 381, MMBench 33.3,
# SEED 0.29, MMVP 0.54 with the same projector training: below these margins.


def test_trained_projector_beats_random_over_the_five_benchmarks(measured):
    """Sum over the five of (trained - random) / (best - chance): 0 for a projector that learned nothing
    readable; measured 2.0 (0.23 with the text-only LM)."""
    gain = sum((trained - untrained) / (BEST[b] - chance) for b, (chance, untrained, trained) in measured.items())
    assert gain > 0.1, (gain, measured)


@pytest.mark.parametrize("bench", ["mmbench", "mme", "seed", "pope", "mmvp"])
def test_trained_projector_beats_random_and_chance(measured, bench):
    chance, untrained, trained = measured[bench]
    assert trained > chance + MARGIN[bench], (bench, measured[bench])
    assert trained > untrained, (bench, measured[bench])


def test_the_demo_reference_scores_the_random_projector_like_fedma_eval_and_the_llava_forward(run, measured):
    """The demo's round-0 reference (harness.mini.reference): its benchmark scores equal ``fedma eval`` on
    the same seed-0 projector (a separate process), and its held-out loss equals LLaVA's own forward with
    pixel values (the HF image-token merge, not the CaptionModel's)."""
    import torch
    from harness.data.collate import plain_batch
    from harness.data.reader import pixels
    from harness.eval.heldout import heldout_samples
    from harness.mini.bench import eval_overrides
    from harness.mini.reference import random_init_scores
    from harness.model.build import build_bundle, init_projector
    tmp, bench, _ = run
    got = random_init_scores([f"data.root={tmp / 'world'}", "federation.seed=0", *eval_overrides(bench)])
    assert {b: got[b] for b in SCORED} == pytest.approx({b: m[1] for b, m in measured.items()})
    bundle = build_bundle("mini")
    init_projector(bundle.model, 0)
    samples = heldout_samples(str(tmp / "world"))
    total = 0.0
    for i in range(0, len(samples), 16):     # the mini config's batch: the mean of batch means, per sample
        chunk = samples[i:i + 16]
        batch = plain_batch([s.caption for s in chunk], bundle.tokenizer, bundle.image_token_id,
                            bundle.num_image_tokens, 32)
        px = pixels([s.image for s in chunk], bundle.image_size, bundle.image_mean, bundle.image_std)
        with torch.no_grad():
            total += len(chunk) * float(bundle.model(input_ids=batch["input_ids"], labels=batch["labels"],
                                                     attention_mask=batch["attention_mask"], pixel_values=px).loss)
    assert len(samples) == 20 and got["heldout"] == pytest.approx(total / len(samples), rel=1e-5)
