"""The lmms-eval model ``fedma_llava``: a frozen LLaVA preset plus a projector, batched.

lmms-eval 0.7.3 finds it through the entry-point group ``lmms_eval.models`` (``MANIFEST`` below); in
process, :func:`register` does the same without an installed entry point. Prompts follow the model's
training format: ``plain`` (``<s> <image>*N question``, the pretraining template, default) or
``vicuna`` (LLaVA-1.5's ``USER: <image>\\n... ASSISTANT:``).

Pitfalls handled (see ``facts/lmms-eval-offline.md``): ``loglikelihood`` returns the continuation's
NLL (lmms-eval takes the argmin) wrapped in ``GenerationResult``; ``clean()`` is a no-op so one
adapter serves every round; control characters are stripped from generated text; decoding is greedy;
``max_new_tokens`` is capped by the adapter's own ``max_new_tokens`` when set.

Sharding: with ``shard=(rank, size, all_gather)`` each call computes only the requests ``i`` with
``i % size == rank`` and all-gathers the answers, so every rank returns the full, identical list and
lmms-eval (run with a world of one on each rank) scores it unchanged.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

import torch
from lmms_eval.api.instance import GenerationResult
from lmms_eval.api.model import lmms

from harness.core.presets import template_of
from harness.data.collate import prompt_ids
from harness.data.reader import pixels

log = logging.getLogger(__name__)
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
NAME = "fedma_llava"


def _manifest():
    from lmms_eval.models.registry_v2 import ModelManifest
    return ModelManifest(model_id=NAME, simple_class_path="harness.eval.adapter.FedmaLlava",
                         aliases=("fedma-llava",))


def MANIFEST():
    return _manifest()


def register() -> None:
    """Register ``fedma_llava`` in lmms-eval's registry (what the installed entry point does)."""
    from lmms_eval.models import MODEL_REGISTRY_V2
    MODEL_REGISTRY_V2.register_manifest(_manifest(), overwrite=True)


