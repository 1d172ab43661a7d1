"""Speed of ElmanRNN's hand-written BPTT against torch.nn.RNN, side by side in one process.

Both modules hold the same weights and see the same input and output gradient. Repeats are
interleaved (ours, torch, torch, ours, …) so that a slow patch of the machine hits both, and
the medians are reported with the ratio ours/torch (below 1: ours is faster).

    python benchmarks/bench_rnn.py              # 30 repeats per measurement
    python benchmarks/bench_rnn.py --quick      # 5 repeats, main size only
    python benchmarks/bench_rnn.py --markdown   # a table to paste into the book
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rnnopt.rnn import ElmanRNN  # noqa: E402

# (label, seq_len, batch, input_size, hidden_size); the first is the required comparison.
SIZES = [
    ("T=100 B=64 H=128", 100, 64, 2, 128),
    ("T=500 B=64 H=32", 500, 64, 2, 32),
    ("T=100 B=64 H=256", 100, 64, 2, 256),
]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], None], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def measure(size: tuple, repeats: int, warmup: int, device: torch.device) -> list[dict]:
    label, seq_len, batch, input_size, hidden_size = size
    torch.manual_seed(0)
    reference = torch.nn.RNN(input_size, hidden_size, device=device)
    ours = ElmanRNN(input_size, hidden_size, device=device)
    ours.load_state_dict(reference.state_dict())
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((seq_len, batch, input_size), np.float32)).to(device)
    grad_output = torch.from_numpy(
        rng.standard_normal((seq_len, batch, hidden_size), np.float32)
    ).to(device)

    def forward_backward(module: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            module.zero_grad(set_to_none=True)
            output, _ = module(x)
            output.backward(grad_output)

        return run

    def forward(module: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad():
                module(x)

        return run

    # The comparison means nothing unless both compute the same thing.
    forward_backward(reference)()
    expected = [reference(x)[0]] + [p.grad for p in reference.parameters()]
    forward_backward(ours)()
    actual = [ours(x)[0]] + [p.grad for p in ours.parameters()]
    max_rel = max(
        ((a - e).abs().max() / e.abs().max()).item() for a, e in zip(actual, expected, strict=True)
    )

    rows = []
    for mode, make in (("forward+backward", forward_backward), ("forward", forward)):
        runs = {"ours": make(ours), "torch": make(reference)}
        times: dict[str, list[float]] = {"ours": [], "torch": []}
        for _ in range(warmup):
            for run in runs.values():
                run()
        for repeat in range(repeats):
            order = ("ours", "torch") if repeat % 2 == 0 else ("torch", "ours")
            for name in order:
                times[name].append(timed(runs[name], device))
        ours_ms = 1e3 * statistics.median(times["ours"])
        torch_ms = 1e3 * statistics.median(times["torch"])
        rows.append(
            {
                "size": label,
                "mode": mode,
                "ours_ms": ours_ms,
                "torch_ms": torch_ms,
                "ratio": ours_ms / torch_ms,
                "max_rel_diff": max_rel,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 repeats, main size only")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 30)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    repeats = args.repeats or (5 if args.quick else 30)
    warmup = 2 if args.quick else 5
    sizes = SIZES[:1] if args.quick else SIZES
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {device}, "
        f"float32, tanh, Python {platform.python_version()}, {platform.machine()}; "
        f"median of {repeats} interleaved repeats after {warmup} warm-up"
    )

    rows = [row for size in sizes for row in measure(size, repeats, warmup, device)]
    header = ("size", "mode", "ours ms", "torch ms", "ours/torch", "max rel diff")
    lines = [
        (
            r["size"],
            r["mode"],
            f"{r['ours_ms']:.2f}",
            f"{r['torch_ms']:.2f}",
            f"{r['ratio']:.2f}",
            f"{r['max_rel_diff']:.1e}",
        )
        for r in rows
    ]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(["---"] * 2 + ["---:"] * 4) + "|")
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(str(c)) for c in column) for column in zip(header, *lines, strict=True)]
        for line in (header, *lines):
            print("  ".join(str(c).rjust(w) for c, w in zip(line, widths, strict=True)))


if __name__ == "__main__":
    main()
