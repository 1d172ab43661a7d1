"""The checks rnnopt's optimizers make on their hyperparameters and parameter groups.

Kept apart from `rnnopt.optim` so that the optimizers read as their update rules. Messages keep
the start of torch's for the same mistake ("Invalid learning rate: ..."), so that someone
grepping for torch's error finds ours, and go on to name the value, the group and the rule.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from torch import Tensor

__all__ = ["validate_hyperparameters", "plain_numbers", "loaded_groups", "TORCH_SWITCHES",
           "GROUP_EXTRAS"]

Group = dict[str, Any]

# Each hyperparameter's valid range, with the start of torch's message for it (kept so that
# someone grepping for torch's error finds ours). torch checks only ">= 0" (and nothing on
# dampening); rnnopt also refuses what torch accepts but cannot work: a decay rate (momentum,
# dampening, alpha) above 1 makes the averages grow without bound, and eps = 0 divides 0 by 0
# on a parameter whose gradient is zero.
_RANGES = {
    "lr": ("Invalid learning rate", 0.0, None, False),  # (message start, low, high, low open)
    "momentum": ("Invalid momentum value", 0.0, 1.0, False),
    "dampening": ("Invalid dampening value", 0.0, 1.0, False),
    "weight_decay": ("Invalid weight_decay value", 0.0, None, False),
    "eps": ("Invalid epsilon value", 0.0, None, True),
    "alpha": ("Invalid alpha value", 0.0, 1.0, False),
}
_FLAGS = ("nesterov", "maximize", "centered", "amsgrad")
# Keys torch's own optimizers keep in their groups: implementation switches that rnnopt, with
# its one implementation, does not have. A state_dict saved by torch may carry them; they are
# dropped when it is loaded (decoupled_weight_decay=True excepted: see load_state_dict).
TORCH_SWITCHES = ("foreach", "fused", "capturable", "differentiable", "decoupled_weight_decay")
# Keys a group may hold besides the hyperparameters: torch's named parameters, and what
# torch.optim.lr_scheduler (initial_lr, OneCycleLR's and CyclicLR's bounds) and swa_utils.SWALR
# write into the groups, so that a checkpoint saved beside a scheduler loads.
GROUP_EXTRAS = ("params", "param_names", "initial_lr", "max_lr", "min_lr", "base_lr",
                "max_momentum", "base_momentum", "swa_lr")


def _rule(low: float, high: float | None, low_open: bool) -> str:
    if high is not None:
        return f"in [{low:g}, {high:g}]"
    return f"a finite number {'>' if low_open else '>='} {low:g}"


def _check_real(name: str, value: Any, message_start: str, rule: str, where: str) -> float:
    """Return ``value`` as a float, or raise naming ``name``, ``value`` and ``rule``.

    Python and numpy ints and floats are accepted; anything else (a Fraction, a Decimal, an
    array or tensor, a string) is refused with a TypeError, because torch's tensor operations
    take plain numbers only; an integer too large for a float with a ValueError.
    """
    plain = isinstance(value, (int, float, np.integer, np.floating))
    if isinstance(value, (bool, np.bool_)) or not plain:
        raise TypeError(
            f"{message_start}: {name}={value!r}{where} "
            f"(must be {rule}; got a {type(value).__name__})"
        )
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{message_start}: {name}={value!r}{where} (must be {rule}; too "
                         "large for a float)") from None


def validate_hyperparameters(group: Group, where: str = "") -> None:
    """Check every hyperparameter present in ``group``; raise ValueError/TypeError if invalid.

    ``where`` (e.g. " in param group 1") says which group an override came from.
    """
    for name, (message_start, low, high, low_open) in _RANGES.items():
        if name in group:
            rule = _rule(low, high, low_open)
            value = _check_real(name, group[name], message_start, rule, where)
            inside = (value > low if low_open else value >= low) and math.isfinite(value) and (
                high is None or value <= high)
            if not inside:  # also false for nan
                raise ValueError(f"{message_start}: {name}={group[name]!r}{where} (must be {rule})")
    if "betas" in group:
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got betas={betas!r}{where}")
        for index, beta in enumerate(betas):
            message_start = f"Invalid beta parameter at index {index}"
            rule = "in [0, 1)"
            value = _check_real(f"betas[{index}]", beta, message_start, rule, where)
            if not 0 <= value < 1:  # also false for nan
                raise ValueError(
                    f"{message_start}: betas[{index}]={beta!r}{where} (must be {rule})"
                )
    for flag in _FLAGS:
        if flag in group and not isinstance(group[flag], bool):
            raise TypeError(f"{flag} must be True or False, got {flag}={group[flag]!r}{where}")
    if group.get("nesterov") and (group["momentum"] <= 0 or group["dampening"] != 0):
        raise ValueError(
            "Nesterov momentum requires a momentum and zero dampening: got "
            f"momentum={group['momentum']!r}, dampening={group['dampening']!r}{where}"
        )


def plain_numbers(group: Group) -> Group:
    """numpy scalars as the Python numbers they hold (torch's operations take the latter)."""
    return {k: v.item() if isinstance(v, np.generic) else
            type(v)(x.item() if isinstance(x, np.generic) else x for x in v)
            if isinstance(v, (tuple, list)) else v for k, v in group.items()}


def loaded_groups(saved_groups: list[Group], defaults: Group, owner: str,
                  decoupled_ok: bool) -> list[Group]:
    """The groups of a state_dict, checked like new groups, torch's switches dropped.

    `decoupled_ok`: whether the loading optimizer is AdamW, which state saved by torch's Adam
    with decoupled_weight_decay=True belongs to.
    """
    groups = []
    for index, saved in enumerate(saved_groups):
        group = dict(saved)
        decoupled = group.get("decoupled_weight_decay", False)
        if decoupled and not decoupled_ok:
            raise ValueError(
                f"param group {index} was saved with decoupled_weight_decay={decoupled!r} "
                f"(torch's Adam in AdamW's mode): load it into rnnopt.optim.AdamW, not {owner}")
        for key in TORCH_SWITCHES:
            group.pop(key, None)
        valid = [*defaults, *GROUP_EXTRAS]
        unknown = [k for k in group if k not in valid]
        if unknown:
            raise ValueError(f"param group {index} of the state_dict has "
                             f"{', '.join(map(repr, unknown))}, which {owner} does not have; "
                             f"valid keys: {', '.join(valid)}")
        validate_hyperparameters({**defaults, **group}, f" in param group {index} of the "
                                 "state_dict")
        groups.append(group)
    return groups


def check_params(new: list[Any], groups: list[Group], group_index: int, owner: str) -> None:
    """The parameters of a new group: each once, in no other group, and real."""
    where = f" in param group {group_index}"
    seen: set[int] = set()
    for index, param in enumerate(new):
        if isinstance(param, Tensor) and id(param) in seen:
            raise ValueError(f"parameter {index}{where} (shape {tuple(param.shape)}) is "
                             "given twice in the group; give each parameter once")
        seen.add(id(param))
    for index, group in enumerate(groups):
        for param in group["params"]:
            if id(param) in seen:
                raise ValueError(
                    "some parameters appear in more than one parameter group: a parameter "
                    f"of shape {tuple(param.shape)} is in param group {index} and in "
                    f"param group {group_index}"
                )
    for index, param in enumerate(new):
        if isinstance(param, Tensor) and param.is_complex():  # torch: pairs of reals
            raise TypeError(
                f"{owner} does not support complex parameters: parameter "
                f"{index} of param group {group_index} has dtype {param.dtype}"
            )
