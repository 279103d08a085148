"""The questions the Fed-MA-mini benchmarks ask, rendered exactly as lmms-eval 0.7.3 prompts them.

Why here: the mini LM is pretrained on these questions, first with the image slots holding the sample's
attribute words, then with images in them (:mod:`harness.mini.models`); to answer benchmark questions once
a projector fills those slots, it must have seen the same prompts in pretraining. :func:`sample` draws the pretraining questions and
:mod:`harness.mini.bench` the benchmark ones, from the same builders.

Every answer is a function of the image's slot words (:func:`world.slot_words`) alone, so an LM that
cannot read the slots stays at chance:
- yes/no (POPE, MME): "yes" iff every value word the question names is one of the image's;
- multiple choice (MMBench, SEED: 4 options; MMVP: 2): the one option whose words are all the image's.

:func:`prompt` is each task's ``doc_to_text`` with its default ``lmms_eval_specific_kwargs``
(pope/mme: "Answer the question using a single word or phrase."; mmbench/seed/mmvp: "Answer with the
option's letter ..."); a test compares it with lmms-eval's own on every benchmark row.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import List, Sequence, Tuple

from harness.mini import world

KINDS = ("pope", "mme", "mmbench", "seed", "mmvp")
LETTERS = "ABCD"
POST_SHORT = "\nAnswer the question using a single word or phrase."
POST_LETTER = "\nAnswer with the option's letter from the given choices directly."
MME_ASK = " Please answer yes or no."          # MME's question suffix, replaced by the post prompt
MMBENCH_OPTIONS = "There are several options:"  # mmbench.yaml metadata.sys_prompt
# yes/no templates: POPE's object question and MME's four categories (one object per image: no "count")
POPE_TEMPLATE = "Is there a {color} {shape} in the image?"
MME_TEMPLATES = {"existence": "Is there a {shape} in the image?", "color": "Is there a {color} object in the image?",
                 "position": "Is there a shape {place} of the image?", "scene": "Is there a {scene} in the image?"}
# multiple-choice stems per category (the option pools below)
MMBENCH_STEMS = {"color": "What color is the shape?", "shape": "Which shape is in the image?",
                 "scene": "What does the image show?"}
SEED_STEMS = {"color": "Which color does the object have?", "shape": "What is the shape of the object?",
              "scene": "What kind of scene is this?"}
MMVP_STEMS = {"color": "What color is the object?", "shape": "What shape is the object?",
              "size": "How big is the object?", "vpos": "Where is the object vertically?",
              "hpos": "Where is the object horizontally?"}
POOLS = {"color": sorted(world.COLORS), "shape": list(world.SHAPES), "size": sorted(world.SIZES),
         "vpos": sorted(world.VPOS), "hpos": sorted(world.HPOS),
         "scene": [world.DOMAIN_WORD[d] for d in world.DOMAINS]}
VALUES = {w for pool in POOLS.values() for v in pool for w in v.split()}   # the words that carry ground truth
TOKEN = re.compile(r"\w+|[^\w\s]+")             # the tokenizer's pre-tokenizer (pre_tokenizers.Whitespace)


@dataclass(frozen=True)
class Question:
    kind: str                     # one of KINDS
    category: str
    question: str                 # as stored in the dataset's question column
    options: Tuple[str, ...] = ()
    answer: str = ""              # what the model should say: "yes"/"no" or an option letter


def truth(meta: dict, category: str) -> str:
    """The image's value in an option pool (``scene``: its domain word)."""
    return world.DOMAIN_WORD[meta["domain"]] if category == "scene" else meta[category]


def holds(meta: dict, text: str) -> bool:
    """Whether every value word in ``text`` is one of the image's slot words (the rule every answer follows)."""
    return {w for w in text.split() if w in VALUES} <= set(world.slot_words(meta))


def other(meta: dict, category: str, rng: random.Random) -> str:
    return rng.choice([v for v in POOLS[category] if v != truth(meta, category)])


# -- yes/no ---------------------------------------------------------------------------------------------
def yes_no(kind: str, category: str, template: str, meta: dict, **values: str) -> Question:
    text = template.format(**values) + (MME_ASK if kind == "mme" else "")
    return Question(kind, category, text, (), "yes" if holds(meta, " ".join(values.values())) else "no")


def pope(meta: dict, color: str, shape: str, category: str) -> Question:
    return yes_no("pope", category, POPE_TEMPLATE, meta, color=color, shape=shape)


