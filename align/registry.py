"""Training methods by key: one lowercase name per method, used by recipes, `fairalign train` and logs.

Adding a method = one module with a Config and a Trainer + one line here.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    module: str
    config: str
    trainer: str
    data: str  # "preference" (prompt/chosen/rejected) or "lm" (plain text for causal-LM training)

    def load(self):
        mod = importlib.import_module(self.module)
        return getattr(mod, self.config), getattr(mod, self.trainer)


METHODS: dict[str, Method] = {
    "rdpo": Method("fairalign.align.rdpo", "RobustDPOConfig", "RobustDPOTrainer", "preference"),
    "rpo": Method("fairalign.align.rpo", "RPOConfig", "RPOTrainer", "preference"),
    "logic": Method("fairalign.align.logic", "LogicDPAConfig", "LogicDPATrainer", "preference"),
    "reweight": Method("fairalign.align.reweighting", "ReweightingConfig", "ReweightingTrainer", "lm"),
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
    return METHODS[name]
