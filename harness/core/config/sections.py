"""The job configuration's sections: one dataclass per concern, nested in :class:`JobConfig`, each
checking itself. Each field's one-line description is the comment on its line: ``fedma config --explain
KEY`` reads them from this file (:mod:`harness.core.config.explain`), so keep them on the field's line.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional

from harness.core.errors import ConfigError
from harness.core.benchmarks import FINAL_ONLY, NAMES, PER_ROUND
from harness.core.registry import is_flower_method
from harness.core.typecheck import bad_choice, check_range

FLOWER_KEY = "flwr"       # aggregator.flwr: the keyword arguments of a flwr:<ClassName> method
Benchmark = Literal[NAMES]          # the benchmark registry's names (harness/core/benchmarks.py)


LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")   # attention and MLP


@dataclass
class LoraSettings:
    r: int = 0                            # LoRA rank on the LLM (0: no LoRA, projector-only stage 1; LLaVA-1.5: 128)
    alpha: float = 256.0                  # LoRA scaling numerator (the update is alpha/r * B A)
    dropout: float = 0.05                 # dropout on LoRA's input while a client trains
    targets: List[str] = field(default_factory=lambda: list(LORA_TARGETS))   # the LLM's linears that get adapters

    def validate(self, key):
        check_range(f"{key}.r", self.r, lo=0)
        check_range(f"{key}.alpha", self.alpha, lo=0.0, lo_open=True)
        check_range(f"{key}.dropout", self.dropout, lo=0.0, hi=1.0, hi_open=True)
        bad = [t for t in self.targets if t not in LORA_TARGETS]
        if bad or not self.targets:
            raise ConfigError(f"{key}.targets={self.targets!r}: valid names are {', '.join(LORA_TARGETS)}")


@dataclass
class ModelConfig:
    preset: Literal["tiny", "mini", "llava-1.5-7b"] = "tiny"   # tiny: random (tests); mini: Fed-MA-mini; the paper's 7B
    vision_path: Optional[str] = None     # llava-1.5-7b: CLIP ViT-L/14-336 id or local path
    llm_path: Optional[str] = None        # llava-1.5-7b: Vicuna-7B v1.5 id or local path
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"   # auto: bf16 on GPU, fp32 on CPU
    feature_cache: bool = True            # cache frozen vision features per sample
    lora: LoraSettings = field(default_factory=LoraSettings)
    gradient_checkpointing: Literal["auto", "on", "off"] = "auto"   # auto: on with LoRA on a GPU


@dataclass
class InitConfig:
    projector: Optional[str] = None       # start from a run dir's global projector (or a .safetensors); None: seeded random


@dataclass
class DataConfig:
    root: Optional[str] = None            # per-client, per-round shards (SPEC section 5 layout)
    scenario: Literal["ii", "tt", "it", "xm"] = "ii"   # the clustering scenario (records, tables; {scenario} in root)
    max_caption_tokens: int = 64          # captions are cut to this many tokens
    format: Literal["caption", "conversation"] = "caption"   # caption: pretraining pairs; conversation: LLaVA instruction records
    max_text_tokens: int = 256            # conversation: text tokens per sample (prompts and answers), cut at the end

    def validate(self, key):
        check_range(f"{key}.max_caption_tokens", self.max_caption_tokens, lo=1)
        check_range(f"{key}.max_text_tokens", self.max_text_tokens, lo=1)


@dataclass
class ClientConfig:
    lr: float = 1e-3                      # AdamW's peak learning rate (the schedule's height)
    projector_lr: Optional[float] = None  # the projector's peak lr when LoRA trains beside it (None: client.lr)
    weight_decay: float = 0.0             # AdamW's decoupled weight decay
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])   # AdamW's (beta1, beta2)
    eps: float = 1e-8                     # AdamW's epsilon
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"   # after the warmup
    warmup_ratio: float = 0.03            # linear warmup over this fraction of the schedule's steps
    grad_clip: float = 1.0                # gradient norm clipping (0: off)
    schedule_scope: Literal["federation", "round"] = "federation"   # one schedule over the stream, or per round
    batch_size: int = 32                  # micro-batch per rank
    grad_accum: int = 1                   # micro-batches per optimizer step
    zero_stage: Literal[0, 1, 2] = 2      # DeepSpeed ZeRO stage

    def validate(self, key):
        check_range(f"{key}.lr", self.lr, lo=0.0, lo_open=True)
        if self.projector_lr is not None:
            check_range(f"{key}.projector_lr", self.projector_lr, lo=0.0, lo_open=True)
        check_range(f"{key}.weight_decay", self.weight_decay, lo=0.0)
        check_range(f"{key}.eps", self.eps, lo=0.0, lo_open=True)
        if len(self.betas) != 2:
            raise ConfigError(f"{key}.betas={self.betas!r} must be two numbers [beta1, beta2]")
        for i, b in enumerate(self.betas):
            check_range(f"{key}.betas[{i}]", b, lo=0.0, hi=1.0, hi_open=True)
        check_range(f"{key}.warmup_ratio", self.warmup_ratio, lo=0.0, hi=1.0)
        check_range(f"{key}.grad_clip", self.grad_clip, lo=0.0)
        check_range(f"{key}.batch_size", self.batch_size, lo=1)
        check_range(f"{key}.grad_accum", self.grad_accum, lo=1)


@dataclass
class FederationConfig:
    clients: int = 5                      # K: clients in the federation (client_00 .. in data.root)
    rounds: int = 10                      # T: communication rounds (one pass over each client's stream)
    clients_per_round: Optional[int] = None   # None: full participation
    min_clients: int = 1                  # fewer clients left after faults stops the run
    client_timeout_s: float = 7200.0      # a client's local round past this is dropped
    seed: int = 0                         # projector init, data order, participation, DARE masks
    keep_checkpoints: int = 2             # round checkpoints kept on disk (the latest always)
    log_samples: bool = False             # write the keys each client consumed to OUT/samples/
    server_threads: Optional[int] = None  # torch threads while rank 0 aggregates; None: every allowed core
    heartbeat_s: float = 60.0             # a rank silent this long (died) stops the others with one error (0: off)
    availability: float = 1.0             # probability a sampled client is up in a round (seeded; harness.engine.availability)
    speed_spread: float = 0.0             # log-normal spread of the clients' simulated speed factors (0: all equal)
    deadline_s: Optional[float] = None    # a client whose simulated round time is past this is dropped
    secure_aggregation: bool = False      # clients upload pairwise-masked fixed-point vectors; the server sees their sum only (harness.wire)
    compression: Literal["none", "fp16", "bf16", "int8", "topk"] = "none"   # how each client encodes its update (harness.wire.compress)
    compression_block: int = 4096         # int8: entries per absmax block (bitsandbytes' quantize_blockwise default)
    topk_fraction: float = 0.01           # topk: the fraction of entries sent per tensor (the rest is fed back next round)

    def validate(self, key):
        check_range(f"{key}.clients", self.clients, lo=1)
        check_range(f"{key}.rounds", self.rounds, lo=1)
        per_round = self.clients if self.clients_per_round is None else self.clients_per_round
        check_range(f"{key}.clients_per_round", per_round, lo=1, hi=self.clients)
        check_range(f"{key}.min_clients", self.min_clients, lo=1, hi=per_round)
        check_range(f"{key}.client_timeout_s", self.client_timeout_s, lo=0.0, lo_open=True)
        if self.server_threads is not None:
            check_range(f"{key}.server_threads", self.server_threads, lo=1)
        check_range(f"{key}.heartbeat_s", self.heartbeat_s, lo=0.0)
        check_range(f"{key}.availability", self.availability, lo=0.0, hi=1.0, lo_open=True)
        check_range(f"{key}.speed_spread", self.speed_spread, lo=0.0)
        if self.deadline_s is not None:
            check_range(f"{key}.deadline_s", self.deadline_s, lo=0.0, lo_open=True)
        check_range(f"{key}.compression_block", self.compression_block, lo=1)
        check_range(f"{key}.topk_fraction", self.topk_fraction, lo=0.0, hi=1.0, lo_open=True)


@dataclass
class AggregatorConfig:
    method: str = "fedcmp"                # the server rule (fedma methods), or flwr:<ClassName> (a Flower strategy)
    hparams: Dict[str, Dict[str, Any]] = field(default_factory=dict)   # method -> {name: value}

    def validate(self, key):
        from harness.core import registry
        if not registry.is_method(self.method):
            raise bad_choice(f"{key}.method", self.method, [*registry.METHODS, "flwr:<ClassName>"])
        for method, hp in self.hparams.items():
            if method == FLOWER_KEY:
                continue          # a Flower class's arguments: checked below when one is the method
            try:
                registry.build_aggregator(method, **hp)
            except ConfigError as e:
                raise ConfigError(f"{key}.{e}") from None
        if is_flower_method(self.method):
            self.build()          # flwr missing, an unknown class or argument: one line naming the valid ones

    def build(self):
        from harness.core.registry import build_aggregator
        return build_aggregator(self.method, **self.hparams.get(hparams_key(self.method), {}))


@dataclass
class JudgeConfig:
    base_url: Optional[str] = None        # OpenAI-compatible endpoint; None: judged benchmarks are n/a
    model: str = "gpt-4o-2024-11-20"      # the judge model's name at base_url
    api_key_env: str = "OPENAI_API_KEY"   # the key itself is never stored or logged


@dataclass
class EvalConfig:
    tasks: List[Benchmark] = field(default_factory=lambda: list(PER_ROUND))    # benchmarks scored every round
    final_tasks: List[Benchmark] = field(default_factory=lambda: list(FINAL_ONLY))   # added in the final round
    data_root: Optional[str] = None       # local copies of the benchmark data (offline clusters, tests)
    every_round: bool = True              # score eval.tasks after every round (else the final round only)
    batch_size: int = 8                   # lmms-eval requests per batch
    limit: Optional[int] = None           # at most this many samples per task (smoke runs)
    max_new_tokens: Optional[int] = None  # cap on generated tokens (tasks ask for up to 1024-4096)
    per_client: bool = False              # final round: also score each client's uploaded model (Table 6's C1..C5)
    validation: Optional[str] = None      # shard dir of validation pairs, caption loss scored every round (fedma tune)


@dataclass
class SlurmResources:
    """What a job asks Slurm for; shared by a job's ``launch`` section and a cluster profile."""
    nodes: int = 1                        # Slurm nodes of one job
    gpus_per_node: int = 0                # GPUs (gres/gpu) per node; one rank per GPU
    cpus_per_task: int = 2                # CPUs per rank
    mem_gb: int = 16                      # memory per node
    time_min: int = 60                    # the job's time limit (minutes); requeued before it
    partition: Optional[str] = None       # Slurm partition (None: the cluster's default)
    account: Optional[str] = None         # Slurm account to charge
    qos: Optional[str] = None             # Slurm quality of service
    constraint: Optional[str] = None      # Slurm node feature (e.g. a100-40g)


