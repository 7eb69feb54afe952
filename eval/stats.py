"""Confidence intervals shared by every evaluation.

Every reported number is an `Estimate`: value, 95% interval, n, and the method that made the interval.
- `bootstrap_ci`: percentile bootstrap over *clusters* (prompts, premises, occupations). Resampling
  whole clusters keeps correlated samples (25 continuations of one prompt, pro/anti rows of one premise)
  together, so the interval is not falsely narrow.
- `wilson_interval` / `wilson_ci`: Wilson score interval for a proportion (well behaved at 0% and 100%,
  where the normal approximation gives a useless "± 0").

One rule for proportions (shares of events in [0, 1]):
- over independent units (prompts with a toxic sample / prompts): Wilson, method "wilson";
- pooled over clustered units (toxic continuations / continuations, clustered by prompt; BBNLI rates,
  clustered by premise): the cluster bootstrap, but where it collapses to a point (no events, or all)
  Wilson at n = number of clusters that hold the share's trials, method "wilson (clusters)":
  conservative, since clusters are the independent units. A statistic marks itself as such a pooled
  share by returning a `Proportion`.
- `bootstrap_p_value` and `holm` give the p-values of bootstrap differences and their multiplicity
  adjustment (Holm 1979).
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


class Proportion(float):
    """A pooled share events / trials: a plain float that tells `bootstrap_ci` a degenerate bootstrap
    interval may be replaced by Wilson. Arithmetic on it gives plain floats (a difference is no share)."""


def proportion(events, trials) -> float:
    """events / trials as a `Proportion`; NaN when there are no trials."""
    return Proportion(events / trials) if trials else math.nan


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
    A statistic that returns a `Proportion` gets Wilson at n = clusters where the bootstrap collapses.
    """
    clusters = list(clusters)
    n = len(clusters)
    if n == 0:
        return Estimate(None, None, None, 0)
    point = statistic(clusters)
    value = finite(point)
    if n < 2 or value is None:
        return Estimate(value, None, None, n)
    low, high = percentile_interval(bootstrap_draws(clusters, statistic, num_resamples, seed), num_resamples, confidence)
    if isinstance(point, Proportion) and low is not None and high - low <= 1e-12:
        # Every resample gave the same share (e.g. no event at all): a zero-width interval claims a
        # certainty that a few clusters cannot give. Wilson over the clusters, the independent units.
        low, high = cluster_wilson_interval(clusters, statistic, value, confidence)
        return Estimate(value, low, high, n, method="wilson (clusters)")
    return Estimate(value, low, high, n)


def cluster_wilson_interval(clusters: list, statistic: Callable[[list], float], value: float,
                            confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson for a pooled share `value` read at n = the clusters that hold its trials (those on which the
    share is defined alone): a premise without test rows says nothing about test accuracy."""
    n = sum(finite(statistic([c])) is not None for c in clusters)
    return wilson_interval(min(value * n, n), n, confidence) if n else (None, None)


def bootstrap_draws(clusters: Sequence, statistic: Callable[[list], float], num_resamples: int = 1000,
                    seed: int = 0) -> list[float]:
    """`statistic` on `num_resamples` resamples (with replacement) of the clusters; NaN = undefined."""
    n = len(clusters)
    rng = np.random.default_rng(seed)
    return [statistic([clusters[i] for i in idx]) for idx in rng.integers(0, n, size=(num_resamples, n))]


def bootstrap_mean(values: Sequence[float], **kwargs) -> Estimate:
    """Bootstrap CI of a mean of independent values."""
    return bootstrap_ci(list(values), lambda xs: float(np.mean(xs)) if xs else math.nan, **kwargs)


def wilson_interval(successes: float, n: int, level: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson score interval (low, high) for the proportion successes / n; (None, None) when n = 0.

        p = s / n, z = Phi^-1(1/2 + level/2)
        centre = (p + z^2 / 2n) / (1 + z^2 / n),  half = z sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n)

    `successes` may be fractional (value * n for a pooled share read at n clusters)."""
    if n <= 0:
        return None, None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n]; got successes={successes}, n={n}")
    z = _z(level)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0 or n successes the bound is exactly 0 or 1 (centre == half); pin it against rounding.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def wilson_ci(successes: int, n: int, confidence: float = 0.95) -> Estimate:
    """Wilson score interval for a binomial proportion successes / n, as an `Estimate`."""
    if n <= 0:
        return Estimate(None, None, None, 0, method="wilson")
    low, high = wilson_interval(successes, n, confidence)
    return Estimate(successes / n, low, high, n, method="wilson")


def bootstrap_p_value(draws: Sequence[float], null: float = 0.0) -> float | None:
    """Two-sided bootstrap p-value of "the statistic is `null`" from its resampled values:
    p = min(1, 2 min(#(d <= null) + 1, #(d >= null) + 1) / (B + 1)) over the B finite draws; the +1
    counts the observed sample as one draw, so p is never 0. None without a finite draw."""
    d = np.asarray([x for x in draws if math.isfinite(x)], dtype=float)
    if not len(d):
        return None
    below = (np.count_nonzero(d <= null) + 1) / (len(d) + 1)
    above = (np.count_nonzero(d >= null) + 1) / (len(d) + 1)
    return float(min(1.0, 2 * min(below, above)))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order: sorted ascending, p_(i) times (m - i + 1)
    (i from 1), made non-decreasing and capped at 1. Rejecting where adjusted p < alpha controls the
    family-wise error rate at alpha over all m tests."""
    m = len(pvalues)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)
