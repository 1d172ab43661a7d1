r"""Small test problems, and the path an optimizer takes across them.

The book draws every optimizer's trajectory on the same few surfaces, so that their behaviour
can be seen before it is measured on recurrent networks:

- an ill-conditioned quadratic, a long narrow valley (condition number κ): plain gradient
  descent zig-zags across it and crawls along it;
- Rosenbrock's banana-shaped valley, curved as well as narrow;
- a tilted double well, a local minimum beside the global one.

The second half holds the problems whose answers theory knows (:mod:`rnnopt.theory` puts its
predictions beside them): quadratic bowls :math:`\tfrac12 \sum_i \lambda_i w_i^2` of any
dimension, a gradient sequence fed to one parameter, Reddi et al.'s online problem and weights
that receive pure noise. Each helper runs rnnopt's own optimizers (the code the book explains)
and returns plain numpy numbers. On a quadratic the gradient :math:`\lambda_i w_i` is written
into ``.grad`` directly: no autograd is needed, which keeps long runs fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rnnopt.optim import OPTIMIZERS, SGD, make_optimizer

__all__ = [
    "Landscape",
    "quadratic",
    "rotated_quadratic",
    "rosenbrock",
    "double_well",
    "trajectory",
    "LANDSCAPES",
    "check_curvatures",
    "quadratic_errors",
    "stability_grid",
    "step_sizes",
    "reddi_gradients",
    "online_projected",
    "decay_factors",
    "random_starts",
    "end_points",
]


@dataclass(frozen=True)
class Landscape:
    """A function of two variables with its minimiser and a window that shows it well."""

    name: str
    f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    minimum: tuple[float, float]
    start: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    def __call__(self, x: Any, y: Any) -> Any:
        """Evaluate on numbers, numpy arrays (for contour plots) or tensors."""
        if isinstance(x, torch.Tensor):
            return self.f(x, y)
        return self.f(
            torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
        ).numpy()

    def grid(self, points: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, Y, Z) on a regular grid over the window, for contour plots."""
        xs = np.linspace(*self.xlim, points)
        ys = np.linspace(*self.ylim, points)
        X, Y = np.meshgrid(xs, ys)
        return X, Y, self(X, Y)


def quadratic(kappa: float = 20.0) -> Landscape:
    """f(x, y) = ½(x² + κy²): curvature 1 along x and κ along y, minimum at the origin."""
    if not kappa >= 1:
        raise ValueError(f"kappa={kappa!r} is invalid: the condition number must be >= 1")
    return Landscape(
        name=f"quadratic (κ = {kappa:g})",
        f=lambda x, y: 0.5 * (x**2 + kappa * y**2),
        minimum=(0.0, 0.0),
        start=(-4.5, 1.0),
        xlim=(-5.0, 5.0),
        ylim=(-1.5, 1.5),
    )


def rotated_quadratic(kappa: float = 20.0, angle: float = 45.0) -> Landscape:
    """The quadratic ½(u² + κv²) in coordinates (u, v) turned by ``angle`` degrees from (x, y):
    the same valley as :func:`quadratic`, but its steep direction is no longer a coordinate,
    so a per-coordinate step size (RMSprop, Adam) cannot match it."""
    if not kappa >= 1:
        raise ValueError(f"kappa={kappa!r} is invalid: the condition number must be >= 1")
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))

    def f(x, y):
        u, v = c * x + s * y, -s * x + c * y
        return 0.5 * (u**2 + kappa * v**2)

    # The start is the same point of the valley, (u, v) = (-4, 1.5), turned with it.
    return Landscape(
        name=f"quadratic (κ = {kappa:g}) turned {angle:g}°",
        f=f,
        minimum=(0.0, 0.0),
        start=(float(-4 * c - 1.5 * s), float(-4 * s + 1.5 * c)),
        xlim=(-5.0, 5.0),
        ylim=(-5.0, 5.0),
    )


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Landscape:
    """f(x, y) = (a − x)² + b(y − x²)²: minimum at (a, a²) at the end of a curved valley."""
    return Landscape(
        name="Rosenbrock",
        f=lambda x, y: (a - x) ** 2 + b * (y - x**2) ** 2,
        minimum=(a, a * a),
        start=(-1.5, 2.0),
        xlim=(-2.0, 2.0),
        ylim=(-1.0, 3.0),
    )


