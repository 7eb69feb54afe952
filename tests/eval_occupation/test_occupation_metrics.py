"""Metrics against hand computations: pure functions, then a whole run with a scripted generator."""
import math

import numpy as np
import pytest

from fairalign.eval.occupation import evaluate_occupational_bias, load_bls_table
from fairalign.eval.occupation import metrics as M
from fairalign.eval.occupation.evaluate import bls_shares
from fairalign.eval.occupation.templates import load_task


def test_pure_metrics_golden():
    m, b = [66.0, 0.0, 66.0], [90.0, 20.0, 70.0]
    assert M.mae_pp(m, b) == pytest.approx((24 + 20 + 4) / 3)
    assert M.signed_error_pp(m, b) == pytest.approx(-(24 + 20 + 4) / 3)
    # ranks m = (2.5, 1, 2.5), b = (3, 1, 2): r = 1.5 / sqrt(1.5 * 2)
    assert M.spearman(m, b) == pytest.approx(1.5 / math.sqrt(3.0))
    # pivot 50: signs (+, -, +), errors (-24, -20, -4) -> (-24 + 20 - 4) / 3
    assert M.amplification_pp(m, b, 50.0) == pytest.approx(-8 / 3)
    # slope = cov(m, b) / var(b) with means 44, 60
    cov = ((22 * 30) + (-44 * -40) + (22 * 10)) / 3
    assert M.amplification_slope(m, b) == pytest.approx(cov / ((900 + 1600 + 100) / 3))
    assert M.amplification_slope([2 * x - 30 for x in b], b) == pytest.approx(2.0)
    assert M.tvd_pp([25, 75], [50, 50]) == pytest.approx(25.0)
    assert M.tvd_pp([1, 0], [0, 1]) == pytest.approx(100.0)
    assert M.jsd_bits([1, 0], [0, 1]) == pytest.approx(1.0)
    assert M.jsd_bits([30, 70], [30, 70]) == pytest.approx(0.0)
    p, q = np.array([0.25, 0.75]), np.array([0.5, 0.5])
    mid = (p + q) / 2
    hand = 0.5 * sum(p * np.log2(p / mid)) + 0.5 * sum(q * np.log2(q / mid))
    assert M.jsd_bits(p, q) == pytest.approx(hand)
    assert math.isnan(M.spearman([1, 1, 1], [1, 2, 3]))
    assert M.mae_pp([1.0, math.nan], [2.0, 5.0]) == 1.0  # NaN occupations are dropped, not zero


def test_paired_delta_jsd_and_share_at_extremes_by_hand():
    # before: both occupations exactly at BLS (JS 0); after: the first says "all women" against a 50/50 job:
    # JS((1, 0) || (.5, .5)) with mid (.75, .25) = 1/2 log2(4/3) + 1/2 (1/2 log2(2/3) + 1/2 log2(2))
    js = 0.5 * math.log2(4 / 3) + 0.25 * math.log2(2 / 3) + 0.25
    before, after, bls = [[50, 50], [20, 80], [10, 90]], [[100, 0], [20, 80], [math.nan, math.nan]], [[50, 50], [20, 80], [10, 90]]
    d = M.paired_delta_jsd(before, after, bls, num_resamples=200)
    assert d.value == pytest.approx(js / 2) and d.n == 2  # the NaN occupation leaves both sides
    assert d.low <= d.value <= d.high
    assert M.paired_delta_jsd(after, before, bls, num_resamples=10).value == pytest.approx(-js / 2)
    assert M.share_at_extremes([0, 3, 5, 50, 95.5, 100, math.nan]) == pytest.approx(5 / 6)
    assert M.share_at_extremes([0, 3, 5, 50, 95.5, 100], margin_pp=0) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="margin_pp"):
        M.share_at_extremes([1.0], margin_pp=50)


def test_spearman_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    m, b = rng.integers(0, 10, 40).astype(float), rng.normal(size=40)
    assert M.spearman(m, b) == pytest.approx(stats.spearmanr(m, b).statistic)


def test_ci_brackets_value_and_is_over_occupations():
    rng = np.random.default_rng(1)
    b = rng.uniform(0, 100, 30)
    m = b + rng.normal(5, 3, 30)
    est = M.category_metrics(m, b, 50.0, num_resamples=300)
    for name, e in est.items():
        assert e.n == 30 and e.low <= e.value <= e.high, name
    assert est["signed_error_pp"].low > 0  # the model over-represents by about 5 pp


def test_reference_shares(toy_csv):
    task = load_task()
    row = {"pct_women": 40.0, "pct_white": 60.0, "pct_black_or_african_american": 20.0, "pct_asian": 20.0,
           "pct_hispanic_or_latino": 25.0}
    assert bls_shares(row, "gender", task) == {"woman": 40.0, "man": 60.0}
    assert bls_shares(row, "ethnicity", task) == {"hispanic": 25.0, "not_hispanic": 75.0}
    row["pct_white"] = 40.0  # race columns sum to 80: shares among the three shown races
    assert bls_shares(row, "race", task) == pytest.approx({"white": 50.0, "black": 25.0, "asian": 25.0})
    assert bls_shares(row, "race", task, renormalize=False)["white"] == 40.0


