"""Toxicity metrics against hand computations: ties at 0.5, all-failed prompts, uneven k, CIs over prompts."""
import math
import random

import numpy as np
import pytest

from fairalign.eval.toxicity import compute_toxicity_metrics, evaluate_toxicity


def rec(pid, score, text="x"):
    return {"prompt_id": pid, "prompt": f"prompt {pid}", "continuation": text, "toxicity": score}


# P1: a tie at exactly 0.5 (toxic under >=); P2: just below, one failure; P3: every sample failed;
# P4: four samples (uneven k), three toxic.
RECORDS = (
    [rec("p1", s) for s in (0.5, 0.2, 0.1)]
    + [rec("p2", s) for s in (0.49999, None, 0.3)]
    + [rec("p3", None), rec("p3", None)]
    + [rec("p4", s) for s in (0.9, 0.8, 0.6, 0.1)]
)


def test_golden_numbers():
    r = compute_toxicity_metrics(RECORDS)
    # Hand computation over the 3 prompts with a score (P3 excluded):
    assert r.expected_max_toxicity.value == pytest.approx((0.5 + 0.49999 + 0.9) / 3)
    assert r.toxicity_probability.value == pytest.approx(2 / 3)  # P1 (tie counts) and P4
    assert r.per_continuation_toxic_rate.value == pytest.approx((1 + 0 + 3) / (3 + 2 + 4))  # pooled, not mean of rates
    assert r.num_prompts == 3 and r.num_prompts_excluded == 1
    assert r.num_continuations == 12 and r.num_scored == 9 and r.num_failed == 3
    assert r.samples_per_prompt is None and r.samples_per_prompt_range == (2, 4)
    assert r.generated_samples_per_prompt_range == (2, 4)
    assert any("uneven k" in n for n in r.notes) and any("every sample fail" in n for n in r.notes)
    assert all(e.n == 3 for e in (r.expected_max_toxicity, r.toxicity_probability, r.per_continuation_toxic_rate))


def test_tie_at_threshold_is_toxic_and_strict_alternative_differs():
    at = compute_toxicity_metrics([rec("a", 0.5), rec("b", 0.2)])
    assert at.toxicity_probability.value == 0.5 and at.threshold_comparison == ">="
    # Just above the tie the same data has no toxic prompt: the >= choice is what made it count.
    above = compute_toxicity_metrics([rec("a", 0.5), rec("b", 0.2)], threshold=0.5000001)
    assert above.toxicity_probability.value == 0.0


def test_failures_are_excluded_not_zero():
    # If the failure were scored 0, the per-continuation rate would be 1/2; excluded it is 1/1.
    r = compute_toxicity_metrics([rec("a", 0.7), rec("a", None)])
    assert r.per_continuation_toxic_rate.value == 1.0
    assert r.num_failed == 1 and r.samples_per_prompt == 1
    nan = compute_toxicity_metrics([rec("a", 0.7), rec("a", float("nan"))])
    assert nan.num_failed == 1


def test_all_failed_gives_no_value():
    r = compute_toxicity_metrics([rec("a", None), rec("b", None)])
    assert r.num_prompts == 0 and r.num_prompts_excluded == 2 and r.num_failed == 2
    assert r.expected_max_toxicity.value is None and r.expected_max_toxicity.n == 0


def test_even_k_reports_k():
    r = compute_toxicity_metrics([rec(p, s) for p in "abc" for s in (0.1, 0.6)])
    assert r.samples_per_prompt == 2 and not any("uneven" in n for n in r.notes)


def test_bootstrap_resamples_prompts():
    """Recompute the percentile bootstrap independently with numpy, resampling prompts (clusters)."""
    r = compute_toxicity_metrics(RECORDS, num_resamples=500, seed=3)
    maxes = np.array([0.5, 0.49999, 0.9])
    toxic = np.array([1, 0, 3])
    k = np.array([3, 2, 4])
    idx = np.random.default_rng(3).integers(0, 3, size=(500, 3))
    emt = np.quantile(maxes[idx].mean(1), [0.025, 0.975])
    rate = np.quantile(toxic[idx].sum(1) / k[idx].sum(1), [0.025, 0.975])
    assert (r.expected_max_toxicity.low, r.expected_max_toxicity.high) == pytest.approx(tuple(emt))
    assert (r.per_continuation_toxic_rate.low, r.per_continuation_toxic_rate.high) == pytest.approx(tuple(rate))
    assert r.expected_max_toxicity.method == r.per_continuation_toxic_rate.method == "bootstrap"


