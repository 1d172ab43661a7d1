"""`rnnopt evaluate` end to end on a tiny tier (seconds): one's own optimizer is tuned and
evaluated by the protocol and compared with the four optimizers' stored results."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import nbformat
import pytest
from conftest import make_tier, tiny_study

from rnnopt import cli, evaluate

REPO = Path(__file__).resolve().parent.parent
TINY = tiny_study(variants=("sgd", "momentum", "rmsprop", "adam"))
BROKEN = '''
import torch


class Exploder(torch.optim.Optimizer):
    """Every step sends the weights to infinity: every run diverges."""

    def __init__(self, params, lr=1e-3):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.fill_(float("inf"))
'''


@pytest.fixture(scope="module")
def stored_tier(tmp_path_factory):
    return make_tier(tmp_path_factory.mktemp("tiny-tier"), TINY)


@pytest.fixture()
def tiny(stored_tier, tmp_path, monkeypatch):
    monkeypatch.setitem(evaluate.TIERS, "quick", (stored_tier / "specs", stored_tier / "out"))
    monkeypatch.chdir(REPO)  # examples/lion.py is named relative to the repository
    return tmp_path


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_new_optimizer_gets_a_row_beside_the_four_with_a_finite_interval(tiny):
    out = tiny / "lion"
    assert (
        cli.main(
            [
                "evaluate",
                "--optimizer",
                "examples/lion.py:Lion",
                "--tier",
                "quick",
                "--out",
                str(out),
                "--workers",
                "1",
                "--lr-from",
                "0.001",
                "--lr-to",
                "0.00215",
            ]
        )
        == 0
    )
    rows = read(out / "summary.csv")
    assert list(rows[0]) == list(evaluate.SUMMARY_COLUMNS)
    assert [r["optimizer"] for r in rows] == ["sgd", "momentum", "rmsprop", "adam", "Lion"]
    for row in rows:
        assert math.isfinite(float(row["ci_low"])) and float(row["ci_low"]) <= float(row["ci_high"])
        assert row["seeds"] == "3"
    paired = read(out / "paired.csv")
    assert [p["against"] for p in paired] == ["sgd", "momentum", "rmsprop", "adam"]
    # The report is the algorithm chapter's template executed for Lion: its source, its
    # hyperparameters from the signature, the tier's tables beside the four, the verdicts.
    report = nbformat.read(out / "report.ipynb", as_version=4)
    shown = outputs(report)
    assert "Lion.step" in shown and "`betas`" in shown and "Table T1." in shown
    assert "reaches success sooner than SGD" in shown
    assert not [o for c in report.cells for o in c.get("outputs", []) if o.output_type == "error"]
    runs = sorted((out / "runs").rglob("runs/*.json"))
    stamps = [p.stat().st_mtime_ns for p in runs]
    evaluate.evaluate(
        "examples/lion.py:Lion", "quick", out, grid=(0.001, 0.00215), workers=1, report=False
    )
    assert [p.stat().st_mtime_ns for p in runs] == stamps  # resumed: nothing run again


def outputs(notebook) -> str:
    """Every text and Markdown output of an executed notebook, joined."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.append(output.get("data", {}).get("text/markdown", ""))
    return "\n".join(texts)


def test_an_optimizer_that_diverges_at_every_rate_is_reported_not_a_failure(tiny):
    (tiny / "exploder.py").write_text(BROKEN)
    rows = evaluate.evaluate(
        f"{tiny}/exploder.py:Exploder", "quick", tiny / "out", grid=(0.001, 0.001), workers=1
    )
    mine = [r for r in rows if r["optimizer"] == "Exploder"]
    assert mine[0]["estimate"] == 1.0  # scored as the trivial predictor
    assert read(tiny / "out" / "paired.csv")[0]["diverged_everywhere"] == "True"
    assert "diverged at every learning rate" in outputs(
        nbformat.read(tiny / "out" / "report.ipynb", as_version=4)
    )


def test_an_optimizer_named_like_one_of_the_four_keeps_its_own_rows(tiny):
    rows = evaluate.evaluate(
        "torch.optim:Adam",
        "quick",
        tiny / "torch-adam",
        grid=(0.01, 0.0215),
        workers=1,
        report=False,
    )
    assert [r["optimizer"] for r in rows][-1] == "torch.optim.adam.Adam"


def test_a_directory_of_another_evaluation_is_refused(tiny):
    evaluate._check_identity(tiny / "d", {"optimizer": "a.py:A", "tier": "quick"})
    with pytest.raises(
        evaluate.EvaluationError,
        match=r"^--out='.*d' is invalid: expected a new directory.*\(tier differ\)",
    ):
        evaluate._check_identity(tiny / "d", {"optimizer": "a.py:A", "tier": "full"})


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--optimizer", "missing.py:Lion"], "no file 'missing.py'"),
        (["--optimizer", "examples/lion.py:Lino"], "has no 'Lino'"),
        (["--optimizer", "torch.nn:Linear"], "is not a torch.optim.Optimizer subclass"),
        (
            ["--optimizer", "examples/lion.py:Lion", "--hyper", "betas=5"],
            "optimizer='examples/lion.py:Lion' is invalid: expected an optimizer that can be "
            "stepped",
        ),
        (
            ["--optimizer", "examples/lion.py:Lion", "--hyper", "lr=0.1"],
            "--hyper lr=0.1 is invalid: expected no lr",
        ),
        (
            ["--optimizer", "examples/lion.py:Lion", "--lr-from", "0.003"],
            "lr=0.003 is invalid: expected a rate on the 1/3-decade",
        ),
    ],
)
def test_bad_input_exits_2_with_a_message(tiny, capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        cli.main(["evaluate", *argv, "--out", str(tiny / "bad")])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
