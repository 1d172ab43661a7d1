"""The algorithm page on a stored tier: the optimizer at its tuned rate on every stored study of
the quick or the full (evidence) tier, beside the four, with the protocol's intervals; the
studies still being computed are named as pending; and, for an optimizer outside the four, the
verdicts of the registered claims that apply to any optimizer (rnnopt.page holds the rest).

For one of the four the runs are the tier's stored ones (data/quick/ or data/evidence/); for any
other optimizer they are the `rnnopt evaluate --out DIR` directory's (DIR/runs/).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rnnopt import compare, evidence, ledger, protocol, tier
from rnnopt.page import FOUR, fmt

if TYPE_CHECKING:
    from rnnopt.page import Page

FASTER_CLAIM = "adam-faster"  # the rule for "faster than SGD" (momentum-faster's is the same)


def source(page: Page) -> ledger.TierSource:
    """Where the page's tier runs are, with the page's optimizer under `page.label`."""
    from rnnopt.evaluate import TIERS, tier_studies

    studies_dir, root = TIERS[page.tier]
    page.label, page.specs, extra = page.optimizer, {}, ()
    if page.optimizer not in FOUR:
        evaluation = Path(page.evaluation_dir)
        page.label = json.loads((evaluation / "evaluation.json").read_text())["class"]
        page.specs = {page.label: page.optimizer}
        extra = ((page.label, evaluation / "runs"),)
        where = json.loads((evaluation / "tier.json").read_text())  # the four's runs
        studies_dir, root = where["studies_dir"], where["root"]
    studies = tuple(s.name for s in tier_studies(page.tier, studies_dir))
    page.source = ledger.TierSource(studies, Path(studies_dir), Path(root), extra)
    return page.source


def _roles(page: Page) -> list[tuple[str, str, str]]:
    """(name in the tier, label, colour) of the page's optimizer and of its contrast, once each."""
    roles = [(page.label, page.name, page.main_color)]
    if page.contrast != page.label:
        roles.append((page.contrast, page.contrast_name, page.contrast_color))
    return roles


def _optimizers(page: Page) -> tuple[str, ...]:
    return FOUR if page.label in FOUR else (*FOUR, page.label)


def tables(page: Page) -> dict[str, list[compare.Row]]:
    """study -> one compare.Row per optimizer, for every study whose runs are all stored; the
    others go to page.pending (study -> what is missing), so that a tier still being computed
    shows what it has and names the rest."""
    page.rows, page.pending = {}, {}
    for study in page.source.studies:
        try:
            page.rows[study] = compare.study_table(study, _optimizers(page), page.source,
                                                   page.specs)  # fmt: skip
        except tier.Pending as pending:
            page.pending[study] = str(pending)
    return page.rows


def tier_name(page: Page) -> str:
    """The tier as the pages name it: "quick", or "evidence" for the parameter value "full"."""
    return {"full": "evidence"}.get(page.tier, page.tier)


def overview(page: Page) -> str:
    """Which tier this is and how much of it is stored, in words (the section's first lines)."""
    stored, total = len(page.rows), len(page.source.studies)
    if page.tier == "quick":
        head = (
            "This is the *quick* tier: the same protocol at a small scale, an illustration that CI "
            "can re-execute. The book's verdicts are not taken from it; they come from the "
            "evidence tier (data/evidence/), in the claims ledger."
        )
    else:
        head = (
            "This is the *evidence* tier (data/evidence/): the runs the claims ledger decides "
            "from, each study at the scale of the literature."
        )
    if not page.pending:
        return f"{head} All {total} of its studies are stored."
    missing = "\n".join(f"- {study}: {why}" for study, why in page.pending.items())
    return (
        f"{head} {stored} of its {total} studies {'is' if stored == 1 else 'are'} stored and "
        f"shown below; the others are still being computed (`make evidence` resumes them) and "
        f"are pending:\n\n{missing}"
    )


def _paired_vs_sgd(page: Page, study: str, name: str) -> str:
    """SGD's mean error over `name`'s, paired by seed (above 1: `name` ends lower), each error
    floored at protocol.ERROR_FLOOR first, as every ratio of the book is (amendment 7)."""
    if name == "sgd":
        return "—"
    errors = {
        v: np.maximum(
            tier.eval_errors(
                study, v, root=page.source.root_of(v), studies_dir=page.source.studies_dir
            ),
            protocol.ERROR_FLOOR,
        )
        for v in ("sgd", name)
    }
    low, high = protocol.paired_interval(errors["sgd"], errors[name])
    ratio = np.mean(errors["sgd"]) / np.mean(errors[name])
    return f"{ratio:.2f} [{low:.2f}, {high:.2f}]"


