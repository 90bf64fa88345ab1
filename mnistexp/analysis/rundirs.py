"""Run folders as compare reads them: which folders, and each one's :class:`RunRecord`.

Input paths -> run folders (:func:`collect_folders`: folders, globs or runs roots) -> one
:class:`RunRecord` per usable folder (:func:`load_runs`; an unusable folder becomes one warning
line). The record's identity is recomputed from the folder's config.yaml
(:func:`mnistexp.config.identity.config_hash`), so renamed folders or stale status files cannot
split or merge experiments. metrics.json is read for the :data:`~mnistexp.analysis.columns.METRICS`
columns, checked against the schema version this mnistexp writes; predictions.npz only for McNemar's
test (:func:`read_hits`).
"""

from __future__ import annotations

import glob
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistexp.analysis.columns import BOUNDS, METRICS
from mnistexp.analysis.shiftruns import ShiftRun, read_shift
from mnistexp.config.identity import config_hash, normalised
from mnistexp.config.identity import flatten as flatten_dict
from mnistexp.config.loading import MAX_SEED, ExperimentConfig, read_stored
from mnistexp.core.bounded import read_bounded
from mnistexp.core.errors import ConfigError, RunError, UsageError
from mnistexp.core.paths import check_names
from mnistexp.core.states import State
from mnistexp.eval.fits import fit_problems
from mnistexp.store import runs

if TYPE_CHECKING:
    import numpy as np


def collect_folders(inputs: Sequence[str], root: Path) -> list[Path]:
    """Run folders named by ``inputs`` (folders, globs or runs roots), else all under ``root``."""
    if not inputs:
        return _root_folders(root)
    found: dict[Path, None] = {}
    for item in inputs:
        for path in _expand(item):
            found.setdefault(path, None)
    return list(found)


def _root_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        raise RunError(
            f"{root}: no such runs folder; train runs first (mnistexp train) "
            "or name run folders or config files"
        )
    folders = list(runs.iter_run_folders(root))
    if not folders:
        raise RunError(f"{root}: no run folders to compare")
    return folders


def _expand(item: str) -> list[Path]:
    """One input: a run folder, a runs root (its run folders) or a glob of either."""
    check_names(item, "input")
    paths = [Path(p) for p in sorted(glob.glob(item))] if glob.has_magic(item) else [Path(item)]
    if not paths:
        raise RunError(f"{item}: matches no run folder")
    out: list[Path] = []
    for path in paths:
        if path.is_symlink() and path.is_dir():  # a link the user names: read where it points
            path = path.resolve()
        if runs.is_run_folder(path):
            out.append(path)
        elif path.is_dir():
            out += list(runs.iter_run_folders(path))
        elif not glob.has_magic(item):
            raise RunError(f"{item}: no such run folder, runs root or config file")
    return out


# --------------------------------------------------------------------------- loading runs


@dataclass
class RunRecord:
    """One run folder as compare sees it: identity, state and test metrics."""

    path: Path
    name: str
    seed: int
    chash: str
    config: dict[str, Any]  # flattened resolved config, dotted keys
    state: str
    values: dict[str, float] = field(default_factory=dict)  # metric key -> raw value or NaN
    reliability: dict[str, list] | None = None  # metrics.json test reliability bins
    reliability_ts: dict[str, list] | None = None  # ... after temperature scaling, if fitted
    notes: list[str] = field(default_factory=list)  # what a lenient config read left out
    shift: ShiftRun | None = None  # shift.json, read only for compare --shift


def flatten(cfg: ExperimentConfig) -> dict[str, Any]:
    """``{"data.scaling": "unit", "model.hidden": [100], ...}`` in schema order, with the keys
    that cannot change a number at their defaults (:func:`~mnistexp.config.identity.normalised`)."""
    return flatten_dict(normalised(cfg).to_dict())


