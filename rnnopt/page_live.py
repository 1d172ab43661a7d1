"""The algorithm page's live experiments: an Elman network trained with the optimizer and its
contrast on a few seeds of small tasks, and a learning-rate sweep, run while the page executes
(rnnopt.page holds the rest of the page; the stored tier's results are rnnopt.page_tier's).

A page with no `tasks` (a reader's report) skips them: its training and sensitivity sections come
from the stored tier only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnopt import checks
from rnnopt.page import closer_words, fmt
from rnnopt.store import load_history
from rnnopt.sweep import run_sweep
from rnnopt.tasks import TASKS, make_task

if TYPE_CHECKING:
    from rnnopt.page import Page
    from rnnopt.train import History


def _positive(name: str, value: Any) -> float:
    return checks.check_number(name, value, low=0, low_open=True)


def _rates(name: str, value: Any, keys: Any) -> None:
    if not isinstance(value, dict) or set(value) != set(keys):
        raise ValueError(
            checks.invalid(name, value, f"a dict with a learning rate for each of {sorted(keys)}")
        )
    for key, rate in value.items():
        _positive(f"{name}[{key!r}]", rate)


def check(page: Page) -> None:
    """The live experiments' parameters (every one named in its message)."""
    if not isinstance(page.tasks, dict) or not all(
        isinstance(o, dict) for o in page.tasks.values()
    ):
        raise ValueError(checks.invalid("tasks", page.tasks, "a dict of task -> options", TASKS))
    page.task_objects = {name: make_task(name, **o) for name, o in page.tasks.items()}
    for name in ("hidden_size", "steps", "batch_size", "eval_every", "workers", "threads"):
        checks.check_int(name, getattr(page, name), 1)
    checks.check_number(
        "clip_grad_norm", page.clip_grad_norm, low=0, low_open=True, allow_none=True
    )
    checks.check_number("final_fraction", page.final_fraction, low=0, high=1, low_open=True)
    checks.check_seeds("seeds", page.seeds)
    checks.check_seeds("lr_seeds", page.lr_seeds)
    checks.check_list("lr_grid", page.lr_grid, _positive, increasing=True)
    checks.check_choice("sweep_contrast", page.sweep_contrast, (True, False))
    checks.check_number("baseline_margin", page.baseline_margin, low=0, high=1, high_open=True)
    if not page.tasks:
        return
    _rates("lr", page.lr, page.tasks)
    if page.contrast_lr:
        _rates("contrast_lr", page.contrast_lr, page.tasks)
    checks.check_choice("lr_task", page.lr_task, list(page.tasks))


def sweep(page: Page, task: str, spec: str, hyper: dict, grid: dict) -> tuple[list, list]:
    """Run one grid of runs in its own folder; return its rows and each run's History."""
    config = {
        "task": {"name": task, **page.tasks[task]},
        "model": {"hidden_size": page.hidden_size, "core": "elman"},
        "optimizer": {"name": spec, **hyper},
        "train": {
            "steps": page.steps,
            "batch_size": page.batch_size,
            "clip_grad_norm": page.clip_grad_norm,
            "eval_every": page.eval_every,
        },
        "grid": grid,
    }
    out = Path(page.workdir.name) / f"{task}-{len(list(Path(page.workdir.name).iterdir()))}"
    rows = run_sweep(config, out, workers=page.workers, progress=False)
    return rows, [load_history(out, row["run_id"]) for row in rows]


def final_value(page: Page, history: History, key: str = "eval_loss") -> float:
    """Mean held-out loss (or metric) over the last `final_fraction` of the steps (NaN if the
    run diverged)."""
    if history.diverged:
        return math.nan
    cut = (1 - page.final_fraction) * page.steps
    values = getattr(history, key)
    tail = [
        v for step, v in zip(history.eval_step, values, strict=True) if step > 0 and step >= cut
    ]
    if tail:
        return float(np.mean(tail))
    return history.final_loss if key == "eval_loss" else history.final_metric


def lower_on_every_seed(losses: Any, others: Any) -> bool | None:
    """Seed by seed: True if lower on every seed, False if higher on every seed, None if the
    seeds disagree. A diverged run counts as +infinity."""
    a = np.nan_to_num(np.asarray(losses, dtype=float), nan=math.inf)
    b = np.nan_to_num(np.asarray(others, dtype=float), nan=math.inf)
    return True if np.all(a < b) else False if np.all(a > b) else None


