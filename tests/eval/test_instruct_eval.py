"""Stage 2's benchmarks through lmms-eval's real task code: GQA (lmms-eval's own ``gqa`` task, exact
match, reading the local parquet) and OCRVQA (the harness's task, registered through the include path).

A fixed answer file (one answer per question id) is scored by hand here, independently of lmms-eval:
GQA's exact match ignores case and punctuation; OCRVQA's accuracy compares lower-cased, punctuation-free,
whitespace-collapsed strings. The mini sets' answer keys come from the generator (``truth``): an oracle
reading ``truth`` scores 100 on both.
"""
import json
import re

import pytest

from tests.eval.conftest import by_metric

pytestmark = pytest.mark.eval


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from harness.mini.bench import write_benchmarks
    return write_benchmarks(tmp_path_factory.mktemp("instructbench"), seed=0)


@pytest.fixture(scope="module")
def suite(bench):
    from harness.eval.suite import Suite
    return Suite(["gqa", "ocrvqa"], data_root=str(bench))


def answering(bundle, answer_of):
    """The adapter, answering each request with ``answer_of(doc)``."""
    from harness.eval.adapter import FedmaLlava

    class Answers(FedmaLlava):
        def generate_until(self, requests):
            out = []
            for r in requests:
                _, _, _, doc_id, task, split = r.args
                out.append(answer_of(self.task_dict[task][split][doc_id]))
            return out
    return Answers(bundle=bundle)


def test_the_oracle_scores_100_on_both_sets(suite, tiny_bundle):
    def oracle(doc):
        truth, attribute = json.loads(doc["truth"]), doc["attribute"]
        return truth[attribute]
    got = by_metric(suite.evaluate(answering(tiny_bundle, oracle)))
    assert got["gqa", "exact_match"][2] == 1.0
    assert got["ocrvqa", "ocrvqa_accuracy"][2] == 1.0


def test_a_fixed_answer_file_scores_what_hand_counting_gives(suite, tiny_bundle, bench):
    """Every third question right but decorated (upper case, a full stop, padding: right for both
    metrics), every third plainly right, every third wrong: 2/3 on each set, counted from the parquet."""
    import pandas as pd
    answers = {}
    for name in ("gqa", "ocrvqa"):
        frame = pd.read_parquet(bench / f"{name}.parquet", columns=["question_id", "answer"])
        for i, (qid, truth) in enumerate(zip(frame.question_id, frame.answer)):
            answers[qid] = (f"  {truth.upper()}." if i % 3 == 0 else truth if i % 3 == 1 else "purple" if truth != "purple" else "red")
    expected = {}
    for name in ("gqa", "ocrvqa"):
        frame = pd.read_parquet(bench / f"{name}.parquet", columns=["question_id", "answer"])
        expected[name] = sum(re.sub(r"[^\w ]", "", answers[q]).strip().lower() == a.lower()
                             for q, a in zip(frame.question_id, frame.answer)) / len(frame)
    got = by_metric(suite.evaluate(answering(tiny_bundle, lambda doc: answers[doc["question_id"]])))
    assert expected["gqa"] == pytest.approx(2 / 3, abs=0.02)
    assert got["gqa", "exact_match"][2] == pytest.approx(expected["gqa"])
    assert got["ocrvqa", "ocrvqa_accuracy"][2] == pytest.approx(expected["ocrvqa"])


def test_every_prompt_is_in_the_mini_vocabulary(suite):
    from harness.mini.models import word_tokenizer
    tok = word_tokenizer()
    for bench in ("gqa", "ocrvqa"):
        [task] = suite.tasks[bench].values()
        for doc in task.eval_docs:
            text = task.doc_to_text(doc)
            assert text.endswith("\nAnswer the question using a single word or phrase."), text
            ids = tok(text + " " + doc["answer"], add_special_tokens=False).input_ids
            assert tok.unk_token_id not in ids, text
