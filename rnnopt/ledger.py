"""The registered claims measured: each empirical claim's deciding figure, its 95 % interval and
its verdict, computed from the stored evidence (data/evidence/) by the rules of
data/registration.yaml. One function per figure, beside nothing else: the quantities come from
rnnopt.protocol, the thresholds from the registration, the numbers from the stored runs.

    rows = ledger()            # one row per registered claim, in the columns of COLUMNS
    figure("adam-faster")      # Figure(estimate, low, high, seeds, source)
    write_csv(rows, "data/claims.csv")  # atomically, numbers at full precision

A claim whose evidence is not all stored yet is reported as `pending`, with what is missing.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rnnopt import evidence, protocol, tier
from rnnopt.store import write_atomic
from rnnopt.tier import Pending, eval_errors, tune_successes

ROOT = Path(__file__).resolve().parent.parent
REGISTRATION = ROOT / "data" / "registration.yaml"
COLUMNS = (
    "id",
    "claim",
    "algorithm",
    "kind",
    "experiment",
    "figure",
    "estimate",
    "ci_low",
    "ci_high",
    "seeds",
    "direction",
    "support_threshold",
    "refute_threshold",
    "verdict",
    "source",
)
FOUR = ("sgd", "momentum", "rmsprop", "adam")


@dataclass(frozen=True)
class Figure:
    estimate: float
    low: float
    high: float
    seeds: int
    source: str  # the stored files it was computed from


# --- Reading the stored evidence ------------------------------------------------------------


@cache
def registration(path: str | Path | None = None) -> dict[str, Any]:
    """The registration with its amendments applied in date order: an amendment's `claims`
    entries replace the fields they name, its `experiments` the descriptions they name, and its
    `tier_studies` the tier's list (the original entries stay in the file as written)."""
    data = yaml.safe_load(Path(path or REGISTRATION).read_text(encoding="utf-8"))
    claims = {c["id"]: dict(c) for c in data["claims"]}
    protocol_ = dict(data["protocol"])
    experiments = dict(data.get("experiments") or {})
    for amendment in sorted(data.get("amendments") or [], key=lambda a: str(a["date"])):
        if "tier_studies" in amendment:
            protocol_["tier_studies"] = list(amendment["tier_studies"])
        for name, text in (amendment.get("experiments") or {}).items():
            if name not in experiments:
                raise ValueError(
                    f"amendment of {amendment['date']} describes unknown experiment {name!r}; "
                    f"valid: {', '.join(experiments)}"
                )
            experiments[name] = text
        for claim_id, changes in (amendment.get("claims") or {}).items():
            if claim_id not in claims:
                raise ValueError(
                    f"amendment of {amendment['date']} changes unknown claim "
                    f"{claim_id!r}; valid: {', '.join(claims)}"
                )
            claims[claim_id].update(changes)
    return {**data, "protocol": protocol_, "claims": list(claims.values()),
            "experiments": experiments}  # fmt: skip


def experiment_data(name: str) -> dict[str, Any]:
    path = evidence.EVIDENCE_DIR / name / "results.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    if "provenance" not in data:
        raise Pending(f"experiment {name} is not finished")
    return data


def experiment_values(name: str, variant: str, key: str) -> np.ndarray:
    data = experiment_data(name)
    cell = data["measurements"][variant][repr(data["tuned"][variant]["lr"])]
    return np.array([cell[str(s)][key] for s in data["protocol"]["evaluation_seeds"]])


def _source(*paths: str) -> str:
    return "; ".join(f"data/evidence/{p}" for p in paths)


# --- Figures --------------------------------------------------------------------------------


def _mean(values: np.ndarray, source: str) -> Figure:
    low, high = protocol.bootstrap_interval(values)
    return Figure(float(np.mean(values)), low, high, values.size, source)


def _paired(a: np.ndarray, b: np.ndarray, statistic: Callable, source: str) -> Figure:
    low, high = protocol.paired_interval(a, b, statistic)
    return Figure(float(statistic(a[None], b[None])[0]), low, high, a.size, source)


def _random_rate_cost(variant: str) -> np.ndarray:
    tuned = tier.tuned_record("digits-elman", variant)
    errors = {lr: eval_errors("digits-elman", variant, lr) for lr in tuned["evaluated_rates"]}
    return protocol.random_rate_cost(errors, tuned["lr"])


def random_rate_cost_of(variant: str) -> Figure:
    return _mean(_random_rate_cost(variant), _source(f"digits-elman/{variant}/eval"))


