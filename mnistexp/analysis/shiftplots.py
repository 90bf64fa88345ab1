"""Figures of ``compare --shift --plot DIR``: shift curves and risk-coverage curves.

* ``shift_curves``: one panel per shift family (rotation, translation, noise, contrast), x the
  severity, y the ECE (top row) and the accuracy (bottom row) of the raw probabilities; one
  line per experiment, mean over seeds with a band of ± one seed standard deviation; the seed
  ensemble in the experiment's colour and marker, hollow, on a dash-dot line (a line style no
  experiment's seeds get, see :func:`ensemble_style`). The UCI digits have no severity: they
  are in the tables.
* ``risk_coverage``: risk (error rate of the accepted images) against coverage on the
  unshifted test set, from each run's predictions.npz; the seeds' curves are averaged on a
  common grid of coverages (1%, 2%, ..., 100%), band ± one sd, the ensemble drawn as above;
  a marker every tenth grid point, so 20 lines stay readable.

Both follow the other ``--plot`` figures (issue 28): :func:`~mnistexp.analysis.plots.style`
per experiment, one legend under the panels, a wrapped title, and a ``--figure-size`` width.
Data preparation (:func:`family_curves`, :func:`mean_risk`) is kept apart from drawing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistexp.analysis.ensembles import COVERAGE_GRID
from mnistexp.analysis.plots import (
    _legend_below,
    _suptitle,
    color,
    figure_width,
    pyplot,
    render_plan,
    style,
    wrap,
)
from mnistexp.analysis.shiftcompare import ENSEMBLE, SET_METRICS, ShiftReport
from mnistexp.data.shifts import SHIFTS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CURVE_METRICS = ("ece", "accuracy")
"""The rows of panels of shift_curves, top to bottom."""

CAPTIONS = {
    "shift_curves": "Accuracy and calibration under shift. Columns: the shift families; x: "
    "severity (contrast: the factor ink is scaled by, harder to the right); top row ECE, bottom "
    "row accuracy, of the raw probabilities (no recalibration map). A line per experiment (its "
    "own colour, marker and line style): mean over seeds, band: ± one seed standard deviation; "
    "the same colour and marker, hollow, on a dash-dot line: its seed ensemble (probabilities "
    "averaged).",
    "risk_coverage": "Risk-coverage on the unshifted test set: the error rate among the images "
    "accepted when the most confident are accepted first, against the fraction accepted. A line "
    "per experiment (its own colour, marker and line style; a marker every 10% of coverage): "
    "mean over seeds on a common grid of coverages, band: ± one seed standard deviation; the "
    "same colour and marker, hollow, on a dash-dot line: its seed ensemble.",
}
"""What each figure shows, for the HTML report's captions."""


Curve = tuple[np.ndarray, np.ndarray, np.ndarray]  # severities, mean, sd (each (s,))


def family_curves(
    shift: ShiftReport, family: str, metric: str
) -> dict[str, tuple[Curve | None, Curve | None]]:
    """Experiment -> ((severities, mean, sd) of its seeds' raw rows, the same of its ensemble
    with sd 0), for ``family``; None where it has no row."""
    out: dict[str, tuple[Curve | None, Curve | None]] = {}
    for exp in shift.experiments:
        curves: list[Curve | None] = []
        for variant in ("raw", ENSEMBLE):
            rows = [
                r
                for r in shift.sets
                if r.experiment == exp.name and r.family == family and r.variant == variant
            ]
            rows = [r for r in rows if r.severity is not None and r.values[metric].n > 0]
            rows.sort(key=lambda r: r.severity or 0.0)
            if not rows:
                curves.append(None)
                continue
            x = np.array([r.severity for r in rows], dtype=np.float64)
            mean = np.array([r.values[metric].mean for r in rows])
            sd = np.nan_to_num(np.array([r.values[metric].std for r in rows]))
            curves.append((x, mean, sd))
        out[exp.name] = (curves[0], curves[1])
    return out


