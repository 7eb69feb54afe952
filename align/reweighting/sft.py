"""Loss-based sample reweighting on top of TRL's SFTTrainer (its dataset preparation, chat templates,
completion-only / assistant-only masks, packing and padding-free batches all apply).

Per-token losses come from TRL's fused LM head (see trl_internals.fused_lm_head_outputs, no (B, T, V) logits);
the weighting is `ReweightingMixin`'s. With padding-free batches each flattened sequence is one sample.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from trl import SFTConfig, SFTTrainer

from fairalign.align.reweighting.config import ReweightingArguments
from fairalign.align.reweighting.trainer import ReweightingMixin
from fairalign.align.run_guard import RunGuardMixin
from fairalign.align.trl_internals import fused_lm_head_outputs, record_metric


@dataclass
class ReweightingSFTConfig(ReweightingArguments, SFTConfig):
    """TRL SFTConfig plus the fields of `ReweightingArguments` (Sow et al., ICLR 2025)."""


class ReweightingSFTTrainer(RunGuardMixin, ReweightingMixin, SFTTrainer):
    """TRL SFTTrainer whose training loss is the reweighted per-sample loss (see ReweightingTrainer).
    Its `loss_type` must be "nll" (DFT reweights tokens itself); eval metrics are SFTTrainer's own."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if getattr(self.args, "loss_type", "nll") != "nll":
            raise ValueError(f"ReweightingSFTTrainer supports loss_type='nll' only; got {self.args.loss_type!r}")
        self._setup_reweighting()

    def per_token_nll(self, model, inputs: dict):
        outputs = fused_lm_head_outputs(model, inputs)
        mask = outputs.label_mask
        if torch.is_grad_enabled():  # SFTTrainer's train metrics, from the training forward only
            num = self.accelerator.gather_for_metrics(mask.sum()).sum()
            if outputs.entropy is not None:
                entropy = self.accelerator.gather_for_metrics(outputs.entropy.detach().sum()).sum()
                record_metric(self, "train", "entropy", (entropy / num).item() if num > 0 else 0.0)
            if outputs.is_top1 is not None:
                correct = self.accelerator.gather_for_metrics(outputs.is_top1.sum()).sum()
                record_metric(self, "train", "mean_token_accuracy", (correct / num).item() if num > 0 else 0.0)
        return -outputs.log_probs.float() * mask, mask, outputs
