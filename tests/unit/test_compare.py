"""``fedma compare`` on hand-made run directories and on the committed study's runs.csv."""
import csv
import json
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.compare.run import run_compare
from harness.compare.observations import arm_label, load
from harness.compare.summaries import summarize
from harness.compare.table import compare
from harness.core.errors import ConfigError, DataError

pytestmark = pytest.mark.unit
STUDY = Path(__file__).resolve().parents[2] / "results" / "study-v1"
REQUIRED = ["method", "scenario", "metric", "summary", "n_pairs", "mean_diff", "ci_low", "ci_high", "p_perm",
            "p_holm", "p_bh", "better", "worse", "verdict"]


def write_run(path: Path, method: str, scenario: str, seed: int, losses, pope=None, hparams=None):
    """A run directory as the engine writes it: records.jsonl (held-out loss, POPE per round) + config."""
    path.mkdir(parents=True)
    base = {"run_id": path.name, "method": method, "scenario": scenario, "seed": seed, "client": "global",
            "judge": None, "config_hash": "x", "code_version": "t"}
    recs = [{**base, "round": t, "benchmark": "heldout", "metric": "caption_loss", "value": v, "n": 250}
            for t, v in enumerate(losses, 1)]
    recs += [{**base, "round": t, "benchmark": "pope", "metric": "pope_accuracy", "value": v, "n": 400}
             for t, v in enumerate(pope or [], 1)]
    (path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    cfg = {"aggregator": {"method": method, "hparams": {method: hparams or {}}}}
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))


@pytest.fixture
def sweep(tmp_path):
    """Two scenarios x three seeds; fedcmp's loss is below fedavg's by 0.1, 0.2, 0.3 (ii) and 0.1 (tt)."""
    root = tmp_path / "sweep"
    for sc, gaps in (("ii", (0.1, 0.2, 0.3)), ("tt", (0.1, 0.1, 0.1))):
        for seed, gap in enumerate(gaps):
            write_run(root / sc / "fedavg" / f"seed{seed}", "fedavg", sc, seed, [1.0, 0.8, 0.6],
                      pope=[60.0 / 100, 0.70, 0.80])
            write_run(root / sc / "fedcmp" / f"seed{seed}", "fedcmp", sc, seed, [1.0 - gap, 0.8 - gap, 0.6 - gap],
                      pope=[0.62, 0.71, 0.81])
    return root


def test_per_scenario_and_pooled_lines_by_hand(sweep):
    lines = compare(load(sweep), "fedavg", "loss", "final")
    by = {line.scenario: line for line in lines}
    assert set(by) == {"ii", "tt", "pooled"}
    assert by["ii"].n_pairs == 3 and by["ii"].mean_diff == pytest.approx(-0.2)
    assert by["ii"].p_perm == 0.25 and (by["ii"].better, by["ii"].worse) == (3, 0)
    assert by["pooled"].n_pairs == 6 and by["pooled"].mean_diff == pytest.approx(-0.15)
    assert by["pooled"].p_perm == pytest.approx(2 / 64)
    # tt's differences are all -0.1: the interval is that point
    assert by["tt"].ci_low == pytest.approx(-0.1) and by["tt"].ci_high == pytest.approx(-0.1)
    # Holm over the three lines: 2/64 x 3 = 0.094 for pooled -> cannot tell
    assert by["pooled"].p_holm == pytest.approx(3 * 2 / 64) and by["pooled"].verdict == "cannot tell"


def test_auc_and_to_threshold_by_hand(sweep):
    """AUC of fedavg's loss = (1 + .8 + .6)/3 = 0.8; ii seed 2's fedcmp 0.5. to_threshold: 95% of the
    reference's final 0.6 (a loss: 0.6 / 0.95 = 0.6316): fedavg reaches it at round 3; fedcmp's seeds
    (0.9, 0.7, 0.5), (0.8, 0.6, 0.4), (0.7, 0.5, 0.3) at rounds 3, 2, 2."""
    obs = {(o.row, o.scenario, o.seed): o for o in load(sweep)}
    assert obs[("fedavg", "ii", 0)].value("loss", "auc") == pytest.approx(0.8)
    assert obs[("fedcmp", "ii", 2)].value("loss", "auc") == pytest.approx(0.5)
    lines = compare(list(obs.values()), "fedavg", "loss", "to_threshold")
    ii = next(line for line in lines if line.scenario == "ii")
    assert ii.threshold == pytest.approx(0.6 / 0.95)
    assert ii.reference_mean == 3.0 and ii.method_mean == pytest.approx((3 + 2 + 2) / 3)


