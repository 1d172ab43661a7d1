"""Specification of rnnopt.diagnostics: measuring ‖∂L/∂h_t‖ back through time."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnnopt.diagnostics import (
    format_codes,
    growth_rate,
    hidden_grad_norms,
    largest_singular_value,
    scale_spectral_radius_,
    scaled_elman_rnn,
    spectral_radius,
)
from rnnopt.tasks import make_task


@pytest.fixture(scope="module")
def adding():
    return make_task("adding", seq_len=30, eval_size=8)


def test_spectral_radius_is_the_largest_eigenvalue_modulus():
    rotation = torch.tensor([[0.0, -2.0], [2.0, 0.0]])  # eigenvalues ±2i
    assert spectral_radius(rotation) == pytest.approx(2.0)
    assert spectral_radius(torch.diag(torch.tensor([0.3, -0.7, 0.5]))) == pytest.approx(0.7)


def test_largest_singular_value_can_exceed_the_spectral_radius_of_a_non_normal_matrix():
    shear = torch.tensor([[0.0, 2.0], [0.0, 0.0]])  # nilpotent: ρ = 0, but it stretches by 2
    assert spectral_radius(shear) == pytest.approx(0.0)
    assert largest_singular_value(shear) == pytest.approx(2.0)


def test_scale_spectral_radius_sets_the_radius_in_place_and_keeps_the_direction():
    weight = torch.randn(16, 16, generator=torch.Generator().manual_seed(0))
    original = weight.clone()
    returned = scale_spectral_radius_(weight, 1.25)
    assert returned is weight
    assert spectral_radius(weight) == pytest.approx(1.25)
    ratio = weight / original
    assert torch.allclose(ratio, ratio[0, 0].expand_as(ratio))


@pytest.mark.parametrize("radius", [0, -1.0, math.nan, math.inf, True, "1"])
def test_scale_spectral_radius_rejects_a_radius_that_is_not_a_positive_number(radius):
    with pytest.raises(ValueError, match=r"^radius=.* is invalid: expected a finite number > 0$"):
        scale_spectral_radius_(torch.eye(3), radius)


def test_scale_spectral_radius_rejects_a_non_square_matrix():
    with pytest.raises(
        ValueError, match=r"^weight\.shape=\(2, 3\) is invalid: expected the shape \(n, n\)"
    ):
        scale_spectral_radius_(torch.ones(2, 3), 1.0)


def test_scale_spectral_radius_rejects_a_matrix_whose_radius_is_zero():
    with pytest.raises(
        ValueError,
        match=r"^spectral_radius\(weight\)=0\.0 is invalid: expected a radius > 0",
    ):
        scale_spectral_radius_(torch.tensor([[0.0, 1.0], [0.0, 0.0]]), 1.0)


def test_scaled_elman_rnn_has_the_requested_spectral_radius_and_records_gradients():
    rnn = scaled_elman_rnn(2, 12, 0.7, nonlinearity="relu", seed=1)
    assert spectral_radius(rnn.weight_hh_l0) == pytest.approx(0.7)
    assert rnn.track_hidden_grads and rnn.nonlinearity == "relu"
    assert rnn.weight_hh_l0.dtype == torch.float64


def test_hidden_grad_norms_has_one_positive_float64_norm_per_time_step(adding):
    norms = hidden_grad_norms(adding, 0.9, hidden_size=8, batch_size=4)
    assert norms.shape == (adding.seq_len,)
    assert norms.dtype == torch.float64
    assert torch.all(torch.isfinite(norms)) and torch.all(norms > 0)


def test_hidden_grad_norms_is_reproducible_from_its_seed(adding):
    first = hidden_grad_norms(adding, 1.1, hidden_size=8, batch_size=4, seed=3)
    assert torch.equal(first, hidden_grad_norms(adding, 1.1, hidden_size=8, batch_size=4, seed=3))
    assert not torch.equal(
        first, hidden_grad_norms(adding, 1.1, hidden_size=8, batch_size=4, seed=4)
    )


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_a_larger_spectral_radius_makes_the_gradient_decay_more_slowly(adding, nonlinearity):
    rates = [
        growth_rate(hidden_grad_norms(adding, radius, nonlinearity=nonlinearity))
        for radius in (0.3, 1.0, 3.0)
    ]
    assert rates[0] < rates[1] < rates[2]


def test_each_step_back_shrinks_the_gradient_by_at_most_the_largest_singular_value(adding):
    # |φ'| ≤ 1, so ‖δ_t‖ = ‖W_hhᵀ(φ' ⊙ δ_{t+1})‖ ≤ σ_max(W_hh) ‖δ_{t+1}‖ (loss at the last step).
    rnn = scaled_elman_rnn(adding.input_size, 16, 1.5, seed=0)  # the network measured below
    bound = largest_singular_value(rnn.weight_hh_l0)
    norms = hidden_grad_norms(adding, 1.5, hidden_size=16, batch_size=4, seed=0)
    assert torch.all(norms[:-1] <= bound * norms[1:] * (1 + 1e-12))


@pytest.mark.parametrize(
    "name, params",
    [
        ("copy", {"seq_len": 5, "eval_size": 4}),
        ("digits", {}),
        ("text", {"seq_len": 12, "eval_size": 4}),
    ],
)
def test_hidden_grad_norms_works_for_every_kind_of_task(name, params):
    task = make_task(name, **params)
    norms = hidden_grad_norms(task, 1.0, hidden_size=8, batch_size=3)
    assert norms.shape == (task.seq_len,) and torch.all(norms > 0)


def test_hidden_grad_norms_rejects_something_that_is_not_a_task():
    with pytest.raises(TypeError, match="^task='adding' is invalid: expected an rnnopt.tasks.Task"):
        hidden_grad_norms("adding", 1.0)


def test_hidden_grad_norms_rejects_an_unknown_nonlinearity(adding):
    with pytest.raises(ValueError, match="^nonlinearity='sigmoid' is invalid: .*'tanh', 'relu'$"):
        hidden_grad_norms(adding, 1.0, nonlinearity="sigmoid")


def test_growth_rate_recovers_the_ratio_of_a_geometric_sequence():
    steps_back = np.arange(40)[::-1]  # norms in time order: the last step has k = 0
    assert growth_rate(3.0 * 0.8**steps_back) == pytest.approx(0.8)
    assert growth_rate(torch.tensor(1.2**steps_back)) == pytest.approx(1.2)


def test_growth_rate_of_a_gradient_that_underflowed_to_zero_is_zero():
    assert growth_rate([0.0, 1e-300, 1.0]) == 0.0


@pytest.mark.parametrize("norms", [[1.0], [1.0, 0.0], [1.0, math.nan], [-1.0, 1.0]])
def test_growth_rate_rejects_a_curve_it_cannot_summarise(norms):
    with pytest.raises(ValueError, match=r"^norms=\[.*\] is invalid: expected "):
        growth_rate(norms)


def test_format_codes_writes_one_character_per_step_with_blanks_as_dots():
    assert format_codes(torch.tensor([3, 0, 0, 9, 10, 1])) == "3..9a1"
    assert format_codes(np.array([0, 2]), blank=None) == "02"


def test_plot_hidden_grad_norms_draws_a_measured_and_a_reference_line_per_radius(adding):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rnnopt.diagnostics import plot_hidden_grad_norms

    curves = {
        radius: hidden_grad_norms(adding, radius, hidden_size=8, batch_size=2)
        for radius in (0.5, 1.5)
    }
    fig, ax = plt.subplots()
    plot_hidden_grad_norms(ax, curves, "tanh")
    assert len(ax.lines) == 4 and ax.get_yscale() == "log"
    plt.close(fig)


def test_an_orthogonal_recurrent_matrix_has_every_singular_value_one():
    # the evidence tier's recurrent_init: orthogonal, ρ = σ_max = 1, left so by a radius of 1
    from rnnopt.diagnostics import scaled_elman_rnn

    rnn = scaled_elman_rnn(1, 16, 1.0, orthogonal=True, seed=3)
    singular = torch.linalg.svdvals(rnn.weight_hh_l0.detach())
    assert torch.allclose(singular, torch.ones(16, dtype=torch.float64), atol=1e-9)


def test_the_orthogonal_sentence_reports_the_measured_factor_and_its_verdict():
    from rnnopt import figures_rnn

    shrinking = [torch.tensor([0.5**k for k in range(9, -1, -1)], dtype=torch.float64)] * 2
    said = figures_rnn.orthogonal_sentence(shrinking, 10, 8)
    assert "factor per step 0.500 (0.500 – 0.500 over 2 networks)" in said
    assert "‖δ_0‖ / ‖δ_9‖ = 1.95e-03: the gradient vanishes" in said
