"""evaluate_nli_bias: values equal the golden metrics, subgroup tables, intervals clustered by premise,
one predictor call per unique pair, the QA field, expanded samples, the report formats, task.yaml."""
import json

import pytest
from bbnli_helpers import hand_rows, make_example

from fairalign.eval.bbnli.data import BBNLIDataset, with_variation
from fairalign.eval.bbnli.evaluate import evaluate_nli_bias, load_task
from fairalign.eval.bbnli.metrics import BRITTLENESS_MEASURES, MEASURES, compute


def lookup_predictor(rows, preds, field="hypothesis"):
    table = {(r.premise, getattr(r, field)): p for r, p in zip(rows, preds)}
    calls = []

    def predictor(premises, seconds):
        calls.append(len(premises))
        return [table[(p, s)] for p, s in zip(premises, seconds)]

    predictor.calls = calls
    return predictor


def test_values_match_golden_metrics_and_clusters_are_premises(hand_dataset):
    data, preds = hand_dataset
    result = evaluate_nli_bias(lookup_predictor(data.examples, preds), data, num_resamples=200)
    for name in MEASURES:
        est = result.measures["all"][name]
        ref = compute(name, data.examples, preds)
        assert est["value"] == pytest.approx(ref), name
        assert est["n"] == 2 and est["n_premises"] == 2  # bootstrap units = the 2 premises, not 13 rows
    assert result.measures["all"]["accuracy"]["n_rows"] == 13
    assert list(result.measures) == ["all", "domain=gender"]
    cells = {(r["domain"], r["hypothesis_type"], r["type"]): r["accuracy"] for r in result.accuracy_table}
    assert cells[("gender", "test", "anti")]["value"] == pytest.approx(1 / 3)
    assert cells[("gender", "stereotypical", "pro")]["n_rows"] == 4
    assert result.brittleness is None  # no variants


def test_subgroups_recombine():
    rows, preds = hand_rows()
    other = [make_example(r.hypothesis_type, r.type, r.true_label, r.bias_label, premise=r.premise + " R",
                          hypothesis=r.hypothesis, id=r.id, domain="race", name="other") for r in rows]
    data = BBNLIDataset(rows + other)
    predictor = lookup_predictor(data.examples, preds + preds[::-1])
    result = evaluate_nli_bias(predictor, data, num_resamples=50)
    g, r = result.measures["domain=gender"]["accuracy"], result.measures["domain=race"]["accuracy"]
    total = result.measures["all"]["accuracy"]
    assert total["value"] == pytest.approx((g["value"] * g["n_rows"] + r["value"] * r["n_rows"]) / (g["n_rows"] + r["n_rows"]))
    assert total["n_premises"] == 4


def test_each_pair_is_predicted_once():
    rows = [make_example(question="Q1?"), make_example(question="Q2?"), make_example(hypothesis="Other.")]
    predictor = lookup_predictor(rows, [2, 2, 0])
    result = evaluate_nli_bias(predictor, BBNLIDataset(rows), num_resamples=20)
    assert predictor.calls == [2] and result.n_rows == 3
    assert [p["prediction"] for p in result.predictions] == [2, 2, 0]


def test_qa_field_and_excluded_rows():
    rows = [make_example(question="Is it?"), make_example(hypothesis="No question here.", question="")]

    def predictor(premises, questions):
        assert questions == ["Is it?"]
        return [1]

    predictor.hypothesis_field = "question"
    result = evaluate_nli_bias(predictor, BBNLIDataset(rows), num_resamples=20)
    assert result.n_rows == 1 and result.n_excluded == 1 and "excluded" in result.notes[-1]


def test_expanded_samples_weight_every_sample(hand_dataset):
    data, preds = hand_dataset
    table = {(r.premise, r.hypothesis): p for r, p in zip(data, preds)}

    class Sampler:
        def predict_samples(self, premises, hypotheses):
            return [[table[(p, h)], 1] for p, h in zip(premises, hypotheses)]  # each answer + one neutral

        def __call__(self, premises, hypotheses):
            raise AssertionError("expand_samples must use predict_samples")

    result = evaluate_nli_bias(Sampler(), data, expand_samples=True, num_resamples=20)
    doubled_rows = [r for r in data for _ in range(2)]
    doubled_preds = [y for p in preds for y in (p, 1)]
    assert result.n_scored_rows == 26
    assert result.measures["all"]["bbnli_bias_score_original"]["value"] == pytest.approx(
        compute("bbnli_bias_score_original", doubled_rows, doubled_preds))


def test_brittleness_reported_with_variants(hand_dataset):
    data, preds = hand_dataset
    variants = [with_variation(r, hypothesis=r.hypothesis + " Indeed.", variation="lexical_hypothesis") for r in data]
    full = BBNLIDataset(data.examples + variants)
    flipped = [p if i % 2 else (p + 1) % 3 for i, p in enumerate(preds)]  # even-indexed variants flip
    result = evaluate_nli_bias(lookup_predictor(full.examples, preds + flipped), full, num_resamples=50)
    assert result.brittleness["brittleness"]["value"] == pytest.approx(7 / 13)
    assert result.brittleness["variant_flip_rate"]["value"] == pytest.approx(7 / 13)
    assert any("variation" in row for row in result.accuracy_table)
    assert "Brittleness" in result.to_markdown()


def test_report_formats(hand_dataset, tmp_path):
    data, preds = hand_dataset
    result = evaluate_nli_bias(lookup_predictor(data.examples, preds), data, num_resamples=50)
    as_json = json.loads(json.dumps(result.to_dict()))
    assert as_json["measures"]["all"]["bbnli_bias_score"]["value"] == pytest.approx(0.125)
    md = result.to_markdown()
    assert "| bbnli_bias_score_original | 0 (closer is better) | 0.154" in md
    paths = result.save(tmp_path)
    assert paths["json"].exists() and paths["markdown"].read_text() == md
    assert len(paths["predictions"].read_text().splitlines()) == 13
    assert result.plot(tmp_path / "p.png").stat().st_size > 1000


def test_bad_predictor_output_is_an_error(hand_dataset):
    data, _ = hand_dataset
    with pytest.raises(ValueError, match="one label per pair"):
        evaluate_nli_bias(lambda p, h: [1], data)
    with pytest.raises(ValueError, match="must be 0"):
        evaluate_nli_bias(lambda p, h: [7] * len(p), data)


def test_task_yaml_declares_every_registered_measure():
    task = load_task()
    listed = [m["metric"] for m in task["metric_list"]]
    assert sorted(listed) == sorted(set(MEASURES) | set(BRITTLENESS_MEASURES))
    for m in task["metric_list"]:
        if m["metric"] in MEASURES:
            assert m["ideal"] == MEASURES[m["metric"]].ideal
            assert m["higher_is_better"] == MEASURES[m["metric"]].higher_is_better


def test_task_yaml_pins_the_released_file(shared_data):
    import hashlib

    from fairalign.eval.registry import load_task as load_spec

    data = load_spec("bbnli").data
    digest = hashlib.sha256((shared_data / "bbnli" / "bbnli_expanded.csv").read_bytes()).hexdigest()
    assert digest == data["release_sha256"]
