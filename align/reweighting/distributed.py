"""Gather detached per-sample values over the data-parallel ranks, in global-rank order.

The reference code slices the gathered weights by the *local* rank, which is wrong on more than one node,
and crashes without a process group. Here the offset of this process's rows is computed from its rank in
the (global, by default) process group, ranks may hold different numbers of rows (uneven last batches,
padding-free sequences), and a single process with no process group is the identity.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Gathered:
    """values: the rows of every rank, rank 0 first; start: index of this process's first row in values;
    world_size: number of data-parallel processes (DDP averages gradients over them)."""

    values: torch.Tensor
    start: int
    world_size: int

    def local(self, tensor: torch.Tensor, length: int) -> torch.Tensor:
        """This process's slice of a tensor aligned with `values` (e.g. the global weights)."""
        return tensor[self.start : self.start + length]


def is_distributed(group=None) -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1


def gather_rows(local: torch.Tensor, group=None) -> Gathered:
    """All-gather `local` (rows along dim 0; may differ in count across ranks) from every rank of `group`
    (default: all processes). Detached; identical result on every rank."""
    local = local.detach()
    if not is_distributed(group):
        return Gathered(local, 0, 1)
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)  # rank within the group: global for the default group, never the local rank
    size = torch.tensor([local.shape[0]], device=local.device, dtype=torch.long)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size, group=group)
    sizes = [int(s.item()) for s in sizes]
    padded = local.new_zeros((max(sizes), *local.shape[1:]))
    padded[: local.shape[0]] = local
    chunks = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(chunks, padded.contiguous(), group=group)
    values = torch.cat([chunk[:n] for chunk, n in zip(chunks, sizes)], dim=0)
    return Gathered(values, sum(sizes[:rank]), world)
