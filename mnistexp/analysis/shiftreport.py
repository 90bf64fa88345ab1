"""Render a :class:`~mnistexp.analysis.shiftcompare.ShiftReport`: the tables of ``compare --shift``.

Four kinds of table, each a :class:`Table` that every format draws the same way:

* the test set: each experiment's seeds (mean ± sd) and their ensemble, on accuracy, NLL,
  Brier, ECE, debiased CE and smooth ECE;
* the shift table, one per ``--shift-metric`` and family: severities in columns; rows are the
  raw probabilities, every recalibration map the runs fitted (for accuracy only the maps that
  can change a prediction: temperature scaling keeps every argmax) and the ensemble;
* the OOD table: per OOD set and score, AUROC, AUPR-in, AUPR-out and FPR at 95% TPR;
* the selective table: per set (the test set, then every shifted set), AURC, E-AURC and
  accuracy at 90, 95 and 99% coverage of the raw probabilities and the ensemble (csv and
  json also hold them after every map).

The terminal splits a table wider than :data:`~mnistexp.analysis.report.WIDTH` into column
blocks, repeating its label columns. csv is one long table (one row per number), json keeps
every number with its summary; both always hold every metric and every map.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mnistexp.analysis.columns import Metric
from mnistexp.analysis.compare import Report
from mnistexp.analysis.report import (
    WIDTH,
    aligned,
    csv_number,
    format_cell,
    latex_escape,
    markdown_table,
    summary_dict,
    wrapped,
)
from mnistexp.analysis.report import render as render_main
from mnistexp.analysis.report import to_dict as main_dict
from mnistexp.analysis.shiftcompare import (
    ENSEMBLE,
    OOD_METRICS,
    SELECTIVE_METRICS,
    SET_METRICS,
    SHIFT_METRICS,
    TEST,
    VARIANT_TITLES,
    OodRow,
    SetRow,
    ShiftReport,
)
from mnistexp.analysis.stats import Summary
from mnistexp.data.shifts import SHIFTS
from mnistexp.eval.recalibration import RECALIBRATIONS
from mnistexp.pipeline.shifted import DIGITS

JSON_SCHEMA_VERSION = 1
"""The layout of the ``shift`` object that ``compare --shift --format json`` adds."""

ENSEMBLE_NOTE = (
    "ensemble of N = the N seeds' probabilities averaged (deep ensembles over seeds, "
    "Lakshminarayanan et al. 2017) and scored again; raw probabilities only, not recalibrated."
)
STORAGE_NOTE = (
    "Ensembles are scored from the stored probabilities (float32 test set, float16 shifted "
    "and OOD sets), the largest of each row rebuilt as 1 minus the others. float16 stores a "
    "probability below 3e-8 as 0, which the NLL scores at its floor 1e-12: an ensemble's NLL "
    "on a shifted set can be too high (csv and json: stored_zero, the share of such images). "
    "On the shifted sets, an ensemble's smooth ECE is computed only with --shift-metric "
    "smooth_ece (about 25 ms a set)."
)

Attrs = dict[str, str]


@dataclass
class Table:
    """One table as every format draws it: ``fixed`` leading label columns, then numbers;
    ``attrs`` names each number cell (experiment, metric, set, map) for the HTML page."""

    key: str  # an id: test, shift-ece-rotate, ood, selective
    title: str
    header: list[str]
    body: list[list[str]]
    right: list[bool]
    fixed: int
    attrs: list[list[Attrs | None]]
    notes: list[str]


def variant_title(variant: str) -> str:
    return VARIANT_TITLES.get(variant, variant)


def _cell(metric: Metric, s: Summary, sep: str) -> str:
    return format_cell(metric, s, sep=sep)


# --------------------------------------------------------------------------- tables


def tables(shift: ShiftReport, sep: str = " ± ") -> list[Table]:
    """Every table of ``shift`` in order: test set, shift tables, OOD, selective."""
    out = [test_table(shift, sep)]
    for metric in shift.metrics:
        out += family_tables(shift, metric, sep)
    if shift.ood:
        out.append(ood_table(shift, sep))
    out.append(selective_table(shift, sep))
    return out


def test_table(shift: ShiftReport, sep: str) -> Table:
    """The unshifted test set: seeds (mean ± sd) and their ensemble."""
    rows = [r for r in shift.sets if r.key == TEST and r.variant in ("raw", ENSEMBLE)]
    metrics = [SET_METRICS[k] for k in SHIFT_METRICS]
    header = ["experiment", "n", *(m.header for m in metrics)]
    body, attrs = [], []
    for r in rows:
        body.append([r.label, str(r.n), *(_cell(m, r.values[m.key], sep) for m in metrics)])
        attrs.append([None, None, *(_attrs(r.label, m.key, TEST, r.variant) for m in metrics)])
    notes = [
        "Seeds: mean ± sd over the runs pooled for the shift tables (their metrics.json); "
        + ENSEMBLE_NOTE,
    ]
    return Table(
        "test",
        "Test set: seeds and their ensemble",
        header,
        body,
        [False] + [True] * (len(header) - 1),
        1,
        attrs,
        notes,
    )


def family_tables(shift: ShiftReport, metric_key: str, sep: str) -> list[Table]:
    """One table per shift family for ``metric_key``: severities in columns."""
    metric = SET_METRICS[metric_key]
    families: dict[str, dict[str, float | None]] = {}  # family -> set key -> severity
    for r in shift.sets:
        if r.key != TEST:
            families.setdefault(r.family, {}).setdefault(r.key, r.severity)
    out = [
        _family_table(shift, metric, family, list(keys.items()), sep)
        for family, keys in families.items()
    ]
    if out:
        out[-1].notes = _family_notes(shift, metric)
    return out


def _shown(variant: str, metric_key: str) -> bool:
    """Whether a variant's row is shown for a metric: a map that keeps every prediction
    (temperature scaling) has the raw accuracy, so its accuracy row is left out."""
    if metric_key != "accuracy" or variant in ("raw", ENSEMBLE):
        return True
    method = RECALIBRATIONS.get(variant)
    return method is None or method.changes_accuracy


def _family_table(
    shift: ShiftReport,
    metric: Metric,
    family: str,
    keys: list[tuple[str, float | None]],
    sep: str,
) -> Table:
    found = {(r.experiment, r.variant, r.key): r for r in shift.sets if r.family == family}
    order = dict.fromkeys((r.experiment, r.variant) for r in shift.sets if r.family == family)
    header = ["experiment", "map", "n", *(_severity(family, sev) for _, sev in keys)]
    body, attrs = [], []
    for experiment, variant in order:
        if not _shown(variant, metric.key):
            continue
        cells = [found.get((experiment, variant, key)) for key, _ in keys]
        present = [c for c in cells if c is not None]
        label = present[0].label
        n = max(c.n for c in present)
        body.append(
            [label, variant_title(variant), str(n)]
            + [_cell(metric, c.values[metric.key], sep) if c else "—" for c in cells]
        )
        attrs.append(
            [None, None, None] + [_attrs(label, metric.key, key, variant) for key, _ in keys]
        )
    title = f"{metric.header} under {_family_title(family)}"
    right = [False, False] + [True] * (len(header) - 2)
    return Table(f"shift-{metric.key}-{family}", title, header, body, right, 3, attrs, [])


def _family_notes(shift: ShiftReport, metric: Metric) -> list[str]:
    """The legend under the last family table of a metric."""
    maps = dict.fromkeys(r.variant for r in shift.sets if r.variant not in ("raw", ENSEMBLE))
    named = ", ".join(f"{variant_title(v)} = {v}" for v in maps)
    notes = [
        f"{metric.header} of each severity: mean ± sd over seeds; map: raw = the probabilities "
        "as the model gives them"
        + (f"; {named} (fitted on the in-distribution validation split)" if named else "")
        + "; ensemble rows: raw, as in the test-set table."
    ]
    if metric.key == "accuracy" and "temperature" in maps:
        notes.append("Temperature scaling keeps every prediction: its accuracy is the raw one.")
    return notes


def _family_title(family: str) -> str:
    if family == DIGITS:
        return "UCI optical digits (other writers, another scanner)"
    unit = SHIFTS[family].unit if family in SHIFTS else ""
    return f"{family} ({unit})" if unit else family


def _severity(family: str, severity: float | None) -> str:
    return "UCI" if severity is None else f"{severity:g}"


def ood_table(shift: ShiftReport, sep: str) -> Table:
    """Per OOD set and score: detection metrics of each experiment, map and ensemble."""
    metrics = list(OOD_METRICS.values())
    header = ["OOD set", "score", "experiment", "map", "n", *(m.short_header for m in metrics)]
    body, attrs = [], []
    for r in sorted(shift.ood, key=_ood_order(shift)):
        body.append(
            [r.name, r.score, r.label, variant_title(r.variant), str(r.n)]
            + [_cell(m, r.values[m.key], sep) for m in metrics]
        )
        attrs.append(
            [None] * 5
            + [_attrs(r.label, m.key, f"ood/{r.name}", r.variant, r.score) for m in metrics]
        )
    notes = [
        "OOD detection against the unshifted test set (in-distribution = positive): mean ± sd "
        "over seeds. msp = max probability, entropy = negative predictive entropy, energy = "
        "logsumexp of the logits. The ensemble has no energy score: an average of probabilities "
        "has no logits.",
    ]
    right = [False] * 4 + [True] * (len(header) - 4)
    return Table("ood", "Out-of-distribution detection", header, body, right, 5, attrs, notes)


def _ood_order(shift: ShiftReport) -> Callable[[OodRow], tuple[int, int, int]]:
    sets = list(dict.fromkeys(r.name for r in shift.ood))
    scores = list(dict.fromkeys(r.score for r in shift.ood))
    rows = list(dict.fromkeys((r.experiment, r.variant) for r in shift.ood))
    return lambda r: (
        sets.index(r.name),
        scores.index(r.score),
        rows.index((r.experiment, r.variant)),
    )


def selective_table(shift: ShiftReport, sep: str) -> Table:
    """Per set: AURC, E-AURC and accuracy at 90/95/99% coverage, raw and ensemble."""
    metrics = [SET_METRICS[k] for k in SELECTIVE_METRICS]
    header = ["set", "experiment", "map", "n", *(m.short_header for m in metrics)]
    keys = list(dict.fromkeys(r.key for r in shift.sets))
    shown = [r for r in shift.sets if r.variant in ("raw", ENSEMBLE)]
    body, attrs = [], []
    for r in sorted(shown, key=lambda r: keys.index(r.key)):  # stable: experiment order kept
        body.append(
            [r.key, r.label, variant_title(r.variant), str(r.n)]
            + [_cell(m, r.values[m.key], sep) for m in metrics]
        )
        attrs.append([None] * 4 + [_attrs(r.label, m.key, r.key, r.variant) for m in metrics])
    notes = [
        "Selective prediction (the most confident images accepted first): AURC = mean risk "
        "over coverages, E-AURC = AURC minus that of the best ranking of the same predictions; "
        "mean ± sd over seeds. After each recalibration map: csv and json.",
    ]
    right = [False] * 3 + [True] * (len(header) - 3)
    return Table("selective", "Selective prediction", header, body, right, 4, attrs, notes)


def _attrs(label: str, metric: str, key: str, variant: str, score: str = "") -> Attrs:
    out = {"experiment": label, "metric": metric, "set": key, "map": variant}
    return out | ({"score": score} if score else {})


# --------------------------------------------------------------------------- formats


def render_table(shift: ShiftReport) -> str:
    """Terminal text: every table, wide ones split into column blocks."""
    out = []
    for t in tables(shift, sep="±"):
        out += ["", f"{t.title}:"]
        for i, block in enumerate(_blocks(t)):
            out += [""] * (i > 0) + [aligned([block[0]], block[1], block[2])]
        out += [""] * bool(t.notes) + wrapped(t.notes)
    return "\n".join([*out, "", *wrapped([STORAGE_NOTE])]) + "\n"


def _blocks(t: Table) -> list[tuple[list[str], list[list[str]], list[bool]]]:
    """The table cut into column blocks that fit :data:`WIDTH`, each with the label columns."""
    widths = [max(len(row[i]) for row in [t.header, *t.body]) + 2 for i in range(len(t.header))]
    fixed = list(range(t.fixed))
    blocks: list[list[int]] = []
    current: list[int] = []
    used = sum(widths[: t.fixed])
    for i in range(t.fixed, len(t.header)):
        if current and used + widths[i] > WIDTH:
            blocks.append(current)
            current, used = [], sum(widths[: t.fixed])
        current.append(i)
        used += widths[i]
    blocks.append(current)
    return [
        (
            [t.header[i] for i in fixed + cols],
            [[row[i] for i in fixed + cols] for row in t.body],
            [t.right[i] for i in fixed + cols],
        )
        for cols in blocks
    ]


def render_markdown(shift: ShiftReport) -> str:
    out = []
    for t in tables(shift):
        out += ["", f"**{t.title}**", "", markdown_table(t.header, t.body, t.right), ""]
        out += [f"_{line}_" for line in t.notes]
    return "\n".join([*out, "", f"_{STORAGE_NOTE}_"]) + "\n"


def render_latex(shift: ShiftReport) -> str:
    r"""One booktabs ``table`` per table (``\usepackage{booktabs}``), text escaped."""
    out = []
    for t in tables(shift):
        columns = "".join("r" if r else "l" for r in t.right)
        body = [
            " & ".join(_latex_text(c, t.right[i]) for i, c in enumerate(row)) + r" \\"
            for row in t.body
        ]
        caption = latex_escape(f"{t.title}. {' '.join(t.notes)}").replace("±", r"$\pm$")
        out += [
            "",
            r"\begin{table}[t]",
            r"\centering",
            r"\small",
            rf"\caption{{{caption}}}",
            rf"\label{{tab:mnistexp-{t.key.replace('_', '-')}}}",
            rf"\begin{{tabular}}{{{columns}}}",
            r"\toprule",
            " & ".join(latex_escape(h) for h in t.header) + r" \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            r"\end{table}",
        ]
    return "\n".join(out) + "\n"


def _latex_text(cell: str, number: bool) -> str:
    r"""A cell: ``12.34 ± 0.56`` as ``$12.34 \pm 0.56$``; text escaped."""
    if number and cell not in ("—", "") and not cell.isdigit():
        return "$" + cell.replace(" ± ", r" \pm ") + "$"
    return "--" if cell == "—" else latex_escape(cell)


CSV_HEADER = [
    "table",
    "experiment",
    "label",
    "map",
    "n",
    "set",
    "family",
    "severity",
    "score",
    "metric",
    "mean",
    "std",
    "ci95_low",
    "ci95_high",
]


def render_csv(shift: ShiftReport) -> str:
    """One row per number: every set, map, score and metric (raw fractions, not percent)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for r in shift.sets:
        severity = "" if r.severity is None else f"{r.severity:g}"
        where = [r.experiment, r.label, r.variant, r.n, r.key, r.family, severity, ""]
        for key, s in r.values.items():
            table = "selective" if key in SELECTIVE_METRICS else "shift"
            writer.writerow([table, *where, key, *_numbers(s)])
    for o in shift.ood:
        where = [o.experiment, o.label, o.variant, o.n, f"ood/{o.name}", "ood", "", o.score]
        for key, s in o.values.items():
            writer.writerow(["ood", *where, key, *_numbers(s)])
    return buf.getvalue()


