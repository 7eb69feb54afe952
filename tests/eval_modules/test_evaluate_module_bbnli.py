"""fairalign_bbnli: the numbers of evaluate_nli_bias for the same predictions (BBNLI and BBNLI-next rows),
add_batch, and clear input errors."""
import pytest
from evaluate_module_helpers import hashed_label, synthetic_bbnli

from fairalign.eval.bbnli import evaluate_nli_bias, load_bbnli
from fairalign.eval.bbnli.metrics import MEASURES, compute


def predictor(premises, hypotheses):
    return [hashed_label(p, h) for p, h in zip(premises, hypotheses)]


def _flat(measures: dict, names) -> dict:
    out = {}
    for name in names:
        m = measures[name]
        out |= {name: m["value"], f"{name}_ci_low": m["low"], f"{name}_ci_high": m["high"]}
    return out


def _assert_same_as_suite(got, result):
    names = list(MEASURES)
    assert {k: got[k] for k in _flat(result.measures["all"], names)} == _flat(result.measures["all"], names)
    assert (got["n_rows"], got["n_premises"]) == (result.n_rows, result.n_premises)
    for key, measures in result.measures.items():
        if key != "all":
            assert {k: got["groups"][key][k] for k in _flat(measures, names)} == _flat(measures, names), key
    if result.brittleness:
        assert _flat(result.brittleness, result.brittleness) == {k: got[k] for k in _flat(result.brittleness, result.brittleness)}
        assert got["n_variant_groups"] == result.brittleness["brittleness"]["n_groups"] > 0
    else:
        assert got["brittleness"] is None and got["n_variant_groups"] == 0


def test_same_numbers_as_evaluate_nli_bias_on_bbnli(load_module, shared_data):
    data = load_bbnli(shared_data / "bbnli" / "bbnli_expanded.csv").subsample(1)  # 642 rows, 16 premises
    result = evaluate_nli_bias(predictor, data, num_resamples=200, seed=5)
    labels = [p["prediction"] for p in result.predictions]
    got = load_module("bbnli").compute(predictions=labels, references=[ex.to_dict() for ex in data],
                                       group_by=["domain"], num_resamples=200, seed=5)
    _assert_same_as_suite(got, result)
    assert set(got["groups"]) == {"domain=gender", "domain=race", "domain=religion"}
    assert got["bbnli_bias_score"] == compute("bbnli_bias_score", list(data), labels)


def test_same_numbers_as_evaluate_nli_bias_on_bbnli_next_variants(load_module):
    rows = synthetic_bbnli(num_premises=8, with_variants=True)
    result = evaluate_nli_bias(predictor, rows, group_by=["domain", "variation"], num_resamples=300)
    module = load_module("bbnli")
    # rows as BBNLIExample objects, added in two batches: same numbers as one compute over dicts
    labels = [p["prediction"] for p in result.predictions]
    module.add_batch(predictions=labels[:20], references=rows[:20])
    module.add_batch(predictions=labels[20:], references=[ex.to_dict() for ex in rows[20:]])
    got = module.compute(group_by=["domain", "variation"], num_resamples=300)
    _assert_same_as_suite(got, result)
    assert "variation=lexical_hypothesis" in got["groups"] and "variation=original" not in got["groups"]


def test_defaults_follow_the_task_and_add_works(load_module):
    rows = synthetic_bbnli(num_premises=4)
    labels = [hashed_label(ex.premise, ex.hypothesis) for ex in rows]
    module = load_module("bbnli")
    for ex, y in zip(rows, labels):
        module.add(prediction=y, reference=ex.to_dict() | {"reference": "https://example.org", "extra": 1})
    got = module.compute()  # task.yaml bootstrap: 1000 resamples, seed 0; no groups
    result = evaluate_nli_bias(predictor, rows, group_by=[])
    _assert_same_as_suite(got, result)
    assert "groups" not in got


@pytest.mark.parametrize("change, match", [
    (lambda preds, refs: (preds[:-1] + ["entailment"], refs), r"predictions returned 'entailment' for pair \d+; labels must be 0"),
    (lambda preds, refs: (preds[:-1] + [3], refs), r"predictions returned 3 .* labels must be 0 \(contradiction\), 1 \(neutral\) or 2"),
    (lambda preds, refs: (preds, refs[:-1] + [{k: v for k, v in refs[-1].items() if k != "bias_label"}]),
     r"references\[\d+\]: missing column\(s\) \['bias_label'\]"),
    (lambda preds, refs: (preds, refs[:-1] + [refs[-1] | {"hypothesis_type": "neutral"}]), r"hypothesis_type must be one of"),
    (lambda preds, refs: (preds, refs[:-1] + ["a premise"]), r"references\[\d+\] is a str; each reference must be a dict"),
    (lambda preds, refs: (preds, refs[:-1]), r"inputs differ in length"),
    (lambda preds, refs: (preds, None), r"references is missing"),
])
def test_bad_inputs_are_clear_errors(load_module, change, match):
    rows = synthetic_bbnli(num_premises=2)
    preds, refs = change([1] * len(rows), [ex.to_dict() for ex in rows])
    with pytest.raises(ValueError, match=match):
        load_module("bbnli").compute(predictions=preds, references=refs)


@pytest.mark.parametrize("options, match", [
    ({"group_by": ["gender"]}, r"group_by \['gender'\]: not row fields; use some of"),
    ({"num_resamples": 1.5}, r"num_resamples must be an integer >= 1"),
    ({"expand_samples": True}, r"unknown compute\(\) option\(s\) \['expand_samples'\]"),
])
def test_bad_options_are_clear_errors(load_module, options, match):
    rows = synthetic_bbnli(num_premises=2)
    with pytest.raises(ValueError, match=match):
        load_module("bbnli").compute(predictions=[1] * len(rows), references=rows, **options)
