"""Figures for ``mnistexp compare --plot DIR``: reliability, confidence, learning curves, metrics.

matplotlib is imported inside the functions (Agg backend, no display needed), so importing
this module is cheap. Data preparation (:func:`pooled_bins`, :func:`learning_curve`) is kept
apart from drawing so it can be tested without a figure.

Pooling: a reliability diagram pools the test-set bins of all seeds of an experiment, read from
each run's metrics.json (the same equal-width bins as the ECE, Guo et al. 2017), so the ECE of
what it draws is the ECE of the pooled predictions, which is smaller than the mean of the
per-seed ECEs that compare's table shows (binned ECE is biased upwards, less so with more
samples per bin); the title labels both.

Curves (``--curves``): any history.csv columns of :data:`CURVE_COLUMNS` per epoch, e.g. the
gradient diagnostics ``grad_true`` and ``saturated``, which show whether a loss stops learning
when its output units saturate.
"""

from __future__ import annotations

import csv
import io
import math
import textwrap
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistexp.core import atomic
from mnistexp.core.bounded import read_bounded
from mnistexp.core.errors import UsageError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mnistexp.analysis.compare import Experiment, Report

DPI = 120


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


PLOT_FORMATS = ("png", "pdf", "svg")
"""File formats of ``--plot-format``: PNG for screens, PDF and SVG (vector) for papers."""


def write_plots(
    report: Report, out_dir: str | Path, curves: Sequence[str] = (), fmt: str = "png"
) -> list[Path]:
    """Write every figure of ``report`` that has data into ``out_dir``; return the paths."""
    return write_figures(report, out_dir, curves, fmt)[0]


def write_figures(
    report: Report,
    out_dir: str | Path,
    curves: Sequence[str] = (),
    fmt: str = "png",
    size: str | None = None,
) -> tuple[list[Path], list[str]]:
    """Write the figures of ``report`` as ``fmt`` (:data:`PLOT_FORMATS`) into ``out_dir``.

    Returns the paths written and one line per figure skipped because it would be empty
    (``skipped learning_curves.png: no validation history ...``). ``curves`` (history.csv
    columns, see :data:`CURVE_COLUMNS`) adds ``curves``.
    """
    rendered, skipped = render_figures(report, curves, fmt, size)
    paths = [save_figure(data, Path(out_dir) / name) for name, data in rendered.items()]
    return paths, skipped


def render_figures(
    report: Report, curves: Sequence[str] = (), fmt: str = "png", size: str | None = None
) -> tuple[dict[str, bytes], list[str]]:
    """File name -> the encoded figure, for every figure with data; and the skip lines.
    ``size`` (:data:`FIGURE_SIZES`) lays every figure out for that width."""
    width = figure_width(fmt, size)
    return render_plan(_figure_plan(report, curves, width), fmt)


def figure_width(fmt: str, size: str | None) -> float | None:
    """The width in inches of ``--figure-size`` ``size`` (None: each figure's own), after
    checking ``fmt`` and ``size``: a one-line UsageError naming the choices. Every renderer
    of ``--plot`` figures calls it, so they all accept and refuse the same values."""
    if fmt not in PLOT_FORMATS:
        raise UsageError(f"--plot-format {fmt}: choose one of {', '.join(PLOT_FORMATS)}")
    if size is not None and size not in FIGURE_SIZES:
        raise UsageError(f"--figure-size {size}: choose one of {', '.join(FIGURE_SIZES)}")
    return FIGURE_SIZES.get(size or "")


def render_plan(
    plan: dict[str, tuple[str, Callable[[], Figure]]], fmt: str
) -> tuple[dict[str, bytes], list[str]]:
    """Draw and encode every figure of ``plan`` (name -> (why not, or "", draw)) in ``fmt``,
    closing each; file name -> bytes, and one skip line per figure without data."""
    plt = pyplot()
    rendered: dict[str, bytes] = {}
    skipped: list[str] = []
    for name, (why_not, draw) in plan.items():
        if why_not:
            skipped.append(f"skipped {name}.{fmt}: {why_not}")
            continue
        fig = draw()
        try:
            rendered[f"{name}.{fmt}"] = encode(fig, fmt)
        finally:
            plt.close(fig)
    return rendered, skipped


