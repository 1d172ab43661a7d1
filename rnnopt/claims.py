"""The claims ledger: every claim of the source about the four optimizers, tested by a small
experiment, with a verdict computed from what the experiment measured.

A :class:`Claim` holds the claim in our words, the experiment that tests it, a function that
measures named figures from a :class:`Lab` (which runs each experiment once and caches it) and a
:class:`Rule`: thresholds on those figures, written down before anything runs, that turn the
figures into ``supported``, ``not supported`` or ``mixed``. Nothing here types a verdict:

    lab = Lab(Settings())                      # the experiments, at the chapter's default size
    rows = evaluate(CLAIMS, lab)               # one row per claim: measured figures, verdict
    write_csv(rows, "data/claims.csv")         # columns: claim, algorithm, experiment, ...

The chapter's tables are built here too (``grid_table(lab)``, ``cost_table(lab)``, ...: Markdown
strings), so that the chapter holds the calls and the figures.

Experiments are deliberately small (a chapter executes them all in about a minute on one CPU
core): 2-D test functions, an Elman RNN with a few dozen hidden units on short sequences, two
or three seeds. A figure such as "steps to reach the target" is only as good as that scale; the
chapter says so next to each verdict.
"""

from __future__ import annotations

import collections
import csv
import functools
import io
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from rnnopt import plots
from rnnopt.checks import (
    check_choice,
    check_int,
    check_list,
    check_number,
    check_output_file,
    check_seeds,
    invalid,
)
from rnnopt.landscapes import Landscape, double_well, quadratic, rosenbrock
from rnnopt.optim import make_optimizer
from rnnopt.store import write_atomic
from rnnopt.tasks import DigitsTask, Task, make_task
from rnnopt.train import History, build_model, run, train

__all__ = [
    "FOUR",
    "VERDICTS",
    "COLUMNS",
    "Threshold",
    "Rule",
    "Claim",
    "Settings",
    "Lab",
    "CLAIMS",
    "evaluate",
    "write_csv",
    "format_figure",
    "steps_to",
    "descend",
    "state_per_parameter",
    "ops_per_step",
    "median_step_seconds",
    "step_seconds",
    "check_ledger_csv",
    "LEDGER_COLUMNS",
    "IMPLEMENTATIONS",
    "eval_curves",
    "relearning_curves",
    "ledger_table",
    "rules_table",
    "verdict_counts",
    "grid_table",
    "data_size_table",
    "single_sample_table",
    "cost_table",
    "rung",
    "timing_table",
    "implementation_table",
    "gap_table",
]

FOUR = ("sgd", "momentum", "rmsprop", "adam")
VERDICTS = ("supported", "not supported", "mixed")
COLUMNS = ("claim", "algorithm", "experiment", "measured", "rule", "verdict")
REPRODUCE = "chapters/claims.ipynb: python -m rnnopt.book claims --force"


# --- Rules: thresholds on named figures ----------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """One comparison of a measured figure with a threshold, e.g. Threshold("ratio", "<=", 0.7).

    A figure that is NaN (nothing to compare, e.g. neither run reached the target) fails every
    test, so a rule built from tests can only call it ``mixed``.
    """

    figure: str
    op: str  # "<=" or ">="
    value: float

    def __post_init__(self) -> None:
        check_choice("op", self.op, ("<=", ">="))

    def __call__(self, figures: Mapping[str, float]) -> bool:
        value = figures[self.figure]
        return bool(value <= self.value) if self.op == "<=" else bool(value >= self.value)

    def __str__(self) -> str:
        return f"{self.figure} {'≤' if self.op == '<=' else '≥'} {self.value:g}"


@dataclass(frozen=True)
class Rule:
    """``supported`` if every test in `supported` passes; else ``not supported`` if every test
    in `not_supported` passes (any one of them, with ``against="any"``); else ``mixed``."""

    supported: tuple[Threshold, ...]
    not_supported: tuple[Threshold, ...]
    against: str = "all"

    def __post_init__(self) -> None:
        check_choice("against", self.against, ("all", "any"))
        if not self.supported or not self.not_supported:
            raise ValueError("a rule needs at least one test for each of its two verdicts")

    def verdict(self, figures: Mapping[str, float]) -> str:
        if all(test(figures) for test in self.supported):
            return "supported"
        combine = all if self.against == "all" else any
        if combine(test(figures) for test in self.not_supported):
            return "not supported"
        return "mixed"

    def text(self) -> str:
        joiner = " and " if self.against == "all" else " or "
        return (
            f"supported if {' and '.join(map(str, self.supported))}; "
            f"not supported if {joiner.join(map(str, self.not_supported))}; mixed otherwise"
        )


def format_figure(value: float) -> str:
    """Two significant digits (integers as they are): stable from run to run, and enough."""
    value = float(value)
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "never" if value > 0 else "-never"
    if value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    return np.format_float_positional(value, precision=2, unique=False, fractional=False, trim="-")


@dataclass(frozen=True)
class Claim:
    """One claim of the source, how it is tested and how the test is judged."""

    id: str
    algorithm: str  # one of FOUR
    text: str  # the claim, in our words
    experiment: str  # what is run and what is measured
    measure: Callable[[Lab], dict[str, float]]  # named figures, computed from the lab
    rule: Rule
    shown: tuple[str, ...] = ()  # the figures the ledger prints (default: the rule's)
    section: str = ""  # where in the chapter the deciding figure is

    def figures_shown(self) -> tuple[str, ...]:
        if self.shown:
            return self.shown
        names = [t.figure for t in (*self.rule.supported, *self.rule.not_supported)]
        return tuple(dict.fromkeys(names))


def evaluate(claims: Iterable[Claim], lab: Lab | Mapping[str, Any]) -> list[dict[str, str]]:
    """Measure every claim and judge it by its rule; one row per claim (see COLUMNS, plus
    ``id``, ``figures`` and ``reproduce``). `lab` may be a Lab or a mapping of Settings."""
    if not isinstance(lab, Lab):
        lab = Lab(Settings(**dict(lab)))
    rows = []
    for claim in claims:
        figures = claim.measure(lab)
        measured = "; ".join(
            f"{name} = {format_figure(figures[name])}" for name in claim.figures_shown()
        )
        rows.append(
            {
                "id": claim.id,
                "claim": claim.text,
                "algorithm": claim.algorithm,
                "experiment": claim.experiment,
                "measured": measured,
                "rule": claim.rule.text(),
                "verdict": claim.rule.verdict(figures),
                "figures": figures,
                "section": claim.section,
                "reproduce": f"{REPRODUCE} (section “{claim.section}”)",
            }
        )
    return rows


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write the ledger's COLUMNS to `path` at once (a reader never sees half a file)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())
    return path


# --- Settings --------------------------------------------------------------------------


def _positive(name: str, value: Any) -> float:
    return check_number(name, value, low=0, low_open=True)


@dataclass(frozen=True)
class Settings:
    """Every size and grid of the experiments. The defaults are the chapter's `default` set."""

    threads: int = 1  # torch intra-op threads
    seeds: tuple[int, ...] = (0, 1)  # seeds of every RNN experiment
    hidden_size: int = 16  # hidden units of every RNN
    batch_size: int = 32  # sequences per training batch
    steps: int = 300  # optimizer steps of each adding-problem run
    eval_every: int = 25  # steps between held-out measurements
    adding_seq_len: int = 5  # adding problem of the learning-rate grid
    target_fraction: float = 0.5  # target held-out MSE = this fraction of the baseline MSE
    window_margin: float = 0.25  # lr window: final loss within this share of (baseline - best)
    lr_grid: Mapping[str, Sequence[float]] = field(
        default_factory=lambda: {
            "sgd": (0.01, 0.0316, 0.1, 0.316, 1.0),
            "momentum": (0.00316, 0.01, 0.0316, 0.1, 0.316),
            "rmsprop": (0.001, 0.00316, 0.01, 0.0316, 0.1),
            "adam": (0.001, 0.00316, 0.01, 0.0316, 0.1),
        }
    )
    long_seq_len: int = 30  # adding problem with a longer dependency (vanishing gradients)
    digits_lr: Mapping[str, float] = field(
        default_factory=lambda: {"sgd": 0.3, "momentum": 0.03, "rmsprop": 0.003, "adam": 0.01}
    )
    digits_steps: int = 300  # training steps on digits before the labels change
    switch_steps: int = 200  # steps after the labels change
    accuracy_target: float = 0.75  # held-out accuracy that counts as (re)learned
    minibatch_samples: int = 960  # samples seen by batch-1 and by minibatch SGD (digits)
    single_sample_lr: float = 0.03  # SGD's learning rate with one sample per step
    text_seq_len: int = 16  # characters per text window
    text_steps: int = 200  # steps of the text runs
    text_lr: Mapping[str, float] = field(default_factory=lambda: {"sgd": 1.0, "adam": 0.01})
    task_steps: int = 150  # steps per (task, core) run in the across-tasks ranking
    cores: tuple[str, ...] = ("elman", "lstm")
    kappa: float = 50.0  # condition number of the quadratic ravine
    landscape_starts: int = 100  # random starts on the 2-D functions
    landscape_steps: int = 500  # steps on the 2-D functions
    timing_size: int = 1_000_000  # parameters in the optimizer-step timing
    timing_repeats: int = 20  # timed steps per optimizer (the median is kept)

    def __post_init__(self) -> None:
        # Each check names the parameter, its value and the rule (rnnopt.checks' format).
        for name in (
            "threads",
            "hidden_size",
            "batch_size",
            "steps",
            "eval_every",
            "digits_steps",
            "switch_steps",
            "minibatch_samples",
            "text_steps",
            "task_steps",
            "landscape_starts",
            "landscape_steps",
            "timing_size",
            "timing_repeats",
        ):
            check_int(name, getattr(self, name), 1)
        for name in ("adding_seq_len", "long_seq_len", "text_seq_len"):
            check_int(name, getattr(self, name), 2)
        object.__setattr__(self, "seeds", tuple(check_seeds("seeds", self.seeds)))
        for name in ("target_fraction", "window_margin", "accuracy_target"):
            check_number(name, getattr(self, name), low=0, high=1, low_open=True, high_open=True)
        check_number("single_sample_lr", self.single_sample_lr, low=0, low_open=True)
        check_number("kappa", self.kappa, low=1)
        grid = self.lr_grid
        if not isinstance(grid, Mapping) or set(grid) != set(FOUR):
            raise ValueError(invalid("lr_grid", grid, f"a mapping with the keys {list(FOUR)}"))
        for name, lrs in grid.items():
            rule = "an increasing geometric list of >= 2 learning rates > 0"
            try:
                items = check_list(f"lr_grid[{name!r}]", lrs, _positive, min_length=2)
            except ValueError:
                raise ValueError(invalid(f"lr_grid[{name!r}]", lrs, rule)) from None
            ratios = np.diff(np.log10(items))
            if not np.allclose(ratios, ratios[0], atol=0.02) or ratios[0] <= 0:
                raise ValueError(invalid(f"lr_grid[{name!r}]", list(lrs), rule))
        for name, needed in (("digits_lr", FOUR), ("text_lr", ("sgd", "adam"))):
            value = getattr(self, name)
            if not isinstance(value, Mapping) or set(value) != set(needed):
                raise ValueError(invalid(name, value, f"a mapping of {list(needed)} to rates > 0"))
            for key, lr in value.items():
                _positive(f"{name}[{key!r}]", lr)
        from rnnopt.rnn import CORES

        cores = self.cores
        if not (isinstance(cores, (list, tuple)) and cores and all(c in CORES for c in cores)):
            raise ValueError(invalid("cores", cores, "a non-empty list of cores", CORES))
        object.__setattr__(self, "cores", tuple(cores))

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


