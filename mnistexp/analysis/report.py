"""Render a :class:`~mnistexp.analysis.compare.Report` as a terminal table, markdown, CSV or JSON.

Pure: a report in, a string out (the golden tests pin the exact text). Percent-style metrics
are shown in percent in the table and markdown; CSV and JSON keep raw fractions, and JSON has
stable keys for scripts.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable
from typing import Any

from mnistexp.analysis.columns import ABBREVIATIONS, METRICS, Metric
from mnistexp.analysis.compare import (
    JSON_SCHEMA_VERSION,
    POWER_SEEDS,
    Comparison,
    Experiment,
    Report,
    config_text,
)
from mnistexp.analysis.latex import latex_escape as latex_escape  # re-exported
from mnistexp.analysis.latex import render_latex
from mnistexp.analysis.stats import Summary


def format_cell(metric: Metric, s: Summary, interval: bool = False, sep: str = " ± ") -> str:
    """``"97.81 ± 0.12"``: mean ± std over seeds; "—" without values; one seed: the value.

    ``interval`` adds the 95% t-interval's half-width, ``"97.81 ± 0.12 (±0.30)"``, or for a
    single run its bootstrap interval over test images, ``"97.81 [97.52, 98.09]"``. ``sep``
    joins mean and std (the terminal table uses a bare ``"±"`` to fit 100 columns).
    """
    if s.n == 0:
        return "—"
    d = metric.digits
    text = f"{metric.shown(s.mean):.{d}f}"
    if s.n == 1 and interval and math.isfinite(s.ci_low):
        text += f" [{metric.shown(s.ci_low):.{d}f}, {metric.shown(s.ci_high):.{d}f}]"
    if s.n >= 2:
        text += f"{sep}{metric.shown(s.std):.{d}f}"
        if interval:
            half = metric.shown(s.ci_high - s.mean)
            text += f" (±{half:.{d}f})"
    return text


def format_difference(
    metric: Metric, diff: float, interval: tuple[float, float] | None = None
) -> str:
    """``"+0.41 pp"`` for percent metrics, ``"-0.0123"`` otherwise; with its 95% interval
    ``"+0.41 pp [+0.12, +0.70]"``."""
    if math.isnan(diff):
        return "—"
    unit = " pp" if metric.percent else ""
    text = f"{metric.shown(diff):+.{metric.digits}f}{unit}"
    if interval is None:
        return text
    low, high = (f"{metric.shown(v):+.{metric.digits}f}" for v in interval)
    return f"{text} [{low}, {high}]"


def format_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _p_text(c: Comparison) -> str:
    """``"p = 0.003"`` or, corrected, ``"p = 0.003 (Holm 0.021)"``."""
    assert c.p_value is not None
    text = format_p(c.p_value)
    if c.correction != "none" and c.p_adjusted is not None:
        adjusted = "< 0.001" if c.p_adjusted < 0.001 else f"{c.p_adjusted:.3f}"
        text += f" ({CORRECTION_SHORT[c.correction]} {adjusted})"
    return text


CORRECTION_SHORT = {"holm": "Holm", "bh": "BH"}


def verdict(c: Comparison) -> str:
    """``"+0.41 pp, p = 0.003 (Holm 0.021), significant at 0.05 (better)"`` or ``"...,
    not significant"``; the verdict is on the adjusted p-value."""
    metric = METRICS[c.metric]
    diff = format_difference(metric, c.difference, c.interval)
    power = f"; {c.seeds} seed{'s' if c.seeds != 1 else ''}: low power" if c.low_power else ""
    if c.p_value is None:
        return f"{diff}, no p-value"
    if not c.significant:
        return f"{diff}, {_p_text(c)}, not significant{power}"
    direction = ""
    if metric.higher_is_better is not None and c.difference != 0:
        better = (c.difference > 0) == metric.higher_is_better
        direction = " (better)" if better else " (worse)"
    return f"{diff}, {_p_text(c)}, significant at {c.alpha:g}{direction}{power}"


def _n_text(exp: Experiment, short: bool = False) -> str:
    """``3``, or with diverged runs ``3 (+1 diverged)`` (``short``: ``3+1d``)."""
    if not exp.diverged:
        return str(len(exp.runs))
    if short:
        return f"{len(exp.runs)}+{len(exp.diverged)}d"
    return f"{len(exp.runs)} (+{len(exp.diverged)} diverged)"


# --------------------------------------------------------------------------- rows

WIDTH = 100
"""The terminal table's target width: the default metrics of four experiments fit in it."""

Rows = tuple[list[str], list[list[str]], list[bool]]
"""Header, body rows and, per column, whether it is right-aligned (numbers)."""