def _figure_plan(
    report: Report, curves: Sequence[str], width: float | None = None
) -> dict[str, tuple[str, Any]]:
    """Figure name -> (why it would be empty, "" if it has data; a function drawing it)."""
    exps = report.experiments
    bins = any(pooled_bins(e) is not None for e in exps)
    scaled = any(r.reliability_ts for e in exps for r in e.runs)
    no_bins = "no run has reliability bins in metrics.json"
    plan: dict[str, tuple[str, Any]] = {
        "reliability": ("" if bins else no_bins, lambda: reliability_figure(exps, width=width)),
        "reliability_ts": (
            "" if scaled else "no run fitted temperature scaling",
            lambda: reliability_figure(exps, scaled=True, width=width),
        ),
        "confidence": ("" if bins else no_bins, lambda: confidence_figure(exps, width)),
        "learning_curves": (
            ""
            if _has_history(exps, LEARNING_CURVES)
            else "no validation history (the runs have data.validation: 0, or no history.csv)",
            lambda: learning_curves_figure(exps, width),
        ),
        "metrics": (
            ""
            if any(math.isfinite(e.summary(m.key).mean) for e in exps for m in report.metrics)
            else "no metric has a value",
            lambda: metrics_figure(report, width),
        ),
    }
    if curves:
        plan["curves"] = (
            "" if _has_history(exps, curves) else f"no {', '.join(curves)} in any history.csv",
            lambda: curves_figure(exps, curves, width),
        )
    return plan


def _has_history(experiments: list[Experiment], columns: Sequence[str]) -> bool:
    """Whether some experiment has a finite value of one of these history.csv columns."""
    return any(np.any(np.isfinite(learning_curve(e, c)[1])) for e in experiments for c in columns)


def encode(fig: Figure, fmt: str) -> bytes:
    """The figure as ``fmt`` bytes (vector formats keep text as text, no DPI matters)."""
    import matplotlib

    buf = io.BytesIO()
    metadata = {"Date": None} if fmt in ("pdf", "svg") else None  # same figure, same bytes
    # TrueType (Type 42) fonts in PDF, which journals require (not Type 3 bitmaps-in-waiting),
    # and SVG text kept as text; set here only, never for the caller's matplotlib
    with matplotlib.rc_context({"pdf.fonttype": 42, "svg.fonttype": "none"}):
        fig.savefig(buf, format=fmt, dpi=DPI, bbox_inches="tight", metadata=metadata)
    return buf.getvalue()


def save_figure(data: bytes, path: Path) -> Path:
    """Write an encoded figure atomically (a full disk leaves the old figure, not a broken
    one); a one-line UsageError if the folder or file cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_file(path, data)
    except OSError as exc:
        raise UsageError(f"cannot write {path} ({exc.strerror or exc})") from None
    return path


def color(index: int) -> Any:
    import matplotlib

    return matplotlib.colormaps["tab10"](index % 10)


MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LINESTYLES = ("-", "--", ":")


def style(index: int) -> dict[str, Any]:
    """Colour, marker and line style of the ``index``-th experiment: ten colours, seven
    markers and, from the eleventh on, dashed then dotted lines, so no two of the first 70
    experiments look alike (colour alone repeats after ten)."""
    return {
        "color": color(index),
        "marker": MARKERS[index % len(MARKERS)],
        "linestyle": LINESTYLES[(index // 10) % len(LINESTYLES)],
    }


CAPTIONS = {
    "reliability": "Reliability diagrams, one panel per experiment, its seeds' test images "
    "pooled: the accuracy of each equal-width confidence bin (bars) against its mean "
    "confidence; hatched boxes are the gap to the diagonal, faded bins hold few images.",
    "reliability_ts": "The same reliability diagrams after each run's temperature scaling.",
    "confidence": "Histograms of the top-label confidence on the test set (share of images "
    "per bin, log scale), seeds pooled, one line per experiment.",
    "learning_curves": "Validation accuracy and NLL per epoch: mean over seeds, band ± one "
    "seed standard deviation.",
    "metrics": "Every metric of the table: mean over seeds as a bar, error bars the 95% "
    "t-interval over seeds (one seed: the bootstrap interval over test images).",
    "curves": "The chosen history.csv columns per epoch: mean over seeds, band ± one seed "
    "standard deviation.",
}
"""What each figure shows, for the HTML report's captions."""