def test_toxicity_probability_is_wilson_over_prompts():
    """Prompts are independent units, each toxic or not: Wilson (here 2 of 3 prompts), checked against scipy."""
    binomtest = pytest.importorskip("scipy.stats").binomtest
    r = compute_toxicity_metrics(RECORDS, num_resamples=500, seed=3)
    ref = binomtest(2, 3).proportion_ci(method="wilson")
    assert r.toxicity_probability.method == "wilson" and r.toxicity_probability.n == 3
    assert (r.toxicity_probability.low, r.toxicity_probability.high) == pytest.approx((ref.low, ref.high))


def test_permutation_invariant_and_bounded():
    rng = random.Random(0)
    records = [rec(f"p{i}", rng.random()) for i in range(20) for _ in range(3)]
    a = compute_toxicity_metrics(records)
    shuffled = records[:]
    rng.shuffle(shuffled)
    b = compute_toxicity_metrics(shuffled)
    for name in a.METRICS:
        ea, eb = getattr(a, name), getattr(b, name)
        assert ea.value == pytest.approx(eb.value)
        assert 0.0 <= ea.low <= ea.value <= ea.high <= 1.0


def test_groups_recombine_to_overall():
    records = [dict(rec(f"p{i}", s), challenging=i % 3 == 0) for i in range(12) for s in ((i % 5) / 5, (i % 7) / 7)]
    r = compute_toxicity_metrics(records, group_by=["challenging", "absent_field"])
    groups = r.groups["challenging"]
    assert set(groups) == {"True", "False"}
    n = sum(g.num_prompts for g in groups.values())
    for name in ("expected_max_toxicity", "toxicity_probability"):
        weighted = sum(getattr(g, name).value * g.num_prompts for g in groups.values()) / n
        assert weighted == pytest.approx(getattr(r, name).value)
    assert any("absent_field" in note for note in r.notes)


def test_no_toxic_sample_gives_wilson_intervals_not_points():
    """0 toxic of 30 continuations over 10 prompts: TP is Wilson at 10 prompts; the pooled rate's bootstrap
    collapses to [0, 0], so it is Wilson at n = 10 prompts (the clusters), not at 30 continuations."""
    from fairalign.eval.stats import wilson_interval

    r = compute_toxicity_metrics([rec(p, 0.1) for p in "abcdefghij" for _ in range(3)], num_resamples=200)
    tp, rate = r.toxicity_probability, r.per_continuation_toxic_rate
    assert tp.value == rate.value == 0.0
    assert (tp.low, tp.high) == (rate.low, rate.high) == wilson_interval(0, 10)
    assert rate.high == pytest.approx(0.2775, abs=1e-4) and rate.high > wilson_interval(0, 30)[1]
    assert (tp.method, rate.method) == ("wilson", "wilson (clusters)")
    assert not any("collapses" in n for n in r.notes)


def test_bad_inputs_are_value_errors():
    with pytest.raises(ValueError, match="toxicity"):
        compute_toxicity_metrics([{"prompt_id": "a", "continuation": "x"}])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        compute_toxicity_metrics([rec("a", 1.5)])
    with pytest.raises(ValueError, match="threshold"):
        compute_toxicity_metrics([rec("a", 0.5)], threshold=0)


def test_evaluate_toxicity_scores_only_unscored_records():
    calls = []

    def scorer(texts):
        calls.append(list(texts))
        return [None if t == "fail" else (0.8 if "bad" in t else 0.1) for t in texts]

    records = [{"prompt_id": "a", "continuation": "bad word"}, {"prompt_id": "a", "continuation": "fine"},
               {"prompt_id": "b", "continuation": "fail"}, {"prompt_id": "b", "continuation": "kept", "toxicity": 0.55}]
    r = evaluate_toxicity(records, scorer)
    assert calls == [["bad word", "fine", "fail"]]  # the pre-scored record is not rescored
    assert r.expected_max_toxicity.value == pytest.approx((0.8 + 0.55) / 2)
    assert r.toxicity_probability.value == 1.0 and r.num_failed == 1
    with pytest.raises(ValueError, match="one per text"):
        evaluate_toxicity(records[:2], lambda texts: [0.1])
    with pytest.raises(ValueError, match="scorer"):
        evaluate_toxicity(records[:2], None)


def test_to_dict_and_markdown():
    r = compute_toxicity_metrics(RECORDS, scorer_info={"name": "fake", "notice": "proxy!"})
    d = r.to_dict()
    assert d["expected_max_toxicity"]["n"] == 3 and d["num_failed"] == 3
    assert len(d["prompt_rows"]) == 4 and d["prompt_rows"][2]["excluded"] is True
    assert "prompt_rows" not in r.to_dict(include_rows=False)
    md = r.to_markdown()
    assert "expected_max_toxicity" in md and "lower" in md and "proxy!" in md and "uneven" in md
    assert math.isclose(d["toxicity_probability"]["value"], 2 / 3)
