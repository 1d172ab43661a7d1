"""The algorithm chapter, computed: everything chapters/_templates/algorithm.ipynb shows about one
optimizer, for the book's four and for any other torch optimizer (`rnnopt evaluate` executes the
same template for it as `report.ipynb`).

    page = Page(optimizer="adam", contrast="sgd", text_file="text/adam.md", ...)
    page.prose("Purpose")          # the text's section, its {placeholders} filled from page.facts
    page.source()                  # the update, read from the installed class
    page.trajectories_figure()     # (figure, name, caption) for plots.show

A page keeps two dictionaries: `facts`, the numbers the prose cites as {name}, and `findings`,
True / False / None (inconclusive) outcomes that the prose cites as {supported_if_X} or
{supported_unless_X}. Both are filled by the computations, never typed in the text.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import math
import re
import tempfile
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnopt import checks, protocol
from rnnopt.landscapes import LANDSCAPES, trajectory
from rnnopt.optim import OPTIMIZERS, BaseOptimizer, make_optimizer, optimizer_class

SECTIONS = (
    "Purpose",
    "Mechanism",
    "Pictures",
    "Trajectories",
    "Training",
    "Sensitivity",
    "Tier",
    "Advantages",
    "Disadvantages",
    "Exercises",
)
REQUIRED = ("Purpose", "Mechanism", "Advantages", "Disadvantages")
VERBATIM = ("Purpose", "Mechanism", "Exercises")  # their LaTeX braces are not placeholders
FOUR = ("sgd", "momentum", "rmsprop", "adam")
OTHER_COLOR = "#9467bd"  # an optimizer outside the four
SAME_COLOR = "#ff7f0e"  # the contrast when it is the same method at another learning rate
LR_KEYS = ("steps", "lr", "contrast_lr")
PARAMETERS = (  # the template's parameters cell, in its order
    "optimizer", "hyper", "contrast", "contrast_hyper", "text_file", "tier", "evaluation_dir",
    "surfaces", "tol_2d", "well_lr_grid", "tasks", "hidden_size", "steps", "batch_size",
    "clip_grad_norm", "eval_every", "final_fraction", "seeds", "lr", "contrast_lr", "lr_task",
    "lr_grid", "lr_seeds", "sweep_contrast", "baseline_margin", "workers",
    "threads",
)  # fmt: skip  # a surface's options that are not the surface's own


def fmt(x: Any) -> str:
    """A number as the prose and tables show it: 3 significant digits, or 'diverged'."""
    if x is None:
        return "—"
    if isinstance(x, (bool, str)):
        return str(x)
    return f"{x:.3g}" if math.isfinite(x) else "diverged"


def verdict(finding: bool | None, negate: bool = False) -> str:
    """'supported' when the finding is True (False if the claim is its negation), 'not
    supported' in the opposite case, 'inconclusive' when the finding is None."""
    if finding is None:
        return "**inconclusive**"
    return "**supported**" if bool(finding) != negate else "**not supported**"


def display_name(spec: str) -> str:
    """The book's name for one of its optimizers; a class's own name for any other."""
    if spec in OPTIMIZERS:
        from rnnopt import plots

        return plots.label(spec)
    return optimizer_class(spec).__name__


def color(spec: str) -> str:
    from rnnopt import plots

    return plots.color(spec) if spec in OPTIMIZERS else OTHER_COLOR


def check_optimizer(name: str, spec: Any, hyper_name: str, hyper: Any) -> None:
    """The optimizer (a name or a class spec) and its hyperparameters, built on a stand-in."""
    try:
        optimizer_class(spec)
    except ValueError as err:
        raise ValueError(f"{name}={spec!r} is invalid: {err}") from None
    if not isinstance(hyper, dict) or "lr" in hyper:
        raise ValueError(
            checks.invalid(hyper_name, hyper, "a dict of hyperparameters without 'lr'")
        )
    try:
        make_optimizer(spec, [torch.zeros(1, requires_grad=True)], lr=1e-3, **hyper)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{hyper_name}={hyper!r} is invalid for {spec!r}: {err}") from None


