"""Fed-MA-mini benchmark sets: questions about held-out world images in each real lmms-eval task's
schema, written as ``DATA/<dataset>.parquet`` for :mod:`harness.eval.suite` (SPEC section 8).

    dataset             rows  what (questions from :mod:`harness.mini.qa`)
    pope                 72   "Is there a {color} {shape} in the image?": per image one yes, and per
                              category one no (adversarial: one word off; popular: a frequent object;
                              random: any other object) -> balanced yes/no in every category
    mme                  64   yes/no pairs per image (one Yes, one No) in existence, color, position, scene
    mmbench_en_dev       48   4 options: color, shape, scene (mmbench_en_dev_static scores it)
    seedbench            48   4 options: color, shape, scene (other wording); image rows
    mmvp                 48   24 pairs of images that differ in one attribute, 2 options, opposite answers
    mmvet, llava_in_the_wild  a handful each: judged, so n/a without a judge
    gqa, ocrvqa         100   stage 2's open questions (:mod:`harness.mini.instruct`)

Images come from their own seed stream (``mini-bench-{seed}-...``), never the training world's. Every
row carries ``truth``: its image's generator metadata (domain and attributes) as JSON, so answer keys
can be checked against the generator instead of against themselves. Same seed, same bytes.
"""
from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path
from typing import List, Optional, Tuple

from harness.core.benchmarks import BENCHMARKS, FINAL_ONLY, PER_ROUND
from harness.mini import qa, world

RECIPE = {"version": 1, "pope_images": 12, "mme_pairs": 8, "choice_per_category": 16, "mmvp_pairs": 24,
          "open_questions": 100}   # GQA-/OCRVQA-style (stage 2, harness.mini.instruct) per set
EVAL = {"batch_size": 16, "max_new_tokens": 2}                # one answer token and </s>
# chance level of each benchmark's metrics on its mini set (uniform random answers; the registry's
# ``chance``; MME: 50 acc + 25 acc+ per category)
CHANCE = {(name, metric): value for name, b in BENCHMARKS.items() for metric, value in b.chance.items()}
MMBENCH_CATEGORY = {"color": ("attribute_recognition", "Fine-grained Perception (single-instance)"),
                    "shape": ("attribute_recognition", "Fine-grained Perception (single-instance)"),
                    "scene": ("image_scene", "Coarse Perception")}
Image = Tuple[bytes, dict]   # JPEG bytes and the generator's metadata


def sized(scale: int = 1) -> dict:
    """The recipe with every scored set ``scale`` times larger (the study's sets, for statistical power:
    the demo's POPE has 72 questions, one standard error about 6 points)."""
    return {k: v * scale if k != "version" else v for k, v in RECIPE.items()}


def recipe_id(scale: int = 1) -> str:
    return hashlib.sha1(json.dumps([sized(scale), world.VERSION], sort_keys=True).encode()).hexdigest()[:8]


def draw(rng: random.Random, i: int, meta: Optional[dict] = None) -> Image:
    """Image ``i`` of a set (domains in turn); ``meta`` fixes its attributes (MMVP's second image)."""
    domain = meta["domain"] if meta else world.DOMAINS[i % len(world.DOMAINS)]
    meta = meta or {"domain": domain, **world.draw_attributes(rng, domain)}
    return world.render(rng, domain, {a: meta[a] for a in world.ATTRIBUTES}), meta


def base(image: Image) -> dict:
    jpg, meta = image
    return {"image": {"bytes": jpg, "path": None}, "truth": json.dumps(meta, sort_keys=True)}


# -- the five scored sets ---------------------------------------------------------------------------------
def pope_negative(meta: dict, category: str, popular: List[Tuple[str, str]], rng: random.Random) -> Tuple[str, str]:
    """An object (colour, shape) the image does not show, chosen the way POPE's three splits choose."""
    true = (meta["color"], meta["shape"])
    if category == "adversarial":   # the same colour or the same shape: one word off
        return (qa.other(meta, "color", rng), true[1]) if rng.random() < 0.5 else (true[0], qa.other(meta, "shape", rng))
    if category == "popular":       # one of the three most frequent objects it does not show
        return rng.choice([o for o in popular if o != true][:3])
    return rng.choice([(c, s) for c in qa.POOLS["color"] for s in world.SHAPES if (c, s) != true])


