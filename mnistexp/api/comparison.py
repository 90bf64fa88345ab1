""":class:`Comparison`: the report ``mnistexp compare`` renders, and its views (the command's
text, rows, a DataFrame, the figures of ``compare --plot``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mnistexp.api.common import _pandas
from mnistexp.core.errors import UsageError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mnistexp.analysis.compare import Experiment, Report

FORMATS = ("table", "markdown", "latex", "csv", "json")


class Comparison:
    """A comparison of experiments: the report ``mnistexp compare`` renders, and its views.

    Attributes:
        report: the :class:`~mnistexp.analysis.compare.Report` itself (experiments, metrics,
            the config keys that differ, the tests against the baseline, warnings).
    """

    def __init__(self, report: Report) -> None:
        self.report = report

    @property
    def warnings(self) -> list[str]:
        """The lines ``mnistexp compare`` prints as ``warning:`` (folders left out, ...)."""
        return list(self.report.warnings)

    @property
    def experiments(self) -> list[Experiment]:
        """The experiments, in the table's order (each with its runs by seed)."""
        return list(self.report.experiments)

    def __repr__(self) -> str:
        return self.render("table")

    def _repr_markdown_(self) -> str:
        """How a notebook shows a comparison: the markdown tables."""
        return self.render("markdown")

    def render(self, fmt: str = "table") -> str:
        """The comparison as ``mnistexp compare --format FMT`` prints it, the same text.

        Args:
            fmt: ``table``, ``markdown``, ``latex``, ``csv`` or ``json``.

        Example:
            ```python
            print(compare("runs").render("latex"))
            ```
        """
        from mnistexp.analysis.report import render

        if fmt not in FORMATS:
            raise UsageError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return render(self.report, fmt)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per experiment with the columns of ``--format csv``, numbers as floats
        (NaN where there is none): ``experiment``, ``config_hash``, the differing config
        keys, ``n``, ``diverged``, ``seeds`` (a list), and per metric ``<m>_mean``,
        ``<m>_std``, ``<m>_ci95_low``, ``<m>_ci95_high``; against a baseline also
        ``<m>_diff``, ``<m>_diff_ci95_low``, ``<m>_diff_ci95_high``, ``<m>_p``,
        ``<m>_p_adjusted`` and ``<m>_test`` (``baseline`` in the baseline's row).

        Example:
            ```python
            rows = compare("runs", baseline="baseline").to_records()
            [(row["experiment"], row["ece_mean"]) for row in rows]
            ```
        """
        return [_experiment_row(self.report, e) for e in self.report.experiments]

    def to_frame(self) -> Any:
        """The rows of :meth:`to_records` as a pandas DataFrame.

        Raises:
            MissingExtra: pandas is not installed (an ImportError naming the extra).

        Example:
            ```python
            frame = compare("runs", metrics=["accuracy", "ece"]).to_frame()
            frame.set_index("experiment")[["accuracy_mean", "ece_mean"]]
            ```
        """
        return _pandas().DataFrame.from_records(self.to_records())

    def figures(self, curves: Sequence[str] = ()) -> dict[str, Figure]:
        """The figures of ``compare --plot``, as matplotlib Figures; no file is written.

        Keys, for the figures that have data: ``reliability`` (one reliability diagram per
        experiment), ``reliability_ts`` (after temperature scaling), ``confidence``,
        ``learning_curves``, ``metrics`` (bars with 95% intervals), and ``curves`` when
        ``curves`` names history.csv columns (``["grad_true", "saturated"]``).

        The figures are detached from pyplot (no window, none shown twice in a notebook);
        show one with ``display(fig)`` in a notebook, save it with ``fig.savefig(...)``.

        Example:
            ```python
            figures = compare("runs", baseline="baseline").figures()
            figures["reliability"].savefig("reliability.pdf")
            ```
        """
        from mnistexp.analysis.plots import parse_curves

        if curves:
            parse_curves(",".join(curves))  # unknown columns: the CLI's one line
        drawn: dict[str, Figure] = {}
        for name, draw in _figure_plan(self.report, curves).items():
            drawn[name] = draw()
            from matplotlib import pyplot  # imported by the drawing, with its Agg backend

            pyplot.close(drawn[name])  # the Figure stays usable; pyplot forgets it
        return drawn


def _figure_plan(report: Report, curves: Sequence[str]) -> dict[str, Any]:
    """Figure name -> a function drawing it, for the figures with data, in the order and
    by the tests of ``compare --plot`` (which skips the others with a line)."""
    from mnistexp.analysis import plots

    exps = report.experiments
    bins = any(plots.pooled_bins(e) is not None for e in exps)
    plan: dict[str, Any] = {}
    if bins:
        plan["reliability"] = lambda: plots.reliability_figure(exps)
    if any(r.reliability_ts for e in exps for r in e.runs):
        plan["reliability_ts"] = lambda: plots.reliability_figure(exps, scaled=True)
    if bins:
        plan["confidence"] = lambda: plots.confidence_figure(exps)
    if _has_history(exps, plots.LEARNING_CURVES):
        plan["learning_curves"] = lambda: plots.learning_curves_figure(exps)
    if any(math.isfinite(e.summary(m.key).mean) for e in exps for m in report.metrics):
        plan["metrics"] = lambda: plots.metrics_figure(report)
    if curves and _has_history(exps, curves):
        plan["curves"] = lambda: plots.curves_figure(exps, curves)
    return plan


def _has_history(experiments: Sequence[Experiment], columns: Sequence[str]) -> bool:
    import numpy as np

    from mnistexp.analysis.plots import learning_curve

    return any(np.any(np.isfinite(learning_curve(e, c)[1])) for e in experiments for c in columns)


def _experiment_row(report: Report, exp: Experiment) -> dict[str, Any]:
    nan = math.nan
    row: dict[str, Any] = {"experiment": exp.name, "config_hash": exp.chash}
    row |= {key: exp.config.get(key) for key in report.keys}
    row |= {"n": len(exp.runs), "diverged": len(exp.diverged), "seeds": exp.seeds}
    found = {(c.experiment, c.metric): c for c in report.comparisons}
    for m in report.metrics:
        s = exp.summary(m.key)
        values = (s.mean, s.std, s.ci_low, s.ci_high)
        row |= {f"{m.key}_{k}": v for k, v in zip(_SUMMARY, values, strict=True)}
        if not report.comparisons:
            continue
        c = found.get((exp.name, m.key))
        low, high = (c.interval or (nan, nan)) if c else (nan, nan)
        p, adjusted = (c.p_value, c.p_adjusted) if c else (None, None)
        row |= {
            f"{m.key}_diff": c.difference if c else nan,
            f"{m.key}_diff_ci95_low": low,
            f"{m.key}_diff_ci95_high": high,
            f"{m.key}_p": nan if p is None else p,
            f"{m.key}_p_adjusted": nan if adjusted is None else adjusted,
            f"{m.key}_test": c.test if c else "baseline",
        }
    return row


_SUMMARY = ("mean", "std", "ci95_low", "ci95_high")
