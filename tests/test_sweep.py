"""Sweeps: a spec is checked as a whole, every run is recorded once, a killed sweep resumes, and
the numbers do not depend on how many workers (or which Dask cluster) produced them."""

from __future__ import annotations

import contextlib
import csv
import inspect
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import dask_cluster

import rnnopt.executors as executors
import rnnopt.sweep as sweep
from rnnopt.optim import OPTIMIZERS
from rnnopt.sweep import SpecError, expand, load_history, load_results, load_spec, run_sweep
from rnnopt.train import History

REPO = Path(__file__).resolve().parent.parent

TINY = {
    "task": {"name": "adding", "seq_len": 5, "eval_size": 50},
    "model": {"hidden_size": 8},
    "train": {"steps": 20, "batch_size": 8},
    "grid": {"optimizer": ["sgd", "adam"], "lr": [0.01, 1000.0], "seed": [0, 1]},
}
# Long enough per run (~0.2 s) that a sweep can be killed while it is running.
SLOWER = {
    "task": {"name": "adding", "seq_len": 10, "eval_size": 100},
    "model": {"hidden_size": 16},
    "train": {"steps": 150, "batch_size": 16},
    "grid": {"optimizer": ["sgd", "adam"], "lr": [0.01, 1000.0], "seed": [0, 1, 2, 3]},
}


def numbers(rows: list[dict]) -> list[tuple]:
    """What must agree between two runs of a sweep: everything but the wall-clock time
    (repr, so that NaN equals NaN)."""
    return [tuple(repr(v) for k, v in row.items() if k != "wall_time") for row in rows]


def write_spec(path: Path, spec: dict) -> Path:
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[dict]:
    """SLOWER run in this process with one worker: the results every other way must match."""
    return run_sweep(SLOWER, tmp_path_factory.mktemp("reference"))


# --- The spec ------------------------------------------------------------------------------


def test_expand_gives_one_run_per_grid_point_with_the_last_key_varying_fastest():
    runs = expand(TINY)
    assert [tuple(r.point.values()) for r in runs] == [
        (name, lr, seed) for name in ["sgd", "adam"] for lr in [0.01, 1000.0] for seed in [0, 1]
    ]
    first = runs[0].config
    assert first["optimizer"]["name"] == "sgd" and first["optimizer"]["lr"] == 0.01
    assert first["seed"] == 0 and first["task"]["seq_len"] == 5


def test_grid_keys_are_resolved_to_the_section_that_owns_them():
    spec = {
        "task": "adding",
        "optimizer": "adam",
        "train": {"batch_size": 8},
        "grid": {
            "seq_len": [4],
            "hidden_size": [6],
            "steps": [3],
            "lr": [0.5],
            "task.eval_size": [20],
            "seed": [7],
        },
    }
    (run,) = expand(spec)
    assert run.config["task"]["seq_len"] == 4 and run.config["task"]["eval_size"] == 20
    assert run.config["model"]["hidden_size"] == 6
    assert run.config["train"]["steps"] == 3
    assert run.config["optimizer"]["lr"] == 0.5
    assert run.config["seed"] == 7


def test_a_fixed_optimizer_section_applies_to_every_run():
    spec = {
        **TINY,
        "optimizer": {"name": "adam", "betas": [0.9, 0.99]},
        "grid": {"lr": [0.01, 0.1]},
    }
    assert [r.config["optimizer"]["betas"] for r in expand(spec)] == [[0.9, 0.99]] * 2


def test_run_id_hashes_the_complete_configuration_defaults_included():
    default_lr = inspect.signature(OPTIMIZERS["adam"]).parameters["lr"].default
    implicit = {**TINY, "optimizer": {"name": "adam"}, "grid": {}}
    explicit = {**TINY, "optimizer": {"name": "adam", "lr": default_lr}, "grid": {}}
    other = {**TINY, "optimizer": {"name": "adam", "lr": default_lr * 2}, "grid": {}}
    (a,), (b,), (c,) = expand(implicit), expand(explicit), expand(other)
    assert a.config == b.config and a.run_id == b.run_id
    assert c.run_id != a.run_id


