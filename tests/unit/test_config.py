"""Config loading: packaged configs, overrides, and the promised one-line errors."""
import math
import subprocess
import sys

import pytest

from harness.core.config import load_config
from harness.core.errors import ConfigError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ["tiny", "mini", "paper"])
def test_packaged_configs_load(name):
    cfg = load_config(name)
    assert cfg.federation.clients == 5 and cfg.name == name


def test_overrides_and_short_forms():
    cfg = load_config("paper", ["method=fedavg_ties", "rounds=3", "seed=7", "scenario=xm", "clients=8",
                                "aggregator.fedavg_ties.density=0.5", "client.lr=2e-4",
                                "eval.tasks=[pope, mme]", "federation.clients_per_round=4"])
    assert (cfg.aggregator.method, cfg.federation.rounds, cfg.federation.seed) == ("fedavg_ties", 3, 7)
    assert (cfg.data.scenario, cfg.federation.clients, cfg.federation.clients_per_round) == ("xm", 8, 4)
    assert cfg.aggregator.hparams == {"fedavg_ties": {"density": 0.5}}
    assert cfg.aggregator.build().density == 0.5
    assert cfg.client.lr == 2e-4 and cfg.eval.tasks == ["pope", "mme"]


def test_yaml_path_and_hash(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("model: {preset: tiny}\naggregator:\n  method: fedcmp\n  fedcmp: {lam: 2.0, opm: false}\n")
    a, b = load_config(str(path)), load_config(str(path))
    assert a.hash() == b.hash() and a.aggregator.build().lam == 2.0
    assert load_config(str(path), ["rounds=4"]).hash() != a.hash()


@pytest.mark.parametrize("override, words", [
    ("federation.roundz=3", ["federation.roundz", "unknown key", "did you mean 'rounds'", "min_clients"]),
    ("rounds=ten", ["federation.rounds='ten'", "int"]),
    ("method=fedavgg", ["aggregator.method='fedavgg'", "did you mean 'fedavg'", "fedcmp"]),
    ("scenario=ij", ["data.scenario='ij'", "ii, tt, it, xm"]),
    ("aggregator.fedcmp.rwf=ful", ["aggregator.fedcmp.rwf='ful'", "did you mean 'full'"]),
    ("aggregator.fedcmp.lamb=1", ["aggregator.fedcmp.lamb", "did you mean 'lam'"]),
    ("aggregator.fedavgg.scale=1", ["aggregator.fedavgg", "did you mean 'fedavg'"]),
    ("aggregator.fedadam.eta=-1", ["aggregator.fedadam.eta=-1", "out of range"]),
    ("eval.tasks=[pope,mmee]", ["eval.tasks[1]='mmee'", "did you mean 'mme'"]),
    ("federation.clients_per_round=9", ["federation.clients_per_round=9", "[1, 5]"]),
    ("federation.min_clients=0", ["federation.min_clients=0", "[1, 5]"]),
    ("federation.server_threads=0", ["federation.server_threads=0", "out of range"]),
    ("model.preset=llava", ["model.preset='llava'", "llava-1.5-7b"]),
    ("client.zero_stage=3", ["client.zero_stage=3", "valid: 0, 1, 2"]),
    ("client=3", ["client must be a mapping"]),
    ("rounds", ["key=value"]),
])
def test_config_errors_are_one_line(override, words):
    with pytest.raises(ConfigError) as err:
        load_config("tiny", [override])
    msg = str(err.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_unknown_config_name_suggests_packaged_ones():
    with pytest.raises(ConfigError, match=r"did you mean 'tiny'.*mini, paper, tiny"):
        load_config("tinyy")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True)


def test_cli_reports_config_errors_as_one_red_line():
    res = run_cli("config", "tiny", "rounds=ten")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().splitlines() == ["error: federation.rounds='ten' must be int"]


def test_cli_help_lists_every_subcommand_without_heavy_imports():
    res = run_cli("--help")
    assert res.returncode == 0
    for cmd in ("demo", "data", "run", "sweep", "eval", "tables", "plot", "export", "config", "methods"):
        assert cmd in res.stdout
    probe = subprocess.run([sys.executable, "-c", "import sys, harness.cli, harness.core.config, harness.core.registry;"
                            "print(any(m in sys.modules for m in ('torch', 'deepspeed', 'transformers')))"],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "False"


def test_cli_config_prints_resolved_yaml_and_hash():
    res = run_cli("config", "tiny", "method=fedavg")
    assert res.returncode == 0 and "method: fedavg" in res.stdout and "# config hash: " in res.stdout


def test_hash_covers_only_values_that_differ_from_defaults():
    """Spelling out a default changes nothing; changing a value does (so new keys with defaults keep
    old runs resumable)."""
    base = load_config("tiny")
    assert load_config("tiny", ["client.grad_clip=1.0", "federation.keep_checkpoints=2"]).hash() == base.hash()
    assert load_config("tiny", ["client.grad_clip=0.5"]).hash() != base.hash()


def test_rank_zero_aggregates_with_the_asked_threads_and_restores_them():
    import torch
    from harness.engine.server import server_threads
    before = torch.get_num_threads()
    with server_threads(3):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before
    with server_threads(None):
        assert torch.get_num_threads() == len(__import__("os").sched_getaffinity(0))
    assert torch.get_num_threads() == before


def test_client_optimizer_and_schedule_come_from_the_config():
    from harness.engine.rounds import train_settings
    from harness.engine.schedule import round_lrs
    cfg = load_config("tiny", ["client.weight_decay=0.1", "client.betas=[0.8, 0.95]", "client.eps=1e-6", "client.lr=2e-3"])
    s = train_settings(cfg)
    from harness.engine.client import deepspeed_config
    params = deepspeed_config(cfg.client, s.bf16)["optimizer"]["params"]
    assert (params["weight_decay"], params["betas"], params["eps"]) == (0.1, [0.8, 0.95], 1e-6)
    # client.lr has one path, the schedule (the optimizer starts at 0 and every step's lr is set from it):
    # warmup ceil(0.03 * 20) = 1 step, so the second step is at the peak, 2e-3
    c = cfg.client
    assert params["lr"] == 0.0 and round_lrs({1: 10, 2: 10}, 1, c.schedule_scope, c.lr, c.warmup_ratio, c.scheduler)[:2] == [0.0, 2e-3]
    plan = {1: 10, 2: 10}
    cosine, linear, constant = (round_lrs(plan, 1, "federation", 1.0, 0.1, k) for k in ("cosine", "linear", "constant"))
    # warmup ceil(0.1 * 20) = 2 steps: 0, 0.5, then 1.0 at step 2; after it the decays differ
    assert cosine[:3] == linear[:3] == constant[:3] == [0.0, 0.5, 1.0]
    assert constant[3:] == [1.0] * 7 and linear[3] == pytest.approx(1 - 1 / 18) and cosine[3] == pytest.approx(
        0.5 * (1 + math.cos(math.pi / 18)))
    with pytest.raises(ConfigError, match=r"client.betas\[1\]"):
        load_config("tiny", ["client.betas=[0.9, 1.5]"])


def test_every_key_is_explained_and_a_user_yaml_layers_over_a_preset(tmp_path, capsys):
    from harness.cli import main
    from harness.core.config import descriptions
    assert all(descriptions().values()), [k for k, v in descriptions().items() if not v]
    assert main(["config", "--explain", "client.weight_decay"]) == 0
    assert capsys.readouterr().out == "client.weight_decay (default 0.0): AdamW's decoupled weight decay\n"
    assert main(["config", "--explain", "client.weight_decy"]) == 2
    assert "did you mean 'client.weight_decay'" in capsys.readouterr().err
    user = tmp_path / "mine.yaml"
    user.write_text("extends: mini\nclient: {lr: 5.0e-3}\nfederation: {rounds: 4}\n")
    cfg = load_config(str(user), ["rounds=3"])
    mini = load_config("mini")
    assert (cfg.client.lr, cfg.federation.rounds) == (5e-3, 3)                     # user YAML, then key=value
    assert (cfg.model.preset, cfg.client.batch_size, cfg.data.max_caption_tokens) == (
        "mini", mini.client.batch_size, mini.data.max_caption_tokens)             # the rest from the preset


def test_a_missing_extra_is_one_line_naming_it(monkeypatch, capsys):
    import harness.cli as cli

    def needs_pil(args):
        raise ModuleNotFoundError("No module named 'PIL'", name="PIL")
    monkeypatch.setattr(cli, "cmd_methods", needs_pil)
    assert cli.main(["methods"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: this command needs the 'train' extra (no module named 'PIL'): pip install 'fedma-harness[train]'"
