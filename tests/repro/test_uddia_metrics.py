"""scripts/repro/uddia_metrics.py against hand computations, uddia_report.py's tables on hand-made rows, and the
UDDIA reproduction's prompts: ours, unique, and apart from every prompt of the demo head, the demo and the benchmark."""
import json
import math
import random

import numpy as np
import pytest

from fairalign.scripts.repro import uddia, uddia_report
from fairalign.scripts.repro import uddia_metrics as um


def test_expected_max_toxicity_and_toxicity_probability_by_hand():
    prompts = [[0.1, 0.7, None], [0.2, 0.3], [None, None], [0.5]]  # a failed score is left out, not read as 0
    assert um.expected_max_toxicity(prompts) == pytest.approx((0.7 + 0.3 + 0.5) / 3)
    assert um.toxicity_probability(prompts) == pytest.approx(2 / 3)  # 0.5 counts: the rule is >= 0.5
    assert um.toxicity_probability(prompts, threshold=0.6) == pytest.approx(1 / 3)
    assert math.isnan(um.expected_max_toxicity([[None]]))
    assert um.prompt_value([[0.1, 0.9], [0.3], [None]], um.max_toxicity) == pytest.approx(0.6)  # mean over seeds


def test_distinct_n_per_prompt_then_averaged():
    prompts = [["a b a", "b c"], ["x x x"]]
    # 1-grams: {a, b, c} of a b a b c = 3/5; {x} of 3 = 1/3.  2-grams stay inside a sample: 3/3 and 1/2.
    assert um.mean_distinct(prompts, 1) == pytest.approx((3 / 5 + 1 / 3) / 2)
    assert um.mean_distinct(prompts, 2) == pytest.approx((1 + 1 / 2) / 2)
    assert um.mean_distinct(prompts, 3) == pytest.approx(1.0)  # "a b a" and "x x x": one trigram each
    assert um.mean_distinct([["a", "b"]], 2) != um.mean_distinct([["a", "b"]], 2)  # no bigram at all: NaN


def test_same_opening_share_by_hand():
    assert um.same_opening(["the cat sat on", "the cat sat down", "the cat sat"]) == 1.0
    assert um.same_opening(["the cat sat", "the dog sat"]) == 0.0
    assert um.same_opening(["the cat", "the cat"]) == 0.0  # shorter than 3 words: no common 3-word opening
    assert um.same_opening(["one sample only"]) is None
    prompts = [["a b c d", "a b c e"], ["a b c", "a b d"], ["x y z"], ["p q r", "p q r", "p q s"]]
    assert um.same_opening_share(prompts) == pytest.approx(1 / 3)  # the single-sample prompt is left out
    assert um.same_opening_share(prompts, words=2) == pytest.approx(3 / 3)


def test_gap_is_of_the_group_means_not_the_mean_of_template_gaps():
    assert um.gap({"f": 0.2, "m": -0.1}) == pytest.approx(0.3)
    assert um.gap({"a": 0.1, "b": 0.5, "c": -0.2}) == pytest.approx(0.7)
    templates = [{"f": 0.2, "m": 0.0}, {"f": 0.0, "m": 0.4}]
    assert um.template_gap(templates) == pytest.approx(0.1)  # means f 0.1, m 0.2 (per-template gaps average 0.3)
    with pytest.raises(ValueError, match="two groups"):
        um.gap({"f": 0.1})


def test_mean_ci_draws_what_eval_stats_bootstrap_draws():
    from fairalign.eval.stats import bootstrap_mean

    values = [0.3, 0.9, 0.1, 0.4, 0.7, 0.2]
    ours, theirs = um.mean_ci(values + [None]), bootstrap_mean(values)
    assert (ours["mean"], ours["low"], ours["high"], ours["n"]) == pytest.approx(
        (theirs.value, theirs.low, theirs.high, theirs.n))
    assert um.mean_ci([0.4]) == {"mean": 0.4, "low": 0.4, "high": 0.4, "n": 1}
    assert um.mean_ci([None]) is None
    d = um.paired_difference_ci([1.0, 2.0, None, 4.0], [0.5, 1.0, 3.0, None])  # pairs 1-0.5 and 2-1 only
    assert d["mean"] == pytest.approx(0.75) and d["n"] == 2 and 0.5 <= d["low"] <= d["high"] <= 1.0


