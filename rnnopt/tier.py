"""A stored tier, read: what each finished variant holds (its tuned record, the evaluation
seeds' relative errors, histories and successes) and what the tier has cost. The runner that
writes it is rnnopt.evidence; the ledger, the comparison and `rnnopt evaluate` read through here.

Each reader takes the tier's root (default: data/evidence/) and its studies' directory
(default: data/specs/evidence/), so the same code reads the quick tier or a reader's own.
A variant that is not finished raises `Pending`, saying what is missing.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from rnnopt import evidence, protocol
from rnnopt.evidence import Study, load_study, relative_errors, study_names
from rnnopt.store import load_history, load_results, write_atomic
from rnnopt.train import History

# --- Reading a finished tier ------------------------------------------------------------------


class Pending(Exception):
    """The evidence asked for is not (all) stored yet."""


def _roots(root: Path | None, studies_dir: Path | None) -> tuple[Path, Path]:
    # Resolved at call time, so a caller (or a test) can point the readers at another tier.
    return Path(root or evidence.EVIDENCE_DIR), Path(studies_dir or evidence.STUDIES_DIR)


def tuned_record(study: str, variant: str, root: Path | None = None) -> dict[str, Any]:
    """`tuned.json` of a finished variant: its final grid, the chosen rate, edge or interior."""
    path = _roots(root, None)[0] / study / variant / "tuned.json"
    if not path.exists():
        raise Pending(f"{study}/{variant} is not finished")
    return json.loads(path.read_text())


@functools.cache
def _scale(spec: Path) -> tuple[float, bool]:
    """The trivial predictor's metric on the test half, where evaluation runs are scored."""
    return evidence.task_scale(load_study(spec), "eval")


def eval_errors(
    study: str,
    variant: str,
    lr: float | None = None,
    root: Path | None = None,
    studies_dir: Path | None = None,
) -> np.ndarray:
    """Relative errors on the evaluation seeds (in seed order) at `lr` (default: the chosen)."""
    root, studies_dir = _roots(root, studies_dir)
    tuned = tuned_record(study, variant, root)
    lr = tuned["lr"] if lr is None else lr
    rows = load_results(root / study / variant / "eval")
    by_seed = relative_errors(rows, *_scale(studies_dir / f"{study}.yaml")).get(lr, {})
    missing = [s for s in tuned["evaluation_seeds"] if s not in by_seed]
    if missing:
        raise Pending(f"{study}/{variant} lacks evaluation seeds {missing} at lr={lr}")
    return np.array([by_seed[s] for s in tuned["evaluation_seeds"]])


def _histories(study: str, variant: str, stage: str, root: Path | None) -> list[History]:
    """A stage's runs at the chosen rate, in seed order (stage "tune" or "eval")."""
    root = _roots(root, None)[0]
    tuned = tuned_record(study, variant, root)
    seeds = tuned["tuning_seeds" if stage == "tune" else "evaluation_seeds"]
    directory = root / study / variant / stage
    rows = {r["seed"]: r for r in load_results(directory) if r["lr"] == tuned["lr"]}
    missing = [s for s in seeds if s not in rows]
    if missing:
        raise Pending(f"{study}/{variant} lacks {stage} seeds {missing}")
    return [load_history(directory, rows[s]["run_id"]) for s in seeds]


def eval_histories(study: str, variant: str, root: Path | None = None) -> list[History]:
    """The evaluation runs' histories at the chosen rate, in seed order."""
    return _histories(study, variant, "eval", root)


def criterion_of(study: str, studies_dir: Path | None = None) -> protocol.Criterion:
    spec = _roots(None, studies_dir)[1] / f"{study}.yaml"
    return protocol.SUCCESS[load_study(spec).task["name"]]


def eval_successes(
    study: str, variant: str, root: Path | None = None, studies_dir: Path | None = None
) -> np.ndarray:
    """Whether each evaluation run (chosen rate, seed order) met its task's success criterion."""
    criterion = criterion_of(study, studies_dir)
    return np.array(
        [
            protocol.success_step(h, criterion) is not None
            for h in eval_histories(study, variant, root)
        ]
    )


