"""CLAIMS: every claim of the source about the four optimizers, in our words, with the
experiment that tests it, what it measures (:mod:`rnnopt.claims.measures`) and its rule: the
thresholds that decide it, written down before any experiment runs."""

from __future__ import annotations

from rnnopt.claims.measures import (
    _adam_combines,
    _adam_generalise,
    _adam_scale,
    _adam_tasks,
    _adam_tuning,
    _cost,
    _lr_window,
    _momentum_beta,
    _momentum_damping,
    _momentum_faster,
    _momentum_minima,
    _rmsprop_adapt,
    _rmsprop_switch,
    _rmsprop_vanishing,
    _sgd_convex,
    _sgd_data,
    _sgd_noise,
    _sgd_simple,
    _sgd_single,
    _sgd_surfaces,
    _speed,
)
from rnnopt.claims.rules import Claim, Rule, Threshold


def _cost_rule(name: str) -> Rule:
    return Rule(
        (
            Threshold(f"{name} state numbers/param", ">=", 1),
            Threshold(f"memory traffic {name}/SGD", ">=", 1.5),
        ),
        (Threshold(f"{name} state numbers/param", "<=", 0),),
    )


# Chapter sections (headings of chapters/claims.ipynb) where the deciding figures are.
GRID = "The learning-rate grid on the adding problem"
SURFACES = "Convex and non-convex surfaces"
DATA = "Data size and one sample at a time"
COST = "Cost"

ADDING = (
    "adding problem (T = adding_seq_len), Elman RNN, lr grid per optimizer, "
    "seeds averaged; steps until the held-out MSE first falls to "
    "target_fraction × the baseline, at the fastest grid lr"
)
WINDOW = (
    "adding problem lr grid (half-decade steps): decades of lr whose final held-out MSE "
    "is within window_margin of the way from the best to the baseline"
)


SENSITIVE = Rule(
    (Threshold("{} lr window (decades)", "<=", 1.5),),
    (Threshold("{} lr window (decades)", ">=", 3),),
)


def _sensitive(name: str) -> Rule:
    return Rule(
        tuple(Threshold(t.figure.format(name), t.op, t.value) for t in SENSITIVE.supported),
        tuple(Threshold(t.figure.format(name), t.op, t.value) for t in SENSITIVE.not_supported),
    )


def _faster(name: str, reference: str) -> Rule:
    figure = f"steps to target, {name}/{reference}"
    return Rule((Threshold(figure, "<=", 0.7),), (Threshold(figure, ">=", 1.0),))


