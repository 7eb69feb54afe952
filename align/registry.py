"""Training methods by key: one lowercase name per method, used by recipes, `fairalign train` and logs.

Adding a method = one module with a Config and a Trainer + one line here. `examples` names the settings the
contract battery (tests/contract/) trains the method with: every registered method and example gets the
battery's guarantees (full and LoRA, each reference mode it allows, loss reweighting, gradient accumulation,
kill-and-resume, two processes, save and load, TRL's metric names) with no new test code.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Method:
    module: str
    config: str
    trainer: str
    data: str  # "preference" (prompt/chosen/rejected) or "lm" (plain text for causal-LM training)
    examples: dict = field(default_factory=lambda: {"default": {}})  # name -> config overrides

    def load(self):
        mod = importlib.import_module(self.module)
        return getattr(mod, self.config), getattr(mod, self.trainer)


METHODS: dict[str, Method] = {
    "rdpo": Method("fairalign.align.rdpo", "RobustDPOConfig", "RobustDPOTrainer", "preference",
                   {"flip0.2": {"flip_rate": 0.2}}),
    "rpo": Method("fairalign.align.rpo", "RPOConfig", "RPOTrainer", "preference", {"paper": {"eta": 0.5}}),
    "logic": Method("fairalign.align.logic", "LogicDPAConfig", "LogicDPATrainer", "preference",
                    {"novel_ref": {"structure": "novel_ref"}, "cpo": {"structure": "cpo"}}),
    "reweight": Method("fairalign.align.reweighting", "ReweightingConfig", "ReweightingTrainer", "lm",
                       {"linupper": {"reweight_strategy": "linupper", "reweight_temperature": 0.5}}),
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
    return METHODS[name]
