"""The registered experiments that are not sweeps of a recurrent task: small, exact problems
(a convex least-squares fit, a surface with many minima, a ravine), the non-stationary digits,
and the cost of a training step. Each follows the same protocol as the tier: every optimizer's
learning rate is searched on the 1/3-decade lattice with the tuning seeds, and the chosen rate is
measured on the evaluation seeds (rnnopt.protocol). Results go to data/evidence/<name>/results.json,
written after every measurement, so an interrupted experiment resumes.

    rnnopt-experiments convex-lsq surfaces ravine nonstationary    # python -m rnnopt.experiments
    python -m rnnopt.experiments cost    # on an otherwise idle machine: it measures time
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnopt import protocol
from rnnopt.optim import make_optimizer
from rnnopt.store import write_atomic
from rnnopt.tasks import DigitsTask, make_task
from rnnopt.train import build_model, train

ROOT = Path(__file__).resolve().parent.parent
EVIDENCE_DIR = ROOT / "data" / "evidence"
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")

# Starting grids on the lattice (widened by the search when the best sits on an edge).
START = {
    "sgd": (0.01, 0.1),
    "momentum": (0.001, 0.01),
    "rmsprop": (0.001, 0.01),
    "adam": (0.001, 0.01),
}


def _grid(low: float, high: float) -> list[float]:
    return [
        protocol.lr_lattice(i)
        for i in range(protocol.lattice_index(low), protocol.lattice_index(high) + 1)
    ]


class Store:
    """{variant: {lr: {seed: measurement}}} in one JSON file, rewritten after each measurement."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        self.data.setdefault("measurements", {})

    def measure(
        self, variant: str, lr: float, seed: int, compute: Callable[[], dict[str, float]]
    ) -> dict[str, float]:
        cell = self.data["measurements"].setdefault(variant, {}).setdefault(repr(lr), {})
        if str(seed) not in cell:
            cell[str(seed)] = compute()
            self.save()
        return cell[str(seed)]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True) + "\n")


def tune_and_evaluate(
    name: str,
    measure: Callable[[str, float, int], dict[str, float]],
    variants: Sequence[str],
    starts: dict[str, tuple[float, float]],
    score: str = "error",
    out_root: Path | None = None,
    tuning_seeds: Sequence[int] = protocol.TUNING_SEEDS,
    evaluation_seeds: Sequence[int] = protocol.EVALUATION_SEEDS,
) -> dict:
    """Search each variant's rate on the tuning seeds by `score` (lower is better), then measure
    the chosen rate on the evaluation seeds; store and return everything."""
    store = Store(Path(out_root or EVIDENCE_DIR) / name / "results.json")

    def measured(variant: str, lr: float, seed: int) -> dict[str, float]:
        return store.measure(variant, lr, seed, lambda: measure(variant, lr, seed))

    for variant in variants:

        def errors_for(grid: list[float], variant: str = variant) -> dict[float, list[float]]:
            return {lr: [measured(variant, lr, s)[score] for s in tuning_seeds] for lr in grid}

        found = protocol.search(_grid(*starts[variant]), errors_for)
        for seed in evaluation_seeds:
            measured(variant, found.tuned.lr, seed)
        store.data.setdefault("tuned", {})[variant] = {
            "lr": found.tuned.lr,
            "grid": found.grid,
            "edge": found.edge,
            "extensions": found.extensions,
            "tuning_errors": {repr(k): v for k, v in found.tuned.errors.items()},
        }
    store.data["protocol"] = {
        "tuning_seeds": list(tuning_seeds),
        "evaluation_seeds": list(evaluation_seeds),
        "score": score,
    }
    store.data["provenance"] = _provenance(name)
    store.save()
    return store.data


def evaluation(data: dict, variant: str, key: str) -> list[float]:
    """The measured `key` of `variant` at its chosen rate, seed by seed (evaluation seeds)."""
    cell = data["measurements"][variant][repr(data["tuned"][variant]["lr"])]
    return [cell[str(s)][key] for s in data["protocol"]["evaluation_seeds"]]


def _provenance(name: str) -> dict[str, Any]:
    from rnnopt.executors import environment

    return {
        "experiment": name,
        "command": f"python -m rnnopt.experiments {name}",
        **environment(),
        "torch_threads": 1,
    }


