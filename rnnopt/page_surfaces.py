"""The algorithm chapter's two-variable surfaces over many starts (rnnopt.page draws the single
paths): each optimizer's learning rate tuned over the starts, among the rates at which no start
diverges, and the double well compared at equal *effective* step, lr / (1 − β) for the heavy
ball, so that momentum's larger steps are not mistaken for a better escape.

    tuned_rate(landscape, "sgd", 1000, {}, starts)   # Tuned(lr, median, reached, diverged, ...)
    double_well_rows(page)                           # Table 3's rows
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnopt import protocol
from rnnopt.landscapes import Landscape, end_points, random_starts
from rnnopt.optim import optimizer_class

if TYPE_CHECKING:
    from rnnopt.page import Page

STARTS = 16  # random starts per surface (seed 0), besides the drawn path's start
RATES = tuple(protocol.lr_lattice(k) for k in range(-12, 1))  # 1e-4 to 1, 1/3 decade


@dataclass(frozen=True)
class Tuned:
    """One optimizer at one rate over the starts: median end distance (diverged runs count as
    infinitely far), the share of starts within tol, the share that diverged."""

    lr: float
    median: float
    reached: float
    diverged: float
    tuned: bool  # chosen by the rule, not given
    edge: str | None = None  # "lower" / "upper": the tuned rate is the grid's end, not interior

    def rate_words(self) -> str:
        """The rate as Table 2b shows it: tuned or given, and an edge said where it is one."""
        shown = f"{self.lr:.3g}"
        if not self.tuned:
            return shown
        if self.edge is None:
            return f"{shown} (tuned)"
        return f"{shown} (tuned; the grid's {self.edge} edge, {RATES[0]:g} to {RATES[-1]:g})"


def share_words(share: float, n: int = STARTS) -> str:
    """A share of n starts with its 95 % Wilson interval: '50 % [28, 72]'."""
    low, high = protocol.wilson_interval(round(share * n), n)
    return f"{round(100 * share)} % [{round(100 * low)}, {round(100 * high)}]"


def starts_of(landscape: Landscape, n: int = STARTS) -> np.ndarray:
    """The surface's start and n − 1 random starts in its window."""
    drawn = random_starts(landscape.xlim, landscape.ylim, n - 1, seed=0)
    return np.vstack([np.asarray(landscape.start, dtype=float)[None], drawn])


def _summaries(landscape, spec, steps, hyper, starts, rates, tol) -> list[tuple]:
    _, last = end_points(landscape, spec, steps, starts, rates, **hyper)
    distance = np.linalg.norm(last - np.asarray(landscape.minimum), axis=2)
    distance = np.where(np.isnan(distance), math.inf, distance)
    return [
        (float(np.median(d)), float(np.mean(d < tol)), float(np.mean(np.isinf(d))))
        for d in distance
    ]


def tuned_rate(
    landscape: Landscape, spec: str, steps: int, hyper: dict, starts: Any, tol: float = 0.01
) -> Tuned:
    """The lattice rate (RATES) with the smallest median end distance among those at which no
    start diverges (if every rate diverges somewhere: the fewest diverged starts first)."""
    found = _summaries(landscape, spec, steps, hyper, starts, RATES, tol)
    best = min(range(len(RATES)), key=lambda i: (found[i][2], found[i][0]))
    edge = "lower" if best == 0 else "upper" if best == len(RATES) - 1 else None
    return Tuned(RATES[best], *found[best], tuned=True, edge=edge)


def at_rate(landscape, spec, steps, hyper, starts, lr, tol=0.01) -> Tuned:
    """The same summary at a given rate."""
    return Tuned(lr, *_summaries(landscape, spec, steps, hyper, starts, [lr], tol)[0], tuned=False)


def surface_rate(page: Page, surface: str, key: str) -> float:
    """The rate of one role on one surface: the given one, or the tuned one when it is None;
    the many-starts summary is kept in page.many_starts[surface, role]."""
    options = page.surfaces[surface]
    role = "main" if key == "lr" else "contrast"
    spec, hyper = (
        (page.optimizer, page.hyper) if role == "main" else (page.contrast, page.contrast_hyper)
    )
    landscape, steps = page.landscapes[surface], options["steps"]
    starts = starts_of(landscape)
    if options.get(key) is None:
        found = tuned_rate(landscape, spec, steps, hyper, starts, page.tol_2d)
        options[key] = found.lr
    else:
        found = at_rate(landscape, spec, steps, hyper, starts, options[key], page.tol_2d)
    page.__dict__.setdefault("many_starts", {})[surface, role] = found
    return options[key]


def starts_rows(page: Page) -> list[tuple]:
    """Table 2b: per surface and optimizer, the rate (tuned or given) and its summary over the
    starts; facts <surface>[_contrast]_median, _reached_share, _diverged_share."""
    from rnnopt.page import fmt

    rows = []
    for (surface, role), found in page.many_starts.items():
        name = page.name if role == "main" else page.contrast_name
        tag = surface if role == "main" else f"{surface}_contrast"
        page.facts.update(
            {
                f"{tag}_median": fmt(found.median),
                f"{tag}_reached_share": share_words(found.reached),
                f"{tag}_diverged_share": share_words(found.diverged),
                f"{tag}_rate_rule": "tuned" if found.tuned else "given",
            }
        )
        rows.append(
            (page.landscapes[surface].name, name, found.rate_words(), fmt(found.median),
             share_words(found.reached), share_words(found.diverged))
        )  # fmt: skip
    page.facts["starts"] = STARTS
    return rows


