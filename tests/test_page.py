"""The algorithm page (rnnopt.page): one template for the book's four optimizers and for any
other torch optimizer; its prose is filled from computed numbers, never typed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnopt import page as algorithm_page
from rnnopt.landscapes import LANDSCAPES, trajectory
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
        "window_margin": 0.2,
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


def test_an_unset_surface_rate_is_the_lattice_rate_that_ends_closest():
    bowl = LANDSCAPES["quadratic"](kappa=10.0)
    chosen = algorithm_page.tuned_surface_lr(bowl, "sgd", 30, {})
    rates = [10 ** (k / 3) for k in range(-12, 1)]
    ends = [np.linalg.norm(trajectory(bowl, "sgd", 30, lr=r)[-1]) if len(
        trajectory(bowl, "sgd", 30, lr=r)) == 31 else np.inf for r in rates]  # fmt: skip
    assert chosen == pytest.approx(rates[int(np.argmin(ends))], rel=1e-2)


def test_closer_needs_a_factor_of_two_either_way():
    assert algorithm_page.closer(1.0, 2.0) is True
    assert algorithm_page.closer(2.0, 1.0) is False
    assert algorithm_page.closer(1.0, 1.9) is None


def test_a_path_that_leaves_the_numbers_on_the_double_well_is_diverged():
    path = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert algorithm_page.well_outcome(path, 5, (1.0, 0.0), (-1.0, 0.0)) == "diverged"
    assert algorithm_page.well_outcome(path, 1, (1.0, 0.0), (-1.0, 0.0)) == "global"
    assert algorithm_page.well_outcome(path, 1, (5.0, 0.0), (1.05, 0.0)) == "local"
    assert algorithm_page.well_outcome(path, 1, (5.0, 0.0), (3.0, 0.0)) == "elsewhere"
