"""A run's evaluation beyond the test set as ``compare --shift`` reads it.

:func:`read_shift` parses ``shift.json`` (schema 1, :mod:`mnistexp.pipeline.shifted`) into a
:class:`ShiftRun`; :func:`read_arrays` reads ``shift_predictions.npz`` once, after checking
its bytes against the report's ``predictions_sha256``; :func:`read_test` reads the unshifted
test probabilities of ``predictions.npz``. Every file goes through the bounded reader
(:func:`~mnistexp.core.bounded.read_bounded`: regular files only, never blocking, at most
:data:`~mnistexp.core.bounded.MAX_RUN_FILE_BYTES`), and an archive may not unpack to more than
:data:`MAX_ARRAY_BYTES`. Reading is lenient: whatever is missing or damaged is one
:class:`~mnistexp.core.errors.RunError` line naming the file, which costs compare only that
run's shift columns.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnistexp.core.bounded import read_bounded
from mnistexp.core.errors import RunError
from mnistexp.store import runs

SCHEMA_VERSION = 1
"""The shift.json layout this reader knows (:data:`mnistexp.pipeline.shifted.SCHEMA_VERSION`)."""

MAX_ARRAY_BYTES = 512 << 20
"""The most a shift_predictions.npz may unpack to (the default evaluation holds about 6 MB of
float16; 29 sets of 10,000 images). A small archive that claims more is damage, refused before
anything is unpacked."""

SET_FIELDS = ("family", "severity", "n", "checksum", "probs")
"""The entries of a labelled set that are not metric sections."""


@dataclass(frozen=True)
class ShiftSet:
    """One labelled set of a run's shift.json: ``key`` (``rotate/15``, ``digits``), the npz key
    of its probabilities and, per variant (``raw``, ``temperature``, ...), its numbers with the
    selective scores flattened in (``aurc``, ``acc_at_90``, ...)."""

    key: str
    family: str
    severity: float | None
    n: int
    checksum: str
    probs: str
    variants: dict[str, dict[str, float]]


@dataclass(frozen=True)
class OodSet:
    """One out-of-distribution set: variant -> score (msp, entropy, energy) -> metric -> value."""

    name: str
    n: int
    checksum: str
    variants: dict[str, dict[str, dict[str, float]]]


@dataclass(frozen=True)
class ShiftRun:
    """A run's shift.json, checked: what was evaluated and the numbers of every set."""

    settings: dict[str, Any]
    bins: int | None
    sets: dict[str, ShiftSet]
    ood: dict[str, OodSet]
    sha256: str

    @property
    def settings_key(self) -> str:
        """The settings as canonical text: runs are pooled only over equal ones."""
        return json.dumps(self.settings, sort_keys=True)


def read_shift(folder: Path) -> ShiftRun:
    """The :class:`ShiftRun` of ``folder``; a one-line RunError if shift.json is missing or
    is not a shift report this mnistexp reads."""
    path = folder / runs.SHIFT_JSON
    try:
        report = runs.read_json(path)
    except RunError as exc:
        if str(exc).endswith(": missing"):
            raise RunError(f"{folder}: no {runs.SHIFT_JSON} (mnistexp evaluate adds it)") from None
        raise
    try:
        return _parse(report)
    except (TypeError, ValueError, KeyError) as exc:
        raise RunError(f"{path}: not a shift report this mnistexp reads ({exc})") from None


def _parse(report: Any) -> ShiftRun:
    if not isinstance(report, dict):
        raise TypeError("a JSON object was expected")
    version = report.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"schema_version {version!r}, this mnistexp reads {SCHEMA_VERSION}")
    settings, sets, ood = (_dict(report.get(k), k) for k in ("settings", "sets", "ood"))
    sha = report.get("predictions_sha256")
    if not (isinstance(sha, str) and len(sha) == 64):
        raise ValueError("no predictions_sha256")
    bins = _dict(report.get("conventions", {}), "conventions").get("bins")
    return ShiftRun(
        settings,
        bins if _is_count(bins) else None,
        {key: _set(key, _dict(entry, key)) for key, entry in sets.items()},
        {name: _ood(name, _dict(entry, name)) for name, entry in ood.items()},
        sha,
    )


