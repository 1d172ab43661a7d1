"""Plotting helpers shared by the book's chapters: one look, one colour per optimizer.

Every chapter calls :func:`setup` once, then draws with the helpers below, so that Adam is the
same colour in every figure of the book and every figure has labelled axes:

- :func:`plot_landscape`: contours of a 2-D test function with optimizer paths across it;
- :func:`plot_mean_spread`: a quantity against the step, mean over seeds and its min-max band;
- :func:`plot_lr_sensitivity`: final loss against learning rate, diverged runs marked at the top;
- :func:`plot_baseline`: a task's trivial baseline as a horizontal line;
- :func:`markdown_table`: rows of numbers as a Markdown table for ``IPython.display.Markdown``;
- :func:`show`: display a figure as a numbered, captioned figure of the book (and as a plain
  PNG in Jupyter), refusing one wider than the book's column;
- :func:`sequential_colors`: n colours of one ordered palette that can be told apart.

Sizes: a cell output of the book is 672 px wide in the 1,280-px layout, and figures are drawn at
110 dpi, so a figure at most :data:`COLUMN_INCHES` wide is shown at its own size, never shrunk;
the smallest type the book uses, :data:`MIN_FONT_PT`, is then 10 px or more on the screen.

Runs that diverged arrive as NaN (or as paths cut short): the helpers draw what is finite and
never raise because of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes

from rnnopt.landscapes import Landscape

__all__ = [
    "OPTIMIZER_COLORS",
    "OPTIMIZER_LABELS",
    "color",
    "label",
    "setup",
    "plot_landscape",
    "plot_mean_spread",
    "plot_baseline",
    "plot_lr_sensitivity",
    "markdown_table",
    "show",
    "sequential_colors",
    "COLUMN_INCHES",
    "DPI",
    "MIN_FONT_PT",
]

DPI = 110
COLUMN_PX = 672  # the width of a cell output in the book at a 1,280-px window (sphinx-book-theme)
COLUMN_INCHES = COLUMN_PX / DPI  # 6.1 in
MIN_FONT_PT = 7.5  # smallest type in any figure: 7.5 pt at 110 dpi = 11.5 px

# One colour per optimizer for the whole book (colour-blind-safe tableau colours).
OPTIMIZER_COLORS: dict[str, str] = {
    "sgd": "#7f7f7f",  # grey: the reference every other method is compared with
    "momentum": "#1f77b4",  # blue
    "rmsprop": "#2ca02c",  # green
    "adam": "#d62728",  # red
    "adamw": "#9467bd",  # purple
}
OPTIMIZER_LABELS: dict[str, str] = {
    "sgd": "SGD",
    "momentum": "Momentum",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adamw": "AdamW",
}
BASELINE_COLOR = "black"


def color(optimizer: str) -> str:
    """The book's colour for a registered optimizer name (black for any other name)."""
    return OPTIMIZER_COLORS.get(optimizer, "black")


def label(optimizer: str) -> str:
    """The display name of a registered optimizer name (the name itself for any other)."""
    return OPTIMIZER_LABELS.get(optimizer, optimizer)


def setup() -> None:
    """Matplotlib defaults for the book: PNG at 110 dpi, readable fonts, light grids; and
    pyplot's interactive mode off, so that a figure appears only where :func:`show` puts it
    (numbered, captioned), never a second time when the cell that created it ends."""
    import matplotlib.pyplot as plt

    # Load the backend now: IPython's inline backend switches interactive mode on when it is
    # first loaded, which pyplot otherwise does lazily, at the first figure.
    plt.switch_backend(mpl.get_backend())
    plt.ioff()
    mpl.rcParams.update(
        {
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "savefig.format": "png",
            "figure.figsize": (COLUMN_INCHES, 3.6),
            "figure.constrained_layout.use": True,
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "legend.fontsize": 9,
            "xtick.labelsize": 9,
            "ytick.labelsize": 9,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
            "lines.linewidth": 1.6,
            # Log axes label 0.01 … 100 as decimals (0.2, not 2 × 10⁻¹); only beyond as powers.
            "axes.formatter.min_exponent": 3,
        }
    )


