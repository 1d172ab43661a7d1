"""Bring your own optimizer: the book's protocol run on any torch optimizer, compared with the
four optimizers' stored results on the same tier.

    rnnopt evaluate --optimizer examples/lion.py:Lion --tier quick --out results/lion

For every study of the tier the new optimizer's learning rate is searched exactly as the four's
were (rnnopt.protocol: the 1/3-decade lattice, the tuning seeds, widening at an edge) and the
chosen rate is run on the evaluation seeds. The runs are stored in DIR/runs/ in the sweep
store's format, so the same command resumes; DIR/summary.csv has one row per optimizer and
study, DIR/paired.csv the new optimizer against each of the four, paired by seed.

Tiers: `quick` (data/specs/quick/, stored in data/quick/: minutes) and `full` (the evidence
tier's studies, data/specs/evidence/ and data/evidence/: hours; a Dask cluster helps).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnopt import evidence, protocol
from rnnopt.optim import make_optimizer, optimizer_class
from rnnopt.store import write_atomic
from rnnopt.tier import eval_errors, tuned_record

ROOT = Path(__file__).resolve().parent.parent
TIERS = {
    "quick": (ROOT / "data" / "specs" / "quick", ROOT / "data" / "quick"),
    "full": (evidence.STUDIES_DIR, evidence.EVIDENCE_DIR),
}
FOUR = ("sgd", "momentum", "rmsprop", "adam")
SUMMARY_COLUMNS = (
    "task",
    "core",
    "optimizer",
    "best_lr",
    "metric",
    "estimate",
    "ci_low",
    "ci_high",
    "seeds",
)
DEFAULT_GRID = (0.000464, 0.00215)  # a starting grid; the search widens it where needed


class EvaluationError(ValueError):
    """A usage error of `rnnopt evaluate` (the command exits with status 2)."""


class ReportError(RuntimeError):
    """The report's execution failed (the runs and summary are stored; the command exits 1)."""


def check_optimizer(name: str, hyper: dict[str, Any]) -> type[torch.optim.Optimizer]:
    """The class `name` stands for, built on a stand-in parameter with `hyper` and stepped
    twice, so that a constructor or a step that raises is reported before any run starts."""
    try:
        cls = optimizer_class(name)
    except ValueError as err:
        raise EvaluationError(str(err)) from err
    if "lr" in hyper:
        raise EvaluationError(
            f"--hyper lr={hyper['lr']!r} is invalid: expected no lr, since the learning rate is "
            "what the protocol tunes; give --lr-from/--lr-to to move its starting grid"
        )
    weight = torch.nn.Parameter(torch.ones(2))
    stage = "constructed"
    try:
        opt = make_optimizer(name, [weight], lr=1e-3, **hyper)
        stage = "stepped"
        for _ in range(2):
            opt.zero_grad()
            weight.pow(2).sum().backward()
            opt.step()
    except Exception as err:  # noqa: BLE001 - any failure of the user's code is reported
        raise EvaluationError(
            f"optimizer={name!r} is invalid: expected an optimizer that can be {stage} with "
            f"{hyper or 'its defaults'}; it cannot be {stage}: {type(err).__name__}: {err}"
        ) from err
    return cls


def tier_studies(tier: str, studies_dir: str | Path | None = None) -> list[evidence.Study]:
    """The general studies of a tier (the full tier: the registration's tier studies), read
    from `studies_dir` (default: the tier's own)."""
    if tier not in TIERS:
        raise EvaluationError(
            f"tier={tier!r} is invalid: expected a tier; "
            f"valid choices: {', '.join(map(repr, TIERS))}"
        )
    studies_dir = Path(studies_dir or TIERS[tier][0])
    names = evidence.study_names(studies_dir)
    if tier == "full":
        from rnnopt.ledger import registration

        names = [n for n in names if n in registration()["protocol"]["tier_studies"]]
    return [evidence.load_study(studies_dir / f"{n}.yaml") for n in names]


def _source_hash(name: str) -> str | None:
    where = name.partition(":")[0]
    return hashlib.sha256(Path(where).read_bytes()).hexdigest() if where.endswith(".py") else None