def check_fits(model, state, path, preset: str) -> None:
    """One line naming ``preset=`` when a projector's shapes are not the preset's (instead of torch's
    ``size of tensor a (64) must match ... (128)`` deep inside a forward pass)."""
    from harness.model.build import get_projector
    want = {k: tuple(v.shape) for k, v in get_projector(model).items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if want != got:
        raise ValueError(f"projector={path} has shapes {got} but preset {preset!r} needs {want}: pass the preset "
                         f"it was trained with in --model_args (preset=mini, preset=tiny or preset=llava-1.5-7b)")


class FedmaLlava(lmms):
    is_simple = True

    def __init__(self, pretrained: str | None = None, preset: str | None = None, projector: str | None = None,
                 vision_path: str | None = None, llm_path: str | None = None, dtype: str = "float32",
                 batch_size: int = 8, max_new_tokens: int | None = None, template: str | None = None,
                 device: str | None = None, bundle=None, **unused):
        super().__init__()
        from harness.model.build import build_bundle, set_projector
        path = projector or pretrained
        target = None
        if path:
            from harness.eval.checkpoint import resolve
            target = resolve(path)
        if bundle is None:   # built here (CLI, entry point); a bundle passed in is shared, left as it is
            model = ((target.config or {}).get("model") or {}) if target else {}
            preset = preset or model.get("preset") or "tiny"   # the run's own preset, unless named
            bundle = build_bundle(preset, vision_path or model.get("vision_path"), llm_path or model.get("llm_path"),
                                  getattr(torch, dtype), lora=model.get("lora"))   # a stage-2 run's adapters
            bundle.model.eval()
        self.bundle = bundle
        self.model = bundle.model
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self._device)
        self.tokenizer = bundle.tokenizer
        self.batch_size_per_gpu = int(batch_size)
        self.max_new_tokens = int(max_new_tokens) if max_new_tokens not in (None, "", "None") else None
        self.template = template or template_of(bundle.name)
        self.shard: tuple[int, int, Callable] | None = None
        self.calls = {"loglikelihood": 0, "generate_until": 0, "computed": 0}   # requests seen / run here
        if target is not None:
            states = target.states
            if list(states) != ["global"]:
                raise ValueError(f"projector={path} holds one projector per client; pass one client's file")
            check_fits(self.model, states["global"], path, bundle.name)
            set_projector(self.model, states["global"])

    # -- lmms-eval plumbing ---------------------------------------------------------------------------
    @property
    def device(self):
        return self._device

    @property
    def batch_size(self):
        return self.batch_size_per_gpu

    def clean(self):   # the base class deletes every nn.Module attribute; the adapter is reused
        return None

    def set_projector(self, state) -> None:
        from harness.model.build import set_projector
        set_projector(self.model, state)

    # -- prompts ------------------------------------------------------------------------------------------
    def _visuals(self, args) -> list:
        doc_to_visual, doc_id, task, split = args
        visuals = doc_to_visual(self.task_dict[task][split][doc_id]) if doc_to_visual else []
        return [v for v in (visuals or []) if v is not None]

    def _prompt_ids(self, text: str, has_image: bool) -> list[int]:
        b = self.bundle
        image = [b.image_token_id] * b.num_image_tokens if has_image else []
        return prompt_ids(self.tokenizer, self.template, text, image)

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def _pixels(self, images) -> torch.Tensor | None:
        if not images:
            return None
        b = self.bundle
        px = pixels([im.convert("RGB") for im in images], b.image_size, b.image_mean, b.image_std)
        return px.to(self._device, self.model.dtype)

    # -- sharding -------------------------------------------------------------------------------------------
    def _sharded(self, items: Sequence, compute: Callable[[list], list]) -> list:
        if self.shard is None or self.shard[1] == 1:
            return compute(list(items))
        rank, size, all_gather = self.shard
        mine = compute(list(items[rank::size]))
        parts = all_gather(mine)
        out = [None] * len(items)
        for r, part in enumerate(parts):
            out[r::size] = part
        return out

    # -- loglikelihood ----------------------------------------------------------------------------------------
    def loglikelihood(self, requests) -> list:
        self.calls["loglikelihood"] += len(requests)
        args = [r.args for r in requests]
        scored = self._sharded(args, self._loglikelihood_local)
        return [GenerationResult(text=(nll, greedy)) for nll, greedy in scored]

    def _loglikelihood_local(self, args: list) -> list:
        self.calls["computed"] += len(args)
        out = []
        for i in range(0, len(args), self.batch_size_per_gpu):
            out.extend(self._loglikelihood_batch(args[i:i + self.batch_size_per_gpu]))
        return out

    @torch.no_grad()
    def _loglikelihood_batch(self, chunk: list) -> list:
        rows, images = [], []
        for context, continuation, *rest in chunk:
            visual = self._visuals(rest)[:1]
            ctx = self._prompt_ids(context, bool(visual))
            cont = self._encode(continuation)
            rows.append((ctx + cont, len(ctx), len(cont)))
            images += visual
        width = max(len(ids) for ids, _, _ in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, (ids, _, _) in enumerate(rows):   # right padding: positions match the unpadded sequence
            input_ids[i, :len(ids)] = torch.tensor(ids)
            mask[i, :len(ids)] = 1
        logits = self.model(input_ids=input_ids.to(self._device), attention_mask=mask.to(self._device),
                            pixel_values=self._pixels(images)).logits.float()
        logprobs = torch.log_softmax(logits, dim=-1).cpu()
        out = []
        for i, (ids, start, n) in enumerate(rows):
            target = torch.tensor(ids[start:start + n])
            lp = logprobs[i, start - 1:start - 1 + n]
            nll = -lp.gather(1, target[:, None]).sum().item()
            out.append((nll, bool((lp.argmax(-1) == target).all())))
        return out

    # -- generation -------------------------------------------------------------------------------------------
    def generate_until(self, requests) -> list:
        self.calls["generate_until"] += len(requests)
        jobs = []
        for r in requests:
            context, gen_kwargs, *rest = r.args
            jobs.append((context, self._visuals(rest)[:1], dict(gen_kwargs or {})))
        return self._sharded(jobs, self._generate_local)

    def _generate_local(self, jobs: list) -> list:
        self.calls["computed"] += len(jobs)
        out = []
        for i in range(0, len(jobs), self.batch_size_per_gpu):
            out.extend(self._generate(jobs[i:i + self.batch_size_per_gpu]))
        return out

    def _limit(self, gen_kwargs: dict) -> int:
        n = int(gen_kwargs.get("max_new_tokens", 128))
        return min(n, self.max_new_tokens) if self.max_new_tokens else n

    @torch.no_grad()
    def _generate(self, jobs: list) -> list[str]:
        """Greedy answers for [(context, images, gen_kwargs)], one left-padded batch."""
        rows = [self._prompt_ids(context, bool(images)) for context, images, _ in jobs]
        images = [im for _, ims, _ in jobs for im in ims]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, ids in enumerate(rows):
            input_ids[i, width - len(ids):] = torch.tensor(ids)
            mask[i, width - len(ids):] = 1
        limit = max(self._limit(kw) for _, _, kw in jobs)
        generated = self.model.generate(input_ids=input_ids.to(self._device), attention_mask=mask.to(self._device),
                                        pixel_values=self._pixels(images), max_new_tokens=limit, do_sample=False,
                                        pad_token_id=pad, eos_token_id=self.tokenizer.eos_token_id)
        texts = []
        for (_, _, kw), seq in zip(jobs, generated[:, width:].cpu()):
            text = self.tokenizer.decode(seq[:self._limit(kw)], skip_special_tokens=True)
            texts.append(_until(CONTROL.sub("", text), kw.get("until")))
        return texts

    def generate_until_multi_round(self, requests) -> list:
        """Round by round per request: the task's doc_to_text gives the next context until it signals the end."""
        out = []
        for r in requests:
            context, gen_kwargs, doc_to_visual, doc_to_text, doc_id, task, split = r.args
            doc = self.task_dict[task][split][doc_id]
            visuals = [v for v in (doc_to_visual(doc) or []) if v is not None][:1]
            answers, info, k = [], None, 0
            while True:
                if k:
                    visuals, context, terminal, _, info = doc_to_text(doc, previous_output=answers, round_idx=k,
                                                                      previous_round_info=info)
                    if terminal:
                        break
                    visuals = [v for v in (visuals or []) if v is not None][:1]
                answers.append(self._generate([(context, visuals, dict(gen_kwargs or {}))])[0])
                k += 1
            out.append(answers)
        return out


def _until(text: str, until) -> str:
    for stop in ([until] if isinstance(until, str) else (until or [])):
        if stop and stop in text:
            text = text.split(stop)[0]
    return text
