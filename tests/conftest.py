"""Shared test set-up: one torch thread (small RNNs run fastest on one, and results are
bit-reproducible only at a fixed thread count) and float64 comparisons where asked."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

torch.set_num_threads(1)


TINY_VARIANTS = {  # starting grids a tiny adding problem tunes within a few widenings
    "sgd": "{optimizer: {name: sgd}, lr: {from: 0.1, to: 0.215}}",
    "momentum": "{optimizer: {name: momentum}, lr: {from: 0.01, to: 0.0215}}",
    "rmsprop": "{optimizer: {name: rmsprop}, lr: {from: 0.001, to: 0.00215}}",
    "adam": "{optimizer: {name: adam}, lr: {from: 0.01, to: 0.0215}}",
}


def tiny_study(variants=("sgd", "adam"), hidden=4, steps=20, evaluation_seeds=(100, 101, 102)):
    """A study spec (rnnopt.evidence's format) small enough to tune and evaluate in seconds."""
    lines = [
        "task: {name: adding, seq_len: 5, eval_size: 50}",
        f"model: {{hidden_size: {hidden}, core: elman, recurrent_init: orthogonal}}",
        f"train: {{steps: {steps}, batch_size: 8, clip_grad_norm: 1.0, eval_every: 10, "
        "log_every: 5}",
        "tuning_seeds: [0, 1]",
        f"evaluation_seeds: [{', '.join(map(str, evaluation_seeds))}]",
        "variants:",
        *(f"  {v}: {TINY_VARIANTS[v]}" for v in variants),
    ]
    return "\n".join(lines) + "\n"


def make_tier(root, spec_text, name="tiny"):
    """Write `spec_text` as study `name` under root/specs and run it into root/out."""
    from rnnopt import evidence

    (root / "specs").mkdir(exist_ok=True)
    (root / "specs" / f"{name}.yaml").write_text(spec_text)
    evidence.run_evidence(studies_dir=root / "specs", out_root=root / "out", workers=1)
    return root


@contextlib.contextmanager
def dask_cluster(root: Path, workers: int):
    """A Dask scheduler on loopback with `workers` one-thread workers, each in its own process
    group: yields (address, processes), the scheduler first; every process is stopped after."""
    pytest.importorskip("distributed", reason="distributed is not installed: no Dask test")
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    scheduler_file = root / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]  # the `dask` command
    quiet = ["--no-dashboard", "--host", "127.0.0.1"]
    commands = [
        [*dask, "scheduler", "--port", "0", "--scheduler-file", str(scheduler_file), *quiet]
    ]
    commands += [
        [*dask, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1", *quiet,
         "--local-directory", str(root)]
    ] * workers  # fmt: skip
    processes = []
    try:
        for command in commands:
            processes.append(
                subprocess.Popen(command, env=env, cwd=root, start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while not scheduler_file.exists():
                assert time.monotonic() < deadline, "the Dask scheduler did not start in 60 s"
                time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        if workers:
            from distributed import Client

            with Client(address, timeout=60) as client:
                client.wait_for_workers(workers, timeout=60)
        yield address, processes
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
