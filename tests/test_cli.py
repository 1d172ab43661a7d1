"""The command line: `rnnopt train`, `rnnopt sweep`, `rnnopt list`; bad arguments exit with
status 2 and a message naming the parameter, the value and the valid choices."""

from __future__ import annotations

import csv
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnopt.cli import main
from rnnopt.optim import OPTIMIZERS
from rnnopt.sweep import load_results
from rnnopt.tasks import TASKS

REPO = Path(__file__).resolve().parent.parent
TINY_TRAIN = [
    "train",
    "--task",
    "adding",
    "--seq-len",
    "5",
    "--task-opt",
    "eval_size=50",
    "--hidden-size",
    "8",
    "--steps",
    "20",
    "--batch-size",
    "8",
    "--quiet",
]
TINY_SPEC = """
task: {name: adding, seq_len: 5, eval_size: 50}
model: {hidden_size: 8}
train: {steps: 20, batch_size: 8}
grid:
  optimizer: [sgd, adam]
  lr: [1e-2, 1000.0]
"""


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "rnnopt.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_list_shows_every_optimizer_and_task_with_its_defaults(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for registry in (OPTIMIZERS, TASKS):
        for name, cls in registry.items():
            (line,) = [x for x in lines if x.split()[:1] == [name]]
            for param in inspect.signature(cls).parameters.values():
                if param.name != "params":
                    assert f"{param.name}=" in line, (name, param.name, line)


def test_train_writes_its_history_as_json(tmp_path, capsys):
    out = tmp_path / "run.json"
    assert main([*TINY_TRAIN, "--optimizer", "adam", "--lr", "1e-2", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert len(record["history"]["loss"]) == 20
    assert record["config"]["optimizer"]["name"] == "adam"
    assert record["config"]["optimizer"]["lr"] == 0.01
    assert record["provenance"]["threads"] == 1
    summary = capsys.readouterr().out
    assert "held-out loss" in summary and "baseline" in summary and "diverged" in summary


def test_train_writes_its_history_as_csv_one_row_per_step(tmp_path):
    out = tmp_path / "run.csv"
    assert main([*TINY_TRAIN, "--eval-every", "10", "--out", str(out)]) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(21))  # step 0: before training
    assert [r["step"] for r in rows if r["eval_loss"]] == ["0", "10", "20"]
    assert all(float(r["loss"]) > 0 for r in rows[1:])


def test_train_says_when_a_run_diverged(capsys):
    assert main([*TINY_TRAIN, "--optimizer", "sgd", "--lr", "1000"]) == 0
    diverged = [x for x in capsys.readouterr().out.splitlines() if "diverged" in x]
    assert diverged and "yes, at step" in diverged[0]


def test_sweep_writes_a_results_table(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY_SPEC)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    rows = load_results(tmp_path / "out")
    assert [(r["optimizer"], r["lr"]) for r in rows] == [
        ("sgd", 0.01),
        ("sgd", 1000.0),
        ("adam", 0.01),
        ("adam", 1000.0),
    ]
    assert rows[1]["status"] == "diverged"
    assert "4 runs done" in capsys.readouterr().out


BAD_ARGUMENTS = [  # (arguments, words the message must contain)
    (["train", "--task", "addin"], ["--task", "'addin'", "'adding'"]),
    (["train", "--task", "adding", "--optimizer", "adamx"], ["--optimizer", "'adamx'", "'sgd'"]),
    (["train", "--task", "adding", "--core", "cnn"], ["--core", "'cnn'", "'lstm'"]),
    (["train", "--task", "adding", "--steps", "ten"], ["--steps", "'ten'"]),
    (["train", "--task", "adding", "--lr", "-1"], ["lr=-1"]),
    (["train", "--task", "adding", "--steps", "0"], ["steps=0"]),
    (["train", "--task", "adding", "--opt", "foo=1"], ["'foo'", "lr", "betas"]),
    (["train", "--task", "adding", "--opt", "lr"], ["--opt", "KEY=VALUE", "'lr'"]),
    (["train", "--task", "adding", "--task-opt", "seq_len=1"], ["seq_len", "1"]),
    (["train", "--task", "adding", "--device", "tpu"], ["device", "'tpu'", "'cpu'"]),
    (["train", "--task", "adding", "--out", "run.txt"], ["--out", "run.txt", ".json", ".csv"]),
    (["sweep", "no-such-spec.yaml", "--out", "x"], ["no-such-spec.yaml"]),
]


@pytest.mark.parametrize(("argv", "words"), BAD_ARGUMENTS, ids=lambda x: " ".join(x)[:40])
def test_bad_arguments_exit_2_with_a_message_naming_them(argv, words, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert "Traceback" not in err


def test_a_bad_sweep_spec_exits_2_listing_every_problem_and_writes_nothing(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY_SPEC.replace("seq_len: 5", "seq_len: 1").replace("1e-2", "-1e-2"))
    with pytest.raises(SystemExit) as caught:
        main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "2"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "seq_len=1 is invalid: expected an integer >= 2" in err and "lr=-0.01" in err
    assert not (tmp_path / "out").exists()


def test_workers_must_be_a_positive_integer(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY_SPEC)
    with pytest.raises(SystemExit) as caught:
        main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "0"])
    assert caught.value.code == 2
    assert "--workers" in capsys.readouterr().err


def test_python_dash_m_runs_the_command_line():
    result = run_cli("list")
    assert result.returncode == 0 and "adam" in result.stdout


def test_a_bad_argument_gives_exit_status_2_without_a_traceback():
    result = run_cli("train", "--task", "adding", "--lr", "-1")
    assert result.returncode == 2
    assert "lr=-1" in result.stderr and "Traceback" not in result.stderr


def test_the_book_is_a_command_of_rnnopt_too(capsys):
    from rnnopt import cli

    assert cli.main(["book", "--list"]) == 0
    assert "measuring" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        cli.main(["book", "--help"])
    assert stop.value.code == 0 and "--force" in capsys.readouterr().out


def test_staging_a_store_that_does_not_exist_is_refused_naming_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["evidence", "--stage", str(tmp_path / "nowhere")])
    assert caught.value.code == 2
    assert "store=" in (err := capsys.readouterr().err) and "is not a directory" in err
