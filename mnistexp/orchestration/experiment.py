"""One experiment run end to end: data -> train -> evaluate -> run folder.

Used by ``mnistexp train``, by ``compare`` when it trains missing runs, and by sweep workers.
Everything that can be wrong with the input (config against the data, data files, the runs
folder) is checked before a folder is claimed, so bad input never leaves a run behind.
"""

from __future__ import annotations

import contextlib
import math
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnistexp.config.identity import config_hash
from mnistexp.config.loading import ExperimentConfig, check_against_data, read_stored, to_yaml
from mnistexp.core.errors import ConfigError, ExitCode, RunError, interrupt_reason
from mnistexp.core.states import State
from mnistexp.core.yamlio import one_line
from mnistexp.data import datasets as data
from mnistexp.data.scaling import apply_scaling, fit_scaling
from mnistexp.learning.budget import check_fits
from mnistexp.learning.checkpoints import Checkpoint
from mnistexp.learning.model import logits
from mnistexp.learning.objective import Objective, make_objective
from mnistexp.learning.targets import FinishedRun, PrepareContext
from mnistexp.orchestration.evaluate import evaluate_target, up_to_date
from mnistexp.pipeline import shifted
from mnistexp.pipeline.evaluation import evaluate_run
from mnistexp.pipeline.splits import N_CLASSES, Scaler, Split, input_scaling, make_splits
from mnistexp.pipeline.trainer import train

