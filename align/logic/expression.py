"""Arithmetic expressions such as `log(pi_w*(1 - pi_l)) - log(pi_l*(1 - pi_w))`, read by our own grammar.

SymPy's `parse_expr` (and `sympify` of a string) hand the text to Python's `eval`, so input such as
`__import__('os').system(...)` would run. Here the text is only ever tokenised and parsed by the grammar below,
and the result is built with SymPy's constructors (Integer, Rational, Add, Mul, Pow, log). Precedence as in
Python, loosest first:

    expression := term (("+" | "-") term)*
    term       := signed (("*" | "/") signed)*
    signed     := ("+" | "-")* power                   -x**2 is -(x**2), as in Python
    power      := atom [("**" | "^") INTEGER]          0 <= INTEGER <= 16, one power per atom: (a**2)**3
    atom       := NUMBER | NAME | "log" "(" expression ")" | "(" expression ")"
    NUMBER     := DIGITS ["." DIGITS]                   ASCII digits; 0.5 becomes the exact rational 1/2
    NAME       := a name the caller allows (for rho: pi_w, pi_l, ref_w, ref_l and Mw, Ml, Rw, Rl)

Whitespace between tokens is ignored. Anything else (other names, quotes, dots, brackets, commas, `e`
notation, characters outside ASCII), more than MAX_LENGTH characters, brackets nested deeper than MAX_DEPTH,
exponents above MAX_EXPONENT and powers of numbers above MAX_POWER_BITS raise `InputError`, which names the
position. The limits exist so that no input can keep Python or SymPy busy for long (`2**10**10`, `((((...))))`).
"""
from __future__ import annotations

import re
from typing import Mapping

from fairalign.align.errors import InputError

MAX_LENGTH = 4000  # characters; the longest closed form of a loss over four atoms is a few hundred
MAX_DEPTH = 64  # brackets (and log calls) inside each other; each level costs a few Python stack frames
MAX_EXPONENT = 16
MAX_POWER_BITS = 4096  # SymPy computes a power of a number at once: ((2**16)**16)**16... would grow without end

# Explicit ASCII classes, not \d or \w: those also match digits and letters of other scripts.
_TOKEN = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\*\*|[-+*/^()])")
_SPACE = " \t\r\n"


def parse_expression(text: str, names: Mapping[str, object], *, field: str = "expression"):
    """The SymPy expression that `text` denotes. `names` maps each allowed name to its SymPy symbol; `field`
    names the input in error messages (e.g. "rho")."""
    return _Parser(text, names, field).parse()


