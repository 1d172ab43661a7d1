"""One's own optimizer, named 'path/to/file.py:Class' or 'package.module:Class', runs through
the same trainer and sweeps as the four; what is not a usable optimizer is refused by name."""

from __future__ import annotations

import pytest
import torch

from rnnopt.optim import make_optimizer, optimizer_class
from rnnopt.sweep import SpecError, expand
from rnnopt.train import run

LION = "examples/lion.py:Lion"


def test_a_class_in_a_file_trains_like_the_built_in_optimizers(monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).parent.parent)
    history = run(
        task={"name": "adding", "seq_len": 10},
        model={"hidden_size": 8},
        optimizer={"name": LION, "lr": 1e-3},
        train_options={"steps": 20},
        seed=0,
    )
    assert history.meta["optimizer"] == "Lion" and history.steps_done == 20


def test_a_class_in_a_module_is_found_by_its_dotted_path():
    opt = make_optimizer("torch.optim:Adagrad", [torch.zeros(2, requires_grad=True)], lr=0.1)
    assert type(opt) is torch.optim.Adagrad


def test_its_defaults_are_read_from_its_signature_into_the_run_configuration(monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).parent.parent)
    configs = expand(
        {
            "task": {"name": "adding", "seq_len": 10},
            "model": {"hidden_size": 8},
            "optimizer": {"name": LION},
            "train": {"steps": 5},
            "grid": {"lr": [1e-3, 1e-2]},
        }
    )
    assert configs[0].config["optimizer"] == {
        "name": LION,
        "lr": 0.001,
        "betas": [0.9, 0.99],
        "weight_decay": 0.0,
    }


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing.py:Lion", r"no file 'missing.py'"),
        ("examples/lion.py:Lino", r"has no 'Lino'; optimizer classes there: Lion"),
        ("no_such_module:Opt", r"module 'no_such_module' cannot be imported"),
        ("torch.nn:Linear", r"'Linear' is not a torch.optim.Optimizer subclass"),
        ("torch.optim:LBFGS", None),
        ("lion", r"valid names: sgd, momentum, rmsprop, adam, adamw, or 'path/to/file.py:Class"),
    ],
)
def test_what_is_not_a_usable_optimizer_is_refused_by_name(monkeypatch, name, message):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).parent.parent)
    if message is None:  # LBFGS takes params and lr: accepted
        assert optimizer_class(name) is torch.optim.LBFGS
        return
    with pytest.raises(ValueError, match=message):
        optimizer_class(name)


def test_a_spec_naming_a_missing_optimizer_file_says_so_once(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as caught:
        expand(
            {
                "task": {"name": "adding"},
                "model": {"hidden_size": 8},
                "optimizer": {"name": "nofile.py:Lion"},
                "train": {"steps": 5},
                "grid": {"lr": [1e-3]},
            }
        )
    assert caught.value.problems == [
        f"optimizer='nofile.py:Lion': no file 'nofile.py' (from {tmp_path})"
    ]
