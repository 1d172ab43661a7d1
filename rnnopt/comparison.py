"""The comparison chapter, computed from a stored tier: per study the four optimizers' rows
(`rnnopt.compare.study_table`), who is best and who is tied with it (paired ratios), which
studies are unsolved (not ranked) or still pending; the tunability curves with the tuning seeds'
spread; the measured cost of a step; and a Dolan–Moré performance profile across the solved
studies. Nothing here trains.

    results = load(ledger.evidence_tier())   # study -> Result (its rows, or why it is pending)
    ranking(results["digits-elman"])          # {"best": ..., "tied": [...]} or None (unsolved)
    profile({"s1": {"sgd": 0.4, "adam": 0.2}}, taus)   # fraction within τ of the best
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnopt import compare, evidence, ledger, protocol, tier
from rnnopt.store import load_results

FOUR = compare.FOUR
RESAMPLES = 2_000  # bootstrap resamples of the bands drawn on the figures (fixed generator)


def sig(x: float) -> str:
    """A number to 3 significant digits, as every stored output shows it."""
    return f"{x:.3g}"


@dataclass
class Result:
    """One study of the tier: its spec, and either its rows or the reason it is pending."""

    study: str
    spec: evidence.Study
    rows: list[compare.Row] = field(default_factory=list)
    pending: str | None = None  # what is missing (tier.Pending's message)
    edges: dict[str, str | None] = field(default_factory=dict)  # tuned.json's `edge`
    errors: dict[str, np.ndarray] = field(default_factory=dict)  # evaluation seeds, seed order
    tuning: dict[str, dict[float, list[float]]] = field(default_factory=dict)  # per tuning seed
    floor: float = protocol.ERROR_FLOOR  # errors are floored here before a ratio
    solved: bool = False  # ledger.is_solved: some optimizer succeeded on a tuning seed
    # ratios_to_best, computed once: the ranking, the standing of each row and the sentence
    # all read it, and each interval is a 10,000-resample bootstrap
    ratios: dict[str, tuple[float, float, float]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def seeds(self) -> int:
        return len(self.spec.evaluation_seeds)

    @property
    def state(self) -> str:
        """'pending' (not all stored), 'unsolved' (no optimizer, at its chosen rate, succeeded
        on a tuning seed: reported, not ranked; ledger.is_solved) or 'solved'."""
        if self.pending is not None:
            return "pending"
        return "solved" if self.solved else "unsolved"

    def successes(self, row: compare.Row) -> int:
        return round(row.success * self.seeds)


def tuning_errors(spec: evidence.Study, stage: Path, grid: Sequence[float]):
    """{lr: [relative error per tuning seed]} over the final grid (validation half)."""
    by_lr = evidence.relative_errors(load_results(stage), *evidence.task_scale(spec, "tune"))
    return {lr: [by_lr[lr][s] for s in sorted(by_lr[lr])] for lr in grid}


def load(source: ledger.TierSource, optimizers: Sequence[str] = FOUR) -> dict[str, Result]:
    """Every study of `source`, in its order: a study with any optimizer not finished is
    pending (its message names what is missing); the others carry their rows and seeds."""
    results = {}
    for study in source.studies:
        spec = evidence.load_study(source.studies_dir / f"{study}.yaml")
        result = Result(study, spec)
        try:
            result.rows = compare.study_table(study, optimizers, source)
            for name in optimizers:
                root = source.root_of(name)
                tuned = tier.tuned_record(study, name, root)
                result.edges[name] = tuned["edge"]
                result.errors[name] = tier.eval_errors(study, name, root=root,
                                                       studies_dir=source.studies_dir)  # fmt: skip
                stage = root / study / name / "tune"
                near = protocol.within_a_decade(tuned["grid"], tuned["lr"])
                result.tuning[name] = tuning_errors(spec, stage, near)
            result.solved = ledger.is_solved(study, source, optimizers)
        except tier.Pending as pending:
            result.pending, result.rows = str(pending), []
        results[study] = result
    return results


def progress(source: ledger.TierSource, study: str, name: str) -> str:
    """Where one variant of a study stands: not started, tuning, evaluating, or finished."""
    root = source.root_of(name) / study / name
    stored = {
        stage: len(load_results(root / stage)) if (root / stage / "results.csv").exists() else 0
        for stage in ("tune", "eval")
    }
    if (root / "tuned.json").exists():
        try:
            tier.eval_histories(study, name, root=source.root_of(name))
            return "finished"
        except tier.Pending:
            pass
    elif not any(stored.values()):
        return "not started"
    return f"running ({stored['tune']} tuning, {stored['eval']} evaluation runs stored)"


def describe(spec: evidence.Study) -> str:
    """A study in words: task and its options, core and width, steps and batch size."""
    options = "".join(f", {k} {v}" for k, v in spec.task.items() if k != "name")
    model = f"{spec.model.get('core', 'elman')} {spec.model.get('hidden_size', '')}".strip()
    shape = f"{spec.train['steps']:,} steps of batch {spec.train['batch_size']}"
    return f"{spec.task['name']}{options}; {model}; {shape}"


# --- Ranking: ties from paired ratios, unsolved studies not ranked ---------------------------


def ratios_to_best(result: Result) -> dict[str, tuple[float, float, float]]:
    """Each optimizer's mean error over the lowest's, both floored at protocol.ERROR_FLOOR and
    paired by seed (seed s is the same initial weights and data stream for all four), with its
    BCa interval: {name: (ratio, low, high)}. Paired, because the seeds' shared luck cancels,
    where two marginal intervals would overlap for a gap the pairs resolve."""
    if result.ratios is None:
        errors = floored(result)
        best = min(result.rows, key=lambda r: r.error).optimizer
        result.ratios = {}
        for name, values in errors.items():
            ratio = float(protocol.ratio_of_means(values[None], errors[best][None])[0])
            result.ratios[name] = (ratio, *protocol.paired_interval(values, errors[best]))
    return result.ratios


def ranking(result: Result) -> dict[str, list[str] | str] | None:
    """{'best': the lowest mean error, 'tied': it and every optimizer whose paired ratio to it
    has an interval reaching 1} for a solved study; None for an unsolved or pending one (not
    ranked)."""
    if result.state != "solved":
        return None
    best = min(result.rows, key=lambda r: r.error).optimizer
    ratios = ratios_to_best(result)
    tied = [r.optimizer for r in result.rows if ratios[r.optimizer][1] <= 1.0]
    return {"best": best, "tied": tied}


def standing(result: Result, name: str) -> str:
    """The table's last column for one optimizer."""
    ranked = ranking(result)
    if ranked is None:
        return "unsolved: not ranked"
    if name in ranked["tied"]:
        return "tied for lowest" if len(ranked["tied"]) > 1 else "lowest"
    ratio, low, high = ratios_to_best(result)[name]
    return f"{sig(ratio)}× the lowest [{sig(low)}, {sig(high)}]"


