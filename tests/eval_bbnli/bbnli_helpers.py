"""BBNLI test helpers: hand-made rows and tiny sequence-classification NLI models saved to disk."""
from fairalign.eval.bbnli.data import BBNLIExample

ROBERTA_MNLI = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}  # roberta-large-mnli's config
LOWER_CNE = {0: "contradiction", 1: "neutral", 2: "entailment"}  # bart-large-mnli's names (lower case)
CROSS_ENCODER = {0: "contradiction", 1: "entailment", 2: "neutral"}  # cross-encoder/nli-* order
ENTAIL_FIRST = {0: "entailment", 1: "neutral", 2: "contradiction"}  # e.g. typeform/distilbert-base-uncased-mnli


def make_example(hypothesis_type="test", type="pro", true_label=1, bias_label=None, premise="Women work.",
                 hypothesis="Women work hard.", id="00", name="topic", domain="gender", question="", **kw):
    if bias_label is None:
        bias_label = -1 if hypothesis_type == "test" else 2
    return BBNLIExample(domain=domain, name=name, id=id, type=type, unique_id=f"{name}_{type}_{id}", premise=premise,
                        hypothesis_type=hypothesis_type, hypothesis=hypothesis, question=question,
                        true_label=true_label, bias_label=bias_label, **kw)


def hand_rows():
    """13 rows over 2 premises with the predictions of the module-level golden test (see test_bbnli_metrics)."""
    spec = [  # (hypothesis_type, type, gold, prediction, premise id)
        ("test", "pro", 2, 2, "00"), ("test", "pro", 0, 1, "01"),
        ("test", "anti", 2, 2, "00"), ("test", "anti", 0, 2, "01"), ("test", "anti", 1, 2, "00"),
        ("stereotypical", "pro", 1, 2, "00"), ("stereotypical", "pro", 1, 2, "01"),
        ("stereotypical", "pro", 1, 0, "00"), ("stereotypical", "pro", 1, 1, "01"),
        ("anti-stereotypical", "anti", 1, 0, "00"), ("anti-stereotypical", "anti", 1, 2, "01"),
        ("anti-stereotypical", "anti", 1, 1, "00"), ("anti-stereotypical", "anti", 1, 1, "01"),
    ]
    rows = [make_example(h, t, gold, id=pid, hypothesis=f"Hypothesis number {i}.", premise=f"Premise {pid} {t}.",
                         question=f"Is it number {i}?")
            for i, (h, t, gold, _, pid) in enumerate(spec)]
    return rows, [pred for *_, pred, _ in spec]


def tiny_nli_model(id2label, seed=0):
    """2-layer RoBERTa sequence classifier (hidden 32) over the tiny tokenizer, with the given id2label."""
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    from fairalign.align.testing import tiny_tokenizer

    tok = tiny_tokenizer()
    config = RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=130, type_vocab_size=1,
                           pad_token_id=tok.pad_token_id, num_labels=3, id2label=dict(id2label),
                           label2id={v: k for k, v in id2label.items()}, hidden_dropout_prob=0.0,
                           attention_probs_dropout_prob=0.0)
    torch.manual_seed(seed)
    return RobertaForSequenceClassification(config).eval(), tok


def save_tiny_nli(path, id2label, seed=0):
    model, tok = tiny_nli_model(id2label, seed)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
