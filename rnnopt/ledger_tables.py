"""What the claims chapter shows of the ledger (rnnopt.ledger): the verdict counts, one forest
figure per algorithm, one entry per claim (the one place it is decided, labelled
`claim-<id>`), and the source's summary table beside what was measured. Everything is read from
the ledger's rows and the registration; no verdict or number is typed here.

    rows = ledger.ledger()
    counts_table(rows); forest(rows, "adam"); entry(row, claim); summary_table(rows)
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnnopt import evidence, ledger, plots, protocol, tier
from rnnopt.ledger import COLUMNS, FOUR, format_number, samples

VERDICTS = (*protocol.VERDICTS, "pending")
NUMERIC = {"estimate": float, "ci_low": float, "ci_high": float, "seeds": int}
NUMERIC |= {"support_threshold": float, "refute_threshold": float}

# The source's summary table (../shared/seed/), its four rows in our words: what each optimizer
# is for, and which registered claims stand for its advantages and its disadvantages.
SUMMARY: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "sgd",
        "plain gradient descent on one sample (or a few) at a time",
        ("sgd-simple", "sgd-convex"),
        ("sgd-slow-noisy", "sgd-lr-sensitive"),
    ),
    (
        "momentum",
        "adds a velocity that carries past gradients forward",
        ("momentum-faster", "momentum-local-minima"),
        ("momentum-beta-tuning",),
    ),
    (
        "rmsprop",
        "scales each step by the recent size of its gradients",
        ("rmsprop-per-parameter",),
        ("rmsprop-lr-tuning",),
    ),
    (
        "adam",
        "joins momentum's velocity to RMSprop's scaling",
        ("adam-moments", "adam-faster", "adam-less-tuning"),
        ("adam-cost",),
    ),
)


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ledger file (rnnopt.ledger.write_csv), numbers as numbers ('' for none)."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames}, expected {list(COLUMNS)}")
        rows = list(reader)
    for row in rows:
        for key, kind in NUMERIC.items():
            row[key] = kind(row[key]) if row[key] != "" else ""
    return rows


def claims() -> dict[str, dict[str, Any]]:
    """The registered claims (amendments applied), by id."""
    return {c["id"]: c for c in ledger.registration()["claims"]}


def protocol_text(key: str, path: str | Path | None = None) -> str:
    """The registration's protocol text `key`, as its latest amendment states it (the
    registration keeps the original and appends amendments; a key may first appear in one).
    `path`: another registration file (default: data/registration.yaml)."""
    import yaml

    data = yaml.safe_load(Path(path or ledger.REGISTRATION).read_text(encoding="utf-8"))
    text, when = data["protocol"].get(key), data["registered"]
    for amendment in sorted(data.get("amendments") or [], key=lambda a: str(a["date"])):
        if key in (amendment.get("protocol") or {}):
            text, when = amendment["protocol"][key], amendment["date"]
    if text is None:
        known = sorted({*data["protocol"], *(k for a in data.get("amendments") or []
                                             for k in a.get("protocol") or {})})  # fmt: skip
        raise ValueError(f"key={key!r} is not in the registration's protocol; valid: {known}")
    return f"{' '.join(str(text).split())} (registration, as of {when})"


def title(claim: dict[str, Any]) -> str:
    return claim["claim"].removeprefix("(Summary table) ").strip()


def beside(value: Any, thresholds: tuple[Any, ...] = ()) -> str:
    """`value` as rnnopt.ledger.format_number rounds it (3 significant digits), with as many
    more digits as it takes (up to 8) to tell it from a threshold it would otherwise print as:
    1.0331 beside a threshold of 1.03, not 1.03."""
    shown = format_number(value)
    if not isinstance(value, float) or math.isnan(value):
        return shown
    close = [float(t) for t in thresholds if t != "" and float(t) != value]
    digits = 3
    while digits < 8 and any(shown == f"{t:g}" or float(shown) == t for t in close):
        digits += 1
        shown = f"{value:.{digits}g}"
    return shown


def measured(row: dict[str, Any]) -> str:
    """'estimate [low, high] over N seeds', or '' for a figure not measured (yet). A bound
    that would round to a threshold is printed with the digits that show its side."""
    if row["estimate"] == "":
        return ""
    limits = (row.get("support_threshold", ""), row.get("refute_threshold", ""))
    low, high = beside(row["ci_low"], limits), beside(row["ci_high"], limits)
    said = f"{beside(row['estimate'], limits)} [{low}, {high}] over {samples(row)}"
    if row["ci_low"] == row["ci_high"]:
        said += " (every seed gives the same value: the figure is deterministic here)"
    return said


def stored_evidence(row: dict[str, Any], source: ledger.TierSource | None = None) -> str:
    """How much of a pending claim's evidence is stored, from rnnopt.tier's readers: for the
    tier figures, how many tier studies have every optimizer finished; for one study, how many
    of its variants are finished; for another experiment, whether its results are stored."""
    experiment = str(row.get("experiment", ""))
    if experiment == "tier":
        source = source or ledger.evidence_tier()
        done = {s: _finished(s, source.studies_dir, source.root) for s in source.studies}
        complete = sum(k == n for k, n in done.values())
        pairs, total = sum(k for k, _ in done.values()), sum(n for _, n in done.values())
        return (
            f"{complete} of {len(done)} tier studies stored ({pairs} of {total} "
            "study–optimizer pairs finished)"
        )
    spec = evidence.STUDIES_DIR / f"{experiment}.yaml"
    if experiment and spec.exists():
        k, n = _finished(experiment)
        labels = [v.label for v in evidence.load_study(spec).variants]
        kind = "optimizers" if set(labels) <= set(FOUR) else "variants"
        return f"{experiment}: {k} of {n} {kind} finished"
    return f"experiment {experiment}: not stored yet" if experiment else "not stored yet"


def _finished(study: str, studies_dir: Path | None = None, root: Path | None = None):
    """(finished variants, all variants) of a study: a variant is finished once its tuned.json
    is stored (rnnopt.tier.tuned_record)."""
    spec = evidence.load_study(Path(studies_dir or evidence.STUDIES_DIR) / f"{study}.yaml")
    finished = 0
    for variant in spec.variants:
        try:
            tier.tuned_record(study, variant.label, root)
            finished += 1
        except tier.Pending:
            pass
    return finished, len(spec.variants)


def rule(claim: dict[str, Any]) -> str:
    """The registered thresholds as the rule of protocol.verdict states them."""
    at, beyond = ("≥", "≤") if claim["direction"] == "higher" else ("≤", "≥")
    support, refute = claim["support_threshold"], claim["refute_threshold"]
    return (
        f"supported if the whole interval is {at} {support:g}; not supported if it is wholly "
        f"{beyond} {refute:g}; inconclusive otherwise"
    )


def counts_table(rows: list[dict[str, Any]]) -> str:
    """How many claims got each verdict, per algorithm and in all."""
    headers = ["verdict", *(plots.label(a) for a in FOUR), "all"]
    table = []
    for verdict in (*VERDICTS, ""):
        chosen = [r for r in rows if r["verdict"] == verdict]
        counts = [sum(r["algorithm"] == a for r in chosen) for a in FOUR]
        table.append([verdict or "definitional (no verdict)", *counts, len(chosen)])
    return plots.markdown_table(headers, table)


def link(claim_id: str, text: str | None = None) -> str:
    """A MyST reference to a claim's entry (the form other chapters use)."""
    return f"{{ref}}`{text or claim_id} <claim-{claim_id}>`"


