"""Run folders and teachers whose files were replaced by something hostile: a FIFO (an open
for reading would wait for a writer forever), a link to /dev/zero (endless bytes). Each
command finishes, with one line about that folder, never a hang or a traceback.

The commands run as real processes with a timeout, so a regression fails instead of hanging
the suite.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnistexp.cli import main
from mnistexp.store import runs
from tests.conftest import tiny_sets

TIMEOUT_S = 60


def finish(process: subprocess.Popen) -> tuple[int, str]:
    """Exit code and output of ``process``; fails the test (killing it) if it hangs."""
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"the command hung for {TIMEOUT_S} s")
    return process.returncode, output


def hostile(path: Path, kind: str) -> None:
    """Replace the file ``path`` by a FIFO or by a symbolic link to /dev/zero."""
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


@pytest.fixture
def two_runs(tiny: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """A runs folder with two completed tiny runs (seeds 0 and 1), and the options that
    train them."""
    root = tmp_path / "runs"
    args = [*tiny_sets(tiny), "--runs-dir", str(root)]
    for seed in ("0", "1"):
        result = CliRunner().invoke(main, ["train", *args, "--seed", seed])
        assert result.exit_code == 0, result.output
    return root, args


def damaged_run(root: Path) -> Path:
    return sorted(runs.iter_run_folders(root))[-1]


KINDS = {"fifo": "fifo", "zero": "dev-zero"}
FILES = ["status.json", "metrics.json", "config.json"]


@pytest.fixture(
    params=[(name, kind) for name in FILES for kind in KINDS],
    ids=[f"{kind_id}-{name}" for name in FILES for kind_id in KINDS.values()],
)
def damaged(request, two_runs) -> tuple[Path, list[str], Path, str]:
    """(runs root, train args, the damaged folder, the file replaced) after one run's file is
    replaced by a FIFO or a link to /dev/zero."""
    name, kind = request.param
    root, args = two_runs
    folder = damaged_run(root)
    hostile(folder / name, kind)
    return root, args, folder, name


def test_compare_warns_about_that_folder_only(
    damaged, launch: Callable[..., subprocess.Popen]
) -> None:
    root, _, folder, name = damaged
    code, output = finish(launch("compare", "--runs-dir", str(root), "--format", "csv"))
    assert code == 0, output
    assert "Traceback" not in output and "MemoryError" not in output
    warnings = [
        line
        for line in output.splitlines()
        if line.startswith("warning:")
        and "temperature fit sits on the bound" not in line  # every tiny run's (issue 24)
    ]
    assert all(folder.name in line for line in warnings), warnings
    if name != "config.json":  # a config.json that cannot be read falls back to config.yaml
        assert len(warnings) == 1 and "not a regular file" in warnings[0], warnings


def test_train_and_dry_run_finish_on_a_hostile_run_file(
    damaged, launch: Callable[..., subprocess.Popen]
) -> None:
    _, args, folder, name = damaged
    code, output = finish(launch("sweep", *args, "--seeds", "0-1", "--dry-run"))
    assert code == 0 and "Traceback" not in output, output
    expected = "retrain (unreadable)" if name == "status.json" else "skip (completed)"
    assert expected in output, output
    code, output = finish(launch("train", *args, "--seed", "1"))
    assert code == 0 and "Traceback" not in output, output
    assert runs.read_status(folder)["state"] == "completed"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["status.json", "model.npz"])
def test_a_hostile_teacher_file_is_one_line_and_exit_2(
    two_runs, launch: Callable[..., subprocess.Popen], tmp_path: Path, name: str, kind: str
) -> None:
    root, args = two_runs
    teacher = damaged_run(root)
    hostile(teacher / name, kind)
    students = tmp_path / "students"
    distill = ["--set", "targets.scheme=distill", "--set", f"targets.teacher={teacher}"]
    code, output = finish(launch("train", *args[:-2], "--runs-dir", str(students), *distill))
    assert code == 2, output
    assert output.count("\n") == 1 and output.startswith("Error: targets.teacher = "), output
    assert not students.exists()


# --------------------------------------------------------------------------- terminal text

EVIL = "\x1b]0;owned\x07\x1b[2J\r\nsplit\u202e"
"""Sets the window title, rings the bell, clears the screen, starts a new row, reverses text."""


@pytest.fixture
def evil_runs(two_runs) -> Path:
    """Two runs whose config.json (what compare reads) carries control characters in the run
    name and in a config string that differs between them."""
    root, _ = two_runs
    for folder in runs.iter_run_folders(root):
        config = json.loads((folder / "config.json").read_text())
        config["name"] = f"evil{EVIL}{config['seed']}"
        config["model"]["activation"] = f"relu{EVIL}{config['seed']}"
        (folder / "config.json").write_text(json.dumps(config))
    return root


FORMATS = ["table", "markdown", "csv", "latex", "json", "html"]


def control_characters(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf") and c != "\n"]


def test_control_characters_never_reach_the_output_raw(evil_runs: Path, tmp_path: Path) -> None:
    for fmt in FORMATS:  # one pair of runs for every format: training them is the cost
        args = ["compare", "--runs-dir", str(evil_runs)]
        html = tmp_path / "report.html"
        args += ["--report", str(html)] if fmt == "html" else ["--format", fmt]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, (fmt, result.output)
        text = html.read_text() if fmt == "html" else result.stdout
        assert not control_characters(text), fmt
        assert not control_characters(result.stderr), fmt
        if fmt == "csv":
            rows = list(csv.reader(io.StringIO(text)))
            assert len(rows) == 3 and len({len(row) for row in rows}) == 1, rows
        if fmt in ("table", "markdown", "latex"):  # no row is split: name and seed agree
            named = [line for line in text.splitlines() if "evil" in line]
            assert named and all("split" in line for line in named), (fmt, named)