# Everything a run needs is imported here, before any folder is claimed: a Ctrl-C or SIGTERM
# that lands inside a lazy import surfaces as ImportError, which would record the run as
# failed instead of interrupted.
from mnistexp.store import runs
from mnistexp.store.environment import environment
from mnistexp.store.models import read_model


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

    The folder is :func:`mnistexp.store.runs.find_run`'s: the same experiment (config hash and
    seed) completed or running under another name is that run, reused or left to its owner,
    and ``force`` retrains it in that folder (under the folder's name), never in a second one.
    With ``resume``, an interrupted (or failed) run that left a checkpoint continues from it
    instead of starting over; the result is bit-identical to an uninterrupted run.
    """
    path = runs.find_run(cfg, runs_dir)
    cfg = runs.named_as(cfg, path)
    existing = runs.read_status(path)
    if existing and not runs.should_train(existing["state"], force, retry_failed):
        if existing.get("state") == State.COMPLETED and shifted.requested(cfg.shift):
            return _reused_with_shift(cfg, path, existing, data_dir, progress)
        return _skipped(path, existing)
    chash = config_hash(cfg)
    resumable = resume and existing is not None and existing["state"] in runs.RESUMABLE
    if resumable:  # a bad checkpoint is reported before anything is touched
        runs.read_checkpoint(path, chash)
    dataset = data.load(cfg.data.dataset, data_dir or cfg.data.dir, progress=progress)
    check_against_data(cfg, dataset.train_labels.shape[0])
    n_images = dataset.train_labels.shape[0] + dataset.test_labels.shape[0]
    check_fits(cfg, n_images, dataset.train_images.shape[1], data.NUM_CLASSES)  # before a claim
    prepared = _prepare(cfg, dataset, path.parent)  # a bad teacher is bad input: no folder
    shifted.check_available(cfg.shift)  # so is a shift set whose optional extra is missing
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
        run.start(to_yaml(cfg), chash, env, cfg.to_dict())
        checkpoint = runs.read_checkpoint(run.path, chash) if resumable else None
        outcome = _train_into(cfg, prepared, run, checkpoint, progress)
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
    finally:
        run.close()  # no heartbeat outlives its run (a sweep worker goes on to the next)


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


def _reused_with_shift(
    cfg: ExperimentConfig,
    path: Path,
    status: dict[str, Any],
    data_dir: str | Path | None,
    progress: bool,
) -> Outcome:
    """A finished run reused by a config that asks for a ``shift`` evaluation: added to the
    folder if it lacks it (``mnistexp evaluate``'s path), never by retraining."""
    outcome = _skipped(path, status)
    if up_to_date(path, cfg.shift):
        return outcome
    shifted.check_available(cfg.shift)
    dataset = data.load(cfg.data.dataset, data_dir or cfg.data.dir, progress=progress)
    done = evaluate_target(path, cfg, dataset)
    outcome.message = f"finished run reused; shift evaluation added in {done.seconds:.1f} s"
    return outcome


@dataclass
class _Prepared:
    """The splits and the objective of a run, ready before its folder is claimed."""

    train: Split
    validation: Split | None
    test: Split
    objective: Objective
    test_images: np.ndarray  # raw uint8 (n, 28, 28), for the shifted copies
    test_labels: np.ndarray
    inputs: Scaler  # raw images -> model inputs, scaled as this run


def _prepare(cfg: ExperimentConfig, dataset, runs_root: Path) -> _Prepared:
    """Splits and one objective for training and evaluation. The scheme prepares once, here:
    a scheme that reads other runs (a teacher's outputs) does it before anything is claimed,
    so a teacher that cannot be used is one line and exit 2."""
    train_split, val_split, test_split = make_splits(cfg, dataset)
    objective = make_objective(cfg, N_CLASSES)
    n_total = dataset.train_labels.shape[0]
    n_train = train_split.y.shape[0]
    splits = {"train": train_split, "validation": val_split, "test": test_split}
    images = {
        "train": dataset.train_images[:n_train],
        "validation": dataset.train_images[n_total - cfg.data.validation :],
        "test": dataset.test_images,
    }
    context = PrepareContext(
        cfg,
        runs_root,
        train_split,
        splits,
        images,
        lambda folder: read_finished_run(folder, dataset),
        n_total,
    )
    objective.scheme.prepare(context)
    inputs = input_scaling(cfg, dataset)
    return _Prepared(
        train_split,
        val_split,
        test_split,
        objective,
        dataset.test_images,
        dataset.test_labels,
        inputs,
    )


def read_finished_run(folder: Path, dataset) -> FinishedRun:
    """A completed run folder as a teacher: its identity, config and a function giving its
    model's logits (n, K) float64 on raw images of ``dataset``, scaled as it was trained."""

    def bad(why: str) -> ConfigError:
        return ConfigError(f"targets.teacher = {str(folder)!r} is invalid: {why}")

    status = runs.read_status(folder)
    if not status or status.get("state") != State.COMPLETED:
        state = status.get("state") if status else "missing"
        raise bad(f"the teacher run is {state}, not completed")
    teacher, _ = read_stored(folder / "config.yaml")
    n_total = dataset.train_labels.shape[0]
    try:
        n_train = check_against_data(teacher, n_total)
    except ConfigError as exc:
        raise bad(f"{folder / 'model.npz'}: {one_line(str(exc))}") from None
    try:
        model = read_model(folder, teacher, math.prod(dataset.train_images.shape[1:]), N_CLASSES)
    except RunError as exc:
        raise bad(str(exc)) from None
    dtype = np.dtype(teacher.train.dtype).type
    shift, scale = fit_scaling(teacher.data.scaling, dataset.train_images[:n_train])

    def teacher_logits(images: np.ndarray) -> np.ndarray:
        x = apply_scaling(images.reshape(len(images), -1), shift, scale, dtype)
        return logits(model, x).astype(np.float64)

    run_id = f"{status.get('config_hash')}-s{teacher.seed}"
    return FinishedRun(run_id, teacher, n_train, teacher_logits)


def _train_into(
    cfg: ExperimentConfig,
    prepared: _Prepared,
    run: runs.Run,
    checkpoint: Checkpoint | None,
    progress: bool,
) -> Outcome:
    rng = np.random.default_rng(cfg.seed)
    train_split, val_split, test_split = prepared.train, prepared.validation, prepared.test
    objective = prepared.objective
    if checkpoint is not None:
        run.resume_history(checkpoint.history)
    chash = config_hash(cfg)
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
    if shifted.requested(cfg.shift):
        shift_report, arrays = shifted.evaluate_shifted(
            cfg,
            result.model,
            val_split,
            prepared.test_images,
            prepared.test_labels,
            prepared.inputs,
        )
        run.write_shift(shift_report, arrays)
    run.finish(State.COMPLETED)
    run.remove_checkpoint()  # a finished run is never resumed
    resumed = f"resumed from epoch {checkpoint.epoch}" if checkpoint else None
    return Outcome(run.path, State.COMPLETED, metrics=report, message=resumed, seconds=run.seconds)
