"""Watching gradients travel back through time, and the plots of the book's opening chapter.

Backpropagation through time sends the loss's gradient from the last step to the first through
the recursion (see `rnnopt.rnn`)

    δ_t = ∂L/∂h_t = W_hhᵀ (φ'(a_{t+1}) ⊙ δ_{t+1})        (loss at the last step only),

so δ_{T−1−k} is δ_{T−1} multiplied by k Jacobians. Their product shrinks or grows roughly
geometrically, at a rate set by the recurrent weights: since |φ'| ≤ 1 for tanh and relu, each
step multiplies ‖δ‖ by at most σ_max(W_hh), the largest singular value, and for long products
by about the spectral radius ρ(W_hh) (the largest |eigenvalue|) when φ' ≈ 1.

`hidden_grad_norms` measures ‖δ_t‖ for an `ElmanRNN` whose W_hh is rescaled to a chosen
spectral radius; `growth_rate` condenses such a curve into one factor per step. The plotting
helpers draw what the chapter shows; they return nothing and leave the figure to the caller.

    norms = hidden_grad_norms(make_task("adding", seq_len=100), spectral_radius=0.9)
    growth_rate(norms)              # ≈ 0.9: ‖δ‖ shrinks ~10 % per step back in time
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rnnopt.checks import invalid
from rnnopt.rnn import ElmanRNN
from rnnopt.tasks import Task

__all__ = [
    "spectral_radius",
    "largest_singular_value",
    "scale_spectral_radius_",
    "scaled_elman_rnn",
    "hidden_grad_norms",
    "growth_rate",
    "plot_hidden_grad_norms",
    "plot_adding_example",
    "plot_digits_examples",
    "format_codes",
    "plot_eval_losses",
]


def _check_positive(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value > 0)
    ):
        raise ValueError(invalid(name, value, "a finite number > 0"))
    return float(value)


def spectral_radius(matrix: Tensor) -> float:
    """ρ(W) = max |λ_i(W)|, the largest modulus of an eigenvalue of a square matrix."""
    return torch.linalg.eigvals(matrix.detach().double()).abs().max().item()


def largest_singular_value(matrix: Tensor) -> float:
    """σ_max(W) = ‖W‖₂, the most W can stretch a vector; ρ(W) ≤ σ_max(W)."""
    return torch.linalg.matrix_norm(matrix.detach().double(), ord=2).item()


@torch.no_grad()
def scale_spectral_radius_(weight: Tensor, radius: float) -> Tensor:
    """Rescale the square matrix `weight` in place so that ρ(weight) = `radius`; return it.

    Scaling by c scales every eigenvalue by c, so the matrix keeps its shape (its
    eigenvectors, its ratio σ_max/ρ) and only the size of its powers changes.
    """
    radius = _check_positive("radius", radius)
    if weight.dim() != 2 or weight.shape[0] != weight.shape[1]:
        raise ValueError(
            invalid("weight.shape", tuple(weight.shape), "the shape (n, n) of a square matrix")
        )
    current = spectral_radius(weight)
    if current == 0:
        raise ValueError(
            invalid(
                "spectral_radius(weight)",
                current,
                "a radius > 0: this weight is nilpotent, and scaling cannot change its radius",
            )
        )
    return weight.mul_(radius / current)


def scaled_elman_rnn(
    input_size: int,
    hidden_size: int,
    spectral_radius: float,
    *,
    nonlinearity: str = "tanh",
    seed: int = 0,
    orthogonal: bool = False,
) -> ElmanRNN:
    """A float64 `ElmanRNN` (batch first, recording ‖∂L/∂h_t‖) with nn.RNN's initialisation
    drawn after ``torch.manual_seed(seed)`` and W_hh rescaled to the given spectral radius.
    With `orthogonal`, W_hh is first drawn as a random orthogonal matrix, the evidence tier's
    `recurrent_init: orthogonal` (every singular value 1, so ρ = σ_max = 1 before rescaling)."""
    torch.manual_seed(seed)
    rnn = ElmanRNN(
        input_size,
        hidden_size,
        nonlinearity=nonlinearity,
        batch_first=True,
        track_hidden_grads=True,
        dtype=torch.float64,
    )
    if orthogonal:
        with torch.no_grad():
            torch.nn.init.orthogonal_(rnn.weight_hh_l0)
    scale_spectral_radius_(rnn.weight_hh_l0, spectral_radius)
    return rnn


def hidden_grad_norms(
    task: Task,
    spectral_radius: float,
    *,
    nonlinearity: str = "tanh",
    hidden_size: int = 64,
    batch_size: int = 32,
    seed: int = 0,
    orthogonal: bool = False,
) -> Tensor:
    """‖∂L/∂h_t‖ for t = 0 … T−1 (float64, shape (T,)) when the loss reads only the last step.

    Builds `scaled_elman_rnn(...)` (nn.RNN's initialisation seeded by `seed`, W_hh rescaled to
    the given spectral radius), runs one training batch of `task` (drawn from
    ``np.random.default_rng(seed)``) through it and a linear readout of the last hidden state,
    and back-propagates the task's loss on that last step alone. No gradient enters at other
    steps, so the curve is the pure product of Jacobians. Computed in float64, so that a
    vanishing gradient reaches 1e-300 before it underflows to 0.
    """
    if not isinstance(task, Task):
        raise TypeError(invalid("task", task, "an rnnopt.tasks.Task (make_task(...))"))
    rnn = scaled_elman_rnn(
        task.input_size,
        hidden_size,
        spectral_radius,
        nonlinearity=nonlinearity,
        seed=seed,
        orthogonal=orthogonal,
    )
    readout = torch.nn.Linear(hidden_size, task.output_size, dtype=torch.float64)

    inputs, target = task.train_batch(batch_size, np.random.default_rng(seed))
    hidden, _ = rnn(inputs.double())
    if task.readout == "all":
        target = target[:, -1]  # the target at the last step
    if target.is_floating_point():
        target = target.double()
    task.loss(readout(hidden[:, -1]), target).backward()
    return rnn.hidden_grad_norms[0]


def growth_rate(norms: Tensor | Sequence[float] | np.ndarray) -> float:
    """The mean factor by which ‖δ_t‖ changes per step back in time.

    The geometric mean of the per-step ratios ‖δ_{t}‖ / ‖δ_{t+1}‖, which telescopes to
    (‖δ_0‖ / ‖δ_{T−1}‖)^{1/(T−1)}: below 1 the gradient vanishes, above 1 it explodes.
    A gradient that underflowed to exactly 0 gives 0.
    """
    values = np.asarray(norms, dtype=np.float64).reshape(-1)
    if len(values) < 2:
        raise ValueError(invalid("norms", values.tolist(), "at least 2 steps"))
    if not np.all(np.isfinite(values)) or np.any(values < 0) or values[-1] == 0:
        raise ValueError(
            invalid("norms", values.tolist(), "finite values >= 0, the last (the loss's) nonzero")
        )
    if values[0] == 0:
        return 0.0
    return float(np.exp(np.log(values[0] / values[-1]) / (len(values) - 1)))


def plot_hidden_grad_norms(
    ax, curves: Mapping[float, Tensor], title: str, legend: bool = True
) -> None:
    """One line per spectral radius ρ: ‖δ_{T−1−k}‖ / ‖δ_{T−1}‖ against k, log scale, with the
    reference ρ^k dotted in the same colour; the legend (if asked) goes outside, to the right."""
    radii = sorted(curves)
    colors = radius_colors(radii)
    for radius in radii:
        norms = np.asarray(curves[radius], dtype=np.float64)[::-1]  # index k = steps back
        steps_back = np.arange(len(norms))
        color = colors[radius]
        relative = norms / norms[0]
        shown = relative > 0  # a gradient that underflowed to 0 has no place on a log axis
        ax.plot(steps_back[shown], relative[shown], color=color, lw=2, label=f"ρ = {radius:g}")
        ax.plot(steps_back, radius ** steps_back.astype(float), color=color, lw=1, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("steps back in time k")
    ax.set_ylabel(r"$\|\partial L/\partial h_{T-1-k}\| \;/\; \|\partial L/\partial h_{T-1}\|$")
    ax.set_title(title)
    if legend:
        ax.legend(
            title="measured (solid), ρ^k (dotted)", loc="upper left", bbox_to_anchor=(1.02, 1.0)
        )


def radius_colors(radii: Sequence[float]) -> dict[float, Any]:
    """A colour per spectral radius that tells the regimes apart at a glance: blues below 1
    (vanishing; paler nearer 1), black at exactly 1, reds above 1 (darker further out)."""
    from matplotlib import colormaps  # only the plots need matplotlib (a dev dependency)

    below = sorted(r for r in radii if r < 1)
    above = sorted(r for r in radii if r > 1)
    colors: dict[float, Any] = {r: "black" for r in radii if r == 1}
    for i, r in enumerate(below):  # darkest blue for the smallest radius
        colors[r] = colormaps["Blues"](0.95 - 0.55 * i / max(len(below) - 1, 1))
    for i, r in enumerate(above):
        colors[r] = colormaps["Reds"](0.4 + 0.55 * i / max(len(above) - 1, 1))
    return colors


def plot_adding_example(ax, inputs: Tensor, target: Tensor) -> None:
    """One adding-problem sequence: its values as bars, the two marked ones highlighted."""
    values, markers = inputs[:, 0].numpy(), inputs[:, 1].numpy()
    steps = np.arange(len(values))
    marked = markers > 0
    ax.bar(steps[~marked], values[~marked], color="0.75", width=0.8, label="value (unmarked)")
    ax.bar(steps[marked], values[marked], color="C3", width=0.8, label="value (marker = 1)")
    ax.set_xlabel("time step t")
    ax.set_ylabel("value channel (U[0, 1])")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylim(0, 1.15)
    total = " + ".join(f"{v:.2f}" for v in values[marked])
    ax.set_title(f"adding: target = {total} = {target.item():.2f}")
    ax.legend(loc="upper right", fontsize="small", ncols=2)


def plot_digits_examples(axes, inputs: Tensor, labels: Tensor) -> None:
    """Digit images as the RNN reads them: row t of the image is the input at step t."""
    for ax, image, label in zip(np.ravel(axes), inputs, labels, strict=True):
        ax.imshow(image.reshape(8, 8).numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"label {int(label)}")
        ax.set_xlabel("feature (pixel in the row)")
        ax.set_ylabel("step t (row)")
        ax.set_xticks([0, 7])
        ax.set_yticks([0, 7])
        ax.grid(False)


def format_codes(codes: Tensor | np.ndarray, blank: int | None = 0) -> str:
    """Integer codes as one string, one character per step (blank shown as '.', codes ≥ 10 as
    letters), so that a whole copy-task sequence fits on a line."""
    chars = []
    for code in np.asarray(codes).reshape(-1).tolist():
        if blank is not None and code == blank:
            chars.append(".")
        else:
            chars.append("0123456789abcdefghijklmnopqrstuvwxyz"[code])
    return "".join(chars)


def plot_eval_losses(
    ax,
    histories: Mapping[str, object],
    baseline: float,
    ylabel: str,
    title: str,
    colors: Mapping[str, str] | None = None,
) -> None:
    """Held-out loss against step for each labelled `History` (coloured by `colors`, keyed by
    the same labels), and the task's trivial baseline as the book's dashed baseline line."""
    from rnnopt.plots import plot_baseline  # the book's look; needs matplotlib

    for label, history in histories.items():
        ax.plot(
            history.eval_step,
            history.eval_loss,
            marker="o",
            ms=3,
            label=label,
            color=(colors or {}).get(label),
        )
    plot_baseline(ax, baseline, label="trivial baseline")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
