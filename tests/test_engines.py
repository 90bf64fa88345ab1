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
from pathlib import Path

import pytest

from tests.conftest import require_tool, run_states

REPO = Path(__file__).resolve().parent.parent
BUDGET = [
    "--seeds",
    "1",
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
