"""Many runs from one spec: a grid over optimizers, learning rates, seeds, tasks, model sizes.

A spec is YAML (or the same dictionary)::

    task: {name: adding, seq_len: 10}      # fixed settings, one section per part of a run
    model: {hidden_size: 16}
    train: {steps: 150, batch_size: 16}
    grid:                                  # every combination of these values is one run
      optimizer: [sgd, momentum, rmsprop, adam]
      lr: [0.01, 0.1, 1000.0]
      seed: [0, 1]

A grid key names the field it varies: `optimizer` and `task` vary the names, `seed` the run's
seed, any other key the section that owns it (`lr` -> optimizer, `seq_len` -> task,
`hidden_size` -> model, `steps` -> train); `section.key` says it explicitly. Runs follow the
grid's order, the last key varying fastest. The whole spec is checked before anything runs,
with the task's, optimizer's and model's own validators, and every problem is reported at once.

An output directory holds::

    spec.yaml            the spec that results.csv follows
    runs/<run_id>.json   one finished run: config, history, provenance (the source of truth)
    results.csv          one row per finished run, in grid order, rebuilt from the run files

`run_id` hashes a run's complete configuration (defaults filled in), so a rerun of a spec, or of
an extended one, skips every run already on disk. Files are replaced atomically and only the
calling process writes them, so a sweep killed at any moment loses at most the runs in flight.
Each run seeds itself and uses one torch thread: the numbers do not depend on the number of
workers, the order runs finish in, or whether they ran on a Dask cluster (of machines with the
same kind of CPU: another instruction set can change the last bits).
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import hashlib
import inspect
import io
import itertools
import json
import multiprocessing
import os
import platform
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm  # a plain text bar: tqdm.auto warns in kernels without ipywidgets

import rnnopt
from rnnopt.optim import OPTIMIZERS, make_optimizer
from rnnopt.rnn import SequenceModel
from rnnopt.tasks import TASKS, make_task
from rnnopt.train import (
    TRAIN_KEYS,
    History,
    build_model,
    check_int,
    check_positive_or_none,
    resolve_device,
    run,
    train,
)

__all__ = [
    "SpecError", "Spec", "RunConfig", "RESULT_COLUMNS",
    "load_spec", "expand", "execute", "run_sweep", "load_results", "load_run", "load_history",
    "parameters", "parse_value", "write_atomic", "run_id",
]

SECTIONS = ("task", "model", "optimizer", "train")
TOP_KEYS = (*SECTIONS, "grid", "seed")
# Grid keys that are not a section's parameter.
NAME_KEYS = {"task": "task.name", "optimizer": "optimizer.name", "seed": "seed"}
RESULT_COLUMNS = (
    "run_id", "status", "final_loss", "metric_name", "final_metric", "steps_done", "wall_time",
)


class SpecError(ValueError):
    """A sweep spec with problems; `problems` lists every one of them."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = f"{len(self.problems)} problem" + ("s" if len(self.problems) != 1 else "")
        super().__init__(f"invalid sweep spec ({count}):\n{lines}")


# --- What each section accepts ------------------------------------------------------------

