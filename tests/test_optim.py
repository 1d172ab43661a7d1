"""Specification of rnnopt.optim: drop-in, numerically identical replacements for torch.optim.

The reference is torch.optim's default for-loop implementation (``foreach=False``). Its own test
suite inspired several tests here: float64 agreement of parameters and every state tensor with
frozen parameters, state_dict round trips, a tiny-lr group that does not move, zero gradients
that do not move, and the goes-downhill test.
"""

from __future__ import annotations

import copy
import doctest
import importlib
import inspect
import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnopt import optim
from rnnopt.optim import OPTIMIZERS, SGD, Adam, AdamW, BaseOptimizer, Momentum, RMSprop

TORCH_CLASS = {
    SGD: torch.optim.SGD,
    Momentum: torch.optim.SGD,
    RMSprop: torch.optim.RMSprop,
    Adam: torch.optim.Adam,
    AdamW: torch.optim.AdamW,
}
RTOL = 1e-10
STEPS = 120


# ----------------------------------------------------------------------------------------------
# Helpers: parameters, gradients spanning 1e-3..1e3, and a side-by-side run against torch.


def make_params(seed: int = 0, dtype: torch.dtype = torch.float64, device: str = "cpu"):
    """A matrix, a vector and a 0-dim parameter."""
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (5,), ()]
    return [
        torch.tensor(rng.normal(size=shape), dtype=dtype, device=device, requires_grad=True)
        for shape in shapes
    ]


def clone_params(params):
    return [p.detach().clone().requires_grad_(True) for p in params]


def make_grads(params, steps: int, seed: int = 1, decades: float = 3):
    """Per step, per parameter: a random sign times 10**U(-decades, decades) per element, or
    None.

    Parameter 1 gets no gradient every 7th step; parameter 2 is frozen for steps 10..19.
    """
    rng = np.random.default_rng(seed)
    grads = []
    for step in range(steps):
        row = []
        for index, param in enumerate(params):
            shape = tuple(param.shape)
            sign = rng.choice([-1.0, 1.0], size=shape)
            grad = sign * 10.0 ** rng.uniform(-decades, decades, size=shape)
            frozen = (index == 1 and step % 7 == 3) or (index == 2 and 10 <= step < 20)
            row.append(None if frozen else np.asarray(grad))
        grads.append(row)
    return grads


def set_grads(params, row) -> None:
    for param, grad in zip(params, row, strict=True):
        param.grad = (
            None if grad is None else torch.tensor(grad, dtype=param.dtype, device=param.device)
        )


def step_both(ours, theirs, params, reference_params, row) -> None:
    """Give both optimizers the same gradients and take one step with each."""
    set_grads(params, row)
    set_grads(reference_params, row)
    ours.step()
    theirs.step()


def two_groups(params, override: dict):
    """Group 0: the matrix and the scalar at the defaults; group 1: the vector, overridden."""
    return [{"params": [params[0], params[2]]}, {"params": [params[1]], **override}]


def assert_same_state(ours, theirs, params_ours, params_theirs, rtol: float = RTOL) -> None:
    for p, q in zip(params_ours, params_theirs, strict=True):
        torch.testing.assert_close(p, q, rtol=rtol, atol=0)
        state, reference = ours.state.get(p, {}), theirs.state.get(q, {})
        assert state.keys() == reference.keys()
        for key in reference:
            assert state[key].device == reference[key].device, key
            torch.testing.assert_close(state[key], reference[key], rtol=rtol, atol=0)


def _torch_kwargs(cls, hyper):
    """torch's SGD needs Momentum's default momentum spelled out."""
    return {"momentum": 0.9, **hyper} if cls is Momentum else hyper


def rich_options(cls) -> dict:
    """Options that give an optimizer most of its state: momentum and weight decay, or AMSGrad."""
    if cls in (SGD, Momentum, RMSprop):
        return dict(momentum=0.9, weight_decay=0.1)
    return {"amsgrad": True}


