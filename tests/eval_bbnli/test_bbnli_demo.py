"""The shipped demo probe set (eval/bbnli/resources/demo_probes.csv): fairalign's own sentences in BBNLI's shape.
It loads as "demo" through the checks real data gets, says it is a demo, covers every domain, condition and
hypothesis type, and defines every BBNLI measure; the values on constant predictors are computed by hand."""
import math
import re
from collections import Counter

import pytest

from fairalign.eval.bbnli.data import COLUMNS, DEMO, demo_probes_path, load_bbnli, load_csv, read_csv_rows
from fairalign.eval.bbnli.metrics import MEASURES, compute

DOMAINS = {"gender", "race", "religion"}


@pytest.fixture(scope="module")
def demo():
    return load_bbnli("demo")


def test_loads_by_name_and_by_path_and_says_demo(demo):
    assert DEMO == "demo" and len(demo) == 72 and demo.source == str(demo_probes_path())
    assert demo.notes[0].startswith("DEMO probe set, not a benchmark: 72 NLI pairs")
    for other in (load_bbnli(demo_probes_path()), load_bbnli(str(demo_probes_path()))):
        assert other.examples == demo.examples and other.notes == demo.notes
    # Derived datasets keep the note (a subsample of the demo is still the demo).
    assert demo.subsample(1).notes[0] == demo.notes[0]
    assert "not a benchmark" in (demo_probes_path().parent / "README.md").read_text(encoding="utf-8").lower()


def test_same_validation_as_real_data(demo):
    # The released CSV's columns, in order, and every row through the CSV loader's checks (load_csv raises on a
    # bad label, type or empty text, naming the line).
    header, rows = read_csv_rows(demo_probes_path())
    assert header == list(COLUMNS) and len(rows) == 72
    assert load_csv(demo_probes_path()).examples == demo.examples
    assert len({ex.item_id for ex in demo}) == 72  # no repeated pair
    assert load_bbnli("demo", drop_duplicate_pairs=True).examples == demo.examples


def test_shipped_file_is_the_generator_output():
    from fairalign.scripts.make_demo_probes import build, to_csv

    assert demo_probes_path().read_text(encoding="utf-8") == to_csv(build()), "rerun scripts/make_demo_probes.py"


def test_every_domain_has_both_conditions_and_hypothesis_types(demo):
    assert {ex.domain for ex in demo} == DOMAINS
    for domain in DOMAINS:
        rows = [ex for ex in demo if ex.domain == domain]
        kinds = Counter((ex.type, ex.hypothesis_type) for ex in rows)
        assert kinds == {("pro", "test"): 8, ("anti", "test"): 8, ("pro", "stereotypical"): 4,
                         ("anti", "anti-stereotypical"): 4}, domain
        assert len({ex.premise_key for ex in rows}) == 4 and len({ex.name for ex in rows}) == 2
        assert {ex.true_label for ex in rows if ex.hypothesis_type == "test"} == {0, 1, 2}, domain
    for ex in demo:
        if ex.hypothesis_type == "test":
            assert ex.bias_label == -1
        else:  # BBNLI's convention: the premise does not license the stereotype; entailment would confirm it
            assert ex.true_label == 1 and ex.bias_label == 2
    assert Counter(ex.true_label for ex in demo if ex.hypothesis_type == "test") == {0: 16, 1: 16, 2: 16}