def mean_risk(seeds: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample sd (0 for one seed) over seeds of risks on the coverage grid."""
    table = np.vstack(seeds)  # (seeds, grid)
    sd = table.std(axis=0, ddof=1) if len(seeds) > 1 else np.zeros(table.shape[1])
    return table.mean(axis=0), sd


def families(shift: ShiftReport) -> list[str]:
    """The shift families (with severities) that some experiment has rows of."""
    found = {r.family for r in shift.sets}
    return [f for f in SHIFTS if f in found]


def render_shift_figures(
    shift: ShiftReport, fmt: str = "png", size: str | None = None
) -> tuple[dict[str, bytes], list[str]]:
    """File name -> encoded figure, and one skip line per figure without data. ``size``
    (``--figure-size``, :data:`~mnistexp.analysis.plots.FIGURE_SIZES`) lays both figures out
    for that width, as :func:`~mnistexp.analysis.plots.render_figures` does the others."""
    width = figure_width(fmt, size)
    plan = {
        "shift_curves": (
            "" if families(shift) else "no run has a shifted set with severities (shift.json)",
            lambda: shift_curves_figure(shift, width),
        ),
        "risk_coverage": (
            "" if shift.curves else "no run with a usable shift evaluation",
            lambda: risk_coverage_figure(shift, width),
        ),
    }
    return render_plan(plan, fmt)


def shift_curves_figure(shift: ShiftReport, width: float | None = None) -> Figure:
    """A panel per family and metric of :data:`CURVE_METRICS` (ECE above accuracy): a line
    per experiment with a ±1 sd band, its seed ensemble in :func:`ensemble_style`, one legend
    under the panels. ``width`` (inches, a ``--figure-size`` preset): as many families side by
    side as panels of :data:`SHIFT_PANEL_MIN` fit, each such block a row per metric."""
    from matplotlib.ticker import MaxNLocator

    names = families(shift)
    fig, axes, panel = _family_grid(len(names), width)
    per_row = round(fig.get_size_inches()[0] / panel)
    title, label = (9, 8) if width is not None else (11, 10)  # font sizes, points
    drawn: set[str] = set()
    for col, family in enumerate(names):
        for row, metric in enumerate(CURVE_METRICS):
            ax = axes[row][col]
            drawn |= _family_panel(ax, shift, family, metric)
            if row == 0:
                name = AXES.get(family, (family, ""))[0]
                ax.set_title(wrap(name, panel, title), fontsize=title)
            if row == len(CURVE_METRICS) - 1:
                ax.set_xlabel(wrap(_axis_label(family), panel, label), fontsize=label)
            if col % per_row == 0:
                ax.set_ylabel(SET_METRICS[metric].header, fontsize=label)
            if width is not None:
                ax.tick_params(labelsize=7)
                ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    entries = [(i, e.name) for i, e in enumerate(shift.experiments) if e.name in drawn]
    _legend_below(fig, *_legend(entries, any(r.variant == ENSEMBLE for r in shift.sets)))
    _suptitle(
        fig,
        "Under shift: mean over seeds, band ± 1 sd; hollow markers on a dash-dot line: "
        "the seed ensemble",
    )
    return fig


SHIFT_PANEL_MIN = 1.6
"""The narrowest shift panel (inches) a ``--figure-size`` preset lays out: a line plot with a
one-word title needs less than a reliability diagram with its three-line title
(:data:`~mnistexp.analysis.plots.PANEL_MIN`), so the four families fit the text width."""


def _family_grid(n: int, width: float | None) -> tuple[Figure, list[list[Axes]], float]:
    """Axes for ``n`` families x :data:`CURVE_METRICS` as ``axes[metric][family]``, and the
    panel width (inches). The families side by side (with ``width``: as many as panels of
    :data:`SHIFT_PANEL_MIN` fit, balanced, 2 + 2 rather than 3 + 1), each block of them a
    row per metric, so a family's ECE stays above its accuracy."""
    per_row = n if width is None else max(1, min(n, int(width // SHIFT_PANEL_MIN)))
    blocks = math.ceil(n / per_row)
    per_row = math.ceil(n / blocks)
    size = (3.6, 3.2) if width is None else (width / per_row, max(1.5, 0.8 * width / per_row))
    k = len(CURVE_METRICS)
    fig, grid = pyplot().subplots(
        k * blocks,
        per_row,
        figsize=(size[0] * per_row, size[1] * k * blocks),
        squeeze=False,
        layout="constrained",
    )
    axes = [[grid[k * (f // per_row) + m][f % per_row] for f in range(n)] for m in range(k)]
    for slot in range(n, blocks * per_row):  # the last block's empty places
        for m in range(k):
            grid[k * (blocks - 1) + m][slot % per_row].set_visible(False)
    return fig, axes, size[0]


AXES = {
    "rotate": ("rotation", "degrees counter-clockwise"),
    "translate": ("translation", "pixels to the right"),
    "noise": ("Gaussian noise", "standard deviation (grey levels 0..255)"),
    "contrast": ("contrast", "factor the ink is scaled by (smaller: harder)"),
}
"""Panel title and x-axis label of each family (the registry's unit where one is missing)."""


def _axis_label(family: str) -> str:
    return AXES.get(family, (family, SHIFTS[family].unit))[1]


ENSEMBLE_LINESTYLE = "-."
"""The seed ensemble's line: a style :func:`~mnistexp.analysis.plots.style` never gives an
experiment's seeds, so however many experiments, no ensemble reads as another experiment."""


def ensemble_style(index: int) -> dict[str, Any]:
    """The ``index``-th experiment's seed ensemble: its colour and marker, hollow, dash-dot."""
    return {**style(index), "linestyle": ENSEMBLE_LINESTYLE, "markerfacecolor": "none"}


def _family_panel(ax: Axes, shift: ShiftReport, family: str, metric: str) -> set[str]:
    """Every experiment's curve of ``family`` in ``metric`` (percent); the names drawn."""
    drawn = set()
    for i, (name, (seeds, ensemble)) in enumerate(family_curves(shift, family, metric).items()):
        if seeds is not None:
            x, mean, sd = seeds
            ax.plot(x, 100 * mean, markersize=3, **style(i), label=name)
            low, high = np.clip(mean - sd, 0, 1), np.clip(mean + sd, 0, 1)
            ax.fill_between(x, 100 * low, 100 * high, color=color(i), alpha=0.15, linewidth=0)
            drawn.add(name)
        if ensemble is not None:
            x, mean, _ = ensemble
            # "_" keeps it out of the legend: one key entry stands for every ensemble
            ax.plot(x, 100 * mean, markersize=3, **ensemble_style(i), label=f"_{name} ensemble")
            drawn.add(name)
    if family == "contrast":
        ax.invert_xaxis()  # a smaller factor is the harder shift
    ax.grid(alpha=0.3)
    return drawn


def _legend(entries: list[tuple[int, str]], ensembles: bool) -> tuple[list, list[str]]:
    """A legend entry per (:func:`style` index, label), and with ``ensembles`` one key for all
    the seed ensembles: an entry each would double the legend."""
    from matplotlib.lines import Line2D

    looks = [(style(i), label) for i, label in entries]
    if ensembles:
        looks.append(
            ({**ensemble_style(0), "color": "0.3"}, "its seed ensemble (hollow, dash-dot)")
        )
    return [Line2D([], [], markersize=4, **look) for look, _ in looks], [lab for _, lab in looks]


MARK_EVERY = 10
"""Risk-coverage: a marker every this many grid points (10% of coverage), enough to tell 20
experiments apart without burying the lines under 100 markers each."""


def risk_coverage_figure(shift: ShiftReport, width: float | None = None) -> Figure:
    """Risk against coverage on the unshifted test set: a line per experiment (mean over
    seeds, ±1 sd band) and its seed ensemble (:func:`ensemble_style`), markers sparse and
    staggered between experiments; the legend under the axes. ``width``: a preset's inches."""
    fig, ax = pyplot().subplots(
        figsize=(width, 0.75 * width) if width else (6.4, 4.4), layout="constrained"
    )
    x = 100 * COVERAGE_GRID
    index = {exp.name: i for i, exp in enumerate(shift.experiments)}  # as in shift_curves
    entries = []
    for j, curve in enumerate(shift.curves):
        i = index.get(curve.experiment, len(index) + j)
        entries.append((i, f"{curve.experiment} (n = {len(curve.seeds)})"))
        mean, sd = mean_risk(curve.seeds)
        start = (3 * i) % MARK_EVERY  # staggered, so the markers of 20 lines do not pile up
        ax.plot(
            x,
            100 * mean,
            markersize=3,
            markevery=(start, MARK_EVERY),
            **style(i),
            label=curve.experiment,
        )
        low, high = np.clip(mean - sd, 0, 1), np.clip(mean + sd, 0, 1)
        ax.fill_between(x, 100 * low, 100 * high, color=color(i), alpha=0.15, linewidth=0)
        if curve.ensemble is not None:
            ax.plot(
                x,
                100 * curve.ensemble,
                markersize=3,
                markevery=((start + MARK_EVERY // 2) % MARK_EVERY, MARK_EVERY),
                **ensemble_style(i),
                label=f"_{curve.experiment} ensemble",
            )
    inches = fig.get_size_inches()
    fontsize = 8 if width is not None else 10
    ax.set_xlabel(
        wrap("coverage (% of test images accepted, most confident first)", inches[0], fontsize),
        fontsize=fontsize,
    )
    ax.set_ylabel(
        wrap("risk (% errors among the accepted)", inches[1], fontsize), fontsize=fontsize
    )
    ax.set_title(wrap("Risk-coverage, unshifted test set", inches[0], 10), fontsize=10)
    ax.set_xlim(0, 100)
    if width is not None:
        ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ensembles = any(c.ensemble is not None for c in shift.curves)
    _legend_below(fig, *_legend(sorted(entries), ensembles))
    return fig


def caption(name: str) -> str:
    """The caption of a figure file name (``shift_curves.png``); "" for other figures."""
    return CAPTIONS.get(name.rsplit(".", 1)[0], "")
