"""The fedma_llava adapter: registration, batched requests equal one-by-one ones, the NLL it returns."""
import pytest
import torch

from tests.eval.fixtures import image

pytestmark = pytest.mark.eval


class Req:
    def __init__(self, *args):
        self.args = args


def docs(n):
    return {"t": {"test": [{"image": image(i), "q": f"question {i}"} for i in range(n)]}}


def visual(doc):
    return [doc["image"]]


@pytest.fixture(scope="module")
def lm(tiny_bundle):
    from harness.eval.adapter import FedmaLlava
    m = FedmaLlava(bundle=tiny_bundle, max_new_tokens=5, batch_size=3)
    m.task_dict = docs(5)
    return m


def test_registered_under_its_name():
    from lmms_eval import models

    from harness.eval.adapter import FedmaLlava, register
    register()
    assert models.get_model("fedma_llava") is FedmaLlava
    assert models.get_model("fedma-llava") is FedmaLlava


def test_loglikelihood_batched_equals_single_and_is_the_continuation_nll(lm, tiny_bundle):
    reqs = [Req(f"ctx {i}" + "x" * i, f" answer{i}", visual, i, "t", "test") for i in range(5)]
    batched = [r.text for r in lm.loglikelihood(reqs)]
    single = [lm.loglikelihood([r])[0].text for r in reqs]
    for (a, ga), (b, gb) in zip(batched, single):
        assert a == pytest.approx(b, rel=1e-4) and ga == gb
    # by hand for request 2: -sum log p(continuation token | prefix) from one unpadded forward
    b = tiny_bundle
    tok = b.tokenizer
    ctx = [tok.bos_token_id] + [b.image_token_id] * b.num_image_tokens + tok("ctx 2xx", add_special_tokens=False).input_ids
    cont = tok(" answer2", add_special_tokens=False).input_ids
    from harness.data.reader import pixels
    px = pixels([image(2)], b.image_size, b.image_mean, b.image_std)
    with torch.no_grad():
        logits = b.model(input_ids=torch.tensor([ctx + cont]), pixel_values=px).logits[0]
    lp = torch.log_softmax(logits.float(), -1)
    nll = -sum(lp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont))
    assert batched[2][0] == pytest.approx(nll, rel=1e-4)


def test_generate_batched_equals_single_and_respects_caps(lm):
    reqs = [Req("q" * (i + 1), {"max_new_tokens": 100, "until": ["\n\n"]}, visual, i, "t", "test") for i in range(5)]
    batched = lm.generate_until(reqs)
    single = [lm.generate_until([r])[0] for r in reqs]
    assert batched == single
    assert all(len(t) <= 5 for t in batched)   # byte tokens: at most one character each


def test_sharded_calls_return_the_full_list_in_order(lm):
    """Rank 0 of 2 computes requests 0, 2, 4; the (fake) all-gather brings rank 1's 1, 3; order is restored."""
    reqs = [Req(f"c{i}", f" a{i}", visual, i, "t", "test") for i in range(5)]
    full = [r.text for r in lm.loglikelihood(reqs)]
    rank1 = lm._loglikelihood_local([r.args for r in reqs][1::2])
    computed = []
    lm.shard = (0, 2, lambda mine: (computed.append(len(mine)), [mine, rank1])[1])
    try:
        got = [r.text for r in lm.loglikelihood(reqs)]
    finally:
        lm.shard = None
    assert computed == [3]
    assert [g[0] for g in got] == pytest.approx([f[0] for f in full], rel=1e-4)


def test_multi_round_asks_doc_to_text_until_terminal(lm):
    seen = []

    def doc_to_text(doc, previous_output, round_idx, previous_round_info):
        seen.append((round_idx, list(previous_output)))
        return [doc["image"]], f"round {round_idx}", round_idx == 3, None, previous_round_info

    [answers] = lm.generate_until_multi_round([Req("round 0", {"max_new_tokens": 3}, visual, doc_to_text, 1, "t", "test")])
    assert len(answers) == 3 and [r for r, _ in seen] == [1, 2, 3]
    assert seen[-1][1] == answers


def test_entry_point_manifest_resolves(tmp_path, monkeypatch):
    """What `pip install` of setup.cfg's `lmms_eval.models` entry point does, with a hand-made dist-info."""
    from lmms_eval.models.registry_v2 import ModelRegistryV2

    from harness.eval.adapter import FedmaLlava
    info = tmp_path / "fedma_ep_probe-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fedma-ep-probe\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[lmms_eval.models]\nfedma_llava = harness.eval.adapter:MANIFEST\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = ModelRegistryV2()
    registry.load_entrypoint_manifests(overwrite=True)
    assert registry.get_model_class("fedma_llava") is FedmaLlava


def test_simple_evaluate_by_name_with_a_projector_file(data_root, tiny_bundle, tmp_path):
    """lmms-eval builds the adapter itself from `model_args` (the path a CLI user takes)."""
    from lmms_eval import evaluator
    from lmms_eval.tasks import TaskManager
    from safetensors.torch import save_file

    from harness.eval.adapter import register
    from harness.eval.suite import single_process_env, task_yaml
    from harness.model.build import init_projector
    register()
    save_file(init_projector(tiny_bundle.model, 9), str(tmp_path / "p.safetensors"))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "fedma_pope.yaml").write_text(task_yaml("pope", str(data_root)))
    tm = TaskManager("WARNING", include_path=str(tmp_path / "tasks"), include_defaults=False)
    with single_process_env():
        res = evaluator.simple_evaluate(model="fedma_llava", model_args=f"preset=tiny,projector={tmp_path}/p.safetensors,"
                                       "max_new_tokens=3", tasks=["fedma_pope"], task_manager=tm, batch_size=4,
                                       device="cpu", bootstrap_iters=0, log_samples=False)
    assert res["results"]["fedma_pope"]["pope_accuracy,none"] >= 0.0
