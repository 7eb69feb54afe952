"""Logic-derived preference losses (Richardson, Srikumar, Sabharwal, ICML 2025; arXiv 2412.17696).

Write a preference structure as formulas over the atoms Mw, Ml (policy) and Rw, Rl (reference), compile it
into an exact, batched, differentiable loss, inspect its semantics, and train with it.

    from fairalign.align.logic import PreferenceStructure, STRUCTURES
    s = PreferenceStructure("Ml -> Mw", condition="Mw | Ml", additional="Mw & Ml")   # = CPO
    loss = s.loss(policy_chosen_logps, policy_rejected_logps, beta=0.1)              # (B,)
"""
from fairalign.align.logic.formula import ATOMS, Formula, parse, truth_table
from fairalign.align.logic.structure import LINKS, PreferenceStructure, atom_logps, log1mexp, parse_normalisation
from fairalign.align.logic.structures import STRUCTURES, get_structure

__all__ = [
    "ATOMS", "Formula", "parse", "truth_table",
    "LINKS", "PreferenceStructure", "atom_logps", "log1mexp", "parse_normalisation",
    "STRUCTURES", "get_structure",
]