def km_median(row: compare.Row, result: Result) -> str:
    """The Kaplan–Meier median steps to success with its 95 % interval, or "not reached"
    (fewer than half succeeded within the budget) with the count."""
    from rnnopt.plots import steps_with_interval

    if math.isnan(row.median_steps):
        return f"not reached ({result.successes(row)}/{result.seeds} succeeded within the budget)"
    return steps_with_interval(row.median_steps, row.steps_interval)


def chosen_rate(result: Result, name: str, lr: float) -> str:
    edge = result.edges.get(name)
    if edge == "flat":
        return f"{sig(lr)} (nothing learned on the grid)"
    return sig(lr) + ("" if edge is None else f" (the search ended at the grid's {edge} edge)")


def table(result: Result, labels: Mapping[str, str]) -> list[list[str]]:
    """The rows of one study's table (only for a stored one)."""
    shown = []
    for row in result.rows:
        k = result.successes(row)
        low, high = protocol.wilson_interval(k, result.seeds)
        shown.append([
            labels.get(row.optimizer, row.optimizer),
            chosen_rate(result, row.optimizer, row.lr),
            f"{sig(row.error)} [{sig(row.low)}, {sig(row.high)}]",
            f"{k}/{result.seeds} [{sig(low)}, {sig(high)}]",
            km_median(row, result),
            standing(result, row.optimizer),
        ])  # fmt: skip
    return shown


