"""Named structures compile to their published closed forms (float64, summed and length-normalised log-probs)."""
import pytest
import torch
import torch.nn.functional as F

from fairalign.align.logic import STRUCTURES, PreferenceStructure

B = 64


def _log1m(a):
    return torch.log(-torch.expm1(a))  # log(1 - e^a), the textbook formula the closed forms are written in


def _inputs(kind: str, seed: int = 0):
    """Atom log-probs: 'summed' like whole answers (-80..-1), 'mean' like per-token means (-3..-0.01),
    'near0' like very confident per-token means (-0.02..-2e-6)."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = {"summed": (-80.0, -1.0), "mean": (-3.0, -0.01), "near0": (-0.02, -2e-6)}[kind]
    draw = lambda: lo + (hi - lo) * torch.rand(B, generator=g, dtype=torch.float64)  # noqa: E731
    return draw(), draw(), draw(), draw()


CLOSED_FORMS = {
    # name: rho(lw, ll, rw, rl) as written in the papers
    "dpo": lambda lw, ll, rw, rl: (lw - rw) - (ll - rl),
    "ipo": lambda lw, ll, rw, rl: (lw - rw) - (ll - rl),
    "cpo": lambda lw, ll, rw, rl: lw - ll,
    "slic": lambda lw, ll, rw, rl: lw - ll,
    "simpo": lambda lw, ll, rw, rl: lw - ll,
    "orpo": lambda lw, ll, rw, rl: (lw - _log1m(lw)) - (ll - _log1m(ll)),  # log odds(y_w) - log odds(y_l)
    "uncpo": lambda lw, ll, rw, rl: torch.log(1 - ll.exp() + ll.exp() * lw.exp()) - (ll + _log1m(lw)),
    "ce": lambda lw, ll, rw, rl: lw - _log1m(lw),
    "unlikelihood": lambda lw, ll, rw, rl: _log1m(ll) - ll,
    "ce_unlikelihood": lambda lw, ll, rw, rl: (lw + _log1m(ll)) - torch.log(1 - lw.exp() * (1 - ll.exp())),
    "novel_ref": lambda lw, ll, rw, rl: (lw + rl + _log1m(ll)) - (ll + rw + _log1m(lw)),
}


def test_logic_every_named_structure_has_a_closed_form_test():
    assert set(CLOSED_FORMS) == set(STRUCTURES)


@pytest.mark.parametrize("kind", ["summed", "mean", "near0"])
@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_logic_rho_equals_closed_form(name, kind):
    lw, ll, rw, rl = _inputs(kind)
    s = STRUCTURES[name]
    got = s.rho(lw, ll, rw, rl)
    want = CLOSED_FORMS[name](lw, ll, rw, rl)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["summed", "near0"])
def test_logic_published_losses(kind):
    """The losses themselves: DPO/CPO/SLiC/IPO/SimPO with their links, and the unconditioned semantic losses
    at beta = 1."""
    lw, ll, rw, rl = _inputs(kind, seed=1)
    beta, h = 0.3, (lw - rw) - (ll - rl)
    loss = lambda name, **kw: STRUCTURES[name].loss(lw, ll, rw, rl, **kw)  # noqa: E731
    torch.testing.assert_close(loss("dpo", beta=beta), -F.logsigmoid(beta * h))
    torch.testing.assert_close(loss("ipo", beta=beta, link="squared"), (h - 1 / (2 * beta)) ** 2)
    torch.testing.assert_close(loss("cpo", beta=beta), -F.logsigmoid(beta * (lw - ll)))
    torch.testing.assert_close(loss("slic", beta=beta, link="hinge"), torch.clamp(1 - beta * (lw - ll), min=0))
    torch.testing.assert_close(loss("simpo", beta=2.0, margin=0.5), -F.logsigmoid(2.0 * (lw - ll) - 0.5))
    torch.testing.assert_close(loss("uncpo"), -torch.log(ll.exp() * lw.exp() + 1 - ll.exp()))
    torch.testing.assert_close(loss("ce"), -lw)
    torch.testing.assert_close(loss("unlikelihood"), -_log1m(ll))
    torch.testing.assert_close(loss("ce_unlikelihood"), -lw - _log1m(ll))


def test_logic_summed_logprobs_collapse_orpo_to_cpo():
    """The documented pitfall: with whole-sequence log-probs every 1 - p = 1 and ORPO equals CPO."""
    lw, ll, _, _ = _inputs("summed")
    lw, ll = lw - 40, ll - 40  # p < e^-41: 1 - p rounds to 1 in float64
    torch.testing.assert_close(STRUCTURES["orpo"].rho(lw, ll), STRUCTURES["cpo"].rho(lw, ll), rtol=0, atol=1e-15)
    lw, ll, _, _ = _inputs("mean")
    assert (STRUCTURES["orpo"].rho(lw, ll) - STRUCTURES["cpo"].rho(lw, ll)).abs().max() > 0.1


def test_logic_reference_use_and_antisymmetry_flags():
    uses_ref = {n for n, s in STRUCTURES.items() if s.uses_reference}
    assert uses_ref == {"dpo", "ipo", "novel_ref"}
    assert STRUCTURES["cpo"].atoms == ("Mw", "Ml") and STRUCTURES["ce"].atoms == ("Mw",)
    anti = {n for n, s in STRUCTURES.items() if s.antisymmetric}
    assert anti == {"dpo", "ipo", "cpo", "slic", "simpo", "orpo", "novel_ref"}


def test_logic_structure_needs_reference_logps():
    with pytest.raises(ValueError, match="ref_chosen_logps"):
        STRUCTURES["dpo"].rho(torch.tensor([-1.0]), torch.tensor([-2.0]))


@pytest.mark.parametrize("core, condition, additional, side", [
    ("Mw", "~Mw", "F", "empty check side"),
    ("Mw & ~Mw", "T", "F", "empty check side"),
    ("T", "T", "F", "empty cross side"),
    ("Ml -> Mw", "Mw & ~Ml", "F", "empty cross side"),
])
def test_logic_empty_side_raises_at_construction(core, condition, additional, side):
    with pytest.raises(ValueError, match=side):
        PreferenceStructure(core, condition, additional)


def test_logic_structure_docs_state_closed_forms():
    for name, s in STRUCTURES.items():
        assert s.doc and "rho" in s.doc or "loss" in s.doc, name
        assert s.__doc__ == s.doc


@pytest.mark.parametrize("kind", ["mean", "near0"])
@pytest.mark.parametrize("name", ["orpo", "uncpo", "novel_ref", "ce_unlikelihood"])
def test_logic_float32_stays_accurate_near_zero(name, kind):
    """float32 inputs (what a trainer passes) against the float64 closed form: log1mexp keeps 1 - p exact."""
    lw, ll, rw, rl = _inputs(kind, seed=2)
    got = STRUCTURES[name].rho(lw.float(), ll.float(), rw.float(), rl.float())
    want = CLOSED_FORMS[name](*(t.float().double() for t in (lw, ll, rw, rl)))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=2e-5, atol=2e-4)