def mme(meta: dict, category: str, yes: bool, rng: random.Random) -> Question:
    """An MME question about ``meta``: the true value (``yes``) or another one."""
    if category == "position":
        axis = rng.choice(("vpos", "hpos"))
        value = meta[axis] if yes else other(meta, axis, rng)
        place = f"at the {value}" if axis == "vpos" else f"on the {value}"
        return yes_no("mme", category, MME_TEMPLATES[category], meta, place=place)
    asked = "shape" if category == "existence" else category
    value = truth(meta, asked) if yes else other(meta, asked, rng)
    return yes_no("mme", category, MME_TEMPLATES[category], meta, **{asked: value})


# -- multiple choice --------------------------------------------------------------------------------------
def choice(kind: str, category: str, stem: str, options: Sequence[str], meta: dict) -> Question:
    [answer] = [LETTERS[i] for i, o in enumerate(options) if holds(meta, o)]
    return Question(kind, category, stem, tuple(options), answer)


def four_options(meta: dict, category: str, rng: random.Random) -> List[str]:
    """The true value and three others from its pool, shuffled."""
    pool = [v for v in POOLS[category] if v != truth(meta, category)]
    options = [truth(meta, category)] + rng.sample(pool, 3)
    rng.shuffle(options)
    return options


def mmbench(meta: dict, category: str, rng: random.Random) -> Question:
    return choice("mmbench", category, MMBENCH_STEMS[category], four_options(meta, category, rng), meta)


def seed(meta: dict, category: str, rng: random.Random) -> Question:
    return choice("seed", category, SEED_STEMS[category], four_options(meta, category, rng), meta)


def mmvp(meta: dict, attribute: str, options: Sequence[str]) -> Question:
    return choice("mmvp", attribute, MMVP_STEMS[attribute], options, meta)


# -- pretraining and prompts -------------------------------------------------------------------------------
def sample(meta: dict, rng: random.Random, yes_no_share: float = 0.5) -> Question:
    """One pretraining question about ``meta``: yes/no (POPE or MME) with probability ``yes_no_share``, else
    multiple choice; then the kind, category and (yes/no) the answer uniformly."""
    kind = rng.choice(KINDS[:2] if rng.random() < yes_no_share else KINDS[2:])
    if kind == "pope":
        color, shape = meta["color"], meta["shape"]
        if rng.random() < 0.5:   # a negative: another colour, another shape, or both
            miss = rng.choice(("color", "shape", "both"))
            color = other(meta, "color", rng) if miss != "shape" else color
            shape = other(meta, "shape", rng) if miss != "color" else shape
        return pope(meta, color, shape, "random")
    if kind == "mme":
        return mme(meta, rng.choice(sorted(MME_TEMPLATES)), rng.random() < 0.5, rng)
    if kind == "mmvp":
        attribute = rng.choice(sorted(MMVP_STEMS))
        options = [truth(meta, attribute), other(meta, attribute, rng)]
        rng.shuffle(options)
        return mmvp(meta, attribute, options)
    build, stems = (mmbench, MMBENCH_STEMS) if kind == "mmbench" else (seed, SEED_STEMS)
    return build(meta, rng.choice(sorted(stems)), rng)


def prompt(q: Question) -> str:
    """lmms-eval's ``doc_to_text`` for the question's task (default kwargs), as the adapter receives it."""
    if q.kind == "pope":
        return q.question.strip() + POST_SHORT
    if q.kind == "mme":
        return q.question.strip().replace(MME_ASK, "") + POST_SHORT
    listed = "\n".join(f"{letter}. {o}" for letter, o in zip(LETTERS, q.options))
    if q.kind == "mmbench":
        return f"{q.question} {MMBENCH_OPTIONS}\n{listed}\n{POST_LETTER}"
    return f"{q.question}\n{listed}{POST_LETTER}"


def spec() -> dict:
    """Everything the prompts are made of (part of the LM checkpoint's recipe hash)."""
    return {"pope": POPE_TEMPLATE, "mme": MME_TEMPLATES, "mmbench": MMBENCH_STEMS, "seed": SEED_STEMS,
            "mmvp": MMVP_STEMS, "pools": POOLS, "post": [POST_SHORT, POST_LETTER, MME_ASK, MMBENCH_OPTIONS]}


def words() -> List[str]:
    """Every word the prompts and answers use (added to the world's vocabulary, so none is <unk>)."""
    texts = [POPE_TEMPLATE, POST_SHORT, POST_LETTER, MME_ASK, MMBENCH_OPTIONS, "yes no " + " ".join(LETTERS),
             "at the on the", *MME_TEMPLATES.values(), *MMBENCH_STEMS.values(), *SEED_STEMS.values(),
             *MMVP_STEMS.values()]
    return sorted({w for t in texts for w in TOKEN.findall(re.sub(r"\{\w+\}", " ", t))})
