"""The statistics of ``fedma compare`` against scipy and hand-worked cases (SPEC section 7)."""
import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from harness.compare import stats
from harness.eval.sampling import index_se, sampling_se

pytestmark = pytest.mark.unit


def exact_by_convolution(d) -> float:
    """The exact sign-flip p of integer differences from the null distribution of sum(s d), built by
    convolving each pair's two values +d_i and -d_i (independent of the enumeration under test)."""
    dist = {0: 1}
    for x in d:
        nxt = {}
        for s, c in dist.items():
            for v in (s + x, s - x):
                nxt[v] = nxt.get(v, 0) + c
        dist = nxt
    return sum(c for s, c in dist.items() if abs(s) >= abs(d.sum())) / 2 ** d.size


def test_three_positive_pairs_can_never_go_below_a_quarter():
    """d = (1, 2, 3): of the 8 sign patterns only +++ and --- reach |mean| = 2, so p = 2/8."""
    assert stats.sign_flip_p([1.0, 2.0, 3.0]) == 0.25


def test_sign_flip_by_hand():
    """d = (1, -1, 2), |mean| = 2/3: the sums of s.d over the 8 patterns are 2, 4, 0, -2, 2, 0, -4, -2
    (s1 s2 s3 = +++, +-+, -++, --+, ++-, +--, -+-, ---); |sum| >= 2 in 6 of them: p = 6/8."""
    assert stats.sign_flip_p([1.0, -1.0, 2.0]) == 0.75


def test_all_zero_differences_give_p_one():
    assert stats.sign_flip_p([0.0, 0.0, 0.0, 0.0]) == 1.0


@pytest.mark.parametrize("seed,n", [(0, 5), (1, 8), (2, 11), (3, 13)])
def test_exact_sign_flip_equals_scipy_permutation_test(seed, n):
    """scipy's exact paired permutation test (a one-sample sign flip, two-sided)."""
    d = np.random.default_rng(seed).normal(0.3, 1.0, n)
    ref = sps.permutation_test((d,), np.mean, permutation_type="samples", alternative="two-sided",
                               n_resamples=np.inf).pvalue
    assert stats.sign_flip_p(d) == pytest.approx(ref, abs=1e-12)


def test_exact_path_at_twenty_pairs_equals_a_convolution():
    """n = 20 integer differences: the null distribution of sum(s d) by convolving each pair's +-d_i, an
    independent exact computation (and the enumeration's largest size)."""
    d = np.array([3, -1, 4, 1, -5, 9, 2, 6, -5, 3, 5, 8, -9, 7, 9, 3, 2, 3, 8, 4])
    exact = exact_by_convolution(d)
    assert stats.sign_flip_p(d.astype(float)) == pytest.approx(exact, abs=1e-15)


def test_monte_carlo_beyond_twenty_is_within_its_error_of_the_exact_p():
    """n = 24: the seeded Monte Carlo p within 4 standard errors of the exact p (convolution)."""
    d = np.array([1, 2, -1, 3, 1, -2, 2, 1, 0, 1, 2, -1, 1, 1, 3, -2, 1, 0, 2, -1, 1, -1, 2, 1])
    exact = exact_by_convolution(d)
    p = stats.sign_flip_p(d.astype(float))
    assert abs(p - exact) < 4 * math.sqrt(exact * (1 - exact) / stats.MC_DRAWS) + 1e-5
    assert p == stats.sign_flip_p(d.astype(float))          # seeded


def test_bootstrap_interval_near_scipy_percentile_bootstrap():
    """Same method, different random streams: the ends agree within a few Monte Carlo errors."""
    d = np.random.default_rng(5).normal(1.0, 2.0, 12)
    low, high = stats.bootstrap_interval(d)
    ref = sps.bootstrap((d,), np.mean, method="percentile", n_resamples=10_000, random_state=7).confidence_interval
    assert low == pytest.approx(ref.low, abs=0.08) and high == pytest.approx(ref.high, abs=0.08)
    assert low < d.mean() < high


def test_bootstrap_of_constant_differences_is_a_point():
    assert stats.bootstrap_interval([0.5] * 6) == (0.5, 0.5)


def test_stratified_bootstrap_keeps_each_stratum_size():
    """Two strata of constant differences (three 1s, three 3s): a resample within strata always has mean
    2, so the interval is the point 2; pooling without strata spreads it."""
    d, strata = [1.0, 1.0, 1.0, 3.0, 3.0, 3.0], ["ii"] * 3 + ["tt"] * 3
    assert stats.bootstrap_interval(d, strata) == (2.0, 2.0)
    low, high = stats.bootstrap_interval(d)
    assert low < 2.0 < high


def test_holm_by_hand():
    """p = (0.01, 0.04, 0.03, 0.005), m = 4; sorted 0.005, 0.01, 0.03, 0.04 -> 4x0.005 = 0.02,
    max(0.02, 3x0.01) = 0.03, max(0.03, 2x0.03) = 0.06, max(0.06, 1x0.04) = 0.06."""
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one():
    assert stats.holm([0.5, 0.9]) == [1.0, 1.0]