def evaluate(
    name: str,
    tier: str,
    out: str | Path,
    hyper: dict[str, Any] | None = None,
    grid: tuple[float, float] = DEFAULT_GRID,
    workers: int = 1,
    scheduler: str | None = None,
    report: bool = True,
) -> list[dict[str, Any]]:
    """Run the protocol for optimizer `name` on `tier` into `out`; return the summary rows.
    With `report`, also execute the algorithm chapter's template for it into out/report.ipynb."""
    hyper = dict(hyper or {})
    cls = check_optimizer(name, hyper)
    # Named by its class; one that shares a name with the four (torch's own Adam, say) by its
    # full dotted name, so that their directories and rows stay apart.
    label = cls.__name__
    if label.lower() in FOUR:
        label = f"{cls.__module__}.{cls.__name__}"
    try:
        start = [
            protocol.lr_lattice(i)
            for i in range(protocol.lattice_index(grid[0]), protocol.lattice_index(grid[1]) + 1)
        ]
    except ValueError as err:
        raise EvaluationError(f"--lr-from/--lr-to: {err}") from err
    if not start:
        raise EvaluationError(
            f"--lr-from={grid[0]!r} is invalid: expected a rate <= --lr-to={grid[1]!r}"
        )
    out = Path(out)
    identity = {
        "optimizer": name,
        "class": label,
        "hyper": hyper,
        "tier": tier,
        "source_sha256": _source_hash(name),
    }
    _check_identity(out, identity)
    # Where the four's runs are, for the report (executed in a kernel of its own).
    studies_dir, stored_root = TIERS[tier]
    where = {"tier": tier, "studies_dir": str(Path(studies_dir).resolve()),
             "root": str(Path(stored_root).resolve())}  # fmt: skip
    write_atomic(out / "tier.json", json.dumps(where, indent=1) + "\n")
    studies = tier_studies(tier)
    variant = evidence.Variant(label, {"name": name, **hyper}, {}, tuple(start))
    for study in studies:
        mine = dataclasses.replace(study, variants=(variant,))
        evidence.run_variant(mine, label, out / "runs", workers=workers, scheduler=scheduler)
    rows, paired = summarize(studies, label, tier, out)
    write_atomic(out / "summary.csv", _csv(SUMMARY_COLUMNS, rows))
    write_atomic(out / "paired.csv", _csv(tuple(paired[0]) if paired else (), paired))
    if report:
        write_report(name, tier, out, hyper)
    return rows


def _check_identity(out: Path, identity: dict[str, Any]) -> None:
    """An output directory belongs to one optimizer, one version of its file and one tier."""
    path = out / "evaluation.json"
    if path.exists():
        stored = json.loads(path.read_text())
        if stored != identity:
            changed = [k for k in identity if stored.get(k) != identity[k]]
            raise EvaluationError(
                f"--out={str(out)!r} is invalid: expected a new directory or one of this "
                f"evaluation, but it holds an evaluation of another setting "
                f"({', '.join(changed)} differ)"
            )
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(identity, indent=1) + "\n")