def _positive(name: str, value: Any) -> float:
    return checks.check_number(name, value, low=0, low_open=True)


class Prose:
    """A chapter's text: '# Title', then '## Section' blocks among SECTIONS."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        where = Path(path)
        if not where.is_file():
            raise ValueError(checks.invalid("text_file", self.path, "an existing Markdown file"))
        text = where.read_text(encoding="utf-8")
        if not text.startswith("# "):
            raise ValueError(
                checks.invalid("text_file", self.path, "a Markdown file whose first line is '# '")
            )
        self.title = text.splitlines()[0][2:].strip()
        blocks = re.split(r"^## +(.+?) *$", text, flags=re.MULTILINE)
        self.sections = {h: b.strip() for h, b in zip(blocks[1::2], blocks[2::2], strict=True)}
        unknown = sorted(set(self.sections) - set(SECTIONS))
        missing = [s for s in REQUIRED if s not in self.sections]
        if unknown or missing:
            raise ValueError(
                checks.invalid(
                    "text_file",
                    self.path,
                    f"'## ' sections among {list(SECTIONS)} with {', '.join(REQUIRED)} present "
                    f"(unknown: {unknown}, missing: {missing})",
                )
            )

    def render(self, section: str, facts: Mapping[str, Any], findings: Mapping[str, Any]) -> str:
        """One section as Markdown ('' if the text lacks it). Outside VERBATIM its {placeholders}
        are filled from `facts` (a literal brace is written twice; a MyST role such as
        {cite:p}`key` stays as it is)."""
        body = self.sections.get(section, "")
        if section in VERBATIM or not body:
            return body
        body = re.sub(r"\{([\w:-]+)\}(?=`)", r"{{\1}}", body)
        return body.format_map(_Facts(facts, findings, self.path))

    def exercises(self) -> list[str]:
        """The '### Exercise' blocks as Markdown: each statement, then its solution folded. A
        solution is the block's ```python fence, executed in a namespace of its own (nothing
        injected, nothing left by another solution), so the code shown runs as copied; its
        printed output is shown under it, and nbval checks it like any other output."""
        blocks = re.split(r"^### +(.+?) *$", self.sections.get("Exercises", ""), flags=re.M)[1:]
        shown = []
        for heading, body in zip(blocks[0::2], blocks[1::2], strict=True):
            found = re.search(r"```python\n(.*?)```", body, flags=re.DOTALL)
            statement = body[: found.start()] if found else body
            shown.append(f"**{heading}.** {statement.strip()}")
            if found is None:
                continue
            solution, printed = found.group(1), io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(solution, f"<{self.path}: {heading}>", "exec"), {"__name__": heading})
            shown.append(
                f":::{{admonition}} Solution to {heading.lower()}\n:class: dropdown\n\n"
                f"```python\n{solution}```\n\nOutput:\n\n```text\n{printed.getvalue()}```\n:::"
            )
        return shown


class _Facts(dict):
    """str.format_map's values; {supported_if_X} / {supported_unless_X} give finding X's verdict
    for a claim that X holds, or that it does not."""

    def __init__(self, facts: Mapping[str, Any], findings: Mapping[str, Any], path: str):
        super().__init__(facts)
        self.findings, self.path = findings, path

    def __missing__(self, key: str) -> str:
        for prefix, negate in (("supported_if_", False), ("supported_unless_", True)):
            if key.startswith(prefix) and key[len(prefix) :] in self.findings:
                return verdict(self.findings[key[len(prefix) :]], negate)
        raise ValueError(
            f"{self.path} cites {{{key}}}, which this chapter does not compute; numbers: "
            f"{sorted(self)}; findings: {sorted(self.findings)}"
        )


# --- The update and its cost ------------------------------------------------------------------


def source_listing(spec: str) -> str:
    """The update as Markdown, read from the installed class: for rnnopt's optimizers
    `init_state` and `update` (BaseOptimizer.step calls them), for any other class its `step`."""
    cls = optimizer_class(spec)
    methods = ("init_state", "update") if issubclass(cls, BaseOptimizer) else ("step",)
    shown = []
    for method in methods:
        owner = next(k for k in cls.__mro__ if method in vars(k))  # the class that defines it
        if owner is BaseOptimizer:
            continue  # the base class's no-op: nothing to show
        where = "" if owner is cls else f" (inherited from `{owner.__name__}`)"
        function = getattr(owner, method)
        source = textwrap.dedent(inspect.getsource(function))
        module = owner.__module__
        if module.startswith("rnnopt_user_"):  # loaded from a file: name the file
            module = Path(inspect.getsourcefile(function)).name
        shown.append(
            f"`{cls.__name__}.{method}`{where}, from `{module}`:\n\n```python\n{source}```"
        )
    return "\n\n".join(shown)


def hyperparameter_rows(spec: str, hyper: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(name, default, value used) for every constructor argument but `params`."""
    return [
        (
            f"`{p.name}`",
            "—" if p.default is inspect.Parameter.empty else f"`{p.default!r}`",
            "per experiment" if p.name == "lr" else f"`{hyper.get(p.name, p.default)!r}`",
        )
        for p in inspect.signature(optimizer_class(spec)).parameters.values()
        if p.name != "params" and p.kind is not inspect.Parameter.VAR_KEYWORD
    ]