def test_benjamini_hochberg_by_hand_and_against_scipy():
    """Sorted 0.005, 0.01, 0.03, 0.04: m p / j = 0.02, 0.02, 0.04, 0.04 (already monotone)."""
    p = [0.01, 0.04, 0.03, 0.005]
    assert stats.benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    rand = np.random.default_rng(3).uniform(0, 0.2, 17)
    assert stats.benjamini_hochberg(rand) == pytest.approx(sps.false_discovery_control(rand, method="bh").tolist())


@pytest.mark.parametrize("d,p,higher,expected", [
    ([0.1, 0.2, 0.3], 0.01, True, "holds"),
    ([0.1, 0.2, 0.3], 0.01, False, "does not hold"),        # a loss that went up
    ([-0.1, -0.2, -0.3], 0.01, False, "holds"),
    ([0.1, -0.2, 0.3], 0.2, True, "cannot tell"),
    ([0.0, 0.0, 0.0], 1.0, True, "does not hold"),           # an identity
])
def test_verdict(d, p, higher, expected):
    assert stats.verdict(d, p, higher) == expected


def test_better_worse_counts_ties_as_neither():
    assert stats.better_worse([0.1, 0.0, -0.2, 0.3], True) == (2, 1)
    assert stats.better_worse([0.1, 0.0, -0.2, 0.3], False) == (1, 2)


def test_binomial_sampling_se_by_hand():
    """POPE at 80% on 400 questions: 100 sqrt(0.8 x 0.2 / 400) = 2.0 points."""
    assert sampling_se("pope", 80.0, 400) == pytest.approx(2.0)
    assert sampling_se("pope", None, 400) is None and sampling_se("pope", 50.0, 0) is None


def test_mme_sampling_se_matches_a_simulation():
    """The mini MME (4 categories, best 800) with 384 questions answered independently at accuracy 0.7:
    the standard deviation of the perception score over 20,000 simulated sets is the formula's SE."""
    rng = np.random.default_rng(0)
    q, n, cats = 0.7, 384, 4
    images = n // cats // 2
    right = rng.random((20_000, cats, images, 2)) < q
    acc = right.mean(axis=(2, 3))
    acc_plus = right.all(axis=3).mean(axis=2)
    scores = 100.0 * (acc + acc_plus).sum(axis=1)
    expected_score = cats * 100.0 * (q + q * q)
    assert sampling_se("mme", expected_score, n) == pytest.approx(scores.std(), rel=0.03)


def test_index_se_propagates():
    """Two benchmarks with SE 3 and 4 over spans 50 and 100: sqrt(0.06^2 + 0.04^2) / 2."""
    assert index_se({"a": 3.0, "b": 4.0}, {"a": 50.0, "b": 100.0}) == pytest.approx(math.sqrt(0.0036 + 0.0016) / 2)
    assert index_se({"a": None}, {"a": 1.0}) is None


def test_exact_enumeration_agrees_with_itertools_on_a_small_case():
    d = np.array([0.3, -0.1, 0.7, 0.2, -0.4, 0.05])
    count = sum(abs(np.dot(s, d)) / d.size >= abs(d.mean()) - 1e-12
                for s in itertools.product([1, -1], repeat=d.size))
    assert stats.sign_flip_p(d) == count / 2 ** d.size


def test_seeds_needed_by_hand():
    """sd 0.015, delta 0.01, alpha 0.05, power 0.8: (1.95996 + 0.84162)^2 x 1.5^2 = 17.66 -> 18 pairs;
    a huge effect still needs the sign-flip floor: 6 pairs (2/2^6 = 0.031 < 0.05; 2/2^5 = 0.0625 is not)."""
    from harness.compare.power import seeds_needed, sign_flip_floor
    assert seeds_needed(0.015, 0.01) == 18
    assert seeds_needed(0.001, 1.0) == 6 == sign_flip_floor(0.05)
    assert sign_flip_floor(0.005) == 9                     # 2/512 = 0.0039 < 0.005 < 2/256


def test_within_sd_by_hand():
    """(1, 2, 3) and (10, 12) around their own means: squares 1+0+1 and 1+1, 2 + 1 degrees of freedom."""
    from harness.compare.power import within_sd
    assert within_sd([1, 2, 3, 10, 12], ["a"] * 3 + ["b"] * 2) == pytest.approx(math.sqrt(4 / 3))


def test_seeds_needed_gives_about_the_promised_power_in_simulation():
    """Differences ~ N(0.8, 1): the formula's n pairs; the exact sign-flip test at 0.05 rejects in about
    80% of 400 simulated studies (the normal approximation is a little optimistic at small n)."""
    from harness.compare.power import seeds_needed
    n = seeds_needed(1.0, 0.8)
    rng = np.random.default_rng(1)
    rejected = sum(stats.sign_flip_p(rng.normal(0.8, 1.0, n)) < 0.05 for _ in range(400))
    assert n == 13 and 0.70 <= rejected / 400 <= 0.90
