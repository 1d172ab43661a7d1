"""Specifications of the benchmark tasks: data layout, determinism, held-out sets, baselines and
the errors raised for bad configurations."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnopt.tasks import TASKS, AddingTask, CopyTask, DigitsTask, TextTask, make_task

ALL = sorted(TASKS)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="module")
def tasks() -> dict:
    return {name: make_task(name) for name in ALL}


def perfect_output(task, target: torch.Tensor) -> torch.Tensor:
    """What a model that knows the answer would output (confident logits for classification)."""
    if task.loss_name == "mse":
        return target.clone()
    return 50.0 * F.one_hot(target, task.output_size).float()


# ---------------------------------------------------------------- every task


def test_registry_holds_the_four_tasks():
    assert set(TASKS) == {"adding", "copy", "digits", "text"}
    assert all(cls.name == name for name, cls in TASKS.items())


@pytest.mark.parametrize("name", ALL)
def test_train_batch_shapes_and_dtypes(tasks, name):
    task = tasks[name]
    x, y = task.train_batch(5, rng())
    assert x.dtype == torch.float32 and x.shape == (5, task.seq_len, task.input_size)
    if task.loss_name == "mse":
        assert y.dtype == torch.float32 and y.shape == (5, 1)
    elif task.readout == "last":
        assert y.dtype == torch.int64 and y.shape == (5,)
    else:
        assert y.dtype == torch.int64 and y.shape == (5, task.seq_len)
    assert x.device.type == y.device.type == "cpu"


@pytest.mark.parametrize("name", ALL)
def test_eval_batch_has_the_training_batch_layout(tasks, name):
    task = tasks[name]
    x, y = task.train_batch(3, rng())
    ex, ey = task.eval_batch()
    assert ex.shape[1:] == x.shape[1:] and ey.shape[1:] == y.shape[1:]
    assert ex.dtype == x.dtype and ey.dtype == y.dtype


@pytest.mark.parametrize("name", ALL)
def test_same_rng_seed_gives_identical_batch(tasks, name):
    a, b = tasks[name].train_batch(8, rng(7)), tasks[name].train_batch(8, rng(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("name", ALL)
def test_different_rng_seeds_give_different_batches(tasks, name):
    a, b = tasks[name].train_batch(8, rng(1)), tasks[name].train_batch(8, rng(2))
    assert not torch.equal(a[0], b[0])


@pytest.mark.parametrize("name", ALL)
def test_eval_batch_is_the_same_every_call(tasks, name):
    first = [t.clone() for t in tasks[name].eval_batch()]
    again = tasks[name].eval_batch()
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


@pytest.mark.parametrize("name", ALL)
def test_eval_batch_is_independent_of_training_rng(name):
    drawn_first = make_task(name)
    drawn_first.train_batch(16, rng(0))
    drawn_first.train_batch(16, rng(99))
    fresh = make_task(name)
    for a, b in zip(drawn_first.eval_batch(), fresh.eval_batch(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", ALL)
def test_config_rebuilds_an_equivalent_task(tasks, name):
    task = tasks[name]
    rebuilt = make_task(**task.config())
    assert rebuilt.config() == task.config() and type(rebuilt) is type(task)
    assert torch.equal(rebuilt.eval_batch()[1], task.eval_batch()[1])


@pytest.mark.parametrize("name", ALL)
def test_config_names_the_task_and_every_constructor_argument(tasks, name):
    import inspect

    config = tasks[name].config()
    assert config["name"] == name
    assert set(config) - {"name"} == set(inspect.signature(TASKS[name]).parameters)


@pytest.mark.parametrize("name", ALL)
def test_constructor_parameters_have_defaults_and_are_documented(name):
    import inspect

    cls = TASKS[name]
    for param in inspect.signature(cls).parameters.values():
        assert param.default is not inspect.Parameter.empty, param.name
        assert param.annotation is not inspect.Parameter.empty, param.name
        assert f"{param.name}:" in cls.__doc__, param.name


@pytest.mark.parametrize("name", ALL)
def test_loss_is_a_differentiable_scalar(tasks, name):
    task = tasks[name]
    x, y = task.train_batch(4, rng())
    shape = y.shape if task.loss_name == "mse" else (*y.shape, task.output_size)
    output = torch.zeros(shape, requires_grad=True)
    loss = task.loss(output, y)
    loss.backward()
    assert loss.dim() == 0 and output.grad is not None


@pytest.mark.parametrize("name", ALL)
def test_perfect_prediction_has_near_zero_loss(tasks, name):
    task = tasks[name]
    _, y = task.eval_batch()
    output = perfect_output(task, y)
    assert task.loss(output, y).item() < 1e-6
    best = 0.0 if not task.higher_is_better else 1.0
    assert task.metric(output, y) == pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_baseline_reports_finite_loss_metric_and_description(tasks, name):
    baseline = tasks[name].baseline()
    assert math.isfinite(baseline["loss"]) and math.isfinite(baseline["metric"])
    assert isinstance(baseline["description"], str) and baseline["description"]


@pytest.mark.parametrize("name", ALL)
def test_train_batch_rejects_a_seed_in_place_of_a_generator(tasks, name):
    with pytest.raises(TypeError, match="^rng=0 is invalid: expected a numpy Generator"):
        tasks[name].train_batch(4, 0)


@pytest.mark.parametrize("name", ALL)
def test_train_batch_rejects_a_batch_size_below_one(tasks, name):
    with pytest.raises(ValueError, match="batch_size.*0"):
        tasks[name].train_batch(0, rng())


# ---------------------------------------------------------------- adding


def test_adding_has_exactly_one_marker_in_each_half():
    task = AddingTask(seq_len=21)
    x, _ = task.train_batch(200, rng())
    markers = x[..., 1]
    assert set(markers.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(markers[:, :10].sum(1) == 1) and torch.all(markers[:, 10:].sum(1) == 1)


def test_adding_target_is_the_sum_of_the_marked_values():
    x, y = AddingTask(seq_len=30).train_batch(200, rng())
    assert torch.equal(y[:, 0], (x[..., 0] * x[..., 1]).sum(1))


def test_adding_values_are_in_the_unit_interval():
    x, _ = AddingTask().train_batch(200, rng())
    assert x[..., 0].min() >= 0 and x[..., 0].max() < 1


def test_adding_baseline_is_the_mse_of_predicting_one():
    task = AddingTask()
    _, y = task.eval_batch()
    assert task.baseline()["loss"] == pytest.approx(((y - 1) ** 2).mean().item(), rel=1e-6)
    assert task.baseline()["analytic"] == pytest.approx(1 / 6)


def test_adding_baseline_is_within_sampling_error_of_one_sixth():
    task = AddingTask(eval_size=4000)
    _, y = task.eval_batch()
    squared = ((y - 1) ** 2).double()
    standard_error = squared.std().item() / math.sqrt(len(y))
    assert abs(task.baseline()["loss"] - 1 / 6) < 4 * standard_error


def test_adding_accuracy_counts_predictions_within_tolerance():
    task = AddingTask()
    target = torch.tensor([[1.0], [1.0], [1.0], [1.0]])
    output = torch.tensor([[1.0], [1.03], [0.9], [1.2]])
    assert task.accuracy(output, target) == pytest.approx(0.5)


def test_adding_loss_rejects_mismatched_shapes():
    task = AddingTask()
    _, y = task.train_batch(4, rng())
    with pytest.raises(ValueError, match=r"^output\.shape=\(4,\) is invalid: .*\(4, 1\)"):
        task.loss(y[:, 0], y)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), seq_len=st.integers(2, 200))
def test_adding_target_is_the_marked_sum_in_0_2_for_any_seed_and_length(seed, seq_len):
    x, y = AddingTask(seq_len=seq_len, eval_size=1).train_batch(8, rng(seed))
    half = seq_len // 2
    assert torch.all(x[:, :half, 1].sum(1) == 1) and torch.all(x[:, half:, 1].sum(1) == 1)
    assert torch.equal(y[:, 0], (x[..., 0] * x[..., 1]).sum(1))
    assert torch.all((0 <= y) & (y <= 2))


# ---------------------------------------------------------------- copy


def copy_codes(x: torch.Tensor) -> torch.Tensor:
    assert torch.all(x.sum(-1) == 1), "inputs are one-hot"
    return x.argmax(-1)


def test_copy_sequence_layout():
    task = CopyTask(seq_len=30, n_symbols=10, n_categories=8)
    x, _ = task.train_batch(50, rng())
    codes = copy_codes(x)
    assert codes.shape == (50, 30 + 20) and task.seq_len == 50 and task.delay == 30
    assert torch.all((codes[:, :10] >= 1) & (codes[:, :10] <= 8))
    assert torch.all(codes[:, 10:39] == 0)  # T - 1 = 29 blanks
    assert torch.all(codes[:, 39] == 9)  # the delimiter
    assert torch.all(codes[:, 40:] == 0)  # the recall period's blank inputs


def test_copy_target_is_blank_then_repeats_the_symbols():
    x, y = CopyTask(seq_len=30).train_batch(50, rng())
    assert torch.all(y[:, :-10] == 0)
    assert torch.equal(y[:, -10:], copy_codes(x)[:, :10])


def test_copy_sizes_follow_the_number_of_categories():
    task = CopyTask(n_categories=5)
    assert task.input_size == 7 and task.output_size == 6
    assert task.train_batch(2, rng())[0].shape[-1] == 7


def test_copy_baseline_matches_the_closed_form_at_the_defaults():
    baseline = CopyTask().baseline()
    assert baseline["loss"] == pytest.approx(10 * math.log(8) / 120, rel=1e-5)
    assert baseline["loss"] == pytest.approx(0.1733, abs=1e-4)
    assert baseline["metric"] == pytest.approx(1 / 8)


def test_copy_baseline_matches_the_closed_form_for_other_sizes():
    baseline = CopyTask(seq_len=30, n_symbols=5, n_categories=4).baseline()
    assert baseline["loss"] == pytest.approx(5 * math.log(4) / 40, rel=1e-5)
    assert baseline["analytic"] == pytest.approx(5 * math.log(4) / 40)
    assert baseline["metric"] == pytest.approx(1 / 4)


def test_copy_metric_scores_only_the_recall_steps():
    task = CopyTask()
    _, y = task.eval_batch()
    always_blank = perfect_output(task, torch.zeros_like(y))
    assert task.metric(always_blank, y) == 0.0  # right on 110 of 120 steps, yet recalls nothing


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), seq_len=st.integers(1, 60), n_symbols=st.integers(1, 12))
def test_copy_layout_holds_for_any_seed_and_size(seed, seq_len, n_symbols):
    task = CopyTask(seq_len=seq_len, n_symbols=n_symbols, eval_size=1)
    x, y = task.train_batch(4, rng(seed))
    codes = copy_codes(x)
    assert codes.shape[1] == seq_len + 2 * n_symbols
    assert torch.all(codes[:, n_symbols + seq_len - 1] == task.delimiter)
    assert int((codes == task.delimiter).sum()) == 4
    assert torch.equal(y[:, -n_symbols:], codes[:, :n_symbols])


# ---------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits() -> DigitsTask:
    return DigitsTask()


def test_digits_split_covers_every_image_once(digits):
    train, test = set(digits.train_index.tolist()), set(digits.test_index.tolist())
    assert not train & test
    assert train | test == set(range(1797))


def test_digits_split_sizes_follow_test_fraction_in_every_class(digits):
    assert abs(len(digits.test_index) - 0.25 * 1797) <= digits.n_classes
    for c in range(digits.n_classes):
        members = np.sum(digits.labels == c)
        in_test = np.sum(digits.labels[digits.test_index] == c)
        assert abs(in_test - 0.25 * members) <= 0.5


def test_digits_eval_batch_is_the_whole_test_split_and_train_set_the_rest(digits):
    ex, ey = digits.eval_batch()
    tx, ty = digits.train_set()
    assert len(ey) == len(digits.test_index) and len(ty) == len(digits.train_index)
    assert len(ey) + len(ty) == 1797


def test_digits_train_batches_come_from_the_train_split(digits):
    train_rows = {row.numpy().tobytes() for row in digits.train_set()[0]}
    x, _ = digits.train_batch(64, rng())
    assert all(row.numpy().tobytes() in train_rows for row in x)


def test_digits_split_depends_only_on_split_seed():
    test_index = DigitsTask(split_seed=3).test_index
    assert np.array_equal(test_index, DigitsTask(split_seed=3).test_index)
    assert not np.array_equal(test_index, DigitsTask(split_seed=4).test_index)


def test_digits_pixels_are_scaled_to_the_unit_interval(digits):
    x, _ = digits.train_set()
    assert x.min() == 0.0 and x.max() == 1.0


def test_digits_pixel_mode_reads_the_same_image_one_pixel_per_step(digits):
    pixels = DigitsTask(mode="pixels")
    assert (pixels.seq_len, pixels.input_size) == (64, 1)
    assert torch.equal(pixels.eval_batch()[0], digits.eval_batch()[0].reshape(-1, 64, 1))


def test_digits_baseline_is_chance_accuracy_and_class_frequency_cross_entropy(digits):
    from sklearn.datasets import load_digits

    labels = load_digits().target
    baseline = digits.baseline()
    assert baseline["metric"] == pytest.approx(1 / len(np.unique(labels))) == 0.1
    counts = Counter(labels[digits.train_index].tolist())
    test_labels = labels[digits.test_index]
    direct = -np.mean([math.log(counts[c] / len(digits.train_index)) for c in test_labels])
    assert baseline["loss"] == pytest.approx(direct, rel=1e-5)
    assert baseline["loss"] == pytest.approx(math.log(10), abs=0.01)  # classes nearly balanced


# ---------------------------------------------------------------- text


@pytest.fixture(scope="module")
def text() -> TextTask:
    return TextTask()


@pytest.fixture(scope="module")
def corpus() -> str:
    from pydoc_data.topics import topics

    return "".join(topics[k] for k in sorted(topics))


def test_text_split_is_first_90_percent_train_last_10_percent_valid(text, corpus):
    n_train, n_valid = len(text.train_codes), len(text.valid_codes)
    assert n_train + n_valid == len(corpus)
    assert abs(n_valid - 0.1 * len(corpus)) <= 1


def test_text_codes_spell_the_corpus_with_rare_characters_as_unk(text, corpus):
    decoded = text.decode(text.train_codes) + text.decode(text.valid_codes)
    assert len(decoded) == len(corpus)
    replaced = {c for c, d in zip(corpus, decoded, strict=True) if c != d}
    assert all(d == text.UNK for c, d in zip(corpus, decoded, strict=True) if c != d)
    train_counts = Counter(corpus[: len(text.train_codes)])
    assert all(train_counts[c] < text.min_count for c in replaced)


def test_text_vocab_is_unk_then_sorted_frequent_training_characters(text, corpus):
    train_counts = Counter(corpus[: len(text.train_codes)])
    expected = sorted(c for c, n in train_counts.items() if n >= 20)
    assert text.vocab == [text.UNK] + expected
    assert text.input_size == text.output_size == len(text.vocab)


def test_text_encode_then_decode_returns_ordinary_text(text):
    sample = "def f(x):\n    return x + 1"
    assert text.decode(text.encode(sample)) == sample


def test_text_targets_are_the_inputs_shifted_by_one(text):
    for x, y in (text.train_batch(8, rng()), text.eval_batch(), text.train_set()):
        assert torch.equal(x.argmax(-1)[:, 1:], y[:, :-1])


def test_text_eval_windows_come_from_the_validation_text(text):
    valid = text.decode(text.valid_codes)
    x, y = text.eval_batch()
    assert len(y) == text.eval_size
    for xi, yi in zip(x, y, strict=True):
        window = text.decode(xi.argmax(-1)[:1]) + text.decode(yi)
        assert window in valid


def test_text_train_set_comes_from_the_training_text(text):
    train = text.decode(text.train_codes)
    x, y = text.train_set()
    assert len(y) == text.eval_size
    assert all(text.decode(xi.argmax(-1)) in train for xi in x[:20])


def test_text_metric_is_the_loss_in_bits(text):
    x, y = text.train_batch(4, rng())
    logits = torch.randn(*y.shape, text.output_size, generator=torch.Generator().manual_seed(0))
    assert text.metric(logits, y) == pytest.approx(text.loss(logits, y).item() / math.log(2))


def test_text_unigram_baseline_equals_a_direct_computation(text):
    counts = Counter(text.train_codes.tolist())
    total, vocab = len(text.train_codes), len(text.vocab)
    _, y = text.eval_batch()
    direct = -np.mean([math.log((counts[c] + 1) / (total + vocab)) for c in y.flatten().tolist()])
    baseline = text.baseline()
    assert baseline["loss"] == pytest.approx(direct, rel=1e-5)
    assert baseline["metric"] == pytest.approx(direct / math.log(2), rel=1e-5)


def test_text_unigram_baseline_is_between_3_and_6_bits_per_char(text):
    assert 3 < text.baseline()["metric"] < 6


def test_text_eval_size_is_limited_by_the_validation_windows():
    with pytest.raises(ValueError, match=r"eval_size=100000 .*\[1, \d+\]"):
        TextTask(eval_size=100_000)


# ---------------------------------------------------------------- bad configurations


def test_unknown_task_name_lists_the_valid_names():
    with pytest.raises(
        ValueError, match="^name='mnist' is invalid: .*'adding', 'copy', 'digits', 'text'"
    ):
        make_task("mnist")


def test_missing_task_name_lists_the_valid_names():
    with pytest.raises(
        ValueError, match="^name=None is invalid: .*'adding', 'copy', 'digits', 'text'"
    ):
        make_task(None)


def test_unknown_parameter_is_named_with_the_task_parameters():
    with pytest.raises(
        ValueError, match=r"^params=\['seqlen'\] is invalid: .*'seq_len', 'eval_size', 'eval_seed'"
    ):
        make_task("adding", seqlen=10)


@pytest.mark.parametrize(
    "name, param, value",
    [
        ("adding", "seq_len", 1),
        ("adding", "seq_len", 2.5),
        ("adding", "seq_len", "50"),
        ("adding", "seq_len", True),
        ("adding", "eval_size", 0),
        ("adding", "eval_seed", -1),
        ("copy", "seq_len", 0),
        ("copy", "n_symbols", 0),
        ("copy", "n_categories", 1),
        ("digits", "test_fraction", 0.0),
        ("digits", "test_fraction", 1.0),
        ("digits", "split_seed", 1.5),
        ("text", "seq_len", 0),
        ("text", "seq_len", 10**7),
        ("text", "valid_fraction", 1.5),
        ("text", "min_count", 0),
    ],
)
def test_bad_size_names_parameter_value_and_valid_range(name, param, value):
    with pytest.raises(ValueError) as error:
        make_task(name, **{param: value})
    message = str(error.value)
    assert param in message and repr(value) in message
    assert any(word in message for word in (">=", "[", "(", "between"))


def test_unknown_digits_mode_lists_the_modes():
    with pytest.raises(ValueError, match="mode='columns'.*'rows', 'pixels'"):
        DigitsTask(mode="columns")


def test_digits_test_fraction_too_small_for_any_test_image_is_rejected():
    with pytest.raises(ValueError, match="^test_fraction=0.001 is invalid: expected a fraction"):
        DigitsTask(test_fraction=0.001)


@pytest.mark.parametrize(
    "name, options",
    [
        ("adding", {"seq_len": 10}),
        ("copy", {"seq_len": 5}),
        ("digits", {}),
        ("text", {"seq_len": 20}),
    ],
)
def test_validation_and_test_are_disjoint_halves_of_the_held_out_set(name, options):
    whole = make_task(name, **options).eval_batch()
    validation = make_task(name, held_out="validation", **options).eval_batch()
    test = make_task(name, held_out="test", **options).eval_batch()
    for part, start in ((validation, 0), (test, 1)):
        assert torch.equal(part[0], whole[0][start::2]) and torch.equal(part[1], whole[1][start::2])
    assert len(validation[1]) + len(test[1]) == len(whole[1])


def test_an_unknown_held_out_part_is_refused_with_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"held_out='dev' is invalid: .*; valid choices: 'all', 'validation'"
    ):
        make_task("adding", held_out="dev")
