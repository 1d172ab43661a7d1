"""The ledger: every claim measured and judged by its rule (`evaluate`, one row per claim),
written to CSV at once (`write_csv`), and shown as Markdown (`ledger_table`, `rules_table`,
`verdict_counts`)."""

from __future__ import annotations

import collections
import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rnnopt import plots
from rnnopt.checks import check_output_file, invalid
from rnnopt.claims.lab import Lab
from rnnopt.claims.rules import Claim, format_figure
from rnnopt.claims.settings import Settings
from rnnopt.store import write_atomic

COLUMNS = ("claim", "algorithm", "experiment", "measured", "rule", "verdict")
REPRODUCE = "chapters/claims.ipynb: python -m rnnopt.book claims --force"


def evaluate(claims: Iterable[Claim], lab: Lab | Mapping[str, Any]) -> list[dict[str, str]]:
    """Measure every claim and judge it by its rule; one row per claim (see COLUMNS, plus
    ``id``, ``figures`` and ``reproduce``). `lab` may be a Lab or a mapping of Settings."""
    if not isinstance(lab, Lab):
        lab = Lab(Settings(**dict(lab)))
    rows = []
    for claim in claims:
        figures = claim.measure(lab)
        measured = "; ".join(
            f"{name} = {format_figure(figures[name])}" for name in claim.figures_shown()
        )
        rows.append(
            {
                "id": claim.id,
                "claim": claim.text,
                "algorithm": claim.algorithm,
                "experiment": claim.experiment,
                "measured": measured,
                "rule": claim.rule.text(),
                "verdict": claim.rule.verdict(figures),
                "figures": figures,
                "section": claim.section,
                "reproduce": f"{REPRODUCE} (section “{claim.section}”)",
            }
        )
    return rows


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write the ledger's COLUMNS to `path` at once (a reader never sees half a file)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())
    return path


LEDGER_COLUMNS = ("claim", "measured", "rule", "verdict")


def ledger_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] = LEDGER_COLUMNS) -> str:
    """Ledger rows as a Markdown table of `columns` (a `|` in a cell escaped; verdicts bold)."""

    def cell(row: Mapping[str, Any], key: str) -> str:
        text = str(row[key]).replace("|", "\\|")
        return f"**{text}**" if key == "verdict" else text

    return plots.markdown_table(columns, [[cell(row, key) for key in columns] for row in rows])


def rules_table(claims: Iterable[Claim]) -> str:
    """Every claim with its experiment and its rule, as they stand before anything runs."""
    rows = [
        {"claim": f"`{c.id}`: {c.text}", "experiment": c.experiment, "rule": c.rule.text()}
        for c in claims
    ]
    return ledger_table(rows, ("claim", "experiment", "rule"))


def verdict_counts(rows: Sequence[Mapping[str, Any]]) -> str:
    """How many claims got each verdict, e.g. "21 claims: 9 supported, 8 mixed, 4 not
    supported"."""
    counts = collections.Counter(row["verdict"] for row in rows)
    shown = ", ".join(f"{counts[v]} {v}" for v in ("supported", "mixed", "not supported"))
    return f"{len(rows)} claims: {shown}"


def check_ledger_csv(name: str, value: Any) -> Path | None:
    """Where the chapter writes the ledger: a file that can be written, or None for "" (the
    ledger is not written); else ValueError, before any experiment runs."""
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(invalid(name, value, "a path to a file, or '' for nowhere"))
    return None if value == "" else check_output_file(name, value)
