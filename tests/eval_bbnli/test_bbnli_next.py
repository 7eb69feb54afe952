"""BBNLI-next construction end to end: a scripted generator, fake NLI predictors, export, validation, import,
evaluation with brittleness."""
import csv
import re

import pytest
from bbnli_helpers import make_example

from fairalign.eval.bbnli.data import BBNLIDataset, load_bbnli
from fairalign.eval.bbnli.evaluate import evaluate_nli_bias
from fairalign.eval.bbnli.next_build import (
    adversarial_filter,
    build_bbnli_next,
    clean_generation,
    export_for_validation,
    generate_variations,
    import_validated,
)


def source_rows():
    return [
        make_example("test", "pro", 2, premise="Most nurses are women.", hypothesis="Women are nurses.", question="Q1?"),
        make_example("test", "pro", 2, premise="Most nurses are women.", hypothesis="Women are nurses.", question="Q2?"),
        make_example("stereotypical", "pro", 1, premise="Most nurses are women.", hypothesis="Women are caring."),
        make_example("anti-stereotypical", "anti", 1, premise="Most nurses are men.", hypothesis="Men are caring.", id="00"),
    ]


def scripted_generator():
    """Rewrites 'X are Y.' as 'X seem Y.' and, on the next call, as '"X tend to be Y."' (quoted)."""
    calls = {"n": 0}

    def generate(prompts):
        calls["n"] += 1
        out = []
        for p in prompts:
            text = re.search(r"Sentence: (.*)\n", p).group(1)
            out.append(text.replace(" are ", " seem ") if calls["n"] % 2 else f'"{text.replace(" are ", " tend to be ")}"\nextra')
        return out

    return generate


def fooled_by_seem(premises, hypotheses):
    """Entailment unless the hypothesis says 'seem' (then contradiction)."""
    return [0 if "seem" in h else 2 for h in hypotheses]


def never_fooled(premises, hypotheses):
    return [1] * len(premises)


def test_generate_variations_provenance_and_dedup():
    rows = source_rows()
    cands = generate_variations(BBNLIDataset(rows), scripted_generator(), num_variations=3)
    # 3 distinct pairs (rows 0/1 repeat a pair) x 2 distinct rewrites (the 3rd sample repeats the 1st)
    assert len(cands) == 6
    hyps = sorted(c.example.hypothesis for c in cands)
    assert hyps == sorted(["Women seem nurses.", "Women tend to be nurses.", "Women seem caring.",
                           "Women tend to be caring.", "Men seem caring.", "Men tend to be caring."])
    for c in cands:
        assert c.example.variant_of == c.source.item_id and c.example.variation == "lexical_hypothesis"
        assert c.example.true_label == c.source.true_label and c.example.premise == c.source.premise
        assert c.example.question == ""  # the QA question no longer matches a rewritten hypothesis
        assert c.generator == "callable" and c.prompt_name == "paraphrase"
    premise_cands = generate_variations(BBNLIDataset(rows), scripted_generator(), target="premise", num_variations=1)
    assert {c.example.premise for c in premise_cands} == {"Most nurses seem women.", "Most nurses seem men."}
    assert all(c.example.question == c.source.question for c in premise_cands)


def test_clean_generation():
    assert clean_generation('\n  "Women tend to be nurses."\nmore') == "Women tend to be nurses."
    assert clean_generation("Rewritten sentence: Men cook.") == "Men cook."
    assert clean_generation("1. Men cook.") == "Men cook."
    assert clean_generation("   \n ") == ""


