"""rDPO: Provably Robust DPO (Chowdhury, Kini, Natarajan; ICML 2024; arXiv 2403.00409).

Preference labels flip at random with a known rate eps in [0, 1/2). The de-biased loss

    L_eps(z) = [ -(1-eps) log sigma(z) + eps log sigma(-z) ] / (1 - 2 eps),   z = beta * h

is unbiased: its expectation under flips equals the clean DPO loss. It is unbounded below (its gradient
weight sigma(-z) + eps/(1-2eps) never vanishes), so a NEGATIVE training loss is expected, not a bug: watch
`rewards/accuracies`, `rewards/margins` and `loss/clean_dpo` (the plain DPO loss of the same batch).

Per-example rates: a dataset column `flip_rate` overrides the config's rate row by row (e.g. a known noisier
annotator pool). Equivalent to TRL's `DPOConfig(loss_type=["robust"], label_smoothing=eps)` (tested), with
eps validated when the config is built instead of a warning and a division by zero at eps = 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from fairalign.align.losses import dpo_loss, robust_dpo_loss
from fairalign.align.preference import PairLogps, PreferenceConfig, PreferenceTrainer


@dataclass
class RobustDPOConfig(PreferenceConfig):
    """Config for `RobustDPOTrainer`. flip_rate (eps, float in [0, 0.5), default 0.1): the probability that a
    pair's preference label is flipped; 0 gives DPO. beta (default 0.1): DPO's inverse temperature."""

    FIELD_RANGES: ClassVar[dict[str, str]] = {"flip_rate": "[0, 0.5)"}

    flip_rate: float = field(default=0.1, metadata={"help": "Label flip rate eps in [0, 0.5); 0 = plain DPO."})


class RobustDPOTrainer(PreferenceTrainer):
    """rDPO trainer (see the module docstring). A `flip_rate` dataset column gives per-example rates."""

    extra_columns = ("flip_rate",)

    def pair_losses(self, logps: PairLogps):
        eps = logps.batch.get("flip_rate", self.args.flip_rate)
        return robust_dpo_loss(logps.policy_chosen, logps.policy_rejected, logps.ref_chosen, logps.ref_rejected,
                               self.beta, eps)

    def extra_metrics(self, logps, losses):
        clean = dpo_loss(logps.policy_chosen, logps.policy_rejected, logps.ref_chosen, logps.ref_rejected, self.beta)
        return {"loss/clean_dpo": clean}
