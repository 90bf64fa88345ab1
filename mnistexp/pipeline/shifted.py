"""Evaluation beyond the test set: the ``shift.json`` report and ``shift_predictions.npz``.

A trained model is scored on shifted copies of the test images (``shift.families``: rotation,
translation, noise, contrast) and on the UCI optical digits (other writers, another scanner),
before and after every recalibration map of ``eval.recalibration``, each map fitted once on
the in-distribution validation split (Ovadia et al. 2019: a map fitted there need not carry
over). Every labelled set also gets selective-prediction scores (risk-coverage, AURC,
E-AURC, accuracy at 90/95/99% coverage). Out-of-distribution sets (``shift.ood``) are scored
against the unshifted test set with every OOD score of :data:`~mnistexp.eval.ood.OOD_SCORES`,
for the raw probabilities and, for the probability-based scores, after every map.

Each generated set is recorded with its SHA-256 (:func:`~mnistexp.data.shifts.set_checksum`),
so a reader can tell that two runs were scored on the same bytes. Rotation by 0 degrees (and
every other identity severity) gives the test images unchanged, so its numbers are the
test split's own (``metrics.json``'s ``test`` and ``test_recalibrated`` sections).

The probabilities of every set are kept (float16, :data:`PROBS_DTYPE`; sets with the same
bytes share one copy, named by each set's ``probs``) so that compare can average seeds into an
ensemble; metrics keep only their scalar fields (no reliability bins or confusion matrices).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mnistexp.core.schema import ExperimentConfig, ShiftConfig, plain
from mnistexp.data.datasets import IMAGE_SHAPE
from mnistexp.data.digits import load_uci_digits, sklearn_version
from mnistexp.data.ood import OOD_SETS
from mnistexp.data.shifts import SHIFTS, labelled_shifted_set, set_checksum
from mnistexp.eval import metrics
from mnistexp.eval.ood import OOD_SCORES, ood_report
from mnistexp.eval.recalibration import RECALIBRATIONS, Fitted, predictions_after
from mnistexp.eval.selective import selective_report
from mnistexp.learning.model import MLP, logits
from mnistexp.pipeline.overlap import metric_pool, one_blas_thread, prefetched
from mnistexp.pipeline.splits import Scaler, Split

SCHEMA_VERSION = 1
DIGITS = "digits"
"""The family name of the UCI optical digits in ``shift.families``."""
OOD_SEED = 0
"""Seed of the out-of-distribution sets: fixed, so every run is scored on the same images."""
PROBABILITY_SCORES = ("msp", "entropy")
"""OOD scores read from probabilities alone, so a recalibration map changes them (energy reads
the logits, which a map does not produce)."""

PROBS_DTYPE = np.float16
"""How shift_predictions.npz stores probabilities: 2 bytes each keeps the default evaluation
(29 distinct sets of 10,000 images) near 6 MB, under the 10 MB a run folder may spend on
predictions. float16 keeps 11 significant bits: a relative error of at most 4.9e-4 above
6.1e-5 and an absolute one of at most 3e-8 below; what compare's seed ensembles read."""


@dataclass(frozen=True)
class EvalSet:
    """One generated set: ``key`` names it in shift.json (``rotate/15``, ``digits``,
    ``ood/letters``); images uint8 (n, 28, 28), labels (n,) or None for OOD sets; checksum
    the :func:`~mnistexp.data.shifts.set_checksum` of both."""

    key: str
    family: str
    severity: float | None
    images: np.ndarray
    labels: np.ndarray | None
    checksum: str


def requested(shift: ShiftConfig) -> bool:
    """Whether ``shift`` asks for any evaluation beyond the test set."""
    return bool(shift.families or shift.ood)


def settings_record(shift: ShiftConfig) -> dict[str, Any]:
    """``shift`` as shift.json records it (lists, not tuples): what decides whether an
    evaluation already in a folder is the one asked for."""
    return plain(asdict(shift))


def severity_key(family: str, severity: float) -> str:
    """``rotate/15``, ``contrast/0.8``: the set's name in shift.json and the npz."""
    return f"{family}/{severity:g}"


def check_available(shift: ShiftConfig) -> None:
    """Raise the one-line :class:`~mnistexp.core.errors.DataError` of a requested set that
    cannot be made here (the UCI digits without scikit-learn), before any work starts."""
    if DIGITS in shift.families:
        sklearn_version()