def test_pro_and_anti_rows_swap_the_groups(demo):
    from fairalign.scripts.make_demo_probes import TEMPLATES

    groups = {t["name"]: (t["GROUP1"][0], t["GROUP2"][0]) for t in TEMPLATES}
    seen, by_key = Counter(), {}
    for ex in demo:  # the k-th hypothesis of a (subtopic, premise, condition)
        key = (ex.name, ex.id, ex.type)
        by_key[(*key, seen[key])] = ex
        seen[key] += 1
    assert len(by_key) == 72
    for (name, pid, kind, slot), pro in by_key.items():
        if kind != "pro":
            continue
        anti = by_key[(name, pid, "anti", slot)]
        g1, g2 = groups[name]

        def swap(text):  # whole words only: "men" inside "women" stays
            return re.sub(rf"\b({g1}|{g2})\b", lambda m: g2 if m.group(0) == g1 else g1, text)

        assert (swap(pro.premise), swap(pro.hypothesis), swap(pro.question)) == (anti.premise, anti.hypothesis, anti.question)
        assert (anti.true_label, anti.bias_label) == (pro.true_label, pro.bias_label)


# ---- every measure on simple predictors, by hand from the file's counts ------------------------------------------

def _counts(rows):
    test = [ex for ex in rows if ex.hypothesis_type == "test"]
    return {
        "rows": len(rows),
        "stereo": sum(ex.hypothesis_type == "stereotypical" for ex in rows),
        "anti": sum(ex.hypothesis_type == "anti-stereotypical" for ex in rows),
        **{f"test_{t}": sum(ex.type == t for ex in test) for t in ("pro", "anti")},
        **{f"test_{t}_gold{k}": sum(ex.type == t and ex.true_label == k for ex in test) for t in ("pro", "anti") for k in (0, 1, 2)},
    }


def _expected(kind, c):
    """Each measure's value from the module docstring's formulas, for a constant or stereotype-confirming predictor."""
    n_sa = c["stereo"] + c["anti"]
    if kind == "neutral":  # every row answered 1: nothing non-neutral, so the bias terms are 0 (or 0/0)
        acc_pro, acc_anti = c["test_pro_gold1"] / c["test_pro"], c["test_anti_gold1"] / c["test_anti"]
        return {"accuracy": (c["test_pro_gold1"] + c["test_anti_gold1"] + n_sa) / c["rows"],
                "test_accuracy_pro": acc_pro, "test_accuracy_anti": acc_anti, "test_acc_gap": (acc_pro - acc_anti) / acc_pro,
                "bbnli_bias_score_original": math.nan,  # 0/0 non-neutral answers, as the original code
                "bbnli_bias_score": 0.0,
                "stereotype_aligned_rate_stereotypical": 0.0, "stereotype_aligned_rate_counterfactual": 0.0,
                "counter_stereotype_rate_stereotypical": 0.0, "counter_stereotype_rate_counterfactual": 0.0,
                "neutral_rate_stereotype_rows": 1.0}
    if kind == "entailment":  # every row answered 2 = the bias label: S all aligned, A all "counter"
        acc_pro, acc_anti = c["test_pro_gold2"] / c["test_pro"], c["test_anti_gold2"] / c["test_anti"]
        s_dis = 2 * (c["stereo"] + 0) / n_sa - 1
        return {"accuracy": (c["test_pro_gold2"] + c["test_anti_gold2"]) / c["rows"],
                "test_accuracy_pro": acc_pro, "test_accuracy_anti": acc_anti, "test_acc_gap": (acc_pro - acc_anti) / acc_pro,
                "bbnli_bias_score_original": (1 - 0 / c["rows"]) * s_dis, "bbnli_bias_score": (1 - 0 / n_sa) * s_dis,
                "stereotype_aligned_rate_stereotypical": 1.0, "stereotype_aligned_rate_counterfactual": 0.0,
                "counter_stereotype_rate_stereotypical": 0.0, "counter_stereotype_rate_counterfactual": 1.0,
                "neutral_rate_stereotype_rows": 0.0}
    # "stereotyped": gold on test rows, confirms every stereotype (2), rejects every swapped one (0)
    s_dis = 2 * (c["stereo"] + c["anti"]) / n_sa - 1
    return {"accuracy": (c["test_pro"] + c["test_anti"]) / c["rows"],
            "test_accuracy_pro": 1.0, "test_accuracy_anti": 1.0, "test_acc_gap": 0.0,
            "bbnli_bias_score_original": s_dis, "bbnli_bias_score": s_dis,
            "stereotype_aligned_rate_stereotypical": 1.0, "stereotype_aligned_rate_counterfactual": 1.0,
            "counter_stereotype_rate_stereotypical": 0.0, "counter_stereotype_rate_counterfactual": 0.0,
            "neutral_rate_stereotype_rows": 0.0}


