"""The results store of a sweep: one directory, written so that nothing in it is ever lost.

An output directory holds::

    spec.yaml            the spec that results.csv follows
    runs/<run_id>.json   one finished run: config, history, provenance (the source of truth)
    results.csv          one row per finished run, in grid order, rebuilt from the run files
    .lock                while a sweep writes here: who it is (the lock dies with its process)

Files are replaced atomically and only the process holding the lock writes them, so a sweep
killed at any moment loses at most the runs in flight. A run file is trusted only if it is
complete and its run id is the hash of its own configuration; any other is run again.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rnnopt.specs import RunConfig, Spec, SpecError, load_spec, parse_value, run_id
from rnnopt.train import History

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; a directory is then not protected
    fcntl = None

__all__ = [
    "RESULT_COLUMNS",
    "DirectoryError",
    "DirectoryLocked",
    "SpecChanged",
    "write_atomic",
    "read_record",
    "write_results",
    "rows",
    "load_results",
    "load_run",
    "load_history",
    "lock_directory",
    "check_spec_unchanged",
]

RESULT_COLUMNS = (
    "run_id",
    "status",
    "final_loss",
    "metric_name",
    "final_metric",
    "steps_done",
    "wall_time",
)
_HISTORY_FIELDS = set(History.__dataclass_fields__)


class DirectoryError(ValueError):
    """A results directory that this sweep may not write to as asked (nothing was changed)."""


class DirectoryLocked(DirectoryError):
    """Another sweep is writing to the directory now."""


class SpecChanged(DirectoryError):
    """The directory holds the results of a different spec."""


# --- Files ------------------------------------------------------------------------------


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` by `text` all at once: a reader (or a rerun after a crash) sees the old
    file or the new one, never half of one. The temporary file sits in the same directory
    because os.replace is atomic only within one file system."""
    path = Path(path)
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


def read_record(path: Path, expected: RunConfig) -> tuple[dict | None, str | None]:
    """(record, None) for a trustworthy run file of `expected`, else (None, why not).

    "No file" gives (None, None): nothing to say. A file is trusted only if it parses, has
    every field a record has, its history is a History, and its run id is both the expected
    one and the hash of the configuration it holds (so a file copied under another run's name,
    or edited by hand, is not taken for that run).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as err:
        return None, f"cannot be read ({err})"
    try:
        record = json.loads(text)
    except ValueError:
        return None, "is not complete JSON (truncated?)"
    if not isinstance(record, dict):
        return None, "is not a run record"
    missing = [k for k in (*RESULT_COLUMNS, "config", "history", "provenance") if k not in record]
    if missing:
        return None, f"lacks {', '.join(missing)}"
    history = record["history"]
    if (
        not isinstance(history, dict)
        or not set(history) <= _HISTORY_FIELDS
        or not all(k in history for k in ("loss", "eval_loss", "eval_metric"))
    ):
        return None, "holds no complete history"
    if not isinstance(record["config"], dict) or run_id(record["config"]) != record["run_id"]:
        return None, "has a run id that is not the hash of its configuration"
    if record["run_id"] != expected.run_id or record["config"] != expected.config:
        return None, f"is the record of another run ({record['run_id']})"
    return record, None


def _cell(value: Any) -> str:
    """A CSV cell that `load_results` reads back as the same value (floats exactly)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)


def write_results(out: Path, configs: list[RunConfig], done: dict[str, dict]) -> None:
    """results.csv: one row per finished run of `configs`, in grid order (a linear pass)."""
    grid_keys = list(configs[0].point) if configs else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*grid_keys, *RESULT_COLUMNS])
    for config in configs:
        summary = done.get(config.run_id)
        if summary is not None:
            row = [config.point[k] for k in grid_keys] + [summary[k] for k in RESULT_COLUMNS]
            writer.writerow([_cell(v) for v in row])
    write_atomic(out / "results.csv", buffer.getvalue())


def rows(configs: list[RunConfig], done: dict[str, dict]) -> list[dict]:
    return [
        {**c.point, **{k: done[c.run_id][k] for k in RESULT_COLUMNS}}
        for c in configs
        if c.run_id in done
    ]


_TYPES = {
    "final_loss": float,
    "final_metric": float,
    "wall_time": float,
    "steps_done": int,
    "run_id": str,
    "status": str,
    "metric_name": str,
}


