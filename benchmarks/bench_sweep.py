"""Throughput of a sweep with 1 and with 2 local worker processes (runs per second).

The same 24-run spec is swept into a fresh directory each time, two ways:

- in this process (`run_sweep`), after a first sweep has started the workers' fork server (a
  process that imports torch once, for every later worker to fork from): the rate a notebook,
  or a long sweep, sees;
- as a command (`python -m rnnopt.cli sweep`), end to end: Python, torch and the fork server
  start from nothing each time, a fixed cost that a short sweep feels.

Repeats alternate (1, 2, 2, 1, ...) so that a slow patch of the machine hits both; medians are
reported with the speed-up of 2 workers over 1. The results of 1 and 2 workers are checked to
be identical.

    python benchmarks/bench_sweep.py              # 3 repeats each
    python benchmarks/bench_sweep.py --quick      # 1 repeat each
    python benchmarks/bench_sweep.py --markdown   # a table to paste into the README
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from rnnopt.sweep import expand, load_results, run_sweep  # noqa: E402

SPEC = {
    "task": {"name": "adding", "seq_len": 20, "eval_size": 200},
    "model": {"hidden_size": 32},
    "train": {"steps": 200, "batch_size": 32},
    "grid": {
        "optimizer": ["sgd", "momentum", "rmsprop", "adam"],
        "lr": [0.01, 0.1],
        "seed": [0, 1, 2],
    },
}


def timed_sweep(workers: int) -> tuple[float, list[dict]]:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        rows = run_sweep(SPEC, out, workers=workers)
        return time.perf_counter() - start, rows


def timed_command(workers: int) -> tuple[float, list[dict]]:
    with tempfile.TemporaryDirectory() as out:
        spec = Path(out) / "spec.yaml"
        spec.write_text(json.dumps(SPEC))  # JSON is YAML
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "rnnopt.cli",
                "sweep",
                str(spec),
                "--out",
                str(Path(out) / "results"),
                "--workers",
                str(workers),
                "--quiet",
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - start
        return elapsed, load_results(Path(out) / "results")


def without_times(rows: list[dict]) -> list[tuple]:
    return [tuple(repr(v) for k, v in row.items() if k != "wall_time") for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat instead of 3")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 3)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)

    runs = len(expand(SPEC))
    timed_sweep(2)  # starts the fork server; imports what every run needs
    reference = without_times(timed_sweep(1)[1])
    identical = True
    header = ["how", "workers", "runs", "seconds (median)", "runs/s", "speed-up"]
    lines = []
    for how, timed in (
        ("in process, workers started", timed_sweep),
        ("`rnnopt sweep` command, from nothing", timed_command),
    ):
        times: dict[int, list[float]] = {1: [], 2: []}
        for i in range(repeats):
            for workers in (1, 2) if i % 2 == 0 else (2, 1):
                elapsed, rows = timed(workers)
                times[workers].append(elapsed)
                identical &= without_times(rows) == reference
        one = statistics.median(times[1])
        for workers in (1, 2):
            t = statistics.median(times[workers])
            lines.append(
                [how, str(workers), str(runs), f"{t:.2f}", f"{runs / t:.2f}", f"{one / t:.2f}"]
            )

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"1 torch thread per run, {repeats} repeat(s), load average {load:.2f} at the end; "
        f"results identical: {identical}"
    )
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|---|" + "|".join(["---:"] * 5) + "|")
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(c) for c in column) for column in zip(header, *lines, strict=True)]
        for line in (header, *lines):
            print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
