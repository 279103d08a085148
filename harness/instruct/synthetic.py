"""A small instruction-tuning federation for the tiny preset (tests, smoke runs): the synthetic
federation's coloured squares with GQA-style attribute questions and OCRVQA-style place questions, in
LLaVA's record format, split the paper's way by :func:`harness.instruct.data.write_instruct`."""
from __future__ import annotations

import random
from pathlib import Path

from harness.data.synthetic import synthetic_record
from harness.instruct.data import Item, write_instruct

POST = "\nAnswer the question using a single word or phrase."   # lmms-eval's gqa post prompt (LLaVA's data too)
QUESTIONS = {"gqa": ("What color is the square?", 1), "ocrvqa": ("Where is the square?", 2)}


def turns(question: str, answer: str) -> list:
    return [{"from": "human", "value": f"<image>\n{question}{POST}"}, {"from": "gpt", "value": answer}]


def synthetic_items(source: str, n: int, seed: int):
    rng = random.Random(f"instruct-synthetic-{seed}-{source}")
    question, part = QUESTIONS[source]
    out = []
    for i in range(n):
        key, jpg, caption, _ = synthetic_record(rng, i % 5, f"{source}{i:05d}")
        answer = caption.split()[part] if part == 1 else caption.split()[-1]   # "a {size} {color} square on the {place}"
        out.append(Item(key, jpg, turns(question, answer), source))
    return out


def write_synthetic_instruct(root, clients: int = 5, rounds: int = 2, per_source: int = 40, seed: int = 0) -> Path:
    sources = {s: synthetic_items(s, per_source, seed) for s in QUESTIONS}
    return write_instruct(root, sources, clients, rounds, seed, per_shard=16)
