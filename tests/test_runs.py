"""The run-folder contract's helpers: ids, atomic writes, status, claiming, listing."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mnistexp.store import runs


def test_run_id_is_name_hash8_seed():
    assert runs.run_id("baseline", "f1d832ef" + "0" * 56, 3) == "baseline-f1d832ef-s3"


def test_only_run_like_folders_are_listed(tmp_path: Path):
    (tmp_path / "a-12345678-s0").mkdir()
    (tmp_path / "a-12345678-s0" / "status.json").write_text("{}")
    (tmp_path / "crashed-early").mkdir()
    (tmp_path / "crashed-early" / "config.yaml").write_text("seed: 0\n")
    (tmp_path / "plots").mkdir()  # `compare --plot runs/plots` puts figures in the root
    (tmp_path / "plots" / "reliability.png").write_bytes(b"\x89PNG")
    (tmp_path / ".a-12345678-s0.old-1-2").mkdir()  # a folder being moved aside
    names = [p.name for p in runs.iter_run_folders(tmp_path)]
    assert names == ["a-12345678-s0", "crashed-early"]


def test_claim_is_exclusive_and_reports_the_existing_state(tmp_path: Path):
    first = runs.claim(tmp_path, "x-1-s0")
    assert first.run is not None
    second = runs.claim(tmp_path, "x-1-s0")
    assert second.run is None and second.existing == "running"  # this process is alive
    first.run.finish("completed")
    assert runs.claim(tmp_path, "x-1-s0").existing == "completed"
    assert runs.claim(tmp_path, "x-1-s0", force=True).run is not None


def test_running_status_of_a_dead_process_reads_as_interrupted(tmp_path: Path):
    folder = tmp_path / "r"
    folder.mkdir()
    dead = max(os.getpid(), 2) + 10_000_000  # beyond pid_max: no such process
    status = {"state": "running", "pid": dead, "host": os.uname().nodename}
    (folder / "status.json").write_text(json.dumps(status))
    assert runs.read_status(folder)["state"] == "interrupted"


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path):
    runs.write_json(tmp_path / "m.json", {"a": 1})
    runs.write_json(tmp_path / "m.json", {"a": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 2}


def test_a_fresh_claim_moved_by_a_late_forcing_process_is_put_back(tmp_path: Path):
    # Process B judged the completed folder replaceable, then process A replaced it with a
    # fresh claim before B's rename: B must not steal A's folder.
    old = runs.claim(tmp_path, "x-1-s0").run
    old.finish("completed")
    judged = runs._identity(old.path)  # what B saw when it judged the folder
    runs._remove(runs._move_aside(old.path, judged))  # A moves it aside and deletes it ...
    fresh = runs.claim(tmp_path, "x-1-s0").run  # ... and claims afresh
    (fresh.path / "marker").write_text("A")
    assert runs._move_aside(fresh.path, judged) is None  # B's late move: not the one judged
    assert (tmp_path / "x-1-s0" / "marker").read_text() == "A"
    assert [p.name for p in tmp_path.iterdir()] == ["x-1-s0"]


# --------------------------------------------------------------------------- every state

import socket  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from mnistexp.cli import main  # noqa: E402
from tests.conftest import tiny_sets  # noqa: E402


def _status(doc: object):
    def make(folder: Path) -> None:
        folder.mkdir(exist_ok=True)
        (folder / "status.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))

    return make


def _claimed_then_killed(folder: Path) -> None:
    folder.mkdir()  # what a kill -9 between the claim and the first status left (old versions)


def _file(folder: Path) -> None:
    folder.write_text("not a folder\n")


def _symlink(folder: Path) -> None:
    target = folder.parent.parent / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    folder.symlink_to(target)


def _here(state: str, pid: int) -> dict:
    return {"state": state, "pid": pid, "host": socket.gethostname()}


# (id, make the folder, state every command reads, does a plain train/sweep train it?)
FOLDER_STATES = [
    ("no-status", _claimed_then_killed, "unreadable", True),
    ("empty-status", _status(""), "unreadable", True),
    ("truncated-status", _status('{"state": "runn'), "unreadable", True),
    ("unknown-state", _status({"state": "paused"}), "unreadable", True),
    ("list-status", _status("[1]"), "unreadable", True),
    ("deep-status", _status("[" * 50_000 + "]" * 50_000), "unreadable", True),
    ("plain-file", _file, "unreadable", True),
    ("symlink", _symlink, "unreadable", True),
    ("dead-running", _status(_here("running", 2**22 + 12345)), "interrupted", True),
    ("interrupted", _status({"state": "interrupted"}), "interrupted", True),
    ("failed", _status({"state": "failed", "error": "boom"}), "failed", False),
    ("diverged", _status({"state": "diverged", "error": "NaN"}), "diverged", False),
    ("live-running", _status(_here("running", os.getpid())), "running", False),
]


@pytest.mark.parametrize(
    ("make", "state", "trains"), [pytest.param(*row[1:], id=row[0]) for row in FOLDER_STATES]
)
def test_every_command_reads_a_folder_state_alike(tiny: Path, tmp_path: Path, make, state, trains):
    root = tmp_path / "runs"
    root.mkdir()
    args = [*tiny_sets(tiny), "--runs-dir", str(root)]
    dry = CliRunner().invoke(main, ["sweep", *args, "--dry-run"])
    (line,) = [ln for ln in dry.output.splitlines() if ln.startswith("train ")]
    folder = root / line.split()[1]
    make(folder)
    assert runs.read_status(folder)["state"] == state

    dry = CliRunner().invoke(main, ["sweep", *args, "--dry-run"])
    plan = dry.output.splitlines()[0]
    assert plan.startswith(f"retrain ({state})" if trains else "skip ("), plan
    if state != "running":
        shown = CliRunner().invoke(main, ["compare", str(root)])
        assert "Traceback" not in shown.output
        warning = f"warning: {folder}: {state}" if state != "diverged" else f"warning: {folder}"
        assert warning in shown.output, shown.output  # (this diverged one has no config.yaml)

    result = CliRunner().invoke(main, ["train", *args, "--no-progress", "--json"])
    outcome = json.loads(result.stdout)
    assert (outcome["skipped"], outcome["state"]) == (
        (False, "completed") if trains else (True, state)
    ), result.output
    if trains:  # replaced, and nothing hidden left behind (a symlink's target is untouched)
        assert sorted(p.name for p in root.iterdir()) == [folder.name]
        assert runs.read_status(folder)["state"] == "completed"
    if make is _symlink:
        assert (tmp_path / "elsewhere" / "keep.txt").read_text() == "x"


def test_retry_failed_retrains_a_failed_folder_and_force_leaves_nothing_hidden(
    tiny: Path, tmp_path: Path
):
    root = tmp_path / "runs"
    args = ["train", *tiny_sets(tiny), "--runs-dir", str(root), "--no-progress", "--json"]
    first = json.loads(CliRunner().invoke(main, args).stdout)
    folder = Path(first["run_dir"])
    (folder / "status.json").write_text('{"state": "failed", "error": "boom"}')
    again = json.loads(CliRunner().invoke(main, [*args, "--retry-failed"]).stdout)
    assert (again["skipped"], again["state"]) == (False, "completed")
    for _ in range(2):
        forced = json.loads(CliRunner().invoke(main, [*args, "--force"]).stdout)
        assert (forced["skipped"], forced["state"]) == (False, "completed")
    assert [p.name for p in root.iterdir()] == [folder.name]


def test_leftovers_of_killed_claims_are_swept_when_old(tmp_path: Path):
    stale = tmp_path / ".x-12345678-s0.claim-1-2"
    fresh = tmp_path / ".x-12345678-s0.old-3-4"
    for folder in (stale, fresh):
        folder.mkdir()
    old = time.time() - 3600
    os.utime(stale, (old, old))
    claimed = runs.claim(tmp_path, "x-12345678-s0")
    assert claimed.run is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name, "x-12345678-s0"]


def test_run_files_get_the_umask_not_0600(tiny: Path, tmp_path: Path):
    root = tmp_path / "runs"
    old = os.umask(0o027)
    try:
        result = CliRunner().invoke(
            main, ["train", *tiny_sets(tiny), "--runs-dir", str(root), "--json"]
        )
        emitted = tmp_path / "cmds" / "sweep.txt"
        CliRunner().invoke(main, ["sweep", *tiny_sets(tiny), "--emit", "slurm-array", str(emitted)])
    finally:
        os.umask(old)
    folder = Path(json.loads(result.stdout)["run_dir"])
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert set(modes.values()) == {0o640}, modes
    assert emitted.stat().st_mode & 0o777 == 0o640
