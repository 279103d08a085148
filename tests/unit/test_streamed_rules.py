"""The block-by-block server rules give the same bits as the whole-tensor code they replaced (same
float64 operations in the same order per entry), on random inputs spanning several cache blocks.

The references below are the earlier implementations, kept here verbatim: weighted_sum over float64
deltas, DARE's whole-tensor drop, and the selection of TIES' threshold by kthvalue over every entry."""
import pytest
import torch

from baselines.task_arithmetic import WeightedSum, dare_drop, dare_generator
from harness import ClientUpdate, build_aggregator
from harness.methods.aggregator import sample_weights
from harness.methods.merging import kth_largest, trim_top_magnitude, weighted_sum
from harness.methods.streaming import BLOCK, streamed_weighted_sum

pytestmark = pytest.mark.unit
F64 = torch.float64
SHAPES = {"a.weight": (3, BLOCK), "a.bias": (BLOCK // 2 + 7,), "b.weight": (5, 9)}   # 3.5 blocks, a part, one small


def uploads(dtype, k=4, seed=0, shapes=SHAPES):
    gen = torch.Generator().manual_seed(seed)
    glob = {n: torch.randn(s, generator=gen).to(dtype) for n, s in shapes.items()}
    ups = [ClientUpdate(c, {n: (t + 0.1 * torch.randn(t.shape, generator=gen).to(dtype)) for n, t in glob.items()},
                        10 + 7 * c) for c in range(k)]
    if "b.weight" in glob:                                      # signed zeros keep their sign
        ups[0].state["b.weight"][0, 0] = -0.0
        glob["b.weight"][0, 0] = 0.0
    return glob, ups


def old_delta(u, glob, key):
    return u.state[key].to(F64) - glob[key].to(F64)


@pytest.fixture(params=[1, 3], ids=["1 thread", "3 threads"])
def threads(request):
    """The numpy path splits the blocks over torch's thread count: one range, or three uneven ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shift", [False, True])
def test_streamed_sum_equals_weighted_sum_bit_for_bit(dtype, shift, threads):
    """float32/float64 take the numpy path, bfloat16 (which numpy lacks) the torch one."""
    glob, ups = uploads(dtype)
    w = sample_weights(ups)
    for key in glob:
        xs = [u.state[key] for u in ups]
        want = weighted_sum((old_delta(u, glob, key) if shift else u.state[key] for u in ups), w)
        got = streamed_weighted_sum(xs, w, base=glob[key] if shift else None)
        assert got.dtype == F64 and got.shape == glob[key].shape
        assert torch.equal(got, want), key
        assert torch.equal(torch.signbit(got), torch.signbit(want))


@pytest.mark.parametrize("bias_correction", [False, True])
def test_fedadam_two_rounds_equal_the_whole_tensor_rule(bias_correction, threads):
    """The earlier FedAdam (whole-tensor deltas and step), written out: theta agrees bit for bit."""
    glob, ups = uploads(torch.float32, seed=1)
    agg = build_aggregator("fedadam", bias_correction=bias_correction)
    m, v, theta = {}, {}, glob
    for t in (1, 2):
        out = agg.aggregate(theta, ups)
        w = sample_weights(ups)
        want = {}
        for k in theta:
            d = weighted_sum((old_delta(u, theta, k) for u in ups), w)
            m[k] = m.get(k, torch.zeros_like(d)) * 0.9 + (1 - 0.9) * d
            v[k] = v.get(k, torch.zeros_like(d)) * 0.99 + (1 - 0.99) * d * d
            m_hat, v_hat = (m[k] / (1 - 0.9 ** t), v[k] / (1 - 0.99 ** t)) if bias_correction else (m[k], v[k])
            want[k] = (theta[k].to(F64) + 1e-2 * m_hat / (v_hat.sqrt() + 1e-3)).to(theta[k].dtype)
        assert all(torch.equal(out[k], want[k]) for k in out)
        assert all(torch.equal(agg.m[k], m[k]) and torch.equal(agg.v[k], v[k]) for k in out)   # float64 state
        theta = out


@pytest.mark.parametrize("name", ["fedavg_ta", "fedavg_dare"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_task_arithmetic_streamed_equals_per_client_accumulation(name, dtype):
    """Two rounds (DARE's masks change with the round): the streamed rule against the per-client
    path (_accumulate over _sparsify, i.e. whole-tensor dare_drop and WeightedSum)."""
    glob, ups = uploads(dtype, seed=2)
    agg, ref = build_aggregator(name), build_aggregator(name)
    for _ in range(2):
        out = agg.aggregate(glob, ups)
        w = sample_weights(ups) if ref.weights == "samples" else [1.0] * len(ups)
        keys = sorted(glob)
        merged = ref._accumulate(glob, ups, w, {k: WeightedSum() for k in keys})
        want = {k: (glob[k].to(F64) + getattr(ref, "scale", 1.0) * merged[k]).to(dtype) for k in keys}
        ref.round += 1
        assert all(torch.equal(out[k], want[k]) for k in keys)


def test_dare_mask_drawn_by_blocks_is_the_whole_tensor_mask():
    """dare_drop over a 3.5-block tensor against the streamed drop of one client with weight 1."""
    glob, ups = uploads(torch.float64, k=1, seed=3)
    agg = build_aggregator("fedavg_dare", drop_rate=0.3, seed=5)
    got = agg.aggregate(glob, ups)
    gen = dare_generator(5, 0, 0)
    for key in sorted(glob):
        assert torch.equal(got[key], glob[key] + dare_drop(old_delta(ups[0], glob, key), 0.3, gen))


@pytest.mark.parametrize("kind", ["normal", "uniform", "ties", "zeros", "tiny"])
def test_kth_largest_equals_kthvalue(kind):
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(3 * BLOCK + 11, generator=gen, dtype=F64)
    x = {"normal": x, "uniform": torch.rand(x.shape, generator=gen, dtype=F64),
         "ties": (4 * x).round() / 4, "zeros": torch.where(x > 0.5, x, 0.0), "tiny": x * 1e-310}[kind].abs()
    for k in (1, 2, 17, x.numel() // 5, x.numel() // 2, x.numel() - 1, x.numel()):
        assert torch.equal(kth_largest(x, k), torch.kthvalue(x, x.numel() - k + 1).values), k


@pytest.mark.parametrize("density", [0.01, 0.2, 0.9])
def test_trim_equals_the_kthvalue_trim(density):
    """Magnitudes rounded to a grid so that many tie at the threshold (the first ones survive)."""
    gen = torch.Generator().manual_seed(5)
    x = (8 * torch.randn(2 * BLOCK + 3, generator=gen, dtype=F64)).round() / 8
    k = max(1, int(round(density * x.numel())))
    mag = x.abs()
    threshold = torch.kthvalue(mag, mag.numel() - k + 1).values
    above = mag > threshold
    at = torch.nonzero(mag == threshold).reshape(-1)[: k - int(above.sum())]
    want = torch.where(above.index_fill(0, at, True), x, torch.zeros_like(x))
    assert torch.equal(trim_top_magnitude(x, density), want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("bad, finite", [(0.5, True), (float("nan"), False), (float("inf"), False),
                                         (float("-inf"), False), (3e38, True)])
def test_all_finite_by_hand(dtype, bad, finite):
    """One entry deep inside a 3-block tensor decides it (3e38 is finite in every one of these dtypes
    but bfloat16 rounds it to 2.99e38, still finite)."""
    from harness.methods.aggregator import all_finite
    t = torch.zeros(3 * BLOCK, dtype=dtype)
    t[BLOCK + 5] = bad
    assert all_finite(t) is finite
    assert all_finite(torch.zeros(0)) and all_finite(torch.arange(3))


@pytest.mark.parametrize("operand", ["weights", "updates"])
def test_fedcmp_mean_operand_equals_weighted_sum_of_operands(operand, threads):
    """Fed-CMP's sum_k omega_k X_k (bias as the last column) streamed per tensor against weighted_sum
    over the float64 block operands, as it was computed before."""
    from harness.fedcmp.blocks import block_tensor, split_blocks
    glob, ups = uploads(torch.float32, seed=6, shapes={"a.weight": (3, BLOCK + 5), "a.bias": (3,)})
    agg = build_aggregator("fedcmp", operand=operand)
    omega = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64)
    block = split_blocks(glob, True)[0]

    def operand_of(u):
        x = block_tensor(u.state, block)
        return x - block_tensor(glob, block) if operand == "updates" else x
    want = weighted_sum((operand_of(u) for u in ups), omega)
    assert torch.equal(agg._mean_operand(glob, ups, block, omega)(), want)


def test_fedavgm_three_rounds_equal_the_whole_tensor_rule(threads):
    """The earlier FedAvgM written out (v = 0.9 v + Delta, theta + v): v and theta bit for bit."""
    glob, ups = uploads(torch.float32, seed=7)
    agg, v, theta = build_aggregator("fedavgm"), {}, glob
    for _ in range(3):
        out = agg.aggregate(theta, ups)
        for k in theta:
            d = weighted_sum((old_delta(u, theta, k) for u in ups), sample_weights(ups))
            v[k] = 0.9 * v[k] + d if k in v else d
            assert torch.equal(agg.v[k], v[k]) and torch.equal(out[k], (theta[k].to(F64) + v[k]).to(torch.float32))
        theta = out