def pope_rows(rng: random.Random, recipe: dict) -> List[dict]:
    images = [draw(rng, i) for i in range(recipe["pope_images"])]
    counts = Counter((m["color"], m["shape"]) for m in (draw(rng, i)[1] for i in range(500)))
    popular = [obj for obj, _ in counts.most_common()]
    rows = []
    for category in ("adversarial", "popular", "random"):
        for i, (jpg, meta) in enumerate(images):
            objects = ((meta["color"], meta["shape"]), pope_negative(meta, category, popular, rng))
            for k, (color, shape) in enumerate(objects):
                q = qa.pope(meta, color, shape, category)
                rows.append({**base((jpg, meta)), "question_id": f"{category}-{i:03d}-{k}", "question": q.question,
                             "answer": q.answer, "image_source": f"mini-{i:03d}", "category": category})
    return rows


def mme_rows(rng: random.Random, recipe: dict) -> List[dict]:
    rows = []
    for category in sorted(qa.MME_TEMPLATES):
        for i in range(recipe["mme_pairs"]):
            image = draw(rng, i)
            for yes in (True, False):
                q = qa.mme(image[1], category, yes, rng)
                rows.append({**base(image), "question_id": f"{category}/{i:04d}.jpg", "question": q.question,
                             "answer": q.answer.capitalize(), "category": category})
    return rows


def choice_questions(rng: random.Random, build, stems, recipe: dict) -> List[Tuple[Image, qa.Question]]:
    out = []
    for category in sorted(stems):
        for i in range(recipe["choice_per_category"]):
            image = draw(rng, i)
            out.append((image, build(image[1], category, rng)))
    return out


def mmbench_rows(rng: random.Random, recipe: dict) -> List[dict]:
    rows = []
    for index, (image, q) in enumerate(choice_questions(rng, qa.mmbench, qa.MMBENCH_STEMS, recipe)):
        category, l2 = MMBENCH_CATEGORY[q.category]
        rows.append({**base(image), "index": index, "question": q.question, "hint": "nan",
                     **dict(zip(qa.LETTERS, q.options)), "answer": q.answer, "category": category,
                     "L2-category": l2, "source": "fedma-mini", "split": "dev"})
    return rows


def seed_rows(rng: random.Random, recipe: dict) -> List[dict]:
    rows = []
    for i, (image, q) in enumerate(choice_questions(rng, qa.seed, qa.SEED_STEMS, recipe)):
        row = base(image)
        row["image"] = [row["image"]]
        rows.append({**row, "question_id": f"{q.category}-{i:03d}", "question": q.question, "answer": q.answer,
                     **{f"choice_{c.lower()}": o for c, o in zip(qa.LETTERS, q.options)}, "data_type": "image"})
    return rows


def mmvp_rows(rng: random.Random, recipe: dict) -> List[dict]:
    """Pairs (Index 1,2), (3,4), ...: two images that differ in one attribute, the same question."""
    rows = []
    attributes = sorted(qa.MMVP_STEMS)
    for p in range(recipe["mmvp_pairs"]):
        attribute = attributes[p % len(attributes)]
        first = draw(rng, p)
        second = draw(rng, p, {**first[1], attribute: qa.other(first[1], attribute, rng)})
        options = [first[1][attribute], second[1][attribute]]
        rng.shuffle(options)
        for k, image in enumerate((first, second)):
            q = qa.mmvp(image[1], attribute, options)
            rows.append({**base(image), "Index": 2 * p + k + 1, "Question": q.question,
                         "Options": f"(a) {options[0]} (b) {options[1]}", "Correct Answer": f"({q.answer.lower()})"})
    return rows


