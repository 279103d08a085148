"""Hand-worked checks of the tensor helpers in harness/methods/merging.py.

Every expected value below is written out literally and derived by hand in the test's docstring.
"""
import math
import weakref

import pytest
import torch

from harness.methods.merging import (cosine, disjoint_mean, elect_sign, ties_merge, ties_merge_streamed,
                             trim_top_magnitude, weighted_sum)

pytestmark = pytest.mark.unit

F64 = torch.float64


def t64(values):
    return torch.tensor(values, dtype=F64)


def assert_exact(actual, expected):
    assert actual.dtype == F64
    assert torch.equal(actual, t64(expected)), f"{actual} != {expected}"


# ----------------------------------------------------------------------------- weighted_sum

@pytest.mark.parametrize("as_tensor", [False, True])
def test_weighted_sum_hand_case(as_tensor):
    """0.25*[1, 2] + 0.75*[3, 4] = [0.25 + 2.25, 0.5 + 3] = [2.5, 3.5] (all dyadic, so exact).

    Inputs are float32: the result is float64 and the inputs are untouched.
    """
    a = torch.tensor([1.0, 2.0])
    b = torch.tensor([3.0, 4.0])
    weights = torch.tensor([0.25, 0.75], dtype=F64) if as_tensor else [0.25, 0.75]
    out = weighted_sum([a, b], weights)
    assert_exact(out, [2.5, 3.5])
    assert torch.equal(a, torch.tensor([1.0, 2.0])) and torch.equal(b, torch.tensor([3.0, 4.0]))


def test_weighted_sum_generator_and_float64_inputs_not_modified():
    """Accepts a generator; with float64 inputs (where .to(float64) is a no-op) the first input must
    not be used as the accumulator: 2*[1, -1] + (-1)*[4, 8] = [2 - 4, -2 - 8] = [-2, -10]."""
    a, b = t64([1.0, -1.0]), t64([4.0, 8.0])
    out = weighted_sum((x for x in (a, b)), [2.0, -1.0])
    assert_exact(out, [-2.0, -10.0])
    assert_exact(a, [1.0, -1.0])
    assert_exact(b, [4.0, 8.0])


def test_weighted_sum_empty_raises():
    with pytest.raises(ValueError):
        weighted_sum([], [])


# ----------------------------------------------------------------------------- trim_top_magnitude

@pytest.mark.parametrize("density, expected", [
    # numel 5: k = round(0.4*5) = 2 -> |-3| and |2| are the two largest magnitudes
    (0.4, [0.0, -3.0, 0.0, 2.0, 0.0]),
    # k = round(0.2*5) = 1 -> only -3
    (0.2, [0.0, -3.0, 0.0, 0.0, 0.0]),
    # k = round(0.6*5) = 3 -> -3, 2, 1
    (0.6, [0.0, -3.0, 1.0, 2.0, 0.0]),
    # round(0.05*5) = round(0.25) = 0, but at least one entry survives a density > 0 -> only -3
    (0.05, [0.0, -3.0, 0.0, 0.0, 0.0]),
    # density 0 -> everything is zeroed
    (0.0, [0.0, 0.0, 0.0, 0.0, 0.0]),
    # k = 5 = numel -> unchanged
    (1.0, [0.5, -3.0, 1.0, 2.0, -0.1]),
])
def test_trim_top_magnitude_hand_cases(density, expected):
    """x = [0.5, -3, 1, 2, -0.1]; magnitudes sorted: 3 (pos 1), 2 (pos 3), 1 (pos 2), 0.5, 0.1."""
    x = t64([0.5, -3.0, 1.0, 2.0, -0.1])
    out = trim_top_magnitude(x, density)
    assert_exact(out, expected)
    assert_exact(x, [0.5, -3.0, 1.0, 2.0, -0.1])


def test_trim_top_magnitude_ties_broken_by_position_and_shape_kept():
    """2x3 tensor, all |x| = 1, density 0.5 -> k = 3: the first three positions in row-major order
    survive (stable sort), exactly k entries, and the 2x3 shape is preserved."""
    x = t64([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]])
    out = trim_top_magnitude(x, 0.5)
    assert out.shape == (2, 3)
    assert_exact(out, [[1.0, -1.0, 1.0], [0.0, 0.0, 0.0]])
    assert int((out != 0).sum()) == 3


# ----------------------------------------------------------------------------- elect_sign