def study_rows(page: Page, study: str) -> list[list[str]]:
    """The table of one study: tuned rate, error with interval, success, time to success."""
    from rnnopt import plots

    solved = ledger.is_solved(study, page.source)
    shown = []
    for row in page.rows[study]:
        n = len(_study(page, study).evaluation_seeds)
        k = round(row.success * n)
        low, high = protocol.wilson_interval(k, n)
        steps = "not reached"
        if not math.isnan(row.median_steps):
            steps = plots.steps_with_interval(row.median_steps, row.steps_interval)
        name = page.name if row.optimizer == page.label else _label(row.optimizer)
        tuned = tier.tuned_record(study, row.optimizer, page.source.root_of(row.optimizer))
        everywhere = all(v >= 1.0 for v in tuned["tuning_errors"].values())
        edge = tuned["edge"]  # None (interior), 'low'/'high', or 'flat' (nothing learned)
        note = {None: "", "flat": " (flat: nothing learned)"}.get(edge, " (edge)")
        shown.append(
            [
                f"**{name}**" if row.optimizer == page.label else name,
                "diverged at every learning rate" if everywhere else f"{row.lr:.3g}{note}",
                f"{row.error:.3f} [{row.low:.3f}, {row.high:.3f}]",
                f"{k}/{n} [{low:.2f}, {high:.2f}]",
                steps,
                _paired_vs_sgd(page, study, row.optimizer) if solved else "— (unsolved)",
            ]
        )
    return shown


def _label(name: str) -> str:
    from rnnopt import plots

    return plots.label(name)


def _study(page: Page, study: str) -> evidence.Study:
    return evidence.load_study(page.source.studies_dir / f"{study}.yaml")


def study_caption(page: Page, number: int, study: str) -> str:
    """Table T<number>'s caption: the study, and, where no optimizer solved it, that it is not
    ranked (rnnopt.ledger.is_solved), as the comparison chapter does not rank it."""
    said = (
        f"**Table T{number}.** {describe_study(page, study)}: the evaluation seeds at each "
        "optimizer's chosen rate."
    )
    if not ledger.is_solved(study, page.source):
        said += (
            " No optimizer met the success criterion on a tuning seed at this budget: the study"
            " is unsolved, and its errors are not compared (the comparison chapter does not"
            " rank it)."
        )
    return said


def describe_study(page: Page, study: str) -> str:
    """A study in words: task, length, core, budget."""
    spec = _study(page, study)
    options = ", ".join(f"{k} {v}" for k, v in spec.task.items() if k != "name")
    core = spec.model.get("core", "elman")
    return (
        f"{spec.task['name']}{f' ({options})' if options else ''}, {core} "
        f"{spec.model.get('hidden_size', '')}, {spec.train['steps']} steps"
    )


def curves_figure(page: Page):
    """(figure, name, caption): held-out metric during training at the tuned rates, every
    evaluation seed, for the page's optimizer and its contrast, one panel per study."""
    import matplotlib.pyplot as plt

    from rnnopt import plots

    studies = list(page.rows)
    fig, axes = plt.subplots(len(studies), 1, figsize=(plots.COLUMN_INCHES, 2.6 * len(studies)),
                             squeeze=False)  # fmt: skip
    for ax, study in zip(axes[:, 0], studies, strict=True):
        criterion = tier.criterion_of(study, page.source.studies_dir)
        for (name, label, colour), style in zip(_roles(page), ("-", "--"), strict=False):
            histories = tier.eval_histories(study, name, root=page.source.root_of(name))
            lr = tier.tuned_record(study, name, page.source.root_of(name))["lr"]
            plots.plot_mean_spread(ax, histories[0].eval_step, [h.eval_metric for h in histories],
                                   f"{label}, lr {lr:.3g}", colour, style)  # fmt: skip
        ax.axhline(criterion.threshold, color="black", linestyle=":", linewidth=1,
                   label="success")  # fmt: skip
        task = _study(page, study).task["name"]
        if task in ("adding",):
            ax.set_yscale("log")
        ax.set_title(describe_study(page, study), fontsize=10)
        ax.set_ylabel(_metric_name(page, study))
        ax.legend(fontsize=7.5)
    axes[-1, 0].set_xlabel("training step")
    seeds = len(_study(page, studies[0]).evaluation_seeds)
    shown = _roles(page)
    who = f"{page.name} (solid) and {page.contrast_name} (dashed)" if len(shown) > 1 else page.name
    caption = (
        f"{who} on the {tier_name(page)} tier, {'each ' if len(shown) > 1 else ''}at the "
        f"learning rate "
        f"chosen on the tuning seeds: the held-out metric during training on "
        f"the {seeds} evaluation seeds (line: mean, band: range over the seeds). The dotted "
        f"line is the task's success criterion; look at which curves cross it, and when."
    )
    return fig, page.figure_name("tier-curves"), caption


