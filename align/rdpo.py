"""rDPO: Provably Robust DPO (Chowdhury, Kini, Natarajan; ICML 2024; arXiv 2403.00409).

Preference labels flip at random with a known rate eps in [0, 1/2). The de-biased loss

    L_eps(z) = [ -(1-eps) log sigma(z) + eps log sigma(-z) ] / (1 - 2 eps),   z = beta * h

is unbiased: its expectation under flips equals the clean DPO loss. It is unbounded below (its gradient
weight sigma(-z) + eps/(1-2eps) never vanishes), so a NEGATIVE training loss is expected, not a bug: watch
`rewards/accuracies`, `rewards/margins` and `loss/clean_dpo` (the plain DPO loss of the same batch).

Per-example rates: a dataset column `flip_rate` overrides the config's rate row by row (e.g. a known noisier
annotator pool). Unknown eps: `flip_rate_estimate_file` estimates it from a doubly-labelled subset
(`fairalign.align.flip_rate`); the run writes the estimate and its interval to output_dir/flip_rate_estimate.json.
Equivalent to TRL's `DPOConfig(loss_type=["robust"], label_smoothing=eps)` (tested), with eps validated
when the config is built instead of a warning and a division by zero at eps = 0.5.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Optional

from transformers import TrainerCallback

from fairalign.align.errors import InputError
from fairalign.align.losses import dpo_loss, robust_dpo_loss
from fairalign.align.preference import PairLogps, PreferenceConfig, PreferenceTrainer

DEFAULT_FLIP_RATE = 0.1
ESTIMATE_FILE_NAME = "flip_rate_estimate.json"
logger = logging.getLogger("fairalign")


@dataclass
class RobustDPOConfig(PreferenceConfig):
    """Config for `RobustDPOTrainer`. flip_rate (eps, float in [0, 0.5), default 0.1): the probability that a
    pair's preference label is flipped; 0 gives DPO. flip_rate_estimate_file: estimate eps instead, from a
    doubly-labelled subset (`fairalign.align.flip_rate.flip_rate_from_file`); then flip_rate holds the estimate
    and `flip_rate_estimate` the estimate with its interval. beta (default 0.1): DPO's inverse temperature."""

    FIELD_RANGES: ClassVar[dict[str, str]] = {"flip_rate": "[0, 0.5)"}

    # None = not given: 0.1, or the estimate when flip_rate_estimate_file is set (giving both is an error)
    flip_rate: Optional[float] = field(
        default=None,
        metadata={"help": f"Label flip rate eps in [0, 0.5); 0 = plain DPO. Default {DEFAULT_FLIP_RATE}, or the "
                  "estimate from flip_rate_estimate_file (give one of the two)."},
    )
    flip_rate_estimate_file: Optional[str] = field(
        default=None,
        metadata={"help": "Estimate flip_rate from a doubly-labelled subset: a .jsonl/.json/.csv file with columns "
                  "(label, trusted_label) or (label_a, label_b), 1/0 or true/false. The estimate and its 95 percent "
                  f"interval are written to output_dir/{ESTIMATE_FILE_NAME}."},
    )

    def __post_init__(self):
        self.flip_rate_estimate = None
        if self.flip_rate_estimate_file is not None:
            self._estimate_flip_rate()
        elif self.flip_rate is None:
            self.flip_rate = DEFAULT_FLIP_RATE
        super().__post_init__()

    def _estimate_flip_rate(self) -> None:
        from fairalign.align.flip_rate import flip_rate_from_file

        if not isinstance(self.flip_rate_estimate_file, (str, Path)) or not str(self.flip_rate_estimate_file):
            raise InputError(f"RobustDPOConfig.flip_rate_estimate_file={self.flip_rate_estimate_file!r} must be a "
                             "path to a .jsonl/.json/.csv file")
        estimate = flip_rate_from_file(self.flip_rate_estimate_file)
        # A flip_rate equal to the file's estimate is this same setting (a config rebuilt from to_dict() or
        # dataclasses.replace); any other value contradicts the file.
        if self.flip_rate is not None and self.flip_rate != estimate.rate:
            raise InputError(
                f"RobustDPOConfig: give flip_rate={self.flip_rate!r} or flip_rate_estimate_file="
                f"{self.flip_rate_estimate_file!r}, not both (the file estimates {estimate.rate:.4g}); remove one of the two"
            )
        self.flip_rate, self.flip_rate_estimate = estimate.rate, estimate


class RobustDPOTrainer(PreferenceTrainer):
    """rDPO trainer (see the module docstring). A `flip_rate` dataset column gives per-example rates."""

    extra_columns = ("flip_rate",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if getattr(self.args, "flip_rate_estimate", None) is not None:
            self.add_callback(_RecordFlipRateEstimate(self))

    def pair_losses(self, logps: PairLogps):
        eps = logps.batch.get("flip_rate", self.args.flip_rate)
        return robust_dpo_loss(logps.policy_chosen, logps.policy_rejected, logps.ref_chosen, logps.ref_rejected,
                               self.beta, eps)

    def extra_metrics(self, logps, losses):
        clean = dpo_loss(logps.policy_chosen, logps.policy_rejected, logps.ref_chosen, logps.ref_rejected, self.beta)
        return {"loss/clean_dpo": clean}


class _RecordFlipRateEstimate(TrainerCallback):
    """Writes the estimated eps, its interval and the file it came from to output_dir/flip_rate_estimate.json
    when training begins (inside the run's hold on the folder), and logs them."""

    def __init__(self, trainer: RobustDPOTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        from fairalign.align.files import write_json_atomic

        estimate = args.flip_rate_estimate
        if not self.trainer.accelerator.is_main_process:
            return
        logger.info("rDPO flip_rate = %.4f, estimated from %s (%s, n=%d; %.0f%% interval [%.4f, %.4f])%s",
                    estimate.rate, args.flip_rate_estimate_file, estimate.method, estimate.n, 100 * estimate.confidence,
                    estimate.low, estimate.high, f"; {estimate.note}" if estimate.note else "")
        record = {"flip_rate": args.flip_rate, "file": str(args.flip_rate_estimate_file), **estimate.to_dict()}
        write_json_atomic(Path(args.output_dir) / ESTIMATE_FILE_NAME, record)
