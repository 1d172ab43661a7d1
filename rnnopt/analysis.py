"""From a sweep's stored runs to the comparison chapter's measured table.

A comparison sweep (``data/specs/comparison-*.yaml``) trains each optimizer over one log grid of
learning rates with several seeds on one task. This module turns its results into one row per
optimizer, every number computed from the stored runs:

- best learning rate: the grid point with the best *mean over seeds* of the final held-out
  metric; a learning rate at which any seed diverged is not eligible (it is not reliable);
- final train loss (mean of the last tenth of the training batches' losses) and final held-out
  metric at that learning rate: mean and standard deviation over seeds;
- steps to a target: the first evaluation step at which a seed's held-out metric closes
  ``target_fraction`` of the gap between the task's trivial baseline and the best mean that any
  optimizer reached on that task;
- learning-rate window: the unbroken run of grid points around the best whose mean metric
  closes at least ``1 - margin`` of the gap the best one closes; its width in decades counts each
  grid point as one grid cell (7 half-decade points → at most 3.5 decades). A window that
  reaches the end of the grid is *censored*: the true window may be wider;
- time per step: median over the best learning rate's runs of each run's median step time;
- optimizer state per parameter: the elements of a real optimizer's per-parameter state tensors
  after one step, divided by the number of parameters (measured, not assumed).

The best learning rate is picked and scored on the same held-out set, so the held-out numbers
are slightly optimistic; every optimizer gets the same advantage.

The chapter's Markdown tables of these rows (`measured_table`, `summary_table`, ...) live in
rnnopt.analysis_tables and are importable from here too.

    python -m rnnopt.analysis sweeps            # (re)run every data/specs/*.yaml except *-full
    python -m rnnopt.analysis sweeps --workers 2 comparison-elman-adding
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnopt.analysis_tables import (
    SOURCE_SUMMARY,
    environment_summary,
    measured_table,
    metric_limits,
    provenance_table,
    sig,
    spec_table,
    summary_table,
    sweep_label,
    table_notes,
    targets_table,
)
from rnnopt.checks import check_number, invalid
from rnnopt.executors import cpu_model, environment
from rnnopt.optim import OPTIMIZERS, make_optimizer
from rnnopt.rnn import SequenceModel
from rnnopt.sweep import load_history, load_results, load_run, run_sweep
from rnnopt.tasks import make_task
from rnnopt.train import History

__all__ = [
    "LrPoint",
    "Window",
    "Measured",
    "lr_points",
    "best_point",
    "beats_baseline",
    "gap_closed",
    "lr_window",
    "target_level",
    "steps_to_target",
    "final_train_loss",
    "median_step_time",
    "state_elements_per_parameter",
    "task_of",
    "measure",
    "finished_sweeps",
    "check_sweeps",
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
    "sweep_names",
    "regenerate_sweeps",
    "cpu_model",
    "provenance",
    "main",
]

ROOT = Path(__file__).resolve().parent.parent
SPECS_DIR = ROOT / "data" / "specs"
SWEEPS_DIR = ROOT / "data" / "sweeps"


def _check_fraction(name: str, value: Any) -> float:
    """A number strictly between 0 and 1 (a fraction of a gap)."""
    return check_number(name, value, low=0, high=1, low_open=True, high_open=True)


@dataclass(frozen=True)
class LrPoint:
    """One optimizer at one learning rate: the final held-out metric of each seed."""

    lr: float
    seeds: tuple[int, ...]
    metrics: tuple[float, ...]  # NaN for a seed that diverged
    run_ids: tuple[str, ...]

    @property
    def diverged(self) -> int:
        return sum(not math.isfinite(m) for m in self.metrics)

    @property
    def mean(self) -> float:
        """Mean over seeds; NaN if any seed diverged (the point is then not usable)."""
        return float(np.mean(self.metrics)) if self.diverged == 0 else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (0 for one seed; NaN if any diverged)."""
        if self.diverged or len(self.metrics) < 2:
            return 0.0 if self.diverged == 0 else math.nan
        return float(np.std(self.metrics, ddof=1))


def lr_points(rows: Sequence[dict], optimizer: str) -> list[LrPoint]:
    """The grid points of `optimizer` in `rows` (a sweep's results), by increasing lr."""
    by_lr: dict[float, list[dict]] = {}
    for row in rows:
        if row["optimizer"] == optimizer:
            by_lr.setdefault(float(row["lr"]), []).append(row)
    points = []
    for lr in sorted(by_lr):
        group = sorted(by_lr[lr], key=lambda r: r["seed"])
        metrics = tuple(r["final_metric"] if r["status"] == "ok" else math.nan for r in group)
        points.append(
            LrPoint(lr, tuple(r["seed"] for r in group), metrics, tuple(r["run_id"] for r in group))
        )
    return points


