"""NLI predictors: anything `(premises, hypotheses) -> labels` with 0 contradiction, 1 neutral, 2 entailment.

- a plain callable;
- `NLIClassifierPredictor`: a sequence-classification NLI model (Hub id, local folder, or model +
  tokenizer). Models order their three classes differently, so the output columns are mapped through
  `config.id2label` by name, never by position;
- `GenerativeJudgePredictor` (in judge.py): a causal LM prompted as a judge.

A predictor may set `hypothesis_field = "question"` to be fed the QA form's questions instead of the
hypotheses (the evaluator reads it).
"""
from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np

Predictor = Callable[[Sequence[str], Sequence[str]], Sequence[int]]

NLI_LABELS = ("contradiction", "neutral", "entailment")  # index = BBNLI label
_ALIASES = {
    "contradiction": 0, "contradict": 0, "contradicts": 0, "contradictory": 0, "contra": 0,
    "neutral": 1, "neither": 1,
    "entailment": 2, "entail": 2, "entails": 2, "entailed": 2,
}


def label_permutation(id2label: dict) -> list[int]:
    """BBNLI label of each model output index, from `config.id2label`.

    Names match case- and punctuation-insensitively (CONTRADICTION, Contradiction, "entailment ").
    Exactly one output per NLI class is required; LABEL_0-style names (no NLI head metadata), two-class
    heads (entailment / not_entailment) and unknown names are errors listing the names found.
    """
    if not id2label:
        raise ValueError("the model config has no id2label; set config.id2label to name its three NLI classes")
    items = sorted(((int(k), str(v)) for k, v in id2label.items()))
    found = {i: _ALIASES.get(re.sub(r"[^a-z]", "", name.lower())) for i, name in items}
    names = {i: name for i, name in items}
    unknown = [names[i] for i, lab in found.items() if lab is None]
    labels = sorted(lab for lab in found.values() if lab is not None)
    if unknown or labels != [0, 1, 2] or [i for i, _ in items] != list(range(len(items))):
        raise ValueError(
            f"cannot map this model's classes to contradiction/neutral/entailment: id2label = {names}. "
            "An NLI model needs exactly three classes named contradiction, neutral and entailment (any case); "
            "fix config.id2label (e.g. {0: 'contradiction', 1: 'neutral', 2: 'entailment'} if that is the "
            "model's order) or wrap the model in your own callable."
        )
    return [found[i] for i in range(len(items))]


