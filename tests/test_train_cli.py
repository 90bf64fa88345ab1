"""``mnistexp train`` end to end on the tiny synthetic dataset (CliRunner, in process)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mnistexp.cli import main
from tests.conftest import TINY

RUN_FILES = {
    "config.yaml",
    "config.json",
    "status.json",
    "history.csv",
    "metrics.json",
    "predictions.npz",
    "model.npz",
    "env.json",
}


def train(tiny: Path, runs: Path, *extra: str):
    args = ["train", "--data-dir", str(tiny), "--runs-dir", str(runs), "--no-progress"]
    for item in TINY:
        args += ["--set", item]
    return CliRunner().invoke(main, [*args, *extra])


def only_run(runs: Path) -> Path:
    (folder,) = [p for p in runs.iterdir() if not p.name.startswith(".")]
    return folder


def test_writes_a_complete_readable_run_folder(tiny: Path, tmp_path: Path):
    result = train(tiny, tmp_path, "--seed", "3")
    assert result.exit_code == 0, result.output
    folder = only_run(tmp_path)
    assert folder.name.startswith("default-") and folder.name.endswith("-s3")
    assert {p.name for p in folder.iterdir()} == RUN_FILES
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "completed"
    assert folder.name.split("-")[1] == status["config_hash"][:8]
    metrics = json.loads((folder / "metrics.json").read_text())
    for section in ("test", "validation", "train", "test_temperature_scaled"):
        assert {"accuracy", "error", "nll", "brier", "ece"} <= set(metrics[section])
    assert metrics["test"]["accuracy"] > 0.8  # the synthetic classes are easy
    with np.load(folder / "predictions.npz", allow_pickle=False) as npz:
        assert npz["probs"].shape == (200, 10) and npz["labels"].shape == (200,)
    assert len((folder / "history.csv").read_text().splitlines()) == 1 + 2  # header + epochs
    assert "completed in" in result.output and "test: accuracy" in result.output


def test_rerun_skips_and_force_retrains(tiny: Path, tmp_path: Path):
    assert train(tiny, tmp_path).exit_code == 0
    status = only_run(tmp_path) / "status.json"
    first = json.loads(status.read_text())["finished"]
    again = train(tiny, tmp_path)
    assert again.exit_code == 0
    assert "already completed; not retrained (--force retrains)" in again.output
    assert json.loads(status.read_text())["finished"] == first
    forced = train(tiny, tmp_path, "--force")
    assert forced.exit_code == 0 and "completed in" in forced.output
    assert json.loads(status.read_text())["pid"] == os.getpid()


def test_same_seed_gives_bit_identical_results(tiny: Path, tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert train(tiny, a).exit_code == 0 and train(tiny, b).exit_code == 0
    ra, rb = only_run(a), only_run(b)
    assert (ra / "metrics.json").read_bytes() == (rb / "metrics.json").read_bytes()
    with np.load(ra / "model.npz") as ma, np.load(rb / "model.npz") as mb:
        for key in ma.files:
            assert np.array_equal(ma[key], mb[key])
    c = tmp_path / "c"
    assert train(tiny, c, "--seed", "1").exit_code == 0
    assert (only_run(c) / "metrics.json").read_bytes() != (ra / "metrics.json").read_bytes()


def test_json_output(tiny: Path, tmp_path: Path):
    result = train(tiny, tmp_path, "--json")
    assert result.exit_code == 0
    out = json.loads(result.output)
    assert out["state"] == "completed" and out["skipped"] is False
    assert Path(out["run_dir"]) == only_run(tmp_path)
    assert 0 <= out["metrics"]["test"]["accuracy"] <= 1


def test_divergence_is_recorded_with_exit_1(tiny: Path, tmp_path: Path):
    blow_up = [
        "--set",
        "data.scaling=raw",
        "--set",
        "train.lr=10",
        "--set",
        "loss.type=mse",
        "--set",
        "loss.output=linear",
    ]
    result = train(tiny, tmp_path, *blow_up)
    assert result.exit_code == 1
    status = json.loads((only_run(tmp_path) / "status.json").read_text())
    assert status["state"] == "diverged"
    assert "training loss became" in status["error"]
    again = train(tiny, tmp_path, *blow_up)  # a diverged run is a result: not retrained
    assert again.exit_code == 1 and "diverged earlier; not retrained" in again.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(
            ["--set", "train.lr=0"], "Error: train.lr = 0.0 is invalid: must be > 0", id="range"
        ),
        pytest.param(
            ["--set", "train.batch_size=5000"],
            "Error: train.batch_size = 5000 is invalid: larger than the 500 training images",
            id="batch>train",
        ),
        pytest.param(
            ["--set", "loss.output=linear"],
            "Error: loss.output = 'linear' does not "
            "fit loss.type = 'cross_entropy': use loss.output = softmax",
            id="pairing",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_no_run(tiny, tmp_path, extra, message):
    result = train(tiny, tmp_path / "runs", *extra)
    assert result.exit_code == 2
    assert result.output.strip() == message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_malformed_config_file(tiny: Path, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [0.1\n")
    result = train(tiny, tmp_path / "runs", "--config", str(bad))
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {bad}: malformed YAML at line")
    assert len(result.output.strip().splitlines()) == 1


def test_runs_dir_that_is_a_file(tiny: Path, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = train(tiny, blocker / "runs")
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and "cannot create the runs folder" in result.output


def test_print_config_shows_resolved_values(tmp_path: Path):
    result = CliRunner().invoke(
        main, ["train", "--set", "model.hidden=[256,128]", "--seed", "4", "--print-config"]
    )
    assert result.exit_code == 0
    assert "hidden:\n  - 256\n  - 128\n" in result.output or "hidden: [256, 128]" in result.output
    assert "seed: 4" in result.output and "epsilon: 0.1" in result.output


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    for name, command in main.commands.items():
        sub = getattr(command, "commands", {name: command})
        for sub_name in sub:
            args = [name] if sub_name == name else [name, sub_name]
            result = runner.invoke(main, [*args, "--help"])
            assert result.exit_code == 0, args
            assert "Example" in result.output, args


def test_the_summary_prints_every_recalibration_map_and_defines_its_abbreviations(
    tiny: Path, tmp_path: Path
):
    maps = "eval.recalibration=[temperature,vector,isotonic]"
    result = train(tiny, tmp_path, "--set", maps)
    assert result.exit_code == 0, result.output
    metrics = json.loads((only_run(tmp_path) / "metrics.json").read_text())
    lines = result.stdout.splitlines()[1:]
    number = r"accuracy \d+\.\d\d%  NLL \d+\.\d{4}  Brier \d+\.\d{4}  ECE \d+\.\d\d%"
    labels = ["test", r"after temperature \(T=\S+\)", "after vector", "after isotonic"]
    assert len(lines) == len(labels) + 1, lines
    for label, line in zip(labels, lines, strict=False):
        assert re.fullmatch(f"  {label}: {number}", line), line
    isotonic = metrics["test_recalibrated"]["isotonic"]
    assert f"ECE {100 * isotonic['ece']:.2f}%" in lines[3]
    assert lines[-1] == (
        "  NLL = negative log-likelihood (nats); ECE = expected calibration error (10 "
        "equal-width bins); T = the fitted temperature; each map fitted on the validation "
        "split, applied to test"
    )


def test_the_summary_says_when_a_map_was_skipped(tiny: Path, tmp_path: Path):
    result = train(tiny, tmp_path, "--set", "data.validation=0")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[2].startswith("  after temperature: skipped (no validation split")
    assert lines[3] == (
        "  NLL = negative log-likelihood (nats); ECE = expected calibration error (10 "
        "equal-width bins)"
    )


def test_the_summary_warns_of_a_fit_that_did_not_reach_its_optimum(tiny: Path, tmp_path: Path):
    # the tiny validation split is all right with a margin: no finite temperature is optimal
    result = train(tiny, tmp_path / "runs")
    assert result.exit_code == 0, result.output
    folder = only_run(tmp_path / "runs")
    assert f"warning: {folder}: the temperature fit sits on the bound of its search (T = 1e-08" in (
        result.stderr
    )
    fit = json.loads((folder / "metrics.json").read_text())["test_temperature_scaled"]["fit"]
    assert fit["at_bound"] is True and fit["converged"] is False


# ------------------------------------------------------------- one experiment, one folder


def folders(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir() if not p.name.startswith("."))


def test_the_same_experiment_under_another_name_is_reused_not_trained_again(tiny, tmp_path):
    assert train(tiny, tmp_path, "--name", "first").exit_code == 0
    (first,) = folders(tmp_path)
    history = (first / "history.csv").stat().st_mtime_ns
    again = train(tiny, tmp_path, "--name", "second")
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[0] == (
        f"{first}: reused the same experiment (config hash and seed) under another name, "
        "already completed; not retrained (--force retrains it here)"
    )
    assert "test: accuracy" in again.stdout  # its numbers, as for a run of the same name
    as_json = json.loads(train(tiny, tmp_path, "--name", "second", "--json").stdout)
    assert (as_json["run_dir"], as_json["skipped"]) == (str(first), True)
    assert "another name" in as_json["message"]
    printed = train(tiny, tmp_path, "--name", "second", "--print-config")
    assert printed.stdout.splitlines()[0] == f"# run folder: {first}"
    assert folders(tmp_path) == [first]
    assert (first / "history.csv").stat().st_mtime_ns == history


def test_force_retrains_the_experiment_in_the_folder_it_was_found_in(tiny, tmp_path):
    assert train(tiny, tmp_path, "--name", "first").exit_code == 0
    (first,) = folders(tmp_path)
    forced = train(tiny, tmp_path, "--name", "second", "--force")
    assert forced.exit_code == 0, forced.output
    assert forced.stdout.startswith(f"{first}: completed in ")
    assert "retrained in the folder of the same experiment" in forced.stdout.splitlines()[0]
    assert folders(tmp_path) == [first]  # no duplicate
    assert json.loads((first / "status.json").read_text())["pid"] == os.getpid()
    assert "name: first" in (first / "config.yaml").read_text()  # the folder keeps its name


def test_a_hash_prefix_alone_is_not_the_same_experiment(tiny, tmp_path):
    assert train(tiny, tmp_path, "--name", "first").exit_code == 0
    (first,) = folders(tmp_path)
    status = json.loads((first / "status.json").read_text())
    status["config_hash"] = status["config_hash"][:8] + "0" * 56  # the same eight digits
    (first / "status.json").write_text(json.dumps(status))
    result = train(tiny, tmp_path, "--name", "second")
    assert result.exit_code == 0 and "completed in" in result.stdout, result.output
    assert [p.name.split("-")[0] for p in folders(tmp_path)] == ["first", "second"]


def test_a_run_in_progress_under_another_name_is_running_elsewhere(tiny, tmp_path):
    from mnistexp.store import liveness

    assert train(tiny, tmp_path, "--name", "first").exit_code == 0
    (first,) = folders(tmp_path)
    status = json.loads((first / "status.json").read_text())
    status |= {"state": "running", "host": "another-host", "heartbeat": liveness.utc_now()}
    (first / "status.json").write_text(json.dumps(status))
    result = train(tiny, tmp_path, "--name", "second", "--force")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        f"{first}: the same experiment (config hash and seed) under another name is being "
        "trained by another process; left alone"
    )
    assert folders(tmp_path) == [first]


def test_an_unfinished_run_under_another_name_does_not_stand_for_it(tiny, tmp_path):
    """Only a completed or running folder is the experiment's; a failed one is not reused."""
    assert train(tiny, tmp_path, "--name", "first").exit_code == 0
    (first,) = folders(tmp_path)
    status = json.loads((first / "status.json").read_text())
    (first / "status.json").write_text(json.dumps({**status, "state": "failed", "error": "x"}))
    result = train(tiny, tmp_path, "--name", "second")
    assert result.exit_code == 0 and "completed in" in result.stdout, result.output
    assert len(folders(tmp_path)) == 2
