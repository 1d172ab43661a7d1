"""The claims ledger: every claim of the source about the four optimizers, tested by a small
experiment, with a verdict computed from what the experiment measured.

A :class:`Claim` holds the claim in our words, the experiment that tests it, a function that
measures named figures from a :class:`Lab` (which runs each experiment once and caches it) and a
:class:`Rule`: thresholds on those figures, written down before anything runs, that turn the
figures into ``supported``, ``not supported`` or ``mixed``. Nothing here types a verdict:

    lab = Lab(Settings())                      # the experiments, at the chapter's default size
    rows = evaluate(CLAIMS, lab)               # one row per claim: measured figures, verdict
    write_csv(rows, "data/claims.csv")         # columns: claim, algorithm, experiment, ...

The chapter's tables are built here too (``grid_table(lab)``, ``cost_table(lab)``, ...: Markdown
strings), so that the chapter holds the calls and the figures.

Experiments are deliberately small (a chapter executes them all in about a minute on one CPU
core): 2-D test functions, an Elman RNN with a few dozen hidden units on short sequences, two
or three seeds. A figure such as "steps to reach the target" is only as good as that scale; the
chapter says so next to each verdict.

The package's modules, each importable on its own (every name below is also importable from
``rnnopt.claims``):

- :mod:`~rnnopt.claims.rules`: ``Threshold``, ``Rule``, ``Claim``, ``format_figure``, ``FOUR``;
- :mod:`~rnnopt.claims.settings`: ``Settings``, every size and grid of the experiments;
- :mod:`~rnnopt.claims.tools`: what the experiments measure with (``steps_to``, ``descend``,
  ``state_per_parameter``, ``ops_per_step``, ``step_seconds``, ``RelabelledDigits``, ...);
- :mod:`~rnnopt.claims.lab`: ``Lab``, the experiments, each run once and cached;
- :mod:`~rnnopt.claims.measures`: the figures each claim measures from the lab;
- :mod:`~rnnopt.claims.registry`: ``CLAIMS``, each claim with its experiment and its rule;
- :mod:`~rnnopt.claims.ledger`: ``evaluate``, ``write_csv`` and the ledger's Markdown tables;
- :mod:`~rnnopt.claims.tables`: the chapter's other curves and tables.
"""

from rnnopt.claims.lab import Lab
from rnnopt.claims.ledger import (
    COLUMNS,
    LEDGER_COLUMNS,
    check_ledger_csv,
    evaluate,
    ledger_table,
    rules_table,
    verdict_counts,
    write_csv,
)
from rnnopt.claims.ledger import REPRODUCE as REPRODUCE
from rnnopt.claims.registry import ADDING as ADDING
from rnnopt.claims.registry import CLAIMS
from rnnopt.claims.registry import COST as COST
from rnnopt.claims.registry import DATA as DATA
from rnnopt.claims.registry import GRID as GRID
from rnnopt.claims.registry import SENSITIVE as SENSITIVE
from rnnopt.claims.registry import SURFACES as SURFACES
from rnnopt.claims.registry import WINDOW as WINDOW
from rnnopt.claims.rules import FOUR, VERDICTS, Claim, Rule, Threshold, format_figure
from rnnopt.claims.settings import Settings
from rnnopt.claims.tables import (
    IMPLEMENTATIONS,
    cost_table,
    data_size_table,
    eval_curves,
    gap_table,
    grid_table,
    implementation_table,
    relearning_curves,
    rung,
    single_sample_table,
    timing_table,
)
from rnnopt.claims.tools import RelabelledDigits as RelabelledDigits
from rnnopt.claims.tools import (
    descend,
    median_step_seconds,
    ops_per_step,
    state_per_parameter,
    step_seconds,
    steps_to,
)
from rnnopt.tasks import DigitsTask as DigitsTask  # as before: claims.DigitsTask

__all__ = [
    "FOUR",
    "VERDICTS",
    "COLUMNS",
    "Threshold",
    "Rule",
    "Claim",
    "Settings",
    "Lab",
    "CLAIMS",
    "evaluate",
    "write_csv",
    "format_figure",
    "steps_to",
    "descend",
    "state_per_parameter",
    "ops_per_step",
    "median_step_seconds",
    "step_seconds",
    "check_ledger_csv",
    "LEDGER_COLUMNS",
    "IMPLEMENTATIONS",
    "eval_curves",
    "relearning_curves",
    "ledger_table",
    "rules_table",
    "verdict_counts",
    "grid_table",
    "data_size_table",
    "single_sample_table",
    "cost_table",
    "rung",
    "timing_table",
    "implementation_table",
    "gap_table",
]
