"""Fault injection: a results directory survives kills, forged files, a second sweep, a changed
spec and a bad scheduler, each ending with the uninterrupted results or a clear refusal with
nothing lost. Tiny sweeps (seq_len 5, hidden 4, a few steps) keep each case to seconds."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import dask_cluster

import rnnopt.executors as executors
from rnnopt.store import DirectoryLocked, SpecChanged, lock_directory
from rnnopt.sweep import expand, load_results, run_sweep

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

SMALL = {
    "task": {"name": "adding", "seq_len": 5, "eval_size": 20},
    "model": {"hidden_size": 4},
    "train": {"steps": 5, "batch_size": 4},
    "grid": {"optimizer": ["sgd", "adam"], "lr": [0.01, 0.1], "seed": [0, 1]},
}
# Long enough per run (~0.1 s) that a sweep can be killed while it runs.
LONGER = {
    **SMALL,
    "train": {"steps": 60, "batch_size": 8},
    "grid": {"optimizer": ["sgd", "adam"], "lr": [0.01, 0.1], "seed": [0, 1, 2, 3]},
}
WIDER = {**SMALL, "grid": {**SMALL["grid"], "lr": [0.01, 0.1, 1.0]}}


def numbers(rows: list[dict]) -> list[tuple]:
    return [tuple(repr(v) for k, v in row.items() if k != "wall_time") for row in rows]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def write_spec(path: Path, spec: dict) -> Path:
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rnnopt.cli", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory) -> list[dict]:
    return run_sweep(SMALL, tmp_path_factory.mktemp("small"))


@pytest.fixture(scope="module")
def longer_reference(tmp_path_factory) -> list[dict]:
    return run_sweep(LONGER, tmp_path_factory.mktemp("longer"))


# --- A different spec ------------------------------------------------------------------------


def test_a_different_spec_is_refused_and_the_directory_left_untouched(tmp_path):
    out = tmp_path / "out"
    run_sweep(SMALL, out)
    before = snapshot(out)
    result = cli(
        "sweep", str(write_spec(tmp_path / "wider.yaml", WIDER)), "--out", str(out), "--quiet"
    )
    assert result.returncode == 2, result.stderr
    assert "different spec" in result.stderr and "grid.lr" in result.stderr
    assert "--extend" in result.stderr and "--replace" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(out) == before


def test_a_different_spec_is_refused_in_python_with_the_remedy(tmp_path):
    run_sweep(SMALL, tmp_path)
    with pytest.raises(SpecChanged, match=r"grid\.lr.*extend=True"):
        run_sweep(WIDER, tmp_path)


def test_the_same_spec_written_differently_is_the_same(tmp_path, small_reference):
    run_sweep(SMALL, tmp_path)
    reordered = {
        "grid": SMALL["grid"],
        "train": SMALL["train"],
        "model": SMALL["model"],
        "task": SMALL["task"],
    }
    assert numbers(run_sweep(reordered, tmp_path)) == numbers(small_reference)


def test_extend_reuses_every_finished_run(tmp_path, monkeypatch, small_reference):
    run_sweep(SMALL, tmp_path)
    ran = []
    real = executors.execute
    monkeypatch.setattr(executors, "execute", lambda c, *a: ran.append(c) or real(c, *a))
    rows = run_sweep(WIDER, tmp_path, extend=True)
    assert len(rows) == len(expand(WIDER)) and {c["optimizer"]["lr"] for c in ran} == {1.0}
    assert numbers([r for r in rows if r["lr"] != 1.0]) == numbers(small_reference)
    assert [r["run_id"] for r in load_results(tmp_path)] == [r["run_id"] for r in rows]
    assert numbers(run_sweep(WIDER, tmp_path)) == numbers(rows)  # spec.yaml is the wider one
    # Back to the narrower spec: the wider runs stay on disk, results.csv follows the spec.
    narrow = run_sweep(SMALL, tmp_path, extend=True)
    assert numbers(narrow) == numbers(small_reference)
    assert len(list((tmp_path / "runs").glob("*.json"))) == len(expand(WIDER))


def test_replace_keeps_only_the_new_spec_s_runs(tmp_path, small_reference):
    run_sweep(WIDER, tmp_path)
    result = cli(
        "sweep",
        str(write_spec(tmp_path / "small.yaml", SMALL)),
        "--out",
        str(tmp_path),
        "--replace",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert numbers(load_results(tmp_path)) == numbers(small_reference)
    assert sorted(p.stem for p in (tmp_path / "runs").glob("*.json")) == sorted(
        r.run_id for r in expand(SMALL)
    )


# --- Two sweeps at once ----------------------------------------------------------------------


def test_a_second_sweep_into_a_locked_directory_is_refused_naming_the_holder(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    with lock_directory(tmp_path):
        with pytest.raises(DirectoryLocked, match=rf"in use by another sweep \(pid {os.getpid()}"):
            run_sweep(SMALL, tmp_path)
        result = cli(
            "sweep",
            str(write_spec(tmp_path.parent / "s.yaml", SMALL)),
            "--out",
            str(tmp_path),
            "--quiet",
        )
    assert result.returncode == 2 and f"pid {os.getpid()}" in result.stderr
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / ".lock").exists()  # released on a clean exit


def test_a_killed_holder_does_not_leave_the_directory_locked(tmp_path, small_reference):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from rnnopt.store import lock_directory\n"
            "with lock_directory(Path(sys.argv[1])):\n"
            " print('locked', flush=True); time.sleep(600)",
            str(tmp_path),
        ],
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DirectoryLocked, match=f"pid {holder.pid}"):
            run_sweep(SMALL, tmp_path)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert (tmp_path / ".lock").exists()  # left behind by the killed process, but not held
    assert numbers(run_sweep(SMALL, tmp_path)) == numbers(small_reference)


# --- Damaged and forged run files ------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "forged", "copied", "no history"])
def test_an_untrustworthy_run_file_is_run_again_and_said_so(
    tmp_path, capsys, damage, small_reference
):
    rows = run_sweep(SMALL, tmp_path)
    target = tmp_path / "runs" / f"{rows[1]['run_id']}.json"
    record = json.loads(target.read_text())
    if damage == "truncated":
        target.write_text(target.read_text()[: len(target.read_text()) // 2])
    elif damage == "forged":  # a config edited by hand: its hash is no longer its run id
        record["config"]["optimizer"]["lr"] = 0.5
        record["final_loss"] = 0.0
        target.write_text(json.dumps(record))
    elif damage == "copied":  # another run's (valid) file under this run's name
        shutil.copy(tmp_path / "runs" / f"{rows[0]['run_id']}.json", target)
    else:
        del record["history"]
        target.write_text(json.dumps(record))
    capsys.readouterr()
    assert numbers(run_sweep(SMALL, tmp_path)) == numbers(small_reference)
    err = capsys.readouterr().err
    assert f"{target.name}" in err and "run again" in err


# --- Kills -----------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _start(spec_path: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rnnopt.cli",
            "sweep",
            str(spec_path),
            "--out",
            str(out),
            "--quiet",
            *extra,
        ],
        env=ENV,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_runs(process: subprocess.Popen, out: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while len(list(out.glob("runs/*.json"))) < count:
        assert process.poll() is None, "the sweep ended before it could be killed"
        assert time.monotonic() < deadline, "no run finished within 120 s"
        time.sleep(0.005)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers through /proc")
def test_a_killed_worker_is_reported_and_the_same_command_resumes(tmp_path, longer_reference):
    spec_path, out = write_spec(tmp_path / "spec.yaml", LONGER), tmp_path / "out"
    process = _start(spec_path, out, "--workers", "2")
    try:
        _wait_for_runs(process, out, 1)
        # The pool's workers are forked by the fork server, the sweep's child.
        workers = [w for c in _children(process.pid) for w in _children(c)]
        assert workers, "no worker process found"
        os.kill(workers[0], signal.SIGKILL)  # what the out-of-memory killer does
        _, stderr = process.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 1, stderr
    assert "worker process died" in stderr and "the same command resumes" in stderr
    assert "Traceback" not in stderr
    kept = {p.stem for p in out.glob("runs/*.json")}
    assert kept and {r["run_id"] for r in load_results(out)} <= kept
    result = cli("sweep", str(spec_path), "--out", str(out), "--workers", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    assert numbers(load_results(out)) == numbers(longer_reference)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_sweep_killed_at_a_random_moment_resumes_to_the_same_results(
    tmp_path, seed, longer_reference
):
    spec_path, out = write_spec(tmp_path / "spec.yaml", LONGER), tmp_path / "out"
    process = _start(spec_path, out, "--workers", "2")
    try:
        _wait_for_runs(process, out, random.Random(seed).randint(0, len(expand(LONGER)) - 2))
        time.sleep(random.Random(seed).uniform(0, 0.2))
        process.kill()
        process.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    time.sleep(0.2)  # the workers notice their parent is gone and exit
    assert numbers(run_sweep(LONGER, out)) == numbers(longer_reference)


# --- Output paths ------------------------------------------------------------------------

TRAIN = [
    "train",
    "--task",
    "adding",
    "--seq-len",
    "5",
    "--task-opt",
    "eval_size=20",
    "--hidden-size",
    "4",
    "--steps",
    "5",
    "--batch-size",
    "4",
    "--quiet",
]


@pytest.mark.parametrize("where", ["a directory", "under a file"])
def test_train_refuses_an_output_it_cannot_write_before_training(tmp_path, where):
    (tmp_path / "file.json").write_text("")
    (tmp_path / "dir.json").mkdir()
    out = tmp_path / ("dir.json" if where == "a directory" else "file.json/run.json")
    started = time.monotonic()
    result = cli(*TRAIN, "--steps", "100000", "--out", str(out))
    assert result.returncode == 2 and "--out" in result.stderr and str(out) in result.stderr
    assert time.monotonic() - started < 60  # refused, not trained for 100000 steps


def test_a_sweep_refuses_an_output_under_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    result = cli(
        "sweep",
        str(write_spec(tmp_path / "s.yaml", SMALL)),
        "--out",
        str(tmp_path / "file" / "out"),
        "--quiet",
    )
    assert result.returncode == 2 and "out_dir=" in result.stderr and "is a file" in result.stderr


# --- Dask ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address", ["foo", "http://127.0.0.1:8786", "", "tcp://host:99999", "tcp://:8786"]
)
def test_an_impossible_scheduler_address_exits_2_and_writes_nothing(tmp_path, address):
    result = cli(
        "sweep",
        str(write_spec(tmp_path / "s.yaml", SMALL)),
        "--out",
        str(tmp_path / "out"),
        "--scheduler",
        address,
        "--quiet",
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "scheduler=" in result.stderr and "tcp://" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_scheduler_without_workers_is_said_so(tmp_path):
    sweep = None
    with dask_cluster(tmp_path, 0) as (address, _):
        try:
            sweep = _start(
                write_spec(tmp_path / "s.yaml", SMALL), tmp_path / "out", "--scheduler", address
            )
            deadline = time.monotonic() + 60
            line = ""
            while "no workers" not in line:
                assert time.monotonic() < deadline, "nothing said about the missing workers"
                line = sweep.stderr.readline()
            assert address in line
        finally:
            if sweep is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(sweep.pid, signal.SIGKILL)
                sweep.wait(timeout=30)


def test_a_lost_scheduler_gives_one_line_and_the_sweep_resumes(tmp_path, longer_reference):
    spec_path, out = write_spec(tmp_path / "spec.yaml", LONGER), tmp_path / "out"
    with dask_cluster(tmp_path, 1) as (address, processes):
        process = _start(spec_path, out, "--scheduler", address)
        try:
            _wait_for_runs(process, out, 1)
            os.killpg(processes[0].pid, signal.SIGKILL)  # the scheduler
            _, stderr = process.communicate(timeout=120)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 1, stderr
    assert stderr.strip().count("\n") == 0, stderr  # one line, no traceback
    assert f"lost the Dask scheduler at {address}" in stderr
    assert "the same command resumes" in stderr
    assert numbers(run_sweep(LONGER, out)) == numbers(longer_reference)


# --- Cost of the results table -----------------------------------------------------------------


def test_results_csv_is_not_rebuilt_after_every_run(tmp_path, monkeypatch):
    """Rebuilding it after each of N runs costs O(N^2); it is rebuilt every few seconds."""
    import rnnopt.sweep as sweep

    spec = {**SMALL, "grid": {**SMALL["grid"], "seed": list(range(50))}}  # 200 runs
    configs = expand(spec)
    template = run_sweep(
        {**SMALL, "grid": {"optimizer": ["sgd"], "lr": [0.01], "seed": [0]}}, tmp_path / "one"
    )[0]
    record = json.loads((tmp_path / "one" / "runs" / f"{template['run_id']}.json").read_text())

    def instant(todo, *args):
        for config in todo:  # a valid record for each run, without training
            yield {**record, "run_id": config.run_id, "config": config.config}

    writes = []
    real = sweep.write_results
    monkeypatch.setattr(executors, "execute_all", instant)
    monkeypatch.setattr(sweep, "write_results", lambda *a: writes.append(1) or real(*a))
    rows = run_sweep(spec, tmp_path / "many")
    assert len(rows) == len(configs) == 200
    assert len(writes) <= 5  # once before, once after, and one per couple of seconds
    assert [r["run_id"] for r in load_results(tmp_path / "many")] == [c.run_id for c in configs]