def less_tuning() -> Figure:
    return _paired(
        _random_rate_cost("adam"),
        _random_rate_cost("sgd"),
        protocol.difference_of_means,
        _source("digits-elman/adam/eval", "digits-elman/sgd/eval"),
    )


def _tuning_error(record: dict[str, Any]) -> float:
    """A tuned record's mean tuning error at its chosen rate (what a reference is chosen by)."""
    return float(record["tuning_errors"][repr(record["lr"])])


def batch_noise() -> Figure:
    return _paired(
        eval_errors("sgd-batch", "batch-16"),
        eval_errors("sgd-batch", "batch-256"),
        protocol.ratio_of_means,
        _source("sgd-batch/batch-16/eval", "sgd-batch/batch-256/eval"),
    )


def convex() -> Figure:
    """SGD's excess loss against that of the best of the other three on the tuning seeds (a
    reference that is never SGD itself, so the ratio is never 1 by construction)."""
    data = experiment_data("convex-lsq")
    others = [v for v in data["tuned"] if v != "sgd"]
    best = min(others, key=lambda v: _tuning_error(data["tuned"][v]))
    return _paired(
        experiment_values("convex-lsq", "sgd", "excess_fraction"),
        experiment_values("convex-lsq", best, "excess_fraction"),
        protocol.ratio_of_means,
        _source("convex-lsq/results.json") + f" (reference: {best})",
    )


def stuck_fraction() -> Figure:
    return _mean(
        1.0 - experiment_values("surfaces", "sgd", "global_fraction"),
        _source("surfaces/results.json"),
    )


def escape_gain() -> Figure:
    return _paired(
        experiment_values("surfaces", "momentum", "global_fraction"),
        experiment_values("surfaces", "sgd", "global_fraction"),
        protocol.difference_of_means,
        _source("surfaces/results.json"),
    )


def damping() -> Figure:
    return _paired(
        experiment_values("ravine", "sgd", "flip_fraction"),
        experiment_values("ravine", "momentum", "flip_fraction"),
        protocol.difference_of_means,
        _source("ravine/results.json"),
    )


def beta_spread() -> Figure:
    """Evaluation error at the beta worst on the tuning seeds over that at the beta best on
    them (choosing both on the tuning seeds keeps the max/min of noisy means out)."""
    betas = ("beta-0.5", "beta-0.9", "beta-0.99")
    chosen = {b: _tuning_error(tier.tuned_record("momentum-beta", b)) for b in betas}
    best, worst = min(chosen, key=chosen.get), max(chosen, key=chosen.get)
    return _paired(
        eval_errors("momentum-beta", worst),
        eval_errors("momentum-beta", best),
        protocol.ratio_of_means,
        _source(f"momentum-beta/{worst}/eval", f"momentum-beta/{best}/eval"),
    )


def nonstationary() -> Figure:
    return _paired(
        experiment_values("nonstationary", "rmsprop", "error"),
        experiment_values("nonstationary", "sgd", "error"),
        protocol.ratio_of_means,
        _source("nonstationary/results.json"),
    )


class Unsolved(Pending):
    """The study a figure needs is solved by no optimizer: the claim stays inconclusive, and
    the figure (computed all the same) is reported beside the reason."""

    def __init__(self, reason: str, found: Figure | None = None):
        super().__init__(reason)
        self.found = found


def vanishing() -> Figure:
    """SGD's mean relative error over RMSprop's at T = 100 (paired by seed, floored at
    protocol.ERROR_FLOOR as every tier ratio is), decided only when SGD or RMSprop solves the
    study (amendment 7: the two it compares)."""
    study = "adding-elman-T100"
    errors = _floored_errors(study)
    found = _paired(
        errors["sgd"],
        errors["rmsprop"],
        protocol.ratio_of_means,
        _source(f"{study}/sgd/eval", f"{study}/rmsprop/eval"),
    )
    if not is_solved(study, optimizers=("sgd", "rmsprop")):
        raise Unsolved(f"{study} is solved by neither SGD nor RMSprop at its budget", found)
    return found


def generalisation() -> Figure:
    return _paired(
        eval_errors("overfit", "adam"),
        eval_errors("overfit", "sgd"),
        protocol.ratio_of_means,
        _source("overfit/adam/eval", "overfit/sgd/eval"),
    )


def cost_ratio(optimizer: str) -> Figure:
    path = evidence.EVIDENCE_DIR / "cost" / "results.json"
    if not path.exists():
        raise Pending("experiment cost is not finished")
    times = json.loads(path.read_text())["seconds_per_step"]
    return _paired(
        np.array(times[optimizer]),
        np.array(times["sgd"]),
        protocol.ratio_of_means,
        _source("cost/results.json"),
    )


