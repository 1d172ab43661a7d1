"""Recurrent networks for the experiments: an Elman RNN with backpropagation through time
written out by hand, and a small sequence model that puts a linear readout on top of it.

`ElmanRNN` is a drop-in replacement for ``torch.nn.RNN`` (same constructor, parameter names,
initialisation, shapes and results), but its backward pass is ours: `ElmanLayerFunction` walks
the sequence in reverse, which is the mechanism behind vanishing and exploding gradients. It can
record the size of the gradient reaching every hidden state (`ElmanRNN.hidden_grad_norms`).

Notation (used in the comments): steps t = 0 … T−1, batch rows are vectors in row form,
h_{−1} is the initial state ``hx``, and for one layer

    a_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh        (pre-activation)
    h_t = φ(a_t)                                        (φ = tanh or relu)

The loss L reaches h_t from the layer's output at step t ("upstream" g_t, which for a lower
layer is the gradient coming down from the layer above) and from the future through a_{t+1}:

    δ_t = ∂L/∂h_t = g_t + W_hhᵀ δ̃_{t+1},     δ̃_t = ∂L/∂a_t = φ'(a_t) ⊙ δ_t,     δ̃_T = 0.
"""

from __future__ import annotations

import functools
import math
import numbers

import torch
from torch import Tensor, nn

from rnnopt.checks import invalid

NONLINEARITIES = ("tanh", "relu")
CORES = ("elman", "lstm", "gru")
READOUTS = ("last", "all")
RECURRENT_INITS = ("uniform", "orthogonal")


def _activation_slope(hidden: Tensor, nonlinearity: str) -> Tensor:
    """φ'(a) for every step at once, computed from the outputs h = φ(a) (no need to keep a)."""
    if nonlinearity == "tanh":
        # tanh'(a) = 1 − tanh(a)² = 1 − h²   (built in one buffer: this is T·B·H numbers)
        return hidden.square().neg_().add_(1)
    # relu'(a) = [a > 0] = [h > 0], which is sign(h) since h ≥ 0 (0 at the kink, as in torch)
    return hidden.sign()


def _first_order_only(backward):
    """Refuse double backward with a TypeError naming it (torch's once_differentiable lets it
    fail later, with a message about tensors that do not require grad)."""

    @functools.wraps(backward)
    def checked(ctx, *grads):
        # Grad mode is on in a backward pass only when it is asked to build a graph of itself
        # (create_graph=True): this hand-written backward builds none.
        if torch.is_grad_enabled():
            raise TypeError(
                "ElmanRNN does not support double backward (create_graph=True): "
                "its backward is hand-written and not itself differentiable; use "
                "torch.nn.RNN for higher-order gradients"
            )
        return backward(ctx, *grads)

    return checked


def bptt_reference(inputs, h0, weight_ih, weight_hh, hidden, upstream, nonlinearity="tanh"):
    """BPTT in the notation above, one step at a time: what `ElmanLayerFunction.backward`
    computes (the tests check they agree), written to be read rather than to be fast.

    ``hidden`` holds h_0 … h_{T−1} from the forward pass, ``upstream`` the g_t (T, B, H), with
    ∂L/∂h_n added to g_{T−1}. Returns ∂L/∂x, ∂L/∂h_{−1}, ∂L/∂W_ih, ∂L/∂W_hh, ∂L/∂b (either
    bias: both enter a_t the same way) and every δ_t."""
    delta_tilde_next = torch.zeros_like(h0)  # δ̃_T = 0: nothing flows back from beyond the end
    grad_x, deltas = torch.empty_like(inputs), torch.empty_like(hidden)
    grad_w_ih, grad_w_hh = torch.zeros_like(weight_ih), torch.zeros_like(weight_hh)
    grad_b = torch.zeros_like(h0[0])
    for t in reversed(range(hidden.shape[0])):
        delta = upstream[t] + delta_tilde_next @ weight_hh  # δ_t = g_t + W_hhᵀ δ̃_{t+1}
        slope = 1 - hidden[t] ** 2 if nonlinearity == "tanh" else (hidden[t] > 0).to(h0.dtype)
        delta_tilde = slope * delta  # δ̃_t = φ'(a_t) ⊙ δ_t
        h_prev = hidden[t - 1] if t > 0 else h0
        grad_x[t] = delta_tilde @ weight_ih  # ∂L/∂x_t = W_ihᵀ δ̃_t
        grad_w_ih += delta_tilde.T @ inputs[t]  # ∂L/∂W_ih = Σ_t δ̃_t x_tᵀ
        grad_w_hh += delta_tilde.T @ h_prev  # ∂L/∂W_hh = Σ_t δ̃_t h_{t−1}ᵀ
        grad_b += delta_tilde.sum(0)  # ∂L/∂b = Σ_t δ̃_t
        deltas[t], delta_tilde_next = delta, delta_tilde
    grad_h0 = delta_tilde_next @ weight_hh  # ∂L/∂h_{−1} = W_hhᵀ δ̃_0
    return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b, deltas


