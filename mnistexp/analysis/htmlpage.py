"""``compare --report FILE.html``: one self-contained page to share a comparison.

The page holds the experiment table, the significance lines against the baseline, the config
keys that differ, the warnings, and every figure of ``--plot`` inline as a base64 PNG data URI:
no external file, stylesheet, script or font, so it opens offline and survives being mailed.

Every number cell carries ``data-experiment`` and ``data-metric`` attributes, and its text is
the markdown table's (``97.81 ± 0.12``), so a test can read the page in a browser and check
it against ``compare --format json``.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from mnistexp.analysis.columns import METRICS
from mnistexp.analysis.compare import Report, config_text
from mnistexp.analysis.report import (
    correction_note,
    format_cell,
    format_difference,
    legend,
    verdict,
)
from mnistexp.analysis.shiftcompare import ShiftReport
from mnistexp.core import atomic
from mnistexp.core.errors import UsageError

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
thead th { border-bottom: 2px solid #444; }
p.note { color: #555; font-size: 0.85em; margin: 0.2em 0; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; box-sizing: border-box; border: 1px solid #eee; }
td.significant { background: #fdf1d6; }
div.wide { overflow-x: auto; max-width: 100%; }
dl.provenance dt { font-weight: 600; margin-top: 0.3em; }
dl.provenance dd { margin-left: 1.5em; font-family: ui-monospace, monospace; font-size: 0.85em;
  overflow-wrap: anywhere; }
"""

SHIFT_STYLE = """div.wide td:first-child, div.wide td:nth-child(2) { white-space: nowrap; }
"""
"""Added with compare --shift: the wide shift tables scroll instead of squeezing their labels."""