# --- Tier figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TierSource:
    """Where the tier figures read their runs: the studies, their specs, the four optimizers'
    stored runs, and the runs of any other optimizer (an `rnnopt evaluate` directory)."""

    studies: tuple[str, ...]
    studies_dir: Path
    root: Path
    extra: tuple[tuple[str, Path], ...] = ()  # (optimizer, its runs' root)

    def root_of(self, variant: str) -> Path:
        return dict(self.extra).get(variant, self.root)

    @property
    def optimizers(self) -> tuple[str, ...]:
        return (*FOUR, *(name for name, _ in self.extra))


def evidence_tier() -> TierSource:
    """The registered tier: its studies in data/specs/evidence/, its runs in data/evidence/."""
    return TierSource(
        tuple(registration()["protocol"]["tier_studies"]),
        evidence.STUDIES_DIR,
        evidence.EVIDENCE_DIR,
    )


def is_solved(
    study: str, source: TierSource | None = None, optimizers: Sequence[str] | None = None
) -> bool:
    """Some optimizer (default: the source's), at its chosen rate, met the success criterion
    on a tuning seed (registration amendment 6). Decided on the tuning seeds, as the reference
    optimizers are, so the evaluation seeds a tier figure compares do not also choose which
    studies enter it."""
    source = source or evidence_tier()
    return any(
        tune_successes(study, v, root=source.root_of(v), studies_dir=source.studies_dir).any()
        for v in (optimizers or source.optimizers)
    )


def solved_studies(
    source: TierSource | None = None, among: Sequence[str] | None = None
) -> list[str]:
    """The tier studies solved by one of `among` (default: any optimizer); the others are
    unsolved at their budget, and not ranked. A figure comparing some optimizers counts only
    the studies one of *them* solves (amendment 7): where neither SGD nor momentum succeeds,
    both are censored at the budget and their ratio is 1 by construction, not a measurement."""
    source = source or evidence_tier()
    return [s for s in source.studies if is_solved(s, source, among)]


def _restricted_steps(study: str, variant: str, source: TierSource) -> np.ndarray:
    """Steps to success per evaluation seed, censored at the budget (restricted mean time)."""
    budget = evidence.load_study(source.studies_dir / f"{study}.yaml").train["steps"]
    steps, _ = protocol.steps_to_success(
        tier.eval_histories(study, variant, root=source.root_of(variant)),
        tier.criterion_of(study, source.studies_dir),
        budget,
    )
    return steps


def _tier(
    samples_of: Callable[[str], dict[str, np.ndarray]],
    statistic: Callable[[list[dict[str, np.ndarray]]], np.ndarray],
    among: Sequence[str],
    source: TierSource | None = None,
) -> Figure:
    """A tier figure over the studies that one of `among` (the optimizers it compares) solves."""
    source = source or evidence_tier()
    not_run = set()  # studies the tier's rules left out (their skipped.json says why)
    for study in source.studies:  # every study stored first: no verdict from part of the tier
        for name in source.optimizers:
            try:
                tier.tuned_record(study, name, source.root_of(name))
            except tier.NotRun:
                not_run.add(study)
    kept = TierSource(
        tuple(s for s in source.studies if s not in not_run),
        source.studies_dir,
        source.root,
        source.extra,
    )
    studies = solved_studies(kept, among)
    if not studies:
        raise Unsolved(f"no tier study is solved by {', '.join(among)}")
    samples = [samples_of(s) for s in studies]
    low, high = protocol.hierarchical_interval(samples, statistic)
    estimate = float(statistic([{k: v[None] for k, v in s.items()} for s in samples])[0])
    return Figure(
        estimate,
        low,
        high,
        len(next(iter(samples[0].values()))),
        f"{len(studies)} solved tier studies: "
        + ", ".join(studies)
        + (f" (not run: {', '.join(sorted(not_run))})" if not_run else ""),
    )


def _gm(values: list[np.ndarray]) -> np.ndarray:
    return np.exp(np.mean(np.log(np.stack(values)), axis=0))


def _floored_errors(study: str) -> dict[str, np.ndarray]:
    return {v: np.maximum(eval_errors(study, v), protocol.ERROR_FLOOR) for v in FOUR}


def _references(study: str) -> dict[str, str]:
    """The reference optimizers of a study, chosen on the tuning seeds."""
    tuned = {v: _tuning_error(tier.tuned_record(study, v)) for v in FOUR}
    return {"pair": min(("momentum", "rmsprop"), key=tuned.get), "best": min(FOUR, key=tuned.get)}