def _metric_name(page: Page, study: str) -> str:
    from rnnopt.tasks import make_task

    options = dict(_study(page, study).task)
    return make_task(options.pop("name"), **options).metric_name


def tuning_errors(page: Page, study: str, name: str) -> dict[float, list[float]]:
    """{lr: [relative error per tuning seed]} over the searched grid (validation half)."""
    root = page.source.root_of(name) / study / name / "tune"
    from rnnopt.store import load_results

    scale = evidence.task_scale(_study(page, study), "tune")
    errors = evidence.relative_errors(load_results(root), *scale)
    return {lr: [errors[lr][s] for s in sorted(errors[lr])] for lr in sorted(errors)}


def sensitivity_figure(page: Page):
    """(figure, name, caption): relative error against the learning rate on the tuning seeds."""
    import matplotlib.pyplot as plt

    from rnnopt import plots

    studies = list(page.rows)
    columns = min(len(studies), 3)
    rows = -(-len(studies) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(plots.COLUMN_INCHES, 3.0 * rows),
                             squeeze=False, sharey=True)  # fmt: skip
    for ax in axes.flat[len(studies) :]:
        ax.set_visible(False)
    for ax, study in zip(axes.flat, studies, strict=False):
        for name, label, colour in _roles(page):
            errors = tuning_errors(page, study, name)
            rates = list(errors)
            values = np.array([errors[r] for r in rates])
            plots.plot_lr_sensitivity(ax, rates, values.mean(axis=1), label, colour,
                                      low=values.min(axis=1), high=values.max(axis=1))  # fmt: skip
            chosen = tier.tuned_record(study, name, page.source.root_of(name))["lr"]
            ax.axvline(chosen, color=colour, linewidth=0.8, linestyle=":")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.05)
        ax.set_title(study, fontsize=9)
        ax.set_xlabel("learning rate")
    for ax in axes[:, 0]:
        ax.set_ylabel("relative error (tuning seeds)")
    axes[0, 0].legend(fontsize=7.5, loc="lower left")
    caption = (
        f"The learning-rate search of the {tier_name(page)} tier: relative error (1: learned "
        f"nothing, "
        f"0: perfect; diverged runs score 1) on the validation half, mean of the tuning seeds "
        f"(band: their range), for "
        + " and ".join(label for _, label, _ in _roles(page))
        + f"; the dotted {'lines mark' if len(_roles(page)) > 1 else 'line marks'} the chosen "
        f"{'rates' if len(_roles(page)) > 1 else 'rate'}. Look at how far from the chosen rate "
        f"the error stays low."
    )
    return fig, page.figure_name("tier-sensitivity"), caption


def tunability_rows(page: Page, draws: tuple[int, ...] = (1, 2, 4)) -> list[list[str]]:
    """Expected best tuning error after k random draws from each optimizer's searched grid."""
    shown = []
    for study, rows in page.rows.items():
        for row in rows:
            if row.optimizer not in (page.label, page.contrast):
                continue
            name = page.name if row.optimizer == page.label else page.contrast_name
            curve = row.tunability
            shown.append(
                [study, name, str(len(curve))]
                + [f"{curve[k - 1]:.3f}" if k <= len(curve) else "—" for k in draws]
            )
    return shown


