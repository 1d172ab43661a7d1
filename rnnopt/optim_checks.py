"""The checks rnnopt's optimizers make on their hyperparameters and parameter groups.

Kept apart from `rnnopt.optim` so that the optimizers read as their update rules:
:class:`CheckedOptimizer` is the part of their base class that validates (construction, new
parameter groups, loaded state dicts, sparse gradients), and the functions below it do the
checking. Messages keep the start of torch's for the same mistake ("Invalid learning rate: ..."),
so that someone grepping for torch's error finds ours, and go on to name the value, the group
and the rule.

Where rnnopt deliberately differs from torch: every hyperparameter is validated (torch accepts
``lr=nan``), against its real range where that is narrower than torch's ">= 0" (``momentum``,
``dampening`` and ``alpha`` in [0, 1], ``eps`` > 0), and only as a Python or numpy number
(a Fraction, an array or a tensor is refused); a parameter group without ``params``, with a key
that is no hyperparameter, or with a parameter twice is refused (torch keeps the key, or warns);
groups loaded by ``load_state_dict`` are validated like new ones; sparse gradients and complex
parameters are refused (torch's SGD takes sparse gradients; its others view complex numbers as
pairs of reals), and there are no ``foreach``/``fused``/``capturable``/``differentiable``
switches: there is one implementation, the one you can read (a torch state_dict's switches are
dropped on loading).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "CheckedOptimizer",
    "step_counter",
    "validate_hyperparameters",
    "plain_numbers",
    "loaded_groups",
    "check_params",
    "TORCH_SWITCHES",
    "GROUP_EXTRAS",
]

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
GROUP_EXTRAS = (
    "params",
    "param_names",
    "initial_lr",
    "max_lr",
    "min_lr",
    "base_lr",
    "max_momentum",
    "base_momentum",
    "swa_lr",
)


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
        raise ValueError(
            f"{message_start}: {name}={value!r}{where} (must be {rule}; too large for a float)"
        ) from None


def validate_hyperparameters(group: Group, where: str = "") -> None:
    """Check every hyperparameter present in ``group``; raise ValueError/TypeError if invalid.

    ``where`` (e.g. " in param group 1") says which group an override came from.
    """
    for name, (message_start, low, high, low_open) in _RANGES.items():
        if name in group:
            rule = _rule(low, high, low_open)
            value = _check_real(name, group[name], message_start, rule, where)
            inside = (
                (value > low if low_open else value >= low)
                and math.isfinite(value)
                and (high is None or value <= high)
            )
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
    return {
        k: v.item()
        if isinstance(v, np.generic)
        else type(v)(x.item() if isinstance(x, np.generic) else x for x in v)
        if isinstance(v, (tuple, list))
        else v
        for k, v in group.items()
    }


def loaded_groups(
    saved_groups: list[Group], defaults: Group, owner: str, decoupled_ok: bool
) -> list[Group]:
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
                f"(torch's Adam in AdamW's mode): load it into rnnopt.optim.AdamW, not {owner}"
            )
        for key in TORCH_SWITCHES:
            group.pop(key, None)
        valid = [*defaults, *GROUP_EXTRAS]
        unknown = [k for k in group if k not in valid]
        if unknown:
            raise ValueError(
                f"param group {index} of the state_dict has "
                f"{', '.join(map(repr, unknown))}, which {owner} does not have; "
                f"valid keys: {', '.join(valid)}"
            )
        validate_hyperparameters(
            {**defaults, **group}, f" in param group {index} of the state_dict"
        )
        groups.append(group)
    return groups


def check_params(new: list[Any], groups: list[Group], group_index: int, owner: str) -> None:
    """The parameters of a new group: each once, in no other group, and real."""
    where = f" in param group {group_index}"
    seen: set[int] = set()
    for index, param in enumerate(new):
        if isinstance(param, Tensor) and id(param) in seen:
            raise ValueError(
                f"parameter {index}{where} (shape {tuple(param.shape)}) is "
                "given twice in the group; give each parameter once"
            )
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


def step_counter() -> Tensor:
    """A 0-dim step count, as torch keeps it: a float tensor on the CPU (float64 only when that
    is the default dtype). On the CPU, reading it with ``.item()`` never waits for a GPU. (Here
    rather than in `rnnopt.optim` because loading an old checkpoint makes one too.)"""
    dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    return torch.zeros((), dtype=dtype)


class CheckedOptimizer(torch.optim.Optimizer):
    """The validating half of `rnnopt.optim.BaseOptimizer`: every hyperparameter, in
    ``defaults``, in a per-group override, in a group added later with :meth:`add_param_group`
    or in a loaded state dict, is checked before it is used."""

    # Whether state saved by torch's Adam with decoupled_weight_decay=True may load (AdamW).
    loads_decoupled_weight_decay = False

    def __init__(self, params: Iterable[Tensor] | Iterable[Group], defaults: Group) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got a single Tensor of shape {tuple(params.shape)}: pass [tensor]"
            )
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list: params=[]")
        defaults = plain_numbers(defaults)
        validate_hyperparameters(defaults)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: Group) -> None:
        """Validate the group's hyperparameters and parameters, then add it (see torch).

        Refused where torch is lenient: a group without ``params`` (torch: KeyError), a key that
        is no hyperparameter of this optimizer (torch keeps it silently), and a parameter given
        twice in the group (torch warns, and would update it twice as often).
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group_index = len(self.param_groups)
        where = f" in param group {group_index}"
        if "params" not in param_group:
            raise ValueError(
                f"param group {group_index} has no 'params': a group is a dict "
                "{'params': [tensors], **hyperparameters}"
            )
        valid = [*self.defaults, *GROUP_EXTRAS]
        unknown = [k for k in param_group if k not in valid]
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no hyperparameter "
                f"{', '.join(map(repr, unknown))}{where}; valid keys: "
                f"{', '.join(valid)}"
            )
        param_group.update(plain_numbers({k: v for k, v in param_group.items() if k != "params"}))
        validate_hyperparameters({**self.defaults, **param_group}, where)
        params = param_group["params"]
        new = [params] if isinstance(params, Tensor) else list(params)
        param_group["params"] = new  # ``params`` may be a one-shot generator
        check_params(new, self.param_groups, group_index, type(self).__name__)
        super().add_param_group(param_group)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by rnnopt or by torch's own optimizer (see torch).

        Its groups are validated like new ones. torch's implementation switches (``foreach``,
        ``fused``, ``capturable``, ``differentiable``) are dropped: there is one implementation
        here. State saved by torch's Adam with ``decoupled_weight_decay=True`` is AdamW's: it
        loads into :class:`AdamW` and is refused by :class:`Adam`. A ``step`` saved as a
        number (older torch checkpoints) becomes the tensor torch would make of it.
        """
        groups = loaded_groups(
            state_dict["param_groups"],
            self.defaults,
            type(self).__name__,
            decoupled_ok=self.loads_decoupled_weight_decay,
        )
        super().load_state_dict({**state_dict, "param_groups": groups})
        for state in self.state.values():
            if "step" in state and not isinstance(state["step"], Tensor):
                step = step_counter()
                step.fill_(float(state["step"]))
                state["step"] = step

    def sparse_refusal(self, param: Tensor, group_index: int) -> str:
        """The message for a sparse gradient on ``param``, naming it by group and position."""
        params = self.param_groups[group_index]["params"]
        index = next(i for i, p in enumerate(params) if p is param)
        return (
            f"{type(self).__name__} does not support sparse gradients: parameter {index} of "
            f"param group {group_index} (shape {tuple(param.shape)}) has a gradient of layout "
            f"{param.grad.layout}"
        )
