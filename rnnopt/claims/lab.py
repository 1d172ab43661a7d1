"""The :class:`Lab`: the claims' experiments, each run once, the first time a claim (or the
chapter) asks for it, and cached: the learning-rate grid on the adding problem that most claims
share, then the experiments of single claims (batches, momentum coefficients, Adam's ablation,
adaptivity, long sequences, digits and relabelled digits, text, data size, one sample per step,
loss scale, tasks × cores, 2-D surfaces, costs)."""

from __future__ import annotations

import functools
import math
import tempfile
from typing import Any

import numpy as np
import torch

from rnnopt.claims.rules import FOUR
from rnnopt.claims.settings import Settings
from rnnopt.claims.tools import (
    RelabelledDigits,
    _fresh,
    _loss_on,
    _step_response,
    _Wrapped,
    descend,
    ops_per_step,
    state_per_parameter,
    step_seconds,
    steps_to,
)
from rnnopt.landscapes import double_well, quadratic, rosenbrock
from rnnopt.tasks import DigitsTask, make_task
from rnnopt.train import History, run, train


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
