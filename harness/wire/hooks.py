"""The two ends of the wire in a round. Client side (:func:`client_send`, on each group leader before
the gather): the trained projector is replaced by what the client actually sends, a compressed update
or a masked vector, with its size in ``wire_bytes`` (``comm/bytes_up``). Server side
(:class:`ServerWire`, in :class:`harness.engine.server.Server`): compressed updates are decoded back into
theta_k = theta + decode(...); masked vectors are summed and unmasked, and the rule runs on the sum
(``Aggregator.aggregate_sums``), so under secure aggregation no individual upload reaches it.

Topk's residual is the client's persistent state. A client may be trained by a different group from
one round to the next, so the harness keeps it on rank 0 (standing in for the client's disk: it is
never counted as sent), hands it to the client in the round package and checkpoints it with the round.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Dict, List

import torch

from harness.methods.aggregator import flatten_clients, unflatten_clients
from harness.core.types import ClientReport, ClientResult, FailedClient
from harness.wire import compress, secagg

RESIDUAL = "residual"


def _non_finite(state) -> str | None:
    return next((k for k in sorted(state) if not torch.isfinite(state[k]).all()), None)


def client_send(cfg, package: dict, report: ClientReport) -> ClientReport:
    """What client ``report.client_id`` puts on the wire (``report`` itself without a wire mode)."""
    fed = cfg.federation
    if not (fed.secure_aggregation or fed.compression != "none"):
        return report
    if isinstance(report, FailedClient):
        # a client past the deadline did send, late: it is encoded like the others and the server drops
        # it, so under secure aggregation nothing leaves a client in clear
        return report if report.result is None else replace(report, result=_encoded(fed, package, report.result))
    return _encoded(fed, package, report)


def _encoded(fed, package: dict, result: ClientResult) -> ClientReport:
    bad = _non_finite(result.state)
    if bad:   # a poisoned update cannot be encoded; the client drops out of the round, sending nothing
        return FailedClient(result.client_id, f"non-finite values in {bad}")
    return masked_upload(fed, package, result) if fed.secure_aggregation else compressed_upload(fed, package, result)


def compressed_upload(fed, package: dict, result: ClientResult) -> ClientResult:
    theta, residuals = package["global"], package.get("client_state", {}).get(result.client_id, {})
    payload, kept = {}, {}
    for name in sorted(theta):
        delta = result.state[name].double() - theta[name].double()
        payload[name], residual = compress.encode(fed.compression, delta, residuals.get(name),
                                                  fed.compression_block, fed.topk_fraction)
        if residual is not None:
            kept[name] = residual.reshape(theta[name].shape)
    size = sum(compress.payload_bytes(p) for p in payload.values())
    return replace(result, state=None, payload=payload, wire_bytes=size, client_state=kept)


def masked_upload(fed, package: dict, result: ClientResult) -> ClientReport:
    participants = package["participants"]
    x, peak = secagg.client_vector(result.state, package["global"], result.num_samples, len(participants))
    if peak >= secagg.SUM_BOUND:
        return FailedClient(result.client_id, f"secure aggregation: |n_k Delta_k| x K = {peak:.3g} is past "
                                              f"the fixed-point bound 2^{63 - secagg.FRACTION_BITS}")
    y = secagg.mask(secagg.encode(x), result.client_id, participants, fed.seed, package["round"])
    return replace(result, state=None, masked=y, wire_bytes=int(y.nbytes))


class ServerWire:
    """Rank 0's end: decodes uploads, unmasks sums, and holds the clients' persistent wire state."""

    def __init__(self, cfg):
        self.fed = cfg.federation
        self.secure = self.fed.secure_aggregation
        self.residuals: Dict[int, Dict[str, torch.Tensor]] = {}
        self.participants: List[int] = []

    def client_state(self, clients: List[int]) -> dict:
        """The round package's share: each participant's residual (topk only)."""
        self.participants = list(clients)
        return {k: self.residuals[k] for k in clients if k in self.residuals}

    def receive(self, reports: List[ClientReport], theta) -> List[ClientReport]:
        """Compressed payloads -> theta_k (float, as the rules expect); keeps the clients' new residuals."""
        return [self._received(r, theta) for r in reports]

    def _received(self, report: ClientReport, theta) -> ClientReport:
        if isinstance(report, FailedClient):
            return report if report.result is None else replace(report, result=self._received(report.result, theta))
        if report.client_state:
            self.residuals[report.client_id] = report.client_state
            report = replace(report, client_state={})
        if report.payload is None:
            return report
        state = {k: (theta[k].double() + compress.decode(
            self.fed.compression, report.payload[k], theta[k].numel(), self.fed.compression_block
        ).double().reshape(theta[k].shape)).to(theta[k].dtype) for k in sorted(theta)}
        return replace(report, state=state, payload=None, client_state={})

    def aggregate_masked(self, aggregator, round_: int, ok: List[ClientResult], theta) -> Dict[str, torch.Tensor]:
        """The rule on the survivors' unmasked sum; the dropped participants' masks are recovered."""
        masked = {r.client_id: r.masked for r in ok}
        total = secagg.unmask_sum(masked, self.participants, self.fed.seed, round_)
        sums, n = secagg.split_sum(total, theta)
        return aggregator.aggregate_sums(theta, sums, n, len(masked))

    def state_tensors(self) -> Dict[str, torch.Tensor]:
        return flatten_clients(RESIDUAL, self.residuals)

    def load(self, tensors: Dict[str, torch.Tensor]) -> None:
        self.residuals = unflatten_clients(RESIDUAL, tensors)
