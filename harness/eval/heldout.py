"""A built-in per-round evaluation: the caption loss of held-out pairs (``DATA/heldout``), the LLaVA
pretraining objective itself, and of validation pairs (``eval.validation``: rows that are neither the
reported held-out set nor any benchmark's, what ``fedma tune`` scores). Rank 0 scores the global
projector (every client's for ``local``)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import List

import torch

from harness.data.collate import plain_batch
from harness.data.layout import heldout_dir
from harness.data.reader import SkipReport, ordered_samples
from harness.model.build import set_projector
from harness.core.records import make_record


@lru_cache(maxsize=4)
def heldout_samples(root: str) -> tuple:
    return shard_samples(str(heldout_dir(root)))


@lru_cache(maxsize=4)
def shard_samples(directory: str) -> tuple:
    """Every sample of a shard directory (index.json + shards) in its fixed order; () if there is none."""
    directory = Path(directory)
    if not (directory / "index.json").exists():
        return ()
    return tuple(ordered_samples(directory, 0, 0, 0, SkipReport()))


def caption_loss(trainer, state, samples, batch_size: int) -> float:
    set_projector(trainer.bundle.model, state)
    return mean_caption_loss(trainer.engine.module, trainer.features, trainer.bundle, samples, batch_size,
                             trainer.settings.max_caption_tokens, trainer.device)


def mean_caption_loss(module, features, bundle, samples, batch_size: int, max_caption_tokens: int,
                      device="cpu") -> float:
    """Mean caption loss per sample of ``module`` (a CaptionModel) given ``features(samples)``."""
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(samples), batch_size):
            chunk = list(samples[i:i + batch_size])
            inputs = plain_batch([s.caption for s in chunk], bundle.tokenizer, bundle.image_token_id,
                                 bundle.num_image_tokens, max_caption_tokens)
            dev = {k: v.to(device) for k, v in inputs.items()}
            loss, _, _ = module(dev["input_ids"], dev["attention_mask"], dev["labels"], features(chunk))
            total += float(loss) * len(chunk)
            count += len(chunk)
    return total / max(count, 1)


def heldout_hook(ctx) -> List[dict]:
    if not ctx.world.is_server:
        return []
    root = ctx.cfg.data.root.format(scenario=ctx.cfg.data.scenario)
    splits = {"heldout": heldout_samples(str(Path(root)))}
    if ctx.cfg.eval.validation:
        splits["validation"] = shard_samples(str(Path(ctx.cfg.eval.validation)))
    targets = ctx.targets or {"global": ctx.global_state}
    return [make_record(ctx.base_record, ctx.round, who, split, "caption_loss",
                        caption_loss(ctx.trainer, state, samples, ctx.cfg.client.batch_size), len(samples))
            for split, samples in splits.items() if samples for who, state in targets.items()]
