"""Percentile-bootstrap intervals of one run's test metrics: the uncertainty from the test set.

A resample draws n test images with replacement (``rng.integers``), B times. Every statistic
is a mean or a binned sum over the drawn images, so a chunk of resamples is one gather of an
(chunk, n) index array and a few ``np.bincount`` calls with per-resample offsets: no Python
loop over resamples (1,000 resamples of 10,000 images take about 0.2 s). The interval is the
(1 - level) / 2 and (1 + level) / 2 quantiles of the B resampled values (numpy's default linear
interpolation): Efron's percentile interval.

What it covers: the variation of a metric over draws of the test set, for this trained network.
It says nothing about seed-to-seed variation (compare's t-intervals over seeds do), and for the
ECE it is an interval for the binned, plug-in ECE, which is itself biased upwards for
well-calibrated models (see :mod:`mnistexp.eval.calibration`).

The smooth ECE is resampled at the full sample's bandwidth sigma* (re-solving the fixed point
per resample would cost 20 times more), which the conventions record.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnistexp.eval import calibration
from mnistexp.eval.metrics import NLL_FLOOR, bin_indices

DEFAULT_RESAMPLES = 1000
LEVEL = 0.95
STREAM = 15
"""Spawn key of the bootstrap's random stream: seeded by the run's seed, independent of the
training stream (which draws from ``default_rng(seed)``)."""
CHUNK = 100  # resamples per gather: (100, n) indices, about 8 MB for n = 10,000

STATISTICS = ("accuracy", "nll", "brier", "ece", "smooth_ece")


def per_sample(
    probs: np.ndarray, log_probs: np.ndarray, labels: np.ndarray, predictions: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-image quantities (n,) whose means (or binned sums) are the metrics: ``correct``,
    ``confidence``, ``nll`` (floored as in :func:`mnistexp.eval.metrics.nll`) and ``brier``."""
    rows = np.arange(len(labels))
    diff = np.array(probs, dtype=np.float64)  # (n, K), a copy
    diff[rows, labels] -= 1.0
    return {
        "correct": (predictions == labels).astype(np.float64),
        "confidence": np.asarray(probs, dtype=np.float64)[rows, predictions],
        "nll": -np.maximum(np.asarray(log_probs, np.float64)[rows, labels], np.log(NLL_FLOOR)),
        "brier": np.sum(diff**2, axis=1),
    }


def resample_statistics(
    sample: dict[str, np.ndarray],
    bins: int,
    sigma: float | None,
    resamples: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Each statistic of ``STATISTICS`` over ``resamples`` bootstrap draws: name -> (B,);
    without ``sigma`` the smooth ECE is left out. ``bin_accuracy`` (B, M) is the accuracy in
    each equal-width ECE bin (NaN where a resample left the bin empty)."""
    n = sample["correct"].size
    bin_of = bin_indices(sample["confidence"], bins)  # (n,) equal-width ECE bins
    out: dict[str, list[np.ndarray]] = {name: [] for name in (*STATISTICS, "bin_accuracy")}
    operator = calibration.lattice_operator(sample["confidence"]) if sigma is not None else None
    residual = sample["correct"] - sample["confidence"]
    for start in range(0, resamples, CHUNK):
        c = min(CHUNK, resamples - start)
        idx = rng.integers(0, n, size=(c, n))  # (c, n) drawn images
        for name in ("correct", "nll", "brier"):
            out["accuracy" if name == "correct" else name].append(sample[name][idx].mean(axis=1))
        drawn = (bin_of[idx], sample["confidence"][idx], sample["correct"][idx])
        ece, bin_accuracy = _ece(*drawn, bins)
        out["ece"].append(ece)
        out["bin_accuracy"].append(bin_accuracy)
        if sigma is not None:
            rows = (idx + n * np.arange(c)[:, None]).ravel()  # resample r owns r*n..
            counts = np.bincount(rows, minlength=c * n).reshape(c, n).astype(np.float64)
            smooth = calibration.weighted_smooth_ece(operator, residual, counts, sigma)
            out["smooth_ece"].append(smooth)
    return {name: np.concatenate(parts) for name, parts in out.items() if parts}


def _ece(
    bin_of: np.ndarray, conf: np.ndarray, hits: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-width ECE (c,) and per-bin accuracy (c, M) of c resamples given per-draw bins,
    confidences and hits (c, n)."""
    c, n = bin_of.shape
    groups = (bin_of + bins * np.arange(c)[:, None]).ravel()  # resample r owns r*M..
    count = np.bincount(groups, minlength=c * bins).reshape(c, bins)
    conf_sum = np.bincount(groups, conf.ravel(), c * bins).reshape(c, bins)
    hit_sum = np.bincount(groups, hits.ravel(), c * bins).reshape(c, bins)
    ece = np.abs(hit_sum - conf_sum).sum(axis=1) / n  # sum_m |B_m|/n |acc_m - conf_m|
    accuracy = np.full((c, bins), np.nan)
    np.divide(hit_sum, count, out=accuracy, where=count > 0)
    return ece, accuracy


def intervals(
    sample: dict[str, np.ndarray],
    bins: int,
    sigma: float | None,
    seed: int,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = LEVEL,
) -> dict[str, Any]:
    """JSON-ready percentile intervals: ``{"level", "resamples", "accuracy": [lo, hi], ...,
    "reliability": {"accuracy_low": [M], "accuracy_high": [M]}}`` (the per-bin band of the
    reliability diagram, from the same resamples)."""
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM,)))
    values = resample_statistics(sample, bins, sigma, resamples, rng)
    q = [(1.0 - level) / 2.0, (1.0 + level) / 2.0]
    out: dict[str, Any] = {"level": level, "resamples": resamples}
    for name in STATISTICS:
        if name in values:
            low, high = np.quantile(values[name], q)
            out[name] = [float(low), float(high)]
    full = np.bincount(bin_indices(sample["confidence"], bins), minlength=bins) > 0
    out["reliability"] = _band(values["bin_accuracy"], full, q)
    return out


def _band(draws: np.ndarray, full: np.ndarray, q: list[float]) -> dict[str, list[float | None]]:
    """Percentile band of the accuracy in each bin from resampled accuracies (B, M):
    ``{"accuracy_low": [M], "accuracy_high": [M]}``, None for a bin empty in the sample
    (``full`` (M,) False); resamples that leave a bin empty do not count for it."""
    # A bin empty in every resample is an all-NaN column: left NaN without calling
    # nanquantile on it, whose warning could only be silenced through the process-wide
    # (not thread-safe) warnings filters.
    seen = ~np.isnan(draws).all(axis=0)  # (M,)
    low = np.full(draws.shape[1], np.nan)
    high = np.full(draws.shape[1], np.nan)
    low[seen], high[seen] = np.nanquantile(draws[:, seen], q, axis=0)
    return {
        "accuracy_low": [float(v) if f else None for v, f in zip(low, full, strict=True)],
        "accuracy_high": [float(v) if f else None for v, f in zip(high, full, strict=True)],
    }
