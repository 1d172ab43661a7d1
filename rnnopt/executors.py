"""Where a sweep's runs execute: this process, a pool of local processes, or a Dask cluster.

`execute` runs one configuration and touches no file; `execute_all` yields the records of many
in the order they finish. Only the caller writes files. A worker that dies (the out-of-memory
killer's SIGKILL) or a Dask scheduler that goes away ends the iteration with `RunsLost`, after
every record finished before it was yielded, so the caller keeps them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import platform
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

import rnnopt
from rnnopt.checks import invalid
from rnnopt.specs import RunConfig, run_id
from rnnopt.tasks import TASKS
from rnnopt.train import run

__all__ = [
    "execute",
    "execute_all",
    "provenance",
    "check_scheduler_address",
    "RunsLost",
    "start_pool_server",
]


class RunsLost(RuntimeError):
    """Runs that were started did not come back: a worker died or the scheduler was lost."""


# --- One run ----------------------------------------------------------------------------

# torch's random generator is per process: runs sharing a process (threads of one Dask worker)
# take turns, or their weight initialisations would interleave.
_RUN_LOCK = threading.Lock()


def cpu_model() -> str:
    """The CPU's model name (with `cpu_capability`, what decides whether float results match
    bit for bit)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# The keys of `environment`: what a record says of the code and machine
MACHINE_KEYS = ("rnnopt", "torch", "numpy", "python", "platform", "cpu", "cpu_capability")


def environment() -> dict[str, Any]:
    """The code and machine results were made with: the one place this record is built (a
    run's, a sweep directory's, an evidence stage's and an experiment's provenance add their
    own fields to it)."""
    return {
        "rnnopt": rnnopt.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def made_here(record: dict[str, Any]) -> bool:
    """Whether results whose provenance is `record` were made on a CPU like this one: the same
    model and the same instruction set for torch's kernels, which is what a replay needs to
    give the same bits (AVX512 kernels round differently on an Intel and on an AMD CPU)."""
    here = environment()
    return all(record.get(key) == here[key] for key in ("cpu", "cpu_capability"))


def provenance(history_meta: dict[str, Any]) -> dict[str, Any]:
    """Where and with what a run was made. The CPU and the instruction set torch's kernels
    used are the run's own (a stage resumed on another machine holds runs of both); runs stored
    before they were recorded take them from their stage's provenance.json."""
    made = environment()
    return {
        **{k: made[k] for k in ("rnnopt", "torch", "numpy", "python", "platform")},
        "cpu": made["cpu"],
        "cpu_capability": made["cpu_capability"],
        "host": platform.node(),
        "threads": history_meta["threads"],
        "device": history_meta["device"],
    }


def execute(config: dict[str, Any], device: str = "cpu", progress: bool = False) -> dict:
    """Run one configuration; return its record (what `runs/<run_id>.json` holds).

    It touches no file, so it runs the same in this process, a local worker process or on a
    Dask worker; the caller writes the record. One torch thread, as in every sweep run.
    """
    with _RUN_LOCK:
        threads = torch.get_num_threads()
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            history = run(
                task=config["task"],
                model=config["model"],
                optimizer=config["optimizer"],
                train_options=config["train"],
                seed=config["seed"],
                device=device,
                threads=1,
                progress=progress,
            )
        finally:
            torch.set_num_threads(threads)
        wall_time = time.perf_counter() - start
        cpu_time = time.process_time() - cpu_start  # what the run cost, however loaded the machine
    return {
        "run_id": run_id(config),
        "status": "diverged" if history.diverged else "ok",
        "final_loss": history.final_loss,
        "metric_name": TASKS[config["task"]["name"]].metric_name,
        "final_metric": history.final_metric,
        "steps_done": history.steps_done,
        "wall_time": wall_time,
        "cpu_time": cpu_time,
        "config": config,
        "history": history.to_dict(),
        "provenance": provenance(history.meta),
    }


def execute_all(
    todo: list[RunConfig], workers: int, scheduler: str | None, device: str
) -> Iterator[dict]:
    """Records of the runs in `todo`, in the order they finish."""
    if scheduler is not None:
        yield from _on_dask(todo, scheduler, device)
    elif workers == 1 or len(todo) <= 1:
        for config in todo:
            yield execute(config.config, device)
    else:
        yield from _on_processes(todo, workers, device)


# --- Local processes ------------------------------------------------------------------------


@contextlib.contextmanager
def _one_thread_environment() -> Iterator[None]:
    """OMP/MKL at one thread in child processes started inside the block (restored after)."""
    keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(dict.fromkeys(keys, "1"))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _start_worker() -> None:
    """Initialise a pool process: one torch thread, and exit if the parent dies (a killed
    sweep would otherwise leave its workers waiting for work forever)."""
    torch.set_num_threads(1)
    parent = multiprocessing.parent_process()
    if parent is not None:

        def exit_with_parent() -> None:
            parent.join()
            os._exit(1)

        threading.Thread(target=exit_with_parent, daemon=True).start()


def _process_context(start: bool = False) -> multiprocessing.context.BaseContext:
    """Where it exists, a fork server that has imported torch once: each worker forks from it
    in milliseconds instead of starting an interpreter (~2 s for torch, ~1.5 s more for the
    torch._dynamo module that torch.optim loads on first use). Plain fork is not an option: it
    copies the caller's threads' locks mid-use. Elsewhere: fresh interpreters ('spawn').
    `start=True` starts the server now (it is one per process, kept for later sweeps)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Takes effect when the server starts, i.e. the first time this process uses it.
    context.set_forkserver_preload(["rnnopt.sweep", "torch._dynamo"])
    if start:
        from multiprocessing import forkserver

        with _one_thread_environment():  # the server's environment is its workers'
            forkserver.ensure_running()
    return context


def start_pool_server() -> None:
    """Start the workers' fork server now, so it imports torch while the caller checks."""
    _process_context(start=True)


def _on_processes(todo: list[RunConfig], workers: int, device: str) -> Iterator[dict]:
    context = _process_context()
    with (
        _one_thread_environment(),
        concurrent.futures.ProcessPoolExecutor(
            max_workers=min(workers, len(todo)),
            mp_context=context,
            initializer=_start_worker,
        ) as pool,
    ):
        futures = [pool.submit(execute, c.config, device) for c in todo]
        try:
            for future in concurrent.futures.as_completed(futures):
                try:
                    record = future.result()
                except concurrent.futures.process.BrokenProcessPool:
                    raise RunsLost(
                        "a worker process died (killed from outside: the "
                        "out-of-memory killer does this)"
                    ) from None
                yield record
        finally:
            for future in futures:  # on an error or interrupt, start nothing new
                future.cancel()


# --- Dask -------------------------------------------------------------------------------

_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss")
_ADDRESS = re.compile(
    r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})"
)