def step_gain(spec: str, hyper: dict) -> float:
    """How much larger than lr the step is under a steady gradient: (1 − dampening)/(1 − β) for
    the heavy ball (SGD with momentum β), 1 for any other update."""
    parameters = inspect.signature(optimizer_class(spec)).parameters
    if "momentum" not in parameters or "betas" in parameters or "alpha" in parameters:
        return 1.0  # Adam-like and RMSprop-like methods normalise their steps
    mu = hyper.get("momentum", parameters["momentum"].default)
    damp = hyper.get("dampening", parameters["dampening"].default if "dampening" in parameters
                     else 0.0)  # fmt: skip
    return (1 - damp) / (1 - mu)


def _ridge(tilt: float) -> float:
    """x of the ridge between the double well's two minima (the middle root of f'(x) = 0)."""
    roots = sorted(r.real for r in np.roots([4.0, 0.0, -4.0, tilt]) if abs(r.imag) < 1e-12)
    return float(roots[1])


def double_well_rows(page: Page) -> list[tuple] | None:
    """Table 3: at each effective rate of well_lr_grid (nominal lr × step gain), the share of
    STARTS starts in the local basin that end within 0.1 of the global minimum, and the share of
    those that crossed the ridge on the very first step (an overshoot, not an escape)."""
    from rnnopt.page import fmt

    well = page.landscapes.get("double_well")
    if well is None:
        return None
    options = page.surfaces["double_well"]
    steps, tilt = options["steps"], options.get("tilt", 0.3)
    ridge = _ridge(tilt)
    starts = np.vstack(
        [
            np.asarray(well.start)[None],
            random_starts((ridge + 0.05, well.xlim[1]), well.ylim, STARTS - 1, 0),
        ]
    )
    shares, cells = {}, {}
    for role, _, spec, hyper, _, _ in page.roles:
        gain = step_gain(spec, hyper)
        nominal = [rate / gain for rate in page.well_lr_grid]
        first, last = end_points(well, spec, steps, starts, nominal, **hyper)
        into = np.linalg.norm(last - np.asarray(well.minimum), axis=2) < 0.1  # NaN: False
        jumped = into & (first[:, :, 0] < ridge)
        shares[role] = into.mean(axis=1)
        cells[role] = [
            f"{fmt(lr)}: {share_words(s, len(starts))}"
            + (f" ({round(100 * j.mean() / s)} % in step 1)" if s else "")
            for lr, s, j in zip(nominal, shares[role], jumped, strict=True)
        ]
        page.facts[f"well_{role}_gain"] = fmt(gain)
        top = int(np.argmax(shares[role]))  # the first-step share at the rate reported
        page.facts[f"well_{role}_first_step"] = (
            f"{round(100 * jumped[top].sum() / into[top].sum())} %" if into[top].any() else "—"
        )
    best = {role: float(shares[role].max()) for role in shares}
    page.facts.update(
        well_global=share_words(best["main"], len(starts)),
        well_contrast_global=share_words(best["contrast"], len(starts)),
        well_steps=steps,
        well_starts=STARTS,
        well_grid=f"{len(page.well_lr_grid)} effective learning rates from "
        f"{fmt(page.well_lr_grid[0])} to {fmt(page.well_lr_grid[-1])}",
        well_more=_more(best["main"], best["contrast"]),
    )
    page.facts["well_first_step"] = page.facts["well_main_first_step"]
    same = (page.contrast, page.contrast_hyper) == (page.optimizer, page.hyper)
    return [
        (fmt(rate), cells["main"][i]) + (() if same else (cells["contrast"][i],))
        for i, rate in enumerate(page.well_lr_grid)
    ]


def _more(a: float, b: float) -> str:
    return "more" if a > b else "fewer" if a < b else "as many"


def horizon_facts(page: Page, horizons: tuple[int, ...] = (300, 1000)) -> dict[str, str]:
    """quadratic_distance_<n>: the main optimizer's distance to the quadratic's minimum after n
    steps at the chapter's rate, from the drawn path's start (does it keep closing in?)."""
    from rnnopt.landscapes import trajectory
    from rnnopt.page import end_distance, fmt

    if "quadratic" not in page.surfaces:
        return {}
    bowl, lr = page.landscapes["quadratic"], page.surfaces["quadratic"]["lr"]
    page.facts["quadratic_horizons"] = " and ".join(str(n) for n in horizons)
    for n in horizons:
        path = trajectory(bowl, page.optimizer, n, lr=lr, **page.hyper)
        page.facts[f"quadratic_distance_{n}"] = fmt(end_distance(path, bowl.minimum, n))
    return page.facts
