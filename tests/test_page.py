"""The algorithm page (rnnopt.page): one template for the book's four optimizers and for any
other torch optimizer; its prose is filled from computed numbers, never typed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnopt import page as algorithm_page
from rnnopt import page_claims, page_surfaces, protocol
from rnnopt.landscapes import LANDSCAPES, end_points, random_starts, trajectory
from rnnopt.page import PARAMETERS, Page, Prose

TEXT = """# A title

## Purpose

Braces {stay} here: Purpose is shown as written.

## Mechanism

$m_{t}$ stays too.

## Advantages

{name} ends {quadratic_distance} away: {supported_if_quadratic_reached}.

## Disadvantages

Not {supported_unless_quadratic_reached}.
"""


class Plain(torch.optim.Optimizer):
    """A torch optimizer that is not one of rnnopt's: plain gradient descent."""

    def __init__(self, params, lr=0.1, damping=0.5):
        super().__init__(params, dict(lr=lr, damping=damping))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=-group["lr"])


def values(tmp_path, **changes):
    text = tmp_path / "text.md"
    text.write_text(TEXT)
    base = {
        "optimizer": "momentum",
        "hyper": {},
        "contrast": "sgd",
        "contrast_hyper": {},
        "text_file": str(text),
        "tier": "",
        "evaluation_dir": "",
        "surfaces": {"quadratic": {"kappa": 10.0, "steps": 40, "lr": 0.05, "contrast_lr": None}},
        "tol_2d": 0.01,
        "well_lr_grid": [0.01, 0.1],
        "tasks": {},
        "hidden_size": 8,
        "steps": 10,
        "batch_size": 4,
        "clip_grad_norm": 1.0,
        "eval_every": 5,
        "final_fraction": 0.2,
        "seeds": [0],
        "lr": {},
        "contrast_lr": {},
        "lr_task": "",
        "lr_grid": [0.01, 0.1],
        "lr_seeds": [0],
        "sweep_contrast": False,
        "baseline_margin": 0.1,
        "workers": 1,
        "threads": 1,
    }
    assert set(base) == set(PARAMETERS)
    return {**base, **changes}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"optimizer": "adagrad"}, "optimizer='adagrad' is invalid"),
        ({"hyper": {"lr": 0.1}}, "hyper={'lr': 0.1} is invalid"),
        ({"hyper": {"momentum": 2.0}}, "hyper={'momentum': 2.0} is invalid for 'momentum'"),
        ({"tier": "medium"}, "tier='medium' is invalid"),
        ({"tier": "quick", "contrast": "adamw"}, "contrast='adamw' is invalid"),
        ({"tier": "quick", "optimizer": "torch.optim:Adagrad"}, "evaluation_dir='' is invalid"),
        ({"surfaces": {"bowl": {}}}, "surfaces={'bowl': {}} is invalid"),
        ({"well_lr_grid": [0.1, 0.01]}, "well_lr_grid=[0.1, 0.01] is invalid"),
        ({"seeds": [1, 1]}, "seeds=[1, 1] is invalid"),
        ({"tasks": {"adding": {"seq_len": 5}}, "lr": {}}, "lr={} is invalid"),
    ],
)
def test_a_bad_parameter_is_refused_by_name_before_anything_runs(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        Page(**values(tmp_path, **changes))


def test_a_page_lacking_a_parameter_says_which():
    with pytest.raises(TypeError, match="lacks the parameters"):
        Page(optimizer="sgd")


def test_the_prose_is_filled_from_computed_facts_and_findings(tmp_path):
    page = Page(**values(tmp_path))
    page.trajectories()
    page.surface_table()
    advantages = page.prose("Advantages")
    distance = page.facts["quadratic_distance"]
    reached = page.findings["quadratic_reached"]
    assert advantages.startswith(f"Momentum ends {distance} away: ")
    assert ("**supported**" if reached else "**not supported**") in advantages
    assert page.prose("Purpose") == "Braces {stay} here: Purpose is shown as written."
    assert page.prose("Mechanism") == "$m_{t}$ stays too."


def test_a_placeholder_nothing_computes_is_an_error_naming_it(tmp_path):
    (tmp_path / "bad.md").write_text(TEXT.replace("{quadratic_distance}", "{nowhere}"))
    page = Page(**values(tmp_path))
    page.text = Prose(tmp_path / "bad.md")
    page.trajectories()
    page.surface_table()
    with pytest.raises(ValueError, match=r"cites \{nowhere\}"):
        page.prose("Advantages")


def test_a_text_without_a_required_section_is_refused(tmp_path):
    (tmp_path / "short.md").write_text("# T\n\n## Purpose\n\nx\n")
    with pytest.raises(
        ValueError, match="missing: \\['Mechanism', 'Advantages', 'Disadvantages'\\]"
    ):
        Prose(tmp_path / "short.md")


def test_the_listing_is_read_from_the_class_whatever_optimizer_it_is():
    ours = algorithm_page.source_listing("adam")
    assert "`Adam.init_state`" in ours and "`Adam.update`" in ours and "exp_avg_sq" in ours
    theirs = algorithm_page.source_listing(f"{__name__}:Plain")
    assert "`Plain.step`" in theirs and "p.add_(p.grad" in theirs
    rows = algorithm_page.hyperparameter_rows(f"{__name__}:Plain", {"damping": 0.7})
    assert rows == [("`lr`", "`0.1`", "per experiment"), ("`damping`", "`0.5`", "`0.7`")]


def test_state_is_counted_per_weight_as_the_protocol_defines_it():
    assert algorithm_page.state_floats("sgd", {}) == 0
    assert algorithm_page.state_floats("momentum", {}) == 1
    assert algorithm_page.state_floats("adam", {}) == 2
    assert algorithm_page.state_floats("adam", {"amsgrad": True}) == 3


def test_many_starts_give_the_single_runs_taken_together():
    ros = LANDSCAPES["rosenbrock"]()
    starts = random_starts(ros.xlim, ros.ylim, 3, seed=1)
    for spec in ("adam", f"{__name__}:Plain"):  # one (n, 2) parameter, or one per start
        first, last = end_points(ros, spec, 40, starts, [0.001, 0.01])
        for i, lr in enumerate((0.001, 0.01)):
            for j, start in enumerate(starts):
                path = trajectory(ros, spec, 40, start=tuple(start), lr=lr)
                assert np.allclose(first[i, j], path[1])
                if len(path) == 41 and np.all(np.abs(path) < 1e6):
                    assert np.allclose(last[i, j], path[-1])
                else:
                    assert np.isnan(last[i, j]).all()


def test_an_unset_surface_rate_is_the_stable_rate_with_the_smallest_median_distance():
    ros = LANDSCAPES["rosenbrock"]()
    starts = page_surfaces.starts_of(ros, 6)
    chosen = page_surfaces.tuned_rate(ros, "sgd", 200, {}, starts)
    _, last = end_points(ros, "sgd", 200, starts, page_surfaces.RATES)
    distance = np.linalg.norm(last - np.asarray(ros.minimum), axis=2)
    stable = [i for i in range(len(page_surfaces.RATES)) if not np.isnan(distance[i]).any()]
    best = min(stable, key=lambda i: np.median(distance[i]))
    assert chosen.lr == page_surfaces.RATES[best] and chosen.diverged == 0 and chosen.tuned
    edge = {0: "lower", len(page_surfaces.RATES) - 1: "upper"}.get(best)
    assert chosen.edge == edge and (edge is None) == ("edge" not in chosen.rate_words())
    # no stable rate above SGD's stability limit at the steepest start
    assert all(np.isnan(distance[i]).any() for i in range(best + 2, len(distance)))


def test_a_share_of_the_starts_carries_its_wilson_interval():
    low, high = protocol.wilson_interval(8, 16)
    assert page_surfaces.share_words(0.5) == f"50 % [{round(100 * low)}, {round(100 * high)}]"
    assert page_surfaces.share_words(0.0).startswith("0 % [0, ")  # none is not "certainly none"


def test_a_tuned_rate_at_the_grid_end_says_so():
    at_edge = page_surfaces.Tuned(page_surfaces.RATES[-1], 0.1, 0.5, 0.0, True, "upper")
    assert "upper edge" in at_edge.rate_words()
    given = page_surfaces.Tuned(0.01, 0.1, 0.5, 0.0, False)
    assert given.rate_words() == "0.01"


def test_the_page_does_not_write_its_tuned_rates_into_the_callers_parameters(tmp_path):
    surfaces = {"quadratic": {"kappa": 10.0, "steps": 20, "lr": None, "contrast_lr": 0.01}}
    page = Page(**values(tmp_path, optimizer="sgd", surfaces=surfaces))
    tuned = page.surface_lr("quadratic", "lr")
    assert tuned in page_surfaces.RATES and page.surfaces["quadratic"]["lr"] == tuned
    assert surfaces["quadratic"]["lr"] is None  # a rerun of the cell tunes again


def test_the_heavy_balls_effective_step_is_lr_over_one_minus_beta():
    assert page_surfaces.step_gain("sgd", {}) == 1
    assert page_surfaces.step_gain("momentum", {}) == pytest.approx(10)
    assert page_surfaces.step_gain("momentum", {"momentum": 0.5}) == pytest.approx(2)
    assert page_surfaces.step_gain("adam", {}) == 1 and page_surfaces.step_gain("rmsprop", {}) == 1


def test_the_claims_come_from_the_ledger_with_a_link_to_their_entry(monkeypatch):
    rows = (
        {"id": "x-fast", "claim": "X is fast.", "algorithm": "x", "kind": "empirical",
         "figure": "a | ratio", "estimate": 1.5, "ci_low": 1.2, "ci_high": 1.9, "seeds": 10,
         "verdict": "supported", "source": "s"},
        {"id": "x-slow", "claim": "X is slow.", "algorithm": "x", "kind": "empirical",
         "experiment": "x", "figure": "b", "estimate": "", "ci_low": "", "ci_high": "", "seeds": "",
         "verdict": "pending", "source": "x/y is not finished"},
        {"id": "x-def", "claim": "X is X.", "algorithm": "x", "kind": "definitional",
         "figure": "checked", "estimate": "", "ci_low": "", "ci_high": "", "seeds": "",
         "verdict": "", "source": ""},
        {"id": "y-other", "claim": "Y.", "algorithm": "y", "kind": "definitional",
         "figure": "", "estimate": "", "ci_low": "", "ci_high": "", "seeds": "",
         "verdict": "", "source": ""},
    )  # fmt: skip
    monkeypatch.setattr(page_claims, "_ledger", lambda: rows)
    shown = page_claims.claim_rows("x")
    assert [r[0] for r in shown] == ["X is fast.", "X is slow.", "X is X."]
    assert shown[0][1] == "a \\| ratio"  # a bar would split the Markdown table
    assert shown[0][2] == "1.5 [1.2, 1.9] over 10 seeds"
    assert shown[0][3] == "{ref}`supported <claim-x-fast>`"
    # the claims page's wording: how much is stored, then the first thing missing
    waits = "experiment x: not stored yet; first missing: x/y is not finished"
    assert shown[1][2] == f"pending: {waits} (`make evidence`)"
    assert shown[1][3] == "{ref}`pending <claim-x-slow>`"
    assert shown[2][3] == "{ref}`definitional <claim-x-def>`"
    facts = page_claims.claim_facts("x")
    assert facts["claim_x_fast"] == "{ref}`supported <claim-x-fast>`"
    assert facts["claim_x_slow_figure"].startswith("pending")
    # the verdict and its figure as one phrase, for "Ledger: {claim_x_entry}."
    assert (
        facts["claim_x_fast_entry"]
        == "{ref}`supported <claim-x-fast>` (1.5 [1.2, 1.9] over 10 seeds)"
    )
    assert facts["claim_x_slow_entry"] == (
        f"{{ref}}`pending <claim-x-slow>` — {waits} (`make evidence`)"
    )
    assert facts["claim_x_def_entry"] == "{ref}`definitional <claim-x-def>`"
    # an inconclusive that the registration imposes (no optimizer solves the study) says so
    unsolved = {**rows[0], "verdict": "inconclusive", "source": "s (inconclusive by registration)"}
    assert page_claims.entry(unsolved) == (
        "{ref}`inconclusive <claim-x-fast>` by registration, no optimizer solving its study "
        "(1.5 [1.2, 1.9] over 10 seeds)"
    )


def test_closer_needs_a_factor_of_two_either_way():
    assert algorithm_page.closer(1.0, 2.0) is True
    assert algorithm_page.closer(2.0, 1.0) is False
    assert algorithm_page.closer(1.0, 1.9) is None


def test_the_comparison_words_state_the_computed_factor():
    words = algorithm_page.closer_words
    assert words(0.00187, 0.253) == "135 times closer to the minimum than"
    assert words(1.0, 4.2) == "4.2 times closer to the minimum than"
    assert words(0.0088, 0.00165) == "5.3 times farther from the minimum than"
    assert words(1.0, 1.05) == "about as far from the minimum as"
    assert words(1e-9, 0.002) == "more than $10^{6}$ times closer to the minimum than"
    assert words(float("inf"), 1.0).startswith("diverged")
    assert [algorithm_page.floats_words(n) for n in (0, 1, 2)] == [
        "0 floats",
        "1 float",
        "2 floats",
    ]


def test_a_contrast_that_is_the_same_method_is_named_as_its_other_rate(tmp_path):
    surfaces = {"quadratic": {"kappa": 10.0, "steps": 20, "lr": 0.1, "contrast_lr": 0.01}}
    page = Page(**values(tmp_path, optimizer="sgd", surfaces=surfaces))
    page.trajectories()
    _, _, caption = page.trajectories_figure()
    assert "SGD (solid) and SGD at the other learning rate (dashed)" in caption
    _, table_caption = page.surface_table()
    assert table_caption.endswith("times at the other learning rate.")
    assert len(page.cost()) == 1  # one row: the contrast's state and code are the same
    assert page.facts["state_floats"] == "0 floats"


@pytest.mark.parametrize("name", ["sgd", "momentum", "rmsprop", "adam"])
def test_each_exercise_solution_runs_as_copied_with_its_own_imports(name):
    from pathlib import Path

    text = Prose(Path(__file__).parents[1] / "chapters" / "text" / f"{name}.md")
    shown = text.exercises()  # each solution in a namespace of its own: a missing import fails
    solutions = [block for block in shown if block.startswith(":::{admonition} Solution")]
    assert solutions and all("Output:" in block for block in solutions)


def test_the_live_sensitivity_is_the_ledgers_random_rate_cost_on_the_sweep():
    from rnnopt import page_live

    grid = [0.001, 0.00316, 0.01, 0.0316, 0.1, 0.316, 1.0]
    mean = np.array([0.9, 0.5, 0.2, 0.1, 0.3, 2.0, np.nan])  # baseline 1: r = mean, capped
    failed = np.array([False] * 6 + [True])
    cost, near, cut = page_live.decade_cost(grid, mean, failed, baseline=1.0)
    assert near == [1, 2, 3, 4, 5] and not cut  # 0.00316 to 0.316, a decade either side
    assert cost == pytest.approx(np.mean([0.5, 0.2, 0.1, 0.3, 1.0]) - 0.1)
    _, near, cut = page_live.decade_cost(grid[2:], mean[2:], failed[2:], baseline=1.0)
    assert near == [0, 1, 2, 3] and cut  # the grid ends inside the decade below the best


def test_the_range_that_beats_the_baseline_uses_one_bar_for_every_optimizer(tmp_path):
    from rnnopt import page_live

    page = Page(**values(tmp_path))
    mean = np.array([0.95, 0.8, 0.5, 0.85, 0.99])
    failed = np.zeros(5, bool)
    assert page_live.useful_range(page, mean, failed, baseline=1.0) == (2, 1, 3)  # ≤ 0.9
    assert page_live.useful_range(page, mean + 0.5, failed, baseline=1.0) is None


@pytest.mark.parametrize("template", ["algorithm", "training-rnns", "reproducing", "claims"])
def test_every_template_parameter_has_a_type_and_a_meaning(template):
    # The reproducing page tabulates what papermill reads: the annotation and the comment ending
    # the line (a formatter's pragma after the meaning is not one).
    from pathlib import Path

    import papermill

    path = Path(__file__).parents[1] / "chapters" / "_templates" / f"{template}.ipynb"
    found = papermill.inspect_notebook(str(path))
    assert found
    for name, p in found.items():
        assert p["inferred_type_name"] not in ("", "None"), name
        assert p["help"] and not p["help"].startswith(("fmt:", "noqa")), name


def test_the_per_sample_sentence_says_when_equal_samples_turn_the_comparison_round():
    from rnnopt import page_tier

    rng = np.random.default_rng(0)
    sixteen = 0.1 + 0.01 * rng.random(10)
    errors = {"batch-16": sixteen, "batch-1": 4 * sixteen, "batch-1-long": 0.6 * sixteen}
    text = page_tier.per_sample_sentence(errors)
    assert text.startswith("Against batch 16, batch 1's error is higher over equal steps (4.00 ")
    assert "lower over equal samples (0.60 " in text
    assert text.endswith("per sample the comparison goes the other way.")
    errors["batch-1-long"] = 2 * sixteen  # higher both ways: nothing turns round
    assert page_tier.per_sample_sentence(errors).endswith("times).")
