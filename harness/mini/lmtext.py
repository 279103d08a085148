"""The text rows the mini LM is pretrained on; every row starts with ``<s>`` and the 16 image slots
holding the sample's attribute and domain words (:func:`slot_fill`), as a projector will fill them.

- caption rows (the copy task): the caption; labels on the caption.
- question rows: a benchmark question in lmms-eval's exact prompt (:mod:`harness.mini.qa`), then the
  answer and ``</s>``; labels on the answer and ``</s>`` (so generation stops after one word).
- probe rows: value words, each followed by "yes" or "no" (is it one of the slot words?); labels on
  yes/no only, also read out after the first layer (:func:`step_loss`). Why: a 2-layer LM trained on
  questions alone sits at chance for hundreds of steps. Answering needs "is this word in the image" at
  the word's position after layer 1, so that layer 2 can combine it at the answer; the early read-out
  puts it there directly.
"""
from __future__ import annotations

import random
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from harness.mini import qa, world

NUM_IMAGE_TOKENS = 16          # (32 / 8) ** 2
Row = Tuple[List[int], List[int]]   # input ids and labels (-100: not trained on)


def slot_fill(meta: dict, rng: random.Random) -> List[str]:
    words = world.slot_words(meta)
    fill = words + [rng.choice(words) for _ in range(NUM_IMAGE_TOKENS - len(words))]
    rng.shuffle(fill)
    return fill


def random_metas(rng: random.Random, n: int) -> List[dict]:
    out = []
    for _ in range(n):
        domain = rng.choice(world.DOMAINS)
        out.append({"domain": domain, **world.draw_attributes(rng, domain)})
    return out


def pack(tok, rows: Sequence[Row]) -> dict:
    """Right-padded batch (positions match the unpadded rows) with attention mask and labels."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (x, y) in enumerate(rows):
        ids[i, :len(x)], labels[i, :len(y)], mask[i, :len(x)] = torch.tensor(x), torch.tensor(y), 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def prefix(tok, words: List[str]) -> List[int]:
    return [tok.bos_token_id] + tok.convert_tokens_to_ids(words)


def encode(tok, text: str) -> List[int]:
    return tok(text, add_special_tokens=False).input_ids


def target_row(context: List[int], target: List[int]) -> Row:
    return context + target, [-100] * len(context) + target


def caption_rows(tok, metas, rng, slots: Optional[List[List[str]]] = None) -> List[Row]:
    return [target_row(prefix(tok, slots[i] if slots else slot_fill(m, rng)),
                       encode(tok, world.caption(m["domain"], m))) for i, m in enumerate(metas)]


def question_rows(tok, metas, rng, slots: Optional[List[List[str]]] = None, yes_no_share: float = 0.6) -> List[Row]:
    rows = []
    for i, meta in enumerate(metas):
        q = qa.sample(meta, rng, yes_no_share)
        context = prefix(tok, slots[i] if slots else slot_fill(meta, rng)) + encode(tok, qa.prompt(q))
        rows.append(target_row(context, encode(tok, q.answer) + [tok.eos_token_id]))
    return rows


def probe_rows(tok, metas, rng, absent: int = 6) -> List[Row]:
    values = sorted(qa.VALUES)
    rows = []
    for meta in metas:
        present = world.slot_words(meta)
        words = present + rng.sample([v for v in values if v not in present], absent)
        rng.shuffle(words)
        ids, labels = prefix(tok, slot_fill(meta, rng)), [-100] * (1 + NUM_IMAGE_TOKENS)
        for w in words:
            answer = tok.convert_tokens_to_ids("yes" if w in present else "no")
            ids += [tok.convert_tokens_to_ids(w), answer]
            labels += [-100, answer]
        rows.append((ids, labels))
    return rows


def readout_loss(lm, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token loss of intermediate hidden states read out through the final norm and the LM head."""
    logits = lm.lm_head(lm.model.norm(hidden))[:, :-1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))


def step_loss(lm, tok, rng: random.Random, sizes: dict) -> torch.Tensor:
    """One pretraining step's loss: caption, question and probe batches of ``sizes`` rows (one mean
    each, so the few answer tokens weigh as much as the many caption tokens), plus the probe's read-out
    after the first layer."""
    captions = caption_rows(tok, random_metas(rng, sizes["batch"]), rng)
    questions = question_rows(tok, random_metas(rng, sizes["qa_batch"]), rng, yes_no_share=sizes["yes_no_share"])
    loss = lm(**pack(tok, captions)).loss + lm(**pack(tok, questions)).loss
    batch = pack(tok, probe_rows(tok, random_metas(rng, sizes["probe_batch"]), rng))
    out = lm(**batch, output_hidden_states=True)
    return loss + out.loss + readout_loss(lm, out.hidden_states[1], batch["labels"])