class ElmanLayerFunction(torch.autograd.Function):
    """One Elman layer over a whole sequence, with a hand-written backward (BPTT).

    Inputs are time-major: ``inputs`` (T, B, F), ``h0`` (B, H). Returns ``(hidden, h_last)``:
    all hidden states (T, B, H) and a copy of the last one (B, H). If ``grad_norms`` (a tensor
    of shape (T,)) is given, the backward writes ‖δ_t‖ = ‖∂L/∂h_t‖ into it.

    The backward computes what `bptt_reference` does, reorganised for speed: φ'(a_t) for all
    steps at once, turned into δ̃_t in place; the last step seeded from g_{T−1} and ∂L/∂h_n
    instead of a product with δ̃_T = 0; the sums over steps as one matmul over all T·B rows.
    """

    @staticmethod
    def forward(ctx, inputs, h0, weight_ih, weight_hh, bias_ih, bias_hh, nonlinearity, grad_norms):
        seq_len, batch, input_size = inputs.shape
        hidden_size = weight_hh.shape[0]
        hidden = inputs.new_empty(seq_len, batch, hidden_size)
        # The input part of every a_t does not depend on the recurrence, so do it for all steps
        # at once with one (T·B × F)·(F × H) matmul:  hidden[t] = W_ih x_t + b_ih + b_hh.
        flat_inputs = inputs.reshape(seq_len * batch, input_size)
        if bias_ih is not None:
            torch.addmm(
                bias_ih + bias_hh,
                flat_inputs,
                weight_ih.t(),
                out=hidden.view(seq_len * batch, hidden_size),
            )
        else:
            torch.mm(flat_inputs, weight_ih.t(), out=hidden.view(seq_len * batch, hidden_size))
        # Only the recurrence is sequential. Each step finishes its row in place:
        h_prev = h0
        for h_t in hidden.unbind(0):
            h_t.addmm_(h_prev, weight_hh.t())  # a_t = (W_ih x_t + b_ih + b_hh) + W_hh h_{t−1}
            if nonlinearity == "tanh":
                h_t.tanh_()  # h_t = tanh(a_t)
            else:
                h_t.relu_()  # h_t = relu(a_t)
            h_prev = h_t
        # The outputs are all the backward needs besides the inputs: φ'(a_t) is a function of h_t.
        ctx.save_for_backward(inputs, h0, weight_ih, weight_hh, hidden)
        ctx.nonlinearity = nonlinearity
        ctx.grad_norms = grad_norms
        # A gradient that is None (e.g. the loss uses only h_n) stays None: no zero tensors.
        ctx.set_materialize_grads(False)
        return hidden, hidden[-1].clone()

    @staticmethod
    @_first_order_only
    def backward(ctx, grad_hidden, grad_last):
        inputs, h0, weight_ih, weight_hh, hidden = ctx.saved_tensors
        seq_len, batch, hidden_size = hidden.shape
        norms = ctx.grad_norms
        # grad_pre[t] starts as φ'(a_t) (all steps at once) and becomes δ̃_t = ∂L/∂a_t.
        grad_pre = _activation_slope(hidden, ctx.nonlinearity)

        # The last step has no future, only h_n's own gradient: δ_{T−1} = g_{T−1} + ∂L/∂h_n.
        delta = hidden.new_zeros(batch, hidden_size)
        if grad_hidden is not None:
            delta += grad_hidden[-1]
        if grad_last is not None:
            delta += grad_last

        # The reverse walk: only the δ recursion is sequential.
        for t in range(seq_len - 1, -1, -1):
            if t < seq_len - 1:
                # δ_t = g_t + W_hhᵀ δ̃_{t+1}    (row form: g_t + δ̃_{t+1} W_hh)
                if grad_hidden is None:
                    torch.mm(grad_pre[t + 1], weight_hh, out=delta)
                else:
                    torch.addmm(grad_hidden[t], grad_pre[t + 1], weight_hh, out=delta)
            if norms is not None:
                norms[t] = torch.linalg.vector_norm(delta)  # ‖δ_t‖ over batch and units
            grad_pre[t].mul_(delta)  # δ̃_t = φ'(a_t) ⊙ δ_t

        # Everything else is a sum over steps, done as one matmul over all T·B rows.
        flat_grad_pre = grad_pre.view(seq_len * batch, hidden_size)
        grad_inputs = grad_h0 = grad_weight_ih = grad_weight_hh = grad_bias = None
        if ctx.needs_input_grad[0]:
            # ∂L/∂x_t = W_ihᵀ δ̃_t
            # (sizes spelt out, not -1: with batch 0 a -1 would be ambiguous)
            grad_inputs = (flat_grad_pre @ weight_ih).view(seq_len, batch, inputs.shape[2])
        if ctx.needs_input_grad[1]:
            # ∂L/∂h_{−1} = W_hhᵀ δ̃_0
            grad_h0 = grad_pre[0] @ weight_hh
        if ctx.needs_input_grad[2]:
            # ∂L/∂W_ih = Σ_t δ̃_t x_tᵀ, computed as (Σ_t x_t δ̃_tᵀ)ᵀ: (F × T·B)·(T·B × H) is the
            # order BLAS does fast when F is small (about 8× faster for F = 2 here)
            flat_inputs = inputs.reshape(seq_len * batch, inputs.shape[2])
            grad_weight_ih = (flat_inputs.t() @ flat_grad_pre).t()
        if ctx.needs_input_grad[3]:
            # ∂L/∂W_hh = Σ_t δ̃_t h_{t−1}ᵀ: steps 1 … T−1 read h_0 … h_{T−2} from the outputs,
            # step 0 reads the initial state.
            previous = hidden[:-1].reshape(-1, hidden_size)  # h_0 … h_{T−2}
            grad_weight_hh = grad_pre[1:].reshape(-1, hidden_size).t() @ previous
            grad_weight_hh.addmm_(grad_pre[0].t(), h0)
        if ctx.needs_input_grad[4] or ctx.needs_input_grad[5]:
            # ∂L/∂b_ih = ∂L/∂b_hh = Σ_t δ̃_t (the two biases enter a_t the same way; autograd
            # copies a gradient it stores twice, so the two .grad tensors stay separate)
            grad_bias = flat_grad_pre.sum(0)
        return (
            grad_inputs,
            grad_h0,
            grad_weight_ih,
            grad_weight_hh,
            grad_bias,
            grad_bias,
            None,
            None,
        )