def run_side_by_side(cls, hyper: dict, override: dict, steps: int = STEPS, seed: int = 0):
    params = make_params(seed)
    reference_params = clone_params(params)
    ours = cls(two_groups(params, override), **hyper)
    theirs = TORCH_CLASS[cls](two_groups(reference_params, override), **hyper, foreach=False)
    for row in make_grads(params, steps, seed + 1):
        step_both(ours, theirs, params, reference_params, row)
        assert_same_state(ours, theirs, params, reference_params)
    return ours, theirs


# ----------------------------------------------------------------------------------------------
# Numerically identical to torch.optim for every option combination.

SGD_OPTIONS = [
    dict(lr=0.01, momentum=m, dampening=d, nesterov=n, weight_decay=w, maximize=x)
    for m, d, n, w, x in itertools.product(
        [0.0, 0.9], [0.0, 0.5], [False, True], [0.0, 0.1], [False, True]
    )
    if not (n and (m == 0 or d != 0))
]
RMSPROP_OPTIONS = [
    dict(lr=0.01, centered=c, momentum=m, weight_decay=w, maximize=x)
    for c, m, w, x in itertools.product([False, True], [0.0, 0.9], [0.0, 0.1], [False, True])
]
ADAM_OPTIONS = [
    dict(lr=0.01, amsgrad=a, weight_decay=w, maximize=x)
    for a, w, x in itertools.product([False, True], [0.0, 0.1], [False, True])
]


@pytest.mark.parametrize("hyper", SGD_OPTIONS, ids=str)
def test_sgd_matches_torch_for_every_option(hyper):
    override = {"lr": 0.003, "momentum": 0.5 if hyper["momentum"] else 0.0}
    run_side_by_side(SGD, hyper, override)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_matches_torch_sgd_with_momentum(nesterov):
    run_side_by_side(Momentum, dict(lr=0.01, momentum=0.9, nesterov=nesterov), {"lr": 0.003})


@pytest.mark.parametrize("hyper", RMSPROP_OPTIONS, ids=str)
def test_rmsprop_matches_torch_for_every_option(hyper):
    run_side_by_side(RMSprop, hyper, {"lr": 0.001, "alpha": 0.9, "eps": 1e-6})


@pytest.mark.parametrize("cls", [Adam, AdamW])
@pytest.mark.parametrize("hyper", ADAM_OPTIONS, ids=str)
def test_adam_and_adamw_match_torch_for_every_option(cls, hyper):
    run_side_by_side(cls, hyper, {"lr": 0.001, "betas": (0.8, 0.99), "eps": 1e-6})