# --- Measuring helpers -------------------------------------------------------------------


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


# --- The experiments, each run once per Lab ------------------------------------------------


class Lab:
    """Runs each experiment the first time a claim (or the chapter) asks for it."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.s = settings or Settings()
        torch.set_num_threads(self.s.threads)

    # The adding problem: the learning-rate grid shared by the speed and tuning claims.
    @functools.cached_property
    def grid(self) -> dict[str, Any]:
        """Per optimizer: final held-out MSE (mean, min and max over the seeds) and steps to the
        target at every grid lr."""
        from rnnopt.sweep import load_history, run_sweep

        s = self.s
        task = make_task("adding", seq_len=s.adding_seq_len, eval_size=256)
        baseline = task.baseline()["loss"]
        target = s.target_fraction * baseline
        out: dict[str, Any] = {"baseline": baseline, "target": target}
        for name in FOUR:
            spec = {
                "task": {"name": "adding", "seq_len": s.adding_seq_len, "eval_size": 256},
                "model": {"hidden_size": s.hidden_size},
                "train": {"steps": s.steps, "batch_size": s.batch_size, "eval_every": s.eval_every},
                "grid": {"optimizer": [name], "lr": list(s.lr_grid[name]), "seed": list(s.seeds)},
            }
            with tempfile.TemporaryDirectory() as tmp:
                rows = run_sweep(spec, tmp)
                histories = {
                    (row["lr"], row["seed"]): load_history(tmp, row["run_id"]) for row in rows
                }
            lrs = list(s.lr_grid[name])
            final, low, high, steps = [], [], [], []
            for lr in lrs:
                runs = [histories[(lr, seed)] for seed in s.seeds]
                losses = [h.final_loss if math.isfinite(h.final_loss) else math.inf for h in runs]
                final.append(float(np.mean(losses)))
                low.append(min(losses))
                high.append(max(losses))
                steps.append(float(np.mean([steps_to(h, target) for h in runs])))
            final_arr, steps_arr = np.array(final), np.array(steps)
            best = int(np.argmin(final_arr))
            cutoff = final_arr[best] + s.window_margin * (baseline - final_arr[best])
            inside = final_arr <= cutoff
            spacing = float(np.log10(lrs[1] / lrs[0]))
            out[name] = {
                "lrs": lrs,
                "final": final_arr,
                "low": np.array(low),  # the range of the final loss over the seeds
                "high": np.array(high),
                "steps": steps_arr,
                "histories": histories,
                "best_lr": lrs[best],
                "best_loss": float(final_arr[best]),
                "fastest_steps": float(steps_arr.min()),
                "fastest_lr": lrs[int(np.argmin(steps_arr))]
                if np.isfinite(steps_arr).any()
                else lrs[best],
                "window": float(inside.sum() * spacing),
                "cutoff": float(cutoff),
                "window_at_edge": bool(inside[0] or inside[-1]),
            }
        return out

    def grid_runs(self, name: str, lr: float | None = None) -> list[History]:
        """`name`'s runs on the learning-rate grid at `lr` (default: its fastest), one per seed."""
        g = self.grid[name]
        return [
            g["histories"][(g["fastest_lr"] if lr is None else lr, seed)] for seed in self.s.seeds
        ]

    def _adding_runs(
        self, optimizer: str, seq_len: int, batch_size: int, **hyper: Any
    ) -> list[History]:
        s = self.s
        return [
            run(
                task={"name": "adding", "seq_len": seq_len, "eval_size": 256},
                model={"hidden_size": s.hidden_size},
                optimizer={"name": optimizer, **hyper},
                train_options={
                    "steps": s.steps,
                    "batch_size": batch_size,
                    "eval_every": s.eval_every,
                },
                seed=seed,
                threads=s.threads,
            )
            for seed in s.seeds
        ]

    @functools.cached_property
    def sgd_batches(self) -> dict[str, Any]:
        """SGD at its best grid lr with the grid's batch and with 8x that batch (less noise)."""
        s, grid = self.s, self.grid
        lr = grid["sgd"]["best_lr"]
        large = self._adding_runs("sgd", s.adding_seq_len, 8 * s.batch_size, lr=lr)
        small = self.grid_runs("sgd", lr)
        return {
            "lr": lr,
            "small": small,
            "large": large,
            "small_loss": float(np.mean([h.final_loss for h in small])),
            "large_loss": float(np.mean([h.final_loss for h in large])),
        }

    @functools.cached_property
    def momentum_betas(self) -> dict[float, list[History]]:
        """Momentum at its best grid lr with several momentum coefficients."""
        s, grid = self.s, self.grid
        lr = grid["momentum"]["best_lr"]
        out = {
            beta: self._adding_runs(
                "momentum", s.adding_seq_len, s.batch_size, lr=lr, momentum=beta
            )
            for beta in (0.5, 0.99)
        }
        out[0.9] = self.grid_runs("momentum", lr)
        return dict(sorted(out.items()))

    @functools.cached_property
    def adam_ablation(self) -> dict[str, list[History]]:
        """Adam at its fastest grid lr, without its first moment (beta1 = 0), and with a short
        second-moment memory (beta2 = 0.9)."""
        s, grid = self.s, self.grid
        lr = grid["adam"]["fastest_lr"]
        return {
            "Adam (0.9, 0.999)": self.grid_runs("adam", lr),
            "β1 = 0 (no momentum)": self._adding_runs(
                "adam", s.adding_seq_len, s.batch_size, lr=lr, betas=(0.0, 0.999)
            ),
            "β2 = 0.9 (short memory)": self._adding_runs(
                "adam", s.adding_seq_len, s.batch_size, lr=lr, betas=(0.9, 0.9)
            ),
        }

    @functools.cached_property
    def adaptivity(self) -> dict[str, Any]:
        """Effective per-parameter step |Δθ|/|g| after a short run (SGD: lr everywhere)."""
        s = self.s
        task = make_task("adding", seq_len=s.adding_seq_len, eval_size=256)
        out = {}
        for name in ("sgd", "rmsprop"):
            lr = self.grid[name]["best_lr"]
            model, opt = _fresh(task, name, s.seeds[0], s.hidden_size, lr=lr)
            train(
                model,
                task,
                opt,
                steps=50,
                batch_size=s.batch_size,
                seed=s.seeds[0],
                threads=s.threads,
            )
            response = _step_response(model, opt, task, s.seeds[0])
            grads = np.concatenate([g for g, _ in response.values()])
            updates = np.concatenate([u for _, u in response.values()])
            keep = grads > 1e-12
            ratio = updates[keep] / grads[keep] / lr
            p10, p90 = np.percentile(ratio, [10, 90])
            out[name] = {"ratio": ratio, "spread": float(p90 / p10), "lr": lr}
        return out

    @functools.cached_property
    def long_adding(self) -> dict[str, Any]:
        """SGD and RMSprop on a longer adding problem: loss, and W_hh's step per unit gradient."""
        s = self.s
        task = make_task("adding", seq_len=s.long_seq_len, eval_size=256)
        baseline = task.baseline()["loss"]
        out: dict[str, Any] = {"baseline": baseline}
        for name in ("sgd", "rmsprop"):
            lr = self.grid[name]["best_lr"]
            histories, gains, grad_norms = [], [], []
            for seed in s.seeds:
                model, opt = _fresh(task, name, seed, s.hidden_size, lr=lr)
                histories.append(
                    train(
                        model,
                        task,
                        opt,
                        steps=s.steps,
                        batch_size=s.batch_size,
                        eval_every=s.eval_every,
                        seed=seed,
                        threads=s.threads,
                    )
                )
                if histories[-1].diverged:
                    gains.append(math.nan)
                    grad_norms.append(math.nan)
                    continue
                grad, update = _step_response(model, opt, task, seed)["core.weight_hh_l0"]
                gains.append(float(np.linalg.norm(update) / np.linalg.norm(grad) / lr))
                grad_norms.append(float(np.linalg.norm(grad)))
            out[name] = {
                "lr": lr,
                "histories": histories,
                "gain": float(np.mean(gains)),
                "grad_norm": float(np.mean(grad_norms)),
                "relative_loss": float(np.mean([h.final_loss for h in histories]) / baseline),
            }
        return out

    @functools.cached_property
    def digits(self) -> dict[str, Any]:
        """Digits, then the same digits with shifted labels; the generalisation gap before the
        switch, the steps to (re)learn to the accuracy target before and after it."""
        s = self.s
        first, second = DigitsTask(), RelabelledDigits(shift=1)
        train_set = first.train_set()
        out: dict[str, Any] = {}
        for name in FOUR:
            lr = s.digits_lr[name]
            before, after, gaps, learn, recover = [], [], [], [], []
            for seed in s.seeds:
                model, opt = _fresh(first, name, seed, s.hidden_size, lr=lr)
                h1 = train(
                    model,
                    first,
                    opt,
                    steps=s.digits_steps,
                    batch_size=s.batch_size,
                    eval_every=s.eval_every,
                    seed=seed,
                    threads=s.threads,
                )
                gaps.append(h1.final_loss - _loss_on(model, first, train_set))
                h2 = train(
                    model,
                    second,
                    opt,
                    steps=s.switch_steps,
                    batch_size=s.batch_size,
                    eval_every=s.eval_every // 2 or 1,
                    seed=seed + 1,
                    threads=s.threads,
                )
                before.append(h1)
                after.append(h2)
                learn.append(steps_to(h1, s.accuracy_target, higher_is_better=True))
                recover.append(steps_to(h2, s.accuracy_target, higher_is_better=True))
            out[name] = {
                "lr": lr,
                "before": before,
                "after": after,
                "gap": float(np.mean(gaps)),
                "learn": float(np.mean(learn)),
                "recover": float(np.mean(recover)),
            }
        return out

    @functools.cached_property
    def text_gap(self) -> dict[str, float]:
        """Held-out minus training loss (nats/char) after short text runs, SGD and Adam."""
        s = self.s
        task = make_task("text", seq_len=s.text_seq_len, eval_size=64)
        train_set = task.train_set()
        out = {}
        for name in ("sgd", "adam"):
            gaps = []
            for seed in s.seeds:
                model, opt = _fresh(task, name, seed, s.hidden_size, lr=s.text_lr[name])
                h = train(
                    model,
                    task,
                    opt,
                    steps=s.text_steps,
                    batch_size=s.batch_size,
                    seed=seed,
                    threads=s.threads,
                )
                gaps.append(h.final_loss - _loss_on(model, task, train_set))
            out[name] = float(np.mean(gaps))
        return out

    @functools.cached_property
    def data_size(self) -> dict[str, Any]:
        """Training samples SGD touches per step on a small and a large training split."""
        s = self.s
        out = {}
        for test_fraction in (0.75, 0.25):
            task = _Wrapped(DigitsTask(test_fraction=test_fraction))
            model, opt = _fresh(task._task, "sgd", s.seeds[0], s.hidden_size, lr=s.digits_lr["sgd"])
            train(
                model,
                task,
                opt,
                steps=20,
                batch_size=s.batch_size,
                seed=s.seeds[0],
                threads=s.threads,
            )
            out[len(task.train_index)] = float(np.mean(task.samples))
        return out

    @functools.cached_property
    def single_sample(self) -> dict[str, Any]:
        """SGD with one sample per step against minibatch SGD, both after the same samples."""
        s = self.s
        task = DigitsTask()
        baseline = task.baseline()["loss"]
        out: dict[str, Any] = {"baseline": baseline}
        for label, batch, lr in (
            ("batch 1", 1, s.single_sample_lr),
            (f"batch {s.batch_size}", s.batch_size, s.digits_lr["sgd"]),
        ):
            steps = max(1, s.minibatch_samples // batch)
            losses = []
            for seed in s.seeds:
                model, opt = _fresh(task, "sgd", seed, s.hidden_size, lr=lr)
                h = train(
                    model, task, opt, steps=steps, batch_size=batch, seed=seed, threads=s.threads
                )
                losses.append(h.final_loss if math.isfinite(h.final_loss) else math.inf)
            out[label] = {"loss": float(np.mean(losses)), "steps": steps, "lr": lr}
        return out

    @functools.cached_property
    def loss_scale(self) -> dict[str, dict[float, float]]:
        """Mean step size per unit lr over 20 steps, with the loss multiplied by 0.01, 1, 100."""
        s = self.s
        task = make_task("adding", seq_len=s.adding_seq_len, eval_size=256)
        out: dict[str, dict[float, float]] = {}
        lr, steps = 1e-3, 20
        for name in ("sgd", "adam"):
            out[name] = {}
            for scale in (0.01, 1.0, 100.0):
                model, opt = _fresh(task, name, s.seeds[0], s.hidden_size, lr=lr)
                start = torch.cat([p.detach().flatten() for p in model.parameters()])
                train(
                    model,
                    _Wrapped(task, loss_scale=scale),
                    opt,
                    steps=steps,
                    batch_size=s.batch_size,
                    seed=s.seeds[0],
                    threads=s.threads,
                )
                end = torch.cat([p.detach().flatten() for p in model.parameters()])
                moved = (end - start).abs().mean().item()
                out[name][scale] = moved / steps / lr
        return out

    @functools.cached_property
    def tasks(self) -> dict[str, Any]:
        """Each optimizer at its best adding-grid lr on every (task, core): final held-out loss
        divided by the task's baseline loss, and the optimizers' rank in each column."""
        s = self.s
        tasks = {
            "adding": {"seq_len": s.adding_seq_len, "eval_size": 256},
            "copy": {"seq_len": 5, "n_symbols": 3, "eval_size": 256},
            "digits": {},
            "text": {"seq_len": s.text_seq_len, "eval_size": 64},
        }
        scores: dict[tuple[str, str], dict[str, float]] = {}
        for task_name, options in tasks.items():
            baseline = make_task(task_name, **options).baseline()["loss"]
            for core in s.cores:
                column = {}
                for name in FOUR:
                    h = run(
                        task={"name": task_name, **options},
                        model={"hidden_size": s.hidden_size, "core": core},
                        optimizer={"name": name, "lr": self.grid[name]["best_lr"]},
                        train_options={"steps": s.task_steps, "batch_size": s.batch_size},
                        seed=s.seeds[0],
                        threads=s.threads,
                    )
                    column[name] = (
                        h.final_loss / baseline if math.isfinite(h.final_loss) else math.inf
                    )
                scores[(task_name, core)] = column
        ranks = {
            key: {name: 1 + sorted(col.values()).index(col[name]) for name in FOUR}
            for key, col in scores.items()
        }
        return {"scores": scores, "ranks": ranks}

    @functools.cached_property
    def landscapes(self) -> dict[str, Any]:
        """The 2-D experiments: a convex ravine, Rosenbrock's valley, a double well."""
        s = self.s
        rng = np.random.default_rng(s.seeds[0])
        out: dict[str, Any] = {}
        # Convex: a quadratic with condition number kappa, random starts on a circle of radius 2.
        ravine = quadratic(s.kappa)
        angles = rng.uniform(0, 2 * np.pi, s.landscape_starts)
        starts = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        lrs = np.logspace(-2.5, -0.5, 5)
        quad: dict[str, Any] = {"lrs": lrs}
        for name in FOUR:
            steps, converged = [], []
            for lr in lrs:
                path = descend(ravine, name, starts, s.landscape_steps, lr=float(lr))
                # Distance to the minimum (the origin); a diverged run holds inf and nan.
                with np.errstate(all="ignore"):
                    dist = np.nan_to_num(np.linalg.norm(path, axis=2), nan=np.inf)
                # Converged at step k: within 1e-4 at step k and at every step after it (an
                # oscillating method may pass through the ball and leave it again).
                outside = dist > 1e-4
                done = ~outside[-1]
                last_out = len(dist) - 1 - np.argmax(outside[::-1], axis=0)
                first = np.where(done, np.where(outside.any(axis=0), last_out + 1, 0), np.inf)
                converged.append(float(done.mean()))
                steps.append(float(np.max(first)))
            best = int(np.argmin(steps))
            quad[name] = {
                "steps": steps,
                "converged": converged,
                "best_lr": float(lrs[best]),
                "best_steps": steps[best],
                "best_converged": converged[best],
            }
        out["quadratic"] = quad
        # Damping: SGD at lr 1.8/kappa zig-zags across the ravine; momentum (beta = 0.9) at the
        # same step for a steady gradient, lr (1 - beta) * 1.8/kappa.
        lr = 1.8 / s.kappa
        paths = {
            "sgd": descend(ravine, "sgd", np.array([ravine.start]), 100, lr=lr)[:, 0],
            "momentum": descend(
                ravine, "momentum", np.array([ravine.start]), 100, lr=0.1 * lr, momentum=0.9
            )[:, 0],
        }
        damping = {"lr": lr, "paths": paths}
        for name, path in paths.items():
            dy = np.diff(path[:, 1])
            damping[name] = {
                "path_length": float(np.abs(dy).sum() / abs(path[0, 1])),
                "reversals": float(np.mean(np.sign(dy[1:]) != np.sign(dy[:-1]))),
            }
        out["damping"] = damping
        # Rosenbrock: distance to the minimum after landscape_steps, at the best lr of a grid.
        valley = rosenbrock()
        rosen: dict[str, Any] = {}
        for name in ("sgd",):
            best_path, best_dist = None, math.inf
            for lr in (1e-4, 3e-4, 1e-3, 3e-3):
                path = descend(valley, name, np.array([valley.start]), s.landscape_steps, lr=lr)[
                    :, 0
                ]
                with np.errstate(all="ignore"):
                    dist = float(
                        np.nan_to_num(np.linalg.norm(path[-1] - valley.minimum), nan=np.inf)
                    )
                if dist < best_dist:
                    best_path, best_dist = path, dist
            rosen[name] = {"distance": best_dist, "path": best_path}
        out["rosenbrock"] = rosen
        # Local minima: random starts over the double well's window; the fraction that ends
        # within 0.1 of the global minimum, at three learning rates.
        well = double_well()
        starts = np.stack(
            [
                rng.uniform(*well.xlim, s.landscape_starts),
                rng.uniform(*well.ylim, s.landscape_starts),
            ],
            axis=1,
        )
        wells: dict[str, Any] = {"lrs": (0.01, 0.03, 0.1), "starts": starts}
        for name in ("sgd", "momentum"):
            found = []
            for lr in wells["lrs"]:
                path = descend(well, name, starts, s.landscape_steps, lr=lr)
                with np.errstate(all="ignore"):
                    dist = np.linalg.norm(path[-1] - np.array(well.minimum), axis=1)
                found.append(float(np.mean(dist <= 0.1)))
            wells[name] = found
        out["double_well"] = wells
        return out

    @functools.cached_property
    def costs(self) -> dict[str, Any]:
        """State numbers and tensor operations per step (counted), memory traffic per
        parameter (3 + 2 x state: read θ, g and the state; write θ and the state), step time."""
        s = self.s
        out = {}
        for name in FOUR:
            state = state_per_parameter(name)
            out[name] = {
                "state": state,
                "ops": float(ops_per_step(name)),
                "traffic": 3 + 2 * state,
                "seconds": step_seconds(name, s.timing_size, s.timing_repeats),
            }
        return out


# --- The claims ----------------------------------------------------------------------------


def _ratio(a: float, b: float) -> float:
    """a / b, where "never" (inf) is slower than anything: inf/inf is NaN (no comparison)."""
    if math.isinf(a) and math.isinf(b):
        return math.nan
    if math.isinf(b):
        return 0.0
    return a / b if b else math.inf


def _others(name: str) -> tuple[str, ...]:
    return tuple(o for o in FOUR if o != name)


def _lr_window(name: str) -> Callable[[Lab], dict[str, float]]:
    return lambda lab: {f"{name} lr window (decades)": lab.grid[name]["window"]}


def _speed(name: str, reference: str) -> Callable[[Lab], dict[str, float]]:
    def measure(lab: Lab) -> dict[str, float]:
        grid = lab.grid
        return {
            f"steps to target, {name}/{reference}": _ratio(
                grid[name]["fastest_steps"], grid[reference]["fastest_steps"]
            ),
            f"{name} steps": grid[name]["fastest_steps"],
            f"{reference} steps": grid[reference]["fastest_steps"],
        }

    return measure


def _cost(name: str) -> Callable[[Lab], dict[str, float]]:
    def measure(lab: Lab) -> dict[str, float]:
        costs = lab.costs
        return {
            f"{name} state numbers/param": costs[name]["state"],
            "SGD state numbers/param": costs["sgd"]["state"],
            f"memory traffic {name}/SGD": costs[name]["traffic"] / costs["sgd"]["traffic"],
            f"tensor ops/step {name}/SGD": costs[name]["ops"] / costs["sgd"]["ops"],
        }

    return measure


def _cost_rule(name: str) -> Rule:
    return Rule(
        (
            Threshold(f"{name} state numbers/param", ">=", 1),
            Threshold(f"memory traffic {name}/SGD", ">=", 1.5),
        ),
        (Threshold(f"{name} state numbers/param", "<=", 0),),
    )


# Chapter sections (headings of chapters/claims.ipynb) where the deciding figures are.
GRID = "The learning-rate grid on the adding problem"
SURFACES = "Convex and non-convex surfaces"
DATA = "Data size and one sample at a time"
COST = "Cost"

ADDING = (
    "adding problem (T = adding_seq_len), Elman RNN, lr grid per optimizer, "
    "seeds averaged; steps until the held-out MSE first falls to "
    "target_fraction × the baseline, at the fastest grid lr"
)
WINDOW = (
    "adding problem lr grid (half-decade steps): decades of lr whose final held-out MSE "
    "is within window_margin of the way from the best to the baseline"
)


def _sgd_simple(lab: Lab) -> dict[str, float]:
    costs = lab.costs
    fewest = min(costs[o]["ops"] for o in _others("sgd"))
    return {
        "SGD tensor ops/step": costs["sgd"]["ops"],
        "SGD ops / fewest ops of the others": costs["sgd"]["ops"] / fewest,
        "SGD state numbers/param": costs["sgd"]["state"],
    }


def _sgd_data(lab: Lab) -> dict[str, float]:
    sizes = lab.data_size
    small, large = sorted(sizes)
    return {
        "train-set size ratio": large / small,
        "samples/step, small split": sizes[small],
        "samples/step, large split": sizes[large],
        "samples/step large/small": sizes[large] / sizes[small],
        "SGD state numbers/param": lab.costs["sgd"]["state"],
    }


def _sgd_convex(lab: Lab) -> dict[str, float]:
    quad = lab.landscapes["quadratic"]
    fastest = min(quad[o]["best_steps"] for o in _others("sgd"))
    return {
        "SGD converged fraction": quad["sgd"]["best_converged"],
        "SGD steps / fastest other": _ratio(quad["sgd"]["best_steps"], fastest),
    }


def _sgd_noise(lab: Lab) -> dict[str, float]:
    grid, batches = lab.grid, lab.sgd_batches
    fastest = min(grid[o]["fastest_steps"] for o in _others("sgd"))
    return {
        "SGD steps": grid["sgd"]["fastest_steps"],
        "fastest other's steps": fastest,
        "SGD steps / fastest other": _ratio(grid["sgd"]["fastest_steps"], fastest),
        "loss with 8× batch / loss": batches["large_loss"] / batches["small_loss"],
    }


def _sgd_surfaces(lab: Lab) -> dict[str, float]:
    land = lab.landscapes
    return {
        "SGD global-minimum fraction (double well)": float(np.mean(land["double_well"]["sgd"])),
        "SGD distance to Rosenbrock minimum": land["rosenbrock"]["sgd"]["distance"],
    }


def _sgd_single(lab: Lab) -> dict[str, float]:
    single = lab.single_sample
    mini = f"batch {lab.s.batch_size}"
    return {
        "loss batch 1 / minibatch, same samples": single["batch 1"]["loss"] / single[mini]["loss"],
        "steps batch 1 / minibatch": single["batch 1"]["steps"] / single[mini]["steps"],
    }


def _momentum_faster(lab: Lab) -> dict[str, float]:
    quad = lab.landscapes["quadratic"]
    return {
        **_speed("momentum", "sgd")(lab),
        "quadratic steps momentum/SGD": _ratio(
            quad["momentum"]["best_steps"], quad["sgd"]["best_steps"]
        ),
    }


def _momentum_minima(lab: Lab) -> dict[str, float]:
    wells = lab.landscapes["double_well"]
    return {
        "global-minimum fraction momentum − SGD": float(
            np.mean(wells["momentum"]) - np.mean(wells["sgd"])
        ),
        "momentum fraction": float(np.mean(wells["momentum"])),
        "SGD fraction": float(np.mean(wells["sgd"])),
    }


def _momentum_damping(lab: Lab) -> dict[str, float]:
    damping = lab.landscapes["damping"]
    return {
        "steep-axis path length momentum/SGD": damping["momentum"]["path_length"]
        / damping["sgd"]["path_length"],
        "direction reversals momentum/SGD": _ratio(
            damping["momentum"]["reversals"], damping["sgd"]["reversals"]
        ),
    }


def _momentum_beta(lab: Lab) -> dict[str, float]:
    finals = {
        beta: np.mean([h.final_loss if math.isfinite(h.final_loss) else math.inf for h in runs])
        for beta, runs in lab.momentum_betas.items()
    }
    return {
        "worst/best final loss over β ∈ {0.5, 0.9, 0.99}": float(
            max(finals.values()) / min(finals.values())
        )
    }


def _rmsprop_adapt(lab: Lab) -> dict[str, float]:
    adapt = lab.adaptivity
    return {
        "RMSprop step/gradient spread (p90/p10)": adapt["rmsprop"]["spread"],
        "SGD spread": adapt["sgd"]["spread"],
    }


def _rmsprop_switch(lab: Lab) -> dict[str, float]:
    digits = lab.digits
    return {
        "recovery steps RMSprop/SGD": _ratio(
            digits["rmsprop"]["recover"], digits["sgd"]["recover"]
        ),
        "RMSprop recovery steps": digits["rmsprop"]["recover"],
        "SGD recovery steps": digits["sgd"]["recover"],
    }


def _rmsprop_vanishing(lab: Lab) -> dict[str, float]:
    long = lab.long_adding
    return {
        "W_hh step per unit gradient, RMSprop/SGD": long["rmsprop"]["gain"] / long["sgd"]["gain"],
        "long-T MSE RMSprop/SGD": long["rmsprop"]["relative_loss"] / long["sgd"]["relative_loss"],
        "RMSprop MSE/baseline": long["rmsprop"]["relative_loss"],
        "SGD MSE/baseline": long["sgd"]["relative_loss"],
    }


def _adam_combines(lab: Lab) -> dict[str, float]:
    grid, ablation = lab.grid, lab.adam_ablation
    target = grid["target"]
    parents = min(grid["momentum"]["fastest_steps"], grid["rmsprop"]["fastest_steps"])
    steps = {k: float(np.mean([steps_to(h, target) for h in runs])) for k, runs in ablation.items()}
    full = steps["Adam (0.9, 0.999)"]
    return {
        "Adam steps / better parent": _ratio(grid["adam"]["fastest_steps"], parents),
        "β1=0 steps / Adam": _ratio(steps["β1 = 0 (no momentum)"], full),
        "β2=0.9 steps / Adam": _ratio(steps["β2 = 0.9 (short memory)"], full),
    }


def _adam_scale(lab: Lab) -> dict[str, float]:
    scale = lab.loss_scale
    adam, sgd = list(scale["adam"].values()), list(scale["sgd"].values())
    return {
        "Adam step/lr max/min over loss ×0.01…×100": max(adam) / min(adam),
        "Adam step/lr at ×1": scale["adam"][1.0],
        "SGD step/lr max/min": max(sgd) / min(sgd),
    }


def _adam_tasks(lab: Lab) -> dict[str, float]:
    ranks = [r["adam"] for r in lab.tasks["ranks"].values()]
    return {
        "Adam worst rank (of 4)": float(max(ranks)),
        "Adam mean rank": float(np.mean(ranks)),
        "share of (task, core) with Adam last": float(np.mean([r == 4 for r in ranks])),
    }


def _adam_tuning(lab: Lab) -> dict[str, float]:
    grid = lab.grid
    return {
        "Adam window − widest other (decades)": grid["adam"]["window"]
        - max(grid[o]["window"] for o in _others("adam")),
        "Adam window − SGD window": grid["adam"]["window"] - grid["sgd"]["window"],
        "Adam lr window (decades)": grid["adam"]["window"],
    }


def _adam_generalise(lab: Lab) -> dict[str, float]:
    digits, text = lab.digits, lab.text_gap
    return {
        "digits gap Adam − SGD (nats)": digits["adam"]["gap"] - digits["sgd"]["gap"],
        "text gap Adam − SGD (nats/char)": text["adam"] - text["sgd"],
        "digits gap Adam": digits["adam"]["gap"],
        "digits gap SGD": digits["sgd"]["gap"],
    }


SENSITIVE = Rule(
    (Threshold("{} lr window (decades)", "<=", 1.5),),
    (Threshold("{} lr window (decades)", ">=", 3),),
)


def _sensitive(name: str) -> Rule:
    return Rule(
        tuple(Threshold(t.figure.format(name), t.op, t.value) for t in SENSITIVE.supported),
        tuple(Threshold(t.figure.format(name), t.op, t.value) for t in SENSITIVE.not_supported),
    )


def _faster(name: str, reference: str) -> Rule:
    figure = f"steps to target, {name}/{reference}"
    return Rule((Threshold(figure, "<=", 0.7),), (Threshold(figure, ">=", 1.0),))


CLAIMS: tuple[Claim, ...] = (
    # --- SGD
    Claim(
        "sgd-simple",
        "sgd",
        "SGD is simple and easy to implement.",
        "count the tensor operations one optimizer step makes on a parameter (second step) "
        "and the optimizer state it keeps",
        _sgd_simple,
        Rule(
            (
                Threshold("SGD ops / fewest ops of the others", "<=", 0.7),
                Threshold("SGD state numbers/param", "<=", 0),
            ),
            (Threshold("SGD ops / fewest ops of the others", ">=", 1.0),),
        ),
        shown=(
            "SGD tensor ops/step",
            "SGD ops / fewest ops of the others",
            "SGD state numbers/param",
        ),
        section=COST,
    ),
    Claim(
        "sgd-large-data",
        "sgd",
        "SGD copes with very large data sets: the cost of a step does not grow with the data.",
        "digits with a small (25 %) and a large (75 %) training split: training samples "
        "read per SGD step, and the optimizer state, which does not depend on the data",
        _sgd_data,
        Rule(
            (
                Threshold("samples/step large/small", "<=", 1.05),
                Threshold("SGD state numbers/param", "<=", 0),
            ),
            (Threshold("samples/step large/small", ">=", 2.0),),
        ),
        shown=("train-set size ratio", "samples/step large/small", "SGD state numbers/param"),
        section=DATA,
    ),
    Claim(
        "sgd-convex",
        "sgd",
        "SGD works well on simple convex problems.",
        "quadratic ravine (condition number kappa), landscape_starts random starts, best "
        "lr of a grid: share of starts within 1e-4 of the minimum, steps against the "
        "fastest other method",
        _sgd_convex,
        Rule(
            (
                Threshold("SGD converged fraction", ">=", 0.999),
                Threshold("SGD steps / fastest other", "<=", 3),
            ),
            (Threshold("SGD converged fraction", "<=", 0.5),),
        ),
        section=SURFACES,
    ),
    Claim(
        "sgd-slow-noisy",
        "sgd",
        "SGD converges slowly because its updates are noisy.",
        ADDING + "; and SGD's final MSE with an 8× larger batch (less gradient noise) "
        "relative to the grid's batch, same lr and steps",
        _sgd_noise,
        Rule(
            (
                Threshold("SGD steps / fastest other", ">=", 1.5),
                Threshold("loss with 8× batch / loss", "<=", 0.8),
            ),
            (Threshold("SGD steps / fastest other", "<=", 1.0),),
        ),
        shown=("SGD steps", "fastest other's steps", "loss with 8× batch / loss"),
        section=GRID,
    ),
    Claim(
        "sgd-lr-sensitive",
        "sgd",
        "SGD is sensitive to the learning rate.",
        WINDOW,
        _lr_window("sgd"),
        _sensitive("sgd"),
        section=GRID,
    ),
    Claim(
        "sgd-local-minima",
        "sgd",
        "SGD may struggle with complicated loss surfaces and local minima.",
        "double well, landscape_starts random starts, lr 0.01/0.03/0.1: share ending at "
        "the global minimum; Rosenbrock from its standard start: distance to the minimum after "
        "landscape_steps at the best lr of a grid",
        _sgd_surfaces,
        Rule(
            (
                Threshold("SGD global-minimum fraction (double well)", "<=", 0.75),
                Threshold("SGD distance to Rosenbrock minimum", ">=", 0.01),
            ),
            (
                Threshold("SGD global-minimum fraction (double well)", ">=", 0.9),
                Threshold("SGD distance to Rosenbrock minimum", "<=", 0.01),
            ),
        ),
        section=SURFACES,
    ),
    Claim(
        "sgd-one-sample",
        "sgd",
        "(Summary table) SGD steps on one training sample at a "
        "time; this works as well as steps on minibatches.",
        "digits, SGD with batch 1 against minibatches after the same number of samples "
        "(minibatch_samples): final held-out loss, mean over seeds",
        _sgd_single,
        Rule(
            (Threshold("loss batch 1 / minibatch, same samples", "<=", 1.1),),
            (Threshold("loss batch 1 / minibatch, same samples", ">=", 1.5),),
        ),
        section=DATA,
    ),
    # --- Momentum
    Claim(
        "momentum-faster",
        "momentum",
        "Momentum converges faster than SGD.",
        ADDING + "; and steps to 1e-4 on the quadratic ravine at each one's best lr",
        _momentum_faster,
        Rule(
            (
                Threshold("steps to target, momentum/sgd", "<=", 0.7),
                Threshold("quadratic steps momentum/SGD", "<=", 0.7),
            ),
            (
                Threshold("steps to target, momentum/sgd", ">=", 1.0),
                Threshold("quadratic steps momentum/SGD", ">=", 1.0),
            ),
        ),
        shown=("momentum steps", "sgd steps", "quadratic steps momentum/SGD"),
        section=GRID,
    ),
    Claim(
        "momentum-local-minima",
        "momentum",
        "Momentum helps escape local minima.",
        "double well, the same random starts, momentum 0.9 against SGD at the same "
        "learning rates (0.01, 0.03, 0.1): share of starts that end at the global minimum",
        _momentum_minima,
        Rule(
            (Threshold("global-minimum fraction momentum − SGD", ">=", 0.1),),
            (Threshold("global-minimum fraction momentum − SGD", "<=", 0),),
        ),
        section=SURFACES,
    ),
    Claim(
        "momentum-damps",
        "momentum",
        "Momentum damps oscillations.",
        "quadratic ravine: SGD at lr = 1.8/kappa zig-zags across the steep axis; momentum "
        "0.9 at lr × 0.1 (the same step for a steady gradient); distance travelled along "
        "the steep axis in 100 steps, and how often that motion reverses",
        _momentum_damping,
        Rule(
            (Threshold("steep-axis path length momentum/SGD", "<=", 0.7),),
            (Threshold("steep-axis path length momentum/SGD", ">=", 1.0),),
        ),
        shown=("steep-axis path length momentum/SGD", "direction reversals momentum/SGD"),
        section="Momentum",
    ),
    Claim(
        "momentum-beta-tuning",
        "momentum",
        "Momentum's coefficient needs careful tuning.",
        "adding problem at momentum's best grid lr with β = 0.5, 0.9, 0.99: spread of the "
        "final held-out MSE",
        _momentum_beta,
        Rule(
            (Threshold("worst/best final loss over β ∈ {0.5, 0.9, 0.99}", ">=", 1.5),),
            (Threshold("worst/best final loss over β ∈ {0.5, 0.9, 0.99}", "<=", 1.2),),
        ),
        section="Momentum",
    ),
    Claim(
        "momentum-lr-sensitive",
        "momentum",
        "Momentum is still sensitive to the learning rate.",
        WINDOW,
        _lr_window("momentum"),
        _sensitive("momentum"),
        section=GRID,
    ),
    # --- RMSprop
    Claim(
        "rmsprop-per-parameter",
        "rmsprop",
        "RMSprop adapts the step size of each parameter.",
        "adding problem, 50 steps at the best grid lr, then one step: the effective step "
        "|Δθ|/(lr·|g|) of every weight; spread between its 90th and 10th percentile",
        _rmsprop_adapt,
        Rule(
            (Threshold("RMSprop step/gradient spread (p90/p10)", ">=", 10),),
            (Threshold("RMSprop step/gradient spread (p90/p10)", "<=", 2),),
        ),
        section="RMSprop",
    ),
    Claim(
        "rmsprop-non-stationary",
        "rmsprop",
        "RMSprop suits non-stationary objectives such as training recurrent networks.",
        "digits for digits_steps, then the labels shift (c → c+1 mod 10): steps after the "
        "switch until held-out accuracy is back at accuracy_target, RMSprop against SGD",
        _rmsprop_switch,
        Rule(
            (Threshold("recovery steps RMSprop/SGD", "<=", 0.7),),
            (Threshold("recovery steps RMSprop/SGD", ">=", 1.0),),
        ),
        shown=("RMSprop recovery steps", "SGD recovery steps", "recovery steps RMSprop/SGD"),
        section="RMSprop",
    ),
    Claim(
        "rmsprop-vanishing",
        "rmsprop",
        "RMSprop helps against vanishing gradients.",
        "adding problem with T = long_seq_len at each one's best short-T lr: W_hh's step "
        "per unit gradient (‖ΔW_hh‖/(lr‖g‖)) and the final held-out MSE, RMSprop against SGD",
        _rmsprop_vanishing,
        Rule(
            (
                Threshold("W_hh step per unit gradient, RMSprop/SGD", ">=", 10),
                Threshold("long-T MSE RMSprop/SGD", "<=", 0.8),
            ),
            (
                Threshold("W_hh step per unit gradient, RMSprop/SGD", "<=", 10),
                Threshold("long-T MSE RMSprop/SGD", ">=", 1.0),
            ),
        ),
        shown=(
            "W_hh step per unit gradient, RMSprop/SGD",
            "long-T MSE RMSprop/SGD",
            "RMSprop MSE/baseline",
            "SGD MSE/baseline",
        ),
        section="RMSprop",
    ),
    Claim(
        "rmsprop-lr-tuning",
        "rmsprop",
        "RMSprop's learning rate still needs tuning.",
        WINDOW,
        _lr_window("rmsprop"),
        _sensitive("rmsprop"),
        section=GRID,
    ),
    Claim(
        "rmsprop-cost",
        "rmsprop",
        "RMSprop needs more computation and memory than SGD.",
        "optimizer state counted per parameter; memory traffic per parameter per step "
        "(3 + 2 × state numbers) and tensor operations per step, counted; step time is "
        "measured in the chapter but kept out of the ledger, as it varies run to run",
        _cost("rmsprop"),
        _cost_rule("rmsprop"),
        section=COST,
    ),
    # --- Adam
    Claim(
        "adam-combines",
        "adam",
        "Adam combines the strengths of momentum and RMSprop.",
        ADDING + "; Adam against the faster of its two parents, and ablated: β1 = 0 (no "
        "momentum) and β2 = 0.9, at Adam's fastest lr",
        _adam_combines,
        Rule(
            (
                Threshold("Adam steps / better parent", "<=", 1.0),
                Threshold("β1=0 steps / Adam", ">=", 1.2),
            ),
            (Threshold("Adam steps / better parent", ">=", 1.5),),
        ),
        section="Adam",
    ),
    Claim(
        "adam-moments",
        "adam",
        "Adam sets each step from moment estimates, so its step "
        "stays near the learning rate whatever the gradient's scale.",
        "adding problem, 20 steps at lr 1e-3 with the loss multiplied by 0.01, 1 and 100: "
        "mean |Δθ| per step divided by lr, Adam against SGD",
        _adam_scale,
        Rule(
            (Threshold("Adam step/lr max/min over loss ×0.01…×100", "<=", 1.5),),
            (Threshold("Adam step/lr max/min over loss ×0.01…×100", ">=", 10),),
        ),
        shown=(
            "Adam step/lr max/min over loss ×0.01…×100",
            "Adam step/lr at ×1",
            "SGD step/lr max/min",
        ),
        section="Adam",
    ),
    Claim(
        "adam-across",
        "adam",
        "Adam works well across architectures and data sets.",
        "adding, copy, digits and text × Elman and LSTM cores, each optimizer at its best "
        "adding-grid lr, task_steps steps: rank of Adam's held-out loss among the four",
        _adam_tasks,
        Rule(
            (Threshold("Adam worst rank (of 4)", "<=", 2),),
            (Threshold("share of (task, core) with Adam last", ">=", 0.5),),
        ),
        shown=("Adam worst rank (of 4)", "Adam mean rank", "share of (task, core) with Adam last"),
        section="Adam",
    ),
    Claim(
        "adam-less-tuning",
        "adam",
        "Adam needs less tuning of its learning rate and other hyperparameters.",
        WINDOW + "; Adam against the other three",
        _adam_tuning,
        Rule(
            (Threshold("Adam window − widest other (decades)", ">=", 0.5),),
            (Threshold("Adam window − SGD window", "<=", 0),),
        ),
        shown=(
            "Adam lr window (decades)",
            "Adam window − widest other (decades)",
            "Adam window − SGD window",
        ),
        section=GRID,
    ),
    Claim(
        "adam-faster",
        "adam",
        "Adam converges faster (than SGD).",
        ADDING,
        _speed("adam", "sgd"),
        _faster("adam", "sgd"),
        shown=("adam steps", "sgd steps"),
        section=GRID,
    ),
    Claim(
        "adam-cost",
        "adam",
        "Adam is more computationally expensive than SGD.",
        "optimizer state counted per parameter; memory traffic per parameter per step "
        "(3 + 2 × state numbers) and tensor operations per step, counted; step time is "
        "measured in the chapter but kept out of the ledger, as it varies run to run",
        _cost("adam"),
        _cost_rule("adam"),
        section=COST,
    ),
    Claim(
        "adam-generalises-worse",
        "adam",
        "Adam may generalise worse than SGD, or overfit.",
        "held-out minus training loss after training: digits (digits_steps) and text "
        "(text_steps), Adam minus SGD",
        _adam_generalise,
        Rule(
            (
                Threshold("digits gap Adam − SGD (nats)", ">=", 0.05),
                Threshold("text gap Adam − SGD (nats/char)", ">=", 0.05),
            ),
            (
                Threshold("digits gap Adam − SGD (nats)", "<=", 0),
                Threshold("text gap Adam − SGD (nats/char)", "<=", 0),
            ),
        ),
        section="Generalisation",
    ),
)


# --- What the chapter shows: its curves and tables ----------------------------------------

LEDGER_COLUMNS = ("claim", "measured", "rule", "verdict")

# PyTorch's implementations of Adam beside its plain SGD, and rnnopt's Adam: the chapter times
# one step of each on the same parameter (`median_step_seconds`).
IMPLEMENTATIONS: dict[str, Callable[[list[torch.Tensor]], torch.optim.Optimizer]] = {
    "SGD, torch for-loop": lambda p: torch.optim.SGD(p, lr=1e-3, foreach=False),
    "Adam, torch for-loop": lambda p: torch.optim.Adam(p, foreach=False),
    "Adam, torch foreach": lambda p: torch.optim.Adam(p, foreach=True),
    "Adam, torch fused": lambda p: torch.optim.Adam(p, fused=True),
    "Adam, rnnopt": lambda p: make_optimizer("adam", p),
}


def eval_curves(
    histories: Sequence[History], metric: bool = False
) -> tuple[list[int], list[list[float]]]:
    """(steps, one curve per run) of the held-out loss (the held-out metric if `metric`), as
    `rnnopt.plots.plot_mean_spread` takes them."""
    curves = [list(h.eval_metric if metric else h.eval_loss) for h in histories]
    return list(histories[0].eval_step), curves


def relearning_curves(
    before: Sequence[History], after: Sequence[History], offset: int
) -> tuple[np.ndarray, list[list[float]]]:
    """Held-out accuracy of each seed before and then after the labels changed, end to end
    (the steps after the change are counted from `offset`, where it happened)."""
    steps = np.concatenate([np.array(before[0].eval_step), offset + np.array(after[0].eval_step)])
    curves = [list(b.eval_metric) + list(a.eval_metric) for b, a in zip(before, after, strict=True)]
    return steps, curves


def ledger_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] = LEDGER_COLUMNS) -> str:
    """Ledger rows as a Markdown table of `columns` (a `|` in a cell escaped; verdicts bold)."""

    def cell(row: Mapping[str, Any], key: str) -> str:
        text = str(row[key]).replace("|", "\\|")
        return f"**{text}**" if key == "verdict" else text

    return plots.markdown_table(columns, [[cell(row, key) for key in columns] for row in rows])


