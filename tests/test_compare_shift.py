"""``compare --shift``: tables beyond the test set, seed ensembles, their figures.

Tiny runs with a small shift evaluation (the patterns of tests/test_shift_eval.py), trained once
per module and copied for each test that damages them; and two made-up runs whose stored
probabilities make the ensemble's numbers computable on paper.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import test_shift_eval
from click.testing import CliRunner, Result
from conftest import TINY, require_tool
from test_compare import make_run
from test_html_report import _browse

from mnistexp.analysis import ensembles, shiftcompare, shiftreport, shiftruns
from mnistexp.cli import main
from mnistexp.data import datasets as data
from mnistexp.eval import metrics, selective
from mnistexp.store import runs

SMALL = [*test_shift_eval.SMALL, "eval.recalibration=[temperature, vector]"]
"""A shift evaluation small enough for the tiny dataset, with two recalibration maps."""
MSE = ["loss.type=mse", "loss.output=sigmoid"]
FORMATS = ["table", "markdown", "latex", "csv", "json"]


def sets(items: list[str]) -> list[str]:
    return [w for item in items for w in ("--set", item)]


@pytest.fixture(scope="module")
def trained(tiny_data_dir, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """base: 3 seeds, mse_sig: 2 seeds, each with the small shift evaluation."""
    folder, spec = tiny_data_dir
    root = tmp_path_factory.mktemp("shift-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(data.DATASETS, "tiny", spec)
        mp.setenv("MNISTEXP_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        for name, extra, seeds in (("base", [], 3), ("mse_sig", MSE, 2)):
            for seed in range(seeds):
                items = [
                    *TINY,
                    f"data.dir={folder}",
                    *SMALL,
                    *extra,
                    f"name={name}",
                    f"seed={seed}",
                ]
                args = ["train", *sets(items), "--runs-dir", str(root)]
                result = CliRunner().invoke(main, args)
                assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def root(trained: Path, tiny: Path, tmp_path: Path) -> Path:
    """A private copy of the trained runs (``tiny`` registers their dataset for compare)."""
    return Path(shutil.copytree(trained, tmp_path / "runs"))


def folder(root: Path, name: str, seed: int) -> Path:
    (found,) = root.glob(f"{name}-*-s{seed}")
    return found


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["compare", *args])


def shift_json(result: Result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["shift"]


def row(data: dict, label: str, key: str, variant: str = "raw") -> dict:
    (found,) = [
        r for r in data["sets"] if (r["label"], r["set"], r["map"]) == (label, key, variant)
    ]
    return found["metrics"]


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_adds_the_shift_tables_after_the_usual_output(root: Path, fmt: str):
    plain = invoke(str(root), "--format", fmt)
    result = invoke(str(root), "--format", fmt, "--shift")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    if fmt == "json":
        data = json.loads(result.stdout)
        assert {k: v for k, v in data.items() if k != "shift"} == json.loads(plain.stdout)
        labels = {r["label"] for r in data["shift"]["sets"]}
        assert {"base (ensemble of 3)", "mse_sig (ensemble of 2)"} <= labels
        return

    # LaTeX's provenance comments name the command line, which differs by --shift itself
    def body(text: str) -> str:
        return "".join(line for line in text.splitlines(True) if not line.startswith("% on "))

    assert body(result.stdout).startswith(body(plain.stdout))
    added = body(result.stdout)[len(body(plain.stdout)) :]
    if fmt == "csv":
        assert added.startswith("\n")
        rows = list(csv.DictReader(io.StringIO(added.lstrip("\n"))))
        assert list(rows[0]) == shiftreport.CSV_HEADER
        assert {r["table"] for r in rows} == {"shift", "selective", "ood"}
        assert {r["map"] for r in rows} == {"raw", "temperature", "vector", "ensemble"}
        assert {r["score"] for r in rows if r["map"] == "ensemble"} == {"", "msp", "entropy"}
        return
    for text in ("ensemble of 3", "ensemble of 2", "rotate", "translate", "uniform", "AURC"):
        assert text in added, text


def test_terminal_tables_fit_the_width_and_show_one_metric_each(root: Path):
    result = invoke(str(root), "--shift", "--shift-metric", "nll")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    titles = [line for line in lines if " under " in line]
    assert titles == [
        "NLL (nats) under rotate (degrees counter-clockwise):",
        "NLL (nats) under translate (pixels to the right):",
    ]
    at = lines.index(titles[0])
    assert lines[at + 1].split() == ["experiment", "map", "n", "0", "90"]
    assert [line.split("  ")[0] for line in lines[at + 3 : at + 11]] == [
        "base",
        "base",
        "base",
        "base (ensemble of 3)",
        "mse_sig",
        "mse_sig",
        "mse_sig",
        "mse_sig (ensemble of 2)",
    ]


def test_default_shift_tables_are_ece_then_accuracy_without_the_ts_accuracy(root: Path):
    lines = invoke(str(root), "--shift").stdout.splitlines()
    titles = [line.split(" under ")[0] for line in lines if " under " in line]
    assert titles == ["ECE (%)", "ECE (%)", "accuracy (%)", "accuracy (%)"]
    at = next(i for i, line in enumerate(lines) if line.startswith("accuracy (%) under rotate"))
    maps = [line.split()[1] for line in lines[at + 3 : at + 6]]
    assert maps == ["raw", "VS", "(ensemble"]  # temperature scaling keeps every prediction


def test_latex_escapes_names_and_units(root: Path):
    result = invoke(str(root), "--shift", "--format", "latex", "--shift-metric", "debiased_ce")
    assert result.exit_code == 0, result.output
    # the provenance lines are % comments, never typeset
    text = "".join(line for line in result.stdout.splitlines(True) if not line.startswith("% "))
    assert "mse\\_sig (ensemble of 2)" in text and "debiased CE (\\%)" in text
    body = re.sub(r"\\label\{[^}]*\}", "", text).replace(" & ", " ")  # column separators
    assert re.search(r"(?<!\\)[_%&#]", body) is None
    assert text.count("\\begin{table}") == text.count("\\end{table}") == 1 + 1 + 2 + 1 + 1
    assert "\\label{tab:mnistexp-shift-debiased-ce-rotate}" in text


def test_json_rows_are_the_seed_numbers_of_shift_json(root: Path):
    data = shift_json(invoke(str(root), "--format", "json", "--shift"))
    seeds = [json.loads((folder(root, "base", s) / "shift.json").read_text()) for s in range(3)]
    values = [s["sets"]["rotate/90"]["vector"]["ece"] for s in seeds]
    summary = row(data, "base", "rotate/90", "vector")["ece"]
    assert summary["n"] == 3
    assert summary["mean"] == pytest.approx(np.mean(values), abs=1e-15)
    assert summary["std"] == pytest.approx(np.std(values, ddof=1), abs=1e-15)
    aurc = [s["ood"]["uniform"]["raw"]["energy"]["auroc"] for s in seeds]
    (energy,) = [
        r for r in data["ood"] if (r["label"], r["score"], r["map"]) == ("base", "energy", "raw")
    ]
    assert energy["metrics"]["auroc"]["mean"] == pytest.approx(np.mean(aurc), abs=1e-15)
    ensemble_scores = {r["score"] for r in data["ood"] if r["map"] == "ensemble"}
    assert ensemble_scores == {"msp", "entropy"}  # energy needs logits
    assert [e["seeds"] for e in data["experiments"]] == [[0, 1, 2], [0, 1]]
    ensemble = row(data, "base (ensemble of 3)", "rotate/90", "ensemble")
    assert ensemble["smooth_ece"]["mean"] is None  # costly; computed only when shown
    assert row(data, "base (ensemble of 3)", "test", "ensemble")["smooth_ece"]["n"] == 1
    shown = shift_json(
        invoke(str(root), "--format", "json", "--shift", "--shift-metric", "smooth_ece")
    )
    smooth = row(shown, "base (ensemble of 3)", "rotate/90", "ensemble")["smooth_ece"]["mean"]
    assert (
        0 < smooth < 1
        and ensemble["ece"] == row(shown, "base (ensemble of 3)", "rotate/90", "ensemble")["ece"]
    )


# --------------------------------------------------------------------------- without --shift


@pytest.mark.parametrize("fmt", FORMATS)
def test_without_shift_nothing_changes_and_shift_json_is_not_read(
    root: Path, tmp_path: Path, fmt: str
):
    bare = Path(shutil.copytree(root, tmp_path / "bare"))
    for run in bare.iterdir():
        (run / runs.SHIFT_JSON).unlink()
        (run / runs.SHIFT_NPZ).unlink()
    (folder(root, "base", 0) / runs.SHIFT_JSON).write_text("{ damaged")
    with_files = invoke(str(root), "--format", fmt)
    without = invoke(str(bare), "--format", fmt)
    assert with_files.exit_code == without.exit_code == 0
    assert with_files.stdout == without.stdout.replace(str(bare), str(root))
    assert with_files.stderr == without.stderr.replace(str(bare), str(root))


# --------------------------------------------------------------------------- leniency


def warnings(result: Result, root: Path) -> list[str]:
    """The warning lines of ``result`` that compare without --shift does not give (a tiny run
    may warn about its temperature fit)."""
    plain = invoke(str(root)).stderr.splitlines()
    return [
        line
        for line in result.stderr.splitlines()
        if line.startswith("warning: ") and line not in plain
    ]


def test_damaged_files_cost_only_that_runs_shift_columns(root: Path):
    (folder(root, "base", 0) / runs.SHIFT_JSON).write_text('{"schema_version": 1, "sets": [')
    npz = folder(root, "base", 1) / runs.SHIFT_NPZ
    npz.write_bytes(npz.read_bytes() + b"\0")  # still a zip, another SHA-256
    (folder(root, "mse_sig", 1) / runs.SHIFT_JSON).unlink()
    plain = json.loads(invoke(str(root), "--format", "json").stdout)
    result = invoke(str(root), "--format", "json", "--shift")
    data = shift_json(result)
    assert "Traceback" not in result.output
    lines = warnings(result, root)
    assert len(lines) == 3, lines
    assert str(folder(root, "base", 0)) in lines[0] and "unreadable (Expecting" in lines[0]
    assert str(folder(root, "mse_sig", 1)) in lines[1] and "no shift.json" in lines[1]
    assert str(npz) in lines[2] and "SHA-256 differs" in lines[2]
    assert all(line.endswith("its shift columns are left out") for line in lines)
    assert [e["seeds"] for e in data["experiments"]] == [[2], [0]]
    assert not any("ensemble" in r["label"] for r in data["sets"])  # one seed left in each
    assert row(data, "base", "rotate/90")["accuracy"]["n"] == 1
    main_table = {k: v for k, v in json.loads(result.stdout).items() if k not in ("shift",)}
    assert main_table["experiments"] == plain["experiments"]  # the usual columns keep all runs


def test_a_set_with_another_checksum_is_dropped_for_that_experiment(root: Path):
    path = folder(root, "base", 1) / runs.SHIFT_JSON
    report = json.loads(path.read_text())
    report["sets"]["rotate/90"]["checksum"] = "0" * 64
    path.write_text(json.dumps(report))  # predictions_sha256 is of the npz: still intact
    result = invoke(str(root), "--format", "json", "--shift")
    data = shift_json(result)
    (line,) = warnings(result, root)
    assert "experiment 'base': set rotate/90 differs between its runs" in line
    keys = {r["set"] for r in data["sets"] if r["experiment"] == "base"}
    assert keys == {"test", "rotate/0", "translate/0", "translate/4"}
    assert "rotate/90" in {r["set"] for r in data["sets"] if r["experiment"] == "mse_sig"}


def test_runs_evaluated_under_other_settings_are_not_pooled(root: Path):
    path = folder(root, "base", 2) / runs.SHIFT_JSON
    report = json.loads(path.read_text())
    report["settings"]["ood_size"] = 60
    path.write_text(json.dumps(report))
    result = invoke(str(root), "--format", "json", "--shift")
    (line,) = warnings(result, root)
    assert str(folder(root, "base", 2)) in line and "shift settings differ" in line
    assert shift_json(result)["experiments"][0]["seeds"] == [0, 1]
    assert "base (ensemble of 2)" in invoke(str(root), "--shift").stdout


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MNISTEXP_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_second_compare_reads_no_array_and_prints_the_same(
    root: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch
):
    first = invoke(str(root), "--format", "json", "--shift")
    assert first.exit_code == 0, first.output
    entries = list((own_cache / "compare").iterdir())
    assert len(entries) == 2  # one per experiment

    def unread(*args: object) -> None:
        raise AssertionError("the arrays were read again")

    monkeypatch.setattr(shiftruns, "read_arrays", unread)
    monkeypatch.setattr(shiftcompare, "read_arrays", unread)
    again = invoke(str(root), "--format", "json", "--shift")
    assert again.exit_code == 0, again.output
    assert again.stdout == first.stdout and again.stderr == first.stderr


@pytest.mark.parametrize("parallel", [False, True])
def test_runs_read_ahead_on_threads_give_the_serial_report(
    root: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool
):
    from mnistexp.pipeline import overlap

    monkeypatch.setattr(overlap, "parallel", lambda: False)
    serial = invoke(str(root), "--format", "json", "--shift")
    shutil.rmtree(own_cache / "compare")
    monkeypatch.setattr(overlap, "parallel", lambda: parallel)
    again = invoke(str(root), "--format", "json", "--shift")
    assert again.exit_code == 0 and again.stdout == serial.stdout


def test_a_rewritten_file_is_noticed_even_with_its_size_and_time_kept(root: Path, own_cache: Path):
    assert invoke(str(root), "--shift").exit_code == 0  # remembered
    npz = folder(root, "base", 1) / runs.SHIFT_NPZ
    before = npz.stat()
    blob = bytearray(npz.read_bytes())
    blob[-30] ^= 0xFF  # a byte of the zip directory's tail: same size, another SHA-256
    npz.write_bytes(bytes(blob))
    os.utime(npz, ns=(before.st_atime_ns, before.st_mtime_ns))
    result = invoke(str(root), "--format", "json", "--shift")
    (line,) = warnings(result, root)
    assert str(npz) in line and "SHA-256 differs" in line


def test_a_damaged_or_unwritable_cache_costs_only_the_time(
    root: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch
):
    first = invoke(str(root), "--format", "json", "--shift")
    for entry in (own_cache / "compare").iterdir():
        entry.write_text('{"notes": [')
    assert invoke(str(root), "--format", "json", "--shift").stdout == first.stdout
    blocked = root.parent / "blocked"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("MNISTEXP_CACHE_DIR", str(blocked))
    result = invoke(str(root), "--format", "json", "--shift")
    assert result.exit_code == 0 and result.stdout == first.stdout


def test_shift_metric_is_checked_before_anything_is_read(root: Path):
    for args, says in (
        (["--shift-metric", "ece"], "--shift-metric chooses the tables of --shift; add --shift"),
        (["--shift", "--shift-metric", "ece,speed"], "unknown metric speed"),
    ):
        result = invoke(str(root / "nowhere"), *args)
        assert result.exit_code == 2, result.output
        (error,) = result.stderr.splitlines()
        assert error.startswith("Error: ") and says in error


# --------------------------------------------------------------------------- ensembles by hand

LABELS = np.array([1, 0, 1, 1])
"""Four test images of two classes; the runs store p(class 1) for each (rows below)."""
RUNS = {
    # test set: run a right on images 0-2, run b on 0, 1 and 3 (accuracy 0.75 each)
    "test": ([0.875, 0.25, 0.625, 0.25], [0.75, 0.375, 0.25, 0.875]),
    "rotate/90": ([0.25, 0.75, 0.125, 0.625], [0.375, 0.625, 0.375, 0.125]),
    "digits": ([0.25, 0.875], [0.125, 0.375]),  # labels 0, 1
    "ood/uniform": ([0.5, 0.625], [0.5, 0.625]),
}


def two_class(p1: list[float], dtype: type) -> np.ndarray:
    p = np.array(p1, dtype=np.float64)
    return np.stack([1 - p, p], axis=1).astype(dtype)  # exact: multiples of 1/8


def made_up_run(root: Path, seed: int, ece: float) -> Path:
    """A run folder whose predictions.npz and shift_predictions.npz hold :data:`RUNS`."""
    run = make_run(root, "hand", seed, 0.75)
    report = json.loads((run / "metrics.json").read_text())
    report["test"] = {**report["test"], "accuracy": 0.75, "n": 4}
    runs.write_json(run / "metrics.json", report)
    test = two_class(RUNS["test"][seed], np.float32)
    predictions = {"probs": test, "labels": LABELS, "predictions": test.argmax(axis=1)}
    runs.write_npz(run / "predictions.npz", predictions)
    arrays = {
        "rotate/90/probs": two_class(RUNS["rotate/90"][seed], np.float16),
        "digits/probs": two_class(RUNS["digits"][seed], np.float16),
        "digits/labels": np.array([0, 1]),
        "ood/uniform/probs": two_class(RUNS["ood/uniform"][seed], np.float16),
    }
    section = {"raw": {"accuracy": 0.5, "ece": ece, "selective": {"aurc": 0.4}}}
    shift = {
        "schema_version": 1,
        "settings": {"families": ["rotate", "digits"], "rotate": [90.0], "ood": ["uniform"]},
        "conventions": {"bins": 15},
        "maps": {},
        "sets": {
            "rotate/90": {"family": "rotate", "severity": 90.0, "n": 4, "checksum": "r90"}
            | {"probs": "rotate/90/probs"}
            | section,
            "digits": {"family": "digits", "severity": None, "n": 2, "checksum": "uci"}
            | {"probs": "digits/probs"}
            | section,
        },
        "ood": {"uniform": {"n": 2, "checksum": "u", "raw": {"msp": {"auroc": 0.5 + ece}}}},
    }
    for name, blob in runs.shift_files(shift, arrays):
        runs.write_atomic(run / name, blob)
    return run


def test_an_ensemble_of_two_made_up_runs_by_hand(tmp_path: Path):
    for seed, ece in ((0, 0.1), (1, 0.3)):
        made_up_run(tmp_path, seed, ece)
    data = shift_json(invoke(str(tmp_path), "--format", "json", "--shift"))
    # test set: p(1) averages to 0.8125, 0.3125, 0.4375, 0.5625 -> predictions 1, 0, 0, 1
    test = row(data, "hand (ensemble of 2)", "test", "ensemble")
    assert test["accuracy"]["mean"] == 0.75
    nll = -(math.log(0.8125) + math.log(0.6875) + math.log(0.4375) + math.log(0.5625)) / 4
    assert test["nll"]["mean"] == pytest.approx(nll, rel=1e-12)
    # squared errors 2 (1 - p_y)^2: 0.0703125, 0.1953125, 0.6328125, 0.3828125
    assert test["brier"]["mean"] == pytest.approx(0.3203125, rel=1e-12)
    # confidences 0.8125 (right), 0.6875 (right), 0.5625 twice (one right) in 15 bins
    assert test["ece"]["mean"] == pytest.approx((0.1875 + 0.3125 + 2 * 0.0625) / 4, rel=1e-12)
    rotated = row(data, "hand (ensemble of 2)", "rotate/90", "ensemble")
    assert rotated["accuracy"]["mean"] == 0.0  # 0.3125, 0.6875, 0.25, 0.375: all wrong
    nll = -(math.log(0.3125) + math.log(0.3125) + math.log(0.25) + math.log(0.375)) / 4
    assert rotated["nll"]["mean"] == pytest.approx(nll, rel=1e-12)
    digits = row(data, "hand (ensemble of 2)", "digits", "ensemble")
    assert digits["accuracy"]["mean"] == 1.0  # 0.1875 (label 0), 0.625 (label 1)
    assert digits["nll"]["mean"] == pytest.approx(-(math.log(0.8125) + math.log(0.625)) / 2)
    (msp,) = [r for r in data["ood"] if r["map"] == "ensemble" and r["score"] == "msp"]
    # in: 0.8125, 0.6875, 0.5625, 0.5625; out: 0.5, 0.625 -> 6 of 8 pairs ordered
    assert msp["metrics"]["auroc"]["mean"] == 0.75
    assert msp["metrics"]["fpr95"]["mean"] == 0.5  # every in kept: 0.625 >= 0.5625 passes
    seeds = row(data, "hand", "rotate/90")["ece"]  # the runs' own numbers, over seeds
    assert (seeds["n"], seeds["mean"]) == (2, pytest.approx(0.2))
    assert seeds["std"] == pytest.approx(math.sqrt(0.02))


# --------------------------------------------------------------------------- one member


def test_a_one_member_ensemble_is_the_run(root: Path):
    """Scored by the ensemble code, one run's stored probabilities give its own numbers.

    In distribution (predictions.npz, float32: 24 significant bits) every number agrees to
    1e-6: a probability is off by at most 6e-8 of itself, and the rebuilt top probability
    keeps confidences near 1 apart, so even the rankings agree.

    On a shifted set (float16: 11 significant bits) a probability is off by at most 4.9e-4
    of itself above 6.1e-5 and by 3e-8 below. So the accuracy is exact (no near-tie flips
    an argmax on these runs); Brier, ECE and smooth ECE move by at most a few times 4.9e-4
    (2e-3 allowed); the NLL by the bound :func:`nll_bound` computes image by image (a
    true-class probability stored as 0 costs up to log(3e-8 / 1e-12) = 10.3 nats). The
    numbers that read a ranking can move by whole images where rounding merges or swaps two
    confidences: accuracy at coverage c by 1 / (c n) per image (two allowed), AURC and E-AURC
    by about 1 / n per swap (2e-3 allowed), and the debiased CE, whose equal-mass bins follow
    the sorted confidences, by about 1 / n_bin = 0.05 per image moved between bins (1e-2
    allowed at n = 200; measured 8e-3).
    """
    for name in ("base", "mse_sig"):
        run = folder(root, name, 0)
        report = json.loads((run / "shift.json").read_text())
        own = json.loads((run / "metrics.json").read_text())["test"]
        test = shiftruns.read_test(run, own["accuracy"])
        n = test.labels.size
        mine = ensembles.scores(ensembles.average([test.probs]), test.labels, 10)
        for key in ("accuracy", "nll", "brier", "ece", "debiased_ce", "smooth_ece"):
            assert mine[key] == pytest.approx(own[key], abs=1e-6), (name, key)
        for key, value in report["sets"]["rotate/0"]["raw"]["selective"].items():
            assert mine[key] == pytest.approx(value, abs=1e-6), (name, key)
        arrays = shiftruns.read_arrays(run, shiftruns.read_shift(run))
        for key, entry in report["sets"].items():
            stored = arrays[entry["probs"]]
            mine = ensembles.scores(ensembles.average([stored]), test.labels, 10)
            raw = {**entry["raw"], **entry["raw"]["selective"]}
            assert mine["accuracy"] == raw["accuracy"], (name, key)
            assert abs(mine["nll"] - raw["nll"]) <= nll_bound(stored, test.labels), (name, key)
            tolerances = {"brier": 2e-3, "ece": 2e-3, "smooth_ece": 2e-3}
            tolerances |= {"aurc": 2e-3, "eaurc": 2e-3, "debiased_ce": 1e-2}
            tolerances |= {f"acc_at_{c}": 2 / (c / 100 * n) for c in (90, 95, 99)}
            for metric, tolerance in tolerances.items():
                assert abs(mine[metric] - raw[metric]) <= tolerance, (name, key, metric)


def nll_bound(stored: np.ndarray, labels: np.ndarray) -> float:
    """The most the NLL of float16 probabilities can differ from that of the exact ones."""
    p = stored[np.arange(labels.size), labels].astype(np.float64)
    normal = np.float16(6.104e-5)
    per_image = np.where(
        p >= normal,
        np.log1p(4.9e-4) * 1.01,  # relative error 2^-11, a hair of slack for the rebuilt top
        np.where(p > 0, np.log(np.maximum(p, 3e-8) / np.maximum(p - 3e-8, 1e-12)), 10.32),
    )
    return float(per_image.mean()) + 1e-12


# --------------------------------------------------------------------------- math


def test_restore_rebuilds_the_largest_probability_from_the_others():
    exact = np.array([[1 - 2e-4, 1e-4, 1e-4], [0.2, 0.3, 0.5]])
    stored = exact.astype(np.float16)
    assert stored[0, 0] == 1.0  # the nearest float16 to 0.9998: off by 2e-4
    restored = ensembles.restore(stored)
    assert restored[0, 0] == pytest.approx(1 - 2e-4, abs=1e-7)  # 1e-4 is held to 4.9e-4 of it
    np.testing.assert_allclose(restored.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    for bad in (np.array([[0.5, 0.2]]), np.array([[np.nan, 1.0]]), np.ones(3) / 3):
        with pytest.raises(ValueError):
            ensembles.restore(bad)


def test_risk_on_the_grid_averages_to_the_aurc():
    rng = np.random.default_rng(3)
    confidence = np.round(rng.random(200), 1)  # ties, as float16 storage makes them
    correct = rng.random(200) < confidence
    grid = np.arange(1, 201) / 200
    risk = ensembles.risk_on_grid(confidence, correct, grid)
    assert np.mean(risk) == pytest.approx(selective.aurc(confidence, correct), abs=1e-12)
    assert risk[-1] == pytest.approx(1 - np.mean(correct), abs=1e-12)


def test_the_ensemble_is_raw_probabilities_averaged():
    a, b = two_class([0.875, 0.25], np.float16), two_class([0.625, 0.5], np.float16)
    np.testing.assert_array_equal(ensembles.average([a, b])[:, 1], [0.75, 0.375])
    assert metrics.nll(ensembles.average([a]), np.array([1, 0])) == pytest.approx(
        -(math.log(0.875) + math.log(0.75)) / 2
    )


# --------------------------------------------------------------------------- figures, HTML


@pytest.mark.parametrize(
    ("fmt", "magic"), [("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<?xml")]
)
def test_the_shift_figures_are_written(root: Path, tmp_path: Path, fmt: str, magic: bytes):
    out = tmp_path / "figs"
    result = invoke(str(root), "--shift", "--plot", str(out), "--plot-format", fmt)
    assert result.exit_code == 0, result.output
    for name in ("shift_curves", "risk_coverage"):
        path = out / f"{name}.{fmt}"
        assert f"wrote {path}" in result.stderr
        assert path.read_bytes().startswith(magic), name
    plain = tmp_path / "plain"
    assert invoke(str(root), "--plot", str(plain)).exit_code == 0
    assert not (plain / "shift_curves.png").exists()


@pytest.mark.parametrize(("size", "inches"), [("column", 3.3), ("text", 7.0)])
def test_figure_size_lays_out_the_shift_figures_too(
    root: Path, tmp_path: Path, size: str, inches: float
):
    out = tmp_path / "figs"
    args = ["--shift", "--plot", str(out), "--plot-format", "svg", "--figure-size", size]
    assert invoke(str(root), *args).exit_code == 0
    for name in ("shift_curves", "risk_coverage"):
        svg = (out / f"{name}.svg").read_text()
        width = float(re.search(r'<svg[^>]* width="([0-9.]+)pt"', svg).group(1)) / 72
        assert width == pytest.approx(inches, abs=0.4), name  # the tight box adds a margin


class Cells(HTMLParser):
    """Every ``td`` with data attributes: its attributes and text; and the figure captions."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []
        self.captions: list[str] = []
        self._open: dict[str, str] | None = None
        self._caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k.removeprefix("data-"): v or "" for k, v in attrs if k.startswith("data-")}
        if tag == "td" and "set" in found:
            self._open = found | {"text": ""}
        self._caption = tag == "figcaption"

    def handle_data(self, text: str) -> None:
        if self._open is not None:
            self._open["text"] += text
        if self._caption:
            self.captions.append(text)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._open is not None:
            self.cells.append(self._open)
            self._open = None
        self._caption = False


