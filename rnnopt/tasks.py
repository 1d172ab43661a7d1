"""Benchmark tasks for recurrent networks: a training stream, a fixed held-out set, a loss, a
metric, and the trivial baseline a model must beat to show it learned anything.

Every task is deterministic. Training batches come from the numpy Generator the caller passes
in; the held-out set comes from the task's own `eval_seed`/`split_seed`, so it never depends on
the training seed. Baselines are computed on that held-out set with the task's own loss, never
typed in. Tensors are returned on the CPU, inputs float32 and batch first `(B, T, input_size)`.

    task = make_task("adding", seq_len=50)
    x, y = task.train_batch(64, np.random.default_rng(0))   # (64, 50, 2), (64, 1)
    task.baseline()                                          # {'loss': ~1/6, 'metric': ~1/6, ...}
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rnnopt.checks import check_choice, check_int, check_number, invalid

Batch = tuple[torch.Tensor, torch.Tensor]  # (inputs, targets)


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """`value` as an int in [low, high]; otherwise a ValueError naming parameter, value, range."""
    return check_int(name, value, low, high)


def _check_fraction(name: str, value: Any) -> float:
    """`value` as a float strictly between 0 and 1."""
    return check_number(name, value, low=0, high=1, low_open=True, high_open=True)


def _memory_bytes() -> int:
    """This machine's physical memory (8 GiB where it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 8 * 2**30


def _check_held_out(task: Task, steps: int, bytes_per_step: int) -> None:
    """Refuse, when the task is made, a held-out set larger than a quarter of the memory: it is
    built at the first evaluation, after a sweep has started writing, and would end it there
    (or the whole machine, through the out-of-memory killer). `steps` time steps per sequence."""
    need = task.eval_size * steps * bytes_per_step
    limit = _memory_bytes() // 4
    if need > limit:
        raise ValueError(
            invalid(
                "eval_size",
                task.eval_size,
                f"an integer <= {limit // (steps * bytes_per_step)} for task {task.name!r} with "
                f"seq_len={task.config()['seq_len']} ({steps} steps a sequence): its held-out set "
                f"would take {need / 2**30:.3g} GiB, more than a quarter of this machine's "
                f"memory ({limit / 2**30:.3g} GiB)",
            )
        )


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(invalid("rng", rng, "a numpy Generator (np.random.default_rng(seed))"))
    return rng


HELD_OUT_PARTS = {"all": slice(None), "validation": slice(0, None, 2), "test": slice(1, None, 2)}


def _check_part(held_out: Any) -> str:
    if held_out not in HELD_OUT_PARTS:
        raise ValueError(
            invalid("held_out", held_out, "a part of the held-out set", HELD_OUT_PARTS)
        )
    return held_out