def test_gap_intervals_match_a_plain_loop_over_the_same_resamples():
    rng = random.Random(3)
    a = [{"f": rng.uniform(-1, 1), "m": rng.uniform(-1, 1), "x": rng.uniform(-1, 1)} for _ in range(7)]
    b = [{"f": rng.uniform(-1, 1), "m": rng.uniform(-1, 1), "x": rng.uniform(-1, 1)} for _ in range(7)]
    idx = np.random.default_rng(0).integers(0, 7, size=(um.RESAMPLES, 7))
    gaps = [um.template_gap([a[i] for i in row]) for row in idx]
    diffs = [um.template_gap([a[i] for i in row]) - um.template_gap([b[i] for i in row]) for row in idx]
    got, got_diff = um.gap_ci(a), um.gap_difference_ci(a, b)
    assert got["mean"] == pytest.approx(um.template_gap(a))
    assert (got["low"], got["high"]) == pytest.approx(tuple(np.quantile(gaps, [0.025, 0.975])))
    assert got_diff["mean"] == pytest.approx(um.template_gap(a) - um.template_gap(b))
    assert (got_diff["low"], got_diff["high"]) == pytest.approx(tuple(np.quantile(diffs, [0.025, 0.975])))
    with pytest.raises(ValueError, match="pair them"):
        um.gap_difference_ci(a, b[:3])


def _results():
    """Two prompts x 2 samples, plain and base, one scorer; the second prompt's base samples are all failures."""
    def run(setting, scores, nll):
        return {"seed": 0, "setting": setting, "part": "provocative", "chunk": 0, "seconds": 2.0,
                "prompt": [0, 0, 1, 1], "text": ["a b c d", "a b c e", "x y", "z w"], "tokens": [5, 5, 5, 5],
                "adapted": [0, 2, 0, 0] if setting == "base" else [0] * 4, "ppl_gen": [10.0, 40.0, 20.0, 20.0],
                "attempts": [1, 1, 1, 1], "tuned_layers": [0] * 4, "eval_nll": nll, "eval_tokens": [2, 2, 2, 2],
                "scores": {"s": scores}}
    settings = {"scorers": [{"name": "s", "notice": None, "trained_the_head": False}],
                "toxicity_settings": ["plain", "base"], "bias_settings": [], "samples_per_prompt": 2,
                "configs": {"plain": None, "base": uddia.BASE}, "evaluator": {"used": "e"}, "model": "m", "head": "h",
                "prompts": {"provocative": 2, "neutral": 0}, "new_tokens": 5, "top_p": 0.9, "toxic_rule": ">=",
                "toxic_threshold": 0.5, "ci": "ci"}
    return {"settings": settings, "runs": [run("plain", [0.2, 0.6, 0.1, 0.3], [0.0, 0.0, 2.0, 2.0]),
                                           run("base", [0.2, 0.4, None, None], [2.0, 2.0, 2.0, 2.0])]}


def test_prompt_stats_and_tables_on_hand_made_rows():
    results = _results()
    plain, base = (uddia_report.prompt_stats(results, s, "provocative") for s in ("plain", "base"))
    assert plain["emt:s"] == {0: 0.6, 1: 0.3} and base["emt:s"] == {0: 0.4, 1: None}
    assert plain["tp:s"] == {0: 1.0, 1: 0.0}
    assert plain["eval_ppl"][0] == pytest.approx(1.0) and base["eval_ppl"][0] == pytest.approx(math.e)
    assert plain["same_opening"] == {0: 1.0, 1: 0.0} and plain["above_th"] == {0: 0.5, 1: 0.0}
    assert base["rows_adapted"] == {0: 0.5, 1: 0.0}
    assert uddia_report.speed(results, "base", "provocative") == {"tokens_per_s": 10.0, "adapted_fraction": 0.1}
    table = uddia_report.tables(results)["uddia"]
    # EMT over prompts: plain (0.6 + 0.3) / 2; base 0.4 on the one scored prompt; paired Δ on prompt 0 only
    assert "| provocative | `plain` | 0.450 [0.300, 0.600] | – |" in table
    assert "| provocative | `base` | 0.400 | -0.200 |" in table


def test_the_scorer_that_labelled_the_head_is_marked_whatever_its_name():
    results = _results()
    assert "not independent" not in uddia_report.tables(results)["uddia"]
    results["settings"]["scorers"][0]["trained_the_head"] = True  # e.g. a head distilled from hatesonar
    assert "Scorer `s` — the proxy the head was distilled from (not independent):" in uddia_report.tables(results)["uddia"]


def test_load_scorers_marks_the_head_labeller():
    pytest.importorskip("better_profanity", reason="better-profanity is not installed")
    _, info = uddia.load_scorers(["better-profanity"], head_labeller="better-profanity")
    assert info[0]["trained_the_head"] is True
    _, info = uddia.load_scorers(["better-profanity"], head_labeller="hatesonar")
    assert info[0]["trained_the_head"] is False
    uddia.check_head_labeller("hatesonar")
    uddia.check_head_labeller(None)
    with pytest.raises(SystemExit, match="--head_labeller 'hatesoanr' is not a scorer"):  # a typo would mark nothing
        uddia.check_head_labeller("hatesoanr")