def tier_speedup(optimizer: str, source: TierSource | None = None) -> Figure:
    """Geometric mean over solved studies of SGD's restricted mean steps to success over the
    optimizer's (above 1: the optimizer gets there sooner). `source`: another tier, or another
    optimizer's runs (default: the registered tier)."""
    source = source or evidence_tier()
    return _tier(
        lambda s: {v: _restricted_steps(s, v, source) for v in ("sgd", optimizer)},
        lambda drawn: _gm([d["sgd"].mean(-1) / d[optimizer].mean(-1) for d in drawn]),
        ("sgd", optimizer),
        source,
    )


def tier_combines() -> Figure:
    refs = {}

    def samples(study: str) -> dict[str, np.ndarray]:
        refs[study] = _references(study)["pair"]
        errors = _floored_errors(study)
        return {"adam": errors["adam"], "reference": errors[refs[study]]}

    return _tier(
        samples,
        lambda drawn: _gm([d["adam"].mean(-1) / d["reference"].mean(-1) for d in drawn]),
        ("adam", "momentum", "rmsprop"),
    )


def tier_across() -> Figure:
    def samples(study: str) -> dict[str, np.ndarray]:
        errors = _floored_errors(study)
        return {"adam": errors["adam"], "best": errors[_references(study)["best"]]}

    def share(drawn: list[dict[str, np.ndarray]]) -> np.ndarray:
        near = [d["adam"].mean(-1) <= 1.25 * d["best"].mean(-1) for d in drawn]
        return np.mean(np.stack(near), axis=0)

    return _tier(samples, share, FOUR)


FIGURES: dict[str, Callable[[], Figure]] = {
    "sgd-convex": convex,
    "sgd-slow-noisy": batch_noise,
    "sgd-lr-sensitive": lambda: random_rate_cost_of("sgd"),
    "sgd-local-minima": stuck_fraction,
    "momentum-faster": lambda: tier_speedup("momentum"),
    "momentum-local-minima": escape_gain,
    "momentum-damps": damping,
    "momentum-beta-tuning": beta_spread,
    "momentum-lr-sensitive": lambda: random_rate_cost_of("momentum"),
    "rmsprop-non-stationary": nonstationary,
    "rmsprop-vanishing": vanishing,
    "rmsprop-lr-tuning": lambda: random_rate_cost_of("rmsprop"),
    "rmsprop-cost": lambda: cost_ratio("rmsprop"),
    "adam-combines": tier_combines,
    "adam-across": tier_across,
    "adam-less-tuning": less_tuning,
    "adam-faster": lambda: tier_speedup("adam"),
    "adam-cost": lambda: cost_ratio("adam"),
    "adam-generalises-worse": generalisation,
}


# --- Checks of the definitional claims (computed, never typed) ------------------------------


def _update_lines(cls: type) -> int:
    """Lines of code (no comments, docstrings or blank lines) in an optimizer's update."""
    import inspect

    lines = inspect.getsource(cls.update).splitlines()[1:]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def check_sgd_simple() -> str:
    from rnnopt.optim import SGD

    state = protocol.state_bytes_per_parameter("sgd")
    return (
        f"SGD keeps {state:g} bytes of state per parameter; its whole update, with the "
        f"momentum, Nesterov and weight-decay options it shares with torch, is "
        f"{_update_lines(SGD)} lines; without them it is p ← p − γ·g."
    )


def check_large_data() -> str:
    from rnnopt.tasks import make_task

    task = make_task("text", seq_len=50)
    x, _ = task.train_batch(8, np.random.default_rng(0))
    return (
        f"A step draws {x.shape[0]} windows of the {len(task.train_codes):,}-character "
        "training text and keeps no per-example state: its cost depends on the batch, "
        "not on the size of the data set."
    )


def check_one_sample() -> str:
    from rnnopt.train import run

    history = run(
        task={"name": "digits", "mode": "pixels"},
        model={"hidden_size": 8},
        optimizer={"name": "sgd", "lr": 0.1},
        train_options={"steps": 3, "batch_size": 1},
        seed=0,
    )
    finite = "every loss finite" if all(map(math.isfinite, history.loss)) else "a loss not finite"
    return (
        f"The trainer runs SGD on one sample per step (batch_size=1): {history.steps_done} "
        f"steps, {finite}. The sgd-batch study compares batch 1 with minibatches."
    )


