"""The study's plan, statistics and verdicts against hand-computed cases."""
import math

import pytest

from harness.study.findings import findings, verdict
from harness.study.runner import RunSpec, plan
from harness.study.spec import Block, arm, load_study, table3_rows, table4_rows
from harness.study.stats import Summary, normalized, paired
from harness.study.tables import Results

pytestmark = pytest.mark.unit


def test_the_paper_study_plans_each_run_once():
    """Main: 8 baselines + Fed-CMP + sign OPM + updates = 11 arms x 4 scenarios x 3 seeds = 132. Table 3 on
    II: rwf and opm (no CSC) + 4 CSC rows under ties and under rank + 3 under mean (its csc+rwf+opm is
    Fed-CMP) = 13; Table 4: mag, qua and lambda 0.25, 0.5, 2, 4 (no_rwf is mean's csc+opm, lambda 1 is
    Fed-CMP) = 6; 19 x 3 seeds = 57. Drift: 11 x 3 on II = 33. Total 222."""
    cfg = load_study("paper")
    specs = plan(cfg)
    assert len(specs) == len(set(specs)) == 222
    count = {s: sum(1 for x in specs if x.setting == s) for s in ("base", "drift")}
    assert count == {"base": 189, "drift": 33}
    assert dict(table3_rows("mean", 32))["csc+rwf+opm"] == arm("fedcmp") == dict(table4_rows([]))["lambda=1.0"]
    assert dict(table4_rows([]))["no_rwf"] == dict(table3_rows("mean", 32))["csc+opm"]


def test_arm_overrides_make_a_valid_config(tmp_path):
    from harness.core.config import load_config
    a = arm("fedcmp", coef_merge="ties", opm=False, rank=32)
    assert a.key == "fedcmp[coef_merge=ties,opm=False,rank=32]" and a.slug == "fedcmp__coef_merge-ties__opm-False__rank-32"
    cfg = load_config("mini", [f"data.root={tmp_path}", *a.overrides()])
    assert cfg.aggregator.hparams["fedcmp"] == {"coef_merge": "ties", "opm": False, "rank": 32}


def test_oscillation_and_index_by_hand():
    """Scores 50, 60, 55, 58, 50: drops 5 + 8 = 13. Loss 1.0, 0.8, 0.9, 0.7: rises 0.1. POPE 75% is half
    way from chance (50) to 100; MME 550 half way from chance (300) to its best (800)."""
    s = Summary({1: 1.0, 2: 0.8, 3: 0.9, 4: 0.7}, {"pope": {1: 50, 2: 60, 3: 55, 4: 58, 5: 50}})
    assert s.oscillation("pope") == pytest.approx(13.0) and s.oscillation("loss") == pytest.approx(0.1)
    assert s.final("pope") == 50 and s.final("loss") == 0.7
    assert normalized("pope", 75.0) == pytest.approx(0.5) and normalized("mme", 550.0) == pytest.approx(0.5)
    assert normalized("mmbench", 25.0) == 0.0 and normalized("seed", 100.0) == 1.0


def test_paired_t_by_hand():
    """a = (3, 5, 4), b = (1, 2, 2): d = (2, 3, 2), mean 7/3, sd sqrt(1/3), se 1/3, t = 7 with 2 df:
    p = 1 - 7 / sqrt(51) (the t(2) cdf is 1/2 + t / (2 sqrt(2 + t^2))); the 97.5% quantile of t(2) is
    0.95 / sqrt(2 * 0.975 * 0.025) = 4.3027."""
    p = paired([3, 5, 4], [1, 2, 2], higher_is_better=True)
    assert (p.n, p.wins, p.identical) == (3, 3, False)
    assert p.mean == pytest.approx(7 / 3) and p.p == pytest.approx(1 - 7 / math.sqrt(51), rel=1e-9)
    half = 0.95 / math.sqrt(2 * 0.975 * 0.025) / 3
    assert (p.low, p.high) == (pytest.approx(7 / 3 - half), pytest.approx(7 / 3 + half))
    assert paired([1, 2, 3], [1, 2, 3], True).identical and paired([1, None, 3], [0, 5, 1], True).n == 2


