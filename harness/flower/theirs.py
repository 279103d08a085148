"""Flower's message-based strategies as our server rule: ``aggregator.method=flwr:<ClassName>``.

:class:`FlowerStrategy` is an :class:`~harness.methods.aggregator.Aggregator` wrapping one object of
``flwr.serverapp.strategy.<ClassName>`` built from ``aggregator.flwr`` (the class's keyword arguments).
Each round the server step hands the strategy the round's uploads the way a Flower ServerApp would:
``configure_train(t, global arrays, {}, grid)`` on a grid holding this round's participants (so the strategy
records what it sent, as FedOpt and FedAvgM do), then ``aggregate_train(t, replies)`` with one reply per
client (:mod:`harness.flower.records`: the client's arrays, ``num-examples`` as the weight), and takes the
returned arrays as the new global projector. What stays ours: client sampling (the strategy is built with
``fraction_train=1``, ``min_train_nodes=min_available_nodes=1`` and sees exactly the participants), faults
(a dropped client sends no reply), records and checkpoints. Flower's own randomness (node sampling, the DP
wrappers' noise, which draw from Python's ``random`` and NumPy's global generator) is seeded per round from
(``seed``, round) and both generators are restored afterwards, so a run is reproducible and does not disturb
anyone else's draws. The strategy object is the server state: it is pickled into our checkpoint
(``state_dict``), so ``--resume`` continues FedAdam's m_t and v_t or FedAvgM's momentum exactly.

Conventions that differ from ours (docs/flower.md): Flower's FedAdam (not FedYogi or FedAdagrad) scales
the step by eta * sqrt(1 - beta_2^(t+1)) / (1 - beta_1^(t+1)) in round t (Adam's bias correction, shifted by
one round); FedAvgM's ``server_momentum`` and ``server_learning_rate`` are our fedavgm's ``momentum`` and
``server_lr``. Flower's FedProx puts ``proximal-mu`` in the clients' config: here our clients then train
with our FedProx objective at that mu (the same (mu/2)||w - w_t||^2 term).
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import pickle
import random
from typing import Any, Dict

import numpy as np
import torch

from harness.methods.aggregator import Aggregator
from harness.core.errors import ConfigError, HarnessError
from harness.flower import PREFIX, require_flwr
from harness.flower.records import reply_to, shared_metrics, to_array_record, to_state
from harness.core.typecheck import coerce, did_you_mean

# what our round engine decides and a Flower strategy must not: sampling, and the record layout
OURS = {"fraction_train": 1.0, "min_train_nodes": 1, "min_available_nodes": 1}
RESERVED = (*OURS, "fraction_evaluate", "min_evaluate_nodes", "weighted_by_key", "arrayrecord_key",
            "configrecord_key", "train_metrics_aggr_fn", "evaluate_metrics_aggr_fn")
# strategies whose client side our clients do not run (they clip on the client, or train trees)
UNSUPPORTED = {"DifferentialPrivacyClientSideFixedClipping": "clients would clip their own updates",
               "DifferentialPrivacyClientSideAdaptiveClipping": "clients would clip their own updates",
               "FedXgbBagging": "XGBoost trees, not arrays", "FedXgbCyclic": "XGBoost trees, not arrays"}
STATE_KEY = "flwr/pickle"
NODE_BASE = 1 << 32


def strategy_classes() -> Dict[str, type]:
    """{name: class} of the Flower strategies our round engine can run."""
    module = require_flwr("aggregator.method=flwr:...").serverapp.strategy
    base = module.Strategy
    return {n: getattr(module, n) for n in module.__all__
            if n not in UNSUPPORTED and n != "Strategy" and inspect.isclass(getattr(module, n))
            and issubclass(getattr(module, n), base)}


def build_strategy(name: str, kwargs: Dict[str, Any], key: str = "aggregator.flwr"):
    """The Flower strategy object ``name(**kwargs)`` with our sampling; ConfigError on a bad name or argument.
    A wrapper's ``strategy`` argument (the DP wrappers) is a class name or a mapping {class: NAME, ...}."""
    cls = strategy_class(name)
    params = inspect.signature(cls.__init__).parameters
    kwargs = checked_kwargs(name, params, kwargs, key)
    if "strategy" in params:
        inner = kwargs["strategy"]
        inner = {"class": inner} if isinstance(inner, str) else dict(inner)
        kwargs["strategy"] = build_strategy(inner.pop("class", "FedAvg"), inner, f"{key}.strategy")
    else:
        kwargs.update({k: v for k, v in OURS.items() if k in params})
    with quiet_flower():
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{key}: {name}({kwargs}) refused: {e}") from None


def strategy_class(name: str) -> type:
    classes = strategy_classes()
    if name not in classes:
        why = f" ({UNSUPPORTED[name]})" if name in UNSUPPORTED else did_you_mean(name, classes)
        raise ConfigError(f"aggregator.method={PREFIX}{name}: not a Flower strategy the round engine runs{why}; "
                          f"valid: {', '.join(PREFIX + n for n in sorted(classes))}")
    return classes[name]