@pytest.mark.parametrize("criterion, expected_kept", [("flip", 3), ("wrong", 6), ("flip_to_wrong", 1)])
def test_adversarial_filter_criteria(criterion, expected_kept):
    cands = generate_variations(BBNLIDataset(source_rows()), scripted_generator(), num_variations=2)
    kept = adversarial_filter(cands, {"seem": fooled_by_seem, "never": never_fooled}, criterion=criterion)
    # fooled_by_seem: sources -> 2, "seem" variants -> 0 (3 flips), "tend to be" -> 2 (no flip).
    # wrong: gold 2 for the test pair, 1 for the stereotype pairs: never_fooled is wrong on the 2 test
    # variants, fooled_by_seem wrong on all 4 stereotype variants and on "Women seem nurses." -> all 6.
    # flip_to_wrong: a source predicted right that flips to wrong: only the test pair, under "seem".
    assert len(kept) == expected_kept
    assert all(set(c.predictions) == {"seem", "never"} for c in cands)
    two = adversarial_filter(cands, {"seem": fooled_by_seem, "never": never_fooled}, criterion=criterion, min_predictors=2)
    # both predictors wrong: only "Women seem nurses." (fooled_by_seem 0, never_fooled 1, gold 2)
    assert len(two) == (1 if criterion == "wrong" else 0)


def test_build_export_validate_import_evaluate(tmp_path):
    data = BBNLIDataset(source_rows(), source="src")
    kept, cands = build_bbnli_next(data, scripted_generator(), {"seem": fooled_by_seem, "never": never_fooled},
                                   num_variations=2)
    assert len(cands) == 6 and len(kept) == 3 and all(c.met_by == ["seem"] for c in kept)
    path = export_for_validation(kept, tmp_path / "cands.csv", settings={"seed": 0})
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"valid", "validator_note", "source_hypothesis", "raw_generation", "generator", "fooled_predictors",
            "pred_source[seem]", "pred_variant[seem]", "variant_of", "variation", "item_id"} <= set(rows[0])
    assert [r["pred_variant[seem]"] for r in rows] == ["0", "0", "0"]
    with pytest.raises(ValueError, match="empty `valid` mark"):
        import_validated(path)
    # a validator accepts two rewrites and rejects one
    for r, mark in zip(rows, ["1", "yes", "0"]):
        r["valid"] = mark
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    imported = load_bbnli(path)  # load_bbnli recognises a validation export
    assert len(imported) == 2 and imported.has_variants
    assert {ex.variant_of for ex in imported} <= {ex.item_id for ex in data}
    full = data.concat(imported)
    result = evaluate_nli_bias(fooled_by_seem, full, num_resamples=50)
    # both valid variants flip fooled_by_seem's answer: every group disagrees
    assert result.brittleness["brittleness"]["value"] == 1.0
    assert result.brittleness["variant_flip_rate"]["value"] == 1.0
    assert result.brittleness["variant_flip_rate"]["n_variants_with_source"] == 2


def test_bad_marks_and_settings(tmp_path):
    cands = generate_variations(BBNLIDataset(source_rows()), scripted_generator(), num_variations=1)
    path = export_for_validation(cands, tmp_path / "c.csv")
    text = path.read_text().splitlines()
    text[1] = text[1][: text[1].rfind(",,")] + ",maybe,"
    (tmp_path / "d.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match="use 1/0"):
        import_validated(tmp_path / "d.csv")
    assert len(import_validated(path, unmarked="drop")) == 0
    with pytest.raises(ValueError, match="criterion"):
        adversarial_filter(cands, {"a": never_fooled}, criterion="flop")
    with pytest.raises(ValueError, match="min_predictors"):
        adversarial_filter(cands, {"a": never_fooled}, min_predictors=2)
    with pytest.raises(ValueError, match="target"):
        generate_variations(cands, scripted_generator(), target="question")


def test_tiny_llama_generator_runs_through_as_lm(tiny_llama, tokenizer):
    rows = source_rows()[2:]
    cands = generate_variations(BBNLIDataset(rows), (tiny_llama, tokenizer), num_variations=2, max_new_tokens=8,
                                max_length_ratio=100.0)
    for c in cands:  # random weights: whatever came out must satisfy the cleaning rules
        assert c.example.hypothesis and c.example.hypothesis.lower() != c.source.hypothesis.lower()
        assert c.example.variant_of == c.source.item_id and c.raw_generation
