"""The paper's widths on the CPU, shallow: the ``paper`` config (LLaVA-1.5-7B preset, Fed-CMP, ZeRO-2)
end to end on harness.mini.shallow checkpoints (CLIP-L/336 width with 2 layers, Vicuna-7B width with 1 layer
and its 32,000-piece Llama tokenizer, random weights, 336-pixel images, 576 visual tokens): one round of
five clients through the round engine under torchrun, Fed-CMP at the paper's projector shapes (1024 ->
4096 -> 4096), the evaluation adapter on two questions, and the LLaVA export. Its memory and seconds
per sample, extrapolated to 32 layers, are in results/bench/client.md (perf/paper_shallow.py)."""
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from harness.data.synthetic import write_synthetic_federation
from harness.mini.shallow import ensure_shallow_llava
from tests.distributed.conftest import projector, torchrun

pytestmark = pytest.mark.dist
SHAPES = {"linear_1.weight": (4096, 1024), "linear_1.bias": (4096,), "linear_2.weight": (4096, 4096),
          "linear_2.bias": (4096,)}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    vision, llm = ensure_shallow_llava(vision_layers=2, text_layers=1)
    tmp = tmp_path_factory.mktemp("paper-shallow")
    data = write_synthetic_federation(tmp / "data", clients=5, rounds=1, per_round=1, heldout=1, image_size=336)
    res = torchrun(1, "tests/distributed/run_paper_shallow.py", vision, llm, str(data), str(tmp / "out"), timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    print("paper widths, shallow:", (tmp / "out" / "measure.json").read_text())
    return tmp / "out"


def test_one_round_of_five_clients_trains_the_papers_projector(run):
    final, start = projector(run / "run"), load_file(str(run / "start.safetensors"))
    assert {k: tuple(v.shape) for k, v in final.items()} == SHAPES
    assert all(torch.isfinite(v).all() for v in final.values())
    assert not torch.equal(final["linear_2.weight"], start["linear_2.weight"])
    assert sorted(json.loads((run / "uploads.json").read_text())) == ["0", "1", "2", "3", "4"]


def test_fedcmp_round_one_is_the_reliability_weighted_mean(run):
    """Round 1 at full rank (4096 components, none under tol): X = U U^T sum_k w_k X_k = sum_k w_k X_k,
    with w_k proportional to m_k exp(-e_k), m_k = ||theta_k - theta|| over the whole projector (SPEC 2),
    re-derived here in float64 from the uploads. Compared on the update (final - start), where the
    reliability weights differ from a plain mean by far more than the tolerance (checked too)."""
    ups, start = load_file(str(run / "uploads.safetensors")), load_file(str(run / "start.safetensors"))
    meta = json.loads((run / "uploads.json").read_text())
    clients = sorted(meta, key=int)
    delta = {c: {k: ups[f"{c}/{k}"].double() - start[k].double() for k in SHAPES} for c in clients}
    m = [math.sqrt(sum(float((d ** 2).sum()) for d in delta[c].values())) for c in clients]
    w = [mk * math.exp(-meta[c]["align_error"]) for mk, c in zip(m, clients)]
    w = [x / sum(w) for x in w]
    final = projector(run / "run")
    for k in SHAPES:
        expect = sum(wk * delta[c][k] for wk, c in zip(w, clients))
        torch.testing.assert_close(final[k].double() - start[k].double(), expect, rtol=0, atol=1e-8)
        plain = sum(delta[c][k] for c in clients) / len(clients)
        assert (expect - plain).abs().max() > 100 * 1e-8   # 7.4e-6 measured: RWF is not FedAvg here


def test_the_evaluation_adapter_at_the_papers_shapes(run):
    """Two questions behind LLaVA-1.5's vicuna prompt and 576 image slots, scored in one padded batch:
    the padded one's NLL equals -sum log p(answer token) from a plain unpadded forward."""
    got = json.loads((run / "adapter.json").read_text())
    assert got["batched"][1] == pytest.approx(got["by_hand"], rel=1e-4)
    assert got["lengths"][0] > got["lengths"][1] > 576 + 40 and got["answer_tokens"] >= 2
    assert all(v > 0 for v in got["batched"])
    assert len(got["answer"]) == 1 and isinstance(got["answer"][0], str)


def test_export_for_llava_at_the_papers_shapes(run, tmp_path):
    from harness.report.export import LLAVA_NAMES, export
    path = export(run / "run", "llava", tmp_path)
    saved, final = torch.load(path), projector(run / "run")
    assert all(torch.equal(saved[LLAVA_NAMES[k]], final[k]) for k in SHAPES)
    meta = json.loads((tmp_path / "config.json").read_text())
    assert (meta["mm_hidden_size"], meta["projector_hidden_size"], meta["hidden_size"]) == (1024, 4096, 4096)