def checked_kwargs(name: str, params, kwargs: Dict[str, Any], key: str) -> Dict[str, Any]:
    """``kwargs`` against the class's signature: no reserved, unknown or missing argument, scalars typed."""
    valid = sorted(p for p in params if p != "self" and p not in RESERVED)
    out = dict(kwargs)
    for arg, value in kwargs.items():
        if arg in RESERVED:
            raise ConfigError(f"{key}.{arg}: sampling and record keys are the round engine's "
                              f"(federation.clients_per_round); valid here for {name}: {', '.join(valid)}")
        if arg not in valid:
            raise ConfigError(f"{key}.{arg}: {name} takes no argument '{arg}'; valid: {', '.join(valid)}")
        if params[arg].annotation in (bool, int, float, str):      # Flower checks few types itself
            out[arg] = coerce(f"{key}.{arg}", value, params[arg].annotation)
    missing = [p for p in valid if params[p].default is inspect.Parameter.empty and p not in kwargs]
    if missing:
        raise ConfigError(f"{key}: {name} needs {', '.join(missing)}; valid: {', '.join(valid)}")
    return out


@dataclasses.dataclass
class FlowerStrategy(Aggregator):
    """``flwr.serverapp.strategy.<strategy>(**kwargs)`` as a server rule; ``seed`` seeds its randomness."""
    name = "flwr"
    secure_aggregation_reason = "a Flower strategy receives each client's parameters (its own SecAgg+ is a Flower mod)"
    strategy: str = "FedAvg"
    kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        self.impl = build_strategy(self.strategy, self.kwargs)

    def client_objective(self):
        mu = proximal_mu(self.impl)
        if mu is None:
            return super().client_objective()
        from harness.core.registry import build_aggregator
        return build_aggregator("fedprox", mu=float(mu)).client_objective()

    def _aggregate(self, global_state, updates):
        t = self.round + 1
        grid = ParticipantsGrid(node_id(u.client_id) for u in updates)
        flwr = require_flwr(f"{PREFIX}{self.strategy}")
        with seeded(self.seed, t), quiet_flower(), server_identity():
            try:
                sent = {m.metadata.dst_node_id: m for m in self.impl.configure_train(
                    t, to_array_record(global_state), flwr.app.ConfigRecord(), grid)}
                shared = shared_metrics(updates)
                arrays, _ = self.impl.aggregate_train(t, [reply_to(sent[node_id(u.client_id)], u, shared)
                                                          for u in updates])
            except flwr.app.exception.AppExitException as e:     # Flower's "cannot aggregate this round"
                raise HarnessError(f"round {t}: {PREFIX}{self.strategy}: {e}") from None
        if arrays is None:
            raise HarnessError(f"round {t}: {PREFIX}{self.strategy} aggregated nothing from "
                               f"{len(updates)} replies (Flower's warning above says why)")
        return to_state(arrays)

    def _tensors(self):
        blob = pickle.dumps(self.impl, protocol=pickle.HIGHEST_PROTOCOL)
        return {STATE_KEY: torch.frombuffer(bytearray(blob), dtype=torch.uint8)}

    def _load_tensors(self, tensors):
        # our own checkpoint, written by this class: the same trust as the projector stored beside it
        if STATE_KEY in tensors:
            self.impl = pickle.loads(tensors[STATE_KEY].numpy().tobytes())


def node_id(client_id: int) -> int:
    """Client k's Flower node id: clear of the SuperLink's own id (1)."""
    return NODE_BASE + client_id


def proximal_mu(impl):
    """FedProx's mu, also inside a wrapper; None for every other strategy."""
    inner = getattr(impl, "strategy", None)
    return getattr(impl, "proximal_mu", None) if inner is None else proximal_mu(inner)


def flower_aggregator(name: str, hparams: Dict[str, Any]) -> FlowerStrategy:
    """``flwr:<Class>`` with ``aggregator.flwr`` (the class's keyword arguments, and our ``seed``)."""
    hparams = dict(hparams)
    seed = hparams.pop("seed", 0)
    return FlowerStrategy(strategy=name[len(PREFIX):] if name.startswith(PREFIX) else name,
                          kwargs=hparams, seed=seed)


@contextlib.contextmanager
def seeded(seed: int, round_: int):
    """Python's and NumPy's global generators seeded from (seed, round), restored on the way out."""
    py, npy = random.getstate(), np.random.get_state()
    random.seed(f"flwr-{seed}-{round_}")
    np.random.seed(np.random.SeedSequence([seed, round_]).generate_state(1)[0])
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)


@contextlib.contextmanager
def server_identity():
    """Flower's messages read the process's run and node ids, which a ServerApp process has set; ours is
    the SuperLink's stand-in for the duration of the call (an identity already set is left alone)."""
    from flwr.common.constant import SUPERLINK_NODE_ID
    from flwr.supercore.task_identity import TaskIdentity
    if TaskIdentity._run_id is not None:
        yield
        return
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 0, 0, SUPERLINK_NODE_ID
    try:
        yield
    finally:
        TaskIdentity._run_id = TaskIdentity._task_id = TaskIdentity._node_id = None


@contextlib.contextmanager
def quiet_flower():
    """Flower logs every configure/aggregate call at INFO; our round lines already say it."""
    logger = logging.getLogger("flwr")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def ParticipantsGrid(node_ids):
    """A Flower ``Grid`` that knows the round's participants and sends nothing (the engine does)."""
    grid = require_flwr("flwr").serverapp.Grid
    nodes = list(node_ids)

    class _Participants(grid):
        def get_node_ids(self):
            return list(nodes)

        def _engine_sends(self, *args, **kwargs):
            raise NotImplementedError("the round engine moves the messages, not this grid")

        set_run = create_message = push_messages = pull_messages = send_and_receive = _engine_sends
        run = property(_engine_sends)

    return _Participants()
