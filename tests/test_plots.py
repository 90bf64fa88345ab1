"""Tests of the ``--plot`` figures: data pooling by hand, files written as real PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_compare import MSE, invoke, make_run, report_of

from mnistexp.analysis import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for seed in (0, 1):
        make_run(tmp_path / "runs", "base", seed, 0.9 + seed / 100)
        make_run(tmp_path / "runs", "mse", seed, 0.8, overrides=MSE, shift=0.1)
    return tmp_path / "runs"


def test_pooled_bins_sum_counts_and_weight_accuracy(root: Path) -> None:
    (base, _) = report_of(root).experiments
    bins = plots.pooled_bins(base)
    assert bins is not None and bins["count"].sum() == 200  # two seeds of 100 images
    one = base.runs[0].reliability
    full = np.asarray(one["count"]) > 0
    assert np.all(np.asarray(one["count"]) * 2 >= bins["count"])
    assert np.all(bins["accuracy"][full] >= 0) and np.all(bins["accuracy"][full] <= 1)
    assert 0 <= plots.pooled_ece(bins) <= 1


def test_pooled_bins_after_temperature_scaling_are_their_own(root: Path) -> None:
    (base, _) = report_of(root).experiments
    before, after = plots.pooled_bins(base), plots.pooled_bins(base, scaled=True)
    assert before is not None and after is not None
    assert after["count"].sum() == 200
    # the fixture's scaled confidences are sqrt(conf): every image moves to a higher bin
    mean_bin = [np.average(np.arange(10), weights=b["count"]) for b in (before, after)]
    assert mean_bin[1] > mean_bin[0]
    base.runs[0].reliability_ts = base.runs[1].reliability_ts = None
    assert plots.pooled_bins(base, scaled=True) is None


def test_write_plots_skips_the_scaled_diagram_without_temperature_scaling(
    root: Path, tmp_path: Path
):
    report = report_of(root)
    for exp in report.experiments:
        for run in exp.runs:
            run.reliability_ts = None
    names = [p.name for p in plots.write_plots(report, tmp_path / "figs")]
    assert "reliability.png" in names and "reliability_ts.png" not in names


def test_learning_curve_mean_and_std(root: Path) -> None:
    (base, _) = report_of(root).experiments
    epochs, mean, std = plots.learning_curve(base, "val_accuracy")
    assert epochs.tolist() == [1, 2, 3]
    seeds = np.array([[0.9 - 0.1 / e, 0.91 - 0.1 / e + 0.001] for e in (1, 2, 3)])
    np.testing.assert_allclose(mean, seeds.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(std, seeds.std(axis=1, ddof=1), rtol=1e-4)
    assert plots.learning_curve(base, "no_such_column")[1].size == 3  # all NaN, no crash


def test_write_plots_makes_pngs(root: Path, tmp_path: Path) -> None:
    paths = plots.write_plots(report_of(root), tmp_path / "figs")
    assert [p.name for p in paths] == [
        "reliability.png",
        "reliability_ts.png",
        "confidence.png",
        "learning_curves.png",
        "metrics.png",
    ]
    for path in paths:
        data = path.read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_SIGNATURE)


def test_cli_plot_option(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-figs"
    result = invoke("--runs-dir", str(root), "--plot", str(out), "--metrics", "accuracy")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "confidence.png",
        "learning_curves.png",
        "metrics.png",
        "reliability.png",
        "reliability_ts.png",
    ]


def test_reliability_title_labels_each_estimator(root: Path) -> None:
    (base, _) = report_of(root).experiments
    bins = plots.pooled_bins(base)
    assert bins is not None
    name, pooled, table = plots._reliability_title(base, bins, "test", scaled=False).splitlines()
    assert name == "base"
    assert pooled == f"pooled ECE {100 * plots.pooled_ece(bins):.2f}% (test, 2 seeds pooled)"
    assert table == f"mean of per-seed ECEs {100 * base.summary('ece').mean:.2f}% (the table's)"


def test_a_single_run_draws_its_bootstrap_band(tmp_path: Path) -> None:
    folder = make_run(tmp_path / "runs", "one", 0, 0.9)
    metrics_path = folder / "metrics.json"
    report = json.loads(metrics_path.read_text())
    count = report["test"]["reliability"]["count"]
    report["test"]["reliability"]["accuracy_low"] = [0.1 if c else None for c in count]
    report["test"]["reliability"]["accuracy_high"] = [0.9 if c else None for c in count]
    metrics_path.write_text(json.dumps(report))
    (exp,) = report_of(tmp_path / "runs").experiments
    bins = plots.pooled_bins(exp)
    assert bins is not None
    full = bins["count"] > 0
    np.testing.assert_array_equal(bins["accuracy_low"][full], 0.1)
    assert np.all(np.isnan(bins["accuracy_high"][~full]))
    title = plots._reliability_title(exp, bins, "test", False)
    ece = f"{100 * plots.pooled_ece(bins):.2f}%"
    assert title == f"one\nECE {ece} (test, 1 seed)\nwhiskers: 95% bootstrap over test images"
    assert plots.write_plots(report_of(tmp_path / "runs"), tmp_path / "plots")