def training(page: Page) -> dict[tuple[str, str], list[History]]:
    """(task, role) -> one History per seed at the page's rate for that task."""
    page.curves = {}
    for task in page.tasks:
        page.curves[task, "main"] = sweep(
            page, task, page.optimizer, page.hyper, {"lr": [page.lr[task]], "seed": page.seeds}
        )[1]
        if page.contrast_lr:
            grid = {"lr": [page.contrast_lr[task]], "seed": page.seeds}
            page.curves[task, "contrast"] = sweep(
                page, task, page.contrast, page.contrast_hyper, grid
            )[1]
    return page.curves


def training_table(page: Page) -> list[tuple]:
    """Table 4: final held-out loss per task and optimizer, over the seeds."""
    rows = []
    for task, task_obj in page.task_objects.items():
        baseline = task_obj.baseline()["loss"]
        page.facts[f"{task}_baseline"] = fmt(baseline)
        losses = {}
        for role, label, _, _, _, _ in page.roles:
            if (task, role) not in page.curves:
                continue
            rates = page.lr if role == "main" else page.contrast_lr
            histories = page.curves[task, role]
            losses[role] = [final_value(page, h) for h in histories]
            metric = np.mean([final_value(page, h, "eval_metric") for h in histories])
            tag = task if role == "main" else f"{task}_contrast"
            page.facts.update(
                {
                    f"{tag}_initial": fmt(np.mean([h.eval_loss[0] for h in histories])),
                    f"{tag}_lr": fmt(rates[task]),
                    f"{tag}_final": fmt(np.mean(losses[role])),
                    f"{tag}_final_min": fmt(np.min(losses[role])),
                    f"{tag}_final_max": fmt(np.max(losses[role])),
                    f"{tag}_metric": fmt(metric),
                }
            )
            below = [loss < (1 - page.baseline_margin) * baseline for loss in losses[role]]
            page.findings[f"{tag}_beats_baseline"] = (
                True if all(below) else False if not any(below) else None
            )
            rows.append(
                (task, label, fmt(rates[task]), fmt(np.mean(losses[role])),
                 f"{fmt(np.min(losses[role]))} – {fmt(np.max(losses[role]))}",
                 f"{fmt(metric)} ({task_obj.metric_name})", fmt(baseline))
            )  # fmt: skip
        if "contrast" in losses:
            page.findings[f"{task}_beats_contrast"] = lower_on_every_seed(
                losses["main"], losses["contrast"]
            )
    page.facts.update(
        steps=page.steps,
        seeds=len(page.seeds),
        final_fraction=f"{round(100 * page.final_fraction)} %",
        baseline_margin=f"{round(100 * page.baseline_margin)} %",
    )
    return rows


# --- Learning-rate sensitivity ----------------------------------------------------------------


def summarise(page: Page, rows: list, histories: list) -> tuple[np.ndarray, np.ndarray]:
    """Per learning rate: mean final loss over the seeds, and whether any seed failed (diverged,
    or ended above the untrained network's loss)."""
    mean, failed = [], []
    for rate in page.lr_grid:
        runs = [h for row, h in zip(rows, histories, strict=True) if row["lr"] == rate]
        losses = [final_value(page, h) for h in runs]
        bad = [
            h.diverged or not math.isfinite(loss) or loss > h.eval_loss[0]
            for h, loss in zip(runs, losses, strict=True)
        ]
        failed.append(any(bad))
        mean.append(math.nan if any(bad) else float(np.mean(losses)))
    return np.array(mean), np.array(failed)


def useful_range(page: Page, mean: np.ndarray, failed: np.ndarray, baseline: float):
    """(best, low, high) grid indices: the contiguous rates around the best whose mean final
    loss beats the baseline by baseline_margin (the same limit for every optimizer); None if
    the best does not."""
    if np.all(failed):
        return None
    best = int(np.nanargmin(np.where(failed, np.nan, mean)))
    limit = (1 - page.baseline_margin) * baseline
    if not mean[best] <= limit:
        return None
    inside = ~failed & (np.nan_to_num(mean, nan=math.inf) <= limit)
    low = high = best
    while low > 0 and inside[low - 1]:
        low -= 1
    while high < len(mean) - 1 and inside[high + 1]:
        high += 1
    return best, low, high