@dataclass
class LaunchConfig(SlurmResources):
    profile: Optional[str] = None         # a cluster profile in slurm/profiles


LoggerName = Literal["tensorboard", "wandb", "mlflow"]


@dataclass
class LoggingConfig:
    """Mirrors of the record store (harness.engine.loggers); a failing backend never stops the run."""
    backends: List[LoggerName] = field(default_factory=list)   # any of tensorboard, wandb, mlflow
    project: str = "fedma"                # the W&B project and MLflow experiment
    mlflow_uri: Optional[str] = None      # an MLflow tracking server; None: a file store in RUN/mlruns


@dataclass
class PrivacyConfig:
    """Client-level DP-FedAvg (harness.engine.privacy): clip, noise, account."""
    clip: Optional[float] = None          # C: clip each client's update to this L2 norm; None: no DP
    noise_multiplier: float = 1.0         # z: the noise on the sum of clipped updates has std z * C
    delta: float = 1e-5                   # the delta epsilon is reported at

    def validate(self, key: str) -> None:
        if self.clip is not None:
            check_range(f"{key}.clip", self.clip, lo=0.0, lo_open=True)
            check_range(f"{key}.noise_multiplier", self.noise_multiplier, lo=0.0)
            check_range(f"{key}.delta", self.delta, lo=0.0, hi=1.0, lo_open=True, hi_open=True)


