"""rnnopt.analysis: from a sweep's rows to the comparison table (synthetic rows, no training)."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from rnnopt.analysis import (
    LrPoint,
    beats_baseline,
    best_point,
    check_sweeps,
    final_train_loss,
    finished_sweeps,
    gap_closed,
    lr_points,
    lr_window,
    measure,
    measured_table,
    median_step_time,
    metric_limits,
    regenerate_sweeps,
    sig,
    spec_table,
    state_elements_per_parameter,
    steps_to_target,
    summary_table,
    sweep_label,
    sweep_names,
    target_level,
    targets_table,
)
from rnnopt.train import History

LRS = [0.001, 0.00316, 0.01, 0.0316, 0.1]


def rows_for(optimizer: str, metrics: dict[float, list[float]]) -> list[dict]:
    """Results rows as load_results gives them; NaN metric = a diverged run."""
    rows = []
    for lr, values in metrics.items():
        for seed, value in enumerate(values):
            rows.append(
                {
                    "optimizer": optimizer,
                    "lr": lr,
                    "seed": seed,
                    "run_id": f"{optimizer}-{lr}-{seed}",
                    "status": "ok" if math.isfinite(value) else "diverged",
                    "final_metric": value,
                }
            )
    return rows


def points_from_means(means: list[float]) -> list[LrPoint]:
    return [LrPoint(lr, (0,), (m,), ("x",)) for lr, m in zip(LRS, means, strict=True)]


def test_lr_points_group_seeds_by_lr_in_increasing_order():
    rows = rows_for("adam", {0.1: [3.0, 4.0], 0.01: [1.0, 2.0]}) + rows_for("sgd", {0.1: [9.0]})
    points = lr_points(rows[::-1], "adam")
    assert [p.lr for p in points] == [0.01, 0.1]
    assert points[0].seeds == (0, 1) and points[0].metrics == (1.0, 2.0)
    assert points[0].mean == 1.5 and points[0].std == pytest.approx(math.sqrt(0.5))


def test_a_point_with_a_diverged_seed_has_no_mean():
    (point,) = lr_points(rows_for("sgd", {1.0: [0.5, math.nan, 0.4]}), "sgd")
    assert point.diverged == 1 and math.isnan(point.mean)


def test_best_point_minimises_or_maximises_the_mean_and_skips_diverged_points():
    points = points_from_means([0.5, 0.2, 0.3, math.nan, 0.9])
    assert best_point(points, higher_is_better=False).lr == 0.00316
    assert best_point(points, higher_is_better=True).lr == 0.1


def test_best_point_is_none_when_every_point_diverged():
    assert best_point(points_from_means([math.nan] * 5), higher_is_better=False) is None


def test_gap_closed_is_zero_at_the_baseline_and_one_at_the_reference_for_both_directions():
    assert gap_closed(1.0, baseline=1.0, reference=0.2) == 0
    assert gap_closed(0.6, baseline=1.0, reference=0.2) == pytest.approx(0.5)
    assert gap_closed(0.55, baseline=0.1, reference=1.0) == pytest.approx(0.5)  # accuracy


def test_lr_window_counts_the_contiguous_points_within_the_margin_in_decades():
    # baseline 1.0, best 0.2 (gap 0.8); within margin 0.25 means <= 0.4
    points = points_from_means([0.9, 0.35, 0.2, 0.38, 0.6])
    window = lr_window(points, points[2], baseline=1.0, margin=0.25, higher_is_better=False)
    assert (window.low, window.high) == (0.00316, 0.0316)
    assert window.decades == pytest.approx(1.5, abs=0.01)  # 3 half-decade cells
    assert not window.censored


def test_lr_window_stops_at_a_gap_and_is_censored_at_the_grid_edge():
    points = points_from_means([0.2, 0.9, 0.21, 0.21, 0.21])
    window = lr_window(points, points[0], baseline=1.0, margin=0.1, higher_is_better=False)
    assert window.low == window.high == 0.001
    assert window.censored


def test_lr_window_is_none_when_the_best_does_not_beat_the_baseline():
    points = points_from_means([0.12, 0.11, 0.10, 0.11, 0.12])  # accuracy, chance 0.125
    assert lr_window(points, points[0], baseline=0.125, margin=0.2, higher_is_better=True) is None


def test_a_lead_within_two_standard_errors_does_not_beat_the_baseline():
    noisy = LrPoint(0.01, (0, 1, 2), (0.10, 0.14, 0.15), ("a", "b", "c"))  # mean 0.13, se 0.015
    clear = LrPoint(0.01, (0, 1, 2), (0.20, 0.21, 0.22), ("a", "b", "c"))
    assert not beats_baseline(noisy, 0.125, higher_is_better=True)
    assert beats_baseline(clear, 0.125, higher_is_better=True)
    assert not beats_baseline(clear, 0.125, higher_is_better=False)


def test_lr_window_rejects_a_margin_outside_zero_one():
    points = points_from_means([0.9, 0.2, 0.3, 0.4, 0.5])
    with pytest.raises(ValueError, match="margin"):
        lr_window(points, points[1], baseline=1.0, margin=1.5, higher_is_better=False)


def test_target_level_closes_the_stated_fraction_of_the_gap():
    assert target_level(1.0, 0.2, 0.75) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="target_fraction"):
        target_level(1.0, 0.2, 0)


def test_steps_to_target_is_the_first_evaluation_that_reaches_it():
    history = History(eval_step=[0, 10, 20, 30], eval_metric=[1.0, 0.5, 0.3, 0.1])
    assert steps_to_target(history, 0.3, higher_is_better=False) == 20
    assert steps_to_target(history, 0.05, higher_is_better=False) is None
    assert steps_to_target(history, 0.9, higher_is_better=True) == 0


def test_final_train_loss_averages_the_last_tenth_of_the_batches():
    history = History(loss=[10.0] * 18 + [1.0, 3.0])
    assert final_train_loss(history) == 2.0
    assert math.isnan(final_train_loss(History(loss=[1.0], diverged=True)))


def test_median_step_time_is_the_median_of_each_runs_median():
    runs = [
        History(step_time=[1.0, 2.0, 100.0]),
        History(step_time=[3.0, 4.0, 5.0]),
        History(step_time=[0.5, 0.5, 9.0]),
    ]
    assert median_step_time(runs) == 2.0


@pytest.mark.parametrize(
    ("optimizer", "expected"), [("sgd", 0), ("momentum", 1), ("rmsprop", 1), ("adam", 2)]
)
def test_state_elements_per_parameter_counts_the_real_optimizers_state(optimizer, expected):
    assert state_elements_per_parameter(optimizer) == expected


def test_state_of_rmsprop_grows_with_its_options():
    # centered keeps grad_avg, momentum keeps momentum_buffer: one more tensor each
    assert state_elements_per_parameter("rmsprop", centered=True, momentum=0.9) == 3


def test_state_elements_rejects_an_unknown_optimizer():
    with pytest.raises(ValueError, match="^optimizer='lbfgs' is invalid: .*; valid choices: 'sgd'"):
        state_elements_per_parameter("lbfgs")


def test_sweep_names_leave_out_the_full_specs(tmp_path):
    for name in ("a", "b-full", "c"):
        (tmp_path / f"{name}.yaml").write_text("{}")
    assert sweep_names(tmp_path) == ["a", "c"]


def test_regenerate_sweeps_rejects_a_name_without_a_spec(tmp_path):
    (tmp_path / "known.yaml").write_text("{}")
    with pytest.raises(
        ValueError, match=r"^sweeps=\['nope'\] is invalid: .*; valid choices: 'known'$"
    ):
        regenerate_sweeps(["nope"], specs_dir=tmp_path, sweeps_dir=tmp_path / "out")


def test_measure_gives_one_row_per_optimizer_from_a_real_sweep(tmp_path):
    spec = {
        "task": {"name": "adding", "seq_len": 5, "eval_size": 50},
        "model": {"hidden_size": 4},
        "train": {"steps": 6, "batch_size": 8, "eval_every": 2},
        "grid": {"optimizer": ["sgd", "adam"], "lr": [0.001, 0.01, 0.1], "seed": [0, 1]},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(spec))
    regenerate_sweeps(["tiny"], workers=1, specs_dir=tmp_path, sweeps_dir=tmp_path, progress=False)
    result = measure(tmp_path / "tiny", target_fraction=0.5, margin=0.2)
    assert list(result["rows"]) == ["sgd", "adam"]
    adam = result["rows"]["adam"]
    assert [p.lr for p in adam.points] == [0.001, 0.01, 0.1]
    assert adam.best in adam.points and len(adam.histories) == 2
    assert result["task"].name == "adding" and math.isfinite(result["baseline"])
    provenance = json.loads((tmp_path / "tiny" / "provenance.json").read_text())
    assert provenance["runs"] == 12 and "rnnopt sweep" in provenance["command"]


def test_the_chapter_tables_cover_every_sweep_and_optimizer_of_a_real_sweep(tmp_path):
    spec = {
        "task": {"name": "adding", "seq_len": 5, "eval_size": 50},
        "model": {"hidden_size": 4},
        "train": {"steps": 6, "batch_size": 8, "eval_every": 2},
        "grid": {"optimizer": ["sgd", "adam"], "lr": [0.001, 0.01], "seed": [0, 1]},
    }
    (tmp_path / "comparison-elman-adding.yaml").write_text(yaml.safe_dump(spec))
    regenerate_sweeps(None, workers=1, specs_dir=tmp_path, sweeps_dir=tmp_path, progress=False)
    data = check_sweeps(str(tmp_path), ["comparison-elman-adding"])
    measured = {"comparison-elman-adding": measure(data / "comparison-elman-adding")}
    state = {"sgd": 0.0, "adam": 2.0}
    table = measured_table(measured, state).splitlines()
    assert len(table) == 2 + 2 and table[2].startswith("| adding | Elman | SGD |")
    assert targets_table(measured).splitlines()[2].startswith("| adding | Elman | mse |")
    summary = summary_table(measured, state).splitlines()
    assert len(summary) == 2 + 2 and "plain gradient steps" in summary[2]
    assert "adding" in spec_table(data, ["comparison-elman-adding"])


def test_check_sweeps_names_the_bad_parameter_and_the_finished_sweeps(tmp_path):
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "results.csv").write_text("")
    (tmp_path / "half").mkdir()
    assert finished_sweeps(tmp_path) == ["done"]
    with pytest.raises(ValueError, match=r"data_dir=.* is invalid: expected a directory"):
        check_sweeps(str(tmp_path / "nowhere"), ["done"])
    with pytest.raises(ValueError, match=r"sweeps=\[\] is invalid.*valid choices: 'done'"):
        check_sweeps(str(tmp_path), [])
    with pytest.raises(ValueError, match=r"sweeps\[1\]='half' is invalid.*rnnopt sweep"):
        check_sweeps(str(tmp_path), ["done", "half"])


def test_sweep_label_and_sig():
    assert sweep_label("comparison-lstm-text") == ("text", "LSTM")
    assert sweep_label("comparison-elman-copy-full") == ("copy", "Elman")
    assert sig(0.123456) == "0.123" and sig(0.123456, 2) == "0.12" and sig(math.nan) == "—"


class _Task:
    def __init__(self, higher_is_better):
        self.higher_is_better = higher_is_better


def test_metric_limits_show_accuracy_whole_and_a_loss_from_just_below_its_best():
    assert metric_limits({"task": _Task(True), "baseline": 0.1, "best": 0.9}) == (0.0, 1.05)
    low, high = metric_limits({"task": _Task(False), "baseline": 1.0, "best": 0.5})
    assert low == pytest.approx(0.35) and high == pytest.approx(1.5)
