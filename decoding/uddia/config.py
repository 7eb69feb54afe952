"""UDDIAConfig: the knobs of UDDIA (Yang et al., ICLR 2023, arXiv 2210.04492) with the paper's defaults.

Per generated token, for each sequence separately:
    theta <- theta - lr * Adam(grad_theta [L_detox + debias_weight * L_debias])   (steps_per_token steps, fresh Adam)
    P(v) ∝ P_theta(v)^fusion_weight * P_base(v)^(1 - fusion_weight)               (fusion, then top-p/top-k/temperature)
theta = bias terms (or zero-initialised bias-like offsets) of the upper `num_tuned_layers` layers; restored after
every token. Redo: a continuation whose perplexity under the unadapted model exceeds `redo_ppl_threshold` is
regenerated with `redo_layer_step` fewer tuned layers (T0, T0 - ΔT, ... > 0); the first one under the threshold,
else the lowest-perplexity one, is returned.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from fairalign.align.errors import InputError
from fairalign.align.validation import validate_fields

TUNED_PARAMS = ("auto", "bias", "offsets")
TRIGGER_POOLING = ("continuation", "context")


@dataclass
class UDDIAConfig:
    """Settings of UDDIA decoding. Defaults are the paper's run settings (UDDIA-u: detox + gender debias),
    except `num_tuned_layers`, which defaults to half the model's layers (the paper tunes 18 of GPT-2 large's 36)."""

    # adaptation
    lr: float = field(default=0.06, metadata={"range": "[0, inf)", "help": "Adam learning rate η of the per-token update (paper: 0.06); 0 disables adaptation"})
    steps_per_token: int = field(default=1, metadata={"range": "[1, inf)", "help": "Adam steps per token, fresh optimiser state each token (paper: 1)"})
    num_tuned_layers: int | None = field(default=None, metadata={"range": "[1, inf)", "help": "T0: tune the upper T0 layers; None = half of the model's layers"})
    tuned_params: str = field(default="auto", metadata={"help": "'bias' (the model's bias terms, as the paper), 'offsets' (zero-initialised "
                                                                 "output offsets on every linear/norm module), 'auto' (bias if the model has biases)"})
    lookahead_steps: int = field(default=1, metadata={"range": "[0, inf)", "help": "look-ahead horizon: positions fed the expected embedding softmax(logits) @ E (paper: 1)"})
    # detox term
    target_class: int = field(default=0, metadata={"range": "[0, inf)", "help": "attribute-head class to steer towards (e.g. 0 = non_toxic)"})
    trigger_threshold: float | None = field(default=None, metadata={"range": "[0, 1]", "help": "adapt a sequence only when the head's probability of the unwanted "
                                                                             "classes, 1 - p(target), exceeds this; None = every step (paper)"})
    trigger_pooling: str = field(default="continuation", metadata={"help": "what the trigger's head reads: 'continuation' (mean final hidden "
                                                                          "state of the generated tokens and the current one, so the prompt "
                                                                          "does not decide) or 'context' (prompt included, as the detox loss)"})
    # fusion
    fusion_weight: float = field(default=0.9, metadata={"range": "[0, 1]", "help": "w in P ∝ P_tuned^w · P_base^(1-w) (paper: 0.9)"})
    # redo
    redo_ppl_threshold: float | None = field(default=30.0, metadata={"range": "(1, inf)", "help": "TH: regenerate when the continuation's perplexity under the "
                                                                             "unadapted model exceeds it (paper: 30); None disables redo"})
    redo_layer_step: int = field(default=3, metadata={"range": "[1, inf)", "help": "ΔT: tuned layers removed at each redo (paper: 3)"})
    # debias term
    debias_weight: float = field(default=0.05, metadata={"range": "[0, inf)", "help": "weight of the debias loss (paper: 0.05); 0 disables debiasing"})
    debias_groups: str = field(default="gender", metadata={"help": "attribute groups: a built-in word list ('gender') or a .json file "
                                                                    "{group: [words, ...]} (lists aligned as pairs)"})
    debias_trigger: float = field(default=0.1, metadata={"range": "[0, 1]", "help": "debias only when max_a,b |H(P, Q_a) - H(P, Q_b)| exceeds this (Hellinger; paper: 0.1)"})
    debias_temperature: float = field(default=0.1, metadata={"range": "(0, inf)", "help": "τ of p(a|v) = softmax_a(((1 + cos(E_v, u_a)) / 2) / τ) (paper: 0.1)"})
    debias_token_threshold: float = field(default=0.75, metadata={"range": "(0, 1)", "help": "tokens with p(a|v) above this form group a's biased distribution Q_a (paper: 0.75)"})

    def __post_init__(self):
        # every number finite and inside its "range" (metadata above), named as UDDIAConfig.<field>=<value>
        validate_fields(self)

        def bad(name, fix):
            raise InputError(f"UDDIAConfig.{name}={getattr(self, name)!r}: {fix}")

        if self.tuned_params not in TUNED_PARAMS:
            bad("tuned_params", f"choose one of {TUNED_PARAMS}")
        if self.trigger_pooling not in TRIGGER_POOLING:
            bad("trigger_pooling", f"choose one of {TRIGGER_POOLING}")
        if not self.debias_groups:
            bad("debias_groups", "name a built-in word list ('gender') or a .json file")

    def resolve_tuned_layers(self, num_layers: int) -> int:
        """T0 for a model with `num_layers` layers (half by default), capped at the layer count."""
        t0 = self.num_tuned_layers if self.num_tuned_layers is not None else max(1, (num_layers + 1) // 2)
        return min(t0, num_layers)

    def redo_schedule(self, num_layers: int) -> list[int]:
        """Tuned-layer counts tried in order: T0, T0 - ΔT, ... (all > 0); only T0 when redo is off."""
        t0 = self.resolve_tuned_layers(num_layers)
        if self.redo_ppl_threshold is None:
            return [t0]
        return list(range(t0, 0, -self.redo_layer_step))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "UDDIAConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown UDDIAConfig keys {unknown}; valid keys: {sorted(known)}")
        return cls(**values)
