"""Loss-based sample weights: Sow et al., "Dynamic Loss-Based Sample Reweighting for Improved Large
Language Model Pretraining", ICLR 2025 (arXiv 2502.06733), Sec. 3.

Given the per-sample losses l_1..l_N of the *global* batch (every data-parallel rank, every micro-batch of
one accumulation step), with delta > 0 and temperature r > 0:

    x_i = delta * (2 l_i - (l_max + l_min)) / (l_max - l_min)        in [-delta, delta]   (min-max normalisation)
    w_i = softmax_i( f(x_i) / r )                                    sum_i w_i = 1
    L   = sum_i w_i l_i                                              (uniform w_i = 1/N gives the mean loss)

with one of the strategies f (registered in STRATEGIES):

    uniform     f(x) = 0                  ordinary training (every w_i = 1/N)
    linupper    f(x) = min(x + delta, delta)   recommended: the lowest-loss (redundant, easy) samples get less
                                          weight, everything above the midpoint the same, highest weight
    quadratic   f(x) = 1 - x^2 / delta^2  favours medium losses
    extremes    f(x) = |x|                favours both ends
    linear      f(x) = 0.5 x + 0.5 delta  weight grows with the loss

Equal losses (l_max = l_min) give x = 0 and so uniform weights, not a division by zero. Because x depends
only on differences and ratios of losses, the weights are invariant to adding a constant to every loss and to
multiplying them by a positive number: negative losses (preference losses such as rDPO's are unbounded below)
need no special handling. The weights are computed from detached losses, so no gradient flows through them.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

Strategy = Callable[[torch.Tensor, float], torch.Tensor]
STRATEGIES: dict[str, Strategy] = {}


def register_strategy(name: str) -> Callable[[Strategy], Strategy]:
    """Register f(x, delta) -> scores under `name` (lowercase key used by configs and recipes)."""

    def decorator(fn: Strategy) -> Strategy:
        if name in STRATEGIES:
            raise ValueError(f"reweighting strategy {name!r} is already registered")
        STRATEGIES[name] = fn
        return fn

    return decorator


@register_strategy("uniform")
def uniform_scores(x: torch.Tensor, delta: float) -> torch.Tensor:
    """f(x) = 0: every sample the same weight (the ordinary loss)."""
    return torch.zeros_like(x)


@register_strategy("linupper")
def linupper_scores(x: torch.Tensor, delta: float) -> torch.Tensor:
    """f(x) = min(x + delta, delta) (LinUpper, Sow et al. 2025)."""
    return torch.clamp(x + delta, max=delta)


@register_strategy("quadratic")
def quadratic_scores(x: torch.Tensor, delta: float) -> torch.Tensor:
    """f(x) = 1 - x^2 / delta^2 (Quadratic, Sow et al. 2025)."""
    return 1.0 - x.square() / delta**2


@register_strategy("extremes")
def extremes_scores(x: torch.Tensor, delta: float) -> torch.Tensor:
    """f(x) = |x| (Extremes, Sow et al. 2025)."""
    return x.abs()


@register_strategy("linear")
def linear_scores(x: torch.Tensor, delta: float) -> torch.Tensor:
    """f(x) = 0.5 x + 0.5 delta (plain linear)."""
    return 0.5 * x + 0.5 * delta


def validate_weighting(strategy: str, temperature: float, delta: float = 1.0) -> None:
    """ValueError naming the bad argument; shared by `sample_weights` and the trainer configs."""
    if strategy not in STRATEGIES:
        raise ValueError(f"reweight strategy must be one of {sorted(STRATEGIES)}; got {strategy!r}")
    if not _is_number(temperature) or not float(temperature) > 0:
        raise ValueError(
            f"reweight temperature r must be a number > 0 (small r: sharp weights; r -> inf: uniform); got {temperature!r}"
        )
    if not _is_number(delta) or not (0 < float(delta) < math.inf):
        raise ValueError(f"reweight delta must be a finite number > 0 (the paper uses 1.0); got {delta!r}")


def _is_number(value) -> bool:
    if isinstance(value, (bool, str)) or torch.is_tensor(value):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _as_losses(losses) -> torch.Tensor:
    losses = torch.as_tensor(losses)
    if losses.dim() != 1:
        raise ValueError(f"losses must be a 1-D tensor of per-sample losses; got shape {tuple(losses.shape)}")
    # float32 at least: bf16 losses would round the min-max normalisation.
    return losses.detach().to(torch.promote_types(losses.dtype, torch.float32))


def normalize_losses(losses, delta: float = 1.0, mask=None) -> torch.Tensor:
    """x_i = delta * (2 l_i - (l_max + l_min)) / (l_max - l_min), over the samples where mask is True
    (all by default); 0 where masked out or where every loss is equal."""
    losses = _as_losses(losses)
    valid = torch.ones_like(losses, dtype=torch.bool) if mask is None else torch.as_tensor(mask, device=losses.device).bool()
    if valid.shape != losses.shape:
        raise ValueError(f"mask must have the shape of losses {tuple(losses.shape)}; got {tuple(valid.shape)}")
    if losses.numel() == 0:
        return losses.clone()
    big = torch.finfo(losses.dtype).max
    l_max = torch.where(valid, losses, -big).max()
    l_min = torch.where(valid, losses, big).min()
    spread = l_max - l_min
    # torch.where keeps this free of host syncs; the clamp only guards the branch that is thrown away.
    x = delta * (2 * losses - (l_max + l_min)) / spread.clamp(min=torch.finfo(losses.dtype).tiny)
    return torch.where(valid & (spread > 0), x, torch.zeros_like(x))


def sample_weights(losses, strategy: str, temperature: float, delta: float = 1.0, mask=None) -> torch.Tensor:
    """w = softmax(f(x) / r) over the global batch (Sow et al. 2025, Sec. 3); sums to 1 over the valid samples.

    losses: (N,) per-sample losses of the whole global batch (any sign; detached here).
    strategy: a key of STRATEGIES; temperature r in (0, inf] (inf gives uniform weights); delta > 0.
    mask: optional (N,) bool, False for samples without target tokens: they get weight 0.
    Returns (N,) float weights with no autograd history. NaN/inf losses propagate to NaN weights, as they would
    to the ordinary mean loss.
    """
    validate_weighting(strategy, temperature, delta)
    losses = _as_losses(losses)
    valid = torch.ones_like(losses, dtype=torch.bool) if mask is None else torch.as_tensor(mask, device=losses.device).bool()
    x = normalize_losses(losses, delta, valid)
    scores = STRATEGIES[strategy](x, float(delta)) / float(temperature)
    scores = torch.where(valid, scores, torch.full_like(scores, -math.inf))
    weights = torch.softmax(scores, dim=0)
    # A batch with no valid sample would give 0/0: it gets all-zero weights (and so a zero loss).
    return torch.where(valid, weights, torch.zeros_like(weights))


STAT_KEYS = (
    "weight_entropy", "weight_max", "weight_min", "ess", "frac_upweighted",
    "loss_mean", "loss_weighted",
    "loss_up_q25", "loss_up_q50", "loss_up_q75", "loss_down_q25", "loss_down_q50", "loss_down_q75",
)


def weight_stats_tensor(losses, weights, mask=None) -> torch.Tensor:
    """The statistics of STAT_KEYS as one (len(STAT_KEYS),) tensor, computed on the device without host
    syncs (the trainer calls this every step and reads it only when it logs). See `weight_stats`."""
    losses = _as_losses(losses)
    weights = torch.as_tensor(weights, device=losses.device).detach().to(losses.dtype)
    valid = torch.ones_like(losses, dtype=torch.bool) if mask is None else torch.as_tensor(mask, device=losses.device).bool()
    n = valid.sum().to(losses.dtype)
    nan = torch.full_like(n, math.nan)
    w = torch.where(valid, weights, torch.zeros_like(weights))
    plogp = torch.where(w > 0, w * w.clamp(min=torch.finfo(w.dtype).tiny).log(), torch.zeros_like(w))
    entropy = -plogp.sum()
    # Normalised by log N: 1 means uniform; undefined (reported as 1) for a single sample.
    entropy_ratio = torch.where(n > 1, entropy / n.clamp(min=2).log(), torch.ones_like(n))
    big = torch.finfo(w.dtype).max
    weight_max = torch.where(valid, w, -big).max() * n
    weight_min = torch.where(valid, w, big).min() * n
    ess = 1.0 / (n * w.square().sum()).clamp(min=torch.finfo(w.dtype).tiny)
    # Up/down relative to uniform 1/N, with a relative tolerance so float noise does not count.
    up = valid & (w * n > 1 + 1e-6)
    down = valid & (w * n < 1 - 1e-6)
    frac_up = up.sum() / n.clamp(min=1)
    loss_mean = torch.where(valid, losses, torch.zeros_like(losses)).sum() / n.clamp(min=1)
    loss_weighted = (w * torch.where(valid, losses, torch.zeros_like(losses))).sum()
    q = torch.tensor([0.25, 0.5, 0.75], dtype=losses.dtype, device=losses.device)
    up_q = torch.nanquantile(torch.where(up, losses, nan), q) if losses.numel() else torch.full_like(q, math.nan)
    down_q = torch.nanquantile(torch.where(down, losses, nan), q) if losses.numel() else torch.full_like(q, math.nan)
    head = torch.stack([entropy_ratio, weight_max, weight_min, ess, frac_up, loss_mean, loss_weighted])
    return torch.cat([head, up_q, down_q])


def weight_stats(losses, weights, mask=None) -> dict[str, float]:
    """What a user needs to trust the weighting, over the valid samples of one global batch:

    weight_entropy   H(w) / log N, 1 = uniform (ideal: well above 0; near 0 means a few samples dominate)
    weight_max/min   N * max w, N * min w (1 = uniform weight 1/N)
    ess              effective sample size 1 / (N sum w^2), in (0, 1], 1 = uniform
    frac_upweighted  share of samples with w > 1/N
    loss_mean        ordinary (unweighted) mean loss; loss_weighted = sum w l (what is optimised)
    loss_up_q25/50/75, loss_down_q25/50/75   loss quartiles of the up-weighted (w > 1/N) and down-weighted
                     (w < 1/N) samples; NaN when a group is empty (e.g. uniform weights)
    """
    values = weight_stats_tensor(losses, weights, mask).tolist()
    return dict(zip(STAT_KEYS, values))