def rules_table(claims: Iterable[Claim]) -> str:
    """Every claim with its experiment and its rule, as they stand before anything runs."""
    rows = [
        {"claim": f"`{c.id}`: {c.text}", "experiment": c.experiment, "rule": c.rule.text()}
        for c in claims
    ]
    return ledger_table(rows, ("claim", "experiment", "rule"))


def verdict_counts(rows: Sequence[Mapping[str, Any]]) -> str:
    """How many claims got each verdict, e.g. "21 claims: 9 supported, 8 mixed, 4 not
    supported"."""
    counts = collections.Counter(row["verdict"] for row in rows)
    shown = ", ".join(f"{counts[v]} {v}" for v in ("supported", "mixed", "not supported"))
    return f"{len(rows)} claims: {shown}"


def grid_table(lab: Lab) -> str:
    """Per optimizer on the learning-rate grid: best lr and final MSE, window, steps to target."""
    rows = []
    for name in FOUR:
        g = lab.grid[name]
        edge = " (grid edge)" if g["window_at_edge"] else ""
        steps = "never" if math.isinf(g["fastest_steps"]) else f"{g['fastest_steps']:.0f}"
        window = f"{g['window']:.1f}{edge}"
        rows.append(
            [plots.label(name), f"{g['best_lr']:g}", f"{g['best_loss']:.2g}", window, steps]
        )
    headers = ["optimizer", "best lr", "best final MSE", "lr window (decades)", "steps to target"]
    return plots.markdown_table(headers, rows)


