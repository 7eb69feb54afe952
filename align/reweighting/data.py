"""Causal-LM data for reweighting: a text column tokenised (truncated to max_length) with labels, and a
collator that pads dynamically.

Labels are input_ids; padding is masked (-100) by position, not by token id, so a tokenizer whose pad token
is its eos token (SmolLM2) still learns to emit eos.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def build_lm_dataset(dataset, tokenizer, text_column: str = "text", max_length: int = 512, append_eos: bool = True,
                     num_proc: int | None = None):
    """datasets.Dataset with a text column -> input_ids, attention_mask, labels (= input_ids), truncated to
    max_length tokens; every other column is dropped, empty texts are removed.

    append_eos: add the tokenizer's eos token to every text (pretraining style: the model learns where a
    document ends). Pad with `LMCollator` (the default collator of ReweightingTrainer).
    """
    if text_column not in dataset.column_names:
        raise ValueError(f"text_column {text_column!r} is not a column of the dataset (columns: {dataset.column_names})")
    if not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an integer >= 2 (a causal LM needs a token to predict); got {max_length!r}")
    eos = tokenizer.eos_token if append_eos else None
    if append_eos and eos is None:
        raise ValueError("append_eos=True but the tokenizer has no eos_token: set one or pass append_eos=False")

    def tokenize(batch):
        texts = [t + eos if eos else t for t in batch[text_column]]
        enc = tokenizer(texts, truncation=True, max_length=max_length, add_special_tokens=True)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": [list(ids) for ids in enc["input_ids"]]}

    dataset = dataset.filter(lambda row: bool(row[text_column] and row[text_column].strip()), num_proc=num_proc)
    return dataset.map(tokenize, batched=True, remove_columns=dataset.column_names, num_proc=num_proc)


@dataclass
class LMCollator:
    """Right-pads input_ids (pad_token_id), attention_mask (0) and labels (-100) to the longest row.
    Rows without labels get labels = input_ids. pad_to_multiple_of rounds the length up (tensor cores)."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        length = max(len(row["input_ids"]) for row in rows)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {"input_ids": [], "attention_mask": [], "labels": []}
        for row in rows:
            ids = list(row["input_ids"])
            labels = list(row.get("labels", ids))
            mask = list(row.get("attention_mask", [1] * len(ids)))
            pad = length - len(ids)
            batch["input_ids"].append(ids + [self.pad_token_id] * pad)
            batch["attention_mask"].append(mask + [0] * pad)
            batch["labels"].append(labels + [-100] * pad)
        return {key: torch.tensor(value, dtype=torch.long) for key, value in batch.items()}


def prepare_lm_dataset(dataset, tokenizer, text_column: str = "text", max_length: int = 512):
    """A text column -> `build_lm_dataset`; an already tokenised dataset (input_ids) is kept, with
    labels = input_ids added when missing."""
    columns = dataset.column_names
    if text_column in columns:
        return build_lm_dataset(dataset, tokenizer, text_column=text_column, max_length=max_length)
    if "input_ids" in columns:
        if "labels" in columns:
            return dataset
        return dataset.map(lambda row: {"labels": list(row["input_ids"])})
    raise ValueError(
        f"causal-LM data needs a {text_column!r} text column (set text_column) or tokenised input_ids; got columns {columns}"
    )