def double_well(tilt: float = 0.3) -> Landscape:
    """f(x, y) = (x² − 1)² + tilt·x + y²: a global minimum near x = −1, a local one near x = +1."""
    # The global minimiser solves 4x³ − 4x + tilt = 0 on the negative branch.
    roots = np.roots([4.0, 0.0, -4.0, tilt])
    x_min = float(min(r.real for r in roots if abs(r.imag) < 1e-12))
    return Landscape(
        name=f"double well (tilt {tilt:g})",
        f=lambda x, y: (x**2 - 1) ** 2 + tilt * x + y**2,
        minimum=(x_min, 0.0),
        start=(2.0, 1.0),
        xlim=(-2.0, 2.2),
        ylim=(-1.5, 1.5),
    )


LANDSCAPES = {"quadratic": quadratic, "rosenbrock": rosenbrock, "double_well": double_well}


def trajectory(
    landscape: Landscape,
    optimizer: str,
    steps: int,
    start: tuple[float, float] | None = None,
    **hyper: Any,
) -> np.ndarray:
    """The points an rnnopt optimizer visits from `start` in `steps` steps, shape (steps + 1, 2).

    The two coordinates are one float64 parameter, so per-parameter methods (RMSprop, Adam)
    adapt each coordinate separately, exactly as they do for the weights of a network. A
    trajectory that leaves the finite numbers is cut where it does.
    """
    if steps < 0:
        raise ValueError(f"steps={steps!r} is invalid: expected an integer >= 0")
    point = torch.tensor(start or landscape.start, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer(optimizer, [point], **hyper)
    path = [point.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        landscape.f(point[0], point[1]).backward()
        opt.step()
        if not torch.isfinite(point).all():
            break
        path.append(point.detach().numpy().copy())
    return np.array(path)


# --- problems with known answers (see rnnopt.theory) -----------------------------------------


def check_curvatures(eigenvalues: Sequence[float]) -> np.ndarray:
    """The curvatures λ_i of a quadratic bowl as a float array; ValueError unless there is at
    least one and every one is finite and > 0."""
    values = np.asarray(eigenvalues, dtype=float).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(
            f"eigenvalues={list(eigenvalues)!r} is invalid: expected one or more "
            "finite curvatures > 0"
        )
    return values


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
    curvatures = torch.tensor(check_curvatures(eigenvalues), dtype=torch.float64)
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


# --- many starts at once (the algorithm chapters' surface comparisons) ------------------------


def random_starts(
    xlim: tuple[float, float], ylim: tuple[float, float], n: int, seed: int = 0
) -> np.ndarray:
    """`n` starting points drawn uniformly from the box xlim × ylim, shape (n, 2)."""
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n={n!r} is invalid: expected an integer >= 1")
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(*xlim, n), rng.uniform(*ylim, n)])


def end_points(
    landscape: Landscape,
    optimizer: str,
    steps: int,
    starts: Any,
    lrs: Sequence[float],
    *,
    bound: float = 1e6,
    **hyper: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Where the optimizer is after 1 and after `steps` steps from every start at every rate.

    Returns (first, last), each of shape (len(lrs), len(starts), 2); a run that left the finite
    numbers, or the box |x|, |y| < `bound`, at any step is NaN in `last` (diverged). The runs
    are the single runs of :func:`trajectory`, taken together: each rate is its own parameter
    group, and within it rnnopt's optimizers (element-wise updates) take all the starts as one
    (n, 2) parameter, any other optimizer one parameter per start."""
    starts = np.asarray(starts, dtype=float).reshape(-1, 2)
    n = len(starts)
    chunks = [starts] if optimizer in OPTIMIZERS else [point[None] for point in starts]
    params = [
        torch.tensor(chunk, dtype=torch.float64, requires_grad=True)
        for _ in lrs
        for chunk in chunks
    ]
    per_rate = len(chunks)
    groups = [{"params": [p], "lr": float(lrs[i // per_rate])} for i, p in enumerate(params)]
    opt = make_optimizer(optimizer, groups, lr=float(lrs[0]), **hyper)
    alive = np.ones((len(lrs) * n,), dtype=bool)
    first = None
    for step in range(steps):
        opt.zero_grad()
        points = torch.cat(params)
        values = landscape.f(points[:, 0], points[:, 1])
        values.where(torch.isfinite(values), 0.0).sum().backward()
        opt.step()
        with torch.no_grad():
            now = torch.cat([p.detach() for p in params]).numpy()
            alive &= np.all(np.abs(now) < bound, axis=1)  # False for NaN too
            for p in params:  # a diverged run is parked at 0 so that it cannot overflow
                p.nan_to_num_(0.0, 0.0, 0.0)
        if step == 0:
            first = now.copy()
    last = torch.cat([p.detach() for p in params]).numpy().copy()
    last[~alive] = math.nan
    if first is None:
        first = last.copy()
    shape = (len(lrs), n, 2)
    return first.reshape(shape), last.reshape(shape)
