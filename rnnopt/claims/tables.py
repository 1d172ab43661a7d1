"""What the claims chapter shows beside the ledger: its curves (`eval_curves`,
`relearning_curves`) and its tables of the lab's experiments (`grid_table`, `cost_table`, ...:
Markdown strings), so that the chapter holds the calls and the figures."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from rnnopt import plots
from rnnopt.claims.rules import FOUR
from rnnopt.optim import make_optimizer
from rnnopt.train import History

if TYPE_CHECKING:
    from rnnopt.claims.lab import Lab

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