def _set(key: str, entry: dict[str, Any]) -> ShiftSet:
    severity = entry.get("severity")
    if not (isinstance(entry.get("family"), str) and (severity is None or _is_number(severity))):
        raise ValueError(f"set {key}: no family or severity")
    if not (_is_count(entry.get("n")) and _strings(entry, "checksum", "probs")):
        raise ValueError(f"set {key}: no n, checksum or probs")
    variants = {
        name: _numbers(section)
        for name, section in entry.items()
        if name not in SET_FIELDS and isinstance(section, dict)
    }
    sev = None if severity is None else float(severity)
    return ShiftSet(
        key, entry["family"], sev, entry["n"], entry["checksum"], entry["probs"], variants
    )


def _ood(name: str, entry: dict[str, Any]) -> OodSet:
    if not (_is_count(entry.get("n")) and _strings(entry, "checksum")):
        raise ValueError(f"ood set {name}: no n or checksum")
    variants = {
        variant: {score: _numbers(m) for score, m in scores.items() if isinstance(m, dict)}
        for variant, scores in entry.items()
        if variant not in ("n", "checksum") and isinstance(scores, dict)
    }
    return OodSet(name, entry["n"], entry["checksum"], variants)


def _numbers(section: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a metrics section; its ``selective`` scores flattened in."""
    flat = {**section, **(section.get("selective") or {})}
    return {k: float(v) for k, v in flat.items() if _is_number(v) and math.isfinite(v)}


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{what} is not an object")
    return value


def _strings(entry: dict[str, Any], *keys: str) -> bool:
    return all(isinstance(entry.get(k), str) for k in keys)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# --------------------------------------------------------------------------- arrays


def read_arrays(folder: Path, run: ShiftRun) -> dict[str, np.ndarray]:
    """Every array of ``folder``'s shift_predictions.npz, read once; a one-line RunError if it
    cannot be read or its SHA-256 is not the one ``run`` (its shift.json) names."""
    path = folder / runs.SHIFT_NPZ
    try:
        blob = read_bounded(path)
    except FileNotFoundError:
        raise RunError(f"{path}: missing, though shift.json names it") from None
    except OSError as exc:
        raise RunError(f"{path}: unreadable ({exc.strerror or exc})") from None
    if hashlib.sha256(blob).hexdigest() != run.sha256:
        raise RunError(
            f"{path}: SHA-256 differs from shift.json's predictions_sha256 "
            "(the arrays were replaced or damaged)"
        )
    try:
        return unpack(blob)
    except runs.NPZ_ERRORS as exc:
        raise RunError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None


def unpack(blob: bytes, limit: int = MAX_ARRAY_BYTES) -> dict[str, np.ndarray]:
    """The arrays of the .npz bytes ``blob`` (never unpickling); ValueError if its members
    claim more than ``limit`` bytes unpacked."""
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        claimed = sum(info.file_size for info in archive.infolist())
    if claimed > limit:
        raise ValueError(f"unpacks to {claimed} bytes, more than {limit}")
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


@dataclass(frozen=True)
class TestOutputs:
    """The unshifted test set of predictions.npz: probabilities (n, K) as stored (float32),
    labels (n,) and the run's predictions (n,), the argmax of its raw outputs."""

    probs: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray


def read_test(folder: Path, accuracy: float) -> TestOutputs:
    """``folder``'s predictions.npz; a one-line RunError unless it holds test probabilities,
    labels and predictions of one length whose accuracy is ``accuracy`` (metrics.json's)."""
    path = folder / "predictions.npz"
    try:
        arrays = runs.read_npz(path, ("probs", "labels", "predictions"))
    except runs.NPZ_ERRORS as exc:
        raise RunError(f"{path}: unreadable ({type(exc).__name__})") from None
    probs, labels, pred = arrays["probs"], arrays["labels"], arrays["predictions"]
    n = labels.shape[0] if labels.ndim == 1 else -1
    if n < 1 or probs.ndim != 2 or probs.shape[0] != n or pred.shape != (n,):
        raise RunError(f"{path}: probs, labels and predictions do not match in shape")
    if labels.dtype.kind not in "iu" or pred.dtype.kind not in "iu":
        raise RunError(f"{path}: labels and predictions must be integers")
    if abs(float(np.mean(pred == labels)) - accuracy) > 1e-9:
        raise RunError(f"{path}: accuracy differs from metrics.json; not this run's test outputs")
    return TestOutputs(probs, labels, pred)