def _defaults(signature: inspect.Signature, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """{parameter: default} (inspect.Parameter.empty where there is none)."""
    return {name: p.default for name, p in signature.parameters.items()
            if name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def parameters(section: str, name: str | None = None) -> dict[str, Any]:
    """The parameters `section` accepts and their defaults, read from the code that takes them:
    a task's or optimizer's constructor (`name` picks which), SequenceModel, or `train`."""
    if section == "task":
        return _defaults(inspect.signature(TASKS[name]))
    if section == "optimizer":
        return _defaults(inspect.signature(OPTIMIZERS[name]), skip=("params",))
    if section == "model":
        # build_model supplies sizes and readout from the task; hidden_size is its own argument.
        hidden = inspect.signature(build_model).parameters.get("hidden_size")
        own = _defaults(inspect.signature(SequenceModel),
                        skip=("input_size", "hidden_size", "output_size", "readout"))
        return {"hidden_size": inspect.Parameter.empty if hidden is None else hidden.default,
                **own}
    if section == "train":
        return {k: v for k, v in _defaults(inspect.signature(train)).items() if k in TRAIN_KEYS}
    raise ValueError(f"section={section!r} is not a section; valid: {', '.join(SECTIONS)}")


# Options added after runs were first stored: in a configuration only when set to something
# other than their default, so that adding them renamed no stored run (a run's id hashes its
# configuration).
LATER_OPTIONS = {"train": {"log_every": 1, "stop_at_metric": None},
                 "model": {"recurrent_init": "uniform"}}


def _filled(section: str, values: dict[str, Any]) -> dict[str, Any]:
    """`values` with every default its section has, so equal runs get equal configs."""
    name = values.get("name")
    defaults = parameters(section, name)
    full = {k: v for k, v in defaults.items() if v is not inspect.Parameter.empty}
    head = {"name": name} if section in ("task", "optimizer") else {}
    filled = {**head, **full, **values}
    for key, default in LATER_OPTIONS.get(section, {}).items():
        if key in filled and filled[key] == default and type(filled[key]) is type(default):
            del filled[key]
    return filled


# --- Loading and checking a spec ------------------------------------------------------------

class _SpecLoader(yaml.SafeLoader):
    """yaml.SafeLoader that also reads `1e-3` as a number.

    PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent, so `1e-3` and
    `1.0e3` are *strings*; YAML 1.2 and most tools read them as numbers, and learning rates are
    written that way. It still builds plain values only.
    """


_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_value(text: str) -> Any:
    """A YAML scalar or flow value (`0.9`, `1e-3`, `true`, `[0.9, 0.99]`, `adam`) as Python."""
    return yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass


def _plain(value: Any) -> Any:
    """A deep copy with tuples as lists and numpy scalars as Python numbers (as YAML gives)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, (str, bool, int, float))


@dataclass(frozen=True)
class Spec:
    """A checked spec: fixed sections, the grid, and the text to store beside the results.

    `grid` maps each grid key (as written; it names a results column) to its values, and
    `targets` maps it to the field it sets: 'seed', 'task.name', 'optimizer.lr', ...
    """

    task: dict[str, Any]
    model: dict[str, Any]
    optimizer: dict[str, Any]
    train: dict[str, Any]
    seed: int
    grid: dict[str, list[Any]]
    targets: dict[str, str]
    text: str


@dataclass(frozen=True)
class RunConfig:
    """One run of a sweep: its grid point, its complete configuration, and its id."""

    point: dict[str, Any]
    config: dict[str, Any]  # {"task", "model", "optimizer", "train": {...}, "seed": int}
    run_id: str


def run_id(config: dict[str, Any]) -> str:
    """12 hex digits of the SHA-256 of the configuration as sorted, compact JSON."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def load_spec(source: str | os.PathLike | Mapping[str, Any]) -> Spec:
    """Read (from a YAML file) and check a spec; raise SpecError listing every problem."""
    if isinstance(source, Mapping):
        raw = _plain(source)
        text = yaml.safe_dump(raw, sort_keys=False) if _is_plain(raw) else ""
    elif isinstance(source, (str, os.PathLike)):
        text = Path(source).read_text(encoding="utf-8")
        try:
            raw = yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as err:
            raise SpecError([f"{os.fspath(source)} is not valid YAML: {err}"]) from None
    else:
        raise TypeError(f"source must be a path or a mapping, got {type(source).__name__}")
    spec, problems = _check(raw, text)
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))  # each problem once, in order found
    return spec


def _check(raw: Any, text: str) -> tuple[Spec | None, list[str]]:
    """Check a parsed spec as a whole: (spec, []) or (None, every problem).

    Each part found wrong is reported and set aside, so the checks after it still run on the
    rest: one pass finds every problem, not just the first.
    """
    if not isinstance(raw, dict):
        return None, [f"a spec must be a mapping with keys {', '.join(TOP_KEYS)}, got {raw!r}"]
    problems: list[str] = []
    if not _is_plain(raw):
        problems.append("a spec may hold only strings, numbers, booleans, null, lists and "
                        "mappings with string keys")
    for key in raw:
        if key not in TOP_KEYS:
            problems.append(f"unknown top-level key {key!r}; valid keys: {', '.join(TOP_KEYS)}")
    fixed = {s: _section(raw, s, problems) for s in SECTIONS}
    grid = _grid(raw.get("grid"), problems)
    # Names first: which parameters a key may set depends on the tasks and optimizers used.
    names = {s: _names(s, fixed[s], grid, problems) for s in ("task", "optimizer")}
    targets = _targets(grid, fixed, names, "seed" in raw, problems)
    _check_keys(fixed, grid, targets, names, problems)
    if "steps" not in fixed["train"] and "train.steps" not in targets.values():
        problems.append("train.steps is required (in train or grid); it has no default")
        fixed["train"]["steps"] = 1  # a stand-in, so that the other values still get checked

    spec = Spec(task=fixed["task"], model=fixed["model"], optimizer=fixed["optimizer"],
                train=fixed["train"], seed=raw.get("seed", 0), grid=grid, targets=targets,
                text=text)
    if names["task"] and names["optimizer"]:
        configs = expand(spec)
        problems += _check_values(configs)
        ids = [c.run_id for c in configs]
        if len(set(ids)) != len(ids):
            problems.append("two grid points describe the same run; "
                            "make the grid's values distinct")
    return (None if problems else spec), problems


