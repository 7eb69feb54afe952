"""sample_weights / reweight_losses against an independent numpy implementation and hand values."""
import math

import numpy as np
import pytest
import torch

from fairalign.align.reweighting import (
    STRATEGIES,
    local_only,
    normalize_losses,
    reweight_losses,
    sample_weights,
    weight_stats,
)

# Independent reimplementation, written from the paper's formulas (Sow et al. 2025, Sec. 3), in float64.
NUMPY_F = {
    "uniform": lambda x, d: np.zeros_like(x),
    "linupper": lambda x, d: np.minimum(x + d, d),
    "quadratic": lambda x, d: 1 - x**2 / d**2,
    "extremes": lambda x, d: np.abs(x),
    "linear": lambda x, d: 0.5 * x + 0.5 * d,
}


def numpy_weights(losses, strategy, r, delta=1.0):
    l = np.asarray(losses, dtype=np.float64)
    lo, hi = l.min(), l.max()
    x = np.zeros_like(l) if hi == lo else delta * (2 * l - (hi + lo)) / (hi - lo)
    s = NUMPY_F[strategy](x, delta) / r
    e = np.exp(s - s.max())
    return e / e.sum()


def test_every_registered_strategy_has_a_reference():
    assert set(STRATEGIES) == set(NUMPY_F)


@pytest.mark.parametrize("strategy", sorted(NUMPY_F))
@pytest.mark.parametrize("r,delta", [(1.0, 1.0), (0.4, 1.0), (2.5, 0.5), (0.1, 3.0)])
def test_matches_numpy_reimplementation(strategy, r, delta):
    rng = np.random.default_rng(hash((strategy, r, delta)) % 2**32)
    for n in (2, 5, 33):
        losses = rng.normal(3.0, 1.5, size=n)
        got = sample_weights(torch.tensor(losses, dtype=torch.float64), strategy, r, delta)
        np.testing.assert_allclose(got.numpy(), numpy_weights(losses, strategy, r, delta), rtol=1e-10, atol=1e-12)


def test_hand_values_linupper():
    # l = 1,2,3,4 -> x = -1, -1/3, 1/3, 1 -> f = min(x+1, 1) = 0, 2/3, 1, 1; r = 1.
    # Z = 1 + e^(2/3) + 2e = 8.384298 -> w = 0.119271, 0.232307, 0.324211, 0.324211
    expected = np.array([1.0, math.exp(2 / 3), math.e, math.e])
    expected /= expected.sum()
    got = sample_weights(torch.tensor([1.0, 2.0, 3.0, 4.0]), "linupper", 1.0)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(got.numpy(), [0.119271, 0.232307, 0.324211, 0.324211], atol=1e-6)


def test_hand_values_other_strategies():
    losses = torch.tensor([0.0, 1.0, 2.0])  # x = -1, 0, 1
    # quadratic f = 0, 1, 0; extremes f = 1, 0, 1; linear f = 0, .5, 1 (r = 1, delta = 1)
    for strategy, f in [("quadratic", [0, 1, 0]), ("extremes", [1, 0, 1]), ("linear", [0, 0.5, 1])]:
        e = np.exp(np.array(f, dtype=float))
        np.testing.assert_allclose(sample_weights(losses, strategy, 1.0).numpy(), e / e.sum(), rtol=1e-6)
    np.testing.assert_allclose(normalize_losses(torch.tensor([2.0, 3.0, 6.0]), delta=2.0).numpy(), [-2.0, -1.0, 2.0])