@pytest.mark.parametrize("weights, expected", [
    # sums: [1 - 3 + 0, 0, -2 + 1 + 1] = [-2, 0, 0] -> signs [-1, 0, 0]
    ([1.0, 1.0, 1.0], [-1.0, 0.0, 0.0]),
    # [1 - 0.75 + 0, 0, -2 + 0.25 + 1] = [0.25, 0, -0.75] -> [1, 0, -1]
    ([1.0, 0.25, 1.0], [1.0, 0.0, -1.0]),
])
def test_elect_sign_by_weighted_mass(weights, expected):
    """trimmed = [1, 0, -2], [-3, 0, 1], [0, 0, 1]; sign of the (weighted) total mass per coordinate."""
    trimmed = [t64([1.0, 0.0, -2.0]), t64([-3.0, 0.0, 1.0]), t64([0.0, 0.0, 1.0])]
    assert_exact(elect_sign(trimmed, weights), expected)


# ----------------------------------------------------------------------------- disjoint_mean

DISJOINT = [t64([1.0, 0.0, -2.0, 4.0, 3.0]), t64([-3.0, 0.0, 1.0, 2.0, -3.0]), t64([2.0, 5.0, -4.0, 0.0, 0.0])]


@pytest.mark.parametrize("weights, expected", [
    # c0 (+): {1, 2} -> 1.5;  c1 (+): {5} -> 5;  c2 (-): {-2, -4} -> -3;  c3 (+): {4, 2} -> 3;
    # c4: sign 0 -> nobody agrees -> 0
    ([1.0, 1.0, 1.0], [1.5, 5.0, -3.0, 3.0, 0.0]),
    # w = [1, 3, 0.5]: c0: (1*1 + 0.5*2)/(1 + 0.5) = 4/3;  c1: 0.5*5/0.5 = 5;
    # c2: (1*-2 + 0.5*-4)/1.5 = -8/3;  c3: (1*4 + 3*2)/(1 + 3) = 2.5;  c4: 0
    ([1.0, 3.0, 0.5], [4.0 / 3.0, 5.0, -8.0 / 3.0, 2.5, 0.0]),
])
def test_disjoint_mean_hand_cases(weights, expected):
    """trimmed = [1, 0, -2, 4, 3], [-3, 0, 1, 2, -3], [2, 5, -4, 0, 0]; sign = [+, +, -, +, 0].
    Per coordinate: weighted mean over clients whose non-zero value has the elected sign."""
    sign = t64([1.0, 1.0, -1.0, 1.0, 0.0])
    out = disjoint_mean(DISJOINT, sign, weights)
    assert out.dtype == F64
    torch.testing.assert_close(out, t64(expected), rtol=1e-15, atol=0.0)


# ----------------------------------------------------------------------------- ties_merge

def test_ties_merge_uniform_hand_case():
    """Three 1x5 updates, density 0.4 -> k = round(2.0) = 2 per tensor.

    d1 = [ 4, -1,  0.5, -3,   0.2] -> trimmed [ 4, 0,  0, -3, 0]
    d2 = [-2,  5,  0.1,  1,  -0.3] -> trimmed [-2, 5,  0,  0, 0]
    d3 = [ 1,  2, -6,   -0.5, 0.4] -> trimmed [ 0, 2, -6,  0, 0]
    sum = [2, 7, -6, -3, 0] -> sign [+, +, -, -, 0]
    disjoint mean: c0 {4} -> 4 (the -2 disagrees); c1 {5, 2} -> 3.5; c2 {-6}; c3 {-3}; c4 -> 0.
    """
    ds = [t64([[4.0, -1.0, 0.5, -3.0, 0.2]]), t64([[-2.0, 5.0, 0.1, 1.0, -0.3]]),
          t64([[1.0, 2.0, -6.0, -0.5, 0.4]])]
    assert_exact(ties_merge(ds, 0.4), [[4.0, 3.5, -6.0, -3.0, 0.0]])


def test_ties_merge_weighted_sign_flip():
    """Two scalars-as-vectors, density 1 (no trimming): d1 = [2], d2 = [-1].
    Uniform: sum 1 > 0 -> keep {2} -> 2.   Weights [1, 3]: 2 - 3 = -1 < 0 -> keep {-1} -> -1."""
    ds = [t64([2.0]), t64([-1.0])]
    assert_exact(ties_merge(ds, 1.0), [2.0])
    assert_exact(ties_merge(ds, 1.0, weights=[1.0, 3.0]), [-1.0])


