"""What each claim measures: one function per claim (or per family of claims) that computes
its named figures from a :class:`~rnnopt.claims.lab.Lab`. The registry
(:mod:`rnnopt.claims.registry`) pairs each with its rule."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from rnnopt.claims.rules import FOUR
from rnnopt.claims.tools import steps_to

if TYPE_CHECKING:
    from rnnopt.claims.lab import Lab


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
