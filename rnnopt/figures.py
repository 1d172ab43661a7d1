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
- :func:`rate_study_figure`, :func:`stability_figure`, :func:`noise_figure`: the figures of the
  chapter "Theory checked against measurement", drawn from the studies of :mod:`rnnopt.theory`;
- :func:`nesterov_figure`, :func:`online_figure`: the quadratic and online problems of "Beyond
  the four";
- :func:`show_source`: a function of rnnopt shown as a Python code block.

The figures of RNN training (:func:`effective_steps`, :func:`hidden_grads_during_training`,
:func:`cliff_slice` and their plots) are in :mod:`rnnopt.figures_rnn`.

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

from rnnopt.figures_rnn import _figure
from rnnopt.landscapes import quadratic, rotated_quadratic, trajectory
from rnnopt.theory import NOISE_METHODS, NesterovStudy, NoiseStudy, RateStudy, StabilityStudy

__all__ = [
    "sgd_rates",
    "momentum_memory",
    "momentum_rate_map",
    "heavy_ball_rates",
    "heavy_ball_explorer",
    "bias_correction",
    "adam_first_steps",
    "axis_aligned_vs_rotated",
    "rate_study_figure",
    "stability_figure",
    "noise_figure",
    "nesterov_figure",
    "online_figure",
    "show_source",
]


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


# --- the theory chapter and "Beyond the four": studies on quadratics --------------------------


def rate_study_figure(study: RateStudy):
    """Left: 1 − rate, closed form (line) and measured (dots), against κ; right: measured steps
    to the study's tolerance with the fitted power law, for gradient descent and heavy ball."""
    from rnnopt.plots import color

    fig, axes = _figure(3.6, ncols=2)
    ax_rate, ax_steps = axes[0]
    for key, name, text in (("gd", "sgd", "gradient descent"), ("hb", "momentum", "heavy ball")):
        rows, colour = study.results[key], color(name)
        k = np.array([r["kappa"] for r in rows])
        ax_rate.plot(
            k,
            [1 - r["predicted_rate"] for r in rows],
            "-",
            color=colour,
            label=f"{text}: closed form",
        )
        ax_rate.plot(k, [1 - r["rate"] for r in rows], "o", color=colour, label=f"{text}: measured")
        slope, intercept = study.fit(key)
        ax_steps.plot(k, [r["steps"] for r in rows], "o", color=colour, label=f"{text}: measured")
        ax_steps.plot(
            k,
            np.exp(intercept) * k**slope,
            "--",
            color=colour,
            label=f"{text}: fitted slope {slope:.2f}",
        )
    ax_rate.set(title="per-step progress", ylabel="1 − rate: error removed per step")
    ax_steps.set(title="steps to a tolerance", ylabel=f"steps to shrink it by {study.tolerance:g}")
    for ax in axes[0]:
        ax.set(xscale="log", yscale="log", xlabel="condition number κ")
        ax.legend(fontsize=7.5)
    return fig


def stability_figure(study: StabilityStudy):
    """Measured convergence of heavy ball over (αλ, β) as cells (dark: converged), with the
    closed-form boundary αλ = 2 + 2β, gradient descent's limit αλ = 2 and any disagreement."""
    import matplotlib.pyplot as plt

    fig, axes = _figure(3.8)
    ax, lrs, momenta = axes[0, 0], study.lrs, study.momenta
    half = lambda g: (g[1] - g[0]) / 2  # noqa: E731 - half a grid cell
    extent = [lrs[0] - half(lrs), lrs[-1] + half(lrs)]
    extent += [momenta[0] - half(momenta), momenta[-1] + half(momenta)]
    ax.imshow(
        study.converged.T,
        origin="lower",
        extent=extent,
        aspect="auto",
        cmap="Greens",
        vmin=-0.3,
        vmax=1.3,
        interpolation="nearest",
    )
    betas = np.linspace(0, 1, 50)
    ax.plot(2 + 2 * betas, betas, "k-", linewidth=2, label="closed form: αλ = 2 + 2β")
    ax.axvline(2.0, color="grey", linestyle=":", label="gradient descent's limit αλ = 2")
    if not study.agree.all():
        bad = np.argwhere(~study.agree)
        ax.plot(lrs[bad[:, 0]], momenta[bad[:, 1]], "rx", label="measurement disagrees")
    greens = plt.get_cmap("Greens")
    ax.plot([], [], "s", color=greens(0.8), label=f"converged in {study.steps} steps")
    ax.plot([], [], "s", color=greens(0.2), label="did not converge")
    ax.set(
        xlabel="step size × curvature  αλ",
        ylabel="momentum β",
        xlim=extent[:2],
        ylim=extent[2:],
        title="heavy-ball stability, measured on a 1-D quadratic",
    )
    ax.legend(loc="lower right", frameon=True, fontsize=8)
    return fig


