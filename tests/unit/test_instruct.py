"""Stage 2 (instruction tuning, the paper's Appendix B) on the CPU: the answer-only labels, the LoRA +
projector state and its weighted FedAvg, the even split and Table 5's counts, where stage 2 starts, and
Table 6 from records. Expected values are worked by hand in each test."""
import json

import pytest
import torch

from harness import ClientUpdate, build_aggregator
from harness.core.errors import ConfigError

pytestmark = pytest.mark.unit


def turns(*pairs):
    out = []
    for q, a in pairs:
        out += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    return out


def test_labels_cover_the_answers_and_their_end_tokens_only():
    """Plain template, word tokenizer, 2 image slots: <s> <image> <image> What color is the object ? red </s>
    then the second turn "Where is the object ?" top </s>: labels only at red, </s>, top, </s>."""
    from harness.data.collate import conversation_batch
    from harness.mini.models import word_tokenizer
    tok = word_tokenizer()
    image = tok.convert_tokens_to_ids("<image>")
    conv = turns(("<image>\nWhat color is the object?", "red"), ("Where is the object?", "top"))
    batch = conversation_batch([conv, turns(("<image>\nWhat shape?", "cross"))], tok, "plain", image, 2, 64)
    words = tok.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    assert words == ["<s>", "<image>", "<image>", "What", "color", "is", "the", "object", "?", "red", "</s>",
                     "Where", "is", "the", "object", "?", "top", "</s>"]
    labelled = [w for w, lab in zip(words, batch["labels"][0].tolist()) if lab != -100]
    assert labelled == ["red", "</s>", "top", "</s>"]
    assert batch["caption_mask"][0].nonzero().flatten().tolist() == [9, 16]
    second = batch["labels"][1].tolist()                        # shorter row: right-padded, pad unlabelled
    assert [tok.convert_ids_to_tokens(x) for x in second if x != -100] == ["cross", "</s>"]
    assert batch["attention_mask"][1].sum() == 8


def test_text_past_the_budget_is_cut_at_the_end():
    from harness.data.collate import conversation_batch
    from harness.mini.models import word_tokenizer
    tok = word_tokenizer()
    conv = turns(("<image>\nWhat color is the object?", "red"))
    batch = conversation_batch([conv], tok, "plain", tok.convert_tokens_to_ids("<image>"), 2, 6)
    assert batch["input_ids"].shape[1] == 1 + 2 + 6               # <s>, the slots, six text tokens
    assert (batch["labels"] != -100).sum() == 0                  # the answer fell past the budget


def test_lora_tensors_join_the_communicated_state_and_load_strictly():
    from harness.core.config import load_config
    from harness.model.build import PROJECTOR_KEYS, build_bundle, get_projector, set_projector
    cfg = load_config("instruct-tiny")
    bundle = build_bundle("tiny", lora=cfg.model.lora, seed=3)
    state = get_projector(bundle.model)
    lora = [k for k in state if k.startswith("lora/")]
    # 2 tiny layers x 7 targets x (A, B)
    assert len(lora) == 2 * 7 * 2 and set(state) - set(lora) == set(PROJECTOR_KEYS)
    assert all(state[k].abs().sum() == 0 for k in lora if ".lora_B." in k)       # B starts at zero
    again = get_projector(build_bundle("tiny", lora=cfg.model.lora, seed=3).model)
    assert all(torch.equal(state[k], again[k]) for k in state)                  # seeded: same A everywhere
    trainable = {n for n, p in bundle.model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or "multi_modal_projector" in n for n in trainable)
    with pytest.raises(KeyError, match="lacks 'lora/"):
        set_projector(bundle.model, {k: state[k] for k in PROJECTOR_KEYS})


