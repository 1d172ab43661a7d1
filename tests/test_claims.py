"""Specification of rnnopt.claims: rules judge figures, the ledger is computed and written
atomically, the measuring helpers measure what they say, and the committed ledger matches the
registry of claims."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnopt import claims
from rnnopt.claims import (
    CLAIMS,
    COLUMNS,
    FOUR,
    VERDICTS,
    Claim,
    Lab,
    Rule,
    Settings,
    Threshold,
    evaluate,
    format_figure,
    write_csv,
)
from rnnopt.landscapes import double_well, trajectory
from rnnopt.train import History

ROOT = Path(__file__).resolve().parent.parent

RATIO = Rule((Threshold("ratio", "<=", 0.7),), (Threshold("ratio", ">=", 1.0),))


def test_rule_supports_when_every_supported_test_passes():
    assert RATIO.verdict({"ratio": 0.5}) == "supported"


def test_rule_rejects_when_the_not_supported_tests_pass():
    assert RATIO.verdict({"ratio": 1.3}) == "not supported"


def test_rule_is_mixed_between_its_thresholds():
    assert RATIO.verdict({"ratio": 0.85}) == "mixed"


def test_rule_calls_a_figure_that_could_not_be_measured_mixed():
    assert RATIO.verdict({"ratio": math.nan}) == "mixed"


def test_rule_with_two_supported_tests_needs_both():
    rule = Rule((Threshold("a", ">=", 1), Threshold("b", "<=", 0)), (Threshold("a", "<=", 0),))
    assert rule.verdict({"a": 2, "b": 0}) == "supported"
    assert rule.verdict({"a": 2, "b": 1}) == "mixed"


def test_rule_against_any_rejects_on_one_failing_test():
    rule = Rule(
        (Threshold("a", ">=", 1),),
        (Threshold("a", "<=", 0), Threshold("b", ">=", 5)),
        against="any",
    )
    assert rule.verdict({"a": 0.5, "b": 9}) == "not supported"


def test_rule_text_states_its_thresholds():
    assert RATIO.text() == "supported if ratio ≤ 0.7; not supported if ratio ≥ 1; mixed otherwise"


def test_threshold_refuses_an_unknown_comparison():
    with pytest.raises(ValueError, match="op='<'.*valid"):
        Threshold("ratio", "<", 1.0)


def test_format_figure_keeps_two_significant_digits():
    assert format_figure(0.083456) == "0.083"
    assert format_figure(1234.5) == "1200"
    assert format_figure(12.0) == "12"


def test_format_figure_names_what_never_happened():
    assert format_figure(math.inf) == "never"
    assert format_figure(math.nan) == "n/a"


def _claim(measure) -> Claim:
    return Claim("x", "sgd", "a claim", "an experiment", measure, RATIO)


def test_evaluate_computes_the_verdict_from_the_measurement():
    fast = evaluate([_claim(lambda lab: {"ratio": 0.2})], Lab())
    slow = evaluate([_claim(lambda lab: {"ratio": 4.0})], Lab())
    assert (fast[0]["verdict"], slow[0]["verdict"]) == ("supported", "not supported")


def test_evaluate_rows_hold_every_ledger_column():
    (row,) = evaluate([_claim(lambda lab: {"ratio": 0.25})], Lab())
    assert set(COLUMNS) <= set(row)
    assert row["measured"] == "ratio = 0.25"
    assert row["rule"] == RATIO.text()


def test_write_csv_round_trips_the_ledger_columns(tmp_path):
    rows = evaluate([_claim(lambda lab: {"ratio": 0.25})], Lab())
    path = write_csv(rows, tmp_path / "sub" / "claims.csv")
    with open(path, encoding="utf-8", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert read == [{k: rows[0][k] for k in COLUMNS}]
    assert [p.name for p in path.parent.iterdir()] == ["claims.csv"]  # no temporary left


def test_write_csv_makes_a_file_others_can_read(tmp_path):
    previous = os.umask(0o022)  # the usual umask: files readable by all
    try:
        path = write_csv([], tmp_path / "claims.csv")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644


def test_settings_refuse_zero_threads():
    with pytest.raises(ValueError, match="threads=0"):
        Settings(threads=0)


def test_settings_refuse_a_grid_that_is_not_geometric():
    grid = {**Settings().lr_grid, "adam": [0.001, 0.002, 0.1]}
    with pytest.raises(ValueError, match=r"lr_grid\['adam'\]"):
        Settings(lr_grid=grid)


def test_settings_refuse_an_unknown_core():
    with pytest.raises(ValueError, match="cores=.*valid"):
        Settings(cores=["transformer"])


def test_steps_to_finds_the_first_measurement_past_the_threshold():
    history = History(
        eval_step=[0, 10, 20, 30], eval_loss=[1.0, 0.6, 0.4, 0.45], eval_metric=[0.1, 0.5, 0.8, 0.7]
    )
    assert claims.steps_to(history, 0.5) == 20
    assert claims.steps_to(history, 0.75, higher_is_better=True) == 20
    assert claims.steps_to(history, 0.1) == math.inf


@pytest.mark.parametrize("optimizer", FOUR)
def test_descend_from_many_starts_equals_separate_runs(optimizer):
    well = double_well()
    starts = np.array([[1.5, 0.5], [-0.3, -1.0]])
    together = claims.descend(well, optimizer, starts, 30, lr=0.05)
    for index, start in enumerate(starts):
        alone = trajectory(well, optimizer, 30, start=tuple(start), lr=0.05)
        np.testing.assert_allclose(together[:, index], alone, rtol=1e-12, atol=1e-12)


def test_state_per_parameter_counts_each_optimizers_buffers():
    assert {n: claims.state_per_parameter(n) for n in FOUR} == {
        "sgd": 0,
        "momentum": 1,
        "rmsprop": 1,
        "adam": 2,
    }


def test_sgd_makes_the_fewest_tensor_operations_per_step():
    ops = {n: claims.ops_per_step(n) for n in FOUR}
    assert ops["sgd"] < min(ops[n] for n in FOUR if n != "sgd")
    assert ops["adam"] > ops["momentum"]


def test_relabelled_digits_shift_every_label():
    plain, shifted = claims.DigitsTask(), claims.RelabelledDigits(shift=1)
    assert torch.equal(shifted.eval_batch()[1], (plain.eval_batch()[1] + 1) % 10)
    assert torch.equal(shifted.eval_batch()[0], plain.eval_batch()[0])


def test_registry_covers_the_four_optimizers_with_unique_ids():
    assert len({c.id for c in CLAIMS}) == len(CLAIMS)
    assert {c.algorithm for c in CLAIMS} == set(FOUR)
    assert len(CLAIMS) >= 20


def test_every_claim_shows_figures_its_rule_can_judge():
    for claim in CLAIMS:
        assert claim.figures_shown(), claim.id
        assert claim.section, claim.id


def test_committed_ledger_lists_every_claim_with_a_valid_verdict():
    with open(ROOT / "data" / "claims.csv", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == COLUMNS
        rows = list(reader)
    assert [r["claim"] for r in rows] == [c.text for c in CLAIMS]
    assert [r["rule"] for r in rows] == [c.rule.text() for c in CLAIMS]
    assert all(r["verdict"] in VERDICTS for r in rows)


def test_committed_verdicts_follow_from_the_committed_measurements():
    # Re-judge each committed row from the figures printed in its `measured` column (the ones
    # its rule uses are always printed), so a hand-edited verdict cannot pass.
    with open(ROOT / "data" / "claims.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for claim, row in zip(CLAIMS, rows, strict=True):
        printed = dict(part.split(" = ") for part in row["measured"].split("; "))
        figures = {}
        for name, text in printed.items():
            figures[name] = {"never": math.inf, "n/a": math.nan}.get(text) or float(text)
        needed = {t.figure for t in (*claim.rule.supported, *claim.rule.not_supported)}
        if needed <= set(figures):
            assert claim.rule.verdict(figures) == row["verdict"], claim.id


def test_settings_messages_name_the_parameter_value_and_rule():
    with pytest.raises(ValueError, match=r"^threads=0 is invalid: expected an integer >= 1$"):
        Settings(threads=0)
    with pytest.raises(ValueError, match=r"window_margin=1.5 is invalid: expected a finite number"):
        Settings(window_margin=1.5)
    with pytest.raises(ValueError, match=r"digits_lr\['adam'\]=-1 is invalid"):
        Settings(digits_lr={**Settings().digits_lr, "adam": -1})
    with pytest.raises(ValueError, match=r"seeds=\[0, 0\] is invalid: .*all different"):
        Settings(seeds=[0, 0])


def test_check_ledger_csv_takes_a_writable_path_or_nothing(tmp_path):
    assert claims.check_ledger_csv("ledger_csv", "") is None
    assert claims.check_ledger_csv("ledger_csv", str(tmp_path / "a.csv")) == tmp_path / "a.csv"
    with pytest.raises(ValueError, match="ledger_csv=3 is invalid"):
        claims.check_ledger_csv("ledger_csv", 3)
    with pytest.raises(ValueError, match="ledger_csv=.* is invalid: expected a file"):
        claims.check_ledger_csv("ledger_csv", str(tmp_path))


def test_ledger_table_escapes_bars_and_puts_verdicts_in_bold():
    row = {"claim": "a | b", "measured": "x = 1", "rule": "r", "verdict": "mixed"}
    table = claims.ledger_table([row]).splitlines()
    assert table[0] == "| claim | measured | rule | verdict |"
    assert table[2] == "| a \\| b | x = 1 | r | **mixed** |"


def test_verdict_counts_lists_every_verdict():
    rows = [{"verdict": "supported"}, {"verdict": "mixed"}, {"verdict": "supported"}]
    assert claims.verdict_counts(rows) == "3 claims: 2 supported, 1 mixed, 0 not supported"


def test_rung_is_the_highest_step_of_the_ladder_cleared():
    assert [claims.rung(r) for r in (0.5, 1.0, 4.9, 250)] == ["< 1×", "≥ 1×", "≥ 2×", "≥ 100×"]


def test_curves_for_the_figures_keep_one_row_per_run():
    runs = [
        History(eval_step=[0, 5], eval_loss=[1.0, 0.5], eval_metric=[0.1, 0.2]),
        History(eval_step=[0, 5], eval_loss=[2.0, 0.4], eval_metric=[0.3, 0.4]),
    ]
    assert claims.eval_curves(runs) == ([0, 5], [[1.0, 0.5], [2.0, 0.4]])
    assert claims.eval_curves(runs, metric=True)[1] == [[0.1, 0.2], [0.3, 0.4]]
    steps, curves = claims.relearning_curves(runs, runs[::-1], offset=10)
    assert list(steps) == [0, 5, 10, 15]
    assert curves == [[0.1, 0.2, 0.3, 0.4], [0.3, 0.4, 0.1, 0.2]]


def test_implementation_table_divides_by_the_sgd_step():
    table = claims.implementation_table({"SGD, torch for-loop": 0.001, "Adam, rnnopt": 0.004})
    assert table.splitlines()[3] == "| Adam, rnnopt | 4.00 | 4.0× | 2.3× |"


def test_the_grid_holds_the_range_of_the_final_loss_over_the_seeds():
    lrs = {name: [0.01, 0.1] for name in FOUR}
    lab = Lab(
        Settings(seeds=(0, 1), hidden_size=2, batch_size=4, steps=4, eval_every=2, lr_grid=lrs)
    )
    for name in FOUR:
        g = lab.grid[name]
        for i, lr in enumerate(g["lrs"]):
            finals = [h.final_loss for h in lab.grid_runs(name, lr)]
            assert (g["low"][i], g["high"][i]) == (min(finals), max(finals))
            assert g["low"][i] <= g["final"][i] <= g["high"][i]
    assert "| SGD | " in claims.grid_table(lab)
