"""Nothing accepted silently: each bad input is refused early, with the exception type, exit
status and a message that names the parameter at fault."""

from __future__ import annotations

import copy
import inspect
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

from rnnopt import book
from rnnopt.checks import check_choice, check_int, check_list, check_number, check_seeds
from rnnopt.cli import main
from rnnopt.optim import SGD, Adam, AdamW, RMSprop
from rnnopt.rnn import ElmanRNN
from rnnopt.sweep import SpecError, load_spec, run_sweep
from rnnopt.tasks import make_task
from rnnopt.train import build_model, run, train

REPO = Path(__file__).resolve().parent.parent
SPEC = """\
task: {name: adding, seq_len: 5, eval_size: 20}
model: {hidden_size: 4}
train: {steps: 3, batch_size: 4}
optimizer: {name: sgd, lr: 1e-2}
"""


def _p() -> torch.Tensor:
    return torch.zeros(2, requires_grad=True)


# --- The shared checks -----------------------------------------------------------------------


def test_the_checks_name_the_parameter_value_rule_and_choices():
    with pytest.raises(ValueError, match=r"^steps=0 is invalid: expected an integer >= 1$"):
        check_int("steps", 0, 1)
    with pytest.raises(ValueError, match=r"^lr=nan is invalid: expected a finite number > 0$"):
        check_number("lr", float("nan"), low=0, low_open=True)
    with pytest.raises(ValueError, match=r"core='rnn' .* valid choices: 'elman', 'lstm'"):
        check_choice("core", "rnn", ["elman", "lstm"])
    assert check_int("seed", np.int64(3), 0) == 3 and type(check_int("n", np.int32(2))) is int
    assert check_number("x", np.float32(0.5), low=0) == 0.5
    with pytest.raises(ValueError, match="x=True"):
        check_number("x", True)
    with pytest.raises(ValueError, match="x=10000"):
        check_number("x", 10**400)


def test_a_list_check_names_the_list_or_the_item_that_breaks_its_rule():
    def positive(name, x):
        return check_number(name, x, low=0, low_open=True)

    assert check_list("lrs", [0.1, np.float64(1.0)], positive, increasing=True) == [0.1, 1.0]
    with pytest.raises(ValueError, match=r"^lrs\[1\]=-1 is invalid: expected a finite number > 0$"):
        check_list("lrs", [0.1, -1], positive)
    with pytest.raises(ValueError, match=r"^lrs=\[1.0, 0.1\] is invalid: .*increasing order$"):
        check_list("lrs", [1.0, 0.1], positive, increasing=True)
    with pytest.raises(ValueError, match=r"^lrs=\[\] is invalid: expected a list of at least 1"):
        check_list("lrs", [], positive)
    assert check_seeds("seeds", [3, 1]) == [3, 1]
    with pytest.raises(ValueError, match=r"^seeds=\[1, 1\] is invalid: .*all different$"):
        check_seeds("seeds", [1, 1])


# --- Specs -----------------------------------------------------------------------------------


