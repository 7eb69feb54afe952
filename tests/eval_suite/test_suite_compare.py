"""Differences to the baseline: paired over shared units, unpaired otherwise, and what each promises."""
import math

import numpy as np
import pytest

from fairalign.eval.suite.compare import add_multiplicity, difference, paired_difference, unpaired_difference


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


def test_paired_p_value_comes_from_the_resamples_of_the_interval():
    """Recompute the paired resamples with numpy (same seed): the p-value counts them on each side of 0."""
    base = [0.0, 1.0, 0.0, 2.0, 1.0, 0.0]
    other = [1.0, 1.0, 0.5, 2.0, 2.0, -1.0]
    d = paired_difference(mean, base, other, num_resamples=400, seed=5)
    idx = np.random.default_rng(5).integers(0, 6, size=(400, 6))
    draws = (np.asarray(other)[idx] - np.asarray(base)[idx]).mean(1)
    below, above = (np.sum(draws <= 0) + 1) / 401, (np.sum(draws >= 0) + 1) / 401
    assert d["p"] == pytest.approx(min(1.0, 2 * min(below, above)))
    assert (d["low"], d["high"]) == pytest.approx(tuple(np.quantile(draws, [0.025, 0.975])))


def test_p_values_follow_the_evidence_and_are_never_zero():
    rng = np.random.default_rng(7)
    xs = list(rng.normal(size=40))
    far = paired_difference(mean, xs, [x + 3.0 for x in xs], num_resamples=200)
    assert 0 < far["p"] == pytest.approx(2 / 201)  # no resample at or below 0: the +1 keeps p above 0
    same = paired_difference(mean, xs, xs, num_resamples=200)
    assert same["p"] == 1.0
    u = unpaired_difference(mean, xs, [x + 0.05 for x in xs], num_resamples=200)
    assert u["p"] > 0.5  # a tiny shift against unit spread: no evidence
    none = difference(mean, units(["x"], [1.0]), units(["x"], [3.0]), num_resamples=50)
    assert none["p"] is None  # no interval, no p-value


def test_holm_over_the_family_against_a_hand_computation():
    diffs = [{"value": -0.2, "p": 0.01, "higher_is_better": False, "ideal": 0.0, "level": 0.95},
             {"value": 0.3, "p": 0.04, "higher_is_better": False, "ideal": 0.0, "level": 0.95},
             {"value": 5.0, "p": 0.03, "higher_is_better": False, "ideal": None, "level": 0.95},
             {"value": 0.1, "p": 0.005, "higher_is_better": True, "ideal": 1.0, "level": 0.95},
             {"value": 0.1, "p": None, "higher_is_better": True, "ideal": 1.0, "level": 0.95},  # no interval
             {"value": 0.1, "higher_is_better": True, "ideal": 1.0, "level": 0.95}]  # an older file: no p
    add_multiplicity(diffs)
    # m = 4 p-values; sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> 0.06 (monotone)
    assert [d["p_holm"] for d in diffs] == pytest.approx([0.03, 0.06, 0.06, 0.02, None, None])
    assert [d["verdict_holm"] for d in diffs] == ["lower: better", "no clear difference", "no clear difference",
                                                  "higher: better", "no p-value", "no p-value"]


def test_one_unadjusted_hit_among_sixteen_does_not_survive_holm():
    diffs = [{"value": 0.1, "p": 0.03 if i == 0 else 0.5, "higher_is_better": True, "ideal": 1.0, "level": 0.95}
             for i in range(16)]
    add_multiplicity(diffs)
    assert diffs[0]["p_holm"] == pytest.approx(16 * 0.03) and diffs[0]["verdict_holm"] == "no clear difference"