FIGURE_SIZES = {"column": 3.3, "text": 7.0}
"""``--figure-size`` presets: the width in inches of one column and of the text of a paper."""
PANEL_MIN = 2.2
"""The narrowest panel (inches) a preset lays out: a reliability diagram and its title."""


# --------------------------------------------------------------------------- data


def pooled_bins(exp: Experiment, scaled: bool = False) -> dict[str, np.ndarray] | None:
    """Reliability bins of all seeds pooled: ``edges`` (M+1), ``count``, ``accuracy`` and
    ``confidence`` (M, NaN in empty bins); None when no run has bins. ``scaled``: the bins
    after temperature scaling."""
    bins = [b for r in exp.runs if (b := r.reliability_ts if scaled else r.reliability)]
    if not bins:
        return None
    edges = np.asarray(bins[0]["edges"], dtype=np.float64)
    count = np.zeros(len(edges) - 1)
    hits = np.zeros_like(count)
    conf = np.zeros_like(count)
    for b in bins:
        c = np.asarray(b["count"], dtype=np.float64)
        count += c
        hits += c * _nan_to_zero(b["accuracy"])
        conf += c * _nan_to_zero(b["mean_confidence"])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "edges": edges,
            "count": count,
            "accuracy": hits / count,
            "confidence": conf / count,
        }
    if len(bins) == 1 and "accuracy_low" in bins[0] and "accuracy_high" in bins[0]:
        band = [_none_to_nan(bins[0][k], len(count)) for k in ("accuracy_low", "accuracy_high")]
        if all(b is not None for b in band):
            out["accuracy_low"], out["accuracy_high"] = band  # type: ignore[assignment]
    return out


def _none_to_nan(values: Any, size: int) -> np.ndarray | None:
    """A bootstrap band column (M,) as floats, NaN for None; None if it is not such a list."""
    if not isinstance(values, list) or len(values) != size:
        return None
    if not all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values
    ):
        return None
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def _nan_to_zero(values: list[float | None]) -> np.ndarray:
    return np.asarray([0.0 if v is None else v for v in values], dtype=np.float64)


def pooled_ece(bins: dict[str, np.ndarray]) -> float:
    """ECE of pooled bins, by the same formula as every run's ECE."""
    from mnistexp.eval.metrics import errors_from_bin_sums

    count = bins["count"]
    return errors_from_bin_sums(count, count * bins["confidence"], count * bins["accuracy"])["ece"]