def decade_cost(grid: list[float], mean: np.ndarray, failed: np.ndarray, baseline: float):
    """The live sweep's version of the ledger's figure for learning-rate sensitivity
    (rnnopt.ledger.random_rate_cost_of): with each rate's relative error r = mean final loss /
    baseline (capped at 1; a failed rate scores 1), the mean r over the sweep's rates within a
    decade of the best minus r at the best. Returns (cost, indices of those rates, whether the
    grid ends inside that decade)."""
    relative = np.where(failed, 1.0, np.minimum(np.nan_to_num(mean, nan=1.0) / baseline, 1.0))
    best = int(np.argmin(relative))
    near = [i for i, lr in enumerate(grid) if abs(math.log10(lr / grid[best])) <= 1 + 1e-9]
    cut = grid[best] / grid[0] < 10 - 1e-9 or grid[-1] / grid[best] < 10 - 1e-9
    return float(np.mean(relative[near]) - relative[best]), near, cut


def sensitivity(page: Page) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Sweep lr_grid on lr_task; fill the sensitivity facts and findings; role -> (mean, failed)."""
    grid = {"lr": page.lr_grid, "seed": page.lr_seeds}
    page.lr_runs = {"main": sweep(page, page.lr_task, page.optimizer, page.hyper, grid)}
    if page.sweep_contrast:
        page.lr_runs["contrast"] = sweep(
            page, page.lr_task, page.contrast, page.contrast_hyper, grid
        )
    page.lr_baseline = baseline = page.task_objects[page.lr_task].baseline()["loss"]
    page.sensitivity = {role: summarise(page, *runs) for role, runs in page.lr_runs.items()}
    costs, useful_widths = {}, {}
    grid_ = page.lr_grid
    for role, (mean, failed) in page.sensitivity.items():
        tag = "" if role == "main" else "contrast_"
        failing = [r for r, f in zip(grid_, failed, strict=True) if f]
        page.facts[f"{tag}first_failed_lr"] = fmt(failing[0]) if failing else "none"
        cost, near, cut = decade_cost(grid_, mean, failed, baseline)
        costs[role] = cost
        best_relative = float(np.min(np.where(failed, 1.0, np.minimum(
            np.nan_to_num(mean, nan=1.0) / baseline, 1.0))))  # fmt: skip
        page.facts.update(
            {
                f"{tag}best_relative": fmt(best_relative),
                f"{tag}decade_cost": fmt(cost),
                f"{tag}decade_rates": f"{len(near)} rates from {fmt(grid_[near[0]])} to "
                f"{fmt(grid_[near[-1]])}" + (" (the grid ends inside the decade)" if cut else ""),
            }
        )
        found = useful_range(page, mean, failed, baseline)
        if found is None:
            useful_widths[role] = 0.0
            page.facts.update({f"{tag}{k}": "—" for k in ("useful_low", "useful_high")})
            page.facts[f"{tag}useful"] = "0"
        else:
            best, low, high = found
            useful_widths[role] = math.log10(grid_[high] / grid_[low])
            at_edge = low == 0 or high == len(grid_) - 1  # the range may go on beyond the grid
            page.facts.update(
                {
                    f"{tag}useful": ("at least " if at_edge else "") + f"{useful_widths[role]:.1f}",
                    f"{tag}useful_low": fmt(grid_[low]),
                    f"{tag}useful_high": fmt(grid_[high]),
                }
            )
        usable = np.where(failed, np.nan, mean)
        if np.all(failed):
            page.facts.update({f"{tag}best_lr": "none", f"{tag}best_loss": "—"})
        else:
            best = int(np.nanargmin(usable))
            page.facts.update(
                {f"{tag}best_lr": fmt(grid_[best]), f"{tag}best_loss": fmt(mean[best])}
            )
            page.findings[f"{tag}best_beats_baseline"] = bool(mean[best] < baseline)
    page.facts.update(
        clipping="do not clip the gradient"
        if page.clip_grad_norm is None
        else f"clip the gradient's global norm at {fmt(page.clip_grad_norm)}, which caps "
        + (
            "SGD's step at the learning rate"
            if page.clip_grad_norm == 1
            else f"SGD's step at {fmt(page.clip_grad_norm)} times the learning rate"
        ),  # fmt: skip
        lr_task=page.lr_task,
        lr_seeds=len(page.lr_seeds),
        lr_grid=f"{fmt(grid_[0])} to {fmt(grid_[-1])}",
        lr_grid_step=fmt(math.log10(grid_[1] / grid_[0])) if len(grid_) > 1 else "—",
    )
    page.findings["fails_in_grid"] = bool(page.sensitivity["main"][1].any())
    if page.sweep_contrast:
        page.findings["useful_wider"] = (
            None
            if useful_widths["main"] == useful_widths["contrast"]
            else useful_widths["main"] > useful_widths["contrast"]
        )
        page.findings["decade_cheaper"] = (
            None if costs["main"] == costs["contrast"] else costs["main"] < costs["contrast"]
        )
        best = {
            role: np.nanmin(np.where(failed, np.nan, mean))
            for role, (mean, failed) in page.sensitivity.items()
        }
        page.findings["best_lower"] = lower_on_every_seed([best["main"]], [best["contrast"]])
    return page.sensitivity


def per_seed_finals(page: Page, role: str) -> np.ndarray:
    """(learning rates, seeds) final losses of the sweep."""
    rows, histories = page.lr_runs[role]
    return np.array(
        [
            [final_value(page, h) for row, h in zip(rows, histories, strict=True) if row["lr"] == r]
            for r in page.lr_grid
        ]
    )


def sensitivity_table(page: Page) -> tuple[list[list[str]], str]:
    """Table 5's rows (mean final loss per rate and role) and its summary sentence."""
    rows = [
        [fmt(rate)]
        + ["failed" if failed[i] else fmt(mean[i]) for mean, failed in page.sensitivity.values()]
        for i, rate in enumerate(page.lr_grid)
    ]
    summary = ""
    for role in page.sensitivity:
        tag, label = ("", page.name) if role == "main" else ("contrast_", page.contrast_name)

        def f(key: str, tag: str = tag) -> str:
            return page.facts[tag + key]

        summary += (
            f" {label}: best lr {f('best_lr')} (final loss {f('best_loss')}); a random rate "
            f"within a decade of it costs {f('decade_cost')} in relative error "
            f"({f('decade_rates')}); beats the baseline by {page.facts['baseline_margin']} "
            f"from {f('useful_low')} to {f('useful_high')} ({f('useful')} decades); first "
            f"failing lr: {f('first_failed_lr')}."
        )
    return rows, summary