def _numbers(s: Summary) -> list[Any]:
    return [csv_number(v) for v in (s.mean, s.std, s.ci_low, s.ci_high)]


def to_dict(shift: ShiftReport) -> dict[str, Any]:
    """The ``shift`` object of compare's json: raw fractions, NaN as null, stable keys."""
    from mnistexp.analysis.ensembles import COVERAGE_GRID

    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "ensemble": ENSEMBLE_NOTE + " " + STORAGE_NOTE,
        "shift_metrics": list(shift.metrics),
        "experiments": [vars(e) for e in shift.experiments],
        "sets": [_row_dict(r) | {"family": r.family, "severity": r.severity} for r in shift.sets],
        "ood": [_row_dict(o) | {"score": o.score} for o in shift.ood],
        "risk_coverage": {
            "coverage": COVERAGE_GRID.tolist(),
            "experiments": [
                {
                    "name": c.experiment,
                    "seeds": [risk.tolist() for risk in c.seeds],
                    "ensemble": None if c.ensemble is None else c.ensemble.tolist(),
                }
                for c in shift.curves
            ],
        },
    }


def _row_dict(r: SetRow | OodRow) -> dict[str, Any]:
    key = r.key if isinstance(r, SetRow) else f"ood/{r.name}"
    return {
        "experiment": r.experiment,
        "label": r.label,
        "map": r.variant,
        "n": r.n,
        "set": key,
        "metrics": {k: summary_dict(s) for k, s in r.values.items()},
    }


RENDERERS: dict[str, Callable[[ShiftReport], str]] = {
    "table": render_table,
    "markdown": render_markdown,
    "latex": render_latex,
    "csv": render_csv,
}
"""The text formats; json merges :func:`to_dict` into compare's own object instead."""

__all__ = ["RENDERERS", "SHIFT_METRICS", "Table", "render_table", "tables", "to_dict"]


def render_with_shift(report: Report, shift: ShiftReport, fmt: str) -> str:
    """compare's output with ``--shift``: the usual report, then the shift tables (csv: after
    a blank line, in a long table of their own; json: one object, its ``shift`` key added)."""
    if fmt == "json":
        data = {**main_dict(report), "shift": to_dict(shift)}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"
    blank = "\n" if fmt == "csv" else ""
    return render_main(report, fmt) + blank + RENDERERS[fmt](shift)
