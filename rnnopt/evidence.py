"""The evidence tier: literature-scale studies, each tuned and evaluated by one protocol.

A *study* (a YAML file under data/specs/evidence/) fixes a task, a model and a training budget,
and lists *variants*: an optimizer (with any hyperparameters a claim is about), optionally a
training setting it changes (a batch size), and a starting grid of learning rates on the
1/3-decade lattice. For every variant `run_study` does what rnnopt.protocol prescribes:

1. run the grid on the tuning seeds (data/evidence/<study>/<variant>/tune/, a sweep directory);
2. choose the rate with the lowest mean relative error; while it sits on an edge of the grid
   (or has fewer than `margin` rates on one side), widen the grid by two rates and run those;
3. run the chosen rate — or, with `evaluate: grid`, every rate — on the evaluation seeds
   (…/<variant>/eval/), and record the choice in …/<variant>/tuned.json.

A grid may instead start around the rate another study chose (`lr: {around: STUDY}`), a variant
may skip tuning and be evaluated at the rate another study chose (`lr: {chosen: STUDY}`,
amendment 15), a study may run only the variants that solved the rung below it
(`only_if_solved: STUDY`), and no study starts whose projected cost would take the tier past
its budget; a variant not run says why in …/<variant>/skipped.json (registration amendment 12).

Every stage is an ordinary sweep (spec.yaml, runs/, results.csv, provenance.json), so a killed
tier resumes where it stopped and `rnnopt sweep` can rerun any stage by hand. Variants run in
parallel, one process each, one torch thread per run; `scheduler=` sends the runs to Dask.

    rnnopt evidence                    # every study, 2 local workers (make evidence)
    rnnopt evidence digits-elman --workers 2
    rnnopt evidence --scheduler tcp://host:8786
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml

from rnnopt import protocol
from rnnopt.checks import invalid
from rnnopt.store import write_atomic
from rnnopt.sweep import SpecError, run_sweep
from rnnopt.tasks import make_task

if TYPE_CHECKING:
    from rnnopt import tier

ROOT = Path(__file__).resolve().parent.parent
STUDIES_DIR = ROOT / "data" / "specs" / "evidence"
EVIDENCE_DIR = ROOT / "data" / "evidence"
STUDY_KEYS = (
    "task",
    "model",
    "train",
    "variants",
    "evaluate",
    "margin",
    "priority",
    "tuning_seeds",
    "evaluation_seeds",
    "claims",
    "only_if_solved",
)
VARIANT_KEYS = ("optimizer", "train", "lr")


@dataclass(frozen=True)
class Variant:
    label: str
    optimizer: dict[str, Any]  # name and fixed hyperparameters (not lr)
    train: dict[str, Any]  # training settings this variant changes (e.g. batch_size)
    grid: tuple[float, ...]  # the starting learning-rate grid (empty with `around`)
    # `lr: {around: STUDY}`: the starting grid is the three lattice rates centred on the rate
    # STUDY chose for this variant (amendment 12), read when the variant starts
    around: str | None = None
    # `lr: {chosen: STUDY}`: no tuning; the evaluation seeds run at the rate STUDY chose for
    # this variant (amendment 15), read when the variant starts
    chosen: str | None = None

    @property
    def start_size(self) -> int:
        """Rates in the starting grid (`starting_grid`), known before `around` is resolved;
        none for a variant that is not tuned (`chosen`)."""
        return 0 if self.chosen else 3 if self.around else len(self.grid)

    @property
    def borrows(self) -> str | None:
        """The study whose chosen rate this variant's rates come from (`around`/`chosen`)."""
        return self.around or self.chosen


