"""Scorers: label handling of HFClassifierScorer, batching, the offline proxy, the factory."""
import warnings

import pytest
import torch

from fairalign.eval.toxicity import HFClassifierScorer, OfflineProfanityScorer, get_scorer, score_records
from fairalign.eval.toxicity.scorers import FallbackNotice, validate_scores

TEXTS = ["You are a terrible idiot.", "Thank you so much!", "?", "The quick brown fox jumps over the lazy dog " * 3]


def reference_probs(path, texts, activation):
    """Independent computation: one text at a time through the raw model."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    rows = []
    with torch.no_grad():
        for t in texts:
            logits = model(**tok([t], return_tensors="pt")).logits[0]
            rows.append(torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, -1))
    return torch.stack(rows)


def test_label_resolved_from_id2label_case_insensitive(classifier_dir):
    scorer = HFClassifierScorer(str(classifier_dir), label="toxic", batch_size=3, device="cpu")
    assert scorer.label_index == 1 and scorer.label == "Toxic" and scorer.activation == "softmax"
    expected = reference_probs(classifier_dir, TEXTS, "softmax")[:, 1]
    assert scorer(TEXTS) == pytest.approx(expected.tolist(), abs=1e-5)
    by_index = HFClassifierScorer(str(classifier_dir), label=2, device="cpu")
    assert by_index.label == "insult"
    assert by_index(TEXTS) == pytest.approx(reference_probs(classifier_dir, TEXTS, "softmax")[:, 2].tolist(), abs=1e-5)


def test_unknown_label_lists_available(classifier_dir):
    with pytest.raises(ValueError) as err:
        HFClassifierScorer(str(classifier_dir), label="hate", device="cpu")
    message = str(err.value)
    assert "'hate'" in message and "'neutral'" in message and "'Toxic'" in message and "'insult'" in message
    with pytest.raises(ValueError, match="id2label"):
        HFClassifierScorer(str(classifier_dir), label=7, device="cpu")


def test_text_with_no_tokens_is_a_failure_not_a_score(classifier_dir):
    # The tiny tokenizer adds no [CLS]/[SEP], so "" encodes to nothing: None (excluded downstream), not a number.
    scorer = HFClassifierScorer(str(classifier_dir), label="toxic", batch_size=2, device="cpu")
    scores = scorer(["", "hello", ""])
    assert scores[0] is None and scores[2] is None and 0 <= scores[1] <= 1
    assert scorer(["", ""]) == [None, None]


def test_multi_label_uses_sigmoid(tmp_path, make_classifier):
    model, tok = make_classifier({0: "toxic", 1: "obscene"}, problem_type="multi_label_classification", seed=1)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    scorer = HFClassifierScorer(str(tmp_path), label="obscene", device="cpu")
    assert scorer.activation == "sigmoid"
    assert scorer(TEXTS) == pytest.approx(reference_probs(tmp_path, TEXTS, "sigmoid")[:, 1].tolist(), abs=1e-5)


def test_batched_equals_one_at_a_time(classifier_dir):
    texts = [f"text {'word ' * (i % 7)} number {i}" for i in range(13)]
    batched = HFClassifierScorer(str(classifier_dir), label="Toxic", batch_size=5, device="cpu")(texts)
    single = HFClassifierScorer(str(classifier_dir), label="Toxic", batch_size=1, device="cpu")(texts)
    assert batched == pytest.approx(single, abs=1e-5)


def test_from_model_and_missing_model(make_classifier):
    model, tok = make_classifier({0: "ok", 1: "toxic"})
    scorer = HFClassifierScorer.from_model(model, tok, label="toxic", device="cpu")
    assert len(scorer(["a", "b"])) == 2 and scorer.describe()["label"] == "toxic"
    with pytest.raises(OSError, match="could not load the classifier"):
        HFClassifierScorer("no-such-org/no-such-classifier", device="cpu")


def test_get_scorer_factory(classifier_dir):
    assert isinstance(get_scorer(str(classifier_dir), label="toxic", device="cpu"), HFClassifierScorer)
    assert isinstance(get_scorer("hf-classifier", model_id_or_path=str(classifier_dir), label="toxic", device="cpu"),
                      HFClassifierScorer)
    with pytest.raises(ValueError, match="unknown scorer"):
        get_scorer("nonsense")
    with pytest.raises(ValueError, match="API key"):
        get_scorer("perspective", api_key="")


def test_offline_profanity_scorer_and_auto_fallback(monkeypatch):
    pytest.importorskip("profanity_check")
    with pytest.warns(UserWarning, match="proxy"):
        scorer = OfflineProfanityScorer()
    scores = scorer(["fuck you, you stupid idiot", "have a lovely day", ""])
    assert scores[0] > 0.5 > scores[1] and all(0 <= s <= 1 for s in scores)
    assert "proxy" in scorer.describe()["notice"]
    with pytest.warns(FallbackNotice, match="could not be loaded"):
        auto = get_scorer("auto", model_id_or_path="no-such-org/no-such-classifier")
    assert isinstance(auto, OfflineProfanityScorer) and "fell back" in auto.notice
    # A wrong label on a classifier that loads is the user's error, not a reason to fall back.


def test_auto_keeps_label_errors(classifier_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackNotice)
        with pytest.raises(ValueError, match="id2label"):
            get_scorer("auto", model_id_or_path=str(classifier_dir), label="hate", device="cpu")


def test_validate_scores():
    assert validate_scores([0.1, None, float("nan")], 3) == [0.1, None, None]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        validate_scores([2.0], 1)


def test_score_cache_retries_failures_only(tmp_path):
    cache = tmp_path / "scores.jsonl"
    records = [{"prompt_id": "a", "sample": j, "continuation": t} for j, t in enumerate(["x", "flaky", "y"])]
    calls = []

    def flaky_scorer(texts):
        calls.extend(texts)
        return [None if t == "flaky" and calls.count("flaky") == 1 else 0.3 for t in texts]

    first = score_records(records, flaky_scorer, cache_path=cache)
    assert [r["toxicity"] for r in first] == [0.3, None, 0.3]
    second = score_records(records, flaky_scorer, cache_path=cache)
    assert [r["toxicity"] for r in second] == [0.3, 0.3, 0.3]
    assert calls == ["x", "flaky", "y", "flaky"]  # only the failed text was sent again
