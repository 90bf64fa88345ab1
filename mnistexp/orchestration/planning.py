"""Config files as compare inputs: the runs they ask for, and training the missing ones.

``mnistexp compare a.yaml b.yaml --seeds 0-4`` plans seeds 0..4 of each file
(:func:`plan_runs`) and trains those not finished yet (:func:`train_missing`) through the same
machinery as ``mnistexp sweep``, so finished runs are reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mnistexp.config.loading import ExperimentConfig, load_config
from mnistexp.core.errors import ExitCode, Terminated
from mnistexp.store import runs


def plan_runs(
    config_paths: Sequence[str], seeds: Sequence[int], overrides: Sequence[str] = ()
) -> list[ExperimentConfig]:
    """One config per (file, seed of ``seeds``), with ``overrides`` applied to every file."""
    return [
        load_config(path, [*overrides, f"seed={seed}"]) for path in config_paths for seed in seeds
    ]


def train_missing(
    configs: Sequence[ExperimentConfig],
    *,
    jobs: int = 1,
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
) -> list[Path]:
    """Train the runs of ``configs`` not finished yet (finished ones are reused); their folders.

    Trains through :func:`mnistexp.orchestration.workers.execute`, so ``jobs`` workers, skipping and
    resumption behave exactly as in ``mnistexp sweep``.
    """
    from mnistexp.orchestration.workers import execute

    summary = execute(
        list(configs),
        jobs=jobs,
        runs_dir=runs_dir,
        data_dir=data_dir,
        progress=progress,
        desc="training",
    )
    if summary.interrupted_by_user:  # no table from half the runs: stop as the sweep did
        raise Terminated() if summary.interrupt_code == ExitCode.SIGTERM else KeyboardInterrupt()
    names = runs.listing(runs.runs_root(runs_dir))
    return [runs.find_run(cfg, runs_dir, names) for cfg in configs]  # whatever their names
