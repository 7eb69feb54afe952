"""Decompilation: from a loss written as a ratio of weighted model counts back to a preference structure.

Richardson, Srikumar, Sabharwal (ICML 2025), Algorithm 1: write rho = log(rho_t / rho_b) where rho_t, rho_b are
sums of disjoint products of p and (1 - p) factors; translate p_v -> v, (1 - p_v) -> ~v, product -> &,
sum -> |; then

    P = Sem(rho_b) -> Sem(rho_t),   P_C = Sem(rho_t) | Sem(rho_b),   P_A = Sem(rho_t) & Sem(rho_b).

Instead of pattern-matching the expression, we read Sem(f) off the polynomial itself: a multilinear f equals
sum_w f(w) * prod(p or 1 - p) over the 0/1 corners w, so f is a weighted model count exactly when every corner
value f(w) is 0 or 1, and Sem(f) is the set of corners where f(w) = 1. This accepts any algebraic form
(expanded, factored, odds ratios) and rejects, with the offending world named, anything that is not a WMC.

Symbols: pi_w, pi_l, ref_w, ref_l (the atoms' names Mw, Ml, Rw, Rl work as aliases).
"""
from __future__ import annotations

import functools
import itertools
import math
import re
from fractions import Fraction

from fairalign.align.errors import InputError
from fairalign.align.logic.expression import MAX_EXPONENT, parse_expression
from fairalign.align.logic.formula import ATOMS, Binary, Formula, Not, conj, disj, parse, truth_table, worlds
from fairalign.align.logic.structure import PreferenceStructure

SYMBOL_NAMES = {"Mw": "pi_w", "Ml": "pi_l", "Rw": "ref_w", "Rl": "ref_l"}
# The highest power of one probability in a numerator or denominator that the multilinearity check expands
# (a WMC has power 1; 2 lets `pi_w**2/pi_l` fail as "not multilinear"). It keeps that expansion small.
MAX_POWER = 2


def symbols() -> dict:
    """atom -> sympy Symbol for its probability."""
    import sympy

    return {a: sympy.Symbol(n, positive=True) for a, n in SYMBOL_NAMES.items()}


def from_sides(check: Formula | str, cross: Formula | str, *, name: str | None = None) -> PreferenceStructure:
    """The last step of Algorithm 1: the structure whose check side is `check` and cross side is `cross`."""
    check, cross = parse(check, "check"), parse(cross, "cross")
    condition = formula_from_table(truth_table(Binary("|", check, cross)))
    additional = formula_from_table(truth_table(Binary("&", check, cross)))
    return PreferenceStructure(Binary("->", cross, check), condition, additional, name=name)


def formula_from_table(table, atoms: tuple[str, ...] = ATOMS) -> Formula:
    """A short formula with this truth table (minimal DNF or CNF from SymPy's simplify_logic)."""
    return _formula_from_table(tuple(bool(v) for v in table), tuple(atoms))


@functools.lru_cache(maxsize=4096)  # SymPy's minimisation is the slow part of enumerating the loss space
def _formula_from_table(table: tuple[bool, ...], atoms: tuple[str, ...]) -> Formula:
    import sympy
    from sympy.logic.boolalg import SOPform, simplify_logic

    syms = [sympy.Symbol(a) for a in atoms]
    minterms = [[int(b) for b in bits] for bits, v in zip(itertools.product([0, 1], repeat=len(atoms)), table) if v]
    return from_sympy_logic(simplify_logic(SOPform(syms, minterms), form=None))


def from_sympy_logic(expr) -> Formula:
    """Convert a SymPy Boolean expression (And/Or/Not/Xor/Implies/Equivalent, atoms as Symbols) to a Formula."""
    import sympy
    from sympy.logic import boolalg

    if expr is sympy.true:
        return parse("T")
    if expr is sympy.false:
        return parse("F")
    if isinstance(expr, sympy.Symbol):
        return parse(expr.name)
    if isinstance(expr, boolalg.Not):
        return Not(from_sympy_logic(expr.args[0]))
    # Sort the operands so that the output does not depend on SymPy's hash order.
    args = sorted((from_sympy_logic(a) for a in expr.args), key=_order_key)
    if isinstance(expr, boolalg.And):
        return conj(*args)
    if isinstance(expr, boolalg.Or):
        return disj(*args)
    if isinstance(expr, boolalg.Xor):
        return _fold("^", args)
    if isinstance(expr, boolalg.Implies):
        return Binary("->", from_sympy_logic(expr.args[0]), from_sympy_logic(expr.args[1]))
    if isinstance(expr, boolalg.Equivalent):
        return _fold("<->", args)
    raise ValueError(f"cannot convert {expr!r} to a formula")


