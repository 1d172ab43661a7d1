"""The book's plotting helpers: they label what they draw and survive diverged (NaN) runs."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rnnopt import plots  # noqa: E402
from rnnopt.landscapes import quadratic, rosenbrock, trajectory  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_every_registered_optimizer_has_its_own_colour():
    from rnnopt.optim import OPTIMIZERS

    colours = [plots.color(name) for name in OPTIMIZERS]
    assert len(set(colours)) == len(colours)


def test_unknown_optimizer_gets_a_colour_and_its_name_as_label():
    assert plots.color("lbfgs") == "black"
    assert plots.label("lbfgs") == "lbfgs"
    assert plots.label("rmsprop") == "RMSprop"


def test_setup_makes_png_figures_at_book_resolution():
    plots.setup()
    assert matplotlib.rcParams["savefig.format"] == "png"
    assert matplotlib.rcParams["figure.dpi"] == 110


def test_landscape_plot_labels_axes_and_marks_start_and_minimum(ax):
    land = quadratic(10.0)
    path = trajectory(land, "sgd", 20, lr=0.1)
    plots.plot_landscape(ax, land, {"SGD": path}, colors={"SGD": plots.color("sgd")})
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["SGD", "start", "minimum"]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title() == land.name


def test_landscape_plot_accepts_a_diverged_path(ax):
    land = rosenbrock()
    diverged = trajectory(land, "sgd", 50, lr=0.1)  # leaves the finite numbers within a few steps
    assert len(diverged) < 51
    with_nan = np.array([[0.0, 0.0], [np.nan, np.inf]])
    plots.plot_landscape(ax, land, {"big lr": diverged, "nan": with_nan})
    drawn = {line.get_label(): line for line in ax.get_lines()}
    assert np.isfinite(drawn["nan"].get_xydata()).all()


def test_mean_spread_draws_the_mean_over_seeds_and_names_the_seed_count(ax):
    plots.plot_mean_spread(ax, [0, 1, 2], [[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]], "Adam", "red")
    (line,) = ax.get_lines()
    assert line.get_label() == "Adam (mean of 2)"
    np.testing.assert_allclose(line.get_ydata(), [2.0, 3.0, 4.0])


def test_mean_spread_ignores_nan_and_runs_cut_short(ax):
    curves = [[1.0, math.nan, 3.0], [3.0, 4.0], [math.nan]]  # the last run diverged at once
    plots.plot_mean_spread(ax, [0, 1, 2], curves, "SGD")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [2.0, 4.0, 3.0])


def test_mean_spread_of_only_diverged_runs_draws_nothing_and_does_not_raise(ax):
    plots.plot_mean_spread(ax, [0, 1], [[math.nan, math.nan]], "SGD")
    assert np.isnan(ax.get_lines()[0].get_ydata()).all()


def test_baseline_is_a_labelled_horizontal_line(ax):
    plots.plot_baseline(ax, 0.1667, "baseline")
    (line,) = ax.get_lines()
    assert line.get_label() == "baseline"
    assert list(line.get_ydata()) == [0.1667, 0.1667]


def test_lr_sensitivity_uses_a_log_axis_and_marks_failed_rates_at_the_top(ax):
    lrs = [1e-3, 1e-2, 1e-1, 1.0]
    plots.plot_lr_sensitivity(
        ax, lrs, [0.2, 0.1, math.nan, 0.15], "SGD", failed=[False, False, True, True]
    )
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "learning rate"
    line, crosses = ax.get_lines()
    assert np.isnan(line.get_ydata()[2:]).all()  # failed points are left out of the line
    assert list(crosses.get_xdata()) == [1e-1, 1.0]
    assert crosses.get_label() == "SGD: failed"


def test_lr_sensitivity_without_failures_draws_no_crosses(ax):
    plots.plot_lr_sensitivity(ax, [1e-2, 1e-1], [0.2, 0.1], "Adam")
    assert len(ax.get_lines()) == 1


def test_markdown_table_has_a_header_rule_and_one_line_per_row():
    text = plots.markdown_table(["lr", "loss"], [("0.01", "0.123"), ("0.1", "diverged")])
    assert text.splitlines() == [
        "| lr | loss |",
        "|---|---|",
        "| 0.01 | 0.123 |",
        "| 0.1 | diverged |",
    ]


def test_markdown_table_refuses_a_row_of_the_wrong_length():
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        plots.markdown_table(["lr", "loss"], [("0.01",)])


def test_show_displays_a_numbered_figure_directive_beside_the_png(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append((obj, kw)))
    fig, _ = plt.subplots(figsize=(plots.COLUMN_INCHES, 2))
    plots.show(fig, "fig-test", "What to look at: the line.")
    ((bundle, options),) = shown
    assert bundle["text/markdown"].startswith("```{figure} data:image/png;base64,")
    assert ":name: fig-test" in bundle["text/markdown"]
    assert bundle["text/markdown"].rstrip().endswith("What to look at: the line.\n```")
    assert bundle["image/png"] in bundle["text/markdown"]
    assert options["raw"] is True


def test_show_refuses_a_figure_wider_than_the_column():
    fig, _ = plt.subplots(figsize=(plots.COLUMN_INCHES + 1, 2))
    with pytest.raises(ValueError, match="px wide"):
        plots.show(fig, "fig-wide", "Too wide.")


def test_sequential_colors_are_distinct_and_ordered():
    colours = plots.sequential_colors(7)
    assert len(set(colours)) == 7
    assert plots.sequential_colors(1) == [plots.sequential_colors(3)[0]]
