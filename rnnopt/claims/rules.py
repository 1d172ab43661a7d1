"""Rules: thresholds on named figures, fixed before anything runs, that turn what an
experiment measured into a verdict, and the :class:`Claim` that ties a claim of the source to
its experiment, its measurement and its rule.

    rule = Rule((Threshold("ratio", "<=", 0.7),), (Threshold("ratio", ">=", 1.0),))
    rule.verdict({"ratio": 0.5})               # "supported"
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rnnopt.checks import check_choice

if TYPE_CHECKING:
    from rnnopt.claims.lab import Lab

FOUR = ("sgd", "momentum", "rmsprop", "adam")
VERDICTS = ("supported", "not supported", "mixed")


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
