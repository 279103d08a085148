"""Client-side objective terms: FedProx's proximal term and MOON's model-contrastive term."""
import math

import pytest
import torch

from baselines.fedprox import proximal_term
from baselines.moon import moon_contrastive_term

pytestmark = pytest.mark.unit

F64 = torch.float64


# ----------------------------------------------------------------------------- FedProx

def prox_case(global_dtype=torch.float32):
    local = {"a": torch.tensor([1.0, 2.0], requires_grad=True), "b": torch.tensor([[3.0]], requires_grad=True)}
    global_ = {"a": torch.tensor([0.0, 0.0], dtype=global_dtype, requires_grad=True),
               "b": torch.tensor([[1.0]], dtype=global_dtype, requires_grad=True)}
    return local, global_


@pytest.mark.parametrize("mu, expected", [(0.5, 2.25), (0.01, 0.045), (0.0, 0.0)])
@pytest.mark.parametrize("global_dtype", [torch.float32, F64])
def test_proximal_term_by_hand(mu, expected, global_dtype):
    """local = {a: [1, 2], b: [[3]]}, global = {a: [0, 0], b: [[1]]}.
    ||local - global||^2 = 1^2 + 2^2 + (3 - 1)^2 = 9, term = (mu/2)*9:
    mu = 0.5 -> 2.25;  mu = 0.01 -> 0.045;  mu = 0 -> 0.
    Gradient w.r.t. local = mu*(local - global): a -> [mu, 2 mu], b -> [[2 mu]]; none flows into global."""
    local, global_ = prox_case(global_dtype)
    term = proximal_term(local, global_, mu)
    assert term.dtype == torch.float32 and term.shape == ()
    assert term.item() == pytest.approx(expected, rel=1e-6, abs=1e-12)
    term.backward()
    torch.testing.assert_close(local["a"].grad, torch.tensor([mu, 2 * mu]))
    torch.testing.assert_close(local["b"].grad, torch.tensor([[2 * mu]]))
    assert global_["a"].grad is None and global_["b"].grad is None


def test_proximal_gradient_is_mu_times_difference_on_random_tensors():
    gen = torch.Generator().manual_seed(0)
    shapes = {"linear_1.weight": (4, 3), "linear_1.bias": (4,), "linear_2.weight": (2, 4)}
    local = {k: torch.randn(s, generator=gen, dtype=F64).requires_grad_() for k, s in shapes.items()}
    global_ = {k: torch.randn(s, generator=gen, dtype=F64) for k, s in shapes.items()}
    mu = 0.3
    term = proximal_term(local, global_, mu)
    sq = sum(float(((local[k].detach() - global_[k]) ** 2).sum()) for k in shapes)
    assert term.item() == pytest.approx(0.5 * mu * sq, rel=1e-12)
    term.backward()
    for k in shapes:
        torch.testing.assert_close(local[k].grad, mu * (local[k].detach() - global_[k]), rtol=1e-12, atol=0)


def test_proximal_term_inputs_unchanged():
    local, global_ = prox_case()
    proximal_term(local, global_, 0.5)
    assert torch.equal(local["a"], torch.tensor([1.0, 2.0])) and torch.equal(global_["b"], torch.tensor([[1.0]]))


# ----------------------------------------------------------------------------- MOON

# Two samples, 2-dim z:
#   z      = [[1, 0], [1,  1]]
#   z_glob = [[2, 0], [3,  0]]  -> cos(z, z_glob) = [1, 1/sqrt2]   (cosine ignores the scale)
#   z_prev = [[0, 1], [-1, -1]] -> cos(z, z_prev) = [0, -1]
Z = [[1.0, 0.0], [1.0, 1.0]]
Z_GLOB = [[2.0, 0.0], [3.0, 0.0]]
Z_PREV = [[0.0, 1.0], [-1.0, -1.0]]


def moon_by_hand(mu, tau):
    """l_i = -log(exp(cos_g/tau) / (exp(cos_g/tau) + exp(cos_p/tau))); term = mu * mean_i l_i."""
    cos_pairs = [(1.0, 0.0), (1.0 / math.sqrt(2.0), -1.0)]
    losses = [-math.log(math.exp(g / tau) / (math.exp(g / tau) + math.exp(p / tau))) for g, p in cos_pairs]
    return mu * sum(losses) / len(losses)


