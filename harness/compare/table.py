"""The comparison table: every row against the reference, per scenario and pooled, with adjusted p.

For one metric and one summary, each row that is not the reference gets, per (setting, scenario) and
pooled over a setting's scenarios (scenario ``pooled``, when it has several): the pairs (same setting,
scenario and seed), d_i = row - reference, and the statistics of :mod:`harness.compare.stats`. The
family for the multiplicity adjustment is every line of the table unless a family file names lines
(see :func:`read_families`); a line no declared family names is adjusted within a family "other".
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional

from harness.compare import stats
from harness.compare.observations import Observation, higher_is_better
from harness.compare.summaries import default_threshold, summary_higher_is_better
from harness.core.errors import ConfigError

POOLED = "pooled"
FIELDS = ("method", "setting", "scenario", "metric", "summary", "n_pairs", "mean_diff", "ci_low", "ci_high",
          "p_perm", "p_holm", "p_bh", "better", "worse", "verdict", "family", "reference_mean", "method_mean",
          "sampling_se", "within_noise", "threshold")


@dataclass
class Line:
    method: str
    setting: str
    scenario: str
    metric: str
    summary: str
    n_pairs: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_perm: float
    p_holm: float = 1.0
    p_bh: float = 1.0
    better: int = 0
    worse: int = 0
    verdict: str = ""
    family: str = "all"
    reference_mean: float = 0.0
    method_mean: float = 0.0
    sampling_se: Optional[float] = None     # one run's question-sampling SE (benchmarks, final/auc)
    within_noise: Optional[bool] = None     # |mean_diff| < 2 sampling SEs
    threshold: Optional[float] = None       # to_threshold: the value each run must reach
    diffs: tuple = ()

    def as_row(self) -> dict:
        row = asdict(self)
        row.pop("diffs")
        return row


def compare(observations: List[Observation], reference: str, metric: str, summary: str,
            threshold: Optional[float] = None, families: Optional[Dict[str, List[tuple]]] = None) -> List[Line]:
    """Every line of the table for ``metric`` and ``summary`` (rows in first-seen order)."""
    rows = list(dict.fromkeys(o.row for o in observations))
    if reference not in rows:
        raise ConfigError(f"--reference {reference}: no runs of it; rows present: {', '.join(rows)}")
    higher = summary_higher_is_better(summary, higher_is_better(metric))
    by_key = {(o.row, o.pair_key): o for o in observations}
    settings = list(dict.fromkeys(o.setting for o in observations))
    lines = []
    for row in (r for r in rows if r != reference):
        for setting in settings:
            per_scenario = []
            for scenario in dict.fromkeys(o.scenario for o in observations if o.setting == setting):
                cut = _threshold(observations, reference, setting, scenario, metric, summary, threshold)
                pairs = _pairs(by_key, row, reference, setting, scenario, metric, summary, cut)
                if pairs:
                    per_scenario.append((scenario, pairs, cut))
                    lines.append(_line(row, setting, scenario, metric, summary, pairs, higher, cut))
            if len(per_scenario) > 1:
                lines.append(_line(row, setting, POOLED, metric, summary,
                                   [p for _, pairs, _ in per_scenario for p in pairs], higher, None,
                                   strata=[sc for sc, pairs, _ in per_scenario for _ in pairs]))
    for line in lines:
        line.family = _family_of(line, families)
    adjust(lines)
    return lines


def _threshold(observations, reference, setting, scenario, metric, summary, given):
    if summary != "to_threshold":
        return None
    if given is not None:
        return given
    finals = [o.value(metric, "final") for o in observations
              if o.row == reference and o.setting == setting and o.scenario == scenario]
    return default_threshold(finals, higher_is_better(metric))


def _pairs(by_key, row, reference, setting, scenario, metric, summary, cut) -> List[tuple]:
    """[(method value, reference value, method's sampling SE)] over the seeds both have, seed order."""
    out = []
    mine = [o for (r, key), o in by_key.items() if r == row and key[:2] == (setting, scenario)]
    for o in sorted(mine, key=lambda o: str(o.seed)):
        ref = by_key.get((reference, o.pair_key))
        a = o.value(metric, summary, cut)
        b = ref.value(metric, summary, cut) if ref else None
        if a is not None and b is not None:
            out.append((a, b, o.sampling_se(metric, summary)))
    return out


def _line(row, setting, scenario, metric, summary, pairs, higher, cut, strata=None) -> Line:
    d = [a - b for a, b, _ in pairs]
    low, high = stats.bootstrap_interval(d, strata)
    better, worse = stats.better_worse(d, higher)
    ses = [s for _, _, s in pairs if s is not None]
    se = sum(ses) / len(ses) if len(ses) == len(pairs) else None
    mean = sum(d) / len(d)
    return Line(row, setting, scenario, metric, summary, len(d), mean, low, high, stats.sign_flip_p(d),
                better=better, worse=worse, reference_mean=sum(b for _, b, _ in pairs) / len(pairs),
                method_mean=sum(a for a, _, _ in pairs) / len(pairs), sampling_se=se,
                within_noise=None if se is None else abs(mean) < 2 * se, threshold=cut, diffs=tuple(d))


def adjust(lines: List[Line], unevaluated: Optional[Dict[str, int]] = None) -> None:
    """Holm and BH within each line's family, and each line's verdict in its own metric's direction.

    ``unevaluated`` counts, per family, planned lines that have no data (a study cut short): they enter the
    adjustment as p = 1, so the family keeps its planned size and no adjusted p falls below what the whole
    family would give."""
    for family in dict.fromkeys(line.family for line in lines):
        members = [line for line in lines if line.family == family]
        absent = [1.0] * (unevaluated or {}).get(family, 0)
        holm = stats.holm([m.p_perm for m in members] + absent)
        bh = stats.benjamini_hochberg([m.p_perm for m in members] + absent)
        for m, ph, pb in zip(members, holm, bh):
            m.p_holm, m.p_bh = ph, pb
            m.verdict = stats.verdict(m.diffs, ph, summary_higher_is_better(m.summary, higher_is_better(m.metric)))


def _family_of(line: Line, families) -> str:
    if not families:
        return "all"
    for name, members in families.items():
        for method, scenario, setting in members:
            if method == line.method and scenario == line.scenario and setting in (None, line.setting):
                return name
    return "other"


def read_families(path) -> Dict[str, List[tuple]]:
    """A family file: YAML ``{family: ["METHOD SCENARIO [SETTING]", ...]}`` (SCENARIO may be ``pooled``)."""
    import yaml
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--family {path}: no such file")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ConfigError(f"--family {path}: expected a mapping of family name to a list of "
                          f"'METHOD SCENARIO [SETTING]' lines")
    out = {}
    for name, members in data.items():
        out[str(name)] = []
        for item in members:
            words = str(item).split()
            if len(words) not in (2, 3):
                raise ConfigError(f"--family {path}: {name}: {item!r} is not 'METHOD SCENARIO [SETTING]'")
            out[str(name)].append((words[0], words[1].lower(), words[2] if len(words) == 3 else None))
    return out
