"""The figures and tables of the chapters on training recurrent networks, split from
:mod:`rnnopt.figures` (which still exports every figure named here):

- :func:`effective_steps` / :func:`plot_effective_steps`: γ/(√v̂ + ε) per weight during RNN
  training, split into input weights, recurrent weights and readout;
- :func:`hidden_grads_during_training` / :func:`plot_hidden_grads_during_training`:
  ‖∂L/∂h_t‖ at several points of training, for each optimizer;
- :func:`cliff_slice`: a one-unit recurrent network whose loss has a cliff (Pascanu et al.,
  2013), with gradient descent's iterates with and without clipping;
- the parameter checks and tables of "Training recurrent networks", its live run's summary
  (:func:`adding_run_summary`) and the plateau atlas read from the stored tier
  (:func:`plateau_atlas`, :func:`atlas_table`, :func:`atlas_figure`); the checks, sweep
  tables and clipping figure of "Beyond the four" (:func:`stayed_above_baseline`). Tables
  round every number they show, so that re-executing a chapter gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnopt.checks import (
    SEED_MAX,
    check_choice,
    check_int,
    check_list,
    check_number,
    check_seeds,
    invalid,
)
from rnnopt.optim import OPTIMIZERS, make_optimizer
from rnnopt.tasks import Task
from rnnopt.theory import check_betas, check_values
from rnnopt.train import History, build_model

__all__ = [
    "WEIGHT_GROUPS",
    "effective_steps",
    "plot_effective_steps",
    "hidden_grads_during_training",
    "plot_hidden_grads_during_training",
    "cliff_loss",
    "cliff_slice",
    "TRAINING_PARAMETERS",
    "check_training_parameters",
    "growth_table",
    "baseline_table",
    "first_run_table",
    "AddingRun",
    "adding_run_summary",
    "ATLAS_STUDIES",
    "ATLAS_LONG",
    "AtlasRow",
    "plateau_atlas",
    "atlas_table",
    "atlas_figure",
    "atlas_sentences",
    "atlas_pending_sentence",
    "atlas_look",
    "atlas_caption",
    "orthogonal_sentence",
    "BEYOND_PARAMETERS",
    "check_beyond_parameters",
    "adding_spec",
    "sweep_table",
    "count_diverged",
    "clipping_figure",
    "stayed_above_baseline",
    "l2_momentum_sentence",
    "adam_decay_sentence",
]


def _figure(height: float, ncols: int = 1, nrows: int = 1, **kwargs: Any):
    """A figure as wide as the book's column, ``height`` inches tall, with a 2-D array of axes."""
    import matplotlib.pyplot as plt

    from rnnopt.plots import COLUMN_INCHES

    return plt.subplots(nrows, ncols, figsize=(COLUMN_INCHES, height), squeeze=False, **kwargs)


def _markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    from rnnopt.plots import markdown_table

    return markdown_table(headers, rows)


# --- during RNN training --------------------------------------------------------------------

WEIGHT_GROUPS = {
    "input weights W_ih": "core.weight_ih",
    "recurrent weights W_hh": "core.weight_hh",
    "readout": "head.weight",
}


def _train_steps(
    task: Task,
    optimizer: str,
    lr: float,
    steps: int,
    *,
    hidden_size: int,
    batch_size: int,
    clip_grad_norm: float | None,
    seed: int,
    every: int,
    probe,
    track_hidden_grads: bool = False,
    **hyper: Any,
) -> dict[int, Any]:
    """Train a seeded Elman model as rnnopt.train does (same batches from default_rng(seed),
    same clipping) and call ``probe(model, opt)`` after the backward pass at step 0 and every
    ``every`` steps; returns {step: probe's result}."""
    torch.manual_seed(seed)
    model = build_model(task, hidden_size=hidden_size, core="elman")
    model.core.track_hidden_grads = track_hidden_grads
    opt = make_optimizer(optimizer, model.parameters(), lr=lr, **hyper)
    rng = np.random.default_rng(seed)
    seen = {}
    for step in range(steps + 1):
        inputs, target = task.train_batch(batch_size, rng)
        opt.zero_grad()
        task.loss(model(inputs), target).backward()
        if step % every == 0:
            seen[step] = probe(model, opt)
        if step == steps:
            break
        if clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        opt.step()
    return seen


def effective_steps(
    task: Task,
    optimizer: str,
    lr: float,
    steps: int = 300,
    *,
    hidden_size: int = 32,
    batch_size: int = 32,
    clip_grad_norm: float | None = 1.0,
    seed: int = 0,
    every: int = 10,
    **hyper: Any,
) -> dict[str, np.ndarray]:
    """The effective learning rate γ/(√v̂ + ε) of every weight during training with RMSprop or
    Adam: the step per unit of gradient (for Adam, of its average m̂), with v̂ = v for RMSprop and
    v/(1 − β₂^t) for Adam; summarised per group of WEIGHT_GROUPS as the 10th, 50th and 90th
    percentile over the group's weights at each probed step; also 'step'."""
    if optimizer not in ("rmsprop", "adam", "adamw"):
        raise ValueError(f"optimizer={optimizer!r} has no per-weight step; valid: rmsprop, adam")

    def probe(model, opt):
        result = {}
        named = dict(model.named_parameters())
        for group, prefix in WEIGHT_GROUPS.items():
            values = []
            for name, param in named.items():
                state = opt.state.get(param)
                if not name.startswith(prefix) or not state:
                    continue
                g = opt.param_groups[0]
                if optimizer == "rmsprop":
                    v = state["square_avg"]
                else:
                    v = state["exp_avg_sq"] / (1 - g["betas"][1] ** state["step"].item())
                values.append((g["lr"] / (v.sqrt() + g["eps"])).reshape(-1))
            if values:
                result[group] = np.percentile(torch.cat(values).numpy(), [10, 50, 90])
        return result

    sizes = {"hidden_size": hidden_size, "batch_size": batch_size, "clip_grad_norm": clip_grad_norm}
    seen = _train_steps(
        task, optimizer, lr, steps, **sizes, seed=seed, every=every, probe=probe, **hyper
    )
    seen = {s: r for s, r in seen.items() if r}  # step 0: no state yet
    out = {"step": np.array(sorted(seen))}
    for group in WEIGHT_GROUPS:
        out[group] = np.array([seen[s][group] for s in out["step"]])
    return out