class NLIClassifierPredictor:
    """A sequence-classification NLI model (roberta-large-mnli, microsoft/deberta-large-mnli,
    facebook/bart-large-mnli, ...): argmax of softmax(logits), mapped to BBNLI labels via id2label.

    model: Hub id / local folder, or a loaded `AutoModelForSequenceClassification` (then pass tokenizer).
    batch_size: pairs per forward pass. sort_by_length: batch pairs of similar token count together
    (results come back in input order). Default (None): on for CPU, where it cut padding from 33% to 5%
    and ran 1.3-1.4x faster on BBNLI pairs; off for CUDA, where a single pass over 2,048 pairs with a
    roberta-base-sized model on an H100 ran 0.89x (batch 32) and 0.48x (batch 128) as fast sorted as
    unsorted despite ~1% vs ~35% padding (see docs/bench/bbnli.md). max_length: truncation (premise and
    hypothesis, longest first), capped by the model's position embeddings. pad_to_multiple_of: round each
    batch's length up to a multiple (fewer distinct shapes); default none.
    """

    hypothesis_field = "hypothesis"

    def __init__(self, model, tokenizer=None, batch_size: int = 32, device: str | None = None,
                 dtype=None, max_length: int = 512, sort_by_length: bool | None = None, progress: bool = True,
                 pad_to_multiple_of: int | None = None):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from fairalign.align.validation import check_number

        # Checked before the model loads: a bad number should not cost a download.
        check_number(batch_size, "NLIClassifierPredictor.batch_size", "[1, inf)", integer=True)
        check_number(max_length, "NLIClassifierPredictor.max_length", "[1, inf)", integer=True)
        if pad_to_multiple_of is not None:
            check_number(pad_to_multiple_of, "NLIClassifierPredictor.pad_to_multiple_of", "[1, inf)", integer=True)
        if isinstance(model, (str,)) or hasattr(model, "__fspath__"):
            name = str(model)
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(name)
            model = AutoModelForSequenceClassification.from_pretrained(name, dtype=dtype)
        if tokenizer is None:
            raise ValueError("NLIClassifierPredictor needs tokenizer=... when given a loaded model")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.permutation = label_permutation(model.config.id2label)
        self.name = getattr(model.config, "name_or_path", None) or type(model).__name__
        positions = getattr(model.config, "max_position_embeddings", None)
        # RoBERTa-family position ids start at padding_idx + 1 (2 for real RoBERTa), so those positions are
        # unusable; elsewhere losing 2 tokens is harmless.
        padding_idx = getattr(getattr(model.base_model, "embeddings", None), "padding_idx", None)
        offset = padding_idx + 1 if isinstance(padding_idx, int) else 2
        self.max_length = min(max_length, tokenizer.model_max_length, (positions - offset) if positions else max_length)
        self.batch_size = batch_size
        self.sort_by_length = (self.device.type != "cuda") if sort_by_length is None else sort_by_length
        self.progress = progress
        self.pad_to_multiple_of = pad_to_multiple_of
        # A model without token-type embeddings (type_vocab_size 1, e.g. RoBERTa) must not get segment ids 1.
        self._token_types = getattr(model.config, "type_vocab_size", 2) > 1

    def predict_proba(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities in BBNLI order (contradiction, neutral, entailment)."""
        import torch
        from tqdm.auto import tqdm

        premises, hypotheses = list(premises), list(hypotheses)
        if len(premises) != len(hypotheses):
            raise ValueError(f"got {len(premises)} premises and {len(hypotheses)} hypotheses")
        out = np.zeros((len(premises), 3), dtype=np.float64)
        if not premises:
            return out
        # Tokenise everything once, unpadded; each batch is padded to its own longest pair.
        encoded = self.tokenizer(premises, hypotheses, truncation=True, max_length=self.max_length)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids")
                if k in encoded and (self._token_types or k != "token_type_ids")]
        order = list(range(len(premises)))
        if self.sort_by_length:  # longest first, by token count: near-zero padding
            order.sort(key=lambda i: len(encoded["input_ids"][i]), reverse=True)
        columns = torch.tensor(self.permutation)
        starts = range(0, len(order), self.batch_size)
        for start in tqdm(starts, desc="NLI", disable=not self.progress or len(starts) < 2):
            idx = order[start : start + self.batch_size]
            batch = self._pad_right(encoded, idx, keys)
            with torch.inference_mode():
                logits = self.model(**{k: v.to(self.device) for k, v in batch.items()}).logits.float().cpu()
            probs = torch.softmax(logits, dim=-1)
            mapped = torch.zeros_like(probs).index_copy_(1, columns, probs)  # model column j -> BBNLI label perm[j]
            out[idx] = mapped.numpy()
        return out

    def _pad_right(self, encoded, idx: list[int], keys: list[str]) -> dict:
        """Right-padded tensors for rows `idx` (whatever the tokenizer's padding_side: RoBERTa/BERT heads
        read the first token, and BERT-style absolute positions assume it). numpy, ~10x faster than
        tokenizer.pad, which dominated the time per batch on GPU."""
        import torch

        width = max(len(encoded["input_ids"][i]) for i in idx)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        fill = {"input_ids": self.tokenizer.pad_token_id, "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0)}
        out = {}
        for key in keys:
            array = np.full((len(idx), width), fill.get(key, 0), dtype=np.int64)
            for row, i in enumerate(idx):
                values = encoded[key][i]
                array[row, : len(values)] = values
            out[key] = torch.from_numpy(array)
        return out

    def __call__(self, premises: Sequence[str], hypotheses: Sequence[str]) -> list[int]:
        return [int(i) for i in self.predict_proba(premises, hypotheses).argmax(axis=1)]


def check_labels(labels: Sequence, n: int, who: str = "predictor") -> list[int]:
    """Predictions as ints in {0, 1, 2}, one per input; anything else is a ValueError."""
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"{who} returned {len(labels)} labels for {n} pairs; it must return one label per pair")
    out = []
    for i, y in enumerate(labels):
        try:
            value = int(y)
        except (TypeError, ValueError):
            value = None
        if value not in (0, 1, 2) or (isinstance(y, float) and y != value):
            raise ValueError(f"{who} returned {y!r} for pair {i}; labels must be 0 (contradiction), "
                             "1 (neutral) or 2 (entailment)")
        out.append(value)
    return out


# The generative judge lives in its own file (prompt templates, answer parsing); re-exported here.
from fairalign.eval.bbnli.judge import GenerativeJudgePredictor  # noqa: E402,F401
