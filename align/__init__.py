"""fairalign.align: preference trainers (rDPO, RPO, logic-derived losses), loss reweighting, model helpers,
and the estimate of rDPO's flip rate from a doubly-labelled subset (`fairalign.align.flip_rate`).

    from fairalign.align import RobustDPOConfig, RobustDPOTrainer

Trainer classes are imported on first use (importing TRL takes seconds), so the pure parts
(`fairalign.align.losses`, `fairalign.align.modeling`) stay cheap to import.
"""
from __future__ import annotations

import importlib

# public name -> module that defines it
_EXPORTS = {
    "PreferenceConfig": "fairalign.align.preference",
    "PreferenceTrainer": "fairalign.align.preference",
    "PairLogps": "fairalign.align.preference",
    "RobustDPOConfig": "fairalign.align.rdpo",
    "RobustDPOTrainer": "fairalign.align.rdpo",
    "RPOConfig": "fairalign.align.rpo",
    "RPOTrainer": "fairalign.align.rpo",
    "LogicDPAConfig": "fairalign.align.logic",
    "LogicDPATrainer": "fairalign.align.logic",
    "ReweightingConfig": "fairalign.align.reweighting",
    "ReweightingTrainer": "fairalign.align.reweighting",
    "load_model_and_tokenizer": "fairalign.align.modeling",
    "FlipRateEstimate": "fairalign.align.flip_rate",
    "estimate_flip_rate": "fairalign.align.flip_rate",
    "estimate_flip_rate_from_agreement": "fairalign.align.flip_rate",
    "flip_rate_from_file": "fairalign.align.flip_rate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):  # PEP 562: lazy imports of the public names above
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fairalign.align' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
