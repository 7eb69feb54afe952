"""Reweighted loss from per-example losses, for any trainer (causal-LM samples or preference pairs).

    loss = world_size * sum_{i on this rank} w_i l_i,   w = sample_weights(l over the global batch)

DDP averages gradients over the world_size ranks, so the gradient that reaches the optimizer is that of
sum_{i in global batch} w_i l_i; with uniform weights (w_i = 1/N) it is the ordinary mean loss.
Per-pair preference losses may be negative (rDPO is unbounded below): the min-max normalisation inside
`sample_weights` is invariant to shifting every loss by a constant (and to positive scaling), so the sign
does not matter; the weights only look at where each pair's loss sits between the batch's min and max.
"""
from __future__ import annotations

from typing import Callable

import torch

from fairalign.align.reweighting.distributed import Gathered, gather_rows
from fairalign.align.reweighting.weights import sample_weights, weight_stats

GatherFn = Callable[[torch.Tensor], Gathered]


def local_only(rows: torch.Tensor) -> Gathered:
    """A gather that does not communicate: weights over this process's batch only."""
    return Gathered(rows.detach(), 0, 1)


def reweight_losses(
    per_example_losses: torch.Tensor,
    strategy: str,
    temperature: float,
    delta: float = 1.0,
    gather: GatherFn = gather_rows,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """Sow et al. 2025 reweighting of one (micro-)batch of per-example losses.

    per_example_losses: (n,) losses of this process, with autograd history (any sign).
    strategy, temperature, delta: see `sample_weights`.
    gather: rows (n, 2) -> Gathered over the data-parallel ranks; the default `gather_rows` uses
        torch.distributed when a process group exists and is the identity otherwise; `local_only` opts out.
    mask: optional (n,) bool, False for examples to ignore (weight 0).
    Returns (scalar loss to backpropagate, (n,) detached weights of this process's examples (they sum to 1
    over the global batch, not per process), stats of `weight_stats` over the global batch).
    Under gradient accumulation the weights span one micro-batch on every rank; a Trainer that divides the
    loss by the accumulation steps (the default) then averages the micro-batches.
    """
    losses = per_example_losses
    if losses.dim() != 1:
        raise ValueError(f"per_example_losses must be 1-D (one loss per example); got shape {tuple(losses.shape)}")
    valid = torch.ones_like(losses, dtype=torch.bool) if mask is None else mask.to(losses.device).bool()
    if valid.shape != losses.shape:
        raise ValueError(f"mask must have the shape of per_example_losses {tuple(losses.shape)}; got {tuple(valid.shape)}")
    rows = torch.stack([losses.detach().float(), valid.float()], dim=1)  # (n, 2): gathered in one call
    gathered = gather(rows)
    global_losses, global_valid = gathered.values[:, 0], gathered.values[:, 1] > 0.5
    global_weights = sample_weights(global_losses, strategy, temperature, delta, global_valid)
    weights = gathered.local(global_weights, losses.shape[0]).to(losses.dtype)
    kept = torch.where(valid, losses, torch.zeros_like(losses))
    loss = gathered.world_size * (weights * kept).sum()
    return loss, weights, weight_stats(global_losses, global_weights, global_valid)
