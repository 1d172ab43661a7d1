"""The measurement protocol, as a specification: each quantity the book reports behaves as its
definition says, checked against synthetic data whose answer is known."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import yaml

from rnnopt import protocol
from rnnopt.evidence import ROOT
from rnnopt.train import History


def history(metrics, steps=None, diverged=False):
    steps = list(range(0, 100 * len(metrics), 100)) if steps is None else steps
    return History(
        eval_step=steps, eval_metric=list(metrics), eval_loss=list(metrics), diverged=diverged
    )


# --- Final metric ---------------------------------------------------------------------------


def test_relative_error_is_zero_when_perfect_and_one_at_the_trivial_baseline():
    assert protocol.relative_error(0.0, 1 / 6, higher_is_better=False) == 0.0
    assert protocol.relative_error(1 / 6, 1 / 6, higher_is_better=False) == 1.0
    assert protocol.relative_error(1.0, 0.125, higher_is_better=True) == 0.0
    assert protocol.relative_error(0.125, 0.125, higher_is_better=True) == 1.0


def test_the_final_metric_is_the_last_evaluation_and_a_diverged_run_scores_as_trivial():
    assert protocol.final_relative_error(history([0.2, 0.1, 0.05]), 0.1, False) == 0.5
    assert protocol.final_relative_error(history([0.2, 0.01], diverged=True), 0.1, False) == 1.0


def test_the_generalisation_gap_is_the_held_out_loss_over_the_last_tenths_training_loss():
    run = History(loss=[2.0] * 90 + [0.1] * 10, eval_loss=[2.0, 0.5, 0.7])
    assert protocol.generalisation_gap(run) == pytest.approx(0.7 - 0.1)
    assert protocol.generalisation_gap(run, tail=0.2) == pytest.approx(0.7 - 1.05)
    with pytest.raises(ValueError, match="tail=0 is invalid"):
        protocol.generalisation_gap(run, tail=0)


def test_the_held_out_rise_is_how_far_the_loss_ended_above_its_best():
    assert protocol.held_out_rise(History(eval_loss=[2.0, 0.5, 0.6])) == pytest.approx(0.2)
    assert protocol.held_out_rise(History(eval_loss=[2.0, 0.5, 0.4])) == 0.0


def test_the_clipped_share_counts_clipped_steps_over_the_steps_run():
    assert protocol.clipped_share(History(loss=[1.0] * 40, clipped_steps=10)) == 0.25
    logged_every_100 = History(loss=[1.0] * 4, step_count=400, clipped_steps=100)
    assert protocol.clipped_share(logged_every_100) == 0.25


# --- Success and censoring ------------------------------------------------------------------


def test_success_is_the_first_evaluation_meeting_the_criterion():
    criterion = protocol.Criterion(0.01, higher_is_better=False)
    assert protocol.success_step(history([0.2, 0.009, 0.02, 0.001]), criterion) == 100
    assert protocol.success_step(history([0.2, 0.1]), criterion) is None


def test_censoring_keeps_runs_that_never_succeed_at_the_budget():
    criterion = protocol.Criterion(0.9, higher_is_better=True)
    runs = [history([0.1, 0.95]), history([0.1, 0.2, 0.3]), history([0.1], diverged=True)]
    steps, succeeded = protocol.steps_to_success(runs, criterion, budget=500)
    assert steps.tolist() == [100, 500, 500]  # none dropped
    assert succeeded.tolist() == [True, False, False]


def test_kaplan_meier_without_censoring_is_the_empirical_survival_function():
    times = [3, 1, 2, 2, 5]
    at, survival = protocol.kaplan_meier(times, [True] * 5)
    assert at.tolist() == [1, 2, 3, 5]
    assert survival == pytest.approx([0.8, 0.4, 0.2, 0.0])


def test_kaplan_meier_matches_the_product_limit_by_hand_with_censoring():
    # times 2, 3+, 4, 4, 6+ (+ = censored): S(2) = 4/5, S(4) = 4/5 · (1 − 2/3) = 4/15.
    at, survival = protocol.kaplan_meier([2, 3, 4, 4, 6], [True, False, True, True, False])
    assert at.tolist() == [2, 4]
    assert survival == pytest.approx([4 / 5, 4 / 15])


def test_the_median_time_is_undefined_when_fewer_than_half_succeed():
    assert math.isnan(protocol.kaplan_meier_median([100, 500, 500], [True, False, False]))
    assert protocol.kaplan_meier_median([100, 200, 500], [True, True, False]) == 200


def test_the_median_times_interval_at_a_common_budget_is_the_resample_by_resample_one():
    # Censored at the budget (1,000), as every study's runs are: the shortcut must give what
    # the product-limit median of each resample gives.
    rng = np.random.default_rng(3)
    for _ in range(5):
        times = rng.choice([200.0, 400.0, 600.0, 800.0], size=10)
        events = rng.random(10) < 0.7
        times[~events] = 1000.0
        index = protocol._resample_indices(10, 0)
        medians = [protocol.kaplan_meier_median(times[i], events[i]) for i in index]
        medians = np.where(np.isnan(medians), np.inf, medians)
        want = np.quantile(medians, [0.025, 0.975], method="inverted_cdf")
        assert protocol.kaplan_meier_median_interval(times, events) == tuple(want)


def test_the_median_times_interval_holds_the_median_and_is_open_when_few_succeed():
    times = [100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0]
    low, high = protocol.kaplan_meier_median_interval(times, [True] * 10)
    assert low <= protocol.kaplan_meier_median(times, [True] * 10) <= high
    events = [True, True, True, True] + [False] * 6  # 4 of 10: the median is not reached
    assert protocol.kaplan_meier_median_interval(times, events)[1] == math.inf
    assert protocol.kaplan_meier_median_interval(times, [False] * 10) == (math.inf, math.inf)
    # censored before a success (a run stopped early): computed resample by resample
    low, high = protocol.kaplan_meier_median_interval(
        [100, 150, 300, 400], [True, False, True, True]
    )
    assert 100 <= low <= high <= 400


# --- Intervals ------------------------------------------------------------------------------


def test_bootstrap_intervals_cover_a_known_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    trials, covered = 300, 0
    for trial in range(trials):
        sample = rng.normal(loc=2.0, scale=1.0, size=30)
        low, high = protocol.bootstrap_interval(sample, seed=trial)
        covered += low <= 2.0 <= high
    # Percentile intervals from 30 points run a little narrow; 95 % ± sampling error.
    assert 0.88 <= covered / trials <= 0.99


def test_the_same_data_give_the_same_interval():
    data = [0.3, 0.5, 0.2, 0.9, 0.4]
    assert protocol.bootstrap_interval(data) == protocol.bootstrap_interval(data)


def test_identical_values_give_a_zero_width_interval():
    assert protocol.bootstrap_interval([1.0, 1.0, 1.0]) == (1.0, 1.0)


def test_pairing_by_seed_removes_the_noise_the_pair_shares():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 1.0, size=10)  # seed-to-seed luck both optimizers share
    a, b = 2.0 + shared + rng.normal(0, 0.01, 10), 1.0 + shared + rng.normal(0, 0.01, 10)
    low, high = protocol.paired_interval(a, b, protocol.difference_of_means)
    assert 0.9 < low < 1.0 < high < 1.1
    unpaired = protocol.bootstrap_interval(a - rng.permutation(b))
    assert unpaired[1] - unpaired[0] > 5 * (high - low)


def test_paired_interval_refuses_samples_that_do_not_pair_up():
    with pytest.raises(
        ValueError, match=r"^b\.shape=\(2,\) is invalid: expected a's shape \(3,\).*pair up"
    ):
        protocol.paired_interval([1.0, 2.0, 3.0], [1.0, 2.0])


def test_probability_of_improvement_counts_ties_as_half():
    assert protocol.probability_of_improvement([1, 2, 3, 4], [2, 2, 2, 2]) == 0.25 + 0.125


# --- Tunability -----------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_expected_best_of_k_equals_brute_force_enumeration(k):
    results = [0.9, 0.2, 0.5, 0.5, 0.7]
    draws = list(itertools.product(results, repeat=k))  # every ordered draw with replacement
    assert protocol.expected_best(results, k) == pytest.approx(np.mean([min(d) for d in draws]))


def test_expected_best_of_one_is_the_mean_and_grows_to_the_best():
    results = [0.9, 0.2, 0.5]
    assert protocol.expected_best(results, 1) == pytest.approx(np.mean(results))
    assert protocol.expected_best(results, 200) == pytest.approx(0.2, abs=1e-6)


# --- Tuning ---------------------------------------------------------------------------------


def test_the_lattice_has_three_rates_per_decade():
    assert [protocol.lr_lattice(i) for i in range(-3, 1)] == [0.1, 0.215, 0.464, 1.0]
    assert protocol.lattice_index(0.00464) == -7


def test_a_rate_off_the_lattice_is_refused_with_the_nearest_one():
    with pytest.raises(
        ValueError,
        match=r"lr=0\.003 is invalid: expected a rate on the 1/3-decade.*nearest: 0\.00215",
    ):
        protocol.lattice_index(0.003)


def test_tuning_chooses_the_lowest_mean_error_and_reports_an_interior_best():
    tuned = protocol.tune({0.1: [0.5, 0.7], 0.215: [0.2, 0.3], 0.464: [0.9, 1.0]})
    assert (tuned.lr, tuned.edge) == (0.215, None)
    assert tuned.errors[0.215] == 0.25


@pytest.mark.parametrize(
    "errors, edge",
    [
        ({0.1: [0.1], 0.215: [0.3], 0.464: [0.9]}, "low"),
        ({0.1: [0.9], 0.215: [0.3], 0.464: [0.1]}, "high"),
    ],
)
def test_a_best_rate_at_a_grid_edge_is_reported_as_such(errors, edge):
    assert protocol.tune(errors).edge == edge


def test_ties_go_to_the_smaller_rate():
    assert protocol.tune({0.1: [1.0], 0.215: [0.5], 0.464: [0.5], 1.0: [1.0]}).lr == 0.215


def test_a_grid_is_widened_beyond_the_edge_its_best_sits_on():
    assert protocol.extend_grid([0.1, 0.215], "low") == [0.0215, 0.0464, 0.1, 0.215]
    assert protocol.extend_grid([0.1, 0.215], "high") == [0.1, 0.215, 0.464, 1.0]


def test_the_cost_of_a_random_rate_is_the_mean_error_within_a_decade_less_the_best():
    rates = [protocol.lr_lattice(i) for i in range(-6, 1)]  # 0.01 .. 1, centred on 0.1
    errors = {lr: [0.2 + 0.1 * abs(protocol.lattice_index(lr) + 3), 0.5] for lr in rates}
    cost = protocol.random_rate_cost(errors, 0.1)
    assert cost.tolist() == pytest.approx([0.1 * (3 + 2 + 1 + 0 + 1 + 2 + 3) / 7, 0.0])


def test_the_cost_of_a_random_rate_needs_the_whole_decade_either_side():
    with pytest.raises(ValueError, match=r"^best_lr=0\.1 is invalid: .*a decade either side"):
        protocol.random_rate_cost({0.1: [0.5], 0.215: [0.6]}, 0.1)


def test_wilson_intervals_are_never_degenerate_at_zero_or_all_successes():
    low, high = protocol.wilson_interval(0, 10)
    assert low == 0.0 and 0.25 < high < 0.3
    low, high = protocol.wilson_interval(10, 10)
    assert 0.7 < low < 0.75 and high == pytest.approx(1.0)


def test_newcombes_interval_of_a_difference_contains_it_and_is_wider_than_zero():
    low, high = protocol.newcombe_interval(3, 0, 10)
    assert low < 0.3 < high and low < 0 < high
    assert protocol.newcombe_interval(0, 0, 10)[0] < 0 < protocol.newcombe_interval(0, 0, 10)[1]


def test_bca_intervals_from_ten_seeds_of_a_skewed_error_still_cover_most_of_the_time():
    rng = np.random.default_rng(11)
    truth = math.exp(0.8**2 / 2)  # mean of a log-normal(0, 0.8)
    covered = sum(
        low <= truth <= high
        for low, high in (
            protocol.bootstrap_interval(np.exp(rng.normal(0, 0.8, 10)), seed=t) for t in range(200)
        )
    )
    assert covered / 200 >= 0.78  # ten seeds of a skewed error undercover (about 0.85 here)


# --- Verdicts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "interval, direction, expected",
    [
        ((1.3, 1.6), "higher", "supported"),
        ((0.7, 0.95), "higher", "not supported"),
        ((0.9, 1.6), "higher", "inconclusive"),
        ((0.5, 0.7), "lower", "supported"),
        ((1.1, 1.4), "lower", "not supported"),
        ((0.7, 1.1), "lower", "inconclusive"),
    ],
)
def test_a_verdict_follows_from_where_the_interval_lies(interval, direction, expected):
    support, refute = (1.25, 1.0) if direction == "higher" else (0.8, 1.0)
    assert protocol.verdict(*interval, direction, support, refute) == expected


def test_a_verdict_needs_thresholds_on_the_right_sides():
    with pytest.raises(
        ValueError, match=r"^support=1\.0 is invalid: expected support >= refute=1\.25"
    ):
        protocol.verdict(1.0, 2.0, "higher", 1.0, 1.25)


def test_bad_protocol_arguments_are_refused_in_the_one_message_format():
    with pytest.raises(ValueError, match=r"^direction='up' is invalid: .*'higher', 'lower'$"):
        protocol.verdict(1.0, 2.0, "up", 1.0, 1.25)
    with pytest.raises(ValueError, match=r"^interval=\[2\.0, 1\.0\] is invalid: expected "):
        protocol.verdict(2.0, 1.0, "higher", 1.25, 1.0)
    with pytest.raises(ValueError, match=r"^edge='middle' is invalid: .*'low', 'high'$"):
        protocol.extend_grid([0.1], "middle")
    with pytest.raises(ValueError, match=r"^successes=3 is invalid: expected a count in \[0, n\]"):
        protocol.wilson_interval(3, 2)
    with pytest.raises(ValueError, match=r"^errors_by_lr=\{\} is invalid: expected at least one"):
        protocol.tune({})


# --- Cost -----------------------------------------------------------------------------------


def test_state_bytes_per_parameter_count_the_optimizers_buffers():
    assert protocol.state_bytes_per_parameter("sgd") == 0
    assert protocol.state_bytes_per_parameter("momentum") == 4
    assert protocol.state_bytes_per_parameter("rmsprop") == 4
    assert protocol.state_bytes_per_parameter("adam") == 8
    assert protocol.state_bytes_per_parameter("adam", amsgrad=True) == 12


# --- The registration agrees with the code --------------------------------------------------


def test_the_success_criteria_are_the_registered_ones():
    registered = yaml.safe_load((ROOT / "data" / "registration.yaml").read_text())
    criteria = registered["protocol"]["success_criteria"]
    assert set(criteria) == set(protocol.SUCCESS)
    for task, entry in criteria.items():
        code = protocol.SUCCESS[task]
        assert code.higher_is_better == ("at_least" in entry)
        assert code.threshold == entry.get("at_least", entry.get("at_most"))


def test_the_search_widens_the_grid_until_the_best_rate_is_interior():
    calls = []

    def errors_for(grid):  # the error falls towards lr = 0.01, far below the first grid
        calls.append(list(grid))
        return {lr: [abs(protocol.lattice_index(lr) + 6) + 0.1] for lr in grid}

    found = protocol.search([0.1, 0.215, 0.464], errors_for)
    assert found.tuned.lr == 0.01 and found.edge is None
    assert found.grid[0] < 0.01 < found.grid[-1] and found.extensions == 2
    assert all(
        set(a) <= set(b) for a, b in zip(calls, calls[1:], strict=False)
    )  # each grid holds the last


def test_the_search_stops_widening_after_its_limit_and_reports_the_edge():
    found = protocol.search([1.0, 2.15], lambda grid: {lr: [lr] for lr in grid})
    assert found.edge == "low" and found.extensions == protocol.MAX_EXTENSIONS


def test_a_grid_that_learned_nothing_is_widened_on_both_sides_not_trusted():
    # Every rate of the first grid fails (error 1, or within noise of it): its "best" is
    # interior by a hair, but the rate where the optimizer learns lies below the grid.
    def errors_for(grid):
        return {lr: [0.2 if lr <= 0.0001 else 1.0 - 0.001 * (lr == 0.001)] for lr in grid}

    found = protocol.search([0.000464, 0.001, 0.00215], errors_for)
    assert found.tuned.lr <= 0.0001 and found.tuned.errors[found.tuned.lr] == 0.2
    assert found.grid[0] < 0.0001 and found.grid[-1] > 0.00215  # widened on both sides first
    nothing = protocol.search([0.1, 0.215], lambda grid: {lr: [1.0] for lr in grid})
    assert nothing.edge == "flat" and nothing.extensions == protocol.MAX_FLAT_EXTENSIONS
    assert len(nothing.grid) == 2 + 4 * protocol.MAX_FLAT_EXTENSIONS


@pytest.mark.parametrize(
    ("interval", "why"),
    [((1.12, 1.2), "between"), ((1.05, 1.3), "straddles"), ((1.05, 1.15), "straddles")],
)
def test_an_inconclusive_interval_says_whether_it_sits_between_the_thresholds(interval, why):
    # support 1.25, refute 1.1 (direction higher): (1.12, 1.2) decides neither way, precisely.
    assert protocol.verdict(*interval, "higher", 1.25, 1.1) == "inconclusive"
    assert protocol.why_inconclusive(*interval, 1.25, 1.1) == why


def test_a_best_rate_tied_with_an_edge_rate_does_not_count_as_interior():
    # Errors fall to a floor at 0.01 and stay there: 0.00464 and 0.01 tie; the tie goes to the
    # smaller rate, which has a rate on each side, but the grid's edge is as good as it.
    def errors_for(grid):
        return {lr: [max(1, -protocol.lattice_index(lr) - 6) / 10] for lr in grid}

    found = protocol.search([0.001, 0.00215, 0.00464, 0.01], errors_for)
    assert found.grid[-1] > 0.01 and found.extensions >= 1
    assert found.tuned.lr == 0.00464  # still the smaller of the tied rates
    assert found.edge == "high"  # the floor never ends within the limit, and it says so


def test_ties_spanning_the_whole_grid_widen_it_on_both_sides():
    # Every rate equally good (and something learned): nothing shows where the error rises.
    found = protocol.search([0.01, 0.0215, 0.0464], lambda grid: {lr: [0.5] for lr in grid})
    assert found.extensions == protocol.MAX_EXTENSIONS
    assert len(found.grid) == 3 + 4 * protocol.MAX_EXTENSIONS


def test_a_tie_that_differs_only_in_the_last_bit_is_a_tie():
    # The same mean error 0.15 from two seeds' errors, in floating point one bit apart:
    # 0.001 scores (0.1 + 0.2) / 2, the best rates (0.3 + 0.0) / 2.
    def errors_for(grid):
        return {lr: [0.5, 0.5] if lr < 0.001 else [0.1, 0.2] if lr == 0.001
                else [0.3, 0.0] if lr < 0.01 else [0.4, 0.4] for lr in grid}  # fmt: skip

    assert (0.1 + 0.2) / 2 > (0.3 + 0.0) / 2
    found = protocol.search([0.001, 0.00215, 0.00464, 0.01], errors_for)
    assert found.tuned.lr == 0.00215 and found.grid[0] < 0.001  # the edge's tie: widened
    assert found.extensions == 1 and found.edge is None


def test_a_margin_asks_for_that_many_rates_on_each_side_of_the_best():
    found = protocol.search(
        [0.1, 0.215, 0.464],
        lambda grid: {lr: [abs(protocol.lattice_index(lr) + 2)] for lr in grid},
        margin=3,
    )
    position = found.grid.index(0.215)
    assert position >= 3 and len(found.grid) - 1 - position >= 3


def test_a_tier_interval_resamples_each_studys_seeds_together_for_its_optimizers():
    rng = np.random.default_rng(1)
    shared = rng.normal(0, 1, size=(3, 10))  # each study's seed luck, shared by its optimizers
    studies = [{"sgd": 2.0 + s, "adam": 1.0 + s} for s in shared + 5]

    def gm_ratio(drawn):
        return np.exp(np.mean([np.log(d["sgd"].mean(-1) / d["adam"].mean(-1)) for d in drawn], 0))

    low, high = protocol.hierarchical_interval(studies, gm_ratio)
    point = gm_ratio([{k: v[None] for k, v in s.items()} for s in studies])[0]
    assert low <= point <= high and high - low < 0.2


def test_a_tier_interval_refuses_optimizers_that_do_not_share_seeds():
    with pytest.raises(
        ValueError, match=r"studies\[0\] sizes=\{'sgd': 2, 'adam': 1\} is invalid.*share"
    ):
        protocol.hierarchical_interval([{"sgd": [1.0, 2.0], "adam": [1.0]}], lambda d: d)
