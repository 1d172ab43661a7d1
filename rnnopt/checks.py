"""The checks every layer uses on what it is given, with one message format.

A refusal names the parameter, the value it got, the rule it breaks and, where there is a short
list of them, the valid choices::

    steps=0 is invalid: expected an integer >= 1
    device='tpu' is invalid: expected one of 'cpu', 'cuda'

Each check returns the value in its plain Python form (a numpy integer as an int, a numpy float
as a float), so numpy scalars are accepted wherever Python numbers are.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "invalid",
    "check_int",
    "check_number",
    "check_choice",
    "check_list",
    "check_seeds",
    "check_output_file",
    "check_output_dir",
    "SEED_MAX",
]

SEED_MAX = 2**63 - 1  # torch.manual_seed refuses larger seeds (and numpy's are unbounded)


def invalid(name: str, value: Any, rule: str, choices: Iterable[Any] | None = None) -> str:
    """The message of every refusal: parameter, value, rule, and the valid choices if given."""
    text = f"{name}={value!r} is invalid: expected {rule}"
    if choices is not None:
        text += f"; valid choices: {', '.join(map(repr, choices))}"
    return text


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """`value` as an int in [minimum, maximum] (either bound may be None); else ValueError.

    bool is refused although it is an int in Python: `steps=True` is a mistake, not 1.
    """
    if minimum is not None and maximum is not None:
        rule = f"an integer in [{minimum}, {maximum}]"
    elif minimum is not None:
        rule = f"an integer >= {minimum}"
    elif maximum is not None:
        rule = f"an integer <= {maximum}"
    else:
        rule = "an integer"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(invalid(name, value, rule))
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(invalid(name, value, rule))
    return int(value)


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> float | None:
    """`value` as a finite float in the range given (open ends where asked); else ValueError.

    Accepts int, float and numpy numbers; refuses bool, strings, NaN, infinities, and integers
    too large to be a float.
    """
    if low is not None and high is not None:
        rule = (
            f"a finite number in {'(' if low_open else '['}{low:g}, {high:g}"
            f"{')' if high_open else ']'}"
        )
    elif low is not None:
        rule = f"a finite number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        rule = f"a finite number {'<' if high_open else '<='} {high:g}"
    else:
        rule = "a finite number"
    if allow_none:
        rule = "None or " + rule
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(
        value, (int, float, numbers.Integral, numbers.Real)
    ):
        raise ValueError(invalid(name, value, rule))
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        raise ValueError(invalid(name, value, rule)) from None
    if not math.isfinite(number):
        raise ValueError(invalid(name, value, rule))
    if low is not None and (number <= low if low_open else number < low):
        raise ValueError(invalid(name, value, rule))
    if high is not None and (number >= high if high_open else number > high):
        raise ValueError(invalid(name, value, rule))
    return number


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """`value` if it is one of `choices`; else ValueError listing them."""
    choices = list(choices)
    if not any(value == c and type(value) is type(c) for c in choices):
        raise ValueError(invalid(name, value, "one of the valid choices", choices))
    return value


def check_list(
    name: str,
    value: Any,
    item: Callable[[str, Any], Any],
    *,
    min_length: int = 1,
    distinct: bool = False,
    increasing: bool = False,
) -> list[Any]:
    """`value` as a list of at least `min_length` items, each passed through `item(name[i], x)`
    (e.g. ``lambda n, x: check_number(n, x, low=0, low_open=True)``); optionally distinct or
    strictly increasing; else ValueError naming the list or the offending item."""
    rule = f"a list of at least {min_length} item{'s' if min_length != 1 else ''}"
    if distinct:
        rule += ", all different"
    if increasing:
        rule += ", in increasing order"
    if not isinstance(value, (list, tuple)) or len(value) < min_length:
        raise ValueError(invalid(name, value, rule))
    items = [item(f"{name}[{i}]", x) for i, x in enumerate(value)]
    if distinct and len(set(items)) != len(items):
        raise ValueError(invalid(name, value, rule))
    if increasing and any(a >= b for a, b in zip(items, items[1:], strict=False)):
        raise ValueError(invalid(name, value, rule))
    return items


def check_seeds(name: str, value: Any) -> list[int]:
    """A non-empty list of distinct seeds, integers in [0, SEED_MAX]."""
    return check_list(name, value, lambda n, x: check_int(n, x, 0, SEED_MAX), distinct=True)


def _existing_ancestor(path: Path) -> Path:
    for parent in [path, *path.parents]:
        if parent.exists():
            return parent
    return Path(".")


def _check_place(name: str, shown: Path, directory: Path) -> None:
    """`directory` (where `shown` will be written) exists or can be made, and is writable."""
    base = _existing_ancestor(directory)
    if not base.is_dir():
        raise ValueError(
            invalid(name, str(shown), f"a path in a directory, but {str(base)!r} is a file")
        )
    if not os.access(base, os.W_OK | os.X_OK):
        raise ValueError(
            invalid(name, str(shown), f"a writable place, but {str(base)!r} is not writable")
        )


def check_output_dir(name: str, path: str | os.PathLike) -> Path:
    """`path` as a directory that is or can be made, writable; else ValueError, before any work.

    Refused: an existing file, a path under a file, a place this process may not write.
    Nothing is created.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(invalid(name, str(path), "a directory, but it is a file"))
    _check_place(name, path, path)
    return path


def check_output_file(name: str, path: str | os.PathLike) -> Path:
    """`path` as a file that can be written (replacing one that is there); else ValueError.

    Refused: a directory, a path under a file, a place this process may not write.
    Nothing is created.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(invalid(name, str(path), "a file, but it is a directory"))
    _check_place(name, path, path.parent)
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(invalid(name, str(path), "a writable file"))
    return path
