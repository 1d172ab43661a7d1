"""The per-study comparison on a stored tier: every column from the protocol's definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_tier, tiny_study

from rnnopt import compare, evidence, protocol, tier

TINY = tiny_study(hidden=8, steps=60, evaluation_seeds=(100, 101, 102, 103))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    root = make_tier(tmp_path_factory.mktemp("compare"), TINY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evidence, "STUDIES_DIR", root / "specs")
        patch.setattr(evidence, "EVIDENCE_DIR", root / "out")
        yield compare.study_table("tiny", ["sgd", "adam"])


def test_each_row_reports_the_evaluation_seeds_at_the_tuned_rate(table):
    adam = next(r for r in table if r.optimizer == "adam")
    errors = tier.eval_errors("tiny", "adam")
    assert adam.error == pytest.approx(np.mean(errors))
    assert (adam.low, adam.high) == protocol.bootstrap_interval(errors)
    assert adam.interior == (tier.tuned_record("tiny", "adam")["edge"] is None)


def test_success_is_counted_over_every_evaluation_seed(table):
    for row in table:
        successes = tier.eval_successes("tiny", row.optimizer)
        assert row.success == np.mean(successes)
        if row.success < 0.5:
            assert math.isnan(row.median_steps)


def test_the_tunability_curve_falls_from_the_grid_mean_to_its_best(table):
    for row in table:
        curve = row.tunability
        assert all(a >= b - 1e-12 for a, b in zip(curve, curve[1:], strict=False))
        errors = tier.tuned_record("tiny", row.optimizer)["tuning_errors"].values()
        assert curve[0] == pytest.approx(np.mean(list(errors)))


def test_cost_columns_are_measured_time_and_counted_state(table):
    rows = {r.optimizer: r for r in table}
    assert rows["sgd"].state_bytes == 0 and rows["adam"].state_bytes == 8
    assert all(r.step_seconds > 0 for r in table)


def test_overlapping_intervals_are_ties_not_wins():
    def row(name, error, low, high):
        return compare.Row(name, 0.1, True, error, low, high, 0, 0, 0, 0, ())

    rows = [row("sgd", 0.5, 0.45, 0.55), row("adam", 0.4, 0.3, 0.47), row("rmsprop", 0.9, 0.8, 1)]
    assert compare.best_tied(rows) == ["sgd", "adam"]
