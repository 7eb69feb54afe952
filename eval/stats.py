"""Confidence intervals shared by every evaluation.

Every reported number is an `Estimate`: value, 95% interval, n, and the method that made the interval.
- `bootstrap_ci`: percentile bootstrap over *clusters* (prompts, premises, occupations). Resampling
  whole clusters keeps correlated samples (25 continuations of one prompt, pro/anti rows of one premise)
  together, so the interval is not falsely narrow.
- `wilson_ci`: Wilson score interval for a proportion (well behaved at 0% and 100%, where the normal
  approximation gives a useless "± 0").
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A statistic with its 95% confidence interval. `low`/`high` are None when n is too small."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    method: str = "bootstrap"

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        if self.value is None:
            return f"n/a (n={self.n})"
        if self.low is None:
            return f"{self.value:.4g} (n={self.n})"
        return f"{self.value:.4g} [{self.low:.4g}, {self.high:.4g}] (n={self.n})"


def finite(x) -> float | None:
    """x as a float, or None when it is None, NaN or infinite (JSON has no NaN/inf: undefined is null)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def percentile_interval(draws: Sequence[float], num_resamples: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """(low, high) percentile interval of the finite `draws` of `num_resamples` bootstrap resamples; (None,
    None) when fewer than half of them (and at least one) gave a defined statistic."""
    draws = [d for d in draws if math.isfinite(d)]
    if len(draws) < max(1, num_resamples // 2):
        return None, None
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_ci(
    clusters: Sequence,
    statistic: Callable[[list], float],
    num_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Percentile bootstrap of `statistic` over clusters.

    clusters: one entry per independent unit (a prompt's samples, a premise's rows, ...); `statistic`
    receives a list of clusters (a resample, with repetitions) and returns a float (NaN = undefined on
    that resample; such resamples are dropped). The point value is `statistic(list(clusters))`.
    """
    clusters = list(clusters)
    n = len(clusters)
    if n == 0:
        return Estimate(None, None, None, 0)
    value = finite(statistic(clusters))
    if n < 2 or value is None:
        return Estimate(value, None, None, n)
    rng = np.random.default_rng(seed)
    draws = [statistic([clusters[i] for i in idx]) for idx in rng.integers(0, n, size=(num_resamples, n))]
    low, high = percentile_interval(draws, num_resamples, confidence)
    return Estimate(value, low, high, n)


def bootstrap_mean(values: Sequence[float], **kwargs) -> Estimate:
    """Bootstrap CI of a mean of independent values."""
    return bootstrap_ci(list(values), lambda xs: float(np.mean(xs)) if xs else math.nan, **kwargs)


def wilson_ci(successes: int, n: int, confidence: float = 0.95) -> Estimate:
    """Wilson score interval for a binomial proportion successes / n."""
    if n <= 0:
        return Estimate(None, None, None, 0, method="wilson")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n]; got successes={successes}, n={n}")
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0 or n successes the bound is exactly 0 or 1 (centre == half); pin it against rounding.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Estimate(p, low, high, n, method="wilson")


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)