# --- The verdicts' rules in words ---------------------------------------------------------------

RULES = {  # how each finding is computed, in words; {contrast_name} etc. from the page's facts
    "closer": "ended at least twice as close to the minimum as {contrast_name}",
    "reached": "came within {tol_2d} of the minimum within the steps",
    "fewer_flips": "the steep coordinate changed sign fewer times than along "
    "{contrast_name}'s path",
    "escapes_more": "ended in the global minimum at more learning rates than {contrast_name}",
    "beats_baseline": "every seed's final loss is below (1 − {baseline_margin}) × the baseline",
    "beats_contrast": "lower final loss than {contrast_name} on every seed",
    "decade_cheaper": "a random learning rate within a decade of the best costs less relative "
    "error than it does for {contrast_name}",
    "useful_wider": "the range of learning rates that beat the baseline is wider than "
    "{contrast_name}'s",
    "fails_in_grid": "some learning rate of the grid failed",
    "stateless": "keeps no optimizer state",
    "less_state": "keeps less state per weight than {contrast_name}",
    "best_lower": "the best final loss over the grid is lower than {contrast_name}'s",
}


def describe(page: Page, key: str) -> str:
    """A finding's key in words: on what, for which optimizer, what was measured."""
    subjects = {
        "quadratic": "quadratic",
        "rosenbrock": "Rosenbrock",
        "double_well": "double well",
        "well": "double well",
        "best": f"best learning rate on {getattr(page, 'lr_task', '')}",
        **{t: f"{t} task" for t in page.tasks},
    }
    who = page.name
    if key.startswith("contrast_") or "_contrast_" in key or key.endswith("_contrast"):
        if not key.endswith("beats_contrast"):
            who = page.contrast_name
            key = key.replace("contrast_", "").replace("_contrast", "")
    facts = {"baseline_margin": "", "tol_2d": "", **page.facts}
    for rule, words in RULES.items():
        if key == rule or key.endswith("_" + rule):
            subject = key[: -len(rule)].rstrip("_")
            where = f"{subjects.get(subject, subject)}, " if subject else ""
            return f"{where}{who}: {words.format(**facts)}"
    return key


