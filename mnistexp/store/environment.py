"""What ``env.json`` records: versions, BLAS, platform, git commit, command line, data."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from threadpoolctl import threadpool_info

from mnistexp import __version__


def git_commit() -> str | None:
    """The commit of the checkout mnistexp runs from (with ``+dirty``), or None."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            [
                "git",
                "-C",
                str(here),
                "status",
                "--porcelain=v2",
                "--branch",
                "--untracked-files=no",
            ],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    commit = next((ln.split()[2] for ln in out.splitlines() if ln.startswith("# branch.oid")), None)
    if commit is None or commit == "(initial)":
        return None
    dirty = any(not ln.startswith("#") for ln in out.splitlines())
    return commit + ("+dirty" if dirty else "")


def blas_info() -> list[dict[str, Any]]:
    keep = ("internal_api", "version", "num_threads", "threading_layer", "architecture")
    return [{k: pool.get(k) for k in keep} for pool in threadpool_info()]


def environment(argv: list[str], data_checksums: dict[str, str], data_source: str) -> dict:
    """The env.json record of one run."""
    return {
        "mnistexp": __version__,
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "blas": blas_info(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "command": argv,
        "data": {"source": data_source, "sha256": data_checksums},
    }
