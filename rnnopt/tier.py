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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnopt import evidence, protocol
from rnnopt.evidence import Study, load_study, relative_errors, study_names
from rnnopt.executors import MACHINE_KEYS
from rnnopt.store import load_history, load_results, write_atomic
from rnnopt.train import History

# --- Reading a finished tier ------------------------------------------------------------------


class Pending(Exception):
    """The evidence asked for is not (all) stored yet."""


def _roots(root: Path | None, studies_dir: Path | None) -> tuple[Path, Path]:
    # Resolved at call time, so a caller (or a test) can point the readers at another tier.
    return Path(root or evidence.EVIDENCE_DIR), Path(studies_dir or evidence.STUDIES_DIR)


class NotRun(Pending):
    """The variant was not run, and will not be: its skipped.json says why (amendment 12)."""


def tuned_record(study: str, variant: str, root: Path | None = None) -> dict[str, Any]:
    """`tuned.json` of a finished variant: its final grid, the chosen rate, edge or interior."""
    path = _roots(root, None)[0] / study / variant / "tuned.json"
    skipped = path.with_name("skipped.json")
    if skipped.exists():
        raise NotRun(f"{study}/{variant}: {json.loads(skipped.read_text())['skipped']}")
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


def stage_rows(study: str, variant: str, stage: str, root: Path | None = None) -> list[dict]:
    """A stage's result rows at the chosen rate, in seed order (stage "tune" or "eval")."""
    root = _roots(root, None)[0]
    tuned = tuned_record(study, variant, root)
    seeds = tuned["tuning_seeds" if stage == "tune" else "evaluation_seeds"]
    rows = {
        r["seed"]: r for r in load_results(root / study / variant / stage) if r["lr"] == tuned["lr"]
    }
    missing = [s for s in seeds if s not in rows]
    if missing:
        raise Pending(f"{study}/{variant} lacks {stage} seeds {missing}")
    return [rows[s] for s in seeds]


def stage_histories(
    study: str, variant: str, stage: str, root: Path | None = None
) -> list[History]:
    """A stage's runs at the chosen rate, in seed order (stage "tune" or "eval")."""
    directory = _roots(root, None)[0] / study / variant / stage
    return [load_history(directory, r["run_id"]) for r in stage_rows(study, variant, stage, root)]


def eval_histories(study: str, variant: str, root: Path | None = None) -> list[History]:
    """The evaluation runs' histories at the chosen rate, in seed order."""
    return stage_histories(study, variant, "eval", root)


def clipped_shares(study: str, variant: str, root: Path | None = None) -> np.ndarray:
    """Per evaluation seed, the share of the run's steps whose gradient was clipped, at the
    variant's tuned rate (`protocol.clipped_share`)."""
    return np.array([protocol.clipped_share(h) for h in eval_histories(study, variant, root)])


@functools.cache
def clipped_shares_by_rate(
    study: str, variant: str, root: Path | None = None
) -> dict[float, tuple[float, ...]]:
    """Per evaluated rate (every rate within a decade of the tuned one, for an `evaluate: grid`
    study), the share of steps clipped on each evaluation seed (`protocol.clipped_share`)."""
    directory = _roots(root, None)[0] / study / variant / "eval"
    shares: dict[float, list[float]] = {}
    for row in load_results(directory):
        history = load_history(directory, row["run_id"])
        shares.setdefault(float(row["lr"]), []).append(protocol.clipped_share(history))
    return {lr: tuple(values) for lr, values in sorted(shares.items())}


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
            for h in stage_histories(study, variant, "tune", root)
        ]
    )


# --- What the tier costs --------------------------------------------------------------------


def variant_runs(study: Study, variant: evidence.Variant, grid_size: int | None = None) -> int:
    """Runs a variant takes with its grid at `grid_size` rates (default: its starting grid; an
    `around` grid has three): grid × tuning seeds, plus the evaluated rates × evaluation seeds.
    With `evaluate: grid` those are the rates within a decade of the chosen one (amendment 1):
    at most 2 × GRID_STEPS_PER_DECADE + 1 of the grid. A `chosen` variant has no tuning runs."""
    size = 0 if variant.chosen else grid_size or variant.start_size
    within_a_decade = 2 * protocol.GRID_STEPS_PER_DECADE + 1
    evaluated = min(size, within_a_decade) if study.evaluate == "grid" else 1
    return size * len(study.tuning_seeds) + evaluated * len(study.evaluation_seeds)