def entry(row: dict[str, Any], claim: dict[str, Any]) -> str:
    """A claim's entry: the label target other chapters link to, its figure, interval, rule,
    the reason for the thresholds, the verdict and where the numbers come from."""
    lines = [f"(claim-{row['id']})=", f"### {title(claim)}", ""]
    if row["kind"] == "definitional":
        check = " ".join(str(row["figure"]).split())
        lines += [f"*Definitional: a check, not a verdict.* {check}", ""]
        lines += [f"Registered check: {' '.join(claim['check'].split())}"]
        return "\n".join(lines)
    lines += [f"**Verdict: {row['verdict']}.**{_qualified(row)}", ""]
    lines += [f"- Deciding figure ({row['experiment']}): {' '.join(row['figure'].split())}."]
    if row["verdict"] == "pending":
        lines += [f"- Not measured yet: {stored_evidence(row)}; first missing: {row['source']}."]
    else:
        lines += [f"- Measured: {measured(row)} (95 % interval)."]
    lines += [f"- Supports the claim: {row['direction']} values; {rule(claim)}."]
    lines += [f"- Why these thresholds: {' '.join(claim.get('why', '').split())}"]
    if row["id"] in CONTEXT and row["verdict"] != "pending":
        lines += [f"- Beside it: {CONTEXT[row['id']]()}"]
    if row["verdict"] != "pending" and row["experiment"] in evidence.study_names():
        lines += [_clipping_line(row["experiment"])]
    lines += [amendments_line(row["id"])]
    if row["verdict"] != "pending":
        lines += [f"- Source: {row['source']}."]
    return "\n".join(lines)