@dataclass(frozen=True)
class Study:
    name: str
    task: dict[str, Any]
    model: dict[str, Any]
    train: dict[str, Any]
    variants: tuple[Variant, ...]
    evaluate: str = "best"  # 'best': the chosen rate on the evaluation seeds; 'grid': every rate
    margin: int = 1  # rates required on each side of the chosen one
    priority: int = 100  # lower runs first
    tuning_seeds: tuple[int, ...] = protocol.TUNING_SEEDS
    evaluation_seeds: tuple[int, ...] = protocol.EVALUATION_SEEDS
    claims: tuple[str, ...] = field(default=())
    # A rung of a ladder: a variant runs only if it met the success criterion on some
    # evaluation seed of this study, the rung below (amendment 12)
    only_if_solved: str | None = None

    def variant(self, label: str) -> Variant:
        for variant in self.variants:
            if variant.label == label:
                return variant
        raise ValueError(
            invalid(
                "variant",
                label,
                f"a variant of study {self.name!r}",
                [v.label for v in self.variants],
            )
        )


def study_names(studies_dir: str | Path = STUDIES_DIR) -> list[str]:
    """Every study, in the order the tier runs them (priority, then name)."""
    loaded = [load_study(p) for p in Path(studies_dir).glob("*.yaml")]
    return [s.name for s in sorted(loaded, key=lambda s: (s.priority, s.name))]


