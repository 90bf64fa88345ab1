"""Crashes and interruptions never lose a run: signals, kill -9, checkpoints, full disks.

Real subprocesses where the behaviour is about processes (signals, a killed pid), in-process
runs where a failure has to land at an exact point (an interrupt after epoch 3, a write that
fails on predictions.npz).
"""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from mnistexp.cli import main
from mnistexp.config.loading import load_config
from mnistexp.core.errors import RunError
from mnistexp.orchestration.experiment import run_experiment
from mnistexp.store import runs
from tests.conftest import TINY, run_states, tiny_sets

LONG = ["--set", "train.epochs=2000"]  # minutes of training: always stopped by the test


def tiny_config(tiny: Path, *overrides: str):
    return load_config(None, [*TINY, f"data.dir={tiny}", *overrides])


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def only_run(root: Path) -> Path:
    (folder,) = runs.iter_run_folders(root)
    return folder


def history_rows(folder: Path) -> list[dict[str, str]]:
    try:
        with open(folder / "history.csv", newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        return []


def epochs_written(root: Path) -> int:
    folders = list(runs.iter_run_folders(root))
    return len(history_rows(folders[0])) if folders else 0


def assert_every_file_whole(folder: Path) -> None:
    """Each file parses completely and no temporary file of an interrupted write is left."""
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]
    status = json.loads((folder / "status.json").read_text())
    trained = status.get("epochs_done", 1) > 0  # a run stopped right after its claim has
    if trained or (folder / "env.json").exists():  # only status.json
        json.loads((folder / "env.json").read_text())
    if trained or (folder / "config.yaml").exists():
        assert yaml.safe_load((folder / "config.yaml").read_text())["train"]["epochs"] >= 1
    rows = history_rows(folder)  # none if stopped before its first epoch ended
    assert len(rows) == status.get("epochs_done", len(rows))
    assert all(len(r) == len(rows[0]) and None not in r.values() for r in rows)
    assert [int(r["epoch"]) for r in rows] == list(range(1, len(rows) + 1))


# --------------------------------------------------------------------------- signals


@pytest.mark.parametrize(
    ("sig", "code", "reason"),
    [
        (signal.SIGINT, 130, "Ctrl-C (SIGINT)"),
        (signal.SIGTERM, 143, "SIGTERM"),
    ],
)
def test_a_signal_marks_the_run_interrupted_with_its_epochs(
    launch, tiny: Path, tmp_path: Path, sig, code: int, reason: str
) -> None:
    root = tmp_path / "runs"
    proc = launch("train", *tiny_sets(tiny), *LONG, "--runs-dir", str(root))
    wait_for(lambda: epochs_written(root) >= 3)
    proc.send_signal(sig)
    out = output_or_stacks(proc, timeout=30)
    assert proc.returncode == code, out
    folder = only_run(root)
    status = json.loads((folder / "status.json").read_text())
    assert (status["state"], status["error"]) == ("interrupted", reason)
    assert status["epochs_done"] == len(history_rows(folder)) >= 3  # the history is kept
    assert_every_file_whole(folder)
    assert "Traceback" not in out
    assert f"interrupted after {status['epochs_done']} finished epoch(s)" in out


def output_or_stacks(proc: subprocess.Popen, timeout: float) -> str:
    """The process's output once it ends; if it has not ended within ``timeout`` seconds, a
    failure showing where it hangs: SIGABRT makes Python's faulthandler (enabled by the
    ``launch`` fixture) print every thread's stack before the process dies."""
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        stacks = proc.communicate(timeout=30)[0]
        pytest.fail(f"still running after {timeout} s; its threads were at:\n{stacks}")


def press_ctrl_c(proc: subprocess.Popen, times: int, gap: float) -> None:
    """Ctrl-C at a terminal: SIGINT to the whole process group (the command and its sweep
    workers), ``times`` times, ``gap`` seconds apart, while the process lives."""
    for _ in range(times):
        if proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(gap)


