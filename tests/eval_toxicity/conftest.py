"""Fixtures for the toxicity tests: a tiny sequence classifier saved to disk, a tiny causal LM directory."""
import pytest


def build_tiny_classifier(id2label: dict, problem_type: str | None = None, seed: int = 0):
    """A 2-layer, 32-hidden random BERT classifier with the given labels, and the tiny tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from fairalign.align.testing import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, pad_token_id=tokenizer.pad_token_id,
                        id2label=id2label, label2id={v: k for k, v in id2label.items()}, problem_type=problem_type)
    torch.manual_seed(seed)
    return BertForSequenceClassification(config).eval(), tokenizer


@pytest.fixture
def make_classifier():
    """The builder above, as a fixture (test modules cannot import conftest by name reliably)."""
    return build_tiny_classifier


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory):
    """Saved tiny classifier with labels {0: neutral, 1: Toxic, 2: insult} (softmax head)."""
    model, tokenizer = build_tiny_classifier({0: "neutral", 1: "Toxic", 2: "insult"})
    path = tmp_path_factory.mktemp("classifier")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory):
    """The tiny Llama + tokenizer saved with save_pretrained (what the CLI loads as --model)."""
    from fairalign.align.testing import tiny_llama, tiny_tokenizer

    path = tmp_path_factory.mktemp("tiny_lm")
    tiny_llama().save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path
