"""Formula syntax: precedence, associativity, printing round trip, errors that point at the culprit."""
import itertools
import random

import numpy as np
import pytest
from logic_helpers import ATOMS, python_eval, random_formula

from fairalign.align.logic.formula import Atom, Binary, Const, Not, parse, truth_table, worlds


@pytest.mark.parametrize("text, tree", [
    ("~Mw & Ml", Binary("&", Not(Atom("Mw")), Atom("Ml"))),
    ("Mw & Ml ^ Rw", Binary("^", Binary("&", Atom("Mw"), Atom("Ml")), Atom("Rw"))),
    ("Mw ^ Ml | Rw", Binary("|", Binary("^", Atom("Mw"), Atom("Ml")), Atom("Rw"))),
    ("Mw | Ml -> Rw", Binary("->", Binary("|", Atom("Mw"), Atom("Ml")), Atom("Rw"))),
    ("Mw -> Ml <-> Rw", Binary("<->", Binary("->", Atom("Mw"), Atom("Ml")), Atom("Rw"))),
    ("Mw -> Ml -> Rw", Binary("->", Atom("Mw"), Binary("->", Atom("Ml"), Atom("Rw")))),  # right-associative
    ("Mw & Ml & Rw", Binary("&", Binary("&", Atom("Mw"), Atom("Ml")), Atom("Rw"))),
    ("~~T", Not(Not(Const(True)))),
    ("(Mw | Ml) & Rw", Binary("&", Binary("|", Atom("Mw"), Atom("Ml")), Atom("Rw"))),
    ("¬Mw ∧ Ml → ⊥", Binary("->", Binary("&", Not(Atom("Mw")), Atom("Ml")), Const(False))),
])
def test_logic_precedence_and_associativity(text, tree):
    assert parse(text) == tree


def test_logic_implication_is_right_associative_semantically():
    """a -> b -> c must mean a -> (b -> c): they differ at a=F, b=F... check against Python on all worlds."""
    table = truth_table("Mw -> Ml -> Rw")
    w = worlds()
    expected = [(not a) or ((not b) or c) for a, b, c in zip(w["Mw"], w["Ml"], w["Rw"])]
    assert table.tolist() == expected
    assert table.tolist() != truth_table("(Mw -> Ml) -> Rw").tolist()


def test_logic_random_formulas_truth_table_and_print_round_trip():
    """Random fully-bracketed formulas: truth table equals Python's evaluation; str() reparses to the same tree."""
    rng = random.Random(0)
    for _ in range(200):
        text = random_formula(rng, 4)
        tree = parse(text)
        assert parse(str(tree)) == tree, (text, str(tree))
        table = truth_table(tree)
        for k, bits in enumerate(itertools.product([False, True], repeat=4)):
            assert table[k] == python_eval(text, dict(zip(ATOMS, bits))), text


@pytest.mark.parametrize("text, pos, words", [
    ("Mw & | Ml", 5, "expected an atom"),
    ("Mw & Mx", 5, "unknown atom 'Mx'"),
    ("(Mw | Ml", 8, "expected ')'"),
    ("Mw Ml", 3, "expected an operator"),
    ("Mw => Ml", 3, "unexpected character '='"),
    ("", 0, "empty formula"),
    ("Mw & ", 5, "end of formula"),
    ("Mw <- Ml", 3, "unexpected character '<'"),
])
def test_logic_errors_point_at_position(text, pos, words):
    with pytest.raises(ValueError) as err:
        parse(text, "core")
    msg = str(err.value)
    assert msg.startswith("core:") and words in msg and f"position {pos}" in msg
    caret_line = msg.splitlines()[-1]
    assert caret_line.index("^") - 2 == pos  # the caret sits under the culprit


def test_logic_parse_rejects_non_strings():
    with pytest.raises(ValueError, match="condition"):
        parse(3, "condition")


def test_logic_worlds_order():
    w = worlds(("Mw", "Ml"))
    assert np.column_stack([w["Mw"], w["Ml"]]).astype(int).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