def load_study(path: str | Path) -> Study:
    """Read and check a study file; a SpecError lists every problem at once."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise SpecError([f"{path}: {invalid('study', raw, 'a mapping of study keys', STUDY_KEYS)}"])
    unknown = sorted(set(raw) - set(STUDY_KEYS))
    if unknown:
        problems.append(invalid("keys", unknown, "only study keys", STUDY_KEYS))
    for key in ("task", "model", "train", "variants"):
        if not isinstance(raw.get(key), dict) or not raw.get(key):
            problems.append(invalid(key, raw.get(key), "a non-empty mapping"))
    evaluate = raw.get("evaluate", "best")
    if evaluate not in ("best", "grid"):
        problems.append(invalid("evaluate", evaluate, "a way to evaluate", ("best", "grid")))
    variants = []
    for label, entry in (raw.get("variants") or {}).items():
        where = f"variants.{label}"
        if not isinstance(entry, dict) or not isinstance(entry.get("optimizer"), dict):
            problems.append(invalid(where, entry, "a mapping with an 'optimizer' mapping"))
            continue
        bad = sorted(set(entry) - set(VARIANT_KEYS))
        if bad:
            problems.append(invalid(f"{where} keys", bad, "only variant keys", VARIANT_KEYS))
        if "lr" in entry["optimizer"]:
            problems.append(
                invalid(
                    f"{where}.optimizer.lr",
                    entry["optimizer"]["lr"],
                    f"no lr here: the study tunes it (give {where}.lr: {{from: RATE, to: RATE}})",
                )
            )
        lr = entry.get("lr")
        # {around: STUDY} or {chosen: STUDY}: the rates come from another study's choice
        borrowed = {
            key: lr[key]
            for key in ("around", "chosen")
            if isinstance(lr, dict) and set(lr) == {key}
        }
        for key, name in borrowed.items():
            if not isinstance(name, str):
                problems.append(invalid(f"{where}.lr.{key}", name, "a study name"))
        grid = [] if borrowed else _grid(lr, where, problems)
        named = {k: v for k, v in borrowed.items() if isinstance(v, str)}
        variants.append(
            Variant(
                str(label),
                dict(entry["optimizer"]),
                dict(entry.get("train") or {}),
                tuple(grid),
                around=named.get("around"),
                chosen=named.get("chosen"),
            )
        )
    if evaluate == "grid" and any(v.chosen for v in variants):
        untuned = [v.label for v in variants if v.chosen]
        problems.append(
            invalid("evaluate", evaluate, f"'best' with variants not tuned here {untuned}")
        )
    only_if_solved = raw.get("only_if_solved")
    if only_if_solved is not None and not isinstance(only_if_solved, str):
        problems.append(invalid("only_if_solved", only_if_solved, "a study name"))
    # A study this one depends on must exist beside it, with the same variants.
    labels = sorted(str(k) for k in (raw.get("variants") or {}))
    others = sorted(p.stem for p in path.parent.glob("*.yaml") if p != path)
    for where, name in [("only_if_solved", only_if_solved)] + [
        (f"variants.{v.label}.lr.{'around' if v.around else 'chosen'}", v.borrows) for v in variants
    ]:
        if not isinstance(name, str):
            continue
        if name not in others:
            problems.append(invalid(where, name, f"a study in {path.parent}", others))
            continue
        theirs = yaml.safe_load((path.parent / f"{name}.yaml").read_text(encoding="utf-8"))
        missing = [v for v in labels if v not in (theirs.get("variants") or {})]
        if missing:
            problems.append(invalid(where, name, f"a study with the variants {labels}", others))
    if problems:
        raise SpecError([f"{path.name}: {p}" for p in problems])
    return Study(
        name=path.stem,
        task=dict(raw["task"]),
        model=dict(raw["model"]),
        train=dict(raw["train"]),
        variants=tuple(variants),
        evaluate=evaluate,
        margin=int(raw.get("margin", 1)),
        priority=int(raw.get("priority", 100)),
        tuning_seeds=tuple(raw.get("tuning_seeds", protocol.TUNING_SEEDS)),
        evaluation_seeds=tuple(raw.get("evaluation_seeds", protocol.EVALUATION_SEEDS)),
        claims=tuple(raw.get("claims", ())),
        only_if_solved=only_if_solved,
    )


def _grid(value: Any, where: str, problems: list[str]) -> list[float]:
    """`lr: {from: a, to: b}`: every lattice rate from a to b (both on the lattice)."""
    if not isinstance(value, dict) or set(value) != {"from", "to"}:
        problems.append(
            invalid(
                f"{where}.lr",
                value,
                "{from: RATE, to: RATE} (rates on the 1/3-decade lattice), {around: STUDY} "
                "or {chosen: STUDY}",
            )
        )
        return []
    try:
        low, high = (protocol.lattice_index(float(value[k])) for k in ("from", "to"))
    except (TypeError, ValueError) as err:
        problems.append(f"{where}.lr: {err}")
        return []
    if low > high:
        problems.append(invalid(f"{where}.lr", value, "from <= to"))
    return [protocol.lr_lattice(i) for i in range(low, high + 1)]


# --- One variant ----------------------------------------------------------------------------


# The held-out part each stage scores on: a rate is chosen on the validation half and the
# chosen rate reported on the test half, so no reported number scored the choice that made it.
HELD_OUT = {"tune": "validation", "eval": "test"}
CLIP = "protocol"  # a study's train.clip_grad_norm that asks for protocol.clip_threshold
PROTOCOL = CLIP  # likewise train.diverge_factor: protocol.DIVERGE_FACTOR
SUCCESS = "success"  # train.stop_at_metric: stop at the task's success criterion


def task_options(study: Study, stage: str) -> dict[str, Any]:
    return {**study.task, "held_out": HELD_OUT[stage]}


@functools.cache
def _clip(task_json: str, model_json: str, batch_size: int) -> float:
    from rnnopt.train import build_model

    options = json.loads(task_json)
    task = make_task(options.pop("name"), **options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(task, **json.loads(model_json))
    return protocol.clip_threshold(task, model, batch_size)


def train_options(study: Study, variant: Variant) -> dict[str, Any]:
    """The study's training settings with the variant's changes, and the clipping level the
    protocol computes for the task and model where the study asks for it."""
    train = {**study.train, **variant.train}
    if train.get("clip_grad_norm") == CLIP:
        train["clip_grad_norm"] = _clip(
            json.dumps(study.task, sort_keys=True),
            json.dumps(study.model, sort_keys=True),
            int(train["batch_size"]),
        )
    if train.get("diverge_factor") == PROTOCOL:
        train["diverge_factor"] = protocol.DIVERGE_FACTOR
    if train.get("stop_at_metric") == SUCCESS:  # the task's success criterion (amendment 12)
        train["stop_at_metric"] = protocol.SUCCESS[study.task["name"]].threshold
    return train


def starting_grid(
    study: Study, variant: Variant, out_root: str | Path = EVIDENCE_DIR
) -> list[float]:
    """The variant's starting grid; with `around`, the three lattice rates centred on the rate
    that study chose for the same variant (it must be finished first)."""
    if variant.around is None:
        return list(variant.grid)
    centre = protocol.lattice_index(borrowed_rate(study, variant, out_root))
    half = variant.start_size // 2
    return [protocol.lr_lattice(k) for k in range(centre - half, centre + half + 1)]


def borrowed_rate(study: Study, variant: Variant, out_root: str | Path = EVIDENCE_DIR) -> float:
    """The rate the study named by `around` or `chosen` chose for the same variant."""
    return float(borrowed_record(study, variant, out_root)["lr"])


def borrowed_record(
    study: Study, variant: Variant, out_root: str | Path = EVIDENCE_DIR
) -> dict[str, Any]:
    """The tuning record (tuned.json) of the same variant in the study it borrows from."""
    path = Path(out_root) / str(variant.borrows) / variant.label / "tuned.json"
    if not path.exists():
        raise ValueError(
            f"{study.name}/{variant.label} takes its rates from the rate {variant.borrows!r} "
            f"chose, and {path} does not exist yet: run {variant.borrows} first"
        )
    return json.loads(path.read_text())


def dependencies(study: Study, label: str) -> set[tuple[str, str]]:
    """The (study, variant) pairs that must be finished before this variant can start."""
    variant = study.variant(label)
    needs = {(variant.borrows, label)} if variant.borrows else set()
    return needs | ({(study.only_if_solved, label)} if study.only_if_solved else set())


def sweep_spec(
    study: Study, variant: Variant, rates: Sequence[float], seeds: Sequence[int], stage: str
) -> dict[str, Any]:
    """The sweep (in the sweep runner's format) of `variant` at `rates` × `seeds` for `stage`."""
    return {
        "task": task_options(study, stage),
        "model": dict(study.model),
        "optimizer": dict(variant.optimizer),
        "train": train_options(study, variant),
        "grid": {"lr": [float(r) for r in rates], "seed": [int(s) for s in seeds]},
    }


def _spec_text(study: Study, variant: Variant, stage: str, spec: dict[str, Any]) -> str:
    head = (
        f"# {stage} stage of variant {variant.label!r} of study {study.name!r}, written by\n"
        f"# rnnopt evidence from data/specs/evidence/{study.name}.yaml (do not edit).\n"
    )
    return head + yaml.safe_dump(spec, sort_keys=False, default_flow_style=None)


def task_scale(study: Study, stage: str) -> tuple[float, bool]:
    """(the trivial predictor's metric on the stage's held-out part, higher is better)."""
    options = task_options(study, stage)
    task = make_task(options.pop("name"), **options)
    return task.baseline()["metric"], task.higher_is_better


def relative_errors(
    rows: Sequence[dict], baseline: float, higher_is_better: bool
) -> dict[float, dict[int, float]]:
    """{lr: {seed: run error}} from a sweep's result rows (protocol.run_error)."""
    errors: dict[float, dict[int, float]] = {}
    for row in rows:
        error = protocol.run_error(
            row["status"] != "ok", row["final_metric"], baseline, higher_is_better
        )
        errors.setdefault(float(row["lr"]), {})[int(row["seed"])] = error
    return errors


def _stops_at_success(study: Study) -> bool:
    return study.train.get("stop_at_metric") == SUCCESS


def tuning_scores(
    study: Study, rows: Sequence[dict], baseline: float, higher_is_better: bool
) -> dict[float, dict[int, float]]:
    """{lr: {seed: score}} on which the tuning chooses: the run's relative error, except in a
    study whose runs stop at success (amendment 12), where errors at the stop would make the
    choice among rates that all succeed noise. There a run that succeeds scores the success
    level times its steps over the budget (fewer steps, lower score), and one that never does
    its relative error, which lies above the success level: success beats failure, the
    sooner the better."""
    scores = relative_errors(rows, baseline, higher_is_better)
    if not _stops_at_success(study):
        return scores
    criterion = protocol.SUCCESS[study.task["name"]]
    level = protocol.relative_error(criterion.threshold, baseline, higher_is_better)
    for row in rows:
        if row["status"] == "ok" and criterion.met(float(row["final_metric"])):
            steps = int(row["steps_done"]) / int(study.train["steps"])
            scores[float(row["lr"])][int(row["seed"])] = level * steps
    return scores


def _run_stage(
    study: Study,
    variant: Variant,
    stage: str,
    rates: Sequence[float],
    seeds: Sequence[int],
    out: Path,
    workers: int,
    scheduler: str | None,
) -> list[dict]:
    spec = sweep_spec(study, variant, rates, seeds, stage)
    out.mkdir(parents=True, exist_ok=True)
    before = out / "provenance.json"
    kept = before.read_text() if before.exists() else None
    stored = set((out / "runs").glob("*.json"))
    # The spec is on disk before its runs, and the provenance only once they all are: a
    # directory caught midway (a killed tier, a commit of finished runs) says what it is for
    # and that it is unfinished.
    before.unlink(missing_ok=True)
    write_atomic(out / "spec.yaml", _spec_text(study, variant, stage, spec))
    start = time.perf_counter()
    # extend: a widened grid reuses the runs of the narrower one already in the directory.
    rows = run_sweep(spec, out, workers=workers, scheduler=scheduler, extend=True)
    record = provenance(study, variant, stage, rows, time.perf_counter() - start)
    if kept is not None and set((out / "runs").glob("*.json")) == stored:
        # A resume that ran nothing: the record of the machine that made the runs stays, and
        # so does the file, unless the spec now has more runs (a grid widened onto runs stored
        # before): then the counts are the spec's, the machine still the record's.
        from rnnopt.executors import MACHINE_KEYS

        old = json.loads(kept)
        if old.get("runs") == len(rows):
            write_atomic(before, kept)
            return rows
        record |= {k: old[k] for k in MACHINE_KEYS if k in old}
    write_atomic(out / "provenance.json", json.dumps(record, indent=1) + "\n")
    return rows


def run_variant(
    study: Study,
    label: str,
    out_root: str | Path = EVIDENCE_DIR,
    workers: int = 1,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Tune one variant of `study` and evaluate it (a `chosen` variant is only evaluated, at the
    rate its study chose); return (and store) the tuning record. Which variants run — the rung
    below solved, the budget kept — is `run_evidence`'s decision; an `rnnopt evaluate` of
    another optimizer spends its own time."""
    variant = study.variant(label)
    baseline, higher = task_scale(study, "tune")
    root = Path(out_root) / study.name / variant.label
    # Whether to run it at all is the tier's decision (run_evidence), made afresh each time it
    # resumes: a variant run here is no longer one it left out.
    (root / "skipped.json").unlink(missing_ok=True)

    def tuning_errors(grid: list[float]) -> dict[float, list[float]]:
        rows = _run_stage(
            study, variant, "tune", grid, study.tuning_seeds, root / "tune", workers, scheduler
        )
        return {
            lr: list(seeds.values())
            for lr, seeds in tuning_scores(study, rows, baseline, higher).items()
        }

    if variant.chosen:  # not tuned here: the rate (and its place on its grid) come from there
        source = borrowed_record(study, variant, out_root)
        lr, edge = float(source["lr"]), source["edge"]
        grid, extensions, errors, seeds = [], 0, {}, ()
    else:
        found = protocol.search(
            starting_grid(study, variant, out_root), tuning_errors, study.margin
        )
        lr, grid, edge, extensions = found.tuned.lr, found.grid, found.edge, found.extensions
        errors, seeds = {repr(k): v for k, v in found.tuned.errors.items()}, study.tuning_seeds
    # evaluate: grid also runs every rate within a decade of the chosen one (the sensitivity
    # claims need their errors on the evaluation seeds too).
    rates = protocol.within_a_decade(grid, lr) if study.evaluate == "grid" else [lr]
    _run_stage(
        study, variant, "eval", rates, study.evaluation_seeds, root / "eval", workers, scheduler
    )
    record = {
        "study": study.name,
        "variant": variant.label,
        "optimizer": variant.optimizer,
        "train": variant.train,
        "grid": grid,
        "lr": lr,
        "edge": edge,
        "extensions": extensions,
        "tuning_errors": errors,
        "tuning_seeds": list(seeds),
        "evaluation_seeds": list(study.evaluation_seeds),
        "evaluated_rates": rates,
        "baseline_metric": baseline,
        "tuning_score": "time to success" if _stops_at_success(study) else "relative error",
    }
    if variant.chosen:
        record |= {"rate_from": variant.chosen, "tuning_score": f"chosen by {variant.chosen}"}
    write_atomic(root / "tuned.json", json.dumps(record, indent=1) + "\n")
    return record


def _skip(study: Study, label: str, out_root: str | Path, reason: str) -> dict[str, Any]:
    root = Path(out_root) / study.name / label
    record = {"study": study.name, "variant": label, "skipped": reason}
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(root / "skipped.json", json.dumps(record, indent=1) + "\n")
    return record


def reason_not_to_run(
    study: Study, label: str, out_root: str | Path, studies_dir: str | Path = STUDIES_DIR
) -> str | None:
    """Why a variant not finished is not to be run (amendment 12), or None: a ladder rung whose
    rung below failed on every evaluation seed (or was not run), or a grid that starts around a
    neighbour that was not run."""
    from rnnopt import tier

    out_root, studies_dir = Path(out_root), Path(studies_dir)
    if (out_root / study.name / label / "tuned.json").exists():
        return None
    variant, below = study.variant(label), study.only_if_solved
    for name in filter(None, (below, variant.borrows)):
        if (out_root / name / label / "skipped.json").exists():
            return f"not run: {name}/{label}, which it depends on, was not run"
    if below is not None and not tier.eval_successes(below, label, out_root, studies_dir).any():
        return f"not run: it met the success criterion on no evaluation seed of {below}"
    return None


def _budget_refusal(
    study: Study,
    out_root: str | Path,
    studies_dir: str | Path,
    reserved: float = 0.0,
    priced: tier.Projection | None = None,
) -> str | None:
    """Why a study not started yet is not started (amendment 12), or None: the CPU-hours spent,
    plus those reserved by the variants running now, plus the study's projected cost would pass
    the tier's budget. A study once started is finished, so none is left half run. `priced` is
    the store read once (`tier.projection`), read here if not given."""
    from rnnopt import tier

    out_root, studies_dir = Path(out_root), Path(studies_dir)
    started = [
        out_root / study.name / v.label / part
        for v in study.variants
        for part in ("tune", "eval", "tuned.json")
    ]
    if any(p.exists() for p in started):
        return None  # started: runs or a choice stored (a skipped.json alone is not a start)
    priced = priced or tier.projection(out_root, studies_dir)
    spent = priced.spent_hours()
    cost = sum(
        priced.variant_hours(study, v.label, out_root)
        for v in study.variants
        if not tier.ruled_out(study, v.label, out_root, studies_dir)  # the ladder's rule first
    )
    if not spent + reserved + cost <= protocol.TIER_BUDGET_CPU_HOURS:  # (a NaN cost refuses)
        return (
            f"not run: {spent:.1f} CPU-hours spent, {reserved:.1f} reserved by the variants "
            f"running and about {cost:.1f} projected for this study would pass the tier's "
            f"budget of {protocol.TIER_BUDGET_CPU_HOURS:g}"
        )
    return None


def provenance(
    study: Study, variant: Variant, stage: str, rows: Sequence[dict], seconds: float
) -> dict[str, Any]:
    from rnnopt.executors import environment

    return {
        "study": study.name,
        "variant": variant.label,
        "stage": stage,
        "spec": f"data/specs/evidence/{study.name}.yaml",
        "command": f"rnnopt evidence {study.name}",
        "runs": len(rows),
        "diverged": sum(r["status"] != "ok" for r in rows),
        "run_seconds_total": round(sum(r["wall_time"] for r in rows), 1),
        **environment(),
        "torch_threads_per_run": 1,
    }


# --- The tier -----------------------------------------------------------------------------


def _pipeline(
    path: str, label: str, out_root: str, scheduler: str | None
) -> tuple[str, str, float]:
    start = time.perf_counter()
    study = load_study(path)
    run_variant(study, label, out_root, workers=1, scheduler=scheduler)
    return study.name, label, time.perf_counter() - start


def run_evidence(
    names: Sequence[str] | None = None,
    workers: int = 2,
    scheduler: str | None = None,
    studies_dir: str | Path = STUDIES_DIR,
    out_root: str | Path = EVIDENCE_DIR,
) -> None:
    """Run (or resume) every variant of the named studies (default: all, by priority).

    Locally, `workers` variants run at once, each in its own process; with `scheduler`,
    every run goes to the Dask cluster and the variants are submitted side by side.
    """
    from rnnopt import tier  # (tier imports this module)

    available = study_names(studies_dir)
    names = list(available if not names else names)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(invalid("studies", unknown, f"studies in {studies_dir}", available))
    jobs = [
        (str(Path(studies_dir) / f"{n}.yaml"), v.label)
        for n in names
        for v in load_study(Path(studies_dir) / f"{n}.yaml").variants
    ]
    print(f"evidence: {len(names)} studies, {len(jobs)} variants", flush=True)
    if scheduler is not None:
        pool: concurrent.futures.Executor = concurrent.futures.ThreadPoolExecutor(len(jobs))
    else:
        from rnnopt import executors

        # The sweep runner's pool processes (fork server, one torch thread, exit with parent).
        pool = concurrent.futures.ProcessPoolExecutor(
            workers,
            mp_context=executors._process_context(start=True),
            initializer=executors._start_worker,
        )
    # The highest-priority variant whose dependencies (`around`, `only_if_solved`) are finished
    # goes next, at most `workers` at once locally (so a rung that waits on the one below does
    # not queue behind every later study); each study not yet started must fit the budget.
    waiting = {
        (Path(path).stem, label): (path, dependencies(load_study(path), label))
        for path, label in jobs
    }
    limit = workers if scheduler is None else len(jobs)
    admitted: dict[str, str | None] = {}  # study -> why it is not run (None: it runs)
    with pool:
        running: dict[concurrent.futures.Future, tuple[tuple[str, str], Study]] = {}
        while waiting or running:
            priced = None  # the store read once per pass (`tier.projection`), when first needed
            for key, (path, needs) in list(waiting.items()):
                busy = {k for k, _ in running.values()}
                if len(running) >= limit:
                    break
                if any(n in waiting or n in busy for n in needs):
                    continue
                del waiting[key]
                study = load_study(path)
                priced = priced or tier.projection(out_root, studies_dir)
                if study.name not in admitted:
                    # what the running variants still have to do (their stored runs are spent)
                    reserved = sum(
                        priced.variant_hours(s, k[1], Path(out_root)) for k, s in running.values()
                    )
                    admitted[study.name] = _budget_refusal(
                        study, out_root, studies_dir, reserved, priced
                    )
                reason = (
                    reason_not_to_run(study, key[1], out_root, studies_dir) or admitted[study.name]
                )
                if reason is not None:
                    _skip(study, key[1], out_root, reason)
                    print(f"{study.name}/{key[1]}: {reason}", flush=True)
                    continue
                future = pool.submit(_pipeline, path, key[1], str(out_root), scheduler)
                running[future] = (key, study)
            if not running:
                if waiting:
                    raise ValueError(f"studies wait on one another: {sorted(waiting)}")
                break
            done, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                running.pop(future)
                study, label, seconds = future.result()
                print(f"{study}/{label}: done in {seconds:.0f} s", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m rnnopt.evidence ARGS` is `rnnopt evidence ARGS` (rnnopt.cli)."""
    import sys

    from rnnopt.cli import main as cli_main

    return cli_main(["evidence", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
