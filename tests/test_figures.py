"""The explanatory figures compute what their captions say: rates, first steps, paths."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rnnopt import figures, theory  # noqa: E402
from rnnopt.landscapes import quadratic, rotated_quadratic, trajectory  # noqa: E402
from rnnopt.plots import COLUMN_INCHES, setup  # noqa: E402
from rnnopt.tasks import make_task  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    setup()
    yield
    plt.close("all")


@pytest.mark.parametrize("x, beta", [(0.5, 0.0), (1.0, 0.5), (2.5, 0.3), (3.9, 0.9), (4.1, 0.9)])
def test_heavy_ball_rates_agree_with_the_closed_form(x, beta):
    kappa = 10.0
    expected = theory.momentum_rate(x / kappa, beta, [1.0, kappa])
    assert figures.heavy_ball_rates(np.array(x), np.array(beta), kappa) == pytest.approx(expected)


def test_heavy_ball_rate_is_sqrt_beta_in_the_complex_regime():
    rate = figures.heavy_ball_rates(np.array(1.0), np.array(0.64), kappa=1.0)
    assert rate == pytest.approx(0.8)


def test_adam_first_steps_with_both_corrections_is_rnnopts_adam():
    gradients = np.random.default_rng(0).normal(1.0, 0.5, 20)
    ours = np.abs(figures.adam_first_steps(gradients, lr=1e-3)["step"])
    assert ours == pytest.approx(theory.step_sizes("adam", gradients, lr=1e-3), rel=1e-9)


@pytest.mark.parametrize(
    "first, second, expected",
    [
        (True, True, 1.0),
        (False, False, 0.1 / math.sqrt(0.001)),
        (True, False, 1 / math.sqrt(0.001)),
        (False, True, 0.1),
    ],
)
def test_adam_first_step_without_each_bias_correction(first, second, expected):
    step = figures.adam_first_steps([0.37], lr=1.0, correct_first=first, correct_second=second)
    assert abs(step["step"][0]) == pytest.approx(expected, rel=1e-6)


def test_explorer_embeds_rnnopts_paths_rounded_and_cut_where_they_diverge():
    explorer = figures.heavy_ball_explorer(
        kappa=10.0, steps=20, lr_times_curvature=[1.0, 4.0], momenta=[0.0, 0.5]
    )
    data = explorer.data
    path = trajectory(quadratic(10.0), "sgd", 20, lr=0.1, momentum=0.5)
    assert data["paths"][0][1] == np.round(path, 2).tolist()
    assert len(data["paths"][1][0]) < 21  # αλ = 4 > 2 + 2·0: it leaves the window
    assert data["rate"][1][0] > 1 > data["rate"][0][1]
    payload = explorer.html.split('<script type="application/json">')[1].split("</script>")[0]
    assert json.loads(payload) == data
    assert (
        explorer.html
        == figures.heavy_ball_explorer(
            kappa=10.0, steps=20, lr_times_curvature=[1.0, 4.0], momenta=[0.0, 0.5]
        ).html
    )


def test_rotated_quadratic_by_zero_is_the_quadratic():
    plain, turned = quadratic(25.0), rotated_quadratic(25.0, 0.0)
    assert turned(1.3, -0.4) == pytest.approx(plain(1.3, -0.4))
    assert rotated_quadratic(25.0, 45.0)(1.0, 1.0) == pytest.approx(0.5 * 2.0)  # along u


def test_per_coordinate_scaling_helps_only_on_the_axis_aligned_valley():
    _, distances = figures.axis_aligned_vs_rotated({"sgd": 0.075, "rmsprop": 0.1})
    assert distances["axis-aligned", "rmsprop"] < 0.01 * distances["rotated", "rmsprop"]
    assert distances["axis-aligned", "sgd"] == pytest.approx(distances["rotated", "sgd"])


def test_cliff_throws_unclipped_descent_away_and_clipped_descent_stays():
    _, paths = figures.cliff_slice()
    assert np.max(np.abs(np.diff(paths["plain"]))) > 10
    assert np.max(np.abs(np.diff(paths["clipped"]))) <= 0.05 * 1.0 + 1e-12
    assert abs(paths["clipped"][-1] - 4.8) < 0.2


def test_effective_steps_are_summarised_per_weight_group():
    result = figures.effective_steps(
        make_task("adding", seq_len=5), "adam", 0.01, steps=10, hidden_size=8, every=5
    )
    assert list(result["step"]) == [5, 10]
    for group in figures.WEIGHT_GROUPS:
        low, mid, high = result[group][-1]
        assert 0 < low <= mid <= high
    with pytest.raises(ValueError, match="rmsprop, adam"):
        figures.effective_steps(make_task("adding", seq_len=5), "sgd", 0.1, steps=1)


def test_hidden_grads_during_training_has_one_curve_per_seed_and_checkpoint():
    result = figures.hidden_grads_during_training(
        make_task("adding", seq_len=6),
        {"sgd": 0.1},
        steps=4,
        checkpoints=2,
        hidden_size=8,
        seeds=[0, 1],
    )
    assert list(result["steps"]) == [0, 2, 4]
    assert result["sgd"].shape == (2, 3, 6)


@pytest.mark.parametrize(
    "draw",
    [
        lambda: figures.sgd_rates(),
        lambda: figures.momentum_memory(),
        lambda: figures.momentum_rate_map(points=41),
        lambda: figures.bias_correction(),
        lambda: figures.cliff_slice()[0],
    ],
)
def test_every_explanatory_figure_fits_the_column(draw):
    fig = draw()
    assert fig.get_size_inches()[0] <= COLUMN_INCHES + 1e-9
