"""``mnistexp sweep`` end to end: CliRunner in process, and real parallel processes.

Subprocesses cannot see a monkeypatched dataset registry, so they start through a launcher
that registers the tiny synthetic dataset (pickled spec) before calling the CLI.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnistexp.cli import main
from mnistexp.orchestration import sweep as lib
from tests.conftest import TINY, tiny_sets
from tests.conftest import run_states as states

GOLDEN = Path(__file__).parent / "golden"
GRID = ["--grid", "train.lr=0.05,0.1", "--grid", "targets.scheme=onehot,soft", "--seeds", "0-1"]


def invoke(*args: str):
    return CliRunner().invoke(main, ["sweep", *args])


def check_golden(name: str, text: str) -> None:
    """Compare with tests/golden/<name>; MNISTEXP_REGEN_GOLDEN=1 rewrites it instead."""
    path = GOLDEN / name
    if os.environ.get("MNISTEXP_REGEN_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


# --------------------------------------------------------------------------- in process


@pytest.mark.slow  # real worker processes
def test_sweep_trains_then_skips(tiny: Path, tmp_path: Path) -> None:
    args = [*tiny_sets(tiny), *GRID, "--runs-dir", str(tmp_path)]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("8 runs: 8 done, 0 skipped, 0 failed")
    assert "sweep 8/8: " in first.stderr  # one progress line per run: stderr is no terminal
    again = invoke(*args)
    assert again.stdout.startswith("8 runs: 0 done, 8 skipped, 0 failed")
    assert len(states(tmp_path)) == 8


def test_dry_run_lists_what_would_train_and_skip(tiny: Path, tmp_path: Path) -> None:
    args = [*tiny_sets(tiny), "--grid", "train.lr=0.05,0.1", "--runs-dir", str(tmp_path)]
    invoke(*tiny_sets(tiny), "--set", "train.lr=0.05", "--runs-dir", str(tmp_path))
    result = invoke(*args, "--dry-run")
    lines = result.output.splitlines()
    assert result.exit_code == 0
    assert lines[0].startswith("skip (completed)") and "train.lr=0.05 seed=0" in lines[0]
    assert lines[1].startswith("train ") and "train.lr=0.1 seed=0" in lines[1]
    assert lines[2] == "2 runs: 1 would train, 1 skipped"
    assert len(states(tmp_path)) == 1


def test_a_sweep_of_experiments_finished_under_other_names_trains_nothing(
    tiny: Path, tmp_path: Path
) -> None:
    grid = [*tiny_sets(tiny), "--grid", "train.lr=0.05,0.1", "--seeds", "0-0"]
    first = invoke(*grid, "--set", "name=earlier", "--runs-dir", str(tmp_path))
    assert first.exit_code == 0, first.output
    before = {p.name: (p / "history.csv").stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert len(before) == 2
    dry = invoke(*grid, "--runs-dir", str(tmp_path), "--dry-run")
    lines = dry.stdout.splitlines()
    assert dry.exit_code == 0 and lines[-1] == "2 runs: 0 would train, 2 skipped"
    for line in lines[:2]:
        found = re.match(r"skip \(completed as (earlier-\S+)\) +(default-\S+)  ", line)
        assert found and found.group(1) in before, line
        assert found.group(1).split("-", 1)[1] == found.group(2).split("-", 1)[1]
    again = invoke(*grid, "--runs-dir", str(tmp_path))
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("2 runs: 0 done, 2 skipped, 0 failed")
    after = {p.name: (p / "history.csv").stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert after == before  # no new folder, no history.csv written anew
    forced = invoke(*grid, "--runs-dir", str(tmp_path), "--force", "--dry-run")
    assert forced.stdout.startswith("retrain (completed as earlier-")


@pytest.mark.parametrize(
    ("seeds", "planned", "note"),
    [
        pytest.param("3", ["seed=3"], True, id="one-number-is-one-seed"),
        pytest.param("0", ["seed=0"], False, id="seed-zero"),
        pytest.param("2-4", ["seed=2", "seed=3", "seed=4"], False, id="range-inclusive"),
        pytest.param("5,1", ["seed=5", "seed=1"], False, id="list"),
    ],
)
def test_seeds_name_the_seeds_themselves(tmp_path: Path, seeds, planned, note) -> None:
    result = invoke("--seeds", seeds, "--runs-dir", str(tmp_path), "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[-1] for line in lines[:-1]] == planned
    assert [line.split()[1].rsplit("-", 1)[1] for line in lines[:-1]] == [
        "s" + p.removeprefix("seed=") for p in planned
    ]
    expected = (
        "note: --seeds 3 is seed 3 alone (a plain number no longer means the first N seeds); "
        "for seeds 0 to 2 give --seeds 0-2\n"
    )
    assert result.stderr == (expected if note else "")


def test_a_sweep_file_with_a_plain_number_of_seeds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text("grid: {train.lr: [0.05, 0.1]}\nseeds: 5\n")
    result = invoke(str(path), "--runs-dir", str(tmp_path / "runs"), "--dry-run")
    assert (result.exit_code, result.output) == (
        2,
        f"Error: {path}: seeds: 5 is a plain number, which no longer means the first N seeds; "
        "write seeds: 0-4 for the first 5 seeds (what it meant before), or seeds: [5] for "
        "seed 5 alone\n",
    )
    assert not (tmp_path / "runs").exists()


def test_one_experiment_under_two_names_in_one_sweep_is_one_run(tmp_path: Path) -> None:
    result = invoke("--grid", "name=a,b", "--runs-dir", str(tmp_path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "1 runs: 1 would train, 0 skipped"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--zip", "train.lr=1,2", "--zip", "train.epochs=1"],
            "Error: --zip lists must have the same length: train.lr has 2, train.epochs has 1",
            id="zip-lengths",
        ),
        pytest.param(
            ["--seeds", "2-1"],
            "Error: seeds '2-1': a range is A-B with 0 <= A <= B, e.g. 0-4",
            id="seeds",
        ),
        pytest.param(
            ["--grid", "loss.type=cross_entropy,bce"],
            "Error: invalid run [loss.type=bce]: loss.output = 'softmax' does not fit "
            "loss.type = 'bce': use loss.output = sigmoid",
            id="combination",
        ),
        pytest.param(
            ["--grid", "train.epoch=1,2"],
            "Error: invalid run [train.epoch=1]: unknown key train.epoch; "
            "did you mean train.epochs?",
            id="unknown-key",
        ),
        pytest.param(
            ["--emit", "slurm-array"],
            "Error: --emit slurm-array needs a FILE: --emit slurm-array runs/sweep.txt",
            id="slurm-without-file",
        ),
    ],
)
def test_bad_sweeps_fail_up_front_with_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = invoke(*args, "--runs-dir", str(tmp_path / "runs"))
    assert (result.exit_code, result.output) == (2, message + "\n")
    assert not (tmp_path / "runs").exists()


def without_path_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Emitted commands set the path variables of the environment again (absolutely); the
    goldens hold commands emitted without them."""
    for name in lib.PATH_ENV:
        monkeypatch.delenv(name, raising=False)


