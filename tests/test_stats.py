import math

import numpy as np
import pytest

from fairalign.eval.stats import bootstrap_ci, bootstrap_mean, wilson_ci


def test_wilson_matches_closed_form():
    # Hand computation for 8/10 at 95%: z = 1.959964
    z = 1.959963984540054
    p, n = 0.8, 10
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    est = wilson_ci(8, 10)
    assert est.value == pytest.approx(0.8)
    assert est.low == pytest.approx(centre - half)
    assert est.high == pytest.approx(centre + half)


def test_wilson_extremes_are_not_zero_width():
    est = wilson_ci(0, 20)
    assert est.low == 0.0 and est.high > 0.1
    est = wilson_ci(20, 20)
    assert est.high == 1.0 and est.low < 0.9


def test_wilson_rejects_bad_counts():
    with pytest.raises(ValueError, match="successes"):
        wilson_ci(5, 3)


def test_bootstrap_mean_covers_and_is_deterministic():
    rng = np.random.default_rng(1)
    xs = rng.normal(2.0, 1.0, size=400)
    a, b = bootstrap_mean(xs), bootstrap_mean(xs)
    assert a == b
    assert a.low < 2.0 < a.high
    # width close to the normal-theory 2*1.96*sd/sqrt(n)
    assert (a.high - a.low) == pytest.approx(2 * 1.96 * xs.std() / 20, rel=0.2)


def test_cluster_bootstrap_is_wider_than_naive_for_correlated_samples():
    rng = np.random.default_rng(0)
    clusters = [list(rng.normal(c, 0.01, size=10)) for c in rng.normal(0, 1, size=30)]
    flat = [x for c in clusters for x in c]
    clustered = bootstrap_ci(clusters, lambda cs: float(np.mean([x for c in cs for x in c])))
    naive = bootstrap_mean(flat)
    assert (clustered.high - clustered.low) > 2 * (naive.high - naive.low)


def test_bootstrap_empty_and_singleton():
    assert bootstrap_mean([]).value is None
    one = bootstrap_mean([3.0])
    assert one.value == 3.0 and one.low is None


def test_no_interval_when_too_few_resamples_are_defined():
    # the statistic is defined on the full sample only; every resample repeats a cluster and is NaN
    def distinct_only(xs):
        return float(np.mean(xs)) if len(set(xs)) == len(xs) else math.nan

    for resamples in (1, 2, 50):  # 1: zero defined draws must not reach np.quantile
        est = bootstrap_ci([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], distinct_only, num_resamples=resamples, seed=0)
        assert est.value == 4.5 and est.low is None and est.high is None
