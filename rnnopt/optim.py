r"""The optimizers of this book, written from scratch as drop-in ``torch.optim`` optimizers.

The rules, in the order of this file:

- :meth:`BaseOptimizer.step` is the loop every optimizer shares: for each parameter that has a
  gradient, create its state the first time (``init_state``), turn the gradient into
  :math:`g_t` (``maximize``, weight decay), then apply the optimizer's ``update``;
- the four updates, ``SGD`` (and ``Momentum``), ``RMSprop``, ``Adam`` (and ``AdamW``), each
  one line per equation with the equation in a comment above it, in the notation of the
  docstrings: :math:`g_t` the gradient, :math:`b_t` a momentum buffer, :math:`m_t` and
  :math:`v_t` running averages of :math:`g_t` and :math:`g_t^2`, ``bias_correction1`` =
  :math:`1 - \beta_1^t` and ``bias_correction2`` = :math:`1 - \beta_2^t`,
  :math:`\hat v^{max}_t` AMSGrad's running maximum of :math:`v_t`.

One identity is used throughout: an exponential moving average
:math:`a \leftarrow \beta a + (1 - \beta) x` is ``a.lerp_(x, 1 - beta)``, since
``lerp(a, x, w)`` = :math:`a + w (x - a) = (1 - w) a + w x` (torch computes it this way too).

The checks (hyperparameter ranges, parameter groups, loading state dicts) live in
`rnnopt.optim_checks`, whose :class:`~rnnopt.optim_checks.CheckedOptimizer` is the base of
:class:`BaseOptimizer`, so that nothing here but the rules needs reading.

They are drop-in replacements for ``torch.optim.SGD``, ``RMSprop``, ``Adam`` and ``AdamW``: the
same constructor arguments and defaults, the same state keys (``momentum_buffer``,
``square_avg``, ``grad_avg``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``, ``step``) laid out
as torch's default for-loop implementation lays them out, so ``state_dict`` moves freely between
the two libraries and ``torch.optim.lr_scheduler`` works unchanged. The tests check that
parameters and state agree with torch's to 1e-10 in float64 for every option combination (in
practice they agree bit for bit: the updates use the same tensor operations in the same order;
Adam divides by ``sqrt(bias_correction2)`` in place where torch makes a copy, which gives the
same floats and saves a full-size temporary).
Where they deliberately differ from torch (stricter validation, no sparse gradients, no
``foreach``/``fused`` switches) is listed in `rnnopt.optim_checks`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from rnnopt.optim_checks import CheckedOptimizer, step_counter

__all__ = [
    "OPTIMIZERS",
    "optimizer_class",
    "SGD",
    "Adam",
    "AdamW",
    "BaseOptimizer",
    "Momentum",
    "RMSprop",
    "make_optimizer",
]

Group = dict[str, Any]
State = dict[str, Any]


def _zeros_like(param: Tensor) -> Tensor:
    return torch.zeros_like(param, memory_format=torch.preserve_format)


class BaseOptimizer(CheckedOptimizer):
    """The part every optimizer shares: the loop over parameters, lazy state and closures.

    A subclass passes its hyperparameters as ``defaults`` to ``__init__`` and implements
    :meth:`init_state` and :meth:`update`. Validation is inherited from
    :class:`~rnnopt.optim_checks.CheckedOptimizer`.
    """

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return ``closure()``'s loss, if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():  # the closure runs backward; step itself must not record
                loss = closure()
        for group_index, group in enumerate(self.param_groups):
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue  # frozen for this step: neither the parameter nor its state moves
                if grad.is_sparse:
                    raise TypeError(self.sparse_refusal(param, group_index))
                state = self.state[param]
                if len(state) == 0:
                    self.init_state(state, param, group)
                if group["maximize"]:
                    # g_t = -grad f(theta_{t-1})
                    grad = -grad
                if group["weight_decay"] != 0:
                    grad = self.weight_decay(param, grad, group)
                self.update(param, grad, state, group)
        return loss

    def weight_decay(self, param: Tensor, grad: Tensor, group: Group) -> Tensor:
        """L2 penalty, folded into the gradient: g_t <- g_t + lambda theta_{t-1}."""
        return grad.add(param, alpha=group["weight_decay"])

    def init_state(self, state: State, param: Tensor, group: Group) -> None:
        """Fill the empty ``state`` of ``param`` before its first update."""

    def update(self, param: Tensor, grad: Tensor, state: State, group: Group) -> None:
        """Apply one step of the update rule to ``param`` in place, given its gradient."""
        raise NotImplementedError


class SGD(BaseOptimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum; ``torch.optim.SGD``.

    With weight decay :math:`\lambda`, momentum :math:`\mu`, dampening :math:`\tau` and learning
    rate :math:`\gamma`, each step computes

    .. math::
        g_t &= \nabla f(\theta_{t-1}) + \lambda \theta_{t-1} \\
        b_t &= \begin{cases} g_1 & t = 1 \\ \mu b_{t-1} + (1 - \tau) g_t & t > 1 \end{cases} \\
        \theta_t &= \theta_{t-1} - \gamma \, (g_t + \mu b_t) \quad\text{(Nesterov)}
            \qquad \text{or} \qquad \theta_t = \theta_{t-1} - \gamma \, b_t

    (with :math:`\mu = 0`: :math:`\theta_t = \theta_{t-1} - \gamma g_t`).

    Conventions, as torch's:

    - The first step copies the gradient into the buffer without dampening, so with
      ``dampening=0.5`` the first step is not halved.
    - The learning rate sits outside the buffer. Sutskever et al. (2013) put it inside:
      :math:`v_t = \mu v_{t-1} - \gamma g_t,\ \theta_t = \theta_{t-1} + v_t`, which gives the
      same trajectory only while :math:`\gamma` is constant; under an lr schedule they differ.
    - Nesterov is torch's (and Sutskever et al.'s) reformulation that needs no gradient at the
      look-ahead point.
    - ``maximize`` negates the gradient. Unlike torch's SGD, sparse gradients are refused.

    References: Robbins & Monro (1951); Polyak (1964), heavy ball; Sutskever, Martens, Dahl &
    Hinton, "On the importance of initialization and momentum in deep learning", ICML 2013.

    Example (lr=0.1, momentum=0.9, dampening=0.5; gradients 2 then 3)::

        >>> import torch
        >>> from rnnopt.optim import SGD
        >>> w = torch.tensor([1.0], requires_grad=True)
        >>> opt = SGD([w], lr=0.1, momentum=0.9, dampening=0.5)
        >>> w.grad = torch.tensor([2.0]); opt.step(); print(opt.state[w]["momentum_buffer"])
        tensor([2.])
        >>> w.grad = torch.tensor([3.0]); opt.step(); print(opt.state[w]["momentum_buffer"])
        tensor([3.3000])
        >>> print(w.detach())
        tensor([0.4700])
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[Group],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def update(self, param: Tensor, grad: Tensor, state: State, group: Group) -> None:
        momentum = group["momentum"]
        if momentum != 0:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                # b_1 = g_1   (torch: no dampening on the first step)
                buffer = state["momentum_buffer"] = grad.clone()
            else:
                # b_t = mu b_{t-1} + (1 - tau) g_t
                buffer.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            if group["nesterov"]:
                # d_t = g_t + mu b_t
                grad = grad.add(buffer, alpha=momentum)
            else:
                # d_t = b_t
                grad = buffer
        # theta_t = theta_{t-1} - gamma d_t
        param.add_(grad, alpha=-group["lr"])


class Momentum(SGD):
    r"""SGD with heavy-ball momentum on by default (``momentum=0.9``); otherwise :class:`SGD`.

    Its ``state_dict`` is an SGD one: it loads into ``torch.optim.SGD`` and back.

    Example::

        >>> import torch
        >>> from rnnopt.optim import Momentum
        >>> w = torch.tensor([1.0], requires_grad=True)
        >>> opt = Momentum([w], lr=0.1)
        >>> for _ in range(2):
        ...     w.grad = torch.tensor([1.0]); opt.step()
        >>> print(w.detach())  # 1 - 0.1*1 - 0.1*(0.9*1 + 1)
        tensor([0.7100])
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[Group],
        lr: float = 1e-3,
        momentum: float = 0.9,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, momentum, dampening, weight_decay, nesterov, maximize=maximize)