def _finite_or(value: float, fallback: float) -> float:
    return value if math.isfinite(value) else fallback


# --- Exact problems, many starts at once ----------------------------------------------------


def noisy_descent(
    f: Callable[[torch.Tensor], torch.Tensor],
    starts: np.ndarray,
    optimizer: str,
    lr: float,
    steps: int,
    noise: float,
    seed: int,
) -> np.ndarray:
    """Paths (steps + 1, n, 2) of `optimizer` from n starts at once, each gradient plus Gaussian
    noise of standard deviation `noise`. The objective is the sum over the points and every
    optimizer acts entry by entry, so this is exactly n separate noisy runs."""
    torch.set_num_threads(1)
    points = torch.tensor(starts, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer(optimizer, [points], lr=lr)
    kicks = torch.from_numpy(np.random.default_rng(seed).normal(0, noise, (steps, *starts.shape)))
    path = [points.detach().numpy().copy()]
    for step in range(steps):
        opt.zero_grad()
        f(points).sum().backward()
        points.grad.add_(kicks[step])
        opt.step()
        path.append(points.detach().numpy().copy())
    return np.array(path)


def egg_crate(p: torch.Tensor) -> torch.Tensor:
    """f(x, y) = (x² + y²)/10 − cos πx − cos πy + 2: the global minimum 0 at the origin and local
    minima near every point whose coordinates are even integers, each a little higher."""
    x, y = p[..., 0], p[..., 1]
    return (x**2 + y**2) / 10 - torch.cos(math.pi * x) - torch.cos(math.pi * y) + 2


def measure_surfaces(optimizer: str, lr: float, seed: int) -> dict[str, float]:
    """200 starts outside the global minimum's basin, 300 noisy steps (gradient noise of
    standard deviation 1): the fraction of starts that end in the global basin. The search
    tunes the rate on this figure itself (its error is the fraction that did not escape)."""
    rng = np.random.default_rng(seed)
    starts = rng.uniform(-3, 3, size=(2000, 2))
    starts = starts[~np.all(np.abs(starts) < 1.0, axis=1)][:200]
    path = noisy_descent(egg_crate, starts, optimizer, lr, steps=300, noise=1.0, seed=seed + 1)
    end = path[-1]
    escaped = np.all(np.abs(end) < 1.0, axis=1) & np.all(np.isfinite(end), axis=1)
    return {"error": 1.0 - float(np.mean(escaped)), "global_fraction": float(np.mean(escaped))}


RAVINE_STEEP = 100.0  # the ravine's curvature across (λ_max); along it, 1


def ravine(p: torch.Tensor) -> torch.Tensor:
    """f(x, y) = ½(x² + 100 y²): curvature 1 along x, 100 along y (κ = 100)."""
    return 0.5 * (p[..., 0] ** 2 + RAVINE_STEEP * p[..., 1] ** 2)


# A sign change of the steep coordinate counts as a reversal only while it is larger than this
# fraction of where it started (registration amendment 8): a step of exactly 1/λ_max wipes the
# coordinate out, and the sign of the ~1e-17 left over flips with rounding, not with the method.
FLIP_TOLERANCE = 1e-8


def reversals(steep: np.ndarray) -> np.ndarray:
    """Per step t → t+1 of `steep` (steps × starts), whether the coordinate changed sign with
    both ends above FLIP_TOLERANCE × its start's size."""
    big = np.abs(steep) > FLIP_TOLERANCE * np.abs(steep[:1])
    return (np.sign(steep[1:]) != np.sign(steep[:-1])) & big[1:] & big[:-1]


def measure_ravine(optimizer: str, lr: float, seed: int) -> dict[str, float]:
    """10 starts on the unit circle, exact gradients: the fraction of the first 50 steps that
    reverse the sign of the steep coordinate (oscillation across the ravine; `reversals`), and
    the loss after 200 steps, on which the rate is tuned."""
    angles = np.random.default_rng(seed).uniform(0, 2 * math.pi, size=10)
    starts = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    path = noisy_descent(ravine, starts, optimizer, lr, steps=200, noise=0.0, seed=seed + 1)
    flips = np.mean(reversals(path[:51, :, 1]))
    values = ravine(torch.from_numpy(path[-1])).numpy()
    return {"error": _finite_or(float(np.mean(values)), 1e6), "flip_fraction": float(flips)}


def measure_convex(optimizer: str, lr: float, seed: int) -> dict[str, float]:
    """Least squares ½‖Aw − b‖²/n, n = 1000 rows, 50 weights, condition number 100, label noise
    of standard deviation 1 (a real noise floor for minibatch steps), minibatches of 8 rows:
    the excess loss left after 500 steps, as a fraction of the initial excess."""
    problem = np.random.default_rng(12345)  # one problem; the seed moves start and minibatches
    n, d = 1000, 50
    q, _ = np.linalg.qr(problem.normal(size=(d, d)))
    a = problem.normal(size=(n, d)) @ np.diag(np.sqrt(np.linspace(1.0, 100.0, d))) @ q.T
    a *= np.sqrt(n) / np.linalg.norm(a, axis=0).mean()  # columns of typical norm √n
    b = a @ problem.normal(size=d) + 1.0 * problem.normal(size=n)
    a_t, b_t = torch.from_numpy(a), torch.from_numpy(b)

    def loss(w: torch.Tensor, rows: Any = slice(None)) -> torch.Tensor:
        residual = a_t[rows] @ w - b_t[rows]
        return 0.5 * (residual**2).mean()

    best = loss(torch.from_numpy(np.linalg.lstsq(a, b, rcond=None)[0])).item()
    rng = np.random.default_rng(seed)
    w = torch.tensor(rng.normal(size=d), requires_grad=True)
    start = loss(w).item()
    opt = make_optimizer(optimizer, [w], lr=lr)
    for _ in range(500):
        opt.zero_grad()
        loss(w, rng.integers(0, n, size=8)).backward()
        opt.step()
    with torch.no_grad():
        fraction = (loss(w).item() - best) / (start - best)
    fraction = min(_finite_or(fraction, 1.0), 1.0)  # no worse than where it started
    return {"error": fraction, "excess_fraction": fraction}


# --- Non-stationary digits ------------------------------------------------------------------


class ShiftedDigits(DigitsTask):
    """The digits after the objective moved: every label y is (y + 1) mod 10 and every input is
    five times larger, in training and held-out data alike (a new target and a new gradient
    scale, which an adaptive method must notice and SGD's fixed rate cannot)."""

    def _shifted(self, batch):  # noqa: ANN001, ANN202
        x, y = batch
        return 5.0 * x, (y + 1) % self.n_classes

    def train_batch(self, batch_size: int, rng: np.random.Generator):  # noqa: ANN201
        return self._shifted(super().train_batch(batch_size, rng))

    def _make_eval_set(self):  # noqa: ANN202
        return self._shifted(super()._make_eval_set())


def measure_nonstationary(optimizer: str, lr: float, seed: int) -> dict[str, float]:
    """1500 steps on the digits, then 1500 more, same model and optimizer state, on the shifted
    digits: the mean relative error over the evaluations after the shift (every 100 steps), the
    area under the recovery curve. Tuning seeds are scored on the validation half."""
    part = "validation" if seed in protocol.TUNING_SEEDS else "test"
    before = DigitsTask(mode="pixels", held_out=part)
    after = ShiftedDigits(mode="pixels", held_out=part)
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = build_model(before, hidden_size=64, recurrent_init="orthogonal")
    opt = make_optimizer(optimizer, model.parameters(), lr=lr)
    clip = protocol.clip_threshold(before, model, 64)
    options = dict(batch_size=64, clip_grad_norm=clip, eval_every=100)
    first = train(model, before, opt, steps=1500, seed=seed, **options)
    if first.diverged:
        return {"error": 1.0, "recovery": [1.0]}
    second = train(model, after, opt, steps=1500, seed=seed + 1_000_003, **options)
    baseline = after.baseline()["metric"]
    curve = [protocol.run_error(second.diverged, m, baseline, True) for m in second.eval_metric[1:]]
    if second.diverged or not curve:
        curve = [1.0]
    return {"error": float(np.mean(curve)), "recovery": curve}


# --- The cost of a step ---------------------------------------------------------------------


def measure_cost(rounds: int = 40, steps: int = 20, warmup: int = 5) -> dict:
    """Time per training step (batch, forward, backward, clipping, optimizer step) of the
    text-lstm model for each optimizer, in CPU time of this process (one torch thread), and the
    optimizer step's own share. Rounds interleave the optimizers in an order shuffled afresh
    each round (registration amendment 11), so that a drift of the machine during a round does
    not fall on the same optimizer every time; each round keeps the median of its steps."""
    torch.set_num_threads(1)
    task = make_task("text", seq_len=50)
    rng = np.random.default_rng(0)
    order = np.random.default_rng(1)
    setups, clips = {}, {}
    for name in OPTIMIZERS:
        torch.manual_seed(0)
        model = build_model(task, hidden_size=128, core="lstm")
        clips[name] = protocol.clip_threshold(task, model, 64)
        setups[name] = (model, make_optimizer(name, model.parameters(), lr=1e-3))
    times: dict[str, list[float]] = {name: [] for name in OPTIMIZERS}
    updates: dict[str, list[float]] = {name: [] for name in OPTIMIZERS}
    for round_ in range(rounds + 1):  # round 0 warms every model up once and is not kept
        for name in order.permutation(list(OPTIMIZERS)):
            model, opt = setups[name]
            samples, own = [], []
            for step in range(warmup + steps):
                start = time.process_time()
                x, y = task.train_batch(64, rng)
                opt.zero_grad(set_to_none=True)
                task.loss(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), clips[name])
                before_update = time.process_time()
                opt.step()
                end = time.process_time()
                if step >= warmup:
                    samples.append(end - start)
                    own.append(end - before_update)
            if round_ > 0:
                times[name].append(float(np.median(samples)))
                updates[name].append(float(np.median(own)))
    state = {name: protocol.state_bytes_per_parameter(name) for name in OPTIMIZERS}
    data = {
        "seconds_per_step": times,
        "update_seconds_per_step": updates,
        "state_bytes_per_parameter": state,
        "clock": "process CPU time (time.process_time), one torch thread",
        "order": "shuffled afresh every round (numpy Generator seeded 1)",
        "rounds": rounds,
        "steps": steps,
        "warmup": warmup,
        "model": "text-lstm (LSTM 128, BPTT 50, batch 64)",
        "provenance": _provenance("cost"),
    }
    out = EVIDENCE_DIR / "cost" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, json.dumps(data, indent=1) + "\n")
    return data


