"""Shared test set-up: one torch thread (small RNNs run fastest on one, and results are
bit-reproducible only at a fixed thread count) and float64 comparisons where asked."""
from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

torch.set_num_threads(1)
