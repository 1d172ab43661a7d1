"""Time one ``step()`` of rnnopt's optimizers against torch.optim's CPU implementations.

For each optimizer and parameter set this prints the median time of one step for rnnopt and for
torch.optim's default CPU implementation (the for-loop one, ``foreach=False``), its
``foreach=True`` variant and, where torch has one, ``fused=True``; and the ratio of ours to
torch's default. Everything runs in one plain process on one torch thread, and the
implementations' repeats are interleaved (in a rotating order) so that drift in the machine's
speed hits all alike; the ratio is the median over repeats of ours/default timed back to back.

The plain process is what a user gets, so it is the measurement. glibc hands large freed
blocks back to the operating system when the free space at the top of its heap exceeds its trim
threshold (twice the largest block freed so far), and the next step page-faults them in again;
an update that frees two full-size temporaries at once pays that every step, which is why Adam's
update divides in place. Beside the plain ratio the table shows the same ratio measured in a
child process that first asks glibc to keep freed memory (``mallopt``), where page faults play
no part (``--no-mallopt`` leaves that column out; the setting cannot be undone in-process).

Usage::

    python benchmarks/bench_optim.py             # full run (a few minutes, two processes)
    python benchmarks/bench_optim.py --quick     # a rough run
    python benchmarks/bench_optim.py --markdown  # the table as markdown, for the README
    python benchmarks/bench_optim.py --no-mallopt  # the plain process only
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from rnnopt.optim import OPTIMIZERS  # noqa: E402  (run as a script from anywhere)

# An Elman RNN with 2 inputs and 128 hidden units, plus a Linear 128 -> 1 readout.
SMALL_RNN = [(128, 2), (128, 128), (128,), (128,), (1, 128), (1,)]
# About 10M parameters in a few large tensors.
TEN_MILLION = [(2000, 2000), (2000, 2000), (1000, 2000)]

# torch's class for each of ours, with the arguments that make them the same optimizer.
TORCH_EQUIVALENT: dict[str, tuple[type[torch.optim.Optimizer], dict]] = {
    "sgd": (torch.optim.SGD, {}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
}
VARIANTS = ("ours", "default", "foreach", "fused")


def make_optimizer(name: str, variant: str, shapes: list[tuple[int, ...]]):
    """Fresh parameters with fixed gradients and an optimizer, or None if torch lacks it."""
    generator = torch.Generator().manual_seed(0)
    params = []
    for shape in shapes:
        param = torch.randn(shape, generator=generator).requires_grad_()
        param.grad = torch.randn(shape, generator=generator)
        params.append(param)
    torch_class, kwargs = TORCH_EQUIVALENT[name]
    try:
        if variant == "ours":
            optimizer = OPTIMIZERS[name](params)
        elif variant == "default":
            optimizer = torch_class(params, **kwargs, foreach=False)
        elif variant == "foreach":
            optimizer = torch_class(params, **kwargs, foreach=True)
        else:
            optimizer = torch_class(params, **kwargs, fused=True)
        for _ in range(2):  # create the state before timing
            optimizer.step()
    except (TypeError, RuntimeError):  # no such variant (e.g. RMSprop has no fused)
        return None
    return optimizer


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process instead of unmapping it; True if done."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows, musl)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    return bool(
        libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 2**31 - 1)
    )


def time_steps(step: Callable[[], object], number: int) -> float:
    """Seconds per call of ``step``, averaged over ``number`` calls, garbage collector off."""
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            step()
        return (time.perf_counter() - start) / number
    finally:
        gc.enable()


def benchmark(name: str, shapes, number: int, repeats: int) -> dict[str, float | None]:
    """Median milliseconds per step of each variant (None where torch has no such variant),
    and under "ratio" the median of ours/default over the repeats."""
    optimizers = {v: make_optimizer(name, v, shapes) for v in VARIANTS}
    present = [v for v in VARIANTS if optimizers[v] is not None]
    times: dict[str, list[float]] = {v: [] for v in present}
    for repeat in range(repeats):
        shift = repeat % len(present)
        for variant in present[shift:] + present[:shift]:
            times[variant].append(time_steps(optimizers[variant].step, number))
    result = {v: statistics.median(times[v]) * 1e3 if v in times else None for v in VARIANTS}
    ratios = [a / b for a, b in zip(times["ours"], times["default"], strict=True)]
    return {**result, "ratio": statistics.median(ratios)}


def format_table(rows: list[list[str]], markdown: bool, mallopt: bool) -> str:
    header = [
        "optimizer",
        "parameters",
        "ours ms",
        "torch default ms",
        "foreach ms",
        "fused ms",
        "ours/default",
    ]
    if mallopt:
        header.append("ours/default, mallopt")
    if markdown:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|",
        ]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    )


def measure_all(quick: bool) -> list[dict]:
    """One result per (parameter set, optimizer): label, name and `benchmark`'s numbers."""
    parameter_sets = [  # (label, shapes, steps per repeat, repeats)
        ("small RNN", SMALL_RNN, 50 if quick else 100, 7 if quick else 41),
        ("10M", TEN_MILLION, 1, 5 if quick else 21),
    ]
    results = []
    for label, shapes, number, repeats in parameter_sets:
        count = sum(torch.Size(s).numel() for s in shapes)
        print(
            f"{label}: {count:,} parameters in {len(shapes)} tensors; "
            f"median of {repeats} repeats of {number} step(s)",
            file=sys.stderr,
        )
        for name in OPTIMIZERS:
            results.append(
                {
                    "label": f"{label} ({count:,})",
                    "name": name,
                    **benchmark(name, shapes, number, repeats),
                }
            )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument(
        "--no-mallopt",
        action="store_true",
        help="leave out the column measured with glibc keeping freed memory",
    )
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="call mallopt first and print the results as JSON (the child "
        "process that measures the mallopt column)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.keep_freed_memory:
        if not keep_freed_memory():
            sys.exit("mallopt is not available here (not glibc)")
        print(json.dumps(measure_all(args.quick)))
        return

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread, "
        f"{platform.machine()} ({platform.processor() or 'unknown CPU'}), "
        f"python {platform.python_version()}; a plain process (no mallopt)"
    )
    results = measure_all(args.quick)
    kept = None
    if not args.no_mallopt:
        print("the same in a child process with glibc keeping freed memory", file=sys.stderr)
        child = subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--keep-freed-memory",
                *(["--quick"] if args.quick else []),
            ],
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        if child.returncode == 0:
            kept = {(r["label"], r["name"]): r for r in json.loads(child.stdout)}
    rows = []
    for result in results:
        cells = [f"{result[v]:.4g}" if result[v] is not None else "n/a" for v in VARIANTS]
        row = [result["name"], result["label"], *cells, f"{result['ratio']:.2f}"]
        if kept is not None:
            row.append(f"{kept[result['label'], result['name']]['ratio']:.2f}")
        rows.append(row)
    print(format_table(rows, args.markdown, kept is not None))


if __name__ == "__main__":
    main()