def verdicts(page: Page) -> list[list[str]]:
    """The registered claims that apply to any optimizer, decided on this tier by their rules."""
    claims = {c["id"]: c for c in ledger.registration()["claims"]}
    rule = claims[FASTER_CLAIM]
    shown = []
    if page.label != "sgd":
        try:
            found = ledger.tier_speedup(page.label, page.source)
        except tier.Pending as pending:
            page.findings["tier_faster"] = None
            page.facts.update(tier_speedup="—", tier_speedup_source=str(pending))
            shown.append([f"{page.name} reaches success sooner than SGD", "—", "inconclusive"])
        else:
            outcome = protocol.verdict(
                found.low,
                found.high,
                rule["direction"],
                rule["support_threshold"],
                rule["refute_threshold"],
            )
            page.findings["tier_faster"] = {"supported": True, "not supported": False}.get(outcome)
            page.facts.update(
                tier_speedup=f"{found.estimate:.2f} [{found.low:.2f}, {found.high:.2f}]",
                tier_speedup_source=found.source,
            )
            shown.append(
                [
                    f"{page.name} reaches success sooner than SGD: SGD's restricted mean steps to "
                    f"success over {page.name}'s, geometric mean over {found.source}",
                    page.facts["tier_speedup"],
                    f"**{outcome}** (supported ≥ {rule['support_threshold']}, refuted ≤ "
                    f"{rule['refute_threshold']})",
                ]
            )
    if not page.rows:
        page.facts.update(tier_state_bytes="—")
        return shown
    state = {
        r.optimizer: r.state_bytes for r in next(iter(page.rows.values()))
    }  # the same in every study
    extra = state[page.label] - state["sgd"]
    page.facts.update(tier_state_bytes=fmt(state[page.label]))
    if page.label == "sgd":
        return shown
    shown.append(
        [
            f"{page.name} keeps more memory than SGD: optimizer state per parameter",
            f"{fmt(state[page.label])} bytes (SGD: {fmt(state['sgd'])})",
            "**supported**" if extra > 0 else "**not supported**",
        ]
    )
    return shown


def facts(page: Page) -> dict[str, Any]:
    """Numbers the prose may cite from the tier: tier_<study>_error and the like."""
    for study in page.source.studies:
        key = study.replace("-", "_")
        if study not in page.rows:
            page.facts[f"tier_{key}_error"] = page.facts[f"tier_{key}_success"] = "pending"
            continue
        mine = next(r for r in page.rows[study] if r.optimizer == page.label)
        page.facts[f"tier_{key}_error"] = f"{mine.error:.3f}"
        page.facts[f"tier_{key}_success"] = f"{mine.success:.0%}"
    page.facts["tier"] = tier_name(page)
    return page.facts


# --- SGD's batch size: equal steps, equal samples, equal time (the sgd-batch study) -----------

BATCH_STUDY = "sgd-batch"


def equal_time_errors(root: Path | None = None, studies_dir: Path | None = None) -> np.ndarray:
    """Per evaluation seed, batch 1's relative error at the evaluation nearest the CPU time
    batch 16 took to finish on that seed, taking a constant time per step of each run (the
    registration's sgd-batch experiment)."""
    root = Path(root or evidence.EVIDENCE_DIR)
    spec = evidence.load_study(Path(studies_dir or evidence.STUDIES_DIR) / f"{BATCH_STUDY}.yaml")
    baseline, higher = evidence.task_scale(spec, "eval")
    short = tier.stage_rows(BATCH_STUDY, "batch-16", "eval", root)
    long = tier.stage_rows(BATCH_STUDY, "batch-1-long", "eval", root)
    histories = tier.stage_histories(BATCH_STUDY, "batch-1-long", "eval", root)
    errors = []
    for a, b, history in zip(short, long, histories, strict=True):
        seconds = {
            name: tier.cpu_seconds(root / BATCH_STUDY / name / "eval", row)
            for name, row in (("batch-16", a), ("batch-1-long", b))
        }
        step = b["steps_done"] * seconds["batch-16"] / seconds["batch-1-long"]
        at = int(np.argmin(np.abs(np.asarray(history.eval_step) - step)))
        metric = history.eval_metric[at]
        errors.append(min(protocol.relative_error(metric, baseline, higher), 1.0))
    return np.array(errors)


