"""What a study runs: arms (a method with hyperparameters) x scenarios x seeds x settings, from a YAML.

Arms come in families, each the rows of one of the paper's comparisons:
- ``main``: the eight baselines, Fed-CMP at its defaults, Fed-CMP with the paper's literal sign OPM and
  Fed-CMP on updates (Tables 1, 2, 7, 8 and Figure 4);
- ``table3``: the module ablation (none, csc, rwf, opm, csc+rwf, csc+opm, csc+rwf+opm) under each
  reading of CSC: ``mean`` (full rank, the SPEC's default, where CSC alone is exactly FedAvg), ``ties``
  (coef_merge=ties, as KnOTS-TIES) and ``rank`` (rank truncation to ``rank`` components);
- ``table4``: RWF's components (none, mag, qua) and a sweep of lambda, with CSC and OPM on.
An arm is named by its method and the hyperparameters it changes, so the same run serving several rows
(Table 3's csc+rwf+opm under ``mean`` is Fed-CMP at its defaults) runs once.

Settings are worlds and client settings: ``base`` is the demo's; ``drift`` (a higher client learning
rate and more local data per round, where one-pass client drift can make the global model oscillate)
was fixed in the committed config before any study result was seen.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from harness.methods.arms import Arm, arm, arm_from_slug, parse_arm, yaml_value  # noqa: F401 (re-exported)
from harness.core.config import build_section
from harness.core.errors import ConfigError
from harness.core.typecheck import bad_choice

CONFIG_DIR = Path(__file__).parent / "configs"
FAMILIES = ("main", "table3", "table4")
READINGS = ("mean", "ties", "rank")
BASELINES = ("local", "fedavg", "fedadam", "fedprox", "moon", "fedavg_ta", "fedavg_ties", "fedavg_dare")


def main_rows() -> List[tuple]:
    from harness.core.registry import METHODS
    return [*((METHODS[m].pretty, arm(m)) for m in BASELINES), ("Fed-CMP", arm("fedcmp")),
            ("Fed-CMP (sign OPM)", arm("fedcmp", opm_align="sign")),
            ("Fed-CMP (updates)", arm("fedcmp", operand="updates"))]


def reading_hparams(reading: str, rank: int) -> dict:
    return {"mean": {}, "ties": {"coef_merge": "ties"}, "rank": {"rank": rank}}[reading]


def table3_rows(reading: str, rank: int) -> List[tuple]:
    r = reading_hparams(reading, rank)
    return [("none", arm("fedavg")), ("csc", arm("fedcmp", rwf="none", opm=False, **r)),
            ("rwf", arm("fedcmp", csc=False, opm=False)), ("opm", arm("fedcmp", csc=False, rwf="none")),
            ("csc+rwf", arm("fedcmp", opm=False, **r)), ("csc+opm", arm("fedcmp", rwf="none", **r)),
            ("csc+rwf+opm", arm("fedcmp", **r))]


def table4_rows(lambdas: List[float]) -> List[tuple]:
    rows = [("no_rwf", arm("fedcmp", rwf="none")), ("rwf_mag", arm("fedcmp", rwf="mag")),
            ("rwf_qua", arm("fedcmp", rwf="qua"))]
    return rows + [(f"lambda={lam}", arm("fedcmp") if lam == 1.0 else arm("fedcmp", lam=lam))
                   for lam in sorted({*lambdas, 1.0})]


@dataclass
class Setting:
    per_round: int = 256                  # samples per client per round (the cap is per_round x rounds)
    pool: int = 16000                     # image-caption pairs in the world's pool
    client_lr: Optional[float] = None     # None: the mini preset's (3e-3)
    clients: int = 5                      # K: other than 5, the clusters dealt among K by Dirichlet(alpha)
    alpha: float = 1.0                    # the Dirichlet concentration when clients != 5
    corrupt_clients: List[int] = field(default_factory=list)   # clients whose captions are mismatched
    corrupt_rate: float = 0.0             # the share of their samples mismatched (harness.data.corrupt)
    overrides: List[str] = field(default_factory=list)         # more key=value for every run of the setting

    def validate(self, key):
        if self.per_round < 1 or self.pool < 1000:
            raise ConfigError(f"{key}: per_round >= 1 and pool >= 1000 expected, got {self.per_round}, {self.pool}")


@dataclass
class Block:
    families: List[str] = field(default_factory=lambda: ["main"])
    scenarios: List[str] = field(default_factory=lambda: ["ii"])
    settings: List[str] = field(default_factory=lambda: ["base"])
    arms: Optional[List[str]] = None      # explicit arms (keys or aliases) instead of the families' rows
    seeds: Optional[List[int]] = None     # this block's seeds (default: the study's)


@dataclass
class StudyConfig:
    name: str = "study"
    rounds: int = 10
    seeds: List[int] = field(default_factory=lambda: [0, 1, 2])
    bench_scale: int = 6                  # benchmark sets this many times the demo's (statistical power)
    benchmarks: bool = True               # score the mini benchmarks every round (pilots: held-out loss only)
    rank: int = 32                        # the rank-truncation reading of CSC
    lambdas: List[float] = field(default_factory=lambda: [0.25, 0.5, 2.0, 4.0])
    readings: List[str] = field(default_factory=lambda: list(READINGS))
    arms: Optional[List[str]] = None      # restrict every family to these arms (keys; smoke runs)
    settings: Dict[str, Any] = field(default_factory=lambda: {"base": Setting()})    # name -> Setting
    blocks: List[Any] = field(default_factory=lambda: [Block()])                # of Block
    aliases: Dict[str, str] = field(default_factory=dict)    # a readable name -> an arm key (tuned values)
    comparisons: List[Dict[str, Any]] = field(default_factory=list)   # the planned claims (harness.study.claims)
    metrics: List[str] = field(default_factory=lambda: ["loss:auc", "index:auc"])   # primary METRIC:SUMMARY
    secondary_metrics: List[str] = field(default_factory=lambda: ["loss:final", "index:final"])
    plan: Dict[str, Any] = field(default_factory=dict)       # free-form: the reference, how settings were chosen
    tuning: Dict[str, Any] = field(default_factory=dict)     # fedma study --tune (harness.study.tuning)

    def arm_of(self, name: str) -> Arm:
        """An alias or an arm key as an Arm."""
        return parse_arm(self.aliases.get(name, name))

    def block_arms(self, block) -> List[Arm]:
        if block.arms is not None:
            return [self.arm_of(a) for a in block.arms]
        return list(dict.fromkeys(a for f in block.families for rows in self.family_rows(f).values()
                                  for _, a in rows))

    def where(self, family: str) -> Dict[str, List[str]]:
        """{setting: [scenarios]} where the blocks run a family, in config order."""
        out: Dict[str, List[str]] = {}
        for b in self.blocks:
            if family in b.families:
                for setting in b.settings:
                    out.setdefault(setting, [])
                    out[setting] += [sc for sc in b.scenarios if sc not in out[setting]]
        return out

    def family_rows(self, family: str) -> Dict[str, List[tuple]]:
        """{table name: [(row label, arm)]} of a family."""
        if family == "main":
            out = {"main": main_rows()}
        elif family == "table3":
            out = {f"table3_{r}": table3_rows(r, self.rank) for r in self.readings}
        else:
            out = {"table4": table4_rows(self.lambdas)}
        if self.arms:
            out = {t: [(label, a) for label, a in rows if a.key in self.arms] for t, rows in out.items()}
        return out


def load_study(name_or_path: str) -> StudyConfig:
    path = Path(name_or_path)
    if not path.suffix and (CONFIG_DIR / f"{name_or_path}.yaml").is_file():
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise bad_choice("study", name_or_path, sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")) + ["<a .yaml>"])
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:     # one line, not the parser's traceback
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(e, 'problem', e)})") from None
    settings = {k: build_section(Setting, v, f"settings.{k}") for k, v in (data.pop("settings", None) or {}).items()}
    blocks = [build_section(Block, b, f"blocks[{i}]") for i, b in enumerate(data.pop("blocks", None) or [])]
    cfg = build_section(StudyConfig, data, "")
    cfg.settings, cfg.blocks = settings or cfg.settings, blocks or cfg.blocks
    validate(cfg)
    return cfg


def validate(cfg: StudyConfig) -> None:
    from harness.data.store import METRICS
    for i, b in enumerate(cfg.blocks):
        for f in b.families:
            if f not in FAMILIES:
                raise bad_choice(f"blocks[{i}].families", f, FAMILIES)
        for s in b.scenarios:
            if s not in METRICS:
                raise bad_choice(f"blocks[{i}].scenarios", s, METRICS)
        for s in b.settings:
            if s not in cfg.settings:
                raise bad_choice(f"blocks[{i}].settings", s, cfg.settings)
    for r in cfg.readings:
        if r not in READINGS:
            raise bad_choice("readings", r, READINGS)
    for name, key in cfg.aliases.items():
        parse_arm(key)
    for i, b in enumerate(cfg.blocks):
        for a in b.arms or []:
            cfg.arm_of(a)
    if cfg.rounds < 2 or not cfg.seeds:
        raise ConfigError(f"rounds={cfg.rounds}, seeds={cfg.seeds}: a study needs rounds >= 2 and a seed")


def as_dict(cfg: StudyConfig) -> dict:
    return dataclasses.asdict(cfg)
