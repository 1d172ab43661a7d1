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

The measurements run rnnopt's own optimizers (the code the book explains) on the problems of
:mod:`rnnopt.landscapes` (``quadratic_errors``, ``stability_grid``, ``step_sizes``, ...; they are
importable from here too), so a chapter can put the prediction beside the measurement. The
``*_study`` functions at the end are the experiments of the chapter "Theory checked against
measurement" (and, ``nesterov_study``, of "Beyond the four"): each returns what the page
tabulates, draws (:mod:`rnnopt.figures`) and concludes from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from rnnopt.checks import SEED_MAX, check_int, check_list, check_number, check_seeds, invalid
from rnnopt.landscapes import (
    check_curvatures,
    decay_factors,
    online_projected,
    quadratic_errors,
    reddi_gradients,
    stability_grid,
    step_sizes,
)

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
    "sgd_decay_factors",
    "percent",
    "check_values",
    "check_betas",
    "PARAMETERS",
    "check_parameters",
    "RateStudy",
    "rate_study",
    "StabilityStudy",
    "stability_study",
    "NOISE_METHODS",
    "NoiseStudy",
    "noise_study",
    "MatchedNoise",
    "matched_noise_study",
    "StepSizeStudy",
    "step_size_study",
    "NesterovStudy",
    "nesterov_study",
]


@dataclass(frozen=True)
class Setting:
    """A step size, a momentum coefficient and the per-step contraction they give."""

    lr: float
    momentum: float
    rate: float


def condition_number(eigenvalues: Sequence[float]) -> float:
    """κ = λ_max / λ_min."""
    values = check_curvatures(eigenvalues)
    return float(values.max() / values.min())


def gradient_descent_optimum(eigenvalues: Sequence[float]) -> Setting:
    """The fastest constant step of gradient descent, and its rate (κ−1)/(κ+1)."""
    values = check_curvatures(eigenvalues)
    low, high = values.min(), values.max()
    kappa = high / low
    # alpha* = 2 / (lambda_min + lambda_max): |1 - alpha lambda| is equal at both ends
    return Setting(lr=float(2 / (low + high)), momentum=0.0, rate=float((kappa - 1) / (kappa + 1)))


def heavy_ball_optimum(eigenvalues: Sequence[float]) -> Setting:
    """Polyak's optimal heavy-ball step and momentum, and their rate (√κ−1)/(√κ+1)."""
    values = check_curvatures(eigenvalues)
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
    for curvature in check_curvatures(eigenvalues):
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
    for curvature in check_curvatures(eigenvalues):
        if not is_stable(lr, momentum, curvature):
            return math.inf
        phi1, phi2 = 1 + momentum - lr * curvature, -momentum
        total += (1 - phi2) * (lr * noise) ** 2 / ((1 + phi2) * ((1 - phi2) ** 2 - phi1**2))
    return math.sqrt(total)


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


