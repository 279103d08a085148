"""Client-side local training on DeepSpeed: one engine per process, reused for every client and round.

Each local round: load the start projector, reset the optimizer state (fresh AdamW every round, as in
SPEC section 1), then one pass over the round's batches with the method's client objective (its term
added to the caption loss: :mod:`harness.methods.objective`), accumulating Fed-CMP's alignment error and the
sample count on the way. The engine's data parallel group is the client group (``mpu``), so DeepSpeed
averages gradients only inside the group.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, List

import torch
import torch.distributed as dist
from torch.func import functional_call

from harness.engine import one_rank
from harness.core.config import ClientConfig
from harness.data.collate import conversation_batch, plain_batch
from harness.data.reader import Sample, pixels
from harness.core.errors import ClientFailure
from harness.fedcmp.align import alignment_errors
from harness.model import lora
from harness.model.build import LlavaBundle, get_projector, projector, set_projector, vision_features
from harness.methods.objective import ClientObjective, TermInputs

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """What local training needs besides the client section (:class:`harness.core.config.ClientConfig`, passed
    whole): from the model, data and federation sections, and the method's client objective."""
    bf16: bool = False
    max_caption_tokens: int = 64
    timeout_s: float = 7200.0
    objective: ClientObjective = field(default_factory=ClientObjective)   # the method's client side
    conversation: bool = False          # LLaVA instruction records (loss on the answers) instead of captions
    template: str = "plain"             # the prompt template of conversation records
    max_text_tokens: int = 256
    gradient_checkpointing: bool = False
    seed: int = 0                       # with LoRA dropout: its masks are seeded by (seed, client, round)


@dataclass
class LocalResult:
    state: Dict[str, torch.Tensor]
    num_samples: int
    align_error: float
    loss: float
    steps: int
    keys: List[str] = field(default_factory=list)
    uploads: Dict[str, Dict[str, torch.Tensor]] = field(default_factory=dict)   # the objective's extra uploads


class CaptionModel(torch.nn.Module):
    """The module DeepSpeed wraps: frozen LLaVA + trainable projector, fed cached visual features.

    Its parameter listing is built once: DeepSpeed walks ``named_parameters()`` three times a step
    (gradient reduction, clipping, zero_grad), and walking the frozen LLaVA's whole module tree each
    time cost about 7% of a tiny-preset step (profiled). The parameters never change after the bundle
    is built (LoRA is attached and embeddings resized before), so the cached list is the same list.
    """

    def __init__(self, bundle: LlavaBundle):
        super().__init__()
        self.llava = bundle.model
        self.image_token_id = bundle.image_token_id
        self._listed = list(super().named_parameters())

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        if prefix or not recurse or not remove_duplicate:
            return super().named_parameters(prefix, recurse, remove_duplicate)
        return iter(self._listed)

    def forward(self, input_ids, attention_mask, labels, features):
        proj = projector(self.llava)(features)
        emb = self.llava.get_input_embeddings()(input_ids)
        image_slots = (input_ids == self.image_token_id).unsqueeze(-1)
        emb = emb.masked_scatter(image_slots, proj.to(emb.dtype))
        loss = self.llava(inputs_embeds=emb, attention_mask=attention_mask, labels=labels).loss
        return loss, proj, emb


PAD_TURNS = [{"from": "human", "value": "pad"}, {"from": "gpt", "value": "pad"}]   # an empty slice's stand-in


def param_groups(model) -> List[dict]:
    """The projector, then (stage 2) the LoRA adapters: two AdamW groups, so each has its own peak lr."""
    groups = [{"params": [p for p in projector(model).parameters() if p.requires_grad]}]
    adapters = [p for _, p in lora.parameters(model)]
    return groups + ([{"params": adapters}] if adapters else [])


def hash_seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


class GroupMPU:
    """Tells DeepSpeed that data parallelism spans only this client group, and that there is no model
    parallelism: the model-parallel group is this rank alone. (DeepSpeed sums the squared gradient norm
    over the model-parallel group before clipping, ZeRO-0 and ZeRO-2 alike; naming the client group
    there clipped at sqrt(g) times the true norm in a group of g ranks: measured 0.690 = sqrt(2) x 0.488.)
    """

    def __init__(self, group, own):
        self.group, self.own = group, own      # the client group; a group of this rank only

    def get_model_parallel_rank(self):
        return 0

    def get_model_parallel_world_size(self):
        return 1

    def get_model_parallel_group(self):
        return self.own

    def get_data_parallel_rank(self):
        return dist.get_rank(self.group)

    def get_data_parallel_world_size(self):
        return dist.get_world_size(self.group)

    def get_data_parallel_group(self):
        return self.group