def batch_errors(root: Path | None = None, studies_dir: Path | None = None) -> dict[str, Any]:
    """The evaluation seeds' relative errors of every variant of the batch-size study, and of
    batch 1 at batch 16's CPU time ('batch-1-time'). Raises tier.Pending until it is stored."""
    root = Path(root or evidence.EVIDENCE_DIR)
    studies_dir = Path(studies_dir or evidence.STUDIES_DIR)
    spec = evidence.load_study(studies_dir / f"{BATCH_STUDY}.yaml")
    errors = {
        v.label: tier.eval_errors(BATCH_STUDY, v.label, root=root, studies_dir=studies_dir)
        for v in spec.variants
    }
    errors["batch-1-time"] = equal_time_errors(root, studies_dir)
    return errors


def against_batch_16(errors: dict[str, Any], name: str) -> tuple[str, float, float, float]:
    """(higher | lower | not clearly different, the ratio of mean errors, its paired 95 %
    interval): variant `name` of the batch-size study against batch 16, paired by seed."""
    values, reference = errors[name], errors["batch-16"]
    ratio = float(np.mean(values) / np.mean(reference))
    low, high = protocol.paired_interval(values, reference)
    word = "higher" if low > 1 else "lower" if high < 1 else "not clearly different"
    return word, ratio, low, high


def per_sample_sentence(errors: dict[str, Any]) -> str:
    """Batch 1 against batch 16 over equal steps and over equal samples, in words from the
    paired ratios and their intervals: sgd-slow-noisy's verdict holds the steps fixed, and per
    sample the comparison can turn the other way."""

    def side(name: str) -> tuple[str, str]:
        word, ratio, low, high = against_batch_16(errors, name)
        return word, f"{ratio:.2f} [{low:.2f}, {high:.2f}]"

    (steps_word, steps), (samples_word, samples) = side("batch-1"), side("batch-1-long")
    turned = {steps_word, samples_word} == {"higher", "lower"}
    return (
        f"Against batch 16, batch 1's error is {steps_word} over equal steps ({steps} times) and "
        f"{samples_word} over equal samples ({samples} times)"
        + (": per sample the comparison goes the other way." if turned else ".")
    )


def batch_table(root: Path | None = None, studies_dir: Path | None = None) -> tuple[str, str]:
    """(the problem in words, the table): SGD at batch 1, 16 and 256 over equal steps, batch 1
    over as many samples as batch 16 and at batch 16's time: relative error with its interval,
    and each against batch 16, paired by seed. Raises tier.Pending until the study is stored."""
    from rnnopt import plots

    root = Path(root or evidence.EVIDENCE_DIR)
    studies_dir = Path(studies_dir or evidence.STUDIES_DIR)
    spec = evidence.load_study(studies_dir / f"{BATCH_STUDY}.yaml")
    errors = batch_errors(root, studies_dir)
    described = {
        "batch-1": "batch 1, equal steps",
        "batch-16": "batch 16 (the reference)",
        "batch-256": "batch 256, equal steps",
        "batch-1-long": "batch 1, equal samples (16× the steps)",
        "batch-1-time": "batch 1, equal CPU time (read from the equal-samples runs)",
    }
    lines = []
    for name in ("batch-1", "batch-16", "batch-256", "batch-1-long", "batch-1-time"):
        values = errors[name]
        low, high = protocol.bootstrap_interval(values)
        if name == "batch-16":
            paired = "1 (reference)"
        else:
            _, ratio, r_low, r_high = against_batch_16(errors, name)
            paired = f"{ratio:.2f} [{r_low:.2f}, {r_high:.2f}]"
        variant = name if name != "batch-1-time" else "batch-1-long"
        lr = tier.tuned_record(BATCH_STUDY, variant, root)["lr"]
        lines.append([described[name], f"{lr:.3g}",
                      f"{np.mean(values):.3f} [{low:.3f}, {high:.3f}]", paired])  # fmt: skip
    headers = ["SGD", "tuned lr", "relative error [95 % CI]", "over batch 16's [paired CI]"]
    long = next(v for v in spec.variants if v.label == "batch-1-long")
    problem = (
        f"{spec.task['name']} ({spec.task.get('mode', '')}), {spec.model.get('core', 'elman')} "
        f"{spec.model['hidden_size']}, {spec.train['steps']:,} steps; batch 1 also over "
        f"{long.train['steps']:,}"
    )
    return problem, plots.markdown_table(headers, lines)
