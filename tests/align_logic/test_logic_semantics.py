"""Semantics: entailment monotonicity, equivalence, the 256-loss space, Algorithm 1 round trips."""
import random

import numpy as np
import pytest
import torch
from logic_helpers import random_formula

from fairalign.align.logic import STRUCTURES, PreferenceStructure
from fairalign.align.logic.decompile import decompile, from_sides
from fairalign.align.logic.formula import truth_table
from fairalign.align.logic.semantics import (
    closed_form, enumerate_space, entails, entails_formula, hasse_edges, loss_equivalent, relation, semantic_loss,
)


def _wmc(formula: str, logps: dict) -> torch.Tensor:
    """Unconditioned semantic loss -log WMC(P) through the compiler: the structure (P, T, F) at beta = 1."""
    return PreferenceStructure(formula).loss(logps["Mw"], logps["Ml"], logps["Rw"], logps["Rl"])


def test_logic_entailment_monotonicity_of_semantic_loss():
    """If P2 |= P1 then -log WMC(P2) >= -log WMC(P1), at every point (random formulas and probabilities)."""
    rng, g = random.Random(0), torch.Generator().manual_seed(0)
    checked = 0
    while checked < 40:
        p1, p2 = random_formula(rng, 3), random_formula(rng, 3)
        try:
            PreferenceStructure(p1), PreferenceStructure(p2)
        except ValueError:  # a tautology or contradiction has no finite semantic loss
            continue
        if not entails_formula(p2, p1):
            p2 = f"({p2}) & ({p1})"  # force P2 |= P1
            try:
                PreferenceStructure(p2)
            except ValueError:
                continue
        logps = {a: -(torch.rand(32, generator=g, dtype=torch.float64) * 5 + 1e-4) for a in ("Mw", "Ml", "Rw", "Rl")}
        assert torch.all(_wmc(p2, logps) >= _wmc(p1, logps) - 1e-12), (p1, p2)
        checked += 1


def test_logic_structure_order_is_monotone_for_logistic_and_hinge(space):
    """a |= b (check_a |= check_b, cross_b |= cross_a) => loss_a >= loss_b pointwise, for every ordered pair
    of the no-reference space."""
    g = torch.Generator().manual_seed(1)
    lw, ll = (-(torch.rand(64, generator=g, dtype=torch.float64) * 4 + 1e-3) for _ in range(2))
    losses = {link: torch.stack([e.structure.loss(lw, ll, beta=0.5, link=link) for e in space])
              for link in ("logistic", "hinge")}
    order = _order_matrix(space)
    for i, j in [(0, 1), (5, 7), (100, 3), (3, 100)]:
        assert order[i, j] == entails(space[i].structure, space[j].structure)
    i, j = np.nonzero(order)
    assert len(i) > 1000
    for link, values in losses.items():
        assert torch.all(values[i] >= values[j] - 1e-12), link


def _order_matrix(space) -> np.ndarray:
    """order[i, j] = entry i |= entry j, vectorised over all pairs (spot-checked against entails())."""
    checks = np.stack([e.structure.check_table for e in space])  # (N, 16)
    crosses = np.stack([e.structure.cross_table for e in space])
    return np.all(~checks[:, None] | checks[None], -1) & np.all(~crosses[None] | crosses[:, None], -1)


@pytest.fixture(scope="module")
def space():
    return enumerate_space()


def test_logic_space_size_and_named_members(space):
    """4^(2^2) = 256 (check, cross) pairs; the 31 with an empty side are excluded."""
    entries = space
    assert len(entries) == 256 - 31
    named = {n for e in entries for n in e.names}
    assert named == {n for n, s in STRUCTURES.items() if not s.uses_reference}
    cpo = next(e for e in entries if "cpo" in e.names and e.to_dict()["check"] == "Mw")
    assert cpo.rho == "log(pi_w) - log(pi_l)" and cpo.to_dict()["core"] == "Ml -> Mw"


def test_logic_family_filter():
    """Core 'Ml -> Mw': 3 choices for each of its 3 models minus the all-empty one = 26; holds CPO, ORPO, unCPO."""
    family = enumerate_space(family="Ml -> Mw")
    assert len(family) == 26
    assert {"cpo", "orpo", "uncpo"} <= {n for e in family for n in e.names}
    assert all(np.array_equal(truth_table(e.structure.core), truth_table("Ml -> Mw")) for e in family)