def deepspeed_config(c: ClientConfig, bf16: bool, clip: bool = True) -> dict:
    """``clip=False``: the client clips itself (:mod:`harness.engine.one_rank`). The optimizer starts at lr 0:
    every step's lr is set from the schedule (:func:`harness.engine.schedule.round_lrs` of ``client.lr``, its
    one path) before the step is taken."""
    return {"train_micro_batch_size_per_gpu": c.batch_size, "gradient_accumulation_steps": c.grad_accum,
            "gradient_clipping": c.grad_clip if clip else 0.0, "zero_optimization": {"stage": c.zero_stage},
            "bf16": {"enabled": bf16}, "steps_per_print": 10 ** 9, "wall_clock_breakdown": False,
            "optimizer": {"type": "AdamW", "params": {"lr": 0.0, "weight_decay": c.weight_decay, "betas": list(c.betas),
                                                      "eps": c.eps, "torch_adam": True}}}


def projector_lr_scale(c: ClientConfig) -> float:
    """The projector's peak lr over client.lr (stage 2: LoRA adapters train beside it at client.lr)."""
    return (c.projector_lr or c.lr) / c.lr


class ClientTrainer:
    def __init__(self, bundle: LlavaBundle, client: ClientConfig, settings: TrainSettings, group,
                 cache_features: bool = True):
        import deepspeed
        self.bundle, self.client, self.settings, self.group = bundle, client, settings, group
        self.cache_features = cache_features
        self.cache: Dict[str, torch.Tensor] = {}   # sample key -> frozen visual tokens (CPU)
        module = CaptionModel(bundle)
        groups = param_groups(bundle.model)
        self.lr_scales = [projector_lr_scale(client), 1.0][:len(groups)]
        if settings.gradient_checkpointing:
            bundle.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        own, _ = dist.new_subgroups(group_size=1)   # collective: every rank builds its trainer
        self.alone = one_rank.alone(client.zero_stage, settings.bf16, group)
        self.engine, *_ = deepspeed.initialize(model=module, model_parameters=groups, mpu=GroupMPU(group, own),
                                               config=deepspeed_config(client, settings.bf16, clip=not self.alone))
        self.engine.enable_backward_allreduce = not self.alone
        self.base_opt = getattr(self.engine.optimizer, "optimizer", self.engine.optimizer)
        self.fresh_opt = copy.deepcopy(self.base_opt.state_dict())
        self.projector_params = dict(projector(bundle.model).named_parameters())   # what objective terms see
        self.caption_loss_only = type(settings.objective).term is ClientObjective.term   # a method without a term

    @property
    def device(self):
        return self.engine.device

    def reset(self, state: Dict[str, torch.Tensor]) -> None:
        """Load a projector and return the optimizer to its fresh state (engine reuse, no re-init)."""
        set_projector(self.bundle.model, state)
        self.base_opt.load_state_dict(self.fresh_opt)
        if hasattr(self.engine.optimizer, "refresh_fp32_params"):   # ZeRO keeps an fp32 master copy
            self.engine.optimizer.refresh_fp32_params()
        self.engine.global_steps = self.engine.global_samples = self.engine.micro_steps = 0
        self.engine.zero_grad()

    def features(self, batch: List[Sample]) -> torch.Tensor:
        """Visual tokens of a batch; with caching, each sample's frozen features are computed once per
        process (a one-pass federation reuses them only for held-out evaluation and repeated runs)."""
        if not self.cache_features:
            return self.encode(batch)
        missing = [s for s in batch if s.key not in self.cache]
        if missing:
            for s, f in zip(missing, self.encode(missing)):
                self.cache[s.key] = f.to("cpu")
        return torch.stack([self.cache[s.key] for s in batch]).to(self.device)

    def encode(self, batch: List[Sample]) -> torch.Tensor:
        px = pixels([s.image for s in batch], self.bundle.image_size, self.bundle.image_mean, self.bundle.image_std)
        return vision_features(self.bundle.model, px.to(self.device))

    def train(self, start: Dict[str, torch.Tensor], global_state: Dict[str, torch.Tensor],
              extras: Dict[str, Dict[str, torch.Tensor]], batches, lrs: List[float], stream=(0, 0)) -> LocalResult:
        """One local epoch: ``batches`` yields exactly len(lrs) * grad_accum micro-batches (maybe empty);
        ``extras`` are the method's plan for this client (:class:`harness.methods.objective.ClientPlan`); ``stream``
        (client, round) seeds LoRA's dropout, so a resumed round draws the same masks."""
        if not lora.has_lora(self.bundle.model):
            return self._train(start, global_state, extras, batches, lrs)
        with torch.random.fork_rng(devices=[]), self.training_mode():
            torch.manual_seed(hash_seed(self.settings.seed, *stream))
            return self._train(start, global_state, extras, batches, lrs)

    @contextmanager
    def training_mode(self):
        """LoRA dropout (and gradient checkpointing, which transformers applies in train mode) only
        while training; the shared model is back in eval mode for the evaluation hook."""
        lm = lora.language_model(self.bundle.model)
        lora.set_dropout(self.bundle.model, True)
        if self.settings.gradient_checkpointing:
            lm.train()
        try:
            yield
        finally:
            lm.eval()
            lora.set_dropout(self.bundle.model, False)

    def _train(self, start, global_state, extras, batches, lrs: List[float]) -> LocalResult:
        self.reset(start)
        accum = self.client.grad_accum
        sums = [0.0] * 4   # samples, alignment error sum, loss sum, loss batches (doubles, like float64 tensors)
        keys, started, steps = [], time.monotonic(), 0
        for i, batch in enumerate(batches):
            if i % accum == 0:
                for group, scale in zip(self.base_opt.param_groups, self.lr_scales):
                    group["lr"] = lrs[i // accum] * scale
            loss, err_sum = self.micro_step(batch, global_state, extras)
            for j, value in enumerate((len(batch), err_sum, loss * len(batch), len(batch) > 0)):
                sums[j] += value
            keys += [b.key for b in batch]
            steps += 1
            self.check_time(started)
        totals = torch.tensor(sums, dtype=torch.float64)
        if dist.get_world_size(self.group) > 1:
            dist.all_reduce(totals, group=self.group)
            keys = self.group_keys(keys)
        n = int(totals[0])
        trained = get_projector(self.bundle.model)
        return LocalResult(trained, n, float(totals[1] / max(n, 1)), float(totals[2] / max(totals[0], 1)), steps,
                           keys, self.settings.objective.uploads(start, trained, extras, lrs))

    def group_keys(self, keys: List[str]) -> List[str]:
        """Every key the group consumed, so that the leader's report covers all its ranks."""
        parts = [None] * dist.get_world_size(self.group)
        dist.all_gather_object(parts, keys, group=self.group)
        return [k for part in parts for k in part]

    def micro_step(self, batch: List[Sample], global_state, extras):
        s = self.settings
        weight = 1.0 if batch else 0.0   # an empty slice still joins the group's all-reduce
        padded = batch or [Sample("", None, "pad", PAD_TURNS)]
        inputs = self.collate(padded)
        feats = self.features(batch) if batch else self.zero_features(1)
        dev = {k: v.to(self.device) for k, v in inputs.items()}
        loss, proj, emb = self.engine(dev["input_ids"], dev["attention_mask"], dev["labels"], feats)
        if self.caption_loss_only and batch:   # (loss + 0) * 1 is loss, bit for bit: two graph nodes fewer
            self.engine.backward(loss)
        else:
            x = TermInputs(self.projector_params, proj, feats, global_state, extras, self.project_with)
            self.engine.backward((loss + s.objective.term(x)) * weight)
        clip = self.client.grad_clip
        if self.alone and clip > 0 and self.engine.is_gradient_accumulation_boundary():
            one_rank.clip_like_deepspeed(self.engine.module.parameters(), clip)
        self.engine.step()
        errors = alignment_errors(proj.detach(), emb.detach(), dev["caption_mask"], s.objective.align_metric)
        return float(loss.detach()) if batch else 0.0, float(errors.sum()) if batch else 0.0

    def collate(self, batch: List[Sample]) -> dict:
        s, b = self.settings, self.bundle
        if s.conversation:
            return conversation_batch([x.conversations for x in batch], b.tokenizer, s.template, b.image_token_id,
                                      b.num_image_tokens, s.max_text_tokens)
        return plain_batch([x.caption for x in batch], b.tokenizer, b.image_token_id, b.num_image_tokens,
                           s.max_caption_tokens)

    def project_with(self, state, feats) -> torch.Tensor:
        with torch.no_grad():
            params = {k: v.to(self.device, feats.dtype) for k, v in state.items()}
            return functional_call(projector(self.bundle.model), params, (feats,))

    def zero_features(self, n: int) -> torch.Tensor:
        cfg = self.bundle.model.config.vision_config
        return torch.zeros(n, self.bundle.num_image_tokens, cfg.hidden_size, device=self.device,
                           dtype=self.bundle.model.dtype)

    def check_time(self, started: float) -> None:
        late = time.monotonic() - started > self.settings.timeout_s
        if dist.get_world_size(self.group) > 1:   # agree, so no rank is left waiting in a collective
            flag = torch.tensor([float(late)])
            dist.all_reduce(flag, group=self.group)
            late = flag.item() > 0
        if late:
            raise ClientFailure(f"local training exceeded client_timeout_s={self.settings.timeout_s:g}")
