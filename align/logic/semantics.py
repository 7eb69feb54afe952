"""Semantics of preference structures: closed forms, equivalence, entailment, the space of losses.

Richardson, Srikumar, Sabharwal (ICML 2025): a structure is fixed, as a loss, by two Boolean functions,
its check side C = P & P_C and its cross side X = (~P & P_C) | P_A, since rho = log WMC(C) - log WMC(X). Over
n atoms there are 2^(2^n) * 2^(2^n) = 4^(2^n) such pairs: 256 without a reference (n = 2).

Order used here (the paper's entailment lattice, generalised to conditioned structures):

    a |= b  ("a is at least as strict as b")  iff  C_a |= C_b  and  X_b |= X_a.

Then WMC(C_a) <= WMC(C_b) and WMC(X_a) >= WMC(X_b), so rho_a <= rho_b and loss_a >= loss_b for every
input and every non-increasing link (logistic, hinge; not the squared link). For an unconditioned structure
(P, T, F) it is ordinary entailment P_a |= P_b, whose semantic loss -log WMC(P) is monotone (the paper's
lattice). Covers in this order change one world on one side, which makes the Hasse diagram cheap.

Two structures are *loss-equivalent* when their rho agree as functions (WMC(C_a) WMC(X_b) = WMC(C_b) WMC(X_a) as
polynomials); that is weaker than equal sides: (Mw & Rw, Ml & Rw) compiles to the same rho as (Mw, Ml).
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import numpy as np

from fairalign.align.logic.decompile import formula_from_table, from_sides, symbols
from fairalign.align.logic.formula import ATOMS, POLICY_ATOMS, Formula, parse, truth_table, worlds
from fairalign.align.logic.structure import PreferenceStructure, depends_on


# ------------------------------------------------------------------------------------------ closed forms
def wmc_polynomial(table: np.ndarray):
    """SymPy polynomial WMC of a Boolean function (a truth table over ATOMS), over its relevant atoms only."""
    import sympy

    syms = symbols()
    relevant = depends_on(table)
    w = worlds()
    total = sympy.Integer(0)
    for k in np.flatnonzero(table):
        if all(not w[a][k] for a in ATOMS if a not in relevant):  # one representative per projected world
            total += sympy.Mul(*[syms[a] if w[a][k] else 1 - syms[a] for a in relevant])
    return total


def ratio(structure: PreferenceStructure):
    """exp(rho) as a cancelled SymPy rational function."""
    import sympy

    return sympy.cancel(wmc_polynomial(structure.check_table) / wmc_polynomial(structure.cross_table))


def _pretty_wmc(table: np.ndarray) -> tuple[list[str], str | None]:
    factors, residual = _pretty_wmc_cached(tuple(bool(v) for v in table))
    return list(factors), residual


@functools.lru_cache(maxsize=1024)
def _pretty_wmc_cached(key: tuple[bool, ...]) -> tuple[tuple[str, ...], str | None]:
    """(literal factors, residual) with WMC = prod(factors) * residual. A literal v (or ~v) that the function
    entails contributes p_v (or 1 - p_v); what is left is printed as a polynomial, or as 1 - WMC(not ...)
    when that is shorter."""
    import sympy

    names = {a: str(s) for a, s in symbols().items()}
    w = worlds()
    table = np.array(key)
    factors, rest = [], table.copy()
    for a in ATOMS:
        if a not in depends_on(rest):
            continue
        if not np.any(rest & ~w[a]):
            factors.append(names[a])
            rest = np.where(w[a], rest, rest[_flip(a)])  # f = v & f|v
        elif not np.any(rest & w[a]):
            factors.append(f"(1 - {names[a]})")
            rest = np.where(~w[a], rest, rest[_flip(a)])  # f = ~v & f|~v
    if not depends_on(rest):
        return tuple(factors), None
    direct = str(sympy.expand(wmc_polynomial(rest)))
    complement = "1 - " + _paren(str(sympy.expand(wmc_polynomial(~rest))))
    residual = complement if len(complement) < len(direct) else direct
    return tuple(factors), f"({residual})"


def _product(factors: list[str], residual: str | None) -> str:
    """Factors joined by '*', without the brackets of a lone factor (so log(1 - pi_w), not log((1 - pi_w)))."""
    parts = factors + ([residual] if residual else [])
    if len(parts) == 1 and parts[0].startswith("("):
        return parts[0][1:-1]
    return "*".join(parts) or "1"


def _paren(s: str) -> str:
    return s if all(c not in s for c in "+-") else f"({s})"


def _flip(atom: str) -> np.ndarray:
    """World index map that toggles one atom."""
    return np.arange(16) ^ (1 << (3 - ATOMS.index(atom)))


def closed_form(structure: PreferenceStructure) -> str:
    """rho as `log(top) - log(bottom)` with common literal factors cancelled, e.g. ORPO:
    `log(pi_w*(1 - pi_l)) - log(pi_l*(1 - pi_w))`."""
    top, top_rest = _pretty_wmc(structure.check_table)
    bottom, bottom_rest = _pretty_wmc(structure.cross_table)
    for f in list(top):
        if f in bottom:
            top.remove(f)
            bottom.remove(f)
    if top_rest is not None and top_rest == bottom_rest:
        top_rest = bottom_rest = None
    t, b = _product(top, top_rest), _product(bottom, bottom_rest)
    return f"log({t}) - log({b})" if b != "1" else f"log({t})"


def semantic_loss(structure: PreferenceStructure) -> str | None:
    """At beta = 1 with the logistic link the loss is -log[WMC(C) / (WMC(C) + WMC(X))]. When C and X partition
    the worlds (WMC(C) + WMC(X) = 1) it is the plain semantic loss -log WMC(C); returns that string, else None."""
    if np.array_equal(structure.check_table, ~structure.cross_table):
        return f"-log({_product(*_pretty_wmc(structure.check_table))})"
    return None


def simplify(formula: Formula | str) -> Formula:
    """A short equivalent formula (minimal DNF/CNF via SymPy)."""
    return formula_from_table(truth_table(parse(formula)))


# -------------------------------------------------------------------------------------- relations
def entails_formula(a: Formula | str, b: Formula | str) -> bool:
    """Classical entailment a |= b: every world that satisfies a satisfies b."""
    return bool(np.all(~truth_table(parse(a)) | truth_table(parse(b))))


def entails(a: PreferenceStructure, b: PreferenceStructure) -> bool:
    """a |= b: a's check side entails b's and b's cross side entails a's, so loss_a >= loss_b (module doc)."""
    return bool(np.all(~a.check_table | b.check_table) and np.all(~b.cross_table | a.cross_table))


def same_sides(a: PreferenceStructure, b: PreferenceStructure) -> bool:
    """Both sides are the same Boolean functions (semantic equivalence)."""
    return bool(np.array_equal(a.check_table, b.check_table) and np.array_equal(a.cross_table, b.cross_table))


def loss_equivalent(a: PreferenceStructure, b: PreferenceStructure) -> bool:
    """rho_a == rho_b as functions of the probabilities: the polynomial identity C_a X_b = C_b X_a.

    Both sides are multilinear, so each product has degree <= 2 in every probability and is fixed by its values
    on the grid {0, 1, 2}^4; at those points every WMC is an exact integer. 81 integer comparisons, no SymPy."""
    g = _GRID_WEIGHTS
    ca, xa, cb, xb = (g @ t.astype(np.int64) for t in (a.check_table, a.cross_table, b.check_table, b.cross_table))
    return bool(np.array_equal(ca * xb, cb * xa))


def _grid_weights() -> np.ndarray:
    """(81, 16) integer weights prod(p_v or 1 - p_v) of each world at each point p in {0, 1, 2}^4."""
    w = worlds()
    points = np.array(list(itertools.product([0, 1, 2], repeat=4)), dtype=np.int64)  # (81, 4)
    out = np.ones((len(points), 16), dtype=np.int64)
    for i, a in enumerate(ATOMS):
        p = points[:, i : i + 1]
        out *= np.where(w[a][None, :], p, 1 - p)
    return out


_GRID_WEIGHTS = _grid_weights()


def relation(a: PreferenceStructure, b: PreferenceStructure) -> str:
    """'equivalent' (same sides), 'loss-equivalent', 'entails' (a stricter), 'entailed by', or 'incomparable'."""
    if same_sides(a, b):
        return "equivalent"
    if loss_equivalent(a, b):
        return "loss-equivalent"
    if entails(a, b):
        return "entails"
    if entails(b, a):
        return "entailed by"
    return "incomparable"


# ------------------------------------------------------------------------------------ the loss space
@dataclass
class SpaceEntry:
    """One loss of the no-reference space: its sides as sets of worlds over (Mw, Ml), a structure, names."""

    index: int
    check_worlds: tuple[int, ...]  # indices into the 4 worlds over (Mw, Ml): 0 = ~Mw~Ml, 1 = ~Mw Ml, 2, 3 = Mw Ml
    cross_worlds: tuple[int, ...]
    structure: PreferenceStructure
    rho: str
    names: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        s = self.structure
        return {"index": self.index, "core": str(s.core), "condition": str(s.condition),
                "additional": str(s.additional), "check": str(_side_formula(self.check_worlds)),
                "cross": str(_side_formula(self.cross_worlds)), "rho": self.rho, "names": self.names}


def _side_formula(world_ids: tuple[int, ...]) -> Formula:
    table2 = np.zeros(4, dtype=bool)
    table2[list(world_ids)] = True
    return formula_from_table(table2, POLICY_ATOMS)


def enumerate_space(family: Formula | str | None = None, named: dict | None = None) -> list[SpaceEntry]:
    """All 4^(2^2) = 256 no-reference (check, cross) pairs, minus the 31 with an empty side (rho = +-inf),
    as structures in Algorithm 1's canonical form (P = X -> C, P_C = C | X, P_A = C & X).

    family: keep only the losses whose canonical core X -> C is equivalent to this formula (the paper's
    families: 'Ml -> Mw' holds CPO, ORPO, unCPO; '~Ml' the unlikelihood losses; 'Mw' cross-entropy; 'Mw & ~Ml').
    named: name -> structure used to label entries that are loss-equivalent (default: STRUCTURES)."""
    from fairalign.align.logic.structures import STRUCTURES

    named = STRUCTURES if named is None else named
    named = {n: s for n, s in named.items() if not s.uses_reference}
    family_table = None if family is None else truth_table(parse(family, "family"))
    entries = []
    for check_bits, cross_bits in itertools.product(range(1, 16), repeat=2):
        check_ids = tuple(i for i in range(4) if check_bits >> (3 - i) & 1)
        cross_ids = tuple(i for i in range(4) if cross_bits >> (3 - i) & 1)
        s = from_sides(_side_formula(check_ids), _side_formula(cross_ids))
        if family_table is not None and not np.array_equal(truth_table(s.core), family_table):
            continue
        names = [n for n, t in named.items() if loss_equivalent(s, t)]
        entries.append(SpaceEntry(len(entries), check_ids, cross_ids, s, closed_form(s), names))
    return entries


def hasse_edges(entries: list[SpaceEntry]) -> list[tuple[int, int]]:
    """Covering pairs (stricter, looser) of the order among `entries`: one world added to the check side or
    removed from the cross side. (Exact for any family closed under intervals, e.g. the whole space.)"""
    index = {(e.check_worlds, e.cross_worlds): e.index for e in entries}
    edges = []
    for e in entries:
        for w in range(4):
            if w not in e.check_worlds:  # looser: a bigger check side
                key = (tuple(sorted(e.check_worlds + (w,))), e.cross_worlds)
                if key in index:
                    edges.append((e.index, index[key]))
            if w in e.cross_worlds and len(e.cross_worlds) > 1:  # looser: a smaller cross side
                key = (e.check_worlds, tuple(x for x in e.cross_worlds if x != w))
                if key in index:
                    edges.append((e.index, index[key]))
    return edges
