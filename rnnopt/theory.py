r"""What theory predicts for the four optimizers, and the measurements that check it.

Closed forms for gradient descent and momentum on a quadratic
:math:`f(w) = \tfrac12 \sum_i \lambda_i w_i^2` (Polyak 1964; Goh, "Why Momentum Really Works",
Distill 2017), with :math:`\kappa = \lambda_{\max}/\lambda_{\min}`:

- gradient descent, best :math:`\alpha = 2/(\lambda_{\min}+\lambda_{\max})`, contracts the error
  by :math:`(\kappa-1)/(\kappa+1)` per step;
- heavy-ball momentum (:math:`z = \beta z + \nabla f,\ w = w - \alpha z`), best
  :math:`\alpha = (2/(\sqrt{\lambda_{\min}}+\sqrt{\lambda_{\max}}))^2`,
  :math:`\beta = ((\sqrt\kappa-1)/(\sqrt\kappa+1))^2`, contracts it by
  :math:`(\sqrt\kappa-1)/(\sqrt\kappa+1)`, and converges iff :math:`0 < \alpha\lambda < 2+2\beta`.

Every ``measure``-type helper below runs rnnopt's own optimizers (the code the book explains)
and returns plain numpy numbers, so a chapter can put the prediction beside the measurement.
On a quadratic the gradient :math:`\lambda_i w_i` is written into ``.grad`` directly: no
autograd is needed, which keeps long runs fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rnnopt.optim import SGD, make_optimizer

__all__ = [
    "Setting",
    "condition_number",
    "gradient_descent_optimum",
    "heavy_ball_optimum",
    "momentum_rate",
    "is_stable",
    "noise_floor",
    "quadratic_errors",
    "measured_rate",
    "steps_to_tolerance",
    "predicted_steps",
    "stability_grid",
    "step_sizes",
    "adam_step_bound",
    "reddi_gradients",
    "online_projected",
    "decay_factors",
]


@dataclass(frozen=True)
class Setting:
    """A step size, a momentum coefficient and the per-step contraction they give."""

    lr: float
    momentum: float
    rate: float


def _eigenvalues(eigenvalues: Sequence[float]) -> np.ndarray:
    values = np.asarray(eigenvalues, dtype=float).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(
            f"eigenvalues={list(eigenvalues)!r} is invalid: expected one or more "
            "finite curvatures > 0"
        )
    return values


def condition_number(eigenvalues: Sequence[float]) -> float:
    """κ = λ_max / λ_min."""
    values = _eigenvalues(eigenvalues)
    return float(values.max() / values.min())


def gradient_descent_optimum(eigenvalues: Sequence[float]) -> Setting:
    """The fastest constant step of gradient descent, and its rate (κ−1)/(κ+1)."""
    values = _eigenvalues(eigenvalues)
    low, high = values.min(), values.max()
    kappa = high / low
    # alpha* = 2 / (lambda_min + lambda_max): |1 - alpha lambda| is equal at both ends
    return Setting(lr=float(2 / (low + high)), momentum=0.0, rate=float((kappa - 1) / (kappa + 1)))


def heavy_ball_optimum(eigenvalues: Sequence[float]) -> Setting:
    """Polyak's optimal heavy-ball step and momentum, and their rate (√κ−1)/(√κ+1)."""
    values = _eigenvalues(eigenvalues)
    low, high = values.min(), values.max()
    root = math.sqrt(high / low)
    # alpha* = (2 / (sqrt(lambda_min) + sqrt(lambda_max)))^2
    lr = (2 / (math.sqrt(low) + math.sqrt(high))) ** 2
    # beta* = ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^2, and the rate is sqrt(beta*)
    rate = (root - 1) / (root + 1)
    return Setting(lr=lr, momentum=rate**2, rate=rate)


def momentum_rate(
    lr: float, momentum: float, eigenvalues: Sequence[float], nesterov: bool = False
) -> float:
    """The asymptotic per-step contraction of (Nesterov) momentum for any α, β.

    Along an eigen-direction with curvature λ the error obeys a two-term recurrence whose
    characteristic polynomial is

    - heavy ball:  z² − (1 + β − αλ) z + β
    - Nesterov:    z² − (1 + β)(1 − αλ) z + β(1 − αλ)   (torch's form, d = g + βb)

    and the rate is the largest root modulus over all λ (β = 0 gives gradient descent,
    max |1 − αλ|). Below 1 the method converges; above 1 it diverges.
    """
    worst = 0.0
    for curvature in _eigenvalues(eigenvalues):
        step = lr * curvature
        if nesterov:
            coefficients = [1.0, -(1 + momentum) * (1 - step), momentum * (1 - step)]
        else:
            coefficients = [1.0, -(1 + momentum - step), momentum]
        worst = max(worst, float(np.abs(np.roots(coefficients)).max()))
    return worst


