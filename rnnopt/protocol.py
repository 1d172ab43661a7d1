"""The measurement protocol: one definition of every quantity the book reports.

The claims ledger, the comparison, the algorithm chapters and `rnnopt evidence` all measure
through these functions, so "final metric", "success", "tuned learning rate" or "interval"
means the same thing on every page. The rules and thresholds they are applied with are fixed
in advance in `data/registration.yaml`; this module holds no verdict of its own.

    rel = relative_error(history, task)               # 0 perfect, 1 = the trivial predictor
    low, high = bootstrap_interval(errors)           # 95 % over seeds
    low, high = paired_interval(sgd, adam, ratio)    # seed pairs resampled together
    expected_best(grid_results, k=3)                 # Dodge et al. (2019)
    kaplan_meier_median(steps, succeeded)            # censored time to success

Conventions: every "error" here is lower-is-better; every interval of a mean, ratio or
difference is a 95 % BCa bootstrap over seeds (10,000 resamples, a fixed generator, so the same
data give the same interval); success fractions get Wilson (and Newcombe) intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnopt.checks import invalid
from rnnopt.train import History

__all__ = [
    "CLIP_FACTOR",
    "clip_threshold",
    "TUNING_SEEDS",
    "EVALUATION_SEEDS",
    "SUCCESS",
    "Criterion",
    "relative_error",
    "run_error",
    "final_relative_error",
    "success_step",
    "steps_to_success",
    "kaplan_meier",
    "kaplan_meier_median",
    "bootstrap_interval",
    "wilson_interval",
    "newcombe_interval",
    "random_rate_cost",
    "paired_interval",
    "probability_of_improvement",
    "hierarchical_interval",
    "expected_best",
    "lr_lattice",
    "lattice_index",
    "within_a_decade",
    "Tuned",
    "tune",
    "extend_grid",
    "Search",
    "search",
    "verdict",
    "state_bytes_per_parameter",
    "median_step_time",
]

# One clipping policy for every comparison: clip_threshold below (ten times the typical
# gradient norm of the task's model at initialisation).
# Tuning seeds choose the learning rate; evaluation seeds, which no tuning run uses, report it.
TUNING_SEEDS = (0, 1)
EVALUATION_SEEDS = tuple(range(100, 110))
GRID_STEPS_PER_DECADE = 3  # learning rates on the lattice 10^(k/3)
MAX_EXTENSIONS = 4  # times a grid is widened while its best rate sits on an edge
MAX_FLAT_EXTENSIONS = 2  # times a grid on which nothing learned is widened (both sides each time)
NOTHING_LEARNED = 0.99  # a grid whose every rate scores at least this learned nothing anywhere
# Before a ratio of relative errors, each is floored here (1 % of the trivial predictor's error),
# so that a run that learned the task almost perfectly does not divide by ~0. Low enough that
# it does not tie errors a practitioner would tell apart (registration amendment 7).
ERROR_FLOOR = 0.01
# A run whose held-out loss climbs above this many times its loss at step 0 is stopped and
# counted as diverged (registration amendment 12): its error is the cap, 1, either way.
DIVERGE_FACTOR = 100.0
# The evidence tier's compute budget (issue 8): no study starts whose projected CPU time
# would take the tier past it (amendment 12; 40 since amendment 13, was 24).
TIER_BUDGET_CPU_HOURS = 40.0
BOOTSTRAP_RESAMPLES = 10_000
CONFIDENCE = 0.95


# --- The final metric ---------------------------------------------------------------------


def relative_error(metric: float, baseline: float, higher_is_better: bool) -> float:
    """How much of the trivial predictor's error is left: 0 is perfect, 1 learned nothing.

    Lower-is-better metrics (MSE, bits per char): metric / baseline. Higher-is-better ones
    (accuracy): (1 − metric) / (1 − baseline). One scale for every task, so errors of different
    tasks can be compared and averaged (geometrically) across a tier.
    """
    if higher_is_better:
        return (1.0 - metric) / (1.0 - baseline)
    return metric / baseline


def run_error(diverged: bool, metric: float, baseline: float, higher_is_better: bool) -> float:
    """A run's score: the relative error of its final held-out metric, at most 1.

    A diverged run scores 1, as the trivial predictor does: it is counted, never dropped (a
    NaN would drop it from a mean, and an infinity would make every interval infinite). A run
    that ends worse than the trivial predictor also scores 1, so that blowing up without
    diverging never scores worse than diverging.
    """
    if diverged or not math.isfinite(metric):
        return 1.0
    return min(1.0, relative_error(metric, baseline, higher_is_better))


def final_relative_error(history: History, baseline: float, higher_is_better: bool) -> float:
    """`run_error` of a run's history: its held-out metric after the last step."""
    metric = history.eval_metric[-1] if history.eval_metric else math.nan
    return run_error(history.diverged, metric, baseline, higher_is_better)


