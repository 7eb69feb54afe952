"""Configuration of loss-based sample reweighting (Sow et al., ICLR 2025), as TrainingArguments fields.

`ReweightingArguments` holds the reweighting fields and their validation; `ReweightingConfig` adds them to
transformers.TrainingArguments (for `ReweightingTrainer`), `ReweightingSFTConfig` (in `sft.py`) to TRL's
SFTConfig. Every field is prefixed `reweight_` so none collides with TrainingArguments (e.g. `warmup_steps`
is the learning-rate warm-up).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from typing import ClassVar

from transformers import TrainingArguments

from fairalign.align.reweighting.weights import STRATEGIES
from fairalign.align.run_guard import configure_cpu_launch
from fairalign.align.validation import validate_fields

SCOPES = ("accumulation", "micro_batch")


@dataclass
class ReweightingArguments:
    """Fields (type, default, meaning, range):

    reweight_strategy (str, "linupper"): f in w = softmax(f(x)/r); uniform | linupper | quadratic | extremes | linear.
    reweight_temperature (float, 0.5): r > 0; small r sharpens the weights, r -> inf makes them uniform.
    reweight_delta (float, 1.0): delta > 0, half-width of the normalised loss range [-delta, delta].
    reweight_scope (str, "accumulation"): the set of samples one softmax spans, always across all
        data-parallel ranks: "accumulation" = every micro-batch of the accumulation step (one extra no-grad
        forward over them when gradient_accumulation_steps > 1); "micro_batch" = one micro-batch (no extra cost).
    reweight_warmup_steps (int, 0): optimizer steps at the start that use reweight_warmup_temperature.
    reweight_warmup_temperature (float | None, None): r during warm-up; None = no reweighting (uniform),
        a large value such as 100 = almost uniform (the 1.4B/7B recipe of the paper).
    reweight_plot (bool, False): save reweighting.png (weight entropy, max/min weight, loss quantiles of
        up- and down-weighted samples over training) to output_dir at the end of training.
    """

    FIELD_RANGES: ClassVar[dict[str, str]] = {"reweight_temperature": "(0, inf]", "reweight_delta": "(0, inf)", "reweight_warmup_steps": "[0, inf)", "reweight_warmup_temperature": "(0, inf]"}

    reweight_strategy: str = field(
        default="linupper",
        metadata={"help": f"Strategy f(x) of w = softmax(f(x)/r): one of {sorted(STRATEGIES)}."},
    )
    reweight_temperature: float = field(
        default=0.5, metadata={"help": "Temperature r > 0 of the softmax over the global batch; large r -> uniform."}
    )
    reweight_delta: float = field(
        default=1.0, metadata={"help": "delta > 0: losses are min-max normalised to [-delta, delta]."}
    )
    reweight_scope: str = field(
        default="accumulation",
        metadata={
            "help": "Samples one softmax spans (always across all data-parallel ranks): 'accumulation' (all "
            "micro-batches of an optimizer step; an extra no-grad forward when accumulating) or 'micro_batch'."
        },
    )
    reweight_warmup_steps: int = field(
        default=0, metadata={"help": "Optimizer steps at the start that use reweight_warmup_temperature."}
    )
    reweight_warmup_temperature: float | None = field(
        default=None,
        metadata={"help": "Temperature during warm-up; None = no reweighting (uniform), e.g. 100 = almost uniform."},
    )
    reweight_plot: bool = field(
        default=False, metadata={"help": "Save reweighting.png with the weight statistics to output_dir after training."}
    )

    def __post_init__(self):
        validate_fields(self)  # every number finite (or inf where a field allows it) and in range, named
        if hasattr(self, "use_cpu"):
            configure_cpu_launch(self)
        self.validate_reweighting()
        parent = super()
        if hasattr(parent, "__post_init__"):
            parent.__post_init__()

    def validate_reweighting(self) -> None:
        """The names; the numbers were checked by validate_fields against FIELD_RANGES."""
        if self.reweight_strategy not in STRATEGIES:
            raise ValueError(f"reweight strategy must be one of {sorted(STRATEGIES)}; got {self.reweight_strategy!r}")
        if self.reweight_scope not in SCOPES:
            raise ValueError(f"reweight_scope must be one of {SCOPES}; got {self.reweight_scope!r}")
        if self.reweight_warmup_temperature is not None and math.isinf(self.reweight_warmup_temperature):
            self.reweight_warmup_temperature = None  # r = inf is exactly uniform: skip the work


@dataclass
class ReweightingConfig(ReweightingArguments, TrainingArguments):
    """TrainingArguments plus the fields of `ReweightingArguments` (Sow et al., ICLR 2025), for
    `ReweightingTrainer`. Defaults: strategy linupper, r = 0.5, delta = 1, weights over the whole
    accumulated global batch.

    max_length (int, 512): tokens kept per text by `build_lm_trainer` / `build_lm_dataset` (truncation)."""

    FIELD_RANGES: ClassVar[dict[str, str]] = {"max_length": "[2, inf)"}

    max_length: int = field(default=512, metadata={"help": "Tokens per text (longer texts are truncated) for causal-LM data."})


def config_from_dict(values: dict, config_class: type = ReweightingConfig):
    """Build `config_class` from a flat dict of field names (a recipe after CLI overrides).
    Unknown keys raise ValueError with the closest field names, before any model loads."""
    names = {f.name for f in dataclasses.fields(config_class) if f.init}
    unknown = sorted(set(values) - names)
    if unknown:
        hints = {key: difflib.get_close_matches(key, names, n=2) for key in unknown}
        raise ValueError(
            f"unknown {config_class.__name__} field(s): "
            + ", ".join(f"{k!r}" + (f" (did you mean {', '.join(v)}?)" if v else "") for k, v in hints.items())
        )
    return config_class(**values)
