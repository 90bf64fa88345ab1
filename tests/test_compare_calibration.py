"""compare with metrics.json schema 2: bootstrap intervals for single seeds, the recalibration
and estimator columns, multiple-comparison corrections and McNemar's underflow bound."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mnistexp.analysis import stats
from mnistexp.analysis.columns import METRICS, RECALIBRATION_TITLES
from mnistexp.cli.compare import CORRECTIONS
from mnistexp.eval.recalibration import RECALIBRATIONS
from tests.test_compare import MSE, invoke, make_run


def test_holm_by_hand() -> None:
    # sorted .005 .01 .03 .04, m = 4: 4 x .005 = .02, 3 x .01 = .03, 2 x .03 = .06, 1 x .04
    # = .04 -> running max .02 .03 .06 .06, returned in the input order
    got = stats.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])  # capped at one


def test_benjamini_hochberg_by_hand() -> None:
    # sorted .005 .01 .03 .04, m = 4: m p / rank = .02 .02 .04 .04; running min from the top
    got = stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(got, [0.02, 0.04, 0.04, 0.02])
    # a large p-value early on is pulled down by a smaller adjusted one above it:
    # .02 .021 .5 -> 3 x .02 / 1 = .06, 3 x .021 / 2 = .0315, .5 -> min from the top
    np.testing.assert_allclose(stats.benjamini_hochberg([0.02, 0.021, 0.5]), [0.0315, 0.0315, 0.5])


def test_adjust_leaves_missing_p_values_out_of_the_family() -> None:
    assert stats.adjust([0.01, None, 0.04], "holm") == pytest.approx([0.02, None, 0.04])
    assert stats.adjust([0.01, None], "none") == [0.01, None]
    assert list(stats.CORRECTIONS) == list(CORRECTIONS)


def test_mcnemar_underflow_is_a_bound() -> None:
    base, other = np.ones(3000, bool), np.zeros(3000, bool)  # 3000 vs 0 discordant: 2^-2999
    diff, p, test = stats.mcnemar(base, other)
    assert diff == -1.0 and p == stats.P_BOUND == 1e-300
    assert test.endswith("p < 1e-300, a bound")


def _schema2(folder: Path, shift: float) -> None:
    """Add schema-2 entries to a fake run's metrics.json."""
    path = folder / "metrics.json"
    report = json.loads(path.read_text())
    report["schema_version"] = 2
    test = report["test"]
    test |= {"debiased_ce": 0.01 + shift, "smooth_ece": 0.015 + shift}
    test["bootstrap"] = {
        "level": 0.95,
        "resamples": 1000,
        "accuracy": [test["accuracy"] - 0.004, test["accuracy"] + 0.005],
        "nll": [0.28, 0.33],
    }
    report["test_recalibrated"] = {
        "vector": {"accuracy": test["accuracy"], "nll": 0.25, "ece": 0.005 + shift},
    }
    path.write_text(json.dumps(report))


def test_single_seed_rows_show_the_bootstrap_interval(tmp_path: Path) -> None:
    _schema2(make_run(tmp_path, "base", 0, 0.9), 0.0)
    _schema2(make_run(tmp_path, "mse", 0, 0.8, overrides=MSE), 0.01)
    metrics = ("--metrics", "accuracy,nll,brier,vector_ece")
    assert "[" not in invoke("--runs-dir", str(tmp_path), *metrics).stdout.split("\n\n")[0]
    result = invoke("--runs-dir", str(tmp_path), *metrics, "--interval")
    assert result.exit_code == 0, result.output
    assert "90.00 [89.60, 90.50]" in result.stdout
    assert "0.3000 [0.2800, 0.3300]" in result.stdout
    assert "n = 1: the run's value [95% percentile-bootstrap interval" in result.stdout
    assert "0.1500  " in result.stdout  # brier: no interval in metrics.json, the value alone
    assert "0.50" in result.stdout and "1.50" in result.stdout  # ECE after vector scaling
    assert "TS = temperature scaling; VS = vector scaling;" in result.stdout  # the footnote
    assert "IR = " not in result.stdout  # only the maps a shown column names
    data = json.loads(
        invoke(
            "--runs-dir", str(tmp_path), "--metrics", "accuracy,debiased_ce", "--format", "json"
        ).stdout
    )
    base = data["experiments"][0]["metrics"]
    assert base["accuracy"]["interval"] == "bootstrap"
    assert base["accuracy"]["ci95_low"] == pytest.approx(0.896)
    assert base["debiased_ce"] == pytest.approx(
        {"n": 1, "mean": 0.01, "std": None, "ci95_low": None, "ci95_high": None, "interval": None}
    )


def test_schema_1_folders_have_no_new_columns_but_still_compare(tmp_path: Path) -> None:
    make_run(tmp_path, "old", 0, 0.9)  # schema_version 1: no debiased_ce, no bootstrap
    result = invoke("--runs-dir", str(tmp_path), "--metrics", "accuracy,debiased_ce,smooth_ece")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("old"))
    assert row.split()[-3:] == ["90.00", "—", "—"]


@pytest.mark.parametrize(
    ("correction", "verdict"),
    [
        ("none", "p = 0.003, significant at 0.01 (worse)"),
        ("holm", "p = 0.003 (Holm 0.016), not significant"),
        ("bh", "p = 0.003 (BH 0.003), significant at 0.01 (worse)"),
    ],
)
def test_the_verdict_is_on_the_adjusted_p_value(
    tmp_path: Path, correction: str, verdict: str
) -> None:
    for seed, (a, b) in enumerate([(0.91, 0.85), (0.92, 0.86), (0.93, 0.88)]):
        make_run(tmp_path, "base", seed, a)
        make_run(tmp_path, "mse", seed, b, overrides=MSE, shift=0.1 + seed / 100)
    args = ["--runs-dir", str(tmp_path), "--baseline", "base", "--alpha", "0.01"]
    result = invoke(*args, "--correction", correction, "--format", "markdown")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    accuracy = next(line for line in lines if line.startswith("| mse |") and "accuracy (%)" in line)
    assert verdict in accuracy
    note = result.stdout.strip().splitlines()[-1]
    assert "6 tests of this table" in note
    data = json.loads(invoke(*args, "--correction", correction, "--format", "json").stdout)
    first = data["comparisons"][0]
    assert data["correction"] == first["correction"] == correction
    assert first["p_value"] == pytest.approx(0.003442351)
    expected = {"none": 0.003442351, "holm": 0.016460936, "bh": 0.003442351}[correction]
    assert first["p_adjusted"] == pytest.approx(expected)


def test_every_recalibration_method_has_columns() -> None:
    assert set(RECALIBRATION_TITLES) == set(RECALIBRATIONS) - {"temperature"}
    for method in RECALIBRATION_TITLES:
        for key in ("accuracy", "nll", "ece"):
            metric = METRICS[f"{method}_{key}"]
            report = {"test_recalibrated": {method: {key: 0.5}}}
            assert metric.value_in(report) == 0.5


def test_every_map_short_name_in_a_header_is_defined_in_the_footnote():
    from mnistexp.analysis.columns import ABBREVIATIONS

    for method, title in RECALIBRATION_TITLES.items():
        assert title in ABBREVIATIONS, method
