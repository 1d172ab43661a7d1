"""The comparison chapter's tables, from `rnnopt.analysis.measure`'s results: where the sweeps
ran and what they ran (`environment_summary`, `provenance_table`, `spec_table`), the measured
table, the targets and the notes beside them (`measured_table`, `targets_table`, `table_notes`),
the panels' metric range (`metric_limits`), and the source's summary table beside what the
sweeps measured (`SOURCE_SUMMARY`, `summary_table`). Each table is a Markdown string.

Every name here is also importable from rnnopt.analysis.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnopt import plots
from rnnopt.sweep import load_spec

if TYPE_CHECKING:
    from rnnopt.analysis import Window

__all__ = [
    "sweep_label",
    "sig",
    "environment_summary",
    "provenance_table",
    "spec_table",
    "measured_table",
    "targets_table",
    "table_notes",
    "metric_limits",
    "SOURCE_SUMMARY",
    "summary_table",
]


def sweep_label(name: str) -> tuple[str, str]:
    """(task, core) of a comparison sweep's name: "comparison-lstm-text" -> ("text", "LSTM")."""
    core, task = name.split("-")[1:3]
    return task, ("Elman" if core == "elman" else "LSTM")


def sig(x: float, digits: int = 3) -> str:
    """`x` to `digits` significant digits; a dash when it is not finite."""
    return "—" if not math.isfinite(x) else f"{x:.{digits}g}"


def environment_summary(provenance: dict[str, dict]) -> str:
    """Two lines on where the first sweep of `provenance` (name -> provenance.json) ran."""
    p = next(iter(provenance.values()))
    return (
        f"rnnopt {p['rnnopt']}, torch {p['torch']}, numpy {p['numpy']}, Python {p['python']}\n"
        f"CPU: {p['cpu']} ({p['platform']}); {p['torch_threads_per_run']} torch thread per run, "
        f"{p['workers']} runs at a time"
    )


def provenance_table(provenance: dict[str, dict]) -> str:
    """Per sweep: its runs, how many diverged, their compute and the command that reproduces it."""
    rows = [
        [name, p["runs"], p["diverged"], f"{p['run_seconds_total']:.0f} s", f"`{p['command']}`"]
        for name, p in provenance.items()
    ]
    headers = ["sweep", "runs", "diverged", "compute (sum over runs)", "reproduce with"]
    return plots.markdown_table(headers, rows)


def spec_table(data_dir: str | os.PathLike, sweeps: Sequence[str]) -> str:
    """Per sweep: the task, model, training options and grid of its spec."""

    def shown(v: Any) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    rows = []
    for name in sweeps:
        spec = load_spec(Path(data_dir) / name / "spec.yaml")
        task, model, train = (
            ", ".join(f"{k}={v}" for k, v in part.items())
            for part in (spec.task, spec.model, spec.train)
        )
        grid = "; ".join(f"{k}: {', '.join(map(shown, vs))}" for k, vs in spec.grid.items())
        rows.append([name, task, model, train, grid])
    return plots.markdown_table(["sweep", "task", "model", "training", "grid"], rows)


def _steps_cell(steps: Sequence[int | None]) -> str:
    reached = [s for s in steps if s is not None]
    if not steps:
        return "—"
    if not reached:
        return f"not reached (0/{len(steps)})"
    return f"{np.median(reached):.0f} ({len(reached)}/{len(steps)})"


def _window_cell(window: Window | None) -> str:
    if window is None:
        return "—"
    return ("≥ " if window.censored else "") + f"{window.decades:.1f}"


def measured_table(measured: dict[str, dict[str, Any]], state: dict[str, float]) -> str:
    """The chapter's main table: one row per sweep (task × core) and optimizer, from `measure`'s
    results (sweep name -> result) and the state numbers per parameter of each optimizer."""
    table = []
    for name, result in measured.items():
        task, core = sweep_label(name)
        metric = result["task"].metric_name
        arrow = "↑" if result["task"].higher_is_better else "↓"
        for optimizer, m in result["rows"].items():
            first = [task, core, plots.label(optimizer)]
            if m.best is None:
                table.append([*first, "all diverged"] + ["—"] * 5 + [sig(state[optimizer], 2)])
                continue
            table.append(
                [
                    *first,
                    f"{m.best.lr:.3g}",
                    f"{sig(m.train_loss[0])} ± {sig(m.train_loss[1], 2)}",
                    f"{metric} {arrow} {sig(m.heldout[0])} ± {sig(m.heldout[1], 2)}",
                    _steps_cell(m.steps_to_target),
                    _window_cell(m.window),
                    f"{m.step_time * 1e3:.2g}",
                    sig(state[optimizer], 2),
                ]
            )
    headers = ["task", "core", "optimizer", "best lr", "train loss", "held-out metric"]
    headers += ["steps to target", "lr window (decades)", "ms / step", "state / parameter"]
    return plots.markdown_table(headers, table)