def check_scheduler_address(address: Any) -> str:
    """`address` if it can be a Dask scheduler's ('tcp://host:8786', 'host:8786', 'tls://…',
    'inproc://…'); else ValueError. Checked before anything is written: an impossible address
    would otherwise leave Dask retrying it."""
    rule = "a Dask scheduler address SCHEME://HOST:PORT, e.g. tcp://127.0.0.1:8786"
    if not isinstance(address, str):
        raise ValueError(invalid("scheduler", address, rule))
    if address.startswith("inproc://") and len(address) > len("inproc://"):
        return address
    match = _ADDRESS.fullmatch(address.strip())
    scheme = match and match["scheme"]
    if (
        match is None
        or (scheme is not None and scheme not in _SCHEMES)
        or not 0 < int(match["port"]) < 65536
    ):
        raise ValueError(
            invalid("scheduler", address, rule, [f"{s}://" for s in (*_SCHEMES, "inproc")])
        )
    return address.strip()


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """`logger` silent in the block: distributed logs the tracebacks of its reconnection
    attempts when the scheduler goes away, and the caller reports that loss in one line."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        log.setLevel(level)


def _on_dask(todo: list[RunConfig], address: str, device: str) -> Iterator[dict]:
    try:
        from distributed import Client, as_completed
    except ImportError as err:
        raise RuntimeError("scheduler= needs Dask: pip install 'dask[distributed]'") from err
    with _quiet("distributed.client"), Client(address, set_as_default=False, timeout=30) as client:
        if todo and not client.scheduler_info().get("workers"):
            print(
                f"the Dask scheduler at {address} has no workers: waiting for one (start "
                f"them with `dask worker {address} --nthreads 1`; Ctrl-C stops, and the "
                "same command resumes)",
                file=sys.stderr,
                flush=True,
            )
            client.wait_for_workers(1)
        # pure=False: Dask must not merge or cache runs; each submission is one run.
        futures = [client.submit(execute, c.config, device, pure=False) for c in todo]
        try:
            for future in as_completed(futures, loop=client.loop):
                try:
                    record = future.result()
                except (
                    OSError,
                    concurrent.futures.CancelledError,
                    concurrent.futures.TimeoutError,
                ) as err:
                    if client.status == "running" and not isinstance(err, OSError):
                        raise
                    raise RunsLost(
                        f"lost the Dask scheduler at {address} ({type(err).__name__})"
                    ) from None
                yield record
        finally:
            with contextlib.suppress(Exception):  # the scheduler may be gone
                client.cancel(futures)
