"""FedAvgM and SCAFFOLD by hand, and every method with per-client or server state: the state survives a
restart exactly, and a client that skips rounds keeps its own (partial participation)."""
import pytest
import torch
from safetensors.torch import load_file, save_file

from harness import ClientUpdate, build_aggregator
from harness.methods.objective import TermInputs

pytestmark = pytest.mark.unit
F64 = torch.float64


def t(*v):
    return torch.tensor(v, dtype=F64)


def test_fedavgm_two_rounds_by_hand():
    """theta0 = (0, 0). Round 1: the FedAvg update (1/4 (4, 0) + 3/4 (0, 0)) = (1, 0): v = (1, 0), theta = (1, 0).
    Round 2: update (0, 1): v = 0.9 (1, 0) + (0, 1) = (0.9, 1), theta = (1, 0) + (0.9, 1) = (1.9, 1)."""
    agg = build_aggregator("fedavgm")
    g = {"w": t(0.0, 0.0)}
    g = agg.aggregate(g, [ClientUpdate(0, {"w": t(4.0, 0.0)}, 1), ClientUpdate(1, {"w": t(0.0, 0.0)}, 3)])
    assert g["w"].tolist() == pytest.approx([1.0, 0.0])
    g = agg.aggregate(g, [ClientUpdate(0, {"w": g["w"] + t(0.0, 1.0)}, 1)])
    assert g["w"].tolist() == pytest.approx([1.9, 1.0])
    plain = build_aggregator("fedavgm", momentum=0.0)
    ups = [ClientUpdate(0, {"w": t(4.0, 2.0)}, 1), ClientUpdate(1, {"w": t(0.0, 6.0)}, 3)]
    assert plain.aggregate({"w": t(0.0, 0.0)}, ups)["w"].tolist() == build_aggregator("fedavg").aggregate(
        {"w": t(0.0, 0.0)}, ups)["w"].tolist()


def test_scaffold_server_by_hand_with_partial_participation():
    """N = 3 clients, round 1 with clients 0 and 1 only: x = 0, y_0 = 1, y_1 = 3 -> x = mean = 2; they upload
    Delta c = 0.6 and 1.5 -> c = 0 + (0.6 + 1.5) / 3 = 0.7; c_0 = 0.6, c_1 = 1.5, client 2 has none yet.
    Round 2 plans: client 0 gets (c, c_0) = (0.7, 0.6), client 2 gets (0.7, 0)."""
    agg = build_aggregator("scaffold")
    agg.num_clients = 3
    x = {"w": t(0.0)}
    ups = [ClientUpdate(0, {"w": t(1.0)}, 5, extras={"delta_c": {"w": t(0.6)}}),
           ClientUpdate(1, {"w": t(3.0)}, 50, extras={"delta_c": {"w": t(1.5)}})]
    x = agg.aggregate(x, ups)
    assert x["w"].item() == pytest.approx(2.0)                        # unweighted mean, not n-weighted
    plans = agg.configure(2, [0, 2], x)
    assert plans[0].extras["c"]["w"].item() == pytest.approx(0.7) and plans[0].extras["c_i"]["w"].item() == pytest.approx(0.6)
    assert plans[2].extras["c_i"]["w"].item() == 0.0 and torch.equal(plans[0].start["w"], x["w"])


def test_scaffold_client_term_and_upload_by_hand():
    """The term <c - c_i, y> has the gradient c - c_i = 0.7 - 0.6 = 0.1 per coordinate. Upload (option
    II): x = 2, y = 1, step sizes 0.25 + 0.25 = 0.5: Delta c = -c + (x - y) / 0.5 = -0.7 + 2 = 1.3."""
    obj = build_aggregator("scaffold").client_objective()
    y = torch.full((2,), 1.0, dtype=F64, requires_grad=True)
    extras = {"c": {"w": torch.full((2,), 0.7, dtype=F64)}, "c_i": {"w": torch.full((2,), 0.6, dtype=F64)}}
    term = obj.term(TermInputs({"w": y}, torch.zeros(1, 1, 1), None, None, extras, None))
    term.backward()
    assert y.grad.tolist() == pytest.approx([0.1, 0.1])
    up = obj.uploads({"w": torch.full((2,), 2.0, dtype=F64)}, {"w": torch.full((2,), 1.0, dtype=F64)}, extras, [0.25, 0.25])
    assert up["delta_c"]["w"].tolist() == pytest.approx([1.3, 1.3])


