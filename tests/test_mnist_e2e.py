"""End to end on a real MNIST subset (runs in CI, where MNISTEXP_DATA_DIR is set).

Accuracy bounds were measured first: with 10k training images and 2 epochs, baseline.yaml
gave 91.6 / 92.1 / 91.5% (seeds 0-2) and mse_sigmoid.yaml 88.5 / 88.0 / 87.1%.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from mnistexp.cli import main
from mnistexp.eval import metrics

pytestmark = pytest.mark.mnist
CONFIGS = Path(__file__).parent.parent / "configs"
SMALL = ["--set", "data.train_subset=10000", "--set", "train.epochs=2", "--no-progress"]
SECTIONS = ("test", "validation", "train", "test_temperature_scaled")
KEYS = {
    "accuracy",
    "error",
    "nll",
    "brier",
    "ece",
    "mce",
    "rmsce",
    "ace",
    "classwise_ece",
    "mean_confidence",
    "overconfidence",
    "entropy",
}


def run(config: str, mnist_dir: Path, runs: Path) -> Path:
    result = CliRunner().invoke(
        main,
        [
            "train",
            "-c",
            str(CONFIGS / config),
            "--data-dir",
            str(mnist_dir),
            "--runs-dir",
            str(runs),
            "--json",
            *SMALL,
        ],
    )
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.output)["run_dir"])


@pytest.mark.parametrize(("config", "floor"), [("baseline.yaml", 0.90), ("mse_sigmoid.yaml", 0.85)])
def test_small_budget_accuracy_and_complete_metrics(config, floor, mnist_dir, tmp_path):
    folder = run(config, mnist_dir, tmp_path)
    report = json.loads((folder / "metrics.json").read_text())
    assert report["schema_version"] == 2  # version 2 added entries (issue 15)
    assert report["test"]["accuracy"] >= floor
    for section in SECTIONS:
        assert set(report[section]) >= KEYS, section
    scaled = report["test_temperature_scaled"]
    assert scaled["temperature"] > 0
    assert scaled["accuracy"] == report["test"]["accuracy"]  # temperature keeps the argmax
    assert report["conventions"]["bins"] == 15
    assert len(report["test"]["reliability"]["count"]) == 15
    assert sum(report["test"]["reliability"]["count"]) == 10000
    assert np.array(report["test"]["confusion_matrix"]).sum() == 10000
    env = json.loads((folder / "env.json").read_text())
    assert env["data"]["sha256"]["train-images-idx3-ubyte.gz"].startswith("ba891046")


@pytest.mark.parametrize("config", ["baseline.yaml", "mse_sigmoid.yaml"])
def test_metrics_recomputed_from_predictions_match(config, mnist_dir, tmp_path):
    folder = run(config, mnist_dir, tmp_path)
    report = json.loads((folder / "metrics.json").read_text())["test"]
    bins = yaml.safe_load((folder / "config.yaml").read_text())["eval"]["bins"]
    with np.load(folder / "predictions.npz") as npz:
        probs = npz["probs"].astype(np.float64)
        again = metrics.evaluate(probs, npz["labels"], npz["predictions"], bins=bins)
    # probs are stored as float32, so recomputed numbers agree to float32 precision
    for key in ("accuracy", "brier", "ece", "mce", "ace", "classwise_ece", "mean_confidence"):
        assert again[key] == pytest.approx(report[key], rel=1e-4, abs=1e-6), key
    assert again["nll"] == pytest.approx(report["nll"], rel=1e-4)
    assert again["confusion_matrix"] == report["confusion_matrix"]


def test_history_has_validation_and_gradient_diagnostics(mnist_dir, tmp_path):
    folder = run("mse_sigmoid.yaml", mnist_dir, tmp_path)
    lines = (folder / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    for column in ("val_accuracy", "val_nll", "val_ece", "grad_true", "grad_other", "saturated"):
        assert column in header
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert len(rows) == 2 and float(rows[-1]["val_accuracy"]) > 0.8


def test_interrupted_then_resumed_matches_an_uninterrupted_run(mnist_dir, tmp_path, monkeypatch):
    """Stopped as epoch 2 of 3 is recorded (its checkpoint not yet written, so the last is
    epoch 1's) and resumed: bit-identical results."""
    from mnistexp.store import runs
    from tests.test_interrupts import assert_same_results, interrupt_after_epoch

    args = [
        "train",
        "-c",
        str(CONFIGS / "baseline.yaml"),
        "--data-dir",
        str(mnist_dir),
        "--set",
        "data.train_subset=5000",
        "--set",
        "train.epochs=3",
        "--set",
        "train.momentum=0.9",
        "--no-progress",
    ]
    plain = CliRunner().invoke(main, [*args, "--runs-dir", str(tmp_path / "a")])
    assert plain.exit_code == 0, plain.output
    resumable = [*args, "--set", "train.checkpoint_every=1", "--runs-dir", str(tmp_path / "b")]
    interrupt_after_epoch(monkeypatch, 2)
    stopped = CliRunner().invoke(main, resumable)
    assert stopped.exit_code == 130 and "--resume continues from the checkpoint of epoch 1" in (
        stopped.output
    )
    resumed = CliRunner().invoke(main, [*resumable, "--resume"])
    assert resumed.exit_code == 0 and "(resumed from epoch 1)" in resumed.output
    (a,), (b,) = runs.iter_run_folders(tmp_path / "a"), runs.iter_run_folders(tmp_path / "b")
    assert_same_results(a, b)