def tune_successes(
    study: str, variant: str, root: Path | None = None, studies_dir: Path | None = None
) -> np.ndarray:
    """Whether each tuning run at the chosen rate (tuning seeds, validation half) met the
    success criterion: what decides whether a study is solved (registration amendment 6), so
    that the evaluation seeds the tier figures compare do not also choose the studies."""
    criterion = criterion_of(study, studies_dir)
    return np.array(
        [
            protocol.success_step(h, criterion) is not None
            for h in _histories(study, variant, "tune", root)
        ]
    )


# --- What the tier costs --------------------------------------------------------------------


def expected_runs(study: Study, grid_sizes: dict[str, int] | None = None) -> int:
    """Runs the study takes with each variant's grid at its current size (its starting grid
    if it has not run): grid × tuning seeds, plus the evaluated rates × evaluation seeds. With
    `evaluate: grid` those are the rates within a decade of the chosen one (amendment 1): at
    most 2 × GRID_STEPS_PER_DECADE + 1 of the grid."""
    total = 0
    for variant in study.variants:
        size = (grid_sizes or {}).get(variant.label, len(variant.grid))
        within_a_decade = 2 * protocol.GRID_STEPS_PER_DECADE + 1
        evaluated = min(size, within_a_decade) if study.evaluate == "grid" else 1
        total += size * len(study.tuning_seeds) + evaluated * len(study.evaluation_seeds)
    return total


def seconds_per_step(study: Study, steps: int = 30) -> float:
    """The median time of a training step of the study's model, measured now (one thread)."""
    from rnnopt.train import run

    variant = study.variants[0]
    train = evidence.train_options(study, variant)  # the clipping level the protocol computes
    history = run(
        task=study.task,
        model=study.model,
        optimizer={**variant.optimizer, "lr": variant.grid[0]},
        train_options={**train, "steps": steps, "log_every": 1, "eval_every": None},
        seed=0,
        threads=1,
    )
    return float(np.median(history.step_time[5:]))


def step_times_path(out_root: str | Path | None = None) -> Path:
    return Path(out_root or evidence.EVIDENCE_DIR) / "cost" / "steps.json"


def measure_step_times(
    studies_dir: str | Path | None = None, out_root: str | Path | None = None, steps: int = 60
) -> dict[str, float]:
    """Every study's `seconds_per_step`, measured one after another and stored in
    cost/steps.json: the projection of a study not started yet. Measure on an idle machine (as
    `make evidence` does, after the runs); timings taken beside other jobs are inflated."""
    out_root, studies_dir = _roots(out_root, studies_dir)
    times = {
        name: seconds_per_step(load_study(Path(studies_dir) / f"{name}.yaml"), steps)
        for name in study_names(studies_dir)
    }
    data = {"seconds_per_step": times, "steps": steps, "threads": 1}
    path = step_times_path(out_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=1) + "\n")
    return times


def _cpu_seconds(stage: Path, row: dict[str, Any]) -> float:
    """A run's CPU time (older records kept only their wall-clock time)."""
    return float(
        json.loads((stage / "runs" / f"{row['run_id']}.json").read_text()).get(
            "cpu_time", row["wall_time"]
        )
    )