def rounds(method, n_rounds, participation, seed=0, **hp):
    """A federation of 4 clients where round t's participants are participation[t]; every client moves
    its start by a client- and round-dependent step (and uploads a SCAFFOLD control update)."""
    agg = build_aggregator(method, **hp)
    agg.num_clients = 4
    g = {"w": torch.zeros(3, 2, dtype=F64), "b": torch.zeros(3, dtype=F64)}
    out = []
    for r in range(n_rounds):
        plans = agg.configure(r + 1, participation[r], g)
        gen = torch.Generator().manual_seed(1000 * seed + 10 * r)
        ups = []
        for k in participation[r]:
            state = {n: v + 0.1 * (k + 1) + 0.05 * torch.randn(v.shape, generator=gen, dtype=F64)
                     for n, v in plans[k].start.items()}
            ups.append(ClientUpdate(k, state, 10 + k, 0.1 * k, {"delta_c": {n: 0.01 * (k + 1) * torch.ones_like(v)
                                                                              for n, v in state.items()}}))
        g = agg.aggregate(g, ups)
        out.append((g, agg.evaluation_targets(g), plans))
    return agg, out


STATEFUL = ["local", "moon", "scaffold", "fedadam", "fedavgm", "fedcmp"]
PARTICIPATION = [[0, 1], [2, 3], [0, 2], [1, 3]]


@pytest.mark.parametrize("method", STATEFUL)
def test_state_survives_a_restart_exactly_with_partial_participation(method, tmp_path):
    """Two rounds, save the server state (safetensors), load it into a fresh aggregator, two more rounds:
    the same global projector, evaluation targets and client plans bit for bit as without the restart."""
    hp = {"rwf": "mag"} if method == "fedcmp" else {}
    _, whole = rounds(method, 4, PARTICIPATION, **hp)
    first, _ = rounds(method, 2, PARTICIPATION, **hp)
    sd = first.state_dict()
    save_file(sd["tensors"], tmp_path / "s.safetensors") if sd["tensors"] else None
    again = build_aggregator(method, **hp)
    again.num_clients = 4
    again.load_state_dict({"round": sd["round"], "tensors": load_file(tmp_path / "s.safetensors") if sd["tensors"] else {}})
    g = whole[1][0]
    for r in (2, 3):
        plans = again.configure(r + 1, PARTICIPATION[r], g)
        assert all(torch.equal(plans[k].start[n], whole[r][2][k].start[n]) for k in plans for n in g)
        assert all(plans[k].extras.keys() == whole[r][2][k].extras.keys() for k in plans)
        gen = torch.Generator().manual_seed(10 * r)
        ups = []
        for k in PARTICIPATION[r]:
            state = {n: v + 0.1 * (k + 1) + 0.05 * torch.randn(v.shape, generator=gen, dtype=F64)
                     for n, v in plans[k].start.items()}
            ups.append(ClientUpdate(k, state, 10 + k, 0.1 * k, {"delta_c": {n: 0.01 * (k + 1) * torch.ones_like(v)
                                                                              for n, v in state.items()}}))
        g = again.aggregate(g, ups)
        assert all(torch.equal(g[n], whole[r][0][n]) for n in g)
        targets = again.evaluation_targets(g)
        assert targets.keys() == whole[r][1].keys()


def test_clients_that_skip_rounds_keep_their_own_state():
    """Local: client 0 trained in round 1 only; in round 3 it starts from its own round-1 projector, not
    the global one. MOON: the same for its previous projector. SCAFFOLD: client 1's c_i from round 1."""
    _, local = rounds("local", 3, [[0, 1], [2, 3], [0, 2]])
    assert torch.equal(local[2][2][0].start["w"], local[0][1][0]["w"]) and sorted(local[2][1]) == [0, 1, 2, 3]
    _, moon = rounds("moon", 3, [[0, 1], [2, 3], [0, 2]])   # round 1 uploads equal Local's (same start, steps)
    assert torch.equal(moon[2][2][0].extras["prev"]["w"], local[0][1][0]["w"]) and moon[0][2][0].extras == {}
    _, out = rounds("scaffold", 3, [[0, 1], [2, 3], [1, 2]])
    assert out[2][2][1].extras["c_i"]["w"][0, 0].item() == pytest.approx(0.02)   # Delta c of round 1, kept
