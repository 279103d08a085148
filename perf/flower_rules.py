"""Flower's own strategies (flwr 1.42, ``flwr.serverapp.strategy``) aggregating the same uploads as ours,
for the aggregation benchmark's "Flower <Rule>" rows.

Each upload becomes the reply a Flower client sends (an ArrayRecord of float32 numpy arrays and a
MetricRecord with "num-examples"), built before the clock starts; the timed call is the strategy's
``aggregate_train``, as a Flower ServerApp calls it every round. Hyperparameters are set to our
defaults (SPEC section 2), so both sides compute the same rule: Flower's FedAvg weights by
num-examples; its FedAvgM and FedAdam keep the global arrays (``current_arrays``, which their
``configure_train`` would set) and their server state across rounds. Flower's FedAdam always scales its
step by the bias correction sqrt(1 - beta2^(t+1)) / (1 - beta1^(t+1)) (ours: ``bias_correction=False`` by
default), a scalar per round: the same work per entry. Flower computes in float32 (numpy), ours in
float64 (SPEC section 2).
"""
from __future__ import annotations

FLOWER = {   # our method -> (Flower strategy class, keyword arguments matching our defaults)
    "fedavg": ("FedAvg", {}),
    "fedprox": ("FedProx", {"proximal_mu": 0.01}),
    "fedavgm": ("FedAvgM", {"server_learning_rate": 1.0, "server_momentum": 0.9}),
    "fedadam": ("FedAdam", {"eta": 1e-2, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-3}),
}


def label(rule: str) -> str:
    return f"Flower {FLOWER[rule][0]}"


def build_strategy(rule: str, global_state: dict):
    """The Flower strategy for ``rule`` with the global arrays in place (what configure_train sets)."""
    from flwr.serverapp import strategy as flower
    cls, kwargs = FLOWER[rule]
    strategy = getattr(flower, cls)(fraction_evaluate=0.0, **kwargs)
    arrays = array_record(global_state)
    if cls == "FedAvgM":
        strategy.current_arrays = arrays
    elif cls == "FedAdam":
        strategy.current_arrays = {k: a.numpy() for k, a in arrays.items()}
    return strategy


def array_record(state: dict):
    """A state as Flower's ArrayRecord of numpy arrays (the tensors' dtype: float32 here)."""
    from flwr.app import Array, ArrayRecord
    return ArrayRecord({k: Array(v.numpy()) for k, v in state.items()})


def act_as_server() -> None:
    """Flower's messages read the process's run and node ids, which a ServerApp process has set: set
    them as the SuperLink's (the benchmark runs each row in its own process)."""
    from flwr.common.constant import SUPERLINK_NODE_ID
    from flwr.supercore.task_identity import TaskIdentity
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 0, 0, SUPERLINK_NODE_ID


def replies(updates: list) -> list:
    """Our uploads as the reply Messages Flower's server receives (one instruction per client), taken
    out of ``updates`` one at a time so that our tensors and Flower's serialized copies of all K
    clients are never held together (it empties ``updates``)."""
    from flwr.app import Message, MessageType, MetricRecord, RecordDict
    act_as_server()
    out = []
    while updates:
        u = updates.pop(0)
        instruction = Message(RecordDict({}), message_type=MessageType.TRAIN, dst_node_id=u.client_id + 1)
        content = RecordDict({"arrays": array_record(u.state),
                              "metrics": MetricRecord({"num-examples": int(u.num_samples)})})
        out.append(Message(content, reply_to=instruction))
    return out


def aggregate(strategy, server_round: int, messages: list):
    """One round of Flower's aggregation; the new global arrays (an error if Flower dropped them all)."""
    arrays, _ = strategy.aggregate_train(server_round, messages)
    if arrays is None:
        raise RuntimeError("Flower's aggregate_train returned no arrays (every reply was rejected)")
    return arrays
