"""One experiment run end to end: data -> train -> evaluate -> run folder.

Used by ``mnistexp train``, by ``compare`` when it trains missing runs, and by sweep workers.
Everything that can be wrong with the input (config against the data, data files, the runs
folder) is checked before a folder is claimed, so bad input never leaves a run behind.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Everything a run needs is imported here, before any folder is claimed: a Ctrl-C or SIGTERM
# that lands inside a lazy import surfaces as ImportError, which would record the run as
# failed instead of interrupted.
from mnistexp import data, runs
from mnistexp.checkpoints import Checkpoint
from mnistexp.config import ExperimentConfig, check_against_data, config_hash, to_yaml
from mnistexp.environment import environment
from mnistexp.errors import ExitCode, RunError, interrupt_reason
from mnistexp.evaluation import evaluate_run
from mnistexp.objective import make_objective
from mnistexp.splits import make_splits
from mnistexp.states import State
from mnistexp.targets import PrepareContext
from mnistexp.trainer import train


@dataclass
class Outcome:
    """What happened to one requested run."""

    run_dir: Path
    state: str  # completed | diverged | failed | interrupted | running (elsewhere)
    skipped: bool = False  # True when an existing run was left as it was
    metrics: dict[str, Any] | None = None
    message: str | None = None
    seconds: float = field(default=0.0)

    @property
    def exit_code(self) -> ExitCode:
        """OK done or running elsewhere, FAILED failed/diverged, SIGINT interrupted."""
        codes: dict[str, ExitCode] = {
            State.COMPLETED: ExitCode.OK,
            State.RUNNING: ExitCode.OK,
            State.INTERRUPTED: ExitCode.SIGINT,
        }
        return codes.get(self.state, ExitCode.FAILED)


def run_experiment(
    cfg: ExperimentConfig,
    *,
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    force: bool = False,
    retry_failed: bool = False,
    resume: bool = False,
    progress: bool = False,
    argv: list[str] | None = None,
) -> Outcome:
    """Train ``cfg`` into its run folder unless a finished run is already there.

    With ``resume``, an interrupted (or failed) run that left a checkpoint continues from it
    instead of starting over; the result is bit-identical to an uninterrupted run.
    """
    path = runs.run_dir(cfg, runs_dir)
    existing = runs.read_status(path)
    if existing and not runs.should_train(existing["state"], force, retry_failed):
        return _skipped(path, existing)
    chash = config_hash(cfg)
    resumable = resume and existing is not None and existing["state"] in runs.RESUMABLE
    if resumable:  # a bad checkpoint is reported before anything is touched
        runs.read_checkpoint(path, chash)
    dataset = data.load(cfg.data.dataset, data_dir or cfg.data.dir, progress=progress)
    check_against_data(cfg, dataset.train_labels.shape[0])
    claimed = runs.claim(
        path.parent,
        path.name,
        force=force,
        retry_failed=retry_failed,
        carry=(runs.CHECKPOINT,) if resumable else (),
    )
    if claimed.run is None:
        return _skipped(path, runs.read_status(path) or {"state": claimed.existing})
    run = claimed.run
    try:  # from the claim on, a Ctrl-C or crash is recorded in the folder
        env = environment(argv or sys.argv, dataset.checksums, str(dataset.source))
        run.start(to_yaml(cfg), chash, env)
        checkpoint = runs.read_checkpoint(run.path, chash) if resumable else None
        outcome = _train_into(cfg, dataset, run, checkpoint, progress)
        if resume and checkpoint is None and outcome.state == State.COMPLETED:
            outcome.message = "no checkpoint to resume from: trained from the start"
        return outcome
    except KeyboardInterrupt as exc:
        _finish(run, State.INTERRUPTED, error=interrupt_reason(exc))
        raise
    except Exception as exc:  # a crash is recorded in the folder, and a sweep goes on
        message = str(exc) if isinstance(exc, RunError) else f"{type(exc).__name__}: {exc}"
        _finish(run, State.FAILED, error=message, traceback=traceback.format_exc())
        return Outcome(run.path, State.FAILED, message=message)


def _finish(run: runs.Run, state: str, **fields: Any) -> None:
    """Record the final state if the disk lets us; if not, status.json still says
    ``running`` with this (soon dead) pid, which every command reads as interrupted."""
    with contextlib.suppress(RunError):
        run.finish(state, **fields)


def _skipped(path: Path, status: dict[str, Any]) -> Outcome:
    state = status.get("state", State.FAILED)
    metrics = None
    if state == State.COMPLETED:
        with contextlib.suppress(RunError):  # a summary without numbers, not a crash
            metrics = runs.read_json(path / "metrics.json")
    return Outcome(path, state, skipped=True, metrics=metrics, message=status.get("error"))


def _train_into(
    cfg: ExperimentConfig, dataset, run: runs.Run, checkpoint: Checkpoint | None, progress: bool
) -> Outcome:
    rng = np.random.default_rng(cfg.seed)
    train_split, val_split, test_split = make_splits(cfg, dataset)
    if checkpoint is not None:
        run.resume_history(checkpoint.history)
    chash = config_hash(cfg)
    # One objective for training and evaluation; its scheme prepares once, before training
    # (a scheme that reads other runs, such as a teacher's outputs, does it here).
    objective = make_objective(cfg, train_split.t.shape[1])
    objective.scheme.prepare(PrepareContext(cfg, run.path.parent, train_split))
    result = train(
        cfg,
        train_split,
        val_split,
        rng,
        progress=progress,
        on_epoch=run.add_epoch,
        resume=checkpoint,
        on_checkpoint=lambda ckpt: run.write_checkpoint(ckpt, chash),
        objective=objective,
    )
    if result.state == State.DIVERGED:
        run.finish(State.DIVERGED, error=result.message, last_finite_loss=result.last_finite_loss)
        run.remove_checkpoint()  # resuming would only diverge again
        return Outcome(run.path, State.DIVERGED, message=result.message)
    splits = {"test": test_split, "validation": val_split, "train": train_split}
    report, predictions = evaluate_run(cfg, result.model, objective, splits)
    run.write_results(report, predictions, result.model.arrays())
    run.finish(State.COMPLETED)
    run.remove_checkpoint()  # a finished run is never resumed
    resumed = f"resumed from epoch {checkpoint.epoch}" if checkpoint else None
    return Outcome(run.path, State.COMPLETED, metrics=report, message=resumed, seconds=run.seconds)
