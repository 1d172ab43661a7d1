"""Convergence rates on an ill-conditioned quadratic match the closed forms.

f(w) = ½ wᵀAw with eigenvalues λ1 = 1 and λn = κ (Goh, "Why Momentum Really Works", 2017):
- gradient descent with its best step α = 2/(λ1 + λn) contracts the error by (κ−1)/(κ+1) per step;
- heavy-ball momentum with α = (2/(√λ1 + √λn))², β = ((√κ−1)/(√κ+1))² contracts it by
  (√κ−1)/(√κ+1) per step.
rnnopt's `SGD` and `Momentum` implement exactly those iterations (z = βz + ∇f, w = w − αz), so the
rates measured from their iterates must agree with the formulas.
"""

from __future__ import annotations

import math

import pytest
import torch

from rnnopt.optim import SGD, Momentum


def steps_to_reach(rate: float, floor: float = 1e-200) -> int:
    """Steps after which the error is near `floor`: as many as float64 lets us fit over."""
    return int(math.log(floor) / math.log(rate))


def measured_rate(optimizer_cls, kappa: float, steps: int, **hyper) -> float:
    """Per-step contraction of ‖w‖, fitted between steps/2 and steps (past the transient)."""
    eigenvalues = torch.tensor([1.0, kappa], dtype=torch.float64)
    w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = optimizer_cls([w], **hyper)
    norms = []
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (eigenvalues * w * w).sum()).backward()
        opt.step()
        norms.append(math.hypot(*w.tolist()))  # hypot: no underflow near 1e-200
    half = steps // 2
    return (norms[-1] / norms[half - 1]) ** (1.0 / (steps - half))


@pytest.mark.parametrize("kappa", [10.0, 100.0, 1000.0])
def test_gradient_descent_rate_is_kappa_minus_one_over_kappa_plus_one(kappa):
    rate = measured_rate(SGD, kappa, steps=400, lr=2.0 / (1.0 + kappa))
    assert rate == pytest.approx((kappa - 1) / (kappa + 1), rel=1e-6)


@pytest.mark.parametrize("kappa", [10.0, 100.0, 1000.0])
def test_heavy_ball_rate_is_sqrt_kappa_minus_one_over_sqrt_kappa_plus_one(kappa):
    root = math.sqrt(kappa)
    lr = (2.0 / (1.0 + root)) ** 2
    momentum = ((root - 1) / (root + 1)) ** 2
    expected = (root - 1) / (root + 1)
    # At the optimum both extreme eigen-directions sit on a repeated root, so the error
    # behaves like k·rᵏ and the fitted rate carries a factor 2^(2/steps), below 0.3 % here.
    rate = measured_rate(Momentum, kappa, steps=steps_to_reach(expected), lr=lr, momentum=momentum)
    assert rate == pytest.approx(expected, rel=3e-3)


def test_momentum_beats_gradient_descent_by_the_predicted_factor_at_kappa_100():
    kappa = 100.0
    gd = measured_rate(SGD, kappa, steps=400, lr=2.0 / (1.0 + kappa))
    root = math.sqrt(kappa)
    hb = measured_rate(
        Momentum,
        kappa,
        steps=steps_to_reach((root - 1) / (root + 1)),
        lr=(2.0 / (1.0 + root)) ** 2,
        momentum=((root - 1) / (root + 1)) ** 2,
    )
    # Steps to cut the error by 1e6: log(1e-6)/log(rate) ≈ 691 for GD and ≈ 69 for momentum.
    assert math.log(1e-6) / math.log(gd) == pytest.approx(690.8, rel=1e-3)
    assert math.log(1e-6) / math.log(hb) == pytest.approx(69.1, rel=1e-2)


@pytest.mark.parametrize("factor", [0.8, 0.95, 1.05, 1.2])
def test_the_closed_form_step_size_is_the_fastest_for_gradient_descent(factor):
    kappa = 100.0
    best = 2.0 / (1.0 + kappa)
    assert measured_rate(SGD, kappa, steps=400, lr=best * factor) > measured_rate(
        SGD, kappa, steps=400, lr=best
    )


def test_gradient_descent_diverges_past_two_over_lambda_max():
    kappa = 100.0
    assert measured_rate(SGD, kappa, steps=200, lr=2.0 / kappa * 1.01) > 1.0