class _Parser:
    """Recursive descent, one method per rule of the grammar in the module docstring."""

    def __init__(self, text: str, names: Mapping[str, object], field: str):
        self.names, self.field = dict(names), field
        self.allowed = (f"allowed: numbers (2, 0.5), {', '.join(self.names)}, + - * /, ** or ^ with a whole "
                        f"exponent 0..{MAX_EXPONENT}, brackets, log(...)")
        if not isinstance(text, str):
            raise InputError(f"{field}: expected a string, got {type(text).__name__}")
        if len(text) > MAX_LENGTH:
            raise InputError(f"{field}: {len(text)} characters is too long (at most {MAX_LENGTH}); {self.allowed}")
        self.tokens = self._tokenize(text)
        self.i = 0
        self.depth = 0

    # ------------------------------------------------------------------------------------------ tokens
    def _tokenize(self, text: str) -> list[tuple[str, str, int]]:
        """(kind, text, position) for each token, then ("end", "", len(text)). Unknown characters and names
        fail here, at their position, before any grammar is checked."""
        tokens, pos = [], 0
        while True:
            while pos < len(text) and text[pos] in _SPACE:
                pos += 1
            if pos == len(text):
                return tokens + [("end", "", pos)]
            m = _TOKEN.match(text, pos)
            if m is None:
                raise self.error(pos, f"unexpected character {_show(text[pos])}")
            kind, tok = m.lastgroup, m.group()
            if kind == "name" and tok != "log" and tok not in self.names:
                raise self.error(pos, f"unknown name {_show(tok)}")
            tokens.append((kind, tok, pos))
            pos = m.end()

    def peek(self) -> str:
        return self.tokens[self.i][1]

    def take(self) -> tuple[str, str, int]:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def error(self, pos: int, problem: str) -> InputError:
        return InputError(f"{self.field}: cannot parse at position {pos}: {problem}; {self.allowed}")

    def fail(self, expected: str) -> InputError:
        kind, tok, pos = self.tokens[self.i]
        return self.error(pos, f"{expected}, found {'the end' if kind == 'end' else _show(tok)}")

    # ----------------------------------------------------------------------------------------- grammar
    def parse(self):
        if self.tokens[0][0] == "end":
            raise self.fail("the expression is empty: expected a number, a name, log(...) or '('")
        value = self.expression()
        if self.tokens[self.i][0] != "end":
            raise self.fail("expected an operator (+ - * / ** ^) or the end")
        return value

    def expression(self):
        import sympy

        terms = [self.term()]
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            right = self.term()
            terms.append(right if op == "+" else sympy.Mul(sympy.S.NegativeOne, right))
        return sympy.Add(*terms)  # once: adding one term at a time re-sorts the sum each time

    def term(self):
        import sympy

        factors = [self.signed()]
        while self.peek() in ("*", "/"):
            _, op, pos = self.take()
            right = self.signed()
            if op == "*":
                factors.append(right)
            elif right == 0:  # SymPy would return zoo and fail later with a less helpful message
                raise self.error(pos, "division by zero")
            else:
                factors.append(sympy.Pow(right, sympy.S.NegativeOne))
        return sympy.Mul(*factors)

    def signed(self):
        import sympy

        negative = False
        while self.peek() in ("+", "-"):  # a loop, not recursion, so '------x' cannot exhaust the stack
            negative ^= self.take()[1] == "-"
        value = self.power()
        return sympy.Mul(sympy.S.NegativeOne, value) if negative else value

    def power(self):
        import sympy

        base = self.atom()
        if self.peek() not in ("**", "^"):
            return base
        self.take()
        kind, tok, pos = self.tokens[self.i]
        if kind != "number" or "." in tok or int(tok) > MAX_EXPONENT:
            raise self.fail(f"expected a whole exponent from 0 to {MAX_EXPONENT} (divide with /)")
        self.take()
        if self.peek() in ("**", "^"):  # Python reads a**b**c as a**(b**c); brackets make the meaning explicit
            raise self.fail("expected one exponent; write repeated powers with brackets, e.g. (a**2)**3")
        if base.is_Rational and max(abs(base.p), base.q).bit_length() * int(tok) > MAX_POWER_BITS:
            raise self.error(pos, f"the number {_show(str(base))}**{tok} is too large (at most {MAX_POWER_BITS} bits)")
        return sympy.Pow(base, sympy.Integer(int(tok)))

    def atom(self):
        import sympy

        kind, tok, pos = self.tokens[self.i]
        if kind == "number":
            self.take()
            whole, _, fraction = tok.partition(".")
            return sympy.Rational(int(whole + fraction), 10 ** len(fraction))
        if tok == "log":
            self.take()
            if self.peek() != "(":
                raise self.fail("expected '(' after log")
            argument = self.group()
            if argument.is_Number and argument <= 0:
                raise self.error(pos, f"log of {argument} is not a real number")
            # log.eval finds nothing to simplify in a polynomial of symbols but spends ~10 ms looking; a number
            # argument is evaluated as before (log(1) = 0, log(1/2) = -log(2)).
            return sympy.log(argument, evaluate=argument.is_Number)
        if kind == "name":
            self.take()
            return self.names[tok]
        if tok == "(":
            return self.group()
        raise self.fail("expected a number, a name, log(...) or '('")

    def group(self):
        """'(' expression ')', counting how deeply groups nest."""
        start = self.take()[2]
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(start, f"brackets nested more than {MAX_DEPTH} deep")
        value = self.expression()
        if self.peek() != ")":
            raise self.fail(f"expected ')' to close the '(' at position {start}")
        self.take()
        self.depth -= 1
        return value


def _show(text: str) -> str:
    """A token for an error message: quoted, shortened, and with the code point of anything outside ASCII
    (a Cyrillic 'р' looks like a Latin 'p')."""
    shown = repr(text if len(text) <= 40 else text[:40] + "...")
    if len(text) == 1 and not text.isascii():
        shown += f" (U+{ord(text):04X})"
    return shown