def test_emit_commands_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    without_path_variables(monkeypatch)
    result = invoke(
        "-c",
        "configs/baseline.yaml",
        *GRID,
        "--set",
        "model.hidden=[32,16]",
        "--runs-dir",
        "runs/enc",
        "--emit",
        "commands",
    )
    assert result.exit_code == 0
    check_golden("sweep_emit_commands.txt", result.output.replace(os.getcwd(), "$DIR"))


def test_emitted_commands_name_every_path_absolutely(tmp_path: Path, monkeypatch) -> None:
    """A Slurm task or a parallel job starts elsewhere: no path may depend on the cwd."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text("train:\n  epochs: 1\n")
    result = invoke(
        "-c",
        "base.yaml",
        "--set",
        "data.dir=../data",
        "--data-dir",
        "data",
        "--runs-dir",
        "out/runs",
        "--emit",
        "commands",
    )
    assert result.exit_code == 0, result.output
    words = shlex.split(result.output)
    assert words[words.index("--config") + 1] == str(tmp_path / "base.yaml")
    assert words[words.index("--runs-dir") + 1] == str(tmp_path / "out" / "runs")
    assert words[words.index("--data-dir") + 1] == str(tmp_path / "data")
    assert f"data.dir={tmp_path.parent / 'data'}" in words


def test_emitted_commands_set_path_variables_absolutely(tmp_path: Path, monkeypatch) -> None:
    """sbatch passes the environment on, to a task that starts in another directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNISTEXP_DATA_DIR", "data")
    monkeypatch.setenv("MNISTEXP_CACHE_DIR", "../cache")
    result = invoke("--emit", "commands")
    assert result.exit_code == 0, result.output
    assert shlex.split(result.output)[:3] == [
        f"MNISTEXP_DATA_DIR={tmp_path / 'data'}",
        f"MNISTEXP_CACHE_DIR={tmp_path.parent / 'cache'}",
        "mnistexp",
    ]