def test_a_second_ctrl_c_to_train_still_ends_interrupted_with_130(
    launch, tiny: Path, tmp_path: Path
) -> None:
    """Ctrl-C pressed again while the first is being recorded: the run still ends marked
    interrupted, with the first Ctrl-C's exit code (not click's Abort, exit 1)."""
    root = tmp_path / "runs"
    proc = launch("train", *tiny_sets(tiny), *LONG, "--runs-dir", str(root),
                  start_new_session=True)  # fmt: skip
    wait_for(lambda: epochs_written(root) >= 3)
    press_ctrl_c(proc, times=200, gap=0.002)  # the first, then more through its cleanup
    out = output_or_stacks(proc, timeout=30)
    assert proc.returncode == 130, out
    folder = only_run(root)
    status = json.loads((folder / "status.json").read_text())
    assert (status["state"], status["error"]) == ("interrupted", "Ctrl-C (SIGINT)"), out
    assert_every_file_whole(folder)
    assert "Traceback" not in out and "Aborted" not in out
    assert f"interrupted after {status['epochs_done']} finished epoch(s)" in out


def test_a_double_ctrl_c_to_a_parallel_sweep_counts_its_interrupted_runs(
    launch, tiny: Path, tmp_path: Path
) -> None:
    """Two workers stopped, three runs never started: the summary says so, as the folders do."""
    root = tmp_path / "runs"
    proc = launch(
        "sweep", *tiny_sets(tiny), *LONG, "--grid", "train.lr=0.01,0.02,0.03,0.04,0.05",
        "--runs-dir", str(root), "-j", "2", "--no-progress", start_new_session=True,
    )  # fmt: skip
    wait_for(lambda: list(run_states(root).values()) == ["running", "running"])
    press_ctrl_c(proc, times=2, gap=0.05)
    out = output_or_stacks(proc, timeout=60)
    assert proc.returncode == 130, out
    assert sorted(run_states(root).values()) == ["interrupted", "interrupted"], out
    assert "5 runs: 0 done, 0 skipped, 0 failed, 0 diverged, 2 interrupted, 3 not run" in out
    assert "Traceback" not in out and "Aborted" not in out


def test_a_run_whose_worker_stopped_unheard_is_counted_as_its_folder_says(
    tiny: Path, tmp_path: Path
) -> None:
    """If the wait for a stopped worker ends first, its folder tells what happened, provided
    that worker wrote it (a folder of another process is not this sweep's run)."""
    from mnistexp.orchestration import workers

    root = tmp_path / "runs"
    cfg = tiny_config(tiny)
    run_experiment(cfg, runs_dir=root)  # as if by a worker with this process's pid
    folder = runs.run_dir(cfg, root)
    job = workers._Job(0, cfg, folder, str(root), None, force=False, retry_failed=False)
    (outcome,) = workers._left_by({os.getpid()}, [job]).values()
    assert (outcome.state, outcome.run_dir) == ("completed", runs.run_dir(cfg, root))
    assert workers._left_by({os.getpid() + 1}, [job]) == {}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigterm_to_a_sweep_marks_its_runs_interrupted_and_exits_143(
    launch, tiny: Path, tmp_path: Path, jobs
):
    root = tmp_path / "runs"
    proc = launch(
        "sweep",
        *tiny_sets(tiny),
        *LONG,
        "--grid",
        "train.lr=0.05,0.1",
        "--runs-dir",
        str(root),
        "-j",
        jobs,
    )
    wait_for(lambda: "running" in run_states(root).values() and epochs_written(root) >= 2)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 143, out
    assert "interrupted" in run_states(root).values(), out
    assert "running" not in run_states(root).values() and "Traceback" not in out
    folders = list(runs.iter_run_folders(root))
    for folder in folders:
        assert_every_file_whole(folder)
    assert sum(runs.read_status(f)["epochs_done"] for f in folders) >= 2


