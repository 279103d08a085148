"""The benchmark registry is the one table: config choices and defaults, the eval suite's plan, the tables'
columns and the mini sets all come from it."""
import pytest

from harness.core import benchmarks as reg

pytestmark = pytest.mark.unit


def test_consumers_read_the_registry():
    from harness.core.config import EvalConfig, load_config
    from harness.core.errors import ConfigError
    from harness.mini import bench
    from harness.report.runs import BENCHMARKS as COLUMNS, PRIMARY
    assert EvalConfig().tasks == ["mmvet", "mmbench", "seed", "pope", "mme", "mmvp"]
    assert EvalConfig().final_tasks == ["llava_bench"]
    with pytest.raises(ConfigError, match="valid: mmvet, mmbench, seed, llava_bench, pope, mme, mmvp"):
        load_config("tiny", ["eval.tasks=[mmvett]"])
    assert list(COLUMNS.values()) == ["MM-Vet", "MMBench", "SEED", "LLaVA-Bench", "POPE", "MME", "MMVP"]
    assert PRIMARY["pope"] == "pope_accuracy" and PRIMARY["mme"] == "mme_perception_score"
    assert set(bench.sets()) == {b.dataset for b in reg.BENCHMARKS.values()}
    assert list(reg.MINI_SCORED) == ["mmbench", "seed", "pope", "mme", "mmvp"]
    assert bench.CHANCE[("pope", "pope_accuracy")] == 0.5 and bench.CHANCE[("mme", "mme_perception_score")] == 300.0


def test_the_suite_plans_each_benchmark_from_its_entry():
    """Without a judge: judge-free tasks run as they are, MMBench falls back to its static variant, MM-Vet
    and LLaVA-Bench are n/a; with a reachable judge every judged task runs as itself."""
    from harness.eval.suite import plan
    without = {p.benchmark: (p.task, p.judged, p.skip) for p in plan(reg.NAMES, None, False)}
    assert without == {"mmvet": (None, False, "no judge configured"), "mmbench": ("mmbench_en_dev_static", False, None),
                       "seed": ("seedbench", False, None), "llava_bench": (None, False, "no judge configured"),
                       "pope": ("pope", False, None), "mme": ("mme", False, None), "mmvp": ("mmvp", False, None),
                       "gqa": ("gqa", False, None), "ocrvqa": ("ocrvqa", False, None)}
    judged = {p.benchmark: p.task for p in plan(reg.NAMES, object(), True) if p.judged}
    assert judged == {"mmvet": "mmvet", "mmbench": "mmbench_en_dev", "llava_bench": "llava_in_the_wild"}


def test_configured_benchmarks_without_their_data_fail_in_one_line(tmp_path, monkeypatch):
    from harness.core.config import load_config
    from harness.core.errors import ConfigError
    reg.check_data(load_config("tiny").eval)                                  # tiny: no benchmarks, nothing to check
    paper = load_config("paper").eval
    with pytest.raises(ConfigError, match=r"need eval.data_root .*fedma mini build.*eval.tasks=\[\]") as e:
        reg.check_data(paper)
    assert "\n" not in str(e.value)
    (tmp_path / "pope.parquet").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"lacks mmvet.parquet, mmbench_en_dev.parquet, seedbench.parquet, "
                                          r"mme.parquet, mmvp.parquet, llava_in_the_wild.parquet"):
        reg.check_data(load_config("paper", [f"eval.data_root={tmp_path}"]).eval)
    reg.check_data(load_config("paper", [f"eval.data_root={tmp_path}", "eval.tasks=[pope]", "eval.final_tasks=[]"]).eval)
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lmms_eval" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'fedma-harness\[eval\]'"):
        reg.check_data(load_config("paper", [f"eval.data_root={tmp_path}", "eval.tasks=[pope]"]).eval)