def learning_curve(exp: Experiment, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs (E,), mean (E,) and std (E,) over seeds of a history.csv ``column``.

    Seeds with fewer epochs contribute to the epochs they have; missing values are NaN.
    """
    series = [_history_column(r.path / "history.csv", column) for r in exp.runs]
    series = [s for s in series if s.size]
    if not series:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    length = max(s.size for s in series)
    table = np.full((len(series), length), np.nan)
    for i, s in enumerate(series):
        table[i, : s.size] = s
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN epochs: no validation split
        mean = np.nanmean(table, axis=0)
        std = np.nanstd(table, axis=0, ddof=1) if len(series) > 1 else np.zeros(length)
    return np.arange(1, length + 1), mean, np.nan_to_num(std)


def _history_column(path: Path, column: str) -> np.ndarray:
    """One column of a history.csv as float64 (NaN for empty cells); empty if unreadable."""
    try:
        text = read_bounded(path).decode("utf-8")  # never a FIFO or a device
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except (OSError, UnicodeDecodeError, csv.Error):  # compare has warned about it
        return np.zeros(0)
    return np.asarray([_float(row.get(column)) for row in rows], dtype=np.float64)


def _float(text: str | None) -> float:
    try:
        return float(text) if text else math.nan
    except ValueError:
        return math.nan


# --------------------------------------------------------------------------- figures


def _grid(
    n: int,
    size: tuple[float, float] = (3.6, 3.6),
    max_cols: int = 4,
    width: float | None = None,
) -> tuple[Figure, list[Axes]]:
    """``n`` panels of ``size`` inches, at most ``max_cols`` a row; with ``width`` (a
    ``--figure-size`` preset) as many columns as fit panels of :data:`PANEL_MIN` inches."""
    plt = pyplot()
    if width is not None:
        max_cols = max(1, min(max_cols, int(width // PANEL_MIN)))
    cols = min(n, max_cols)
    rows = math.ceil(n / cols)
    if width is not None:
        size = (width / cols, size[1] * width / cols / size[0])
    fig, axes = plt.subplots(
        rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False, layout="constrained"
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def wrap(text: str, inches: float, fontsize: float) -> str:
    """``text`` with every line wrapped to what ``inches`` hold at ``fontsize`` points (an
    average glyph is about 0.55 em wide), so no title runs into its neighbour."""
    chars = max(12, int((inches - 0.5) * 72 / (fontsize * 0.6)))  # 0.5 in: the y tick labels
    return "\n".join(
        part for line in text.split("\n") for part in textwrap.wrap(line, chars) or [""]
    )


def _suptitle(fig: Figure, text: str, fontsize: float = 10) -> None:
    fig.suptitle(wrap(text, fig.get_size_inches()[0], fontsize), fontsize=fontsize)


def _legend_below(fig: Figure, handles: list, labels: list[str], fontsize: float = 8) -> None:
    """One legend for the whole figure, under its panels (never over the data), in as many
    columns as the width holds."""
    widest = max((len(label) for label in labels), default=1)
    per_column = widest * fontsize * 0.55 / 72 + 0.5  # inches: text and its handle
    ncol = max(1, min(len(labels), int(fig.get_size_inches()[0] // per_column)))
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=ncol,
        fontsize=fontsize,
        frameon=False,
    )


def _reliability_title(
    exp: Experiment, bins: dict[str, np.ndarray], split: str, scaled: bool
) -> str:
    """Name, the ECE of the pooled bins drawn, and the table's estimator (mean of per-seed
    ECEs) when there are several seeds: the two differ, so each is labelled."""
    seeds = len(exp.runs)
    ece = f"{100 * pooled_ece(bins):.2f}%"
    if seeds == 1:  # the run's own ECE, the table's number
        band = "\nwhiskers: 95% bootstrap over test images" if "accuracy_low" in bins else ""
        return f"{exp.name}\nECE {ece} ({split}, 1 seed){band}"
    title = f"{exp.name}\npooled ECE {ece} ({split}, "
    table = exp.summary("ts_ece" if scaled else "ece").mean
    title += f"{seeds} seeds pooled)"
    if math.isfinite(table):
        title += f"\nmean of per-seed ECEs {100 * table:.2f}% (the table's)"
    return title


def reliability_figure(
    experiments: list[Experiment], scaled: bool = False, width: float | None = None
) -> Figure:
    """One reliability diagram per experiment (small multiples): accuracy bars, gap bars,
    the diagonal. ``scaled``: the test bins after each run's temperature scaling."""
    fig, axes = _grid(len(experiments), width=width)
    panel = fig.get_size_inches()[0] / _cols(axes)
    split = "test after TS" if scaled else "test"
    for ax, exp in zip(axes, experiments, strict=True):
        bins = pooled_bins(exp, scaled)
        if bins is None:
            why = "no temperature scaling" if scaled else "no reliability bins in metrics.json"
            _empty(ax, exp.name, why)
            continue
        _reliability_panel(ax, bins)
        ax.set_title(
            wrap(_reliability_title(exp, bins, split, scaled), panel, 8), fontsize=8, pad=8
        )
    handles = _reliability_legend()
    _legend_below(fig, handles, [h.get_label() for h in handles])
    after = ", after temperature scaling" if scaled else ""
    _suptitle(
        fig,
        f"Reliability diagrams{after} (top-label confidence, equal-width bins): bars "
        "above the diagonal = underconfident, below = overconfident",
    )
    return fig


def _cols(axes: list[Axes]) -> int:
    """How many panels a row of a :func:`_grid` holds."""
    grid = axes[0].get_gridspec()
    return 1 if grid is None else int(grid.ncols)


def _reliability_legend() -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return [
        Line2D([], [], color="k", linestyle="--", linewidth=1, label="perfect calibration"),
        Patch(color="#4c72b0", label="accuracy in bin"),
        Patch(
            facecolor="none",
            edgecolor="#c03030",
            hatch="//",
            label="gap: mean confidence − accuracy",
        ),
        Patch(color="#b8c6dd", label=f"faded: bin with < {SPARSE_BIN} images"),
    ]