# The tuned experiments: name -> (one measurement at a rate and seed, each optimizer's starting
# grid). Every one is tuned and evaluated by tune_and_evaluate.
TUNED: dict[str, tuple[Callable[[str, float, int], Any], dict[str, tuple[float, float]]]] = {
    "convex-lsq": (measure_convex, START),
    "surfaces": (measure_surfaces, START),
    "ravine": (
        measure_ravine,
        {
            "sgd": (0.001, 0.01),
            "momentum": (0.0001, 0.001),
            "rmsprop": (0.001, 0.01),
            "adam": (0.001, 0.01),
        },
    ),  # fmt: skip
    "nonstationary": (
        measure_nonstationary,
        {
            "sgd": (0.1, 1.0),
            "momentum": (0.01, 0.1),
            "rmsprop": (0.000464, 0.00464),
            "adam": (0.001, 0.01),
        },
    ),  # fmt: skip
}


def _cost() -> Any:
    # Timing is not resumable; a stored measurement is kept (delete the file to measure again).
    # The step time of every study (the projection of those not started) is measured with it.
    from rnnopt import tier

    if not tier.step_times_path().exists():
        tier.measure_step_times()
    return None if (EVIDENCE_DIR / "cost" / "results.json").exists() else measure_cost()


EXPERIMENTS: dict[str, Callable[[], Any]] = {
    **{
        name: functools.partial(tune_and_evaluate, name, measure, OPTIMIZERS, start)
        for name, (measure, start) in TUNED.items()
    },
    "cost": _cost,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rnnopt.experiments", description="Run (or resume) registered experiments."
    )
    parser.add_argument("names", nargs="+", choices=sorted(EXPERIMENTS))
    args = parser.parse_args(argv)
    for name in args.names:
        start = time.perf_counter()
        EXPERIMENTS[name]()
        print(f"{name}: done in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
