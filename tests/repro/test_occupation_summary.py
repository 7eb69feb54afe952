"""scripts/repro/occupation.py's statistics from hand-made job rows (no model): the pooled shares, the paired
differences per draw and over all draws, and the degeneracy columns, against hand computations."""
import pytest

from fairalign.scripts.repro import occupation


def _results(baseline_b_seed1=(20.0, 40.0, 100.0)):
    settings = {"templates": ["a", "b"], "bls_women_pct": [90.0, 20.0, 50.0], "all_workers_women_pct": 46.8,
                "resamples": 20, "extreme_pp": 5.0}  # few: the points are what is checked
    rows = {  # (seed, template): (baseline, grounded)
        (0, "a"): ([0.0, 0.0, 100.0], [80.0, 20.0, 40.0]), (0, "b"): ([20.0, 40.0, 100.0], [100.0, 20.0, 60.0]),
        (1, "a"): ([0.0, 0.0, 100.0], [70.0, 30.0, 50.0]), (1, "b"): (list(baseline_b_seed1), [70.0, 30.0, 50.0]),
        (2, "a"): ([0.0, 0.0, 100.0], [0.0, 0.0, 0.0]),  # draw 2 lacks template b: a partial draw, left out
    }
    runs = [{"seed": s, "template": t, "baseline_women_pct": b, "grounded_women_pct": g} for (s, t), (b, g) in rows.items()]
    return {"settings": settings, "runs": runs}


def test_summary_by_hand():
    sm = occupation.summarise(_results())
    # shares = mean over templates: baseline (10, 20, 100); draw 0 (90, 20, 50) = BLS; draw 1 (70, 30, 50)
    assert sm["draws"] == 2 and sm["baseline_drift_pp"] == 0.0
    arms = sm["arms"]
    assert arms["baseline"]["mae_pp"]["value"] == pytest.approx((80 + 0 + 50) / 3)
    assert arms["grounded, draw 0"]["mae_pp"]["value"] == pytest.approx(0.0)
    assert arms["grounded, draw 1"]["mae_pp"]["value"] == pytest.approx((20 + 10 + 0) / 3)
    assert arms["baseline"]["at_extremes"] == pytest.approx(1 / 3)  # 100 % women for the third occupation
    assert arms["constant 50%"]["mae_pp"]["value"] == pytest.approx((40 + 30 + 0) / 3)
    d0, d1 = sm["deltas"]["grounded, draw 0"], sm["deltas"]["grounded, draw 1"]
    assert d0["delta_mae_pp"]["value"] == pytest.approx(-130 / 3) and d0["error_fell"] == pytest.approx(2 / 3)
    assert d1["delta_mae_pp"]["value"] == pytest.approx(30 / 3 - 130 / 3)
    assert d0["delta_jsd_bits"]["value"] == pytest.approx(-arms["baseline"]["jsd_bits"]["value"])
    # all draws: per occupation the mean error over the draws, (0 + 20) / 2, (0 + 10) / 2, 0
    both = sm["all_draws"]
    assert both["mae_pp"]["value"] == pytest.approx(5.0)
    assert both["delta_mae_pp"]["value"] == pytest.approx(5.0 - 130 / 3)
    assert both["delta_mae_pp"]["low"] <= both["delta_mae_pp"]["value"] <= both["delta_mae_pp"]["high"]
    assert sm["templates"]["baseline"]["a"]["at_extremes"] == pytest.approx(1.0)  # 0, 0, 100: all at an extreme
    check = {"facts": 6, "prompts": 6, "about_a_scored_occupation": 0, "about_the_asked_occupation": 0,
             "distinct_fact_occupations": 5, "pool": 9}
    results = _results()
    results["settings"].update(model="m", bls_year=2022, selection="3", scoring="ll", chat_template=False, k=2,
                               holdout="evaluated")
    text = occupation.tables(dict(results, summary=sm, held_out_check=check))["occupation"]
    assert "| grounded, all 2 draws − baseline | -38.3 [" in text


def test_a_baseline_that_differs_between_draws_is_reported():
    assert occupation.shares(_results((20.0, 40.0, 99.5)))[3] == pytest.approx(0.5)  # largest difference, in pp