def test_the_html_report_holds_the_shift_tables_and_captioned_figures(root: Path, tmp_path: Path):
    page = tmp_path / "page.html"
    result = invoke(str(root), "--shift", "--report", str(page), "--format", "json")
    data = shift_json(result)
    parser = Cells()
    parser.feed(page.read_text())
    ensemble = [c for c in parser.cells if c["map"] == "ensemble" and c["set"] == "rotate/90"]
    assert ensemble, "no ensemble cells"
    for cell in ensemble:
        value = row(data, cell["experiment"], "rotate/90", "ensemble")[cell["metric"]]["mean"]
        shown = f"{value:.4f}" if cell["metric"] in ("nll", "brier") else f"{100 * value:.2f}"
        assert cell["text"] == shown, cell
    captions = " ".join(parser.captions)
    assert "shift_curves.png: Accuracy and calibration under shift." in captions
    assert "risk_coverage.png: Risk-coverage on the unshifted test set" in captions
    assert page.read_text().count('src="data:image/png;base64,') == 7  # five + the two above


SHIFT_PROBE = """
<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(i => ({
    complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}));
  const cells = [...document.querySelectorAll("td[data-set]")].map(td => ({
    ...td.dataset, text: td.innerText}));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({images, cells});
  document.body.appendChild(out);
});
</script>
"""


