"""Sweep specs: loading a YAML grid, checking all of it at once, expanding it into runs.

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

`run_id` hashes a run's complete configuration (defaults filled in), so a rerun of a spec, or of
an extended one, finds every run already on disk.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import yaml

from rnnopt.checks import SEED_MAX, check_int, invalid
from rnnopt.optim import OPTIMIZERS, make_optimizer, optimizer_class
from rnnopt.rnn import SequenceModel
from rnnopt.tasks import TASKS, make_task
from rnnopt.train import TRAIN_KEYS, build_model, check_train_option, train

__all__ = [
    "SpecError",
    "Spec",
    "RunConfig",
    "SECTIONS",
    "TOP_KEYS",
    "LATER_OPTIONS",
    "load_spec",
    "expand",
    "parameters",
    "parse_value",
    "run_id",
    "YamlLoader",
    "load_yaml",
]

SECTIONS = ("task", "model", "optimizer", "train")
TOP_KEYS = (*SECTIONS, "grid", "seed")
# Grid keys that are not a section's parameter.
NAME_KEYS = {"task": "task.name", "optimizer": "optimizer.name", "seed": "seed"}


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
    return {
        name: p.default
        for name, p in signature.parameters.items()
        if name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def parameters(section: str, name: str | None = None) -> dict[str, Any]:
    """The parameters `section` accepts and their defaults, read from the code that takes them:
    a task's or optimizer's constructor (`name` picks which), SequenceModel, or `train`."""
    if section == "task":
        return _defaults(inspect.signature(TASKS[name]))
    if section == "optimizer":
        return _defaults(inspect.signature(optimizer_class(name)), skip=("params",))
    if section == "model":
        # build_model supplies sizes and readout from the task; hidden_size is its own argument.
        hidden = inspect.signature(build_model).parameters.get("hidden_size")
        own = _defaults(
            inspect.signature(SequenceModel),
            skip=("input_size", "hidden_size", "output_size", "readout"),
        )
        return {"hidden_size": inspect.Parameter.empty if hidden is None else hidden.default, **own}
    if section == "train":
        return {k: v for k, v in _defaults(inspect.signature(train)).items() if k in TRAIN_KEYS}
    raise ValueError(invalid("section", section, "a section", SECTIONS))


# Options added after runs were first stored: in a configuration only when set to something
# other than their default, so that adding them renamed no stored run (a run's id hashes its
# configuration).
LATER_OPTIONS = {
    "train": {"log_every": 1, "stop_at_metric": None, "diverge_factor": None},
    "model": {"recurrent_init": "uniform"},
    "task": {"held_out": "all"},
}


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


class YamlLoader(yaml.SafeLoader):
    """yaml.SafeLoader that reads `1e-3` as a number and refuses a key given twice.

    PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent, so `1e-3` and
    `1.0e3` are *strings*; YAML 1.2 and most tools read them as numbers, and learning rates are
    written that way. PyYAML also keeps the last of two equal keys without a word, so a spec
    with `lr:` twice would run with one of them silently. It still builds plain values only.
    Spec files, chapter parameter files and command-line values all use it.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice (first {first}); keep one",
                    key_node.start_mark,
                )
            seen[key] = f"at line {key_node.start_mark.line + 1}"
        return super().construct_mapping(node, deep=deep)


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """`text` read with YamlLoader (raises yaml.YAMLError, duplicate keys included)."""
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass


def parse_value(text: str) -> Any:
    """A YAML scalar or flow value (`0.9`, `1e-3`, `true`, `[0.9, 0.99]`, `adam`) as Python."""
    return load_yaml(text)


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
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise SpecError(
                [invalid("spec", os.fspath(source), f"a file that can be read as a spec ({err})")]
            ) from None
        try:
            raw = load_yaml(text)
        except yaml.YAMLError as err:
            raise SpecError(
                [invalid("spec", os.fspath(source), f"a file of valid YAML ({err})")]
            ) from None
    else:
        raise TypeError(
            invalid("source", source, f"a path or a mapping, not a {type(source).__name__}")
        )
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
        return None, [invalid("spec", raw, "a mapping of spec keys", TOP_KEYS)]
    problems: list[str] = []
    if not _is_plain(raw):
        problems.append(
            "a spec may hold only strings, numbers, booleans, null, lists and "
            "mappings with string keys"
        )
    for key in raw:
        if key not in TOP_KEYS:
            problems.append(invalid("top-level key", key, "a spec key", TOP_KEYS))
    fixed = {s: _section(raw, s, problems) for s in SECTIONS}
    grid = _grid(raw.get("grid"), problems)
    # Names first: which parameters a key may set depends on the tasks and optimizers used.
    names = {s: _names(s, fixed[s], grid, problems) for s in ("task", "optimizer")}
    targets = _targets(grid, fixed, names, "seed" in raw, problems)
    _check_keys(fixed, grid, targets, names, problems)
    if "steps" not in fixed["train"] and "train.steps" not in targets.values():
        problems.append(
            invalid("train.steps", None, "an integer >= 1, in train or grid: it has no default")
        )
        fixed["train"]["steps"] = 1  # a stand-in, so that the other values still get checked

    spec = Spec(
        task=fixed["task"],
        model=fixed["model"],
        optimizer=fixed["optimizer"],
        train=fixed["train"],
        seed=raw.get("seed", 0),
        grid=grid,
        targets=targets,
        text=text,
    )
    if names["task"] and names["optimizer"]:
        configs = expand(spec)
        problems += _check_values(configs)
        ids = [c.run_id for c in configs]
        if len(set(ids)) != len(ids):
            problems.append(
                "two grid points describe the same run; make the grid's values distinct"
            )
    return (None if problems else spec), problems