def test_fedavg_over_projector_and_lora_is_the_sample_weighted_mean():
    """n = 1, 3: projector 1 and 5 -> (1*1 + 3*5)/4 = 4; LoRA B 2 and -2 -> (2 - 6)/4 = -1."""
    g = {"linear_1.weight": torch.zeros(2, 2), "lora/layers.0.q_proj.lora_B.weight": torch.zeros(4, 2)}
    ups = [ClientUpdate(0, {"linear_1.weight": torch.full((2, 2), 1.0),
                            "lora/layers.0.q_proj.lora_B.weight": torch.full((4, 2), 2.0)}, 1),
           ClientUpdate(1, {"linear_1.weight": torch.full((2, 2), 5.0),
                            "lora/layers.0.q_proj.lora_B.weight": torch.full((4, 2), -2.0)}, 3)]
    out = build_aggregator("fedavg").aggregate(g, ups)
    assert torch.equal(out["linear_1.weight"], torch.full((2, 2), 4.0))
    assert torch.equal(out["lora/layers.0.q_proj.lora_B.weight"], torch.full((4, 2), -1.0))


def items(source, n):
    from harness.instruct.data import Item
    return [Item(f"{source}_{i}", b"jpg", turns(("<image>\nq", "a")), source) for i in range(n)]


def test_the_even_split_deals_disjoint_parts_differing_by_at_most_one():
    from harness.instruct.data import even_split, rounds_of
    parts = even_split(items("gqa", 11), 5, seed=0)
    assert [len(p) for p in parts] == [3, 2, 2, 2, 2]
    keys = [it.key for p in parts for it in p]
    assert sorted(keys) == sorted(f"gqa_{i}" for i in range(11)) and len(set(keys)) == 11
    assert [len(r) for r in rounds_of(items("x", 7), 3)] == [2, 3, 2]


def test_write_instruct_records_table_5_and_the_layout(tmp_path):
    from harness.data.layout import read_index, round_dir
    from harness.instruct.data import write_instruct
    write_instruct(tmp_path, {"gqa": items("gqa", 12), "ocrvqa": items("ocrvqa", 7)}, clients=5, rounds=2)
    stats = json.loads((tmp_path / "client_stats.json").read_text())
    assert stats == {"clients": 5, "counts": {"gqa": [3, 3, 2, 2, 2], "ocrvqa": [2, 2, 1, 1, 1]}}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format"] == "conversation" and manifest["rounds"] == 2
    per_client = [sum(read_index(round_dir(tmp_path, k, t))["count"] for t in (1, 2)) for k in range(5)]
    assert per_client == [5, 5, 3, 3, 3]


def test_stage_two_refuses_what_cannot_work_in_one_line(tmp_path):
    from harness.core.config import load_config
    from harness.instruct.init import read_init, start_state
    with pytest.raises(ConfigError, match="aggregator.method=scaffold: .*projector's gradients only"):
        load_config("instruct-tiny", ["aggregator.method=scaffold"])
    with pytest.raises(ConfigError, match=r"init.projector='.*nope'"):
        read_init(str(tmp_path / "nope"))
    init = {"linear_1.weight": torch.zeros(4, 3)}
    with pytest.raises(ConfigError, match=r"linear_1.weight has shape \(8, 3\), model.preset=tiny needs \(4, 3\)"):
        start_state(init, {"linear_1.weight": torch.zeros(8, 3)}, "r1", "tiny")
    assert start_state(init, None, "random", "tiny") is init


def write_run(path, init, values, seed=0, root=None):
    """A stage-2 run directory: config.yaml and records (round 2, client -> (gqa EM, ocrvqa acc))."""
    import yaml
    path.mkdir(parents=True)
    cfg = {"init": {"projector": init}, "data": {"format": "conversation", "root": root},
           "federation": {"clients": 2}, "aggregator": {"method": "fedavg"}}
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    base = {"run_id": path.name, "method": "fedavg", "scenario": "ii", "seed": seed, "round": 2, "n": 100,
            "judge": None, "note": ""}
    with open(path / "records.jsonl", "w") as f:
        for who, (g, o) in values.items():
            f.write(json.dumps({**base, "client": who, "benchmark": "gqa", "metric": "exact_match", "value": g}) + "\n")
            f.write(json.dumps({**base, "client": who, "benchmark": "ocrvqa", "metric": "ocrvqa_accuracy",
                                "value": o}) + "\n")


