"""The cache- and FLOP-saving kernels of the server rules against independent numpy computations:
Fed-CMP's Gram on its upper triangle and the block-by-block squared distance of RWF's magnitudes.
(These change the float summation order, so they are compared within float64 rounding.)"""
import numpy as np
import pytest
import torch

from harness import build_aggregator
from harness.fedcmp import csc
from harness.methods.streaming import BLOCK, squared_distance
from tests.unit.fedcmp_reference import NumpyFedCMP
from tests.unit.test_fedcmp import make_round, max_diff, run_federation, to_np

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("rows, block", [(7, 3), (6, 6), (5, 512), (9, 1)])
def test_upper_gram_is_x_xt_on_the_upper_triangle(rows, block):
    """Two operands accumulated: the upper triangle equals numpy's X1 X1^T + X2 X2^T, and nothing
    left of a row's diagonal block is written (the starting zeros stay)."""
    gen = np.random.default_rng(rows)
    xs = [gen.standard_normal((rows, 4)) for _ in range(2)]
    gram = torch.zeros(rows, rows, dtype=torch.float64)
    for x in xs:
        csc.add_upper_gram(gram, torch.from_numpy(x), block)
    want = sum(x @ x.T for x in xs)
    upper = np.triu_indices(rows)
    assert np.abs(gram.numpy()[upper] - want[upper]).max() < 1e-12
    below = [(r, c) for r in range(rows) for c in range(rows) if c < r // block * block]
    assert not any(gram[r, c] for r, c in below)


@pytest.mark.parametrize("kw", [{}, {"opm_gap": 1.0}, {"opm_align": "sign"}, {"coef_merge": "ties"}])
def test_fedcmp_with_several_gram_blocks_matches_numpy_reference(kw, monkeypatch):
    """Blocks of 2 rows split the 6- and 5-row matrices into 3 block rows; three rounds still match
    the independent numpy re-derivation (plain SVD of the concatenated operands)."""
    monkeypatch.setattr(csc, "GRAM_BLOCK_ROWS", 2)
    ref = NumpyFedCMP(**kw)
    glob = to_np(make_round(0)[0])
    for got, ups in run_federation(build_aggregator("fedcmp", svd="gram", **kw), rounds=3):
        want = ref.aggregate(glob, [to_np(u.state) for u in ups], [u.num_samples for u in ups],
                             [u.align_error for u in ups])
        assert max_diff(to_np(got), want) < 1e-9
        glob = to_np(got)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_squared_distance_over_several_blocks(dtype):
    """2.5 blocks of entries: sum((x - b)^2) in float64 as numpy computes it, within rounding."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, BLOCK // 2, generator=gen).to(dtype)
    b = torch.randn(5, BLOCK // 2, generator=gen).to(dtype)
    want = float(np.sum((x.double().numpy() - b.double().numpy()) ** 2))
    assert squared_distance(x, b) == pytest.approx(want, rel=1e-13)
    assert squared_distance(torch.tensor([3.0, 0.0]), torch.tensor([0.0, -4.0])) == 25.0   # 9 + 16
