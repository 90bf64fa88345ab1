"""The ``compare --shift --plot`` figures at 20 experiments, as the other figures in
test_figures_scale.py: no text overlaps other text at every ``--figure-size``, the width is the
preset's, and no seed ensemble can be read as another experiment's seed line.

The :class:`ShiftReport` is built by hand with made-up numbers (no runs, no arrays): every
family at a few severities, raw and ensemble rows, and risk curves on the coverage grid.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_figures_scale import N, overlaps

from mnistexp.analysis import plots, shiftplots
from mnistexp.analysis.ensembles import COVERAGE_GRID
from mnistexp.analysis.shiftcompare import (
    ENSEMBLE,
    PooledExperiment,
    RiskCurve,
    SetRow,
    ShiftReport,
)
from mnistexp.analysis.stats import Summary
from mnistexp.core.errors import UsageError

SEVERITIES = {
    "rotate": (0.0, 30.0, 60.0, 90.0, 120.0, 180.0),
    "translate": (0.0, 4.0, 8.0, 14.0),
    "noise": (0.0, 50.0, 100.0, 150.0),
    "contrast": (1.0, 0.6, 0.2, 0.1),
}
SEEDS = 3


def summary(mean: float, std: float, n: int) -> Summary:
    return Summary(n, mean, std, mean - 2 * std, mean + 2 * std)


def rows(name: str, i: int) -> list[SetRow]:
    """Raw rows (mean ± sd over 3 seeds) and ensemble rows of every family and severity:
    accuracy falls and ECE grows with the severity, a little differently per experiment."""
    out = []
    for family, severities in SEVERITIES.items():
        for step, severity in enumerate(severities):
            hard = step / (len(severities) - 1)  # 0 .. 1
            acc = 0.97 - (0.5 + i / 100) * hard
            ece = 0.01 + (0.25 + i / 200) * hard
            for variant, n, std, gain in (("raw", SEEDS, 0.02, 0.0), (ENSEMBLE, SEEDS, 0.0, 0.02)):
                out.append(
                    SetRow(
                        experiment=name,
                        variant=variant,
                        n=n,
                        key=f"{family}/{severity:g}",
                        family=family,
                        severity=severity,
                        values={
                            "accuracy": summary(acc + gain, std, n),
                            "ece": summary(max(ece - gain, 0.0), std / 2, n),
                        },
                    )
                )
    return out


def risk_curve(name: str, i: int, rng: np.random.Generator) -> RiskCurve:
    """Risks on the coverage grid growing with coverage up to a ~3% error rate."""
    base = (0.02 + i / 1000) * COVERAGE_GRID**3
    seeds = [np.clip(base + rng.normal(0, 0.002, base.shape), 0, 1) for _ in range(SEEDS)]
    return RiskCurve(experiment=name, seeds=seeds, ensemble=0.8 * base)


@pytest.fixture(scope="module")
def shift() -> ShiftReport:
    """20 experiments of a sweep over lr and hidden sizes, 3 seeds and their ensemble each."""
    rng = np.random.default_rng(0)
    report = ShiftReport()
    for i in range(N):
        lr, hidden = (0.01, 0.02, 0.05, 0.1, 0.2)[i % 5], (16, 32, 64, 128)[i // 5]
        name = f"sweep lr={lr} hidden=[{hidden}]"
        runs = [f"runs/{name}-{seed}" for seed in range(SEEDS)]
        report.experiments.append(
            PooledExperiment(name, f"{i:08x}", list(range(SEEDS)), runs, {}, 15)
        )
        report.sets += rows(name, i)
        report.curves.append(risk_curve(name, i, rng))
    return report


FIGURES = {
    "shift_curves": shiftplots.shift_curves_figure,
    "risk_coverage": shiftplots.risk_coverage_figure,
}


@pytest.mark.parametrize("size", [None, "column", "text"])
@pytest.mark.parametrize("name", list(FIGURES))
def test_no_text_overlaps_at_twenty_experiments(shift, name: str, size: str | None) -> None:
    width = plots.FIGURE_SIZES.get(size or "")
    fig = FIGURES[name](shift, width)
    try:
        fig.canvas.draw()
        assert overlaps(fig) == [], (name, size)
        if width is not None:
            assert fig.get_size_inches()[0] == pytest.approx(width)
        legends = fig.legends
        assert len(legends) == 1 and not any(ax.get_legend() for ax in fig.axes), name
        assert len(legends[0].get_texts()) == N + 1  # an entry each and the ensembles' key
    finally:
        plots.pyplot().close(fig)


def lines(fig) -> tuple[list, list]:
    """The seed lines and the ensemble lines drawn in every panel (not the legend's)."""
    drawn = [line for ax in fig.axes for line in ax.get_lines()]
    ensembles = [line for line in drawn if line.get_label().endswith(" ensemble")]
    return [line for line in drawn if line not in ensembles], ensembles


@pytest.mark.parametrize("name", list(FIGURES))
def test_no_ensemble_looks_like_a_seed_line(shift, name: str) -> None:
    fig = FIGURES[name](shift, None)
    try:
        seeds, ensembles = lines(fig)
        looks = {"shift_curves": 2 * len(SEVERITIES) * N, "risk_coverage": N}[name]
        assert len(seeds) == len(ensembles) == looks
        seed_styles = {line.get_linestyle() for line in seeds}
        assert {line.get_linestyle() for line in ensembles}.isdisjoint(seed_styles)
        assert all(line.get_markerfacecolor() == "none" for line in ensembles)
        assert all(line.get_markerfacecolor() != "none" for line in seeds)
        seed_looks = {(str(line.get_color()), line.get_marker()) for line in seeds}
        assert {(str(line.get_color()), line.get_marker()) for line in ensembles} == seed_looks
    finally:
        plots.pyplot().close(fig)


def test_the_ensemble_line_style_is_none_of_the_experiments() -> None:
    styles = {shiftplots.ensemble_style(i)["linestyle"] for i in range(N)}
    assert styles == {shiftplots.ENSEMBLE_LINESTYLE}
    assert shiftplots.ENSEMBLE_LINESTYLE not in {plots.style(i)["linestyle"] for i in range(70)}


def test_risk_coverage_markers_are_sparse(shift) -> None:
    """A marker every 10% of coverage, not at each of the grid's 100 points; the lines'
    markers start at different points, so 20 experiments' markers do not pile up."""
    fig = shiftplots.risk_coverage_figure(shift)
    try:
        every = [line.get_markevery() for line in fig.axes[0].get_lines()]
    finally:
        plots.pyplot().close(fig)
    assert len(every) == 2 * N
    assert {step for _, step in every} == {len(COVERAGE_GRID) // 10}
    assert len({start for start, _ in every}) == len(COVERAGE_GRID) // 10


@pytest.mark.parametrize(
    ("size", "columns"), [(None, 4), ("text", 4), ("column", 2)], ids=["none", "text", "column"]
)
def test_a_family_keeps_its_metrics_one_above_the_other(shift, size, columns: int) -> None:
    fig = shiftplots.shift_curves_figure(shift, plots.FIGURE_SIZES.get(size or ""))
    try:
        shown = [ax for ax in fig.axes if ax.get_visible()]
        grid = shown[0].get_gridspec()
        assert grid is not None and grid.ncols == columns
        assert grid.nrows == 2 * math.ceil(len(SEVERITIES) / columns)
        titles = [ax.get_title().replace("\n", " ") for ax in shown if ax.get_title()]
        assert titles == [shiftplots.AXES[f][0] for f in SEVERITIES]
    finally:
        plots.pyplot().close(fig)


@pytest.mark.parametrize(
    ("fmt", "size", "message"),
    [
        pytest.param(
            "png", "poster", "--figure-size poster: choose one of column, text", id="size"
        ),
        pytest.param("jpg", None, "--plot-format jpg: choose one of png, pdf, svg", id="format"),
    ],
)
def test_bad_options_are_one_line_usage_errors(shift, fmt: str, size, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        shiftplots.render_shift_figures(shift, fmt, size)
    assert str(caught.value) == message
    with pytest.raises(UsageError) as plain:
        plots.figure_width(fmt, size)
    assert str(plain.value) == message


@pytest.mark.parametrize("size", [None, "column"])
def test_render_shift_figures_draws_both_at_a_size(shift, size: str | None) -> None:
    rendered, skipped = shiftplots.render_shift_figures(shift, "png", size)
    assert sorted(rendered) == ["risk_coverage.png", "shift_curves.png"] and skipped == []
    assert shiftplots.render_shift_figures(shift)[0].keys() == rendered.keys()  # old signature
