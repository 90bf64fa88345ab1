"""Sweeps on real engines: GNU parallel running examples/gnu_parallel.sh, and a real Slurm
cluster (``scripts/slurm_cluster.sh``) running the array ``sweep --emit slurm-array`` writes.

Outside CI these skip with a reason where the engine is missing; with ``CI`` set they fail
(``.ci/run`` installs GNU parallel and starts a single-node Slurm cluster).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool, run_states
from tests.test_interrupts import assert_same_results

REPO = Path(__file__).resolve().parent.parent
BUDGET = [
    "--seeds",
    "0",
    "--set",
    "train.epochs=1",
    "--set",
    "data.train_subset=1000",
    "--set",
    "data.validation=1000",
    "--set",
    "model.hidden=[16]",
    "--set",
    "eval.bootstrap=0",
]
"""A small budget for the 10 runs of configs/sweeps/encodings.yaml with one seed."""


def engine_env(runs: Path, mnist_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a real engine's jobs: this venv's ``mnistexp`` first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "MNISTEXP_RUNS_DIR": str(runs),
        "MNISTEXP_DATA_DIR": str(mnist_dir),
        **extra,
    }


def owners(root: Path) -> dict[str, tuple[int, str]]:
    """Run folder -> (pid, started) of the process that trained it."""
    found = {}
    for folder in sorted(root.iterdir()):
        if (folder / "status.json").exists():
            status = json.loads((folder / "status.json").read_text())
            found[folder.name] = (status["pid"], status["started"])
    return found


# --------------------------------------------------------------------------- GNU parallel


@pytest.mark.mnist
def test_gnu_parallel_example_trains_every_run_once(mnist_dir: Path, tmp_path: Path) -> None:
    require_tool("parallel", "GNU parallel: apt-get install parallel")
    root = tmp_path / "runs"
    elsewhere = tmp_path / "elsewhere"  # the script runs from a directory of its own
    elsewhere.mkdir()
    script = [str(REPO / "examples" / "gnu_parallel.sh"), "2", *BUDGET]
    env = engine_env(root, mnist_dir)

    first = subprocess.run(script, cwd=elsewhere, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout + first.stderr
    states = run_states(root)
    assert len(states) == 10 and set(states.values()) == {"completed"}, states
    with open(root / "parallel.log", newline="") as fh:
        jobs = list(csv.DictReader(fh, delimiter="\t"))
    assert len(jobs) == 10 and {j["Exitval"] for j in jobs} == {"0"}, jobs
    assert "10" in first.stdout  # compare's table: one experiment per run, n = 1
    trained = owners(root)
    assert len({pid for pid, _ in trained.values()}) == 10  # each run by a process of its own

    second = subprocess.run(script, cwd=elsewhere, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stdout + second.stderr
    assert owners(root) == trained  # nothing trained again
    assert run_states(root) == states


SHORT = ["-c", "configs/baseline.yaml", "--seeds", "0-1", *BUDGET[2:]]
"""Two small runs: two lines of a command file, enough for a split line to reach a task."""
HOSTILE_NAME = "runs $(touch PWNED) `touch PWNED`; 'q' \"d\" * %j"
"""A legal folder name full of shell syntax (and a pattern of sbatch --output): quoted, it
is just a name."""
INJECTED = "r\ntouch {pwned}\nx"
"""A folder name with newlines: quoted, its second line is the command ``touch PWNED``."""


def sweep_into_parallel(runs: Path, env: dict[str, str], tmp_path: Path):
    """``mnistexp sweep SHORT --runs-dir RUNS --emit commands | parallel --jobs 2``."""
    script = 'set -o pipefail; mnistexp sweep "$@" --emit commands | parallel --jobs 2'
    return subprocess.run(
        ["bash", "-c", script, "bash", *SHORT, "--runs-dir", str(runs)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.mark.mnist
def test_gnu_parallel_runs_quoted_paths_and_never_a_split_line(
    mnist_dir: Path, tmp_path: Path
) -> None:
    require_tool("parallel", "GNU parallel: apt-get install parallel")
    env = engine_env(tmp_path / "unused", mnist_dir)
    pwned = tmp_path / "PWNED"
    hostile = tmp_path / HOSTILE_NAME
    done = sweep_into_parallel(hostile, env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(run_states(hostile).values()) == {"completed"} and len(run_states(hostile)) == 2
    assert not list(REPO.glob("PWNED")) and not pwned.exists()

    injected = tmp_path / INJECTED.format(pwned=pwned)
    refused = sweep_into_parallel(injected, env, tmp_path)
    assert not pwned.exists(), "a line of an emitted command ran as a command of its own"
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.count("\n") == 1 and "control character" in refused.stderr
    assert not injected.exists()


# --------------------------------------------------------------------------- Slurm


def slurm_cluster() -> None:
    """Skip (locally) or fail (CI) unless a Slurm cluster answers with a usable node."""
    require_tool("sbatch", "a Slurm cluster: sudo scripts/slurm_cluster.sh start")
    nodes = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    if not {"idle", "mixed", "allocated"} & set(nodes.stdout.split()):
        message = f"no usable Slurm node (sinfo: {nodes.stdout.strip() or nodes.stderr.strip()})"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run starts one with scripts/slurm_cluster.sh start")
        pytest.skip(message)


def emit_array(args: list[str], root: Path, env: dict[str, str], cwd: Path) -> str:
    """Run ``mnistexp sweep ARGS --emit slurm-array`` from ``cwd`` (ARGS may name files
    relative to it); the printed sbatch line."""
    command = ["mnistexp", "sweep", *args, "--runs-dir", str(root)]
    command += ["--emit", "slurm-array", str(root / "sweep.txt")]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("sbatch "), done.stdout
    return line


def submit(line: str, cwd: Path, env: dict[str, str], *options: str) -> str:
    """Run the printed sbatch line from ``cwd`` (``options`` go right after ``sbatch``)."""
    line = line.replace("sbatch ", f"sbatch {' '.join(options)} ", 1)
    done = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()[-1]  # "Submitted batch job 42"


def job_active(job: str) -> bool:
    queue = subprocess.run(
        ["squeue", "-h", "-j", job, "-t", "PD,R,CG,S,CF"], capture_output=True, text=True
    )
    return bool(queue.stdout.strip())


def wait_job(job: str, timeout: float) -> None:
    wait_for(lambda: not job_active(job), timeout=timeout, step=1.0)


def wait_for(predicate, timeout: float, step: float = 0.2) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(step)


@pytest.fixture
def cluster(mnist_dir: Path, tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    """(runs folder, job environment, a directory to submit from that is not the cwd of
    ``sweep``); any job of the test still queued at its end is cancelled."""
    slurm_cluster()
    root = tmp_path / "runs"
    root.mkdir()
    elsewhere = tmp_path / "submit-from-here"
    elsewhere.mkdir()
    yield root, engine_env(root, mnist_dir), elsewhere
    subprocess.run(["scancel", "--name=mnistexp-sweep"], capture_output=True)


@pytest.mark.mnist
def test_slurm_array_completes_every_run_once_and_resubmission_trains_nothing(
    cluster, tmp_path: Path
) -> None:
    root, env, elsewhere = cluster
    line = emit_array(["configs/sweeps/encodings.yaml", *BUDGET], root, env, cwd=REPO)
    assert "--array=1-10 " in line
    wait_job(submit(line, elsewhere, env), timeout=300)
    states = run_states(root)
    assert len(states) == 10 and set(states.values()) == {"completed"}, (
        states,
        [p.read_text() for p in root.glob("slurm-*.out")],
    )
    logs = sorted(root.glob("slurm-*.out"))
    assert len(logs) == 10  # beside the command file, not in the submitter's directory
    assert not list(elsewhere.iterdir())
    trained = owners(root)
    assert len({pid for pid, _ in trained.values()}) == 10

    wait_job(submit(line, elsewhere, env), timeout=300)
    assert owners(root) == trained  # nothing trained again
    assert run_states(root) == states


SLOW = [
    "-c",
    "configs/baseline.yaml",
    "--set",
    "train.epochs=300",
    "--set",
    "eval.bootstrap=0",
]
"""A run of about two minutes or more on two cores: always past a one-minute --time."""


@pytest.mark.mnist
def test_slurm_time_limit_interrupts_and_resume_is_bit_identical(cluster, tmp_path: Path) -> None:
    root, env, elsewhere = cluster
    args = [*SLOW, "--set", "train.checkpoint_every=1", "--resume"]
    line = emit_array(args, root, env, cwd=REPO)
    job = submit(line, elsewhere, env, "--time=1")
    reference = subprocess.Popen(  # the same run, uninterrupted, meanwhile outside Slurm
        ["mnistexp", "train", *SLOW, "--runs-dir", str(tmp_path / "plain")],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_job(job, timeout=240)
    (folder,) = [p for p in root.iterdir() if p.is_dir()]
    status = json.loads((folder / "status.json").read_text())
    assert (status["state"], status["error"]) == ("interrupted", "SIGTERM"), status
    assert status["checkpoint_epoch"] >= 1 and status["epochs_done"] < 300

    wait_job(submit(line, elsewhere, env), timeout=600)
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "completed" and status["resumed_from_epoch"] >= 1, status
    output, _ = reference.communicate(timeout=900)
    assert reference.returncode == 0, output
    assert_same_results(tmp_path / "plain" / folder.name, folder)


@pytest.mark.mnist
def test_scancel_leaves_runs_interrupted_and_resubmission_completes_them(cluster) -> None:
    root, env, elsewhere = cluster
    args = ["-c", "configs/baseline.yaml", "--set", "train.epochs=40", "--seeds", "0-1"]
    line = emit_array([*args, "--set", "eval.bootstrap=0"], root, env, cwd=REPO)
    job = submit(line, elsewhere, env)
    wait_for(
        lambda: len(states := run_states(root)) == 2 and set(states.values()) == {"running"},
        timeout=120,
    )
    subprocess.run(["scancel", job], check=True)
    wait_job(job, timeout=60)
    statuses = [
        json.loads((f / "status.json").read_text()) for f in sorted(root.iterdir()) if f.is_dir()
    ]
    assert [(s["state"], s["error"]) for s in statuses] == [("interrupted", "SIGTERM")] * 2

    wait_job(submit(line, elsewhere, env), timeout=600)
    assert set(run_states(root).values()) == {"completed"}


@pytest.mark.mnist
def test_slurm_array_runs_quoted_paths_and_never_a_split_line(cluster, tmp_path: Path) -> None:
    _, env, elsewhere = cluster
    pwned = tmp_path / "PWNED"
    hostile = tmp_path / HOSTILE_NAME
    hostile.mkdir()
    line = emit_array(SHORT, hostile, env, cwd=REPO)
    wait_job(submit(line, elsewhere, env), timeout=300)
    assert set(run_states(hostile).values()) == {"completed"} and len(run_states(hostile)) == 2
    assert len(list(hostile.glob("slurm-*.out"))) == 2
    assert not pwned.exists() and not list(elsewhere.iterdir())

    injected = tmp_path / INJECTED.format(pwned=pwned)
    command = ["mnistexp", "sweep", *SHORT, "--runs-dir", str(injected)]
    command += ["--emit", "slurm-array", str(tmp_path / "sweep.txt")]
    refused = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if refused.returncode == 0:  # a command file was written: let Slurm show what it runs
        wait_job(submit(refused.stdout.strip().splitlines()[-1], elsewhere, env), timeout=300)
    assert not pwned.exists(), "a line of the command file ran as a command of its own"
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.count("\n") == 1 and "control character" in refused.stderr
    assert not (tmp_path / "sweep.txt").exists() and not injected.exists()