def update_lines(spec: str) -> int:
    """Lines of code in the update (`update` for rnnopt's, `step` otherwise), leaving out the
    `def` line, comments and blank lines."""
    cls = optimizer_class(spec)
    method = cls.update if issubclass(cls, BaseOptimizer) else cls.step
    lines = inspect.getsource(method).splitlines()[1:]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def state_floats(spec: str, hyper: Mapping[str, Any]) -> float:
    """Floats of optimizer state per weight after one step (protocol.state_bytes_per_parameter,
    in float32 entries)."""
    return protocol.state_bytes_per_parameter(spec, **hyper) / 4


# --- Two-variable surfaces ----------------------------------------------------------------------


def check_surfaces(surfaces: Any) -> dict[str, Any]:
    if not isinstance(surfaces, dict) or not surfaces or not set(surfaces) <= set(LANDSCAPES):
        raise ValueError(
            checks.invalid(
                "surfaces", surfaces, "a non-empty dict of surface -> options", list(LANDSCAPES)
            )
        )
    built = {}
    for surface, options in surfaces.items():
        where = f"surfaces[{surface!r}]"
        if not isinstance(options, dict):
            raise ValueError(checks.invalid(where, options, "a dict of options"))
        checks.check_int(f"{where}['steps']", options.get("steps"), 1)
        for key in ("lr", "contrast_lr"):
            if options.get(key) is not None:  # None: tuned on the surface's lattice
                _positive(f"{where}[{key!r}]", options.get(key))
        shape = {k: v for k, v in options.items() if k not in LR_KEYS}
        try:
            built[surface] = LANDSCAPES[surface](**shape)
        except (TypeError, ValueError) as err:
            valid = [*inspect.signature(LANDSCAPES[surface]).parameters, *LR_KEYS]
            raise ValueError(
                f"{where}={options!r} is invalid: {err}; valid options: {valid}"
            ) from None
    return built


def end_distance(path: np.ndarray, minimum: Any, steps: int) -> float:
    """Distance to the minimum after the last step; inf if the path left the finite numbers."""
    if len(path) < steps + 1:
        return math.inf
    return float(np.linalg.norm(path[-1] - np.asarray(minimum)))


