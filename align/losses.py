"""Preference losses as pure tensor functions: sequence log-probs in, one loss per example out.

Notation (../docs/losses.md): lw, ll = policy log-probs of the chosen / rejected completion (summed over
completion tokens), rw, rl = the same under the frozen reference, h = (lw - rw) - (ll - rl), z = beta * h.
Every function returns a (B,) tensor; trainers average it. No function here knows about models.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def preference_logits(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps):
    """h = (lw - rw) - (ll - rl): the implicit-reward margin before scaling by beta."""
    return (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta: float):
    """DPO (Rafailov et al. 2023, Eq. 7): L = -log sigma(beta * h) = softplus(-beta * h)."""
    h = preference_logits(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    return -F.logsigmoid(beta * h)  # = softplus(-beta*h); logsigmoid has no threshold approximation


def validate_flip_rate(flip_rate) -> None:
    """epsilon must lie in [0, 1/2): at 1/2 the labels carry no information and the loss divides by zero."""
    if torch.is_tensor(flip_rate):
        bad = (flip_rate < 0) | (flip_rate >= 0.5) | torch.isnan(flip_rate)
        if bool(bad.any()):
            raise ValueError(
                f"flip_rate must lie in [0, 0.5) for every example; got values {flip_rate[bad].tolist()[:5]}. "
                "A rate of 0.5 means the labels are pure noise; above it, swap chosen and rejected."
            )
    elif not (0.0 <= float(flip_rate) < 0.5):
        raise ValueError(
            f"flip_rate must lie in [0, 0.5); got {flip_rate}. A rate of 0.5 means the labels are pure noise "
            "(the rDPO correction divides by 1 - 2*flip_rate); above it, swap chosen and rejected."
        )


def robust_dpo_loss(
    policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta: float, flip_rate
):
    """rDPO (Chowdhury, Kini, Natarajan, ICML 2024, Eq. 8), unbiased under label flips with rate eps:

        L_eps(z) = [ -(1-eps) log sigma(z) + eps log sigma(-z) ] / (1 - 2 eps)
                 = softplus(-z) - eps / (1 - 2 eps) * z                (closed form used here)

    flip_rate: a float or a (B,) tensor (per-example rates). eps = 0 is DPO exactly. The gradient weight
    sigma(-z) + eps/(1-2eps) never vanishes, so the loss is unbounded below: a negative loss is expected.
    """
    validate_flip_rate(flip_rate)
    z = beta * preference_logits(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    eps = torch.as_tensor(flip_rate, dtype=z.dtype, device=z.device)
    return -F.logsigmoid(z) - eps / (1 - 2 * eps) * z


def conservative_dpo_loss(
    policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta: float, label_smoothing
):
    """cDPO / label smoothing (Mitchell 2023): -(1-eps) log sigma(z) - eps log sigma(-z). NOT unbiased;
    its gradient weight sigma(-z) - eps vanishes at a finite margin. Here for comparison with rDPO."""
    z = beta * preference_logits(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    return -(1 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)


def sft_nll(chosen_logps, chosen_lengths, reduction: str = "sum"):
    """Negative log-likelihood of the SFT target per example: summed over its tokens ("sum") or the
    per-sequence token mean ("mean")."""
    if reduction == "sum":
        return -chosen_logps
    if reduction == "mean":
        return -chosen_logps / chosen_lengths.clamp(min=1)
    raise ValueError(f"sft_reduction must be 'sum' or 'mean'; got {reduction!r}")


def rpo_loss(
    policy_chosen_logps,
    policy_rejected_logps,
    ref_chosen_logps,
    ref_rejected_logps,
    beta: float,
    eta: float,
    sft_target_logps,
    sft_target_lengths,
    sft_reduction: str = "sum",
):
    """RPO, Regularized Preference Optimization (Liu et al., NeurIPS 2024, "Your SFT loss is implicitly an
    adversarial regularizer"), not Pang et al.'s iterative RPO nor NVIDIA's reward-aware RPO:

        sum  (paper, Eq. 4.3): L = L_DPO + eta * beta * ( -sum_t log pi(y_t | x, y_<t) )
        mean (authors' OpenRLHF variant): L = L_DPO + eta * ( -mean_t log pi(y_t | x, y_<t) )

    The SFT target is the chosen response or a separate baseline response (the paper's general form).
    """
    dpo = dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta)
    nll = sft_nll(sft_target_logps, sft_target_lengths, sft_reduction)
    scale = eta * beta if sft_reduction == "sum" else eta
    return dpo + scale * nll