def main_rows(report: Report) -> Rows:
    """The experiment table of markdown: name, differing config keys, n, one column per
    metric (mean ± std; with ``report.interval`` the interval too)."""
    header = ["experiment", *report.keys, "n", *(m.header for m in report.metrics)]
    right = [False] * (1 + len(report.keys)) + [True] * (1 + len(report.metrics))
    body = [
        [
            e.name,
            *(config_text(e.config, k) for k in report.keys),
            _n_text(e),
            *(format_cell(m, e.summary(m.key), report.interval) for m in report.metrics),
        ]
        for e in report.experiments
    ]
    return header, body, right


def table_rows(report: Report) -> tuple[list[list[str]], list[list[str]], list[bool]]:
    """The terminal table: two header rows (label, unit), then name, n and compact cells
    (``97.81±0.12``); the differing config keys go to :func:`config_rows`."""
    labels = ["experiment", "n", *(m.short_label for m in report.metrics)]
    units = ["", "", *(f"({m.unit_text})" if m.unit_text else "" for m in report.metrics)]
    body = [
        [
            e.name,
            _n_text(e, short=True),
            *(format_cell(m, e.summary(m.key), report.interval, "±") for m in report.metrics),
        ]
        for e in report.experiments
    ]
    return [labels, units], body, [False] + [True] * (1 + len(report.metrics))


def config_rows(report: Report) -> Rows:
    """The config keys that differ between the experiments, one row per experiment."""
    header = ["experiment", *report.keys]
    body = [[e.name, *(config_text(e.config, k) for k in report.keys)] for e in report.experiments]
    return header, body, [False] * len(header)


def comparison_rows(report: Report) -> Rows:
    """The baseline table: experiment, metric, verdict sentence, test used."""
    header = ["experiment", "metric", f"difference to {report.baseline}", "test"]
    body = [
        [c.experiment, METRICS[c.metric].header, verdict(c), c.test] for c in report.comparisons
    ]
    return header, body, [False] * 4


def short_verdict(c: Comparison) -> str:
    """``better`` / ``worse`` / ``differs`` when significant after the correction, ``n.s.``
    when not, ``—`` without a p-value."""
    if c.p_value is None:
        return "—"
    if not c.significant:
        return "n.s."
    better = METRICS[c.metric].higher_is_better
    if better is None or c.difference == 0:
        return "differs"
    return "better" if (c.difference > 0) == better else "worse"


def _p_short(p: float | None) -> str:
    return "—" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _interval_text(c: Comparison) -> str:
    """``[-7.10, -4.23]``: the difference's 95% interval in display units, or ``—``."""
    if c.interval is None:
        return "—"
    metric = METRICS[c.metric]
    low, high = (f"{metric.shown(v):+.{metric.digits}f}" for v in c.interval)
    return f"[{low}, {high}]"


def comparison_table_rows(report: Report) -> Rows:
    """The terminal's baseline table: one column each for the difference, its 95% interval,
    the raw and the adjusted p-value, the verdict and the seeds the test had (the tests
    themselves are named under the table, :func:`tests_note`)."""
    adjusted = CORRECTION_SHORT.get(report.correction, "adj.") + " p"
    header = ["experiment", "metric", "difference", "95% CI", "p", adjusted, "verdict", "seeds"]
    body = [
        [
            c.experiment,
            METRICS[c.metric].short_header,
            format_difference(METRICS[c.metric], c.difference),
            _interval_text(c),
            _p_short(c.p_value),
            _p_short(c.p_adjusted),
            short_verdict(c),
            f"{c.seeds}{'*' if c.low_power else ''}",
        ]
        for c in report.comparisons
    ]
    right = [False, False, True, True, True, True, False, True]
    if report.correction == "none":  # no adjusted column
        right.pop(5)
        for row in [header, *body]:
            row.pop(5)
    return header, body, right


def tests_note(report: Report) -> str:
    """Which tests the rows used (``paired t-test, 3 shared seeds (12 rows)``), and the
    low-power warning where a test had fewer than 5 seeds per side."""
    counts: dict[str, int] = {}
    for c in report.comparisons:
        counts[c.test] = counts.get(c.test, 0) + 1
    tests = "; ".join(f"{t} ({k} row{'s' if k != 1 else ''})" for t, k in counts.items())
    text = f"Tests: {tests}."
    if any(c.low_power for c in report.comparisons):
        text += (
            f" seeds* = fewer than {POWER_SEEDS} seeds per side: the test has little power, "
            "so n.s. is no evidence of no difference; the 95% CI shows what the data allow."
        )
    return text