def states_sentence(by_state: Mapping[str, Sequence[str]]) -> str:
    """How many of the compared studies are solved, unsolved and pending, in a sentence that
    names them and says what is empty ("none is solved or unsolved yet; all 9 are pending")."""
    states = ("solved", "unsolved", "pending")
    names = {s: list(by_state.get(s, ())) for s in states}
    total = sum(len(v) for v in names.values())
    if not total:
        return "No study is compared."
    head = f"Of the {total} {'study' if total == 1 else 'studies'} compared, "
    found = [s for s in states if names[s]]
    empty = [s for s in ("solved", "unsolved") if not names[s]]
    none = f"none is {' or '.join(empty)}" + (" yet" if names["pending"] else "") if empty else ""
    if total == 1:
        return f"The one study compared, {_found_one(names)}, is {_found_state(names)}."

    def count(state: str) -> str:
        k = len(names[state])
        if k == total:
            k = "the one study" if total == 1 else f"all {total}"
        return (
            f"{k} {'is' if len(names[state]) == 1 else 'are'} {state} ({', '.join(names[state])})"
        )

    said = " and ".join([", ".join(count(s) for s in found[:-1]), count(found[-1])][-len(found) :])
    if len(found) == 1 and none and found[0] == "pending":
        return f"{head}{none}; {said}."
    return f"{head}{said}" + (f"; {none}." if none and len(found) > 1 else ".")


def _found_one(names: Mapping[str, Sequence[str]]) -> str:
    return next(n[0] for n in names.values() if n)


def _found_state(names: Mapping[str, Sequence[str]]) -> str:
    return next(s for s, n in names.items() if n)


def sentence(result: Result, labels: Mapping[str, str]) -> str:
    """The outcome of one study in words, generated from the numbers the table shows."""
    if result.state == "pending":
        return (
            f"{result.study}: pending, its runs are not all stored yet; "
            f"`python -m rnnopt.evidence {result.study}` completes it."
        )
    if result.state == "unsolved":
        return (
            f"{result.study}: no optimizer, at its chosen rate, met the success criterion on a "
            "tuning seed, so the study is unsolved at its budget and not ranked."
        )
    ranked = ranking(result)
    best = labels.get(ranked["best"], ranked["best"])
    row = next(r for r in result.rows if r.optimizer == ranked["best"])
    others = [labels.get(n, n) for n in ranked["tied"] if n != ranked["best"]]
    said = f"{result.study}: {best} has the lowest mean relative error, {sig(row.error)}"
    ratios = ratios_to_best(result)
    equal = [
        labels.get(n, n)
        for n in ranked["tied"]
        if n != ranked["best"]
        and math.isclose(next(r.error for r in result.rows if r.optimizer == n), row.error)
    ]
    if equal:  # the same mean (a metric counted over one fixed held-out set can coincide)
        said = (
            f"{result.study}: {' and '.join([best, *equal])} have the same, lowest, mean "
            f"relative error, {sig(row.error)}"
        )
        others = [n for n in others if n not in equal]
    if others:
        named = ", ".join(
            f"{labels.get(n, n)} {sig(ratios[n][0])} [{sig(ratios[n][1])}, {sig(ratios[n][2])}]"
            for n in ranked["tied"]
            if labels.get(n, n) in others
        )
        return f"{said}; the paired ratio to it of {named} has an interval that reaches 1: a tie."
    if equal:
        return f"{said}: a tie."
    closest = min((n for n in ratios if n != ranked["best"]), key=lambda n: ratios[n][0])
    ratio, low, high = ratios[closest]
    return (
        f"{said}; the nearest, {labels.get(closest, closest)}, has {sig(ratio)} times its "
        f"error (paired by seed, [{sig(low)}, {sig(high)}]), so it is lowest alone."
    )