def test_tables_5_and_6_from_run_directories(tmp_path):
    """Fed-CMP init over seeds 0, 1: C1 GQA 0.50 and 0.60 -> 55.0 ± 7.1 (sample std sqrt(0.005)*100)."""
    import yaml
    from harness.report.instruct import instruct_tables
    from harness.report.runs import load_run
    stage1 = tmp_path / "s1"
    stage1.mkdir()
    (stage1 / "config.yaml").write_text(yaml.safe_dump({"aggregator": {"method": "fedcmp"}}))
    data = tmp_path / "data"
    data.mkdir()
    (data / "client_stats.json").write_text(json.dumps({"clients": 2, "counts": {"gqa": [3, 2], "ocrvqa": [2, 2]}}))
    write_run(tmp_path / "a", str(stage1), {0: (0.5, 0.2), 1: (0.4, 0.3), "global": (0.45, 0.25)}, 0, str(data))
    write_run(tmp_path / "b", str(stage1), {0: (0.6, 0.2), 1: (0.4, 0.3), "global": (0.45, 0.25)}, 1, str(data))
    write_run(tmp_path / "c", "random", {0: (0.1, 0.1), 1: (0.2, 0.0), "global": (0.1, 0.05)})
    t5, t6 = instruct_tables([load_run(tmp_path / d) for d in "abc"], paper=True)
    assert [[c.text for c in r] for r in t5.rows[:1]] == [["GQA", "3", "2", "5"]]
    assert t5.rows[1][0].text == "GQA (paper)" and t5.rows[1][1].text == "185K"
    assert t6.header == ["Initial projector", "GQA C1", "GQA C2", "GQA Global", "OCRVQA C1", "OCRVQA C2", "OCRVQA Global"]
    rows = {r[0].text: [c.text for c in r[1:]] for r in t6.rows}
    assert rows["Fed-CMP"] == ["55.0 ± 7.1", "40.0 ± 0.0", "45.0 ± 0.0", "20.0 ± 0.0", "30.0 ± 0.0", "25.0 ± 0.0"]
    assert rows["Random init (reference)"] == ["10.0", "20.0", "10.0", "10.0", "0.0", "5.0"]
    assert rows["FedAvg (paper)"][:2] == ["47.8", "52.4"] and rows["FedAvg (paper)"][2] == "n/a"


def test_fedma_data_instruct_reads_llava_json_and_says_what_is_wrong(tmp_path, capsys):
    from harness.cli import main
    from harness.data.layout import round_dir
    from harness.data.reader import SkipReport, iter_shards
    (tmp_path / "img").mkdir()
    rows = []
    for i in range(6):
        (tmp_path / "img" / f"{i}.jpg").write_bytes(b"\xff\xd8 not decoded here")
        rows.append({"id": f"q{i}", "image": f"{i}.jpg", "conversations": turns((f"<image>\nQ{i}?", f"A{i}"))})
    (tmp_path / "gqa.json").write_text(json.dumps(rows))
    assert main(["data", "instruct", "--source", f"gqa={tmp_path / 'gqa.json'}", "--images", str(tmp_path / "img"),
                 "--out", str(tmp_path / "out"), "--clients", "3", "--rounds", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"clients": 3, "counts": {"gqa": [2, 2, 2]}}
    shards = sorted(str(p) for k in range(3) for p in round_dir(tmp_path / "out", k, 1).glob("*.tar"))
    answers = sorted(json.loads(r["json"])["conversations"][1]["value"] for r in iter_shards(shards, SkipReport()))
    assert answers == [f"A{i}" for i in range(6)]
    rows[2]["image"] = "missing.jpg"
    (tmp_path / "gqa.json").write_text(json.dumps(rows))
    assert main(["data", "instruct", "--source", f"gqa={tmp_path / 'gqa.json'}", "--images", str(tmp_path / "img"),
                 "--out", str(tmp_path / "o2")]) != 0
    err = capsys.readouterr().err
    assert "record 2 (id q2): image" in err and "missing.jpg not found" in err
    assert main(["data", "instruct", "--source", "gqa", "--out", str(tmp_path / "o3")]) != 0
    assert "expected NAME=PATH" in capsys.readouterr().err