def _section(raw: dict, key: str, problems: list[str]) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if isinstance(value, str) and key in ("task", "optimizer"):
        return {"name": value}  # `optimizer: adam` is short for `optimizer: {name: adam}`
    if not isinstance(value, dict):
        problems.append(f"{key} must be a mapping of parameters, got {value!r}")
        return {}
    return dict(value)


def _grid(grid: Any, problems: list[str]) -> dict[str, list]:
    """The grid's usable entries; a value that is not a list is reported and left out."""
    if grid is None:
        return {}
    if not isinstance(grid, dict):
        problems.append(f"grid must be a mapping of key: [values], got {grid!r}")
        return {}
    usable = {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            problems.append(f"grid.{key} must be a non-empty list of values, got {values!r}")
            continue
        distinct = [v for i, v in enumerate(values) if v not in values[:i]]
        if len(distinct) < len(values):
            problems.append(f"grid.{key} repeats a value: {values!r}")
        usable[key] = distinct
    return usable


def _names(section: str, fixed: dict, grid: dict, problems: list[str]) -> list[str]:
    """The task or optimizer names a spec uses; unknown ones are reported and removed."""
    registry = TASKS if section == "task" else OPTIMIZERS
    valid = ", ".join(registry)
    found = []
    if "name" in fixed:
        if fixed["name"] in registry:
            found.append(fixed["name"])
        else:
            problems.append(f"unknown {section} name {fixed.pop('name')!r}; valid names: {valid}")
    for key in [k for k in grid if NAME_KEYS.get(k, k) == f"{section}.name"]:
        for name in grid[key]:
            if not (isinstance(name, str) and name in registry):
                problems.append(f"unknown {section} name {name!r} in grid.{key}; "
                                f"valid names: {valid}")
        grid[key] = [n for n in grid[key] if isinstance(n, str) and n in registry]
        found += grid[key]
        if not grid[key]:
            del grid[key]
    if not found and not any(f"unknown {section} name" in p for p in problems):
        problems.append(f"no {section} name: set {section}.name or put `{section}: [...]` in "
                        f"grid; valid names: {valid}")
    return list(dict.fromkeys(found))


def _targets(grid: dict, fixed: dict, names: dict, fixed_seed: bool,
             problems: list[str]) -> dict[str, str]:
    """{grid key: the field it sets}; keys that set nothing, or a field already set, are
    reported and removed from the grid."""
    owners = {
        "task": {p for n in (names["task"] or TASKS) for p in parameters("task", n)},
        "optimizer": {p for n in (names["optimizer"] or OPTIMIZERS)
                      for p in parameters("optimizer", n)},
        "model": set(parameters("model")),
        "train": set(TRAIN_KEYS),
    }
    targets: dict[str, str] = {}
    for key in list(grid):
        target = _resolve(key, owners, problems)
        section, _, field = (target or "").partition(".")
        if target in targets.values():
            other = next(k for k, t in targets.items() if t == target)
            problems.append(f"grid keys {other!r} and {key!r} both set {target}")
        elif section in fixed and field in fixed[section]:
            problems.append(f"{target} is set both in {section} and in grid.{key}; keep one")
        elif target == "seed" and fixed_seed:
            problems.append("seed is set both at the top level and in grid.seed; keep one")
        elif target is not None:
            targets[key] = target
            continue
        del grid[key]
    return targets


def _resolve(key: Any, owners: dict[str, set[str]], problems: list[str]) -> str | None:
    """The field a grid key sets ('optimizer.lr', ...), or None after reporting a problem."""
    if key in NAME_KEYS:
        return NAME_KEYS[key]
    if not isinstance(key, str):
        problems.append(f"grid key {key!r} is not a string")
        return None
    if "." in key:
        section, field = key.split(".", 1)
        if section in owners and (field in owners[section] or
                                  (field == "name" and section in ("task", "optimizer"))):
            return key
        valid = sorted(f"{s}.{f}" for s in owners for f in owners[s])
        problems.append(f"unknown grid key {key!r}; valid dotted keys: {', '.join(valid)}")
        return None
    found = [s for s in SECTIONS if key in owners[s]]
    if len(found) == 1:
        return f"{found[0]}.{key}"
    if found:
        problems.append(f"grid key {key!r} is ambiguous; write one of "
                        f"{', '.join(f'{s}.{key}' for s in found)}")
        return None
    valid = sorted({*NAME_KEYS, *itertools.chain.from_iterable(owners.values())})
    problems.append(f"unknown grid key {key!r}; valid keys: {', '.join(valid)}")
    return None


def _check_keys(fixed: dict, grid: dict, targets: dict, names: dict,
                problems: list[str]) -> None:
    """Every parameter, fixed or varied, must belong to every task/optimizer it is used with;
    one that does not is reported and removed."""
    for section in SECTIONS:
        for name in names.get(section, [None]):
            valid = parameters(section, name)
            where = f"{section} {name!r}" if name else section
            for key in [k for k in fixed[section] if k != "name" and k not in valid]:
                problems.append(f"{where} has no parameter {key!r}; valid: {', '.join(valid)}")
                del fixed[section][key]
            for key, target in list(targets.items()):
                field = target.partition(".")[2]
                if target.startswith(f"{section}.") and field != "name" and field not in valid:
                    problems.append(f"{where} has no parameter {field!r} (grid.{key}); "
                                    f"valid: {', '.join(valid)}")
                    del targets[key], grid[key]


def _check_values(configs: list[RunConfig]) -> list[str]:
    """Build each distinct task, optimizer, model and training setup of the grid once, so the
    code that will run checks the values; collect its messages instead of stopping at one."""
    problems: list[str] = []
    seen: set[str] = set()

    def check(where: str, value: Any, build: Any, /, *args: Any, **kwargs: Any) -> None:
        key = where + json.dumps(value, sort_keys=True)
        if key not in seen:
            seen.add(key)
            try:
                build(*args, **kwargs)
            except (ValueError, TypeError) as err:
                problems.append(f"{where}: {err}")

    dummy = [torch.nn.Parameter(torch.zeros(1))]  # an optimizer checks its values on creation
    # The model's sizes and readout come from the task; a stand-in task of size 1 lets the
    # model's own values be checked even where the task is wrong.
    stand_in = SimpleNamespace(input_size=1, output_size=1, readout="last")
    for run_config in configs:
        config = run_config.config
        task, optimizer = dict(config["task"]), dict(config["optimizer"])
        task_name, optimizer_name = task.pop("name"), optimizer.pop("name")
        check(f"task {task_name!r}", task, make_task, task_name, **task)
        check(f"optimizer {optimizer_name!r}", optimizer,
              make_optimizer, optimizer_name, dummy, **optimizer)
        with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
            check("model", config["model"], build_model, stand_in, **config["model"])
        for key, value in config["train"].items():
            check("train", {key: value}, _check_train_option, key, value)
        check("seed", config["seed"], check_int, "seed", config["seed"], 0)
    return problems


def _check_train_option(key: str, value: Any) -> None:
    """The check `train` makes on one of its options, without training."""
    if key in ("steps", "batch_size") or (key == "eval_every" and value is not None):
        check_int(key, value, 1)
    elif key == "clip_grad_norm":
        check_positive_or_none(key, value)


def expand(spec: Spec | str | os.PathLike | Mapping[str, Any]) -> list[RunConfig]:
    """Every run of the grid, in grid order (the last grid key varies fastest)."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    configs = []
    for values in itertools.product(*spec.grid.values()):
        point = dict(zip(spec.grid, values, strict=True))
        sections = {s: dict(getattr(spec, s)) for s in SECTIONS}
        seed = spec.seed
        for key, value in point.items():
            target = spec.targets[key]
            if target == "seed":
                seed = value
            else:
                section, field = target.split(".", 1)
                sections[section][field] = value
        config = {s: _filled(s, sections[s]) for s in SECTIONS}
        config["seed"] = seed
        config = json.loads(json.dumps(config))  # tuples -> lists: what the run file will hold
        configs.append(RunConfig(point=point, config=config, run_id=run_id(config)))
    return configs


# --- One run ----------------------------------------------------------------------------

# torch's random generator is per process: runs sharing a process (threads of one Dask worker)
# take turns, or their weight initialisations would interleave.
_RUN_LOCK = threading.Lock()


def execute(config: dict[str, Any], device: str = "cpu", progress: bool = False) -> dict:
    """Run one configuration; return its record (what `runs/<run_id>.json` holds).

    It touches no file, so it runs the same in this process, a local worker process or on a
    Dask worker; the caller writes the record. One torch thread, as in every sweep run.
    """
    with _RUN_LOCK:
        threads = torch.get_num_threads()
        start = time.perf_counter()
        try:
            history = run(task=config["task"], model=config["model"],
                          optimizer=config["optimizer"], train_options=config["train"],
                          seed=config["seed"], device=device, threads=1, progress=progress)
        finally:
            torch.set_num_threads(threads)
        wall_time = time.perf_counter() - start
    return {
        "run_id": run_id(config),
        "status": "diverged" if history.diverged else "ok",
        "final_loss": history.final_loss,
        "metric_name": TASKS[config["task"]["name"]].metric_name,
        "final_metric": history.final_metric,
        "steps_done": history.steps_done,
        "wall_time": wall_time,
        "config": config,
        "history": history.to_dict(),
        "provenance": {
            "rnnopt": rnnopt.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "host": platform.node(), "threads": history.meta["threads"],
            "device": history.meta["device"],
        },
    }


# --- Files ------------------------------------------------------------------------------

def write_atomic(path: Path, text: str) -> None:
    """Replace `path` by `text` all at once: a reader (or a rerun after a crash) sees the old
    file or the new one, never half of one. The temporary file sits in the same directory
    because os.replace is atomic only within one file system."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_record(path: Path, expected_id: str) -> dict | None:
    """A finished run's record, or None if there is none (or it is not one)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("run_id") != expected_id:
        return None
    if not all(k in record for k in RESULT_COLUMNS):
        return None
    return record


def _cell(value: Any) -> str:
    """A CSV cell that `load_results` reads back as the same value (floats exactly)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)


