"""Helpers for the logic tests (imported by test_logic_*.py): random formulas, an independent evaluator,
and a float64 brute-force weighted model count."""
import itertools
import math
import random


ATOMS = ("Mw", "Ml", "Rw", "Rl")
OPS = ("&", "^", "|", "->", "<->")


def random_formula(rng: random.Random, depth: int, atoms=ATOMS) -> str:
    """A random formula string over `atoms`, fully parenthesised (independent of the parser's printer)."""
    if depth == 0 or rng.random() < 0.25:
        return rng.choice(list(atoms) + ["T", "F"] if rng.random() < 0.1 else list(atoms))
    if rng.random() < 0.2:
        return "(~" + random_formula(rng, depth - 1, atoms) + ")"
    op = rng.choice(OPS)
    return f"({random_formula(rng, depth - 1, atoms)} {op} {random_formula(rng, depth - 1, atoms)})"


def python_eval(text: str, env: dict) -> bool:
    """Evaluate a fully parenthesised random formula with Python's own operators (an independent evaluator)."""
    expr = text.replace("<->", " == ").replace("->", " <= ").replace("~", " not ")
    expr = expr.replace("&", " and ").replace("|", " or ").replace("^", " != ")
    return bool(eval(expr, {"T": True, "F": False}, dict(env)))  # noqa: S307 (test-only, generated input)


def brute_force_rho(core: str, condition: str, additional: str, logps: dict) -> float:
    """rho = log WMC(P & P_C) - log WMC((~P & P_C) | P_A) by a direct float64 sum over the 16 worlds."""
    top = bottom = 0.0
    for bits in itertools.product([False, True], repeat=4):
        env = dict(zip(ATOMS, bits))
        weight = math.prod(math.exp(logps[a]) if env[a] else -math.expm1(logps[a]) for a in ATOMS)
        p, c, a = (python_eval(f, env) for f in (core, condition, additional))
        top += weight * (p and c)
        bottom += weight * ((not p and c) or a)
    return math.log(top) - math.log(bottom)