def load_runs(folders: Sequence[Path], shift: bool = False) -> tuple[list[RunRecord], list[str]]:
    """Completed and diverged runs of ``folders``, and one warning line per folder left out.

    Diverged runs are returned (their experiments count them) but carry no metrics. ``shift``
    (``compare --shift``) also reads each completed run's shift.json; one that is missing or
    damaged is one warning line and costs only that run's shift columns.
    """
    records: list[RunRecord] = []
    notes: list[str] = []
    configs = ConfigCache()
    for folder in folders:
        status = runs.read_status(folder)
        if status is None:
            notes.append(f"{folder}: no such run folder; left out")
            continue
        state = status["state"]
        if state in (State.COMPLETED, State.DIVERGED):  # a folder with results to read
            try:
                records.append(read_run(folder, state, configs))
                notes += records[-1].notes
                if shift and state == State.COMPLETED:
                    notes += _read_shift(records[-1])
            except UsageError as exc:
                notes.append(f"{exc}; left out")
                continue
        if state != State.COMPLETED:  # running, interrupted or failed ones may have no config yet
            notes.append(_state_note(folder, state, status.get("error")))
    return records, notes


def _read_shift(record: RunRecord) -> list[str]:
    """Set ``record.shift`` from its folder's shift.json; the warning line if it cannot be."""
    try:
        record.shift = read_shift(record.path)
    except RunError as exc:
        return [f"{exc}; its shift columns are left out"]
    return []


def _state_note(folder: Path, state: str, error: str | None) -> str:
    why = f" ({error})" if error else ""
    if state == State.DIVERGED:
        return f"{folder}: diverged{why}; counted, but left out of the statistics"
    if state == State.RUNNING:
        return f"{folder}: still running; left out"
    if state == State.UNREADABLE:
        return f"{folder}: unreadable ({error}); left out (train or sweep retrains it)"
    return f"{folder}: {state}{why}; left out"


def read_run(folder: Path, state: str, configs: ConfigCache | None = None) -> RunRecord:
    """The :class:`RunRecord` of one folder in ``state`` (from its status.json);
    :class:`RunError` if it cannot be used at all. ``configs`` shares the reading of
    configs between the folders of one comparison."""
    record = (configs or ConfigCache()).record(folder, state)
    if state == State.COMPLETED:
        report = runs.read_json(folder / "metrics.json")
        values, record.reliability, record.reliability_ts = _read_metrics(
            folder / "metrics.json", report
        )
        record.values = values
        record.notes += _damaged_extras(folder, report, record.reliability is None)
        record.notes += [f"{folder}: {problem}" for problem in fit_problems(report)]
    return record