@functools.cache
def _uci_digits() -> tuple[np.ndarray, np.ndarray]:
    """The UCI digits in MNIST's format, converted once per process (read-only arrays)."""
    images, labels = load_uci_digits()
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def labelled_sets(
    shift: ShiftConfig, test_images: np.ndarray, test_labels: np.ndarray
) -> Iterator[EvalSet]:
    """The shifted test sets and the UCI digits, in ``shift.families`` order, one at a time
    (a 13-angle rotation grid of 10,000 images is not held in memory at once)."""
    source = set_checksum(test_images, None)
    unshifted = set_checksum(test_images, test_labels)
    for family in shift.families:
        if family == DIGITS:
            images, labels = _uci_digits()
            yield EvalSet(DIGITS, DIGITS, None, images, labels, set_checksum(images, labels))
            continue
        for severity in map(float, getattr(shift, family)):
            if severity == SHIFTS[family].identity:  # the test images, as they are
                shifted, checksum = test_images, unshifted
            else:
                made = labelled_shifted_set(family, test_images, test_labels, severity, source)
                shifted, checksum = made
            key = severity_key(family, severity)
            yield EvalSet(key, family, severity, shifted, test_labels, checksum)


def ood_sets(shift: ShiftConfig) -> Iterator[EvalSet]:
    """The out-of-distribution sets of ``shift.ood``, ``shift.ood_size`` images each."""
    for name in shift.ood:
        images = OOD_SETS[name].make(shift.ood_size, OOD_SEED)
        yield EvalSet(f"ood/{name}", name, None, images, None, set_checksum(images, None))


def fit_maps(cfg: ExperimentConfig, validation: Split | None, model: MLP) -> dict[str, Any]:
    """Method -> its :class:`Fitted` map on the validation split, or a ``skipped`` reason, for
    every method of ``eval.recalibration`` (temperature also needs ``temperature_scaling``)."""
    out: dict[str, Any] = {}
    if validation is None:
        why = "no validation split (data.validation: 0) to fit it on"
        return {name: why for name in cfg.eval.recalibration}
    val_log_p = metrics.log_probabilities(logits(model, validation.x), cfg.loss.output)
    with one_blas_thread():
        for name in cfg.eval.recalibration:
            if name == "temperature" and not cfg.eval.temperature_scaling:
                out[name] = "eval.temperature_scaling is false"
            else:
                out[name] = RECALIBRATIONS[name].fit(val_log_p, validation.y, cfg.eval.bins)
    return out


def evaluate_shifted(
    cfg: ExperimentConfig,
    model: MLP,
    validation: Split | None,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    inputs: Scaler,
    shift: ShiftConfig | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(shift.json content, shift_predictions.npz arrays) for ``shift`` (default ``cfg.shift``).

    ``test_images`` uint8 (n, 28, 28) or (n, 784) and ``test_labels`` (n,) are the raw test
    set; ``inputs`` scales images as the run was trained. The metrics' inputs of every set
    are held until the pool computes them (about 3.4 MB a set with one map: some 100 MB for
    the default evaluation), one set's images at a time."""
    shift = cfg.shift if shift is None else shift
    test_images = test_images.reshape(len(test_images), *IMAGE_SHAPE)  # datasets keep (n, 784)
    maps = fit_maps(cfg, validation, model)
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "settings": settings_record(shift),
        "conventions": {"bins": cfg.eval.bins, "output": cfg.loss.output, "ood_seed": OOD_SEED},
        "maps": {name: _map_record(m) for name, m in maps.items()},
        "sets": {},
        "ood": {},
    }
    arrays: dict[str, np.ndarray] = {}
    pixels = math.prod(IMAGE_SHAPE)
    buffer = np.empty((len(test_images), pixels), dtype=np.dtype(cfg.train.dtype))

    def forward(images: np.ndarray) -> np.ndarray:
        """The model's logits (n, K) of raw images, scaled into the reused ``buffer``."""
        out = buffer[: len(images)] if len(images) <= len(buffer) else None
        return logits(model, inputs(images, out))

    test_scores, test_z = None, None
    if shift.ood:
        test_z = forward(test_images)  # also the identity severities' logits, below
        test_scores = _ood_scores(test_z, metrics.log_probabilities(test_z, cfg.loss.output), maps)
    # first every forward pass (BLAS on all cores), then every set's metrics in a pool (a
    # BLAS product waiting on a thread that a metric holds would stall both)
    stored: dict[str, str] = {}  # checksum -> the npz key holding that set's probs (its first)
    jobs: dict[str, dict[str, tuple[Any, ...]]] = {}  # checksum -> variant -> metric inputs
    entries: list[tuple[str, str, float | None, int, str]] = []  # key, family, severity, n, sum
    sets = labelled_sets(shift, test_images, test_labels)
    for s in prefetched(sets):
        assert s.labels is not None  # labelled sets carry labels
        checksum = s.checksum
        if checksum not in jobs:  # a set met before (rotate/0, noise/0, ...): once
            unshifted = s.images is test_images  # an identity severity: the test set
            z = test_z if unshifted and test_z is not None else forward(s.images)
            log_p = metrics.log_probabilities(z, cfg.loss.output)
            jobs[checksum] = _metric_inputs(cfg, z, log_p, s.labels, maps)
            stored[checksum] = f"{s.key}/probs"
            arrays[stored[checksum]] = jobs[checksum]["raw"][0].astype(PROBS_DTYPE)
        if s.family == DIGITS:
            arrays[f"{s.key}/labels"] = s.labels.astype(np.int64)
        entries.append((s.key, s.family, s.severity, len(s.labels), checksum))
    with metric_pool() as pool:
        scored = {
            checksum: {v: pool.submit(labelled_metrics, *args) for v, args in variants.items()}
            for checksum, variants in jobs.items()
        }
        for key, family, severity, n, checksum in entries:
            report["sets"][key] = {
                "family": family,
                "severity": severity,
                "n": n,
                "checksum": checksum,
                "probs": stored[checksum],
                **{name: copy.deepcopy(job.result()) for name, job in scored[checksum].items()},
            }
    for s in ood_sets(shift):
        assert test_scores is not None  # computed above whenever shift.ood is set
        z = forward(s.images)
        log_p = metrics.log_probabilities(z, cfg.loss.output)
        scores = _ood_scores(z, log_p, maps)
        report["ood"][s.family] = {
            "n": len(s.images),
            "checksum": s.checksum,
            **{
                variant: {
                    name: ood_report(test_scores[variant][name], values)
                    for name, values in by_score.items()
                }
                for variant, by_score in scores.items()
            },
        }
        arrays[f"{s.key}/probs"] = np.exp(log_p).astype(PROBS_DTYPE)
    return report, arrays