def _check_size(name: str, value: object) -> int:
    """`value` as an int > 0, with nn.RNN's wording. A numpy integer is accepted (nn.RNN
    refuses it): sizes often come from numpy arithmetic or a parsed config."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be greater than zero, got {name}={value}")
    return int(value)


def _check_nonlinearity(nonlinearity: object) -> None:
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(invalid("nonlinearity", nonlinearity, "a nonlinearity", NONLINEARITIES))


class ElmanRNN(nn.Module):
    r"""Elman RNN, h_t = φ(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh), with hand-written BPTT.

    A drop-in replacement for ``torch.nn.RNN(input_size, hidden_size, num_layers,
    nonlinearity, bias, batch_first)``: same parameter names (``weight_ih_l0``,
    ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ``weight_ih_l1``, …), the same
    initialisation U(−1/√H, 1/√H) drawn in the same order (same seed, same weights), the same
    ``forward(input, hx=None) -> (output, h_n)`` shapes, unbatched input included, so
    ``ElmanRNN(...).load_state_dict(rnn.state_dict())`` works and gives the same results. The
    gradients come from `ElmanLayerFunction`, one call per layer.
    Options of ``nn.RNN`` it lacks (``dropout``, ``bidirectional``) raise ``ValueError``;
    uses it does not support raise ``TypeError`` where ``nn.RNN`` accepts them: a
    ``PackedSequence`` input, and double backward (``create_graph=True``), since its backward is
    written by hand. An ``hx`` whose dtype is not the weights' is refused as the input is.

    Watching gradients vanish or explode: set ``track_hidden_grads=True`` (constructor or
    attribute). Each backward pass then records, for every layer l and step t,

        hidden_grad_norms[l, t] = ‖∂L/∂h_t^{(l)}‖   (Frobenius norm over batch and units),

    the total gradient reaching that hidden state, from the output at step t and from the
    future. Read it after ``loss.backward()`` as a float64 CPU tensor of shape
    (num_layers, seq_len) (NaN until a backward pass has run; ``None`` if tracking was never
    on). Since δ_{t−1} = g_{t−1} + W_hhᵀ(φ'(a_t) ⊙ δ_t), the norms shrink backwards in time
    when ‖W_hh‖ is small (vanishing) and can grow geometrically when it is large (exploding).
    With tracking off (the default) nothing is recorded and nothing is spent.

    Example::

        >>> rnn = ElmanRNN(2, 8, track_hidden_grads=True)
        >>> output, h_n = rnn(torch.randn(20, 4, 2))
        >>> h_n.sum().backward()
        >>> rnn.hidden_grad_norms.shape
        torch.Size([1, 20])
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        track_hidden_grads: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        input_size = _check_size("input_size", input_size)
        hidden_size = _check_size("hidden_size", hidden_size)
        num_layers = _check_size("num_layers", num_layers)
        _check_nonlinearity(nonlinearity)
        for name, flag in (("bias", bias), ("batch_first", batch_first)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} should be of type bool, got: {type(flag).__name__}")
        unsupported = (
            ("dropout", dropout, 0),
            ("bidirectional", bidirectional, False),
            ("proj_size", proj_size, 0),
        )
        for name, value, default in unsupported:
            if value != default:
                raise ValueError(
                    f"ElmanRNN does not support {name}={value!r} "
                    f"(only the default {name}={default!r})"
                )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.nonlinearity = nonlinearity
        self.bias = bias
        self.batch_first = batch_first
        self.track_hidden_grads = track_hidden_grads
        self._hidden_grad_norms: Tensor | None = None

        factory = {"device": device, "dtype": dtype}
        # Registered in nn.RNN's order, so that reset_parameters draws the same numbers.
        for layer in range(num_layers):
            layer_input_size = input_size if layer == 0 else hidden_size
            self.register_parameter(
                f"weight_ih_l{layer}",
                nn.Parameter(torch.empty(hidden_size, layer_input_size, **factory)),
            )
            self.register_parameter(
                f"weight_hh_l{layer}",
                nn.Parameter(torch.empty(hidden_size, hidden_size, **factory)),
            )
            if bias:
                self.register_parameter(
                    f"bias_ih_l{layer}", nn.Parameter(torch.empty(hidden_size, **factory))
                )
                self.register_parameter(
                    f"bias_hh_l{layer}", nn.Parameter(torch.empty(hidden_size, **factory))
                )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(−1/√H, 1/√H), as ``nn.RNN`` does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            nn.init.uniform_(param, -bound, bound)

    def layer_parameters(self, layer: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(W_ih, W_hh, b_ih, b_hh) of one layer; the biases are None when ``bias=False``."""
        weight_ih = getattr(self, f"weight_ih_l{layer}")
        weight_hh = getattr(self, f"weight_hh_l{layer}")
        if not self.bias:
            return weight_ih, weight_hh, None, None
        return (
            weight_ih,
            weight_hh,
            getattr(self, f"bias_ih_l{layer}"),
            getattr(self, f"bias_hh_l{layer}"),
        )

    @property
    def hidden_grad_norms(self) -> Tensor | None:
        """‖∂L/∂h_t‖ per (layer, step) from the last backward pass; see the class docstring."""
        if self._hidden_grad_norms is None:
            return None
        return self._hidden_grad_norms.detach().to("cpu", torch.float64)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``input``: (T, B, F), or (B, T, F) with ``batch_first``, or unbatched (T, F);
        ``hx``: (num_layers, B, H), or (num_layers, H) when unbatched; zeros when omitted.
        Returns ``output`` (the last layer's h_t for every t, laid out like ``input``) and
        ``h_n`` (every layer's last state, shaped like ``hx``)."""
        layout = (
            "(batch, seq_len, input_size)" if self.batch_first else "(seq_len, batch, input_size)"
        )
        # nn.RNN also takes a PackedSequence; ElmanRNN refuses it (and anything not a tensor).
        for name, value in (("input", input), ("hx", hx)):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"ElmanRNN: {name} must be a Tensor, got a "
                    f"{type(value).__name__} (PackedSequence is not supported: "
                    "pad the sequences, or use torch.nn.RNN)"
                )
        if input.dim() not in (2, 3):
            raise ValueError(
                f"ElmanRNN: expected input of shape {layout} or unbatched "
                f"(seq_len, input_size), got shape {tuple(input.shape)}"
            )
        batched = input.dim() == 3
        if hx is not None and hx.dim() != input.dim():
            raise ValueError(
                f"ElmanRNN: for {input.dim()}-D input hx must be {input.dim()}-D "
                f"((num_layers, {'batch, ' if batched else ''}hidden_size)), "
                f"got hx of shape {tuple(hx.shape)}"
            )
        if input.shape[-1] != self.input_size:
            raise ValueError(
                f"ElmanRNN: input has {input.shape[-1]} features (shape "
                f"{tuple(input.shape)}), expected input_size={self.input_size}"
            )
        if input.dtype != self.weight_ih_l0.dtype:
            raise ValueError(
                f"ElmanRNN: input dtype ({input.dtype}) does not match weight "
                f"dtype ({self.weight_ih_l0.dtype})"
            )
        if hx is not None and hx.dtype != self.weight_ih_l0.dtype:
            raise ValueError(
                f"ElmanRNN: hx dtype ({hx.dtype}) does not match weight "
                f"dtype ({self.weight_ih_l0.dtype})"
            )
        if not batched:
            input = input.unsqueeze(0 if self.batch_first else 1)
            hx = None if hx is None else hx.unsqueeze(1)
        if self.batch_first:
            input = input.transpose(0, 1)  # the recurrence runs time-major: (T, B, F)
        seq_len, batch, _ = input.shape
        if seq_len == 0:
            raise ValueError(f"ElmanRNN: the sequence is empty (input shape {tuple(input.shape)})")
        expected = (self.num_layers, batch, self.hidden_size)
        if hx is None:
            hx = input.new_zeros(expected)
        elif tuple(hx.shape) != expected:
            got = tuple(hx.shape) if batched else tuple(hx.squeeze(1).shape)
            want = expected if batched else (self.num_layers, self.hidden_size)
            raise ValueError(f"ElmanRNN: expected hx of shape {want}, got {got}")

        norms = None
        if self.track_hidden_grads and torch.is_grad_enabled():
            norms = torch.full(
                (self.num_layers, seq_len), math.nan, dtype=torch.float64, device=input.device
            )
            self._hidden_grad_norms = norms

        layer_input, last_states = input, []
        for layer in range(self.num_layers):
            layer_input, h_last = ElmanLayerFunction.apply(
                layer_input,
                hx[layer],
                *self.layer_parameters(layer),
                self.nonlinearity,
                None if norms is None else norms[layer],
            )
            last_states.append(h_last)
        output, h_n = layer_input, torch.stack(last_states)

        if self.batch_first:
            output = output.transpose(0, 1)
        if not batched:
            output = output.squeeze(0 if self.batch_first else 1)
            h_n = h_n.squeeze(1)
        return output, h_n

    def extra_repr(self) -> str:
        # nn.RNN's format, plus the two settings nn.RNN's repr does not show.
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.track_hidden_grads:
            s += ", track_hidden_grads=True"
        return s


class SequenceModel(nn.Module):
    """A recurrent core and a linear readout; batch-first input (B, T, F).

    ``core``: ``'elman'`` (our `ElmanRNN`), ``'lstm'`` or ``'gru'`` (``torch.nn.LSTM``/``GRU``).
    ``readout``: ``'last'`` reads the top layer's last hidden state, giving (B, output_size);
    ``'all'`` reads every step, giving (B, T, output_size). The recurrent module is
    ``model.core`` (e.g. ``model.core.track_hidden_grads = True``), the linear layer
    ``model.head``.

    ``recurrent_init``: ``'uniform'`` keeps torch's default, U(−1/√H, 1/√H) for every weight;
    ``'orthogonal'`` draws each hidden-to-hidden matrix as a random orthogonal one (Saxe et al.
    2014), whose singular values are all 1, so a gradient sent back through many steps neither
    shrinks nor grows at the start of training — the usual starting point for long sequences.
    (For an LSTM or GRU each gate's block is orthogonal.)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        *,
        core: str = "elman",
        readout: str = "last",
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        recurrent_init: str = "uniform",
    ) -> None:
        super().__init__()
        if recurrent_init not in RECURRENT_INITS:
            raise ValueError(
                invalid("recurrent_init", recurrent_init, "an initialisation", RECURRENT_INITS)
            )
        if core not in CORES:
            raise ValueError(invalid("core", core, "a recurrent core", CORES))
        if readout not in READOUTS:
            raise ValueError(invalid("readout", readout, "a readout", READOUTS))
        _check_nonlinearity(nonlinearity)
        # Checked here for every core: nn.LSTM and nn.GRU refuse numpy integers.
        input_size = _check_size("input_size", input_size)
        hidden_size = _check_size("hidden_size", hidden_size)
        output_size = _check_size("output_size", output_size)
        num_layers = _check_size("num_layers", num_layers)
        if core != "elman" and nonlinearity != "tanh":
            raise ValueError(
                invalid(
                    "nonlinearity",
                    nonlinearity,
                    f"'tanh' with core={core!r} (other nonlinearities are for core='elman' only)",
                    ("tanh",),
                )
            )
        self.readout = readout
        if core == "elman":
            self.core = ElmanRNN(
                input_size, hidden_size, num_layers, nonlinearity, batch_first=True
            )
        else:
            recurrent = nn.LSTM if core == "lstm" else nn.GRU
            self.core = recurrent(input_size, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, output_size)
        if recurrent_init == "orthogonal":
            with torch.no_grad():
                for name, weight in self.core.named_parameters():
                    if name.startswith("weight_hh"):
                        for block in weight.split(hidden_size):  # one block per gate
                            nn.init.orthogonal_(block)

    def forward(self, inputs: Tensor) -> Tensor:
        if inputs.dim() != 3:
            raise ValueError(
                f"SequenceModel: expected input of shape (batch, seq_len, "
                f"input_size), got shape {tuple(inputs.shape)}"
            )
        hidden, _ = self.core(inputs)  # (B, T, H): the top layer's h_t for every t
        if self.readout == "last":
            return self.head(hidden[:, -1])
        return self.head(hidden)
