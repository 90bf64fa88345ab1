"""The run-folder contract's helpers: ids, atomic writes, status, claiming, listing."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mnistexp import runs


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
