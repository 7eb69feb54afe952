"""Propositional formulas over the four preference atoms: tokenizer, parser, printer, truth tables.

Atoms (Richardson, Srikumar, Sabharwal, ICML 2025, "Understanding the Logic of Direct Preference Alignment
through Logic"): `Mw` / `Ml` = "the tuned model deems the chosen / rejected completion valid"
(weight pi_theta(y|x)); `Rw` / `Rl` = the same for the frozen reference (weight pi_ref(y|x)).

Syntax, precedence from tightest to loosest:

    ~  not      &  and      ^  xor      |  or      ->  implies (right-associative)      <->  iff
    T / F constants, parentheses. Unicode forms from the paper are accepted too: ¬ ∧ ⊕ ∨ → ↔ ⊤ ⊥.

`parse("Ml -> Mw")` returns an immutable tree; `str(tree)` prints it back with the fewest parentheses that
parse to the same tree. A malformed formula raises a ValueError that names the field and points at the
offending character.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

ATOMS: tuple[str, ...] = ("Mw", "Ml", "Rw", "Rl")
POLICY_ATOMS: tuple[str, ...] = ("Mw", "Ml")
REFERENCE_ATOMS: tuple[str, ...] = ("Rw", "Rl")

# Binary operators: symbol -> (precedence, associativity). Higher binds tighter; `~` is 5.
BINARY = {"&": (4, "left"), "^": (3, "left"), "|": (2, "left"), "->": (1, "right"), "<->": (0, "left")}
NOT_PRECEDENCE = 5
_UNICODE = {"¬": "~", "!": "~", "∧": "&", "⊕": "^", "∨": "|", "→": "->", "⇒": "->", "↔": "<->", "⇔": "<->",
            "⊤": "T", "⊥": "F"}
_TOKEN = re.compile(r"\s*(<->|->|[~&^|()]|[A-Za-z_][A-Za-z0-9_]*|\S)")


# ----------------------------------------------------------------------------------------------- tree
@dataclass(frozen=True)
class Formula:
    """Base of the formula tree. Subclasses: Const, Atom, Not, Binary."""

    def atoms(self) -> frozenset[str]:
        """Atoms that occur syntactically (see `depends_on` in structure.py for the semantic version)."""
        raise NotImplementedError

    def evaluate(self, env: dict[str, np.ndarray]) -> np.ndarray:
        """Vectorised truth value: env maps each atom to a bool array of one common shape."""
        raise NotImplementedError

    def precedence(self) -> int:
        return 6  # atoms, constants and parenthesised groups never need brackets

    def __str__(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Const(Formula):
    value: bool

    def atoms(self):
        return frozenset()

    def evaluate(self, env):
        shape = next(iter(env.values())).shape if env else ()
        return np.full(shape, self.value, dtype=bool)

    def __str__(self):
        return "T" if self.value else "F"


@dataclass(frozen=True)
class Atom(Formula):
    name: str

    def atoms(self):
        return frozenset([self.name])

    def evaluate(self, env):
        return np.asarray(env[self.name], dtype=bool)

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class Not(Formula):
    operand: Formula

    def atoms(self):
        return self.operand.atoms()

    def evaluate(self, env):
        return ~self.operand.evaluate(env)

    def precedence(self):
        return NOT_PRECEDENCE

    def __str__(self):
        inner = str(self.operand)
        return "~" + (inner if self.operand.precedence() >= NOT_PRECEDENCE else f"({inner})")


@dataclass(frozen=True)
class Binary(Formula):
    op: str
    left: Formula
    right: Formula

    def atoms(self):
        return self.left.atoms() | self.right.atoms()

    def evaluate(self, env):
        a, b = self.left.evaluate(env), self.right.evaluate(env)
        if self.op == "&":
            return a & b
        if self.op == "|":
            return a | b
        if self.op == "^":
            return a ^ b
        if self.op == "->":
            return ~a | b
        return a == b  # <->

    def precedence(self):
        return BINARY[self.op][0]

    def __str__(self):
        prec, assoc = BINARY[self.op]
        # The side opposite to the associativity needs brackets at equal precedence, so that
        # parse(str(f)) == f for every tree (a -> (b -> c) prints bare, (a -> b) -> c keeps its brackets).
        left_min = prec + (assoc == "right")
        right_min = prec + (assoc == "left")
        left, right = str(self.left), str(self.right)
        left = left if self.left.precedence() >= left_min else f"({left})"
        right = right if self.right.precedence() >= right_min else f"({right})"
        return f"{left} {self.op} {right}"


TRUE, FALSE = Const(True), Const(False)


def conj(*parts: Formula) -> Formula:
    """Left-nested conjunction; T for no parts."""
    out: Formula | None = None
    for p in parts:
        out = p if out is None else Binary("&", out, p)
    return TRUE if out is None else out


def disj(*parts: Formula) -> Formula:
    """Left-nested disjunction; F for no parts."""
    out: Formula | None = None
    for p in parts:
        out = p if out is None else Binary("|", out, p)
    return FALSE if out is None else out


# --------------------------------------------------------------------------------------------- parser
def _error(text: str, field: str, pos: int, message: str) -> ValueError:
    pointer = " " * pos + "^"
    return ValueError(f"{field}: {message} (at position {pos})\n  {text}\n  {pointer}")


def _tokenize(text: str, field: str) -> list[tuple[str, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing whitespace is left
            break
        tok, start = m.group(1), m.start(1)
        tok = _UNICODE.get(tok, tok)
        if not (tok in BINARY or tok in ("~", "(", ")") or re.fullmatch(r"[A-Za-z_]\w*", tok)):
            raise _error(text, field, start, f"unexpected character {m.group(1)!r} (operators: ~ & ^ | -> <->)")
        tokens.append((tok, start))
        pos = m.end()
    tokens.append(("<end>", len(text)))
    return tokens


class _Parser:
    """Recursive descent, one method per precedence level (loosest first)."""

    def __init__(self, text: str, field: str):
        self.text, self.field = text, field
        self.tokens = _tokenize(text, field)
        self.i = 0

    def peek(self) -> str:
        return self.tokens[self.i][0]

    def take(self) -> tuple[str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, message: str) -> ValueError:
        tok, pos = self.tokens[self.i]
        found = "end of formula" if tok == "<end>" else repr(tok)
        return _error(self.text, self.field, pos, f"{message}, found {found}")

    def parse(self) -> Formula:
        if self.peek() == "<end>":
            raise self.fail("empty formula: expected an atom (Mw, Ml, Rw, Rl), T, F, '~' or '('")
        tree = self.binary(0)
        if self.peek() != "<end>":
            raise self.fail("expected an operator (& ^ | -> <->) or the end")
        return tree

    def binary(self, level: int) -> Formula:
        if level == NOT_PRECEDENCE:
            return self.unary()
        op = next(o for o, (p, _) in BINARY.items() if p == level)
        left = self.binary(level + 1)
        if BINARY[op][1] == "right":
            if self.peek() == op:
                self.take()
                return Binary(op, left, self.binary(level))  # a -> b -> c = a -> (b -> c)
            return left
        while self.peek() == op:
            self.take()
            left = Binary(op, left, self.binary(level + 1))
        return left

    def unary(self) -> Formula:
        if self.peek() == "~":
            self.take()
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Formula:
        tok, pos = self.tokens[self.i]
        if tok == "(":
            self.take()
            inner = self.binary(0)
            if self.peek() != ")":
                raise self.fail(f"expected ')' to close the '(' at position {pos}")
            self.take()
            return inner
        if tok in ("T", "F"):
            self.take()
            return Const(tok == "T")
        if re.fullmatch(r"[A-Za-z_]\w*", tok):
            if tok not in ATOMS:
                raise _error(self.text, self.field, pos, f"unknown atom {tok!r}; the atoms are {', '.join(ATOMS)}")
            self.take()
            return Atom(tok)
        raise self.fail("expected an atom (Mw, Ml, Rw, Rl), T, F, '~' or '('")


def parse(text: str | Formula, field: str = "formula") -> Formula:
    """Parse a formula string (a Formula passes through). `field` names the input in error messages."""
    if isinstance(text, Formula):
        return text
    if not isinstance(text, str):
        raise ValueError(f"{field}: expected a formula string such as 'Ml -> Mw', got {type(text).__name__}")
    return _Parser(text, field).parse()


# -------------------------------------------------------------------------------------- truth tables
def worlds(atoms: tuple[str, ...] = ATOMS) -> dict[str, np.ndarray]:
    """All 2^n assignments: atom -> (2^n,) bool. World k gives atom i the bit (k >> (n-1-i)) & 1, so the
    first atom is the most significant bit (the usual truth-table order, all-false first)."""
    n = len(atoms)
    k = np.arange(2**n)
    return {a: ((k >> (n - 1 - i)) & 1).astype(bool) for i, a in enumerate(atoms)}


def truth_table(formula: Formula | str, atoms: tuple[str, ...] = ATOMS) -> np.ndarray:
    """(2^n,) bool: the formula's value in every world over `atoms` (which must cover its atoms)."""
    formula = parse(formula)
    missing = formula.atoms() - set(atoms)
    if missing:
        raise ValueError(f"atoms: the formula uses {sorted(missing)}, which are not in {atoms}")
    return formula.evaluate(worlds(atoms))
