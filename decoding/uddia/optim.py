"""The optimiser of UDDIA's per-token update: one in-place Adam step on (B, P), each row its own optimiser."""
from __future__ import annotations

import torch


@torch.no_grad()
def adam_step(theta: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, step: int,
              lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
    """One in-place Adam step (Kingma & Ba 2015, Alg. 1), elementwise, so rows of (B, P) stay independent:
        m <- β1 m + (1-β1) g;  v <- β2 v + (1-β2) g²;  θ <- θ - lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + ε)
    From a fresh state (t = 1) the update is lr · g / (|g| + ε): about ±lr for every tuned number (UDDIA's
    sign-like first step)."""
    beta1, beta2 = betas
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(eps)
    theta.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1**step))
