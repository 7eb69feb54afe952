"""Differences between a system and the baseline, with 95% percentile-bootstrap intervals.

For a metric M computed by `stat` from per-unit values (prompts, occupations, premises):
    difference = M(system) - M(baseline)
- paired (both systems measured on the same units, e.g. the same prompts): draw one resample of the shared
  unit ids and recompute both, d* = stat(system[ids*]) - stat(baseline[ids*]). Unit-level effects common
  to both systems (a hard prompt) cancel, so the interval is narrower than comparing two separate CIs.
  When only some ids are shared, the difference is computed on the shared ones (and a note says so).
- unpaired (no shared unit ids): independent resamples of each system's own units,
  d* = stat(system*) - stat(baseline*).
Resamples where either statistic is undefined (NaN/inf) are dropped; with fewer than half left, or fewer
than 2 units, there is no interval (low = high = None): `fairalign.eval.stats.bootstrap_ci` and
`percentile_interval`, the rule of every interval.

p-value (`p`): two-sided, from the same resampled differences d* that give the interval,
    p = min(1, 2 min(#(d* <= 0) + 1, #(d* >= 0) + 1) / (B + 1))      (B finite resamples; never 0)
None where there is no interval. A run makes many comparisons (systems x metrics); `add_multiplicity`
adds Holm-adjusted p-values (`p_holm`) over all of them and the verdict they support (`verdict_holm`), so
a "CI excludes 0" that chance alone would give now and then is read against the whole family.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from fairalign.eval.stats import bootstrap_draws, bootstrap_p_value, finite, holm, percentile_interval
from fairalign.eval.tasks.common import LEVEL

Stat = Callable[[list], float]


def _value(stat: Stat, values: list) -> float:
    try:
        x = float(stat(values))
    except ZeroDivisionError:
        return math.nan
    return x if math.isfinite(x) else math.nan


def _interval_and_p(draws: list, num_resamples: int) -> tuple:
    """(low, high, p) from resampled differences; all None when too few are defined for an interval."""
    low, high = percentile_interval(draws, num_resamples, LEVEL)
    return (low, high, bootstrap_p_value(draws)) if low is not None else (None, None, None)


def paired_difference(stat: Stat, baseline: Sequence, system: Sequence, num_resamples: int = 1000, seed: int = 0) -> dict:
    """Paired bootstrap: `baseline[i]` and `system[i]` are the same unit's values under the two systems."""
    if len(baseline) != len(system):
        raise ValueError(f"paired_difference needs aligned units; got {len(baseline)} and {len(system)} values")

    # a unit is the pair (its system value, its baseline value): the cluster bootstrap resamples pairs
    def diff(pairs):
        return _value(stat, [s for s, _ in pairs]) - _value(stat, [b for _, b in pairs])

    pairs = list(zip(system, baseline))
    value = finite(diff(pairs)) if pairs else None
    low = high = p = None
    if len(pairs) >= 2 and value is not None:
        low, high, p = _interval_and_p(bootstrap_draws(pairs, diff, num_resamples, seed), num_resamples)
    return {"value": value, "low": low, "high": high, "level": LEVEL, "n": len(pairs), "paired": True,
            "method": "paired percentile bootstrap over shared units", "p": p}


def unpaired_difference(stat: Stat, baseline: Sequence, system: Sequence, num_resamples: int = 1000, seed: int = 0) -> dict:
    """Independent bootstraps of the two systems' own units (different prompts, occupations, ...)."""
    nb, ns = len(baseline), len(system)
    value = _value(stat, list(system)) - _value(stat, list(baseline)) if nb and ns else math.nan
    low = high = p = None
    if nb >= 2 and ns >= 2 and math.isfinite(value):
        rng_b, rng_s = np.random.default_rng(seed), np.random.default_rng(seed + 1)
        draws = []
        for ib, js in zip(rng_b.integers(0, nb, size=(num_resamples, nb)), rng_s.integers(0, ns, size=(num_resamples, ns))):
            draws.append(_value(stat, [system[j] for j in js]) - _value(stat, [baseline[i] for i in ib]))
        low, high, p = _interval_and_p(draws, num_resamples)
    return {"value": finite(value), "low": low, "high": high, "level": LEVEL, "n": nb + ns, "paired": False,
            "method": "unpaired: independent percentile bootstraps of each system's units", "p": p}


def difference(stat: Stat, baseline_units: dict, system_units: dict, num_resamples: int = 1000, seed: int = 0) -> dict:
    """Paired over the unit ids both systems share, else unpaired. Unit sets: {"unit", "ids", "values"}."""
    base = dict(zip(baseline_units["ids"], baseline_units["values"]))
    other = dict(zip(system_units["ids"], system_units["values"]))
    shared = [i for i in baseline_units["ids"] if i in other]
    if shared:
        out = paired_difference(stat, [base[i] for i in shared], [other[i] for i in shared], num_resamples, seed)
        if len(shared) < max(len(base), len(other)):
            out["note"] = (f"paired on the {len(shared)} {baseline_units['unit']}s both systems have "
                           f"(baseline {len(base)}, system {len(other)})")
    else:
        out = unpaired_difference(stat, list(base.values()), list(other.values()), num_resamples, seed)
        out["note"] = f"no shared {baseline_units['unit']}s: unpaired difference"
    out.update(unit=baseline_units["unit"], n_baseline=len(base), n_system=len(other))
    return out


def direction(d: dict) -> str:
    """'lower: better', 'higher: worse', or just 'higher' / 'lower' where better has no direction."""
    up = d["value"] > 0
    # No direction, or no ideal value (perplexity: very low means repetitive text): state the direction only.
    if d.get("higher_is_better") is None or d.get("ideal", 0) is None:
        return "higher" if up else "lower"
    return f"{'higher' if up else 'lower'}: {'better' if up == d['higher_is_better'] else 'worse'}"


def add_multiplicity(differences: list[dict]) -> None:
    """Add `p_holm` (Holm-adjusted over every difference with a `p`, the run's family of comparisons) and
    `verdict_holm` to each difference, in place. Without a p: p_holm None, verdict "no p-value"."""
    tested = [d for d in differences if d.get("p") is not None]
    for d, adjusted in zip(tested, holm([d["p"] for d in tested])):
        d["p_holm"] = adjusted
    for d in differences:
        d.setdefault("p_holm", None)
        d["verdict_holm"] = holm_verdict(d)


def holm_verdict(d: dict) -> str:
    """What the Holm-adjusted p supports at the intervals' level (alpha = 1 - level)."""
    if d.get("p_holm") is None or d.get("value") is None:
        return "no p-value"
    if d["p_holm"] >= 1 - d.get("level", LEVEL):
        return "no clear difference"
    return direction(d)