def _write_results(out: Path, configs: list[RunConfig], done: dict[str, dict]) -> None:
    grid_keys = list(configs[0].point) if configs else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*grid_keys, *RESULT_COLUMNS])
    for config in configs:
        if config.run_id in done:
            row = [config.point[k] for k in grid_keys]
            row += [done[config.run_id][k] for k in RESULT_COLUMNS]
            writer.writerow([_cell(v) for v in row])
    write_atomic(out / "results.csv", buffer.getvalue())


def _rows(configs: list[RunConfig], done: dict[str, dict]) -> list[dict]:
    return [{**c.point, **{k: done[c.run_id][k] for k in RESULT_COLUMNS}}
            for c in configs if c.run_id in done]


_TYPES = {"final_loss": float, "final_metric": float, "wall_time": float, "steps_done": int,
          "run_id": str, "status": str, "metric_name": str}


def load_results(out_dir: str | os.PathLike) -> list[dict]:
    """The rows of `out_dir/results.csv`, with numbers as numbers (as `run_sweep` returned)."""
    with open(Path(out_dir) / "results.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: _TYPES[k](v) if k in _TYPES else parse_value(v) for k, v in row.items()}
            for row in rows]


def load_run(out_dir: str | os.PathLike, run_id: str) -> dict:
    """The full record of one run: config, history, provenance and the summary columns."""
    with open(Path(out_dir) / "runs" / f"{run_id}.json", encoding="utf-8") as f:
        return json.load(f)