def test_commands_emitted_under_a_relative_data_dir_train_from_another_directory(
    tiny: Path, tmp_path: Path, monkeypatch
) -> None:
    """MNISTEXP_DATA_DIR set relative (as `make demo`'s ../shared/data/mnist) is emitted
    absolute: the command trains from a job's directory, where the relative one finds nothing."""
    monkeypatch.chdir(tiny.parent)
    monkeypatch.setenv("MNISTEXP_DATA_DIR", tiny.name)
    sets = [word for item in TINY for word in ("--set", item)]
    emitted = invoke(*sets, "--runs-dir", str(tmp_path / "runs"), "--emit", "commands")
    assert emitted.exit_code == 0, emitted.output
    words = shlex.split(emitted.output)
    at = words.index("mnistexp")
    assert f"MNISTEXP_DATA_DIR={tiny}" in words[:at], words  # with MNISTEXP_CACHE_DIR
    command = words[at + 1 :]
    elsewhere = tmp_path / "job"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("MNISTEXP_DATA_DIR", str(tiny))  # what the command's assignment does
    trained = CliRunner().invoke(main, command)
    assert trained.exit_code == 0 and "completed in" in trained.stdout, trained.output
    monkeypatch.setenv("MNISTEXP_DATA_DIR", tiny.name)  # the relative value, from there:
    lost = CliRunner().invoke(main, [*command, "--force"])
    assert lost.exit_code == 2 and "given by MNISTEXP_DATA_DIR" in lost.stderr, lost.output


