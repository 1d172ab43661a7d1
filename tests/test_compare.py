"""The per-study comparison on a stored tier: every column from the protocol's definitions, and
the comparison chapter's rules (rnnopt.comparison): ties from overlapping intervals, unsolved
studies not ranked, pending studies named, the censored time to success, the performance
profile."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import make_tier, tiny_study

from rnnopt import compare, comparison, evidence, ledger, protocol, store, tier

DIGITS = evidence.STUDIES_DIR / "digits-elman.yaml"  # a real spec, read before any patch
STUDIES, EVIDENCE = evidence.STUDIES_DIR, evidence.EVIDENCE_DIR  # the real tier, likewise
TINY = tiny_study(hidden=8, steps=60, evaluation_seeds=(100, 101, 102, 103))


@pytest.fixture(scope="module")
def tier_root(tmp_path_factory):
    root = make_tier(tmp_path_factory.mktemp("compare"), TINY)
    (root / "specs" / "absent.yaml").write_text(TINY)  # a study with nothing stored yet
    return root


@pytest.fixture(scope="module")
def table(tier_root):
    root = tier_root
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evidence, "STUDIES_DIR", root / "specs")
        patch.setattr(evidence, "EVIDENCE_DIR", root / "out")
        yield compare.study_table("tiny", ["sgd", "adam"])


def test_each_row_reports_the_evaluation_seeds_at_the_tuned_rate(table):
    adam = next(r for r in table if r.optimizer == "adam")
    errors = tier.eval_errors("tiny", "adam")
    assert adam.error == pytest.approx(np.mean(errors))
    assert (adam.low, adam.high) == protocol.bootstrap_interval(errors)
    assert adam.interior == (tier.tuned_record("tiny", "adam")["edge"] is None)


def test_success_is_counted_over_every_evaluation_seed(table):
    for row in table:
        successes = tier.eval_successes("tiny", row.optimizer)
        assert row.success == np.mean(successes)
        if row.success < 0.5:
            assert math.isnan(row.median_steps)


def test_the_tunability_curve_falls_from_the_mean_to_the_best_within_a_decade(table):
    for row in table:
        curve = row.tunability
        assert all(a >= b - 1e-12 for a, b in zip(curve, curve[1:], strict=False))
        tuned = tier.tuned_record("tiny", row.optimizer)
        by_rate = {float(k): v for k, v in tuned["tuning_errors"].items()}
        near = protocol.within_a_decade(list(by_rate), tuned["lr"])
        assert len(curve) == len(near) <= 7
        assert curve[0] == pytest.approx(np.mean([by_rate[lr] for lr in near]))


def test_within_a_decade_is_one_window_for_every_grid():
    grid = [protocol.lr_lattice(k) for k in range(-12, 1)]  # 1e-4 .. 1
    assert protocol.within_a_decade(grid, 0.01) == [protocol.lr_lattice(k) for k in range(-9, -2)]
    assert protocol.within_a_decade(grid, 1.0) == [protocol.lr_lattice(k) for k in range(-3, 1)]


def test_cost_columns_are_measured_time_and_counted_state(table):
    rows = {r.optimizer: r for r in table}
    assert rows["sgd"].state_bytes == 0 and rows["adam"].state_bytes == 8
    assert all(r.step_seconds > 0 for r in table)


# --- The comparison chapter's rules (rnnopt.comparison) ---------------------------------------


def row(name, error, low, high, success=0.5, median=100.0):
    return compare.Row(name, 0.1, True, error, low, high, success, median, 0, 0, ())


def result(rows, seeds=10, solved=True, errors=None):
    spec = evidence.load_study(DIGITS)
    spec = type(spec)(**{**spec.__dict__, "evaluation_seeds": tuple(range(100, 100 + seeds))})
    edges = {r.optimizer: None for r in rows}
    errors = errors or {r.optimizer: np.full(seeds, r.error) for r in rows}
    return comparison.Result("synthetic", spec, rows=rows, edges=edges, solved=solved,
                             errors=errors)  # fmt: skip


def from_errors(errors):
    """A solved study whose rows are what the per-seed errors give."""
    rows = [row(n, float(np.mean(e)), *protocol.bootstrap_interval(e)) for n, e in errors.items()]
    return result(rows, seeds=len(next(iter(errors.values()))), errors=errors)


def test_ties_come_from_paired_ratios_not_from_overlapping_marginal_intervals():
    seeds = np.random.default_rng(0).uniform(0.2, 0.8, 10)  # how hard each seed is
    # Adam is 10 % better than SGD on every seed: the marginal intervals overlap, the pairs don't.
    clear = from_errors({"sgd": seeds * 1.1, "adam": seeds})
    sgd, adam = (next(r for r in clear.rows if r.optimizer == n) for n in ("sgd", "adam"))
    assert sgd.low <= adam.high  # overlapping marginal intervals
    assert comparison.ranking(clear) == {"best": "adam", "tied": ["adam"]}
    ratio, low, high = comparison.ratios_to_best(clear)["sgd"]
    assert ratio == pytest.approx(1.1) and 1 < low <= ratio <= high
    assert comparison.standing(clear, "adam") == "lowest"
    assert comparison.standing(clear, "sgd").startswith("1.1× the lowest [")
    said = comparison.sentence(clear, {"adam": "Adam", "sgd": "SGD"})
    assert "Adam" in said and "SGD" in said and "1.1 times" in said  # from the numbers
    # Noise that changes sign from seed to seed: the paired interval reaches 1, a tie.
    noise = np.random.default_rng(1).normal(0, 0.1, 10)
    tied = from_errors({"sgd": seeds + noise, "adam": seeds, "rmsprop": seeds * 3})
    ranked = comparison.ranking(tied)
    assert set(ranked["tied"]) == {"sgd", "adam"} and "rmsprop" not in ranked["tied"]
    assert (
        comparison.standing(tied, "sgd") == comparison.standing(tied, "adam") == "tied for lowest"
    )
    said = comparison.sentence(tied, {})
    assert "a tie" in said and "the paired ratio to it of sgd " in said  # with its interval
    # The same mean on a different set of seeds' errors (one held-out set, counted): said so.
    same = from_errors({"momentum": seeds, "adam": seeds[::-1], "sgd": seeds * 2})
    said = comparison.sentence(same, {"momentum": "Momentum", "adam": "Adam"})
    assert "Adam and Momentum have the same, lowest, mean" in said and said.endswith("a tie.")


def test_a_study_no_optimizer_solves_is_unsolved_and_not_ranked():
    rows = [row("sgd", 0.5, 0.45, 0.55, success=0.2), row("adam", 0.1, 0.05, 0.2, 0)]
    unsolved = result(rows, solved=False)  # evaluation successes do not make it solved
    assert unsolved.state == "unsolved"
    assert comparison.ranking(unsolved) is None
    assert all(comparison.standing(unsolved, n) == "unsolved: not ranked" for n in ("sgd", "adam"))
    assert "not ranked" in comparison.sentence(unsolved, {})
    assert result([row("sgd", 0.5, 0.4, 0.6, success=0.1)]).state == "solved"


def test_solved_is_decided_on_the_tuning_seeds_not_the_evaluation_seeds(tier_root, monkeypatch):
    source = ledger.TierSource(("tiny",), tier_root / "specs", tier_root / "out")
    monkeypatch.setattr(evidence, "STUDIES_DIR", tier_root / "specs")
    tuned = {v: tier.tune_successes("tiny", v, tier_root / "out") for v in ("sgd", "adam")}
    assert all(len(t) == 2 for t in tuned.values())  # the two tuning seeds at the chosen rate
    monkeypatch.setattr(ledger, "FOUR", ("sgd", "adam"))  # the two the tiny tier stores
    assert ledger.is_solved("tiny", source) == any(t.any() for t in tuned.values())
    monkeypatch.setattr(ledger, "tune_successes", lambda *a, **k: np.zeros(2, bool))
    assert not ledger.is_solved("tiny", source) and ledger.solved_studies(source) == []
    monkeypatch.setattr(ledger, "tune_successes", lambda *a, **k: np.array([False, True]))
    assert ledger.is_solved("tiny", source) and ledger.solved_studies(source) == ["tiny"]


def brute_force_profile(means, tau):
    out = {}
    for name in next(iter(means.values())):
        within = 0
        for study in means.values():
            best = min(study.values())
            within += study[name] <= tau * best + 1e-15
        out[name] = within / len(means)
    return out


def test_the_performance_profile_matches_a_brute_force_count():
    rng = np.random.default_rng(3)
    means = {f"s{i}": {n: float(rng.uniform(0.05, 1)) for n in ("a", "b", "c")} for i in range(5)}
    means["tie"] = {"a": 0.2, "b": 0.2, "c": 0.4}  # two optimizers both best
    taus = [1.0, 1.1, 1.5, 2.0, 3.0, 5.0, 20.0]
    curves = comparison.profile(means, taus)
    for j, tau in enumerate(taus):
        expected = brute_force_profile(means, tau)
        for name in ("a", "b", "c"):
            assert curves[name][j] == pytest.approx(expected[name])
    assert all(c[-1] == 1 for c in curves.values())  # every ratio here is below 20
    # at τ = 1 the fractions of "best" add up to one plus the shared first places
    assert sum(c[0] for c in curves.values()) == pytest.approx(1 + 1 / len(means))


def test_the_profile_band_brackets_the_profile_of_the_seed_means():
    rng = np.random.default_rng(4)
    errors = {f"s{i}": {n: rng.uniform(0.1, 1, 10) for n in ("a", "b")} for i in range(4)}
    taus = np.geomspace(1, 10, 30)
    means = {s: {n: float(v.mean()) for n, v in e.items()} for s, e in errors.items()}
    curves, bands = comparison.profile(means, taus), comparison.profile_band(errors, taus)
    for name in ("a", "b"):
        low, high = bands[name]
        assert np.all(low <= high) and np.all((low >= 0) & (high <= 1))
        assert np.mean((low <= curves[name]) & (curves[name] <= high)) > 0.8


def test_the_tunability_curve_is_expected_best_for_every_k_with_each_seed_beside_it():
    errors = {0.01: [0.9, 0.8], 0.1: [0.3, 0.5], 1.0: [1.0, 1.0], 0.001: [0.6, 0.7]}
    curve, per_seed = comparison.tunability_curves(errors)
    means = [float(np.mean(v)) for v in errors.values()]
    assert curve == pytest.approx([protocol.expected_best(means, k) for k in range(1, 5)])
    for s in (0, 1):
        alone = [errors[lr][s] for lr in sorted(errors)]
        assert per_seed[s] == pytest.approx([protocol.expected_best(alone, k) for k in range(1, 5)])
        assert per_seed[s][0] == pytest.approx(np.mean(alone))  # k = 1: a random rate


def test_time_to_success_keeps_the_runs_that_never_succeed():
    # Six of ten succeed at steps 100..600, four never do (censored at the budget, 1000): the
    # Kaplan–Meier median is the fifth success, not the median of the successes alone (350).
    steps = [100, 200, 300, 400, 500, 600, 1000, 1000, 1000, 1000]
    succeeded = [True] * 6 + [False] * 4
    assert protocol.kaplan_meier_median(steps, succeeded) == 500
    # Four of ten: not reached, and the table says so with the count.
    assert math.isnan(protocol.kaplan_meier_median(steps, [True] * 4 + [False] * 6))
    few = result([row("sgd", 0.5, 0.4, 0.6, success=0.4, median=math.nan)])
    assert (
        comparison.km_median(few.rows[0], few) == "not reached (4/10 succeeded within the budget)"
    )


def test_the_censored_steps_of_a_stored_study_count_every_evaluation_seed(table):
    spec = evidence.load_study(evidence.STUDIES_DIR / "tiny.yaml")
    for r in table:
        histories = tier.eval_histories("tiny", r.optimizer)
        steps, succeeded = protocol.steps_to_success(
            histories, tier.criterion_of("tiny"), spec.train["steps"]
        )
        assert len(steps) == len(spec.evaluation_seeds)
        assert np.all(steps[~succeeded] == spec.train["steps"])
        assert r.median_steps == pytest.approx(
            protocol.kaplan_meier_median(steps, succeeded), nan_ok=True
        )


def test_a_study_not_stored_yet_is_pending_and_named(tier_root):
    source = ledger.TierSource(("tiny", "absent"), tier_root / "specs", tier_root / "out")
    results = comparison.load(source, ("sgd", "adam"))
    assert results["absent"].state == "pending" and results["absent"].rows == []
    assert comparison.ranking(results["absent"]) is None
    assert "python -m rnnopt.evidence absent" in comparison.sentence(results["absent"], {})
    assert comparison.progress(source, "absent", "sgd") == "not started"
    assert comparison.progress(source, "tiny", "sgd") == "finished"
    stored = results["tiny"]
    assert stored.state in ("solved", "unsolved") and len(stored.rows) == 2
    assert set(stored.tuning) == {"sgd", "adam"}
    assert all(len(v) == len(stored.spec.evaluation_seeds) for v in stored.errors.values())
    tunability_fig = comparison.tunability_figure(results)  # a pending panel draws too
    assert len(tunability_fig.axes) == 2


def test_the_cost_table_pairs_the_rounds_and_counts_state(tmp_path):
    with pytest.raises(tier.Pending):
        comparison.cost(tmp_path / "missing.json")
    times = {"sgd": [0.010, 0.012, 0.011, 0.013], "adam": [0.011, 0.013, 0.012, 0.014]}
    data = {"seconds_per_step": times, "state_bytes_per_parameter": {"sgd": 0.0, "adam": 8.0}}
    shown = {r[0]: r for r in comparison.cost_table(data, {})}
    assert shown["sgd"][2] == "1 (reference)" and shown["adam"][3] == "8"
    low, high = protocol.paired_interval(times["adam"], times["sgd"])
    assert shown["adam"][2].endswith(f"[{low:.3g}, {high:.3g}]")
    data["update_seconds_per_step"] = {"sgd": [0.001] * 4, "adam": [0.0024] * 4}
    shown = {r[0]: r for r in comparison.cost_table(data, {})}
    assert shown["adam"][4] == "2.4 (19.2 % of the step)"  # 2.4 ms of its 12.5 ms


def test_the_states_sentence_names_what_is_there_and_says_what_is_empty():
    nine = [f"s{i}" for i in range(9)]
    assert comparison.states_sentence({"solved": [], "unsolved": [], "pending": nine}) == (
        f"Of the 9 studies compared, none is solved or unsolved yet; all 9 are pending "
        f"({', '.join(nine)})."
    )
    mixed = {"solved": nine[:2], "unsolved": nine[2:3], "pending": nine[3:]}
    assert comparison.states_sentence(mixed).startswith(
        "Of the 9 studies compared, 2 are solved (s0, s1), 1 is unsolved (s2) and 6 are pending"
    )
    done = {"solved": nine[:3], "unsolved": [], "pending": nine[3:]}
    assert comparison.states_sentence(done).endswith("; none is unsolved yet.")


# --- The algorithm page's tier section (rnnopt.page_tier) on a tier still being computed -------


def test_the_algorithm_page_shows_the_stored_studies_and_names_the_pending_ones(
    tier_root, monkeypatch
):
    from types import SimpleNamespace

    from rnnopt import page_tier

    monkeypatch.setattr(page_tier, "FOUR", ("sgd", "adam"))  # what the tiny tier stores
    source = ledger.TierSource(("tiny", "absent"), tier_root / "specs", tier_root / "out")
    page = SimpleNamespace(source=source, label="adam", specs={}, tier="full", facts={})
    rows = page_tier.tables(page)
    assert list(rows) == ["tiny"] and [r.optimizer for r in rows["tiny"]] == ["sgd", "adam"]
    assert list(page.pending) == ["absent"] and "absent/sgd" in page.pending["absent"]
    said = page_tier.overview(page)
    assert "1 of its 2 studies is stored" in said and "- absent: absent/sgd" in said
    facts = page_tier.facts(page)
    assert facts["tier_absent_error"] == "pending"
    assert facts["tier_tiny_error"] == f"{rows['tiny'][1].error:.3f}"


def test_sgds_batch_table_reads_batch_1_at_batch_16s_cpu_time():
    from rnnopt import page_tier

    try:
        problem, table = page_tier.batch_table(EVIDENCE, STUDIES)
    except tier.Pending as pending:
        pytest.skip(f"the sgd-batch study is still being computed: {pending}")
    errors = page_tier.equal_time_errors(EVIDENCE, STUDIES)
    root = EVIDENCE / "sgd-batch"
    short = tier.stage_rows("sgd-batch", "batch-16", "eval", EVIDENCE)
    long = tier.stage_rows("sgd-batch", "batch-1-long", "eval", EVIDENCE)
    spec = evidence.load_study(STUDIES / "sgd-batch.yaml")
    baseline, higher = evidence.task_scale(spec, "eval")
    for k, (a, b) in enumerate(zip(short, long, strict=True)):
        t16 = tier.cpu_seconds(root / "batch-16" / "eval", a)
        t1 = tier.cpu_seconds(root / "batch-1-long" / "eval", b)
        history = store.load_history(root / "batch-1-long" / "eval", b["run_id"])
        at = int(np.argmin(np.abs(np.array(history.eval_step) - b["steps_done"] * t16 / t1)))
        expected = min(protocol.relative_error(history.eval_metric[at], baseline, higher), 1.0)
        assert errors[k] == pytest.approx(expected)
    assert "equal CPU time" in table and "batch 16 (the reference)" in table
    assert f"{spec.train['steps']:,} steps" in problem