# A verdict whose registered figure covers less than the claim's words says so beside it.
SCOPE = {  # what the verdict covers, where that is less than the claim says
    "adam-less-tuning": "the learning rate only: β1, β2 and ε stay at their defaults",
    "sgd-slow-noisy": "progress per step: equal steps, not equal samples (the entry gives both)",
    "rmsprop-cost": "time per step: the memory half holds by construction (bytes counted)",
    "adam-cost": "time per step: the memory half holds by construction (bytes counted)",
}


def _qualified(row: dict[str, Any]) -> str:
    """What an 'inconclusive' means here, and the scope of a verdict narrower than its claim."""
    said = ""
    if row["verdict"] == "inconclusive" and "inconclusive by registration" in row["source"]:
        said = (
            " The study it is decided on is solved by none of the optimizers compared, so the "
            "registered rule makes it inconclusive whatever the interval."
        )
    elif row["verdict"] == "inconclusive":
        why = protocol.why_inconclusive(
            float(row["ci_low"]), float(row["ci_high"]),
            float(row["support_threshold"]), float(row["refute_threshold"]),
        )  # fmt: skip
        said = (
            " The interval lies between the two thresholds: an effect measured, smaller than "
            "the claim needs and larger than none."
            if why == "between"
            else " The interval crosses a threshold: these seeds cannot tell."
        )
    if row["id"] in SCOPE and row["verdict"] != "pending":
        said += f" The verdict is for {SCOPE[row['id']]}."
    return said


def _clipping_line(study: str) -> str:
    """How often clipping bound in the study a claim is decided on: at the tuned rates, the
    median share of steps clipped over the evaluation seeds, per variant stored."""
    medians = {}
    for variant in evidence.load_study(evidence.STUDIES_DIR / f"{study}.yaml").variants:
        try:  # (the verdict may need fewer variants than the study has)
            medians[variant.label] = float(np.median(tier.clipped_shares(study, variant.label)))
        except tier.Pending:
            continue
    shares = [f"{plots.label(label)} {100 * share:.0f} %" for label, share in medians.items()]
    said = (
        "clipping almost never bound here"
        if max(medians.values()) < 0.01
        else "what is compared is each optimizer with clipping as part of its update"
    )
    line = (
        "- Clipping: steps clipped at the tuned rates (median over the evaluation seeds): "
        + ", ".join(shares)
        + f"; {said} (How we measure, Clipping)."
    )
    if evidence.load_study(evidence.STUDIES_DIR / f"{study}.yaml").evaluate == "grid":
        line += " " + _clipping_across_rates(study, list(medians))
    return line


def _clipping_across_rates(study: str, labels: list[str]) -> str:
    """The clipped shares at every rate a sensitivity figure averages (the evaluation seeds at
    each rate within a decade of the tuned one): their median, and the rate where most bind."""
    parts = []
    for label in labels:
        by_rate = tier.clipped_shares_by_rate(study, label)
        everywhere = np.median([s for shares in by_rate.values() for s in shares])
        worst = max(by_rate, key=lambda lr: np.median(by_rate[lr]))
        parts.append(
            f"{plots.label(label)} {100 * everywhere:.0f} % (at most "
            f"{100 * np.median(by_rate[worst]):.0f} %, at lr {worst:.3g})"
        )
    return (
        "Over every rate within a decade of the tuned one, which the sensitivity figures "
        "average (median over rates and seeds): " + ", ".join(parts) + "."
    )


def _mean_with_interval(label: str, values: np.ndarray) -> str:
    """'label mean [low, high]': a mean with its 95 % bootstrap interval, as the ledger rounds."""
    low, high = protocol.bootstrap_interval(values)
    mean = format_number(float(values.mean()))
    return f"{label} {mean} [{format_number(low)}, {format_number(high)}]"