def test_kill_9_leaves_running_with_a_dead_pid_that_every_command_reads_as_interrupted(
    launch, tiny: Path, tmp_path: Path
) -> None:
    root = tmp_path / "runs"
    args = [*tiny_sets(tiny), *LONG, "--runs-dir", str(root)]
    proc = launch("train", *args)
    wait_for(lambda: epochs_written(root) >= 2)
    proc.kill()
    proc.communicate(timeout=30)
    folder = only_run(root)
    raw = json.loads((folder / "status.json").read_text())
    assert (raw["state"], raw["pid"]) == ("running", proc.pid)  # nobody could update it
    assert run_states(root) == {folder.name: "interrupted"}

    dry = CliRunner().invoke(main, ["sweep", *args, "--dry-run"])
    assert "retrain (interrupted)" in dry.output, dry.output
    shown = CliRunner().invoke(main, ["compare", str(folder)])
    assert "interrupted" in shown.output and "Traceback" not in shown.output

    again = launch("train", *args)  # takes the folder over instead of leaving it alone
    # (read_status: the folder is briefly absent while it is moved aside and claimed afresh)
    wait_for(lambda: (runs.read_status(folder) or {}).get("pid") == again.pid)
    again.kill()
    again.communicate(timeout=30)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its new parent) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def sweep_with_two_running_workers(launch, tiny: Path, root: Path) -> subprocess.Popen:
    """A real ``sweep -j 2`` of two long runs into ``root``, returned once both are running."""
    proc = launch(
        "sweep", *tiny_sets(tiny), *LONG, "--grid", "train.lr=0.05,0.1", "--runs-dir", str(root),
        "-j", "2", "--no-progress",
    )  # fmt: skip
    wait_for(lambda: list(run_states(root).values()) == ["running", "running"])
    return proc


def test_kill_9_of_a_sweep_parent_makes_its_workers_mark_their_runs_and_exit(
    launch, tiny: Path, tmp_path: Path
):
    root = tmp_path / "runs"
    proc = sweep_with_two_running_workers(launch, tiny, root)
    workers = [
        json.loads((f / "status.json").read_text())["pid"] for f in runs.iter_run_folders(root)
    ]
    assert proc.pid not in workers and all(pid_alive(pid) for pid in workers)
    proc.kill()  # kill -9: the parent cannot tell anyone
    proc.communicate(timeout=30)
    started = time.time()
    wait_for(lambda: not any(pid_alive(pid) for pid in workers), timeout=10)
    assert time.time() - started < 5, time.time() - started
    for folder in runs.iter_run_folders(root):  # each worker marked its own run before exiting
        raw = json.loads((folder / "status.json").read_text())
        assert (raw["state"], raw["error"]) == ("interrupted", "the sweep's parent process died")
        assert_every_file_whole(folder)


def test_a_worker_whose_parent_is_alive_ignores_the_parent_signal(launch, tiny: Path, tmp_path):
    """PR_SET_PDEATHSIG also fires when the parent's thread that started a worker ends: a
    worker whose parent is still its parent goes on training."""
    root = tmp_path / "runs"
    proc = sweep_with_two_running_workers(launch, tiny, root)
    folder = next(iter(runs.iter_run_folders(root)))
    pid = json.loads((folder / "status.json").read_text())["pid"]
    done = epochs_written(root)
    os.kill(pid, signal.SIGUSR1)
    wait_for(lambda: len(history_rows(folder)) >= done + 3)
    assert pid_alive(pid) and runs.read_status(folder)["state"] == "running"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)


PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(child.pid, flush=True)
child.wait()
"""
ORPHAN = """
import os, time
from mnistexp.orchestration import workers
workers._die_with_parent = lambda signum: None  # no PR_SET_PDEATHSIG: the polling must do it
workers._watch_parent(os.getppid())
while True:
    time.sleep(0.1)
