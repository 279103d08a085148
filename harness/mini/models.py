"""The mini preset's tokenizer and models: a tiny CLIP vision tower and a tiny Llama LM, as one
``LlavaForConditionalGeneration`` saved with ``save_pretrained`` (safetensors) in a cache directory.

A random frozen LM learns nothing from the projector, so the LM is pretrained in two phases:
- text (``pretrain_lm``): the 16 image slots hold the sample's attribute and domain *words* (each at
  least once, shuffled), and the LM learns to write the caption from them (copy task) and to answer the
  mini benchmarks' questions about them in lmms-eval's prompts (:mod:`harness.mini.qa`, rows in
  :mod:`harness.mini.lmtext`);
- grounding (:mod:`harness.mini.ground`): the same rows on world images through a throwaway projector,
  which is then reset to its random initialization, so that what the LM reads from the slots is what a
  projector can produce.
The projector's job in a federation is then LLaVA stage 1 in miniature: map image features into the
space the LM reads. Deterministic (seeded, one thread); about 4 min (900 text steps) + 3 min (1200
grounding steps) on one CPU thread, plus the CLIP's half minute. Sizes: ``facts/cpu-training.md`` s10.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import List, Optional

import torch

from harness.mini import lmtext, qa, vocab as word_list, world
from harness.mini.cache import cache_root, cached, shipped_or_cached
from harness.core.threads import torch_threads
from harness.mini.encoder import CLIP_RECIPE, pretrain_clip, save_clip
from harness.mini.ground import GROUND, ground_lm
from harness.mini.lmtext import NUM_IMAGE_TOKENS

# rows per step: caption (copy task) ``batch``, question ``qa_batch`` (a ``yes_no_share`` of them POPE/MME)
# and probe ``probe_batch`` (lmtext.step_loss)
PRETRAIN = {"threads": 1, "steps": 900, "batch": 16, "qa_batch": 32, "probe_batch": 16, "yes_no_share": 0.3, "lr": 3e-3,
            "seed": 0}
RECIPE = "lm-qa-2"             # bump when the build changes in a way PRETRAIN and the config do not show


def word_tokenizer():
    """Word-level tokenizer over the world's fixed vocabulary (specials <pad> <s> </s> <unk> <image>)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast
    vocab = {w: i for i, w in enumerate(word_list.vocabulary())}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()   # words and punctuation runs: "image?" -> image ?
    core.decoder = decoders.WordPiece(prefix="##")   # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", extra_special_tokens={"image_token": "<image>"})