# --- Figures ------------------------------------------------------------------------------------


def training_figure(page: Page):
    """(figure, name, caption): held-out loss during training, per task, over the seeds."""
    import matplotlib.pyplot as plt

    from rnnopt import plots

    fig, axes = plt.subplots(1, len(page.tasks), figsize=(plots.COLUMN_INCHES, 3.3), squeeze=False)
    for ax, (task, task_obj) in zip(axes[0], page.task_objects.items(), strict=True):
        for role, label, _, _, colour, style in page.roles:
            if (task, role) not in page.curves:
                continue
            rate = (page.lr if role == "main" else page.contrast_lr)[task]
            runs = page.curves[task, role]
            plots.plot_mean_spread(
                ax, runs[0].eval_step, [h.eval_loss for h in runs], f"{label}, lr = {rate:g}",
                colour, style,
            )  # fmt: skip
        plots.plot_baseline(ax, task_obj.baseline()["loss"], "baseline (learned nothing)")
        ax.set(yscale="log", xlabel="training step", ylabel=f"held-out loss ({task_obj.loss_name})")
        options = ", ".join(f"{k} {v}" for k, v in page.tasks[task].items())
        ax.set_title(f"{task} ({options})", fontsize=10)
        ax.legend(fontsize=7.5)
    both = any(role == "contrast" for _, role in page.curves)
    who = f"{page.name} (solid) and {page.contrast_name} (dashed)" if both else page.name
    caption = (
        f"Held-out loss of an Elman network ({page.hidden_size} units) trained with {who}; line: "
        f"mean over {len(page.seeds)} seeds, band: their range. The dashed black line is the "
        f"task's trivial baseline: a curve that stays on it has learned nothing about the inputs."
        f" {clipping_words(page)}"
    )
    return fig, page.figure_name("training"), caption


def clipping_words(page: Page) -> str:
    """The live runs' clipping in a sentence for a caption (it is a parameter of the page, not
    the evidence tier's policy, which How we measure states)."""
    if page.clip_grad_norm is None:
        return "The gradient is not clipped."
    return (
        f"The gradient's global norm is clipped at {fmt(page.clip_grad_norm)} (this page's "
        "parameter; the evidence tier clips at ten times the initial median norm instead)."
    )


def sensitivity_figure(page: Page):
    """(figure, name, caption): final held-out loss against the learning rate, with the decade
    either side of the best shaded."""
    import matplotlib.pyplot as plt

    from rnnopt import plots

    fig, ax = plt.subplots(figsize=(plots.COLUMN_INCHES, 3.4))
    lowest = []  # the band's bottom, so that the y range shows it
    for role, label, _, _, colour, _ in page.roles:
        if role not in page.sensitivity:
            continue
        mean, failed = page.sensitivity[role]
        per_seed = per_seed_finals(page, role)  # (learning rates, seeds)
        low, high = per_seed.min(axis=1), per_seed.max(axis=1)
        plots.plot_lr_sensitivity(
            ax, page.lr_grid, mean, label, colour, failed=failed, low=low, high=high
        )
        lowest += [v for v, bad in zip(low, failed, strict=True) if not bad and math.isfinite(v)]
    _, near, _ = decade_cost(page.lr_grid, *page.sensitivity["main"], page.lr_baseline)
    ax.axvspan(
        page.lr_grid[near[0]] / 10**0.1, page.lr_grid[near[-1]] * 10**0.1, alpha=0.12,
        color=page.main_color, label=f"{page.name}: a decade either side of its best",
    )  # fmt: skip
    plots.plot_baseline(ax, page.lr_baseline, "baseline (learned nothing)")
    finite = [m for mean, _ in page.sensitivity.values() for m in mean if math.isfinite(m)]
    finite.append(page.lr_baseline)
    ax.set_yscale("log")
    ax.set_ylim(min(finite + lowest) / 1.5, max(finite) * 2)
    ax.set_ylabel(f"final held-out loss ({page.task_objects[page.lr_task].loss_name})")
    fig.legend(loc="outside upper center", ncols=3, fontsize=8)
    caption = (
        f"Final held-out loss on {page.lr_task} against the learning rate: mean of "
        f"{len(page.lr_seeds)} seeds per point, band: their range; a cross at the top marks a "
        f"learning rate at which a seed failed. The shaded span is a decade either side of "
        f"{page.name}'s best rate: a random rate in it costs {page.facts['decade_cost']} in "
        f"relative error (final loss over the baseline, capped at 1), the live version of the "
        f"ledger's sensitivity figure. {clipping_words(page)} Look at how high the curve climbs "
        f"inside the span."
    )
    return fig, page.figure_name("lr"), caption