# What "overfitting" is read from beside the held-out error (adam-generalises-worse): the end of
# the run against the training loss of its last tenth (the minibatch losses it logged there),
# and against the best held-out loss the run ever had.
GAP_TAIL = 0.1


def generalisation_gap(history: History, tail: float = GAP_TAIL) -> float:
    """Held-out loss after the last step minus the mean training (minibatch) loss logged over
    the last `tail` of the run: how much worse the model does on data it was not trained on."""
    if not 0 < tail <= 1:
        raise ValueError(invalid("tail", tail, "a share of the run in (0, 1]"))
    losses = history.loss[-max(1, round(tail * len(history.loss))) :]
    return float(history.eval_loss[-1] - np.mean(losses))


def held_out_rise(history: History) -> float:
    """How far the held-out loss ended above its lowest value during the run, as a fraction of
    that lowest value (0: it never turned up; 0.3: it ended 30 % above its best)."""
    return float(history.eval_loss[-1] / min(history.eval_loss) - 1)


# --- Clipping ------------------------------------------------------------------------------

CLIP_FACTOR = 10.0  # Pascanu et al. (2013): clip between ½ and 10 times the typical norm


def clip_threshold(task: Any, model: Any, batch_size: int, batches: int = 20) -> float:
    """The protocol's clipping level for a task and model: CLIP_FACTOR times the median global
    gradient norm at the initial weights (seed 0) over `batches` minibatches, to 2 significant
    digits. It leaves ordinary steps alone and stops the rare exploding one; a fixed level
    such as 1.0 would instead clip nearly every step of some tasks, turning SGD into
    normalised gradient descent.
    """
    import torch

    rng = np.random.default_rng(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        norms = []
        for _ in range(batches):
            x, y = task.train_batch(batch_size, rng)
            model.zero_grad(set_to_none=True)
            task.loss(model(x), y).backward()
            norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), math.inf)))
    model.zero_grad(set_to_none=True)
    return float(f"{CLIP_FACTOR * float(np.median(norms)):.2g}")


def clipped_share(history: History) -> float:
    """The share of a run's training steps whose gradient was clipped: near 0 when clipping only
    catches explosions, near 1 when it rescales every step (normalised gradient descent)."""
    return history.clipped_steps / history.steps_done if history.steps_done else math.nan


# --- Success and time to success ------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """A run succeeds when its held-out metric is at most (or at least) `threshold`."""

    threshold: float
    higher_is_better: bool

    def met(self, metric: float) -> bool:
        if not math.isfinite(metric):
            return False
        return metric >= self.threshold if self.higher_is_better else metric <= self.threshold


# The per-task success criteria of data/registration.yaml (a test checks the two agree).
SUCCESS: dict[str, Criterion] = {
    "adding": Criterion(0.01, higher_is_better=False),  # MSE; 6 % of the 1/6 baseline
    "copy": Criterion(0.9, higher_is_better=True),  # recall accuracy; memoryless 1/8
    "digits": Criterion(0.9, higher_is_better=True),  # accuracy
    "text": Criterion(2.5, higher_is_better=False),  # bits per character
}


