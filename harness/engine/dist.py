"""One torchrun world split into client groups (SPEC section 4).

Ranks form G = min(world, clients) contiguous groups of near-equal size (16 ranks, 5 clients ->
4,3,3,3,3); the clients of a round are dealt round-robin over the groups, and a group with several
clients trains them one after another (waves), so one process can simulate every client. Rank 0 is
the server; every group's first rank is its leader. Control messages (round packages, uploads) go
over a gloo group with a timeout, so no rank can wait forever.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Dict, List

import torch
import torch.distributed as dist


def group_sizes(world: int, clients: int) -> List[int]:
    groups = min(world, clients)
    base, extra = divmod(world, groups)
    return [base + 1 if g < extra else base for g in range(groups)]


def group_ranks(world: int, clients: int) -> List[List[int]]:
    ranks, start = [], 0
    for size in group_sizes(world, clients):
        ranks.append(list(range(start, start + size)))
        start += size
    return ranks


def assign_clients(participants: List[int], num_groups: int) -> Dict[int, List[int]]:
    """Group index -> its clients in wave order (round-robin by position among the participants)."""
    plan: Dict[int, List[int]] = {g: [] for g in range(num_groups)}
    for i, client in enumerate(participants):
        plan[i % num_groups].append(client)
    return plan


@dataclass
class World:
    rank: int
    size: int
    groups: List[List[int]]
    group_index: int
    group: Any          # this rank's client group (DeepSpeed's data-parallel group)
    control: Any        # gloo group over all ranks for objects

    @property
    def is_server(self) -> bool:
        return self.rank == 0

    @property
    def is_leader(self) -> bool:
        return self.rank == self.groups[self.group_index][0]

    def broadcast(self, obj):
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def gather(self, obj) -> List:
        out = [None] * self.size if self.is_server else None
        dist.gather_object(obj, out, dst=0, group=self.control)
        return out

    def barrier(self):
        dist.barrier(group=self.control)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _single_process_env() -> bool:
    """Let a plain `python -m` run (no torchrun) form a world of one; True when this call set it up."""
    if "RANK" in os.environ:
        return False
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    return True


def _init_process_group(backend: str, timeout: timedelta, own_port: bool, tries: int = 5) -> None:
    """DeepSpeed's init; a world of one whose free port another process took between our probe and the
    store's bind (several runs starting at once) takes another port instead of failing."""
    import deepspeed
    for attempt in range(tries):
        try:
            deepspeed.init_distributed(dist_backend=backend, timeout=timeout)
            return
        except dist.DistNetworkError as e:
            if not own_port or "EADDRINUSE" not in str(e) or attempt == tries - 1:
                raise
            os.environ["MASTER_PORT"] = str(_free_port())


def init_world(clients: int, timeout_s: float) -> World:
    """Initialise torch.distributed (via DeepSpeed) and split the world into client groups."""
    own_port = _single_process_env()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    timeout = timedelta(seconds=timeout_s)
    if not dist.is_initialized():
        _init_process_group(backend, timeout, own_port)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    rank, size = dist.get_rank(), dist.get_world_size()
    groups = group_ranks(size, clients)
    handles = [dist.new_group(r, backend=backend, timeout=timeout) for r in groups]
    control = dist.new_group(list(range(size)), backend="gloo", timeout=timeout)
    index = next(i for i, r in enumerate(groups) if rank in r)
    return World(rank, size, groups, index, handles[index], control)
