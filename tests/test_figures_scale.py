"""The ``--plot`` figures at 20 experiments (issue 28): no text overlaps other text, every
experiment has its own look, ``--figure-size`` presets, and PDF fonts embedded as TrueType.

Overlap is measured on the drawn figure: the window extents of every tick label, title,
suptitle and legend text (matplotlib's renderer), compared pairwise. ``pdffonts`` (Debian's
poppler-utils, installed by .ci/run) lists the fonts of the PDF; none may be Type 3.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool
from test_compare import make_run, report_of

from mnistexp.analysis import plots
from mnistexp.cli import compare as compare_cli

N = 20


@pytest.fixture(scope="module")
def twenty(tmp_path_factory: pytest.TempPathFactory):
    """20 experiments of one name (a sweep over lr and hidden sizes), 2 seeds each."""
    root = tmp_path_factory.mktemp("twenty") / "runs"
    for i in range(N):
        lr, hidden = (0.01, 0.02, 0.05, 0.1, 0.2)[i % 5], (16, 32, 64, 128)[i // 5]
        for seed in (0, 1):
            sets = (f"train.lr={lr}", f"model.hidden=[{hidden}]")
            make_run(root, "sweep", seed, 0.8 + i / 200 + seed / 1000, overrides=sets, shift=i / 50)
    return report_of(root)


def texts(fig) -> list:
    """The visible text artists a reader must tell apart."""
    out = [fig._suptitle] if fig._suptitle is not None else []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        out += [ax.title, *shown_ticks(ax.xaxis), *shown_ticks(ax.yaxis)]
        out += [ax.xaxis.label, ax.yaxis.label]
    for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]:
        out += legend.get_texts()
    return [t for t in out if t is not None and t.get_visible() and t.get_text().strip()]


def shown_ticks(axis) -> list:
    """The tick labels drawn: matplotlib also keeps labels of ticks outside the view."""
    low, high = sorted(axis.get_view_interval())
    span = (high - low) * 1e-9
    return [
        tick.label1
        for tick in axis.get_major_ticks()
        if low - span <= tick.get_loc() <= high + span and tick.label1.get_visible()
    ]


def overlaps(fig) -> list[tuple[str, str]]:
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts(fig)]
    return [
        (a, b)
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2)
        if box_a.overlaps(box_b) and box_a.width > 0 and box_b.width > 0
    ]


CURVES = ("val_accuracy", "val_nll", "grad_true")
"""``--curves`` of the curves figure: make_run's history.csv columns, and one no run has
(an empty panel, as compare draws it), so three panels and a hidden fourth at two a row."""

FIGURES = {
    "reliability": lambda r, w: plots.reliability_figure(r.experiments, width=w),
    "confidence": lambda r, w: plots.confidence_figure(r.experiments, w),
    "learning_curves": lambda r, w: plots.learning_curves_figure(r.experiments, w),
    "metrics": lambda r, w: plots.metrics_figure(r, w),
    "curves": lambda r, w: plots.curves_figure(r.experiments, CURVES, w),
}


@pytest.mark.parametrize("size", [None, "column", "text"])
@pytest.mark.parametrize("name", list(FIGURES))
def test_no_text_overlaps_at_twenty_experiments(twenty, name: str, size: str | None) -> None:
    width = plots.FIGURE_SIZES.get(size or "")
    fig = FIGURES[name](twenty, width)
    try:
        fig.canvas.draw()
        assert overlaps(fig) == [], (name, size)
        if width is not None:
            assert fig.get_size_inches()[0] == pytest.approx(width)
    finally:
        plots.pyplot().close(fig)


def test_twenty_experiments_look_different() -> None:
    looks = [tuple(map(str, plots.style(i).values())) for i in range(N)]
    assert len(set(looks)) == N
    assert len({(plots.style(i)["marker"], plots.style(i)["linestyle"]) for i in range(N)}) > 10


def test_pdf_fonts_are_truetype_and_svg_text_is_text(twenty, tmp_path: Path) -> None:
    import matplotlib

    before = (matplotlib.rcParams["pdf.fonttype"], matplotlib.rcParams["svg.fonttype"])
    fig = plots.metrics_figure(twenty)
    try:
        pdf, svg = plots.encode(fig, "pdf"), plots.encode(fig, "svg")
    finally:
        plots.pyplot().close(fig)
    assert (matplotlib.rcParams["pdf.fonttype"], matplotlib.rcParams["svg.fonttype"]) == before
    assert b"<text" in svg  # text, not glyph paths
    (tmp_path / "metrics.pdf").write_bytes(pdf)
    pdffonts = require_tool("pdffonts", "PDF figures must embed TrueType, not Type 3, fonts")
    listing = subprocess.run(
        [pdffonts, str(tmp_path / "metrics.pdf")], capture_output=True, text=True, check=True
    ).stdout
    fonts = listing.splitlines()[2:]
    assert fonts and all("Type 3" not in line for line in fonts), listing
    assert any("TrueType" in line for line in fonts), listing


def test_cli_sizes_are_the_plots() -> None:
    assert tuple(plots.FIGURE_SIZES) == compare_cli.FIGURE_SIZES