def check_per_parameter() -> str:
    import torch

    from rnnopt.optim import RMSprop
    from rnnopt.rnn import SequenceModel

    torch.manual_seed(0)
    model = SequenceModel(2, 16, 1)
    opt = RMSprop(model.parameters(), lr=1e-3)
    x, y = torch.randn(32, 20, 2), torch.randn(32, 1)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    weight = model.core.weight_hh_l0
    square_avg = opt.state[weight]["square_avg"]
    step = 1e-3 / (square_avg.sqrt() + 1e-8)
    return (
        f"RMSprop's running mean of g² has the recurrent matrix's shape "
        f"{tuple(square_avg.shape)}; after 5 steps the effective learning rates γ/(√v + ε) of its "
        f"entries span a factor of {float(step.max() / step.min()):.0f}."
    )


def check_moments() -> str:
    import torch

    from rnnopt.optim import Adam

    moves = []
    for scale in (1e-3, 1.0, 123.0):
        weight = torch.nn.Parameter(torch.ones(1))
        opt = Adam([weight], lr=1e-3)
        weight.grad = torch.full((1,), scale)
        opt.step()
        moves.append(abs(1.0 - weight.item()))
    keys = sorted(k for k in opt.state[weight] if k != "step")
    return (
        f"Adam keeps {', '.join(keys)} per parameter entry; its first step moves a weight by "
        f"{moves[0]:.4g}, {moves[1]:.4g} and {moves[2]:.4g} for gradients 0.001, 1 and 123 "
        "at lr = 0.001: about lr, whatever the gradient's scale."
    )


CHECKS: dict[str, Callable[[], str]] = {
    "sgd-simple": check_sgd_simple,
    "sgd-large-data": check_large_data,
    "sgd-one-sample": check_one_sample,
    "rmsprop-per-parameter": check_per_parameter,
    "adam-moments": check_moments,
}


def figure(claim_id: str) -> Figure:
    if claim_id not in FIGURES:
        raise ValueError(f"claim={claim_id!r} has no figure; valid: {', '.join(FIGURES)}")
    return FIGURES[claim_id]()


def ledger() -> list[dict[str, Any]]:
    """One row per registered claim (COLUMNS); definitional claims carry their check instead of
    a figure, and empirical ones whose evidence is incomplete the verdict `pending`."""
    rows = []
    for claim in registration()["claims"]:
        row = {k: claim.get(k, "") for k in COLUMNS}
        if claim["kind"] == "definitional":
            row.update(figure=CHECKS[claim["id"]](), verdict="", experiment="")
        else:
            unsolved = ""
            try:
                found = figure(claim["id"])
            except Unsolved as why:
                found, unsolved = why.found, f" ({why}: inconclusive by registration)"
                if found is None:  # nothing to compute a figure from
                    row.update(
                        verdict="inconclusive", source=f"{why}: inconclusive by registration"
                    )
            except Pending as missing:
                row.update(verdict="pending", source=str(missing))
                found = None
            if found is not None:
                row.update(
                    estimate=found.estimate,
                    ci_low=found.low,
                    ci_high=found.high,
                    seeds=found.seeds,
                    source=f"{found.source}; shown in fig-claims-{claim['algorithm']}{unsolved}",
                    verdict="inconclusive"
                    if unsolved
                    else protocol.verdict(
                        found.low,
                        found.high,
                        claim["direction"],
                        claim["support_threshold"],
                        claim["refute_threshold"],
                    ),
                )
        rows.append({k: row[k] for k in COLUMNS})
    return rows


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write the ledger to `path` in the columns of COLUMNS, all at once (a reader sees the old
    file or the new one, never part of one). Numbers are written at full precision (the
    shortest text that reads back as the same float), so a verdict recomputed from the file's
    own columns is the verdict that was computed; an empty cell is a figure not measured."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        if set(row) != set(COLUMNS):
            raise ValueError(f"row {row.get('id')!r}: columns {sorted(row)}, not {COLUMNS}")
        cells = [row[k] for k in COLUMNS]
        writer.writerow([repr(float(c)) if isinstance(c, float) else c for c in cells])
    write_atomic(Path(path), buffer.getvalue())


def samples(row: dict[str, Any]) -> str:
    """What the `seeds` column counts: evaluation seeds, or for the cost of a step its timing
    rounds (the optimizers interleaved, one round each)."""
    unit = "timing rounds" if row.get("experiment") == "cost" else "seeds"
    return f"{row['seeds']} {unit}"


def format_number(value: Any) -> str:
    """Numbers rounded to what is stable across machines (3 significant digits)."""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.3g}"
    return str(value)