def test_logic_hasse_edges_are_covers(space):
    entries = space
    edges = hasse_edges(entries)
    by_index = {e.index: e for e in entries}
    for stricter, looser in edges:
        a, b = by_index[stricter].structure, by_index[looser].structure
        assert entails(a, b) and not entails(b, a)
    # the space is a product of Boolean lattices (minus two faces): every element has at most 8 covers
    assert max(np.bincount([s for s, _ in edges])) <= 8
    # the reflexive-transitive closure of the covers is the whole order
    n = len(entries)
    reach = np.eye(n, dtype=bool)
    reach[tuple(np.array(edges).T)] = True
    for _ in range(10):  # chains have at most 8 covers
        reach = reach | ((reach.astype(np.int64) @ reach.astype(np.int64)) > 0)
    assert np.array_equal(reach, _order_matrix(entries))


def test_logic_relations_between_named_losses():
    S = STRUCTURES
    assert relation(S["cpo"], S["slic"]) == "equivalent"
    assert relation(S["uncpo"], S["cpo"]) == "entailed by"  # CPO's check side Mw |= Ml -> Mw; cross Ml & ~Mw |= Ml
    assert relation(S["cpo"], S["uncpo"]) == "entails"
    assert relation(S["orpo"], S["dpo"]) == "incomparable"
    # same rho, different sides: a reference factor that cancels
    padded = from_sides("Mw & Rw", "Ml & Rw")
    assert relation(padded, S["cpo"]) == "loss-equivalent" and loss_equivalent(padded, S["cpo"])
    g = torch.Generator().manual_seed(0)
    x = [-(torch.rand(8, generator=g, dtype=torch.float64) + 0.1) for _ in range(4)]
    torch.testing.assert_close(padded.rho(*x), S["cpo"].rho(*x))


def test_logic_closed_form_strings():
    assert closed_form(STRUCTURES["dpo"]) == "log(pi_w*ref_l) - log(pi_l*ref_w)"
    assert closed_form(STRUCTURES["orpo"]) == "log(pi_w*(1 - pi_l)) - log((1 - pi_w)*pi_l)"
    assert closed_form(STRUCTURES["uncpo"]) == "log(pi_l*pi_w - pi_l + 1) - log((1 - pi_w)*pi_l)"
    assert semantic_loss(STRUCTURES["ce"]) == "-log(pi_w)"
    assert semantic_loss(STRUCTURES["cpo"]) is None  # its sides do not cover all worlds


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_logic_decompile_round_trip_named(name):
    """compile -> closed form -> Algorithm 1 -> the same two sides (so the same loss)."""
    s = STRUCTURES[name]
    back = decompile(closed_form(s))
    assert relation(back, s) in ("equivalent", "loss-equivalent")
    assert loss_equivalent(back, s)


def test_logic_decompile_round_trip_random():
    """Random structures: the WMC ratio of their sides decompiles to exactly the same sides."""
    from fairalign.align.logic.semantics import wmc_polynomial

    rng, done = random.Random(7), 0
    while done < 15:
        try:
            s = PreferenceStructure(random_formula(rng, 3), random_formula(rng, 2), "F")
        except ValueError:
            continue
        back = decompile((wmc_polynomial(s.check_table), wmc_polynomial(s.cross_table)))
        assert relation(back, s) == "equivalent", s
        done += 1


@pytest.mark.parametrize("text", [
    "log(pi_w*(1 - pi_l)) - log(pi_l*(1 - pi_w))",
    "(pi_w/(1 - pi_w)) / (pi_l/(1 - pi_l))",           # odds ratio, as ORPO's paper writes it
    "log(Mw) + log(1 - Ml) - log(Ml) - log(1 - Mw)",   # atom names as symbols, expanded logs
])
def test_logic_decompile_orpo_forms(text):
    assert relation(decompile(text), STRUCTURES["orpo"]) == "equivalent"


@pytest.mark.parametrize("text, words", [
    ("2*pi_w/pi_l", "not a ratio of weighted model counts"),
    ("pi_w**2/pi_l", "not multilinear"),
    ("pi_w/x", "position 5: unknown name .x."),
    ("log(pi_w", "cannot parse"),
    ("0*pi_w/pi_l", "identically 0"),
    ("pi_w + pi_l", "not a ratio"),
])
def test_logic_decompile_errors(text, words):
    with pytest.raises(ValueError, match=words):
        decompile(text)
