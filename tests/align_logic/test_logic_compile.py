"""Compilation is exact: brute-force world sums, gradients, links, the flip-rate correction, dtypes."""
import random

import pytest
import torch
import torch.nn.functional as F
from logic_helpers import brute_force_rho, random_formula

from fairalign.align.logic import STRUCTURES, PreferenceStructure, log1mexp
from fairalign.align.losses import robust_dpo_loss


def _random_structures(n: int, seed: int):
    """(strings, compiled) for n random structures with both sides non-empty."""
    rng, out = random.Random(seed), []
    while len(out) < n:
        texts = (random_formula(rng, 3), random_formula(rng, 2) if rng.random() < 0.7 else "T",
                 random_formula(rng, 2) if rng.random() < 0.3 else "F")
        try:
            out.append((texts, PreferenceStructure(*texts)))
        except ValueError as err:  # an empty side: check the reason is genuine by brute force
            assert "empty" in str(err)
    return out


def test_logic_rho_equals_brute_force_world_sum():
    """For 60 random structures, rho from the compiled masks equals a direct float64 sum over all 16 worlds."""
    g = torch.Generator().manual_seed(0)
    for texts, s in _random_structures(60, seed=1):
        logps = {a: -(torch.rand(3, generator=g, dtype=torch.float64) * 4 + 1e-3) for a in ("Mw", "Ml", "Rw", "Rl")}
        got = s.rho(logps["Mw"], logps["Ml"], logps["Rw"], logps["Rl"])
        for i in range(3):
            want = brute_force_rho(*texts, {a: float(v[i]) for a, v in logps.items()})
            assert abs(float(got[i]) - want) < 1e-9 * max(1.0, abs(want)), (texts, float(got[i]), want)


def test_logic_empty_sides_are_really_empty():
    """Every structure rejected for an empty side has WMC 0 on that side by brute force."""
    rng = random.Random(3)
    rejected = 0
    for _ in range(300):
        texts = (random_formula(rng, 2), random_formula(rng, 2), "F")
        try:
            PreferenceStructure(*texts)
        except ValueError:
            rejected += 1
            with pytest.raises((ValueError, ZeroDivisionError)):  # log(0) in the brute force
                brute_force_rho(*texts, dict.fromkeys(("Mw", "Ml", "Rw", "Rl"), -0.5))
    assert rejected > 0


def test_logic_gradcheck_random_structures():
    """Analytic gradients of the loss (all three links) equal finite differences (float64)."""
    g = torch.Generator().manual_seed(0)
    structures = [s for _, s in _random_structures(4, seed=5)] + [STRUCTURES[n] for n in ("orpo", "uncpo", "novel_ref")]
    for s in structures:
        for link in ("logistic", "hinge", "squared"):
            inputs = tuple(-(torch.rand(4, generator=g, dtype=torch.float64) * 2 + 0.05).requires_grad_()
                           for _ in range(4))
            fn = lambda *x: s.loss(*x, beta=0.7, link=link, flip_rate=0.1)  # noqa: E731, B023
            assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6), (s, link)


def test_logic_log1mexp_is_stable():
    """Against 50-digit mpmath (the naive log(-expm1(a)) already loses everything at a = -50)."""
    import mpmath

    mpmath.mp.dps = 50
    a = torch.tensor([-1e-5, -0.1, -0.6931, -0.7, -5.0, -50.0, -800.0], dtype=torch.float64)
    want = torch.tensor([float(mpmath.log(1 - mpmath.exp(mpmath.mpf(float(x))))) for x in a], dtype=torch.float64)
    torch.testing.assert_close(log1mexp(a), want, rtol=1e-14, atol=0)
    small = torch.tensor([-40.0, -100.0], dtype=torch.float32)
    assert torch.all(log1mexp(small) <= 0) and torch.all(torch.isfinite(log1mexp(small)))
    zero = torch.tensor([0.0], requires_grad=True)
    out = log1mexp(zero)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(zero.grad).all()  # p = 1 exactly: clamped, not NaN