@pytest.mark.parametrize("mu, tau", [(1.0, 0.5), (2.0, 1.0), (0.1, 0.2)])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_moon_term_by_hand(mu, tau, dtype):
    """mu = 1, tau = 0.5 spelled out: sample 1: pos = 1/0.5 = 2, neg = 0 -> log(1 + e^-2) ~ 0.126928;
    sample 2: pos = sqrt2, neg = -2 -> log(1 + e^(-2 - sqrt2)) ~ 0.032373; mean ~ 0.079650."""
    z = torch.tensor(Z, dtype=dtype)
    term = moon_contrastive_term(z, torch.tensor(Z_GLOB, dtype=dtype), torch.tensor(Z_PREV, dtype=dtype), mu, tau)
    assert term.shape == ()
    # float32: logsumexp(logits) - pos cancels two numbers of size <= 1/tau, so allow a few float32 ulps
    # of 1/tau (eps 1.2e-7 * 5 = 6e-7) times mu, absolute; float64 is checked to 1e-12 relative.
    tol = dict(rel=1e-6, abs=4e-6 * mu) if dtype == torch.float32 else dict(rel=1e-12)
    assert term.item() == pytest.approx(moon_by_hand(mu, tau), **tol)
    if (mu, tau) == (1.0, 0.5):
        spelled = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-2 - math.sqrt(2)))) / 2
        assert term.item() == pytest.approx(spelled, **tol)
        assert spelled == pytest.approx(0.079650, abs=1e-6)


@pytest.mark.parametrize("mu", [1.0, 5.0])
def test_moon_without_previous_projector_is_zero(mu):
    """Round 1: no negative, the fraction is exp(pos)/exp(pos) = 1 and l_con = 0; z gets a zero gradient."""
    z = torch.tensor(Z, requires_grad=True)
    term = moon_contrastive_term(z, torch.tensor(Z_GLOB), None, mu, 0.5)
    assert term.item() == pytest.approx(0.0, abs=1e-7)
    term.backward()
    assert torch.allclose(z.grad, torch.zeros_like(z), atol=1e-6)


def test_moon_gradient_flows_only_into_z():
    """Differentiable in z (gradcheck against finite differences); z_glob and z_prev are detached."""
    gen = torch.Generator().manual_seed(0)
    z, zg, zp = (torch.randn(3, 4, generator=gen, dtype=F64) for _ in range(3))
    assert torch.autograd.gradcheck(lambda x: moon_contrastive_term(x, zg, zp, 1.0, 0.5), (z.requires_grad_(),))
    zg.requires_grad_(), zp.requires_grad_()
    moon_contrastive_term(z, zg, zp, 1.0, 0.5).backward()
    assert zg.grad is None and zp.grad is None


def test_moon_gradient_by_hand_single_sample():
    """One sample, tau = 1, mu = 1, z = [1, 0] (unit), z_glob = [0, 1], z_prev = [1, 0]:
    cos_g = z.g/|z| = z2/|z|, cos_p = z1/|z|; at z = [1, 0]: cos_g = 0, cos_p = 1.
    loss = log(e^cos_g + e^cos_p) - cos_g; dloss/dcos_g = s_g - 1, dloss/dcos_p = s_p with
    s_g = 1/(1 + e), s_p = e/(1 + e). At a unit z, d cos(z, u)/dz = u - (z.u) z:
      d cos_g/dz = [0, 1] - 0*[1, 0] = [0, 1];  d cos_p/dz = [1, 0] - 1*[1, 0] = [0, 0].
    So grad = (s_g - 1)*[0, 1] = [0, -e/(1 + e)]."""
    z = torch.tensor([[1.0, 0.0]], dtype=F64, requires_grad=True)
    moon_contrastive_term(z, torch.tensor([[0.0, 1.0]], dtype=F64), torch.tensor([[1.0, 0.0]], dtype=F64),
                          1.0, 1.0).backward()
    e = math.e
    torch.testing.assert_close(z.grad, torch.tensor([[0.0, -e / (1 + e)]], dtype=F64), rtol=1e-10, atol=1e-12)