"""


def test_without_pdeathsig_the_polling_thread_still_ends_an_orphan():
    """The portable fallback: a worker that gets no signal from the kernel notices by polling
    os.getppid() that its parent died, and exits within about a second."""
    import subprocess
    import sys

    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, ORPHAN], stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    time.sleep(1.0)  # the child is watching
    assert pid_alive(child)
    parent.kill()
    parent.communicate(timeout=30)
    started = time.time()
    wait_for(lambda: not pid_alive(child), timeout=10)
    assert time.time() - started < 5  # polled twice a second; generous for a busy machine


def test_kill_9_between_the_claim_and_the_first_status_is_retrained_without_flags(
    tiny: Path, tmp_path: Path
):
    """What older versions left (a folder without status.json), and what a claim staged under
    a hidden name leaves now: the next train takes the run over, and nothing accumulates."""
    cfg = tiny_config(tiny)
    root = tmp_path / "runs"
    folder = runs.run_dir(cfg, root)
    folder.mkdir(parents=True)  # an old-style claim whose process died before writing anything
    staged = root / f".{folder.name}.claim-99999999-1"  # a staged claim of a killed process
    staged.mkdir()
    (staged / "status.json").write_text('{"state": "running"}')
    old = time.time() - 3600
    os.utime(staged, (old, old))
    dry = CliRunner().invoke(
        main, ["sweep", *tiny_sets(tiny), "--runs-dir", str(root), "--dry-run"]
    )
    assert "retrain (unreadable)" in dry.output, dry.output
    outcome = run_experiment(cfg, runs_dir=root)
    assert outcome.state == "completed" and not outcome.skipped
    assert sorted(p.name for p in root.iterdir()) == [folder.name]


# --------------------------------------------------------------------------- checkpoints


def interrupt_after_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """Make the next run raise KeyboardInterrupt once epoch ``epoch`` is in its history."""
    add_epoch = runs.Run.add_epoch

    def add_then_stop(self: runs.Run, row: dict) -> None:
        add_epoch(self, row)
        if row["epoch"] == epoch:
            monkeypatch.setattr(runs.Run, "add_epoch", add_epoch)
            raise KeyboardInterrupt

    monkeypatch.setattr(runs.Run, "add_epoch", add_then_stop)


def interrupt_run(monkeypatch: pytest.MonkeyPatch, cfg, root: Path, epoch: int) -> Path:
    """Train ``cfg`` into ``root`` but stop it as epoch ``epoch`` is recorded; its folder."""
    interrupt_after_epoch(monkeypatch, epoch)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, runs_dir=root)
    return runs.run_dir(cfg, root)


def assert_same_results(a: Path, b: Path) -> None:
    """Bit-identical metrics, predictions and parameters; identical history but for timing."""
    assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()
    for name in ("predictions.npz", "model.npz"):
        with np.load(a / name) as x, np.load(b / name) as y:
            assert x.files == y.files
            for key in x.files:
                np.testing.assert_array_equal(x[key], y[key], strict=True)
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in history_rows(a)]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in history_rows(b)]


@pytest.mark.slow  # a dozen training rules, each trained twice
@pytest.mark.parametrize(
    "optimizer",
    [
        ["train.optimizer=sgd"],
        [
            "train.optimizer=sgd",
            "train.momentum=0.9",
            "train.nesterov=true",
            "train.weight_decay=0.001",
            "train.schedule=cosine",
        ],
        ["train.optimizer=adam", "train.lr=0.003"],
        ["train.batch_size=1", "data.train_subset=120"],  # the row-sparse batch-of-one path
        ["train.mixup_alpha=0.4"],  # mixup's draws come from the checkpointed generator
        ["targets.scheme=bootstrap_soft"],
        ["targets.scheme=bootstrap_hard", "train.shuffle=false"],
        ["loss.type=focal", "loss.gamma_schedule=flsd53", "loss.confidence_penalty=0.1"],
        ["loss.delta=clamped"],
        ["loss.delta=true_class"],
        ["loss.type=mse", "loss.output=sigmoid", "train.backprop=tutorial", "model.bias=false"],
        ["loss.type=mse", "loss.output=tanh", "targets.scheme=soft", "targets.low=-1"],
    ],
    ids=[
        "sgd",
        "momentum",
        "adam",
        "batch1",
        "mixup",
        "bootstrap_soft",
        "bootstrap_hard_file_order",
        "focal",
        "clamped",
        "true_class",
        "tutorial",
        "tanh",
    ],
)
def test_a_resumed_run_is_bit_identical_to_an_uninterrupted_one(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, optimizer: list[str]
):
    common = ["train.epochs=5", *optimizer]
    plain = run_experiment(tiny_config(tiny, *common), runs_dir=tmp_path / "a")
    cfg = tiny_config(tiny, *common, "train.checkpoint_every=2")
    folder = interrupt_run(monkeypatch, cfg, tmp_path / "b", 3)
    status = runs.read_status(folder)
    assert (status["state"], status["epochs_done"], status["checkpoint_epoch"]) == (
        "interrupted",
        3,
        2,
    )

    resumed = run_experiment(cfg, runs_dir=tmp_path / "b", resume=True)

    assert (resumed.state, resumed.message) == ("completed", "resumed from epoch 2")
    assert folder.name == plain.run_dir.name  # checkpointing is not part of the identity
    assert_same_results(plain.run_dir, folder)
    assert not (folder / runs.CHECKPOINT).exists()  # a finished run is not resumed
    assert runs.read_status(folder)["resumed_from_epoch"] == 2


def test_without_resume_an_interrupted_run_starts_over(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cfg = tiny_config(tiny, "train.epochs=4", "train.checkpoint_every=1")
    interrupt_run(monkeypatch, cfg, tmp_path, 3)
    again = run_experiment(cfg, runs_dir=tmp_path)
    assert (again.state, again.message) == ("completed", None)
    assert "resumed_from_epoch" not in runs.read_status(again.run_dir)


def test_resume_without_a_checkpoint_says_it_trained_from_the_start(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cfg = tiny_config(tiny, "train.epochs=3")  # no checkpoint_every
    interrupt_run(monkeypatch, cfg, tmp_path, 2)
    again = run_experiment(cfg, runs_dir=tmp_path, resume=True)
    assert again.state == "completed"
    assert again.message == "no checkpoint to resume from: trained from the start"


def test_resume_after_sigterm_in_a_real_process_matches(launch, tiny: Path, tmp_path: Path):
    args = [*tiny_sets(tiny), "--set", "train.epochs=100", "--set", "model.hidden=[64]"]
    done = launch("train", *args, "--runs-dir", str(tmp_path / "a"))
    assert done.communicate(timeout=120) and done.returncode == 0
    root = tmp_path / "b"
    proc = launch("train", *args, "--set", "train.checkpoint_every=7", "--runs-dir", str(root))
    wait_for(lambda: epochs_written(root) >= 30)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=30)[0]
    saved = runs.read_status(only_run(root))["checkpoint_epoch"]
    assert proc.returncode == 143 and saved >= 28, out
    assert f"--resume continues from the checkpoint of epoch {saved}" in out

    result = CliRunner().invoke(
        main,
        ["train", *args, "--set", "train.checkpoint_every=7", "--runs-dir", str(root), "--resume"],
    )
    assert result.exit_code == 0 and f"resumed from epoch {saved}" in result.output
    assert_same_results(only_run(tmp_path / "a"), only_run(root))


def test_a_corrupt_checkpoint_is_one_line_and_touches_nothing(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cfg = tiny_config(tiny, "train.epochs=4", "train.checkpoint_every=1")
    folder = interrupt_run(monkeypatch, cfg, tmp_path, 2)
    (folder / runs.CHECKPOINT).write_bytes(b"PK\x03\x04 not really a zip file")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    result = CliRunner().invoke(
        main,
        [
            "train",
            *tiny_sets(tiny),
            "--set",
            "train.epochs=4",
            "--set",
            "train.checkpoint_every=1",
            "--runs-dir",
            str(tmp_path),
            "--resume",
        ],
    )
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "unreadable checkpoint" in result.output
    assert "delete it to train from the start" in result.output
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before


# --------------------------------------------------------------------------- write failures


def fail_writes_of(monkeypatch: pytest.MonkeyPatch, names: set[str]) -> None:
    """Every atomic write whose target is in ``names`` fails as on a full disk, at the rename
    (after the temporary file was written, the worst moment)."""
    replace = os.replace

    def full_disk(src, dst, *args, **kwargs):
        if Path(dst).name in names:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(runs.os, "replace", full_disk)


def test_a_full_disk_while_saving_results_fails_the_run_and_keeps_earlier_files(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fail_writes_of(monkeypatch, {"predictions.npz"})
    result = CliRunner().invoke(main, ["train", *tiny_sets(tiny), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "predictions.npz (No space left on device)" in result.output
    folder = only_run(tmp_path)
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "failed" and "No space left on device" in status["error"]
    assert status["epochs_done"] == 2
    assert_every_file_whole(folder)
    assert not (folder / "predictions.npz").exists()


def test_a_write_failure_mid_training_fails_the_run(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fail_writes_of(monkeypatch, {runs.CHECKPOINT})
    outcome = run_experiment(tiny_config(tiny, "train.checkpoint_every=1"), runs_dir=tmp_path)
    assert outcome.state == "failed"
    assert outcome.message.startswith("cannot write ") and "checkpoint.npz" in outcome.message
    status = runs.read_status(outcome.run_dir)
    assert (status["state"], status["epochs_done"]) == ("failed", 1)


def test_when_even_status_json_cannot_be_written_nothing_escapes(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cfg = tiny_config(tiny)
    add_epoch = runs.Run.add_epoch

    def disk_fills_up(self: runs.Run, row: dict) -> None:
        add_epoch(self, row)
        fail_writes_of(monkeypatch, {"status.json", "history.csv", "metrics.json"})

    monkeypatch.setattr(runs.Run, "add_epoch", disk_fills_up)
    outcome = run_experiment(cfg, runs_dir=tmp_path)
    assert outcome.state == "failed" and "No space left on device" in outcome.message
    # status.json still says running, with this process's pid: once it exits, every
    # command reads the run as interrupted
    assert json.loads((outcome.run_dir / "status.json").read_text())["state"] == "running"


def test_a_claim_whose_first_write_fails_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fail_writes_of(monkeypatch, {"status.json"})
    with pytest.raises(RunError, match=r"cannot write .*status\.json \(No space left"):
        runs.claim(tmp_path, "x-1-s0")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- divergence


@pytest.mark.parametrize("lr", ["0.5", "2"])  # blows up after a few epochs / in the first
def test_divergence_records_the_epoch_and_the_last_finite_loss(tiny: Path, tmp_path: Path, lr: str):
    cfg = tiny_config(
        tiny,
        "train.epochs=8",
        "data.scaling=raw",
        f"train.lr={lr}",
        "loss.type=mse",
        "loss.output=linear",
    )
    outcome = run_experiment(cfg, runs_dir=tmp_path)
    assert outcome.state == "diverged"
    status = runs.read_status(outcome.run_dir)
    losses = [float(r["train_loss"]) for r in history_rows(outcome.run_dir)]
    assert status["epochs_done"] == len(losses) < 8
    assert f"in epoch {len(losses)} (lr {float(lr):g})" in status["error"]
    assert not np.isfinite(losses[-1]) and np.isfinite(losses[:-1]).all()
    if len(losses) == 1:
        assert status["last_finite_loss"] is None and status["error"].endswith("loss: none")
    else:
        assert status["last_finite_loss"] == pytest.approx(losses[-2], rel=1e-5)
        assert status["error"].endswith(f"loss: {status['last_finite_loss']:.6g}")


def test_a_signal_inside_a_deferred_block_is_raised_at_its_end() -> None:
    steps = []
    with pytest.raises(KeyboardInterrupt), runs.signals_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # a real handler would have raised by now
        steps.append("wrote the file and its status")
    assert steps == ["wrote the file and its status"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_compare_names_a_run_stopped_right_after_its_claim_as_interrupted(tmp_path: Path):
    folder = tmp_path / "runs" / "default-68efcb63-s0"
    folder.mkdir(parents=True)  # what a claim leaves when SIGTERM lands before config.yaml
    runs.write_json(folder / "status.json", {"state": "interrupted", "error": "SIGTERM"})
    result = CliRunner().invoke(main, ["compare", str(folder)])
    assert result.exit_code == 2  # nothing to compare
    assert f"warning: {folder}: interrupted (SIGTERM); left out" in result.output
    assert "config.yaml" not in result.output