def test_logic_dpo_structure_with_flip_rate_is_rdpo():
    g = torch.Generator().manual_seed(0)
    lw, ll, rw, rl = (-(torch.rand(16, generator=g, dtype=torch.float64) * 50) for _ in range(4))
    eps = torch.rand(16, generator=g, dtype=torch.float64) * 0.45
    got = STRUCTURES["dpo"].loss(lw, ll, rw, rl, beta=0.2, flip_rate=eps)
    torch.testing.assert_close(got, robust_dpo_loss(lw, ll, rw, rl, 0.2, eps))
    torch.testing.assert_close(STRUCTURES["dpo"].loss(lw, ll, rw, rl, beta=0.2, flip_rate=0.0),
                               -F.logsigmoid(0.2 * ((lw - rw) - (ll - rl))))


@pytest.mark.parametrize("name, link", [("uncpo", "logistic"), ("ce_unlikelihood", "hinge"), ("orpo", "squared"),
                                        ("novel_ref", "logistic")])
def test_logic_flip_correction_is_unbiased(name, link):
    """(1 - eps) L_eps(w, l) + eps L_eps(l, w) = clean loss, also for structures where swapping is not -rho."""
    g = torch.Generator().manual_seed(1)
    lw, ll, rw, rl = (-(torch.rand(16, generator=g, dtype=torch.float64) * 3 + 0.01) for _ in range(4))
    s, eps = STRUCTURES[name], 0.3
    kw = dict(beta=0.5, link=link, margin=0.1)
    observed = s.loss(lw, ll, rw, rl, flip_rate=eps, **kw)
    flipped = s.loss(ll, lw, rl, rw, flip_rate=eps, **kw)
    torch.testing.assert_close((1 - eps) * observed + eps * flipped, s.loss(lw, ll, rw, rl, **kw))


def test_logic_bad_arguments():
    s = STRUCTURES["cpo"]
    x = torch.tensor([-1.0])
    with pytest.raises(ValueError, match="link"):
        s.loss(x, x, link="probit")
    with pytest.raises(ValueError, match="beta"):
        s.loss(x, x, beta=0.0)
    with pytest.raises(ValueError, match="flip_rate"):
        s.loss(x, x, flip_rate=0.5)


def test_logic_bf16_inputs_are_upcast_and_shapes_broadcast():
    lw = torch.tensor([-3.0, -2.0], dtype=torch.bfloat16, requires_grad=True)
    ll = torch.tensor(-2.5, dtype=torch.bfloat16)
    out = STRUCTURES["orpo"].loss(lw, ll)
    assert out.dtype == torch.float32 and out.shape == (2,)
    out.sum().backward()
    assert lw.grad is not None and lw.grad.dtype == torch.bfloat16


@pytest.mark.gpu
def test_logic_cuda_bf16_matches_cpu_float64():
    """On a GPU, bf16 inputs are upcast: rho equals the float64 CPU value of the same (rounded) inputs."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    g = torch.Generator().manual_seed(0)
    x = [-(torch.rand(256, generator=g, dtype=torch.float64) * 3 + 1e-3) for _ in range(4)]
    for s in STRUCTURES.values():
        xs = [t.to("cuda", torch.bfloat16) for t in x]
        got = s.rho(*xs)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double().cpu(), s.rho(*[t.double().cpu() for t in xs]), rtol=1e-5, atol=1e-5)


def test_logic_batch_of_1024_matches_per_example():
    g = torch.Generator().manual_seed(2)
    lw, ll, rw, rl = (-(torch.rand(1024, generator=g) * 5) for _ in range(4))
    s = STRUCTURES["novel_ref"]
    full = s.rho(lw, ll, rw, rl)
    single = torch.stack([s.rho(lw[i], ll[i], rw[i], rl[i]) for i in range(0, 1024, 97)])
    torch.testing.assert_close(full[::97], single)