class ConfigCache:
    """Run configs as compare needs them: name, seed, identity and flattened keys.

    A folder's config.json (the JSON copy of config.yaml that runs write) is parsed instead
    of the YAML, and the folders of one experiment, which differ only in their seed, share
    one validation, one identity and one flattening; so a folder costs a JSON parse. Folders
    without a usable config.json (written before it existed) are read from config.yaml.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, str, dict[str, Any]]] = {}

    def record(self, folder: Path, state: str) -> RunRecord:
        raw = _config_json(folder)
        if raw is None or not _is_seed(raw.get("seed")):
            cfg, notes = _read_config(folder)
            flat = flatten(cfg)
            return RunRecord(folder, cfg.name, cfg.seed, config_hash(cfg), flat, state, notes=notes)
        key = json.dumps({k: v for k, v in raw.items() if k != "seed"}, sort_keys=True)
        if key not in self._seen:
            cfg, notes = _read_config(folder, raw)
            if notes:  # kept out of the cache: every folder gets its own notes
                flat = flatten(cfg)
                return RunRecord(
                    folder, cfg.name, cfg.seed, config_hash(cfg), flat, state, notes=notes
                )
            self._seen[key] = (cfg.name, config_hash(cfg), flatten(cfg))
        name, chash, flat = self._seen[key]
        seed: int = raw["seed"]
        return RunRecord(folder, name, seed, chash, {**flat, "seed": seed}, state)


def _config_json(folder: Path) -> dict[str, Any] | None:
    """The run's config.json as a dict; None if it has none or it is not a JSON object."""
    try:
        raw = runs.parse_json(read_bounded(folder / runs.CONFIG_JSON))
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def _is_seed(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEED


def _damaged_extras(folder: Path, report: Any, no_bins: bool) -> list[str]:
    """One note if the figures will leave out part of a usable run: its history.csv is not
    UTF-8 text (no learning curves), or the test reliability bins its metrics.json
    (``report``) has are malformed or all empty (``no_bins``: they were not usable)."""
    notes = []
    history = folder / "history.csv"
    try:
        read_bounded(history).decode("utf-8")
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        why = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror
        notes.append(f"{history}: unreadable ({why}); its learning curves are left out")
    try:
        test = report["test"]
    except (KeyError, TypeError):
        return notes
    if "reliability" in test and no_bins:
        notes.append(
            f"{folder / 'metrics.json'}: test reliability bins malformed or empty; "
            "left out of the reliability diagram"
        )
    return notes


def _read_config(
    folder: Path, raw: dict[str, Any] | None = None
) -> tuple[ExperimentConfig, list[str]]:
    """The run's resolved config, read leniently (a folder of another mnistexp version still
    loads, with notes naming what no longer validates); a RunError if it is no config.
    ``raw``: the config already read from config.json."""
    try:
        name = "config.yaml" if raw is None else runs.CONFIG_JSON
        return read_stored(folder / name, raw)
    except ConfigError as exc:
        raise RunError(str(exc)) from None


def _read_metrics(
    path: Path, report: Any
) -> tuple[dict[str, float], dict[str, list] | None, dict[str, list] | None]:
    """Test metrics and the reliability bins of a metrics.json before and after temperature
    scaling (None where absent); a RunError if it has no test metrics.

    Files without ``schema_version`` (written before it existed) and older versions are read
    for the fields they have; a newer version is refused with one line, since its fields may
    mean something else. Malformed reliability bins are dropped, not passed on to the plots.
    """
    if not isinstance(report, dict):
        raise RunError(f"{path}: not a metrics report (a JSON object was expected)")
    _check_schema(path, report.get("schema_version"))
    test = report.get("test")
    if not isinstance(test, dict) or not _is_number(test.get("accuracy")):
        raise RunError(f"{path}: no test metrics")
    if not math.isfinite(test["accuracy"]):
        raise RunError(f"{path}: test accuracy is {test['accuracy']}, not a number to compare")
    raw = {key: m.value_in(report) for key, m in METRICS.items()}
    values = {key: float(v) if _is_number(v) else math.nan for key, v in raw.items()}
    broken = [
        f"{m.section}.{m.field}"
        for key, m in METRICS.items()
        if _is_number(raw[key]) and not math.isfinite(raw[key])
    ]
    values |= _intervals(report)
    if broken:
        raise RunError(f"{path}: {', '.join(broken)} not finite; the run's numbers are damaged")
    scaled = report.get("test_temperature_scaled")
    scaled_bins = scaled.get("reliability") if isinstance(scaled, dict) else None
    bins = [test.get("reliability"), scaled_bins]
    before, after = (b if _valid_bins(b) else None for b in bins)
    return values, before, after


def _check_schema(path: Path, version: Any) -> None:
    from mnistexp.eval.metrics import SCHEMA_VERSION

    if version is None:
        return  # written before metrics.json had a version: read what is there
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RunError(f"{path}: schema_version {version!r} is not a version number")
    if version > SCHEMA_VERSION:
        raise RunError(
            f"{path}: schema_version {version} is newer than this mnistexp reads "
            f"({SCHEMA_VERSION}); compare it with the mnistexp that wrote it"
        )


def _valid_bins(bins: Any) -> bool:
    """Reliability bins as metrics.py writes them: M + 1 edges, M counts, accuracies and mean
    confidences (numbers; accuracy and confidence null in empty bins)."""
    if not isinstance(bins, dict):
        return False
    edges, count = bins.get("edges"), bins.get("count")
    if not (isinstance(edges, list) and isinstance(count, list) and len(edges) >= 2):
        return False
    m = len(edges) - 1
    columns = [bins.get("accuracy"), bins.get("mean_confidence")]
    numbers = [*edges, *count]  # the checks run in C (map), as compare reads 10,000s of these
    return (
        all(map(_NUMBER_TYPES.__contains__, map(type, numbers)))
        and all(map(math.isfinite, numbers))
        and len(count) == m
        and sum(count) > 0
        and min(count) >= 0
        and all(
            isinstance(c, list)
            and len(c) == m
            and all(map(_NUMBER_OR_NULL.__contains__, map(type, c)))
            for c in columns
        )
    )


_NUMBER_TYPES = frozenset((int, float))  # exactly: bool, a subclass of int, is no number
_NUMBER_OR_NULL = _NUMBER_TYPES | {type(None)}


def _intervals(report: dict[str, Any]) -> dict[str, float]:
    """``{"<metric>:boot_low": ..., "<metric>:boot_high": ...}`` for the metrics whose
    bootstrap interval metrics.json (schema 2) holds as two finite, ordered numbers."""
    out = {}
    for key, metric in METRICS.items():
        bounds = metric.interval_in(report)
        if (
            isinstance(bounds, list)
            and len(bounds) == 2
            and all(_is_number(b) and math.isfinite(b) for b in bounds)
            and bounds[0] <= bounds[1]
        ):
            low, high = (f"{key}{suffix}" for suffix in BOUNDS)
            out[low], out[high] = float(bounds[0]), float(bounds[1])
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read_hits(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """Correct-prediction mask (n,) bool and labels (n,) from a run's predictions.npz.

    Used only once it agrees with the rest of the folder: at least one row, integer labels,
    as many rows and the same accuracy as metrics.json's test section, and (when env.json
    records the data files' checksums) labels that are exactly one of the label files the run
    was trained with. Anything else is a one-line RunError: a paired test on predictions that
    are not the run's test predictions would be a wrong number, not a missing one.
    """
    path = run / "predictions.npz"
    try:
        arrays = runs.read_npz(path, ("predictions", "labels"))
    except runs.NPZ_ERRORS as exc:
        raise RunError(f"{path}: unreadable ({type(exc).__name__})") from None
    predictions, labels = arrays["predictions"], arrays["labels"]
    if predictions.ndim != 1 or predictions.shape != labels.shape:
        raise RunError(
            f"{path}: predictions {predictions.shape} and labels {labels.shape} do not match"
        )
    if labels.size == 0:
        raise RunError(f"{path}: no rows")
    if labels.dtype.kind not in "iu" or predictions.dtype.kind not in "iu":
        raise RunError(f"{path}: labels and predictions must be integers")
    hits = predictions == labels
    _check_against_metrics(run, path, hits)
    _check_labels_file(run, path, labels)
    return hits, labels


def _check_against_metrics(run: Path, path: Path, hits: np.ndarray) -> None:
    """The rows and the accuracy of predictions.npz are those metrics.json reports."""
    report = runs.read_json(run / "metrics.json")
    test = report.get("test") if isinstance(report, dict) else None
    n = test.get("n") if isinstance(test, dict) else None
    accuracy = test.get("accuracy") if isinstance(test, dict) else None
    if _is_number(n) and n != hits.size:
        raise RunError(f"{path}: {hits.size} rows, but metrics.json has {n} test images")
    if not _is_number(accuracy) or abs(float(hits.mean()) - float(accuracy or 0)) > 1e-9:
        raise RunError(
            f"{path}: accuracy {hits.mean():.6g} does not match metrics.json's test accuracy "
            f"{accuracy!r}; not this run's test predictions"
        )


def _check_labels_file(run: Path, path: Path, labels: np.ndarray) -> None:
    """The labels are one of the run's label files, by env.json's sha256 of its IDX bytes."""
    import hashlib

    from mnistexp.data.idx import idx_bytes

    try:
        env = runs.read_json(run / "env.json")
        recorded = set(env["data"]["sha256"].values())
    except (RunError, KeyError, TypeError, AttributeError):
        return  # written before env.json recorded the data: the metrics check has to do
    if labels.min() < 0 or labels.max() > 255:
        raise RunError(f"{path}: labels outside 0..255 are not the test labels")
    digest = hashlib.sha256(idx_bytes(labels.astype("uint8"))).hexdigest()
    if digest not in recorded:
        raise RunError(f"{path}: the labels are not the test labels the run was evaluated on")
