"""Liveness across machines: heartbeats, the lease, pid reuse, and a fence for late owners.

A ``running`` folder whose heartbeat is older than the lease is dead wherever it ran (another
node killed hard, a stopped process); on this host a dead or reused pid is noticed at once.
"""

from __future__ import annotations

import calendar
import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnistexp.cli import main
from mnistexp.config.loading import load_config
from mnistexp.store import liveness, runs
from tests.conftest import TINY, tiny_sets
from tests.test_interrupts import epochs_written, history_rows, only_run, wait_for


def utc(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


class Ago(float):
    """A heartbeat ``seconds`` before the test runs (not before collection, minutes earlier)."""


def resolved(fields: dict) -> dict:
    return {k: utc(v) if isinstance(v, Ago) else v for k, v in fields.items()}


def fake_running(folder: Path, **fields) -> Path:
    """A run folder whose status.json says ``running`` with ``fields``."""
    folder.mkdir(parents=True)
    status = {"state": "running", "pid": 4242, "started": "2026-01-01T00:00:00+0000", **fields}
    (folder / "status.json").write_text(json.dumps(status))
    return folder


def tiny_run_folder(tiny: Path, root: Path) -> Path:
    return runs.run_dir(load_config(None, [*TINY, f"data.dir={tiny}"]), root)


ELSEWHERE = "node-that-is-not-this-one"


@pytest.mark.parametrize(
    ("fields", "state", "why"),
    [
        pytest.param({"host": ELSEWHERE, "heartbeat": Ago(5)}, "running", None, id="fresh"),
        pytest.param(
            {"host": ELSEWHERE, "heartbeat": Ago(600)}, "interrupted", "no heartbeat", id="stale"
        ),
        pytest.param(
            {"host": ELSEWHERE, "heartbeat": Ago(600), "lease_seconds": 3600},
            "running",
            None,
            id="the-owner-promised-a-longer-lease",
        ),
        pytest.param(
            {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": Ago(600)},
            "interrupted",
            "no heartbeat",
            id="a-live-pid-here-without-heartbeat",
        ),
        pytest.param(
            {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": -1},
            "interrupted",
            f"pid {os.getpid()} now belongs to another process",
            id="pid-reused",
        ),
        pytest.param(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "pid_start": liveness.process_start(os.getpid()),
                "heartbeat": Ago(1),
            },
            "running",
            None,
            id="this-very-process",
        ),
    ],
)
def test_a_running_status_is_judged_by_heartbeat_lease_and_pid(
    tmp_path: Path, fields: dict, state: str, why: str | None
) -> None:
    status = runs.read_status(fake_running(tmp_path / "r-0123abcd-s0", **resolved(fields)))
    assert status["state"] == state
    assert why is None or why in status["error"]


@pytest.mark.parametrize(("age", "state"), [(5, "running"), (600, "interrupted")])
def test_an_old_folder_without_heartbeat_from_another_host_ages_by_its_file(
    tmp_path: Path, age: float, state: str
) -> None:
    folder = fake_running(tmp_path / "r-0123abcd-s0", host=ELSEWHERE)
    then = time.time() - age
    os.utime(folder / "status.json", (then, then))
    assert runs.read_status(folder)["state"] == state


def test_the_lease_comes_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    folder = fake_running(tmp_path / "r-0123abcd-s0", host=ELSEWHERE, heartbeat=utc(60))
    assert runs.read_status(folder)["state"] == "running"  # default lease: 300 s
    monkeypatch.setenv("MNISTEXP_LEASE_SECONDS", "30")
    assert runs.read_status(folder)["state"] == "interrupted"
    assert "longer than the lease (30 s)" in runs.read_status(folder)["error"]


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf"])
def test_a_bad_lease_is_one_line_before_anything_is_written(
    tiny: Path, tmp_path: Path, monkeypatch, value: str
) -> None:
    monkeypatch.setenv("MNISTEXP_LEASE_SECONDS", value)
    root = tmp_path / "runs"
    result = CliRunner().invoke(main, ["train", *tiny_sets(tiny), "--runs-dir", str(root)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: MNISTEXP_LEASE_SECONDS = {value!r} is invalid: "
        "expected a number of seconds >= 1, e.g. 300"
    ]
    assert not root.exists()


def test_train_takes_over_a_run_whose_node_went_silent(tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    folder = tiny_run_folder(tiny, root)
    fake_running(folder, host=ELSEWHERE, heartbeat=utc(5))
    args = ["train", *tiny_sets(tiny), "--runs-dir", str(root), "--json"]
    alive = CliRunner().invoke(main, args)
    assert alive.exit_code == 0 and json.loads(alive.output)["skipped"] is True
    (folder / "status.json").write_text(
        json.dumps({"state": "running", "host": ELSEWHERE, "pid": 1, "heartbeat": utc(900)})
    )
    dry = CliRunner().invoke(main, ["sweep", *args[1:-1], "--dry-run"])
    assert "retrain (interrupted)" in dry.output
    taken = CliRunner().invoke(main, args)
    assert taken.exit_code == 0, taken.output
    assert json.loads(taken.output)["state"] == "completed"
    assert runs.read_status(folder)["host"] == socket.gethostname()


def test_a_finished_run_keeps_its_last_heartbeat(tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    CliRunner().invoke(main, ["train", *tiny_sets(tiny), "--runs-dir", str(root)])
    status = json.loads((only_run(root) / "status.json").read_text())
    assert status["state"] == "completed"
    assert abs(liveness.parse_utc(status["heartbeat"]) - time.time()) < 60
    assert status["pid_start"] == liveness.process_start(os.getpid())


def test_the_heartbeat_thread_beats_at_its_interval_and_stops() -> None:
    beats: list[float] = []
    heart = liveness.Heartbeat(lambda: beats.append(time.time()) is None, 0.05)
    heart.start()
    wait_for(lambda: len(beats) >= 3, timeout=5)
    heart.stop()
    time.sleep(0.2)
    settled = len(beats)
    time.sleep(0.2)
    assert len(beats) == settled
    assert liveness.beat_interval(300) == 60 and liveness.beat_interval(2) == 0.5


@pytest.fixture
def short_lease(monkeypatch) -> float:
    """A lease of 2 s (heartbeat every 0.5 s) for this process and the ones it launches;
    requested before ``launch`` so the launched processes inherit it."""
    monkeypatch.setenv("MNISTEXP_LEASE_SECONDS", "2")
    return 2.0


def heartbeat_of(folder: Path) -> str:
    return json.loads((folder / "status.json").read_text())["heartbeat"]


def test_a_stopped_process_loses_its_run_and_cannot_touch_it_afterwards(
    short_lease, launch, tiny: Path, tmp_path: Path
) -> None:
    root = tmp_path / "runs"
    args = [*tiny_sets(tiny), "--set", "train.epochs=2000", "--runs-dir", str(root)]
    first = launch("train", *args)
    try:
        wait_for(lambda: epochs_written(root) >= 1)
        folder = only_run(root)
        beat = heartbeat_of(folder)
        wait_for(lambda: heartbeat_of(folder) != beat, timeout=10)  # refreshed while it runs
        first.send_signal(signal.SIGSTOP)  # alive, same pid, but silent
        assert runs.read_status(folder)["state"] == "running"
        wait_for(lambda: runs.read_status(folder)["state"] == "interrupted", timeout=15)
        assert "no heartbeat" in runs.read_status(folder)["error"]

        second = launch("train", *args)  # the next train takes the folder over
        try:
            # (the folder is briefly absent while the takeover swaps it)
            wait_for(lambda: (runs.read_status(folder) or {}).get("pid") == second.pid)
            wait_for(lambda: epochs_written(root) >= 2)
            first.send_signal(signal.SIGCONT)  # the late owner wakes up
            output, _ = first.communicate(timeout=30)
            assert first.returncode == 1, output
            assert "another process took this run over" in output
            status = runs.read_status(folder)
            assert (status["state"], status["pid"]) == ("running", second.pid)
        finally:
            second.kill()
            second.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGCONT)
            first.kill()
            first.communicate(timeout=30)


def test_utc_heartbeats_read_back() -> None:
    now = liveness.utc_now()
    assert abs(liveness.parse_utc(now) - calendar.timegm(time.gmtime())) <= 1
    assert liveness.parse_utc("yesterday") is None and liveness.parse_utc(None) is None


def stop_once_in(method: str, after_rows: int) -> str:
    """A prelude that makes the launched process SIGSTOP itself once, in ``Run.<method>``
    right after its ownership check passed and before it writes (the worst moment), once
    ``after_rows`` epochs are in its history."""
    return (
        "import os, signal, sys\n"
        "from mnistexp.store import runs\n"
        "_check = runs.Run._check_owned\n"
        "def _stop_once(self):\n"
        "    _check(self)\n"
        f"    if sys._getframe(1).f_code.co_name == {method!r} and len(self.history) >= "
        f"{after_rows} and not getattr(self, '_stopped_once', False):\n"
        "        self._stopped_once = True\n"
        "        os.kill(os.getpid(), signal.SIGSTOP)\n"
        "runs.Run._check_owned = _stop_once\n"
    )


def is_stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return stat.rpartition(b")")[2].split()[0] in (b"T", b"t")


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Each file's inode, modification time and bytes: a replaced file differs even when the
    late owner would write the same bytes (same seed, same config)."""
    files = sorted(folder.iterdir())
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in files}


@pytest.mark.parametrize(
    ("method", "after_rows"),
    [
        pytest.param("add_epoch", 1, id="history.csv"),
        pytest.param("write_results", 4, id="metrics-predictions-model"),
    ],
)
def test_an_owner_stopped_between_its_check_and_its_write_changes_nothing_after_a_takeover(
    short_lease, launch, tiny: Path, tmp_path: Path, method: str, after_rows: int
) -> None:
    root = tmp_path / "runs"
    args = [*tiny_sets(tiny), "--set", "train.epochs=4", "--runs-dir", str(root)]
    first = launch("train", *args, prelude=stop_once_in(method, after_rows))
    try:
        wait_for(lambda: first.poll() is None and is_stopped(first.pid))
        folder = only_run(root)
        wait_for(lambda: runs.read_status(folder)["state"] == "interrupted", timeout=15)
        second = launch("train", *args)  # takes the folder over and completes
        output, _ = second.communicate(timeout=120)
        assert second.returncode == 0, output
        done = snapshot(folder)
        first.send_signal(signal.SIGCONT)  # the late owner resumes right before its write
        output, _ = first.communicate(timeout=60)
        assert first.returncode == 1, output
        assert "another process took this run over" in output
        assert snapshot(folder) == done
        status = runs.read_status(folder)
        assert (status["state"], status["epochs_done"]) == ("completed", 4)
        assert len(history_rows(folder)) == 4
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGCONT)
            first.kill()
            first.communicate(timeout=30)


FUTURE = "2999-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        pytest.param({"host": ELSEWHERE, "heartbeat": FUTURE}, "interrupted", id="year-2999"),
        pytest.param({"host": ELSEWHERE, "heartbeat": Ago(-100)}, "running", id="within-lease"),
        pytest.param(
            {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": FUTURE},
            "interrupted",
            id="year-2999-from-a-live-pid-here",
        ),
    ],
)
def test_a_heartbeat_more_than_a_lease_ahead_is_dead(
    tmp_path: Path, fields: dict, state: str
) -> None:
    status = runs.read_status(fake_running(tmp_path / "r-0123abcd-s0", **resolved(fields)))
    assert status["state"] == state
    if state == "interrupted":
        assert "ahead of this host's clock" in status["error"]


@pytest.mark.parametrize("command", ["train", "force", "sweep", "compare"])
def test_every_command_reclaims_a_run_whose_heartbeat_is_in_the_future(
    tiny: Path, tmp_path: Path, command: str
) -> None:
    root = tmp_path / "runs"
    folder = tiny_run_folder(tiny, root)
    fake_running(folder, host=ELSEWHERE, heartbeat=FUTURE)
    args = [*tiny_sets(tiny), "--runs-dir", str(root)]
    if command == "compare":
        result = CliRunner().invoke(main, ["compare", "--runs-dir", str(root)])
        assert "still running" not in result.output
        assert "interrupted (heartbeat" in result.output, result.output
        return
    argv = {
        "train": ["train", *args],
        "force": ["train", *args, "--force"],
        "sweep": ["sweep", *args, "--no-progress"],
    }[command]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    status = runs.read_status(folder)
    assert (status["state"], status["host"]) == ("completed", socket.gethostname())