def render_html(
    report: Report,
    figures: dict[str, bytes],
    skipped: Sequence[str] = (),
    shift: ShiftReport | None = None,
) -> str:
    """The page as text; ``figures`` maps file names (``reliability.png``) to PNG bytes;
    ``shift`` (``compare --shift``) adds the tables beyond the test set."""
    names = "; ".join(e.name for e in report.experiments)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>mnistexp compare: {_e(names)}</title>",
        f"<style>{STYLE}{SHIFT_STYLE if shift is not None else ''}</style></head><body>",
        f"<h1>Comparison of {len(report.experiments)} experiments</h1>",
        *_results(report),
        *_significance(report),
        *_config_differences(report),
        *(_shift_tables(shift) if shift is not None else []),
        *_warnings(report),
        *_figures(figures, skipped),
        *_provenance(report),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_html(
    report: Report,
    path: str | Path,
    curves: Sequence[str] = (),
    shift: ShiftReport | None = None,
) -> Path:
    """Draw the figures, render the page and write it atomically to ``path``."""
    from mnistexp.analysis.plots import render_figures

    figures, skipped = render_figures(report, curves, "png")
    if shift is not None:
        from mnistexp.analysis.shiftplots import render_shift_figures

        more, also = render_shift_figures(shift, "png")
        figures, skipped = {**figures, **more}, [*skipped, *also]
    target = Path(path)
    try:
        page = render_html(report, figures, skipped, shift)
        atomic.write_file(target, page.encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot write {target} ({exc.strerror or exc})") from None
    return target


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _results(report: Report) -> list[str]:
    head = "".join(
        [
            "<th>experiment</th>",
            '<th class="num">n</th>',
            *(f'<th class="num">{_e(m.header)}</th>' for m in report.metrics),
        ]
    )
    rows = []
    for e in report.experiments:
        cells = [
            f'<td class="experiment">{_e(e.name)}</td>',
            f'<td class="num" data-experiment="{_e(e.name)}" data-metric="n">{len(e.runs)}</td>',
        ]
        for m in report.metrics:
            text = format_cell(m, e.summary(m.key), report.interval)
            cells.append(
                f'<td class="num" data-experiment="{_e(e.name)}" data-metric="{_e(m.key)}">'
                f"{_e(text)}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return [
        "<h2>Results</h2>",
        '<div class="wide"><table id="results"><thead><tr>' + head + "</tr></thead><tbody>",
        *rows,
        "</tbody></table></div>",
        *(f'<p class="note">{_e(line)}</p>' for line in legend(report)),
    ]


def _significance(report: Report) -> list[str]:
    """A compact table, experiment x metric: the difference to the baseline and the adjusted
    p-value, shaded and starred when significant; the full sentences fold out below it."""
    if not report.comparisons:
        why = report.nothing_to_compare or "no --baseline given: no significance tests"
        return ["<h2>Significance</h2>", f'<p class="note">{_e(why)}</p>']
    found = {(c.experiment, c.metric): c for c in report.comparisons}
    others = list(dict.fromkeys(c.experiment for c in report.comparisons))
    adjusted = {"holm": "Holm p", "bh": "BH p"}.get(report.correction, "p")
    head = "<th>experiment</th>" + "".join(
        f'<th class="num">{_e(m.header)}</th>' for m in report.metrics
    )
    rows = []
    for name in others:
        cells = [f"<td>{_e(name)}</td>"]
        for m in report.metrics:
            c = found[(name, m.key)]
            p = c.p_value if report.correction == "none" else c.p_adjusted
            p_text = "no test" if p is None else ("&lt; 0.001" if p < 0.001 else f"{p:.3f}")
            css = "num significant" if c.significant else "num"
            star = " *" if c.significant else ""
            power = f", {c.seeds} seeds†" if c.low_power else ""
            cells.append(
                f'<td class="{css}" title="{_e(verdict(c))}">'
                f"{_e(format_difference(METRICS[c.metric], c.difference))}{star}<br>"
                f"<small>{adjusted} {p_text}{_e(power)}</small></td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    few = any(c.low_power for c in report.comparisons)
    items = [
        f"<li>{_e(c.experiment)}, {_e(METRICS[c.metric].header)}: {_e(verdict(c))} "
        f"({_e(c.test)})</li>"
        for c in report.comparisons
    ]
    return [
        f"<h2>Against the baseline ‘{_e(report.baseline)}’ (alpha = {report.alpha:g})</h2>",
        '<div class="wide"><table id="significance"><thead><tr>' + head + "</tr></thead><tbody>",
        *rows,
        "</tbody></table></div>",
        '<p class="note">Each cell: the difference to the baseline (other minus baseline) and '
        f"the adjusted p-value; * and shading: significant at {report.alpha:g}."
        + (
            " † fewer than 5 seeds per side: little power, so no star is no evidence of no "
            "difference."
            if few
            else ""
        )
        + "</p>",
        f'<p class="note">{_e(correction_note(report))}</p>',
        "<details><summary>Every test, with the difference's 95% interval</summary>",
        '<ul id="tests">',
        *items,
        "</ul></details>",
    ]


def _config_differences(report: Report) -> list[str]:
    if not report.keys:
        return [
            "<h2>Config differences</h2>",
            '<p class="note">The configs differ only in '
            "their names (or there is one experiment).</p>",
        ]
    head = "".join(f"<th><code>{_e(k)}</code></th>" for k in ["experiment", *report.keys])
    rows = [
        "<tr>"
        + "".join(
            f"<td>{_e(v)}</td>" for v in [e.name, *(config_text(e.config, k) for k in report.keys)]
        )
        + "</tr>"
        for e in report.experiments
    ]
    return [
        "<h2>Config differences</h2>",
        '<div class="wide"><table id="config"><thead><tr>' + head + "</tr></thead><tbody>",
        *rows,
        "</tbody></table></div>",
        '<p class="note">Keys equal in all experiments are not shown.</p>',
    ]


def _warnings(report: Report) -> list[str]:
    if not report.warnings:
        return []
    return ["<h2>Warnings</h2>", "<ul>", *(f"<li>{_e(w)}</li>" for w in report.warnings), "</ul>"]


def _figures(figures: dict[str, bytes], skipped: Sequence[str]) -> list[str]:
    from mnistexp.analysis.plots import CAPTIONS
    from mnistexp.analysis.shiftplots import caption

    out = ["<h2>Figures</h2>"]
    for name, data in figures.items():
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        what = caption(name) or CAPTIONS.get(name.rsplit(".", 1)[0], "")
        text = f"{name}: {what}" if what else name
        out.append(
            f'<figure><img src="{uri}" alt="{_e(name)}"><figcaption>{_e(text)}</figcaption>'
            "</figure>"
        )
    out += [f'<p class="note">{_e(line)}</p>' for line in skipped]
    return out


def _provenance(report: Report) -> list[str]:
    """Where the numbers came from: settings shared by every row, command, date, version,
    commit, data checksums and each row's run folders."""
    from mnistexp.analysis.latex import shared_settings

    p = report.provenance
    shared = ", ".join(shared_settings(report)) or "none besides the keys above"
    out = ["<h2>Provenance</h2>", '<dl class="provenance">']
    out += [f"<dt>Shared by every row</dt><dd>{_e(shared)}</dd>"]
    if p is not None:
        made = f"mnistexp {p.version}" + (f", commit {p.commit}" if p.commit else "")
        out += [
            f"<dt>Command</dt><dd>{_e(p.command)}</dd>",
            f"<dt>Made</dt><dd>{_e(p.date)} by {_e(made)}</dd>",
            *(
                f"<dt>Data {_e(name)} (sha256)</dt><dd>{_e(', '.join(sums))}</dd>"
                for name, sums in p.data.items()
            ),
            *(
                f"<dt>Runs of {_e(label)}</dt><dd>{_e(' '.join(folders))}</dd>"
                for label, folders in p.runs.items()
            ),
        ]
    return [*out, "</dl>"]


_NUM = ' class="num"'


def _shift_tables(shift: ShiftReport) -> list[str]:
    """The tables of compare --shift; each number cell names its experiment, metric, set and
    map (``data-*`` attributes), its text the markdown table's."""
    from mnistexp.analysis.shiftreport import STORAGE_NOTE, tables

    out = ["<h2>Beyond the test set</h2>"]
    for t in tables(shift):
        head = "".join(
            f"<th{_NUM if r else ''}>{_e(h)}</th>" for h, r in zip(t.header, t.right, strict=True)
        )
        rows = []
        for cells, attrs in zip(t.body, t.attrs, strict=True):
            tds = []
            for text, a, r in zip(cells, attrs, t.right, strict=True):
                data = "".join(f' data-{k}="{_e(v)}"' for k, v in (a or {}).items())
                tds.append(f"<td{_NUM if r else ''}{data}>{_e(text)}</td>")
            rows.append("<tr>" + "".join(tds) + "</tr>")
        out += [
            f"<h3>{_e(t.title)}</h3>",
            f'<div class="wide"><table id="{_e(t.key)}"><thead><tr>{head}</tr></thead><tbody>',
            *rows,
            "</tbody></table></div>",
            *(f'<p class="note">{_e(line)}</p>' for line in t.notes),
        ]
    return [*out, f'<p class="note">{_e(STORAGE_NOTE)}</p>']
