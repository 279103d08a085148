"""The demo's reference points: chance and the random-initialized projector that every method starts
from (the engine's ``init_projector(model, federation.seed)``), scored like the runs' global projector:
held-out caption loss through the same CaptionModel, mini benchmarks through the same lmms-eval suite.
The demo shows them beside the methods (round 0 of the loss table, ``reference.md``), so that "it
learned" is read off the outputs, not taken on trust."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

from harness.core.benchmarks import FRACTION_METRICS, MINI_SCORED as SCORED, PRETTY as BENCHMARKS
from harness.mini.bench import CHANCE


def random_init_scores(overrides: list, benchmarks: bool = True) -> Dict[str, float]:
    """{"heldout": caption loss, benchmark: primary score} of the round-0 projector of a mini run
    configured by ``overrides`` (``data.root``, the eval overrides, ``federation.seed``); the held-out
    loss only without ``benchmarks``."""
    import torch
    from harness.engine.client import CaptionModel
    from harness.core.config import load_config
    from harness.data.reader import pixels
    from harness.eval.hook import adapter_for, score, suite_for
    from harness.eval.heldout import heldout_samples, mean_caption_loss
    from harness.model.build import build_bundle, init_projector, vision_features
    cfg = load_config("mini", overrides)
    bundle = build_bundle("mini")
    bundle.model.eval()
    state = init_projector(bundle.model, cfg.federation.seed)

    def features(batch):
        px = pixels([s.image for s in batch], bundle.image_size, bundle.image_mean, bundle.image_std)
        return vision_features(bundle.model, px)
    samples = heldout_samples(str(Path(cfg.data.root)))
    out = {"heldout": mean_caption_loss(CaptionModel(bundle), features, bundle, samples, cfg.client.batch_size,
                                        cfg.data.max_caption_tokens)}
    if benchmarks:
        with torch.no_grad():
            lm = adapter_for(bundle, "cpu", cfg.eval.batch_size, cfg.eval.max_new_tokens)
            lm.set_projector(state)
            rows = score(suite_for(tuple(SCORED), cfg.eval.data_root, None, cfg.eval.limit), lm)
        out.update({b: v for b, m, v, *_ in rows if SCORED.get(b) == m})
    return out


def reference_markdown(random_init: Dict[str, float], note: str) -> str:
    """Chance and the random-initialized projector in the final-score table's units (percent, MME points)."""
    def shown(bench: str, value) -> str:
        if value is None:
            return "–"
        return f"{100 * value:.1f}" if SCORED[bench] in FRACTION_METRICS else f"{value:.1f}"
    chance = {b: CHANCE[(b, m)] for b, m in SCORED.items()}
    lines = [f"_{note}_", "", "Reference points for the final-round scores and the held-out loss", "",
             "| | held-out caption loss | " + " | ".join(BENCHMARKS[b] for b in SCORED) + " |",
             "|---|:-:|" + ":-:|" * len(SCORED),
             "| chance (uniform random answers) | – | " + " | ".join(shown(b, chance[b]) for b in SCORED) + " |",
             f"| random-initialized projector (round 0 of every method) | {random_init['heldout']:.3f} | "
             + " | ".join(shown(b, random_init.get(b)) for b in SCORED) + " |", ""]
    return "\n".join(lines)