def data_size_table(lab: Lab) -> str:
    """Training samples an SGD step reads, on a small and on a large training split."""
    rows = [[f"{n} digits", f"{v:g}"] for n, v in sorted(lab.data_size.items())]
    return plots.markdown_table(["training split", "samples read per step"], rows)


def single_sample_table(lab: Lab) -> str:
    """SGD with one sample per step against minibatch SGD, after the same number of samples."""
    rows = []
    for key, v in lab.single_sample.items():
        if key != "baseline":
            samples = v["steps"] * (1 if key == "batch 1" else lab.s.batch_size)
            rows.append([key, f"{v['lr']:g}", v["steps"], samples, f"{v['loss']:.3g}"])
    headers = ["SGD", "lr", "steps", "samples seen", "held-out loss (nats)"]
    return plots.markdown_table(headers, rows)


def cost_table(lab: Lab) -> str:
    """Per optimizer, counted: state numbers per parameter, tensor operations per step, and the
    memory-traffic model."""
    costs = lab.costs
    rows = [
        [plots.label(n), *(f"{costs[n][key]:g}" for key in ("state", "ops", "traffic"))]
        for n in FOUR
    ]
    headers = ["optimizer", "state numbers / parameter", "tensor ops / step"]
    return plots.markdown_table([*headers, "memory traffic / parameter"], rows)


