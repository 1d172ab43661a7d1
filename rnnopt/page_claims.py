"""The algorithm chapter's claims, as the ledger decides them: for each registered claim of the
chapter's algorithm (data/registration.yaml `algorithm:`) its deciding figure, estimate and 95 %
interval, the verdict and a link to the one place it is decided (the claims chapter's label
`claim-<id>`). The chapter decides no verdict of its own for the book's four optimizers.

    rows = claim_rows("momentum")      # Markdown table rows
    facts = claim_facts("momentum")    # {"claim_momentum_faster": "{ref}`pending <claim-...>`"}
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from rnnopt.page import FOUR

__all__ = [
    "FOUR", "claim_facts", "claim_rows", "claims_of", "entry", "interval", "link", "missing", "word"
]  # fmt: skip
PENDING = "pending"
WORDS = {
    "supported": "supported",
    "not supported": "not supported",
    "inconclusive": "inconclusive",
    "pending": "pending",
    "": "definitional",
}


@cache
def _ledger() -> tuple[dict[str, Any], ...]:
    from rnnopt import ledger

    return tuple(ledger.ledger())


def claims_of(algorithm: str) -> list[dict[str, Any]]:
    """The ledger's rows whose registered algorithm is `algorithm`, in registration order."""
    return [dict(row) for row in _ledger() if row["algorithm"] == algorithm]


def link(claim_id: str, text: str) -> str:
    """A MyST reference to the claim's ledger entry (label `claim-<id>` in the claims chapter)."""
    return f"{{ref}}`{text} <claim-{claim_id}>`"


def word(row: dict[str, Any]) -> str:
    """The ledger's verdict in words: supported, not supported, inconclusive, pending, or
    definitional (a claim checked by definition carries no verdict), with the verdict's scope
    where it covers less than the claim (rnnopt.ledger_tables.SCOPE), e.g. 'supported (the
    learning rate only)'."""
    from rnnopt.ledger_tables import SCOPE

    scope = SCOPE.get(row["id"]) if row["verdict"] not in ("pending", "") else None
    return WORDS[row["verdict"]] + (f" ({scope.split(':')[0]})" if scope else "")


def missing(row: dict[str, Any]) -> str:
    """What a pending claim waits for, in the claims page's words: how much of its evidence is
    stored (rnnopt.ledger_tables.stored_evidence: for a tier claim, how many of the tier's
    studies) and the first thing missing, e.g. '2 of 8 tier studies stored (...); first missing:
    adding-elman-T100/sgd is not finished'. Naming only the first missing study would understate
    what a tier claim waits for."""
    from rnnopt.ledger_tables import stored_evidence

    return f"{stored_evidence(row)}; first missing: {row['source']}"


def interval(row: dict[str, Any]) -> str:
    """'estimate [low, high] over n seeds' (3 significant digits), or why there is none yet."""
    if row["kind"] == "definitional":
        return "—"
    if row["verdict"] == "pending":
        return f"{PENDING}: {missing(row)} (`make evidence`)"
    values = [row.get(k) for k in ("estimate", "ci_low", "ci_high")]
    if any(not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
        return f"— ({row['source']})"
    from rnnopt.ledger import samples

    estimate, low, high = values
    return f"{estimate:.3g} [{low:.3g}, {high:.3g}] over {samples(row)}"


def entry(row: dict[str, Any]) -> str:
    """The verdict, linked, with its figure: 'supported (1.5 [1.2, 1.9] over 10 seeds)',
    'pending — 2 of 8 tier studies stored (...); first missing: ... (`make evidence`)', or
    'definitional'."""
    verdict = link(row["id"], word(row))
    if row["kind"] == "definitional":
        return verdict
    if row["verdict"] == "pending":
        return f"{verdict} — {missing(row)} (`make evidence`)"
    if "inconclusive by registration" in row["source"]:  # the study is solved by no optimizer
        return f"{verdict} by registration, no optimizer solving its study ({interval(row)})"
    return f"{verdict} ({interval(row)})"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def claim_rows(algorithm: str) -> list[list[str]]:
    """One row per claim: the claim, its deciding figure (or check), estimate [95 % CI] or
    pending, the verdict, linked to the ledger entry that decides it."""
    return [
        [
            _cell(row["claim"]),
            _cell(row["figure"]),
            _cell(interval(row)),
            link(row["id"], word(row)),
        ]
        for row in claims_of(algorithm)
    ]


def claim_facts(algorithm: str) -> dict[str, str]:
    """Facts the prose cites: claim_<id> (the verdict, linked to its ledger entry),
    claim_<id>_figure (estimate [interval], or pending) and claim_<id>_entry (the two together,
    as a phrase), ids with '-' written '_'."""
    facts = {}
    for row in claims_of(algorithm):
        key = "claim_" + row["id"].replace("-", "_")
        facts[key] = link(row["id"], word(row))
        facts[f"{key}_figure"] = interval(row)
        facts[f"{key}_entry"] = entry(row)
    return facts
