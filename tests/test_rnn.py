"""Specification of rnnopt.rnn.

ElmanRNN is a drop-in torch.nn.RNN: same parameters, initialisation, shapes, outputs and
gradients (its backward is the hand-written BPTT of ElmanLayerFunction). With
track_hidden_grads it records ‖∂L/∂h_t‖ per layer and step. SequenceModel puts a linear readout
on an Elman, LSTM or GRU core.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from rnnopt.rnn import ElmanLayerFunction, ElmanRNN, SequenceModel, bptt_reference

F64 = torch.float64


def randn(rng: np.random.Generator, *shape: int, dtype=F64, requires_grad=False):
    tensor = torch.from_numpy(rng.standard_normal(shape)).to(dtype)
    return tensor.requires_grad_(requires_grad)


def assert_rel_close(actual: torch.Tensor, expected: torch.Tensor, rel: float) -> None:
    """max |actual − expected| ≤ rel · max |expected| (relative to the tensor's scale)."""
    assert actual.shape == expected.shape
    scale = expected.abs().max().item()
    error = (actual - expected).abs().max().item()
    assert error <= rel * scale, f"max error {error:.3g} > {rel} × scale {scale:.3g}"


def twin_rnns(seed=0, *, input_size=3, hidden_size=5, dtype=F64, **options):
    """An nn.RNN and an ElmanRNN holding the same weights (loaded through state_dict)."""
    torch.manual_seed(seed)
    reference = nn.RNN(input_size, hidden_size, dtype=dtype, **options)
    ours = ElmanRNN(input_size, hidden_size, dtype=dtype, **options)
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def run_and_backward(module, x, hx, grad_from, rng_seed):
    """Forward, then backward a random linear loss on output / h_n / both; returns
    output, h_n and the gradients of input, hx and every parameter."""
    x = x.detach().clone().requires_grad_(True)
    hx = None if hx is None else hx.detach().clone().requires_grad_(True)
    output, h_n = module(x, hx)
    rng = np.random.default_rng(rng_seed)
    loss = 0
    if grad_from in ("output", "both"):
        loss = loss + (output * randn(rng, *output.shape, dtype=output.dtype).to(x.device)).sum()
    if grad_from in ("h_n", "both"):
        loss = loss + (h_n * randn(rng, *h_n.shape, dtype=h_n.dtype).to(x.device)).sum()
    loss.backward()
    grads = [x.grad] + ([] if hx is None else [hx.grad])
    grads += [p.grad for p in module.parameters()]
    return [output.detach(), h_n.detach()] + grads


# --- construction, parameters, initialisation -------------------------------------------------


@pytest.mark.parametrize("num_layers,bias", [(1, True), (2, True), (3, False)])
def test_parameter_names_and_shapes_match_nn_rnn(num_layers, bias):
    reference = nn.RNN(3, 5, num_layers, bias=bias)
    ours = ElmanRNN(3, 5, num_layers, bias=bias)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [
        (n, p.shape) for n, p in reference.named_parameters()
    ]


def test_same_seed_gives_the_same_initial_weights_as_nn_rnn():
    torch.manual_seed(7)
    reference = nn.RNN(4, 6, 2)
    torch.manual_seed(7)
    ours = ElmanRNN(4, 6, 2)
    for (name, p), q in zip(ours.named_parameters(), reference.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_initial_weights_fill_the_uniform_range_of_one_over_sqrt_hidden():
    ours = ElmanRNN(8, 100)
    bound = 1 / 100**0.5
    for name, param in ours.named_parameters():
        assert param.abs().max() <= bound, name
        assert param.abs().max() > 0.9 * bound, name


def test_dtype_and_device_arguments_are_passed_to_the_parameters():
    ours = ElmanRNN(2, 3, dtype=F64, device="cpu")
    assert all(p.dtype == F64 and p.device.type == "cpu" for p in ours.parameters())


def test_load_state_dict_from_nn_rnn_is_strict_compatible():
    reference = nn.RNN(3, 4, 2, nonlinearity="relu", bias=False)
    ours = ElmanRNN(3, 4, 2, nonlinearity="relu", bias=False)
    result = ours.load_state_dict(reference.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys


@pytest.mark.parametrize("options", [{}, {"num_layers": 2, "bias": False, "batch_first": True}])
def test_repr_matches_nn_rnn(options):
    assert repr(ElmanRNN(2, 3, **options)) == repr(nn.RNN(2, 3, **options)).replace(
        "RNN(", "ElmanRNN(", 1
    )


def test_repr_shows_a_relu_nonlinearity_and_tracking():
    text = repr(ElmanRNN(2, 3, nonlinearity="relu", track_hidden_grads=True))
    assert "nonlinearity='relu'" in text and "track_hidden_grads=True" in text


# --- bad arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,value", [("dropout", 0.5), ("bidirectional", True), ("proj_size", 2)]
)
def test_options_nn_rnn_has_but_we_lack_raise_naming_parameter_and_value(name, value):
    with pytest.raises(ValueError, match=f"{name}={value!r}"):
        ElmanRNN(3, 5, num_layers=2, **{name: value})


def test_unknown_nonlinearity_raises_listing_the_choices():
    with pytest.raises(ValueError, match="^nonlinearity='sigmoid' is invalid: .*'tanh', 'relu'$"):
        ElmanRNN(3, 5, nonlinearity="sigmoid")


@pytest.mark.parametrize("name", ["input_size", "hidden_size", "num_layers"])
def test_non_positive_sizes_raise_value_error(name):
    sizes = {"input_size": 3, "hidden_size": 5, "num_layers": 1, name: 0}
    with pytest.raises(ValueError, match=f"{name}=0"):
        ElmanRNN(**sizes)


def test_non_integer_size_raises_type_error():
    with pytest.raises(TypeError, match="hidden_size.*float"):
        ElmanRNN(3, 5.0)


def test_input_with_wrong_number_of_dimensions_raises_naming_its_shape():
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 5\)"):
        ElmanRNN(5, 4)(torch.zeros(2, 3, 4, 5))


def test_input_with_wrong_feature_size_raises_naming_shape_and_input_size():
    with pytest.raises(ValueError, match=r"\(7, 2, 4\).*input_size=3"):
        ElmanRNN(3, 5)(torch.zeros(7, 2, 4))


def test_hx_with_wrong_shape_raises_naming_expected_and_actual_shapes():
    with pytest.raises(ValueError, match=r"\(2, 4, 5\), got \(2, 3, 5\)"):
        ElmanRNN(3, 5, 2)(torch.zeros(7, 4, 3), torch.zeros(2, 3, 5))


def test_unbatched_hx_with_wrong_shape_raises_naming_expected_and_actual_shapes():
    with pytest.raises(ValueError, match=r"\(1, 5\), got \(1, 6\)"):
        ElmanRNN(3, 5)(torch.zeros(7, 3), torch.zeros(1, 6))


def test_hx_with_wrong_number_of_dimensions_raises():
    with pytest.raises(ValueError, match=r"hx.*\(4, 5\)"):
        ElmanRNN(3, 5)(torch.zeros(7, 4, 3), torch.zeros(4, 5))


def test_input_dtype_different_from_weights_raises():
    with pytest.raises(ValueError, match="float64.*float32"):
        ElmanRNN(3, 5)(torch.zeros(7, 4, 3, dtype=F64))


# --- forward and gradients agree with nn.RNN --------------------------------------------------

GRADIENT_CASES = list(
    itertools.product(
        ["tanh", "relu"],
        [1, 2],
        [False, True],
        [True, False],
        [True, False],
        ["output", "h_n", "both"],
    )
)


@pytest.mark.parametrize(
    "nonlinearity,num_layers,batch_first,bias,with_hx,grad_from", GRADIENT_CASES
)
def test_outputs_and_gradients_match_nn_rnn_in_float64(
    nonlinearity, num_layers, batch_first, bias, with_hx, grad_from
):
    reference, ours = twin_rnns(
        nonlinearity=nonlinearity, num_layers=num_layers, batch_first=batch_first, bias=bias
    )
    rng = np.random.default_rng(1)
    seq_len, batch = 6, 4
    x = randn(rng, *((batch, seq_len, 3) if batch_first else (seq_len, batch, 3)))
    hx = randn(rng, num_layers, batch, 5) if with_hx else None
    expected = run_and_backward(reference, x, hx, grad_from, rng_seed=2)
    actual = run_and_backward(ours, x, hx, grad_from, rng_seed=2)
    for a, e in zip(actual, expected, strict=True):
        assert_rel_close(a, e, 1e-10)


@pytest.mark.parametrize("nonlinearity,num_layers", [("tanh", 1), ("tanh", 2), ("relu", 2)])
def test_outputs_and_gradients_match_nn_rnn_in_float32(nonlinearity, num_layers):
    reference, ours = twin_rnns(
        nonlinearity=nonlinearity,
        num_layers=num_layers,
        input_size=2,
        hidden_size=32,
        dtype=torch.float32,
    )
    rng = np.random.default_rng(3)
    x = randn(rng, 50, 16, 2, dtype=torch.float32)
    hx = randn(rng, num_layers, 16, 32, dtype=torch.float32)
    expected = run_and_backward(reference, x, hx, "both", rng_seed=4)
    actual = run_and_backward(ours, x, hx, "both", rng_seed=4)
    for a, e in zip(actual, expected, strict=True):
        assert_rel_close(a, e, 1e-5)


@pytest.mark.parametrize("batch_first,with_hx", [(False, True), (True, True), (False, False)])
def test_unbatched_input_matches_nn_rnn(batch_first, with_hx):
    reference, ours = twin_rnns(num_layers=2, batch_first=batch_first)
    rng = np.random.default_rng(5)
    x = randn(rng, 6, 3)
    hx = randn(rng, 2, 5) if with_hx else None
    expected = run_and_backward(reference, x, hx, "both", rng_seed=6)
    actual = run_and_backward(ours, x, hx, "both", rng_seed=6)
    assert actual[0].shape == (6, 5) and actual[1].shape == (2, 5)
    for a, e in zip(actual, expected, strict=True):
        assert_rel_close(a, e, 1e-10)


def test_forward_without_grad_matches_nn_rnn():
    reference, ours = twin_rnns(num_layers=2)
    x = randn(np.random.default_rng(7), 6, 4, 3)
    with torch.no_grad():
        for a, e in zip(ours(x), reference(x), strict=True):
            assert_rel_close(a, e, 1e-12)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_layer_function_passes_gradcheck(nonlinearity, bias):
    rng = np.random.default_rng(8)
    x, h0 = randn(rng, 4, 3, 2, requires_grad=True), randn(rng, 3, 3, requires_grad=True)
    weight_ih, weight_hh = (
        randn(rng, 3, 2, requires_grad=True),
        randn(rng, 3, 3, requires_grad=True),
    )
    biases = (
        (randn(rng, 3, requires_grad=True), randn(rng, 3, requires_grad=True))
        if bias
        else (None, None)
    )
    assert torch.autograd.gradcheck(
        lambda *args: ElmanLayerFunction.apply(*args, nonlinearity, None),
        (x, h0, weight_ih, weight_hh, *biases),
    )


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("upstream", ["outputs and h_n", "outputs only", "h_n only"])
def test_reference_bptt_gives_the_layer_functions_gradients_and_hidden_grad_norms(
    nonlinearity, upstream
):
    rng = np.random.default_rng(12)
    x, h0 = randn(rng, 7, 3, 2, requires_grad=True), randn(rng, 3, 4, requires_grad=True)
    weights = [randn(rng, *shape, requires_grad=True) for shape in ((4, 2), (4, 4), (4,), (4,))]
    norms = torch.full((7,), float("nan"), dtype=F64)
    hidden, h_last = ElmanLayerFunction.apply(x, h0, *weights, nonlinearity, norms)
    grad_hidden, grad_last = randn(rng, 7, 3, 4), randn(rng, 3, 4)
    loss = 0  # a term left out reaches the backward as a gradient of None
    if upstream != "h_n only":
        loss = loss + (hidden * grad_hidden).sum()
    else:
        grad_hidden = torch.zeros_like(grad_hidden)
    if upstream != "outputs only":
        loss = loss + (h_last * grad_last).sum()
    else:
        grad_last = torch.zeros_like(grad_last)
    expected = torch.autograd.grad(loss, [x, h0, *weights])

    g = grad_hidden.clone()
    g[-1] += grad_last  # ∂L/∂h_n joins g_{T−1}
    *actual, deltas = bptt_reference(
        x.detach(),
        h0.detach(),
        weights[0].detach(),
        weights[1].detach(),
        hidden.detach(),
        g,
        nonlinearity,
    )
    for got, want in zip([*actual, actual[-1]], expected, strict=True):
        assert_rel_close(got, want, 1e-12)
    assert_rel_close(torch.linalg.vector_norm(deltas, dim=(1, 2)), norms, 1e-12)


def test_two_layer_module_passes_gradcheck():
    ours = ElmanRNN(2, 3, 2, batch_first=True, dtype=F64)
    names = [name for name, _ in ours.named_parameters()]
    rng = np.random.default_rng(9)
    x, hx = randn(rng, 2, 4, 2, requires_grad=True), randn(rng, 2, 2, 3, requires_grad=True)
    params = [p.detach().clone().requires_grad_(True) for p in ours.parameters()]

    def run(x, hx, *params):
        return torch.func.functional_call(ours, dict(zip(names, params, strict=True)), (x, hx))

    assert torch.autograd.gradcheck(run, (x, hx, *params))


def test_backward_is_one_graph_node_per_layer_not_one_per_step():
    def graph_size(seq_len):
        output, _ = ElmanRNN(2, 3, 2)(torch.randn(seq_len, 1, 2))
        seen, stack = set(), [output.grad_fn]
        while stack:
            node = stack.pop()
            if node is not None and node not in seen:
                seen.add(node)
                stack.extend(next_node for next_node, _ in node.next_functions)
        return len(seen), sum("ElmanLayerFunction" in type(n).__name__ for n in seen)

    assert graph_size(3) == graph_size(40)
    assert graph_size(3)[1] == 2


def test_weight_gradients_accumulate_over_two_backward_passes():
    _, ours = twin_rnns()
    x = randn(np.random.default_rng(10), 6, 4, 3)
    ours(x)[0].sum().backward()
    once = [p.grad.clone() for p in ours.parameters()]
    ours(x)[0].sum().backward()
    for param, grad in zip(ours.parameters(), once, strict=True):
        assert_rel_close(param.grad, 2 * grad, 1e-12)


def test_the_two_bias_gradients_are_separate_tensors():
    ours = ElmanRNN(3, 5)
    ours(torch.randn(6, 4, 3))[0].sum().backward()
    assert torch.equal(ours.bias_ih_l0.grad, ours.bias_hh_l0.grad)
    ours.bias_ih_l0.grad.mul_(0.5)  # e.g. gradient clipping, one parameter at a time
    assert not torch.equal(ours.bias_ih_l0.grad, ours.bias_hh_l0.grad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype,rel", [(F64, 1e-10), (torch.float32, 1e-5)])
def test_cuda_outputs_and_gradients_match_nn_rnn_on_cpu(dtype, rel):
    reference, ours = twin_rnns(
        num_layers=2, batch_first=True, dtype=dtype, input_size=2, hidden_size=32
    )
    ours.cuda().track_hidden_grads = True
    rng = np.random.default_rng(11)
    x, hx = randn(rng, 8, 20, 2, dtype=dtype), randn(rng, 2, 8, 32, dtype=dtype)
    expected = run_and_backward(reference, x, hx, "both", rng_seed=12)
    actual = run_and_backward(ours, x.cuda(), hx.cuda(), "both", rng_seed=12)
    for a, e in zip(actual, expected, strict=True):
        assert a.device.type == "cuda"
        assert_rel_close(a.cpu(), e, rel)
    norms = ours.hidden_grad_norms
    assert norms.device.type == "cpu" and norms.shape == (2, 20) and torch.isfinite(norms).all()


# --- hidden-state gradient norms ---------------------------------------------------------------


def explicit_loop_hidden_grad_norms(ours: ElmanRNN, x, loss_fn):
    """‖∂L/∂h_t‖ by autograd over an explicit time loop of torch ops (retain_grad on each h_t)."""
    phi = torch.tanh if ours.nonlinearity == "tanh" else torch.relu
    layer_input, states, last_states = x, [], []
    for layer in range(ours.num_layers):
        weight_ih, weight_hh, bias_ih, bias_hh = ours.layer_parameters(layer)
        h = x.new_zeros(x.shape[1], ours.hidden_size)
        layer_states = []
        for x_t in layer_input.unbind(0):
            h = phi(x_t @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)
            h.retain_grad()
            layer_states.append(h)
        states.append(layer_states)
        last_states.append(h)
        layer_input = torch.stack(layer_states)
    loss_fn(layer_input, torch.stack(last_states)).backward()
    return torch.tensor([[h.grad.norm().item() for h in layer] for layer in states], dtype=F64)


def test_hidden_grad_norms_are_none_without_tracking():
    ours = ElmanRNN(3, 5)
    ours(torch.randn(6, 4, 3))[0].sum().backward()
    assert ours.hidden_grad_norms is None


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_hidden_grad_norms_equal_autograd_norms_of_every_hidden_state(nonlinearity):
    _, ours = twin_rnns(nonlinearity=nonlinearity, num_layers=2)
    ours.track_hidden_grads = True
    rng = np.random.default_rng(13)
    x = randn(rng, 7, 4, 3)
    output_weights, last_weights = randn(rng, 7, 4, 5), randn(rng, 2, 4, 5)

    def loss_fn(output, h_n):
        return (output * output_weights).sum() + (h_n * last_weights).sum()

    expected = explicit_loop_hidden_grad_norms(ours, x, loss_fn)
    loss_fn(*ours(x)).backward()
    norms = ours.hidden_grad_norms
    assert norms.dtype == F64 and norms.device.type == "cpu" and norms.shape == (2, 7)
    assert_rel_close(norms, expected, 1e-10)


def test_tracking_hidden_grads_leaves_the_gradients_unchanged():
    _, ours = twin_rnns(num_layers=2)
    x = randn(np.random.default_rng(14), 6, 4, 3)
    plain = run_and_backward(ours, x, None, "both", rng_seed=15)
    ours.zero_grad()
    ours.track_hidden_grads = True
    tracked = run_and_backward(ours, x, None, "both", rng_seed=15)
    for a, b in zip(tracked, plain, strict=True):
        assert torch.equal(a, b)


def last_state_gradient_norms(ours: ElmanRNN, recurrent_weight: torch.Tensor, x):
    """Norms of ∂L/∂h_t for a loss on the last state only, with W_hh set to recurrent_weight."""
    with torch.no_grad():
        ours.weight_hh_l0.copy_(recurrent_weight)
    ours.track_hidden_grads = True
    _, h_n = ours(x)
    h_n.sum().backward()
    return ours.hidden_grad_norms[0]


def test_hidden_grad_norms_vanish_backwards_in_time_when_recurrent_weights_are_small():
    rng = np.random.default_rng(16)
    ours = ElmanRNN(3, 16, dtype=F64)
    orthogonal, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    # ‖W_hh‖₂ = 0.5 and tanh' ≤ 1, so each step back shrinks ‖δ‖ by at least half.
    recurrent_weight = 0.5 * torch.from_numpy(orthogonal)
    norms = last_state_gradient_norms(ours, recurrent_weight, randn(rng, 30, 8, 3))
    assert (norms[:-1] < norms[1:]).all()
    assert norms[0] < 1e-6 * norms[-1]


def test_hidden_grad_norms_explode_backwards_in_time_when_recurrent_weights_are_large():
    rng = np.random.default_rng(17)
    ours = ElmanRNN(3, 16, nonlinearity="relu", dtype=F64)
    # Non-negative weights, inputs and biases keep every relu active (relu' = 1), so
    # δ_{t−1} = W_hhᵀ δ_t with a W_hh whose largest eigenvalue is 1.5.
    positive = np.abs(rng.standard_normal((16, 16)))
    recurrent_weight = 1.5 * positive / np.max(np.abs(np.linalg.eigvals(positive)))
    with torch.no_grad():
        for param in (ours.weight_ih_l0, ours.bias_ih_l0, ours.bias_hh_l0):
            param.abs_()
    x = torch.from_numpy(rng.uniform(0, 1, (30, 8, 3)))
    norms = last_state_gradient_norms(ours, torch.from_numpy(recurrent_weight), x)
    assert norms[:10].min() > norms[-10:].max()
    assert norms[0] > 1e3 * norms[-1]


# --- SequenceModel -----------------------------------------------------------------------------


@pytest.mark.parametrize("core", ["elman", "lstm", "gru"])
@pytest.mark.parametrize("readout,shape", [("last", (4, 2)), ("all", (4, 6, 2))])
def test_sequence_model_output_shape_follows_the_readout(core, readout, shape):
    model = SequenceModel(3, 8, 2, core=core, readout=readout)
    assert model(torch.randn(4, 6, 3)).shape == shape


@pytest.mark.parametrize("core,cls", [("elman", ElmanRNN), ("lstm", nn.LSTM), ("gru", nn.GRU)])
def test_sequence_model_core_is_the_chosen_batch_first_recurrent_module(core, cls):
    model = SequenceModel(3, 8, 2, core=core, num_layers=2)
    assert type(model.core) is cls
    assert model.core.batch_first and model.core.num_layers == 2


def test_sequence_model_last_readout_equals_the_last_step_of_the_all_readout():
    torch.manual_seed(18)
    last = SequenceModel(3, 8, 2, readout="last")
    torch.manual_seed(18)
    every = SequenceModel(3, 8, 2, readout="all")
    x = torch.randn(4, 6, 3)
    assert_rel_close(last(x), every(x)[:, -1], 1e-6)


def test_sequence_model_passes_the_nonlinearity_to_the_elman_core():
    assert SequenceModel(3, 8, 2, nonlinearity="relu").core.nonlinearity == "relu"


@pytest.mark.parametrize(
    "options,pattern",
    [
        ({"core": "transformer"}, "^core='transformer' is invalid: .*'elman', 'lstm', 'gru'$"),
        ({"readout": "mean"}, "^readout='mean' is invalid: .*'last', 'all'$"),
        ({"nonlinearity": "sigmoid"}, "^nonlinearity='sigmoid' is invalid: .*'tanh', 'relu'$"),
        (
            {"core": "lstm", "nonlinearity": "relu"},
            "^nonlinearity='relu' is invalid: .*'lstm'.*'tanh'",
        ),
        ({"recurrent_init": "eye"}, "^recurrent_init='eye' is invalid: .*'uniform', 'orthogonal'$"),
    ],
)
def test_sequence_model_rejects_bad_choices_listing_the_valid_ones(options, pattern):
    with pytest.raises(ValueError, match=pattern):
        SequenceModel(3, 8, 2, **options)


def test_sequence_model_rejects_input_that_is_not_batch_first_3d():
    with pytest.raises(ValueError, match=r"\(6, 3\)"):
        SequenceModel(3, 8, 2)(torch.randn(6, 3))


def test_sequence_model_core_can_track_hidden_grads():
    model = SequenceModel(3, 8, 1, num_layers=2)
    model.core.track_hidden_grads = True
    model(torch.randn(4, 6, 3)).sum().backward()
    norms = model.core.hidden_grad_norms
    assert norms.shape == (2, 6) and (norms > 0).all()
