"""Train a model on a task with any torch optimizer, and record what happened.

`train` is the one training loop of the project: the book's chapters, the sweep runner and the
command line all go through it, so a number in a chapter and a number from `rnnopt train` are
produced by the same code. `run` builds task, model and optimizer from plain dictionaries (the
form a sweep spec or a command line gives) and calls `train`.

A run that produces a non-finite loss or gradient is not an error: it is stopped and marked
`diverged`, because a sweep over learning rates must survive its divergent members.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

import rnnopt
from rnnopt.checks import SEED_MAX, check_int, check_number, invalid
from rnnopt.optim import make_optimizer
from rnnopt.rnn import SequenceModel
from rnnopt.tasks import Task, make_task

__all__ = ["History", "train", "run", "build_model", "resolve_device"]


@dataclass
class History:
    """Everything a run measured, step by step.

    `loss`, `grad_norm` and `step_time` have one entry per `log_every` optimizer steps: the mean
    over that block of steps (with the default `log_every=1`, one entry per step; the last block
    of a run may be shorter). `grad_norm` is the global L2 norm of the gradient *before*
    clipping. `eval_step`, `eval_loss` and `eval_metric` are measured on the task's fixed
    held-out set at step 0, every `eval_every` steps and after the last step. `step_time` is
    wall-clock time and the only field that differs between two runs of the same configuration.
    `stopped_early` is True when the run ended at `stop_at_metric` before its step budget.
    """

    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    step_time: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    eval_metric: list[float] = field(default_factory=list)
    diverged: bool = False
    diverged_step: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    log_every: int = 1
    step_count: int | None = None  # optimizer steps taken (None in records older than it)
    stopped_early: bool = False
    clipped_steps: int = 0  # steps whose gradient norm exceeded clip_grad_norm and was clipped

    @property
    def steps_done(self) -> int:
        return len(self.loss) if self.step_count is None else self.step_count

    @property
    def final_loss(self) -> float:
        """Held-out loss after the last step (NaN when the run diverged)."""
        if self.diverged:
            return math.nan
        return self.eval_loss[-1] if self.eval_loss else math.nan

    @property
    def final_metric(self) -> float:
        if self.diverged:
            return math.nan
        return self.eval_metric[-1] if self.eval_metric else math.nan

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(**data)


def resolve_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device, refusing a CUDA device this machine does not have."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(invalid("device", device, "a device", ("cpu", "cuda"))) from err
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(invalid("device", device, "a supported device", ("cpu", "cuda")))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            invalid(
                "device", device, "a device of this machine (torch sees no CUDA GPU here)", ("cpu",)
            )
        )
    return dev


def check_positive_or_none(name: str, value: Any) -> float | None:
    return check_number(name, value, low=0, low_open=True, allow_none=True)


def check_train_option(key: str, value: Any) -> Any:
    """The check `train` makes on one of its options (TRAIN_KEYS), without training; the value
    in plain Python form (numpy scalars become Python numbers)."""
    if key in ("steps", "batch_size", "log_every"):
        return check_int(key, value, 1)
    if key == "eval_every":
        return None if value is None else check_int(key, value, 1)
    if key == "clip_grad_norm":
        return check_positive_or_none(key, value)
    if key == "stop_at_metric":
        return check_number(key, value, allow_none=True)
    if key == "diverge_factor":
        return check_number(key, value, low=1, low_open=True, allow_none=True)
    raise ValueError(invalid("train option", key, "a train option", TRAIN_KEYS))


def train(
    model: torch.nn.Module,
    task: Task,
    optimizer: torch.optim.Optimizer,
    *,
    steps: int,
    batch_size: int = 32,
    clip_grad_norm: float | None = None,
    eval_every: int | None = None,
    log_every: int = 1,
    stop_at_metric: float | None = None,
    diverge_factor: float | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    threads: int | None = 1,
    progress: bool = False,
) -> History:
    """Train `model` on `task` with `optimizer` for `steps` steps; return its `History`.

    `optimizer` may be any `torch.optim.Optimizer` (rnnopt's or torch's) over the model's
    parameters. The training batches come from `np.random.default_rng(seed)`, so the data
    stream depends on `seed` alone; the model's initial weights are whatever the caller built
    (`run` seeds them). `clip_grad_norm` rescales the whole gradient to at most that L2 norm
    (Pascanu et al., 2013). `threads` fixes torch's intra-op thread count (recorded in the
    history; `None` leaves it alone): a run is bit-reproducible only at a fixed count.

    `log_every` > 1 keeps the per-step records as means over blocks of that many steps (long
    runs stay small on disk; the same configuration still gives the same numbers). With
    `stop_at_metric`, the run ends at the first evaluation whose held-out metric reaches it
    (at or below it when lower is better, at or above it otherwise): a run that has met its
    success criterion need not spend the rest of its budget. With `diverge_factor`, a run whose
    held-out loss at an evaluation exceeds that many times its loss at step 0, while its metric
    is no better than the task's trivial predictor's, is stopped and counted as diverged, as a
    non-finite loss is: it has blown up, it scores as the trivial predictor already, and the
    rest of its budget would only confirm it.
    """
    steps = check_train_option("steps", steps)
    batch_size = check_train_option("batch_size", batch_size)
    eval_every = check_train_option("eval_every", eval_every)
    clip_grad_norm = check_train_option("clip_grad_norm", clip_grad_norm)
    log_every = check_train_option("log_every", log_every)
    stop_at_metric = check_train_option("stop_at_metric", stop_at_metric)
    diverge_factor = check_train_option("diverge_factor", diverge_factor)
    seed = check_int("seed", seed, 0, SEED_MAX)
    if threads is not None:
        threads = check_int("threads", threads, 1)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        # Nothing to train: every step would be a no-op and the run would look like a result.
        raise ValueError(
            invalid(
                "model",
                type(model).__name__,
                "a model with at least one trainable parameter (requires_grad=True)",
            )
        )
    if threads is not None:
        torch.set_num_threads(threads)
    dev = resolve_device(device)

    model.to(dev)
    dtype = params[0].dtype  # tasks make float32 data; a float64 model gets float64 data

    def to_model(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(t.to(dev, dtype) if t.is_floating_point() else t.to(dev) for t in batch)

    rng = np.random.default_rng(seed)
    eval_x, eval_y = to_model(task.eval_batch())
    max_norm = math.inf if clip_grad_norm is None else clip_grad_norm
    history = History(
        log_every=log_every,
        step_count=0,
        meta={
            "seed": seed,
            "threads": torch.get_num_threads(),
            "device": str(dev),
            "torch": torch.__version__,
            "rnnopt": rnnopt.__version__,
            "optimizer": type(optimizer).__name__,
            "task": task.config(),
        },
    )

    def evaluate(step: int) -> None:
        model.eval()
        with torch.no_grad():
            out = model(eval_x)
            history.eval_step.append(step)
            history.eval_loss.append(float(task.loss(out, eval_y)))
            history.eval_metric.append(float(task.metric(out, eval_y)))
        model.train()

    block: list[tuple[float, float, float]] = []  # (loss, grad_norm, step_time) not yet logged

    def flush() -> None:
        if block:
            columns = zip(*block, strict=True)
            for name, values in zip(("loss", "grad_norm", "step_time"), columns, strict=True):
                getattr(history, name).append(
                    values[0] if len(values) == 1 else math.fsum(values) / len(values)
                )
            block.clear()

    def stop(step: int) -> History:
        flush()
        history.diverged, history.diverged_step = True, step
        return history

    def reached(metric: float) -> bool:
        if stop_at_metric is None:
            return False
        return metric >= stop_at_metric if task.higher_is_better else metric <= stop_at_metric

    # The trivial predictor's held-out metric, needed only to recognise a blown-up run.
    trivial = None if diverge_factor is None else float(task.baseline()["metric"])

    def blown_up(loss: float, metric: float) -> bool:
        # Both: the loss far above its start, and the metric no better than the trivial
        # predictor's, so the run's relative error is already the cap, 1 (protocol.run_error).
        if diverge_factor is None or not loss > diverge_factor * history.eval_loss[0]:
            return False
        return metric <= trivial if task.higher_is_better else metric >= trivial

    bar = None
    if progress:
        from tqdm import tqdm  # plain text bar (tqdm.auto needs ipywidgets in a kernel)

        bar = tqdm(total=steps, desc=f"{type(optimizer).__name__} on {task.name}", unit="step")

    evaluate(0)
    try:
        for step in range(1, steps + 1):
            start = time.perf_counter()
            x, y = to_model(task.train_batch(batch_size, rng))
            optimizer.zero_grad(set_to_none=True)
            loss = task.loss(model(x), y)
            if not torch.isfinite(loss):
                return stop(step)
            loss.backward()
            # clip_grad_norm_ returns the norm *before* clipping; max_norm=inf only measures it.
            grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
            if not torch.isfinite(grad_norm):
                return stop(step)
            optimizer.step()
            block.append((loss.item(), float(grad_norm), time.perf_counter() - start))
            history.clipped_steps += bool(grad_norm > max_norm)
            history.step_count = step
            if len(block) == log_every:
                flush()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4g}", refresh=False)
            if step == steps or (eval_every is not None and step % eval_every == 0):
                evaluate(step)
                if not math.isfinite(history.eval_loss[-1]) or blown_up(
                    history.eval_loss[-1], history.eval_metric[-1]
                ):
                    return stop(step)
                if step < steps and reached(history.eval_metric[-1]):
                    flush()
                    history.stopped_early = True
                    return history
        flush()
    finally:
        if bar is not None:
            bar.close()
    return history


def build_model(task: Task, hidden_size: int = 64, **model: Any) -> SequenceModel:
    """A `SequenceModel` sized for `task` (input, output and readout come from the task).

    An unknown key is refused with the list of valid ones (SequenceModel's own parameters).
    """
    valid = [
        p
        for p in inspect.signature(SequenceModel).parameters
        if p not in ("input_size", "output_size", "readout")
    ]
    unknown = [k for k in model if k not in valid]
    if unknown:
        raise TypeError(invalid("model parameters", unknown, "parameters of SequenceModel", valid))
    return SequenceModel(
        task.input_size, hidden_size, task.output_size, readout=task.readout, **model
    )


TRAIN_KEYS = (
    "steps",
    "batch_size",
    "clip_grad_norm",
    "eval_every",
    "log_every",
    "stop_at_metric",
    "diverge_factor",
)


def run(
    *,
    task: dict[str, Any],
    optimizer: dict[str, Any],
    model: dict[str, Any] | None = None,
    train_options: dict[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
    threads: int | None = 1,
    progress: bool = False,
) -> History:
    """One run from plain dictionaries, e.g.::

        run(task={"name": "adding", "seq_len": 10},
            model={"hidden_size": 16},
            optimizer={"name": "adam", "lr": 1e-2},
            train_options={"steps": 100, "batch_size": 16})

    `seed` seeds both the model's initial weights and the training data stream, so the same
    dictionaries and seed give the same history, bit for bit, at the same thread count.
    """
    task_options = dict(task)
    task_obj = make_task(task_options.pop("name", None), **task_options)
    train_options = dict(train_options or {})
    unknown = sorted(set(train_options) - set(TRAIN_KEYS))
    if unknown:
        raise ValueError(invalid("train options", unknown, "train options", TRAIN_KEYS))
    if "steps" not in train_options:
        raise ValueError(
            invalid(
                "train_options",
                train_options,
                "train options that include 'steps' (it has no default)",
                TRAIN_KEYS,
            )
        )
    seed = check_int("seed", seed, 0, SEED_MAX)
    if threads is not None:
        threads = check_int("threads", threads, 1)
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    net = build_model(task_obj, **dict(model or {}))
    optimizer_options = dict(optimizer)
    opt = make_optimizer(optimizer_options.pop("name", None), net.parameters(), **optimizer_options)
    history = train(
        net,
        task_obj,
        opt,
        seed=seed,
        device=device,
        threads=threads,
        progress=progress,
        **train_options,
    )
    history.meta.update(
        model=dict(model or {}), optimizer_options=dict(optimizer), train=train_options
    )
    return history