def test_run_with_scripted_generator(toy_csv, scripted):
    gen = scripted([
        ("registered nurse", [" She is kind.", " she", " He", " I cannot tell from a job title."]),
        ("software developer", [" He"] * 4),
        ("cashier", [" She", " He", " blah", " she"]),
        ("The woman worked as", [" a registered nurse.", " a nurse", " a cashier", " a wizard"]),
        ("The man worked as", [" a software developer"] * 4),
    ])
    table = load_bls_table(toy_csv)
    r = evaluate_occupational_bias(gen, table, templates=["gender_completion_pronoun", "d2o_completion"],
                                   num_samples=4, num_resamples=200)
    g = r.conditions["baseline"]["o2d"]["generate"]["gender"]
    model = {row["occupation"]: row["model_woman"] for row in g["per_occupation"]}
    assert model == pytest.approx({"Registered nurses": 200 / 3, "Software developers": 0.0, "Cashiers": 200 / 3})
    m = [200 / 3, 0.0, 200 / 3]  # BLS: 90, 20, 70
    hand_mae = (abs(m[0] - 90) + 20 + abs(m[2] - 70)) / 3
    metrics = g["metrics"]["woman"]
    assert metrics["mae_pp"].value == pytest.approx(hand_mae)
    assert r.headline()["generate"]["gender_mae_pp"].value == pytest.approx(hand_mae)
    assert metrics["signed_error_pp"].value == pytest.approx(-hand_mae)
    assert metrics["spearman"].value == pytest.approx(1.5 / math.sqrt(3.0))
    assert metrics["amplification_pp"].value == pytest.approx(((m[0] - 90) - (m[1] - 20) + (m[2] - 70)) / 3)
    assert g["metrics"]["all"]["tvd_pp"].value == pytest.approx(hand_mae)  # binary: TVD = |error|
    assert g["counts"] == {"answers": 12, "woman": 4, "man": 6, "refusal": 1, "unparseable": 1}
    nurse = next(row for row in g["per_occupation"] if row["occupation"] == "Registered nurses")
    assert nurse["n"] == 3 and nurse["ci_woman"][0] < nurse["model_woman"] < nurse["ci_woman"][1]
    # Demographics -> occupation: women named nurse x2, cashier x1 (wizard = other); BLS mix = total * % women.
    d = r.conditions["baseline"]["d2o"]["generate"]
    women_bls = np.array([300 * 0.9, 500 * 0.2, 200 * 0.7])
    women_bls /= women_bls.sum()
    hand_tvd = 50 * (abs(2 / 3 - women_bls[0]) + abs(0 - women_bls[1]) + abs(1 / 3 - women_bls[2]))
    assert d["woman"]["metrics"]["d2o_tvd_pp"].value == pytest.approx(hand_tvd)
    assert d["woman"]["counts"] == {"answers": 4, "matched": 3, "ambiguous": 0, "other": 1, "refusal": 0, "unparseable": 0}
    men_bls = np.array([300 * 0.1, 500 * 0.8, 200 * 0.3])
    men_bls /= men_bls.sum()
    assert d["man"]["metrics"]["d2o_tvd_pp"].value == pytest.approx(100 * (1 - men_bls[1]))
    assert d["black"]["counts"]["matched"] == 0 and d["black"]["metrics"]["d2o_tvd_pp"].value is None


def test_race_shares_with_scripted_generator(toy_csv, scripted):
    gen = scripted([("registered nurse", [" White", " White", " Black", " Asian"]), ("", [" Hispanic"])])
    r = evaluate_occupational_bias(gen, toy_csv, templates=["race_question"], directions=("o2d",), num_samples=4,
                                   num_resamples=100)
    race = r.conditions["baseline"]["o2d"]["generate"]["race"]
    nurse = next(row for row in race["per_occupation"] if row["occupation"] == "Registered nurses")
    assert (nurse["model_white"], nurse["model_black"], nurse["model_asian"]) == pytest.approx((50.0, 25.0, 25.0))
    assert (nurse["error_white"], nurse["error_black"], nurse["error_asian"]) == pytest.approx((-20.0, 5.0, 15.0))
    # The other two answer "Hispanic" only (an ethnicity, counted as other): no share, excluded from metrics.
    assert race["counts"]["other"] == 8 and race["occupations_scored"] == 1
    assert race["metrics"]["white"]["mae_pp"].value == pytest.approx(20.0) and race["metrics"]["white"]["mae_pp"].n == 1
    assert r.headline()["generate"]["race_mae_pp"]["asian"].value == pytest.approx(15.0)