def is_stable(lr: float, momentum: float, curvature: float) -> bool:
    """Heavy ball's convergence condition on curvature λ: 0 < αλ < 2 + 2β (with 0 ≤ β < 1)."""
    return 0 <= momentum < 1 and 0 < lr * curvature < 2 + 2 * momentum


def noise_floor(lr: float, momentum: float, eigenvalues: Sequence[float], noise: float) -> float:
    """RMS error ‖w‖ that heavy ball (β = 0: gradient descent) settles at when every gradient
    coordinate carries independent Gaussian noise of standard deviation ``noise``.

    Per direction, w_{t+1} = (1 + β − αλ) w_t − β w_{t−1} − α ξ_t is an AR(2) process
    w_{t+1} = φ1 w_t + φ2 w_{t−1} + e_t with Var e = α²σ²; its stationary variance is
    (1 − φ2) Var e / ((1 + φ2)((1 − φ2)² − φ1²)). The floor is the root of the summed variances.
    """
    total = 0.0
    for curvature in _eigenvalues(eigenvalues):
        if not is_stable(lr, momentum, curvature):
            return math.inf
        phi1, phi2 = 1 + momentum - lr * curvature, -momentum
        total += (1 - phi2) * (lr * noise) ** 2 / ((1 + phi2) * ((1 - phi2) ** 2 - phi1**2))
    return math.sqrt(total)


def _norm(values: Sequence[float]) -> float:
    return math.hypot(*values)  # no underflow for errors far below 1e-154


def quadratic_errors(
    eigenvalues: Sequence[float],
    steps: int,
    *,
    optimizer: str = "sgd",
    noise: float = 0.0,
    seed: int = 0,
    start: Sequence[float] | None = None,
    **hyper: Any,
) -> np.ndarray:
    """‖w_t‖ for t = 0 … steps when rnnopt's ``optimizer`` minimises ½ Σ λ_i w_i².

    The start is all ones unless given. With ``noise`` > 0 every gradient coordinate gets
    Gaussian noise of that standard deviation, drawn from ``np.random.default_rng(seed)``
    (stochastic gradients with the true gradient as their mean). A run that leaves the finite
    numbers stops; the rest of the array is ``inf``.
    """
    curvatures = torch.tensor(_eigenvalues(eigenvalues), dtype=torch.float64)
    if start is None:
        start = np.ones(len(curvatures))
    w = torch.tensor(np.asarray(start, dtype=float), dtype=torch.float64, requires_grad=True)
    opt = make_optimizer(optimizer, [w], **hyper)
    rng = np.random.default_rng(seed)
    errors = np.full(steps + 1, math.inf)
    errors[0] = _norm(w.tolist())
    for step in range(1, steps + 1):
        # the gradient of 1/2 sum lambda_i w_i^2 is lambda * w (plus noise)
        w.grad = curvatures * w.detach()
        if noise > 0:
            w.grad += torch.from_numpy(rng.normal(0.0, noise, size=len(curvatures)))
        opt.step()
        errors[step] = _norm(w.tolist())
        if not math.isfinite(errors[step]):
            errors[step:] = math.inf
            break
    return errors


def measured_rate(errors: Sequence[float], first: int | None = None) -> float:
    """Per-step contraction (e_last / e_first)^(1 / (last − first)), fitted from step ``first``
    (default: half-way, past the transient) to the last step."""
    errors = np.asarray(errors, dtype=float)
    last = len(errors) - 1
    first = last // 2 if first is None else first
    if not 0 <= first < last:
        raise ValueError(f"first={first!r} is invalid: expected 0 <= first < {last}")
    return float((errors[last] / errors[first]) ** (1 / (last - first)))


def steps_to_tolerance(errors: Sequence[float], tolerance: float) -> int | None:
    """The first step t with e_t ≤ tolerance · e_0 (None if it never gets there)."""
    errors = np.asarray(errors, dtype=float)
    below = np.nonzero(errors <= tolerance * errors[0])[0]
    return int(below[0]) if below.size else None


def predicted_steps(rate: float, tolerance: float) -> float:
    """Steps a method contracting by ``rate`` per step needs to shrink the error by
    ``tolerance``: log(tolerance) / log(rate) (≈ κ/2 · ln(1/tol) for GD, √κ/2 · … for momentum)."""
    if not 0 < rate < 1:
        return math.inf
    return math.log(tolerance) / math.log(rate)