def test_a_spec_with_a_key_given_twice_is_refused_naming_it(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("lr: 1e-2", "lr: 1e-2, lr: 0.5"))
    with pytest.raises(SpecError, match="'lr' twice"):
        load_spec(path)
    with pytest.raises(SystemExit) as exited:
        main(["sweep", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert exited.value.code == 2 and "'lr' twice" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("seed", [-1, 2**63])
def test_a_seed_outside_what_torch_takes_is_refused_by_name(seed):
    with pytest.raises(SpecError, match=rf"seed={seed} is invalid"):
        load_spec(
            {
                **json.loads(
                    json.dumps({"task": "adding", "optimizer": "sgd", "train": {"steps": 1}})
                ),
                "seed": seed,
            }
        )
    with pytest.raises(ValueError, match=rf"seed={seed}"):
        run(
            task={"name": "adding", "seq_len": 5},
            optimizer={"name": "sgd"},
            train_options={"steps": 1},
            seed=seed,
        )


def test_a_held_out_set_too_large_for_memory_is_refused_before_anything_is_written(tmp_path):
    spec = {
        "task": {"name": "adding", "seq_len": 10**6, "eval_size": 10**6},
        "optimizer": "sgd",
        "train": {"steps": 1},
    }
    with pytest.raises(
        SpecError, match=r"eval_size=1000000 is invalid: expected .*seq_len=1000000.*memory"
    ):
        run_sweep(spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_unknown_model_key_lists_the_valid_ones():
    with pytest.raises(
        TypeError,
        match=r"^model parameters=\['hiden_size'\] is invalid: .*'hidden_size'.*'core'",
    ):
        build_model(make_task("adding", seq_len=5), hiden_size=4)


def test_numpy_scalars_are_accepted_where_python_numbers_are():
    history = run(
        task={"name": "adding", "seq_len": np.int64(5), "eval_size": 20},
        model={"hidden_size": 4},
        optimizer={"name": "sgd", "lr": np.float32(0.01)},
        train_options={
            "steps": np.int64(2),
            "batch_size": np.int32(4),
            "clip_grad_norm": np.float64(1.0),
        },
        seed=np.int64(0),
    )
    assert history.steps_done == 2 and type(history.meta["seed"]) is int


def test_a_model_without_trainable_parameters_is_refused_by_name():
    model = build_model(make_task("adding", seq_len=5), hidden_size=4)
    for param in model.parameters():
        param.requires_grad_(False)
    with pytest.raises(
        ValueError,
        match="^model='SequenceModel' is invalid: expected a model with at least one trainable",
    ):
        train(model, make_task("adding", seq_len=5), SGD([_p()]), steps=1)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("steps", 0),
        ("batch_size", 2.5),
        ("clip_grad_norm", -1.0),
        ("log_every", True),
        ("stop_at_metric", float("inf")),
    ],
)
def test_a_bad_train_option_is_refused_naming_it(option, value):
    with pytest.raises(ValueError, match=rf"^{option}="):
        train(
            build_model(make_task("adding", seq_len=5), hidden_size=4),
            make_task("adding", seq_len=5),
            SGD([_p()]),
            **{"steps": 1, option: value},
        )


# --- The command line ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["betas=[0.9,", "betas={a", "lr=@x"])
def test_a_malformed_opt_value_exits_2_naming_it_without_a_traceback(value):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rnnopt.cli",
            "train",
            "--task",
            "adding",
            "--steps",
            "1",
            "--opt",
            value,
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert value.split("=")[0] in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_help_shows_every_default(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    expected = {
        "train": [
            "--steps STEPS",
            "(default: 1000)",
            "(default: adam)",
            "(default: 64)",
            "(default: 32)",
            "(default: cpu)",
            "(default: 0)",
        ],
        "sweep": ["(default: 1)", "(default: cpu)"],
    }[command]
    for piece in expected:
        assert piece in text


def test_a_sweep_says_how_many_runs_it_has_and_how_many_are_left(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC + "grid: {seed: [0, 1, 2]}\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 0
    assert "3 runs, 0 already done, 3 to run" in capsys.readouterr().err
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 0
    assert "3 runs, 3 already done, 0 to run" in capsys.readouterr().err


# --- Optimizers ------------------------------------------------------------------------------


def test_a_param_group_without_params_is_refused():
    opt = SGD([_p()], lr=0.1)
    with pytest.raises(ValueError, match="param group 1 has no 'params'"):
        opt.add_param_group({"lr": 0.01})


def test_a_param_group_with_an_unknown_key_is_refused_listing_the_valid_ones():
    with pytest.raises(ValueError, match=r"no hyperparameter 'lrr' in param group 1.*momentum"):
        SGD([{"params": [_p()]}, {"params": [_p()], "lrr": 0.1}], lr=0.1)


def test_the_same_parameter_twice_in_one_group_is_refused():
    p = _p()
    with pytest.raises(ValueError, match="parameter 1 in param group 0 .* given twice"):
        Adam([p, p])


@pytest.mark.parametrize(
    ("cls", "hyper", "named"),
    [
        (SGD, {"momentum": 1.5}, "Invalid momentum value: momentum=1.5"),
        (SGD, {"dampening": 2.0}, "Invalid dampening value: dampening=2.0"),
        (RMSprop, {"momentum": 1.01}, "Invalid momentum value: momentum=1.01"),
        (RMSprop, {"eps": 0.0}, "Invalid epsilon value: eps=0.0"),
        (Adam, {"eps": 0}, "Invalid epsilon value: eps=0"),
        (Adam, {"lr": 10**400}, "Invalid learning rate: lr=1000"),
    ],
)
def test_a_hyperparameter_outside_its_range_is_refused_by_name(cls, hyper, named):
    with pytest.raises(ValueError) as raised:
        cls([_p()], **hyper)
    assert str(raised.value).startswith(named)


@pytest.mark.parametrize("lr", [Fraction(1, 10), np.array(0.1), torch.tensor(0.1)])
def test_a_hyperparameter_that_is_no_plain_number_is_refused_by_name(lr):
    with pytest.raises(TypeError, match="Invalid learning rate: lr="):
        SGD([_p()], lr=lr)


def test_numpy_hyperparameters_are_plain_numbers_in_the_groups():
    opt = Adam([_p()], lr=np.float32(0.5), betas=(np.float64(0.9), 0.99))
    group = opt.param_groups[0]
    assert type(group["lr"]) is float and type(group["betas"][0]) is float


def _stepped(cls, **hyper):
    w = torch.ones(3, requires_grad=True)
    opt = cls([w], **hyper)
    w.grad = torch.ones(3)
    opt.step()
    return w, opt


def test_load_state_dict_validates_its_groups():
    _, opt = _stepped(Adam)
    state = copy.deepcopy(opt.state_dict())
    state["param_groups"][0]["lr"] = -1.0
    with pytest.raises(
        ValueError, match="Invalid learning rate: lr=-1.0 in param group 0 of the state_dict"
    ):
        Adam([torch.ones(3, requires_grad=True)]).load_state_dict(state)
    state["param_groups"][0]["lr"] = 0.1
    state["param_groups"][0]["lrr"] = 0.1
    with pytest.raises(ValueError, match="'lrr'"):
        Adam([torch.ones(3, requires_grad=True)]).load_state_dict(state)


def test_a_checkpoint_with_an_integer_step_loads_as_torch_loads_it():
    _, opt = _stepped(torch.optim.Adam, lr=0.1)
    state = copy.deepcopy(opt.state_dict())
    state["state"][0]["step"] = 1  # older torch versions saved a number
    expected = torch.optim.Adam([torch.ones(3, requires_grad=True)], lr=0.1)
    expected.load_state_dict(copy.deepcopy(state))
    w = torch.ones(3, requires_grad=True)
    ours = Adam([w], lr=0.1)
    ours.load_state_dict(state)
    assert torch.equal(ours.state[w]["step"], expected.state_dict()["state"][0]["step"])
    w.grad = torch.ones(3)
    ours.step()
    assert ours.state[w]["step"].item() == 2


@pytest.mark.skipif(
    "decoupled_weight_decay" not in inspect.signature(torch.optim.Adam).parameters,
    reason="this torch's Adam has no decoupled_weight_decay",
)
def test_state_of_torch_s_decoupled_adam_is_adamw_s():
    _, opt = _stepped(torch.optim.Adam, lr=0.1, weight_decay=0.1, decoupled_weight_decay=True)
    state = opt.state_dict()
    with pytest.raises(ValueError, match="decoupled_weight_decay=True .* AdamW"):
        Adam([torch.ones(3, requires_grad=True)], weight_decay=0.1).load_state_dict(
            copy.deepcopy(state)
        )
    ours = AdamW([torch.ones(3, requires_grad=True)], weight_decay=0.1)
    ours.load_state_dict(copy.deepcopy(state))
    assert "decoupled_weight_decay" not in ours.param_groups[0]


# --- Models ----------------------------------------------------------------------------------


def test_an_empty_batch_gives_zero_gradients_as_nn_rnn_does():
    torch.manual_seed(0)
    ours = ElmanRNN(2, 3)
    reference = torch.nn.RNN(2, 3)
    x = torch.randn(4, 0, 2)
    for model in (ours, reference):
        output, h_n = model(x)
        assert output.shape == (4, 0, 3) and h_n.shape == (1, 0, 3)
        (output.sum() + h_n.sum()).backward()
    for mine, theirs in zip(ours.parameters(), reference.parameters(), strict=True):
        assert torch.equal(mine.grad, theirs.grad) and not mine.grad.any()


def test_double_backward_is_refused_with_a_type_error():
    x = torch.randn(4, 2, 2, requires_grad=True)
    output, _ = ElmanRNN(2, 3)(x)
    with pytest.raises(TypeError, match="double backward"):
        torch.autograd.grad(output.sum(), x, create_graph=True)


def test_a_packed_sequence_is_refused_with_a_type_error():
    with pytest.raises(TypeError, match="input must be a Tensor, got a PackedSequence"):
        ElmanRNN(2, 3)(pack_sequence([torch.randn(3, 2)]))


def test_hx_of_another_dtype_is_refused_like_the_input():
    with pytest.raises(ValueError, match=r"hx dtype \(torch.float64\)"):
        ElmanRNN(2, 3)(torch.randn(4, 2, 2), torch.zeros(1, 2, 3, dtype=torch.float64))


# --- Chapter parameter files -------------------------------------------------------------------


def _chapter(tmp_path: Path, text: str) -> book.Chapter:
    (tmp_path / "params.yaml").write_text(text)
    real = next(c for c in book.load_chapters() if c.name == "adam")
    return book.Chapter(
        name="adam",
        notebook=tmp_path / "adam.ipynb",
        template=real.template,
        parameters=tmp_path / "params.yaml",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "defualt:\n  steps: 3\n",
            r"top-level keys=\['defualt'\] is invalid: .*; valid choices: 'default', 'full'$",
        ),
        (
            "default:\n  stepz: 3\n",
            r"default keys=\['stepz'\] is invalid: expected parameters that algorithm.ipynb's "
            r"parameters cell defines; valid choices: .*'steps'",
        ),
        (
            "default:\n  steps: 3\n  steps: 4\n",
            r"(?s)^parameters='.*params\.yaml' is invalid: "
            r"expected a file of valid YAML .*'steps' twice",
        ),
        ("default: [1]\n", r"default=\[1\] is invalid: expected a mapping of parameter: value"),
        ("[1]\n", r"top level=\[1\] is invalid: expected a mapping of parameter sets"),
    ],
)
def test_a_bad_chapter_parameter_file_is_refused_naming_the_file(tmp_path, text, message):
    chapter = _chapter(tmp_path, text)
    with pytest.raises(ValueError, match=message) as raised:
        chapter.parameter_values()
    assert "params.yaml" in str(raised.value)


def test_chapter_parameters_read_exponents_as_numbers(tmp_path):
    assert _chapter(tmp_path, "default:\n  lr: {adding: 1e-3}\n").parameter_values() == {
        "lr": {"adding": 0.001}
    }


def test_the_book_command_checks_its_output_before_executing(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exited:
        book.main(["adam", "--set", "full", "--out", str(tmp_path / "file" / "out")])
    assert exited.value.code == 2 and "--out=" in capsys.readouterr().err


@pytest.mark.parametrize("core", ["elman", "lstm"])
def test_numpy_sizes_build_a_model(core):
    model = build_model(
        make_task("adding", seq_len=5), hidden_size=np.int64(4), core=core, num_layers=np.int32(1)
    )
    assert model.head.in_features == 4 and type(model.head.in_features) is int


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (
            ["--clip", "0"],
            "clip_grad_norm=0.0 is invalid: expected None or a finite number > 0 (set by --clip)",
        ),
        (
            ["--seed", "-1"],
            "seed=-1 is invalid: expected an integer in [0, 9223372036854775807] (set by --seed)",
        ),
        (["--task-opt", "eval_size=[1,"], "eval_size"),
        (["--opt", "momentum=3", "--optimizer", "sgd"], "momentum=3"),
    ],
)
def test_train_names_the_flag_at_fault(argv, named, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["train", "--task", "adding", "--steps", "1", "--quiet", *argv])
    assert exited.value.code == 2 and named in capsys.readouterr().err


@pytest.mark.parametrize("what", ["a directory", "no file", "binary"])
def test_a_spec_path_that_cannot_be_read_is_a_spec_error(tmp_path, what):
    path = {
        "a directory": tmp_path,
        "no file": tmp_path / "none.yaml",
        "binary": tmp_path / "b.yaml",
    }[what]
    if what == "binary":
        path.write_bytes(b"\xd0\xff\x00")
    with pytest.raises(
        SpecError, match=r"spec='.*' is invalid: expected a file that can be read as a spec \("
    ):
        load_spec(path)


def test_a_checkpoint_saved_beside_a_scheduler_loads():
    w = torch.ones(3, requires_grad=True)
    opt = SGD([w], lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=10)
    w.grad = torch.ones(3)
    opt.step()
    scheduler.step()
    fresh = SGD([torch.ones(3, requires_grad=True)], lr=0.1, momentum=0.9)
    fresh.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert fresh.param_groups[0]["max_lr"] == 0.5