def test_ties_merge_streamed_hand_case_and_passes():
    """The hand case above through the two-pass form: the same [[4, 3.5, -6, -3, 0]] (uniform) and,
    with weights [1, 1, 3] (sum c0 = 4 - 2 + 0 = 2 > 0; c1 = 5 + 6 = 11; c2 = -18; c3 = -3), the same
    signs, so c1 = (5*1 + 2*3) / (1 + 3) = 2.75; it calls ``tensors()`` exactly twice."""
    ds = [t64([[4.0, -1.0, 0.5, -3.0, 0.2]]), t64([[-2.0, 5.0, 0.1, 1.0, -0.3]]),
          t64([[1.0, 2.0, -6.0, -0.5, 0.4]])]
    calls = []

    def tensors():
        calls.append(1)
        return iter(ds)
    assert_exact(ties_merge_streamed(tensors, 0.4, [1.0, 1.0, 1.0]), [[4.0, 3.5, -6.0, -3.0, 0.0]])
    assert len(calls) == 2
    assert_exact(ties_merge_streamed(tensors, 0.4, [1.0, 1.0, 3.0]), [[4.0, 2.75, -6.0, -3.0, 0.0]])


def test_ties_merge_streamed_holds_one_tensor_at_a_time():
    """K = 8 tensors made on demand: when each is made, at most one earlier one is still alive (the
    loop variable about to be rebound), where the list form holds all 8; the result equals the list
    form's bit for bit on random inputs."""
    gen = torch.Generator().manual_seed(3)
    values = [torch.randn(6, 5, generator=gen, dtype=F64) for _ in range(8)]
    weights = torch.rand(8, generator=gen, dtype=F64)
    live, most = weakref.WeakSet(), []

    def tensors():
        for v in values:
            x = v.clone()
            most.append(len(live))
            live.add(x)
            yield x
            del x
    streamed = ties_merge_streamed(tensors, 0.3, weights)
    assert max(most) <= 1
    assert torch.equal(streamed, ties_merge(values, 0.3, weights))


# ----------------------------------------------------------------------------- cosine

@pytest.mark.parametrize("a, b, expected", [
    ([1.0, 0.0], [0.0, 1.0], 0.0),                  # orthogonal
    ([1.0, 1.0], [1.0, 0.0], 1.0 / math.sqrt(2.0)),  # 1 / (sqrt2 * 1)
    ([1.0, 2.0, 2.0], [2.0, 4.0, 4.0], 1.0),         # parallel: 18 / (3 * 6)
    ([1.0, 0.0], [-3.0, 0.0], -1.0),                 # anti-parallel: -3 / (1 * 3)
    ([3.0, 4.0], [4.0, 3.0], 24.0 / 25.0),           # (12 + 12) / (5 * 5)
    ([0.0, 0.0], [1.0, 2.0], 1.0),                   # zero vector: documented convention 1
])
def test_cosine_flattened(a, b, expected):
    out = cosine(t64(a), t64(b))
    assert out.shape == ()
    assert float(out) == pytest.approx(expected, rel=1e-15, abs=1e-15)


def test_cosine_flattens_matrices_and_along_dim():
    """A = [[1, 3], [0, 4]], B = [[0, 4], [1, 3]].
    Flattened: (0 + 12 + 0 + 12) / (sqrt(26) * sqrt(26)) = 24/26 = 12/13.
    Along dim 0 (columns): col0 (1,0)·(0,1) = 0 -> 0;  col1 (3,4)·(4,3) = 24/25.
    Along dim 1 (rows): row0 (1,3)·(0,4) = 12/(sqrt10*4) = 3/sqrt10;  row1 (0,4)·(1,3) = 12/(4*sqrt10)."""
    a = t64([[1.0, 3.0], [0.0, 4.0]])
    b = t64([[0.0, 4.0], [1.0, 3.0]])
    assert float(cosine(a, b)) == pytest.approx(12.0 / 13.0, rel=1e-15)
    torch.testing.assert_close(cosine(a, b, dim=0), t64([0.0, 24.0 / 25.0]), rtol=1e-15, atol=1e-15)
    r = 3.0 / math.sqrt(10.0)
    torch.testing.assert_close(cosine(a, b, dim=1), t64([r, r]), rtol=1e-15, atol=1e-15)
