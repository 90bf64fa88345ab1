"""Render a :class:`~mnistexp.compare.Report` as a terminal table, markdown, CSV or JSON.

Pure: a report in, a string out (the golden tests pin the exact text). Percent-style metrics
are shown in percent in the table and markdown; CSV and JSON keep raw fractions, and JSON has
stable keys for scripts.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from typing import Any

from mnistexp.columns import METRICS, Metric
from mnistexp.compare import JSON_SCHEMA_VERSION, Comparison, Experiment, Report
from mnistexp.stats import Summary


def format_cell(metric: Metric, s: Summary) -> str:
    """``"97.81 ± 0.12 (±0.30)"``: mean ± std (± 95% half-width); "—" without values. One
    seed with a bootstrap interval: ``"97.81 [97.52, 98.09]"``."""
    if s.n == 0:
        return "—"
    d = metric.digits
    text = f"{metric.shown(s.mean):.{d}f}"
    if s.n == 1 and math.isfinite(s.ci_low):
        text += f" [{metric.shown(s.ci_low):.{d}f}, {metric.shown(s.ci_high):.{d}f}]"
    if s.n >= 2:
        half = metric.shown(s.ci_high - s.mean)
        text += f" ± {metric.shown(s.std):.{d}f} (±{half:.{d}f})"
    return text


def format_difference(metric: Metric, diff: float) -> str:
    """``"+0.41 pp"`` for percent metrics, ``"-0.0123"`` otherwise."""
    if math.isnan(diff):
        return "—"
    unit = " pp" if metric.percent else ""
    return f"{metric.shown(diff):+.{metric.digits}f}{unit}"


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
    diff = format_difference(metric, c.difference)
    if c.p_value is None:
        return f"{diff}, no p-value"
    if not c.significant:
        return f"{diff}, {_p_text(c)}, not significant"
    direction = ""
    if metric.higher_is_better is not None and c.difference != 0:
        better = (c.difference > 0) == metric.higher_is_better
        direction = " (better)" if better else " (worse)"
    return f"{diff}, {_p_text(c)}, significant at {c.alpha:g}{direction}"


def _value_text(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return str(value)


def _n_text(exp: Experiment) -> str:
    return (
        f"{len(exp.runs)} (+{len(exp.diverged)} diverged)" if exp.diverged else str(len(exp.runs))
    )


# --------------------------------------------------------------------------- rows


Rows = tuple[list[str], list[list[str]], list[bool]]
"""Header, body rows and, per column, whether it is right-aligned (numbers)."""


def main_rows(report: Report) -> Rows:
    """The experiment table: name, differing config keys, n, one column per metric."""
    header = ["experiment", *report.keys, "n", *(m.header for m in report.metrics)]
    right = [False] * (1 + len(report.keys)) + [True] * (1 + len(report.metrics))
    body = [
        [
            e.name,
            *(_value_text(e.config.get(k)) for k in report.keys),
            _n_text(e),
            *(format_cell(m, e.summary(m.key)) for m in report.metrics),
        ]
        for e in report.experiments
    ]
    return header, body, right


def comparison_rows(report: Report) -> Rows:
    """The baseline table: experiment, metric, verdict sentence, test used."""
    header = ["experiment", "metric", f"difference to {report.baseline}", "test"]
    body = [
        [c.experiment, METRICS[c.metric].header, verdict(c), c.test] for c in report.comparisons
    ]
    return header, body, [False] * 4


def legend(report: Report) -> list[str]:
    """The lines under the main table: which split the numbers are from and how to read them."""
    validation = [m.header for m in report.metrics if m.section == "validation"]
    split = (
        "Test set"
        if not validation
        else (f"Test set, except {', '.join(validation)} (the validation split)")
    )
    lines = [
        f"{split}. mean ± std over seeds (± half-width of the 95% t-interval); n = seeds used.",
        "TS = temperature scaling; config keys equal in all experiments are not shown.",
    ]
    if any(
        math.isfinite(e.summary(m.key).ci_low)
        for e in report.experiments
        if len(e.runs) == 1
        for m in report.metrics
    ):
        lines.append("n = 1: the run's value [95% percentile-bootstrap interval over test images].")
    return lines


def correction_note(report: Report) -> str:
    """The line under the baseline table: which p-values the verdicts use."""
    m = sum(c.p_value is not None for c in report.comparisons)
    if report.correction == "none":
        return f"p-values not adjusted for the {m} tests of this table (--correction none)."
    name = {"holm": "Holm's step-down", "bh": "Benjamini-Hochberg"}[report.correction]
    controls = "family-wise error rate" if report.correction == "holm" else "false discovery rate"
    return (
        f"Verdicts use {name} adjusted p-values (in parentheses) over the {m} tests of this "
        f"table, controlling the {controls} at alpha."
    )


# --------------------------------------------------------------------------- renderers


def render(report: Report, fmt: str = "table") -> str:
    """The report as ``table``, ``markdown``, ``csv`` or ``json`` text."""
    return RENDERERS[fmt](report)


def render_table(report: Report) -> str:
    """Aligned plain text for a terminal."""
    out = [_aligned(*main_rows(report)), "", *legend(report)]
    if report.comparisons:
        out += [
            "",
            f"Against the baseline '{report.baseline}' (alpha = {report.alpha:g}):",
            _aligned(*comparison_rows(report)),
            "",
            correction_note(report),
        ]
    return "\n".join(out) + "\n"


def _aligned(header: list[str], body: list[list[str]], right: list[bool]) -> str:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = []
    for row in [header, ["-" * w for w in widths], *body]:
        cells = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def render_markdown(report: Report) -> str:
    """GitHub-flavoured markdown tables."""
    out = [_markdown(*main_rows(report)), "", *(f"_{line}_" for line in legend(report))]
    if report.comparisons:
        out += [
            "",
            f"**Against baseline `{report.baseline}`** (alpha = {report.alpha:g})",
            "",
            _markdown(*comparison_rows(report)),
            "",
            f"_{correction_note(report)}_",
        ]
    return "\n".join(out) + "\n"


def _markdown(header: list[str], body: list[list[str]], right: list[bool]) -> str:
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
            header += [f"{m.key}_diff", f"{m.key}_p", f"{m.key}_p_adjusted", f"{m.key}_test"]
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
        *(_value_text(exp.config.get(k)) for k in report.keys),
        len(exp.runs),
        len(exp.diverged),
        " ".join(map(str, exp.seeds)),
    ]
    found = {(c.experiment, c.metric): c for c in report.comparisons}
    for m in report.metrics:
        s = exp.summary(m.key)
        row += [_number(v) for v in (s.mean, s.std, s.ci_low, s.ci_high)]
        if report.comparisons:
            c = found.get((exp.name, m.key))
            row += (
                ["", "", "", "baseline"]
                if c is None
                else [_number(c.difference), _number(c.p_value), _number(c.p_adjusted), c.test]
            )
    return row


def _number(value: float | None) -> Any:
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
        "config_hash": exp.chash,
        "config": {k: exp.config.get(k) for k in report.keys},
        "seeds": exp.seeds,
        "n": len(exp.runs),
        "diverged": len(exp.diverged),
        "runs": [str(r.path) for r in exp.runs],
        "diverged_runs": [str(r.path) for r in exp.diverged],
        "metrics": {m.key: _summary_dict(exp.summary(m.key)) for m in report.metrics},
    }


def _summary_dict(s: Summary) -> dict[str, Any]:
    return {
        "n": s.n,
        "mean": _json_number(s.mean),
        "std": _json_number(s.std),
        "ci95_low": _json_number(s.ci_low),
        "ci95_high": _json_number(s.ci_high),
        # over seeds (t) or, for a single run, over its test images (bootstrap)
        "interval": "t" if s.n >= 2 else ("bootstrap" if math.isfinite(s.ci_low) else None),
    }


def _comparison_dict(c: Comparison) -> dict[str, Any]:
    return {
        "experiment": c.experiment,
        "baseline": c.baseline,
        "metric": c.metric,
        "difference": _json_number(c.difference),
        "p_value": c.p_value,
        "p_adjusted": c.p_adjusted,
        "correction": c.correction,
        "test": c.test,
        "significant": c.significant,
        "verdict": verdict(c),
    }


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


def render_json(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, sort_keys=True) + "\n"


RENDERERS: dict[str, Callable[[Report], str]] = {
    "table": render_table,
    "markdown": render_markdown,
    "csv": render_csv,
    "json": render_json,
}