def test_verdicts():
    p = paired([3, 5, 4], [1, 2, 2], higher_is_better=True)
    assert verdict(p, True) == "holds" and verdict(p, False) == "does not hold (reversed)"
    assert verdict(paired([1, 2], [1, 2], True), True) == "does not hold (identical)"
    assert verdict(paired([1, 2, 3], [2, 1, 3.1], True), True) == "cannot tell" and verdict(None, True) == "not run"


def test_findings_from_hand_made_summaries():
    """Fed-CMP's index 0.1 above FedAvg's on every seed give 'beats FedAvg: holds'; its curve drops less."""
    cfg = load_study("paper")            # the committed 3-seed study's rules, its main block on II only
    cfg.arms, cfg.readings, cfg.lambdas = ["fedavg", "fedcmp"], ["mean"], []
    cfg.blocks = [Block(families=["main"], scenarios=["ii"], settings=["base"])]
    summaries = {}
    for seed in cfg.seeds:
        for a, lift in ((arm("fedavg"), 0.0), (arm("fedcmp"), 0.1 + 0.01 * seed)):
            index = {1: 0.2 + lift, 2: 0.1 + lift, 3: 0.3 + lift} if a.method == "fedavg" else \
                {1: 0.2 + lift, 2: 0.25 + lift, 3: 0.3 + lift}
            summaries[RunSpec("base", "ii", seed, a)] = Summary({1: 1.0, 2: 0.9 - lift, 3: 0.8 - lift}, {}, index)
    rows = {(r["claim"], r["comparison"]): r for r in findings(Results(cfg, summaries))}
    beats = rows[("beats FedAvg", "Fed-CMP vs FedAvg")]
    assert beats["index"]["verdict"] == "holds" and beats["index"]["mean"] == pytest.approx(0.11)
    assert beats["loss"]["verdict"] == "holds"
    smooth = rows[("smoothest", "Fed-CMP vs FedAvg")]["index"]    # FedAvg drops 0.1 in round 2, Fed-CMP never
    assert smooth["mean"] == pytest.approx(-0.1) and smooth["verdict"] == "holds"


def test_tuning_refuses_evaluation_seeds():
    """A study's tuning seeds must not be among the seeds of any of its blocks."""
    from harness.core.errors import ConfigError
    from harness.study.tuning import tuning_config
    cfg = load_study("smoke")
    cfg.tuning = {"methods": ["fedavg"], "trials": 2, "seeds": [1, 1000]}
    with pytest.raises(ConfigError, match=r"tuning.seeds \[1\] are evaluation seeds"):
        tuning_config(cfg)
    cfg.tuning = {"methods": ["fedavg"]}
    with pytest.raises(ConfigError, match="needs"):
        tuning_config(cfg)


def test_planned_comparisons_families_and_holm_by_hand():
    """Six seeds; A's loss is 0.1 below B's on every pair (p = 2/64) and C equals A. The primary family has
    one line (A vs B, auc) and keeps p = 2/64 after Holm: holds; the regimes family's line (C vs A,
    oscillation, the comparison's own metric) is an identity: does not hold; the two final-loss lines form
    the secondary family, adjusted together (2 x 2/64 for A vs B)."""
    from harness.compare.observations import Observation
    from harness.study.claims import planned_lines
    cfg = load_study("smoke")
    cfg.aliases = {"A": "fedcmp", "B": "fedavg", "C": "fedavg_ta"}
    cfg.seeds, cfg.blocks = list(range(6)), [Block(families=[], arms=["A", "B", "C"])]
    cfg.metrics, cfg.secondary_metrics = ["loss:auc"], ["loss:final"]
    cfg.comparisons = [{"claim": "A beats B", "a": "A", "b": "B", "setting": "base", "family": "primary"},
                       {"claim": "C smoother", "a": "C", "b": "A", "setting": "base", "family": "regimes",
                        "metrics": ["loss:oscillation"]}]
    obs = []
    for seed in range(6):
        base = {1: 1.0, 2: 0.8 + 0.01 * seed, 3: 0.6}
        obs.append(Observation("fedavg", "base", "ii", seed, {"loss": base}))
        better = {t: v - 0.1 for t, v in base.items()}
        obs += [Observation("fedcmp", "base", "ii", seed, {"loss": better}),
                Observation("fedavg_ta", "base", "ii", seed, {"loss": dict(better)})]
    got = {(claim, line.metric, line.summary, line.family): line for claim, _, line in planned_lines(cfg, obs)}
    primary = got[("A beats B", "loss", "auc", "primary")]
    assert primary.mean_diff == pytest.approx(-0.1) and primary.p_holm == pytest.approx(2 / 64)
    assert primary.verdict == "holds"
    same = got[("C smoother", "loss", "oscillation", "regimes")]
    assert same.mean_diff == 0.0 and same.verdict == "does not hold"
    assert {k[3] for k in got if k[2] == "final"} == {"secondary"}
    secondary = [line for k, line in got.items() if k[3] == "secondary"]
    assert all(line.p_holm == pytest.approx(min(1.0, 2 * line.p_perm)) for line in secondary if line.p_perm < 1)