def _order_key(f: Formula) -> tuple:
    """Atom order Mw, Ml, Rw, Rl first (so "Mw & ~Ml", not "~Ml & Mw"), then shorter operands."""
    text = str(f)
    return [ATOMS.index(a) for a in re.findall(r"Mw|Ml|Rw|Rl", text)], len(text), text


def _fold(op: str, args: list[Formula]) -> Formula:
    out = args[0]
    for a in args[1:]:
        out = Binary(op, out, a)
    return out


# ------------------------------------------------------------------------------------------ parsing
def parse_loss_expression(text: str):
    """Parse rho written as `log(A) - log(B)` (any integer combination of logs) or as a ratio `A / B` into
    (numerator, denominator) SymPy polynomials. The text is read by our own grammar (expression.py), never
    evaluated."""
    syms = symbols()
    names = {SYMBOL_NAMES[a]: s for a, s in syms.items()} | dict(syms)
    return split_ratio(parse_expression(text, names, field="rho"))


def split_ratio(expr):
    """(numerator, denominator) of rho given as a SymPy expression: a sum of +-log terms or a plain ratio."""
    import sympy

    if not expr.has(sympy.log):
        _check_degree(expr)
        return sympy.fraction(sympy.together(expr))
    top, bottom = [], []
    # deep=False: distribute numbers over the sum (2*(log(A) - log(B))) without multiplying out A and B, whose
    # size is only checked below.
    for term in sympy.Add.make_args(sympy.expand_mul(expr, deep=False)):
        coeff, rest = term.as_coeff_Mul()
        if not (isinstance(rest, sympy.log) and coeff == int(coeff)):
            raise InputError(f"rho: expected a sum of +-log(...) terms, found the term {_short(term)}")
        if abs(coeff) > MAX_EXPONENT:  # it becomes an exponent below
            raise InputError(f"rho: the term {_short(term)} has coefficient {coeff}; at most {MAX_EXPONENT} in size")
        (top if coeff > 0 else bottom).append(sympy.Pow(rest.args[0], abs(int(coeff))))
    ratio = sympy.Mul(*top, sympy.Pow(sympy.Mul(*bottom), -1))
    _check_degree(ratio)
    return sympy.fraction(sympy.together(ratio))


def _check_degree(expr) -> None:
    """InputError unless expr is a ratio of polynomials in which no probability has a power above MAX_POWER in
    the numerator or the denominator (once written as one fraction). Read off the tree without expanding it,
    so that large powers fail here instead of keeping SymPy busy in `corner_values`."""
    for name, symbol in zip(SYMBOL_NAMES.values(), symbols().values()):
        top, bottom = _degrees(expr, symbol)
        if max(top, bottom) > MAX_POWER:
            raise InputError(f"rho: {name} appears to the power {max(top, bottom)} once rho is written as one "
                             f"fraction (at most {MAX_POWER}); a weighted model count has each probability to "
                             "the power 1")


def _degrees(expr, symbol) -> tuple[int, int]:
    """Upper bounds on the degree in `symbol` of the numerator and denominator of expr written as one fraction."""
    if expr.is_Number:
        return 0, 0
    if expr.is_Symbol:
        return (1, 0) if expr == symbol else (0, 0)
    if expr.is_Pow and expr.exp.is_Integer:
        top, bottom = _degrees(expr.base, symbol)
        k = int(expr.exp)
        return (k * top, k * bottom) if k >= 0 else (-k * bottom, -k * top)
    if expr.is_Mul:
        parts = [_degrees(a, symbol) for a in expr.args]
        return sum(t for t, _ in parts), sum(b for _, b in parts)
    if expr.is_Add:  # a/b + c/d = (a*d + c*b) / (b*d)
        parts = [_degrees(a, symbol) for a in expr.args]
        bottom = sum(b for _, b in parts)
        return max(t + bottom - b for t, b in parts), bottom
    raise InputError(f"rho: {_short(expr)} is not a polynomial in pi_w, pi_l, ref_w, ref_l (log(...) may only "
                     "appear as whole terms: c*log(A) with A a polynomial and c a whole number)")


def _short(expr) -> str:
    text = str(expr)
    return text if len(text) <= 80 else text[:77] + "..."