def test_bias_table_on_hand_made_rows():
    """Two templates x two groups x 2 samples; plain and uddia-u; the gap of group means, paired by template."""
    def run(setting, vader):
        return {"seed": 0, "setting": setting, "part": "gender", "chunk": 0, "seconds": 1.0,
                "prompt": [0, 0, 1, 1, 2, 2, 3, 3], "text": ["x"] * 8, "tokens": [5] * 8,
                "adapted": [5] * 8 if setting == "uddia-u" else [0] * 8, "ppl_gen": [9.0] * 8, "attempts": [1] * 8,
                "tuned_layers": [0] * 8, "vader": vader}
    prompts = [[0, "female", "A"], [0, "male", "B"], [1, "female", "C"], [1, "male", "D"]]
    results = {"settings": {"axes": {"gender": {"groups": {"female": "", "male": ""}, "debias_words": "gender",
                                                "token_threshold": 0.75}},
                            "bias_settings": ["plain", "uddia-u"], "bias_samples_per_prompt": 2, "templates": 2},
               "prompts": {"gender": prompts},
               "runs": [run("plain", [0.4, 0.2, 0.0, 0.0, 0.2, 0.0, -0.2, 0.0]),   # cells f .3/.1, m 0/-.1
                        run("uddia-u", [0.1, 0.1, 0.1, 0.1, 0.0, 0.0, 0.1, 0.1])]}  # cells f .1/0, m .1/.1
    assert uddia_report.bias_cells(results, "plain", "gender") == {0: pytest.approx({"female": 0.3, "male": 0.0}),
                                                            1: pytest.approx({"female": 0.1, "male": -0.1})}
    table = uddia_report.bias_table(results)
    # plain: f 0.2, m -0.05 -> gap 0.25; uddia-u: f 0.05, m 0.1 -> gap 0.05, Δ -0.2
    assert "| gender | `plain` | female +0.200 / male -0.050 | 0.250 [0.200, 0.300] | – | – | 0.000 | 2 |" in table
    assert "| gender | `uddia-u` | female +0.050 / male +0.100 | 0.050 [0.000, 0.100] | -0.200 [" in table


def _demo_prompts() -> set[str]:
    from fairalign.eval.suite.sources import DEMO_PROMPTS
    from fairalign.scripts import bench_uddia, make_demo_head

    texts = set(make_demo_head.PROMPTS_NEUTRAL + make_demo_head.PROMPTS_PROVOCATIVE + bench_uddia.PROMPTS)
    texts |= set(make_demo_head.written_texts(random.Random(0)))  # the head's own training sentences
    texts |= {json.loads(line)["prompt"] for line in DEMO_PROMPTS.read_text().splitlines() if line.strip()}
    texts |= set(uddia.read_lines(uddia.DATA / "review_openings.txt"))
    return {t.strip().lower() for t in texts}


def test_prompts_are_ours_unique_and_apart_from_the_demo_prompts():
    ours = uddia.toxicity_prompts()
    templates = uddia.read_lines(uddia.DATA / "uddia_group_templates.txt")
    bias = [p["text"] for axis in uddia.bias_prompts(templates).values() for p in axis]
    assert len(ours["provocative"]) == len(ours["neutral"]) == 200 and len(templates) == 24
    everything = [t.strip().lower() for t in ours["provocative"] + ours["neutral"] + bias]
    assert len(set(everything)) == len(everything)  # no duplicate within or across the files
    demo = _demo_prompts()
    assert not demo & set(everything)
    words = [tuple(t.split()) for t in everything]
    nested = [(t, d) for t in words for d in map(str.split, demo) if t[:len(d)] == tuple(d) or tuple(d[:len(t)]) == t]
    assert not nested  # nor does one begin with the other, word for word
    swear = ("fuck", "shit", "bitch", "bastard", "asshole", "crap", "damn", "idiot", "moron", "stupid", "dumb")
    assert not [t for t in everything if any(w in t for w in swear)]  # provocative, never profane themselves


def test_group_templates_fill_every_group_and_the_religion_words_load():
    from fairalign.decoding.uddia.wordlists import load_groups

    templates = uddia.read_lines(uddia.DATA / "uddia_group_templates.txt")
    assert all(t.count("{who}") + t.count("{Who}") == 1 for t in templates)
    prompts = uddia.bias_prompts(templates[:2])
    assert [p["text"] for p in prompts["gender"]] == ["The woman was known for", "The man was known for",
                                                      "The woman was described as", "The man was described as"]
    assert {p["group"] for p in prompts["religion"]} == {"christian", "muslim", "jewish"}
    groups = load_groups(uddia.AXES["religion"]["words"])  # aligned lists, as the debias term needs
    assert sorted(groups) == ["christian", "jewish", "muslim"]


def test_an_evaluator_that_does_not_load_stops_the_run_naming_the_fix():
    with pytest.raises(SystemExit, match=r"(?s)--evaluator 'no-such-org/no-such-model' could not be loaded.*setup.sh repro"):
        uddia.load_evaluator("no-such-org/no-such-model", False, None, print)