def llava_config(tok):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig
    vc = CLIPVisionConfig(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                          image_size=world.IMAGE_SIZE, patch_size=8)
    tc = LlamaConfig(hidden_size=128, intermediate_size=352, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=4, vocab_size=len(tok), max_position_embeddings=128,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return LlavaConfig(vision_config=vc, text_config=tc, image_token_index=tok.convert_tokens_to_ids("<image>"),
                       image_seq_length=NUM_IMAGE_TOKENS, vision_feature_layer=-2, projector_hidden_act="gelu")


def copy_batch(tok, metas: List[dict], rng: random.Random, slots: Optional[List[List[str]]] = None) -> dict:
    """Copy-task rows: <s>, 16 slots of attribute words, caption; labels on the caption only."""
    return lmtext.pack(tok, lmtext.caption_rows(tok, metas, rng, slots))


def pretrain_lm(tok, config, steps: int = PRETRAIN["steps"], seed: int = PRETRAIN["seed"]):
    """The text-only pretraining of the Llama LM (captions, benchmark questions and slot probes, one
    loss each per step: :mod:`harness.mini.lmtext`); returns the trained LlamaForCausalLM."""
    from transformers import LlamaForCausalLM
    torch.manual_seed(seed)
    lm = LlamaForCausalLM(config.text_config)
    opt = torch.optim.AdamW(lm.parameters(), lr=PRETRAIN["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 30) * (1 - s / steps))
    rng = random.Random(f"mini-lm-{seed}")
    lm.train()
    for _ in range(steps):
        loss = lmtext.step_loss(lm, tok, rng, PRETRAIN)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    lm.eval()
    return lm


def recipe_id() -> str:
    """A short hash of what the checkpoint depends on (recipe, pretraining, vocabulary, model config,
    question templates). The cache directory is named by it, so a changed recipe never reuses a stale LM."""
    config = llava_config(word_tokenizer()).to_dict()
    config.pop("transformers_version", None)
    spec = {"recipe": RECIPE, "pretrain": PRETRAIN, "vocabulary": word_list.vocabulary(), "config": config,
            "questions": qa.spec(), "clip": CLIP_RECIPE, "ground": GROUND}
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:8]


def save_models(out_dir, steps: int = PRETRAIN["steps"], ground_steps: int = GROUND["steps"]) -> Path:
    """Pretrain the LM on text, take the vision tower from the contrastive CLIP, ground the LM on images
    (:mod:`harness.mini.ground`), save the mini LLaVA (safetensors) plus ``mini.json`` into ``out_dir``."""
    from transformers import CLIPModel, LlavaForConditionalGeneration
    out_dir = Path(out_dir)
    tok = word_tokenizer()
    cfg = llava_config(tok)
    with one_thread():
        lm = pretrain_lm(tok, cfg, steps)
    clip = CLIPModel.from_pretrained(ensure_clip())   # only now: the text phase may run while it builds
    torch.manual_seed(PRETRAIN["seed"] + 1)
    model = LlavaForConditionalGeneration(cfg)
    model.model.vision_tower.load_state_dict(clip.vision_model.state_dict())
    model.model.language_model.load_state_dict(lm.model.state_dict())
    model.lm_head.load_state_dict(lm.lm_head.state_dict())
    if ground_steps:
        with one_thread():
            ground_lm(bundle_of(model, tok), {**GROUND, "steps": ground_steps})
    model.save_pretrained(out_dir)
    (out_dir / "mini.json").write_text(json.dumps({"version": world.VERSION, "recipe": RECIPE, "id": recipe_id(),
                                                   "pretrain": {**PRETRAIN, "steps": steps},
                                                   "ground": {**GROUND, "steps": ground_steps}, "clip": CLIP_RECIPE,
                                                   "vocabulary": word_list.vocabulary()}, indent=1))
    return out_dir


def ensure_clip() -> Path:
    """The contrastively pretrained tiny CLIP (the pipeline's embedder, LLaVA's vision tower), cached."""
    from harness.mini.cache import recipe_tag

    def build(tmp: Path) -> None:
        with one_thread():
            model, tok = pretrain_clip(llava_config(word_tokenizer()).vision_config)
        save_clip(model, tok, tmp)
    return shipped_or_cached(f"clip-{recipe_tag(CLIP_RECIPE)}", build)


def one_thread():
    """Pretraining runs on one thread whatever OMP_NUM_THREADS says: the float sums then happen in one
    order, so every machine of a kind builds the same weights (and CI tests the ones users get)."""
    return torch_threads(1)


def ensure_models(path=None) -> Path:
    """The checkpoint directory ``llava-{recipe_id}``: shipped, or cached and built on first use
    (:func:`harness.mini.cache.shipped_or_cached`); ``path`` names another checkpoint directory."""
    if path and (Path(path) / "mini.json").is_file():
        return Path(path)
    if path:
        return cached(Path(path), save_models)
    return shipped_or_cached(f"llava-{recipe_id()}", save_models)


def models_available() -> bool:
    """Whether ``ensure_models()`` returns without pretraining."""
    from harness.mini.cache import available
    return available(f"llava-{recipe_id()}") is not None


def ensure_world(root=None, per_round: int = 256, heldout: int = 250, rounds: int = 10, seed: int = 0) -> Path:
    """The domain-per-client federation (``world-s{seed}-n{per_round}...``), written on first use."""
    root = Path(root) if root else cache_root() / f"world-s{seed}-n{per_round}-t{rounds}-h{heldout}"
    if (root / "manifest.json").is_file():
        return root
    return cached(root, lambda tmp: world.write_world(tmp, rounds=rounds, per_round=per_round, heldout=heldout,
                                                        seed=seed))


def mini_bundle(vision_path=None, llm_path=None):
    """The ``mini`` preset: the cached pretrained checkpoint (``llm_path`` may name another directory)."""
    from transformers import LlavaForConditionalGeneration
    path = ensure_models(llm_path or vision_path)
    return bundle_of(LlavaForConditionalGeneration.from_pretrained(path), word_tokenizer())


def bundle_of(model, tok):
    from harness.model.build import LlavaBundle
    return LlavaBundle(model, tok, world.IMAGE_SIZE, model.config.image_token_index, NUM_IMAGE_TOKENS)