def _metric_inputs(
    cfg: ExperimentConfig,
    z: np.ndarray,
    log_p: np.ndarray,
    labels: np.ndarray,
    maps: dict[str, Any],
) -> dict[str, tuple[Any, ...]]:
    """``raw`` and one entry per map: the arguments of :func:`labelled_metrics` for that
    section of the set. The maps are applied here, on the calling thread, which alone sets
    the BLAS threads (a product's bits depend on their number); the metrics use no BLAS."""
    pred = z.argmax(axis=1)
    bins = cfg.eval.bins
    out: dict[str, tuple[Any, ...]] = {"raw": (np.exp(log_p), log_p, labels, pred, bins)}
    with one_blas_thread():
        for name, fitted in maps.items():
            if not isinstance(fitted, Fitted):
                continue
            q, log_q = fitted.apply(log_p)
            p = predictions_after(q, log_p, pred) if RECALIBRATIONS[name].changes_accuracy else pred
            out[name] = (q, log_q, labels, p, bins)
    return out


def labelled_metrics(
    probs: np.ndarray,
    log_probs: np.ndarray | None,
    labels: np.ndarray,
    pred: np.ndarray,
    bins: int,
    smooth: bool = True,
) -> dict[str, Any]:
    """:func:`~mnistexp.eval.metrics.summary` and the selective scores of ``probs`` (n, K)
    against ``labels`` (n,) with predictions ``pred`` (n,): one labelled set's section of
    shift.json. compare scores its seed ensembles with it too (``log_probs`` None: the NLL
    then comes from ``probs``, floored as :func:`~mnistexp.eval.metrics.nll` says;
    ``smooth=False``: no smooth ECE, the costly part of a small set)."""
    scalars = metrics.summary(probs, labels, pred, bins, log_probs, smooth)
    confidence = probs[np.arange(len(labels)), pred]
    return {**scalars, "selective": selective_report(confidence, pred == labels)}


def _ood_scores(
    z: np.ndarray, log_p: np.ndarray, maps: dict[str, Any]
) -> dict[str, dict[str, np.ndarray]]:
    """Variant (``raw`` or a map) -> OOD score name -> in-distribution-ness (n,)."""
    out = {"raw": {name: score.score(z, log_p) for name, score in OOD_SCORES.items()}}
    for name, fitted in maps.items():
        if isinstance(fitted, Fitted):
            _, log_q = fitted.apply(log_p)
            out[name] = {s: OOD_SCORES[s].score(log_q, log_q) for s in PROBABILITY_SCORES}
    return out


def _map_record(fitted: Any) -> dict[str, Any]:
    """A map's parameters and fit record as in metrics.json, or why it was skipped."""
    if not isinstance(fitted, Fitted):
        return {"skipped": fitted}
    return {**fitted.params, **({} if fitted.fit is None else {"fit": fitted.fit.as_json()})}