class RMSprop(BaseOptimizer):
    r"""RMSprop: divide the gradient by a running root mean square; ``torch.optim.RMSprop``.

    .. math::
        v_t &= \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        \bar g_t &= \alpha \bar g_{t-1} + (1 - \alpha) g_t
            \quad\text{(centered only)} \\
        d_t &= \frac{g_t}{\sqrt{v_t} + \epsilon}
            \quad\text{or, centered,}\quad \frac{g_t}{\sqrt{v_t - \bar g_t^2} + \epsilon} \\
        b_t &= \mu b_{t-1} + d_t, \quad \theta_t = \theta_{t-1} - \gamma b_t
            \quad\text{(momentum > 0; else } \theta_t = \theta_{t-1} - \gamma d_t)

    with :math:`v_0 = \bar g_0 = b_0 = 0` and :math:`g_t` the gradient plus
    :math:`\lambda\theta_{t-1}` (weight decay).

    Conventions, as torch's:

    - :math:`\epsilon` is added outside the square root (TensorFlow/Keras add it inside).
    - There is no bias correction, so the first step, from :math:`v_1 = (1-\alpha) g_1^2`, has
      size :math:`\gamma / \sqrt{1 - \alpha}`: 10 lr at the default alpha = 0.99.
    - ``step`` is counted (state key ``step``) though the rule never uses it.

    References: Tieleman & Hinton, Coursera "Neural Networks for Machine Learning", lecture 6e
    (2012); centered form: Graves, "Generating sequences with recurrent neural networks" (2013).

    Example (first step = lr / sqrt(1 - alpha), whatever the gradient)::

        >>> import torch
        >>> from rnnopt.optim import RMSprop
        >>> w = torch.tensor([1.0], requires_grad=True)
        >>> opt = RMSprop([w], lr=0.01, alpha=0.99)
        >>> w.grad = torch.tensor([123.0]); opt.step()
        >>> print(w.detach())  # 1 - 0.01 / sqrt(0.01)
        tensor([0.9000])
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[Group],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def init_state(self, state: State, param: Tensor, group: Group) -> None:
        state["step"] = step_counter()
        state["square_avg"] = _zeros_like(param)
        if group["momentum"] > 0:
            state["momentum_buffer"] = _zeros_like(param)
        if group["centered"]:
            state["grad_avg"] = _zeros_like(param)

    def update(self, param: Tensor, grad: Tensor, state: State, group: Group) -> None:
        alpha, square_avg = group["alpha"], state["square_avg"]
        # t = t + 1
        state["step"] += 1
        # v_t = alpha v_{t-1} + (1 - alpha) g_t^2
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            # gbar_t = alpha gbar_{t-1} + (1 - alpha) g_t
            grad_avg.lerp_(grad, 1 - alpha)
            # denom = sqrt(v_t - gbar_t^2) + eps
            denom = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_().add_(group["eps"])
        else:
            # denom = sqrt(v_t) + eps
            denom = square_avg.sqrt().add_(group["eps"])
        if group["momentum"] > 0:
            # b_t = mu b_{t-1} + g_t / denom
            state["momentum_buffer"].mul_(group["momentum"]).addcdiv_(grad, denom)
            # theta_t = theta_{t-1} - gamma b_t
            param.add_(state["momentum_buffer"], alpha=-group["lr"])
        else:
            # theta_t = theta_{t-1} - gamma g_t / denom
            param.addcdiv_(grad, denom, value=-group["lr"])


class Adam(BaseOptimizer):
    r"""Adam: momentum divided by a running RMS, both bias-corrected; ``torch.optim.Adam``.

    .. math::
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v^{max}_t &= \max(\hat v^{max}_{t-1}, v_t)
            \quad\text{(AMSGrad, which then uses } \hat v^{max}_t \text{ for } v_t) \\
        \theta_t &= \theta_{t-1} - \gamma \, \frac{m_t / c_1}{\sqrt{v_t / c_2} + \epsilon},
            \qquad c_1 = 1 - \beta_1^t, \quad c_2 = 1 - \beta_2^t

    with :math:`m_0 = v_0 = \hat v^{max}_0 = 0` and :math:`g_t` the gradient plus
    :math:`\lambda\theta_{t-1}` (L2 weight decay, which then passes through the moments; see
    :class:`AdamW`). The bias corrections :math:`c_1, c_2` are ``bias_correction1`` and
    ``bias_correction2`` in the code, which, as torch's, divides :math:`\sqrt{v_t}` by
    :math:`\sqrt{c_2}` and folds :math:`1/c_1` into the step size.

    Conventions, as torch's and Kingma & Ba's Algorithm 1: :math:`\epsilon` outside the square
    root and after bias correction (the paper's "epsilon-hat" variant in Section 2 puts it
    before). AMSGrad takes the maximum of the raw :math:`v_t` and bias-corrects afterwards.
    Because of the bias correction the first step is :math:`\gamma\, g/(|g| + \epsilon) \approx
    \gamma` whatever the gradient's size, and rescaling all gradients by a constant leaves the
    steps (nearly) unchanged.

    References: Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015;
    AMSGrad: Reddi, Kale & Kumar, "On the convergence of Adam and beyond", ICLR 2018.

    Example (first step = lr for any gradient size)::

        >>> import torch
        >>> from rnnopt.optim import Adam
        >>> w = torch.tensor([1.0], requires_grad=True)
        >>> opt = Adam([w], lr=1e-3)
        >>> w.grad = torch.tensor([123.0]); opt.step()
        >>> print(w.detach())
        tensor([0.9990])
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[Group],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def init_state(self, state: State, param: Tensor, group: Group) -> None:
        state["step"] = step_counter()
        state["exp_avg"] = _zeros_like(param)
        state["exp_avg_sq"] = _zeros_like(param)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = _zeros_like(param)

    def update(self, param: Tensor, grad: Tensor, state: State, group: Group) -> None:
        beta1, beta2 = group["betas"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # t = t + 1
        state["step"] += 1
        t = state["step"].item()  # a CPU tensor: no wait for the GPU
        bias_correction1 = 1 - beta1**t
        bias_correction2 = 1 - beta2**t
        # m_t = beta1 m_{t-1} + (1 - beta1) g_t
        exp_avg.lerp_(grad, 1 - beta1)
        # v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        second_moment = exp_avg_sq
        if group["amsgrad"]:
            max_exp_avg_sq = state["max_exp_avg_sq"]
            # vhat_max_t = max(vhat_max_{t-1}, v_t)
            second_moment = torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        # denom = sqrt(v_t) / sqrt(bias_correction2) + eps   (divided in place: with a second
        # full-size temporary glibc hands both back to the OS, and the next step faults them in)
        denom = second_moment.sqrt().div_(bias_correction2**0.5).add_(group["eps"])
        # theta_t = theta_{t-1} - (gamma / bias_correction1) m_t / denom
        param.addcdiv_(exp_avg, denom, value=-group["lr"] / bias_correction1)


class AdamW(Adam):
    r"""Adam with decoupled weight decay; ``torch.optim.AdamW``.

    Identical to :class:`Adam` except for weight decay, which shrinks the parameter directly
    instead of being added to the gradient:

    .. math::
        \theta_{t-1} \leftarrow (1 - \gamma\lambda)\, \theta_{t-1}
        \quad\text{before the Adam step, which then sees the raw gradient.}

    With L2 decay (Adam's ``weight_decay``) the penalty's gradient :math:`\lambda\theta` is
    divided by :math:`\sqrt{\hat v_t}`, so weights with large gradients are barely decayed;
    decoupling decays every weight at the same rate. As torch's, the decay is scaled by the
    learning rate :math:`\gamma` (the paper scales by the schedule multiplier
    :math:`\eta_t` only), and the default is ``weight_decay=1e-2``.

    Reference: Loshchilov & Hutter, "Decoupled weight decay regularization", ICLR 2019.

    Example (a zero gradient: only the decay acts, theta * (1 - lr * wd))::

        >>> import torch
        >>> from rnnopt.optim import AdamW
        >>> w = torch.tensor([1.0], requires_grad=True)
        >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
        >>> w.grad = torch.tensor([0.0]); opt.step()
        >>> print(w.detach())
        tensor([0.9500])
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[Group],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)

    loads_decoupled_weight_decay = True  # torch's Adam(decoupled_weight_decay=True) is AdamW

    def weight_decay(self, param: Tensor, grad: Tensor, group: Group) -> Tensor:
        """Decoupled: theta_{t-1} <- (1 - gamma lambda) theta_{t-1}; the gradient is untouched."""
        param.mul_(1 - group["lr"] * group["weight_decay"])
        return grad


OPTIMIZERS: dict[str, type[BaseOptimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
}


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """The class ``name`` stands for: a key of :data:`OPTIMIZERS`, or any torch optimizer given
    as ``'path/to/file.py:ClassName'`` or ``'package.module:ClassName'`` (it must subclass
    ``torch.optim.Optimizer`` and take ``params`` and ``lr``). A file path is read relative to
    the working directory, so the processes that run it must share it."""
    if isinstance(name, str) and name in OPTIMIZERS:
        return OPTIMIZERS[name]
    if not isinstance(name, str) or name.count(":") != 1:
        raise ValueError(
            f"Unknown optimizer: name={name!r} (valid names: {', '.join(OPTIMIZERS)}, or "
            "'path/to/file.py:ClassName' or 'package.module:ClassName' for your own)"
        )
    return _load_class(name)


@functools.cache
def _load_class(name: str) -> type[torch.optim.Optimizer]:
    import importlib
    import importlib.util
    from pathlib import Path

    where, _, attribute = name.partition(":")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ValueError(f"optimizer={name!r}: no file {where!r} (from {Path.cwd()})")
        spec = importlib.util.spec_from_file_location(f"rnnopt_user_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as err:
            raise ValueError(
                f"optimizer={name!r}: module {where!r} cannot be imported: {err}"
            ) from err
    cls = getattr(module, attribute, None)
    if cls is None:
        found = sorted(
            k
            for k, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, torch.optim.Optimizer)
        )
        raise ValueError(
            f"optimizer={name!r}: {where!r} has no {attribute!r}; optimizer "
            f"classes there: {', '.join(found) or 'none'}"
        )
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ValueError(
            f"optimizer={name!r}: {attribute!r} is not a torch.optim.Optimizer subclass"
        )
    taken = inspect.signature(cls).parameters
    if "params" not in taken or "lr" not in taken:
        raise ValueError(
            f"optimizer={name!r}: its constructor must take params and lr, "
            f"it takes {', '.join(taken)}"
        )
    return cls


def make_optimizer(
    name: str, params: Iterable[Tensor] | Iterable[Group], **hyper: Any
) -> torch.optim.Optimizer:
    """Build the optimizer ``name`` stands for (see :func:`optimizer_class`) on ``params``.

    Raises ValueError for an unknown name and TypeError for a hyperparameter the optimizer does
    not take; both messages list the valid choices.

    >>> import torch
    >>> opt = make_optimizer("adam", [torch.zeros(2, requires_grad=True)], lr=0.01)
    >>> type(opt).__name__, opt.param_groups[0]["lr"]
    ('Adam', 0.01)
    """
    cls = optimizer_class(name)
    valid = [p for p in inspect.signature(cls).parameters if p != "params"]
    for key in hyper:
        if key not in valid:
            raise TypeError(
                f"{cls.__name__} got an unknown hyperparameter {key}={hyper[key]!r} "
                f"(valid: {', '.join(valid)})"
            )
    return cls(params, **hyper)