SPARSE_BIN = 30
"""Bins with fewer images than this are drawn faded: their accuracy is mostly noise."""


def _reliability_panel(ax: Axes, bins: dict[str, np.ndarray]) -> None:
    edges, full = bins["edges"], bins["count"] > 0
    left, width = edges[:-1][full], np.diff(edges)[full]
    acc, conf = bins["accuracy"][full], bins["confidence"][full]
    faded = bins["count"][full] < SPARSE_BIN
    colors = np.where(faded, "#b8c6dd", "#4c72b0")
    ax.bar(left, acc, width=width, align="edge", color=colors, edgecolor="white")
    # The gap is an unfilled hatched box from accuracy to confidence, so the accuracy bar under
    # it stays visible when the bin is underconfident (accuracy above the diagonal).
    ax.bar(
        left,
        conf - acc,
        bottom=acc,
        width=width,
        align="edge",
        facecolor="none",
        edgecolor=np.where(faded, "#e3a5a5", "#c03030"),
        hatch="//",
        linewidth=0.8,
        zorder=3,
    )
    if "accuracy_low" in bins:  # one run: its 95% bootstrap band of each bin's accuracy
        low, high = bins["accuracy_low"][full], bins["accuracy_high"][full]
        ax.errorbar(
            left + width / 2,
            acc,
            yerr=[np.maximum(acc - low, 0), np.maximum(high - acc, 0)],
            fmt="none",
            ecolor="#222222",
            elinewidth=0.8,
            capsize=2,
            zorder=4,
        )
    ax.plot([0, 1], [0, 1], "k--", linewidth=1)
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="confidence",  # the suptitle says which: the top-label probability
        ylabel="accuracy in bin",
    )
    ax.set_aspect("equal")