# -- the judged sets (n/a without a judge) ------------------------------------------------------------------
def mmvet_rows(rng: random.Random, recipe: dict) -> List[dict]:
    rows = []
    for i, (attribute, capability) in enumerate((("color", "rec"), ("shape", "rec"), ("scene", "rec"))):
        image = draw(rng, i)
        rows.append({**base(image), "question_id": f"v{i}", "question": qa.MMBENCH_STEMS[attribute],
                     "answer": qa.truth(image[1], attribute), "capability": capability})
    return rows


def llava_bench_rows(rng: random.Random, recipe: dict) -> List[dict]:
    rows = []
    for i, category in enumerate(("conv", "detail", "complex")):
        image = draw(rng, i)
        caption = world.caption(image[1]["domain"], image[1])
        rows.append({**base(image), "question_id": i, "question": "Describe the image.", "gpt_answer": caption,
                     "caption": caption, "category": category})
    return rows


def sets() -> dict:
    """{dataset: generator} from the registry's names (``fn`` here, or ``module:fn``); each set is written
    under its benchmark's dataset name."""
    import importlib

    def generator(name: str):
        module, _, fn = name.rpartition(":")
        return getattr(importlib.import_module(module), fn) if module else globals()[fn]
    return {b.dataset: generator(b.mini) for b in BENCHMARKS.values() if b.mini}


# -- writing, caching, wiring -----------------------------------------------------------------------------------
def features(row: dict):
    """The HF features of a row: images decode as PIL images (a list for SEED), ints, strings."""
    from datasets import Features, Image as HFImage, Sequence, Value
    def one(key, value):
        if key == "image":
            return Sequence(HFImage()) if isinstance(value, list) else HFImage()
        return Value("int64") if isinstance(value, int) else Value("string")
    return Features({k: one(k, v) for k, v in row.items()})


def write_benchmarks(root, seed: int = 0, scale: int = 1) -> Path:
    """Every set as ``root/<dataset>.parquet`` plus ``manifest.json`` (rows per set, chance levels)."""
    from datasets import Dataset
    from datasets.utils import logging as ds_logging
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    sizes, bars = {}, ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()   # one bar per file would bury `fedma mini build`'s output
    try:
        for name, rows_of in sets().items():
            rows = rows_of(random.Random(f"mini-bench-{seed}-{name}"), sized(scale))
            Dataset.from_list(rows, features=features(rows[0])).to_parquet(str(root / f"{name}.parquet"))
            sizes[name] = len(rows)
    finally:
        if bars:
            ds_logging.enable_progress_bar()
    manifest = {"seed": seed, "version": world.VERSION, "recipe": sized(scale), "rows": sizes,
                "chance": {f"{b}/{m}": v for (b, m), v in CHANCE.items()}}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return root


def ensure_benchmarks(root=None, seed: int = 0, scale: int = 1) -> Path:
    """The benchmark sets in the cache (``bench-s{seed}-{recipe}``), written on first use."""
    from harness.mini.cache import cache_root, cached
    root = Path(root) if root else cache_root() / f"bench-s{seed}-{recipe_id(scale)}"
    if (root / "manifest.json").is_file():
        return root
    return cached(root, lambda tmp: write_benchmarks(tmp, seed, scale))


def eval_overrides(bench_root) -> List[str]:
    """Config overrides that make the round engine score the mini benchmarks every round (judged ones n/a
    without a judge): ``load_config("mini", [..., *eval_overrides(ensure_benchmarks())])``."""
    return [f"eval.data_root={Path(bench_root).resolve()}", f"eval.tasks=[{', '.join(PER_ROUND)}]",
            f"eval.final_tasks=[{', '.join(FINAL_ONLY)}]", f"eval.batch_size={EVAL['batch_size']}",
            f"eval.max_new_tokens={EVAL['max_new_tokens']}", "eval.every_round=true"]