# --- Tunability: expected best after k random draws of the grid ------------------------------


def expected_best_curve(values: np.ndarray) -> np.ndarray:
    """protocol.expected_best for k = 1..N over the last axis of `values` (rows at once)."""
    values = np.sort(np.asarray(values, dtype=float), axis=-1)[..., ::-1]  # worst first
    n = values.shape[-1]
    i = np.arange(1, n + 1)
    curves = [
        np.sum(values * ((i / n) ** k - ((i - 1) / n) ** k), axis=-1) for k in range(1, n + 1)
    ]
    return np.stack(curves, axis=-1)


def tunability_curves(errors_by_lr: Mapping[float, Sequence[float]]):
    """(curve, per_seed) over k = 1..grid size: the expected best tuning error after k random
    draws of the grid from the seed-mean errors, and the same curve for each tuning seed alone
    (rows). Two tuning seeds give no interval worth the name (a bootstrap of two values has
    three outcomes), so the figure shows each seed's curve: their spread, not a 95 % band."""
    table_ = np.array([errors_by_lr[lr] for lr in sorted(errors_by_lr)])  # (rates, seeds)
    return expected_best_curve(table_.mean(axis=1)), expected_best_curve(table_.T)


# --- Performance profile (Dolan & Moré 2002) --------------------------------------------------


def profile(
    means: Mapping[str, Mapping[str, float]], taus: Sequence[float]
) -> dict[str, np.ndarray]:
    """For each optimizer, the fraction of studies (keys of `means`, each {optimizer: mean
    error > 0}) in which its error is at most τ times the best optimizer's, for each τ."""
    names = list(next(iter(means.values())))
    ratios = np.array([[m[n] / min(m.values()) for n in names] for m in means.values()])
    taus = np.asarray(taus, dtype=float)
    return {n: np.mean(ratios[:, j, None] <= taus[None] * (1 + 1e-12), axis=0)
            for j, n in enumerate(names)}  # fmt: skip


def profile_band(
    errors: Mapping[str, Mapping[str, np.ndarray]], taus: Sequence[float], seed: int = 0
):
    """95 % percentile band of each optimizer's profile: in every resample each study's seeds
    are drawn afresh (the same draw for all its optimizers, which share their seeds)."""
    rng = np.random.default_rng(seed)
    drawn = []
    for study in errors.values():
        n = len(next(iter(study.values())))
        index = rng.integers(0, n, (RESAMPLES, n))
        drawn.append({k: np.asarray(v)[index].mean(axis=1) for k, v in study.items()})
    names = list(next(iter(errors.values())))
    stack = np.array([[d[k] for k in names] for d in drawn])  # (studies, optimizers, resamples)
    ratios = stack / stack.min(axis=1, keepdims=True)
    within = ratios[..., None] <= np.asarray(taus)[None, None, None] * (1 + 1e-12)
    fractions = within.mean(axis=0)  # (optimizers, resamples, taus)
    low, high = np.quantile(fractions, [0.025, 0.975], axis=1)
    return {n: (low[j], high[j]) for j, n in enumerate(names)}


def floored(result: Result) -> dict[str, np.ndarray]:
    """Evaluation errors floored at protocol.ERROR_FLOOR (the registration's rule, amendment 7)."""
    return {k: np.maximum(v, result.floor) for k, v in result.errors.items()}


# --- The cost of a step, measured on its own -------------------------------------------------


def cost(path: str | Path) -> dict:
    """data/evidence/cost/results.json (raises tier.Pending when it is not stored yet)."""
    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {}
    if "provenance" not in data:
        raise tier.Pending(f"the cost experiment is not stored ({path})")
    return data