def _empty(ax: Axes, title: str, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def confidence_figure(experiments: list[Experiment], width: float | None = None) -> Figure:
    """Histogram of the top-label confidence (pooled over seeds), one line per experiment,
    told apart by colour and line style; the legend under the axes."""
    fig, ax = pyplot().subplots(
        figsize=(width, 0.62 * width) if width else (7, 4.2), layout="constrained"
    )
    for i, exp in enumerate(experiments):
        bins = pooled_bins(exp)
        if bins is None:
            continue
        count = np.where(bins["count"] > 0, bins["count"], np.nan)  # log scale: gaps, no drops
        share = 100 * count / bins["count"].sum()
        mean = exp.summary("confidence").mean
        ax.stairs(
            share,
            bins["edges"],
            baseline=None,
            color=color(i),
            linestyle=style(i)["linestyle"],
            linewidth=1.5,
            label=f"{exp.name} (mean {100 * mean:.1f}%)",
        )
    ax.set_yscale("log")
    ax.set(
        xlim=(0, 1),
        xlabel="confidence (top-label probability)",
        ylabel="share of test images (%, log scale)",
    )
    ax.set_title(
        wrap("Confidence histograms (test set, seeds pooled)", fig.get_size_inches()[0], 10)
    )
    ax.grid(alpha=0.3, which="both")
    _legend_below(fig, *ax.get_legend_handles_labels())
    return fig


@dataclass(frozen=True)
class Curve:
    """How a history.csv column is drawn: axis label, factor to display units, log axis."""

    label: str
    scale: float = 1.0
    log: bool = False


CURVE_COLUMNS: dict[str, Curve] = {
    "train_loss": Curve("training loss (monitored batches)"),
    "train_accuracy": Curve("training accuracy (%, monitored batches)", 100.0),
    "grad_true": Curve("mean |dL/dz| at the true class", log=True),
    "grad_other": Curve("mean |dL/dz| at each other class", log=True),
    "saturated": Curve("output units saturated and wrong (%)", 100.0),
    "logit_mean_abs": Curve("mean |z_k| (monitored batches)", log=True),
    "logit_max_abs": Curve("largest |z_k| (monitored batches)", log=True),
    **{f"weight_norm_{i}": Curve(f"||W_{i}|| (Frobenius)", log=True) for i in range(8)},
    "val_accuracy": Curve("validation accuracy (%)", 100.0),
    "val_nll": Curve("validation NLL (nats)"),
    "val_ece": Curve("validation ECE (%)", 100.0),
    "lr": Curve("learning rate", log=True),
}
"""The history.csv columns ``--curves`` can draw (see the README's Run folders section)."""


LEARNING_CURVES = ("val_accuracy", "val_nll")


def learning_curves_figure(experiments: list[Experiment], width: float | None = None) -> Figure:
    """Validation accuracy and NLL per epoch: mean over seeds with a ±1 std band; one legend
    under the panels (side by side, or stacked where the width holds one panel)."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = _grid(len(LEARNING_CURVES), size=(5.5, 4.2), max_cols=2, width=width)
    for ax, column in zip(axes, LEARNING_CURVES, strict=True):
        _draw_curve(ax, experiments, column)
        label = CURVE_COLUMNS[column].label
        ax.set(xlabel="epoch", ylabel=label, title=label.split(" (")[0] + " per epoch")
        ax.title.set_fontsize(9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        if not ax.has_data():
            _empty(ax, label, "no validation history")
    handles, labels = next(
        ((h, lab) for h, lab in (a.get_legend_handles_labels() for a in axes) if h), ([], [])
    )
    _legend_below(fig, handles, labels)
    _suptitle(fig, "Learning curves: mean over seeds, band = ±1 std (kept within 0 and 100%)")
    return fig


def parse_curves(text: str) -> list[str]:
    """``"grad_true,saturated"`` -> ``["grad_true", "saturated"]``; UsageError if unknown."""
    from mnistexp.core.errors import UsageError

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CURVE_COLUMNS]
    if unknown or not names:
        raise UsageError(
            f"--curves {text!r}: unknown column {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(CURVE_COLUMNS)}"
        )
    return names


def _draw_curve(ax: Axes, experiments: list[Experiment], column: str) -> None:
    """Every experiment's mean of history.csv ``column`` per epoch, with a ±1 std band (on a
    log axis only where the band stays positive; mean - std may not)."""
    curve = CURVE_COLUMNS[column]
    last = 0
    for i, exp in enumerate(experiments):
        epochs, mean, std = learning_curve(exp, column)
        if not np.any(np.isfinite(mean)):
            continue
        last = max(last, int(epochs[-1]))
        low, high = np.maximum(mean - std, 0.0), mean + std  # every column is >= 0
        if curve.scale == 100.0:  # a fraction shown in percent: at most 100%
            high = np.minimum(high, 1.0)
        if curve.log:
            low = np.where(low > 0, low, np.nan)
        ax.plot(
            epochs,
            curve.scale * mean,
            markersize=3,
            **style(i),
            label=f"{exp.name} (n = {len(exp.runs)})",
        )
        ax.fill_between(
            epochs,
            curve.scale * low,
            curve.scale * high,
            color=color(i),
            alpha=0.2,
            linewidth=0,
        )
    if curve.log:
        ax.set_yscale("log")
    if last:  # whole epochs from 1, also for a single epoch (no axis of 0.95 to 1.05)
        ax.set_xlim(0.5, last + 0.5)


def curves_figure(
    experiments: list[Experiment], columns: Sequence[str], width: float | None = None
) -> Figure:
    """One panel per history.csv column: mean over seeds per epoch with a ±1 std band."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = _grid(len(columns), size=(5.0, 3.4), max_cols=2, width=width)
    for ax, column in zip(axes, columns, strict=True):
        curve = CURVE_COLUMNS[column]
        _draw_curve(ax, experiments, column)
        ax.set(xlabel="epoch")
        ax.set_title(wrap(curve.label, fig.get_size_inches()[0] / _cols(axes), 9), fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3, which="both" if curve.log else "major")
        if not ax.has_data():
            _empty(ax, curve.label, f"no {column} in history.csv")
    handles, labels = next(
        ((h, lab) for h, lab in (a.get_legend_handles_labels() for a in axes) if h), ([], [])
    )
    _legend_below(fig, handles, labels)
    _suptitle(
        fig,
        "Per-epoch history (training columns on monitored batches): mean over seeds, band = ±1 std "
        "(kept within the column's range)",
    )
    return fig