def plot_effective_steps(results: Mapping[str, Mapping[str, np.ndarray]], lrs: Mapping[str, float]):
    """One panel per optimizer in ``results`` (from :func:`effective_steps`): the median
    effective learning rate of each weight group, with its 10–90 % band over the group's weights,
    and the learning rate γ as a dashed line."""
    from rnnopt.plots import label

    fig, axes = _figure(3.0, ncols=len(results), sharey=True)
    colours = dict(zip(WEIGHT_GROUPS, ["#1f77b4", "#d62728", "#2ca02c"], strict=True))
    for ax, (name, result) in zip(axes[0], results.items(), strict=True):
        for group in WEIGHT_GROUPS:
            low, mid, high = result[group].T
            ax.plot(result["step"], mid, color=colours[group], label=group)
            ax.fill_between(result["step"], low, high, color=colours[group], alpha=0.2, lw=0)
        ax.axhline(lrs[name], color="black", ls="--", lw=1, label="learning rate γ")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_title(f"{label(name)}, γ = {lrs[name]:g}")
    axes[0, 0].set_ylabel("effective learning rate γ / (√v̂ + ε)")
    axes[0, 0].legend(fontsize=8)
    return fig


def hidden_grads_during_training(
    task: Task,
    optimizers: Mapping[str, float],
    steps: int = 300,
    *,
    checkpoints: int = 4,
    hidden_size: int = 32,
    batch_size: int = 32,
    clip_grad_norm: float | None = 1.0,
    seeds: Sequence[int] = (0, 1, 2),
) -> dict[str, Any]:
    """‖∂L/∂h_t‖ for every step t of the sequence at ``checkpoints`` + 1 evenly spaced points of
    training (step 0 included), for each optimizer (name → learning rate) and seed; returns
    {"steps": probed steps, name: array (seeds, checkpoints + 1, T)}."""
    every = max(steps // checkpoints, 1)

    def probe(model, opt):
        return model.core.hidden_grad_norms[0].detach().double().numpy().copy()

    out: dict[str, Any] = {}
    sizes = {"hidden_size": hidden_size, "batch_size": batch_size, "clip_grad_norm": clip_grad_norm}
    for name, lr in optimizers.items():
        runs = []
        for seed in seeds:
            options = {"seed": seed, "every": every, "probe": probe, "track_hidden_grads": True}
            seen = _train_steps(task, name, lr, steps, **sizes, **options)
            out["steps"] = np.array(sorted(seen))
            runs.append(np.array([seen[s] for s in out["steps"]]))
        out[name] = np.array(runs)
    return out


def plot_hidden_grads_during_training(result: Mapping[str, Any], lrs: Mapping[str, float]):
    """A 2×2 grid, one panel per optimizer: ‖∂L/∂h_t‖ against t, geometric mean over seeds and
    its min–max band, one sequential colour per point of training (light: early, dark: late)."""
    from rnnopt.plots import label, sequential_colors

    names = [n for n in result if n != "steps"]
    nrows = math.ceil(len(names) / 2)
    fig, axes = _figure(2.5 * nrows + 0.3, ncols=2, nrows=nrows, sharex=True, sharey=True)
    colours = sequential_colors(len(result["steps"]))
    for ax, name in zip(axes.flat, names, strict=False):  # a 2x2 grid may have a spare panel
        runs = np.maximum(result[name], 1e-300)  # (seeds, checkpoints, T)
        t = np.arange(runs.shape[-1])
        for i, (step, colour) in enumerate(zip(result["steps"], colours, strict=True)):
            curves = runs[:, i, :]
            mean = np.exp(np.log(curves).mean(axis=0))
            ax.plot(t, mean, color=colour, label=f"step {step}")
            ax.fill_between(
                t, curves.min(axis=0), curves.max(axis=0), color=colour, alpha=0.2, lw=0
            )
        ax.set_yscale("log")
        ax.set_title(f"{label(name)}, lr {lrs[name]:g}", fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel("time step t of the sequence")
    for ax in axes[:, 0]:
        ax.set_ylabel("‖∂L/∂h$_t$‖")
    axes[0, 0].legend(fontsize=7.5, loc="upper left")
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    return fig


# --- the exploding-gradient cliff -------------------------------------------------------------


def cliff_loss(
    w: torch.Tensor | float,
    *,
    b: float = -2.5,
    steps: int = 30,
    start: float = 0.5,
    target: float = 0.7,
) -> torch.Tensor:
    """Pascanu et al.'s one-unit recurrent network x_t = w·σ(x_{t−1}) + b, run for ``steps``
    steps from x_0 = ``start``; the loss is (x_T − target)². As w crosses the value where the
    map gains a second fixed point, x_T jumps and the loss has a near-vertical wall."""
    w = torch.as_tensor(w, dtype=torch.float64)
    x = torch.full_like(w, start)
    for _ in range(steps):
        x = w * torch.sigmoid(x) + b
    return (x - target) ** 2


def cliff_slice(
    w0: float = 4.0, lr: float = 0.05, iterations: int = 20, clip: float = 1.0, **shape: Any
):
    """The loss along w (log scale), with gradient descent's iterates from ``w0``: left without
    clipping, right with the gradient clipped to norm ``clip``. From the default start the
    unclipped iterates walk down to the wall, where the gradient is about a thousand times larger
    than on the plateau, and one step throws them far away; the clipped ones cross it.
    Returns (figure, {"plain": ws, "clipped": ws})."""
    ws = torch.linspace(1.0, 8.0, 1401, dtype=torch.float64)
    losses = cliff_loss(ws, **shape).numpy()
    paths = {}
    for name, limit in (("plain", None), ("clipped", clip)):
        w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
        visited = [w.item()]
        for _ in range(iterations):
            w.grad = None
            cliff_loss(w, **shape).backward()
            grad = w.grad.item()
            if limit is not None and abs(grad) > limit:
                grad = math.copysign(limit, grad)
            with torch.no_grad():
                w -= lr * grad
            visited.append(w.item())
            if not math.isfinite(w.item()):
                break
        paths[name] = np.array(visited)
    fig, axes = _figure(3.0, ncols=2, sharey=True)
    for ax, (name, visited) in zip(axes[0], paths.items(), strict=True):
        ax.plot(ws.numpy(), losses, color="0.45", lw=1.2, label="loss along w")
        shown = np.isfinite(visited) & (visited >= 1) & (visited <= 8)
        inside, colour = visited[shown], "#d62728" if name == "plain" else "#1f77b4"
        walk = cliff_loss(torch.tensor(inside), **shape).numpy()
        ax.plot(inside, walk, "o-", color=colour, ms=4, lw=1, label="gradient descent")
        start = float(cliff_loss(visited[0], **shape))
        ax.plot(visited[0], start, "o", color="black", ms=6, label="start")
        outside = np.flatnonzero(~shown)
        if len(outside):
            first = int(outside[0])
            where = f"w = {visited[first]:.3g}" if math.isfinite(visited[first]) else "overflow"
            ax.annotate(
                f"step {first}: thrown to\n{where}, off the axis",
                xy=(7.9, 3.0),
                xytext=(5.3, 0.02),
                fontsize=8.5,
                ha="left",
                arrowprops={"arrowstyle": "->", "color": "#d62728"},
            )
        ax.set_yscale("log")
        ax.set_xlim(1, 8)
        ax.set_xlabel("recurrent weight w")
        ax.set_title("no clipping" if name == "plain" else f"gradient clipped to {clip:g}")
        ax.legend(fontsize=8, loc="lower left")
    axes[0, 0].set_ylabel("loss (x$_T$ − 0.7)$^2$")
    return fig, paths


# --- the chapter "Training recurrent networks" ----------------------------------------------


_POSITIVE = partial(check_number, low=0, low_open=True)
TRAINING_PARAMETERS = {  # the rule of each parameter of "Training recurrent networks"
    "threads": partial(check_int, minimum=1),
    "seed": partial(check_int, minimum=0, maximum=SEED_MAX),
    "hidden_size": partial(check_int, minimum=1),
    "radii": partial(check_list, item=_POSITIVE),
    # the adding problem puts one marker in each half: at least two steps
    "gradient_seq_len": partial(check_int, minimum=2),
    "gradient_seeds": partial(check_int, minimum=1),
    "optimizer": partial(check_choice, choices=OPTIMIZERS),
    "lr": _POSITIVE,
    "short_seq_len": partial(check_int, minimum=2),
    "long_seq_len": partial(check_int, minimum=3),  # and > short_seq_len
    "train_steps": partial(check_int, minimum=1),
    "batch_size": partial(check_int, minimum=1),
    "clip_grad_norm": partial(check_number, low=0, low_open=True, allow_none=True),
    "eval_every": partial(check_int, minimum=1),
}


def check_training_parameters(**values: Any) -> None:
    """The parameters of "Training recurrent networks", by the rules of
    :data:`TRAINING_PARAMETERS`: ValueError naming the first bad one, its value and what is
    valid (the format of :mod:`rnnopt.checks`)."""
    check_values(TRAINING_PARAMETERS, values)
    check_int("long_seq_len", values["long_seq_len"], values["short_seq_len"] + 1)


def growth_table(
    norms: Mapping[tuple[str, float, int], Any],
    task: Task,
    radii: Sequence[float],
    seeds: Sequence[int],
    hidden_size: int,
) -> tuple[str, list[bool]]:
    """The table of "Why gradients vanish or explode": for each nonlinearity and spectral radius,
    σ_max(W_hh), the factor per step back (mean, min–max over ``seeds``), ‖δ_0‖ / ‖δ_{T−1}‖
    (geometric mean) and a verdict, from ``norms[nonlinearity, radius, seed]``, the output of
    :func:`rnnopt.diagnostics.hidden_grad_norms`. Also returns, per network, whether its factor
    is within the bound σ_max."""
    from rnnopt.diagnostics import growth_rate, largest_singular_value, scaled_elman_rnn
    from rnnopt.rnn import NONLINEARITIES

    rows, within_bound = [], []
    for nonlinearity in NONLINEARITIES:
        for radius in radii:
            curves = [norms[nonlinearity, radius, s] for s in seeds]
            rates = [growth_rate(curve) for curve in curves]
            sigmas = [  # the W_hh that hidden_grad_norms measured
                largest_singular_value(
                    scaled_elman_rnn(
                        task.input_size, hidden_size, radius, nonlinearity=nonlinearity, seed=s
                    ).weight_hh_l0
                )
                for s in seeds
            ]
            within_bound += [rate <= sigma for rate, sigma in zip(rates, sigmas, strict=True)]
            whole = np.exp(np.mean([np.log(c[0].item() / c[-1].item()) for c in curves]))
            verdict = "vanishes" if max(rates) < 1 else "explodes" if min(rates) > 1 else "mixed"
            rows.append(
                [nonlinearity, f"{radius:g}", f"{np.mean(sigmas):.3f}", f"{np.mean(rates):.3f}"]
                + [f"{min(rates):.3f} – {max(rates):.3f}", f"{whole:.2e}", verdict]
            )
    headers = ["φ", "ρ(W_hh)", "σ_max(W_hh)", "factor per step (mean)"]
    headers += [f"min – max of {len(seeds)}", f"‖δ_0‖ / ‖δ_{task.seq_len - 1}‖", "gradient"]
    return _markdown(headers, rows), within_bound


def orthogonal_sentence(curves: Sequence[Any], seq_len: int, hidden_size: int) -> str:
    """What the evidence tier's own network does to the gradient at initialisation: tanh,
    orthogonal W_hh (ρ = σ_max = 1), from :func:`rnnopt.diagnostics.hidden_grad_norms` curves
    with ``orthogonal=True``, one per seed."""
    from rnnopt.diagnostics import growth_rate

    rates = [growth_rate(curve) for curve in curves]
    whole = np.exp(np.mean([np.log(c[0].item() / c[-1].item()) for c in curves]))
    verdict = "vanishes" if max(rates) < 1 else "explodes" if min(rates) > 1 else "is mixed"
    return (
        f"A network like the evidence tier's, {hidden_size} tanh units with an orthogonal W_hh "
        f"(every singular value 1), at initialisation and T = {seq_len}: factor per step "
        f"{np.mean(rates):.3f} ({min(rates):.3f} – {max(rates):.3f} over {len(curves)} "
        f"networks), ‖δ_0‖ / ‖δ_{seq_len - 1}‖ = {whole:.2e}: the gradient {verdict} there "
        "before any training."
    )


def baseline_table(tasks: Mapping[str, Task]) -> str:
    """Each task's length, loss and metric, and the loss and metric of its trivial baseline."""
    rows = []
    for name, task in tasks.items():
        base = task.baseline()
        rows.append(
            [name, task.seq_len, task.loss_name, f"{base['loss']:.4g}", task.metric_name]
            + [f"{base['metric']:.4g}", base["description"]]
        )
    headers = ["task", "steps", "loss", "baseline loss", "metric", "baseline metric"]
    return _markdown(headers + ["the baseline"], rows)


def first_run_table(
    histories: Mapping[int, History],
    baselines: Mapping[int, float],
    clip_grad_norm: float | None,
    steps: int,
) -> str:
    """One row per sequence length T: baseline MSE, final held-out MSE, their ratio, the share
    of steps whose gradient was clipped, and whether the run learned the task."""
    rows = []
    for seq_len, history in histories.items():
        ratio = history.final_loss / baselines[seq_len]
        verdict = "learned: below half the baseline" if ratio < 0.5 else "partly learned"
        verdict = "no better than the baseline" if ratio > 0.9 else verdict
        norms = np.asarray(history.grad_norm)
        clipped = np.mean(norms > clip_grad_norm) if clip_grad_norm else 0.0
        rows.append(
            [seq_len, f"{baselines[seq_len]:.3g}", f"{history.final_loss:.3g}", f"{ratio:#.3g}"]
            + [f"{100 * clipped:.0f} %", verdict]
        )
    headers = ["T", "baseline MSE", f"held-out MSE after {steps} steps", "ratio"]
    return _markdown(headers + ["steps clipped", "verdict"], rows)


@dataclass(frozen=True)
class AddingRun:
    """What one adding-problem run shows, read from its held-out evaluations: the first step
    at which it met the task's success criterion (None: never), the first step below half the
    baseline (None: never), and the highest held-out MSE after step 0, with its step."""

    success_step: int | None
    below_half_step: int | None
    peak_loss: float
    peak_step: int
    baseline: float


def adding_run_summary(history: History, baseline: float) -> AddingRun:
    """:class:`AddingRun` of ``history`` (success: rnnopt.protocol.SUCCESS["adding"])."""
    from rnnopt import protocol

    steps, losses = np.asarray(history.eval_step), np.asarray(history.eval_loss, dtype=float)
    later = steps > 0
    below = steps[losses < 0.5 * baseline]
    peak = int(np.argmax(np.where(later, losses, -np.inf)))
    return AddingRun(
        protocol.success_step(history, protocol.SUCCESS["adding"]),
        int(below[0]) if below.size else None,
        float(losses[peak]),
        int(steps[peak]),
        baseline,
    )


# --- the plateau atlas: the stored adding-problem ladder (data/evidence/adding-elman-T*) -------

# The ladder (one budget) and, beside it, T = 100 at three times that budget (amendment 15).
ATLAS_STUDIES = ("adding-elman-T50", "adding-elman-T100", "adding-elman-T200")
ATLAS_LONG = ("adding-elman-T100-long",)
_FOUR = ("sgd", "momentum", "rmsprop", "adam")


@dataclass(frozen=True)
class AtlasRow:
    """One (sequence length, optimizer) of the atlas, over its evaluation seeds at its tuned
    rate: how many succeeded within the budget (with the 95 % Wilson interval of the fraction),
    the Kaplan–Meier median steps to success (NaN when fewer than half succeeded), and the
    fewest and most steps among the seeds that succeeded (NaN when none did); and how many left
    the plateau — a held-out MSE below half the trivial predictor's, the first run's definition
    on the same page — with the Kaplan–Meier median steps to that (NaN when fewer than half)."""

    study: str
    seq_len: int
    optimizer: str
    lr: float
    budget: int
    seeds: int
    successes: int
    low: float
    high: float
    median_steps: float
    first_steps: float
    last_steps: float
    left: int = 0
    left_median: float = math.nan
    # where the rate came from, when not from a search that learned: "flat: nothing learned"
    # (rnnopt.protocol's flat grid), or "tuned on STUDY" (amendment 15)
    rate_note: str = ""
    median_interval: tuple[float, float] = (math.inf, math.inf)  # of median_steps, 95 %

    @property
    def fraction(self) -> float:
        return self.successes / self.seeds


def plateau_atlas(
    studies: Sequence[str] = ATLAS_STUDIES + ATLAS_LONG,
    optimizers: Sequence[str] = _FOUR,
    root: str | Path | None = None,
    studies_dir: str | Path | None = None,
) -> tuple[list[AtlasRow], list[str]]:
    """The atlas rows of every stored (study, optimizer), and what is still missing (the
    message of each rnnopt.tier.Pending) for the others: "STUDY/OPTIMIZER: not run: WHY" for a
    pair the tier's rules leave out, whether or not the tier has written its skipped.json yet.
    ``root``/``studies_dir``: another tier (default: data/evidence/ and data/specs/evidence/)."""
    from rnnopt import evidence, protocol, tier

    studies_dir = Path(studies_dir or evidence.STUDIES_DIR)
    out_root = Path(root or evidence.EVIDENCE_DIR)
    rows, pending = [], []
    for study in studies:
        spec = evidence.load_study(studies_dir / f"{study}.yaml")
        budget, criterion = int(spec.train["steps"]), tier.criterion_of(study, studies_dir)
        plateau = protocol.Criterion(0.5 * evidence.task_scale(spec, "eval")[0], False)
        for name in optimizers:
            try:
                record = tier.tuned_record(study, name, root)
                lr = float(record["lr"])
                histories = tier.eval_histories(study, name, root)
            except tier.NotRun as not_run:
                pending.append(str(not_run))
                continue
            except tier.Pending as missing:
                labels = {v.label for v in spec.variants}
                if name in labels and tier.ruled_out(spec, name, out_root, studies_dir):
                    why = evidence.reason_not_to_run(spec, name, out_root, studies_dir)
                    pending.append(f"{study}/{name}: {why}")
                else:
                    pending.append(str(missing))
                continue
            steps, succeeded = protocol.steps_to_success(histories, criterion, budget)
            leave, left = protocol.steps_to_success(histories, plateau, budget)
            won = steps[succeeded]
            low, high = protocol.wilson_interval(int(succeeded.sum()), len(steps))
            rows.append(
                AtlasRow(
                    study,
                    int(spec.task["seq_len"]),
                    name,
                    lr,
                    budget,
                    len(steps),
                    int(succeeded.sum()),
                    low,
                    high,
                    protocol.kaplan_meier_median(steps, succeeded),
                    float(won.min()) if won.size else math.nan,
                    float(won.max()) if won.size else math.nan,
                    int(left.sum()),
                    protocol.kaplan_meier_median(leave, left),
                    f"tuned on {record['rate_from']}"
                    if record.get("rate_from")
                    else "flat: nothing learned"
                    if record.get("edge") == "flat"
                    else "",
                    protocol.kaplan_meier_median_interval(steps, succeeded),
                )
            )
    return rows, pending


def _median(row: AtlasRow) -> str:
    from rnnopt.plots import steps_with_interval

    if math.isnan(row.median_steps):
        return _steps(row.median_steps, row.budget)
    return steps_with_interval(row.median_steps, row.median_interval)


def _steps(value: float, budget: int) -> str:
    return f"not reached (> {budget:,})" if math.isnan(value) else f"{value:,.0f}"


def atlas_table(rows: Sequence[AtlasRow]) -> str:
    """The atlas as a table: one row per (T, optimizer), numbers rounded for stable output."""
    from rnnopt.plots import label

    body = [
        [r.seq_len, f"{r.budget:,}", label(r.optimizer), _rate(r)]
        + [f"{r.left}/{r.seeds}", _steps(r.left_median, r.budget), f"{r.successes}/{r.seeds}"]
        + [f"{r.low:.2f}–{r.high:.2f}", _median(r)]
        + ["—" if not r.successes else f"{r.first_steps:,.0f}–{r.last_steps:,.0f}"]
        for r in sorted(rows, key=lambda r: (r.budget, r.seq_len, _FOUR.index(r.optimizer)))
    ]
    headers = ["T", "budget (steps)", "optimizer", "lr", "left the plateau"]
    headers += ["median steps to leave it", "succeeded", "95 % interval"]
    return _markdown(headers + ["median steps to success [95 % CI]", "range (successes)"], body)


def _rate(row: AtlasRow) -> str:
    return f"{row.lr:.3g}" + (f" ({row.rate_note})" if row.rate_note else "")


def atlas_figure(rows: Sequence[AtlasRow]):
    """Left: success fraction against T per optimizer, with its 95 % Wilson interval. Right:
    the Kaplan–Meier median steps to success against T, the bar spanning the steps of the seeds
    that succeeded; a median not reached (fewer than half succeeded) is drawn as ▲ at the
    budget. The ladder's rungs are joined by lines; a rung at another budget (ATLAS_LONG) is
    drawn as open markers, unjoined."""
    from matplotlib.ticker import NullLocator

    from rnnopt.plots import color, label

    fig, axes = _figure(3.0, ncols=2)
    left, right = axes[0]
    names = [n for n in _FOUR if any(r.optimizer == n for r in rows)]
    budgets = sorted({r.budget for r in rows if r.study not in ATLAS_LONG})
    for k, name in enumerate(names):
        shift = 1 + 0.03 * (k - (len(names) - 1) / 2)  # side by side on the log axis
        for long in (False, True):
            mine = [r for r in rows if r.optimizer == name and (r.study in ATLAS_LONG) == long]
            if not mine:
                continue
            mine.sort(key=lambda r: r.seq_len)
            style = {"color": color(name), "ms": 4 if not long else 5}
            if long:
                style |= {"fmt": "s", "mfc": "white"}
            else:
                style |= {"fmt": "o-", "label": label(name)}
            t = np.array([r.seq_len for r in mine]) * shift * (1.06 if long else 1)
            fraction = np.array([r.fraction for r in mine])
            span = [[r.fraction - r.low for r in mine], [r.high - r.fraction for r in mine]]
            left.errorbar(t, fraction, np.array(span), **style)
            median = np.array([r.median_steps for r in mine])
            reached = ~np.isnan(median)
            bars = np.array(
                [[r.median_steps - r.first_steps, r.last_steps - r.median_steps] for r in mine]
            ).T
            right.errorbar(
                t[reached], median[reached], bars[:, reached], **(style | {"label": None})
            )
            budget = np.array([r.budget for r in mine])
            mfc = "white" if long else color(name)
            right.plot(t[~reached], budget[~reached], "^", color=color(name), mfc=mfc, ms=6)
    if any(r.study in ATLAS_LONG for r in rows):
        longest = max(r.budget for r in rows if r.study in ATLAS_LONG)
        left.plot([], [], "s", color="0.4", mfc="white", label=f"{longest:,} steps (open)")
    left.set(xscale="log", ylim=(-0.05, 1.05), xlabel="sequence length T")
    left.set(ylabel="fraction of seeds solved")
    right.set(xscale="log", yscale="log", xlabel="sequence length T")
    right.set(ylabel="median steps to success")
    for ax in (left, right):
        ticks = sorted({r.seq_len for r in rows})
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
    if budgets:
        left.plot([], [], "o-", color="0.4", label=f"{budgets[0]:,} steps")
    left.legend(fontsize=7.5)
    return fig


def atlas_sentences(rows: Sequence[AtlasRow]) -> list[str]:
    """One sentence per (sequence length, budget), generated from its rows: how many optimizers
    solved at least half their seeds within the budget, and their median steps to success."""
    from rnnopt.plots import label

    sentences = []
    for budget, seq_len in sorted({(r.budget, r.seq_len) for r in rows}):
        mine = [r for r in rows if (r.budget, r.seq_len) == (budget, seq_len)]
        mine.sort(key=lambda r: r.median_steps)
        half = [r for r in mine if not math.isnan(r.median_steps)]
        medians = ", ".join(f"{label(r.optimizer)} {r.median_steps:,.0f}" for r in half)
        solved = f"; median steps to success: {medians}" if half else ""
        sentences.append(
            f"T = {seq_len}: {len(half)} of {len(mine)} optimizers stored solved at least half "
            f"their seeds within {budget:,} steps{solved}."
        )
    return sentences


def atlas_pending_sentence(
    pending: Sequence[str], studies: Sequence[str] = ATLAS_STUDIES + ATLAS_LONG
) -> str:
    """What the atlas still waits for, in words: how many (T, optimizer) pairs, and only the
    studies they belong to (a study with every pair stored is not named). ``pending``: the
    messages of plateau_atlas, each starting with its "study/optimizer"."""
    waiting = [s for s in studies if any(p.startswith(f"{s}/") for p in pending)]
    waiting += sorted({p.split("/")[0] for p in pending if "/" in p} - set(studies))
    pairs, are = ("pair", "is") if len(pending) == 1 else ("pairs", "are")
    return (
        f"pending: {len(pending)} (T, optimizer) {pairs} of {', '.join(waiting)} {are} not "
        "stored yet; the command 'make evidence' computes them (and resumes where it stopped), "
        "and this page shows them once stored:"
    )


def atlas_caption(rows: Sequence[AtlasRow], pending: Sequence[str] = ()) -> str:
    """The atlas figure's caption: what the ladder's lines and the longer rung's open squares
    show, at which budgets, and how to read the bars. ``pending``: plateau_atlas's messages,
    to say so when the longer rung is not stored yet."""
    from rnnopt import protocol

    ladder = [r for r in rows if r.study not in ATLAS_LONG]
    longer = [r for r in rows if r.study in ATLAS_LONG]
    lengths = ", ".join(str(t) for t in sorted({r.seq_len for r in ladder}))
    beside = (
        f" Open squares: T = {longer[0].seq_len} for {longer[0].budget:,} steps at the rate "
        f"tuned at T = 50 ({len(longer)} optimizer{'s' if len(longer) > 1 else ''} stored)."
        if longer
        else " The longer rung's open squares are not stored yet."
        if any(p.startswith(f"{s}/") for p in pending for s in ATLAS_LONG)
        else ""
    )
    head = (
        f"The adding problem at T = {lengths}, each optimizer at its tuned rate, "
        f"{ladder[0].seeds} evaluation seeds, {ladder[0].budget:,} steps (lines).{beside} "
        if ladder
        else f"The adding problem.{beside} "
    )
    return (
        f"{head}Left: fraction of seeds reaching MSE <= {protocol.SUCCESS['adding'].threshold:g}"
        ", bars: 95 % Wilson interval. Right: Kaplan-Meier median steps to success, bars: the "
        "fewest to most steps of the seeds that succeeded; a triangle at its rung's budget: median "
        f"not reached (fewer than half succeeded within that budget). {atlas_look(rows)}"
    )


def atlas_look(rows: Sequence[AtlasRow]) -> str:
    """The figure's reading hint: how the plateau changes with T can only be seen once more than
    one sequence length is stored."""
    lengths = sorted({r.seq_len for r in rows})
    longer = sorted({(r.seq_len, r.budget) for r in rows if r.study in ATLAS_LONG})
    beside = "".join(
        f" At T = {t}, compare the open square ({budget:,} steps) with the filled circle."
        for t, budget in longer
    )
    if len(lengths) > 1:
        return "Compare the fraction solved and the median steps from one T to the next." + beside
    return (
        f"Only T = {lengths[0]} is stored so far, so the figure cannot yet show how the "
        "plateau changes with T."
    )


# --- the chapter "Beyond the four": clipping and Nesterov runs -----------------------------


def _check_lrs(name: str, value: Any) -> dict[str, float]:
    """A non-empty dict of optimizer name -> learning rate > 0."""
    if not isinstance(value, dict) or not value:
        rule = "a non-empty dict of optimizer name -> learning rate"
        raise ValueError(invalid(name, value, rule, OPTIMIZERS))
    for key, lr in value.items():
        check_choice(f"a key of {name}", key, OPTIMIZERS)
        _POSITIVE(f"{name}[{key!r}]", lr)
    return value


_COUNT = partial(check_int, minimum=1)
BEYOND_PARAMETERS = {  # the rule of each parameter of "Beyond the four"
    "threads": _COUNT,
    "seq_len": partial(check_int, minimum=2),
    "hidden_size": _COUNT,
    "steps": _COUNT,
    "batch_size": _COUNT,
    "clip_lrs": _check_lrs,
    "clip_norm": _POSITIVE,
    "seeds": check_seeds,
    "nesterov_kappa": _POSITIVE,
    "nesterov_momentum": partial(check_number, low=0, high=1, low_open=True, high_open=True),
    "nesterov_points": _COUNT,
    "nesterov_quadratic_steps": _COUNT,
    "nesterov_lr": _POSITIVE,
    "decay_scales": partial(check_list, item=_POSITIVE),
    "decay_steps": _COUNT,
    "decay_lr": _POSITIVE,
    "weight_decay": partial(check_number, low=0),
    "reddi_periods": _COUNT,
    "reddi_lr": _POSITIVE,
    "reddi_betas": check_betas,
    "workers": _COUNT,
}


def check_beyond_parameters(**values: Any) -> None:
    """The parameters of "Beyond the four", by the rules of :data:`BEYOND_PARAMETERS`:
    ValueError naming the first bad one, its value and what is valid."""
    check_values(BEYOND_PARAMETERS, values)


def adding_spec(
    optimizer: str,
    lr: float,
    grid: Mapping[str, Sequence[Any]],
    *,
    seq_len: int,
    hidden_size: int,
    steps: int,
    batch_size: int,
    **hyper: Any,
) -> dict[str, Any]:
    """A sweep spec (:func:`rnnopt.sweep.run_sweep`): an Elman network of ``hidden_size`` units
    trained with ``optimizer`` at ``lr`` on the adding task of length ``seq_len``, over ``grid``."""
    return {
        "task": {"name": "adding", "seq_len": seq_len},
        "model": {"hidden_size": hidden_size},
        "optimizer": {"name": optimizer, "lr": lr, **hyper},
        "train": {"steps": steps, "batch_size": batch_size},
        "grid": dict(grid),
    }


def count_diverged(rows: Sequence[Mapping[str, Any]], **where: Any) -> int:
    """Diverged runs among the sweep ``rows`` whose columns equal ``where``."""
    return sum(r["status"] == "diverged" for r in rows if all(r[k] == v for k, v in where.items()))


def sweep_table(
    headers: Sequence[str], groups: Mapping[tuple[str, ...], Sequence[Mapping[str, Any]]]
) -> str:
    """One row per group of sweep rows: the group's labels (``headers``), how many of its runs
    diverged, and the mean and range of the final held-out loss of the others."""
    rows = []
    for labels, group in groups.items():
        finite = [r["final_loss"] for r in group if r["status"] == "ok"]
        mean = f"{np.mean(finite):.3g}" if finite else "—"
        span = f"{min(finite):.3g}–{max(finite):.3g}" if finite else "—"
        rows.append([*labels, f"{len(group) - len(finite)}/{len(group)}", mean, span])
    return _markdown([*headers, "diverged", "final held-out MSE (mean)", "range"], rows)


def clipping_figure(
    histories: Mapping[str, Sequence[History]],
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
    lrs: Mapping[str, float],
    baseline: float,
):
    """One panel per optimizer: training loss with and without clipping, mean over the seeds
    and their range (:func:`rnnopt.plots.plot_mean_spread`), a diverged run marked × at the top
    where it stopped, and the task's baseline. ``histories[name]`` are the runs of the sweep
    ``rows[name]``, in the same order; ``lrs[name]`` their learning rate."""
    from rnnopt.plots import color, label, plot_baseline, plot_mean_spread

    ncols = 2 if len(histories) > 1 else 1
    nrows = math.ceil(len(histories) / ncols)
    fig, axes = _figure(2.6 * nrows + 0.4, ncols=ncols, nrows=nrows, sharey=True, sharex=True)
    for ax, name in zip(axes.flat, histories, strict=False):  # a 2x2 grid may have a spare panel
        for clipped in (True, False):
            runs = [
                history
                for history, row in zip(histories[name], rows[name], strict=True)
                if (row["clip_grad_norm"] is not None) == clipped
            ]
            longest = max(len(h.loss) for h in runs)
            style = (color(name), "-") if clipped else ("black", ":")
            text = "clipped" if clipped else "not clipped"
            plot_mean_spread(ax, np.arange(1, longest + 1), [h.loss for h in runs], text, *style)
            for history in runs:
                if history.diverged:
                    first = not any(line.get_label() == "diverged" for line in ax.lines)
                    text = "diverged" if first else None
                    ax.plot(history.diverged_step, 1e3, "x", color="red", markersize=8, label=text)
        plot_baseline(ax, baseline, "predict 1")
        ax.set(yscale="log", ylim=(1e-2, 2e3), title=f"{label(name)}, lr {lrs[name]:g}")
        ax.title.set_fontsize(10)
        ax.legend(loc="upper right", fontsize=7.5)
    for ax in axes[-1]:
        ax.set_xlabel("step")
    for ax in axes[:, 0]:
        ax.set_ylabel("training MSE")
    for ax in list(axes.flat)[len(histories) :]:
        ax.set_visible(False)
    return fig


def stayed_above_baseline(
    histories: Sequence[History], baseline: float, factor: float = 1.0
) -> bool:
    """Whether the mean over the ``histories`` that did not diverge of the held-out loss
    exceeded ``factor`` × ``baseline`` at every evaluation after step 0 (False when every run
    diverged)."""
    curves = []
    for history in histories:
        if not history.diverged:
            steps = np.asarray(history.eval_step)
            curves.append(np.asarray(history.eval_loss, dtype=float)[steps > 0])
    return bool(curves) and bool(np.all(np.mean(curves, axis=0) > factor * baseline))


def l2_momentum_sentence(beta: float, l2: float, lr: float, weight_decay: float, steps: int) -> str:
    """What L2 decay with momentum β amounts to, from the measured factor ``l2`` after ``steps``
    steps of SGD with no gradient: the prediction of decoupled decay with λ/(1 − β) beside it,
    and the exact per-step factor, the largest root of r² − (1 + β − lr·λ) r + β (the heavy-ball
    recursion with curvature λ)."""
    rescaled = weight_decay / (1 - beta)
    approx = 1 - lr * rescaled
    exact = float(max(abs(np.roots([1.0, -(1 + beta - lr * weight_decay), beta]))))
    return (
        f"decoupled decay with λ/(1 − β) = {rescaled:g} instead of λ would give "
        f"(1 − lr·λ/(1 − β))^N = {approx**steps:.3g}; L2 gave {l2:.3g}. The exact per-step "
        f"factor of L2 with momentum is {exact:.5f}, {'below' if exact < approx else 'above'} "
        f"1 − lr·λ/(1 − β) = {approx:.5f} (the rescaling assumes lr·λ = {lr * weight_decay:g} "
        f"small against (1 − β)² = {(1 - beta) ** 2:.3g}); its {steps}th power is "
        f"{exact**steps:.3g}."
    )


def adam_decay_sentence(
    scales: Sequence[float], adam: Sequence[float], expected: float, lr: float
) -> str:
    """Adam + L2's decay of the groups with the smallest and the largest gradients (``adam``:
    the factor each group of ``scales`` shrank to) against the nominal ``expected``."""
    small, large = int(np.argmin(scales)), int(np.argmax(scales))
    fastest = float(adam[small])
    if fastest < 0.5 * expected:
        return (
            f"The group with gradients of scale {scales[small]:g} shrank to {fastest:.3g} under "
            f"Adam + L2, far below the nominal {expected:.3g}: λw dominates its gradient, and "
            f"Adam turns it into a step of about lr = {lr:g} towards zero at every step. The "
            f"group of scale {scales[large]:g} shrank only to {float(adam[large]):.3g}."
        )
    return (
        f"The group with the smallest gradients (scale {scales[small]:g}) shrank to "
        f"{fastest:.3g} under Adam + L2, against the nominal {expected:.3g}: at these settings "
        f"λw does not dominate its gradient enough to speed the decay up much."
    )
