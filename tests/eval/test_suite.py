"""lmms-eval's real task code on tiny local copies of all seven benchmarks (see fixtures.py)."""
import logging

import pytest

from tests.eval.conftest import ALL, by_metric, fixed_model
from tests.eval.stub_judge import StubJudge

pytestmark = pytest.mark.eval


@pytest.fixture(scope="module")
def suite(data_root):
    from harness.eval.suite import Suite
    return Suite(ALL, data_root=str(data_root))


def test_every_benchmark_gets_records_and_judged_ones_are_na_without_judge(suite, tiny_bundle):
    from harness.eval.adapter import FedmaLlava
    rows = suite.evaluate(FedmaLlava(bundle=tiny_bundle, max_new_tokens=4, batch_size=4))
    assert {r[0] for r in rows} == set(ALL)
    got = by_metric(rows)
    for bench in ("mmvet", "llava_bench"):      # never lmms-eval's offline 0 or 100
        [row] = [r for r in rows if r[0] == bench]
        assert row[2] is None and row[4] is None and "no judge" in row[5]
    assert "mmbench_en_dev_static" in got["mmbench", "gpt_eval_score"][5]
    for key, n in {("pope", "pope_accuracy"): 6, ("mme", "mme_perception_score"): 10, ("seed", "seed_image"): 5,
                   ("mmvp", "mmvp_accuracy"): 4, ("mmbench", "gpt_eval_score"): 4}.items():
        assert isinstance(got[key][2], float) and got[key][3] == n, got[key]
    assert not any("stderr" in r[1] or r[1] == "submission" for r in rows)


def test_always_yes_pope_and_mme_by_hand(suite, tiny_bundle):
    """POPE answers yes,yes,no,yes,no,no; always "yes": 3 right of 6 -> accuracy 0.5; 3 true positives of 6
    predicted yes -> precision 0.5; recall 3/3 = 1; F1 = 2*0.5*1/1.5 = 2/3; yes_ratio (of the ground
    truth) 0.5. MME (score per category = mean over its question pairs of acc% + acc+%):
    existence e1 (Yes,No): 50 + 0, e2 (Yes,Yes): 100 + 100 -> (50 + 200)/2 = 125; color c1 (No,No): 0,
    c2 (Yes,No): 50 -> 25; perception = 125 + 25 = 150; cognition: commonsense r1 (Yes,No) = 50."""
    got = by_metric(suite.evaluate(fixed_model(tiny_bundle, "yes")))
    assert got["pope", "pope_accuracy"][2] == pytest.approx(0.5)
    assert got["pope", "pope_precision"][2] == pytest.approx(0.5)
    assert got["pope", "pope_recall"][2] == pytest.approx(1.0)
    assert got["pope", "pope_f1_score"][2] == pytest.approx(2 / 3)
    assert got["pope", "pope_yes_ratio"][2] == pytest.approx(0.5)
    assert got["mme", "mme_perception_score"][2] == pytest.approx(150.0)
    assert got["mme", "mme_cognition_score"][2] == pytest.approx(50.0)


def test_always_b_multiple_choice_by_hand(suite, tiny_bundle):
    """SEED answers B,A,B,D,B -> "B" is right 3 of 5 = 0.6 (seed_image = seed_all). MMBench answers A,B,A,C ->
    1 of 4 = 25.0 (static extraction reads the bare letter). MMVP (a),(b),(b),(b) in pairs (1,2),(3,4):
    answering "(b)" is right 3 of 4 = 0.75; pair 1 fails, pair 2 holds -> pair accuracy 0.5."""
    got = by_metric(suite.evaluate(fixed_model(tiny_bundle, "B")))
    assert got["seed", "seed_image"][2] == pytest.approx(0.6)
    assert got["seed", "seed_all"][2] == pytest.approx(0.6)
    assert got["mmbench", "gpt_eval_score"][2] == pytest.approx(25.0)
    got = by_metric(suite.evaluate(fixed_model(tiny_bundle, "(b)")))
    assert got["mmvp", "mmvp_accuracy"][2] == pytest.approx(0.75)
    assert got["mmvp", "mmvp_pair_accuracy"][2] == pytest.approx(0.5)


def test_stub_judge_gives_known_scores_and_the_key_is_never_logged(data_root, tiny_bundle, monkeypatch, caplog, capsys):
    """Stub: MM-Vet grade 0.5 per answer -> 50.0; LLaVA-Bench review "8 6" -> 6/8 = 75.0 in every category;
    MMBench: "yes" names no option, so the judge extracts "A" -> right for answers A,B,A,C 2 of 4 = 50.0."""
    from harness.eval.judge import Judge
    from harness.eval.suite import Suite
    secret = "sk-test-secret-4242"
    monkeypatch.setenv("FEDMA_TEST_JUDGE_KEY", secret)
    caplog.set_level(logging.DEBUG)
    with StubJudge() as stub:
        judge = Judge(stub.base_url, "stub-judge", "FEDMA_TEST_JUDGE_KEY")
        suite = Suite(["mmvet", "mmbench", "llava_bench"], data_root=str(data_root), judge=judge)
        rows = suite.evaluate(fixed_model(tiny_bundle, "yes"))
    got = by_metric(rows)
    assert got["mmvet", "gpt_eval_score"][2] == pytest.approx(50.0)
    for cat in ("all", "conv", "detail", "complex"):
        assert got["llava_bench", f"gpt_eval_llava_{cat}"][2] == pytest.approx(75.0)
    assert got["mmbench", "gpt_eval_score"][2] == pytest.approx(50.0)
    assert "task mmbench_en_dev" in got["mmbench", "gpt_eval_score"][5] and "static" not in got["mmbench", "gpt_eval_score"][5]
    assert {r[4] for r in rows} == {"stub-judge"}
    assert all(req["auth"] == f"Bearer {secret}" for req in stub.requests)
    assert all(req["path"] == "/v1/chat/completions" for req in stub.requests)
    out = capsys.readouterr()
    assert secret not in out.out + out.err + caplog.text + repr(rows)


def test_unreachable_judge_makes_judged_benchmarks_na(data_root):
    from harness.eval.judge import Judge
    from harness.eval.suite import Suite
    suite = Suite(["mmvet", "llava_bench", "mmbench"], data_root=str(data_root),
                  judge=Judge("http://127.0.0.1:9/v1", "nobody"))
    assert [(p.benchmark, p.task, p.skip) for p in suite.plan] == [
        ("mmvet", None, "judge unreachable"), ("llava_bench", None, "judge unreachable"),
        ("mmbench", "mmbench_en_dev_static", None)]