def test_the_shift_page_renders_in_chromium_with_the_numbers_of_the_json(
    root: Path, tmp_path: Path
):
    chromium = require_tool("chromium", "the HTML report is checked in a real browser")
    page = tmp_path / "page.html"
    data = shift_json(invoke(str(root), "--shift", "--report", str(page), "--format", "json"))
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", SHIFT_PROBE + "</body>"))
    dom = _browse(chromium, probe.as_uri(), "--virtual-time-budget=10000", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert match, dom.stdout[-2000:]
    seen = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert len(seen["images"]) == 7
    assert all(i["complete"] and i["width"] > 100 for i in seen["images"])
    ood = {(o["label"], o["set"], o["map"], o["score"]): o["metrics"] for o in data["ood"]}
    sets = {(r["label"], r["set"], r["map"]): r["metrics"] for r in data["sets"]}
    assert len(seen["cells"]) > 100
    for cell in seen["cells"]:
        where = (cell["experiment"], cell["set"], cell["map"])
        found = ood[(*where, cell["score"])] if "score" in cell else sets[where]
        summary = found[cell["metric"]]
        digits = 4 if cell["metric"] in ("nll", "brier") else 2
        scale = 1 if digits == 4 else 100
        text = f"{scale * summary['mean']:.{digits}f}"
        if summary["n"] >= 2 and "ensemble" not in cell["map"]:
            text += f" ± {scale * summary['std']:.{digits}f}"
        assert cell["text"].strip() == text, cell