def expected_runs(study: Study, grid_sizes: dict[str, int] | None = None) -> int:
    """Runs the study takes with each variant's grid at its current size (`variant_runs`)."""
    return sum(variant_runs(study, v, (grid_sizes or {}).get(v.label)) for v in study.variants)


def seconds_per_step(study: Study, steps: int = 30) -> float:
    """The median time of a training step of the study's model, measured now (one thread)."""
    from rnnopt.train import run

    variant = study.variants[0]
    train = evidence.train_options(study, variant)  # the clipping level the protocol computes
    history = run(
        task=study.task,
        model=study.model,
        # (an `around` grid is not known before its neighbour finishes; the rate barely
        # changes a step's time)
        optimizer={**variant.optimizer, "lr": variant.grid[0] if variant.grid else 1e-3},
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


def cpu_seconds(stage: Path, row: dict[str, Any]) -> float:
    """A run's CPU time (older records kept only their wall-clock time)."""
    return float(
        json.loads((stage / "runs" / f"{row['run_id']}.json").read_text()).get(
            "cpu_time", row["wall_time"]
        )
    )


@dataclass
class _Stored:
    """What a variant has stored: its runs' CPU seconds, its grid size once tuned, whether it is
    finished (tuned) or was not run (skipped.json)."""

    cpu: list[float]
    grid_size: int | None
    finished: bool
    skipped: bool
    tuning_rates: int = 0  # rates with tuning runs stored (a grid widened so far)
    flat: bool = False  # an unfinished grid on which nothing has learned so far


def _stored(out_root: Path, study: Study, label: str) -> _Stored:
    root = out_root / study.name / label
    cpu = [
        cpu_seconds(root / stage, r)
        for stage in ("tune", "eval")
        if (root / stage / "results.csv").exists()
        for r in load_results(root / stage)
    ]
    tuned = root / "tuned.json"
    size = len(json.loads(tuned.read_text())["grid"]) if tuned.exists() else None
    rows = load_results(root / "tune") if (root / "tune" / "results.csv").exists() else []
    flat = False
    if rows and not tuned.exists():
        # A grid that has learned nothing anywhere is widened on both sides (protocol.search).
        errors = relative_errors(rows, *evidence.task_scale(study, "tune"))
        flat = min(np.mean(list(e.values())) for e in errors.values()) >= protocol.NOTHING_LEARNED
    rates = len({r["lr"] for r in rows})
    return _Stored(cpu, size, tuned.exists(), (root / "skipped.json").exists(), rates, flat)


def _left(
    study: Study, variant: evidence.Variant, stored: _Stored, widening: int = 0, priced=False
) -> int:
    """Runs a variant still has to do: none once finished, or once not run unless `priced`
    (what it would cost if it ran). An unfinished grid is projected at its start plus
    `widening`, the median number of rates widening added to the finished grids, or at the
    rates it has already run if more; a grid on which nothing has learned yet at its widest."""
    if stored.finished or (stored.skipped and not priced):
        return 0
    if variant.chosen:  # no grid to widen
        return max(variant_runs(study, variant) - len(stored.cpu), 0)
    if stored.flat:  # widened on both sides, two rates each, as often as the protocol allows
        widening = 4 * protocol.MAX_FLAT_EXTENSIONS
    size = max(variant.start_size + widening, stored.tuning_rates)
    return max(variant_runs(study, variant, size) - len(stored.cpu), 0)


@dataclass
class Projection:
    """What the tier has spent and what its runs still to do will cost, from one read of the
    store: `cost_table`, the budget guard (`evidence._budget_refusal`) and the runner share it."""

    studies: dict[str, Study]
    stored: dict[str, dict[str, _Stored]]  # study -> variant -> what it has stored
    step_times: dict[str, float]
    measure: bool
    studies_dir: Path
    medians: dict[str, float]  # the median CPU seconds of a run, per study with stored runs
    cores: dict[str, str]
    plain: set[str]  # studies whose variants keep the study's training settings
    widening: int  # median rates added to a finished grid by widening
    by_work: dict[str, float]  # step_work -> the step time stored for the first such study

    def step_time(self, name: str) -> float:
        """A training step's seconds: stored, or stored for a study with the same task, model
        and batch (a step's work is theirs alone), or, with `measure`, measured now."""
        work = step_work(self.studies[name])
        if name not in self.step_times and work in self.by_work:
            return self.by_work[work]
        if name not in self.step_times:
            if not self.measure:
                return math.nan
            self.step_times[name] = seconds_per_step(self.studies[name])
            self.by_work.setdefault(work, self.step_times[name])
        return self.step_times[name]

    def calibration(self, core: str) -> float:
        """Stored runs take longer than step time × steps (evaluations, logging, a machine
        that is not idle): the median ratio over the studies with runs stored on the same core
        (else on any core), so a study not started is projected at what runs really cost."""
        for same in (True, False):
            ratios = [
                median / (self.step_time(n) * self.studies[n].train["steps"])
                for n, median in self.medians.items()
                # (a variant with its own steps or batch, as sgd-batch's, would skew the ratio)
                if n in self.plain and (not same or self.cores[n] == core)
            ]
            ratios = [r for r in ratios if math.isfinite(r)]
            if ratios:
                return float(np.median(ratios))
        return 1.0

    def per_run(self, study: Study) -> float:
        """CPU seconds of one run of the study still to do."""
        if study.name in self.medians:
            return self.medians[study.name]
        core = str(study.model.get("core", "elman"))
        return self.step_time(study.name) * study.train["steps"] * self.calibration(core)

    def spent_hours(self) -> float:
        """CPU-hours of every run stored."""
        return sum(sum(st.cpu) for mine in self.stored.values() for st in mine.values()) / 3600

    def variant_hours(self, study: Study, label: str, out_root: Path) -> float:
        """The projected CPU-hours of the runs a variant still has to do, were it to run."""
        mine = self.stored.get(study.name, {}).get(label) or _stored(out_root, study, label)
        left = _left(study, study.variant(label), mine, self.widening, priced=True)
        return self.per_run(study) * left / 3600 if left else 0.0


def ruled_out(study: Study, label: str, out_root: Path, studies_dir: Path) -> bool:
    """Whether the tier's rules (amendment 12: a rung below not solved, a neighbour not run)
    already say this unfinished variant will not run; False while that is not known yet."""
    if (out_root / study.name / label / "tuned.json").exists():
        return False
    try:
        return evidence.reason_not_to_run(study, label, out_root, studies_dir) is not None
    except Pending:
        return False  # the rung below is not finished: it may yet be solved


def projection(
    out_root: str | Path | None = None, studies_dir: str | Path | None = None, measure: bool = True
) -> Projection:
    """Read the store once: every study's stored runs, and what is needed to price the rest
    (step times stored by `measure_step_times`, else, with `measure`, measured when asked)."""
    out_root, studies_dir = _roots(out_root, studies_dir)
    stored_times = step_times_path(out_root)
    step_times = (
        json.loads(stored_times.read_text())["seconds_per_step"] if stored_times.exists() else {}
    )
    studies = {n: load_study(studies_dir / f"{n}.yaml") for n in study_names(studies_dir)}
    stored = {
        n: {v.label: _stored(out_root, s, v.label) for v in s.variants} for n, s in studies.items()
    }
    medians = {
        n: float(np.median(cpu))
        for n, by_variant in stored.items()
        if (cpu := [c for st in by_variant.values() for c in st.cpu])
    }
    cores = {n: str(s.model.get("core", "elman")) for n, s in studies.items()}
    plain = {n for n, s in studies.items() if not any(v.train for v in s.variants)}
    added = [
        st.grid_size - v.start_size
        for n, s in studies.items()
        for v in s.variants
        if (st := stored[n][v.label]).finished
    ]
    widening = int(np.median(added)) if added else 0
    by_work: dict[str, float] = {}
    for n, s in studies.items():
        if n in step_times:
            by_work.setdefault(step_work(s), step_times[n])
    return Projection(
        studies, stored, step_times, measure, studies_dir, medians, cores, plain, widening, by_work
    )


def step_work(study: Study) -> str:
    """What a training step's time depends on: the task, the model and the batch size."""
    return json.dumps([study.task, study.model, study.train["batch_size"]], sort_keys=True)


def cost_table(
    studies_dir: str | Path | None = None, out_root: str | Path | None = None, measure: bool = True
) -> tuple[list[list[Any]], float, float]:
    """Per study: variants done, runs stored and expected, CPU seconds per run, CPU-hours spent
    and projected; and the tier's totals (hours).

    A study with stored runs is projected from their median CPU time; one not started from
    its step time × steps × the calibration (`Projection.calibration`): the step time stored
    by `measure_step_times` (on an idle machine), else, with `measure`, one measured now."""
    out_root, studies_dir = _roots(out_root, studies_dir)
    priced = projection(out_root, studies_dir, measure)
    rows, projected_total = [], 0.0
    for name, study in priced.studies.items():
        mine = priced.stored[name]
        spent = sum(c for st in mine.values() for c in st.cpu)
        count = sum(len(st.cpu) for st in mine.values())
        excluded = {
            v.label for v in study.variants if ruled_out(study, v.label, out_root, studies_dir)
        }
        left = sum(
            _left(study, v, mine[v.label], priced.widening)
            for v in study.variants
            if v.label not in excluded
        )
        per_run = priced.per_run(study)
        projected = spent + per_run * left if left else spent
        projected_total += projected
        done = sum(st.finished for st in mine.values())
        skipped = len(excluded | {label for label, st in mine.items() if st.skipped})
        rows.append(
            [
                name,
                f"{done}/{len(study.variants)}" + (f" ({skipped} not run)" if skipped else ""),
                f"{count}/{count + left}",
                f"{per_run:.0f}",
                f"{spent / 3600:.2f}",
                f"{projected / 3600:.1f}",
            ]
        )
    return rows, priced.spent_hours(), projected_total / 3600


def budget_reached(rows: list[list[Any]]) -> str:
    """Where, at the projection of `cost_table`'s rows (in the order the tier runs them), the
    budget runs out: the guard of amendment 12 will not start what would pass it."""
    total = 0.0
    for row in rows:
        total += float(row[5])
        if total > protocol.TIER_BUDGET_CPU_HOURS:
            return (
                f"At this projection the budget of {protocol.TIER_BUDGET_CPU_HOURS:g} CPU-hours "
                f"runs out during {row[0]}: the variants that would pass it are not started, and "
                "say so in their skipped.json. Projections of studies not started shrink or grow "
                "as their first runs are stored."
            )
    return (
        f"At this projection the tier fits its budget of {protocol.TIER_BUDGET_CPU_HOURS:g} "
        "CPU-hours."
    )


def write_report(
    path: str | Path | None = None,
    out_root: str | Path | None = None,
    studies_dir: str | Path | None = None,
) -> None:
    """data/evidence/README.md: the layout, the commands, and the cost table (computed)."""
    from rnnopt.plots import markdown_table

    path = Path(path or evidence.EVIDENCE_DIR / "README.md")
    rows, spent, projected = cost_table(studies_dir, out_root)
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
for a study not started, its step time × its steps × the median ratio of stored runs' CPU time
to that product, on the same core). The budget is {protocol.TIER_BUDGET_CPU_HOURS:g} CPU-hours,
about {protocol.TIER_BUDGET_CPU_HOURS / 2:g} hours of wall time with 2 workers: no study
starts whose projected cost would take the tier past it (registration amendments 12–14), a study
once started is finished, and a variant not run says why in `<study>/<variant>/skipped.json`.

