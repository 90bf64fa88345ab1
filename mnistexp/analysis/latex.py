r"""Render a :class:`~mnistexp.analysis.compare.Report` as a LaTeX table that drops into a paper.

Pure: a report in, a string out. The table needs ``\usepackage{booktabs}`` and nothing else,
and fits its width in a plain ``article``:

- ``column`` (default): a ``table`` in ``\footnotesize`` (the caption ``\small``) that fits
  one column of a two-column paper, with the experiments' labels (long ones wrap), the metrics
  of :data:`COLUMN_METRICS` (unless ``--metrics`` chose others) as ``94.38(33)`` (mean, and
  the sd in units of its last digit), and no config-key columns: the label says what
  differs, the caption what is shared.
- ``text``: a ``table*`` spanning both columns of a two-column paper, with the config keys that
  differ as columns and the default metrics.

Text is escaped for the T1 and OT1 encodings alike (``<`` is ``$<$``, never the text-mode
glyph that OT1 prints as an inverted exclamation mark). The caption is sentences: what the
cells are, the settings every row shares, and which test and correction the marks use.
"""

from __future__ import annotations

import hashlib
import math
import re

from mnistexp.analysis import provenance
from mnistexp.analysis.columns import DEFAULT_METRICS, Metric
from mnistexp.analysis.compare import (
    POWER_SEEDS,
    Experiment,
    Report,
    config_text,
    short_keys,
    value_text,
)

LATEX_WIDTHS = ("column", "text")
COLUMN_METRICS = ("accuracy", "nll", "ece", "ts_ece")
"""The default columns of ``--latex-width column``: what fits one column of a paper."""
TEXT_METRICS = DEFAULT_METRICS
LABEL_WIDTH = "7.5em"
"""The label column of a one-column table whose labels are long (a sweep's
``scheme=onehot, lr=0.05``): they wrap at their spaces within this width."""
LABEL_PATTERN = re.compile(r"[A-Za-z0-9:._/-]+")
r"""What ``--latex-label`` accepts: the characters a ``\label`` keeps safely in every class."""

LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # OT1 (LaTeX's default font encoding) has no <, > or | in text: it prints other glyphs
    "<": r"$<$",
    ">": r"$>$",
    "|": r"$|$",
    "±": r"$\pm$",
    "—": "---",
    "–": "--",
}


def latex_escape(text: str) -> str:
    r"""Text with LaTeX's special characters escaped: ``a_b`` -> ``a\_b``, ``<`` -> ``$<$``."""
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)


def default_metrics(width: str) -> tuple[str, ...]:
    """The metric columns of a LaTeX table of ``width`` when ``--metrics`` is not given."""
    return COLUMN_METRICS if width == "column" else TEXT_METRICS


def table_label(report: Report, label: str | None = None) -> str:
    """``label``, or ``tab:compare-<6 hex>`` from the experiments and metrics shown, so that
    two tables of one paper never share a label and one table keeps its label when rebuilt."""
    if label:
        return label
    content = ",".join(
        [*sorted(e.chash for e in report.experiments), *(m.key for m in report.metrics)]
    )
    return "tab:compare-" + hashlib.sha256(content.encode()).hexdigest()[:6]


def _cell(metric: Metric, exp: Experiment, mark: bool) -> str:
    r"""``95.05(7)``: the mean, and in parentheses the sd over seeds in units of the mean's
    last digit (95.05 +- 0.07); the sd keeps two significant digits and the mean is rounded
    to match (``0.485(13)``), never to more digits than the other formats show (at most 3
    decimals: no seed-to-seed spread of NLL or Brier is smaller). One seed:
    ``95.05``; ``\rlap{$^{*}$}`` when marked (no width: the columns stay narrow); ``--`` if
    absent."""
    s = exp.summary(metric.key)
    if s.n == 0:
        return "--"
    d = min(metric.digits, 3)  # NLL and Brier to 0.001: a seed moves them more than that
    if s.n >= 2:
        sd = metric.shown(s.std)
        if sd > 0:
            d = min(d, max(0, 1 - math.floor(math.log10(sd))))
        text = f"{metric.shown(s.mean):.{d}f}({round(sd * 10**d)})"
    else:
        text = f"{metric.shown(s.mean):.{d}f}"
    return text + (r"\rlap{$^{*}$}" if mark else "")


def _n_column(report: Report) -> bool:
    """Whether the table needs an ``n`` column: the rows' seed counts differ, or runs diverged."""
    return len({len(e.runs) for e in report.experiments}) > 1 or any(
        e.diverged for e in report.experiments
    )


def _header(report: Report, keys: list[str], with_n: bool) -> list[str]:
    """Two header rows: names (``accuracy``), then units (``(\\%)``)."""
    names = ["", *(latex_escape(k) for k in short_keys(keys)), *(["$n$"] if with_n else [])]
    units = [""] * len(names)
    for m in report.metrics:
        names.append(latex_escape(m.short_label))
        units.append(f"({latex_escape(m.unit_text)})" if m.unit_text else "")
    rows = [" & ".join(names) + r" \\"]
    if any(units):
        rows.append(" & ".join(units) + r" \\")
    return rows


