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
                    "llava_in_the_wild": 3, "gqa": 100, "ocrvqa": 100}


@pytest.mark.parametrize("scale", [1, 3])
def test_yes_no_sets_are_balanced_and_mme_comes_in_pairs(scale):
    """At the demo's size and at the study's larger sizes (``scale`` times every scored set)."""
    recipe = bench.sized(scale)
    pope = bench.pope_rows(random.Random("t"), recipe)
    for category in ("adversarial", "popular", "random"):
        assert Counter(r["answer"] for r in pope if r["category"] == category) == {"yes": 12 * scale, "no": 12 * scale}
    pairs = {}
    for r in bench.mme_rows(random.Random("t"), recipe):
        pairs.setdefault((r["category"], r["question_id"]), []).append(r["answer"])
    assert len(pairs) == 32 * scale and all(sorted(a) == ["No", "Yes"] for a in pairs.values())
    mmvp = bench.mmvp_rows(random.Random("t"), recipe)
    assert len(mmvp) == 48 * scale
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
    from harness.core.config import load_config
    cfg = load_config("mini", bench.eval_overrides(tmp_path))
    assert cfg.eval.data_root == str(tmp_path.resolve())
    assert list(cfg.eval.tasks) == ["mmvet", "mmbench", "seed", "pope", "mme", "mmvp"]
    assert list(cfg.eval.final_tasks) == ["llava_bench"] and cfg.eval.max_new_tokens == 2


@pytest.fixture(scope="module")
def reading():
    """The cached mini LLaVA with a projector trained 300 steps on captions, and 240 held-out samples."""
    from harness.model.build import build_bundle
    from harness.mini.function import train_projector, world_samples
    torch.set_num_threads(1)
    bundle = build_bundle("mini")
    train_projector(bundle, steps=300, n=2400)
    return bundle, *world_samples(bundle, 240, "reading-heldout")


def test_the_lm_writes_the_caption_of_the_image_it_is_shown(reading):
    """Caption loss through the trained projector: an LM that reads the image slots predicts the caption's
    attribute words (measured 0.11 per token at 300 steps); shown another sample's image, those
    words are wrong: at least the caption's entropy given nothing (about 9 bits over ~14 tokens, ~0.45
    per token), measured 2.3."""
    from harness.data.collate import plain_batch
    bundle, recs, px = reading
    batch = plain_batch([r[2] for r in recs], bundle.tokenizer, bundle.image_token_id, bundle.num_image_tokens, 32)
    batch.pop("caption_mask")
    with torch.no_grad():
        right = float(bundle.model(**batch, pixel_values=px).loss)
        wrong = float(bundle.model(**batch, pixel_values=px.roll(1, dims=0)).loss)
    print({"right": right, "wrong": wrong})
    assert right < 0.2 and wrong > 0.6, (right, wrong)


def test_the_lm_answers_benchmark_questions_about_the_image(reading):
    """Benchmark questions in lmms-eval's prompts (first answer token, greedy) through the trained
    projector: above chance (yes/no 1/2, options 1/4 or 1/2: 0.43 for this mix; measured 0.63) with each
    sample's own image, at about chance with another sample's (measured 0.40), so the answer comes from the
    image. 240 questions: one standard deviation is about 0.03."""
    bundle, recs, px = reading
    tok, metas = bundle.tokenizer, [r[3] for r in recs]
    slots = [["<image>"] * bundle.num_image_tokens] * len(metas)
    rows = lmtext.question_rows(tok, metas, random.Random(7), slots)
    batch = lmtext.pack(tok, rows)
    first = torch.tensor([next(j for j, y in enumerate(labels) if y != -100) for _, labels in rows])
    answer = batch["labels"][torch.arange(len(rows)), first]
    accuracy = {}
    for name, images in (("right", px), ("wrong", px.roll(1, dims=0))):
        with torch.no_grad():
            logits = bundle.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                  pixel_values=images).logits
        accuracy[name] = float((logits[torch.arange(len(rows)), first - 1].argmax(-1) == answer).float().mean())
    print(accuracy)
    assert accuracy["right"] > 0.55 and accuracy["right"] - accuracy["wrong"] > 0.15, accuracy
    assert accuracy["wrong"] < 0.5, accuracy
