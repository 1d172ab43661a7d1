"""Shared test set-up: one torch thread (small RNNs run fastest on one, and results are
bit-reproducible only at a fixed thread count) and float64 comparisons where asked."""

from __future__ import annotations

import os
import sys

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