def load_results(out_dir: str | os.PathLike) -> list[dict]:
    """The rows of `out_dir/results.csv`, with numbers as numbers (as `run_sweep` returned)."""
    with open(Path(out_dir) / "results.csv", encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))
    return [
        {k: _TYPES[k](v) if k in _TYPES else parse_value(v) for k, v in row.items()}
        for row in table
    ]


def load_run(out_dir: str | os.PathLike, run_id: str) -> dict:
    """The full record of one run: config, history, provenance and the summary columns."""
    with open(Path(out_dir) / "runs" / f"{run_id}.json", encoding="utf-8") as f:
        return json.load(f)


def load_history(out_dir: str | os.PathLike, run_id: str) -> History:
    """One run's step-by-step `History`."""
    return History.from_dict(load_run(out_dir, run_id)["history"])


# --- The directory lock -------------------------------------------------------------------


@contextlib.contextmanager
def lock_directory(out: Path) -> Iterator[None]:
    """Hold `out/.lock` for the block; refuse with DirectoryLocked, naming the holder, if
    another process holds it.

    An flock belongs to the open file, so the kernel drops it when its process dies however
    it dies: a killed sweep never leaves the directory locked (a `.lock` file left behind by
    one is simply taken over). The file is removed on a clean exit.
    """
    if fcntl is None:
        yield
        return
    path = out / ".lock"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise DirectoryLocked(
                f"out_dir={str(out)!r} is in use by another sweep ({holder}); wait for it to "
                "finish, or write to another directory"
            ) from None
        # The previous holder may have removed the file between our open and our lock: then
        # we hold a lock on a file nobody else will find. Try again on the file now there.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        info = {
            "pid": os.getpid(),
            "host": platform.node(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # while still locked: nobody can take a lock on it meanwhile
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode())
        return (
            f"pid {info['pid']} on {info['host']}, started {info['started']}, "
            f"command: {info['command']}"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet said who it is"


# --- The spec a directory holds -------------------------------------------------------------


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """{'task.seq_len': 10, 'grid.lr': [...], ...}: a spec's settings, one per dotted key."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if prefix == "grid" or not isinstance(item, dict):
                flat[name] = item
            else:
                flat.update(_flat(item, name))
        return flat
    return {prefix: value}


def _differences(old_text: str, new_text: str, limit: int = 5) -> str:
    from rnnopt.specs import load_yaml

    try:
        old, new = _flat(load_yaml(old_text) or {}), _flat(load_yaml(new_text) or {})
    except Exception:  # noqa: BLE001 - only for the message
        return "their texts differ"
    keys = [
        k for k in dict.fromkeys([*old, *new]) if old.get(k, "<unset>") != new.get(k, "<unset>")
    ]
    shown = [
        f"{k}: {old.get(k, '<unset>')!r} there, {new.get(k, '<unset>')!r} now" for k in keys[:limit]
    ]
    more = f"; and {len(keys) - limit} more" if len(keys) > limit else ""
    return "; ".join(shown) + more if shown else "their settings are written differently"


def check_spec_unchanged(out: Path, spec: Spec, configs: list[RunConfig]) -> None:
    """Raise SpecChanged if `out/spec.yaml` describes other runs than `spec` (or other grid
    columns); the same runs written differently (comments, order of sections) are the same."""
    path = out / "spec.yaml"
    if not path.exists():
        return
    old_text = path.read_text(encoding="utf-8", errors="replace")
    try:
        old = load_spec(path)
        from rnnopt.specs import expand

        same = list(old.grid) == list(spec.grid) and [c.run_id for c in expand(old)] == [
            c.run_id for c in configs
        ]
        why = "" if same else _differences(old_text, spec.text)
    except SpecError as err:
        same, why = False, f"the stored spec no longer loads ({'; '.join(err.problems)})"
    if not same:
        raise SpecChanged(
            f"out_dir={str(out)!r} holds the results of a different spec ({why}). Nothing was "
            "changed. To keep both, write to a new directory; to add the new spec's runs to "
            "this one, reusing every finished run: --extend (in Python extend=True); to make "
            "it the new spec's alone, deleting the run files the new spec does not have: "
            "--replace (replace=True)"
        )
