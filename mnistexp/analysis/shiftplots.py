"""Figures of ``compare --shift --plot DIR``: shift curves and risk-coverage curves.

* ``shift_curves``: one panel per shift family (rotation, translation, noise, contrast), x the
  severity, y the ECE (top row) and the accuracy (bottom row) of the raw probabilities; one
  line per experiment, mean over seeds with a band of ± one seed standard deviation; the seed
  ensemble dashed in the same colour. The UCI digits have no severity: they are in the tables.
* ``risk_coverage``: risk (error rate of the accepted images) against coverage on the
  unshifted test set, from each run's predictions.npz; the seeds' curves are averaged on a
  common grid of coverages (1%, 2%, ..., 100%), band ± one sd, the ensemble dashed.

Data preparation (:func:`family_curves`, :func:`mean_risk`) is kept apart from drawing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mnistexp.analysis.ensembles import COVERAGE_GRID
from mnistexp.analysis.plots import color, figure_width, pyplot, render_plan
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
    "row accuracy, of the raw probabilities (no recalibration map). Solid line: mean over seeds, "
    "band: ± one seed standard deviation; dashed: the seed ensemble (probabilities averaged).",
    "risk_coverage": "Risk-coverage on the unshifted test set: the error rate among the images "
    "accepted when the most confident are accepted first, against the fraction accepted. Solid "
    "line: mean over seeds on a common grid of coverages, band: ± one seed standard deviation; "
    "dashed: the seed ensemble.",
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
    names = families(shift)
    fig, axes = pyplot().subplots(
        len(CURVE_METRICS),
        len(names),
        figsize=(3.6 * len(names), 3.2 * len(CURVE_METRICS)),
        squeeze=False,
    )
    for col, family in enumerate(names):
        for row, metric in enumerate(CURVE_METRICS):
            ax = axes[row][col]
            _family_panel(ax, shift, family, metric)
            if row == 0:
                ax.set_title(AXES.get(family, (family, ""))[0])
            if row == len(CURVE_METRICS) - 1:
                ax.set_xlabel(_axis_label(family))
            if col == 0:
                ax.set_ylabel(SET_METRICS[metric].header)
    _legend_outside(fig, axes[0][0])
    fig.suptitle("Under shift: mean over seeds, band ± 1 sd; dashed: seed ensemble")
    fig.tight_layout()
    return fig


AXES = {
    "rotate": ("rotation", "degrees counter-clockwise"),
    "translate": ("translation", "pixels to the right"),
    "noise": ("Gaussian noise", "standard deviation (grey levels 0..255)"),
    "contrast": ("contrast", "factor the ink is scaled by (smaller: harder)"),
}
"""Panel title and x-axis label of each family (the registry's unit where one is missing)."""


def _axis_label(family: str) -> str:
    return AXES.get(family, (family, SHIFTS[family].unit))[1]


def _family_panel(ax: Axes, shift: ShiftReport, family: str, metric: str) -> None:
    for i, (name, (seeds, ensemble)) in enumerate(family_curves(shift, family, metric).items()):
        if seeds is not None:
            x, mean, sd = seeds
            ax.plot(x, 100 * mean, marker="o", markersize=3, color=color(i), label=name)
            low, high = np.clip(mean - sd, 0, 1), np.clip(mean + sd, 0, 1)
            ax.fill_between(x, 100 * low, 100 * high, color=color(i), alpha=0.2, linewidth=0)
        if ensemble is not None:
            x, mean, _ = ensemble
            ax.plot(x, 100 * mean, linestyle="--", color=color(i), label=f"{name} (ensemble)")
    if family == "contrast":
        ax.invert_xaxis()  # a smaller factor is the harder shift
    ax.grid(alpha=0.3)


def _legend_outside(fig: Figure, ax: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(
            handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False
        )


def risk_coverage_figure(shift: ShiftReport, width: float | None = None) -> Figure:
    fig, ax = pyplot().subplots(figsize=(6.4, 4.4))
    x = 100 * COVERAGE_GRID
    for i, curve in enumerate(shift.curves):
        mean, sd = mean_risk(curve.seeds)
        n = len(curve.seeds)
        ax.plot(x, 100 * mean, color=color(i), label=f"{curve.experiment} (n = {n})")
        low, high = np.clip(mean - sd, 0, 1), np.clip(mean + sd, 0, 1)
        ax.fill_between(x, 100 * low, 100 * high, color=color(i), alpha=0.2, linewidth=0)
        if curve.ensemble is not None:
            ax.plot(
                x,
                100 * curve.ensemble,
                linestyle="--",
                color=color(i),
                label=f"{curve.experiment} (ensemble of {n})",
            )
    ax.set(
        xlabel="coverage (% of test images accepted, most confident first)",
        ylabel="risk (% errors among the accepted)",
        title="Risk-coverage, unshifted test set",
        xlim=(0, 100),
    )
    ax.grid(alpha=0.3)
    _legend_outside(fig, ax)
    fig.tight_layout()
    return fig


def caption(name: str) -> str:
    """The caption of a figure file name (``shift_curves.png``); "" for other figures."""
    return CAPTIONS.get(name.rsplit(".", 1)[0], "")
