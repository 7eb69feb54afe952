"""Logic-derived preference losses (Richardson, Srikumar, Sabharwal, ICML 2025; arXiv 2412.17696).

Write a preference structure as formulas over the atoms Mw, Ml (policy) and Rw, Rl (reference), compile it
into an exact, batched, differentiable loss, inspect its semantics, and train with it.

    from fairalign.align.logic import PreferenceStructure, STRUCTURES
    s = PreferenceStructure("Ml -> Mw", condition="Mw | Ml", additional="Mw & Ml")   # = CPO
    loss = s.loss(policy_chosen_logps, policy_rejected_logps, beta=0.1)              # (B,)

Files: formula.py (syntax), structure.py (compilation), structures.py (named losses), semantics.py
(closed forms, entailment, the space of losses), decompile.py (Algorithm 1), trainer.py (LogicDPATrainer).
The trainer classes load on first use, so the pure parts import without TRL.
"""
from __future__ import annotations

import importlib

from fairalign.align.logic.formula import ATOMS, Formula, parse, truth_table
from fairalign.align.logic.structure import LINKS, PreferenceStructure, atom_logps, log1mexp, parse_normalisation
from fairalign.align.logic.structures import STRUCTURES, get_structure

_LAZY = {"LogicDPAConfig": "fairalign.align.logic.trainer", "LogicDPATrainer": "fairalign.align.logic.trainer"}

__all__ = [
    "ATOMS", "Formula", "parse", "truth_table",
    "LINKS", "PreferenceStructure", "atom_logps", "log1mexp", "parse_normalisation",
    "STRUCTURES", "get_structure", *_LAZY,
]


def __getattr__(name: str):  # PEP 562: TRL is imported only when a trainer class is asked for
    if name not in _LAZY:
        raise AttributeError(f"module 'fairalign.align.logic' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
