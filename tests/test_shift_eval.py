"""Evaluation beyond the test set wired into runs: ``shift`` config keys, shift.json written at
training and by ``mnistexp evaluate`` (identical bytes, no retraining, same run id), and bad
input refused before anything is written. On the tiny synthetic dataset, in process."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mnistexp.cli import main
from mnistexp.config import config_hash, load_config
from mnistexp.core.errors import ConfigError
from tests.conftest import TINY

SMALL = [
    "shift.families=[rotate, translate]",
    "shift.rotate=[0, 90]",
    "shift.translate=[0, 4]",
    "shift.ood=[uniform]",
    "shift.ood_size=50",
]
"""A shift evaluation small enough for the tiny dataset (no scikit-learn needed)."""


def sets(items: list[str]) -> list[str]:
    return [w for item in items for w in ("--set", item)]


def train(tiny: Path, runs: Path, *extra: str):
    args = ["train", *sets([*TINY, f"data.dir={tiny}"]), "--runs-dir", str(runs), *extra]
    return CliRunner().invoke(main, args)


def evaluate(*args: str):
    return CliRunner().invoke(main, ["evaluate", *args])


def only_run(runs: Path) -> Path:
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    return folder


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --------------------------------------------------------------------------- config


def test_shift_keys_never_change_the_run_identity():
    plain = load_config(None, [])
    shifted = load_config(None, [*SMALL, "shift.noise=[0, 10]"])
    assert shifted.shift.rotate == (0.0, 90.0) and shifted.shift.ood_size == 50
    assert config_hash(shifted) == config_hash(plain)


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("shift.families=[rotation]", "shift.families[0] = 'rotation' is invalid"),
        ("shift.families=[rotate, rotate]", "listed twice"),
        ("shift.ood=[noise]", "shift.ood[0] = 'noise' is invalid"),
        ("shift.rotate=[0, 400]", "shift.rotate[1] = 400"),
        ("shift.translate=[-2]", "shift.translate[0] = -2"),
        ("shift.contrast=[0]", "shift.contrast[0] = 0"),
        ("shift.ood_size=0", "shift.ood_size = 0 is invalid"),
        ("shift.rotate=45", "expected a list"),
    ],
)
def test_bad_shift_settings_are_one_line(item: str, says: str):
    with pytest.raises(ConfigError) as caught:
        load_config(None, ["shift.families=[rotate]", item])
    message = str(caught.value)
    assert says in message and "\n" not in message, message


def test_a_family_asked_for_needs_a_severity():
    with pytest.raises(ConfigError, match=r"shift.rotate = \[\] is invalid: list at least one"):
        load_config(None, ["shift.families=[rotate]", "shift.rotate=[]"])


# --------------------------------------------------------------------------- training


@pytest.fixture
def trained(tiny: Path, tmp_path: Path) -> Path:
    """A finished tiny run that asked for the small shift evaluation at training."""
    runs = tmp_path / "with"
    result = train(tiny, runs, *sets(SMALL))
    assert result.exit_code == 0, result.output
    return only_run(runs)


def test_identity_severities_reproduce_the_test_metrics_exactly(trained: Path):
    report = json.loads((trained / "shift.json").read_text())
    metrics = json.loads((trained / "metrics.json").read_text())
    for key in ("rotate/0", "translate/0"):
        raw = report["sets"][key]["raw"]
        for name, value in raw.items():
            if name != "selective":
                assert value == metrics["test"][name], (key, name)
        temperature = report["sets"][key]["temperature"]
        for name, value in temperature.items():
            if name != "selective":
                assert value == metrics["test_temperature_scaled"][name], (key, name)
    assert report["sets"]["rotate/90"]["checksum"] != report["sets"]["rotate/0"]["checksum"]
    assert report["sets"]["rotate/0"]["checksum"] == report["sets"]["translate/0"]["checksum"]
    assert set(report["ood"]["uniform"]["raw"]) == {"msp", "entropy", "energy"}
    assert set(report["ood"]["uniform"]["temperature"]) == {"msp", "entropy"}


def test_the_stored_probabilities_are_the_reports_and_small(trained: Path):
    import hashlib

    report = json.loads((trained / "shift.json").read_text())
    blob = (trained / "shift_predictions.npz").read_bytes()
    assert report["predictions_sha256"] == hashlib.sha256(blob).hexdigest()
    with np.load(trained / "shift_predictions.npz") as npz:
        assert report["sets"]["translate/0"]["probs"] == "rotate/0/probs"  # one copy of equals
        probs = npz[report["sets"]["translate/0"]["probs"]]
        assert probs.dtype == np.float16
        expected = np.load(trained / "predictions.npz")["probs"]  # float32
        np.testing.assert_allclose(probs, expected, rtol=5e-4, atol=3e-8)
        stored = {r["probs"] for r in report["sets"].values()}
        assert sorted(npz.files) == sorted([*stored, "ood/uniform/probs"])
        assert len(stored) == 3  # rotate/0 (= translate/0), rotate/90, translate/4
    with zipfile.ZipFile(trained / "shift_predictions.npz") as archive:  # stored, not deflated
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}


@pytest.mark.parametrize("parallel", [False, True])
def test_the_evaluation_is_the_same_serial_and_overlapped(
    tiny: Path, trained: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool
):
    """Metrics in a thread pool and sets read ahead on a loader thread give the bytes a
    serial evaluation gives (both forced here, whatever this machine's BLAS threads)."""
    from mnistexp.pipeline import overlap

    calls = []
    monkeypatch.setattr(overlap, "parallel", lambda: calls.append(1) or parallel)
    before = files(trained)
    result = evaluate(str(trained), *sets(SMALL), "--data-dir", str(tiny), "--force")
    assert result.exit_code == 0, result.output
    assert calls and files(trained) == before


# --------------------------------------------------------------------------- evaluate


def test_evaluate_adds_what_training_would_have_written_without_retraining(
    tiny: Path, tmp_path: Path, trained: Path
):
    runs = tmp_path / "without"
    assert train(tiny, runs).exit_code == 0
    folder = only_run(runs)
    assert folder.name == trained.name  # shift keys are not in the id
    before = files(folder)
    assert "shift.json" not in before
    result = evaluate(str(folder), *sets(SMALL), "--data-dir", str(tiny))
    assert result.exit_code == 0, result.output
    after = files(folder)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing else touched
    assert only_run(runs).name == folder.name
    for name in ("shift.json", "shift_predictions.npz"):
        assert after[name] == (trained / name).read_bytes(), name
    # idempotent: the same evaluation is kept, --force rewrites the same bytes
    again = evaluate(str(folder), *sets(SMALL), "--data-dir", str(tiny))
    assert again.exit_code == 0 and "up to date" in again.output
    forced = evaluate(str(folder), *sets(SMALL), "--data-dir", str(tiny), "--force")
    assert forced.exit_code == 0 and "evaluated" in forced.output
    assert files(folder) == after


def test_changing_one_severity_changes_only_that_sets_checksum(tiny: Path, trained: Path):
    first = json.loads((trained / "shift.json").read_text())["sets"]
    other = [*SMALL, "shift.rotate=[0, 45]"]
    result = evaluate(str(trained), *sets(other), "--data-dir", str(tiny))
    assert result.exit_code == 0, result.output
    second = json.loads((trained / "shift.json").read_text())["sets"]
    assert sorted(second) == ["rotate/0", "rotate/45", "translate/0", "translate/4"]
    for key in ("rotate/0", "translate/0", "translate/4"):
        assert second[key] == first[key], key  # the same bytes, the same numbers
    assert second["rotate/45"]["checksum"] not in {s["checksum"] for s in first.values()}


def test_train_reusing_a_finished_run_adds_the_evaluation_without_retraining(
    tiny: Path, tmp_path: Path
):
    runs = tmp_path / "runs"
    assert train(tiny, runs).exit_code == 0
    folder = only_run(runs)
    model = (folder / "model.npz").stat().st_mtime_ns
    result = train(tiny, runs, *sets(SMALL))
    assert result.exit_code == 0, result.output
    assert (folder / "shift.json").exists()
    assert (folder / "model.npz").stat().st_mtime_ns == model


# --------------------------------------------------------------------------- bad input


def test_evaluate_refuses_bad_targets_before_writing_anything(tiny: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    assert train(tiny, runs).exit_code == 0
    good = only_run(runs)
    no_model = tmp_path / "copy"
    no_model.mkdir()
    for name, data in files(good).items():
        if name != "model.npz":
            (no_model / name).write_bytes(data)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for name, data in files(good).items():
        (corrupt / name).write_bytes(data[:40] if name == "model.npz" else data)
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    (not_a_run / "notes.txt").write_text("hello")
    cases = {
        str(no_model): "model.npz",
        str(corrupt): "model.npz",
        str(not_a_run): "neither a run folder nor a folder of runs",
        str(tmp_path / "missing"): "not a folder",
    }
    for target, says in cases.items():
        result = evaluate(str(good), target, *sets(SMALL), "--data-dir", str(tiny))
        assert result.exit_code == 2, (target, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], (target, result.output)
        assert "Traceback" not in result.output
    for folder in (good, no_model, corrupt):
        assert not (folder / "shift.json").exists()


def test_evaluate_refuses_a_run_that_did_not_finish(tiny: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    assert train(tiny, runs).exit_code == 0
    folder = only_run(runs)
    status = json.loads((folder / "status.json").read_text())
    (folder / "status.json").write_text(json.dumps({**status, "state": "failed"}))
    result = evaluate(str(folder), *sets(SMALL), "--data-dir", str(tiny))
    assert result.exit_code == 2 and "the run is failed, not completed" in result.output
    assert not (folder / "shift.json").exists()


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("train.lr=0.1", "evaluate takes shift.* keys only"),
        ("shift.families=[spin]", "shift.families[0] = 'spin' is invalid"),
        ("shift.noise=[-1]", "shift.noise[0] = -1"),
    ],
)
def test_evaluate_refuses_bad_settings(tmp_path: Path, item: str, says: str):
    result = evaluate(str(tmp_path), "--set", item)
    assert result.exit_code == 2 and says in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_digits_without_scikit_learn_is_one_line_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if not installed: find_spec is None
    result = evaluate(str(tmp_path), "--set", "shift.families=[digits]", "--set", "shift.ood=[]")
    assert result.exit_code == 2, result.output
    assert "mnistexp[digits]" in result.output
    assert len(result.output.strip().splitlines()) == 1
