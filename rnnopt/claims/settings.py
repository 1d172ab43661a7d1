"""The :class:`Settings` of the claims' experiments: every size and grid, checked when they
are made (each error names the parameter, its value and the rule)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from rnnopt.checks import check_int, check_list, check_number, check_seeds, invalid
from rnnopt.claims.rules import FOUR


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
