"""Fed-MA-mini benchmark sets: deterministic, balanced, cached by recipe; the pretrained LM answers their
questions from the image slots (and only from them)."""
import json
import random
from collections import Counter

import pytest
import torch

from harness.mini import bench, lmtext, models, qa

pytestmark = pytest.mark.unit


def tree_bytes(root):
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path):
    a, b, c = (tree_bytes(bench.write_benchmarks(tmp_path / n, seed=s)) for n, s in (("a", 0), ("b", 0), ("c", 1)))
    assert a == b
    assert set(a) == set(c) and all(a[k] != c[k] for k in a if k.endswith(".parquet"))
    rows = json.loads(a["manifest.json"])["rows"]
    assert rows == {"pope": 72, "mme": 64, "mmbench_en_dev": 48, "seedbench": 48, "mmvp": 48, "mmvet": 3,
                    "llava_in_the_wild": 3}


def test_yes_no_sets_are_balanced_and_mme_comes_in_pairs():
    pope = bench.pope_rows(random.Random("t"))
    for category in ("adversarial", "popular", "random"):
        assert Counter(r["answer"] for r in pope if r["category"] == category) == {"yes": 12, "no": 12}
    pairs = {}
    for r in bench.mme_rows(random.Random("t")):
        pairs.setdefault((r["category"], r["question_id"]), []).append(r["answer"])
    assert len(pairs) == 32 and all(sorted(a) == ["No", "Yes"] for a in pairs.values())
    mmvp = bench.mmvp_rows(random.Random("t"))
    for first, second in zip(mmvp[::2], mmvp[1::2]):   # a pair: same question and options, opposite answers
        assert first["Options"] == second["Options"] and first["Correct Answer"] != second["Correct Answer"]


def test_cached_once_under_a_recipe_named_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDMA_CACHE", str(tmp_path))
    root = bench.ensure_benchmarks(seed=0)
    assert root.name == f"bench-s0-{bench.recipe_id()}" and (root / "pope.parquet").is_file()
    stamp = (root / "manifest.json").stat().st_mtime_ns
    assert bench.ensure_benchmarks(seed=0) == root and (root / "manifest.json").stat().st_mtime_ns == stamp


def test_lm_recipe_hash_follows_the_recipe(monkeypatch):
    before = models.recipe_id()
    monkeypatch.setitem(models.PRETRAIN, "steps", models.PRETRAIN["steps"] + 1)
    assert models.recipe_id() != before
    monkeypatch.setattr(qa, "POPE_TEMPLATE", "Is a {color} {shape} there?")
    assert len({before, models.recipe_id()}) == 2


def test_eval_overrides_make_a_valid_config(tmp_path):
    from harness.config import load_config
    cfg = load_config("mini", bench.eval_overrides(tmp_path))
    assert cfg.eval.data_root == str(tmp_path.resolve())
    assert list(cfg.eval.tasks) == ["mmvet", "mmbench", "seed", "pope", "mme", "mmvp"]
    assert list(cfg.eval.final_tasks) == ["llava_bench"] and cfg.eval.max_new_tokens == 2


def test_pretrained_lm_answers_from_the_slots():
    """With the right slot words the pretrained LM answers the benchmark questions (first answer token,
    greedy) well above chance; with another sample's slots it falls to about chance (yes/no 1/2, options
    1/4 or 1/2: overall about 0.4), so it reads the answer from the image slots."""
    from harness.model import build_bundle
    bundle = build_bundle("mini")
    tok, lm = bundle.tokenizer, bundle.model
    metas = models.random_metas(random.Random(321), 300)
    shifted = [models.slot_fill(m, random.Random(i)) for i, m in enumerate(metas[1:] + metas[:1])]
    accuracy = {}
    for name, slots in (("right", None), ("wrong", shifted)):
        rows = lmtext.question_rows(tok, metas, random.Random(7), slots)
        batch = lmtext.pack(tok, rows)
        with torch.no_grad():
            logits = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        first = [next(j for j, y in enumerate(labels) if y != -100) for _, labels in rows]
        hits = [int(logits[i, k - 1].argmax()) == rows[i][1][k] for i, k in enumerate(first)]
        accuracy[name] = sum(hits) / len(hits)
    print(accuracy)
    assert accuracy["right"] > 0.8, accuracy
    assert accuracy["wrong"] < 0.55, accuracy
