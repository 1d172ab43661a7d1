"""The book's explanatory figures: small computations that show *why* an optimizer behaves as
it does, each drawn by one function that returns a matplotlib figure sized for the book's column.

- :func:`momentum_memory`: the weights β^k with which heavy-ball momentum sums past gradients,
  and the 1/(1 − β) horizon and gain they add up to;
- :func:`momentum_rate_map`: heavy ball's convergence rate over (αλ, β) on a quadratic, with the
  stability boundary αλ < 2 + 2β and the √β floor of the complex-root regime;
- :func:`heavy_ball_explorer`: the same method on the 2-D quadratic as an interactive figure
  (sliders for α and β), the trajectories computed here with rnnopt's optimizer and embedded
  in the page as data; ``chapters/_static/heavy-ball.js`` draws them, offline;
- :func:`bias_correction`: Adam's m̂, v̂ and step over the first steps, with and without each
  bias correction;
- :func:`axis_aligned_vs_rotated`: per-coordinate scaling on an ill-conditioned quadratic whose
  axes are the coordinates, beside the same quadratic rotated;
- :func:`effective_steps` / :func:`plot_effective_steps`: γ/(√v̂ + ε) per weight during RNN
  training, split into input weights, recurrent weights and readout;
- :func:`hidden_grads_during_training` / :func:`plot_hidden_grads_during_training`:
  ‖∂L/∂h_t‖ at several points of training, for each optimizer;
- :func:`cliff_slice`: a one-unit recurrent network whose loss has a cliff (Pascanu et al.,
  2013), with gradient descent's iterates with and without clipping.

Numbers that a page prints from these functions are rounded by the page; the data embedded in
the interactive figure is rounded here, so that re-executing a chapter gives the same bytes.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rnnopt.landscapes import quadratic, rotated_quadratic, trajectory
from rnnopt.optim import make_optimizer
from rnnopt.tasks import Task
from rnnopt.train import build_model

__all__ = [
    "sgd_rates",
    "momentum_memory",
    "momentum_rate_map",
    "heavy_ball_rates",
    "heavy_ball_explorer",
    "bias_correction",
    "adam_first_steps",
    "axis_aligned_vs_rotated",
    "effective_steps",
    "plot_effective_steps",
    "hidden_grads_during_training",
    "plot_hidden_grads_during_training",
    "cliff_loss",
    "cliff_slice",
]


def _figure(height: float, ncols: int = 1, nrows: int = 1, **kwargs: Any):
    import matplotlib.pyplot as plt

    from rnnopt.plots import COLUMN_INCHES

    return plt.subplots(nrows, ncols, figsize=(COLUMN_INCHES, height), squeeze=False, **kwargs)


# --- gradient descent -----------------------------------------------------------------------


def sgd_rates(kappa: float = 100.0, points: int = 801):
    """Gradient descent on ½(λ_min x² + λ_max y²), κ = λ_max/λ_min: the error along each
    direction shrinks by |1 − αλ| per step; the method's rate is the larger of the two. Drawn
    against αλ_max, with the stability limit αλ_max = 2 and the best rate (κ − 1)/(κ + 1)."""
    x = np.linspace(0.0, 2.2, points)
    steep, shallow = np.abs(1 - x), np.abs(1 - x / kappa)
    fig, axes = _figure(3.0)
    ax = axes[0, 0]
    ax.plot(x, steep, color="#ff7f0e", label="steep direction |1 − αλ$_{max}$|")
    ax.plot(x, shallow, color="#1f77b4", label="shallow direction |1 − αλ$_{min}$|")
    ax.plot(
        x,
        np.maximum(steep, shallow),
        color="black",
        lw=2.4,
        alpha=0.35,
        label="rate of the method (the larger)",
    )
    best_x = 2 / (1 + 1 / kappa)
    best = (kappa - 1) / (kappa + 1)
    ax.plot(best_x, best, "*", color="#d62728", ms=12, label=f"best: rate {best:.3f}")
    ax.axvline(2.0, color="black", ls=":", lw=1)
    ax.text(2.02, 0.35, "diverges\nbeyond 2", fontsize=9)
    ax.set_xlim(0, 2.2)
    ax.set_ylim(0, 1.2)
    ax.set_xlabel("learning rate × largest curvature, αλ$_{max}$")
    ax.set_ylabel("error shrinks by this per step")
    ax.set_title(f"gradient descent on a quadratic, κ = {kappa:g}")
    ax.legend(fontsize=8, loc="lower left")
    return fig


# --- momentum -------------------------------------------------------------------------------


def momentum_memory(betas: Sequence[float] = (0.5, 0.9, 0.99), horizon: int = 150):
    """Left: the weight β^k of the gradient from k steps ago in the buffer b_t = Σ β^k g_{t−k};
    right: the total weight Σ_{j<k} β^j, which tends to the gain 1/(1 − β). The dotted lines mark
    k = 1/(1 − β), the 'memory' of the average."""
    from rnnopt.plots import sequential_colors

    fig, axes = _figure(2.7, ncols=2)
    ax_w, ax_sum = axes[0]
    k = np.arange(horizon)
    for beta, colour in zip(betas, sequential_colors(len(betas)), strict=True):
        memory = 1 / (1 - beta)
        ax_w.plot(k, beta**k, color=colour, label=f"β = {beta:g}")
        ax_sum.plot(k + 1, np.cumsum(beta**k), color=colour, label=f"β = {beta:g}")
        ax_sum.axhline(memory, color=colour, lw=0.8, ls="--")
        if memory < horizon:
            ax_w.axvline(memory, color=colour, lw=0.8, ls=":")
    ax_w.set_xlabel("steps ago k")
    ax_w.set_ylabel("weight β$^k$ of $g_{t-k}$")
    ax_w.set_title("how fast the past is forgotten")
    ax_w.legend()
    ax_sum.set_yscale("log")
    ax_sum.set_xscale("log")
    ax_sum.set_xlabel("gradients summed k")
    ax_sum.set_ylabel("total weight Σ β$^j$")
    ax_sum.set_title("gain → 1/(1 − β) (dashed)")
    return fig


def heavy_ball_rates(
    lr_times_curvature: np.ndarray, momentum: np.ndarray, kappa: float
) -> np.ndarray:
    """Asymptotic rate of heavy ball on a quadratic with curvatures λ_max/κ and λ_max, on a grid.

    ``lr_times_curvature`` holds αλ_max. Along curvature λ the error follows the roots of
    z² − (1 + β − αλ) z + β; the rate is the largest root modulus over both curvatures (the same
    as :func:`rnnopt.theory.momentum_rate`, vectorised for a picture)."""
    a = np.asarray(lr_times_curvature, dtype=float)
    b = np.asarray(momentum, dtype=float)
    worst = np.zeros(np.broadcast(a, b).shape)
    for step in (a, a / kappa):
        trace = 1 + b - step
        disc = np.sqrt((trace**2 - 4 * b).astype(complex))
        roots = np.maximum(np.abs((trace + disc) / 2), np.abs((trace - disc) / 2))
        worst = np.maximum(worst, roots)
    return worst


def momentum_rate_map(kappa: float = 10.0, points: int = 241):
    """Heavy ball's rate over (αλ_max, β) on a quadratic with condition number κ: colour is the
    per-step contraction (white: diverges); the black line is the boundary αλ_max = 2 + 2β, the
    dotted curves bound the region (1 − √β)² ≤ αλ ≤ (1 + √β)² where the roots are complex and the
    rate is exactly √β, whatever α; the star is the optimum."""
    from rnnopt.theory import heavy_ball_optimum

    x = np.linspace(0.0, 4.2, points)[1:]
    beta = np.linspace(0.0, 0.99, points)
    X, B = np.meshgrid(x, beta)
    rate = heavy_ball_rates(X, B, kappa)
    fig, axes = _figure(3.4)
    ax = axes[0, 0]
    shown = np.where(rate < 1, rate, np.nan)
    mesh = ax.pcolormesh(
        X, B, shown, cmap="viridis", vmin=0, vmax=1, shading="auto", rasterized=True
    )
    fig.colorbar(mesh, ax=ax, label="rate per step (lower is faster)")
    ax.plot(2 + 2 * beta, beta, color="black", lw=2, label="stability boundary αλ = 2 + 2β")
    for sign, style in ((-1, ":"), (1, ":")):
        ax.plot(
            (1 + sign * np.sqrt(beta)) ** 2,
            beta,
            color="white",
            ls=style,
            lw=1.4,
            label="complex roots: rate = √β" if sign < 0 else None,
        )
    best = heavy_ball_optimum([1.0 / kappa, 1.0])
    ax.plot(
        best.lr, best.momentum, "*", color="#d62728", ms=13, label=f"optimum: rate {best.rate:.2f}"
    )
    ax.text(3.3, 0.12, "diverges", ha="center", fontsize=10)
    ax.set_xlim(0, 4.2)
    ax.set_ylim(0, 0.99)
    ax.set_xlabel("learning rate × largest curvature, αλ$_{max}$")
    ax.set_ylabel("momentum β")
    ax.set_title(f"heavy ball on a quadratic, κ = {kappa:g}")
    ax.legend(loc="upper left", fontsize=8.5, frameon=True, framealpha=0.85)
    ax.grid(False)
    return fig


@dataclass(frozen=True)
class Explorer:
    """The data and page markup of the interactive heavy-ball figure."""

    data: dict[str, Any]
    html: str


def heavy_ball_explorer(
    kappa: float = 10.0,
    steps: int = 50,
    lr_times_curvature: Sequence[float] | None = None,
    momenta: Sequence[float] | None = None,
    element_id: str = "heavy-ball-explorer",
) -> Explorer:
    """Heavy-ball paths on ½(x² + κy²) for every (α, β) of a grid, computed with rnnopt's SGD
    (momentum β, learning rate α; the steep curvature is λ_max = κ), rounded to 2 decimals and
    embedded as JSON in an HTML block
    that ``heavy-ball.js`` turns into a figure with two sliders. A path is cut where it leaves
    |x|, |y| < 50 (it diverged)."""
    land = quadratic(kappa)
    alphas = [float(a) for a in (lr_times_curvature or np.round(np.arange(0.2, 4.01, 0.2), 2))]
    betas = [float(b) for b in (momenta or np.round(np.arange(0.0, 0.91, 0.1), 2))]
    paths, rates = [], []
    for x in alphas:
        row_paths, row_rates = [], []
        for beta in betas:
            path = trajectory(land, "sgd", steps, lr=x / kappa, momentum=beta)
            inside = np.all(np.abs(path) < 50, axis=1)
            cut = len(path) if inside.all() else int(np.argmin(inside)) + 1
            row_paths.append(np.round(path[:cut], 2).tolist())
            row_rates.append(round(float(heavy_ball_rates(np.array(x), np.array(beta), kappa)), 3))
        paths.append(row_paths)
        rates.append(row_rates)
    data = {
        "kappa": kappa,
        "steps": steps,
        "alpha_lambda": alphas,
        "beta": betas,
        "start": list(land.start),
        "xlim": list(land.xlim),
        "ylim": list(land.ylim),
        "paths": paths,
        "rate": rates,
    }
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    start_a = alphas.index(min(alphas, key=lambda a: abs(a - 1.0)))
    start_b = betas.index(min(betas, key=lambda b: abs(b - 0.5)))
    markup = (
        f'<figure class="rnnopt-interactive" id="{html.escape(element_id)}" '
        f'data-alpha-index="{start_a}" data-beta-index="{start_b}">\n'
        f'<div class="rnnopt-interactive-plot"></div>\n'
        f'<div class="rnnopt-interactive-controls">\n'
        f'<label>learning rate αλ<sub>max</sub> <input type="range" name="alpha" min="0" '
        f'max="{len(alphas) - 1}" step="1" value="{start_a}"> <output name="alpha"></output>'
        f"</label>\n"
        f'<label>momentum β <input type="range" name="beta" min="0" max="{len(betas) - 1}" '
        f'step="1" value="{start_b}"> <output name="beta"></output></label>\n'
        f'<p class="rnnopt-interactive-readout"></p>\n</div>\n'
        f'<script type="application/json">{payload}</script>\n'
        f"<figcaption><strong>Interactive figure.</strong> Heavy-ball momentum on "
        f"½(x² + {kappa:g}y²), {steps} steps from the black dot. Move the sliders: below the "
        f"readout's boundary αλ<sub>max</sub> &lt; 2 + 2β the path converges, above it it "
        f"leaves the window; at fixed β, once the roots are complex, a larger α no longer "
        f"speeds it up. The paths were computed with rnnopt when the page was executed; a "
        f"script shipped with the book draws them (no kernel, no network).</figcaption>\n"
        f"</figure>"
    )
    return Explorer(data=data, html=markup)


# --- Adam's bias correction -----------------------------------------------------------------


def adam_first_steps(
    gradients: Sequence[float],
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    correct_first: bool = True,
    correct_second: bool = True,
) -> dict[str, np.ndarray]:
    """Adam on one parameter fed ``gradients``, with either bias correction switched off:
    the moment estimates (as used in the step) and the step Δθ_t. With both corrections this is
    rnnopt's Adam (the test checks it); the others are the variants the figure compares."""
    beta1, beta2 = betas
    m = v = 0.0
    out: dict[str, list[float]] = {"m": [], "v": [], "step": []}
    for t, g in enumerate(np.asarray(gradients, dtype=float), start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_used = m / (1 - beta1**t) if correct_first else m
        v_used = v / (1 - beta2**t) if correct_second else v
        out["m"].append(m_used)
        out["v"].append(v_used)
        out["step"].append(-lr * m_used / (math.sqrt(v_used) + eps))
    return {k: np.array(v) for k, v in out.items()}


def bias_correction(
    steps: int = 50, lr: float = 1e-3, seed: int = 0, betas: tuple[float, float] = (0.9, 0.999)
):
    """Three panels over Adam's first ``steps`` steps on noisy gradients g_t ~ N(1, 0.5²):
    the first moment with and without correction, the root of the second, and |Δθ_t| / lr for
    the four combinations of the two corrections."""
    gradients = np.random.default_rng(seed).normal(1.0, 0.5, steps)
    t = np.arange(1, steps + 1)
    variants = {
        "both corrected (Adam)": (True, True, "#d62728", "-"),
        "neither": (False, False, "#7f7f7f", "--"),
        "only m̂ corrected": (True, False, "#9467bd", "-."),
        "only v̂ corrected": (False, True, "#1f77b4", ":"),
    }
    runs = {
        name: adam_first_steps(gradients, lr, betas, correct_first=m, correct_second=v)
        for name, (m, v, _, _) in variants.items()
    }
    fig, axes = _figure(2.9, ncols=3)
    ax_m, ax_v, ax_s = axes[0]
    both, neither = runs["both corrected (Adam)"], runs["neither"]
    ax_m.plot(t, np.cumsum(gradients) / t, color="black", lw=0.8, label="mean of g so far")
    ax_m.plot(t, both["m"], color="#d62728", label="m̂ (corrected)")
    ax_m.plot(t, neither["m"], color="#7f7f7f", ls="--", label="m (raw)")
    ax_m.set_title("first moment")
    ax_v.plot(t, np.sqrt(both["v"]), color="#d62728", label="√v̂ (corrected)")
    ax_v.plot(t, np.sqrt(neither["v"]), color="#7f7f7f", ls="--", label="√v (raw)")
    ax_v.set_yscale("log")
    ax_v.set_title("root of second moment")
    for name, (_, _, colour, style) in variants.items():
        ax_s.plot(t, np.abs(runs[name]["step"]) / lr, color=colour, ls=style, label=name)
    ax_s.set_yscale("log")
    ax_s.set_title("step |Δθ| / lr")
    for ax in axes[0]:
        ax.set_xlabel("step t")
    ax_m.legend(fontsize=8)
    ax_v.legend(fontsize=8)
    ax_s.legend(fontsize=7.5, loc="center right")
    return fig


# --- per-coordinate scaling -----------------------------------------------------------------


def axis_aligned_vs_rotated(
    lrs: Mapping[str, float],
    kappa: float = 25.0,
    angle: float = 45.0,
    steps: int = 100,
    hyper: Mapping[str, Mapping[str, Any]] | None = None,
):
    """Paths of each optimizer in ``lrs`` (name → learning rate) on ½(x² + κy²) and on the
    same quadratic rotated by ``angle`` degrees; returns (figure, {(panel, name): distance to
    the minimum after the last step})."""
    from rnnopt.plots import color, label, plot_landscape

    panels = {
        "axis-aligned": rotated_quadratic(kappa, 0.0),
        f"rotated {angle:g}°": rotated_quadratic(kappa, angle),
    }
    fig, axes = _figure(3.7, ncols=2, sharey=True)
    distances = {}
    for ax, (panel, land) in zip(axes[0], panels.items(), strict=True):
        paths, colours = {}, {}
        for name, lr in lrs.items():
            path = trajectory(land, name, steps, lr=lr, **(hyper or {}).get(name, {}))
            distances[panel.split()[0], name] = (
                float(np.linalg.norm(path[-1])) if len(path) == steps + 1 else math.inf
            )
            key = f"{label(name)}, lr {lr:g}"
            paths[key], colours[key] = path, color(name)
        plot_landscape(ax, land, paths, colors=colours)
        ax.set_title(f"{panel}, κ = {kappa:g}")
        ax.set_aspect("equal")
        ax.legend(fontsize=7.5, loc="lower right")
    axes[0, 1].set_ylabel("")
    return fig, distances


# --- during RNN training --------------------------------------------------------------------

WEIGHT_GROUPS = {
    "input weights W_ih": "core.weight_ih",
    "recurrent weights W_hh": "core.weight_hh",
    "readout": "head.weight",
}


def _train_steps(
    task: Task,
    optimizer: str,
    lr: float,
    steps: int,
    *,
    hidden_size: int,
    batch_size: int,
    clip_grad_norm: float | None,
    seed: int,
    every: int,
    probe,
    track_hidden_grads: bool = False,
    **hyper: Any,
) -> dict[int, Any]:
    """Train a seeded Elman model as rnnopt.train does (same batches from default_rng(seed),
    same clipping) and call ``probe(model, opt)`` after the backward pass at step 0 and every
    ``every`` steps; returns {step: probe's result}."""
    torch.manual_seed(seed)
    model = build_model(task, hidden_size=hidden_size, core="elman")
    model.core.track_hidden_grads = track_hidden_grads
    opt = make_optimizer(optimizer, model.parameters(), lr=lr, **hyper)
    rng = np.random.default_rng(seed)
    seen = {}
    for step in range(steps + 1):
        inputs, target = task.train_batch(batch_size, rng)
        opt.zero_grad()
        task.loss(model(inputs), target).backward()
        if step % every == 0:
            seen[step] = probe(model, opt)
        if step == steps:
            break
        if clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        opt.step()
    return seen


def effective_steps(
    task: Task,
    optimizer: str,
    lr: float,
    steps: int = 300,
    *,
    hidden_size: int = 32,
    batch_size: int = 32,
    clip_grad_norm: float | None = 1.0,
    seed: int = 0,
    every: int = 10,
    **hyper: Any,
) -> dict[str, np.ndarray]:
    """γ/(√v̂ + ε) of every weight during training with RMSprop or Adam (v̂ = v for RMSprop,
    v/(1 − β₂^t) for Adam), summarised per group of WEIGHT_GROUPS as the 10th, 50th and 90th
    percentile over the group's weights at each probed step; also 'step'."""
    if optimizer not in ("rmsprop", "adam", "adamw"):
        raise ValueError(f"optimizer={optimizer!r} has no per-weight step; valid: rmsprop, adam")

    def probe(model, opt):
        result = {}
        named = dict(model.named_parameters())
        for group, prefix in WEIGHT_GROUPS.items():
            values = []
            for name, param in named.items():
                state = opt.state.get(param)
                if not name.startswith(prefix) or not state:
                    continue
                g = opt.param_groups[0]
                if optimizer == "rmsprop":
                    v = state["square_avg"]
                else:
                    v = state["exp_avg_sq"] / (1 - g["betas"][1] ** state["step"].item())
                values.append((g["lr"] / (v.sqrt() + g["eps"])).reshape(-1))
            if values:
                result[group] = np.percentile(torch.cat(values).numpy(), [10, 50, 90])
        return result

    seen = _train_steps(
        task,
        optimizer,
        lr,
        steps,
        hidden_size=hidden_size,
        batch_size=batch_size,
        clip_grad_norm=clip_grad_norm,
        seed=seed,
        every=every,
        probe=probe,
        **hyper,
    )
    seen = {s: r for s, r in seen.items() if r}  # step 0: no state yet
    out = {"step": np.array(sorted(seen))}
    for group in WEIGHT_GROUPS:
        out[group] = np.array([seen[s][group] for s in out["step"]])
    return out


def plot_effective_steps(results: Mapping[str, Mapping[str, np.ndarray]], lrs: Mapping[str, float]):
    """One panel per optimizer in ``results`` (from :func:`effective_steps`): the median
    effective step of each weight group, with its 10–90 % band over the group's weights, and the
    learning rate γ as a dashed line."""
    from rnnopt.plots import label

    fig, axes = _figure(3.0, ncols=len(results), sharey=True)
    colours = dict(zip(WEIGHT_GROUPS, ["#1f77b4", "#d62728", "#2ca02c"], strict=True))
    for ax, (name, result) in zip(axes[0], results.items(), strict=True):
        for group in WEIGHT_GROUPS:
            low, mid, high = result[group].T
            ax.plot(result["step"], mid, color=colours[group], label=group)
            ax.fill_between(result["step"], low, high, color=colours[group], alpha=0.2, lw=0)
        ax.axhline(lrs[name], color="black", ls="--", lw=1, label="learning rate γ")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_title(f"{label(name)}, γ = {lrs[name]:g}")
    axes[0, 0].set_ylabel("effective step γ / (√v̂ + ε)")
    axes[0, 0].legend(fontsize=8)
    return fig


def hidden_grads_during_training(
    task: Task,
    optimizers: Mapping[str, float],
    steps: int = 300,
    *,
    checkpoints: int = 4,
    hidden_size: int = 32,
    batch_size: int = 32,
    clip_grad_norm: float | None = 1.0,
    seeds: Sequence[int] = (0, 1, 2),
) -> dict[str, Any]:
    """‖∂L/∂h_t‖ for every step t of the sequence at ``checkpoints`` + 1 evenly spaced points of
    training (step 0 included), for each optimizer (name → learning rate) and seed; returns
    {"steps": probed steps, name: array (seeds, checkpoints + 1, T)}."""
    every = max(steps // checkpoints, 1)

    def probe(model, opt):
        return model.core.hidden_grad_norms[0].detach().double().numpy().copy()

    out: dict[str, Any] = {}
    for name, lr in optimizers.items():
        runs = []
        for seed in seeds:
            seen = _train_steps(
                task,
                name,
                lr,
                steps,
                hidden_size=hidden_size,
                batch_size=batch_size,
                clip_grad_norm=clip_grad_norm,
                seed=seed,
                every=every,
                probe=probe,
                track_hidden_grads=True,
            )
            out["steps"] = np.array(sorted(seen))
            runs.append(np.array([seen[s] for s in out["steps"]]))
        out[name] = np.array(runs)
    return out


def plot_hidden_grads_during_training(result: Mapping[str, Any], lrs: Mapping[str, float]):
    """A 2×2 grid, one panel per optimizer: ‖∂L/∂h_t‖ against t, geometric mean over seeds and
    its min–max band, one sequential colour per point of training (light: early, dark: late)."""
    from rnnopt.plots import label, sequential_colors

    names = [n for n in result if n != "steps"]
    nrows = math.ceil(len(names) / 2)
    fig, axes = _figure(2.5 * nrows + 0.3, ncols=2, nrows=nrows, sharex=True, sharey=True)
    colours = sequential_colors(len(result["steps"]))
    for ax, name in zip(axes.flat, names, strict=False):  # a 2x2 grid may have a spare panel
        runs = np.maximum(result[name], 1e-300)  # (seeds, checkpoints, T)
        t = np.arange(runs.shape[-1])
        for i, (step, colour) in enumerate(zip(result["steps"], colours, strict=True)):
            curves = runs[:, i, :]
            mean = np.exp(np.log(curves).mean(axis=0))
            ax.plot(t, mean, color=colour, label=f"step {step}")
            ax.fill_between(
                t, curves.min(axis=0), curves.max(axis=0), color=colour, alpha=0.2, lw=0
            )
        ax.set_yscale("log")
        ax.set_title(f"{label(name)}, lr {lrs[name]:g}", fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel("time step t of the sequence")
    for ax in axes[:, 0]:
        ax.set_ylabel("‖∂L/∂h$_t$‖")
    axes[0, 0].legend(fontsize=7.5, loc="upper left")
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    return fig


# --- the exploding-gradient cliff -------------------------------------------------------------


def cliff_loss(
    w: torch.Tensor | float,
    *,
    b: float = -2.5,
    steps: int = 30,
    start: float = 0.5,
    target: float = 0.7,
) -> torch.Tensor:
    """Pascanu et al.'s one-unit recurrent network x_t = w·σ(x_{t−1}) + b, run for ``steps``
    steps from x_0 = ``start``; the loss is (x_T − target)². As w crosses the value where the
    map gains a second fixed point, x_T jumps and the loss has a near-vertical wall."""
    w = torch.as_tensor(w, dtype=torch.float64)
    x = torch.full_like(w, start)
    for _ in range(steps):
        x = w * torch.sigmoid(x) + b
    return (x - target) ** 2


def cliff_slice(
    w0: float = 4.0, lr: float = 0.05, iterations: int = 20, clip: float = 1.0, **shape: Any
):
    """The loss along w (log scale), with gradient descent's iterates from ``w0``: left without
    clipping, right with the gradient clipped to norm ``clip``. From the default start the
    unclipped iterates walk down to the wall, where the gradient is about a thousand times larger
    than on the plateau, and one step throws them far away; the clipped ones cross it.
    Returns (figure, {"plain": ws, "clipped": ws})."""
    ws = torch.linspace(1.0, 8.0, 1401, dtype=torch.float64)
    losses = cliff_loss(ws, **shape).numpy()
    paths = {}
    for name, limit in (("plain", None), ("clipped", clip)):
        w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
        visited = [w.item()]
        for _ in range(iterations):
            w.grad = None
            cliff_loss(w, **shape).backward()
            grad = w.grad.item()
            if limit is not None and abs(grad) > limit:
                grad = math.copysign(limit, grad)
            with torch.no_grad():
                w -= lr * grad
            visited.append(w.item())
            if not math.isfinite(w.item()):
                break
        paths[name] = np.array(visited)
    fig, axes = _figure(3.0, ncols=2, sharey=True)
    for ax, (name, visited) in zip(axes[0], paths.items(), strict=True):
        ax.plot(ws.numpy(), losses, color="0.45", lw=1.2, label="loss along w")
        inside = visited[np.isfinite(visited) & (visited >= 1) & (visited <= 8)]
        ax.plot(
            inside,
            cliff_loss(torch.tensor(inside), **shape).numpy(),
            "o-",
            color="#d62728" if name == "plain" else "#1f77b4",
            ms=4,
            lw=1,
            label="gradient descent",
        )
        ax.plot(
            visited[0],
            float(cliff_loss(visited[0], **shape)),
            "o",
            color="black",
            ms=6,
            label="start",
        )
        outside = np.flatnonzero(~(np.isfinite(visited) & (visited >= 1) & (visited <= 8)))
        if len(outside):
            first = int(outside[0])
            where = f"w = {visited[first]:.3g}" if math.isfinite(visited[first]) else "overflow"
            ax.annotate(
                f"step {first}: thrown to\n{where}, off the axis",
                xy=(7.9, 3.0),
                xytext=(5.3, 0.02),
                fontsize=8.5,
                ha="left",
                arrowprops={"arrowstyle": "->", "color": "#d62728"},
            )
        ax.set_yscale("log")
        ax.set_xlim(1, 8)
        ax.set_xlabel("recurrent weight w")
        ax.set_title("no clipping" if name == "plain" else f"gradient clipped to {clip:g}")
        ax.legend(fontsize=8, loc="lower left")
    axes[0, 0].set_ylabel("loss (x$_T$ − 0.7)$^2$")
    return fig, paths