def load_history(out_dir: str | os.PathLike, run_id: str) -> History:
    """One run's step-by-step `History`."""
    return History.from_dict(load_run(out_dir, run_id)["history"])


# --- Running a sweep ----------------------------------------------------------------------

def run_sweep(
    spec: Spec | str | os.PathLike | Mapping[str, Any],
    out_dir: str | os.PathLike,
    workers: int = 1,
    scheduler: str | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> list[dict]:
    """Run every run of `spec` not already finished in `out_dir`; return the results' rows.

    `workers` > 1 runs that many local processes (a script that asks for them must start
    under `if __name__ == "__main__":`, as with any multiprocessing); `scheduler`
    ('tcp://host:port') sends the runs to a Dask cluster instead: its workers need rnnopt
    installed, and run one run at a time per process, so start them with `--nthreads 1` and
    as many processes as cores. Either way only this process writes files, each run's as soon
    as it arrives; `progress` shows a bar over the runs.
    """
    check_int("workers", workers, 1)
    if workers > 1 and scheduler is None:
        _process_context(start=True)  # the workers' server imports torch while we check the spec
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    device_type = resolve_device(device).type
    configs = expand(spec)
    out = Path(out_dir)
    runs_dir = out / "runs"
    done: dict[str, dict] = {}  # run_id -> its summary columns (histories stay on disk)
    for config in configs:
        record = _read_record(runs_dir / f"{config.run_id}.json", config.run_id)
        if record is None:
            continue
        # The same run gives (slightly) different numbers on another kind of device: keep
        # each directory to one, rather than mix them in one table.
        made_on = record.get("provenance", {}).get("device", "cpu")
        if made_on.split(":")[0] != device_type:
            raise ValueError(f"device={device!r}, but {out} holds runs made on {made_on!r}; "
                             f"use device={made_on!r} or another directory")
        done[config.run_id] = {k: record[k] for k in RESULT_COLUMNS}
    todo = [c for c in configs if c.run_id not in done]
    runs_dir.mkdir(parents=True, exist_ok=True)
    if spec.text:
        write_atomic(out / "spec.yaml", spec.text)
    _write_results(out, configs, done)

    with tqdm(total=len(configs), initial=len(done), unit="run", desc="sweep",
              disable=not progress) as bar:
        for record in _execute_all(todo, workers, scheduler, device):
            write_atomic(runs_dir / f"{record['run_id']}.json", json.dumps(record, indent=1))
            done[record["run_id"]] = {k: record[k] for k in RESULT_COLUMNS}
            _write_results(out, configs, done)
            bar.update(1)
    return _rows(configs, done)


def _execute_all(todo: list[RunConfig], workers: int, scheduler: str | None,
                 device: str) -> Iterator[dict]:
    """Records of the runs in `todo`, in the order they finish."""
    if scheduler is not None:
        yield from _on_dask(todo, scheduler, device)
    elif workers == 1 or len(todo) <= 1:
        for config in todo:
            yield execute(config.config, device)
    else:
        yield from _on_processes(todo, workers, device)


@contextlib.contextmanager
def _one_thread_environment() -> Iterator[None]:
    """OMP/MKL at one thread in child processes started inside the block (restored after)."""
    keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(dict.fromkeys(keys, "1"))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _start_worker() -> None:
    """Initialise a pool process: one torch thread, and exit if the parent dies (a killed
    sweep would otherwise leave its workers waiting for work forever)."""
    torch.set_num_threads(1)
    parent = multiprocessing.parent_process()
    if parent is not None:
        def exit_with_parent() -> None:
            parent.join()
            os._exit(1)

        threading.Thread(target=exit_with_parent, daemon=True).start()


def _process_context(start: bool = False) -> multiprocessing.context.BaseContext:
    """Where it exists, a fork server that has imported torch once: each worker forks from it
    in milliseconds instead of starting an interpreter (~2 s for torch, ~1.5 s more for the
    torch._dynamo module that torch.optim loads on first use). Plain fork is not an option: it
    copies the caller's threads' locks mid-use. Elsewhere: fresh interpreters ('spawn').
    `start=True` starts the server now (it is one per process, kept for later sweeps)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Takes effect when the server starts, i.e. the first time this process uses it.
    context.set_forkserver_preload(["rnnopt.sweep", "torch._dynamo"])
    if start:
        from multiprocessing import forkserver

        with _one_thread_environment():  # the server's environment is its workers'
            forkserver.ensure_running()
    return context


def _on_processes(todo: list[RunConfig], workers: int, device: str) -> Iterator[dict]:
    context = _process_context()
    with _one_thread_environment(), concurrent.futures.ProcessPoolExecutor(
        max_workers=min(workers, len(todo)), mp_context=context, initializer=_start_worker,
    ) as pool:
        futures = [pool.submit(execute, c.config, device) for c in todo]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        finally:
            for future in futures:  # on an error or interrupt, start nothing new
                future.cancel()


def _on_dask(todo: list[RunConfig], address: str, device: str) -> Iterator[dict]:
    try:
        from distributed import Client, as_completed
    except ImportError as err:
        raise RuntimeError("scheduler= needs Dask: pip install 'dask[distributed]'") from err
    with Client(address, set_as_default=False) as client:
        # pure=False: Dask must not merge or cache runs; each submission is one run.
        futures = [client.submit(execute, c.config, device, pure=False) for c in todo]
        try:
            for future in as_completed(futures, loop=client.loop):
                yield future.result()
        finally:
            client.cancel(futures)
