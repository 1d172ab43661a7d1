"""The explanatory figures compute what their captions say: rates, first steps, paths."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rnnopt import figures, figures_rnn, theory  # noqa: E402
from rnnopt.landscapes import quadratic, rotated_quadratic, trajectory  # noqa: E402
from rnnopt.plots import COLUMN_INCHES, setup  # noqa: E402
from rnnopt.tasks import make_task  # noqa: E402
from rnnopt.train import History  # noqa: E402


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
    _, paths = figures_rnn.cliff_slice()
    assert np.max(np.abs(np.diff(paths["plain"]))) > 10
    assert np.max(np.abs(np.diff(paths["clipped"]))) <= 0.05 * 1.0 + 1e-12
    assert abs(paths["clipped"][-1] - 4.8) < 0.2


def test_effective_steps_are_summarised_per_weight_group():
    result = figures_rnn.effective_steps(
        make_task("adding", seq_len=5), "adam", 0.01, steps=10, hidden_size=8, every=5
    )
    assert list(result["step"]) == [5, 10]
    for group in figures_rnn.WEIGHT_GROUPS:
        low, mid, high = result[group][-1]
        assert 0 < low <= mid <= high
    with pytest.raises(ValueError, match="rmsprop, adam"):
        figures_rnn.effective_steps(make_task("adding", seq_len=5), "sgd", 0.1, steps=1)


def test_hidden_grads_during_training_has_one_curve_per_seed_and_checkpoint():
    result = figures_rnn.hidden_grads_during_training(
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
        lambda: figures_rnn.cliff_slice()[0],
    ],
)
def test_every_explanatory_figure_fits_the_column(draw):
    fig = draw()
    assert fig.get_size_inches()[0] <= COLUMN_INCHES + 1e-9


def test_noise_figure_draws_a_band_for_every_curve():
    study = theory.noise_study(10.0, [0.0, 0.1], 60, [0, 1])
    fig = figures.noise_figure(study)
    ax = fig.axes[0]
    assert len(ax.collections) == len(study.curves)  # one fill_between each
    assert fig.get_size_inches()[0] <= COLUMN_INCHES + 1e-9


@pytest.mark.parametrize(
    "draw",
    [
        lambda: figures.rate_study_figure(theory.rate_study([3.0, 10.0, 30.0], 1e-6, 1e-30)),
        lambda: figures.stability_figure(theory.stability_study(5, 4, 50)),
        lambda: figures.nesterov_figure(theory.nesterov_study(10.0, 0.9, 5, 50)),
        lambda: figures.online_figure(
            {a: np.zeros(1 + 3 * 101) for a in (False, True)}, 0.05, [0.9, 0.99]
        ),
    ],
)
def test_every_chapter_figure_fits_the_column(draw):
    assert draw().get_size_inches()[0] <= COLUMN_INCHES + 1e-9


def test_show_source_displays_the_function_as_a_python_block(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    figures.show_source(theory.percent)
    assert shown[0].data.startswith("```python\ndef percent(") and shown[0].data.endswith("```")


TRAINING_DEFAULTS = {
    "threads": 1,
    "seed": 0,
    "hidden_size": 64,
    "radii": [0.5, 1.0],
    "gradient_seq_len": 100,
    "gradient_seeds": 5,
    "optimizer": "adam",
    "lr": 0.01,
    "short_seq_len": 10,
    "long_seq_len": 50,
    "train_steps": 1500,
    "batch_size": 32,
    "clip_grad_norm": 1.0,
    "eval_every": 50,
}


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("threads", 0, ["threads=0", "an integer >= 1"]),
        ("optimizer", "adagrad", ["optimizer='adagrad'", "'adam'"]),
        ("lr", 0.0, ["lr=0.0", "> 0"]),
        ("radii", [], ["radii=[]"]),
        ("long_seq_len", 10, ["long_seq_len=10", ">= 11"]),
        ("clip_grad_norm", -1.0, ["clip_grad_norm=-1.0", "None or"]),
    ],
)
def test_a_bad_training_parameter_is_refused_naming_it(name, value, words):
    figures_rnn.check_training_parameters(**TRAINING_DEFAULTS)
    figures_rnn.check_training_parameters(**{**TRAINING_DEFAULTS, "clip_grad_norm": None})
    with pytest.raises(ValueError) as refused:
        figures_rnn.check_training_parameters(**{**TRAINING_DEFAULTS, name: value})
    for word in words:
        assert word in str(refused.value)


BEYOND_DEFAULTS = {
    "threads": 1,
    "seq_len": 50,
    "hidden_size": 32,
    "steps": 200,
    "batch_size": 32,
    "clip_lrs": {"sgd": 0.3, "adam": 0.03},
    "clip_norm": 1.0,
    "seeds": [0, 1, 2],
    "nesterov_kappa": 100.0,
    "nesterov_momentum": 0.9,
    "nesterov_points": 40,
    "nesterov_quadratic_steps": 300,
    "nesterov_lr": 0.1,
    "decay_scales": [0.01, 1.0],
    "decay_steps": 500,
    "decay_lr": 0.01,
    "weight_decay": 0.1,
    "reddi_periods": 250,
    "reddi_lr": 0.05,
    "reddi_betas": [0.9, 0.99],
    "workers": 1,
}


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("threads", 0, ["threads=0"]),
        ("seq_len", 1, ["seq_len=1", ">= 2"]),
        ("clip_lrs", {}, ["clip_lrs={}", "'sgd'"]),
        ("clip_lrs", {"adagrad": 0.1}, ["'adagrad'", "'adam'"]),
        ("clip_lrs", {"sgd": -1}, ["clip_lrs['sgd']=-1"]),
        ("nesterov_momentum", 1.0, ["nesterov_momentum=1.0", "(0, 1)"]),
        ("seeds", [0, 0], ["seeds=[0, 0]", "different"]),
        ("weight_decay", -0.1, ["weight_decay=-0.1"]),
        ("reddi_betas", [0.9, 1.0], ["reddi_betas[1]=1.0"]),
    ],
)
def test_a_bad_beyond_parameter_is_refused_naming_it(name, value, words):
    figures_rnn.check_beyond_parameters(**BEYOND_DEFAULTS)
    with pytest.raises(ValueError) as refused:
        figures_rnn.check_beyond_parameters(**{**BEYOND_DEFAULTS, name: value})
    for word in words:
        assert word in str(refused.value)


def test_growth_table_has_a_row_per_network_kind_and_a_bound_per_network():
    from rnnopt.diagnostics import hidden_grad_norms
    from rnnopt.rnn import NONLINEARITIES

    task = make_task("adding", seq_len=8)
    norms = {
        (phi, radius, s): hidden_grad_norms(task, radius, nonlinearity=phi, hidden_size=6, seed=s)
        for phi in NONLINEARITIES
        for radius in (0.5, 3.0)
        for s in (0, 1)
    }
    table, within = figures_rnn.growth_table(norms, task, [0.5, 3.0], [0, 1], 6)
    lines = table.splitlines()
    assert len(lines) == 2 + 2 * len(NONLINEARITIES) and "‖δ_7‖" in lines[0]
    assert lines[2].startswith("| tanh | 0.5 |") and lines[2].endswith("| vanishes |")
    assert len(within) == 2 * 2 * len(NONLINEARITIES) and all(within)


def test_baseline_and_first_run_tables_round_and_judge():
    tasks = {"adding": make_task("adding", seq_len=10)}
    assert figures_rnn.baseline_table(tasks).splitlines()[2].startswith("| adding | 10 | mse |")
    learned = History(loss=[1.0], grad_norm=[0.5, 2.0], eval_loss=[0.01], eval_step=[1])
    stuck = History(loss=[1.0], grad_norm=[0.5, 0.5], eval_loss=[0.16], eval_step=[1])
    table = figures_rnn.first_run_table({10: learned, 50: stuck}, {10: 0.16, 50: 0.16}, 1.0, 1)
    rows = table.splitlines()[2:]
    assert rows[0] == "| 10 | 0.16 | 0.01 | 0.0625 | 50 % | learned: below half the baseline |"
    assert rows[1].endswith("| 0 % | no better than the baseline |")


def test_sweep_helpers_count_summarise_and_spec():
    rows = [
        {"status": "ok", "final_loss": 0.1, "clip_grad_norm": None},
        {"status": "diverged", "final_loss": math.nan, "clip_grad_norm": None},
        {"status": "ok", "final_loss": 0.3, "clip_grad_norm": 1.0},
    ]
    assert figures_rnn.count_diverged(rows, clip_grad_norm=None) == 1
    assert figures_rnn.count_diverged(rows, clip_grad_norm=1.0) == 0
    groups = {("none",): rows[:2], ("1",): rows[2:], ("all diverged",): rows[1:2]}
    lines = figures_rnn.sweep_table(["clip c"], groups).splitlines()
    assert lines[2:] == [
        "| none | 1/2 | 0.1 | 0.1–0.1 |",
        "| 1 | 0/1 | 0.3 | 0.3–0.3 |",
        "| all diverged | 1/1 | — | — |",
    ]
    spec = figures_rnn.adding_spec(
        "momentum",
        0.1,
        {"seed": [0]},
        seq_len=5,
        hidden_size=4,
        steps=3,
        batch_size=2,
        momentum=0.9,
    )
    assert spec["optimizer"] == {"name": "momentum", "lr": 0.1, "momentum": 0.9}
    assert spec["task"] == {"name": "adding", "seq_len": 5} and spec["grid"] == {"seed": [0]}


def test_clipping_figure_has_a_panel_per_optimizer_and_marks_divergence():
    rows = {
        name: [{"clip_grad_norm": None}, {"clip_grad_norm": 1.0}]
        for name in ("sgd", "adam", "rmsprop")
    }
    ok = History(loss=[1.0, 0.5, 0.2])
    blown = History(loss=[1.0, 50.0], diverged=True, diverged_step=2)
    histories = {name: [blown, ok] for name in rows}
    fig = figures_rnn.clipping_figure(histories, rows, {n: 0.1 for n in rows}, 0.16)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3 and fig.get_size_inches()[0] <= COLUMN_INCHES + 1e-9
    assert [line.get_label() for line in visible[0].lines].count("diverged") == 1


# --- "Training recurrent networks": the live run's summary and the plateau atlas -------------


def _adding_history(steps, losses):
    return History(eval_step=list(steps), eval_loss=list(losses), eval_metric=list(losses))


def test_adding_run_summary_reads_success_half_baseline_and_peak():
    run = figures_rnn.adding_run_summary(
        _adding_history([0, 50, 100, 150, 200], [1.0, 0.16, 0.4, 0.07, 0.005]), baseline=0.16
    )
    assert run.success_step == 200  # MSE <= 0.01, rnnopt.protocol.SUCCESS["adding"]
    assert run.below_half_step == 150
    assert (run.peak_step, run.peak_loss) == (100, 0.4)  # step 0 (the untrained net) left out
    never = figures_rnn.adding_run_summary(_adding_history([0, 50], [1.0, 0.16]), 0.16)
    assert never.success_step is None and never.below_half_step is None


@pytest.fixture(scope="module")
def atlas_tier(tmp_path_factory):
    """The tiny tier of tests/conftest.py with its evaluation histories rewritten so that
    seeds 100 and 101 of SGD succeed (at steps 10 and 20) and no Adam seed does."""
    from conftest import make_tier, tiny_study

    from rnnopt.store import load_results

    root = make_tier(tmp_path_factory.mktemp("atlas"), tiny_study())
    success = {"sgd": {100: 10, 101: 20}, "adam": {}}
    for variant, at in success.items():
        stage = root / "out" / "tiny" / variant / "eval"
        for row in load_results(stage):
            path = stage / "runs" / f"{row['run_id']}.json"
            record = json.loads(path.read_text())
            history = record["history"]
            step = at.get(row["seed"])
            history["eval_metric"] = [
                0.001 if step is not None and s >= step else 0.1 for s in history["eval_step"]
            ]
            path.write_text(json.dumps(record))
    return root


def test_plateau_atlas_counts_successes_with_wilson_and_kaplan_meier(atlas_tier):
    from rnnopt import protocol

    rows, pending = figures_rnn.plateau_atlas(
        ["tiny"], ["sgd", "adam", "rmsprop"], atlas_tier / "out", atlas_tier / "specs"
    )
    by = {r.optimizer: r for r in rows}
    assert set(by) == {"sgd", "adam"} and len(pending) == 1 and "rmsprop" in pending[0]
    sgd, adam = by["sgd"], by["adam"]
    assert (sgd.seq_len, sgd.budget, sgd.seeds, sgd.successes) == (5, 20, 3, 2)
    assert (sgd.low, sgd.high) == protocol.wilson_interval(2, 3)
    assert sgd.median_steps == 20 and (sgd.first_steps, sgd.last_steps) == (10, 20)
    # leaving the plateau (MSE below half the trivial predictor's 1/6) is counted beside it
    assert (sgd.left, sgd.left_median, adam.left) == (2, 20, 0) and math.isnan(adam.left_median)
    assert adam.successes == 0 and math.isnan(adam.median_steps) and math.isnan(adam.first_steps)
    assert adam.low == 0 and 0 < adam.high < 1  # Wilson: not [0, 0] when none succeeded
    table = figures_rnn.atlas_table(rows)
    assert "2/3" in table and "> 20" in table
    fig = figures_rnn.atlas_figure(rows)
    assert len(fig.axes) == 2
    assert figures_rnn.atlas_sentences(rows) == [
        "T = 5: 1 of 2 optimizers stored solved at least half their seeds within 20 steps; "
        "median steps to success: SGD 20."
    ]


def test_plateau_atlas_says_a_rung_the_ladder_rules_out_is_not_run_before_the_tier_says_so(
    atlas_tier, tmp_path
):
    # A rung above "tiny" that runs only what solved it: Adam solved no seed there, so the rung
    # is not run for Adam, and the atlas says why before any skipped.json is written; SGD
    # solved two seeds, so its pair is pending.
    import shutil

    from conftest import tiny_study

    shutil.copytree(atlas_tier, tmp_path / "t")
    rung = "only_if_solved: tiny\n" + tiny_study().replace("seq_len: 5", "seq_len: 6")
    (tmp_path / "t" / "specs" / "longer.yaml").write_text(rung)
    rows, pending = figures_rnn.plateau_atlas(
        ["longer"], ["sgd", "adam"], tmp_path / "t" / "out", tmp_path / "t" / "specs"
    )
    assert rows == [] and not (tmp_path / "t" / "out" / "longer").exists()
    assert pending == [
        "longer/sgd is not finished",
        "longer/adam: not run: it met the success criterion on no evaluation seed of tiny",
    ]


def test_the_atlas_draws_a_rung_at_another_budget_apart_from_the_ladder():
    def row(study, seq_len, budget):
        return figures_rnn.AtlasRow(study, seq_len, "adam", 1e-3, budget, 10, 5, 0.2, 0.8, 9, 5, 9)

    long = figures_rnn.ATLAS_LONG[0]
    rows = [row("adding-elman-T50", 50, 12000), row("adding-elman-T100", 100, 12000)]
    rows += [row(long, 100, 36000)]
    table = figures_rnn.atlas_table(rows)
    assert table.index("| 100 | 12,000 |") < table.index("| 100 | 36,000 |")
    assert figures_rnn.atlas_sentences(rows)[-1].startswith("T = 100: 1 of 1 optimizers")
    assert "within 36,000 steps" in figures_rnn.atlas_sentences(rows)[-1]
    left = figures_rnn.atlas_figure(rows).axes[0]
    labels = left.get_legend_handles_labels()[1]
    assert "36,000 steps (open)" in labels and "12,000 steps" in labels
    caption = figures_rnn.atlas_caption(rows)
    assert caption.startswith("The adding problem at T = 50, 100, each optimizer at its tuned")
    assert "12,000 steps (lines). Open squares: T = 100 for 36,000 steps" in caption
    assert "(1 optimizer stored)" in caption


def test_plateau_atlas_of_an_empty_tier_is_all_pending(tmp_path):
    from conftest import tiny_study

    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "tiny.yaml").write_text(tiny_study())
    rows, pending = figures_rnn.plateau_atlas(
        ["tiny"], root=tmp_path, studies_dir=tmp_path / "specs"
    )
    assert rows == [] and len(pending) == 4


def test_the_atlas_pending_sentence_names_only_studies_with_pairs_missing():
    pending = [f"adding-elman-T{t}/{name} is not finished" for t in (100, 200) for name in "ab"]
    text = figures_rnn.atlas_pending_sentence(pending)
    assert text.startswith("pending: 4 (T, optimizer) pairs of adding-elman-T100, ")
    assert "adding-elman-T200 are not stored yet" in text and "T50" not in text
    one = figures_rnn.atlas_pending_sentence(["other/sgd lacks evaluation seeds [100]"])
    assert one.startswith("pending: 1 (T, optimizer) pair of other is not stored yet")


def test_the_atlas_reading_hint_needs_more_than_one_sequence_length():
    def row(seq_len):
        return figures_rnn.AtlasRow("s", seq_len, "sgd", 0.1, 10, 3, 1, 0.0, 1.0, 5, 5, 5)

    assert figures_rnn.atlas_look([row(50), row(50)]).startswith("Only T = 50 is stored")
    assert "from one T to the next" in figures_rnn.atlas_look([row(50), row(100)])


def test_stayed_above_baseline_is_every_evaluation_after_step_0():
    above = [_adding_history([0, 50, 100], [0.1, 0.3, 0.2])]
    assert figures_rnn.stayed_above_baseline(above, 0.16)
    dipped = [*above, _adding_history([0, 50, 100], [1.0, 0.01, 0.2])]
    assert not figures_rnn.stayed_above_baseline(dipped, 0.16)  # mean at step 50: 0.155
    gone = History(eval_step=[0], eval_loss=[1.0], eval_metric=[1.0], diverged=True)
    assert figures_rnn.stayed_above_baseline([*above, gone], 0.16)  # the diverged run left out
    assert not figures_rnn.stayed_above_baseline([gone], 0.16)  # nothing finished
    assert not figures_rnn.stayed_above_baseline(above, 0.16, factor=1.3)  # 0.2 < 1.3 × 0.16


def test_the_l2_momentum_sentence_compares_the_rescaled_decay_with_the_measured_one():
    text = figures_rnn.l2_momentum_sentence(0.9, 0.0042, 0.01, 0.1, 500)
    assert "λ/(1 − β) = 1 " in text and "(1 − lr·λ/(1 − β))^N = 0.00657" in text
    assert "L2 gave 0.0042" in text and "0.98887, below 1 − lr·λ/(1 − β) = 0.99000" in text


def test_the_adam_decay_sentence_reads_the_smallest_and_largest_groups():
    fast = figures_rnn.adam_decay_sentence([0.01, 1.0, 100.0], [0.0107, 0.61, 0.995], 0.606, 0.01)
    assert "scale 0.01 shrank to 0.0107" in fast and "far below the nominal 0.606" in fast
    assert "scale 100 shrank only to 0.995" in fast
    slow = figures_rnn.adam_decay_sentence([0.01, 1.0], [0.59, 0.61], 0.606, 0.01)
    assert "does not dominate" in slow