def test_a_study_file_that_is_not_yaml_is_one_line(tmp_path):
    from harness.core.errors import ConfigError
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntuning: `fedma study`\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line 2, column 9 is not valid YAML") as e:
        load_study(str(bad))
    assert "\n" not in str(e.value)


def test_the_powered_plan_runs_each_arm_once_and_names_only_planned_arms():
    """265 runs: 2 arms x 4 scenarios x 10 seeds, 9 x 10 and 5 x 5 on II, 4 x 10 oscillating, 3 x 10 quality;
    every comparison's arms run in its setting (else it could never be evaluated)."""
    cfg = load_study("powered")
    runs = plan(cfg)
    assert len(runs) == 80 + 90 + 25 + 40 + 30 == len({(r.arm.key, r.setting, r.scenario, r.seed) for r in runs})
    # arm by arm within a block: the ablations start with all ten seeds of Fed-CMP -RWF, then -OPM
    assert [(r.arm.key, r.seed) for r in runs[80:100]] == \
        [(cfg.arm_of(name).key, seed) for name in ("Fed-CMP -RWF", "Fed-CMP -OPM") for seed in range(10)]
    for c in cfg.comparisons:
        ran = {r.arm.key for r in runs if r.setting == c["setting"]}
        assert {cfg.arm_of(c["a"]).key, cfg.arm_of(c["b"]).key} <= ran, c["claim"]


def test_an_archived_run_counts_as_finished_where_its_run_folder_is_gone(tmp_path):
    """A study continued on a fresh checkout: the committed records (OUT/records) stand for the runs."""
    import io

    from rich.console import Console

    from harness.study.runner import archive_path, run_study
    cfg = load_study("powered")
    first, second = plan(cfg)[:2]
    archive_path(tmp_path, first).parent.mkdir(parents=True)
    archive_path(tmp_path, first).write_bytes(b"")
    (second.path(tmp_path) / "final").mkdir(parents=True)
    (second.path(tmp_path) / "final" / "projector.safetensors").write_bytes(b"")
    text = io.StringIO()
    run_study(cfg, tmp_path, 2, Console(file=text, width=200), dry_run=True)
    assert "265 runs, 2 finished, 263 to run" in text.getvalue()


def test_unevaluated_lines_count_in_holm_as_p_one():
    """p = 0.01 and 0.04 in a family of four planned lines, two without data: Holm 4 x 0.01 = 0.04 and
    3 x 0.04 = 0.12; BH 4 x 0.01 / 1 = 0.04 and 4 x 0.04 / 2 = 0.08 (against 0.02 / 0.04 and 0.02 / 0.04
    in a family of two)."""
    from harness.compare.table import Line, adjust
    lines = [Line("a", "base", "ii", "loss", "auc", 6, -0.1, -0.2, 0.0, p, family="primary", diffs=(-0.1,))
             for p in (0.01, 0.04)]
    adjust(lines, {"primary": 2})
    assert [ln.p_holm for ln in lines] == pytest.approx([0.04, 0.12])
    assert [ln.p_bh for ln in lines] == pytest.approx([0.04, 0.08])