def plot_landscape(
    ax: Axes,
    landscape: Landscape,
    paths: Mapping[str, np.ndarray],
    colors: Mapping[str, str] | None = None,
    styles: Mapping[str, str] | None = None,
    levels: int = 15,
    points: int = 200,
) -> Axes:
    """Contours of ``landscape`` (log-spaced levels of f - min f) with ``paths`` drawn over them.

    ``paths`` maps a legend label to an (n, 2) array of visited points, as
    :func:`rnnopt.landscapes.trajectory` returns; ``colors`` and ``styles`` (matplotlib line
    styles) map the same labels. The start is a black circle and the minimum a black star. A
    path that leaves the window is drawn up to the window's edge; its non-finite points are
    dropped.
    """
    X, Y, Z = landscape.grid(points)
    height = Z - Z.min()  # >= 0 even where f is negative, so that levels can be log-spaced
    top = float(height.max())
    positive = height[height > 0]
    low = max(float(positive.min()), top * 1e-5) if positive.size else top * 1e-5
    contour_levels = np.geomspace(low, top, levels) if top > 0 else levels
    ax.contour(X, Y, height, levels=contour_levels, cmap="Greys_r", linewidths=0.7, alpha=0.6)
    for name, path in paths.items():
        path = np.asarray(path, dtype=float).reshape(-1, 2)
        path = path[np.isfinite(path).all(axis=1)]
        if len(path) == 0:
            continue
        ax.plot(
            path[:, 0],
            path[:, 1],
            (styles or {}).get(name, "-"),
            marker=".",
            markersize=3,
            color=(colors or {}).get(name),
            label=name,
            linewidth=1.2,
        )
    ax.plot(*landscape.start, "o", color="black", markersize=6, label="start")
    ax.plot(*landscape.minimum, "*", color="black", markersize=11, label="minimum")
    ax.set_xlim(*landscape.xlim)
    ax.set_ylim(*landscape.ylim)
    ax.set_xlabel("$x$ (parameter 1)")
    ax.set_ylabel("$y$ (parameter 2)")
    ax.set_title(landscape.name)
    ax.grid(False)
    return ax


def plot_mean_spread(
    ax: Axes,
    steps: Sequence[float],
    curves: Sequence[Sequence[float]] | np.ndarray,
    label: str,
    color: str | None = None,
    linestyle: str = "-",
) -> Axes:
    """Mean over seeds (a line) and min-max over seeds (a band) of ``curves``, one row per seed.

    Rows may be shorter than ``steps`` (a run stopped when it diverged) or hold NaN: at each
    step the mean and band are over the seeds with a finite value there, and nothing is drawn
    where no seed has one.
    """
    steps = np.asarray(steps, dtype=float)
    values = np.full((len(curves), len(steps)), np.nan)
    for row, curve in enumerate(curves):
        curve = np.asarray(curve, dtype=float)[: len(steps)]
        values[row, : len(curve)] = curve
    values[~np.isfinite(values)] = np.nan
    seen = np.isfinite(values).any(axis=0)
    mean = np.full(len(steps), np.nan)
    low, high = mean.copy(), mean.copy()
    if seen.any():
        mean[seen] = np.nanmean(values[:, seen], axis=0)
        low[seen] = np.nanmin(values[:, seen], axis=0)
        high[seen] = np.nanmax(values[:, seen], axis=0)
    (line,) = ax.plot(steps, mean, linestyle, color=color, label=f"{label} (mean of {len(curves)})")
    ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    return ax


def plot_baseline(ax: Axes, value: float, label: str = "baseline") -> Axes:
    """A task's trivial baseline as a dashed horizontal line."""
    ax.axhline(value, color=BASELINE_COLOR, linestyle="--", linewidth=1.0, label=label)
    return ax


