"""Our rules as Flower strategies (harness.flower.ours), message by message: what configure_train sends each
node, and that aggregate_train is our pure aggregator on the same uploads (the whole simulation:
tests/distributed/test_flower_simulation.py)."""
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import Strategy

from harness import ClientUpdate, build_aggregator
from harness.flower import strategy
from harness.flower.theirs import ParticipantsGrid, server_identity
from tests.unit.test_flower import SHAPES, start, uploads

pytestmark = pytest.mark.unit
NODES = [9001, 4242, 7777]            # Flower's node ids: ours number them in id order: 0, 1, 2


def round_trip(strat, state, ups, round_=1):
    """configure_train on a grid of NODES, then the replies a client would send back (``ups`` by client id),
    in an arrival order that is not the client order."""
    with server_identity():
        sent = list(strat.configure_train(round_, ArrayRecord(state), ConfigRecord(), ParticipantsGrid(NODES)))
        replies = [reply(m, next(u for u in ups if u.client_id == m.content["config"]["client-id"]))
                   for m in reversed(sent)]
        arrays, metrics = strat.aggregate_train(round_, replies)
    return sent, arrays.to_torch_state_dict(), metrics


def reply(msg, u):
    metrics = MetricRecord({"num-examples": u.num_samples, "align-error": u.align_error})
    extras = {f"extra.{name}": ArrayRecord(dict(s)) for name, s in u.extras.items()}
    return Message(RecordDict({"arrays": ArrayRecord(dict(u.state)), "metrics": metrics, **extras}), reply_to=msg)


def test_fedcmp_strategy_is_our_aggregator_over_rounds_with_its_momentum():
    strat = strategy("fedcmp", lam=1.0)
    assert isinstance(strat, Strategy)
    ours = build_aggregator("fedcmp", lam=1.0)
    a = b = start()
    for t in (1, 2, 3):     # from round 2 on OPM's momentum (server state) shapes the result
        ups = uploads(a, t, k=3)
        sent, b, metrics = round_trip(strat, b, ups, t)
        a = ours.aggregate(a, ups)
        assert all(torch.equal(a[k], b[k]) for k in SHAPES), t
    assert sorted(m.metadata.dst_node_id for m in sent) == sorted(NODES)
    assert {m.metadata.dst_node_id: m.content["config"]["client-id"] for m in sent} == {4242: 0, 7777: 1, 9001: 2}
    assert strat.state_dict()["round"] == 3 and metrics["align-error"] == pytest.approx(
        sum(u.align_error * u.num_samples for u in ups) / sum(u.num_samples for u in ups))


def test_configure_train_sends_what_the_client_objective_needs():
    sent, _, _ = round_trip(strategy("fedprox", mu=0.2), start(), uploads(start(), 1, k=3))
    config = sent[0].content["config"]
    assert config["proximal-mu"] == 0.2 and config["objective"] == "fedprox" and config["objective.mu"] == 0.2
    assert config["server-round"] == 1
    moon = strategy("moon", mu=1.0, tau=0.5)
    first, state, _ = round_trip(moon, start(), uploads(start(), 1, k=3))
    assert config_of(first)["objective.tau"] == 0.5 and not first[0].content.array_records.keys() - {"arrays"}
    ups = uploads(state, 2, k=3)
    second, _, _ = round_trip(moon, state, ups, 2)
    for m in second:         # each client gets its own projector of the last round as MOON's negative
        k = m.content["config"]["client-id"]
        prev = m.content["extra.prev"].to_torch_state_dict()
        assert all(torch.equal(prev[n], uploads(start(), 1, k=3)[k].state[n]) for n in SHAPES)


def test_scaffold_sends_its_control_variates_and_reads_the_uploaded_ones():
    strat, ours = strategy("scaffold"), build_aggregator("scaffold")
    ours.num_clients = len(NODES)
    a = b = start()
    for t in (1, 2):
        ups = [ClientUpdate(u.client_id, u.state, u.num_samples, u.align_error,
                            {"delta_c": {k: 0.01 * (u.client_id + t) * torch.ones_like(v) for k, v in a.items()}})
               for u in uploads(a, t, k=3)]
        sent, b, _ = round_trip(strat, b, ups, t)
        a = ours.aggregate(a, ups)
        assert all(torch.equal(a[k], b[k]) for k in SHAPES)
    c_i = {m.content["config"]["client-id"]: m.content["extra.c_i"].to_torch_state_dict() for m in sent}
    assert torch.allclose(c_i[2]["linear_1.bias"], torch.full((12,), 0.03))     # round 1's delta_c of client 2
    assert all(torch.equal(ours.c[k], strat.aggregator.c[k]) for k in SHAPES)


def config_of(messages):
    return messages[0].content["config"]


def test_an_unknown_method_is_one_line():
    with pytest.raises(ValueError, match="fedcmpp.*did you mean 'fedcmp'"):
        strategy("fedcmpp")
