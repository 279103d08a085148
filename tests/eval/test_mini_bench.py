"""The Fed-MA-mini benchmark sets through lmms-eval's real task code.

The oracle answers every question from the generator's ground truth (the row's ``truth`` column:
domain and attributes of its image), never from the answer column, with its own reading of the prompt
lmms-eval built: a yes/no question is "yes" iff every attribute word it names is the image's; a
multiple-choice question is the option whose words are all the image's. lmms-eval's scorers then
must give the maximum everywhere: POPE accuracy 1, MME perception 4 categories x (100 acc + 100 acc+)
= 800, MMBench 100, SEED 1, MMVP accuracy and pair accuracy 1; MM-Vet and LLaVA-Bench n/a (no judge).
"""
import json
import re

import pytest

from tests.eval.conftest import ALL, by_metric

pytestmark = pytest.mark.eval
OPTION = re.compile(r"^([A-D])\. (.+)$", re.M)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from harness.mini.bench import write_benchmarks
    return write_benchmarks(tmp_path_factory.mktemp("minibench"), seed=0)


@pytest.fixture(scope="module")
def suite(bench):
    from harness.eval.suite import Suite
    return Suite(ALL, data_root=str(bench))


def image_words(truth: dict) -> set:
    from harness.mini import world
    return {truth[a] for a in world.ATTRIBUTES} | {world.DOMAIN_WORD[truth["domain"]]}


def attribute_words() -> set:
    from harness.mini import world
    return set(world.COLORS) | set(world.SHAPES) | set(world.SIZES) | set(world.VPOS) | set(world.HPOS) \
        | set(world.DOMAIN_WORD.values())


def oracle_answer(context: str, truth: dict) -> str:
    seen = image_words(truth)
    options = OPTION.findall(context)
    if options:
        [letter] = [k for k, text in options if set(text.split()) <= seen]
        return letter
    question = context.split("\n")[0]
    named = {w for w in re.findall(r"\w+", question) if w in attribute_words()}
    assert named, question
    return "yes" if named <= seen else "no"


def oracle(bundle):
    from harness.eval.adapter import FedmaLlava

    class Oracle(FedmaLlava):
        def generate_until(self, requests):
            out = []
            for r in requests:
                context, _, _, doc_id, task, split = r.args
                out.append(oracle_answer(context, json.loads(self.task_dict[task][split][doc_id]["truth"])))
            return out
    return Oracle(bundle=bundle)


def test_oracle_from_the_generator_scores_the_maximum(suite, tiny_bundle):
    rows = suite.evaluate(oracle(tiny_bundle))
    got = by_metric(rows)
    assert got["pope", "pope_accuracy"][2] == 1.0 and got["pope", "pope_f1_score"][2] == 1.0
    assert got["pope", "pope_yes_ratio"][2] == 0.5                      # balanced yes/no
    assert got["mme", "mme_perception_score"][2] == pytest.approx(800.0)
    assert got["mmbench", "gpt_eval_score"][2] == pytest.approx(100.0)
    assert got["seed", "seed_image"][2] == 1.0
    assert got["mmvp", "mmvp_accuracy"][2] == 1.0 and got["mmvp", "mmvp_pair_accuracy"][2] == 1.0
    for bench in ("mmvet", "llava_bench"):
        [row] = [r for r in rows if r[0] == bench]
        assert row[2] is None and "no judge" in row[5]


def test_every_prompt_is_what_pretraining_saw_and_has_no_unknown_word(suite):
    """lmms-eval's doc_to_text on every row equals qa.prompt of the row's question, and tokenizes
    without <unk> (so the LM reads every word of it)."""
    from harness.mini import qa
    from harness.mini.models import word_tokenizer
    tok = word_tokenizer()
    seen = set()
    for bench, kind in (("pope", "pope"), ("mme", "mme"), ("mmbench", "mmbench"), ("seed", "seed"), ("mmvp", "mmvp")):
        [task] = suite.tasks[bench].values()
        for doc in task.eval_docs:
            text = task.doc_to_text(doc)
            assert text == qa.prompt(question_of(kind, doc)), (bench, text)
            assert tok.unk_token_id not in tok(text, add_special_tokens=False).input_ids, text
            seen.add(kind)
    assert seen == set(qa.KINDS)


def question_of(kind: str, doc: dict):
    from harness.mini import qa
    if kind in ("pope", "mme"):
        return qa.Question(kind, doc["category"], doc["question"])
    if kind == "mmbench":
        return qa.Question(kind, "", doc["question"], tuple(doc[k] for k in qa.LETTERS))
    if kind == "seed":
        return qa.Question(kind, "", doc["question"], tuple(doc[f"choice_{k}"] for k in "abcd"))
    return qa.Question(kind, "", doc["Question"], tuple(re.findall(r"\([ab]\) (\w+)", doc["Options"])))

