"""Every config key is read by the code that it configures, found by following the config object through
the source (tests/unit/config_reach.py): a key nothing reads would be hashed and silently ignored."""
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import harness.core.config.sections
from harness.core.config import JobConfig
from tests.unit.config_reach import package_sources, unread_keys

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_every_config_key_has_a_consumer():
    assert unread_keys(JobConfig, package_sources(ROOT)) == [], "config keys nothing reads"


def test_a_key_nothing_reads_fails_the_check(monkeypatch):
    """Three keys added to the real config whose names the code does read, but on other objects
    (``bundle.model``, ``self.model.dtype``, ``args.seed``): a name match anywhere would pass them."""
    judge = dataclasses.make_dataclass("JudgeConfig", [("seed", int, 0), ("dtype", str, "auto")],
                                       bases=(harness.core.config.sections.JudgeConfig,))
    privacy = dataclasses.make_dataclass("PrivacyConfig", [("model", str, "gaussian")],
                                         bases=(harness.core.config.sections.PrivacyConfig,))
    monkeypatch.setattr(harness.core.config.sections, "JudgeConfig", judge)   # JobConfig's hints resolve to these
    monkeypatch.setattr(harness.core.config.sections, "PrivacyConfig", privacy)
    sources = package_sources(ROOT)
    assert all(re.search(rf"\.{name}\b", "\n".join(sources.values())) for name in ("seed", "dtype", "model"))
    assert unread_keys(JobConfig, sources) == ["judge.seed", "judge.dtype", "privacy.model"]


@dataclass
class Judge:
    model: str = "m"
    url: str = "u"


@dataclass
class Privacy:
    clip: float = 1.0
    delta: float = 1e-5
    noise: float = 1.0


@dataclass
class Launch:
    nodes: int = 1
    gpus: int = 0


@dataclass
class Cfg:
    judge: Judge = field(default_factory=Judge)
    privacy: Privacy = field(default_factory=Privacy)
    launch: Launch = field(default_factory=Launch)


SOURCE = '''
def ask(cfg, bundle):
    j = cfg.judge                  # an alias of the section
    return j.model, bundle.url     # judge.model read; .url on another object is not judge.url

def account(cfg):
    return epsilon(cfg.privacy, 3), getattr(cfg.privacy, "noise")

def epsilon(p, rounds):            # p receives cfg.privacy at the call above
    return p.delta * rounds

def submit(launch: "Launch"):      # annotated with the section's class
    return asdict(launch)          # read whole
'''


def test_reach_follows_aliases_calls_annotations_and_whole_sections():
    """Worked by hand: read are judge.model (alias), privacy.delta (call), privacy.noise (getattr) and
    launch.* (asdict); judge.url is only read on ``bundle`` and privacy.clip nowhere."""
    assert unread_keys(Cfg, {"a.py": SOURCE}) == ["judge.url", "privacy.clip"]
    assert unread_keys(Cfg, {"a.py": SOURCE.replace("j.model", "j_model")}) == ["judge.model", "judge.url",
                                                                               "privacy.clip"]