def _stuck_elsewhere() -> str:
    """sgd-local-minima's figure for the other three, so that an absolute claim about SGD is
    read against what the surface does to every optimizer (shown, not decided)."""
    shares = [
        _mean_with_interval(
            plots.label(name), 1.0 - ledger.experiment_values("surfaces", name, "global_fraction")
        )
        for name in FOUR[1:]
    ]
    return (
        "the same figure for the other three, each at its own rate best for escaping: "
        + ", ".join(shares)
        + ". The claim is about SGD alone; these say how hard the surface is for every method."
    )


def _each_beta() -> str:
    """momentum-beta-tuning's figure takes the worst β over the best; each β's own error."""
    shown = [
        _mean_with_interval(f"β = {beta}:", ledger.eval_errors("momentum-beta", f"beta-{beta}"))
        for beta in ("0.5", "0.9", "0.99")
    ]
    return (
        "each β's mean relative error at its own tuned rate, "
        + "; ".join(shown)
        + ". The ratio is the worst of the three over the best."
    )


def _update_alone(optimizer: str) -> Callable[[], str]:
    """The cost claims time the whole step (as registered); the update's own time and the state
    it keeps, beside it."""

    def said() -> str:
        data = json.loads((evidence.EVIDENCE_DIR / "cost" / "results.json").read_text())
        state = data["state_bytes_per_parameter"]
        own = data.get("update_seconds_per_step")
        memory = f"it keeps {format_number(state[optimizer])} bytes of state per parameter, SGD 0"
        if own is None:
            return memory[0].upper() + memory[1:] + "."
        mine, sgd = (1e3 * float(np.mean(own[n])) for n in (optimizer, "sgd"))
        step = 1e3 * float(np.mean(data["seconds_per_step"][optimizer]))
        return (
            f"the update alone takes {format_number(mine)} ms a step against SGD's "
            f"{format_number(sgd)} ms, {format_number(100 * mine / step)} % of its whole step, "
            "so the whole step can differ from SGD's by little more than that share, and a "
            "ratio below 1 cannot come from the update: it is an artefact of the timing; "
            f"{memory}. The registered figure is the whole step a "
            "user waits for, so the verdict is about time: the memory half of the claim holds by "
            "construction."
        )

    return said


def _percent(label: str, shares: np.ndarray) -> str:
    """'label 31 % [24 %, 36 %]': a mean share with its 95 % bootstrap interval, in percent."""
    low, high = (format_number(100 * b) for b in protocol.bootstrap_interval(shares))
    return f"{label} {format_number(100 * float(np.mean(shares)))} % [{low} %, {high} %]"


def _overfitting() -> str:
    """adam-generalises-worse is decided on held-out error; the registration shows the
    generalisation gap beside it, and how far each held-out loss rose from its best."""
    histories = {name: tier.eval_histories("overfit", name) for name in ("adam", "sgd")}
    gaps = [
        _mean_with_interval(
            plots.label(name), np.array([protocol.generalisation_gap(h) for h in hs])
        )
        for name, hs in histories.items()
    ]
    rises = [
        _percent(plots.label(name), np.array([protocol.held_out_rise(h) for h in hs]))
        for name, hs in histories.items()
    ]
    return (
        "the generalisation gap (held-out loss at the end minus the training loss over the last "
        f"{100 * protocol.GAP_TAIL:g} % of the steps): "
        + ", ".join(gaps)
        + "; the held-out loss at the "
        "end above its lowest value during the run: "
        + ", ".join(rises)
        + ". The decided figure is "
        "the held-out error, which a loss growing on confident mistakes need not move."
    )