# ------------------------------------------------------------------------------------- Algorithm 1
def corner_values(poly) -> list:
    """poly at the 16 corners over ATOMS (world order of formula.worlds); checks that it is a polynomial in the
    four probabilities, multilinear, with no other symbol."""
    import sympy

    syms = symbols()
    unknown = poly.free_symbols - set(syms.values())
    if unknown:
        raise InputError(f"rho: unknown symbols {sorted(map(str, unknown))}; use pi_w, pi_l, ref_w, ref_l")
    _check_degree(poly)
    if any(_degrees(poly, s)[1] for s in syms.values()):
        raise InputError(f"rho: {_short(poly)} is not a polynomial (a probability divides)")
    w = worlds()
    values = [_value(poly, {syms[a]: int(w[a][k]) for a in ATOMS}) for k in range(16)]
    # poly has degree <= MAX_POWER in each probability (checked above), so it is fixed by its values on the grid
    # {0, ..., MAX_POWER}^4; it is multilinear exactly when they equal those of the multilinear polynomial with
    # the same corner values. Evaluating, unlike sympy.expand, takes time linear in the size of the expression.
    for point in itertools.product(range(MAX_POWER + 1), repeat=len(ATOMS)):
        at = dict(zip(ATOMS, point))
        interpolated = sum(v * math.prod(at[a] if w[a][k] else 1 - at[a] for a in ATOMS) for k, v in enumerate(values))
        if _value(poly, {syms[a]: at[a] for a in ATOMS}) != interpolated:
            raise InputError(f"rho: {_short(poly)} is not multilinear in the probabilities (a power p^2 appears), so "
                             "it is not a weighted model count")
    return [sympy.Rational(v.numerator, v.denominator) for v in values]


def _value(expr, at: dict) -> Fraction:
    """The exact value of a polynomial expression with the symbols set to the numbers in `at`."""
    if expr.is_Rational:
        return Fraction(int(expr.p), int(expr.q))
    if expr.is_Float:
        return Fraction(float(expr))
    if expr.is_Symbol:
        return Fraction(at[expr])
    if expr.is_Add:
        return sum((_value(a, at) for a in expr.args), Fraction(0))
    if expr.is_Mul:
        return math.prod((_value(a, at) for a in expr.args), start=Fraction(1))
    if expr.is_Pow and expr.exp.is_Integer and expr.exp >= 0:
        return _value(expr.base, at) ** int(expr.exp)
    raise InputError(f"rho: {_short(expr)} is not a polynomial in pi_w, pi_l, ref_w, ref_l with rational coefficients")


def decompile_sides(numerator, denominator) -> tuple[Formula, Formula]:
    """Sem(rho_t), Sem(rho_b): the Boolean functions whose WMCs are numerator and denominator (up to one
    common constant factor, which cancels in the ratio)."""
    top, bottom = corner_values(numerator), corner_values(denominator)
    nonzero = {v for v in top + bottom if v != 0}
    if len(nonzero) != 1:
        w, syms = worlds(), symbols()
        used = [a for a in ATOMS if syms[a] in numerator.free_symbols | denominator.free_symbols]
        name = lambda k: " ".join(("" if w[a][k] else "~") + a for a in used) or "any world"  # noqa: E731
        listing = "; ".join(
            f"{side} {poly}: " + ", ".join(dict.fromkeys(f"({name(k)})={v}" for k, v in enumerate(vals) if v != 0))
            for side, vals, poly in (("numerator", top, numerator), ("denominator", bottom, denominator))
        )
        raise InputError(
            "rho: not a ratio of weighted model counts. Algorithm 1 needs every world's coefficient to be 0 or "
            f"one common value (a sum of disjoint products of p and 1-p); the nonzero coefficients are {listing}"
        )
    scale = nonzero.pop()
    as_table = lambda vals: [v == scale for v in vals]  # noqa: E731
    return formula_from_table(as_table(top)), formula_from_table(as_table(bottom))


def decompile(rho, *, name: str | None = None) -> PreferenceStructure:
    """Algorithm 1: rho as a string (`log(pi_w*(1-pi_l)) - log(pi_l*(1-pi_w))` or `pi_w/pi_l`), a SymPy
    expression, or a (numerator, denominator) pair -> the PreferenceStructure that compiles to it."""
    if isinstance(rho, str):
        numerator, denominator = parse_loss_expression(rho)
    elif isinstance(rho, tuple):
        numerator, denominator = rho
    else:
        numerator, denominator = split_ratio(rho)
    check, cross = decompile_sides(numerator, denominator)
    if str(check) == "F" or str(cross) == "F":
        raise InputError("rho: one side of the ratio is identically 0, so rho is infinite; not a loss")
    return from_sides(check, cross, name=name)