def legend(report: Report, table: bool = False) -> list[str]:
    """The lines under the main table: which split the numbers are from and how to read them.
    ``table``: the terminal table's wording (short labels, keys in their own table)."""
    validation = [m.header for m in report.metrics if m.section == "validation"]
    split = (
        "Test set"
        if not validation
        else (f"Test set, except {', '.join(validation)} (the validation split)")
    )
    spread = "mean ± std over seeds"
    if report.interval:
        spread += " (± half-width of the 95% t-interval)"
    diverged = (
        "; 3+1d = 3 seeds used and 1 diverged run left out"
        if table and any(e.diverged for e in report.experiments)
        else ""
    )
    lines = [f"{split}. {spread}; n = seeds used{diverged}."]
    shorts = [
        f"{m.short_label} = {m.label}" for m in report.metrics if table and m.short_label != m.label
    ]
    where = "listed below" if table else "shown"
    lines.append(
        "; ".join([*_map_names(report), *shorts])
        + f"; only config keys that differ between experiments are {where}."
    )
    single = [e for e in report.experiments if len(e.runs) == 1]
    if report.interval and any(
        math.isfinite(e.summary(m.key).ci_low) for e in single for m in report.metrics
    ):
        lines.append("n = 1: the run's value [95% percentile-bootstrap interval over test images].")
    elif not report.interval:
        lines.append(
            "--interval adds the 95% interval (t over seeds; one seed: bootstrap over test "
            "images), which csv and json always give."
        )
    return lines


def _map_names(report: Report) -> list[str]:
    """``TS = temperature scaling`` and the other maps' short names that a shown column uses,
    each defined (``VS = vector scaling``), in the registry's order."""
    labels = " ".join(f"{m.label} {m.short_label}" for m in report.metrics)
    used = [
        a for a in ABBREVIATIONS if a == "TS" or re.search(rf"\b{re.escape(a)}(?![\w-])", labels)
    ]
    return [f"{a} = {ABBREVIATIONS[a]}" for a in used]


def correction_note(report: Report, intervals: bool = True) -> str:
    """The line under the baseline table: which p-values the verdicts use, and (where the
    table shows them: ``intervals``) what the bracketed intervals are."""
    m = sum(c.p_value is not None for c in report.comparisons)
    brackets = (
        " Brackets: the difference's 95% t-interval (paired: over the shared seeds' "
        "differences; else Welch's), not adjusted."
        if intervals and any(c.interval is not None for c in report.comparisons)
        else ""
    )
    if report.correction == "none":
        return (
            f"p-values not adjusted for the {m} tests of this table (--correction none).{brackets}"
        )
    name = {"holm": "Holm's step-down", "bh": "Benjamini-Hochberg"}[report.correction]
    controls = "family-wise error rate" if report.correction == "holm" else "false discovery rate"
    return (
        f"Verdicts use {name} adjusted p-values (in parentheses) over the {m} tests of this "
        f"table, controlling the {controls} at alpha.{brackets}"
    )


# --------------------------------------------------------------------------- renderers


def render(report: Report, fmt: str = "table") -> str:
    """The report as ``table``, ``markdown``, ``latex``, ``csv`` or ``json`` text."""
    return RENDERERS[fmt](report)


def render_table(report: Report) -> str:
    """Aligned plain text for a terminal: the default metrics of four experiments fit in
    :data:`WIDTH` columns; notes are wrapped to it."""
    header, body, right = table_rows(report)
    out = [aligned(header, body, right), "", *wrapped(legend(report, table=True))]
    if report.keys:
        out += [
            "",
            "Config keys that differ:",
            aligned([config_rows(report)[0]], *config_rows(report)[1:]),
        ]
    if report.comparisons:
        note = correction_note(report, False).replace(" (in parentheses)", "")
        out += [
            "",
            f"Against the baseline '{report.baseline}' (alpha = {report.alpha:g}):",
            aligned([comparison_table_rows(report)[0]], *comparison_table_rows(report)[1:]),
            "",
            *wrapped(
                [
                    "verdict: better / worse / differs = significant on the adjusted p-value, "
                    "n.s. = not significant. 95% CI: the difference's t-interval (paired: over "
                    "the shared seeds' differences; else Welch's), not adjusted. " + note,
                    tests_note(report),
                ]
            ),
        ]
    return "\n".join(out) + "\n"


def wrapped(lines: list[str]) -> list[str]:
    import textwrap

    return [part for line in lines for part in textwrap.wrap(line, WIDTH) or [""]]