def stability_grid(
    lrs: Sequence[float], momenta: Sequence[float], curvature: float = 1.0, steps: int = 300
) -> np.ndarray:
    """Measured: did momentum shrink the error on f(w) = ½λw² within ``steps`` steps?

    Entry [i, j] is True when, starting from w = 1, rnnopt's SGD with ``lr=lrs[i]`` and
    ``momentum=momenta[j]`` ends with max(|w_N|, |w_{N−1}|) < 1 (two iterates, because with
    complex roots one iterate can pass near zero by chance). Each grid point is one parameter
    group of a single optimizer, so the whole grid takes ``steps`` calls of ``step``.
    """
    groups, params = [], []
    for lr in lrs:
        for momentum in momenta:
            param = torch.ones(1, dtype=torch.float64, requires_grad=True)
            params.append(param)
            groups.append({"params": [param], "lr": float(lr), "momentum": float(momentum)})
    opt = SGD(groups, lr=1.0)
    previous = torch.ones(len(params), dtype=torch.float64)
    with torch.no_grad():
        for _ in range(steps):
            previous = torch.cat([p.detach() for p in params]).abs()
            for param in params:
                param.grad = curvature * param.detach().clone()
            opt.step()
    current = torch.cat([p.detach() for p in params]).abs()
    shrunk = torch.maximum(current, previous) < 1  # NaN (overflow) compares False
    return shrunk.numpy().reshape(len(lrs), len(momenta))


def step_sizes(optimizer: str, gradients: Sequence[float], **hyper: Any) -> np.ndarray:
    """|Δθ_t| of each step when rnnopt's ``optimizer`` is fed the gradient sequence
    ``gradients`` on one float64 parameter (whatever the loss: only the gradients matter)."""
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer(optimizer, [param], **hyper)
    sizes = []
    for grad in np.asarray(gradients, dtype=float):
        before = param.item()
        param.grad = torch.tensor([grad], dtype=torch.float64)
        opt.step()
        sizes.append(abs(param.item() - before))
    return np.array(sizes)


def adam_step_bound(lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> float:
    """Kingma & Ba's bound on one Adam step (Section 2.1, ε = 0):
    |Δ| ≤ lr (1 − β1)/√(1 − β2) when (1 − β1) > √(1 − β2), reached only by a gradient that was
    zero for a long time; otherwise |Δ| ≤ lr."""
    beta1, beta2 = betas
    if 1 - beta1 > math.sqrt(1 - beta2):
        return lr * (1 - beta1) / math.sqrt(1 - beta2)
    return lr


def reddi_gradients(
    steps: int, period: int = 101, large: float = 1010.0, small: float = -10.0
) -> np.ndarray:
    """Gradients of Reddi, Kale & Kumar's (2018) online problem f_t(x) = g_t x: ``large`` on
    steps 1, 1 + period, 1 + 2·period, … and ``small`` on every other step.

    Over one period the gradients sum to large + (period − 1)·small (10 with the defaults):
    positive, so the best fixed x ∈ [−1, 1] is −1. Adam's rare large gradient is damped by the
    second-moment estimate it inflates, while the frequent small ones move x up at full speed.
    """
    t = np.arange(1, steps + 1)
    first_of_period = t % period == 1 % period  # 1 % period: with period 1 every step is large
    return np.where(first_of_period, large, small).astype(float)


def online_projected(
    optimizer: str,
    gradients: Sequence[float],
    *,
    start: float = 0.0,
    bounds: tuple[float, float] = (-1.0, 1.0),
    **hyper: Any,
) -> np.ndarray:
    """x_t, t = 0 … len(gradients), when rnnopt's ``optimizer`` plays the online linear losses
    f_t(x) = g_t x with x projected back onto ``bounds`` (clamped) after every step."""
    x = torch.tensor([float(start)], dtype=torch.float64, requires_grad=True)
    opt = make_optimizer(optimizer, [x], **hyper)
    path = [x.item()]
    for grad in np.asarray(gradients, dtype=float):
        x.grad = torch.tensor([grad], dtype=torch.float64)
        opt.step()
        with torch.no_grad():
            x.clamp_(*bounds)  # projection onto the feasible interval
        path.append(x.item())
    return np.array(path)


def decay_factors(
    optimizer: str,
    gradient_scales: Sequence[float],
    *,
    steps: int,
    lr: float,
    weight_decay: float,
    size: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """How far weight decay shrinks weights that receive pure-noise gradients of various sizes.

    One parameter group of ``size`` weights per entry of ``gradient_scales``, all starting at 1;
    each step every weight gets a gradient ``scale · ξ`` (ξ standard normal: no signal, so only
    the decay pulls the weights in). Returns, per group, mean |w_N| after ``steps`` steps with
    ``weight_decay`` divided by the same with no decay and the same noise: the decay's own
    factor. With AdamW it is about (1 − lr·wd)^N for every group; with Adam's L2 penalty the
    term wd·w is divided by √v̂ ≈ scale, so big-gradient weights are hardly decayed.
    """
    means = []
    for decay in (weight_decay, 0.0):
        rng = np.random.default_rng(seed)
        params = [
            torch.ones(size, dtype=torch.float64, requires_grad=True) for _ in gradient_scales
        ]
        opt = make_optimizer(optimizer, params, lr=lr, weight_decay=decay)
        for _ in range(steps):
            for param, scale in zip(params, gradient_scales, strict=True):
                param.grad = torch.from_numpy(scale * rng.standard_normal(size))
            opt.step()
        means.append(np.array([p.detach().abs().mean().item() for p in params]))
    return means[0] / means[1]
