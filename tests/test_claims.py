"""Specification of the claims ledger as the book stores it: data/claims.csv holds every registered
claim in the registered columns, each verdict follows from the file's own columns by the
registered rule, the file is what the stored runs give (so it cannot drift from them), and the
claims chapter is the one place each claim is decided (one label `claim-<id>` per claim)."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from rnnopt import ledger, ledger_tables, protocol, store, tier
from rnnopt.ledger import COLUMNS, FOUR
from rnnopt.tier import Pending

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT / "data" / "claims.csv"
CHAPTER = ROOT / "chapters" / "claims.ipynb"
TEMPLATE = ROOT / "chapters" / "_templates" / "claims.ipynb"
REGISTERED = {c["id"]: c for c in ledger.registration()["claims"]}
NUMBERS = ("estimate", "ci_low", "ci_high", "seeds")


@pytest.fixture(scope="module")
def stored():
    return ledger_tables.read_csv(CSV)


@pytest.fixture(scope="module")
def recomputed():
    return ledger.ledger()


def has_interval(row) -> bool:
    return row["ci_low"] != ""


def outputs(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return [
        "".join(o.get("data", {}).get("text/markdown", "")) or "".join(o.get("text", ""))
        for cell in nb["cells"]
        for o in cell.get("outputs", [])
    ]


# --- The file -------------------------------------------------------------------------------


def test_the_file_has_exactly_the_registered_columns_in_order():
    with open(CSV, encoding="utf-8", newline="") as f:
        header = next(csv.reader(f))
    assert (
        tuple(header)
        == COLUMNS
        == (
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
    )


def test_the_file_has_one_row_per_registered_claim_in_registration_order(stored):
    assert [r["id"] for r in stored] == list(REGISTERED)


def test_each_row_carries_its_registered_wording_kind_direction_and_thresholds(stored):
    for row in stored:
        claim = REGISTERED[row["id"]]
        assert row["claim"] == claim["claim"] and row["algorithm"] in FOUR
        assert row["algorithm"] == claim["algorithm"] and row["kind"] == claim["kind"]
        assert row["kind"] in ("empirical", "definitional")
        if row["kind"] == "empirical":
            assert row["experiment"] == claim["experiment"] and row["figure"] == claim["figure"]
            assert row["direction"] == claim["direction"] in ("higher", "lower")
            assert row["support_threshold"] == claim["support_threshold"]
            assert row["refute_threshold"] == claim["refute_threshold"]


def test_every_verdict_follows_from_the_files_own_interval_and_thresholds(stored):
    for row in stored:
        if row["kind"] != "empirical" or not has_interval(row):
            continue
        rule = protocol.verdict(
            row["ci_low"],
            row["ci_high"],
            row["direction"],
            row["support_threshold"],
            row["refute_threshold"],
        )
        if "inconclusive by registration" in row["source"]:  # an unsolved study decides nothing
            assert row["verdict"] == "inconclusive", row["id"]
        else:
            assert row["verdict"] == rule, row["id"]


def test_each_measured_claim_has_a_finite_interval_from_at_least_10_seeds_around_its_estimate(
    stored,
):
    for row in stored:
        if row["kind"] == "empirical" and row["verdict"] != "pending":
            assert has_interval(row), f"{row['id']} has a verdict but no interval"
            assert isinstance(row["seeds"], int) and row["seeds"] >= 10, row["id"]
            assert all(math.isfinite(row[k]) for k in ("estimate", "ci_low", "ci_high"))
            assert row["ci_low"] <= row["estimate"] <= row["ci_high"], row["id"]
            assert row["verdict"] in protocol.VERDICTS
            assert row["source"].startswith("data/evidence/") or "tier studies" in row["source"]


def test_a_pending_claim_has_no_figure_and_says_what_is_missing(stored):
    for row in stored:
        if row["verdict"] == "pending":
            assert row["kind"] == "empirical"
            assert all(row[k] == "" for k in NUMBERS), row["id"]
            assert "not finished" in row["source"] or "solved" in row["source"], row["source"]


def test_a_definitional_claim_has_its_computed_check_and_no_verdict(stored):
    for row in stored:
        if row["kind"] == "definitional":
            assert row["verdict"] == "" and row["experiment"] == ""
            assert all(row[k] == "" for k in NUMBERS)
            assert row["figure"] == ledger.CHECKS[row["id"]](), row["id"]


def test_the_file_is_what_the_stored_runs_give(stored, recomputed):
    # Fails while data/evidence/ grows past the committed file: regenerate it with
    # `python -m rnnopt.book claims --force`.
    assert [r["id"] for r in recomputed] == [r["id"] for r in stored]
    for mine, theirs in zip(stored, recomputed, strict=True):
        for key in COLUMNS:
            a, b = mine[key], theirs[key]
            if isinstance(b, float) and a != "":
                assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (mine["id"], key, a, b)
            else:
                assert a == b, (mine["id"], key, a, b)


# --- Writing it -----------------------------------------------------------------------------


def fake_rows() -> list[dict]:
    row = {k: "" for k in COLUMNS}
    row.update(id="x", claim="A claim, with a comma.", algorithm="sgd", kind="empirical")
    row.update(estimate=0.1 + 0.2, ci_low=np.float64(1 / 3), ci_high=1e-17, seeds=np.int64(10))
    row.update(direction="higher", support_threshold=1.25, refute_threshold=1, verdict="x")
    pending = dict(row, id="y", estimate="", ci_low="", ci_high="", seeds="", verdict="pending")
    return [row, pending]


def test_write_csv_round_trips_every_number_exactly(tmp_path):
    path = tmp_path / "claims.csv"
    ledger.write_csv(fake_rows(), path)
    back = ledger_tables.read_csv(path)
    assert back[0]["estimate"] == 0.1 + 0.2 and back[0]["ci_low"] == 1 / 3
    assert back[0]["ci_high"] == 1e-17 and back[0]["seeds"] == 10
    assert back[0]["claim"] == "A claim, with a comma."
    assert back[1]["estimate"] == "" and back[1]["verdict"] == "pending"
    assert "np." not in path.read_text()  # numpy scalars are written as plain numbers


def test_write_csv_refuses_a_row_with_other_columns_and_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "claims.csv"
    path.write_text("old\n")
    bad = fake_rows()
    del bad[1]["source"]
    with pytest.raises(ValueError, match="'y'.*columns"):
        ledger.write_csv(bad, path)
    assert path.read_text() == "old\n" and list(tmp_path.iterdir()) == [path]


def test_write_csv_is_atomic_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "claims.csv"
    path.write_text("old\n")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(store.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        ledger.write_csv(fake_rows(), path)
    assert path.read_text() == "old\n" and list(tmp_path.iterdir()) == [path]


def test_read_csv_refuses_a_file_with_other_columns(tmp_path):
    path = tmp_path / "claims.csv"
    path.write_text("claim,verdict\na,b\n")
    with pytest.raises(ValueError, match="columns"):
        ledger_tables.read_csv(path)


# --- Unsolved studies -----------------------------------------------------------------------


def test_an_unsolved_study_leaves_its_claim_inconclusive_with_its_interval(monkeypatch):
    monkeypatch.setattr(ledger, "tune_successes", lambda *a, **k: np.zeros(2, bool))
    rng = np.random.default_rng(0)
    errors = {v: rng.uniform(0.9, 1.0, 10) for v in ledger.FOUR}
    monkeypatch.setattr(ledger, "_floored_errors", lambda study: errors)
    with pytest.raises(ledger.Unsolved) as unsolved:
        ledger.vanishing()
    found = unsolved.value.found
    ratio = errors["sgd"].mean() / errors["rmsprop"].mean()
    assert found.estimate == pytest.approx(ratio) and found.seeds == 10
    assert found.low <= found.estimate <= found.high
    monkeypatch.setattr(ledger, "FIGURES", {**{k: _pending for k in ledger.FIGURES}})
    monkeypatch.setitem(ledger.FIGURES, "rmsprop-vanishing", ledger.vanishing)
    monkeypatch.setattr(ledger, "CHECKS", {k: lambda: "check" for k in ledger.CHECKS})
    row = next(r for r in ledger.ledger() if r["id"] == "rmsprop-vanishing")
    assert row["verdict"] == "inconclusive" and row["seeds"] == 10
    assert "solved by neither SGD nor RMSprop" in row["source"]
    assert "inconclusive by registration" in row["source"]


def _pending():
    raise Pending("not finished")


# --- The chapter ----------------------------------------------------------------------------


def test_the_chapter_decides_each_registered_claim_in_exactly_one_labelled_entry(stored):
    text = "\n".join(outputs(CHAPTER))
    labels = re.findall(r"^\(claim-([a-z0-9-]+)\)=$", text, flags=re.M)
    assert sorted(labels) == sorted(REGISTERED) and len(labels) == len(set(labels))
    verdicts = dict(
        re.findall(r"^\(claim-([a-z0-9-]+)\)=\n###.*\n\n\*\*Verdict: (.*)\.\*\*", text, re.M)
    )
    for row in stored:
        assert verdicts.get(row["id"], "") == row["verdict"], row["id"]


def test_every_link_to_a_claim_in_the_book_names_a_registered_claim():
    texts = [p.read_text() for p in (ROOT / "chapters").glob("*.ipynb")]
    texts += [p.read_text() for p in (ROOT / "chapters").rglob("*.md")]
    linked = {i for t in texts for i in re.findall(r"<claim-([a-z0-9-]+)>`", t)}
    assert linked <= set(REGISTERED), linked - set(REGISTERED)


def test_the_chapter_draws_the_figure_each_source_names(stored):
    names = set(re.findall(r"^:name: (fig-claims-[a-z]+)$", "\n".join(outputs(CHAPTER)), re.M))
    assert names == {f"fig-claims-{a}" for a in FOUR}
    for row in stored:
        assert set(re.findall(r"fig-claims-[a-z]+", row["source"])) <= names


def test_the_chapter_trains_nothing_and_reads_the_ledger_only():
    nb = json.loads(TEMPLATE.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    imported = set(re.findall(r"from rnnopt(?:\.\w+)? import ([\w, ]+)", code))
    modules = {m.strip() for line in imported for m in line.split(",")}
    assert modules <= {"ledger", "ledger_tables", "plots", "protocol", "check_int"} | {
        "check_output_file",
        "invalid",
        "FOUR",
    }, modules
    assert "train" not in modules and "sweep" not in code


def test_the_summary_table_has_the_sources_four_rows_and_registered_claims():
    assert [row[0] for row in ledger_tables.SUMMARY] == list(FOUR)
    for _, purpose, good, bad in ledger_tables.SUMMARY:
        assert purpose and good and bad
        assert set(good) | set(bad) <= set(REGISTERED)


def test_the_summary_table_shows_each_claims_verdict_and_interval_from_the_rows(stored):
    table = ledger_tables.summary_table(stored)
    assert "(the learning rate only)" in table  # adam-less-tuning: only the rate was varied
    for _, _, good, bad in ledger_tables.SUMMARY:
        for claim_id in good + bad:
            row = next(r for r in stored if r["id"] == claim_id)
            shown = "definitional" if row["kind"] == "definitional" else row["verdict"]
            if claim_id in ledger_tables.SCOPE and row["verdict"] != "pending":
                shown += f" ({ledger_tables.SCOPE[claim_id].split(':')[0]})"
            assert f"{{ref}}`{shown} <claim-{claim_id}>`" in table
            if has_interval(row):
                assert ledger.format_number(row["ci_low"]) in table


def test_the_forest_marks_pending_claims_and_draws_the_others(stored):
    import matplotlib

    matplotlib.use("Agg")
    for algorithm in FOUR:
        fig = ledger_tables.forest(stored, algorithm)
        chosen = [r for r in stored if r["algorithm"] == algorithm and r["kind"] == "empirical"]
        assert len(fig.axes) == len(chosen)
        for ax, row in zip(fig.axes, chosen, strict=True):
            unsolved = "inconclusive by registration" in row["source"]
            said = " (by registration: its study is unsolved)" if unsolved else ""
            assert ax.get_title(loc="left") == f"{row['id']}: {row['verdict']}{said}"
            marked = [t.get_text() for t in ax.texts]
            assert marked == (["pending"] if row["verdict"] == "pending" else [])
            low, high = ax.get_xlim()
            assert low < min(row["support_threshold"], row["refute_threshold"])
            assert high > max(row["support_threshold"], row["refute_threshold"])


def test_a_bound_that_would_round_to_a_threshold_shows_its_side():
    assert ledger_tables.beside(1.0331, (1.25, 1.03)) == "1.033"
    assert ledger_tables.beside(1.0269, (1.03,)) == "1.027"
    assert ledger_tables.beside(0.943, (1.03,)) == "0.943"  # far from it: 3 digits
    row = {"estimate": 0.989, "ci_low": 0.943, "ci_high": 1.0331, "seeds": 10}
    row |= {"experiment": "x", "support_threshold": 0.8, "refute_threshold": 1.03}
    assert ledger_tables.measured(row) == "0.989 [0.943, 1.033] over 10 seeds"


def test_a_pending_claim_says_how_much_of_its_evidence_is_stored(stored):
    for row in stored:
        if row["verdict"] == "pending":
            text = ledger_tables.stored_evidence(row)
            assert re.search(r"\d+ of \d+ (tier studies stored|optimizers|variants)", text) or (
                "not stored yet" in text
            ), text
            assert text in ledger_tables.entry(row, ledger_tables.claims()[row["id"]])


def test_the_one_sample_check_is_a_sentence_in_words():
    text = ledger.check_one_sample()
    assert "batch_size=1): 3 steps, every loss finite." in text
    assert "True" not in text and "False" not in text


def test_protocol_text_is_the_latest_amendments_and_names_an_unknown_key():
    assert ledger_tables.protocol_text("solved").startswith("A tier study is solved when some")
    assert "as of" in ledger_tables.protocol_text("clipping")  # amended: the amendment's text
    with pytest.raises(ValueError, match=r"key='nowhere' is not .* valid: \["):
        ledger_tables.protocol_text("nowhere")


def test_a_tier_figure_counts_only_the_studies_an_optimizer_it_compares_solves(monkeypatch):
    solved_by = {"s1": {"adam"}, "s2": {"sgd", "momentum"}, "s3": set()}
    source = ledger.TierSource(
        tuple(solved_by), ledger.evidence.STUDIES_DIR, ledger.evidence.EVIDENCE_DIR
    )
    monkeypatch.setattr(
        ledger, "tune_successes", lambda study, v, **k: np.array([v in solved_by[study], False])
    )
    assert ledger.solved_studies(source) == ["s1", "s2"]
    assert ledger.solved_studies(source, ("sgd", "momentum")) == ["s2"]  # not s1: both censored
    assert ledger.solved_studies(source, ("sgd", "adam")) == ["s1", "s2"]
    assert ledger.solved_studies(source, ("rmsprop",)) == []


def test_errors_are_floored_at_one_percent_of_the_trivial_predictors_before_a_ratio(monkeypatch):
    assert protocol.ERROR_FLOOR == 0.01
    monkeypatch.setattr(ledger, "eval_errors", lambda study, v: np.array([0.0, 0.005, 0.05, 0.5]))
    floored = ledger._floored_errors("any")
    assert all(list(e) == [0.01, 0.01, 0.05, 0.5] for e in floored.values())


def test_an_entry_says_which_amendments_changed_its_claim_and_which_came_after_its_runs():
    raw = ledger.registration()  # amendments in file order, numbered from 1 as on the page
    named = [
        k for k, a in enumerate(raw["amendments"], 1) if "sgd-convex" in (a.get("claims") or {})
    ]
    line = ledger_tables.amendments_line("sgd-convex")
    assert line.startswith(f"- Amendments: {', '.join(map(str, named))};")
    assert "made after the runs it judges: amendment 5" in line
    assert "after the runs" not in ledger_tables.amendments_line("adam-across")


def test_an_absolute_claim_about_sgd_is_shown_beside_the_same_figure_for_the_other_three():
    row = next(r for r in ledger.ledger() if r["id"] == "sgd-local-minima")
    text = ledger_tables.entry(row, ledger_tables.claims()["sgd-local-minima"])
    beside = next(line for line in text.splitlines() if line.startswith("- Beside it:"))
    for name in ("Momentum", "RMSprop", "Adam"):
        stuck = 1 - ledger.experiment_values("surfaces", name.lower(), "global_fraction")
        assert f"{name} {ledger.format_number(float(stuck.mean()))} [" in beside


def test_an_inconclusive_entry_says_whether_its_interval_sits_between_the_thresholds():
    row = dict(next(r for r in ledger.ledger() if r["id"] == "momentum-local-minima"))
    claim = ledger_tables.claims()[row["id"]]
    low, high = sorted((row["support_threshold"], row["refute_threshold"]))
    row |= {"verdict": "inconclusive", "ci_low": low + 0.25 * (high - low)}
    row |= {"ci_high": high - 0.25 * (high - low)}
    assert "lies between the two thresholds" in ledger_tables.entry(row, claim)
    row |= {"ci_low": low - (high - low), "ci_high": high + (high - low)}
    assert "crosses a threshold" in ledger_tables.entry(row, claim)


def test_the_overfitting_claim_shows_the_registered_generalisation_gap_beside_its_figure():
    row = next(r for r in ledger.ledger() if r["id"] == "adam-generalises-worse")
    text = ledger_tables.entry(row, ledger_tables.claims()[row["id"]])
    beside = next(line for line in text.splitlines() if line.startswith("- Beside it:"))
    for name in ("adam", "sgd"):
        gaps = [protocol.generalisation_gap(h) for h in tier.eval_histories("overfit", name)]
        shown = ledger.format_number(float(np.mean(gaps)))
        assert f"{'Adam' if name == 'adam' else 'SGD'} {shown} [" in beside


def test_the_damping_entry_places_sgds_tuned_rate_against_the_ravines_curvature():
    from rnnopt import experiments

    row = next(r for r in ledger.ledger() if r["id"] == "momentum-damps")
    text = ledger_tables.entry(row, ledger_tables.claims()[row["id"]])
    lr = ledger.experiment_data("ravine")["tuned"]["sgd"]["lr"]
    product = ledger.format_number(lr * experiments.RAVINE_STEEP)
    assert f"SGD's tuned rate is {ledger.format_number(lr)}, lr·λ_max = {product}" in text


def test_an_entry_decided_on_a_tier_study_says_how_often_clipping_bound_there():
    row = next(r for r in ledger.ledger() if r["id"] == "adam-less-tuning")
    text = ledger_tables.entry(row, ledger_tables.claims()[row["id"]])
    line = next(line for line in text.splitlines() if line.startswith("- Clipping:"))
    share = float(np.median(tier.clipped_shares("digits-elman", "adam")))
    assert f"Adam {100 * share:.0f} %" in line
    convex = next(r for r in ledger.ledger() if r["id"] == "sgd-convex")  # not a tier study
    assert "- Clipping:" not in ledger_tables.entry(convex, ledger_tables.claims()["sgd-convex"])