def cost_table(data: dict, labels: Mapping[str, str]) -> list[list[str]]:
    """Per optimizer: ms per step (mean of the rounds, 95 % BCa), the ratio to SGD with the
    rounds paired (each round times the four in turn), the state bytes per parameter, and,
    where measured, the update's own ms per step (the optimizer's share of the step)."""
    times = {k: np.asarray(v) for k, v in data["seconds_per_step"].items()}
    own = data.get("update_seconds_per_step")
    shown = []
    for name, t in times.items():
        low, high = protocol.bootstrap_interval(t * 1e3)
        ratio = "1 (reference)"
        if name != "sgd":
            r_low, r_high = protocol.paired_interval(t, times["sgd"])
            ratio = f"{sig(t.mean() / times['sgd'].mean())} [{sig(r_low)}, {sig(r_high)}]"
        state = data["state_bytes_per_parameter"][name]
        shown.append([labels.get(name, name), f"{sig(t.mean() * 1e3)} [{sig(low)}, {sig(high)}]",
                      ratio, sig(state)])  # fmt: skip
        if own is not None:
            update = np.asarray(own[name]) * 1e3
            share = update.mean() / (t.mean() * 1e3)
            shown[-1].append(f"{sig(update.mean())} ({sig(100 * share)} % of the step)")
    return shown


# --- Figures ---------------------------------------------------------------------------------


def _panels(count: int, height: float):
    import matplotlib.pyplot as plt

    from rnnopt import plots

    rows = math.ceil(count / 2)
    size = (plots.COLUMN_INCHES, height * rows + 0.6)
    fig, axes = plt.subplots(rows, min(count, 2), figsize=size, squeeze=False)
    for ax in list(axes.flat)[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:count]


def tunability_figure(results: Mapping[str, Result]):
    """One panel per study: each optimizer's expected best tuning error after k draws (seed
    means), shaded between its tuning seeds' own curves; a pending study's panel says so."""
    from rnnopt import plots

    fig, axes = _panels(len(results), 2.5)
    for ax, result in zip(axes, results.values(), strict=True):
        ax.set_title(result.study, fontsize=9)
        ax.set_ylim(0, 1.05)
        if result.state == "pending":
            ax.text(0.5, 0.5, "pending:\nnot stored yet", transform=ax.transAxes, ha="center",
                    va="center", fontsize=9)  # fmt: skip
            ax.set_xticks([])
            continue
        for name, errors in result.tuning.items():
            curve, per_seed = tunability_curves(errors)
            k = np.arange(1, curve.size + 1)
            ax.plot(k, curve, "o-", markersize=3, color=plots.color(name), label=plots.label(name))
            low, high = per_seed.min(axis=0), per_seed.max(axis=0)
            ax.fill_between(k, low, high, color=plots.color(name), alpha=0.15, linewidth=0)
        ax.set_xlabel("k, random draws of the grid", fontsize=8)
        ax.set_ylabel("expected best error", fontsize=8)
    handles, names = next(((a.get_legend_handles_labels()) for a in axes if a.lines), ([], []))
    if handles:
        fig.legend(handles, names, loc="outside lower center", ncol=len(handles), fontsize=8)
    return fig


def profile_figure(errors: Mapping[str, Mapping[str, np.ndarray]], taus: np.ndarray):
    """The performance profile against τ (log axis), each optimizer with its band."""
    import matplotlib.pyplot as plt

    from rnnopt import plots

    means = {s: {k: float(np.mean(v)) for k, v in e.items()} for s, e in errors.items()}
    curves, bands = profile(means, taus), profile_band(errors, taus)
    fig, ax = plt.subplots(figsize=(plots.COLUMN_INCHES, 3.4))
    for name, curve in curves.items():
        colour = plots.color(name)
        ax.step(taus, curve, where="post", color=colour, label=plots.label(name))
        ax.fill_between(taus, *bands[name], step="post", color=colour, alpha=0.12, linewidth=0)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("τ: within this factor of the best mean relative error")
    ax.set_ylabel("fraction of solved studies")
    ax.legend(fontsize=8, loc="lower right")
    return fig, curves