@pytest.mark.parametrize("strategy", sorted(NUMPY_F))
def test_weights_sum_to_one_and_are_positive(strategy):
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 64):
        w = sample_weights(torch.tensor(rng.normal(size=n)), strategy, 0.3)
        assert torch.all(w > 0)
        assert float(w.sum()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("strategy", sorted(NUMPY_F))
def test_infinite_temperature_gives_uniform_weights_and_the_ordinary_loss(strategy):
    losses = torch.tensor([0.3, 2.0, 5.0, 1.1, 0.7], requires_grad=True)
    w = sample_weights(losses, strategy, math.inf)
    torch.testing.assert_close(w, torch.full((5,), 0.2))
    near = sample_weights(losses, strategy, 1e7)
    torch.testing.assert_close(near, torch.full((5,), 0.2), rtol=0, atol=1e-7)
    loss, _, _ = reweight_losses(losses, strategy, math.inf, gather=local_only)
    torch.testing.assert_close(loss, losses.mean())
    # temperature decreasing towards 0 concentrates linupper's weight on the upper half, never on the minimum
    if strategy == "linupper":
        sharp = sample_weights(losses, strategy, 1e-3)
        assert float(sharp[0]) < 1e-6 and float(sharp[2]) > 0.3


def test_equal_losses_give_uniform_weights_without_nan():
    for losses in ([2.5] * 4, [7.0], [-1.0, -1.0]):
        for strategy in NUMPY_F:
            w = sample_weights(torch.tensor(losses), strategy, 0.5)
            assert not torch.isnan(w).any()
            torch.testing.assert_close(w, torch.full((len(losses),), 1 / len(losses)))


def test_negative_losses_shift_and_scale_invariance():
    losses = torch.tensor([-3.0, -0.5, 0.2, 1.7, -1.2])
    for strategy in NUMPY_F:
        ref = sample_weights(losses, strategy, 0.7)
        torch.testing.assert_close(sample_weights(losses - 10.0, strategy, 0.7), ref)
        torch.testing.assert_close(sample_weights(3.0 * losses, strategy, 0.7), ref)
        np.testing.assert_allclose(ref.numpy(), numpy_weights(losses.numpy(), strategy, 0.7), rtol=1e-5)


def test_linupper_down_weights_only_the_lower_half():
    losses = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # midpoint 3
    w = sample_weights(losses, "linupper", 0.5)
    assert torch.all(w[:3].diff() > 0)
    torch.testing.assert_close(w[3:], torch.full((4,), float(w[3])))


def test_mask_excludes_samples():
    losses = torch.tensor([1.0, 100.0, 2.0, 4.0, -50.0])
    mask = torch.tensor([True, False, True, True, False])
    w = sample_weights(losses, "linupper", 1.0, mask=mask)
    assert float(w[1]) == 0.0 and float(w[4]) == 0.0
    np.testing.assert_allclose(w[mask].numpy(), numpy_weights([1.0, 2.0, 4.0], "linupper", 1.0), rtol=1e-6)
    assert torch.all(sample_weights(losses, "linupper", 1.0, mask=torch.zeros(5, dtype=torch.bool)) == 0)


def test_no_gradient_through_the_weights():
    losses = torch.tensor([0.5, 1.5, 3.0, 0.9], requires_grad=True)
    loss, w, _ = reweight_losses(losses, "linupper", 0.5, gather=local_only)
    assert not w.requires_grad
    (grad,) = torch.autograd.grad(loss, losses)
    # d/dl_j sum_i w_i l_i = w_j exactly when w is a constant; a weight with history would add sum_i l_i dw_i/dl_j.
    torch.testing.assert_close(grad, w)
    np.testing.assert_allclose(w.numpy(), numpy_weights(losses.detach().numpy(), "linupper", 0.5), rtol=1e-6)


def test_reweight_losses_default_gather_works_without_process_group():
    losses = torch.tensor([0.5, 1.5, 3.0])
    loss, w, stats = reweight_losses(losses, "quadratic", 1.0)
    assert float(loss) == pytest.approx(float((w * losses).sum()))
    assert stats["loss_mean"] == pytest.approx(float(losses.mean()))


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"strategy": "upper", "temperature": 1.0}, "strategy"),
        ({"strategy": "linupper", "temperature": 0.0}, "temperature"),
        ({"strategy": "linupper", "temperature": -1.0}, "temperature"),
        ({"strategy": "linupper", "temperature": float("nan")}, "temperature"),
        ({"strategy": "linupper", "temperature": "1"}, "temperature"),
        ({"strategy": "linupper", "temperature": 1.0, "delta": 0.0}, "delta"),
    ],
)
def test_bad_arguments_raise(kwargs, field):
    with pytest.raises(ValueError, match=field):
        sample_weights(torch.tensor([1.0, 2.0]), **kwargs)


def test_losses_must_be_one_dimensional():
    with pytest.raises(ValueError, match="1-D"):
        sample_weights(torch.ones(2, 3), "linupper", 1.0)
    with pytest.raises(ValueError, match="1-D"):
        reweight_losses(torch.ones(2, 3), "linupper", 1.0)


def test_weight_stats_hand_values():
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0])
    w = sample_weights(losses, "linupper", 1.0)
    s = weight_stats(losses, w)
    wn = numpy_weights([1, 2, 3, 4], "linupper", 1.0)
    assert s["weight_entropy"] == pytest.approx(-(wn * np.log(wn)).sum() / math.log(4), rel=1e-5)
    assert s["weight_max"] == pytest.approx(4 * wn.max(), rel=1e-5)
    assert s["weight_min"] == pytest.approx(4 * wn.min(), rel=1e-5)
    assert s["ess"] == pytest.approx(1 / (4 * (wn**2).sum()), rel=1e-5)
    # up-weighted (w > 1/4): losses 3, 4; down-weighted: 1, 2
    assert s["frac_upweighted"] == pytest.approx(0.5)
    assert (s["loss_up_q25"], s["loss_up_q50"], s["loss_up_q75"]) == pytest.approx((3.25, 3.5, 3.75))
    assert (s["loss_down_q25"], s["loss_down_q50"], s["loss_down_q75"]) == pytest.approx((1.25, 1.5, 1.75))
    assert s["loss_mean"] == pytest.approx(2.5)
    assert s["loss_weighted"] == pytest.approx(float((wn * np.arange(1, 5)).sum()), rel=1e-5)


def test_weight_stats_uniform():
    s = weight_stats(torch.tensor([1.0, 5.0, 2.0]), torch.full((3,), 1 / 3))
    assert s["weight_entropy"] == pytest.approx(1.0)
    assert s["ess"] == pytest.approx(1.0)
    assert s["weight_max"] == pytest.approx(1.0) and s["weight_min"] == pytest.approx(1.0)
    assert s["frac_upweighted"] == 0.0
    assert math.isnan(s["loss_up_q50"]) and math.isnan(s["loss_down_q50"])