def rung(ratio: float, rungs: Sequence[float] = (1, 2, 5, 20, 100)) -> str:
    """The highest rung of a coarse ladder that `ratio` clears: stabler than the ratio itself."""
    cleared = [r for r in rungs if ratio >= r]
    return f"≥ {cleared[-1]}×" if cleared else "< 1×"


def timing_table(lab: Lab) -> str:
    """Measured step time over SGD's (as the rung it clears), beside the traffic model's ratio."""
    s, costs = lab.s, lab.costs
    rows = []
    for name in FOUR:
        measured = rung(costs[name]["seconds"] / costs["sgd"]["seconds"])
        rows.append(
            [
                plots.label(name),
                measured,
                f"{costs[name]['traffic'] / costs['sgd']['traffic']:.1f}×",
            ]
        )
    timed = f"step time / SGD's, {s.timing_size:g} parameters (median of {s.timing_repeats})"
    return plots.markdown_table(["optimizer", timed, "traffic model / SGD's"], rows)


def implementation_table(seconds: Mapping[str, float]) -> str:
    """Step times of `IMPLEMENTATIONS` (name → median seconds) over the SGD one's, beside the
    traffic model's ratio (7/3 for Adam: 3 + 2 × 2 numbers moved per parameter, against 3)."""
    sgd = seconds["SGD, torch for-loop"]
    rows = [
        [
            name,
            f"{1e3 * v:.2f}",
            f"{v / sgd:.1f}×",
            "1.0×" if name.startswith("SGD") else f"{7 / 3:.1f}×",
        ]
        for name, v in seconds.items()
    ]
    headers = ["implementation", "ms / step", "time / SGD's", "traffic model / SGD's"]
    return plots.markdown_table(headers, rows)


def gap_table(lab: Lab) -> str:
    """Held-out minus training loss after training, SGD and Adam, on digits and on text."""
    digits, text = lab.digits, lab.text_gap
    rows = [[plots.label(n), f"{digits[n]['gap']:.2g}", f"{text[n]:.2g}"] for n in ("sgd", "adam")]
    headers = ["optimizer", "digits: held-out − train (nats)", "text: held-out − train (nats/char)"]
    return plots.markdown_table(headers, rows)


def check_ledger_csv(name: str, value: Any) -> Path | None:
    """Where the chapter writes the ledger: a file that can be written, or None for "" (the
    ledger is not written); else ValueError, before any experiment runs."""
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(invalid(name, value, "a path to a file, or '' for nowhere"))
    return None if value == "" else check_output_file(name, value)
