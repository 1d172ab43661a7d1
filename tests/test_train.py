"""The trainer: one loop for every optimizer, deterministic; divergence is a result, not a crash."""

from __future__ import annotations

import math

import pytest
import torch

from rnnopt.optim import Adam
from rnnopt.tasks import make_task
from rnnopt.train import History, build_model, resolve_device, run, train

SMALL = dict(
    task={"name": "adding", "seq_len": 10, "eval_size": 200},
    model={"hidden_size": 16},
    train_options={"steps": 30, "batch_size": 16, "eval_every": 10},
)


def without_timings(history: History) -> dict:
    data = history.to_dict()
    data.pop("step_time")
    return data


def test_same_seed_gives_bit_identical_histories():
    first = run(optimizer={"name": "adam", "lr": 1e-2}, seed=3, **SMALL)
    second = run(optimizer={"name": "adam", "lr": 1e-2}, seed=3, **SMALL)
    assert without_timings(first) == without_timings(second)


def test_different_seeds_give_different_histories():
    first = run(optimizer={"name": "adam", "lr": 1e-2}, seed=0, **SMALL)
    second = run(optimizer={"name": "adam", "lr": 1e-2}, seed=1, **SMALL)
    assert first.loss != second.loss


def test_history_records_every_step_and_each_evaluation():
    history = run(optimizer={"name": "sgd", "lr": 0.1}, seed=0, **SMALL)
    assert history.steps_done == 30
    assert len(history.grad_norm) == len(history.step_time) == 30
    assert history.eval_step == [0, 10, 20, 30]
    assert len(history.eval_loss) == len(history.eval_metric) == 4
    assert not history.diverged and history.diverged_step is None
    assert history.final_loss == history.eval_loss[-1]
    assert history.meta["threads"] == torch.get_num_threads() == 1
    assert history.meta["seed"] == 0


def test_a_huge_learning_rate_is_recorded_as_diverged_not_raised():
    history = run(optimizer={"name": "sgd", "lr": 1e3}, seed=0, **SMALL)
    assert history.diverged
    assert 1 <= history.diverged_step <= 30
    assert history.steps_done == history.diverged_step - 1
    assert math.isnan(history.final_loss)


def test_adam_learns_the_short_adding_problem_below_its_baseline():
    task = make_task("adding", seq_len=10, eval_size=500)
    history = run(
        task=task.config(),
        model={"hidden_size": 32},
        optimizer={"name": "adam", "lr": 1e-2},
        train_options={"steps": 1000, "batch_size": 32},
        seed=0,
    )
    assert history.final_loss < 0.2 * task.baseline()["loss"]


def test_a_torch_optimizer_trains_through_the_same_loop():
    task = make_task("adding", seq_len=10, eval_size=200)
    torch.manual_seed(0)
    model = build_model(task, hidden_size=16)
    history = train(model, task, torch.optim.SGD(model.parameters(), lr=0.1), steps=5)
    assert history.meta["optimizer"] == "SGD" and history.steps_done == 5


def test_rnnopt_and_torch_adam_give_the_same_training_curve():
    task = make_task("adding", seq_len=10, eval_size=200)
    curves = []
    for make in (lambda p: Adam(p, lr=1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)):
        torch.manual_seed(0)
        model = build_model(task, hidden_size=16).double()
        curves.append(train(model, task, make(model.parameters()), steps=20).loss)
    assert curves[0] == pytest.approx(curves[1], rel=1e-5)


def test_clipping_bounds_the_applied_step_but_records_the_raw_norm():
    task = make_task("adding", seq_len=10, eval_size=200)
    torch.manual_seed(0)
    model = build_model(task, hidden_size=16)
    before = [p.detach().clone() for p in model.parameters()]
    history = train(
        model, task, torch.optim.SGD(model.parameters(), lr=1.0), steps=1, clip_grad_norm=1e-3
    )
    moved = torch.sqrt(
        sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before, strict=True))
    )
    assert history.grad_norm[0] > 1e-3
    assert moved.item() == pytest.approx(1e-3, rel=1e-3)


def test_the_history_survives_a_round_trip_through_a_dict():
    history = run(optimizer={"name": "rmsprop", "lr": 1e-3}, seed=0, **SMALL)
    assert History.from_dict(history.to_dict()) == history


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"steps": 0}, "steps=0"),
        ({"steps": 5, "batch_size": 0}, "batch_size=0"),
        ({"steps": 5, "eval_every": -1}, "eval_every=-1"),
        ({"steps": 5, "clip_grad_norm": -1.0}, "clip_grad_norm=-1.0"),
        ({"steps": 5, "clip_grad_norm": float("nan")}, "clip_grad_norm=nan"),
        ({"steps": 2.5}, "steps=2.5"),
    ],
)
def test_bad_training_options_are_refused_with_their_name_and_value(options, named):
    task = make_task("adding", seq_len=10, eval_size=10)
    model = build_model(task, hidden_size=4)
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        train(model, task, torch.optim.SGD(model.parameters(), lr=0.1), **options)


def test_an_unknown_train_option_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"^train options=\['stepz'\] is invalid: .*valid choices: 'steps'"
    ):
        run(
            task={"name": "adding", "seq_len": 10},
            optimizer={"name": "sgd"},
            train_options={"stepz": 5},
        )