def _better(a: float, b: float, higher_is_better: bool) -> bool:
    return a > b if higher_is_better else a < b


def best_point(points: Sequence[LrPoint], higher_is_better: bool) -> LrPoint | None:
    """The point with the best mean (ties: the smaller lr); None if every point diverged."""
    best = None
    for point in points:
        if math.isfinite(point.mean) and (
            best is None or _better(point.mean, best.mean, higher_is_better)
        ):
            best = point
    return best


def gap_closed(value: float, baseline: float, reference: float) -> float:
    """How much of the gap from `baseline` to `reference` `value` closes: 0 at the baseline, 1 at
    the reference (the sign of the gap carries the direction, so it works for either kind of
    metric). NaN if the reference does not beat the baseline."""
    gap = reference - baseline
    if not math.isfinite(value) or not math.isfinite(gap) or gap == 0:
        return math.nan
    return (value - baseline) / gap


def beats_baseline(point: LrPoint, baseline: float, higher_is_better: bool) -> bool:
    """Whether `point`'s mean beats `baseline` by more than two standard errors over seeds: a
    smaller lead is within what the seeds alone would give."""
    lead = (point.mean - baseline) if higher_is_better else (baseline - point.mean)
    if not math.isfinite(lead) or lead <= 0:
        return False
    return lead > 2 * point.std / math.sqrt(len(point.metrics))


@dataclass(frozen=True)
class Window:
    """The learning rates that land within a margin of the best, as a width in decades."""

    low: float
    high: float
    decades: float
    censored: bool  # the window touches an end of the grid: the true width may be larger


def lr_window(
    points: Sequence[LrPoint], best: LrPoint, baseline: float, margin: float, higher_is_better: bool
) -> Window | None:
    """The unbroken run of grid points around `best` whose mean closes at least ``1 - margin``
    of the gap that `best` closes over `baseline`; None when `best` does not beat the baseline
    (`beats_baseline`: then the gap is noise and no window can be read off it). Each point
    counts as one grid cell: its width is the grid's spacing in decades (the points must be
    evenly spaced in log lr)."""
    _check_fraction("margin", margin)
    if not beats_baseline(best, baseline, higher_is_better):
        return None
    lrs = np.log10([p.lr for p in points])
    spacing = float(np.diff(lrs).mean()) if len(points) > 1 else 0.0
    if len(points) > 2 and not np.allclose(np.diff(lrs), spacing, atol=0.01):
        raise ValueError(
            invalid("points.lr", [p.lr for p in points], "learning rates evenly spaced in log10")
        )
    inside = [gap_closed(p.mean, baseline, best.mean) >= 1 - margin for p in points]
    centre = list(points).index(best)
    first = last = centre
    while first > 0 and inside[first - 1]:
        first -= 1
    while last < len(points) - 1 and inside[last + 1]:
        last += 1
    return Window(
        points[first].lr,
        points[last].lr,
        (last - first + 1) * spacing,
        censored=first == 0 or last == len(points) - 1,
    )


def target_level(baseline: float, best: float, target_fraction: float) -> float:
    """The metric value that closes `target_fraction` of the gap from baseline to best."""
    _check_fraction("target_fraction", target_fraction)
    return baseline + target_fraction * (best - baseline)


def steps_to_target(history: History, target: float, higher_is_better: bool) -> int | None:
    """The first evaluation step at which the held-out metric reaches `target` (None: never)."""
    for step, value in zip(history.eval_step, history.eval_metric, strict=True):
        if math.isfinite(value) and (value == target or _better(value, target, higher_is_better)):
            return step
    return None


def final_train_loss(history: History, fraction: float = 0.1) -> float:
    """Mean training-batch loss over the last `fraction` of the steps (NaN if it diverged):
    one batch's loss is noisy, their mean is the run's training loss at the end."""
    _check_fraction("fraction", fraction)
    if history.diverged or not history.loss:
        return math.nan
    count = max(1, round(len(history.loss) * fraction))
    return float(np.mean(history.loss[-count:]))


def median_step_time(histories: Sequence[History]) -> float:
    """Median over runs of each run's median wall-clock seconds per step (robust to the odd
    slow step when another process takes the core)."""
    return float(np.median([np.median(h.step_time) for h in histories]))


