"""Two-dimensional test functions, and the path an optimizer takes across them.

The book draws every optimizer's trajectory on the same few surfaces, so that their behaviour
can be seen before it is measured on recurrent networks:

- an ill-conditioned quadratic, a long narrow valley (condition number κ): plain gradient
  descent zig-zags across it and crawls along it;
- Rosenbrock's banana-shaped valley, curved as well as narrow;
- a tilted double well, a local minimum beside the global one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rnnopt.optim import make_optimizer

__all__ = [
    "Landscape",
    "quadratic",
    "rotated_quadratic",
    "rosenbrock",
    "double_well",
    "trajectory",
    "LANDSCAPES",
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