def test_an_unknown_device_is_refused_with_the_valid_choices():
    with pytest.raises(ValueError, match=r"device='tpu'.*'cpu', 'cuda'"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(
        ValueError, match="^device='cuda' is invalid: .*no CUDA GPU.*valid choices: 'cpu'$"
    ):
        resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_matches_the_cpu_run_closely():
    cpu = run(optimizer={"name": "adam", "lr": 1e-2}, seed=0, **SMALL)
    gpu = run(optimizer={"name": "adam", "lr": 1e-2}, seed=0, device="cuda", **SMALL)
    assert gpu.meta["device"].startswith("cuda")
    assert gpu.loss == pytest.approx(cpu.loss, rel=1e-3)


def test_log_every_keeps_block_means_of_the_per_step_records():
    every = run(optimizer={"name": "adam", "lr": 1e-2}, seed=0, **SMALL)
    options = {**SMALL, "train_options": {**SMALL["train_options"], "log_every": 7}}
    blocks = run(optimizer={"name": "adam", "lr": 1e-2}, seed=0, **options)
    assert blocks.steps_done == every.steps_done == 30
    assert len(blocks.loss) == 5  # 4 blocks of 7 steps and a last one of 2
    for i, start in enumerate(range(0, 30, 7)):
        assert blocks.loss[i] == pytest.approx(
            sum(every.loss[start : start + 7]) / len(every.loss[start : start + 7]), rel=1e-12
        )
    assert blocks.eval_loss == every.eval_loss  # logging does not change the training


def test_stop_at_metric_ends_the_run_at_the_first_evaluation_that_reaches_it():
    full = run(optimizer={"name": "adam", "lr": 1e-2}, seed=0, **SMALL)
    target = full.eval_metric[1]  # what the run reached at step 10
    options = {**SMALL, "train_options": {**SMALL["train_options"], "stop_at_metric": target}}
    stopped = run(optimizer={"name": "adam", "lr": 1e-2}, seed=0, **options)
    assert stopped.stopped_early and stopped.steps_done == 10
    assert stopped.eval_step == [0, 10] and stopped.final_metric == target
    assert stopped.loss == full.loss[:10]
    assert not full.stopped_early


def test_stop_at_metric_must_be_a_finite_number():
    with pytest.raises(ValueError, match="stop_at_metric=nan"):
        run(
            optimizer={"name": "sgd", "lr": 0.1},
            seed=0,
            **{**SMALL, "train_options": {**SMALL["train_options"], "stop_at_metric": math.nan}},
        )


def test_diverge_factor_stops_a_run_whose_held_out_loss_climbs_that_far_above_its_start():
    # Clipped SGD at lr 10 climbs far above its starting held-out loss without ever turning
    # non-finite: only the factor calls it diverged, at the first evaluation above it.
    options = {**SMALL["train_options"], "clip_grad_norm": 1.0}
    full = run(optimizer={"name": "sgd", "lr": 10.0}, seed=0, **{**SMALL, "train_options": options})
    ratios = [loss / full.eval_loss[0] for loss in full.eval_loss]
    assert not full.diverged and max(ratios) > 2
    factor = 0.99 * max(ratios)
    first = next(step for step, r in zip(full.eval_step, ratios, strict=True) if r > factor)
    stopped = run(
        optimizer={"name": "sgd", "lr": 10.0},
        seed=0,
        **{**SMALL, "train_options": {**options, "diverge_factor": factor}},
    )
    assert stopped.diverged and stopped.diverged_step == first
    assert stopped.loss == full.loss[: len(stopped.loss)]  # the same run until it is stopped
    spared = run(
        optimizer={"name": "sgd", "lr": 10.0},
        seed=0,
        **{**SMALL, "train_options": {**options, "diverge_factor": 1.01 * max(ratios)}},
    )
    assert not spared.diverged and spared.eval_loss == full.eval_loss


def test_diverge_factor_must_exceed_one():
    with pytest.raises(ValueError, match=r"diverge_factor=0\.5 is invalid"):
        run(
            optimizer={"name": "sgd", "lr": 0.1},
            seed=0,
            **{**SMALL, "train_options": {**SMALL["train_options"], "diverge_factor": 0.5}},
        )


def test_a_run_far_above_its_start_but_better_than_the_trivial_predictor_is_not_stopped():
    # The blow-up stop needs both: the loss above the factor and a metric no better than the
    # trivial predictor's (only then is the run's relative error already the cap). The same
    # clipped SGD run, scored against a trivial predictor far worse than it, runs to the end.
    def history(trivial: float | None) -> History:
        task = make_task("adding", seq_len=10, eval_size=200)
        if trivial is not None:
            task.baseline = lambda: {"loss": trivial, "metric": trivial}
        torch.manual_seed(0)
        model = build_model(task, hidden_size=16)
        optimizer = torch.optim.SGD(model.parameters(), lr=10.0)
        options = {"steps": 30, "batch_size": 16, "eval_every": 10, "clip_grad_norm": 1.0}
        return train(model, task, optimizer, diverge_factor=2.0, seed=0, **options)

    stopped, spared = history(None), history(1e12)
    assert stopped.diverged and stopped.steps_done < 30
    assert not spared.diverged and spared.steps_done == 30