def closer_words(distance: float, other: float) -> str:
    """How the end distance compares with the other's, the factor computed: '135 times closer
    to the minimum than', '4.2 times farther from the minimum than', 'about as far from the
    minimum as' (within 10 %), for a sentence '<name> ends <words> <other name>'."""
    if math.isinf(distance) or math.isinf(other):
        return {
            (True, True): "as diverged as",
            (True, False): "diverged, far farther from the minimum than",
            (False, True): "closer to the minimum than the diverged",
        }[math.isinf(distance), math.isinf(other)]
    if distance == other:
        return "exactly as far from the minimum as"
    if distance == 0 or other == 0:
        return ("at the minimum itself, unlike" if distance == 0
                else "away from the minimum, unlike the exact arrival of")  # fmt: skip
    ratio = other / distance
    if 1 / 1.1 < ratio < 1.1:
        return "about as far from the minimum as"
    factor = ratio if ratio > 1 else 1 / ratio
    shown = (
        f"{factor:.2g}" if factor < 10 else f"{factor:.0f}" if factor < 1000
        else f"more than $10^{{{int(math.log10(factor))}}}$"
    )  # fmt: skip
    return f"{shown} times {'closer to' if ratio > 1 else 'farther from'} the minimum than"


def floats_words(n: float) -> str:
    """'0 floats', '1 float', '2 floats': a count of state floats with its noun."""
    return f"{fmt(n)} float{'' if n == 1 else 's'}"


def closer(distance: float, other: float, factor: float = 2.0) -> bool | None:
    """True: ended at least `factor` times closer to the minimum than the other; False: at
    least `factor` times farther; None: within a factor of each other."""
    if distance * factor <= other:
        return True
    if other * factor <= distance:
        return False
    return None


# --- Everything one page computes -------------------------------------------------------------