def metrics_figure(report: Report, width: float | None = None) -> Figure:
    """One horizontal bar chart per compared metric, the experiments' labels at the left of
    each row of panels (never rotated into each other): mean per experiment, error bars = 95%
    t-interval (a single run's bootstrap interval over test images, which need not be
    symmetric or even contain the value for a biased estimator such as the ECE)."""
    from matplotlib.ticker import MaxNLocator

    n, k = len(report.experiments), len(report.metrics)
    cols = min(k, 3 if width is None else max(1, int(width // PANEL_MIN)))
    rows = math.ceil(k / cols)
    panel_h = 0.9 + 0.2 * n  # inches: a bar row per experiment
    fig, grid = pyplot().subplots(
        rows,
        cols,
        figsize=(width or 3.6 * cols, panel_h * rows),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    axes = list(grid.ravel())
    for ax in axes[k:]:
        ax.set_visible(False)
    names = [e.name for e in report.experiments]
    clipped = False
    for ax, metric in zip(axes, report.metrics, strict=False):
        stats = [e.summary(metric.key) for e in report.experiments]
        means = [metric.shown(s.mean) for s in stats]
        below = [_half(metric, s.mean - s.ci_low) for s in stats]
        errors = [_half(metric, s.ci_high - s.mean) for s in stats]
        below, errors, cut = clip_to_bounds(means, below, errors, display_bounds(metric))
        clipped |= cut
        ax.barh(
            range(n),
            means,
            xerr=[below, errors],
            capsize=2,
            color=[color(i) for i in range(n)],
            hatch=[("", "//", "..")[(i // 10) % 3] for i in range(n)],
        )
        _zoom(ax, means, errors)
        ax.set_yticks(range(n), names, fontsize=7)
        better = {None: "", True: ", higher is better", False: ", lower is better"}
        title = f"{metric.header}{better[metric.higher_is_better]}"
        ax.set_title(wrap(title, fig.get_size_inches()[0] / cols, 8), fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=3))  # panels side by side: few x labels
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()  # the first experiment on top (the y axis is shared: once)
    _suptitle(
        fig,
        "Test metrics: mean over seeds, error bars = 95% t-interval "
        "(one seed: 95% bootstrap interval over test images)"
        + (
            "; bars clipped at the metric's bounds (0 and 100%), which the t-interval ignores"
            if clipped
            else ""
        ),
    )
    return fig


def display_bounds(metric: Any) -> tuple[float, float]:
    """The range a metric can take, in display units: [0, 100] for percentages (accuracy,
    ECE, confidence), [0, inf) for the rest (NLL, Brier, temperature)."""
    return (0.0, 100.0) if metric.percent else (0.0, math.inf)


def clip_to_bounds(
    means: Sequence[float],
    below: Sequence[float],
    above: Sequence[float],
    bounds: tuple[float, float],
) -> tuple[list[float], list[float], bool]:
    """Error bar lengths (below, above the mean) cut so no bar crosses ``bounds``; and
    whether any was cut. A symmetric t-interval of a bounded metric near its bound (ECE of a
    few seeds near 0) would otherwise reach impossible values."""
    low, high = bounds
    new_below, new_above, cut = [], [], False
    for m, b, a in zip(means, below, above, strict=True):
        if not math.isfinite(m):
            new_below.append(b)
            new_above.append(a)
            continue
        b2, a2 = min(b, max(m - low, 0.0)), min(a, max(high - m, 0.0))
        cut |= b2 < b or a2 < a
        new_below.append(b2)
        new_above.append(a2)
    return new_below, new_above, cut


def _half(metric: Any, width: float) -> float:
    """One side of an error bar in display units: 0 where undefined or negative."""
    return 0.0 if math.isnan(width) else max(metric.shown(width), 0.0)


def _zoom(ax: Axes, means: list[float], errors: list[float]) -> None:
    """Start the value axis (x, bars are horizontal) near the data when all bars are far
    from zero (e.g. accuracy), and say so."""
    values = [(m, e) for m, e in zip(means, errors, strict=True) if math.isfinite(m)]
    if not values:
        return
    low = min(m - e for m, e in values)
    high = max(m + e for m, e in values)
    if low > 0 and (high - low) < 0.5 * high:
        pad = 0.15 * (high - low) or 0.05 * high
        ax.set_xlim(low - pad, high + pad)
        ax.set_xlabel("axis does not start at 0", fontsize=6, color="0.4")
