"""Many runs from one spec: a grid over optimizers, learning rates, seeds, tasks, model sizes.

A spec is YAML (or the same dictionary)::

    task: {name: adding, seq_len: 10}      # fixed settings, one section per part of a run
    model: {hidden_size: 16}
    train: {steps: 150, batch_size: 16}
    grid:                                  # every combination of these values is one run
      optimizer: [sgd, momentum, rmsprop, adam]
      lr: [0.01, 0.1, 1000.0]
      seed: [0, 1]

`rnnopt.specs` reads and checks it, `rnnopt.store` keeps the results directory,
`rnnopt.executors` runs the runs; this module joins them, and the public names of all three
are importable from here.

An output directory holds::

    spec.yaml            the spec that results.csv follows
    runs/<run_id>.json   one finished run: config, history, provenance (the source of truth)
    results.csv          one row per finished run, in grid order, rebuilt from the run files

`run_id` hashes a run's complete configuration (defaults filled in), so a rerun of a spec, or of
an extended one, skips every run already on disk. Files are replaced atomically and only the
calling process writes them, so a sweep killed at any moment loses at most the runs in flight.
Each run seeds itself and uses one torch thread: the numbers do not depend on the number of
workers, the order runs finish in, or whether they ran on a Dask cluster (of machines with the
same kind of CPU: another instruction set can change the last bits).

A directory is protected: a second sweep into it while one runs is refused (DirectoryLocked),
and so is a sweep of a different spec (SpecChanged) unless it is asked to extend or replace.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tqdm import tqdm  # a plain text bar: tqdm.auto warns in kernels without ipywidgets

from rnnopt import executors
from rnnopt.checks import check_int, check_output_dir
from rnnopt.executors import RunsLost, check_scheduler_address, execute
from rnnopt.specs import (
    LATER_OPTIONS,
    SECTIONS,
    TOP_KEYS,
    RunConfig,
    Spec,
    SpecError,
    expand,
    load_spec,
    parameters,
    parse_value,
    run_id,
)
from rnnopt.store import (
    RESULT_COLUMNS,
    DirectoryError,
    DirectoryLocked,
    SpecChanged,
    check_spec_unchanged,
    load_history,
    load_results,
    load_run,
    lock_directory,
    read_record,
    rows,
    write_atomic,
    write_results,
)
from rnnopt.train import resolve_device

__all__ = [
    "SpecError",
    "Spec",
    "RunConfig",
    "RESULT_COLUMNS",
    "SECTIONS",
    "TOP_KEYS",
    "LATER_OPTIONS",
    "load_spec",
    "expand",
    "execute",
    "run_sweep",
    "load_results",
    "load_run",
    "load_history",
    "parameters",
    "parse_value",
    "write_atomic",
    "run_id",
    "DirectoryError",
    "DirectoryLocked",
    "SpecChanged",
    "RunsLost",
]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_sweep(
    spec: Spec | str | os.PathLike | Mapping[str, Any],
    out_dir: str | os.PathLike,
    workers: int = 1,
    scheduler: str | None = None,
    device: str = "cpu",
    progress: bool = False,
    extend: bool = False,
    replace: bool = False,
) -> list[dict]:
    """Run every run of `spec` not already finished in `out_dir`; return the results' rows.

    `workers` > 1 runs that many local processes (a script that asks for them must start
    under `if __name__ == "__main__":`, as with any multiprocessing); `scheduler`
    ('tcp://host:port') sends the runs to a Dask cluster instead: its workers need rnnopt
    installed, and run one run at a time per process, so start them with `--nthreads 1` and
    as many processes as cores. Either way only this process writes files, each run's as soon
    as it arrives; `progress` shows a bar over the runs (and a line saying how many are left).

    Refused before anything is written, each a ValueError: a bad spec (SpecError), an
    impossible scheduler address or output path, a directory another sweep is writing to
    (DirectoryLocked), and a directory holding a different spec (SpecChanged), unless
    `extend=True`: the new spec's runs are added, every run file stays on disk (those the new
    spec shares are reused) and spec.yaml and results.csv follow the new spec; or
    `replace=True`: the same, but the run files the new spec lacks are deleted.

    A run file that is damaged, or not the run its name says, is run again, and said so on
    stderr. A worker process that dies, or a lost scheduler, raises RunsLost once every
    finished run is on disk; the same call resumes.
    """
    check_int("workers", workers, 1)
    if scheduler is not None:
        scheduler = check_scheduler_address(scheduler)
    for name, flag in (("extend", extend), ("replace", replace)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name}={flag!r} is invalid: expected True or False")
    if extend and replace:
        raise ValueError("extend=True and replace=True were both given: choose one")
    if workers > 1 and scheduler is None:
        executors.start_pool_server()  # the workers' server imports torch while we check
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    device_type = resolve_device(device).type
    configs = expand(spec)
    out = check_output_dir("out_dir", out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with lock_directory(out):
        if not (extend or replace):
            check_spec_unchanged(out, spec, configs)
        done = _finished(out, configs, device, device_type)
        return _run(spec, configs, done, out, workers, scheduler, device, progress, replace)


def _finished(
    out: Path, configs: list[RunConfig], device: str, device_type: str
) -> dict[str, dict]:
    """{run_id: summary columns} of the trustworthy run files of `configs` in `out`."""
    done: dict[str, dict] = {}  # histories stay on disk
    for config in configs:
        path = out / "runs" / f"{config.run_id}.json"
        record, problem = read_record(path, config)
        if record is None:
            if problem:
                _say(f"{path} {problem}: it will be run again")
            continue
        # The same run gives (slightly) different numbers on another kind of device: keep
        # each directory to one, rather than mix them in one table.
        made_on = record.get("provenance", {}).get("device", "cpu")
        if made_on.split(":")[0] != device_type:
            raise DirectoryError(
                f"device={device!r}, but {out} holds runs made on "
                f"{made_on!r}; use device={made_on!r} or another directory"
            )
        done[config.run_id] = {k: record[k] for k in RESULT_COLUMNS}
    return done


def _run(
    spec: Spec,
    configs: list[RunConfig],
    done: dict[str, dict],
    out: Path,
    workers: int,
    scheduler: str | None,
    device: str,
    progress: bool,
    replace: bool,
) -> list[dict]:
    runs_dir = out / "runs"
    todo = [c for c in configs if c.run_id not in done]
    runs_dir.mkdir(parents=True, exist_ok=True)
    if replace:
        keep = {f"{c.run_id}.json" for c in configs}
        for path in runs_dir.glob("*.json"):
            if path.name not in keep:
                path.unlink()
    if spec.text:
        write_atomic(out / "spec.yaml", spec.text)
    write_results(out, configs, done)
    if progress:
        _say(f"sweep: {len(configs)} runs, {len(done)} already done, {len(todo)} to run")

    # results.csv is rebuilt from every finished run, so rebuilding it after each of N runs
    # would cost O(N^2): rebuild at most every few seconds (and at the end). The run files,
    # each written at once, are what a resume reads.
    last_write, interval = time.monotonic(), 2.0
    with tqdm(
        total=len(configs), initial=len(done), unit="run", desc="sweep", disable=not progress
    ) as bar:
        try:
            for record in executors.execute_all(todo, workers, scheduler, device):
                write_atomic(runs_dir / f"{record['run_id']}.json", json.dumps(record, indent=1))
                done[record["run_id"]] = {k: record[k] for k in RESULT_COLUMNS}
                bar.update(1)
                if time.monotonic() - last_write >= interval:
                    start = time.monotonic()
                    write_results(out, configs, done)
                    last_write = time.monotonic()
                    interval = max(2.0, 20 * (last_write - start))  # at most ~5% of the time
        except RunsLost as err:
            lost = [c.run_id for c in todo if c.run_id not in done]
            shown = ", ".join(lost[:5]) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
            raise RunsLost(
                f"{err}: {len(lost)} of {len(configs)} runs did not finish "
                f"({shown}); the {len(done)} finished runs are kept in {out}; the "
                "same command resumes"
            ) from None
        finally:
            write_results(out, configs, done)
    return rows(configs, done)
