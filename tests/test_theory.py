"""rnnopt.theory: its closed forms agree with each other and with rnnopt's optimizers, and its
measurement helpers measure what they say. (tests/test_convergence.py checks SGD's and
Momentum's rates at the optimal settings; these tests check theory.py's own functions.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnopt import theory

KAPPA_100 = [1.0, 100.0]


def test_gradient_descent_optimum_balances_the_two_extreme_eigenvalues():
    best = theory.gradient_descent_optimum([2.0, 5.0, 50.0])
    assert abs(1 - best.lr * 2.0) == pytest.approx(abs(1 - best.lr * 50.0))
    assert best.rate == pytest.approx((25 - 1) / (25 + 1))
    assert best.momentum == 0.0


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_any_other_gradient_descent_step_has_a_slower_closed_form_rate(factor):
    best = theory.gradient_descent_optimum(KAPPA_100)
    assert theory.momentum_rate(best.lr * factor, 0.0, KAPPA_100) > best.rate


def test_heavy_ball_optimum_rate_is_the_root_of_its_momentum_and_the_spectral_radius():
    best = theory.heavy_ball_optimum(KAPPA_100)
    assert best.rate == pytest.approx(math.sqrt(best.momentum))
    assert best.rate == pytest.approx(9 / 11)
    assert theory.momentum_rate(best.lr, best.momentum, KAPPA_100) == pytest.approx(
        best.rate, rel=1e-6
    )


def test_condition_number_is_largest_over_smallest_eigenvalue():
    assert theory.condition_number([4.0, 1.0, 0.5]) == 8.0


@pytest.mark.parametrize("bad", [[], [1.0, 0.0], [1.0, -2.0], [1.0, math.nan]])
def test_invalid_eigenvalues_are_refused_naming_the_parameter(bad):
    with pytest.raises(ValueError, match="eigenvalues"):
        theory.condition_number(bad)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_rate_matches_the_rate_measured_from_rnnopt_iterates(nesterov):
    # Not an optimum, so the slowest mode is a simple root and the fit is exact.
    lr, momentum = 0.01, 0.5
    errors = theory.quadratic_errors(
        KAPPA_100, 600, optimizer="momentum", lr=lr, momentum=momentum, nesterov=nesterov
    )
    predicted = theory.momentum_rate(lr, momentum, KAPPA_100, nesterov=nesterov)
    assert theory.measured_rate(errors) == pytest.approx(predicted, rel=1e-4)


def test_nesterov_is_unstable_sooner_than_heavy_ball():
    # heavy ball: stable up to lr*lambda = 2 + 2*beta; Nesterov: up to (2 + 2 beta)/(1 + 2 beta)
    momentum = 0.9
    lr = 0.5 * (2 + 2 * momentum) / (1 + 2 * momentum) + 0.5 * (2 + 2 * momentum)
    assert theory.momentum_rate(lr, momentum, [1.0]) < 1
    assert theory.momentum_rate(lr, momentum, [1.0], nesterov=True) > 1


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_is_stable_flips_at_lr_times_curvature_two_plus_two_beta(momentum):
    edge = (2 + 2 * momentum) / 4.0  # curvature 4
    assert theory.is_stable(edge * 0.999, momentum, 4.0)
    assert not theory.is_stable(edge * 1.001, momentum, 4.0)
    assert not theory.is_stable(0.0, momentum, 4.0)


def test_is_stable_refuses_momentum_of_one_or_more():
    assert not theory.is_stable(0.1, 1.0, 1.0)


def test_stability_grid_measures_the_closed_form_region_away_from_its_edge():
    lrs = np.linspace(0.1, 4.5, 12)
    momenta = np.linspace(0.0, 0.95, 8)
    measured = theory.stability_grid(lrs, momenta, curvature=1.0, steps=300)
    for i, lr in enumerate(lrs):
        for j, momentum in enumerate(momenta):
            edge = 2 + 2 * momentum
            if abs(lr - edge) > 0.05 * edge:
                assert measured[i, j] == theory.is_stable(lr, momentum, 1.0), (lr, momentum)


def test_stability_grid_has_one_row_per_lr_and_one_column_per_momentum():
    assert theory.stability_grid([0.5, 1.0, 5.0], [0.0, 0.5], steps=10).shape == (3, 2)


def test_noise_floor_of_gradient_descent_is_the_one_dimensional_formula():
    lr, curvature, noise = 0.1, 3.0, 0.2
    expected = math.sqrt(lr * noise**2 / (curvature * (2 - lr * curvature)))
    assert theory.noise_floor(lr, 0.0, [curvature], noise) == pytest.approx(expected)


def test_noise_floor_is_infinite_outside_the_stable_region():
    assert theory.noise_floor(3.0, 0.0, [1.0], 0.1) == math.inf


def test_measured_error_with_noisy_gradients_settles_at_the_noise_floor():
    best = theory.heavy_ball_optimum(KAPPA_100)
    floors = []
    for seed in range(4):
        errors = theory.quadratic_errors(
            KAPPA_100,
            2000,
            optimizer="momentum",
            lr=best.lr,
            momentum=best.momentum,
            noise=0.1,
            seed=seed,
        )
        floors.append(np.mean(errors[1000:] ** 2))
    predicted = theory.noise_floor(best.lr, best.momentum, KAPPA_100, 0.1)
    assert math.sqrt(np.mean(floors)) == pytest.approx(predicted, rel=0.1)


def test_quadratic_errors_are_reproducible_from_the_seed_and_differ_between_seeds():
    def run(seed):
        return theory.quadratic_errors(KAPPA_100, 50, lr=0.01, noise=0.1, seed=seed)

    assert np.array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_quadratic_errors_of_a_diverging_run_end_in_inf():
    errors = theory.quadratic_errors([1.0], 3000, lr=2.5)
    assert errors[0] == 1.0 and errors[-1] == math.inf


def test_measured_rate_of_a_geometric_sequence_is_its_ratio():
    assert theory.measured_rate(0.9 ** np.arange(40)) == pytest.approx(0.9)


def test_measured_rate_refuses_a_start_at_the_last_step():
    with pytest.raises(ValueError, match="first"):
        theory.measured_rate([1.0, 0.5, 0.25], first=2)


def test_steps_to_tolerance_counts_steps_and_is_none_when_never_reached():
    errors = 0.5 ** np.arange(30)
    assert theory.steps_to_tolerance(errors, 1e-3) == math.ceil(theory.predicted_steps(0.5, 1e-3))
    assert theory.steps_to_tolerance(errors, 1e-30) is None


def test_predicted_steps_is_infinite_for_a_rate_of_one_or_more():
    assert theory.predicted_steps(1.0, 1e-6) == math.inf


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_rmsprop_first_step_is_lr_over_root_one_minus_alpha_at_any_gradient_scale(scale):
    # A negligible eps (rnnopt requires eps > 0): with torch's eps=1e-8 a gradient of 1e-3 would
    # already shorten the step by 5e-5.
    sizes = theory.step_sizes("rmsprop", [scale, scale], lr=0.01, alpha=0.96, eps=1e-300)
    assert sizes[0] == pytest.approx(0.01 / math.sqrt(1 - 0.96), rel=1e-9)


def test_adam_steps_do_not_change_when_every_gradient_is_scaled():
    gradients = np.random.default_rng(0).normal(size=100)
    unit = theory.step_sizes("adam", gradients, lr=1e-3)
    scaled = theory.step_sizes("adam", 1e4 * gradients, lr=1e-3)
    np.testing.assert_allclose(scaled, unit, rtol=1e-6)
    assert unit.max() <= theory.adam_step_bound(1e-3)


def test_a_rare_gradient_after_many_zeros_makes_adam_step_reach_its_bound():
    gradients = np.zeros(6000)
    gradients[-1] = 1.0
    largest = theory.step_sizes("adam", gradients, lr=1e-3).max()
    assert largest == pytest.approx(theory.adam_step_bound(1e-3), rel=0.01)
    assert theory.adam_step_bound(1e-3) == pytest.approx(1e-3 * 0.1 / math.sqrt(0.001))


def test_adam_step_bound_is_lr_when_beta1_is_the_slower_average():
    assert theory.adam_step_bound(0.01, betas=(0.99, 0.999)) == 0.01


def test_reddi_gradients_are_large_once_per_period_and_sum_positive_over_a_period():
    gradients = theory.reddi_gradients(202)
    assert gradients[0] == 1010.0 and gradients[101] == 1010.0
    assert np.count_nonzero(gradients == 1010.0) == 2
    assert gradients[:101].sum() == pytest.approx(10.0)


def test_online_projected_keeps_x_in_its_bounds():
    path = theory.online_projected("sgd", [-100.0, 100.0, 100.0], lr=1.0)
    assert path.tolist() == [0.0, 1.0, -1.0, -1.0]


def test_adam_drifts_to_the_wrong_end_of_reddis_problem_and_amsgrad_does_not():
    gradients = theory.reddi_gradients(101 * 120)
    options = dict(lr=0.05, betas=(0.9, 0.99))
    adam = theory.online_projected("adam", gradients, **options)
    amsgrad = theory.online_projected("adam", gradients, amsgrad=True, **options)
    assert adam[-101:].mean() > 0.5  # the optimum is x = -1
    assert amsgrad[-101:].mean() < -0.3


def test_adamw_decays_every_weight_alike_and_adam_l2_spares_large_gradients():
    scales, steps, lr, decay = [0.01, 1.0, 100.0], 400, 0.01, 0.1
    expected = (1 - lr * decay) ** steps
    adamw = theory.decay_factors("adamw", scales, steps=steps, lr=lr, weight_decay=decay)
    adam = theory.decay_factors("adam", scales, steps=steps, lr=lr, weight_decay=decay)
    np.testing.assert_allclose(adamw, expected, rtol=0.05)
    assert adam[0] < 0.1 and adam[2] > 0.95


# --- the chapter studies, and the checks of the chapter's parameters --------------------------

THEORY_DEFAULTS = {
    "threads": 1,
    "kappas": [3.0, 10.0, 30.0],
    "tolerance": 1e-6,
    "rate_tolerance": 1e-30,
    "stability_lrs": 4,
    "stability_momenta": 3,
    "stability_steps": 50,
    "noise_kappa": 10.0,
    "noise_levels": [0.0, 0.1],
    "noise_steps": 100,
    "noise_seeds": [0, 1],
    "scale_decades": [-2, 0, 2],
    "scale_steps": 20,
    "spike_zeros": 10,
    "rmsprop_alpha": 0.99,
    "adam_betas": [0.9, 0.999],
    "seed": 0,
}


def test_the_landscapes_measurements_are_importable_from_theory():
    from rnnopt import landscapes

    for name in ("quadratic_errors", "stability_grid", "step_sizes", "decay_factors"):
        assert getattr(theory, name) is getattr(landscapes, name)


def test_good_chapter_parameters_pass_and_every_rule_has_a_parameter():
    theory.check_parameters(**THEORY_DEFAULTS)
    assert set(theory.PARAMETERS) == set(THEORY_DEFAULTS)


@pytest.mark.parametrize(
    "name, value",
    [
        ("threads", 0),
        ("kappas", [3.0, 10.0]),  # fewer than 3
        ("kappas", [10.0, 3.0, 30.0]),  # not increasing
        ("kappas", [1.0, 3.0, 10.0]),  # κ = 1
        ("tolerance", 1.0),
        ("rate_tolerance", 1e-3),  # above tolerance
        ("stability_lrs", 1),
        ("noise_levels", [-0.1]),
        ("noise_seeds", [0, 0]),
        ("scale_decades", [-2, 2]),  # no 0
        ("rmsprop_alpha", 1.0),
        ("adam_betas", [0.9]),
        ("adam_betas", [0.9, 1.5]),
        ("seed", -1),
        ("spike_zeros", True),
    ],
)
def test_a_bad_chapter_parameter_is_refused_naming_it_and_its_value(name, value):
    with pytest.raises(ValueError, match=rf"^{name}(\[\d\])?=") as refused:
        theory.check_parameters(**{**THEORY_DEFAULTS, name: value})
    assert "is invalid: expected" in str(refused.value)


def test_a_missing_or_unknown_chapter_parameter_is_a_type_error():
    with pytest.raises(TypeError, match="missing: \\['seed'\\]; unknown: \\['sed'\\]"):
        theory.check_parameters(**{k: v for k, v in THEORY_DEFAULTS.items() if k != "seed"}, sed=0)


def test_percent_is_rounded_and_has_a_floor():
    assert theory.percent(0.012345) == "1.23 %"
    assert theory.percent(1e-6) == "< 0.01 %"


def test_rate_study_measures_the_closed_form_rates_and_steps_growing_like_kappa():
    study = theory.rate_study([3.0, 10.0, 30.0, 100.0], 1e-6, 1e-30)
    assert max(study.rate_gap.values()) < 0.05
    assert study.slopes["gd"] == pytest.approx(1.0, abs=0.1)
    assert study.slopes["hb"] == pytest.approx(0.5, abs=0.15)
    assert all(0.9 < r < 1.1 for r in study.step_ratio["gd"])
    table = study.table().splitlines()
    assert len(table) == 2 + 4 and table[2].startswith("| 3 | 0.5000 |")


def test_stability_study_agrees_with_the_closed_form_and_reports_its_disagreements():
    study = theory.stability_study(12, 6, 300)
    assert study.converged.shape == study.predicted.shape == (12, 6)
    assert study.agree.mean() > 0.9
    distance = np.abs(study.lrs[:, None] - (2 + 2 * study.momenta[None, :]))
    if not study.agree.all():
        assert study.worst_distance == distance[~study.agree].max()
    exact = theory.StabilityStudy(study.lrs, study.momenta, 300, study.predicted, study.predicted)
    assert exact.worst_distance == 0.0


def test_noise_study_bands_hold_the_rms_curve_and_floors_match_the_closed_form():
    study = theory.noise_study(10.0, [0.0, 0.1], 400, [0, 1, 2])
    for key, curve in study.curves.items():
        low, high = study.bands[key]
        assert np.all(low <= curve * (1 + 1e-12)) and np.all(curve <= high * (1 + 1e-12))
    zero_low, zero_high = study.bands[0.0, "sgd"]
    assert np.array_equal(zero_low, zero_high)  # no noise: every seed is the same run
    assert study.worst_gap < 0.3
    assert 0 < study.steps_to_floor(0.1, "momentum") < study.steps_to_floor(0.1, "sgd")
    assert len(study.table().splitlines()) == 2 + 2 * 2


def test_step_size_study_finds_rmsprops_first_step_and_adams_scale_invariance():
    base = np.random.default_rng(0).normal(1.0, 1.0, size=50)
    study = theory.step_size_study(base, [2, -10, 0], lr=1e-3, alpha=0.99, betas=(0.9, 0.999))
    assert [r["k"] for r in study.rows] == [-10, 0, 2]  # sorted
    assert study.rmsprop_exact == [0, 2] and study.adam_invariant == [0, 2]
    assert study.rows[1]["sgd_first"] == pytest.approx(base[0])
    assert study.rows[1]["rmsprop_first"] == pytest.approx(10.0, rel=1e-4)
    assert study.adam_largest == max(r["adam_largest"] for r in study.rows)


def test_nesterov_study_is_stable_over_a_shorter_range_than_heavy_ball():
    study = theory.nesterov_study(100.0, 0.9, 12, 300)
    assert study.lrs[-1] * 100.0 == pytest.approx(2 + 2 * 0.9)
    assert study.edge[True] < study.edge[False]
    assert study.stable_gap < 0.05
    for nesterov, index in study.best.items():
        assert study.rates[nesterov][0][index] == study.rates[nesterov][0].min()


def test_sgd_l2_and_decoupled_decay_are_one_update_only_without_momentum():
    plain = theory.sgd_decay_factors(0.0, steps=200, lr=0.01, weight_decay=0.1)
    assert plain["gap"] < 1e-12  # w − lr (g + λw) = (1 − lr λ) w − lr g
    assert plain["l2"] == pytest.approx((1 - 0.001) ** 200) == plain["decoupled"]
    heavy = theory.sgd_decay_factors(0.9, steps=200, lr=0.01, weight_decay=0.1)
    assert heavy["decoupled"] == pytest.approx((1 - 0.001) ** 200)  # decoupled: unchanged
    assert heavy["l2"] < heavy["decoupled"] and heavy["gap"] > 0.1  # the buffer adds decay
    noisy = theory.sgd_decay_factors(0.0, steps=200, lr=0.01, weight_decay=0.1, noise=1.0)
    assert noisy["gap"] < 1e-12  # the identity holds with any gradient


def test_heavy_ball_at_equal_effective_step_has_the_matched_rate_and_floor():
    study = theory.noise_study(10.0, [0.0, 0.1], 600, [0, 1, 2])
    matched = theory.matched_noise_study(study, 600, [0, 1, 2])
    gd, hb = study.settings["sgd"], study.settings["momentum"]
    best = matched.setting
    assert best.momentum == hb.momentum
    assert best.lr / (1 - best.momentum) == pytest.approx(gd.lr) == matched.effective_lr
    assert matched.noise_levels == [0.1]  # σ = 0 has no floor to compare
    expected = theory.noise_floor(best.lr, best.momentum, study.eigenvalues, 0.1)
    assert matched.predicted[0.1, "matched"] == pytest.approx(expected)
    assert matched.measured[0.1, "sgd"] == study.floors[0.1, "sgd"]
    assert matched.measured[0.1, "matched"] == pytest.approx(expected, rel=0.25)
    assert matched.ratio(0.1, "predicted") == pytest.approx(expected / study.predicted(0.1, "sgd"))
    # at equal effective step the floors are far closer than at the two optima
    optimal = study.floors[0.1, "momentum"] / study.floors[0.1, "sgd"]
    assert abs(math.log(matched.ratio(0.1))) < abs(math.log(optimal))
    assert "0.1" in matched.table()
    # the per-seed floors: one per seed, their RMS is the pooled floor, and the seed ratios pair
    # the two methods' runs of the same seed
    assert study.seed_floors[0.1, "sgd"].shape == (3,)
    pooled = np.sqrt(np.mean(study.seed_floors[0.1, "sgd"] ** 2))
    assert pooled == pytest.approx(study.floors[0.1, "sgd"])
    ratios = matched.seed_ratios(0.1)
    assert ratios.shape == (3,)
    assert ratios.min() <= matched.ratio(0.1) * 1.5 and ratios.max() >= matched.ratio(0.1) / 1.5
    assert matched.seed_ratios(0.5).size == 0  # a noise level not studied: no seeds