def targets_table(measured: dict[str, dict[str, Any]]) -> str:
    """Per sweep: its metric, trivial baseline, the best mean reached, whether that beat the
    baseline, and the steps-to-target level."""
    rows = []
    for name, result in measured.items():
        beaten = "yes" if result["beaten"] else "no (not by more than 2 standard errors)"
        rows.append(
            [*sweep_label(name), result["task"].metric_name, sig(result["baseline"])]
            + [sig(result["best"]), beaten, sig(result["target"])]
        )
    headers = ["task", "core", "metric", "trivial baseline", "best mean reached"]
    return plots.markdown_table([*headers, "baseline beaten", "target"], rows)


def table_notes(measured: dict[str, dict[str, Any]]) -> str:
    """What the tables cannot show by themselves: sweeps where no optimizer learned the task,
    and best learning rates at an end of the grid (Markdown paragraphs; "" if none)."""
    notes = []
    unlearned = [" / ".join(sweep_label(n)) for n, r in measured.items() if not r["beaten"]]
    if unlearned:
        notes.append(
            f"No optimizer beat the trivial baseline on {', '.join(unlearned)}: at this budget "
            "the network did not learn the task, so those rows only record where the grid's "
            "best point happened to fall, and no target or window is defined."
        )
    edge = [
        f"{plots.label(o)} on {' / '.join(sweep_label(n))}"
        for n, r in measured.items()
        for o, m in r["rows"].items()
        if m.best is not None and m.best.lr in (m.points[0].lr, m.points[-1].lr)
    ]
    if edge:
        notes.append(
            f"The best learning rate sits at an end of the grid for {', '.join(edge)}: a better "
            "one may lie outside it (the full specs widen the grid)."
        )
    return "\n\n".join(notes)


def metric_limits(result: dict[str, Any]) -> tuple[float, float]:
    """The vertical range of a sweep's metric panels: 0 to 1.05 for an accuracy; else from a
    little below the best mean to the baseline plus the gap (the worst points may lie above)."""
    if result["task"].higher_is_better:
        return 0.0, 1.05
    base, best = result["baseline"], result["best"]
    span = abs(base - best) if math.isfinite(best) else 0.1 * base
    return max(0.0, best - 0.3 * span), base + 1.0 * span


# The source's summary table, paraphrased: per optimizer, its purpose, advantages and drawbacks.
SOURCE_SUMMARY = {
    "sgd": (
        "plain gradient steps, one sample at a time",
        "simple; good on convex problems",
        "slow to converge; sensitive to the learning rate",
    ),
    "momentum": (
        "adds a velocity that speeds up the steps",
        "faster; gets past local minima",
        "its momentum coefficient needs tuning",
    ),
    "rmsprop": (
        "scales each parameter's step by its gradient size",
        "a step size per parameter",
        "the learning rate still needs tuning",
    ),
    "adam": (
        "momentum and RMSprop together",
        "adaptive; faster; less tuning",
        "more compute than SGD",
    ),
}


def _median_of(values: Sequence[float | None]) -> float:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(values)) if values else math.nan


def summary_table(measured: dict[str, dict[str, Any]], state: dict[str, float]) -> str:
    """The source's summary table beside what the sweeps measured, per optimizer of `state`:
    wins (sweeps where it reached the best mean and beat the baseline), and medians over the
    sweeps of its lr window and steps to target, with its state numbers per parameter."""
    beaten = sum(r["beaten"] for r in measured.values())
    rows = []
    for optimizer in state:
        wins = sum(
            r["beaten"] and m.best is not None and m.best.mean == r["best"]
            for r in measured.values()
            for o, m in r["rows"].items()
            if o == optimizer
        )
        ms = [r["rows"][optimizer] for r in measured.values()]
        window = _median_of([m.window.decades for m in ms if m.window is not None])
        steps = _median_of([_median_of(m.steps_to_target) for m in ms])
        reached = sum(s is not None for m in ms for s in m.steps_to_target)
        tried = sum(len(m.steps_to_target) for m in ms)
        rows.append(
            [plots.label(optimizer), *SOURCE_SUMMARY[optimizer], f"{wins} of {beaten}"]
            + [sig(window, 2), f"{sig(steps, 3)} ({reached}/{tried})", sig(state[optimizer], 2)]
        )
    headers = ["", "purpose (source)", "advantages (source)", "drawbacks (source)", "wins"]
    headers += ["median lr window (decades)", "median steps to target (seeds reached)"]
    return plots.markdown_table([*headers, "state / parameter"], rows)
