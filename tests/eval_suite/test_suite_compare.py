"""Differences to the baseline: paired over shared units, unpaired otherwise, and what each promises."""
import math

import numpy as np
import pytest

from fairalign.eval.suite.compare import difference, paired_difference, unpaired_difference


def mean(values):
    return float(np.mean(values)) if len(values) else math.nan


def units(ids, values, unit="prompt"):
    return {"unit": unit, "ids": list(ids), "values": list(values)}


def test_identical_systems_differ_by_exactly_zero():
    rng = np.random.default_rng(0)
    xs = list(rng.normal(size=30))
    d = difference(mean, units(range(30), xs), units(range(30), xs), num_resamples=200)
    assert d["paired"] and (d["value"], d["low"], d["high"]) == (0.0, 0.0, 0.0)


def test_a_constant_shift_is_exact_when_paired_and_uncertain_when_unpaired():
    rng = np.random.default_rng(1)
    xs = list(rng.normal(scale=5.0, size=40))
    shifted = [x + 1.0 for x in xs]
    p = paired_difference(mean, xs, shifted, num_resamples=300)
    u = unpaired_difference(mean, xs, shifted, num_resamples=300)
    assert p["value"] == pytest.approx(1.0) and p["low"] == pytest.approx(1.0) and p["high"] == pytest.approx(1.0)
    assert u["value"] == pytest.approx(1.0) and u["high"] - u["low"] > 1.0  # unit-level spread is not cancelled
    assert not u["paired"] and "independent" in u["method"]


def test_paired_interval_is_narrower_for_correlated_units_and_covers_the_truth():
    """Per-prompt difficulty shared by both systems cancels in the paired bootstrap."""
    rng = np.random.default_rng(2)
    difficulty = rng.normal(scale=3.0, size=60)
    base = list(difficulty + rng.normal(scale=0.3, size=60))
    other = list(difficulty + 0.5 + rng.normal(scale=0.3, size=60))
    p = paired_difference(mean, base, other, num_resamples=500, seed=3)
    u = unpaired_difference(mean, base, other, num_resamples=500, seed=3)
    assert p["high"] - p["low"] < 0.3 * (u["high"] - u["low"])
    assert p["low"] < 0.5 < p["high"]


def test_partial_overlap_is_paired_on_the_shared_units_with_a_note():
    a = units(["p1", "p2", "p3", "p4"], [1.0, 2.0, 3.0, 4.0])
    b = units(["p2", "p3", "p4", "p5"], [2.0, 3.0, 4.0, 100.0])
    d = difference(mean, a, b, num_resamples=100)
    assert d["paired"] and d["n"] == 3 and d["value"] == pytest.approx(0.0)
    assert "3 prompts both systems have" in d["note"] and (d["n_baseline"], d["n_system"]) == (4, 4)


def test_undefined_statistic_gives_no_value_and_no_interval():
    d = difference(lambda v: math.nan, units("ab", [1, 2]), units("ab", [3, 4]), num_resamples=50)
    assert d["value"] is None and d["low"] is None and d["high"] is None


def test_too_few_units_give_a_value_without_interval():
    d = difference(mean, units(["x"], [1.0]), units(["x"], [3.0]), num_resamples=50)
    assert d["value"] == pytest.approx(2.0) and d["low"] is None


def test_misaligned_paired_input_is_an_error():
    with pytest.raises(ValueError, match="aligned"):
        paired_difference(mean, [1.0, 2.0], [1.0], num_resamples=10)