def plot_lr_sensitivity(
    ax: Axes,
    lrs: Sequence[float],
    losses: Sequence[float],
    label: str,
    color: str | None = None,
    failed: Sequence[bool] | None = None,
    low: Sequence[float] | None = None,
    high: Sequence[float] | None = None,
) -> Axes:
    """Final loss against learning rate (log x) with a marker per grid point.

    Points marked ``failed`` (diverged runs), or whose loss is not finite, are drawn as crosses
    at the top edge of the axes, where no loss could be, and are left out of the line. ``low``
    and ``high`` (e.g. the min and max over seeds) are drawn as a band around the line.
    """
    lrs = np.asarray(lrs, dtype=float)
    losses = np.asarray(losses, dtype=float)
    bad = ~np.isfinite(losses)
    if failed is not None:
        bad |= np.asarray(failed, dtype=bool)
    shown = np.where(bad, np.nan, losses)
    (line,) = ax.plot(lrs, shown, "o-", color=color, label=label, markersize=4)
    if low is not None and high is not None:
        lower = np.where(bad, np.nan, np.asarray(low, dtype=float))
        upper = np.where(bad, np.nan, np.asarray(high, dtype=float))
        ax.fill_between(lrs, lower, upper, color=line.get_color(), alpha=0.2, linewidth=0)
    if bad.any():
        # x in data coordinates, y in axes coordinates: always at the top of the panel.
        top = ax.get_xaxis_transform()
        ax.plot(
            lrs[bad],
            np.full(bad.sum(), 0.97),
            "x",
            color=line.get_color(),
            markersize=8,
            markeredgewidth=2,
            transform=top,
            clip_on=False,
            label=f"{label}: failed",
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    return ax


def steps_with_interval(median: float, interval: tuple[float, float]) -> str:
    """A Kaplan–Meier median of steps with its 95 % interval, '8,400 [6,000, 12,000]'; an end
    at which the median is not reached (inf) reads 'not reached', as does the median (NaN)."""

    def shown(value: float) -> str:
        return "not reached" if math.isinf(value) or math.isnan(value) else f"{value:,.0f}"

    return f"{shown(median)} [{shown(interval[0])}, {shown(interval[1])}]"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; cells are shown with ``str``, so round numbers before passing them."""
    if any(len(row) != len(headers) for row in rows):
        raise ValueError(f"every row needs {len(headers)} cells (headers={list(headers)!r})")
    lines = [
        "| " + " | ".join(map(str, headers)) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def sequential_colors(n: int, cmap: str = "viridis") -> list[tuple[float, ...]]:
    """``n`` colours in order along a perceptually uniform palette, spread over its whole
    usable range (stopping short of viridis's pale yellow), so neighbours can be told apart."""
    from matplotlib import colormaps

    palette = colormaps[cmap]
    if n == 1:
        return [palette(0.0)]
    return [palette(0.88 * i / (n - 1)) for i in range(n)]


def show(fig: Any, name: str, caption: str) -> None:
    """Display ``fig`` as a figure of the book: numbered by Sphinx, with ``caption`` (MyST,
    so math and citations work) under it, and targetable as ``{numref}`name```.

    The output is one bundle: a MyST ``figure`` directive (the image inline as a data URI) that
    the book renders, and the same PNG for Jupyter. The figure is closed, so the inline backend
    does not draw it a second time. A figure wider than the book's column is refused: shrunk
    to fit, its lettering would fall below 10 px.
    """
    import base64
    import io
    import struct

    import matplotlib.pyplot as plt
    from IPython.display import display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    png = buffer.getvalue()
    width, height = struct.unpack(">II", png[16:24])
    if width > COLUMN_PX + 2:
        raise ValueError(
            f"figure {name!r} is {width} px wide; the book's column is "
            f"{COLUMN_PX} px ({COLUMN_INCHES:.2f} in at {DPI} dpi): draw it narrower"
        )
    if "\n\n" in caption.strip() or "```" in caption:
        raise ValueError("a caption is one paragraph without code fences")
    data = base64.b64encode(png).decode("ascii")
    directive = (
        f"```{{figure}} data:image/png;base64,{data}\n:name: {name}\n"
        f":alt: {caption.split('. ')[0]}\n:width: {width}px\n\n{caption.strip()}\n```"
    )
    display(
        {"image/png": data, "text/markdown": directive, "text/plain": f"Figure: {caption}"},
        raw=True,
        metadata={"image/png": {"width": width, "height": height}},
    )