def _n_text(exp: Experiment) -> str:
    return str(len(exp.runs)) + (f" (+{len(exp.diverged)})" if exp.diverged else "")


def render_latex(report: Report) -> str:
    r"""A booktabs table of ``report.latex_width`` (``table`` or ``table*``) with its caption
    and label; ``^{*}`` on the cells that differ significantly from the baseline."""
    significant = {(c.experiment, c.metric) for c in report.comparisons if c.significant}
    keys = report.keys if report.latex_width == "text" else []
    with_n = _n_column(report)
    wrap = report.latex_width == "column" and max(len(e.name) for e in report.experiments) > 16
    first = f"p{{{LABEL_WIDTH}}}" if wrap else "l"  # long labels break at their spaces
    spec = f"@{{}}{first}" + "l" * len(keys) + "r" * (int(with_n) + len(report.metrics)) + "@{}"
    env = "table*" if report.latex_width == "text" else "table"
    lines = [
        *(
            f"% {line}"
            for line in (provenance.lines(report.provenance) if report.provenance else [])
        ),
        rf"\begin{{{env}}}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{latex_caption(report, with_n)}}}",
        rf"\label{{{table_label(report, report.latex_label)}}}",
        # one column of a two-column paper is about 240 pt: footnote size fits four metrics
        r"\smallskip",  # article sets no space between a caption above and the table
        *([r"\footnotesize"] if report.latex_width == "column" else []),
        r"\setlength{\tabcolsep}{4pt}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        *_header(report, keys, with_n),
        r"\midrule",
    ]
    for e in report.experiments:
        cells = [
            (r"\raggedright " if wrap else "") + latex_escape(e.name),
            *(latex_escape(config_text(e.config, k)) for k in keys),
            *([_n_text(e)] if with_n else []),
            *(_cell(m, e, (e.name, m.key) in significant) for m in report.metrics),
        ]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\end{{{env}}}"]
    if report.comparisons:
        lines += ["", *differences_table(report)]
    return "\n".join(lines) + "\n"


DAGGER = r"$^{\dagger}$"


def _signed(value: float, digits: int) -> str:
    return f"${value:+.{digits}f}$"


def differences_table(report: Report) -> list[str]:
    r"""A second ``table`` with ``--baseline``: per experiment (a group row) and metric, the
    difference to the baseline, its 95% interval and the adjusted p-value, a dagger where a
    side has fewer than :data:`POWER_SEEDS` seeds; narrow enough for one column."""
    from mnistexp.analysis.columns import METRICS

    adjusted = {"holm": "Holm $p$", "bh": "BH $p$"}.get(report.correction, "$p$")
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{_differences_caption(report)}}}",
        rf"\label{{{table_label(report, report.latex_label)}-diff}}",
        r"\smallskip",
        r"\footnotesize",
        r"\setlength{\tabcolsep}{4pt}",
        r"\begin{tabular}{@{}lrrr@{}}",
        r"\toprule",
        rf" & difference & 95\% interval & {adjusted} \\",
        r"\midrule",
    ]
    current = None
    for c in report.comparisons:
        if c.experiment != current:
            current = c.experiment
            lines.append(
                rf"\multicolumn{{4}}{{@{{}}l}}{{\emph{{{latex_escape(c.experiment)}}}}} \\"
            )
        m = METRICS[c.metric]
        d = min(m.digits, 3)
        unit = "pp" if m.percent else m.unit
        name = latex_escape(m.short_label) + (f" ({unit})" if unit else "")
        ci = "--"
        if c.interval is not None:
            low, high = (m.shown(v) for v in c.interval)
            ci = f"[{_signed(low, d)}, {_signed(high, d)}]"
        p = c.p_value if report.correction == "none" else c.p_adjusted
        p_text = "--" if p is None else ("$<$0.001" if p < 0.001 else f"{p:.3f}")
        mark = r"\rlap{$^{*}$}" if c.significant else ""
        diff = "--" if math.isnan(c.difference) else _signed(m.shown(c.difference), d)
        power = rf"\rlap{{{DAGGER}}}" if c.low_power else ""
        lines.append(rf"\quad {name} & {diff}{mark} & {ci} & {p_text}{power} \\")
    return [*lines, r"\bottomrule", r"\end{tabular}", r"\end{table}"]


def _differences_caption(report: Report) -> str:
    name = report.baseline or ""
    base = "the baseline" + ("" if name == "baseline" else rf" (\emph{{{latex_escape(name)}}})")
    text = (
        rf"Differences to {base}, other minus baseline (pp: percentage points), with the 95\% "
        "t-interval of the difference (paired over shared seeds, else Welch's; not adjusted) "
        f"and the adjusted p-value; $^{{*}}$: significant at {report.alpha:g}."
    )
    if any(c.low_power for c in report.comparisons):
        few = " or ".join(map(str, sorted({c.seeds for c in report.comparisons if c.low_power})))
        text += (
            f" {DAGGER}: {few} seeds per side, fewer than {POWER_SEEDS}: little power, so no "
            "mark is no evidence of no difference."
        )
    return text