def test_state_keys_exist_exactly_when_torch_creates_them():
    p = make_params()[0]
    expected = {
        SGD: (dict(momentum=0.9), {"momentum_buffer"}),
        RMSprop: (
            dict(momentum=0.9, centered=True),
            {"step", "square_avg", "momentum_buffer", "grad_avg"},
        ),
        Adam: (dict(amsgrad=True), {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
    }
    for cls, (hyper, keys) in expected.items():
        opt = cls([p], **hyper)
        assert dict(opt.state.get(p, {})) == {}  # lazy: nothing before the first step
        p.grad = torch.ones_like(p)
        opt.step()
        assert set(opt.state[p]) == keys
        if "step" in keys:  # as torch keeps it: a 0-dim float32 tensor on the CPU
            step = opt.state[p]["step"]
            assert (step.shape, step.dtype, step.device.type) == ((), torch.float32, "cpu")
            assert step.item() == 1
    assert set(RMSprop([p]).state.get(p, {})) == set()
    plain = RMSprop([p])
    plain.step()
    assert set(plain.state[p]) == {"step", "square_avg"}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("cls", list(TORCH_CLASS))
def test_low_precision_dtypes_match_torch_and_keep_state_in_the_param_dtype(cls, dtype):
    params = make_params(dtype=dtype)
    reference_params = clone_params(params)
    hyper = dict(momentum=0.9) if cls in (SGD, RMSprop) else {}
    ours = cls(params, lr=1e-2, **hyper)
    theirs = TORCH_CLASS[cls](reference_params, lr=1e-2, **_torch_kwargs(cls, hyper), foreach=False)
    for row in make_grads(params, 10, decades=2):  # float16: |g|^2 must stay below 65504
        step_both(ours, theirs, params, reference_params, row)
    assert_same_state(ours, theirs, params, reference_params, rtol=0)
    for p in params:
        assert all(v.dtype == dtype for k, v in ours.state[p].items() if k != "step")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cls", list(TORCH_CLASS))
def test_cuda_parameters_match_torch_on_the_same_device(cls):
    params = make_params(device="cuda")
    reference_params = clone_params(params)
    hyper = rich_options(cls)
    ours = cls(two_groups(params, {"lr": 0.003}), lr=0.01, **hyper)
    theirs = TORCH_CLASS[cls](
        two_groups(reference_params, {"lr": 0.003}),
        lr=0.01,
        **_torch_kwargs(cls, hyper),
        foreach=False,
    )
    for row in make_grads(params, 30):
        step_both(ours, theirs, params, reference_params, row)
    assert_same_state(ours, theirs, params, reference_params)
    assert all(v.device.type == "cuda" for k, v in ours.state[params[0]].items() if k != "step")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cls", list(TORCH_CLASS))
@pytest.mark.filterwarnings("ignore:Synchronization debug mode is a prototype")
def test_cuda_step_never_waits_for_the_gpu(cls):
    params = make_params(dtype=torch.float32, device="cuda")
    hyper = rich_options(cls)
    opt = cls(params, lr=0.01, **hyper)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    torch.cuda.set_sync_debug_mode("error")  # any device-to-host synchronisation raises
    try:
        opt.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")


# ----------------------------------------------------------------------------------------------
# state_dict, param groups, closures, zero_grad and schedulers: the torch.optim API.

ROUND_TRIP = [
    (SGD, dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (Momentum, dict(lr=0.01, dampening=0.1)),
    (RMSprop, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)),
    (Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    (AdamW, dict(lr=0.01, amsgrad=True)),
]


def _resume(source_cls, target_cls, hyper, steps_before: int = 40, steps_after: int = 40):
    """Run ``source_cls`` uninterrupted, and resume a copy in ``target_cls`` from its state_dict
    after ``steps_before`` steps. Return both final (params, optimizer)."""
    params = make_params()
    grads = make_grads(params, steps_before + steps_after)
    source = source_cls(two_groups(params, {"lr": 0.003}), **hyper)
    for row in grads[:steps_before]:
        set_grads(params, row)
        source.step()
    saved = copy.deepcopy(source.state_dict())
    resumed_params = clone_params(params)
    resumed = target_cls(two_groups(resumed_params, {"lr": 0.003}), **hyper)
    resumed.load_state_dict(saved)
    for row in grads[steps_before:]:
        step_both(source, resumed, params, resumed_params, row)
    return params, source, resumed_params, resumed


@pytest.mark.parametrize(("cls", "hyper"), ROUND_TRIP, ids=lambda x: getattr(x, "__name__", ""))
def test_state_dict_round_trip_continues_identically(cls, hyper):
    params, source, resumed_params, resumed = _resume(cls, cls, hyper)
    for p, q in zip(params, resumed_params, strict=True):
        assert torch.equal(p, q)
    torch.testing.assert_close(source.state_dict(), resumed.state_dict(), rtol=0, atol=0)


@pytest.mark.parametrize("direction", ["rnnopt->torch", "torch->rnnopt"])
@pytest.mark.parametrize(("cls", "hyper"), ROUND_TRIP, ids=lambda x: getattr(x, "__name__", ""))
def test_state_dict_moves_between_rnnopt_and_torch(cls, hyper, direction):
    hyper = _torch_kwargs(cls, hyper)

    def torch_cls(params, **kw):
        return TORCH_CLASS[cls](params, **kw, foreach=False)

    source, target = (cls, torch_cls) if direction == "rnnopt->torch" else (torch_cls, cls)
    params, source_opt, resumed_params, resumed_opt = _resume(source, target, hyper)
    theirs, ours = (resumed_opt, source_opt) if source is cls else (source_opt, resumed_opt)
    their_params, our_params = (
        (resumed_params, params) if source is cls else (params, resumed_params)
    )
    assert_same_state(ours, theirs, our_params, their_params)


def test_add_param_group_later_matches_torch():
    params = make_params()
    reference_params = clone_params(params)
    ours = Adam(params[:2], lr=0.01)
    theirs = torch.optim.Adam(reference_params[:2], lr=0.01, foreach=False)
    for step, row in enumerate(make_grads(params, 30)):
        if step == 10:
            ours.add_param_group({"params": [params[2]], "lr": 0.1, "amsgrad": True})
            theirs.add_param_group({"params": [reference_params[2]], "lr": 0.1, "amsgrad": True})
        step_both(ours, theirs, params, reference_params, row)
    assert ours.param_groups[1]["betas"] == (0.9, 0.999)  # defaults fill the new group
    assert_same_state(ours, theirs, params, reference_params)


def test_step_returns_the_closure_loss_and_evaluates_it_with_grad_enabled():
    w = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    with torch.no_grad():  # step must switch grad on for the closure all the same
        loss = opt.step(closure)
    assert loss.item() == 3.0
    torch.testing.assert_close(w.detach(), torch.full((3,), 0.8, dtype=torch.float64))


def test_step_does_not_record_autograd_history():
    w = torch.ones(3, requires_grad=True)
    opt = Adam([w])
    w.grad = torch.ones(3)
    opt.step()
    assert w.grad_fn is None and opt.state[w]["exp_avg"].grad_fn is None


@pytest.mark.parametrize("cls", list(TORCH_CLASS))
def test_parameter_without_gradient_neither_moves_nor_advances_its_state(cls):
    a, b = make_params()[:2]
    opt = cls([a, b], lr=0.1, weight_decay=0.1)
    a.grad, b.grad = torch.ones_like(a), torch.ones_like(b)
    opt.step()
    before, state_before = b.detach().clone(), copy.deepcopy(opt.state[b])
    opt.zero_grad()  # set_to_none=True: b.grad is None
    a.grad = torch.ones_like(a)
    opt.step()
    assert torch.equal(b, before)
    assert state_before.keys() == opt.state[b].keys()
    assert all(torch.equal(opt.state[b][k], v) for k, v in state_before.items())


def test_step_lr_scheduler_drives_our_lr_as_it_drives_torch():
    params = make_params()
    reference_params = clone_params(params)
    ours = SGD(params, lr=0.1, momentum=0.9)
    theirs = torch.optim.SGD(reference_params, lr=0.1, momentum=0.9, foreach=False)
    schedulers = [
        torch.optim.lr_scheduler.StepLR(o, step_size=10, gamma=0.5) for o in (ours, theirs)
    ]
    for row in make_grads(params, 35):
        step_both(ours, theirs, params, reference_params, row)
        for scheduler in schedulers:
            scheduler.step()
    assert ours.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)
    assert_same_state(ours, theirs, params, reference_params)


@pytest.mark.parametrize(("cls", "hyper"), [(Adam, {}), (AdamW, {}), (SGD, {"momentum": 0.9})])
def test_one_cycle_lr_cycles_betas_or_momentum_as_in_torch(cls, hyper):
    params = make_params()
    reference_params = clone_params(params)
    ours = cls(params, **hyper)
    theirs = TORCH_CLASS[cls](reference_params, **hyper, foreach=False)
    schedulers = [
        torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.01, total_steps=40, cycle_momentum=True)
        for o in (ours, theirs)
    ]
    seen = set()
    for row in make_grads(params, 40):
        step_both(ours, theirs, params, reference_params, row)
        for scheduler in schedulers:
            scheduler.step()
        group, reference = ours.param_groups[0], theirs.param_groups[0]
        seen.add(group["betas"][0] if "betas" in group else group["momentum"])
        for key in group.keys() - {"params"}:
            assert group[key] == reference[key], key
    assert len(seen) > 10  # the momentum term really was cycled
    assert_same_state(ours, theirs, params, reference_params)


# ----------------------------------------------------------------------------------------------
# Behaviour, after torch's own optimizer tests and the worked examples of references.md.


def _default_hyper(cls):
    return {"weight_decay": 0.0} if cls is AdamW else {}


@pytest.mark.parametrize("cls", list(TORCH_CLASS))
def test_param_group_with_tiny_lr_does_not_move(cls):
    params = make_params()
    frozen_before = params[1].detach().clone()
    opt = cls(
        [{"params": [params[0]], "lr": 0.01}, {"params": [params[1]], "lr": 1e-28}],
        **_default_hyper(cls),
    )
    rng = np.random.default_rng(0)
    for _ in range(10):
        set_grads(params[:2], [rng.normal(size=tuple(p.shape)) for p in params[:2]])
        opt.step()
    assert torch.equal(params[1], frozen_before)


@pytest.mark.parametrize("cls", list(TORCH_CLASS))
def test_zero_gradients_without_weight_decay_do_not_move(cls):
    params = make_params()
    before = [p.detach().clone() for p in params]
    opt = cls(params, lr=0.1, **_default_hyper(cls))
    for _ in range(5):
        for p in params:
            p.grad = torch.zeros_like(p)
        opt.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before, strict=True))


