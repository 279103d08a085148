"""The config hash of every packaged config (and a few with overrides) is the one the code before the
config package split computed (commit 1be2a48, harness/config.py): a resumed or requeued run of an older
config is not refused after the restructuring. The values are that commit's output, not this code's."""
import pytest

from harness.core.config import load_config, packaged_configs

pytestmark = pytest.mark.unit

BEFORE = {"instruct-mini": "c4ee0d9c7b44a01d", "instruct-paper": "382df2e782c3fbe3", "instruct-tiny": "487884bfe285c2ab",
          "mini": "05e530eb4ece6bd6", "paper": "b3403cf635bef477", "tiny": "9691dc7b9cce274f"}
WITH_OVERRIDES = [("tiny", ["method=fedavg_ties", "aggregator.fedavg_ties.density=0.3"], "4e7de371229f64f2"),
                  ("mini", ["method=fedavg", "privacy.clip=1.0"], "f57fb73eb561d072"),
                  ("instruct-tiny", ["client.projector_lr=0.002", "client.lr=0.0005"], "611c34a56bc82f47"),
                  ("paper", ["method=fedcmp", "aggregator.fedcmp.lam=0.5", "rounds=3"], "b1b5488bfed09a1c")]


def test_every_packaged_config_hashes_as_before():
    assert {name: load_config(name).hash() for name in packaged_configs()} == BEFORE


@pytest.mark.parametrize("name, overrides, expected", WITH_OVERRIDES)
def test_overridden_configs_hash_as_before(name, overrides, expected):
    assert load_config(name, overrides).hash() == expected
