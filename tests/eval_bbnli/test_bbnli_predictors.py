"""NLI classifier label mapping across label orders (tiny random models saved to disk), and label checks."""
import numpy as np
import pytest
import torch
from bbnli_helpers import CROSS_ENCODER, ENTAIL_FIRST, LOWER_CNE, ROBERTA_MNLI, save_tiny_nli, tiny_nli_model

from fairalign.eval.bbnli.predictors import NLIClassifierPredictor, check_labels, label_permutation

PREMISES = ["Women make up 47% of employed adults.", "Men stay at home.", "The study has 5 groups.", "Some cook."]
HYPOTHESES = ["Women are employed.", "Men work.", "No groups.", "They are chefs and they cook every day of the week."]


@pytest.mark.parametrize("id2label, expected", [
    (ROBERTA_MNLI, [0, 1, 2]), (LOWER_CNE, [0, 1, 2]), (CROSS_ENCODER, [0, 2, 1]), (ENTAIL_FIRST, [2, 1, 0]),
    ({"0": "Entailment ", "1": "neutral", "2": "CONTRADICTION"}, [2, 1, 0]),  # JSON string keys, stray space
])
def test_label_permutation(id2label, expected):
    assert label_permutation(id2label) == expected


@pytest.mark.parametrize("id2label", [
    {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"},
    {0: "entailment", 1: "not_entailment"},
    {0: "entailment", 1: "entailment", 2: "neutral"},
    {0: "positive", 1: "neutral", 2: "negative"},
])
def test_unmappable_labels_are_errors_listing_them(id2label):
    with pytest.raises(ValueError, match="cannot map") as err:
        label_permutation(id2label)
    assert str(list(id2label.values())[0]) in str(err.value)


def _permuted_copy(model, id2label):
    """The same network with its output rows reordered to `id2label`'s order (same class names)."""
    import copy

    source = {name.lower(): i for i, name in model.config.id2label.items()}
    order = [source[id2label[j].lower()] for j in range(3)]
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.classifier.out_proj.weight.copy_(model.classifier.out_proj.weight[order])
        other.classifier.out_proj.bias.copy_(model.classifier.out_proj.bias[order])
    other.config.id2label = dict(id2label)
    other.config.label2id = {v: k for k, v in id2label.items()}
    return other


@pytest.mark.parametrize("other_order", [LOWER_CNE, CROSS_ENCODER, ENTAIL_FIRST])
def test_models_with_different_label_orders_agree(tmp_path, other_order):
    model, tok = tiny_nli_model(ROBERTA_MNLI, seed=1)
    save_tiny_nli(tmp_path / "a", ROBERTA_MNLI, seed=1)
    _permuted_copy(model, other_order).save_pretrained(tmp_path / "b")
    tok.save_pretrained(tmp_path / "b")
    a = NLIClassifierPredictor(str(tmp_path / "a"), device="cpu", batch_size=3)
    b = NLIClassifierPredictor(str(tmp_path / "b"), device="cpu", batch_size=3)
    pa, pb = a.predict_proba(PREMISES, HYPOTHESES), b.predict_proba(PREMISES, HYPOTHESES)
    np.testing.assert_allclose(pa, pb, atol=1e-6)
    assert a(PREMISES, HYPOTHESES) == b(PREMISES, HYPOTHESES)
    # independent: softmax of the raw logits, columns put in BBNLI order by name
    enc = tok(PREMISES, HYPOTHESES, padding=True, return_tensors="pt")
    enc.pop("token_type_ids", None)
    with torch.no_grad():
        raw = torch.softmax(b.model(**enc).logits, -1).numpy()
    names = [other_order[j].lower() for j in range(3)]
    manual = raw[:, [names.index(n) for n in ("contradiction", "neutral", "entailment")]]
    np.testing.assert_allclose(pb, manual, atol=1e-6)


def test_batching_and_sorting_do_not_change_predictions():
    model, tok = tiny_nli_model(CROSS_ENCODER, seed=2)
    one = NLIClassifierPredictor(model, tok, device="cpu", batch_size=1, sort_by_length=False)
    many = NLIClassifierPredictor(model, tok, device="cpu", batch_size=4, sort_by_length=True)
    rounded = NLIClassifierPredictor(model, tok, device="cpu", batch_size=3, sort_by_length=False, pad_to_multiple_of=8)
    reference = one.predict_proba(PREMISES, HYPOTHESES)
    np.testing.assert_allclose(many.predict_proba(PREMISES, HYPOTHESES), reference, atol=1e-5)
    np.testing.assert_allclose(rounded.predict_proba(PREMISES, HYPOTHESES), reference, atol=1e-5)


def test_loaded_model_needs_a_tokenizer():
    model, _ = tiny_nli_model(ROBERTA_MNLI)
    with pytest.raises(ValueError, match="tokenizer"):
        NLIClassifierPredictor(model, device="cpu")


def test_check_labels():
    assert check_labels(np.array([0, 1, 2]), 3) == [0, 1, 2]
    with pytest.raises(ValueError, match="one label per pair"):
        check_labels([0, 1], 3)
    with pytest.raises(ValueError, match="must be 0"):
        check_labels([0, 3, 1], 3)
    with pytest.raises(ValueError, match="must be 0"):
        check_labels(["entailment", 1, 1], 3)
    with pytest.raises(ValueError, match="must be 0"):
        check_labels([0.5, 1, 1], 3)


def test_long_inputs_are_truncated_to_the_position_table():
    model, tok = tiny_nli_model(ROBERTA_MNLI)  # 130 positions, padding_idx 3: 126 usable
    predictor = NLIClassifierPredictor(model, tok, device="cpu")
    assert predictor.max_length == 130 - 4
    assert len(predictor(["the nurse works " * 200], ["Nurses work."])) == 1


def test_left_padding_tokenizers_are_padded_right():
    model, tok = tiny_nli_model(ROBERTA_MNLI, seed=3)
    right = NLIClassifierPredictor(model, tok, device="cpu", batch_size=4).predict_proba(PREMISES, HYPOTHESES)
    tok.padding_side = "left"
    left = NLIClassifierPredictor(model, tok, device="cpu", batch_size=4).predict_proba(PREMISES, HYPOTHESES)
    np.testing.assert_allclose(left, right, atol=1e-6)
    assert tok.padding_side == "left"  # restored