def _per_sample() -> str:
    """sgd-slow-noisy compares batch sizes at equal steps; at equal samples batch 1 against
    batch 16, and how often each run was clipped, beside it (what is stored of them)."""
    from rnnopt import page_tier

    said = "the figure holds the number of steps fixed"
    try:
        errors = page_tier.batch_errors()
    except tier.Pending:
        errors = None  # the equal-samples runs (16 times the steps) are not stored yet
    if errors is not None:
        side, ratio, low, high = page_tier.against_batch_16(errors, "batch-1-long")
        said += (
            f". At equal samples (batch 1 over 16 times the steps) batch 1's error is {side}: "
            f"{format_number(ratio)} [{format_number(low)}, {format_number(high)}] of batch 16's, "
            "paired by seed; so the verdict is about progress per step, not per sample"
        )
    clipped = [_percent(v, tier.clipped_shares("sgd-batch", v)) for v in ("batch-16", "batch-256")]
    return (
        f"{said}. Steps clipped at the tuned rates (mean over the evaluation seeds, with its "
        "95 % interval; the Clipping line below gives medians): "
        + ", ".join(clipped)
        + " (each batch size has its own clipping threshold)."
    )


def _where_the_lattice_falls() -> str:
    """momentum-damps, read against the ravine's curvature λ_max. A gradient step multiplies
    the steep coordinate by 1 − lr·λ_max: it keeps its sign up to lr = 1/λ_max, alternates it
    (shrinking) up to 2/λ_max, and grows beyond. Heavy ball with β oscillates along it when its
    iteration's eigenvalues are complex: (1 − √β)² < lr·λ_max < (1 + √β)²."""
    from rnnopt import experiments

    data = ledger.experiment_data("ravine")
    steep, beta = experiments.RAVINE_STEEP, 0.9  # torch's momentum default, which the ravine uses
    sgd, momentum = (float(data["tuned"][n]["lr"]) for n in ("sgd", "momentum"))
    grid = sorted(float(r) for r in data["tuned"]["sgd"]["tuning_errors"])
    above = next((r for r in grid if r > sgd), None)
    shares = {
        r: float(
            np.mean([m["flip_fraction"] for m in data["measurements"]["sgd"][repr(r)].values()])
        )
        for r in (sgd, above)
        if r is not None
    }

    def fate(lr: float) -> str:  # what a gradient step does to the steep coordinate at `lr`
        product = lr * steep
        if math.isclose(product, 1):
            return "is wiped out in one step"
        return "keeps its sign" if product < 1 else "alternates" if product < 2 else "grows"

    where = fate(sgd)
    said = (
        f"SGD's tuned rate is {format_number(sgd)}, lr·λ_max = {format_number(sgd * steep)} on "
        f"this ravine (λ_max = {steep:g}), where a gradient step's steep coordinate {where}; its "
        f"share of reversals there is {format_number(shares[sgd])}"
    )
    if above is not None:
        said += (
            f", and at the next rate on the lattice, {format_number(above)} (lr·λ_max = "
            f"{format_number(above * steep)}, where it {fate(above)}), "
            f"{format_number(shares[above])}"
        )
    low, high = (1 - beta**0.5) ** 2, (1 + beta**0.5) ** 2
    inside = "inside" if low < momentum * steep < high else "outside"
    losses = {
        n: float(ledger.experiment_values("ravine", n, "error").mean()) for n in ("sgd", "momentum")
    }
    return (
        f"{said}: the figure turns on where the 1/3-decade lattice falls against 1/λ_max. "
        f"Momentum (β = {beta:g}) at {format_number(momentum)} has lr·λ_max = "
        f"{format_number(momentum * steep)}, {inside} ({format_number(low)}, "
        f"{format_number(high)}), the range where heavy ball oscillates along the steep "
        "direction. Loss after 200 steps: "
        f"SGD {format_number(losses['sgd'])}, momentum {format_number(losses['momentum'])}."
    )


# Context shown beside a claim's verdict: the same measurement for the other optimizers, or the
# parts of a figure (shown, not decided).
CONTEXT = {
    "sgd-local-minima": _stuck_elsewhere,
    "momentum-beta-tuning": _each_beta,
    "rmsprop-cost": _update_alone("rmsprop"),
    "adam-cost": _update_alone("adam"),
    "adam-generalises-worse": _overfitting,
    "sgd-slow-noisy": _per_sample,
    "momentum-damps": _where_the_lattice_falls,
}