CLAIMS: tuple[Claim, ...] = (
    # --- SGD
    Claim(
        "sgd-simple",
        "sgd",
        "SGD is simple and easy to implement.",
        "count the tensor operations one optimizer step makes on a parameter (second step) "
        "and the optimizer state it keeps",
        _sgd_simple,
        Rule(
            (
                Threshold("SGD ops / fewest ops of the others", "<=", 0.7),
                Threshold("SGD state numbers/param", "<=", 0),
            ),
            (Threshold("SGD ops / fewest ops of the others", ">=", 1.0),),
        ),
        shown=(
            "SGD tensor ops/step",
            "SGD ops / fewest ops of the others",
            "SGD state numbers/param",
        ),
        section=COST,
    ),
    Claim(
        "sgd-large-data",
        "sgd",
        "SGD copes with very large data sets: the cost of a step does not grow with the data.",
        "digits with a small (25 %) and a large (75 %) training split: training samples "
        "read per SGD step, and the optimizer state, which does not depend on the data",
        _sgd_data,
        Rule(
            (
                Threshold("samples/step large/small", "<=", 1.05),
                Threshold("SGD state numbers/param", "<=", 0),
            ),
            (Threshold("samples/step large/small", ">=", 2.0),),
        ),
        shown=("train-set size ratio", "samples/step large/small", "SGD state numbers/param"),
        section=DATA,
    ),
    Claim(
        "sgd-convex",
        "sgd",
        "SGD works well on simple convex problems.",
        "quadratic ravine (condition number kappa), landscape_starts random starts, best "
        "lr of a grid: share of starts within 1e-4 of the minimum, steps against the "
        "fastest other method",
        _sgd_convex,
        Rule(
            (
                Threshold("SGD converged fraction", ">=", 0.999),
                Threshold("SGD steps / fastest other", "<=", 3),
            ),
            (Threshold("SGD converged fraction", "<=", 0.5),),
        ),
        section=SURFACES,
    ),
    Claim(
        "sgd-slow-noisy",
        "sgd",
        "SGD converges slowly because its updates are noisy.",
        ADDING + "; and SGD's final MSE with an 8× larger batch (less gradient noise) "
        "relative to the grid's batch, same lr and steps",
        _sgd_noise,
        Rule(
            (
                Threshold("SGD steps / fastest other", ">=", 1.5),
                Threshold("loss with 8× batch / loss", "<=", 0.8),
            ),
            (Threshold("SGD steps / fastest other", "<=", 1.0),),
        ),
        shown=("SGD steps", "fastest other's steps", "loss with 8× batch / loss"),
        section=GRID,
    ),
    Claim(
        "sgd-lr-sensitive",
        "sgd",
        "SGD is sensitive to the learning rate.",
        WINDOW,
        _lr_window("sgd"),
        _sensitive("sgd"),
        section=GRID,
    ),
    Claim(
        "sgd-local-minima",
        "sgd",
        "SGD may struggle with complicated loss surfaces and local minima.",
        "double well, landscape_starts random starts, lr 0.01/0.03/0.1: share ending at "
        "the global minimum; Rosenbrock from its standard start: distance to the minimum after "
        "landscape_steps at the best lr of a grid",
        _sgd_surfaces,
        Rule(
            (
                Threshold("SGD global-minimum fraction (double well)", "<=", 0.75),
                Threshold("SGD distance to Rosenbrock minimum", ">=", 0.01),
            ),
            (
                Threshold("SGD global-minimum fraction (double well)", ">=", 0.9),
                Threshold("SGD distance to Rosenbrock minimum", "<=", 0.01),
            ),
        ),
        section=SURFACES,
    ),
    Claim(
        "sgd-one-sample",
        "sgd",
        "(Summary table) SGD steps on one training sample at a "
        "time; this works as well as steps on minibatches.",
        "digits, SGD with batch 1 against minibatches after the same number of samples "
        "(minibatch_samples): final held-out loss, mean over seeds",
        _sgd_single,
        Rule(
            (Threshold("loss batch 1 / minibatch, same samples", "<=", 1.1),),
            (Threshold("loss batch 1 / minibatch, same samples", ">=", 1.5),),
        ),
        section=DATA,
    ),
    # --- Momentum
    Claim(
        "momentum-faster",
        "momentum",
        "Momentum converges faster than SGD.",
        ADDING + "; and steps to 1e-4 on the quadratic ravine at each one's best lr",
        _momentum_faster,
        Rule(
            (
                Threshold("steps to target, momentum/sgd", "<=", 0.7),
                Threshold("quadratic steps momentum/SGD", "<=", 0.7),
            ),
            (
                Threshold("steps to target, momentum/sgd", ">=", 1.0),
                Threshold("quadratic steps momentum/SGD", ">=", 1.0),
            ),
        ),
        shown=("momentum steps", "sgd steps", "quadratic steps momentum/SGD"),
        section=GRID,
    ),
    Claim(
        "momentum-local-minima",
        "momentum",
        "Momentum helps escape local minima.",
        "double well, the same random starts, momentum 0.9 against SGD at the same "
        "learning rates (0.01, 0.03, 0.1): share of starts that end at the global minimum",
        _momentum_minima,
        Rule(
            (Threshold("global-minimum fraction momentum − SGD", ">=", 0.1),),
            (Threshold("global-minimum fraction momentum − SGD", "<=", 0),),
        ),
        section=SURFACES,
    ),
    Claim(
        "momentum-damps",
        "momentum",
        "Momentum damps oscillations.",
        "quadratic ravine: SGD at lr = 1.8/kappa zig-zags across the steep axis; momentum "
        "0.9 at lr × 0.1 (the same step for a steady gradient); distance travelled along "
        "the steep axis in 100 steps, and how often that motion reverses",
        _momentum_damping,
        Rule(
            (Threshold("steep-axis path length momentum/SGD", "<=", 0.7),),
            (Threshold("steep-axis path length momentum/SGD", ">=", 1.0),),
        ),
        shown=("steep-axis path length momentum/SGD", "direction reversals momentum/SGD"),
        section="Momentum",
    ),
    Claim(
        "momentum-beta-tuning",
        "momentum",
        "Momentum's coefficient needs careful tuning.",
        "adding problem at momentum's best grid lr with β = 0.5, 0.9, 0.99: spread of the "
        "final held-out MSE",
        _momentum_beta,
        Rule(
            (Threshold("worst/best final loss over β ∈ {0.5, 0.9, 0.99}", ">=", 1.5),),
            (Threshold("worst/best final loss over β ∈ {0.5, 0.9, 0.99}", "<=", 1.2),),
        ),
        section="Momentum",
    ),
    Claim(
        "momentum-lr-sensitive",
        "momentum",
        "Momentum is still sensitive to the learning rate.",
        WINDOW,
        _lr_window("momentum"),
        _sensitive("momentum"),
        section=GRID,
    ),
    # --- RMSprop
    Claim(
        "rmsprop-per-parameter",
        "rmsprop",
        "RMSprop adapts the step size of each parameter.",
        "adding problem, 50 steps at the best grid lr, then one step: the effective step "
        "|Δθ|/(lr·|g|) of every weight; spread between its 90th and 10th percentile",
        _rmsprop_adapt,
        Rule(
            (Threshold("RMSprop step/gradient spread (p90/p10)", ">=", 10),),
            (Threshold("RMSprop step/gradient spread (p90/p10)", "<=", 2),),
        ),
        section="RMSprop",
    ),
    Claim(
        "rmsprop-non-stationary",
        "rmsprop",
        "RMSprop suits non-stationary objectives such as training recurrent networks.",
        "digits for digits_steps, then the labels shift (c → c+1 mod 10): steps after the "
        "switch until held-out accuracy is back at accuracy_target, RMSprop against SGD",
        _rmsprop_switch,
        Rule(
            (Threshold("recovery steps RMSprop/SGD", "<=", 0.7),),
            (Threshold("recovery steps RMSprop/SGD", ">=", 1.0),),
        ),
        shown=("RMSprop recovery steps", "SGD recovery steps", "recovery steps RMSprop/SGD"),
        section="RMSprop",
    ),
    Claim(
        "rmsprop-vanishing",
        "rmsprop",
        "RMSprop helps against vanishing gradients.",
        "adding problem with T = long_seq_len at each one's best short-T lr: W_hh's step "
        "per unit gradient (‖ΔW_hh‖/(lr‖g‖)) and the final held-out MSE, RMSprop against SGD",
        _rmsprop_vanishing,
        Rule(
            (
                Threshold("W_hh step per unit gradient, RMSprop/SGD", ">=", 10),
                Threshold("long-T MSE RMSprop/SGD", "<=", 0.8),
            ),
            (
                Threshold("W_hh step per unit gradient, RMSprop/SGD", "<=", 10),
                Threshold("long-T MSE RMSprop/SGD", ">=", 1.0),
            ),
        ),
        shown=(
            "W_hh step per unit gradient, RMSprop/SGD",
            "long-T MSE RMSprop/SGD",
            "RMSprop MSE/baseline",
            "SGD MSE/baseline",
        ),
        section="RMSprop",
    ),
    Claim(
        "rmsprop-lr-tuning",
        "rmsprop",
        "RMSprop's learning rate still needs tuning.",
        WINDOW,
        _lr_window("rmsprop"),
        _sensitive("rmsprop"),
        section=GRID,
    ),
    Claim(
        "rmsprop-cost",
        "rmsprop",
        "RMSprop needs more computation and memory than SGD.",
        "optimizer state counted per parameter; memory traffic per parameter per step "
        "(3 + 2 × state numbers) and tensor operations per step, counted; step time is "
        "measured in the chapter but kept out of the ledger, as it varies run to run",
        _cost("rmsprop"),
        _cost_rule("rmsprop"),
        section=COST,
    ),
    # --- Adam
    Claim(
        "adam-combines",
        "adam",
        "Adam combines the strengths of momentum and RMSprop.",
        ADDING + "; Adam against the faster of its two parents, and ablated: β1 = 0 (no "
        "momentum) and β2 = 0.9, at Adam's fastest lr",
        _adam_combines,
        Rule(
            (
                Threshold("Adam steps / better parent", "<=", 1.0),
                Threshold("β1=0 steps / Adam", ">=", 1.2),
            ),
            (Threshold("Adam steps / better parent", ">=", 1.5),),
        ),
        section="Adam",
    ),
    Claim(
        "adam-moments",
        "adam",
        "Adam sets each step from moment estimates, so its step "
        "stays near the learning rate whatever the gradient's scale.",
        "adding problem, 20 steps at lr 1e-3 with the loss multiplied by 0.01, 1 and 100: "
        "mean |Δθ| per step divided by lr, Adam against SGD",
        _adam_scale,
        Rule(
            (Threshold("Adam step/lr max/min over loss ×0.01…×100", "<=", 1.5),),
            (Threshold("Adam step/lr max/min over loss ×0.01…×100", ">=", 10),),
        ),
        shown=(
            "Adam step/lr max/min over loss ×0.01…×100",
            "Adam step/lr at ×1",
            "SGD step/lr max/min",
        ),
        section="Adam",
    ),
    Claim(
        "adam-across",
        "adam",
        "Adam works well across architectures and data sets.",
        "adding, copy, digits and text × Elman and LSTM cores, each optimizer at its best "
        "adding-grid lr, task_steps steps: rank of Adam's held-out loss among the four",
        _adam_tasks,
        Rule(
            (Threshold("Adam worst rank (of 4)", "<=", 2),),
            (Threshold("share of (task, core) with Adam last", ">=", 0.5),),
        ),
        shown=("Adam worst rank (of 4)", "Adam mean rank", "share of (task, core) with Adam last"),
        section="Adam",
    ),
    Claim(
        "adam-less-tuning",
        "adam",
        "Adam needs less tuning of its learning rate and other hyperparameters.",
        WINDOW + "; Adam against the other three",
        _adam_tuning,
        Rule(
            (Threshold("Adam window − widest other (decades)", ">=", 0.5),),
            (Threshold("Adam window − SGD window", "<=", 0),),
        ),
        shown=(
            "Adam lr window (decades)",
            "Adam window − widest other (decades)",
            "Adam window − SGD window",
        ),
        section=GRID,
    ),
    Claim(
        "adam-faster",
        "adam",
        "Adam converges faster (than SGD).",
        ADDING,
        _speed("adam", "sgd"),
        _faster("adam", "sgd"),
        shown=("adam steps", "sgd steps"),
        section=GRID,
    ),
    Claim(
        "adam-cost",
        "adam",
        "Adam is more computationally expensive than SGD.",
        "optimizer state counted per parameter; memory traffic per parameter per step "
        "(3 + 2 × state numbers) and tensor operations per step, counted; step time is "
        "measured in the chapter but kept out of the ledger, as it varies run to run",
        _cost("adam"),
        _cost_rule("adam"),
        section=COST,
    ),
    Claim(
        "adam-generalises-worse",
        "adam",
        "Adam may generalise worse than SGD, or overfit.",
        "held-out minus training loss after training: digits (digits_steps) and text "
        "(text_steps), Adam minus SGD",
        _adam_generalise,
        Rule(
            (
                Threshold("digits gap Adam − SGD (nats)", ">=", 0.05),
                Threshold("text gap Adam − SGD (nats/char)", ">=", 0.05),
            ),
            (
                Threshold("digits gap Adam − SGD (nats)", "<=", 0),
                Threshold("text gap Adam − SGD (nats/char)", "<=", 0),
            ),
        ),
        section="Generalisation",
    ),
)