def test_a_data_dir_in_a_config_file_is_emitted_absolutely(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text("data:\n  dir: rel/data\n")
    result = invoke("-c", "base.yaml", "--emit", "commands")
    assert result.exit_code == 0, result.output
    assert f"data.dir={tmp_path / 'rel' / 'data'}" in shlex.split(result.output)
    cleared = invoke("-c", "base.yaml", "--set", "data.dir=null", "--emit", "commands")
    assert "data.dir=null" in shlex.split(cleared.output)  # passed on as given


def test_a_teacher_named_in_a_config_file_is_emitted_absolutely(
    tiny: Path, tmp_path: Path, monkeypatch
) -> None:
    """The emitted command trains the same run from another directory: the config file's
    relative targets.teacher (relative to where the command runs) is passed absolutely."""
    monkeypatch.chdir(tmp_path)
    taught = CliRunner().invoke(main, ["train", *tiny_sets(tiny), "--runs-dir", "teachers"])
    assert taught.exit_code == 0, taught.output
    (teacher,) = Path("teachers").iterdir()
    (tmp_path / "student.yaml").write_text(f"targets:\n  scheme: distill\n  teacher: {teacher}\n")
    result = invoke("-c", "student.yaml", *tiny_sets(tiny), "--emit", "commands")
    assert result.exit_code == 0, result.output
    words = shlex.split(result.output)
    assert f"targets.teacher={tmp_path / teacher}" in words
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    student = CliRunner().invoke(main, words[words.index("mnistexp") + 1 :])
    assert student.exit_code == 0, student.output
    assert states(tmp_path / "runs") == {Path(student.output.split(":")[0]).name: "completed"}


def test_emit_passes_resume_and_retry_flags_to_every_command() -> None:
    result = invoke(
        "-c",
        "configs/baseline.yaml",
        "--seeds",
        "0-1",
        "--resume",
        "--retry-failed",
        "--emit",
        "commands",
    )
    lines = result.output.splitlines()
    assert result.exit_code == 0 and len(lines) == 2
    assert all(line.endswith(" --retry-failed --resume") for line in lines), lines


def test_emit_slurm_array_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    without_path_variables(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text("train:\n  epochs: 1\n")
    result = invoke(
        "-c",
        "base.yaml",
        "--grid",
        "train.lr=0.05,0.1",
        "--seeds",
        "0-1",
        "--emit",
        "slurm-array",
        "sweep.txt",
        "--array-limit",
        "4",
    )
    assert result.exit_code == 0, result.output
    check_golden(
        "sweep_slurm_array.txt",
        (result.output + "---\n" + (tmp_path / "sweep.txt").read_text()).replace(
            str(tmp_path), "$DIR"
        ),
    )


def test_shipped_sweep_file_dry_run(tmp_path: Path) -> None:
    result = invoke("configs/sweeps/encodings.yaml", "--runs-dir", str(tmp_path), "--dry-run")
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "30 runs: 30 would train, 0 skipped"


def test_help_has_an_example() -> None:
    result = invoke("--help")
    assert result.exit_code == 0 and "Examples:" in result.output and "--emit" in result.output


# --------------------------------------------------------------------------- processes


def test_two_concurrent_sweep_processes_train_each_run_once(
    launch, tiny: Path, tmp_path: Path
) -> None:
    root = tmp_path / "runs"
    args = ["sweep", *tiny_sets(tiny), *GRID, "--runs-dir", str(root), "-j", "2"]
    procs = [launch(*args) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    summaries = [re.search(r"^\d+ runs: (\d+) done", o, re.M) for o in outputs]
    done = [int(m.group(1)) if m else -1 for m in summaries]
    assert sum(done) == 8, outputs
    assert set(states(root).values()) == {"completed"} and len(states(root)) == 8


def test_shell_loop_of_background_trains(launch, tiny: Path, tmp_path: Path) -> None:
    """``for eps in ...; do mnistexp train ... --seed 1 & done; wait``, twice."""
    root = tmp_path / "runs"

    def loop() -> list[tuple[int, str]]:
        procs = [
            launch(
                "train",
                *tiny_sets(tiny),
                "--set",
                "targets.scheme=smooth",
                "--set",
                f"targets.epsilon={eps}",
                "--seed",
                "1",
                "--runs-dir",
                str(root),
            )
            for eps in (0, 0.05, 0.1, 0.2)
        ]
        return [(p.wait(timeout=120), p.communicate()[0]) for p in procs]

    assert [code for code, _ in loop()] == [0, 0, 0, 0]
    assert list(states(root).values()) == ["completed"] * 4
    again = loop()
    assert [code for code, _ in again] == [0, 0, 0, 0]
    assert all("already completed" in out for _, out in again)


def test_ctrl_c_marks_interrupted_and_the_next_sweep_resumes(
    launch, tiny: Path, tmp_path: Path
) -> None:
    root = tmp_path / "runs"
    args = [
        "sweep",
        *tiny_sets(tiny),
        "--set",
        "train.epochs=2000",
        "--grid",
        "train.lr=0.05,0.1",
        "--runs-dir",
        str(root),
        "-j",
        "2",
    ]
    proc = launch(*args, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and list(states(root).values()) != ["running"] * 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 130, out
    assert list(states(root).values()) == ["interrupted"] * 2, out
    assert "run the same sweep again to retrain the interrupted runs" in out
    assert out.count("interrupted: the sweep was stopped (Ctrl-C or SIGTERM)") == 2, out
    dry = CliRunner().invoke(main, ["sweep", *args[1:], "--dry-run"])
    assert dry.output.count("retrain (interrupted)") == 2


def test_sigterm_to_train_marks_the_run_interrupted_and_exits_143(
    launch, tiny: Path, tmp_path: Path
) -> None:
    """A batch system's time limit sends SIGTERM: the run must say 'interrupted', not 'running'."""
    root = tmp_path / "runs"
    proc = launch("train", *tiny_sets(tiny), "--set", "train.epochs=2000", "--runs-dir", str(root))
    deadline = time.time() + 60
    while time.time() < deadline and list(states(root).values()) != ["running"]:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 143, out
    assert list(states(root).values()) == ["interrupted"], out