def test_benchmark_lines_carry_the_sampling_se(sweep):
    """POPE final 81% vs 80% on 400 questions: SE 100 sqrt(.81 x .19 / 400) = 1.96, so +1 point is
    within two of them."""
    line = next(x for x in compare(load(sweep), "fedavg", "pope", "final") if x.scenario == "ii")
    assert line.mean_diff == pytest.approx(1.0)
    assert line.sampling_se == pytest.approx(100 * (0.81 * 0.19 / 400) ** 0.5)
    assert line.within_noise is True


def test_summaries_by_hand():
    curve = {1: 0.5, 2: 0.7, 3: 0.6, 4: 0.9}
    assert summarize(curve, "final", True) == 0.9
    assert summarize(curve, "auc", True) == pytest.approx(0.675)
    assert summarize(curve, "best", True) == 0.9 and summarize(curve, "best", False) == 0.5
    assert summarize(curve, "oscillation", True) == pytest.approx(0.1)       # the one drop 0.7 -> 0.6
    assert summarize(curve, "to_threshold", True, threshold=0.65) == 2.0
    assert summarize(curve, "to_threshold", True, threshold=0.95) == 5.0     # never: T + 1


def test_family_file_splits_the_adjustment(sweep, tmp_path):
    family = tmp_path / "family.yaml"
    family.write_text("primary: ['fedcmp pooled']\n")
    tables = run_compare(sweep, "fedavg", ["loss"], "final", out=tmp_path / "out", family=family)
    rows = list(csv.DictReader(open(tmp_path / "out" / "compare.csv")))
    pooled = next(r for r in rows if r["scenario"] == "pooled")
    assert pooled["family"] == "primary" and float(pooled["p_holm"]) == pytest.approx(2 / 64)
    assert pooled["verdict"] == "holds"                     # lower loss at Holm p 0.031 (a family of one)
    assert {r["family"] for r in rows if r["scenario"] != "pooled"} == {"other"}
    assert set(REQUIRED) <= set(rows[0])
    assert (tmp_path / "out" / "compare.tex").read_text().count(r"\toprule") == 1 and tables


def test_arm_label_names_only_what_differs_from_the_defaults():
    assert arm_label("fedcmp", {"lam": 1.0, "opm": False}) == "fedcmp[opm=False]"
    assert arm_label("fedavg", {}, "lr2") == "fedavg+lr2"


def test_errors_are_one_line(sweep, tmp_path, capsys):
    assert main(["compare", str(sweep), "--reference", "fedprox"]) == 2
    assert "no runs of it; rows present: fedavg, fedcmp" in capsys.readouterr().err
    assert main(["compare", str(sweep), "--reference", "fedavg", "--metric", "popee"]) == 2
    assert "pope" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no run directories"):
        load(tmp_path / "empty")
    bad = tmp_path / "fam.yaml"
    bad.write_text("primary: ['fedcmp']\n")
    with pytest.raises(ConfigError, match="METHOD SCENARIO"):
        run_compare(sweep, "fedavg", ["loss"], "final", family=bad)


def independent_pairs(setting, arm, metric):
    """Hand-read from runs.csv with the csv module: {(scenario, seed): value} of one arm."""
    rows = list(csv.DictReader(open(STUDY / "runs.csv")))
    return {(r["scenario"], r["seed"]): float(r[f"final_{metric}"]) for r in rows
            if r["setting"] == setting and r["arm"] == arm}


def test_committed_study_reproduces_the_readmes_paired_numbers():
    """README: Fed-CMP minus FedAvg pooled over the four scenarios -0.030 index (12 pairs, 0/12 better);
    FedAvg+TA +0.024 (12/12). The mean is recomputed here from runs.csv independently."""
    lines = {(x.method, x.setting, x.scenario): x for x in compare(load(STUDY), "fedavg", "index", "final")}
    cmp_, ref = independent_pairs("base", "fedcmp", "index"), independent_pairs("base", "fedavg", "index")
    expected = sum(cmp_[k] - ref[k] for k in ref) / len(ref)
    pooled = lines[("fedcmp", "base", "pooled")]
    assert pooled.n_pairs == 12 and pooled.mean_diff == pytest.approx(expected) == pytest.approx(-0.030, abs=5e-4)
    assert (pooled.better, pooled.worse) == (0, 12) and pooled.p_perm == pytest.approx(2 / 4096)
    ta = lines[("fedavg_ta", "base", "pooled")]
    assert ta.mean_diff == pytest.approx(0.024, abs=5e-4) and ta.better == 12
    with pytest.raises(DataError, match="runs.csv holds only"):
        compare(load(STUDY), "fedavg", "index", "auc")