def noise_figure(study: NoiseStudy):
    """The error against the step for each method and noise level σ: RMS over the seeds (line),
    min–max over the seeds (band), and each closed-form noise floor (thin horizontal line)."""
    from rnnopt.plots import color

    fig, axes = _figure(3.8)
    ax, styles = axes[0, 0], ["-", "--", ":", "-."]
    for index, sigma in enumerate(study.noise_levels):
        for name in study.settings:
            curve, (low, high) = study.curves[sigma, name], study.bands[sigma, name]
            steps = np.arange(len(curve))
            ax.plot(
                steps,
                curve,
                styles[index % len(styles)],
                color=color(name),
                label=f"{NOISE_METHODS[name]}, σ = {sigma:g}",
            )
            ax.fill_between(steps, low, high, color=color(name), alpha=0.25, linewidth=0)
            if (floor := study.predicted(sigma, name)) > 0:
                ax.axhline(floor, color=color(name), linewidth=0.8, alpha=0.6)
    positive = [study.predicted(s, n) for s in study.noise_levels if s > 0 for n in study.settings]
    bottom = 0.01 * min(positive) if positive else 1e-12
    ax.set(
        yscale="log",
        xlabel="step",
        ylabel="error ‖w − w*‖ (RMS over seeds)",
        ylim=(bottom, 10),
        title=f"noisy gradients, κ = {study.eigenvalues[-1]:g}",
    )
    ax.legend(ncol=2, loc="lower left", frameon=True, fontsize=7.5)
    return fig


def nesterov_figure(study: NesterovStudy):
    """Closed-form (lines) and measured (dots) rates of classical and Nesterov momentum over
    the step size αλ_max, with the line rate = 1 above which a method diverges."""
    from rnnopt.plots import color

    fig, axes = _figure(3.6)
    ax, x = axes[0, 0], study.lrs * study.kappa
    for nesterov, colour, name in (
        (False, color("momentum"), "classical (heavy ball)"),
        (True, color("adamw"), "Nesterov"),
    ):
        predicted, measured = study.rates[nesterov]
        ax.plot(x, predicted, "-", color=colour, label=f"{name}: closed form")
        shown = np.where(np.isfinite(measured), measured, np.nan)
        ax.plot(x, shown, "o", color=colour, markersize=4, label=f"{name}: measured")
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--", label="rate 1: no progress")
    title = f"classical vs Nesterov momentum, κ = {study.kappa:g}, β = {study.momentum:g}"
    ax.set(
        xlabel="α λ_max (step size × largest curvature)",
        title=title,
        ylabel="per-step contraction of the error",
        ylim=(0.8, 1.3),
    )
    ax.legend(fontsize=8)
    return fig


def online_figure(paths: Mapping[bool, np.ndarray], lr: float, betas: Sequence[float]):
    """x_t of Adam (``paths[False]``) and AMSGrad (``paths[True]``) on Reddi et al.'s problem
    (:func:`rnnopt.theory.reddi_gradients`, periods of 101 steps): every step, thin, and the
    mean over each period, thick; the best point x = −1 dashed."""
    from rnnopt.plots import color

    fig, axes = _figure(3.4)
    ax = axes[0, 0]
    for amsgrad, colour, name in (
        (False, color("adam"), "Adam"),
        (True, color("adamw"), "AMSGrad"),
    ):
        path = paths[amsgrad]
        periods = np.arange((len(path) - 1) // 101) + 0.5
        ax.plot(np.arange(len(path)) / 101, path, "-", color=colour, linewidth=0.5, alpha=0.5)
        ax.plot(
            periods,
            path[1:].reshape(-1, 101).mean(axis=1),
            "-",
            color=colour,
            linewidth=2,
            label=f"{name} (thick: mean over each period)",
        )
    ax.axhline(-1, color="black", linestyle="--", linewidth=1, label="best point x = −1")
    title = f"Reddi et al.'s problem, lr {lr:g}, β = ({betas[0]:g}, {betas[1]:g})"
    ax.set(xlabel="period (101 steps)", ylabel="x", ylim=(-1.1, 1.1), title=title)
    ax.legend(loc="center right", frameon=True, fontsize=8)
    return fig


def show_source(function: Any) -> None:
    """Display a function of rnnopt as a Python code block (its source as installed)."""
    import inspect
    import textwrap

    from IPython.display import Markdown, display

    display(Markdown(f"```python\n{textwrap.dedent(inspect.getsource(function))}```"))