@dataclass
class JobConfig:
    name: str = "fedma"                   # a label for the job
    model: ModelConfig = field(default_factory=ModelConfig)
    init: InitConfig = field(default_factory=InitConfig)
    data: DataConfig = field(default_factory=DataConfig)
    client: ClientConfig = field(default_factory=ClientConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    aggregator: AggregatorConfig = field(default_factory=AggregatorConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def validate(self, key):
        from harness.core.config.wire import check_wire
        check_wire(self)
        method = self.aggregator.method
        if self.privacy.clip is None and self.model.lora.r == 0:
            return            # nothing to ask of the method (and its module, with torch, stays unimported)
        from harness.core.registry import method_class
        spec = method_class(method)
        if self.privacy.clip is not None and not spec.supports_dp:
            raise ConfigError(f"aggregator.method={method} with privacy.clip: {spec.no_dp_reason}; "
                              f"choose another rule or privacy.clip=null")
        if self.model.lora.r > 0 and not spec.supports_lora:
            raise ConfigError(f"aggregator.method={method}: {spec.no_lora_reason}; "
                              f"with model.lora.r > 0 choose another rule (the paper's: fedavg)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """A short hash of the values that differ from the built-in defaults (written into every record
        and checkpoint). Hashing only the differences keeps it stable when a later version adds a key
        with a default, so a requeued or resumed run is not refused after a harmless upgrade."""
        changed = {k: v for k, v in _flatten(self.to_dict()).items()
                   if _flatten(JobConfig().to_dict()).get(k, object()) != v}
        blob = json.dumps(changed, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def hparams_key(method: str) -> str:
    """Where a method's hyperparameters sit under ``aggregator``: its name, or ``flwr`` for every Flower class."""
    return FLOWER_KEY if is_flower_method(method) else method