def test_numbers_with_an_exponent_are_read_as_floats(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(
        "task: {name: adding, seq_len: 5}\noptimizer: adam\ntrain: {steps: 3}\n"
        "grid:\n  lr: [1e-3, 1.0e2, 3E-1]\n"
    )
    assert [r.config["optimizer"]["lr"] for r in expand(load_spec(path))] == [1e-3, 100.0, 0.3]


def test_a_bad_spec_is_refused_with_every_problem_named():
    bad = {
        "task": {"name": "adding", "seqlen": 5},
        "model": {"hidden_size": -8},
        "train": {"steps": 10, "batch_size": 0},
        "gird": {},
        "grid": {"optimizer": ["sgd", "adamx"], "lr": [-0.1, 0.1], "seed": [-1], "foo": [1]},
    }
    with pytest.raises(SpecError) as caught:
        load_spec(bad)
    problems = caught.value.problems
    expected = [  # (words that must appear together in one problem)
        ("'gird'", "grid"),  # unknown top-level key, with the valid ones
        ("'adamx'", "sgd", "adamw"),  # unknown optimizer, with the valid names
        ("'seqlen'", "seq_len"),  # unknown task parameter, with the valid ones
        ("'foo'", "lr"),  # unknown grid key, with the valid ones
        ("lr=-0.1",),  # the optimizer's own check
        ("hidden_size=-8",),  # the model's own check
        ("batch_size=0",),  # the trainer's own check
        ("seed=-1",),
    ]
    for words in expected:
        assert any(all(w in p for w in words) for p in problems), (words, problems)
    assert len(problems) == len(expected)
    assert all(p in str(caught.value) for p in problems)
    assert isinstance(caught.value, ValueError)


def test_a_parameter_both_fixed_and_in_the_grid_is_refused():
    with pytest.raises(SpecError, match=r"optimizer\.lr is set both"):
        load_spec({**TINY, "optimizer": {"lr": 0.1}})


def test_a_grid_parameter_that_one_of_its_optimizers_lacks_is_refused():
    with pytest.raises(
        SpecError, match=r"grid key='momentum' is invalid: expected a parameter of optimizer 'adam'"
    ):
        load_spec({**TINY, "grid": {"optimizer": ["sgd", "adam"], "momentum": [0.5]}})


def test_a_bad_spec_runs_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(executors, "execute", lambda *a, **k: pytest.fail("a run was started"))
    with pytest.raises(SpecError):
        run_sweep({**TINY, "train": {"steps": 0}}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_checking_a_spec_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_spec(TINY)
    assert torch.equal(torch.rand(3), expected)


# --- Running and recording -------------------------------------------------------------------


def test_a_sweep_writes_its_spec_one_file_per_run_and_a_results_table(tmp_path):
    rows = run_sweep(TINY, tmp_path)
    runs = expand(TINY)
    assert load_spec(tmp_path / "spec.yaml").grid == load_spec(TINY).grid
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(
        f"{r.run_id}.json" for r in runs
    )
    with open(tmp_path / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [row["run_id"] for row in table] == [r.run_id for r in runs]
    assert list(table[0]) == ["optimizer", "lr", "seed", *sweep.RESULT_COLUMNS]
    assert numbers(load_results(tmp_path)) == numbers(rows)


def test_a_run_file_holds_config_history_and_provenance(tmp_path):
    rows = run_sweep({**TINY, "grid": {"optimizer": ["adam"], "lr": [0.01]}}, tmp_path)
    record = sweep.load_run(tmp_path, rows[0]["run_id"])
    assert (
        record["config"]
        == expand({**TINY, "grid": {"optimizer": ["adam"], "lr": [0.01]}})[0].config
    )
    history = load_history(tmp_path, rows[0]["run_id"])
    assert isinstance(history, History) and history.steps_done == 20
    assert history.final_loss == rows[0]["final_loss"]
    provenance = record["provenance"]
    assert provenance["threads"] == 1 and provenance["device"] == "cpu"
    assert provenance["torch"] == torch.__version__ and provenance["rnnopt"]
    assert provenance["python"] == ".".join(map(str, sys.version_info[:3]))


def test_a_divergent_run_is_recorded_not_fatal(tmp_path):
    rows = run_sweep({**TINY, "grid": {"optimizer": ["sgd"], "lr": [1000.0, 0.01]}}, tmp_path)
    assert [r["status"] for r in rows] == ["diverged", "ok"]
    assert math.isnan(rows[0]["final_loss"]) and rows[0]["steps_done"] < 20
    assert math.isfinite(rows[1]["final_loss"])


def test_a_rerun_skips_the_finished_runs(tmp_path, monkeypatch):
    first = run_sweep(TINY, tmp_path)
    monkeypatch.setattr(executors, "execute", lambda *a, **k: pytest.fail("a finished run reran"))
    assert numbers(run_sweep(TINY, tmp_path)) == numbers(first)


def test_extending_the_grid_runs_only_the_new_points(tmp_path, monkeypatch):
    run_sweep(TINY, tmp_path)
    ran = []
    real = executors.execute
    monkeypatch.setattr(executors, "execute", lambda config, *a: ran.append(config) or real(config))
    rows = run_sweep({**TINY, "grid": {**TINY["grid"], "seed": [0, 1, 2]}}, tmp_path, extend=True)
    assert len(rows) == 12
    assert [c["seed"] for c in ran] == [2, 2, 2, 2]


def test_a_run_file_that_does_not_parse_is_run_again(tmp_path, monkeypatch):
    first = run_sweep(TINY, tmp_path)
    (tmp_path / "runs" / f"{first[1]['run_id']}.json").write_text('{"run_id": "trunc')
    ran = []
    real = executors.execute
    monkeypatch.setattr(executors, "execute", lambda config, *a: ran.append(config) or real(config))
    assert numbers(run_sweep(TINY, tmp_path)) == numbers(first)
    assert len(ran) == 1


def test_runs_made_on_another_device_are_not_mixed_into_the_results(tmp_path):
    rows = run_sweep(TINY, tmp_path)
    path = tmp_path / "runs" / f"{rows[0]['run_id']}.json"
    record = json.loads(path.read_text())
    record["provenance"]["device"] = "cuda:0"
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"device='cpu'.*made on 'cuda:0'"):
        run_sweep(TINY, tmp_path)


def test_two_workers_give_the_same_results_as_one(tmp_path, reference):
    assert numbers(run_sweep(SLOWER, tmp_path, workers=2)) == numbers(reference)


# --- Killed mid-sweep ---------------------------------------------------------------------


def live_processes_in_group(group: int) -> list[int]:
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, _parent, pgrp = stat.rsplit(")", 1)[1].split()[:3]
            if int(pgrp) == group and state != "Z":
                alive.append(int(entry.name))
    return alive


@pytest.fixture(scope="module")
def killed_sweep(tmp_path_factory):
    """`rnnopt sweep --workers 2` killed with SIGKILL once two runs are on disk."""
    root = tmp_path_factory.mktemp("killed")
    spec, out = write_spec(root / "spec.yaml", SLOWER), root / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rnnopt.cli",
            "sweep",
            str(spec),
            "--out",
            str(out),
            "--workers",
            "2",
            "--quiet",
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("runs/*.json"))) < 2:
            assert process.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "no run finished within 120 s"
            time.sleep(0.01)
        process.kill()  # SIGKILL, to the sweep's own process only
        process.wait(timeout=30)
        done_at_kill = len(list(out.glob("runs/*.json")))
        deadline = time.monotonic() + 30
        while live_processes_in_group(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left_behind = live_processes_in_group(process.pid)
        with open(out / "results.csv", newline="") as f:
            table_at_kill = list(csv.DictReader(f))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return {
        "out": out,
        "done_at_kill": done_at_kill,
        "left_behind": left_behind,
        "table_at_kill": table_at_kill,
    }


def test_a_killed_sweep_leaves_a_consistent_results_table(killed_sweep):
    total = len(expand(SLOWER))
    assert 0 < killed_sweep["done_at_kill"] < total  # it really was killed mid-sweep
    ids = [row["run_id"] for row in killed_sweep["table_at_kill"]]
    assert len(ids) == len(set(ids))
    assert all((killed_sweep["out"] / "runs" / f"{i}.json").exists() for i in ids)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="lists processes through /proc")
def test_a_killed_sweep_leaves_no_worker_processes_behind(killed_sweep):
    assert killed_sweep["left_behind"] == []


def test_a_killed_sweep_resumes_to_the_uninterrupted_results(killed_sweep, reference):
    out = killed_sweep["out"]
    assert numbers(run_sweep(SLOWER, out)) == numbers(reference)
    with open(out / "results.csv", newline="") as f:
        ids = [row["run_id"] for row in csv.DictReader(f)]
    assert ids == [row["run_id"] for row in reference]
    assert len({p.name for p in (out / "runs").glob("*.json")}) == len(reference)


# --- On a Dask cluster ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory):
    """A Dask scheduler and two one-thread workers on loopback; its address."""
    with dask_cluster(tmp_path_factory.mktemp("dask"), 2) as (address, _):
        yield address


def test_a_dask_cluster_gives_the_same_results_as_local_workers(
    tmp_path, dask_scheduler, reference
):
    rows = run_sweep(SLOWER, tmp_path, scheduler=dask_scheduler)
    assert numbers(rows) == numbers(reference)
    assert numbers(load_results(tmp_path)) == numbers(reference)