class Page:
    """The parameters of one algorithm page, checked, and what it computes from them.

    Each method fills `facts` and `findings` as it goes and returns what the template displays:
    Markdown, or (figure, name, caption) for plots.show."""

    def __init__(self, **values: Any):
        missing = [name for name in PARAMETERS if name not in values]
        if missing:
            raise TypeError(f"Page() lacks the parameters {missing}")
        # A deep copy: tuning fills in the rates a surface leaves as None, and that must not
        # change the notebook's own parameters (a rerun would take them as given).
        self.__dict__.update(copy.deepcopy(values))
        self.facts: dict[str, Any] = {}
        self.findings: dict[str, bool | None] = {}
        self._check()
        self.name = display_name(self.optimizer)
        self.contrast_name = display_name(self.contrast)
        if self.contrast == self.optimizer:  # the same method at another learning rate
            self.contrast_name += " (other lr)"
        self.main_color = color(self.optimizer)
        self.contrast_color = (
            SAME_COLOR if self.contrast == self.optimizer else color(self.contrast)
        )
        self.same = self.contrast == self.optimizer
        # the contrast in a caption's sentence: its name, or the same method's other rate
        self.contrast_words = (
            f"{self.name} at the other learning rate" if self.same else self.contrast_name
        )
        self.facts.update(name=self.name, contrast_name=self.contrast_name)
        self.workdir = tempfile.TemporaryDirectory()  # the live sweeps' runs
        self.roles = (
            ("main", self.name, self.optimizer, self.hyper, self.main_color, "-"),
            ("contrast", self.contrast_name, self.contrast, self.contrast_hyper,
             self.contrast_color, "--"),
        )  # fmt: skip

    def _check(self) -> None:
        check_optimizer("optimizer", self.optimizer, "hyper", self.hyper)
        check_optimizer("contrast", self.contrast, "contrast_hyper", self.contrast_hyper)
        self.text = Prose(self.text_file)
        self.landscapes = check_surfaces(self.surfaces)
        _positive("tol_2d", self.tol_2d)
        checks.check_list("well_lr_grid", self.well_lr_grid, _positive, increasing=True)
        from rnnopt import page_live

        page_live.check(self)
        checks.check_choice("tier", self.tier, ("quick", "full", ""))
        if self.tier:
            checks.check_choice("contrast", self.contrast, FOUR)  # its runs are the tier's
        if self.tier and self.optimizer not in FOUR and not self.evaluation_dir:
            raise ValueError(
                checks.invalid("evaluation_dir", "", f"the `rnnopt evaluate` --out directory of "
                               f"{self.optimizer!r} (only the four have stored runs)")
            )  # fmt: skip
        if self.evaluation_dir and not (Path(self.evaluation_dir) / "evaluation.json").is_file():
            raise ValueError(
                checks.invalid("evaluation_dir", self.evaluation_dir, "an `rnnopt evaluate` --out")
            )

    def figure_name(self, key: str) -> str:
        """The Sphinx name of one of this page's figures, unique in the book."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")
        return f"fig-{self.optimizer if self.optimizer in OPTIMIZERS else slug}-{key}"

    def prose(self, section: str) -> str:
        return self.text.render(section, self.facts, self.findings)

    # The update
    def source(self) -> str:
        return source_listing(self.optimizer)

    def hyperparameters(self) -> list[tuple[str, str, str]]:
        return hyperparameter_rows(self.optimizer, self.hyper)

    def cost(self) -> list[tuple[str, str, int]]:
        """Table 1's rows: state floats per weight and lines of code in the update."""
        cost = {
            role: (state_floats(spec, hyper), update_lines(spec))
            for role, _, spec, hyper, _, _ in self.roles
        }
        self.facts.update(
            state_floats=floats_words(cost["main"][0]),
            contrast_state_floats=floats_words(cost["contrast"][0]),
            update_lines=cost["main"][1],
            contrast_update_lines=cost["contrast"][1],
        )
        self.findings["stateless"] = cost["main"][0] == 0
        self.findings["less_state"] = (
            None
            if cost["main"][0] == cost["contrast"][0]
            else cost["main"][0] < cost["contrast"][0]
        )
        rows = [(self.name, fmt(cost["main"][0]), cost["main"][1])]
        if (self.contrast, self.contrast_hyper) != (self.optimizer, self.hyper):
            rows.append((self.contrast_name, fmt(cost["contrast"][0]), cost["contrast"][1]))
        return rows

    # Surfaces
    def surface_lr(self, surface: str, key: str) -> float:
        """The given rate, or (None) the one tuned over many starts (rnnopt.page_surfaces)."""
        from rnnopt.page_surfaces import surface_rate

        return surface_rate(self, surface, key)

    def trajectories(self) -> dict[tuple[str, str], np.ndarray]:
        """(surface, role) -> the visited points, (steps + 1, 2)."""
        self.paths = {}
        for surface, options in self.surfaces.items():
            for role, key, spec, hyper in (
                ("main", "lr", self.optimizer, self.hyper),
                ("contrast", "contrast_lr", self.contrast, self.contrast_hyper),
            ):
                lr = self.surface_lr(surface, key)
                self.paths[surface, role] = trajectory(
                    self.landscapes[surface], spec, options["steps"], lr=lr, **hyper
                )
        return self.paths

    def trajectories_figure(self):
        """(figure, name, caption): both optimizers' paths on every surface."""
        import matplotlib.pyplot as plt

        from rnnopt import plots

        fig = plt.figure(figsize=(plots.COLUMN_INCHES, 6.0))
        grid = fig.add_gridspec(2, max(len(self.surfaces) - 1, 1), height_ratios=[1, 1.4])
        axes = [fig.add_subplot(grid[0, :])]  # the first surface (a wide valley) across the top
        axes += [fig.add_subplot(grid[1, i]) for i in range(len(self.surfaces) - 1)]
        for ax, (surface, options) in zip(axes, self.surfaces.items(), strict=True):
            labels = {
                "main": f"{self.name}, lr = {options['lr']:g}",
                "contrast": f"{self.contrast_name}, lr = {options['contrast_lr']:g}",
            }
            plots.plot_landscape(
                ax,
                self.landscapes[surface],
                {labels[r]: self.paths[surface, r] for r in labels},
                colors={labels["main"]: self.main_color, labels["contrast"]: self.contrast_color},
                styles={labels["contrast"]: "--"},
            )
            ax.set_title(f"{self.landscapes[surface].name}, {options['steps']} steps", fontsize=10)
            ax.legend(loc="upper right" if surface == "rosenbrock" else "lower right", fontsize=7.5)
        caption = (
            f"{self.name} (solid) and {self.contrast_words} (dashed) from the black dot; the star "
            f"is the (global) minimum. On the quadratic, look at the steep direction $y$: how "
            f"often the path crosses the valley floor, and how far along the valley it gets. On "
            f"the double well, see which side of the ridge each path ends on."
        )
        return fig, self.figure_name("trajectories"), caption

    def surface_table(self) -> tuple[list[tuple], str]:
        """Table 2's rows (distance at the end, first step within tol_2d) and its caption tail."""
        rows = []
        for surface, options in self.surfaces.items():
            landscape = self.landscapes[surface]
            for role, label, key in (
                ("main", self.name, "lr"),
                ("contrast", self.contrast_name, "contrast_lr"),
            ):
                path = self.paths[surface, role]
                distance = end_distance(path, landscape.minimum, options["steps"])
                near = np.flatnonzero(
                    np.linalg.norm(path - np.asarray(landscape.minimum), axis=1) < self.tol_2d
                )
                hit = int(near[0]) if len(near) else None
                tag = surface if role == "main" else f"{surface}_contrast"
                self.facts.update(
                    {
                        f"{tag}_lr": fmt(options[key]),
                        f"{tag}_distance": fmt(distance),
                        f"{tag}_reach": "never" if hit is None else hit,
                    }
                )
                self.findings[f"{tag}_reached"] = hit is not None
                rows.append(
                    (landscape.name, label, fmt(options[key]), options["steps"], fmt(distance),
                     "never" if hit is None else f"step {hit}")
                )  # fmt: skip
            self.facts[f"{surface}_steps"] = options["steps"]
            ends = [
                end_distance(self.paths[surface, role], landscape.minimum, options["steps"])
                for role in ("main", "contrast")
            ]
            self.findings[f"{surface}_closer"] = closer(*ends)
            self.facts[f"{surface}_closer_word"] = closer_words(*ends)
        self.facts["tol_2d"] = fmt(self.tol_2d)
        caption = ""
        if "quadratic" in self.surfaces:
            # Plain SGD is stable for lr < 2 / kappa, heavy ball for lr kappa < 2 + 2 mu.
            kappa = self.surfaces["quadratic"].get(
                "kappa", inspect.signature(LANDSCAPES["quadratic"]).parameters["kappa"].default
            )
            signature = inspect.signature(optimizer_class(self.optimizer)).parameters
            default = signature["momentum"].default if "momentum" in signature else 0
            mu = self.hyper.get("momentum", default)
            self.facts.update(
                kappa=fmt(kappa),
                sgd_limit=fmt(2 / kappa),
                heavy_ball_limit=fmt((2 + 2 * mu) / kappa),
            )
            # Oscillation across the valley: sign changes of the steep coordinate y.
            flips = {
                role: int(np.sum(np.diff(np.sign(self.paths["quadratic", role][:, 1])) != 0))
                for role in ("main", "contrast")
            }
            self.facts.update(
                quadratic_flips=flips["main"], quadratic_contrast_flips=flips["contrast"],
                quadratic_flips_word="fewer times than" if flips["main"] < flips["contrast"]
                else "more times than" if flips["main"] > flips["contrast"] else "as many times as",
            )  # fmt: skip
            self.findings["quadratic_fewer_flips"] = (
                None if flips["main"] == flips["contrast"] else flips["main"] < flips["contrast"]
            )
            caption = (
                f" On the quadratic the steep coordinate $y$ changes sign {flips['main']} times "
                f"along {self.name}'s path and {flips['contrast']} times "
                + ("at the other learning rate." if self.same else f"along {self.contrast_name}'s.")
            )
        return rows, caption

    def double_well(self) -> list[tuple] | None:
        """Table 3's rows, at equal effective step over many starts (rnnopt.page_surfaces)."""
        from rnnopt.page_surfaces import double_well_rows

        return double_well_rows(self)

    def findings_table(self) -> list[tuple[str, str]]:
        """Table 6: every finding of the page in words, with its verdict."""
        from rnnopt.page_live import describe

        return [
            (describe(self, key), verdict(value)) for key, value in sorted(self.findings.items())
        ]

    def exercises(self) -> list[str]:
        """The exercises, each solution executed on its own (rnnopt.page.Prose.exercises)."""
        return self.text.exercises()