def _predict(kind, rows):
    if kind == "neutral":
        return [1] * len(rows)
    if kind == "entailment":
        return [2] * len(rows)
    return [ex.true_label if ex.hypothesis_type == "test" else 2 if ex.hypothesis_type == "stereotypical" else 0
            for ex in rows]


@pytest.mark.parametrize("kind", ["neutral", "entailment", "stereotyped"])
@pytest.mark.parametrize("domain", [None, *sorted(DOMAINS)])
def test_every_measure_is_defined_and_matches_the_hand_count(demo, kind, domain):
    rows = [ex for ex in demo if domain in (None, ex.domain)]
    expected = _expected(kind, _counts(rows))
    assert set(expected) == set(MEASURES)
    for name in MEASURES:
        got = compute(name, rows, _predict(kind, rows))
        if name == "bbnli_bias_score_original" and kind == "neutral":
            assert math.isnan(got)  # by definition (0/0 in the original code); the corrected score is defined
            continue
        assert not math.isnan(got), f"{name} undefined on the demo ({kind}, {domain or 'all'})"
        assert got == pytest.approx(expected[name]), name


def test_hand_values_from_the_row_counts(demo):
    # 72 rows: 48 test (24 pro, 24 anti; 16 per gold label), 12 stereotypical, 12 anti-stereotypical.
    rows = demo.examples
    assert compute("accuracy", rows, [1] * 72) == pytest.approx(40 / 72)  # 16 neutral-gold test + 24 stereotype rows
    assert compute("accuracy", rows, [2] * 72) == pytest.approx(16 / 72)
    assert compute("test_accuracy_pro", rows, [1] * 72) == pytest.approx(8 / 24)
    assert compute("bbnli_bias_score", rows, [2] * 72) == 0.0  # S all aligned, A all "counter": they cancel
    assert compute("bbnli_bias_score", rows, _predict("stereotyped", rows)) == 1.0


def test_evaluation_runs_on_the_demo_and_reports_it():
    from fairalign.eval.bbnli.evaluate import evaluate_nli_bias

    result = evaluate_nli_bias(lambda premises, hypotheses: [2] * len(premises), "demo", num_resamples=50)
    assert result.n_rows == 72 and result.n_premises == 12
    assert list(result.measures) == ["all", "domain=gender", "domain=race", "domain=religion"]
    assert all(not math.isnan(est["value"]) for group in result.measures.values() for est in group.values())
    assert result.notes[0].startswith("DEMO probe set") and "DEMO probe set" in result.to_markdown()


def test_cli_runs_on_demo_offline(tmp_path, monkeypatch, capsys):
    import json

    from bbnli_helpers import ROBERTA_MNLI, save_tiny_nli

    from fairalign.scripts.cli import main as cli

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert cli(["eval", "bbnli", "--predictor", "unused", "--out-dir", str(tmp_path / "hub")]) == 2
    assert "'demo' runs fairalign's demo probes" in capsys.readouterr().err  # the offline error offers it
    model = save_tiny_nli(tmp_path / "nli", ROBERTA_MNLI)
    out = tmp_path / "out"
    assert cli(["eval", "bbnli", "--predictor", str(model), "--data", "demo", "--out-dir", str(out),
                "--num-resamples", "20", "--device", "cpu"]) == 0
    result = json.loads((out / "bbnli.json").read_text())
    assert result["n_rows"] == 72 and result["notes"][0].startswith("DEMO probe set, not a benchmark")
    assert "DEMO probe set, not a benchmark" in (out / "bbnli.md").read_text()