def summarize(
    studies: Sequence[evidence.Study], label: str, tier: str, out: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Summary rows (five optimizers per study) and the paired comparisons, from stored runs."""
    studies_dir, stored_root = TIERS[tier]
    rows, paired = [], []
    for study in studies:
        roots = {v: stored_root for v in FOUR} | {label: out / "runs"}
        errors = {
            v: eval_errors(study.name, v, root=r, studies_dir=studies_dir) for v, r in roots.items()
        }
        records = {v: tuned_record(study.name, v, root=r) for v, r in roots.items()}
        core = study.model.get("core", "elman")
        for optimizer in (*FOUR, label):
            low, high = protocol.bootstrap_interval(errors[optimizer])
            rows.append(
                {
                    "task": study.name,
                    "core": core,
                    "optimizer": optimizer,
                    "best_lr": records[optimizer]["lr"],
                    "metric": "relative error",
                    "estimate": float(np.mean(errors[optimizer])),
                    "ci_low": low,
                    "ci_high": high,
                    "seeds": len(errors[optimizer]),
                }
            )
        for other in FOUR:
            low, high = protocol.paired_interval(errors[label], errors[other])
            paired.append(
                {
                    "task": study.name,
                    "core": core,
                    "optimizer": label,
                    "against": other,
                    "ratio": float(np.mean(errors[label]) / np.mean(errors[other])),
                    "ci_low": low,
                    "ci_high": high,
                    "p_better": protocol.probability_of_improvement(errors[label], errors[other]),
                    "diverged_everywhere": _diverged_everywhere(records[label]),
                }
            )
    return rows, paired


def _diverged_everywhere(record: dict[str, Any]) -> bool:
    """Every rate of the search scored as a diverged run does (relative error 1 on every seed)."""
    return all(v >= 1.0 for v in record["tuning_errors"].values())


def _csv(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return buffer.getvalue()


# --- The report: the algorithm chapter's template, executed for the new optimizer ------------

TEMPLATE = ROOT / "chapters" / "_templates" / "algorithm.ipynb"
REPORT_TEXT = """# {name}, measured on recurrent networks

## Purpose

{doc}

## Mechanism

The update as `{spec}` defines it is listed below, read from its source when this report was
executed; its hyperparameters come from the constructor's signature.

## Tier

On every study of the tier its learning rate was searched exactly as the book's four optimizers'
were, and the chosen rate was run on the same evaluation seeds as theirs, so every comparison with
them is paired by seed.

## Advantages

Faster than SGD on this tier, by the rule the book registered for momentum and Adam (steps to
the success criterion, censored at the budget): {{supported_if_tier_faster}}. SGD's restricted
mean steps to success over {name}'s: {{tier_speedup}}.

## Disadvantages

{name} keeps {{tier_state_bytes}} bytes of state per parameter; SGD keeps none. Not faster than
SGD on this tier: {{supported_unless_tier_faster}}.
"""


def write_report(
    name: str, tier: str, out: str | Path, hyper: dict[str, Any] | None = None
) -> Path:
    """Execute the algorithm chapter's template for optimizer `name` on the stored runs of
    `out` (an `evaluate` directory) into out/report.ipynb, and return its path. Its text
    (out/report.md) is written from the class's docstring; the surfaces' learning rates are
    chosen on the lattice as the tier's are; no live training runs (the tier has them)."""
    import inspect

    import papermill

    out = Path(out).resolve()
    cls = optimizer_class(name)
    where, colon, attribute = name.partition(":")
    # Paths relative to `out`, where the report executes, so that the directory can move.
    spec = (
        f"{os.path.relpath(Path(where).resolve(), out)}:{attribute}"
        if where.endswith(".py")
        else name
    )
    module = inspect.getmodule(cls) or sys.modules.get(cls.__module__)
    doc = inspect.cleandoc(
        cls.__doc__ or getattr(module, "__doc__", None) or f"{cls.__name__} has no docstring."
    )
    text = REPORT_TEXT.format(name=cls.__name__, doc=doc, spec=name)
    write_atomic(out / "report.md", text)
    parameters = {
        "optimizer": spec,
        "hyper": dict(hyper or {}),
        "contrast": "adam",
        "contrast_hyper": {},
        "text_file": "report.md",
        "tier": tier,
        "evaluation_dir": ".",
        "surfaces": {
            "quadratic": {"kappa": 100.0, "steps": 150, "lr": None, "contrast_lr": None},
            "rosenbrock": {"steps": 1000, "lr": None, "contrast_lr": None},
            "double_well": {"tilt": 0.3, "steps": 200, "lr": None, "contrast_lr": None},
        },
        "tasks": {},
        "lr": {},
        "contrast_lr": {},
        "lr_task": "",
    }
    executed = out / "report.ipynb"
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "report.ipynb"
        try:
            papermill.execute_notebook(
                str(TEMPLATE), str(raw), parameters=parameters, cwd=str(out),
                progress_bar=False, kernel_name="python3",
            )  # fmt: skip
        except papermill.PapermillExecutionError as err:
            raise ReportError(
                f"the report failed in cell {err.exec_count}: {err.ename}: {err.evalue} "
                f"(the runs, summary.csv and paired.csv are stored; the failed notebook: "
                f"{executed})"
            ) from err
        finally:
            if raw.exists():
                write_atomic(executed, _without_empty_sections(raw.read_text(), text))
    return executed


def _without_empty_sections(notebook: str, text: str) -> str:
    """The report without the sections that showed nothing (its live experiments are off): a
    '## ' Markdown cell and the cells after it up to the next one go when none of its code
    cells has an output. The title cell gets the report's title."""
    nb = json.loads(notebook)
    groups: list[list[dict[str, Any]]] = [[]]
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and source.startswith("## "):
            groups.append([])
        groups[-1].append(cell)
    kept = [groups[0]] + [
        g for g in groups[1:] if any(c.get("outputs") for c in g if c["cell_type"] == "code")
    ]
    nb["cells"] = [cell for group in kept for cell in group]
    for cell in nb["cells"]:
        if "chapter-title" in cell["metadata"].get("tags", []):
            cell["source"] = text.splitlines()[0]
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
