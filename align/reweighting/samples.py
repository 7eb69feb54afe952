"""Per-sample mean-token losses from per-token losses.

A sample is a row of the batch (one example in SFT, one packed block in pretraining, as in the paper), or,
for padding-free batches (`position_ids` without `attention_mask`, TRL's `padding_free=True`), each
sequence of the flattened row, found where `position_ids` restarts at 0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def token_nll_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token cross-entropy: logits (R, T, V), labels (R, T) with -100 = ignored ->
    nll (R, T-1) float32 (0 where ignored), target mask (R, T-1) bool."""
    targets = labels[:, 1:]
    mask = targets != -100
    # Upcast like transformers' ForCausalLMLoss: bf16 log-softmax loses digits the weights depend on.
    nll = F.cross_entropy(
        logits[:, :-1].float().flatten(0, 1), targets.clamp(min=0).flatten(), reduction="none"
    ).view_as(targets)
    return nll * mask, mask


def sample_index(inputs: dict, target_shape: torch.Size) -> tuple[torch.Tensor | None, int]:
    """(index of the sample each target token belongs to (R, T-1), number of samples); index None = rows."""
    position_ids = inputs.get("position_ids")
    if position_ids is None or "attention_mask" in inputs:
        return None, target_shape[0]
    starts = position_ids == 0  # (R, T): a new sequence starts here
    segment = (starts.long().cumsum(-1) - 1).clamp(min=0)
    per_row = starts.sum(-1)
    offset = per_row.cumsum(0) - per_row
    index = (segment + offset[:, None])[:, 1:]  # target t predicts token t+1, which belongs to its sequence
    return index, int(per_row.sum())


def reduce_per_sample(
    nll: torch.Tensor, mask: torch.Tensor, index: torch.Tensor | None, num_samples: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """l_s = sum of nll over the target tokens of sample s / their number -> (losses (S,), valid (S,));
    a sample without target tokens gets loss 0 and valid False."""
    weight = mask.to(nll.dtype)
    if index is None:
        total, count = (nll * weight).sum(-1), weight.sum(-1)
    else:
        flat = index.reshape(-1)
        total = nll.new_zeros(num_samples).index_add(0, flat, (nll * weight).reshape(-1))
        count = nll.new_zeros(num_samples).index_add(0, flat, weight.reshape(-1))
    return total / count.clamp(min=1), count > 0


def target_mask(inputs: dict) -> torch.Tensor:
    """(R, T-1) bool: which next-token targets count, from the labels alone (no forward)."""
    return inputs["labels"][:, 1:] != -100


def check_batch(inputs: dict) -> None:
    if "labels" not in inputs:
        raise ValueError(
            "reweighting needs 'labels' in every batch (input_ids with -100 where no loss is taken); "
            "build the dataset with fairalign.align.reweighting.build_lm_dataset or TRL's SFT preparation"
        )
    if "shift_labels" in inputs:
        raise ValueError("batches with pre-shifted 'shift_labels' (context/sequence parallelism) are not supported by reweighting")
