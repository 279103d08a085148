"""The mini comparison's plan (harness.study.wire): at most ~40 runs, every one a valid configuration,
every mode paired with the same method's uncompressed run in a sweep root of its own."""
from pathlib import Path

from harness.core.config import load_config
from harness.study import wire as study


def test_plan_is_small_and_every_run_is_a_valid_config():
    runs = [(m, mode) for m, modes in study.PLAN.items() for mode in modes]
    assert len(runs) * len(study.SEEDS) == 42
    for method, mode in runs:
        cfg = load_config("mini", [f"method={method}", *study.MODES[mode]])
        assert cfg.federation.secure_aggregation == (mode == "secagg")
        assert cfg.federation.compression == (mode if mode in ("int8", "topk", "fp16") else "none")
    assert all(modes[0] == "none" for modes in study.PLAN.values())


def test_each_mode_sits_beside_its_reference_as_a_sweep_variant():
    root = Path("/r")
    assert study.run_dir(root, "fedcmp", "none", 1) == root / "fedcmp" / "ii" / "fedcmp" / "seed1"
    assert study.run_dir(root, "fedcmp", "int8", 1) == root / "fedcmp" / "ii" / "fedcmp+int8" / "seed1"