# --------------------------------------------------------------------------- the caption

SETTINGS = {
    "model.hidden": lambda v: "hidden layers " + value_text(v),
    "model.activation": lambda v: f"{v} activations",
    "loss.type": lambda v: f"{v} loss".replace("_", "-"),
    "loss.output": lambda v: f"{v} output",
    "targets.scheme": lambda v: f"{v} targets",
    "train.optimizer": lambda v: str(v).upper() if v == "sgd" else str(v),
    "train.lr": lambda v: f"learning rate {v}",
    "train.batch_size": lambda v: f"batch size {v}",
    "train.epochs": lambda v: f"{v} epoch" + ("" if v == 1 else "s"),
    "data.scaling": lambda v: f"{v} input scaling",
    "data.train_subset": lambda v: f"the first {v} training images",
}
"""The shared settings a caption names, in this order, and how each one reads."""


def shared_settings(report: Report) -> list[str]:
    """``["hidden layers [100]", "relu activations", ...]``: the :data:`SETTINGS` whose value
    is the same in every experiment shown."""
    out = []
    for key, text in SETTINGS.items():
        values = {value_text(e.config.get(key)) for e in report.experiments}
        value = report.experiments[0].config.get(key)
        if key not in report.keys and len(values) == 1 and value is not None:
            out.append(text(value))
    return out


def seeds_text(report: Report) -> str:
    """``seeds 0--2`` when every row has the same seeds, else ``2 to 3 seeds``."""
    seed_sets = {tuple(e.seeds) for e in report.experiments}
    if len(seed_sets) == 1:
        seeds = next(iter(seed_sets))
        if len(seeds) == 1:
            return f"seed {seeds[0]}"
        if list(seeds) == list(range(seeds[0], seeds[-1] + 1)):
            return f"seeds {seeds[0]}--{seeds[-1]}"
        return "seeds " + ", ".join(map(str, seeds))
    counts = sorted({len(s) for s in seed_sets})
    return f"{counts[0]} to {counts[-1]} seeds"


def _tests_text(report: Report) -> str:
    """What the marks mean: the test, the correction, alpha and the family size."""
    tests = sorted({c.test for c in report.comparisons if c.p_value is not None})
    m = len([c for c in report.comparisons if c.p_value is not None])
    name = report.baseline or ""
    base = "the baseline" + ("" if name == "baseline" else rf" (\emph{{{latex_escape(name)}}})")
    if not tests:
        return f"No difference from {base} could be tested (it needs two seeds per row)."
    correction = {
        "holm": f"after Holm's correction over the {m} tests of this table",
        "bh": f"after the Benjamini-Hochberg correction over the {m} tests of this table",
        "none": f"without correction for the {m} tests of this table",
    }[report.correction]
    text = (
        f"$^{{*}}$: differs from {base} at $p < {report.alpha:g}$ {correction} "
        f"({latex_escape('; '.join(tests))})."
    )
    few = sorted({c.seeds for c in report.comparisons if c.low_power and c.p_value is not None})
    if few:
        seeds = " or ".join(map(str, few))
        text += (
            f" With {seeds} seed{'s' if few != [1] else ''} per side these tests have little "
            "power: an unmarked cell is no evidence of no difference."
        )
    return text


def _example(report: Report) -> str:
    r"""`` (95.05(7) is 95.05 $\pm$ 0.07)``: the first cell of several seeds, read out."""
    for exp in report.experiments:
        for m in report.metrics:
            s = exp.summary(m.key)
            if s.n >= 2:
                cell = _cell(m, exp, False)
                d = len(cell.split("(")[0].partition(".")[2])
                mean, sd = f"{m.shown(s.mean):.{d}f}", f"{m.shown(s.std):.{d}f}"
                return rf" ({cell} is {mean} $\pm$ {sd})"
    return ""


def latex_caption(report: Report, with_n: bool) -> str:
    """Sentences: what the cells are, what every row shares, what the marks mean."""
    n = "" if with_n else f", $n = {len(report.experiments[0].runs)}$"
    validation = any(m.section == "validation" for m in report.metrics)
    split = "Validation- and test-set" if validation else "Test-set"
    parts = [f"{split} results over {seeds_text(report)}{n}"]
    if all(len(e.runs) == 1 for e in report.experiments):
        parts[0] += ", one run each."
    else:
        parts[0] += (
            ": the mean over seeds and, in parentheses, the sd in units of the last digit"
            f"{_example(report)}."
        )
    shared = shared_settings(report)
    if shared:
        parts.append("All rows: " + latex_escape(", ".join(shared)) + ".")
    if any(m.key.startswith("ts_") for m in report.metrics):
        parts.append("TS: after temperature scaling.")
    if with_n and any(e.diverged for e in report.experiments):
        parts.append("$n$: seeds used (+ diverged runs left out).")
    if report.comparisons:
        parts.append(_tests_text(report))
    return " ".join(parts)
