"""The ledger: every registered claim is measured by one figure and judged by its registered
rule; nothing about a verdict is typed in."""

from __future__ import annotations

import math

from rnnopt import evidence, ledger, protocol


def test_every_empirical_claim_of_the_registration_has_exactly_one_figure():
    empirical = {c["id"] for c in ledger.registration()["claims"] if c["kind"] == "empirical"}
    assert empirical == set(ledger.FIGURES)


def test_every_definitional_claim_has_a_computed_check():
    definitional = {c["id"] for c in ledger.registration()["claims"] if c["kind"] == "definitional"}
    assert definitional == set(ledger.CHECKS)
    assert "0 bytes of state" in ledger.check_sgd_simple()
    assert "exp_avg, exp_avg_sq" in ledger.check_moments()


def test_each_verdict_follows_from_its_own_interval_and_registered_thresholds():
    for row in ledger.ledger():
        if row["kind"] == "definitional":
            assert row["verdict"] == "" and row["figure"]
        elif row["verdict"] != "pending":
            assert math.isfinite(row["ci_low"]) and row["ci_low"] <= row["ci_high"]
            assert row["seeds"] >= 10
            if "inconclusive by registration" in row["source"]:
                # the registered rule: a claim decided "only when some optimizer solves" its study
                # stays inconclusive while none does, whatever its interval (ledger.Unsolved)
                assert row["verdict"] == "inconclusive"
                continue
            assert row["verdict"] == protocol.verdict(
                row["ci_low"],
                row["ci_high"],
                row["direction"],
                row["support_threshold"],
                row["refute_threshold"],
            )


def test_a_claim_whose_evidence_is_missing_is_pending_and_says_what_is_missing(
    monkeypatch, tmp_path
):
    monkeypatch.setattr(evidence, "EVIDENCE_DIR", tmp_path)
    rows = {r["id"]: r for r in ledger.ledger()}
    assert rows["adam-generalises-worse"]["verdict"] == "pending"
    assert "overfit/adam is not finished" in rows["adam-generalises-worse"]["source"]


def test_amendments_replace_the_fields_they_name_and_keep_the_rest():
    raw = __import__("yaml").safe_load(ledger.REGISTRATION.read_text())
    amended = {c["id"]: c for c in ledger.registration()["claims"]}
    original = {c["id"]: c for c in raw["claims"]}
    last: dict[tuple[str, str], object] = {}  # a later amendment of a field wins
    for amendment in sorted(raw["amendments"], key=lambda a: str(a["date"])):
        for claim_id, changes in (amendment.get("claims") or {}).items():
            last.update({(claim_id, field): value for field, value in changes.items()})
            assert amended[claim_id]["claim"] == original[claim_id]["claim"]
    for (claim_id, field), value in last.items():
        assert amended[claim_id][field] == value
