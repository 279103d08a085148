"""Our tensors and uploads as Flower records, and back.

Arrays cross the bridge as float64 NumPy arrays: SPEC section 2 does all server arithmetic in float64,
and a Flower strategy computes in the dtype of the arrays it is handed, so it then does too. A client's
reply is one ``ArrayRecord`` (its trained projector, key ``arrays``) and one ``MetricRecord`` (key
``metrics``) holding ``num-examples`` (the weight every Flower strategy reads), ``train_loss`` (what
QFedAvg reads) and ``align-error`` (Fed-CMP's e_k) where the client reported them; what a method's client
objective uploads besides the projector (SCAFFOLD's control variates) travels as further ArrayRecords
named ``extra.<name>``.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional

import numpy as np
import torch

from harness.core.types import ClientUpdate

ARRAYS, METRICS, EXTRA = "arrays", "metrics", "extra."
NUM_EXAMPLES, TRAIN_LOSS, ALIGN_ERROR = "num-examples", "train_loss", "align-error"


def to_array_record(state: Mapping[str, torch.Tensor], float64: bool = True):
    """{name: tensor} -> ArrayRecord of NumPy arrays in float64 (or, ``float64=False``, in each tensor's own
    dtype: what a client receives); copies, ``state`` is not touched."""
    from flwr.app import Array, ArrayRecord
    return ArrayRecord({k: Array(t.detach().to("cpu", torch.float64 if float64 else t.dtype).numpy().copy())
                        for k, t in state.items()})


def to_state(record) -> Dict[str, torch.Tensor]:
    """ArrayRecord -> {name: tensor}, in the arrays' own dtype."""
    return {k: torch.from_numpy(np.array(a.numpy(), copy=True)) for k, a in record.items()}


def update_metrics(u: ClientUpdate, shared=(TRAIN_LOSS, ALIGN_ERROR)):
    """u's MetricRecord; of the optional metrics only those in ``shared`` (Flower requires every reply of
    a round to carry the same keys)."""
    from flwr.app import MetricRecord
    optional = {TRAIN_LOSS: u.loss, ALIGN_ERROR: u.align_error}
    return MetricRecord({NUM_EXAMPLES: int(u.num_samples),
                         **{k: float(v) for k, v in optional.items() if k in shared and v is not None}})


def shared_metrics(updates) -> tuple:
    """The optional metrics every update of the round reported."""
    return tuple(k for k, attr in ((TRAIN_LOSS, "loss"), (ALIGN_ERROR, "align_error"))
                 if all(getattr(u, attr) is not None for u in updates))


def reply_to(instruction, u: ClientUpdate, shared=(TRAIN_LOSS, ALIGN_ERROR)):
    """The Flower reply a client would send to ``instruction`` after training: ``u`` as records."""
    from flwr.app import Message, RecordDict
    content = RecordDict({ARRAYS: to_array_record(u.state), METRICS: update_metrics(u, shared),
                          **{EXTRA + name: to_array_record(s) for name, s in u.extras.items()}})
    return Message(content, reply_to=instruction)


def update_of(content, client_id: int) -> ClientUpdate:
    """A reply's RecordDict -> our ClientUpdate (the inverse of :func:`reply_to`)."""
    metrics = content[METRICS]
    align: Optional[float] = metrics.get(ALIGN_ERROR)
    loss: Optional[float] = metrics.get(TRAIN_LOSS)
    extras = {k[len(EXTRA):]: to_state(r) for k, r in content.array_records.items() if k.startswith(EXTRA)}
    return ClientUpdate(client_id, to_state(content[ARRAYS]), int(metrics[NUM_EXAMPLES]),
                        None if align is None else float(align), extras,
                        loss=None if loss is None else float(loss))