def _section(raw: dict, key: str, problems: list[str]) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if isinstance(value, str) and key in ("task", "optimizer"):
        return {"name": value}  # `optimizer: adam` is short for `optimizer: {name: adam}`
    if not isinstance(value, dict):
        problems.append(invalid(key, value, "a mapping of parameters"))
        return {}
    return dict(value)


def _grid(grid: Any, problems: list[str]) -> dict[str, list]:
    """The grid's usable entries; a value that is not a list is reported and left out."""
    if grid is None:
        return {}
    if not isinstance(grid, dict):
        problems.append(invalid("grid", grid, "a mapping of key: [values]"))
        return {}
    usable = {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            problems.append(invalid(f"grid.{key}", values, "a non-empty list of values"))
            continue
        distinct = [v for i, v in enumerate(values) if v not in values[:i]]
        if len(distinct) < len(values):
            problems.append(invalid(f"grid.{key}", values, "a list of distinct values"))
        usable[key] = distinct
    return usable


def _names(section: str, fixed: dict, grid: dict, problems: list[str]) -> list[str]:
    """The task or optimizer names a spec uses; unknown ones are reported and removed."""
    registry = TASKS if section == "task" else OPTIMIZERS
    rule = f"{'an' if section == 'optimizer' else 'a'} {section} name"
    found = []
    reported = False  # a name given but refused: then no "no name" problem besides
    if "name" in fixed:
        if fixed["name"] in registry:
            found.append(fixed["name"])
        elif section == "optimizer" and isinstance(fixed["name"], str) and ":" in fixed["name"]:
            try:  # one's own optimizer, 'file.py:Class' or 'module:Class'
                optimizer_class(fixed["name"])
                found.append(fixed["name"])
            except ValueError as err:
                fixed.pop("name")
                problems.append(str(err))
                reported = reported or str(err).startswith(f"{section}=")
        else:
            problems.append(invalid(f"{section}.name", fixed.pop("name"), rule, registry))
            reported = True
    for key in [k for k in grid if NAME_KEYS.get(k, k) == f"{section}.name"]:
        for name in grid[key]:
            if not (isinstance(name, str) and name in registry):
                problems.append(invalid(f"grid.{key}", name, rule, registry))
                reported = True
        grid[key] = [n for n in grid[key] if isinstance(n, str) and n in registry]
        found += grid[key]
        if not grid[key]:
            del grid[key]
    if not found and not reported:
        problems.append(
            invalid(
                f"{section}.name",
                None,
                f"{rule}: set {section}.name or put `{section}: [...]` in grid",
                registry,
            )
        )
    return list(dict.fromkeys(found))


def _targets(
    grid: dict, fixed: dict, names: dict, fixed_seed: bool, problems: list[str]
) -> dict[str, str]:
    """{grid key: the field it sets}; keys that set nothing, or a field already set, are
    reported and removed from the grid."""
    owners = {
        "task": {p for n in (names["task"] or TASKS) for p in parameters("task", n)},
        "optimizer": {
            p for n in (names["optimizer"] or OPTIMIZERS) for p in parameters("optimizer", n)
        },
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
        problems.append(invalid("grid key", key, "a string"))
        return None
    if "." in key:
        section, field = key.split(".", 1)
        if section in owners and (
            field in owners[section] or (field == "name" and section in ("task", "optimizer"))
        ):
            return key
        valid = sorted(f"{s}.{f}" for s in owners for f in owners[s])
        problems.append(invalid("grid key", key, "a dotted key of a parameter", valid))
        return None
    found = [s for s in SECTIONS if key in owners[s]]
    if len(found) == 1:
        return f"{found[0]}.{key}"
    if found:
        problems.append(
            invalid("grid key", key, "an unambiguous key", [f"{s}.{key}" for s in found])
        )
        return None
    valid = sorted({*NAME_KEYS, *itertools.chain.from_iterable(owners.values())})
    problems.append(invalid("grid key", key, "a grid key", valid))
    return None


def _check_keys(fixed: dict, grid: dict, targets: dict, names: dict, problems: list[str]) -> None:
    """Every parameter, fixed or varied, must belong to every task/optimizer it is used with;
    one that does not is reported and removed."""
    for section in SECTIONS:
        for name in names.get(section, [None]):
            valid = parameters(section, name)
            where = f"{section} {name!r}" if name else section
            for key in [k for k in fixed[section] if k != "name" and k not in valid]:
                problems.append(
                    invalid(f"{section} parameter", key, f"a parameter of {where}", valid)
                )
                del fixed[section][key]
            for key, target in list(targets.items()):
                field = target.partition(".")[2]
                if target.startswith(f"{section}.") and field != "name" and field not in valid:
                    problems.append(invalid("grid key", key, f"a parameter of {where}", valid))
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
        check(
            f"optimizer {optimizer_name!r}",
            optimizer,
            make_optimizer,
            optimizer_name,
            dummy,
            **optimizer,
        )
        with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
            check("model", config["model"], build_model, stand_in, **config["model"])
        for key, value in config["train"].items():
            check("train", {key: value}, check_train_option, key, value)
        check("seed", config["seed"], check_int, "seed", config["seed"], 0, SEED_MAX)
    return problems


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