def cost_table(
    studies_dir: str | Path | None = None, out_root: str | Path | None = None, measure: bool = True
) -> tuple[list[list[Any]], float, float]:
    """Per study: runs stored and expected, CPU-hours spent and the projected total.

    A study with stored runs is projected from their median CPU time; one not started from
    its step time × steps: the step time stored by `measure_step_times` (on an idle machine),
    else, with `measure`, one measured now (a loaded machine inflates it)."""
    out_root, studies_dir = _roots(out_root, studies_dir)
    stored = step_times_path(out_root)
    step_times = json.loads(stored.read_text())["seconds_per_step"] if stored.exists() else {}
    rows, spent_total, projected_total = [], 0.0, 0.0
    for name in study_names(studies_dir):
        study = load_study(Path(studies_dir) / f"{name}.yaml")
        walls, sizes, finished = [], {}, 0
        for variant in study.variants:
            root = Path(out_root) / name / variant.label
            for stage in ("tune", "eval"):
                if (root / stage / "results.csv").exists():
                    walls += [_cpu_seconds(root / stage, r) for r in load_results(root / stage)]
            if (root / "tuned.json").exists():
                sizes[variant.label] = len(json.loads((root / "tuned.json").read_text())["grid"])
                finished += 1
        expected = max(expected_runs(study, sizes), len(walls))
        if walls:
            per_run = float(np.median(walls))
        elif name in step_times:
            per_run = step_times[name] * study.train["steps"]
        elif measure:
            per_run = seconds_per_step(study) * study.train["steps"]
        else:
            per_run = math.nan
        spent = sum(walls)
        projected = spent + per_run * (expected - len(walls))
        spent_total, projected_total = spent_total + spent, projected_total + projected
        rows.append(
            [
                name,
                f"{finished}/{len(study.variants)}",
                f"{len(walls)}/{expected}",
                f"{per_run:.0f}",
                f"{spent / 3600:.2f}",
                f"{projected / 3600:.1f}",
            ]
        )
    return rows, spent_total / 3600, projected_total / 3600


def write_report(path: str | Path | None = None) -> None:
    """data/evidence/README.md: the layout, the commands, and the cost table (computed)."""
    from rnnopt.plots import markdown_table

    path = Path(path or evidence.EVIDENCE_DIR / "README.md")
    rows, spent, projected = cost_table()
    table = markdown_table(
        [
            "study",
            "variants done",
            "runs stored/expected",
            "s per run",
            "CPU-hours spent",
            "CPU-hours projected",
        ],
        rows,
    )
    text = f"""# data/evidence/ — the evidence tier

Written by `python -m rnnopt.evidence --report`; do not edit by hand.

Each study of `data/specs/evidence/<study>.yaml` has one directory per variant (an optimizer, or
an optimizer with the hyperparameter or batch size a claim is about):

- `<study>/<variant>/tune/`: the learning-rate grid on the tuning seeds
  {list(protocol.TUNING_SEEDS)};
- `<study>/<variant>/eval/`: the chosen rate (or, for `evaluate: grid`, every rate) on the
  evaluation seeds {protocol.EVALUATION_SEEDS[0]}–{protocol.EVALUATION_SEEDS[-1]};
- `<study>/<variant>/tuned.json`: the final grid, the chosen rate, whether it is interior.

Each stage is an ordinary sweep directory (spec.yaml, runs/, results.csv, provenance.json), so
`rnnopt sweep <stage>/spec.yaml --out <stage>` reruns or completes one by hand. The experiments
that are not sweeps (`convex-lsq`, `surfaces`, `ravine`, `nonstationary`, `cost`) keep every
measurement in `<name>/results.json` (`python -m rnnopt.experiments NAME`). The protocol is
`rnnopt/protocol.py`; what each study decides is `data/registration.yaml`.

## Regenerate, resume, scale out

```bash
make evidence                                      # every study, 2 local workers; resumes
python -m rnnopt.evidence digits-elman             # one study
python -m rnnopt.evidence --scheduler tcp://host:8786   # on a Dask cluster
```

## Cost

CPU-hours of training (the process time of each run, one torch thread) on a 2-core
machine; "projected" adds, for the runs still to do, the study's median run time so far (or,
for a study not started, a step's time measured now × its steps). The budget is 24 CPU-hours,
about 12 hours of wall time with 2 workers.

{table}

Spent so far: {spent:.1f} CPU-hours; projected for the whole tier: {projected:.1f} CPU-hours.
"""
    write_atomic(path, text)