def adam_step_bound(lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> float:
    """Kingma & Ba's bound on one Adam step (Section 2.1, ε = 0):
    |Δ| ≤ lr (1 − β1)/√(1 − β2) when (1 − β1) > √(1 − β2), reached only by a gradient that was
    zero for a long time; otherwise |Δ| ≤ lr."""
    beta1, beta2 = betas
    if 1 - beta1 > math.sqrt(1 - beta2):
        return lr * (1 - beta1) / math.sqrt(1 - beta2)
    return lr


def sgd_decay_factors(
    momentum: float,
    *,
    steps: int,
    lr: float,
    weight_decay: float,
    noise: float = 0.0,
    size: int = 64,
    seed: int = 0,
) -> dict[str, float]:
    """Weight decay on rnnopt's SGD (heavy ball when ``momentum`` > 0) in its two forms, on
    ``size`` weights from 1 whose gradients are pure noise of standard deviation ``noise``
    (default 0: only the decay acts; the same draws for both forms):
    L2 (``weight_decay``: λw joins the gradient, and so the momentum buffer) and decoupled
    (w ← (1 − lr·λ) w before a step without decay, as AdamW does). Returns each form's mean |w|
    after ``steps`` steps divided by the same run without decay (``"l2"``, ``"decoupled"``), and
    the largest |w_L2 − w_decoupled| at the end relative to mean |w_decoupled| (``"gap"``).
    Without momentum the two updates are the same, w − lr (g + λw) = (1 − lr λ) w − lr g;
    with it the L2 term is accumulated by the buffer and decays by about λ/(1 − β) per unit lr."""
    import torch

    from rnnopt.optim import make_optimizer

    finals = {}
    for form, decay in (("l2", weight_decay), ("decoupled", 0.0), ("none", 0.0)):
        rng = np.random.default_rng(seed)
        w = torch.ones(size, dtype=torch.float64, requires_grad=True)
        opt = make_optimizer("sgd", [w], lr=lr, momentum=momentum, weight_decay=decay)
        for _ in range(steps):
            w.grad = torch.from_numpy(noise * rng.standard_normal(size))
            if form == "decoupled":
                with torch.no_grad():
                    w.mul_(1 - lr * weight_decay)
            opt.step()
        finals[form] = w.detach().numpy().copy()
    plain = np.abs(finals["none"]).mean()
    gap = np.abs(finals["l2"] - finals["decoupled"]).max() / np.abs(finals["decoupled"]).mean()
    return {
        "l2": float(np.abs(finals["l2"]).mean() / plain),
        "decoupled": float(np.abs(finals["decoupled"]).mean() / plain),
        "gap": float(gap),
    }


# --- the studies of the chapters "Theory checked against measurement" and "Beyond the four" ---


def percent(x: float) -> str:
    """A relative difference as a percentage, rounded to what is stable between machines."""
    return "< 0.01 %" if x < 1e-4 else f"{100 * x:.3g} %"


def _markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    from rnnopt.plots import markdown_table  # plots needs matplotlib; theory itself does not

    return markdown_table(headers, rows)


def check_values(rules: Mapping[str, Callable[[str, Any], Any]], values: Mapping[str, Any]) -> None:
    """Pass each value through its rule, ``rules[name](name, value)`` (a check of
    :mod:`rnnopt.checks`), in the order of ``rules``; TypeError for a missing or unknown name."""
    missing, unknown = sorted(set(rules) - set(values)), sorted(set(values) - set(rules))
    if missing or unknown:
        raise TypeError(f"parameters missing: {missing}; unknown: {unknown}")
    for name, rule in rules.items():
        rule(name, values[name])


def check_betas(name: str, value: Any) -> tuple[float, float]:
    """Adam's (β1, β2): a list of two numbers in [0, 1)."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(invalid(name, value, "a list [beta1, beta2]"))
    unit = partial(check_number, low=0, high=1, high_open=True)
    return tuple(check_list(name, value, unit, min_length=2))


def _check_decades(name: str, value: Any) -> list[int]:
    decades = check_list(name, value, partial(check_int, minimum=-300, maximum=300), distinct=True)
    if 0 not in decades:
        raise ValueError(invalid(name, value, "a list of distinct integers that includes 0"))
    return decades


_ABOVE_ONE = partial(check_number, low=1, low_open=True)
PARAMETERS = {  # the rule of each parameter of the theory chapter
    "threads": partial(check_int, minimum=1),
    "kappas": partial(check_list, item=_ABOVE_ONE, min_length=3, increasing=True),
    "tolerance": partial(check_number, low=0, high=1, low_open=True, high_open=True),
    "rate_tolerance": partial(check_number, low=1e-250, high=1),  # and <= tolerance
    "stability_lrs": partial(check_int, minimum=2),
    "stability_momenta": partial(check_int, minimum=2),
    "stability_steps": partial(check_int, minimum=2),
    "noise_kappa": _ABOVE_ONE,
    "noise_levels": partial(check_list, item=partial(check_number, low=0)),
    "noise_steps": partial(check_int, minimum=20),
    "noise_seeds": check_seeds,
    "scale_decades": _check_decades,
    "scale_steps": partial(check_int, minimum=2),
    "spike_zeros": partial(check_int, minimum=1),
    "rmsprop_alpha": partial(check_number, low=0, high=1, high_open=True),
    "adam_betas": check_betas,
    "seed": partial(check_int, minimum=0, maximum=SEED_MAX),
}


def check_parameters(**values: Any) -> None:
    """The parameters of the theory chapter, by the rules of :data:`PARAMETERS`: ValueError
    naming the first bad one, its value and what is valid (the format of :mod:`rnnopt.checks`)."""
    check_values(PARAMETERS, values)
    check_number("rate_tolerance", values["rate_tolerance"], low=1e-250, high=values["tolerance"])


@dataclass(frozen=True)
class RateStudy:
    """Gradient descent ("gd") and heavy ball ("hb") at their optimal settings on [1, κ] for
    each κ: closed-form and measured rates and steps to ``tolerance``, one record per κ."""

    kappas: list[float]
    tolerance: float
    results: dict[str, list[dict[str, float]]]

    def fit(self, key: str) -> tuple[float, float]:
        """(slope, intercept) of log(measured steps) against log κ."""
        k = np.log([r["kappa"] for r in self.results[key]])
        steps = np.log([r["steps"] for r in self.results[key]])
        slope, intercept = np.polyfit(k, steps, 1)
        return float(slope), float(intercept)

    @property
    def slopes(self) -> dict[str, float]:
        return {key: self.fit(key)[0] for key in self.results}

    @property
    def rate_gap(self) -> dict[str, float]:
        """Largest |measured / closed-form rate − 1| of each method."""
        return {
            key: max(abs(r["rate"] / r["predicted_rate"] - 1) for r in rows)
            for key, rows in self.results.items()
        }

    @property
    def step_ratio(self) -> dict[str, list[float]]:
        return {k: [r["steps"] / r["predicted_steps"] for r in v] for k, v in self.results.items()}

    def table(self) -> str:
        rows = [
            [f"{gd['kappa']:g}", f"{gd['predicted_rate']:.4f}", f"{gd['rate']:.4f}"]
            + [f"{hb['predicted_rate']:.4f}", f"{hb['rate']:.4f}", f"{gd['predicted_steps']:.0f}"]
            + [gd["steps"], f"{hb['predicted_steps']:.0f}", hb["steps"]]
            for gd, hb in zip(self.results["gd"], self.results["hb"], strict=True)
        ]
        headers = ["κ", "GD rate: theory", "measured", "momentum rate: theory", "measured"]
        headers += ["GD steps: theory", "measured", "momentum steps: theory", "measured"]
        return _markdown(headers, rows)


def rate_study(kappas: Sequence[float], tolerance: float, rate_tolerance: float) -> RateStudy:
    """Run rnnopt's SGD and Momentum at their closed-form optima from w_0 = (1, 1) until the
    predicted error is ``rate_tolerance``; fit the rate over the second half of each run and
    count the steps until ‖w_t‖ ≤ ``tolerance`` ‖w_0‖."""
    results: dict[str, list[dict[str, float]]] = {"gd": [], "hb": []}
    for kappa in kappas:
        eigenvalues = [1.0, kappa]
        for key, best, name in (
            ("gd", gradient_descent_optimum(eigenvalues), "sgd"),
            ("hb", heavy_ball_optimum(eigenvalues), "momentum"),
        ):
            steps = math.ceil(predicted_steps(best.rate, rate_tolerance))
            errors = quadratic_errors(
                eigenvalues, steps, optimizer=name, lr=best.lr, momentum=best.momentum
            )
            results[key].append(
                {
                    "kappa": kappa,
                    "predicted_rate": best.rate,
                    "rate": measured_rate(errors),
                    "predicted_steps": predicted_steps(best.rate, tolerance),
                    "steps": steps_to_tolerance(errors, tolerance),
                }
            )
    return RateStudy(list(kappas), tolerance, results)


@dataclass(frozen=True)
class StabilityStudy:
    """Measured (:func:`stability_grid`) and closed-form (:func:`is_stable`) convergence of
    heavy ball on f(w) = ½w² over a grid of (αλ, β)."""

    lrs: np.ndarray
    momenta: np.ndarray
    steps: int
    converged: np.ndarray
    predicted: np.ndarray

    @property
    def agree(self) -> np.ndarray:
        return self.converged == self.predicted

    @property
    def worst_distance(self) -> float:
        """The largest distance in αλ from the line αλ = 2 + 2β of a disagreeing point."""
        distance = np.abs(self.lrs[:, None] - (2 + 2 * self.momenta[None, :]))
        return float(distance[~self.agree].max()) if not self.agree.all() else 0.0


def stability_study(lrs: int, momenta: int, steps: int) -> StabilityStudy:
    """``lrs`` values of αλ in [0.1, 4.4] by ``momenta`` values of β in [0, 0.98], λ = 1."""
    lr_grid = np.linspace(0.1, 4.4, lrs)
    momentum_grid = np.linspace(0.0, 0.98, momenta)
    converged = stability_grid(lr_grid, momentum_grid, curvature=1.0, steps=steps)
    predicted = np.array([[is_stable(a, b, 1.0) for b in momentum_grid] for a in lr_grid])
    return StabilityStudy(lr_grid, momentum_grid, steps, converged, predicted)


NOISE_METHODS = {"sgd": "gradient descent", "momentum": "heavy ball"}


@dataclass(frozen=True)
class NoiseStudy:
    """Gradient descent and heavy ball at their optima on [1, κ] with Gaussian gradient noise:
    per (σ, method) the RMS error over seeds at each step (``curves``), the min and max over
    seeds (``bands``), the RMS error over the second half of the runs (``floors``), and the
    same RMS error of each seed's run alone (``seed_floors``, in the order of the seeds)."""

    eigenvalues: list[float]
    settings: dict[str, Setting]
    noise_levels: list[float]
    curves: dict[tuple[float, str], np.ndarray]
    bands: dict[tuple[float, str], tuple[np.ndarray, np.ndarray]]
    floors: dict[tuple[float, str], float]
    seed_floors: dict[tuple[float, str], np.ndarray] = field(default_factory=dict)
    steps: int = 0

    def predicted(self, sigma: float, name: str) -> float:
        best = self.settings[name]
        return noise_floor(best.lr, best.momentum, self.eigenvalues, sigma)

    def steps_to_floor(self, sigma: float, name: str) -> int:
        """Steps until the RMS error first comes within twice the method's measured floor."""
        return int(np.argmax(self.curves[sigma, name] <= 2 * self.floors[sigma, name]))

    @property
    def worst_gap(self) -> float:
        """Largest |measured / closed-form floor − 1| over the noise levels above 0."""
        return max(
            abs(self.floors[s, n] / self.predicted(s, n) - 1)
            for s in self.noise_levels
            if s > 0
            for n in self.settings
        )

    def table(self) -> str:
        rows = []
        for sigma in self.noise_levels:
            for name, best in self.settings.items():
                predicted, measured = self.predicted(sigma, name), self.floors[sigma, name]
                agreement = "—" if predicted == 0 else percent(abs(measured / predicted - 1))
                rows.append(
                    [f"{sigma:g}", NOISE_METHODS[name], f"{best.lr:.3g}", f"{best.momentum:.3g}"]
                    + [f"{predicted:.3g}", f"{measured:.3g}", agreement]
                )
        headers = ["σ", "method", "α", "β", "noise floor: theory"]
        return _markdown(headers + ["measured RMS error (2nd half)", "difference"], rows)


def noise_study(
    kappa: float, noise_levels: Sequence[float], steps: int, seeds: Sequence[int]
) -> NoiseStudy:
    """One run per seed of each method at each noise level σ, ``steps`` steps each."""
    eigenvalues = [1.0, kappa]
    settings = {
        "sgd": gradient_descent_optimum(eigenvalues),
        "momentum": heavy_ball_optimum(eigenvalues),
    }
    curves, bands, floors, seed_floors = {}, {}, {}, {}
    for sigma in noise_levels:
        for name, best in settings.items():
            hyper = {"optimizer": name, "lr": best.lr, "momentum": best.momentum, "noise": sigma}
            runs = np.array([quadratic_errors(eigenvalues, steps, **hyper, seed=s) for s in seeds])
            curves[sigma, name] = np.sqrt(np.mean(runs**2, axis=0))  # RMS over seeds
            bands[sigma, name] = (runs.min(axis=0), runs.max(axis=0))
            floors[sigma, name] = float(np.sqrt(np.mean(runs[:, steps // 2 :] ** 2)))
            seed_floors[sigma, name] = np.sqrt(np.mean(runs[:, steps // 2 :] ** 2, axis=1))
    return NoiseStudy(
        eigenvalues, settings, list(noise_levels), curves, bands, floors, seed_floors, steps
    )


@dataclass(frozen=True)
class MatchedNoise:
    """Heavy ball at gradient descent's *effective* learning rate: the β of heavy ball's optimum
    with α = α_GD (1 − β), so that α/(1 − β) equals gradient descent's optimal α. Per noise
    level σ > 0 and method (``"sgd"``: gradient descent at its optimum, from the NoiseStudy;
    ``"matched"``: this heavy ball), the closed-form floor (``predicted``) and the RMS error
    over the second half of the runs (``measured``); ``seed_measured``: that RMS error of each
    seed's run alone, in the order of the seeds (the same seeds, so the same noise, for both)."""

    setting: Setting
    effective_lr: float
    noise_levels: list[float]
    predicted: dict[tuple[float, str], float]
    measured: dict[tuple[float, str], float]
    seed_measured: dict[tuple[float, str], np.ndarray] = field(default_factory=dict)

    def ratio(self, sigma: float, which: str = "measured") -> float:
        """Matched heavy ball's floor over gradient descent's (measured or predicted)."""
        floors = self.measured if which == "measured" else self.predicted
        return floors[sigma, "matched"] / floors[sigma, "sgd"]

    def seed_ratios(self, sigma: float) -> np.ndarray:
        """The measured floor ratio of each seed alone (heavy ball / gradient descent, the two
        runs of one seed seeing the same noise); empty when the per-seed floors are unknown."""
        if (sigma, "matched") not in self.seed_measured or (sigma, "sgd") not in self.seed_measured:
            return np.array([])
        return self.seed_measured[sigma, "matched"] / self.seed_measured[sigma, "sgd"]

    def table(self) -> str:
        rows = []
        for sigma in self.noise_levels:
            for name, (lr, beta) in (
                ("sgd", (self.effective_lr, 0.0)),
                ("matched", (self.setting.lr, self.setting.momentum)),
            ):
                rows.append(
                    [f"{sigma:g}", NOISE_METHODS.get(name, "heavy ball"), f"{lr:.3g}"]
                    + [f"{beta:.3g}", f"{lr / (1 - beta):.3g}"]
                    + [f"{self.predicted[sigma, name]:.3g}", f"{self.measured[sigma, name]:.3g}"]
                )
        headers = ["σ", "method", "α", "β", "α/(1−β)", "noise floor: theory"]
        return _markdown(headers + ["measured RMS error (2nd half)"], rows)


def matched_noise_study(study: NoiseStudy, steps: int, seeds: Sequence[int]) -> MatchedNoise:
    """:class:`MatchedNoise` for the noise levels σ > 0 of ``study``: heavy ball at
    gradient descent's effective rate, one run per seed of ``steps`` steps at each σ (the same
    seeds, steps and eigenvalues as ``study``)."""
    gd, hb = study.settings["sgd"], study.settings["momentum"]
    lr = gd.lr * (1 - hb.momentum)
    setting = Setting(lr, hb.momentum, momentum_rate(lr, hb.momentum, study.eigenvalues))
    noisy = [s for s in study.noise_levels if s > 0]
    predicted, measured, seed_measured = {}, {}, {}
    for sigma in noisy:
        hyper = {"optimizer": "momentum", "lr": lr, "momentum": hb.momentum, "noise": sigma}
        runs = np.array(
            [quadratic_errors(study.eigenvalues, steps, **hyper, seed=s) for s in seeds]
        )
        measured[sigma, "matched"] = float(np.sqrt(np.mean(runs[:, steps // 2 :] ** 2)))
        measured[sigma, "sgd"] = study.floors[sigma, "sgd"]
        seed_measured[sigma, "matched"] = np.sqrt(np.mean(runs[:, steps // 2 :] ** 2, axis=1))
        if (sigma, "sgd") in study.seed_floors:
            seed_measured[sigma, "sgd"] = study.seed_floors[sigma, "sgd"]
        predicted[sigma, "matched"] = noise_floor(lr, hb.momentum, study.eigenvalues, sigma)
        predicted[sigma, "sgd"] = study.predicted(sigma, "sgd")
    return MatchedNoise(setting, gd.lr, noisy, predicted, measured, seed_measured)


@dataclass(frozen=True)
class StepSizeStudy:
    """First and largest steps of SGD, RMSprop and Adam, all at learning rate ``lr``, on one
    gradient sequence multiplied by 10**k for each decade k; steps are given in units of lr."""

    lr: float
    alpha: float
    rows: list[dict[str, float]]

    @property
    def rmsprop_exact(self) -> list[int]:
        """Decades at which RMSprop's first step is lr/√(1 − α) within 1 %."""
        first = 1 / math.sqrt(1 - self.alpha)
        return [r["k"] for r in self.rows if abs(r["rmsprop_first"] / first - 1) < 0.01]

    @property
    def adam_invariant(self) -> list[int]:
        """Decades at which every Adam step is within 1 % of its value at scale 1."""
        return [r["k"] for r in self.rows if r["adam_change"] < 0.01]

    @property
    def adam_largest(self) -> float:
        return max(r["adam_largest"] for r in self.rows)

    def table(self) -> str:
        rows = [
            [f"1e{r['k']:+d}", f"{r['sgd_first']:.3g}", f"{r['rmsprop_first']:.3g}"]
            + [f"{r['adam_first']:.3g}", f"{r['adam_largest']:.3g}", f"{r['adam_change']:.1e}"]
            for r in self.rows
        ]
        headers = ["gradient scale", "SGD first step / lr", "RMSprop first step / lr"]
        headers += ["Adam first step / lr", "Adam largest step / lr"]
        return _markdown(headers + ["Adam: largest change vs scale 1"], rows)


def step_size_study(
    gradients: Sequence[float],
    decades: Sequence[int],
    *,
    lr: float = 1e-3,
    alpha: float = 0.99,
    betas: tuple[float, float] = (0.9, 0.999),
) -> StepSizeStudy:
    """Feed each optimizer ``gradients`` · 10**k for each k in ``decades`` (sorted)."""
    base = np.asarray(gradients, dtype=float)
    reference = step_sizes("adam", base, lr=lr, betas=betas)  # scale 1
    rows = []
    for k in sorted(decades):
        grads = 10.0**k * base
        adam = step_sizes("adam", grads, lr=lr, betas=betas)
        rows.append(
            {
                "k": k,
                "sgd_first": step_sizes("sgd", grads[:1], lr=lr)[0] / lr,
                "rmsprop_first": step_sizes("rmsprop", grads[:1], lr=lr, alpha=alpha)[0] / lr,
                "adam_first": adam[0] / lr,
                "adam_largest": adam.max() / lr,
                "adam_change": float(np.max(np.abs(adam / reference - 1))),
            }
        )
    return StepSizeStudy(lr, alpha, rows)


@dataclass(frozen=True)
class NesterovStudy:
    """Closed-form and measured rates of classical (False) and Nesterov (True) momentum on
    [1, κ] over step sizes ``lrs``: ``rates[nesterov] = (predicted, measured)``."""

    kappa: float
    momentum: float
    lrs: np.ndarray
    rates: dict[bool, tuple[np.ndarray, np.ndarray]]

    @property
    def stable_gap(self) -> float:
        """Largest |measured / closed-form − 1| where the closed form is below 0.99."""
        pairs = [(p, m) for n in self.rates for p, m in zip(*self.rates[n], strict=True)]
        return max(abs(m / p - 1) for p, m in pairs if p < 0.99)

    @property
    def best(self) -> dict[bool, int]:
        """Index of the closed form's best step on the grid."""
        return {n: int(np.argmin(self.rates[n][0])) for n in self.rates}

    @property
    def edge(self) -> dict[bool, float]:
        """Largest αλ_max of the grid at which the measured rate is below 1."""
        return {n: float(self.lrs[self.rates[n][1] < 1].max() * self.kappa) for n in self.rates}


def nesterov_study(kappa: float, momentum: float, points: int, steps: int) -> NesterovStudy:
    """``points`` step sizes with αλ_max from 0.02 to 1 times heavy ball's limit 2 + 2β."""
    eigenvalues = [1.0, kappa]
    lrs = np.linspace(0.02, 1.0, points) * (2 + 2 * momentum) / kappa
    rates = {}
    for nesterov in (False, True):
        predicted, measured = [], []
        for lr in lrs:
            predicted.append(momentum_rate(lr, momentum, eigenvalues, nesterov=nesterov))
            hyper = {"lr": lr, "momentum": momentum, "nesterov": nesterov}
            errors = quadratic_errors(eigenvalues, steps, optimizer="momentum", **hyper)
            measured.append(measured_rate(errors) if np.isfinite(errors[-1]) else math.inf)
        rates[nesterov] = (np.array(predicted), np.array(measured))
    return NesterovStudy(kappa, momentum, lrs, rates)
