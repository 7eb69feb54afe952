"""Identities of ../shared/research/preference-losses.md §1-2, each against an independent computation."""
import math

import pytest
import torch
import torch.nn.functional as F

from fairalign.align.losses import (
    conservative_dpo_loss,
    dpo_loss,
    robust_dpo_loss,
    rpo_loss,
    sft_nll,
    validate_flip_rate,
)


def _logps(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [-(torch.rand(n, generator=g, dtype=torch.float64) * 80) for _ in range(4)]


def _rdpo_definition(z, eps):
    """The paper's definition, term by term: [-(1-eps) log s(z) + eps log s(-z)] / (1-2eps)."""
    return (-(1 - eps) * F.logsigmoid(z) + eps * F.logsigmoid(-z)) / (1 - 2 * eps)


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.1, 0.3, 0.49])
def test_rdpo_equals_its_definition(eps):
    lw, ll, rw, rl = _logps()
    beta = 0.1
    z = beta * ((lw - rw) - (ll - rl))
    assert torch.allclose(robust_dpo_loss(lw, ll, rw, rl, beta, eps), _rdpo_definition(z, eps), atol=1e-12)


def test_rdpo_with_zero_flip_rate_is_dpo_and_dpo_is_minus_logsigmoid():
    lw, ll, rw, rl = _logps(seed=1)
    beta = 0.5
    h = (lw - rw) - (ll - rl)
    assert torch.equal(robust_dpo_loss(lw, ll, rw, rl, beta, 0.0), dpo_loss(lw, ll, rw, rl, beta))
    manual = torch.tensor([-math.log(1 / (1 + math.exp(-beta * x))) for x in h.tolist()], dtype=torch.float64)
    assert torch.allclose(dpo_loss(lw, ll, rw, rl, beta), manual, atol=1e-9)


@pytest.mark.parametrize("eps", [0.1, 0.25, 0.4])
def test_rdpo_is_unbiased_under_flips(eps):
    # (1-eps) L(z) + eps L(-z) = softplus(-z): swapping chosen/rejected negates z.
    lw, ll, rw, rl = _logps(seed=2)
    beta = 0.2
    clean = robust_dpo_loss(lw, ll, rw, rl, beta, eps)
    flipped = robust_dpo_loss(ll, lw, rl, rw, beta, eps)
    z = beta * ((lw - rw) - (ll - rl))
    assert torch.allclose((1 - eps) * clean + eps * flipped, -F.logsigmoid(z), atol=1e-10)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_rdpo_gradient_weight(eps):
    z = torch.linspace(-20, 20, 41, dtype=torch.float64, requires_grad=True)
    zero = torch.zeros_like(z)
    loss = robust_dpo_loss(z, zero, zero, zero, 1.0, eps).sum()
    (grad,) = torch.autograd.grad(loss, z)
    expected = -(torch.sigmoid(-z) + eps / (1 - 2 * eps))
    assert torch.allclose(grad, expected, atol=1e-12)
    # never vanishes: the loss is unbounded below for eps > 0
    if eps > 0:
        assert grad.abs().min() >= eps / (1 - 2 * eps) - 1e-12
        assert robust_dpo_loss(torch.tensor([500.0]), torch.zeros(1), torch.zeros(1), torch.zeros(1), 1.0, eps) < 0


def test_cdpo_is_not_rdpo():
    z = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(1, dtype=torch.float64)
    (g,) = torch.autograd.grad(conservative_dpo_loss(z, zero, zero, zero, 1.0, 0.1).sum(), z)
    assert torch.allclose(g, -(torch.sigmoid(-z) - 0.1))


def test_per_example_flip_rates():
    lw, ll, rw, rl = _logps(n=3, seed=3)
    eps = torch.tensor([0.0, 0.1, 0.4], dtype=torch.float64)
    per = robust_dpo_loss(lw, ll, rw, rl, 0.1, eps)
    for i, e in enumerate(eps.tolist()):
        assert torch.allclose(per[i], robust_dpo_loss(lw[i : i + 1], ll[i : i + 1], rw[i : i + 1], rl[i : i + 1], 0.1, e)[0])


@pytest.mark.parametrize("bad", [0.5, 0.7, -0.1, float("nan")])
def test_flip_rate_out_of_range_is_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"flip_rate must lie in \[0, 0.5\)"):
        validate_flip_rate(bad)
    with pytest.raises(ValueError, match="flip_rate"):
        validate_flip_rate(torch.tensor([0.1, bad]))


def test_rpo_paper_mode_is_dpo_minus_eta_beta_summed_logp():
    lw, ll, rw, rl = _logps(seed=4)
    lengths = torch.full_like(lw, 7.0)
    beta, eta = 0.01, 0.005
    diff = rpo_loss(lw, ll, rw, rl, beta, eta, lw, lengths, "sum") - dpo_loss(lw, ll, rw, rl, beta)
    assert torch.allclose(diff, -eta * beta * lw, atol=1e-12)


def test_rpo_mean_mode_uses_token_mean_nll_without_beta():
    lw, ll, rw, rl = _logps(seed=5)
    lengths = torch.arange(1, 65, dtype=torch.float64)
    diff = rpo_loss(lw, ll, rw, rl, 0.5, 0.2, lw, lengths, "mean") - dpo_loss(lw, ll, rw, rl, 0.5)
    assert torch.allclose(diff, 0.2 * (-lw / lengths), atol=1e-12)
    with pytest.raises(ValueError, match="sft_reduction"):
        sft_nll(lw, lengths, "avg")
