"""Our server rules as Flower strategies: ``harness.flower.strategy("fedcmp", lam=1.0)``.

:class:`HarnessStrategy` is a ``flwr.serverapp.strategy.FedAvg`` (so a subclass of Flower's ``Strategy``,
with its evaluation half and sampling arguments) whose training half is our method:

- ``configure_train`` samples nodes as FedAvg does, numbers the connected nodes 0..N-1 in node-id order
  (our client ids), asks the method what each client starts from and receives (``configure``: MOON's
  previous projector, SCAFFOLD's control variates, Local's own projector) and sends per node: ``arrays``
  (the start), ``config`` (``server-round``, ``client-id``, the client objective's name and scalars as
  ``objective``, ``objective.mu``, ...; FedProx's mu also as Flower's own ``proximal-mu``, so a Flower
  FedProx client works unchanged) and each tensor extra as an ArrayRecord ``extra.<name>``. Tensors go in
  ArrayRecords, not the ConfigRecord: a ConfigRecord holds scalars, strings and bytes.
- ``aggregate_train`` turns the replies into our ClientUpdates (:func:`harness.flower.records.update_of`:
  ``num-examples``, ``align-error`` for Fed-CMP's RWF, ``train_loss``, ``extra.*`` uploads), in client-id
  order, and calls the pure aggregator: float64 arithmetic, its server state (Fed-CMP's OPM momentum, FedAdam's
  moments) kept across rounds in the aggregator, which ``state_dict``/``load_state_dict`` expose.
"""
from __future__ import annotations

import logging
from typing import Dict, Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp.strategy import FedAvg
from flwr.serverapp.strategy.strategy_utils import sample_nodes
from flwr.supercore import log

from harness.flower.records import ARRAYS, EXTRA, to_array_record, to_state, update_of

CONFIG = "config"


class HarnessStrategy(FedAvg):
    """Our method ``method`` (a name of harness.core.registry.METHODS) with ``hparams``, as a Flower strategy;
    ``flower_kwargs`` are FedAvg's sampling and evaluation arguments (``fraction_train``, ...)."""

    def __init__(self, method: str, hparams: Dict | None = None, **flower_kwargs):
        from harness.core.registry import build_aggregator
        super().__init__(**flower_kwargs)
        self.method = method
        self.aggregator = build_aggregator(method, **(hparams or {}))
        self.global_state: Dict | None = None
        self.clients: Dict[int, int] = {}        # node id -> our client id

    def summary(self) -> None:
        log(logging.INFO, "\t├──> harness method: %s %s", self.method, self.aggregator.hparams())
        super().summary()

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid) -> Iterable[Message]:
        if self.fraction_train == 0.0:
            return []
        size = max(int(len(list(grid.get_node_ids())) * self.fraction_train), self.min_train_nodes)
        node_ids, everyone = sample_nodes(grid, self.min_available_nodes, size)
        self.clients = {node: k for k, node in enumerate(sorted(everyone))}
        self.aggregator.num_clients = len(self.clients)        # SCAFFOLD's N
        self.global_state = to_state(arrays)
        plans = self.aggregator.configure(server_round, sorted(self.clients[n] for n in node_ids), self.global_state)
        settings = {**config, "server-round": server_round, **objective_config(self.aggregator.client_objective())}
        messages = []
        for node in node_ids:
            k = self.clients[node]
            content = RecordDict({ARRAYS: to_array_record(plans[k].start, float64=False),
                                  CONFIG: ConfigRecord({**settings, "client-id": k}),
                                  **{EXTRA + name: to_array_record(s, float64=False) for name, s in plans[k].extras.items()}})
            messages.append(Message(content=content, message_type=MessageType.TRAIN, dst_node_id=node))
        return messages

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        valid, _ = self._check_and_log_replies(replies, is_train=True, validate=False)
        if not valid:
            return None, None
        valid = sorted(valid, key=lambda m: self.clients[m.metadata.src_node_id])
        updates = [update_of(m.content, self.clients[m.metadata.src_node_id]) for m in valid]
        new_state = self.aggregator.aggregate(self.global_state, updates)
        metrics = self.train_metrics_aggr_fn([m.content for m in valid], self.weighted_by_key)
        return to_array_record(new_state, float64=False), metrics

    def state_dict(self) -> dict:
        """The method's server state (our checkpoint format: plain values + tensors)."""
        return self.aggregator.state_dict()

    def load_state_dict(self, sd: dict) -> None:
        self.aggregator.load_state_dict(sd)


def objective_config(objective) -> dict:
    """What a client needs to run the method's objective, as ConfigRecord scalars."""
    scalars = {f"objective.{k}": v for k, v in vars(objective).items() if isinstance(v, (bool, int, float, str))}
    out = {"objective": objective.name, **scalars}
    if objective.name == "fedprox":
        out["proximal-mu"] = float(objective.mu)      # Flower's FedProx key, read by Flower's FedProx clients
    return out