def state_elements_per_parameter(optimizer: str, **hyper: Any) -> float:
    """Elements of `optimizer`'s per-parameter state tensors after one step, per parameter.

    Counted on a real optimizer from rnnopt.optim over a small RNN, after one step: every state
    tensor shaped like its parameter counts (SGD's absent momentum buffer and the scalar step
    counters do not), so Adam's exp_avg and exp_avg_sq give 2.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(invalid("optimizer", optimizer, "an optimizer name", OPTIMIZERS))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SequenceModel(3, 8, 2)
        opt = make_optimizer(optimizer, model.parameters(), **hyper)
        model(torch.randn(4, 5, 3)).square().mean().backward()
        opt.step()
    params = list(model.parameters())
    elements = sum(
        value.numel()
        for p in params
        for value in opt.state[p].values()
        if isinstance(value, torch.Tensor) and value.shape == p.shape
    )
    return elements / sum(p.numel() for p in params)


# --- One sweep → one row per optimizer -------------------------------------------------------


def task_of(out_dir: str | os.PathLike, rows: Sequence[dict]):
    """The Task a sweep ran (rebuilt from its first run's stored configuration)."""
    config = dict(load_run(out_dir, rows[0]["run_id"])["config"]["task"])
    return make_task(config.pop("name"), **config)


@dataclass
class Measured:
    """One optimizer on one sweep (task × core): the measured table's row, and what it is
    computed from (the learning-rate curve, the best point's histories)."""

    optimizer: str
    points: list[LrPoint]
    best: LrPoint | None
    train_loss: tuple[float, float] = (math.nan, math.nan)  # mean, sd over seeds
    heldout: tuple[float, float] = (math.nan, math.nan)
    steps_to_target: list[int | None] = field(default_factory=list)  # one per seed
    window: Window | None = None
    step_time: float = math.nan  # seconds
    histories: list[History] = field(default_factory=list)


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def measure(
    out_dir: str | os.PathLike,
    target_fraction: float = 0.8,
    margin: float = 0.2,
) -> dict[str, Any]:
    """The measured table of one comparison sweep.

    Returns {'task': Task, 'baseline': its trivial held-out metric, 'best': the best mean any
    optimizer reached, 'beaten': whether that best beats the baseline (`beats_baseline`),
    'target': the steps-to-target level (NaN if not beaten), 'rows': {optimizer: Measured}}
    with the optimizers in grid order.
    """
    _check_fraction("target_fraction", target_fraction)
    _check_fraction("margin", margin)
    rows = load_results(out_dir)
    if not rows:
        raise ValueError(invalid("out_dir", str(out_dir), "a sweep directory with finished runs"))
    task = task_of(out_dir, rows)
    higher = task.higher_is_better
    baseline = float(task.baseline()["metric"])
    optimizers = list(dict.fromkeys(r["optimizer"] for r in rows))
    table = {}
    for name in optimizers:
        points = lr_points(rows, name)
        table[name] = Measured(name, points, best_point(points, higher))
    bests = [m.best for m in table.values() if m.best is not None]
    top = (max if higher else min)(bests, key=lambda p: p.mean) if bests else None
    overall = top.mean if top is not None else math.nan
    beaten = top is not None and beats_baseline(top, baseline, higher)
    target = target_level(baseline, overall, target_fraction) if beaten else math.nan
    for m in table.values():
        if m.best is None:
            continue
        m.histories = [load_history(out_dir, run_id) for run_id in m.best.run_ids]
        m.train_loss = _mean_sd([final_train_loss(h) for h in m.histories])
        m.heldout = (m.best.mean, m.best.std)
        if beaten:
            m.steps_to_target = [steps_to_target(h, target, higher) for h in m.histories]
        m.window = lr_window(m.points, m.best, baseline, margin, higher)
        m.step_time = median_step_time(m.histories)
    return {
        "task": task,
        "baseline": baseline,
        "best": overall,
        "beaten": beaten,
        "target": target,
        "rows": table,
    }


# --- The comparison chapter's sweeps -------------------------------------------------------


def finished_sweeps(data_dir: str | os.PathLike) -> list[str]:
    """The sweep directories under `data_dir` that hold results."""
    return sorted(p.name for p in Path(data_dir).iterdir() if (p / "results.csv").exists())


def check_sweeps(data_dir: Any, sweeps: Any) -> Path:
    """`data_dir` as a Path, if it is a directory and every name in `sweeps` (a non-empty list)
    is a finished sweep in it; else ValueError naming the parameter and the valid names."""
    if not isinstance(data_dir, (str, os.PathLike)) or not Path(data_dir).is_dir():
        raise ValueError(invalid("data_dir", data_dir, "a directory (relative to chapters/)"))
    available = finished_sweeps(data_dir)
    if not isinstance(sweeps, list) or not sweeps:
        raise ValueError(invalid("sweeps", sweeps, "a non-empty list of names", available))
    for index, name in enumerate(sweeps):
        if name not in available:
            rule = (
                f"a finished sweep in {data_dir} (run one with: rnnopt sweep "
                f"data/specs/{name}.yaml --out data/sweeps/{name} --workers 2)"
            )
            raise ValueError(invalid(f"sweeps[{index}]", name, rule, available))
    return Path(data_dir)


# --- Regenerating the committed sweeps -------------------------------------------------------


def sweep_names(specs_dir: str | os.PathLike = SPECS_DIR) -> list[str]:
    """The specs the committed data comes from: every *.yaml but the *-full ones."""
    return sorted(p.stem for p in Path(specs_dir).glob("*.yaml") if not p.stem.endswith("-full"))


def provenance(
    name: str, out_dir: str | os.PathLike, workers: int, specs_dir: str | os.PathLike = SPECS_DIR
) -> dict[str, Any]:
    """Where a sweep directory's numbers come from: code and library versions, machine, the
    command that reproduces it, and the compute its runs took (summed from the runs)."""
    rows = load_results(out_dir)
    spec_path = Path(specs_dir) / f"{name}.yaml"
    try:
        spec_shown = spec_path.relative_to(ROOT).as_posix()
        out_shown = Path(out_dir).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        spec_shown, out_shown = spec_path.as_posix(), Path(out_dir).as_posix()
    return {
        "sweep": name,
        "spec": spec_shown,
        "command": f"rnnopt sweep {spec_shown} --out {out_shown} --workers {workers}",
        "runs": len(rows),
        "diverged": sum(r["status"] != "ok" for r in rows),
        "run_seconds_total": round(sum(r["wall_time"] for r in rows), 1),
        **environment(),
        "torch_threads_per_run": 1,
        "workers": workers,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }


def regenerate_sweeps(
    names: Sequence[str] | None = None,
    workers: int = 2,
    specs_dir: str | os.PathLike = SPECS_DIR,
    sweeps_dir: str | os.PathLike = SWEEPS_DIR,
    progress: bool = True,
) -> dict[str, float]:
    """Run (or finish) each named sweep into sweeps_dir/<name>; return its wall seconds.

    Runs already on disk are skipped, so this is cheap when nothing changed; provenance.json is
    rewritten only when runs were added (or it is missing), so an unchanged directory stays
    byte-identical.
    """
    available = sweep_names(specs_dir)
    names = list(available if names is None else names)
    unknown = [n for n in names if not (Path(specs_dir) / f"{n}.yaml").exists()]
    if unknown:
        raise ValueError(
            invalid("sweeps", unknown, f"sweeps with a spec in {specs_dir}", available)
        )
    times = {}
    for name in names:
        out = Path(sweeps_dir) / name
        before = len(list((out / "runs").glob("*.json"))) if out.exists() else 0
        start = time.perf_counter()
        run_sweep(Path(specs_dir) / f"{name}.yaml", out, workers=workers, progress=progress)
        times[name] = time.perf_counter() - start
        after = len(list((out / "runs").glob("*.json")))
        record = out / "provenance.json"
        if after != before or not record.exists():
            record.write_text(
                json.dumps(provenance(name, out, workers, specs_dir), indent=1) + "\n",
                encoding="utf-8",
            )
        print(f"{name}: {after} runs, {times[name]:.0f} s", flush=True)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rnnopt.analysis", description="Regenerate the committed sweeps in data/."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sweeps = sub.add_parser(
        "sweeps",
        help="run every data/specs/*.yaml (but *-full) into "
        "data/sweeps/<name>; finished runs are skipped",
    )
    sweeps.add_argument("names", nargs="*", help="sweep names (default: all)")
    sweeps.add_argument("--workers", type=int, default=2)
    sweeps.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers={args.workers} is invalid: expected an integer >= 1")
    try:
        regenerate_sweeps(args.names or None, workers=args.workers, progress=not args.quiet)
    except ValueError as err:
        parser.error(str(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
