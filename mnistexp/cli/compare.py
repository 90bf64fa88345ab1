"""``mnistexp compare``: seed-aggregated tables, significance against a baseline, plots.

numpy, scipy and matplotlib are imported inside the command body, so ``--help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mnistexp import api
from mnistexp.cli.common import (
    AsciiIntRange,
    CliError,
    data_dir_option,
    one_line_errors,
    runs_dir_option,
    set_option,
    stop_signals_as_interrupt,
)
from mnistexp.core.errors import interrupt_exit_code

if TYPE_CHECKING:
    from mnistexp.analysis.compare import Report
    from mnistexp.analysis.shiftcompare import ShiftReport

FORMATS = api.FORMATS  # report.RENDERERS; tests check they agree
PLOT_FORMATS = ("png", "pdf", "svg")  # plots.PLOT_FORMATS; tests check they agree
FIGURE_SIZES = ("column", "text")  # plots.FIGURE_SIZES; tests check they agree
CORRECTIONS = ("holm", "bh", "none")  # stats.CORRECTIONS; tests check they agree
LATEX_WIDTHS = ("column", "text")  # latex.LATEX_WIDTHS; tests check they agree


@click.command()
@click.argument("inputs", nargs=-1, metavar="[RUN_DIR | GLOB | RUNS_ROOT | CONFIG.yaml]...")
@runs_dir_option
@click.option(
    "--seeds",
    metavar="SPEC",
    default="0-2",
    show_default=True,
    help="With config files: the seeds to train and compare, 0-4 (range, inclusive), "
    "0,2,5 (list) or N (the one seed N: --seeds 3 is seed 3).",
)
@click.option(
    "-j",
    "--jobs",
    type=AsciiIntRange(min=1),
    default=1,
    show_default=True,
    help="With config files: parallel training workers.",
)
@set_option
@data_dir_option
@click.option(
    "--metrics",
    "metric_names",
    metavar="M1,M2,...",
    help="Columns, e.g. accuracy,ece,ts_ece (default: accuracy,nll,brier,ece,ts_ece,"
    "confidence; also ts_nll, temperature, mce, ace, debiased_ce, smooth_ece, val_accuracy, "
    "val_nll, and per recalibration map M (vector, matrix, matrix_odir, histogram, "
    "histogram_width, isotonic) M_accuracy, M_nll, M_ece).",
)
@click.option("--sort", "sort", metavar="METRIC", help="Sort rows by this metric, best first.")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="Keep experiments whose resolved config has this value (repeatable).",
)
@click.option(
    "--label",
    "label_keys",
    metavar="KEY,...",
    help="Label every row by these config keys (train.lr or just lr where unambiguous), "
    "after the run name where names differ (default: the fewest keys that tell the rows "
    "shown apart).",
)
@click.option(
    "--baseline",
    metavar="NAME",
    help="Test every other experiment against this one on each metric.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="Significance level for the verdicts.",
)
@click.option(
    "--correction",
    type=click.Choice(CORRECTIONS),
    default="holm",
    show_default=True,
    help="Multiple-comparison correction of the --baseline p-values, across the whole table: "
    "holm (family-wise error), bh (Benjamini-Hochberg, false discovery rate) or none.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format (latex: a booktabs table with significance marks and its caption).",
)
@click.option(
    "--latex-width",
    type=click.Choice(LATEX_WIDTHS),
    default="column",
    show_default=True,
    help="With --format latex: a table for one column of a paper (accuracy, NLL, ECE, TS ECE "
    "unless --metrics; the labels say what differs) or a table* across the page (every "
    "default metric and the config keys that differ).",
)
@click.option(
    "--latex-label",
    metavar="LABEL",
    help="With --format latex: the table's \\label (default: tab:compare- and 6 hex digits "
    "derived from the experiments and metrics, so two tables never share one).",
)
@click.option(
    "--interval",
    is_flag=True,
    help="Table and markdown: add the 95% interval to every cell (csv and json always have "
    "it): the t-interval's half-width over seeds, or one run's bootstrap interval.",
)
@click.option(
    "--plot",
    "plot_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the figures (reliability, confidence, learning curves, metrics) here; a "
    "figure without data is skipped with one line.",
)
@click.option(
    "--plot-format",
    type=click.Choice(PLOT_FORMATS),
    default="png",
    show_default=True,
    help="File format of the --plot figures (pdf and svg are vector graphics for papers).",
)
@click.option(
    "--figure-size",
    type=click.Choice(FIGURE_SIZES),
    help="With --plot: lay the figures out for one column (3.3 in wide) or the text width "
    "(7 in) of a paper (default: a size for screens).",
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.html",
    help="Also write one self-contained HTML page: the table, the significance lines, the "
    "config differences and every figure inline (no external files, no network).",
)
@click.option(
    "--curves",
    "curve_names",
    metavar="C1,C2,...",
    help="With --plot: also draw these history.csv columns per epoch in curves.png, "
    "e.g. grad_true,saturated (also grad_other, train_loss, train_accuracy, "
    "logit_mean_abs, logit_max_abs, weight_norm_0, weight_norm_1, ..., "
    "val_accuracy, val_nll, val_ece, lr).",
)
@click.option(
    "--shift",
    "shift",
    is_flag=True,
    help="Also report what shift.json holds (mnistexp evaluate): tables of shifted sets, OOD "
    "detection and selective prediction, mean ± sd over seeds, plus a seed-ensemble row per "
    "experiment with 2+ runs; with --plot, shift_curves and risk_coverage.",
)
@click.option(
    "--shift-metric",
    "shift_metric",
    metavar="M1,M2",
    help="With --shift: one shift table per metric (default: ece,accuracy; also nll, brier, "
    "debiased_ce, smooth_ece).",
)
@one_line_errors
def compare(
    inputs: tuple[str, ...],
    runs_dir: str | None,
    seeds: str,
    jobs: int,
    overrides: tuple[str, ...],
    data_dir: str | None,
    metric_names: str | None,
    sort: str | None,
    filters: tuple[str, ...],
    label_keys: str | None,
    baseline: str | None,
    alpha: float,
    correction: str,
    fmt: str,
    latex_width: str,
    latex_label: str | None,
    interval: bool,
    plot_dir: Path | None,
    plot_format: str,
    figure_size: str | None,
    report_file: Path | None,
    curve_names: str | None,
    shift: bool,
    shift_metric: str | None,
) -> None:
    """Compare experiments over seeds: accuracy and calibration, with significance tests.

    INPUTS are run folders, globs, runs roots (default: the runs root), or config files; for
    config files the missing runs (--seeds) are trained first and reused afterwards.
    Runs are grouped by their config (seed excluded); unfinished, failed and diverged runs are
    listed on stderr and left out of the statistics.

    \b
    Examples:
      mnistexp compare
      mnistexp compare 'runs/baseline-*' 'runs/mse_sigmoid-*' --baseline baseline
      mnistexp compare configs/baseline.yaml configs/label_smoothing.yaml --seeds 0-4 -j 4 \\
          --set train.epochs=3 --baseline baseline --plot runs/plots
      mnistexp compare --metrics accuracy,ece,ts_ece --sort ece --filter loss.type=mse
      mnistexp compare runs/grid --label lr,scheme --baseline 'lr=0.1, scheme=onehot'
      mnistexp compare --format json > comparison.json
      mnistexp compare --baseline baseline --format latex > table.tex
      mnistexp compare --format latex --latex-width text --latex-label tab:main
      mnistexp compare --baseline baseline --report comparison.html
      mnistexp compare --runs-dir runs/study --plot figs --curves grad_true,saturated
      mnistexp compare --plot figs --plot-format pdf --figure-size column
      mnistexp compare --shift --shift-metric ece --plot figs
    """
    from mnistexp.analysis.columns import parse_metrics
    from mnistexp.analysis.compare import parse_label_keys
    from mnistexp.core.paths import check_output_file, check_output_folder
    from mnistexp.core.yamlio import one_line

    api.check_paths(runs_dir, data_dir)
    seed_list = _seeds(seeds)
    if plot_dir is not None:
        check_output_folder(plot_dir, "--plot folder")
    if report_file is not None:
        if report_file.suffix.lower() != ".html":  # not a page a browser would open as one
            raise CliError(f"--report {one_line(str(report_file))}: name a file ending in .html")
        check_output_file(str(report_file), "--report file")
    given = click.get_current_context().get_parameter_source("plot_format")
    if plot_dir is None and given != click.core.ParameterSource.DEFAULT:  # as --curves
        raise CliError("--plot-format sets the format of the --plot figures; add --plot DIR")
    if plot_dir is None and figure_size is not None:
        raise CliError("--figure-size lays out the --plot figures; add --plot DIR")
    metrics = parse_metrics(metric_names or _latex_metrics(fmt, latex_width, latex_label))
    labels = parse_label_keys(label_keys)
    curves = _curves(curve_names, plot_dir)
    shift_metrics = _shift_metrics(shift, shift_metric)
    runs = api.gather_runs(
        inputs,
        seeds=seed_list,
        overrides=overrides,
        jobs=jobs,
        runs_dir=runs_dir,
        data_dir=data_dir,
        progress=True,  # a bar on a terminal, else one line per run
        shift=shift,
        announce=lambda line: click.echo(line, err=True),
        guard=_stops_training,
    )
    for note in runs.warnings:
        click.echo(f"warning: {one_line(note)}", err=True)
    comparison = api.build_comparison(
        runs,
        metrics,
        sort=sort,
        filters=filters,
        baseline=baseline,
        alpha=alpha,
        correction=correction,
        interval=interval,
        latex_width=latex_width,
        latex_label=latex_label,
        label_keys=labels,
    )
    report = comparison.report
    if fmt == "latex" or report_file is not None:
        import shlex

        from mnistexp.analysis.provenance import collect
        from mnistexp.cli import ARGV

        rows = {e.name: [r.path for r in e.runs] for e in report.experiments}
        argv = click.get_current_context().meta.get(ARGV, sys.argv[1:])
        report.provenance = collect(shlex.join(["mnistexp", *argv]), rows)
    shifted = None
    if shift_metrics:
        from mnistexp.analysis.shiftcompare import build_shift

        shifted = build_shift(report.experiments, shift_metrics)
        report.warnings += shifted.notes
    for note in report.warnings[len(runs.warnings) :]:  # found grouping or pooling shift runs
        click.echo(f"warning: {one_line(note)}", err=True)
    if shifted is None:
        click.echo(comparison.render(fmt), nl=False)
    else:
        from mnistexp.analysis.shiftreport import render_with_shift

        click.echo(render_with_shift(report, shifted, fmt), nl=False)
    if plot_dir is not None:
        _plot(report, shifted, plot_dir, curves, plot_format, figure_size)
    if report_file is not None:
        from mnistexp.analysis.htmlpage import write_html

        click.echo(f"wrote {write_html(report, report_file, curves, shifted)}", err=True)
    if report.nothing_to_compare:
        raise CliError(report.nothing_to_compare)


@contextmanager
def _stops_training() -> Iterator[None]:
    """Training the runs of config-file inputs: Ctrl-C or SIGTERM marks the unfinished runs
    'interrupted' and exits 130 (143) with one line, not a traceback."""
    try:
        with stop_signals_as_interrupt():
            yield
    except KeyboardInterrupt as exc:
        click.echo("interrupted: unfinished runs are marked 'interrupted'", err=True)
        sys.exit(interrupt_exit_code(exc))


def _plot(
    report: Report,
    shifted: ShiftReport | None,
    plot_dir: Path,
    curves: list[str],
    fmt: str,
    size: str | None,
) -> None:
    """Write the figures (with --shift also the shift figures); one stderr line each."""
    from mnistexp.analysis.plots import save_figure, write_figures

    paths, skipped = write_figures(report, plot_dir, curves, fmt, size)
    if shifted is not None:
        from mnistexp.analysis.shiftplots import render_shift_figures

        rendered, more = render_shift_figures(shifted, fmt, size)
        paths += [save_figure(data, plot_dir / name) for name, data in rendered.items()]
        skipped += more
    for line in [*(f"wrote {path}" for path in paths), *skipped]:
        click.echo(line, err=True)


def _latex_metrics(fmt: str, width: str, label: str | None) -> str | None:
    """The default columns of a LaTeX table (fewer for one column); checks --latex-label."""
    given = click.get_current_context().get_parameter_source("latex_width")
    if fmt != "latex" and (label is not None or given != click.core.ParameterSource.DEFAULT):
        raise CliError("--latex-width and --latex-label shape --format latex; add it")
    if fmt != "latex":
        return None
    from mnistexp.analysis.latex import LABEL_PATTERN, default_metrics

    if label is not None and not LABEL_PATTERN.fullmatch(label):
        raise click.BadParameter(
            "use letters, digits and : . _ / - only, e.g. tab:calibration",
            param_hint="--latex-label",
        )
    return ",".join(default_metrics(width))


def _shift_metrics(shift: bool, text: str | None) -> tuple[str, ...]:
    """The --shift-metric names (empty without --shift), checked before anything is read."""
    if not shift:
        if text is not None:
            raise CliError("--shift-metric chooses the tables of --shift; add --shift")
        return ()
    from mnistexp.analysis.shiftcompare import parse_shift_metrics

    return parse_shift_metrics(text)


def _curves(names: str | None, plot_dir: Path | None) -> list[str]:
    """The --curves columns, checked before anything is loaded or trained."""
    if names is None:
        return []
    if plot_dir is None:
        raise CliError("--curves draws into the --plot folder; add --plot DIR")
    from mnistexp.analysis.plots import parse_curves

    return parse_curves(names)


def _seeds(text: str) -> tuple[int, ...]:
    """--seeds as sweep reads it, with its note on a plain number (the one seed N now)."""
    from mnistexp.orchestration.sweep import parse_seeds, plain_number_note

    seeds = parse_seeds(text)
    note = plain_number_note(text)
    if note:
        click.echo(note, err=True)
    return seeds
