"""Dynamic loss-based sample reweighting (Sow et al., ICLR 2025, arXiv 2502.06733) — key `reweight`.

    w = softmax(f(x) / r),  x = delta * (2 l - (l_max + l_min)) / (l_max - l_min),  L = sum_i w_i l_i

weights.py      sample_weights, the strategies f, weight statistics (pure functions)
distributed.py  gather over data-parallel ranks in global-rank order (identity without a process group)
weighted_loss.py reweight_losses: the weighting for any per-example loss (preference pairs included)
config.py       ReweightingConfig (TrainingArguments + reweight_* fields), config_from_dict
trainer.py      ReweightingTrainer / ReweightingMixin (transformers.Trainer), build_lm_trainer (for train.py)
sft.py          ReweightingSFTConfig / ReweightingSFTTrainer (TRL SFTTrainer; imported on demand: needs trl)
data.py         build_lm_dataset, prepare_lm_dataset, LMCollator
plot.py         plot_reweighting
"""
from fairalign.align.reweighting.config import ReweightingArguments, ReweightingConfig, config_from_dict
from fairalign.align.reweighting.data import LMCollator, build_lm_dataset, prepare_lm_dataset
from fairalign.align.reweighting.distributed import Gathered, gather_rows
from fairalign.align.reweighting.plot import plot_reweighting
from fairalign.align.reweighting.trainer import ReweightingMixin, ReweightingTrainer, build_lm_trainer
from fairalign.align.reweighting.weighted_loss import local_only, reweight_losses
from fairalign.align.reweighting.weights import (
    STRATEGIES,
    normalize_losses,
    register_strategy,
    sample_weights,
    weight_stats,
)

__all__ = [
    "STRATEGIES", "Gathered", "LMCollator", "ReweightingArguments", "ReweightingConfig", "ReweightingMixin",
    "ReweightingTrainer", "build_lm_dataset", "build_lm_trainer", "config_from_dict", "gather_rows", "local_only", "normalize_losses",
    "plot_reweighting", "prepare_lm_dataset", "register_strategy", "reweight_losses", "sample_weights", "weight_stats",
]