def amendments_line(claim_id: str, path: str | Path | None = None) -> str:
    """Which registration amendments changed this claim (by number, as How we measure lists
    them), and which of them came after the runs it judges (the registration's `after_runs`)."""
    import yaml

    data = yaml.safe_load(Path(path or ledger.REGISTRATION).read_text(encoding="utf-8"))
    amendments = data.get("amendments") or []
    named = [k for k, a in enumerate(amendments, start=1) if claim_id in (a.get("claims") or {})]
    after = sorted(
        {a["after_runs"][claim_id] for a in amendments if claim_id in a.get("after_runs", {})}
    )
    if not named and not after:
        return "- Amendments: none; the claim is decided as first registered."
    said = f"- Amendments: {', '.join(map(str, named))}" if named else "- Amendments: none by name"
    if after:
        said += (
            f"; made after the runs it judges: amendment {', '.join(map(str, after))} "
            "(the reasons are on the How we measure page)"
        )
    return said + "."


def forest(rows: list[dict[str, Any]], algorithm: str):
    """One panel per empirical claim of `algorithm`, each on its own scale: the estimate and
    its 95 % interval, the supporting side of the support threshold shaded green, the far side
    of the refute threshold red; a pending claim's panel says so, and one the registration
    makes inconclusive whatever its interval (no optimizer solves its study) says that, its
    zones faded."""
    import matplotlib.pyplot as plt

    chosen = [r for r in rows if r["algorithm"] == algorithm and r["kind"] == "empirical"]
    fig, axes = plt.subplots(
        len(chosen), 1, figsize=(plots.COLUMN_INCHES, 0.2 + 0.95 * len(chosen)), squeeze=False
    )
    for ax, row in zip(axes[:, 0], chosen, strict=True):
        support, refute = float(row["support_threshold"]), float(row["refute_threshold"])
        known = row["estimate"] != ""
        values = [support, refute, *((row["ci_low"], row["ci_high"]) if known else ())]
        low, high = min(values), max(values)
        pad = 0.25 * (high - low) or 0.1 * (abs(high) or 1.0)
        ax.set_xlim(low - pad, high + pad)
        left, right = ax.get_xlim()
        towards = right if row["direction"] == "higher" else left
        away = left if row["direction"] == "higher" else right
        ax.axvspan(*sorted((support, towards)), color="tab:green", alpha=0.15, lw=0)
        ax.axvspan(*sorted((refute, away)), color="tab:red", alpha=0.15, lw=0)
        ax.axvline(support, color="tab:green", lw=1)
        ax.axvline(refute, color="tab:red", lw=1)
        if known:
            ax.plot([row["ci_low"], row["ci_high"]], [0, 0], color=plots.color(algorithm), lw=3)
            ax.plot([row["estimate"]], [0], "o", color="black", ms=5)
        else:
            ax.text(0.5, 0, "pending", transform=ax.get_yaxis_transform(), ha="center",
                    va="center", fontsize=9, style="italic")  # fmt: skip
        ax.set_yticks([])
        ax.set_ylim(-1, 1)
        ax.grid(False)
        unsolved = "inconclusive by registration" in row["source"]
        if unsolved:  # the rule overrides the interval: the zones do not apply, and it shows
            for patch in ax.patches:
                patch.set_alpha(0.05)
        said = " (by registration: its study is unsolved)" if unsolved else ""
        ax.set_title(f"{row['id']}: {row['verdict']}{said}", fontsize=9, loc="left")
    return fig


def summary_table(rows: list[dict[str, Any]]) -> str:
    """The source's four-row summary, in our words, with each advantage and disadvantage beside
    the verdict and interval of the claim that stands for it (linked to its entry)."""
    by_id = {r["id"]: r for r in rows}
    registered = claims()

    def cell(ids: tuple[str, ...]) -> str:
        return "; ".join(title(registered[i]).rstrip(".") for i in ids)

    def found(ids: tuple[str, ...]) -> str:
        parts = []
        for i in ids:
            row = by_id[i]
            shown = "definitional" if row["kind"] == "definitional" else row["verdict"]
            if i in SCOPE and row["verdict"] != "pending":
                shown += f" ({SCOPE[i].split(':')[0]})"  # e.g. "supported (the learning rate only)"
            number = measured(row).replace(" over ", ", ")
            parts.append(link(i, shown) + (f", {number}" if number else ""))
        return "<br>".join(parts)

    headers = ["optimizer", "what it is for", "advantages (source)", "measured"]
    headers += ["disadvantages (source)", "measured"]
    table = [
        [plots.label(a), purpose, cell(good), found(good), cell(bad), found(bad)]
        for a, purpose, good, bad in SUMMARY
    ]
    return plots.markdown_table(headers, table)
