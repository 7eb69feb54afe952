"""RPO: Regularized Preference Optimization (Liu et al., NeurIPS 2024, arXiv 2405.16436, "Your SFT loss is
implicitly an adversarial regularizer"). Not Pang et al.'s Iterative Reasoning PO (TRL's old `rpo_alpha`)
nor NVIDIA's Reward-aware PO.

    sft_reduction="sum"  (paper):  L = L_DPO + eta * beta * ( -sum_t log pi(y_t | x, y_<t) )
    sft_reduction="mean" (authors' OpenRLHF variant, "generally better"):  L = L_DPO + eta * ( -mean_t log pi )

The SFT target y is the chosen response, or the `baseline` column when the dataset has one (the paper's
general form). Only completion tokens count (never prompt or padding); a real token id 0 does count.
Official recipes: beta=0.01, eta=0.005 (sum, zephyr-7b); beta=0.5, eta=0.2 (mean).
TRL's `loss_type=["sigmoid","sft"]` differs: its SFT term is a token mean over the whole micro-batch (its
weight depends on the batch's composition); it equals "mean" only when chosen lengths are equal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from fairalign.align.losses import dpo_loss, rpo_loss, sft_nll
from fairalign.align.preference import PairLogps, PreferenceConfig, PreferenceTrainer


@dataclass
class RPOConfig(PreferenceConfig):
    """Config for `RPOTrainer`. eta (default 0.005): weight of the SFT term; sft_reduction: "sum" (paper,
    eta*beta*summed NLL) or "mean" (per-sequence token-mean NLL with weight eta)."""

    FIELD_RANGES: ClassVar[dict[str, str]] = {"eta": "[0, inf)"}

    eta: float = field(default=0.005, metadata={"help": "Weight eta of the SFT (NLL) regulariser, >= 0."})
    sft_reduction: str = field(default="sum", metadata={"help": "'sum' (paper: eta*beta*sum NLL) or 'mean' (eta*mean NLL)."})

    def __post_init__(self):
        if self.sft_reduction not in ("sum", "mean"):
            raise ValueError(f"sft_reduction must be 'sum' or 'mean'; got {self.sft_reduction!r}")
        super().__post_init__()


class RPOTrainer(PreferenceTrainer):
    """RPO trainer: DPO + SFT on the chosen (or `baseline`) response."""

    def _sft_target(self, logps: PairLogps):
        if logps.policy_baseline is not None:
            return logps.policy_baseline, logps.baseline_lengths
        return logps.policy_chosen, logps.chosen_lengths

    def pair_losses(self, logps: PairLogps):
        target, lengths = self._sft_target(logps)
        return rpo_loss(logps.policy_chosen, logps.policy_rejected, logps.ref_chosen, logps.ref_rejected, self.beta,
                        self.args.eta, target, lengths, self.args.sft_reduction)

    def extra_metrics(self, logps, losses):
        target, lengths = self._sft_target(logps)
        return {
            "loss/dpo": dpo_loss(logps.policy_chosen, logps.policy_rejected, logps.ref_chosen, logps.ref_rejected, self.beta),
            "loss/sft_nll": sft_nll(target, lengths, self.args.sft_reduction),
        }
