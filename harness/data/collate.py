"""LLaVA pretraining format ("plain" template): <s> <image>*N caption \n, loss on caption tokens only."""
from __future__ import annotations

from typing import List

import torch

IGNORE = -100


def plain_batch(captions: List[str], tokenizer, image_token_id: int, num_image_tokens: int,
                max_caption_tokens: int) -> dict:
    """input_ids, attention_mask, labels (caption + separator) and caption_mask (caption only), right-padded."""
    sep = tokenizer("\n", add_special_tokens=False).input_ids
    rows = []
    for caption in captions:
        cap = tokenizer(caption, add_special_tokens=False).input_ids[:max_caption_tokens]
        prefix = [tokenizer.bos_token_id] + [image_token_id] * num_image_tokens
        rows.append((prefix + cap + sep, len(prefix), len(cap)))
    width = max(len(ids) for ids, _, _ in rows)
    batch = {name: torch.zeros(len(rows), width, dtype=torch.long) for name in ("input_ids", "labels")}
    batch["input_ids"].fill_(tokenizer.pad_token_id)
    batch["labels"].fill_(IGNORE)
    batch["attention_mask"] = torch.zeros(len(rows), width, dtype=torch.long)
    batch["caption_mask"] = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, (ids, start, n_cap) in enumerate(rows):
        batch["input_ids"][i, :len(ids)] = torch.tensor(ids)
        batch["attention_mask"][i, :len(ids)] = 1
        batch["labels"][i, start:len(ids)] = torch.tensor(ids[start:])
        batch["caption_mask"][i, start:start + n_cap] = True
    return batch