def aligned(headers: list[list[str]], body: list[list[str]], right: list[bool]) -> str:
    """Columns padded to their widest cell, two spaces apart, a rule under the header rows."""
    rows = [*headers, *body]
    widths = [max(len(row[i]) for row in rows) for i in range(len(right))]
    lines = []
    for row in [*headers, ["-" * w for w in widths], *body]:
        cells = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def render_markdown(report: Report) -> str:
    """GitHub-flavoured markdown tables."""
    out = [markdown_table(*main_rows(report)), "", *(f"_{line}_" for line in legend(report))]
    if report.comparisons:
        out += [
            "",
            f"**Against baseline `{report.baseline}`** (alpha = {report.alpha:g})",
            "",
            markdown_table(*comparison_rows(report)),
            "",
            f"_{correction_note(report)}_",
        ]
    return "\n".join(out) + "\n"


def markdown_table(header: list[str], body: list[list[str]], right: list[bool]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    rule = ["---:" if r else "---" for r in right]
    return "\n".join([line(header), "| " + " | ".join(rule) + " |", *map(line, body)])


def render_csv(report: Report) -> str:
    """One row per experiment; raw values (fractions, not percent); empty cell = no value."""
    header = ["experiment", "config_hash", *report.keys, "n", "diverged", "seeds"]
    for m in report.metrics:
        header += [f"{m.key}_{s}" for s in ("mean", "std", "ci95_low", "ci95_high")]
        if report.comparisons:
            header += [f"{m.key}_diff", f"{m.key}_diff_ci95_low", f"{m.key}_diff_ci95_high"]
            header += [f"{m.key}_p", f"{m.key}_p_adjusted", f"{m.key}_test"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for exp in report.experiments:
        writer.writerow(_csv_row(report, exp))
    return buf.getvalue()


def _csv_row(report: Report, exp: Experiment) -> list[Any]:
    row: list[Any] = [
        exp.name,
        exp.chash,
        *(config_text(exp.config, k) for k in report.keys),
        len(exp.runs),
        len(exp.diverged),
        " ".join(map(str, exp.seeds)),
    ]
    found = {(c.experiment, c.metric): c for c in report.comparisons}
    for m in report.metrics:
        s = exp.summary(m.key)
        row += [csv_number(v) for v in (s.mean, s.std, s.ci_low, s.ci_high)]
        if report.comparisons:
            c = found.get((exp.name, m.key))
            if c is None:
                row += ["", "", "", "", "", "baseline"]
                continue
            low, high = c.interval or (None, None)
            row += [csv_number(c.difference), csv_number(low), csv_number(high)]
            row += [csv_number(c.p_value), csv_number(c.p_adjusted), c.test]
    return row


def csv_number(value: float | None) -> Any:
    return "" if value is None or math.isnan(value) else f"{value:.10g}"


def to_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-ready data with stable keys; NaN becomes null."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "metrics": [m.key for m in report.metrics],
        "differing_keys": report.keys,
        "baseline": report.baseline,
        "alpha": report.alpha,
        "correction": report.correction,
        "experiments": [_experiment_dict(report, e) for e in report.experiments],
        "comparisons": [_comparison_dict(c) for c in report.comparisons],
        "warnings": report.warnings,
    }


def _experiment_dict(report: Report, exp: Experiment) -> dict[str, Any]:
    return {
        "name": exp.name,
        "run_name": exp.run_name or exp.name,
        "config_hash": exp.chash,
        "config": {k: exp.config.get(k) for k in report.keys},
        "seeds": exp.seeds,
        "n": len(exp.runs),
        "diverged": len(exp.diverged),
        "runs": [str(r.path) for r in exp.runs],
        "diverged_runs": [str(r.path) for r in exp.diverged],
        "metrics": {m.key: summary_dict(exp.summary(m.key)) for m in report.metrics},
    }


def summary_dict(s: Summary) -> dict[str, Any]:
    return {
        "n": s.n,
        "mean": json_number(s.mean),
        "std": json_number(s.std),
        "ci95_low": json_number(s.ci_low),
        "ci95_high": json_number(s.ci_high),
        # over seeds (t) or, for a single run, over its test images (bootstrap)
        "interval": "t" if s.n >= 2 else ("bootstrap" if math.isfinite(s.ci_low) else None),
    }


def _comparison_dict(c: Comparison) -> dict[str, Any]:
    return {
        "experiment": c.experiment,
        "baseline": c.baseline,
        "metric": c.metric,
        "difference": json_number(c.difference),
        "difference_ci95": None if c.interval is None else [*map(json_number, c.interval)],
        "p_value": c.p_value,
        "p_adjusted": c.p_adjusted,
        "correction": c.correction,
        "test": c.test,
        "significant": c.significant,
        "seeds": c.seeds,
        "low_power": c.low_power,
        "verdict": verdict(c),
    }


def json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


def render_json(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, sort_keys=True) + "\n"


RENDERERS: dict[str, Callable[[Report], str]] = {
    "table": render_table,
    "markdown": render_markdown,
    "latex": render_latex,
    "csv": render_csv,
    "json": render_json,
}
