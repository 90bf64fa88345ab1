"""Evaluation beyond the test set for runs that have already finished, without retraining.

``mnistexp evaluate RUN_DIR...`` and ``train`` (when a finished run is reused and its config
asks for a ``shift`` evaluation it lacks) read the run's ``config.yaml`` and ``model.npz``,
rebuild its validation split and input scaling from the data (bit for bit as at training),
and write ``shift.json`` and ``shift_predictions.npz`` into the folder, each atomically. The
run's id, status and other files are not touched. An evaluation already there with the same
settings and intact arrays is kept (idempotent) unless ``force``. Every folder is checked
before any is evaluated, so bad input writes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnistexp.config.loading import ExperimentConfig, check_against_data, read_stored
from mnistexp.core.errors import ConfigError, RunError
from mnistexp.core.schema import ShiftConfig
from mnistexp.core.states import State
from mnistexp.core.yamlio import one_line
from mnistexp.data import datasets as data
from mnistexp.pipeline import shifted
from mnistexp.pipeline.splits import N_CLASSES, input_scaling, validation_split
from mnistexp.store import runs
from mnistexp.store.models import read_model

IMAGE_PIXELS = 28 * 28


@dataclass
class Evaluated:
    """What happened to one run folder."""

    run_dir: Path
    skipped: bool  # an identical evaluation was already there
    seconds: float = 0.0


@dataclass
class _Target:
    folder: Path
    cfg: ExperimentConfig  # the run's own config, with the requested shift section


def check_folder(folder: Path, shift: ShiftConfig) -> _Target:
    """The run ``folder`` ready to evaluate, or a one-line :class:`RunError` saying why not:
    not a run folder, not completed, no readable config, no usable model.npz."""
    if not folder.is_dir():
        raise RunError(f"{folder}: not a folder")
    status = runs.read_status(folder)
    if status is None:
        raise RunError(f"{folder}: not a run folder (no status.json)")
    if status.get("state") != State.COMPLETED:
        raise RunError(f"{folder}: the run is {status.get('state')}, not completed")
    try:
        cfg, _ = read_stored(folder / "config.yaml")
    except ConfigError as exc:
        raise RunError(f"{folder / 'config.yaml'}: {one_line(str(exc))}") from None
    read_model(folder, cfg, IMAGE_PIXELS, N_CLASSES)  # a missing or misshapen model: here
    return _Target(folder, dataclasses.replace(cfg, shift=shift))


def up_to_date(folder: Path, shift: ShiftConfig) -> bool:
    """Whether ``folder`` already holds the evaluation ``shift`` asks for: shift.json of this
    schema with these settings, and the arrays it names."""
    try:
        report = runs.read_json(folder / runs.SHIFT_JSON)
        blob = (folder / runs.SHIFT_NPZ).read_bytes()
    except (RunError, OSError):
        return False
    return (
        isinstance(report, dict)
        and report.get("schema_version") == shifted.SCHEMA_VERSION
        and report.get("settings") == shifted.settings_record(shift)
        and report.get("predictions_sha256") == hashlib.sha256(blob).hexdigest()
    )


class _Datasets:
    """Each dataset loaded once for all the folders that use it."""

    def __init__(self, data_dir: str | Path | None, progress: bool) -> None:
        self.data_dir, self.progress = data_dir, progress
        self.loaded: dict[tuple[str, str], Any] = {}

    def get(self, cfg: ExperimentConfig) -> Any:
        key = (cfg.data.dataset, str(self.data_dir or cfg.data.dir))
        if key not in self.loaded:
            where = self.data_dir or cfg.data.dir
            self.loaded[key] = data.load(cfg.data.dataset, where, progress=self.progress)
        return self.loaded[key]


def evaluate_runs(
    folders: list[Path],
    shift: ShiftConfig,
    *,
    data_dir: str | Path | None = None,
    force: bool = False,
    progress: bool = False,
) -> list[Evaluated]:
    """Evaluate every run of ``folders`` under ``shift`` (all checked first)."""
    shifted.check_available(shift)
    targets = [check_folder(folder, shift) for folder in folders]
    datasets = _Datasets(data_dir, progress)
    return [evaluate_target(t.folder, t.cfg, datasets.get(t.cfg), force) for t in targets]


def evaluate_target(
    folder: Path, cfg: ExperimentConfig, dataset: Any, force: bool = False
) -> Evaluated:
    """Evaluate the finished run ``folder`` (config ``cfg``, whose ``shift`` section says
    what on) against ``dataset`` and write the files, unless they are already there."""
    if not force and up_to_date(folder, cfg.shift):
        return Evaluated(folder, skipped=True)
    start = time.perf_counter()
    check_against_data(cfg, dataset.train_labels.shape[0])
    model = read_model(folder, cfg, math.prod(dataset.train_images.shape[1:]), N_CLASSES)
    validation = validation_split(cfg, dataset)
    report, arrays = shifted.evaluate_shifted(
        cfg,
        model,
        validation,
        dataset.test_images,
        dataset.test_labels,
        input_scaling(cfg, dataset),
    )
    runs.write_shift(folder, report, arrays)
    return Evaluated(folder, skipped=False, seconds=time.perf_counter() - start)


def shift_settings(overrides: list[str] | tuple[str, ...]) -> ShiftConfig:
    """The ``shift`` section ``mnistexp evaluate`` uses: every family and every OOD set at
    their default severities, then ``overrides`` (``shift.*`` keys only: the rest of a run's
    config is the run's own)."""
    from mnistexp.config import registries
    from mnistexp.config.loading import load_config

    for item in overrides:
        key = item.partition("=")[0].strip()
        if not key.startswith("shift."):
            raise ConfigError(
                f"--set {one_line(item)}: evaluate takes shift.* keys only "
                "(everything else is the run's own config)"
            )
    every = registries.list_choices()
    defaults = [f"shift.{key}=[{', '.join(every[f'shift.{key}'])}]" for key in ("families", "ood")]
    shift = load_config(None, [*defaults, *overrides]).shift
    shifted.check_available(shift)
    return shift


def expand(paths: list[str]) -> list[Path]:
    """Run folders from the command line: a run folder as given, a folder of runs (a runs
    root) as its run folders in name order; each folder once."""
    out: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir() and not runs.is_run_folder(path):
            found = sorted(runs.iter_run_folders(path))
            if not found:
                raise RunError(f"{path}: neither a run folder nor a folder of runs")
            out += found
        else:
            out.append(path)
    return list(dict.fromkeys(out))