def success_step(history: History, criterion: Criterion) -> int | None:
    """The first evaluated step at which the held-out metric meets `criterion` (None: never)."""
    for step, metric in zip(history.eval_step, history.eval_metric, strict=True):
        if criterion.met(metric):
            return step
    return None


def steps_to_success(
    histories: Sequence[History], criterion: Criterion, budget: int
) -> tuple[np.ndarray, np.ndarray]:
    """(steps, succeeded) for every run, censored: a run that never succeeds — diverged runs
    included — is kept, with `budget` as its time and succeeded False."""
    steps, succeeded = [], []
    for history in histories:
        step = success_step(history, criterion)
        steps.append(budget if step is None else step)
        succeeded.append(step is not None)
    return np.asarray(steps, dtype=float), np.asarray(succeeded, dtype=bool)


def kaplan_meier(times: Sequence[float], events: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """The product-limit estimate of P(time to success > t): (event times, survival after each).

    S(t) = Π_{t_i ≤ t} (1 − d_i / n_i), with d_i successes at t_i and n_i runs still at risk
    (neither succeeded nor censored before t_i). A censored run leaves the risk set after its
    censoring time; at equal times successes count before censorings, the usual convention.
    """
    times = np.asarray(times, dtype=float)
    events = np.asarray(events, dtype=bool)
    if times.shape != events.shape or times.ndim != 1:
        raise ValueError(
            invalid(
                "events.shape",
                events.shape,
                f"a 1-D shape, that of times (times.shape={times.shape})",
            )
        )
    at, survival, s = [], [], 1.0
    for t in np.unique(times[events]):
        at_risk = int(np.sum(times >= t))
        successes = int(np.sum((times == t) & events))
        s *= 1.0 - successes / at_risk
        at.append(t)
        survival.append(s)
    return np.asarray(at), np.asarray(survival)


def kaplan_meier_median(times: Sequence[float], events: Sequence[bool]) -> float:
    """The first time at which the estimated fraction not yet successful falls to ½ or below;
    NaN when it never does (fewer than half succeeded within the budget: say so, do not
    average the successes)."""
    at, survival = kaplan_meier(times, events)
    below = np.nonzero(survival <= 0.5)[0]
    return float(at[below[0]]) if below.size else math.nan


def kaplan_meier_median_interval(
    times: Sequence[float], events: Sequence[bool], seed: int = 0
) -> tuple[float, float]:
    """The 95 % percentile bootstrap interval of `kaplan_meier_median`, resampling the runs with
    replacement; an end at which the resampled median is not reached is inf.

    Where every censoring comes at or after the last success (runs censored at their common
    budget, as in every study here), the product-limit estimate is the empirical one and the
    median is the ⌈n/2⌉-th smallest time with the runs that never succeeded counted as never:
    computed so, at once for every resample; otherwise resample by resample."""
    times, events = np.asarray(times, dtype=float), np.asarray(events, dtype=bool)
    _check_sample("times", times)
    kaplan_meier(times, events)  # the same checks of shape
    if not events.any():
        return math.inf, math.inf
    index = _resample_indices(times.size, seed)
    if (~events).any() and times[~events].min() < times[events].max():
        medians = np.array([kaplan_meier_median(times[i], events[i]) for i in index])
        medians = np.where(np.isnan(medians), np.inf, medians)
    else:
        never = np.where(events, times, np.inf)[index]
        medians = np.sort(never, axis=1)[:, math.ceil(times.size / 2) - 1]
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(medians, [alpha, 1 - alpha], method="inverted_cdf")
    return float(low), float(high)


# --- Intervals -------------------------------------------------------------------------------


def _resample_indices(n: int, seed: int) -> np.ndarray:
    """BOOTSTRAP_RESAMPLES rows of n seed indices drawn with replacement (fixed generator)."""
    return np.random.default_rng(seed).integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    alpha = (1 - CONFIDENCE) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def _bca(
    statistic_of: Callable[[np.ndarray], np.ndarray], n: int, seed: int
) -> tuple[float, float]:
    """The bias-corrected and accelerated bootstrap interval (Efron 1987) of a statistic that
    `statistic_of(index)` computes from rows of seed indices. Percentile intervals from ten
    seeds cover a skewed mean well below 95 %; BCa moves the percentiles by the bootstrap's
    median bias (z0) and by how fast the statistic's spread changes with it (a, from the
    jackknife)."""
    from scipy.special import ndtr, ndtri

    replicates = statistic_of(_resample_indices(n, seed))
    estimate = float(statistic_of(np.arange(n)[None])[0])
    replicates = replicates[np.isfinite(replicates)]
    if replicates.size == 0 or np.ptp(replicates) == 0:
        return estimate, estimate
    below = np.clip(np.mean(replicates < estimate), 1 / replicates.size, 1 - 1 / replicates.size)
    z0 = ndtri(below)
    leave_one_out = statistic_of(np.array([np.delete(np.arange(n), i) for i in range(n)]))
    spread = leave_one_out.mean() - leave_one_out
    denominator = 6 * np.sum(spread**2) ** 1.5
    acceleration = float(np.sum(spread**3) / denominator) if denominator > 0 else 0.0
    alpha = (1 - CONFIDENCE) / 2
    levels = []
    for z in (ndtri(alpha), ndtri(1 - alpha)):
        levels.append(ndtr(z0 + (z0 + z) / (1 - acceleration * (z0 + z))))
    return float(np.quantile(replicates, levels[0])), float(np.quantile(replicates, levels[1]))


def bootstrap_interval(
    values: Sequence[float], statistic: Callable[..., Any] = np.mean, *, seed: int = 0
) -> tuple[float, float]:
    """95 % BCa bootstrap interval of `statistic` over `values` (one value per seed).

    `statistic(sample, axis=-1)` reduces each resample (a row); np.mean and np.median do.
    Identical values give a zero-width interval at that value (there is nothing to resample).
    """
    data = np.asarray(values, dtype=float)
    _check_sample("values", data)
    return _bca(lambda index: statistic(data[index], axis=-1), data.size, seed)


def ratio_of_means(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """mean(a) / mean(b) for each resample (row)."""
    return np.mean(a, axis=-1) / np.mean(b, axis=-1)


def difference_of_means(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """mean(a) − mean(b) for each resample (row)."""
    return np.mean(a, axis=-1) - np.mean(b, axis=-1)


def paired_interval(
    a: Sequence[float],
    b: Sequence[float],
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray] = ratio_of_means,
    *,
    seed: int = 0,
) -> tuple[float, float]:
    """95 % BCa interval of `statistic(a, b)` resampling seed *pairs*: a[i] and b[i] share seed
    i (the same initial weights and data stream), so their shared luck cancels."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    _check_sample("a", x)
    if x.shape != y.shape:
        raise ValueError(
            invalid("b.shape", y.shape, f"a's shape {x.shape}: a and b pair up seed by seed")
        )
    _check_sample("b", y)
    return _bca(lambda index: statistic(x[index], y[index]), x.size, seed)


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a success fraction: unlike a bootstrap, it is not [0, 0]
    when no seed succeeded, nor [1, 1] when all did."""
    from scipy.special import ndtri

    if n < 1:
        raise ValueError(invalid("n", n, "a count >= 1"))
    if not 0 <= successes <= n:
        raise ValueError(invalid("successes", successes, f"a count in [0, n] (n={n!r})"))
    z = ndtri(1 - (1 - CONFIDENCE) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def newcombe_interval(successes_a: int, successes_b: int, n: int) -> tuple[float, float]:
    """95 % interval of a difference of two success fractions (a − b) from their Wilson
    intervals (Newcombe 1998, method 10): conservative for paired seeds, never degenerate."""
    pa, pb = successes_a / n, successes_b / n
    (la, ua), (lb, ub) = wilson_interval(successes_a, n), wilson_interval(successes_b, n)
    low = pa - pb - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    high = pa - pb + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return low, high


def random_rate_cost(errors: Mapping[float, Sequence[float]], best_lr: float) -> np.ndarray:
    """Per seed: the mean relative error over the lattice rates within a decade of `best_lr`
    (seven rates), minus the error at `best_lr` — what a rate picked at random within a decade
    of the right one costs, in units of the trivial predictor's error."""
    index = lattice_index(best_lr)
    rates = [
        lr_lattice(index + k) for k in range(-GRID_STEPS_PER_DECADE, GRID_STEPS_PER_DECADE + 1)
    ]
    missing = [lr for lr in rates if lr not in errors]
    if missing:
        raise ValueError(
            invalid(
                "best_lr",
                best_lr,
                f"a rate with errors at every lattice rate a decade either side of it "
                f"(errors lacks the rates {missing})",
            )
        )
    table = np.array([np.asarray(errors[lr], dtype=float) for lr in rates])
    return table.mean(axis=0) - np.asarray(errors[best_lr], dtype=float)


def hierarchical_interval(
    studies: Sequence[Mapping[str, Sequence[float]]],
    statistic: Callable[[list[dict[str, np.ndarray]]], np.ndarray],
    *,
    seed: int = 0,
) -> tuple[float, float]:
    """95 % interval of a figure computed across studies ("tier" figures).

    Each study maps optimizer -> errors seed by seed. In every resample each study's seeds are
    drawn afresh — the same draw for all its optimizers, which share their seeds — and
    `statistic` receives, per study, {optimizer: (resamples, seeds) array}, returning one value
    per resample (e.g. the geometric mean over studies of a ratio of means).
    """
    if not studies:
        raise ValueError(invalid("studies", studies, "a non-empty list of studies"))
    rng = np.random.default_rng(seed)
    drawn = []
    for index, study in enumerate(studies):
        arrays = {k: np.asarray(v, dtype=float) for k, v in study.items()}
        sizes = {a.size for a in arrays.values()}
        if len(sizes) != 1:
            raise ValueError(
                invalid(
                    f"studies[{index}] sizes",
                    {k: a.size for k, a in arrays.items()},
                    "one size for every optimizer: the optimizers of a study share their seeds",
                )
            )
        n = sizes.pop()
        index = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))
        drawn.append({k: a[index] for k, a in arrays.items()})
    return _percentiles(statistic(drawn))


def probability_of_improvement(a: Sequence[float], b: Sequence[float]) -> float:
    """P(a's error < b's error) over seed pairs, ties counting one half (as rliable reports)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.mean((x < y) + 0.5 * (x == y)))


def _check_sample(name: str, data: np.ndarray) -> None:
    if data.ndim != 1 or data.size < 2:
        raise ValueError(
            invalid(f"{name}.shape", data.shape, "(n,) with n >= 2: one value per seed")
        )
    if not np.all(np.isfinite(data)):
        raise ValueError(invalid(name, data.tolist(), "finite values"))


# --- Tuning ----------------------------------------------------------------------------------


def lr_lattice(index: int) -> float:
    """The learning rate at `index` on the 1/3-decade lattice: 10^(index/3), to 3 digits
    (1, 2.15, 4.64, 10, ... ×10^k), so a grid's rates are the same numbers in every spec."""
    return float(f"{10 ** (index / GRID_STEPS_PER_DECADE):.3g}")


def lattice_index(lr: float) -> int:
    """The lattice index of `lr`; a ValueError if `lr` is not on the lattice."""
    index = round(math.log10(lr) * GRID_STEPS_PER_DECADE)
    if lr_lattice(index) != lr:
        raise ValueError(
            invalid(
                "lr",
                lr,
                f"a rate on the 1/3-decade lattice 10^(k/3) (nearest: {lr_lattice(index)!r})",
            )
        )
    return index


@dataclass(frozen=True)
class Tuned:
    """The outcome of tuning: the chosen rate, each rate's mean error, and whether the choice
    sits on an edge of the grid (then the grid should be widened, or the edge reported)."""

    lr: float
    errors: dict[float, float]  # learning rate -> mean relative error over the tuning seeds
    edge: str | None  # None (interior), 'low' or 'high'


def within_a_decade(rates: Sequence[float], center: float) -> list[float]:
    """The lattice rates of `rates` at most a decade from `center` (at most
    2 × GRID_STEPS_PER_DECADE + 1 of them): where the sensitivity figures and the tunability
    curves look, one window of the same width for every optimizer, however far its grid was
    widened."""
    middle = lattice_index(center)
    return [lr for lr in rates if abs(lattice_index(lr) - middle) <= GRID_STEPS_PER_DECADE]


def tune(errors_by_lr: Mapping[float, Sequence[float]]) -> Tuned:
    """Choose the learning rate with the lowest mean error over the tuning seeds (ties go to the
    smaller rate) and say whether it is on an edge of the grid."""
    if len(errors_by_lr) < 1:
        raise ValueError(invalid("errors_by_lr", dict(errors_by_lr), "at least one learning rate"))
    means = {float(lr): float(np.mean(errs)) for lr, errs in sorted(errors_by_lr.items())}
    rates = list(means)
    best = min(rates, key=lambda lr: (means[lr], lr))
    edge = None
    if len(rates) == 1 or best == rates[0]:
        edge = "low"
    elif best == rates[-1]:
        edge = "high"
    return Tuned(best, means, edge)


def extend_grid(grid: Sequence[float], edge: str, points: int = 2) -> list[float]:
    """`grid` with `points` more lattice rates beyond its `edge` ('low' or 'high')."""
    indices = sorted(lattice_index(lr) for lr in grid)
    if edge == "low":
        indices = list(range(indices[0] - points, indices[0])) + indices
    elif edge == "high":
        indices = indices + list(range(indices[-1] + 1, indices[-1] + 1 + points))
    else:
        raise ValueError(invalid("edge", edge, "an edge of the grid", ("low", "high")))
    return [lr_lattice(i) for i in indices]


@dataclass(frozen=True)
class Search:
    """A finished learning-rate search: the tuning result on the final grid."""

    tuned: Tuned
    grid: list[float]
    extensions: int
    edge: str | None  # None when the chosen rate (and every rate tied with it) has `margin`
    # rates each side; 'low' / 'high' when the search ended without showing the error rise
    # beyond that edge (the chosen rate, or one tied with it, is on it); 'flat' when no rate
    # learned anything


def search(
    grid: Sequence[float],
    errors_for: Callable[[list[float]], Mapping[float, Sequence[float]]],
    margin: int = 1,
) -> Search:
    """The protocol's search: run `grid` (errors_for(rates) -> {rate: errors on the tuning
    seeds}), choose the best rate, and while it (or a rate tied with it) has fewer than `margin`
    rates on one side widen the grid by two rates beyond that side and run again — at most
    MAX_EXTENSIONS times.
    `errors_for` receives the whole grid each time, so a resumable runner reuses what it has.

    A grid on which every rate's mean error is at least NOTHING_LEARNED has not found where the
    optimizer learns: its "best" rate is noise, interior or not. It is widened on both sides, at
    most MAX_FLAT_EXTENSIONS times (edge 'flat' if that is still so after the last widening):
    3.7 decades on which nothing learned are an answer, and more would be the costliest runs."""
    grid = sorted(float(lr) for lr in grid)
    for lr in grid:
        lattice_index(lr)  # refuses a rate off the lattice
    extensions = 0
    while True:
        errors = errors_for(list(grid))
        tuned = tune({lr: errors[lr] for lr in grid})
        # A rate tied with the best is as good a choice (amendment 13): if one of them sits on
        # an edge, the grid has not shown that the error rises beyond it.
        # (isclose: a mean over seeds summed in another order may differ in its last bit)
        best = tuned.errors[tuned.lr]
        tied = [i for i, lr in enumerate(grid) if math.isclose(tuned.errors[lr], best)]
        short = {"low": tied[0] < margin, "high": len(grid) - 1 - tied[-1] < margin}
        sides = [side for side, is_short in short.items() if is_short]  # both when ties span it
        edge = sides[0] if sides else None
        if min(tuned.errors.values()) >= NOTHING_LEARNED:
            edge, sides = "flat", ["low", "high"]
        limit = MAX_FLAT_EXTENSIONS if edge == "flat" else MAX_EXTENSIONS
        if edge is None or extensions >= limit:
            return Search(tuned, list(grid), extensions, edge)
        for side in sides:
            grid = extend_grid(grid, side)
        extensions += 1


def expected_best(results: Sequence[float], k: int) -> float:
    """Expected lowest error among k draws (with replacement) from `results` — the tunability
    of an optimizer after k random trials of its grid (Dodge et al. 2019):

        E[best of k] = Σ_i v_(i) · [(i/N)^k − ((i−1)/N)^k],

    with v_(1) the worst (highest) error and v_(N) the best of the N results.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r} is invalid: expected an integer >= 1")
    values = np.sort(np.asarray(results, dtype=float))[::-1]  # worst first
    n = values.size
    if n == 0:
        raise ValueError(invalid("results", values.tolist(), "at least one result"))
    i = np.arange(1, n + 1)
    weights = (i / n) ** k - ((i - 1) / n) ** k
    return float(np.sum(values * weights))


# --- Verdicts --------------------------------------------------------------------------------

VERDICTS = ("supported", "not supported", "inconclusive")


def verdict(low: float, high: float, direction: str, support: float, refute: float) -> str:
    """The registered rule: 'supported' when the interval [low, high] lies wholly on the
    supporting side of `support`, 'not supported' when it lies wholly on the other side of
    `refute`, 'inconclusive' otherwise."""
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(invalid("interval", [low, high], "finite bounds [low, high], low <= high"))
    if direction == "higher":
        if support < refute:
            raise ValueError(
                invalid("support", support, f"support >= refute={refute!r} (direction='higher')")
            )
        if low >= support:
            return "supported"
        if high <= refute:
            return "not supported"
    elif direction == "lower":
        if support > refute:
            raise ValueError(
                invalid("support", support, f"support <= refute={refute!r} (direction='lower')")
            )
        if high <= support:
            return "supported"
        if low >= refute:
            return "not supported"
    else:
        raise ValueError(invalid("direction", direction, "a direction", ("higher", "lower")))
    return "inconclusive"


def why_inconclusive(low: float, high: float, support: float, refute: float) -> str:
    """Why an interval decides neither way: 'between' when it lies wholly between the two
    thresholds (an effect measured well enough, and smaller than the claim needs, larger than
    "none"), 'straddles' when it crosses a threshold (the seeds cannot tell)."""
    if min(support, refute) <= low and high <= max(support, refute):
        return "between"
    return "straddles"


# --- Cost ------------------------------------------------------------------------------------


def state_bytes_per_parameter(optimizer: str, **hyper: Any) -> float:
    """Bytes of optimizer state per float32 parameter entry, counted after one step (scalars
    such as the step counter are not per-parameter and are left out)."""
    import torch

    from rnnopt.optim import make_optimizer

    weight = torch.nn.Parameter(torch.zeros(1000))
    opt = make_optimizer(optimizer, [weight], **{"lr": 1e-3, **hyper})
    weight.grad = torch.ones_like(weight)
    opt.step()
    total = sum(
        t.numel() * t.element_size()
        for state in opt.state.values()
        for t in state.values()
        if torch.is_tensor(t) and t.numel() > 1
    )
    return total / weight.numel()


def median_step_time(histories: Sequence[History]) -> float:
    """Median over runs of each run's median time per training step (seconds), end to end:
    batch, forward, backward, clipping and the optimizer step."""
    medians = [float(np.median(h.step_time)) for h in histories if h.step_time]
    return float(np.median(medians)) if medians else math.nan