def _downhill_problem():
    rng = np.random.default_rng(0)
    weight = torch.tensor(rng.normal(size=(5, 3)), requires_grad=True)
    bias = torch.tensor(rng.normal(size=5), requires_grad=True)
    x = torch.tensor(rng.normal(size=3))
    return [weight, bias], lambda: ((weight @ x + bias) ** 2).sum()


@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("cls", list(TORCH_CLASS))
def test_twenty_steps_go_downhill_or_uphill_with_maximize(cls, maximize):
    params, loss_fn = _downhill_problem()
    opt = cls(params, lr=1e-3, maximize=maximize)
    initial = loss_fn().item()
    for _ in range(20):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    final = loss_fn().item()
    assert (final > initial) if maximize else (final < initial)


def test_sgd_momentum_worked_example_from_references():
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = SGD([w], lr=0.1, momentum=0.9, dampening=0.5)
    for grad, buffer, value in [(2.0, 2.0, 0.8), (3.0, 3.3, 0.47)]:
        w.grad = torch.tensor([grad], dtype=torch.float64)
        opt.step()
        assert opt.state[w]["momentum_buffer"].item() == pytest.approx(buffer, rel=1e-12)
        assert w.item() == pytest.approx(value, rel=1e-12)


def test_adam_first_step_is_lr_even_for_a_large_gradient():
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = Adam([w], lr=1e-3)
    w.grad = torch.tensor([123.0], dtype=torch.float64)
    opt.step()
    assert w.item() == pytest.approx(0.999, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(exponent=st.floats(-3, 3), sign=st.sampled_from([-1.0, 1.0]))
def test_adam_first_step_has_size_lr_whatever_the_gradient_scale(exponent, sign):
    w = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    opt = Adam([w], lr=1e-3)
    w.grad = torch.tensor([sign * 10.0**exponent], dtype=torch.float64)
    opt.step()
    assert w.item() == pytest.approx(-sign * 1e-3, rel=1e-4)  # eps=1e-8 against |g| >= 1e-3


@settings(max_examples=30, deadline=None)
@given(exponent=st.floats(-3, 3), seed=st.integers(0, 2**16))
def test_adam_steps_are_invariant_to_rescaling_the_gradients(exponent, seed):
    rng = np.random.default_rng(seed)
    grads = rng.normal(size=(5, 4))
    trajectories = []
    for scale in (1.0, 10.0**exponent):
        w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
        opt = Adam([w], lr=1e-2, eps=1e-300)  # eps is the only scale Adam knows: ~none
        for g in grads:
            w.grad = torch.tensor(scale * g)
            opt.step()
        trajectories.append(w.detach())
    torch.testing.assert_close(trajectories[1], trajectories[0], rtol=1e-9, atol=0)


@settings(max_examples=30, deadline=None)
@given(alpha=st.floats(0.5, 0.999), exponent=st.floats(-3, 3))
def test_rmsprop_first_step_is_lr_over_sqrt_one_minus_alpha(alpha, exponent):
    w = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    # No bias correction: v_1 = (1-alpha) g^2; eps negligible (it must be > 0).
    opt = RMSprop([w], lr=1e-2, alpha=alpha, eps=1e-300)
    w.grad = torch.tensor([10.0**exponent], dtype=torch.float64)
    opt.step()
    assert -w.item() == pytest.approx(1e-2 / math.sqrt(1 - alpha), rel=1e-12)


def test_rmsprop_first_step_at_the_defaults_is_ten_times_lr():
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = RMSprop([w], lr=1e-2)
    w.grad = torch.tensor([123.0], dtype=torch.float64)
    opt.step()
    assert w.item() == pytest.approx(1 - 10 * 1e-2, abs=1e-9)


def test_adamw_decays_the_parameter_without_touching_the_moments():
    w = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    opt = AdamW([w], lr=0.1, weight_decay=0.5)
    w.grad = torch.tensor([0.0], dtype=torch.float64)
    opt.step()
    assert w.item() == pytest.approx(2.0 * (1 - 0.1 * 0.5), rel=1e-12)
    assert opt.state[w]["exp_avg"].item() == 0 and opt.state[w]["exp_avg_sq"].item() == 0


# ----------------------------------------------------------------------------------------------
# Written from scratch, on one base class, with torch's constructor signatures.


def test_every_optimizer_is_a_torch_optimizer_on_the_shared_base():
    for cls in OPTIMIZERS.values():
        assert issubclass(cls, BaseOptimizer) and issubclass(cls, torch.optim.Optimizer)


def test_registry_names_the_five_optimizers():
    assert OPTIMIZERS == {
        "sgd": SGD,
        "momentum": Momentum,
        "rmsprop": RMSprop,
        "adam": Adam,
        "adamw": AdamW,
    }


@pytest.mark.parametrize("cls", list(TORCH_CLASS))
def test_constructor_arguments_and_defaults_match_torch(cls):
    ours = inspect.signature(cls).parameters
    theirs = inspect.signature(TORCH_CLASS[cls]).parameters
    for name, parameter in ours.items():
        assert name in theirs, name
        assert parameter.kind == theirs[name].kind, name
        expected = 0.9 if (cls is Momentum and name == "momentum") else theirs[name].default
        assert parameter.default == expected, name


def test_momentum_is_sgd_with_momentum_point_nine():
    opt = Momentum([torch.zeros(1, requires_grad=True)])
    assert isinstance(opt, SGD) and opt.defaults["momentum"] == 0.9


@pytest.mark.parametrize("cls", list(TORCH_CLASS))
def test_updates_do_not_call_torch_optim_update_functions(cls, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("called torch.optim's update function")

    for module, name in [
        ("sgd", "sgd"),
        ("sgd", "_single_tensor_sgd"),
        ("rmsprop", "rmsprop"),
        ("rmsprop", "_single_tensor_rmsprop"),
        ("adam", "adam"),
        ("adam", "_single_tensor_adam"),
        ("adamw", "adamw"),
    ]:
        target = importlib.import_module(f"torch.optim.{module}")
        if hasattr(target, name):
            monkeypatch.setattr(target, name, forbidden)
    w = torch.ones(2, requires_grad=True)
    opt = cls([w], lr=0.1)
    w.grad = torch.ones(2)
    opt.step()
    assert not torch.equal(w, torch.ones(2))


def test_docstring_examples_run():
    result = doctest.testmod(optim, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 6 and result.failed == 0


# ----------------------------------------------------------------------------------------------
# make_optimizer


def test_make_optimizer_builds_the_named_optimizer_with_its_hyperparameters():
    opt = optim.make_optimizer(
        "rmsprop", [torch.zeros(2, requires_grad=True)], lr=0.05, centered=True
    )
    assert type(opt) is RMSprop
    assert opt.param_groups[0]["lr"] == 0.05 and opt.param_groups[0]["centered"] is True


def test_make_optimizer_rejects_an_unknown_name_listing_the_valid_ones():
    with pytest.raises(ValueError, match="name='adagrad'") as error:
        optim.make_optimizer("adagrad", [torch.zeros(1, requires_grad=True)])
    assert all(name in str(error.value) for name in OPTIMIZERS)


def test_make_optimizer_rejects_an_unknown_hyperparameter_listing_the_valid_ones():
    with pytest.raises(TypeError, match="betas") as error:
        optim.make_optimizer("sgd", [torch.zeros(1, requires_grad=True)], betas=(0.9, 0.99))
    message = str(error.value)
    assert "SGD" in message
    assert all(name in message for name in ("lr", "momentum", "dampening", "nesterov"))


# ----------------------------------------------------------------------------------------------
# Bad input: a ValueError/TypeError naming the parameter and the value, keeping torch's wording.

NAN, INF = float("nan"), float("inf")


def _p():
    return torch.zeros(2, requires_grad=True)


def _bad_hyperparameter_cases():
    cases = []
    for cls in TORCH_CLASS:
        for lr in (-0.1, NAN, INF):
            cases.append((cls, {"lr": lr}, ValueError, "Invalid learning rate", f"lr={lr!r}"))
        for wd in (-0.1, NAN):
            cases.append(
                (
                    cls,
                    {"weight_decay": wd},
                    ValueError,
                    "Invalid weight_decay value",
                    f"weight_decay={wd!r}",
                )
            )
        cases.append((cls, {"lr": "0.1"}, TypeError, "Invalid learning rate", "lr='0.1'"))
        cases.append((cls, {"maximize": "yes"}, TypeError, "maximize", "'yes'"))
    for cls in (SGD, Momentum, RMSprop):
        for momentum in (-0.5, NAN):
            cases.append(
                (
                    cls,
                    {"momentum": momentum},
                    ValueError,
                    "Invalid momentum value",
                    f"momentum={momentum!r}",
                )
            )
    for cls in (SGD, Momentum):
        for dampening in (-0.5, INF):
            cases.append(
                (
                    cls,
                    {"dampening": dampening},
                    ValueError,
                    "Invalid dampening value",
                    f"dampening={dampening!r}",
                )
            )
        cases.append((cls, {"nesterov": "yes"}, TypeError, "nesterov", "'yes'"))
    for cls in (RMSprop, Adam, AdamW):
        for eps in (-1e-8, NAN):
            cases.append((cls, {"eps": eps}, ValueError, "Invalid epsilon value", f"eps={eps!r}"))
    for alpha in (-0.1, NAN, 1.5):
        cases.append(
            (RMSprop, {"alpha": alpha}, ValueError, "Invalid alpha value", f"alpha={alpha!r}")
        )
    cases.append((RMSprop, {"centered": 1}, TypeError, "centered", "centered=1"))
    for cls in (Adam, AdamW):
        for index, betas in [
            (0, (1.0, 0.999)),
            (0, (-0.1, 0.999)),
            (1, (0.9, 1.0)),
            (1, (0.9, NAN)),
            (0, (INF, 0.999)),
        ]:
            cases.append(
                (
                    cls,
                    {"betas": betas},
                    ValueError,
                    f"Invalid beta parameter at index {index}",
                    f"betas[{index}]={betas[index]!r}",
                )
            )
        cases.append((cls, {"betas": (0.9,)}, TypeError, "betas", "(0.9,)"))
        cases.append((cls, {"amsgrad": None}, TypeError, "amsgrad", "None"))
    return cases


@pytest.mark.parametrize(
    ("cls", "hyper", "error", "start", "named"),
    _bad_hyperparameter_cases(),
    ids=lambda x: getattr(x, "__name__", str(x)),
)
def test_invalid_hyperparameter_raises_naming_it_and_its_value(cls, hyper, error, start, named):
    with pytest.raises(error) as raised:
        cls([_p()], **hyper)
    message = str(raised.value)
    assert message.startswith(start) and named in message


@pytest.mark.parametrize("hyper", [{"momentum": 0.0}, {"momentum": 0.9, "dampening": 0.1}])
def test_nesterov_without_momentum_or_with_dampening_raises(hyper):
    with pytest.raises(
        ValueError, match="Nesterov momentum requires a momentum and zero dampening"
    ) as raised:
        SGD([_p()], nesterov=True, **hyper)
    assert f"momentum={hyper['momentum']!r}" in str(raised.value)


def test_per_group_override_is_validated_and_names_the_group():
    with pytest.raises(ValueError, match=r"Invalid learning rate: lr=-1 in param group 1"):
        SGD([{"params": [_p()]}, {"params": [_p()], "lr": -1}], lr=0.1)


def test_per_group_override_that_breaks_nesterov_is_rejected():
    with pytest.raises(ValueError, match="Nesterov .* in param group 0"):
        SGD([{"params": [_p()], "momentum": 0.0}], momentum=0.9, nesterov=True)


def test_add_param_group_validates_and_leaves_the_optimizer_unchanged_on_error():
    opt = Adam([_p()])
    with pytest.raises(ValueError, match=r"Invalid beta parameter at index 1: betas\[1\]=1.5"):
        opt.add_param_group({"params": [_p()], "betas": (0.9, 1.5)})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("cls", list(TORCH_CLASS))
def test_empty_parameter_list_raises(cls):
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        cls([])


@pytest.mark.parametrize("cls", list(TORCH_CLASS))
def test_bare_tensor_as_params_raises_type_error(cls):
    with pytest.raises(TypeError, match="params argument .* single Tensor of shape \\(2,\\)"):
        cls(_p())


@pytest.mark.parametrize("cls", list(TORCH_CLASS))
def test_parameter_in_two_groups_raises_naming_both_groups(cls):
    shared = _p()
    with pytest.raises(
        ValueError,
        match="some parameters appear in more than one parameter "
        "group.*param group 0 and in param group 1",
    ):
        cls([{"params": [shared]}, {"params": [_p(), shared]}])


@pytest.mark.parametrize("cls", list(TORCH_CLASS))
def test_sparse_gradient_is_rejected_at_the_first_step_naming_the_optimizer(cls):
    dense, sparse = _p(), _p()
    opt = cls([dense, sparse])
    dense.grad = torch.ones(2)
    sparse.grad = torch.ones(2).to_sparse()
    with pytest.raises(
        TypeError,
        match=f"{cls.__name__} does not support sparse gradients: parameter 1 of param group 0",
    ):
        opt.step()


def test_complex_parameter_is_rejected_at_construction_rather_than_mishandled():
    w = torch.zeros(2, dtype=torch.complex64, requires_grad=True)
    with pytest.raises(
        TypeError,
        match="Adam does not support complex parameters: parameter 1 "
        "of param group 0 has dtype torch.complex64",
    ):
        Adam([_p(), w])


# ----------------------------------------------------------------------------------------------
# Memory: what a step allocates.


class _FreshTensors(torch.utils._python_dispatch.TorchDispatchMode):
    """Counts the tensors of ``numel`` elements that operations allocate (not views, not
    in-place results)."""

    def __init__(self, numel):
        super().__init__()
        self.numel, self.count = numel, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        inputs = [a for a in [*args, *(kwargs or {}).values()] if isinstance(a, torch.Tensor)]
        storages = {a.untyped_storage().data_ptr() for a in inputs}
        outputs = result if isinstance(result, (tuple, list)) else [result]
        self.count += sum(
            isinstance(out, torch.Tensor)
            and out.numel() == self.numel
            and out.untyped_storage().data_ptr() not in storages
            for out in outputs
        )
        return result


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_step_allocates_at_most_one_parameter_sized_temporary(name):
    # Two full-size temporaries freed together leave glibc more free memory at the top of its
    # heap than its trim threshold: it hands them back to the OS, and every step page-faults
    # them in again (Adam was 2.3x slower than torch for that at 10M parameters).
    param = torch.ones(1000, requires_grad=True)
    param.grad = torch.full((1000,), 0.5)
    opt = OPTIMIZERS[name]([param])
    opt.step()  # the state is created once, not per step
    with _FreshTensors(param.numel()) as fresh:
        opt.step()
    assert fresh.count <= 1