def test_a_study_cut_short_evaluates_only_finished_comparisons_over_the_planned_family():
    """The powered plan with only its first block finished, Fed-CMP 0.1 below FedAvg on loss and above on the
    index on every pair: the main claim's 10 primary lines (4 scenarios + pooled, 2 metrics) are evaluated,
    the other three primary comparisons (2 lines each) are not. Each scenario line has p = 2/1024 (10 pairs,
    all one way); the two pooled lines' p is far smaller and takes Holm's ranks 1-2, so with the planned 16
    lines the scenario lines' Holm p is 14 x 2/1024 (it would be 8 x 2/1024 over the 10 evaluated lines).
    A comparison with one of its 20 runs missing is not evaluated either."""
    from harness.compare.observations import Observation
    from harness.study.claims import planned_lines, unevaluated
    cfg = load_study("powered")
    fedavg, fedcmp = cfg.arm_of("FedAvg").key, cfg.arm_of("Fed-CMP").key
    obs = []
    for scenario in ("ii", "tt", "it", "xm"):
        for seed in range(10):
            loss, index = {1: 1.0, 2: 0.8 + 0.01 * seed}, {1: 0.2, 2: 0.3 + 0.01 * seed}
            obs.append(Observation(fedavg, "base", scenario, seed, {"loss": loss, "index": index}))
            obs.append(Observation(fedcmp, "base", scenario, seed, {"loss": {t: v - 0.1 for t, v in loss.items()},
                                                                    "index": {t: v + 0.1 for t, v in index.items()}}))
    obs += [Observation(cfg.arm_of("Fed-CMP -RWF").key, "base", "ii", seed, {"loss": {1: 1.0}, "index": {1: 0.2}})
            for seed in range(9)]
    primary = [line for _, _, line in planned_lines(cfg, obs) if line.family == "primary"]
    assert len(primary) == 10 and {line.method for line in primary} == {fedcmp}
    scenario_lines = [line for line in primary if line.scenario != "pooled"]
    assert [line.p_holm for line in scenario_lines] == pytest.approx([14 * 2 / 1024] * 8)
    assert all(line.verdict == "holds" for line in primary)
    missing = {m["claim"]: (m["finished"], m["planned"]) for m in unevaluated(cfg, obs)}
    assert len(missing) == len(cfg.comparisons) - 1 and missing["RWF helps (Fed-CMP vs without RWF)"] == (19, 20)


def test_verify_takes_runs_across_blocks_and_arms(tmp_path):
    """--verify 3 with FedAvg (seeds 0, 1) and Fed-CMP (seed 0) of the main block and Fed-CMP -RWF (seed 0) of
    the ablations archived: FedAvg seed 0, then the ablations' first, then Fed-CMP seed 0 (a third arm, not
    FedAvg's second seed)."""
    from harness.study.evidence import chosen
    from harness.study.runner import archive_path
    cfg = load_study("powered")
    specs = [RunSpec("base", "ii", seed, cfg.arm_of(name)) for name, seed in
             (("FedAvg", 0), ("FedAvg", 1), ("Fed-CMP", 0), ("Fed-CMP -RWF", 0))]
    for spec in specs:
        archive_path(tmp_path, spec).parent.mkdir(parents=True, exist_ok=True)
        archive_path(tmp_path, spec).write_bytes(b"")
    assert chosen(cfg, tmp_path, 3) == [specs[0], specs[3], specs[2]]


def test_two_claims_on_the_same_arms_share_their_secondary_lines():
    """'A beats B' (AUC) and 'A smoother than B' (oscillation) on the same pairs: the final loss, a secondary
    metric of both, is one hypothesis: one secondary line, under the first claim, alone in its family."""
    from harness.compare.observations import Observation
    from harness.study.claims import planned_lines
    cfg = load_study("smoke")
    cfg.metrics, cfg.secondary_metrics = ["loss:auc"], ["loss:final"]
    cfg.comparisons = [{"claim": claim, "a": "Fed-CMP", "b": "FedAvg", "setting": "base", "family": "regimes",
                        **extra} for claim, extra in (("beats", {}), ("smoother", {"metrics": ["loss:oscillation"]}))]
    obs = [Observation(row, "base", "ii", seed, {"loss": {1: 1.0, 2: 0.5 - lift * (1 + seed)}})
           for seed in (0, 1) for row, lift in (("fedavg", 0.0), ("fedcmp", 0.1))]
    got = [(claim, line.metric, line.summary, line.family) for claim, _, line in planned_lines(cfg, obs)]
    assert got == [("beats", "loss", "auc", "regimes"), ("beats", "loss", "final", "secondary"),
                   ("smoother", "loss", "oscillation", "regimes")]
    final = [line for _, _, line in planned_lines(cfg, obs) if line.summary == "final"][0]
    assert final.p_holm == final.p_perm == 0.5
