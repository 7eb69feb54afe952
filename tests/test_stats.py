import math

import numpy as np
import pytest

from fairalign.eval.stats import (Proportion, bootstrap_ci, bootstrap_mean, bootstrap_p_value, holm, proportion,
                                  wilson_ci, wilson_interval)


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


@pytest.mark.parametrize("k, n, level", [(0, 8, 0.95), (1, 8, 0.95), (4, 8, 0.95), (8, 8, 0.95), (3, 50, 0.9),
                                         (49, 50, 0.99), (0, 1, 0.95)])
def test_wilson_interval_matches_scipy(k, n, level):
    binomtest = pytest.importorskip("scipy.stats").binomtest
    ref = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    assert wilson_interval(k, n, level) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_wilson_interval_at_zero_has_the_closed_form_upper_bound():
    # at 0 successes the Wilson upper bound is z^2 / (n + z^2): 0.3244 for n = 8 at 95%
    z2 = 1.959963984540054 ** 2
    assert wilson_interval(0, 8) == (0.0, pytest.approx(z2 / (8 + z2)))
    assert wilson_interval(0, 8)[1] == pytest.approx(0.3244, abs=1e-4)
    assert wilson_interval(8, 8) == (pytest.approx(8 / (8 + z2)), 1.0)
    assert wilson_interval(0, 0) == (None, None)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(-1, 4)


def _pooled(clusters):
    """share of events over clustered trials: clusters are (events, trials)"""
    return proportion(sum(e for e, _ in clusters), sum(t for _, t in clusters))


def test_degenerate_pooled_share_falls_back_to_wilson_at_the_number_of_clusters():
    clusters = [(0, 3)] * 10  # no event in 30 trials over 10 clusters
    est = bootstrap_ci(clusters, _pooled, num_resamples=200)
    assert est.value == 0.0 and est.method == "wilson (clusters)" and est.n == 10
    assert (est.low, est.high) == wilson_interval(0, 10)  # n = clusters, not the 30 trials
    assert est.high > wilson_interval(0, 30)[1]
    full = bootstrap_ci([(3, 3)] * 10, _pooled, num_resamples=200)
    assert full.value == 1.0 and (full.low, full.high) == wilson_interval(10, 10)


def test_clusters_without_trials_do_not_count_for_wilson():
    """A premise without test rows says nothing about test accuracy: n is the 5 clusters with trials."""
    clusters = [(0, 3)] * 5 + [(0, 0)] * 5
    est = bootstrap_ci(clusters, _pooled, num_resamples=200)
    assert est.method == "wilson (clusters)" and (est.low, est.high) == wilson_interval(0, 5)
    assert est.n == 10  # the clusters resampled, as for every other metric


def test_pooled_share_with_spread_keeps_the_cluster_bootstrap():
    clusters = [(i % 3, 3) for i in range(12)]
    est = bootstrap_ci(clusters, _pooled, num_resamples=300, seed=4)
    plain = bootstrap_ci(clusters, lambda cs: float(_pooled(cs)), num_resamples=300, seed=4)
    assert est.method == "bootstrap" and (est.value, est.low, est.high) == (plain.value, plain.low, plain.high)
    assert est.low < est.high


def test_a_degenerate_statistic_that_is_no_share_keeps_its_interval():
    est = bootstrap_ci([2.0] * 6, lambda xs: float(np.mean(xs)), num_resamples=50)
    assert (est.value, est.low, est.high, est.method) == (2.0, 2.0, 2.0, "bootstrap")


def test_proportion_is_the_plain_value():
    p = proportion(1, 4)
    assert isinstance(p, Proportion) and p == 0.25
    assert math.isnan(proportion(0, 0))
    assert type(p - p) is float and type(1 - p) is float  # a difference of shares is no share


def test_bootstrap_p_value_by_hand():
    # 1 of 4 draws <= 0, 3 of 4 >= 0: p = 2 * min(1 + 1, 3 + 1) / (4 + 1)
    assert bootstrap_p_value([-1.0, 1.0, 2.0, 3.0]) == pytest.approx(0.8)
    assert bootstrap_p_value([1.0] * 99) == pytest.approx(2 / 100)  # never 0, even with no draw across 0
    assert bootstrap_p_value([0.0] * 10) == 1.0
    assert bootstrap_p_value([math.nan, -2.0, -1.0]) == pytest.approx(2 * 1 / 3)  # NaN draws do not count
    assert bootstrap_p_value([math.nan]) is None


def test_holm_by_hand():
    # sorted: 0.005 * 4 = 0.02; 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> raised to 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    assert holm([0.02]) == [0.02] and holm([]) == []
