"""What the claims' experiments measure with: steps to a threshold, many descents of a 2-D
function at once, an optimizer's state, tensor operations and step time, and tasks seen through
a change (samples counted, loss scaled, labels shifted)."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from rnnopt.landscapes import Landscape
from rnnopt.optim import make_optimizer
from rnnopt.tasks import DigitsTask, Task
from rnnopt.train import History, build_model


def steps_to(history: History, threshold: float, *, higher_is_better: bool = False) -> float:
    """The first held-out measurement step at which the loss (or metric, if `higher_is_better`)
    crossed `threshold`; inf if it never did. Measurements are every `eval_every` steps."""
    values = history.eval_metric if higher_is_better else history.eval_loss
    for step, value in zip(history.eval_step, values, strict=True):
        if (value >= threshold) if higher_is_better else (value <= threshold):
            return float(step)
    return math.inf


def descend(
    landscape: Landscape, optimizer: str, starts: np.ndarray, steps: int, **hyper: Any
) -> np.ndarray:
    """Paths of `optimizer` from many starts at once, shape (steps + 1, n_starts, 2).

    All starts live in one (n, 2) float64 parameter and the objective is the sum of f over the
    points. Each point's gradient depends on that point alone, and all four optimizers act
    element by element, so this is exactly n separate runs, done in one loop.
    """
    points = torch.tensor(np.asarray(starts, dtype=float), requires_grad=True)
    opt = make_optimizer(optimizer, [points], **hyper)
    path = [points.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        landscape.f(points[:, 0], points[:, 1]).sum().backward()
        opt.step()
        path.append(points.detach().numpy().copy())
    return np.array(path)


def state_per_parameter(optimizer: str) -> float:
    """Numbers of optimizer state kept per parameter, counted from its state after a step
    (tensors shaped like the parameter; the scalar step counter is left out)."""
    param = torch.zeros(1000, requires_grad=True)
    opt = make_optimizer(optimizer, [param], lr=1e-3)
    param.grad = torch.ones_like(param)
    opt.step()
    kept = sum(
        v.numel()
        for v in opt.state[param].values()
        if isinstance(v, torch.Tensor) and v.shape == param.shape
    )
    return kept / param.numel()


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        self.count += 1
        return func(*args, **(kwargs or {}))


def ops_per_step(optimizer: str) -> int:
    """Tensor operations (ATen calls) one step of `optimizer` makes on one parameter, counted
    on the second step (the first also creates the state)."""
    param = torch.zeros(100, requires_grad=True)
    opt = make_optimizer(optimizer, [param], lr=1e-3)
    param.grad = torch.ones_like(param)
    opt.step()
    with _CountOps() as counter:
        opt.step()
    return counter.count


def median_step_seconds(
    build: Callable[[list[torch.Tensor]], torch.optim.Optimizer], size: int, repeats: int
) -> float:
    """Median wall-clock time of one step of the optimizer `build([param])` makes, on one
    parameter of `size` numbers (its state is allocated by a first, untimed step)."""
    param = torch.zeros(int(size), requires_grad=True)
    opt = build([param])
    param.grad = torch.full_like(param, 1e-3)
    opt.step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_seconds(optimizer: str, size: int, repeats: int) -> float:
    """Median wall-clock time of one rnnopt `optimizer` step on a parameter of `size` numbers."""
    return median_step_seconds(lambda p: make_optimizer(optimizer, p, lr=1e-6), size, repeats)


class _Wrapped:
    """A task seen through a change: counts the training samples it hands out, scales its
    loss. Everything else is the wrapped task's."""

    def __init__(self, task: Task, loss_scale: float = 1.0) -> None:
        self._task, self.loss_scale, self.samples = task, loss_scale, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)

    def train_batch(self, batch_size: int, rng: np.random.Generator):  # noqa: ANN201
        x, y = self._task.train_batch(batch_size, rng)
        self.samples.append(len(x))
        return x, y

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_scale * self._task.loss(output, target)


class RelabelledDigits(DigitsTask):
    """Sequential digits whose labels are shifted: class c is now called (c + shift) mod 10.
    The inputs are the same; what the network must output changes."""

    def __init__(
        self, shift: int = 1, mode: str = "rows", test_fraction: float = 0.25, split_seed: int = 0
    ) -> None:
        super().__init__(mode, test_fraction, split_seed)
        self.shift = shift
        self.labels = (self.labels + shift) % self.n_classes


def _fresh(
    task: Task, optimizer: str, seed: int, hidden_size: int, core: str = "elman", **hyper: Any
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """Model and optimizer as `rnnopt.train.run` builds them (weights seeded by `seed`)."""
    torch.manual_seed(seed)
    model = build_model(task, hidden_size=hidden_size, core=core)
    return model, make_optimizer(optimizer, model.parameters(), **hyper)


def _loss_on(model: torch.nn.Module, task: Task, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    model.eval()
    with torch.no_grad():
        value = float(task.loss(model(batch[0]), batch[1]))
    model.train()
    return value


def _step_response(
    model: torch.nn.Module, opt: torch.optim.Optimizer, task: Task, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One more training step; per parameter tensor, (|gradient|, |update|) element by element."""
    x, y = task.train_batch(32, np.random.default_rng(10_000 + seed))
    opt.zero_grad()
    task.loss(model(x), y).backward()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
    opt.step()
    return {
        name: (grads[name].abs().numpy().ravel(), (p.detach() - before[name]).abs().numpy().ravel())
        for name, p in model.named_parameters()
    }
