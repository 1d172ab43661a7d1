"""What the claims chapter shows of the ledger (rnnopt.ledger): the verdict counts, one forest
figure per algorithm, one entry per claim (the one place it is decided, labelled
`claim-<id>`), and the source's summary table beside what was measured. Everything is read from
the ledger's rows and the registration; no verdict or number is typed here.

    rows = ledger.ledger()
    counts_table(rows); forest(rows, "adam"); entry(row, claim); summary_table(rows)
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from rnnopt import ledger, plots, protocol
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


def protocol_text(key: str) -> str:
    """The registration's protocol text `key`, as its latest amendment states it (the
    registration keeps the original and appends amendments)."""
    import yaml

    data = yaml.safe_load(ledger.REGISTRATION.read_text(encoding="utf-8"))
    text, when = data["protocol"][key], data["registered"]
    for amendment in sorted(data.get("amendments") or [], key=lambda a: str(a["date"])):
        if key in (amendment.get("protocol") or {}):
            text, when = amendment["protocol"][key], amendment["date"]
    return f"{' '.join(str(text).split())} (registration, as of {when})"


def title(claim: dict[str, Any]) -> str:
    return claim["claim"].removeprefix("(Summary table) ").strip()


def measured(row: dict[str, Any]) -> str:
    """'estimate [low, high] over N seeds', or '' for a figure not measured (yet)."""
    if row["estimate"] == "":
        return ""
    low, high = format_number(row["ci_low"]), format_number(row["ci_high"])
    return f"{format_number(row['estimate'])} [{low}, {high}] over {samples(row)}"


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
        lines += [f"*Definitional: a check, not a verdict.* {row['figure']}", ""]
        lines += [f"Registered check: {' '.join(claim['check'].split())}"]
        return "\n".join(lines)
    lines += [f"**Verdict: {row['verdict']}.**", ""]
    lines += [f"- Deciding figure ({row['experiment']}): {' '.join(row['figure'].split())}."]
    if row["verdict"] == "pending":
        lines += [f"- Not measured yet: {row['source']}."]
    else:
        lines += [f"- Measured: {measured(row)} (95 % interval)."]
    lines += [f"- Supports the claim: {row['direction']} values; {rule(claim)}."]
    lines += [f"- Why these thresholds: {' '.join(claim.get('why', '').split())}"]
    if row["verdict"] != "pending":
        lines += [f"- Source: {row['source']}."]
    return "\n".join(lines)


def forest(rows: list[dict[str, Any]], algorithm: str):
    """One panel per empirical claim of `algorithm`, each on its own scale: the estimate and
    its 95 % interval, the supporting side of the support threshold shaded green, the far side
    of the refute threshold red; a pending claim's panel says so."""
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
        ax.set_title(f"{row['id']}: {row['verdict']}", fontsize=9, loc="left")
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
            shown = "checked" if row["kind"] == "definitional" else row["verdict"]
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
