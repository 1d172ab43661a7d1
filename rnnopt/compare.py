"""The comparison of the four optimizers on the stored tier, per study: the tuned rate (and
whether it is interior), the final held-out error with its interval, the success fraction and
the censored time to success, the tunability curve, the time per step and the state memory.
Every quantity comes from rnnopt.protocol; the comparison chapter's page (pending studies,
ranking, the performance profile across studies) is rnnopt.comparison.

    rows = study_table("adding-elman-T100")     # one Row per optimizer
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rnnopt import evidence, ledger, protocol, tier

FOUR = ("sgd", "momentum", "rmsprop", "adam")


@dataclass(frozen=True)
class Row:
    optimizer: str
    lr: float
    interior: bool
    error: float  # mean relative error over the evaluation seeds
    low: float
    high: float
    success: float  # fraction of evaluation seeds that met the success criterion
    median_steps: float  # Kaplan–Meier median of the steps to success (NaN: under half succeeded)
    step_seconds: float  # median time per training step, end to end
    state_bytes: float  # optimizer state per parameter entry
    tunability: tuple[float, ...]  # expected best tuning error after k = 1, 2, ... draws from
    # the searched rates within a decade of the chosen one (protocol.within_a_decade)
    steps_interval: tuple[float, float] = (math.inf, math.inf)  # of median_steps, 95 %
    # (protocol.kaplan_meier_median_interval; inf: an end at which the median is not reached)


def study_table(
    study: str,
    optimizers: Sequence[str] = FOUR,
    source: ledger.TierSource | None = None,
    specs: Mapping[str, str] | None = None,
) -> list[Row]:
    """One Row per optimizer of `study` (raises tier.Pending while any is unfinished).

    `source`: where the runs are (default: the registered tier); `specs`: the optimizer spec of
    a name that is not one of the study's variants (e.g. 'examples/lion.py:Lion').
    """
    source = source or ledger.evidence_tier()
    spec = evidence.load_study(source.studies_dir / f"{study}.yaml")
    criterion = tier.criterion_of(study, source.studies_dir)
    rows = []
    for name in optimizers:
        root = source.root_of(name)
        tuned = tier.tuned_record(study, name, root)
        errors = tier.eval_errors(study, name, root=root, studies_dir=source.studies_dir)
        histories = tier.eval_histories(study, name, root)
        steps, succeeded = protocol.steps_to_success(histories, criterion, spec.train["steps"])
        low, high = protocol.bootstrap_interval(errors)
        by_rate = {float(k): float(v) for k, v in tuned["tuning_errors"].items()}
        grid_errors = [by_rate[lr] for lr in protocol.within_a_decade(list(by_rate), tuned["lr"])]
        optimizer = (specs or {}).get(name) or spec.variant(name).optimizer["name"]
        rows.append(
            Row(
                optimizer=name,
                lr=tuned["lr"],
                interior=tuned["edge"] is None,
                error=float(np.mean(errors)),
                low=low,
                high=high,
                success=float(np.mean(succeeded)),
                median_steps=protocol.kaplan_meier_median(steps, succeeded),
                step_seconds=protocol.median_step_time(histories),
                state_bytes=protocol.state_bytes_per_parameter(optimizer),
                tunability=tuple(
                    protocol.expected_best(grid_errors, k) for k in range(1, len(grid_errors) + 1)
                ),
                steps_interval=protocol.kaplan_meier_median_interval(steps, succeeded),
            )
        )
    return rows