class Task:
    """Base class. A subclass sets the attributes below and implements `train_batch`,
    `_make_eval_set` and `baseline`; it inherits cross-entropy loss and accuracy, which it may
    override. Constructor arguments are stored under their own names so `config()` can list them.
    """

    name: str = ""
    input_size: int  # features per time step
    output_size: int  # 1 for regression, the number of classes otherwise
    seq_len: int  # time steps per input sequence
    readout: str = "last"  # 'last': model outputs (B, output_size); 'all': (B, T, output_size)
    loss_name: str = "cross-entropy (nats)"
    metric_name: str = "accuracy"
    higher_is_better: bool = True

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> Batch:
        raise NotImplementedError

    def _make_eval_set(self) -> Batch:
        raise NotImplementedError

    def baseline(self) -> dict:
        raise NotImplementedError

    held_out: str = "all"

    def eval_batch(self) -> Batch:
        """The fixed held-out set, built once and cached (treat the tensors as read-only).

        `held_out` picks a part of it: 'all'; 'validation', its even-numbered items; or 'test',
        its odd-numbered ones. A protocol that chooses a learning rate on the validation part and
        reports on the test part never scores a choice on the data that made it.
        """
        if not hasattr(self, "_eval_set"):
            inputs, targets = self._make_eval_set()
            part = HELD_OUT_PARTS[self.held_out]
            self._eval_set = (inputs[part], targets[part])
        return self._eval_set

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy in nats over every prediction (every step too, for 'all')."""
        return F.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1))

    def metric(self, output: torch.Tensor, target: torch.Tensor) -> float:
        """Fraction of predictions whose arg-max is the target class."""
        with torch.no_grad():
            return (output.argmax(dim=-1) == target).float().mean().item()

    def config(self) -> dict:
        """{'name': ..., **constructor arguments}: `make_task(**task.config())` rebuilds it."""
        params = inspect.signature(type(self)).parameters
        return {"name": self.name, **{p: getattr(self, p) for p in params}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class AddingTask(Task):
    """The adding problem (Hochreiter & Schmidhuber 1997; this variant from Le et al. 2015 and
    Arjovsky et al. 2016).

    Each step has two input channels: a value ~ U[0, 1] and a marker in {0, 1}. Exactly one
    marker is at a position uniform in [0, T//2) and one uniform in [T//2, T); the target is the
    sum of the two marked values, read out after the last step. Loss and metric: mean squared
    error. `accuracy()` gives Sutskever et al.'s (2013) "correct within 0.04" as a second view.

    Baseline: always predict 1, the target's mean. Its MSE is the target's variance, the
    variance of a sum of two independent U[0, 1] values: 2 · 1/12 = 1/6. `baseline()` measures
    it on the held-out set and also reports the analytic 1/6.

    Args:
        seq_len: T, the sequence length (>= 2, so each half holds a marker).
        eval_size: number of held-out sequences.
        eval_seed: seed of the held-out set's generator.
        held_out: 'all', 'validation' or 'test', the part of the held-out set that
            eval_batch gives (see Task.eval_batch).
    """

    name = "adding"
    readout = "last"
    loss_name = "mse"
    metric_name = "mse"
    higher_is_better = False
    input_size = 2
    output_size = 1

    def __init__(
        self,
        seq_len: int = 50,
        eval_size: int = 1000,
        eval_seed: int = 12345,
        held_out: str = "all",
    ):
        self.held_out = _check_part(held_out)
        self.seq_len = _check_int("seq_len", seq_len, 2)
        self.eval_size = _check_int("eval_size", eval_size, 1)
        self.eval_seed = _check_int("eval_seed", eval_seed, 0)
        # float32 values and markers, float64 values and int64 positions while sampling
        _check_held_out(self, self.seq_len, 24)

    def _sample(self, n: int, rng: np.random.Generator) -> Batch:
        T, rows = self.seq_len, np.arange(n)
        values = rng.random((n, T), dtype=np.float32)
        first = rng.integers(0, T // 2, size=n)
        second = rng.integers(T // 2, T, size=n)
        markers = np.zeros((n, T), dtype=np.float32)
        markers[rows, first] = markers[rows, second] = 1.0
        target = values[rows, first] + values[rows, second]
        inputs = np.stack([values, markers], axis=-1)
        return torch.from_numpy(inputs), torch.from_numpy(target[:, None])

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> Batch:
        return self._sample(_check_int("batch_size", batch_size, 1), _check_rng(rng))

    def _make_eval_set(self) -> Batch:
        return self._sample(self.eval_size, np.random.default_rng(self.eval_seed))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # Insist on equal shapes: (B,) against (B, 1) would broadcast to a (B, B) error matrix.
        if output.shape != target.shape:
            raise ValueError(
                invalid(
                    "output.shape",
                    tuple(output.shape),
                    f"the target's shape {tuple(target.shape)}",
                )
            )
        return F.mse_loss(output, target)

    def metric(self, output: torch.Tensor, target: torch.Tensor) -> float:
        with torch.no_grad():
            return self.loss(output, target).item()

    def accuracy(
        self, output: torch.Tensor, target: torch.Tensor, tolerance: float = 0.04
    ) -> float:
        """Fraction of predictions within `tolerance` of the target."""
        with torch.no_grad():
            return ((output - target).abs() < tolerance).float().mean().item()

    def baseline(self) -> dict:
        _, target = self.eval_batch()
        mse = self.metric(torch.ones_like(target), target)
        return {
            "loss": mse,
            "metric": mse,
            "analytic": 1 / 6,
            "description": "always predict 1 (the target's mean); analytic MSE = Var = 1/6",
        }


class CopyTask(Task):
    """The copy-memory task (Hochreiter & Schmidhuber 1997; this form from Arjovsky et al. 2016).

    Input codes: 0 blank, 1..K symbols (K = n_categories), K+1 delimiter. A sequence is
    n_symbols random symbols, T-1 blanks, the delimiter, n_symbols blanks: length T + 2·n_symbols.
    The target is blank everywhere except the last n_symbols steps, which must repeat the
    symbols. Inputs are one-hot over K+2 codes; outputs are logits over K+1 classes (blank and
    the symbols) at every step. Loss: cross-entropy averaged over all steps and the batch.
    Metric: accuracy on the last n_symbols (recall) steps.

    Baseline: a memoryless model that outputs blank with certainty until the recall steps, then
    the uniform distribution over the K symbols. It pays ln K at each of the n_symbols recall
    steps and 0 elsewhere: CE = n_symbols · ln K / (T + 2·n_symbols), 10 ln 8 / 120 = 0.1733 at
    the defaults. Its (expected) recall accuracy is 1/K.

    Args:
        seq_len: T, the delay (>= 1): the delimiter comes T steps after the last symbol. The
            attribute `seq_len` is the number of time steps, T + 2·n_symbols; T is `delay`.
        n_symbols: how many symbols to remember (>= 1).
        n_categories: K, the alphabet size (>= 2).
        eval_size: number of held-out sequences.
        eval_seed: seed of the held-out set's generator.
        held_out: 'all', 'validation' or 'test', the part of the held-out set that
            eval_batch gives (see Task.eval_batch).
    """

    name = "copy"
    readout = "all"

    def __init__(
        self,
        seq_len: int = 100,
        n_symbols: int = 10,
        n_categories: int = 8,
        eval_size: int = 1000,
        eval_seed: int = 12345,
        held_out: str = "all",
    ):
        self.held_out = _check_part(held_out)
        self.delay = _check_int("seq_len", seq_len, 1)
        self.n_symbols = _check_int("n_symbols", n_symbols, 1)
        self.n_categories = _check_int("n_categories", n_categories, 2)
        self.eval_size = _check_int("eval_size", eval_size, 1)
        self.eval_seed = _check_int("eval_seed", eval_seed, 0)
        self.delimiter = self.n_categories + 1
        self.input_size = self.n_categories + 2
        self.output_size = self.n_categories + 1
        self.seq_len = self.delay + 2 * self.n_symbols  # time steps, unlike the argument
        # one-hot float32 inputs, int64 codes and targets
        _check_held_out(self, self.seq_len, 4 * self.input_size + 16)

    def _sample(self, n: int, rng: np.random.Generator) -> Batch:
        k = self.n_symbols
        symbols = rng.integers(1, self.n_categories + 1, size=(n, k))
        codes = np.zeros((n, self.seq_len), dtype=np.int64)
        codes[:, :k] = symbols
        codes[:, k + self.delay - 1] = self.delimiter
        target = np.zeros((n, self.seq_len), dtype=np.int64)
        target[:, -k:] = symbols
        inputs = F.one_hot(torch.from_numpy(codes), self.input_size).float()
        return inputs, torch.from_numpy(target)

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> Batch:
        return self._sample(_check_int("batch_size", batch_size, 1), _check_rng(rng))

    def _make_eval_set(self) -> Batch:
        return self._sample(self.eval_size, np.random.default_rng(self.eval_seed))

    def metric(self, output: torch.Tensor, target: torch.Tensor) -> float:
        """Accuracy over the recall steps only (blanks are easy and would swamp the number)."""
        k = self.n_symbols
        return super().metric(output[:, -k:], target[:, -k:])

    def config(self) -> dict:
        return {**super().config(), "seq_len": self.delay}  # the argument, not the step count

    def memoryless_logits(self, batch_size: int) -> torch.Tensor:
        """The baseline's logits: blank with certainty, then uniform over the symbols."""
        logits = torch.full((batch_size, self.seq_len, self.output_size), -math.inf)
        logits[:, : -self.n_symbols, 0] = 0.0
        logits[:, -self.n_symbols :, 1:] = 0.0
        return logits

    def baseline(self) -> dict:
        _, target = self.eval_batch()
        logits = self.memoryless_logits(len(target))
        recall = target[:, -self.n_symbols :]
        # Expected accuracy of sampling from the strategy: the mean probability of the right symbol.
        p_right = logits[:, -self.n_symbols :].softmax(-1).gather(-1, recall[..., None]).mean()
        return {
            "loss": self.loss(logits, target).item(),
            "metric": p_right.item(),
            "analytic": self.n_symbols * math.log(self.n_categories) / self.seq_len,
            "description": "memoryless: blank until the recall steps, then uniform over the "
            "symbols; CE = n_symbols ln K / (T + 2 n_symbols), accuracy 1/K",
        }


@functools.lru_cache(maxsize=1)
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # imported here: only this task needs scikit-learn

    digits = load_digits()
    return digits.images, digits.target


class DigitsTask(Task):
    """Sequential 8×8 digits: scikit-learn's bundled copy of the UCI handwritten digits (1797
    images, pixel values 0..16, scaled here to [0, 1]), read row by row (8 steps × 8 features)
    or pixel by pixel (64 steps × 1), classified after the last step. A small, offline stand-in
    for sequential MNIST (Le et al. 2015).

    Split: stratified and seeded; within each class a fraction `test_fraction` (rounded) goes to
    the test split. Training batches are drawn with replacement from the train split; the
    held-out set is the whole test split; `train_set()` is the whole train split. Loss:
    cross-entropy; metric: accuracy.

    Baseline: chance accuracy 1/(number of classes); loss: the cross-entropy, on the test split,
    of always predicting the train split's class frequencies.

    Args:
        mode: 'rows' (8 steps × 8 pixels) or 'pixels' (64 steps × 1 pixel).
        test_fraction: share of each class held out, strictly between 0 and 1.
        split_seed: seed of the split's generator.
        held_out: 'all', 'validation' or 'test', the part of the held-out set that
            eval_batch gives (see Task.eval_batch).
    """

    name = "digits"
    readout = "last"
    modes = ("rows", "pixels")

    def __init__(
        self,
        mode: str = "rows",
        test_fraction: float = 0.25,
        split_seed: int = 0,
        held_out: str = "all",
    ):
        self.held_out = _check_part(held_out)
        self.mode = check_choice("mode", mode, self.modes)
        self.test_fraction = _check_fraction("test_fraction", test_fraction)
        self.split_seed = _check_int("split_seed", split_seed, 0)

        images, labels = _load_digits()
        pixels = (images / images.max()).astype(np.float32)  # 0..16 -> [0, 1]
        shape = (8, 8) if mode == "rows" else (64, 1)  # (steps, features per step)
        self.inputs = pixels.reshape(len(pixels), *shape)
        self.labels = labels.astype(np.int64)
        self.n_classes = len(np.unique(self.labels))
        self.seq_len, self.input_size = self.inputs.shape[1:]
        self.output_size = self.n_classes
        self.train_index, self.test_index = self._split()

    def _split(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.split_seed)
        test = []
        for c in range(self.n_classes):
            members = rng.permutation(np.flatnonzero(self.labels == c))
            test.extend(members[: round(self.test_fraction * len(members))])
        test = np.sort(np.array(test, dtype=np.int64))
        train = np.setdiff1d(np.arange(len(self.labels)), test)
        if len(test) == 0 or len(train) == 0:
            raise ValueError(
                invalid(
                    "test_fraction",
                    self.test_fraction,
                    "a fraction that leaves neither split empty (between about 0.01 and 0.99)",
                )
            )
        return train, test

    def _subset(self, index: np.ndarray) -> Batch:
        return torch.from_numpy(self.inputs[index]), torch.from_numpy(self.labels[index])

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> Batch:
        n = _check_int("batch_size", batch_size, 1)
        return self._subset(_check_rng(rng).choice(self.train_index, size=n, replace=True))

    def _make_eval_set(self) -> Batch:
        return self._subset(self.test_index)

    def train_set(self) -> Batch:
        """The whole train split, to measure the gap between training and held-out performance."""
        return self._subset(self.train_index)

    def baseline(self) -> dict:
        _, target = self.eval_batch()
        train_labels = self.labels[self.train_index]
        freq = np.bincount(train_labels, minlength=self.n_classes) / len(train_labels)
        logits = torch.log(torch.as_tensor(freq, dtype=torch.float32)).expand(len(target), -1)
        return {
            "loss": self.loss(logits, target).item(),
            "metric": 1 / self.n_classes,
            "description": f"chance accuracy 1/{self.n_classes}; loss of predicting the "
            "train split's class frequencies",
        }


@functools.lru_cache(maxsize=1)
def _load_text() -> str:
    from pydoc_data.topics import topics  # ships with CPython: ~465k characters of English

    return "".join(topics[key] for key in sorted(topics))


class TextTask(Task):
    """Character-level language modelling on CPython's pydoc topics (`pydoc_data.topics`, the
    dict's values joined in sorted key order: ~465k characters of documentation prose and code).

    Split: the first 1 - valid_fraction of the text is for training, the rest for validation.
    Vocabulary: every character seen at least `min_count` times in the training part, sorted,
    after code 0 = UNK (shown as '\\ufffd'), which stands for all other characters (a handful of
    rare letters and symbols); so the model never meets a code it could not have learned.
    Training stream: random windows of seq_len + 1 characters from the training part; the
    input is the one-hot of the first seq_len, the target the next character at every step.
    Held-out set: `eval_size` non-overlapping validation windows, evenly spaced. Loss:
    cross-entropy in nats per character; metric: bits per character (nats / ln 2).

    Baseline: the unigram model, p(c) = (n_c + 1) / (N + V) from the training counts (add-one
    smoothing keeps a code that the training part lacks finite), scored on the held-out targets.

    Args:
        seq_len: characters per window (>= 1).
        eval_size: number of validation windows held out (at most the number that fit).
        valid_fraction: share of the text, from the end, used for validation.
        min_count: training occurrences a character needs to get its own code.
        held_out: 'all', 'validation' or 'test', the part of the held-out set that
            eval_batch gives (see Task.eval_batch).
    """

    name = "text"
    readout = "all"
    metric_name = "bits per char"
    higher_is_better = False
    UNK = "\ufffd"

    def __init__(
        self,
        seq_len: int = 64,
        eval_size: int = 256,
        valid_fraction: float = 0.1,
        min_count: int = 20,
        held_out: str = "all",
    ):
        self.held_out = _check_part(held_out)
        self.seq_len = _check_int("seq_len", seq_len, 1)
        self.valid_fraction = _check_fraction("valid_fraction", valid_fraction)
        self.min_count = _check_int("min_count", min_count, 1)
        text = _load_text()
        cut = round(len(text) * (1 - self.valid_fraction))
        counts: dict[str, int] = {}
        for ch in text[:cut]:
            counts[ch] = counts.get(ch, 0) + 1
        self.vocab = [self.UNK] + sorted(ch for ch, n in counts.items() if n >= self.min_count)
        self._code = {ch: i for i, ch in enumerate(self.vocab)}
        codes = self.encode(text)
        self.train_codes, self.valid_codes = codes[:cut], codes[cut:]
        self.input_size = self.output_size = len(self.vocab)

        window = self.seq_len + 1
        n_valid_windows = len(self.valid_codes) // window
        if n_valid_windows < 1 or len(self.train_codes) < window:
            raise ValueError(
                invalid(
                    "seq_len",
                    seq_len,
                    f"an integer in [1, "
                    f"{len(self.valid_codes) - 1}], so that a window fits in "
                    "the validation text",
                )
            )
        self.eval_size = _check_int("eval_size", eval_size, 1, n_valid_windows)

    def encode(self, text: str) -> np.ndarray:
        """Character codes (int64) of `text`; characters outside the vocabulary become UNK (0)."""
        return np.array([self._code.get(ch, 0) for ch in text], dtype=np.int64)

    def decode(self, codes: Any) -> str:
        """The text for a sequence of codes (UNK shows as '\\ufffd')."""
        return "".join(self.vocab[int(c)] for c in np.asarray(codes).reshape(-1))

    def _windows(self, codes: np.ndarray, starts: np.ndarray) -> Batch:
        chars = torch.from_numpy(codes[starts[:, None] + np.arange(self.seq_len + 1)])
        return F.one_hot(chars[:, :-1], self.input_size).float(), chars[:, 1:].contiguous()

    def _spaced_windows(self, codes: np.ndarray, count: int) -> Batch:
        """`count` non-overlapping windows, evenly spaced over `codes`."""
        window = self.seq_len + 1
        n_windows = len(codes) // window
        picks = np.linspace(0, n_windows - 1, min(count, n_windows)).round().astype(np.int64)
        return self._windows(codes, picks * window)

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> Batch:
        n = _check_int("batch_size", batch_size, 1)
        starts = _check_rng(rng).integers(0, len(self.train_codes) - self.seq_len, size=n)
        return self._windows(self.train_codes, starts)

    def _make_eval_set(self) -> Batch:
        return self._spaced_windows(self.valid_codes, self.eval_size)

    def train_set(self) -> Batch:
        """`eval_size` fixed, evenly spaced training windows, to compare with the held-out set."""
        return self._spaced_windows(self.train_codes, self.eval_size)

    def metric(self, output: torch.Tensor, target: torch.Tensor) -> float:
        with torch.no_grad():
            return self.loss(output, target).item() / math.log(2)

    def unigram_log_probs(self) -> torch.Tensor:
        """log p(c) of the add-one-smoothed unigram model fitted to the training part."""
        counts = np.bincount(self.train_codes, minlength=len(self.vocab)) + 1
        return torch.as_tensor(np.log(counts / counts.sum()), dtype=torch.float32)

    def baseline(self) -> dict:
        _, target = self.eval_batch()
        logits = self.unigram_log_probs().expand(*target.shape, -1)
        nats = self.loss(logits, target).item()
        return {
            "loss": nats,
            "metric": nats / math.log(2),
            "description": "unigram model: training character frequencies (add-one smoothed)",
        }


TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (AddingTask, CopyTask, DigitsTask, TextTask)
}


def make_task(name: str, **params: Any) -> Task:
    """Build a registered task from its name and keyword parameters (e.g. a parsed config)."""
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(invalid("name", name, "a task name", sorted(TASKS)))
    cls = TASKS[name]
    allowed = list(inspect.signature(cls).parameters)
    unknown = [p for p in params if p not in allowed]
    if unknown:
        raise ValueError(invalid("params", unknown, f"parameters of task {name!r}", allowed))
    return cls(**params)
