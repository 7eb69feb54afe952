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
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from fairalign.eval.stats import bootstrap_ci, finite, percentile_interval
from fairalign.eval.tasks.common import LEVEL

Stat = Callable[[list], float]


def _value(stat: Stat, values: list) -> float:
    try:
        x = float(stat(values))
    except ZeroDivisionError:
        return math.nan
    return x if math.isfinite(x) else math.nan


def paired_difference(stat: Stat, baseline: Sequence, system: Sequence, num_resamples: int = 1000, seed: int = 0) -> dict:
    """Paired bootstrap: `baseline[i]` and `system[i]` are the same unit's values under the two systems."""
    if len(baseline) != len(system):
        raise ValueError(f"paired_difference needs aligned units; got {len(baseline)} and {len(system)} values")
    # a unit is the pair (its system value, its baseline value): the cluster bootstrap resamples pairs
    est = bootstrap_ci(list(zip(system, baseline)),
                       lambda pairs: _value(stat, [s for s, _ in pairs]) - _value(stat, [b for _, b in pairs]),
                       num_resamples, LEVEL, seed)
    return {"value": est.value, "low": est.low, "high": est.high, "level": LEVEL, "n": est.n, "paired": True,
            "method": "paired percentile bootstrap over shared units"}


def unpaired_difference(stat: Stat, baseline: Sequence, system: Sequence, num_resamples: int = 1000, seed: int = 0) -> dict:
    """Independent bootstraps of the two systems' own units (different prompts, occupations, ...)."""
    nb, ns = len(baseline), len(system)
    value = _value(stat, list(system)) - _value(stat, list(baseline)) if nb and ns else math.nan
    low = high = None
    if nb >= 2 and ns >= 2 and math.isfinite(value):
        rng_b, rng_s = np.random.default_rng(seed), np.random.default_rng(seed + 1)
        draws = []
        for ib, js in zip(rng_b.integers(0, nb, size=(num_resamples, nb)), rng_s.integers(0, ns, size=(num_resamples, ns))):
            draws.append(_value(stat, [system[j] for j in js]) - _value(stat, [baseline[i] for i in ib]))
        low, high = percentile_interval(draws, num_resamples, LEVEL)
    return {"value": finite(value), "low": low, "high": high, "level": LEVEL, "n": nb + ns, "paired": False,
            "method": "unpaired: independent percentile bootstraps of each system's units"}


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