def _swing(optimizer: str, lr: float, steps: int = 100, last: int = 20) -> str:
    """Why a per-coordinate method ends farther than SGD on the axis-aligned quadratic (κ = 25),
    measured: its distance over the last steps, and (Adam) the same run without momentum."""
    from rnnopt.landscapes import rotated_quadratic, trajectory

    land = rotated_quadratic(25.0, 0.0)
    distance = np.linalg.norm(trajectory(land, optimizer, steps, lr=lr), axis=1)[-last:]
    said = (
        f" It has not settled: at this constant learning rate its distance over the last {last} "
        f"steps still swings between {fmt(distance.min())} and {fmt(distance.max())}."
    )
    if optimizer != "adam":
        return said
    plain = trajectory(land, optimizer, steps, lr=lr, betas=(0.0, 0.999))
    return said + (
        f" The swing is its momentum average $m$ ($\\beta_1 = 0.9$) at work: with "
        f"$\\beta_1 = 0$ the same run ends {fmt(float(np.linalg.norm(plain[-1])))} away."
    )


def pictures(page: Page) -> list[Any]:
    """The mechanism pictures of the book's four optimizers: (figure, name, caption) for
    plots.show, or an HTML string (the interactive heavy-ball figure). Other optimizers: none."""
    from rnnopt import figures, figures_rnn

    shown: list[Any] = []
    name, optimizer = page.name, page.optimizer
    if optimizer == "sgd":
        shown.append((figures.sgd_rates(kappa=100.0), page.figure_name("rate"),
            "Plain gradient descent on a quadratic with condition number 100: the factor by which "
            "the error shrinks per step along the steep and the shallow direction; the larger of "
            "the two sets the speed. Look at the shallow direction: at the largest stable learning "
            "rate, just under $2/\\lambda_{\\max}$, its error still shrinks by only "
            f"{100 * 2 / 100.0:.0f} % per step, whatever the steep one does."))  # fmt: skip
    if optimizer == "momentum":
        shown.append((figures.momentum_memory(), page.figure_name("memory"),
            "What the momentum buffer remembers (the figure writes β for the momentum $\\mu$). "
            "Left: the weight $\\mu^k$ with which the gradient of $k$ steps ago enters the "
            "buffer; the dotted lines mark $k = 1/(1-\\mu)$. Right: the weights add up to the "
            "gain $1/(1-\\mu)$ (dashed): under a steady gradient, a step at $\\mu = 0.9$ is ten "
            "times SGD's."))  # fmt: skip
        shown.append((figures.momentum_rate_map(kappa=10.0), page.figure_name("rate-map"),
            "Heavy ball's convergence rate over learning rate $\\gamma$ and momentum $\\mu$ on "
            "a quadratic with condition number 10 (darker is faster; the figure writes α for "
            "$\\gamma$ and β for $\\mu$). Beyond the black line "
            "$\\gamma\\lambda_{\\max} = 2 + 2\\mu$ it diverges; between the dotted curves the "
            "roots are complex and the rate is $\\sqrt{\\mu}$ whatever the learning rate: look "
            "at how the colour there changes with $\\mu$ alone."))  # fmt: skip
        shown.append(figures.heavy_ball_explorer(kappa=10.0).html)
    if optimizer in ("rmsprop", "adam"):
        lrs = {"sgd": 0.075, optimizer: 0.1 if optimizer == "rmsprop" else 0.3}
        fig, rotated = figures.axis_aligned_vs_rotated(lrs, kappa=25.0, angle=45.0)
        page.facts.update({f"{panel}_{o}_distance": fmt(d) for (panel, o), d in rotated.items()})
        aligned = rotated["axis-aligned", optimizer], rotated["axis-aligned", "sgd"]
        page.facts["axis_aligned_word"] = closer_words(*aligned)
        f = page.facts
        shown.append((fig, page.figure_name("rotated"),
            f"{name} and SGD for 100 steps on a quadratic whose curvatures differ 25-fold. Left, "
            f"the valley's axes are the coordinates, the case a per-coordinate step is made for: "
            f"{name} ends {f[f'axis-aligned_{optimizer}_distance']} from the minimum, "
            f"{f['axis_aligned_word']} SGD ({f['axis-aligned_sgd_distance']})."
            f"{_swing(optimizer, lrs[optimizer]) if aligned[0] > aligned[1] else ''} Right, the "
            f"same valley turned 45°, so that no coordinate is steep or shallow on its own: {name} "
            f"ends {f[f'rotated_{optimizer}_distance']} away. SGD (grey) does not care about the "
            f"turn: it ends {f['axis-aligned_sgd_distance']} away in both."))  # fmt: skip
    if optimizer == "adam":
        first = {
            key: abs(figures.adam_first_steps([1.0], lr=1.0, correct_first=m,
                                              correct_second=v)["step"][0])
            for key, m, v in (("neither", False, False), ("m", True, False), ("v", False, True))
        }  # fmt: skip
        shown.append((figures.bias_correction(steps=50), page.figure_name("bias-correction"),
            "Adam's first 50 steps on noisy gradients $g_t \\sim N(1, 0.5^2)$. Left and middle: "
            "the raw averages $m$ and $v$ start at zero and lag; the corrected $\\hat m$ and "
            "$\\hat v$ follow the gradient from the first step. Right: the step relative to the "
            "learning rate for the four combinations. With both corrections the first step is "
            f"exactly the learning rate; with neither it is {first['neither']:.3g} times it, with "
            f"only $m$ corrected {first['m']:.3g} times, with only $v$ corrected "
            f"{first['v']:.2g} times."))  # fmt: skip
    if optimizer in ("rmsprop", "adam") and page.tasks:
        rate = page.lr[page.lr_task]
        effective = figures_rnn.effective_steps(
            page.task_objects[page.lr_task], optimizer, rate, steps=200,
            hidden_size=page.hidden_size, batch_size=page.batch_size,
            clip_grad_norm=page.clip_grad_norm,
        )  # fmt: skip
        ends = {group: effective[group][-1][1] for group in figures_rnn.WEIGHT_GROUPS}
        v = "\\hat v" if optimizer == "adam" else "v"  # RMSprop has no bias correction
        # what the rate multiplies: Adam steps along its average of the gradient, RMSprop along it
        unit = "of $\\hat m$, the averaged gradient" if optimizer == "adam" else "of gradient"
        shown.append((figures_rnn.plot_effective_steps({optimizer: effective}, {optimizer: rate}),
            page.figure_name("effective-steps"),
            f"{name}'s effective learning rate $\\gamma / (\\sqrt{{{v}}} + \\epsilon)$ per weight "
            f"(the step per unit {unit}, not a step length) while the Elman network of the "
            f"training section learns {page.lr_task} (one seed; line: median over a group's "
            f"weights, band: 10th to 90th percentile; dashed: the learning rate). Look at the gaps "
            f"between the groups: each weight gets its own learning rate. After the last step the "
            f"medians are {ends['input weights W_ih']:.2g} (input), "
            f"{ends['recurrent weights W_hh']:.2g} (recurrent) and {ends['readout']:.2g} "
            f"(readout)."))  # fmt: skip
    return shown