{table}

Spent so far: {spent:.1f} CPU-hours; projected for the whole tier: {projected:.1f} CPU-hours.
{budget_reached(rows)}
"""
    write_atomic(path, text)


# --- Staging a tier that runs elsewhere --------------------------------------------------------


def _has_own_machine(run: Path) -> bool:
    return "cpu_capability" in json.loads(run.read_text()).get("provenance", {})


def stage(
    store: str | Path,
    out_root: str | Path | None = None,
    studies_dir: str | Path | None = None,
    runs_only: bool = False,
) -> dict[str, int]:
    """Copy what a tier running in `store` (`run_evidence(out_root=store)`, seeded from this
    root) has stored into this root, for a commit, and rewrite its README; return the counts.

    Safe while that tier runs: its files are written atomically, and the records (results.csv,
    tuned.json, provenance.json, ...) are read before the runs are listed, so no record copied
    names a run that is not. A stored run never changes: one already here stays as it is. A
    stage's provenance.json is the machine of its runs that record none of their own (runs
    stored before runs recorded it): a stage that gets no new run keeps its record, and one
    here that holds such runs keeps their machine (its record's, else its study's other
    stage's). A stage whose record the store has not written yet (unfinished) loses the one
    here once new runs come; a skipped.json the store removed (the variant ran) goes too.

    `runs_only`: copy the new run files and nothing else. No chapter reads a run that no
    results.csv lists, so such a commit leaves every executed chapter up to date, and the
    next resume of the tier reuses the runs."""
    store, root = Path(store), _roots(out_root, None)[0]
    if not store.is_dir():
        raise ValueError(f"store={str(store)!r} is not a directory: expected a tier's out_root")
    if store.resolve() == root.resolve():
        raise ValueError(f"store={str(store)!r} is the tier's own root: nothing to stage")

    def wanted(path: Path) -> bool:  # not locks, temporary files or the README
        return path.is_file() and not path.name.startswith(".") and path != store / "README.md"

    records = {
        p.relative_to(store): p.read_text()
        for p in sorted(store.rglob("*"))
        if wanted(p) and p.parent.name != "runs"
    }
    counts = {"runs": 0, "runs kept": 0, "records": 0, "records kept": 0, "removed": 0}
    new: dict[Path, int] = {}  # stage -> runs copied now
    legacy: set[Path] = set()  # stages here holding runs without their own machine record
    for run in sorted(store.glob("**/runs/*.json")):
        if not wanted(run):
            continue
        here = root / run.relative_to(store)
        stage_dir = here.parent.parent.relative_to(root)
        if here.exists():
            counts["runs kept"] += here.read_text() != run.read_text()
            if not _has_own_machine(here):
                legacy.add(stage_dir)
            continue
        here.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(here, run.read_text())
        new[stage_dir] = new.get(stage_dir, 0) + 1
        counts["runs"] += 1
    if runs_only:
        return counts
    for relative, text in records.items():
        here = root / relative
        if relative.name == "provenance.json":
            if here.exists() and relative.parent not in new:
                counts["records kept"] += here.read_text() != text
                continue
            if relative.parent in legacy:
                known = [here, *sorted(here.parent.parent.glob("*/provenance.json"))]
                if base := next((p for p in known if p.exists()), None):
                    machine = {k: json.loads(base.read_text()).get(k) for k in MACHINE_KEYS}
                    text = json.dumps(json.loads(text) | machine, indent=1) + "\n"
        if here.exists() and here.read_text() == text:
            continue
        here.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(here, text)
        counts["records"] += 1
    for stage_dir in new:  # unfinished in the store: no record here may say it is finished
        record = root / stage_dir / "provenance.json"
        if stage_dir / "provenance.json" not in records and record.exists():
            record.unlink()
            counts["removed"] += 1
    for skipped in root.glob("*/*/skipped.json"):
        mine = store / skipped.relative_to(root)
        if mine.parent.parent.is_dir() and not mine.exists():
            skipped.unlink()
            counts["removed"] += 1
    write_report(root / "README.md", root, studies_dir)
    return counts
