"""LLaVA pretraining format ("plain" template): <s> <image>*N caption \n, loss on caption tokens only."""
from __future__ import annotations

from typing import List

import torch

IGNORE = -100


def plain_batch(captions: List[str], tokenizer, image_token_id: int, num_image_tokens: int,
                max_caption_tokens: int) -> dict:
    """input_ids, attention_mask, labels (caption + separator) and caption_mask (caption only), right-padded.

    The captions are tokenized in one batched call and the tensors built whole (not row by row): this
    collate runs on every micro-batch, and per-row calls cost ~10% of a tiny-preset step (profiled)."""
    sep = tokenizer("\n", add_special_tokens=False).input_ids
    caps = [ids[:max_caption_tokens] for ids in tokenizer(list(captions), add_special_tokens=False).input_ids]
    start = 1 + num_image_tokens
    prefix = [tokenizer.bos_token_id] + [image_token_id] * num_image_tokens
    lengths = torch.tensor([start + len(cap) + len(sep) for cap in caps])
    width = int(lengths.max())
    input_ids = torch.tensor([prefix + cap + sep + [tokenizer.pad_token_id] * (width - start - len(cap) - len(sep))
                              for cap in caps], dtype=torch.long)
    pos = torch.arange(width).unsqueeze(0)
    inside = pos < lengths.unsqueeze(1)
    n_cap = torch.tensor([len(cap) for cap in caps]).unsqueeze(1)
    labels = torch.where(inside & (pos >= start), input_ids, IGNORE)
    return {"input_ids": input_ids, "labels": labels, "attention_mask": inside.long(),
            "caption_mask": (pos >= start) & (pos < start + n_cap)}


# -- LLaVA's instruction format (stage 2) ---------------------------------------------------------------
VICUNA = ("A chat between a curious human and an artificial intelligence assistant. The assistant gives "
          "helpful, detailed, and polite answers to the human's questions. USER: ")
IMAGE = "<image>"


def prompt_ids(tokenizer, template: str, text: str, image_ids: List[int], first: bool = True) -> List[int]:
    """One human turn as the model reads it (the evaluation adapter's prompt, token for token):
    plain ``<s> <image>*N text``; vicuna ``<s> SYSTEM USER: <image>*N \\ntext ASSISTANT:`` (later turns
    ``USER: text ASSISTANT:`` without <s>, system or image)."""
    enc = lambda s: tokenizer(s, add_special_tokens=False).input_ids   # noqa: E731
    if template == "vicuna":
        if not first:
            return enc("USER: " + text + " ASSISTANT:")
        return [tokenizer.bos_token_id] + enc(VICUNA) + image_ids + enc(("\n" if image_ids else "") + text + " ASSISTANT:")
    return ([tokenizer.bos_token_id] + image_ids if first else []) + enc(text)


def conversation_rows(conversations: List[List[dict]], tokenizer, template: str, image_token_id: int,
                      num_image_tokens: int, max_text_tokens: int) -> List[tuple]:
    """Per sample (ids, [(answer start, answer length)]): human turns as prompts, each gpt turn's tokens
    then </s>; the image token of the first human turn becomes the image slots. Text past
    ``max_text_tokens`` (image slots not counted) is cut at the end."""
    rows = []
    for turns in conversations:
        ids, answers, image = [], [], [image_token_id] * num_image_tokens
        for i in range(0, len(turns) - 1, 2):
            human, gpt = turns[i]["value"], turns[i + 1]["value"]
            text = human.replace(IMAGE + "\n", "").replace(IMAGE, "").strip()
            ids += prompt_ids(tokenizer, template, text, image if i == 0 else [], first=i == 0)
            answer = tokenizer((" " if template == "vicuna" else "") + gpt.strip(), add_special_tokens=False).input_ids
            answers.append((len(ids), len(answer)))
            ids += answer + [tokenizer.eos_token_id]
        limit = max_text_tokens + num_image_tokens + 1
        rows.append((ids[:limit], [(s, min(n, limit - s)) for s, n in answers if s < limit]))
    return rows


def conversation_batch(conversations: List[List[dict]], tokenizer, template: str, image_token_id: int,
                       num_image_tokens: int, max_text_tokens: int) -> dict:
    """input_ids, attention_mask, labels (each answer and its </s>; -100 elsewhere) and caption_mask
    (the answer tokens), right-padded: loss on the answers only, as LLaVA's instruction tuning."""
    rows = conversation_rows(conversations, tokenizer, template, image_token_id, num_image_tokens, max_text_tokens)
    width = max(len(ids) for ids, _ in rows)
    batch = {"input_ids": torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long),
             "labels": torch.full((len(rows), width), IGNORE, dtype=torch.long),
             "attention_mask": torch.zeros(len(rows), width, dtype=torch.long),
             "caption_mask": torch.zeros(len(rows), width, dtype=torch.bool)}
    for i, (ids, answers) in enumerate(rows):
        batch["input_ids"][i, :len(ids)] = torch.tensor(ids)
        batch["attention_mask"][i, :len(ids)] = 1
        for start, n in answers:
            end = min(start + n + 1, len(ids))          # the answer and its </s>
            batch["labels"][i, start:end] = batch["input_ids"][i, start:end]
            batch["caption_mask"][i, start:start + n] = True
    return batch
