"""Accuracy and calibration metrics, and temperature scaling: pure functions on whole arrays.

Rows are samples, columns are the K classes. Nothing here knows about the model, reads or
writes files, or prints; ``CONVENTIONS`` (below) is written into every ``metrics.json`` so a
number can always be traced back to the rule that produced it.

Conventions
-----------
Probabilities. ``z`` are the output layer's pre-activations, shape (n, K), and ``output`` names
the output activation (a key of ``PROBABILITY_RULES``):

* ``softmax``: p = softmax(z), computed as exp(log_softmax(z)) in float64 (the max is
  subtracted inside logsumexp, so logits of 1e4 are exact and finite).
* ``sigmoid``: a = sigmoid(z); ``linear``: a = z. Then a is clipped below at ``PROB_FLOOR`` and
  renormalized to sum to one: p = max(a, floor) / sum_k max(a_k, floor). A sigmoid that
  saturates to exactly 1.0 and a linear output that is negative are both fine.

Predictions (accuracy) are the argmax of the RAW outputs z (``predict``), never of p: for linear
outputs several classes may sit at the floor, and flooring must not change what was predicted.
Confidence is the top-label probability p[i, predictions[i]].

NLL is the mean of -log p[i, y_i]: exact from log-probabilities when given, otherwise from
probabilities with p floored at ``NLL_FLOOR`` (so float32 zeros stay finite). Brier is the mean
over samples of sum_k (p_k - onehot_k)^2, range [0, 2]. Entropy is in nats with 0 log 0 = 0.

ECE (Guo et al. 2017). M equal-width bins, bin m = (m/M - 1/M, m/M], the first bin also takes
0.0, so a confidence of exactly 1.0 is in the last bin. The edges are ``arange(M + 1) / M``, the
float nearest each m/M (``np.linspace`` is up to one ulp off, e.g. its 7/35 is below 0.2), so a
confidence equal to an edge goes in the lower bin. ECE = sum_m |B_m|/n |acc_m - conf_m|,
MCE = the max gap over non-empty bins, RMSCE = sqrt(sum_m |B_m|/n (acc_m - conf_m)^2).
Adaptive ECE (Nixon et al. 2019) uses the same formula over M equal-mass groups of the
confidences sorted ascending (``np.array_split``; ties are split in stable-sort order).
Classwise ECE bins each column p[:, k] with the same rule against "label == k" and averages
the K per-class ECEs.

Temperature scaling (Guo et al. 2017) fits one T > 0 minimizing the mean NLL of
softmax(log_p / T), where log_p are the log-probabilities above. For softmax outputs
log_p = z - logsumexp(z), so softmax(log_p / T) == softmax(z / T): standard temperature scaling.
For sigmoid and linear outputs it sharpens or flattens the floored, renormalized distribution.
T never makes the fitting NLL worse than T = 1, and it keeps every row's ordering, so accuracy
(from the raw-output predictions) is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import entr, log_softmax, logsumexp

from mnistexp.eval import calibration
from mnistexp.eval.fits import FitReport
from mnistexp.learning.outputs import OUTPUTS, PROB_FLOOR

SCHEMA_VERSION = 2
"""The version of the metrics.json layout that :func:`evaluate` and friends fill. Version 2
adds entries (debiased and smooth calibration errors, bootstrap intervals, recalibration
sections) and changes none of version 1's."""

NLL_FLOOR = 1e-12
"""Probabilities are floored here before the log in NLL when no log-probabilities are given."""

DEFAULT_BINS = 15

_Floats = np.ndarray  # float64 arrays; shapes are given in each docstring


PROBABILITY_RULES: dict[str, Callable[[_Floats], _Floats]] = {
    name: output.log_probs for name, output in OUTPUTS.items()
}
"""Output activation -> function from float64 z (n, K) to log-probabilities (n, K); each
output owns its rule (:mod:`mnistexp.learning.outputs`)."""

CONVENTIONS: dict[str, Any] = {
    "probabilities": {name: output.rule for name, output in OUTPUTS.items()},
    "prob_floor": PROB_FLOOR,
    "predictions": "argmax of the raw outputs z (not of the probabilities)",
    "confidence": "top-label probability p[i, prediction_i]",
    "nll": "mean -log max(p[i, y_i], nll_floor), from float64 log-probabilities",
    "nll_floor": NLL_FLOOR,
    "brier": "mean over samples of sum over classes (p_k - onehot_k)^2, range [0, 2]",
    "entropy": "mean over samples of -sum_k p_k log p_k, nats, 0 log 0 = 0",
    "ece_bins": "M equal-width bins ((m-1)/M, m/M], edges arange(M+1)/M; 0.0 in the first bin",
    "ece": "sum_m |B_m|/n |acc_m - conf_m| (Guo et al. 2017); mce = max over non-empty bins; "
    "rmsce = sqrt(sum_m |B_m|/n (acc_m - conf_m)^2)",
    "ace": "ECE over M equal-mass bins of the sorted top-label confidences (np.array_split)",
    "classwise_ece": "mean over classes k of the ECE of p[:, k] against label == k, same bins",
    "temperature_scaling": "T minimizes mean NLL of softmax(log_p / T) over log T in bounds; "
    "T = 1 kept unless strictly better; equals softmax(z / T) for softmax outputs",
    "debiased_ce": "sqrt(max(0, sum_b w_b [(acc_b - conf_b)^2 - acc_b (1 - acc_b) / (n_b - 1)])) "
    "over the ace's equal-mass bins, top-label (Kumar, Liang, Ma 2019); debiased_ce_squared "
    "is the unclipped square",
    "smooth_ece": "int_0^1 |(1/n) sum_i K_s(t, conf_i) (correct_i - conf_i)| dt, Gaussian kernel "
    "reflected at 0 and 1, at the fixed point s = smooth_ece (smooth_ece_sigma), on a lattice "
    "of 4001 points (Blasiok and Nakkiran 2023)",
    "bootstrap": "percentile intervals over test images resampled with replacement, seeded by "
    "the run's seed (own stream); smooth_ece resampled at the full sample's sigma",
    "recalibration": "maps fitted on validation (mean NLL or binning), applied to test "
    "log-probabilities; predictions = argmax of recalibrated probabilities, ties to the original "
    "prediction, then the original log-probabilities (temperature keeps the raw-output argmax)",
}
"""The rules behind every number, JSON-ready; written into metrics.json."""


def log_probabilities(z: np.ndarray, output: str) -> _Floats:
    """Log-probabilities (n, K) float64 of outputs ``z`` (n, K) under the ``output`` rule."""
    if output not in PROBABILITY_RULES:
        allowed = ", ".join(sorted(PROBABILITY_RULES))
        raise ValueError(f"unknown output {output!r}; allowed: {allowed}")
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"outputs must be 2-D (n, K), got shape {z.shape}")
    return PROBABILITY_RULES[output](z)


def probabilities(z: np.ndarray, output: str) -> _Floats:
    """Probabilities (n, K) float64, rows summing to one: exp of ``log_probabilities``."""
    return np.exp(log_probabilities(z, output))


def predict(z: np.ndarray) -> np.ndarray:
    """Predicted classes (n,) int: argmax of the raw outputs ``z`` (n, K)."""
    return np.argmax(np.asarray(z), axis=1)


def nll(probs: np.ndarray, labels: np.ndarray, log_probs: np.ndarray | None = None) -> float:
    """Mean negative log-likelihood of ``labels`` (n,), with p floored at ``NLL_FLOOR``.

    ``log_probs`` (n, K), when given, avoid the rounding of probabilities near 0 and 1; they
    are floored at log(NLL_FLOOR) too, so the number is the same whichever form the caller has
    (e.g. recomputed from the float32 probabilities in predictions.npz).
    """
    rows = np.arange(len(labels))
    if log_probs is not None:
        true_log_p = np.asarray(log_probs, dtype=np.float64)[rows, labels]
        return float(-np.mean(np.maximum(true_log_p, np.log(NLL_FLOOR))))
    true_p = np.asarray(probs, dtype=np.float64)[rows, labels]
    return float(-np.mean(np.log(np.maximum(true_p, NLL_FLOOR))))


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Multiclass Brier score: mean over rows of sum_k (p_k - onehot_k)^2, in [0, 2]."""
    diff = np.array(probs, dtype=np.float64)  # (n, K), a copy
    diff[np.arange(len(labels)), labels] -= 1.0
    return float(np.mean(np.sum(diff**2, axis=1)))


def entropy(probs: np.ndarray) -> float:
    """Mean predictive entropy in nats of ``probs`` (n, K), with 0 log 0 = 0."""
    return float(np.mean(np.sum(entr(np.asarray(probs, dtype=np.float64)), axis=1)))


def bin_edges(bins: int = DEFAULT_BINS) -> _Floats:
    """The M + 1 equal-width bin edges m/M, each the float nearest m/M; edges[0] = 0, [-1] = 1."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    return np.arange(bins + 1) / bins


def bin_indices(confidences: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Bin index (same shape, int) of each confidence: bin m holds (edges[m], edges[m+1]].

    searchsorted(side="left") returns the first edge >= c, so c == edge lands in the lower bin;
    0.0 (index -1) joins the first bin and anything above 1.0 by rounding joins the last.
    """
    conf = np.asarray(confidences, dtype=np.float64)
    return np.clip(np.searchsorted(bin_edges(bins), conf, side="left") - 1, 0, bins - 1)


def _bin_sums(
    groups: np.ndarray, confidences: np.ndarray, hits: np.ndarray, size: int
) -> tuple[_Floats, _Floats, _Floats]:
    """Per-group count, sum of confidences and sum of hits, each (size,) float64."""
    count = np.bincount(groups, minlength=size).astype(np.float64)
    conf_sum = np.bincount(groups, weights=confidences, minlength=size)
    hit_sum = np.bincount(groups, weights=hits.astype(np.float64), minlength=size)
    return count, conf_sum, hit_sum


def errors_from_bin_sums(count: _Floats, conf_sum: _Floats, hit_sum: _Floats) -> dict[str, float]:
    """ECE, MCE and RMSCE from per-bin counts and sums of confidence and hits (M,) each;
    empty bins contribute nothing (so reliability bins pooled over seeds can be scored)."""
    n = count.sum()
    full = count > 0
    gap = np.abs(hit_sum[full] - conf_sum[full]) / count[full]  # |acc_m - conf_m|
    weight = count[full] / n  # |B_m| / n
    return {
        "ece": float(np.sum(weight * gap)),
        "mce": float(np.max(gap)),
        "rmsce": float(np.sqrt(np.sum(weight * gap**2))),
    }


def _flat(confidences: np.ndarray, correct: np.ndarray) -> tuple[_Floats, np.ndarray]:
    conf = np.asarray(confidences, dtype=np.float64).ravel()
    hits = np.asarray(correct).ravel()
    if conf.size == 0 or conf.shape != hits.shape:
        raise ValueError(f"need equal, non-empty shapes, got {conf.shape} and {hits.shape}")
    if not np.all(np.isfinite(conf)):
        raise ValueError("confidences must be finite")
    return conf, hits


def calibration_errors(
    confidences: np.ndarray, correct: np.ndarray, bins: int = DEFAULT_BINS
) -> dict[str, float]:
    """``{"ece", "mce", "rmsce"}`` of top-label ``confidences`` (n,) vs ``correct`` (n,) bool."""
    conf, hits = _flat(confidences, correct)
    return errors_from_bin_sums(*_bin_sums(bin_indices(conf, bins), conf, hits, bins))


def ece(confidences: np.ndarray, correct: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """Expected calibration error, equal-width bins (Guo et al. 2017); see the module docstring."""
    return calibration_errors(confidences, correct, bins)["ece"]


def adaptive_ece(confidences: np.ndarray, correct: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """ECE over ``bins`` equal-mass groups of the sorted confidences (n,) (Nixon et al. 2019)."""
    conf, hits = _flat(confidences, correct)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    order = np.argsort(conf, kind="stable")
    sizes = [len(part) for part in np.array_split(order, bins)]
    groups = np.repeat(np.arange(bins), sizes)  # group of each sorted position
    return errors_from_bin_sums(*_bin_sums(groups, conf[order], hits[order], bins))["ece"]


def classwise_ece_per_class(
    probs: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS
) -> _Floats:
    """ECE (K,) of each column p[:, k] (n, K) against ``labels == k``, equal-width bins."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    if probs.ndim != 2 or probs.shape[0] < 1 or labels.shape != (probs.shape[0],):
        raise ValueError(f"need probs (n, K) and labels (n,), got {probs.shape}, {labels.shape}")
    n, k = probs.shape
    hits = labels[:, None] == np.arange(k)  # (n, K) one-hot
    groups = bin_indices(probs, bins) + bins * np.arange(k)  # (n, K): class k owns k*M..
    _, conf_sum, hit_sum = _bin_sums(groups.ravel(), probs.ravel(), hits.ravel(), k * bins)
    gaps = np.abs(hit_sum - conf_sum).reshape(k, bins)  # |B| * |acc - conf| per (class, bin)
    return gaps.sum(axis=1) / n


def classwise_ece(probs: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """Classwise (static) calibration error: mean over classes of ``classwise_ece_per_class``."""
    return float(np.mean(classwise_ece_per_class(probs, labels, bins)))


def _none_if_empty(values: _Floats, count: _Floats) -> list[float | None]:
    return [float(v) if c > 0 else None for v, c in zip(values, count, strict=True)]


def reliability_bins(
    confidences: np.ndarray, correct: np.ndarray, bins: int = DEFAULT_BINS
) -> dict[str, list]:
    """JSON-ready reliability diagram data over the equal-width bins.

    Keys (lists): ``edges`` (M+1), ``count`` (M, ints), ``fraction`` (M, count / n: the
    confidence histogram), ``mean_confidence`` and ``accuracy`` (M, None for empty bins).
    """
    conf, hits = _flat(confidences, correct)
    count, conf_sum, hit_sum = _bin_sums(bin_indices(conf, bins), conf, hits, bins)
    safe = np.maximum(count, 1.0)  # empty bins are reported as None, not divided
    return {
        "edges": bin_edges(bins).tolist(),
        "count": [int(c) for c in count],
        "fraction": (count / conf.size).tolist(),
        "mean_confidence": _none_if_empty(conf_sum / safe, count),
        "accuracy": _none_if_empty(hit_sum / safe, count),
    }


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, k: int = 10) -> np.ndarray:
    """Counts (k, k) int64: row = true label, column = predicted class."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= k):
            raise ValueError(f"{name} must lie in [0, {k}), got {values.min()}..{values.max()}")
    flat = labels.astype(np.int64) * k + predictions.astype(np.int64)
    return np.bincount(flat, minlength=k * k).reshape(k, k)


def per_class_accuracy(labels: np.ndarray, predictions: np.ndarray, k: int = 10) -> _Floats:
    """Recall of each true class (k,) float64; NaN for a class with no samples."""
    matrix = confusion_matrix(labels, predictions, k)
    totals = matrix.sum(axis=1)
    out = np.full(k, np.nan)
    np.divide(np.diag(matrix), totals, out=out, where=totals > 0)
    return out


def _check(probs: np.ndarray, labels: np.ndarray, predictions: np.ndarray) -> None:
    n = probs.shape[0] if probs.ndim == 2 else -1
    if n < 1 or labels.shape != (n,) or predictions.shape != (n,):
        raise ValueError(
            f"need probs (n, K) with n >= 1, labels (n,), predictions (n,); got "
            f"{probs.shape}, {labels.shape}, {predictions.shape}"
        )
    if not np.all(np.isfinite(probs)):
        raise ValueError("probs must be finite (a diverged model has no calibration)")


def evaluate(
    probs: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    bins: int = DEFAULT_BINS,
    log_probs: np.ndarray | None = None,
    smooth: bool = True,
) -> dict[str, Any]:
    """All metrics of ``probs`` (n, K) against ``labels`` (n,), as JSON-ready Python values:
    :func:`summary` and the fields that only the test set keeps (adaptive and classwise ECE,
    entropy, the reliability bins, per-class accuracy, the confusion matrix).

    ``predictions`` (n,) are the argmax of the raw outputs (``predict``); confidence is
    probs[i, predictions[i]]. ``log_probs`` (n, K), when given, makes the NLL exact.
    ``smooth=False`` leaves the smooth ECE out (None): its fixed-point search takes about 25
    ms whatever n, most of the time of a small set.
    """
    core = summary(probs, labels, predictions, bins, log_probs, smooth)
    probs = np.asarray(probs, dtype=np.float64)
    labels, predictions = np.asarray(labels, dtype=np.intp), np.asarray(predictions, np.intp)
    n, k = probs.shape
    confidence = probs[np.arange(n), predictions]  # (n,) top-label probability
    correct = predictions == labels  # (n,) bool
    extra = {
        "ace": adaptive_ece(confidence, correct, bins),
        "classwise_ece": classwise_ece(probs, labels, bins),
        "entropy": entropy(probs),
        "reliability": reliability_bins(confidence, correct, bins),
        "per_class_accuracy": [
            None if np.isnan(a) else float(a) for a in per_class_accuracy(labels, predictions, k)
        ],
        "confusion_matrix": confusion_matrix(labels, predictions, k).tolist(),
    }
    out: dict[str, Any] = {}
    for key, value in core.items():  # metrics.json's field order, unchanged since schema 1
        for name in _BEFORE.get(key, ()):
            out[name] = extra[name]
        out[key] = value
    return out


_BEFORE = {
    "mean_confidence": ("ace", "classwise_ece"),
    "n": ("entropy",),
    "debiased_ce": ("reliability", "per_class_accuracy", "confusion_matrix"),
}
"""Where :func:`evaluate`'s extra fields sit among :func:`summary`'s: before these keys."""


def summary(
    probs: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    bins: int = DEFAULT_BINS,
    log_probs: np.ndarray | None = None,
    smooth: bool = True,
) -> dict[str, Any]:
    """The scalar core of :func:`evaluate`, by the same functions (so the same numbers):
    accuracy, error, NLL, Brier, the binned calibration errors, mean confidence and
    overconfidence, n, debiased and smooth calibration error. What a set evaluated beyond the
    test set keeps (no adaptive or classwise ECE, entropy, bins or confusion matrix)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels, predictions = np.asarray(labels, dtype=np.intp), np.asarray(predictions, np.intp)
    _check(probs, labels, predictions)
    n = probs.shape[0]
    confidence = probs[np.arange(n), predictions]  # (n,)
    correct = predictions == labels  # (n,) bool
    accuracy, mean_confidence = float(np.mean(correct)), float(np.mean(confidence))
    smoothed, sigma = calibration.smooth_ece(confidence, correct) if smooth else (None, None)
    debiased = calibration.debiased_ce_squared(confidence, correct, bins)  # one sort for both
    return {
        "accuracy": accuracy,
        "error": float(np.mean(~correct)),
        "nll": nll(probs, labels, log_probs),
        "brier": brier(probs, labels),
        **calibration_errors(confidence, correct, bins),
        "mean_confidence": mean_confidence,
        "overconfidence": mean_confidence - accuracy,
        "n": int(n),
        "debiased_ce": calibration.debiased_from_squared(debiased),
        "debiased_ce_squared": debiased,
        "smooth_ece": smoothed,
        "smooth_ece_sigma": sigma,
    }


def _nll_at(log_probs: _Floats, labels: np.ndarray, temperature: float) -> float:
    """Mean NLL of softmax(log_probs / T); log_probs (n, K) float64, labels (n,)."""
    scaled = log_probs / temperature
    true = scaled[np.arange(len(labels)), labels]
    return float(np.mean(logsumexp(scaled, axis=1) - true))


TEMPERATURE_BOUNDS = (1e-8, 1e8)
"""The range of T searched: wide enough that only a degenerate problem (every validation image
right with a margin, so the NLL falls towards 0 as T -> 0; or no signal at all) reaches it."""


def _beta_slope(log_probs: _Floats, labels: np.ndarray, beta: float) -> float:
    """d/d(beta) of the mean NLL of softmax(beta * log_probs), beta = 1/T: the mean over rows of
    E_q[log_probs] - log_probs[y] with q = softmax(beta * log_probs). Non-decreasing in beta (its
    derivative is the mean variance of log_probs under q): the NLL is convex in 1/T."""
    q = np.exp(log_softmax(beta * log_probs, axis=1))
    expected = np.einsum("ik,ik->i", q, log_probs)
    return float(np.mean(expected - log_probs[np.arange(len(labels)), labels]))


def fit_temperature(
    log_probs: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = TEMPERATURE_BOUNDS
) -> tuple[float, FitReport]:
    """(T, how the fit ended): T > 0 minimizing the mean NLL of softmax(log_probs / T) (Guo et
    al. 2017), searched in ``bounds``.

    ``log_probs`` (n, K) come from ``log_probabilities`` (for softmax outputs this is
    temperature scaling of the logits). The NLL is convex in beta = 1/T, so its minimum is the
    root of the non-decreasing slope dNLL/dbeta (:func:`_beta_slope`), found by Brent's method
    on log beta to machine precision. Where the slope keeps one sign over the whole range the
    optimum lies beyond it: T is that bound and ``at_bound`` is set. T = 1 is returned unless
    the fitted T gives a strictly lower NLL, so the fitted NLL is never worse than the unscaled
    one.
    """
    from scipy.optimize import brentq

    log_probs = np.asarray(log_probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.intp)
    low, high = bounds
    if not 0 < low < high or not np.isfinite(high):
        raise ValueError(f"bounds must satisfy 0 < low < high < inf, got {bounds}")
    if log_probs.ndim != 2 or labels.shape != (log_probs.shape[0],) or labels.size == 0:
        raise ValueError(f"need log_probs (n, K) and labels (n,), got {log_probs.shape}")
    if not np.all(np.isfinite(log_probs)):
        raise ValueError("log_probs must be finite")

    def slope(log_beta: float) -> float:
        return _beta_slope(log_probs, labels, float(np.exp(log_beta)))

    lo, hi = -np.log(high), -np.log(low)  # log beta
    iterations, converged, at_bound = 0, False, True
    if slope(lo) >= 0:  # the NLL rises from the hottest T on: the optimum is at or beyond it
        temperature = high
    elif slope(hi) <= 0:  # still falling at the coldest T (the slope may underflow to 0 there)
        temperature = low
    else:  # a sign change inside: Brent's root is strictly between the bounds
        log_beta, result = brentq(slope, lo, hi, xtol=1e-14, rtol=8.9e-16, full_output=True)
        iterations, converged, at_bound = result.iterations, result.converged, False
        temperature = float(np.exp(-log_beta))
    beta = 1.0 / temperature
    report = FitReport(
        converged=bool(converged),
        gradient=abs(beta * _beta_slope(log_probs, labels, beta)),  # |dNLL/d log T|
        at_bound=at_bound,
        iterations=int(iterations),
    )
    if _nll_at(log_probs, labels, 1.0) <= _nll_at(log_probs, labels, temperature):
        # T = 1 is as good as the fit: the optimum itself (rounding), or, where the fit sat on
        # a bound, a flat NLL (no signal) that every T minimises, so nothing stopped short
        one = abs(_beta_slope(log_probs, labels, 1.0))
        converged = report.converged or report.at_bound
        return 1.0, FitReport(converged, one, False, report.iterations)
    return temperature, report


def apply_temperature(log_probs: np.ndarray, temperature: float) -> tuple[_Floats, _Floats]:
    """(probs, log_probs), each (n, K) float64, of softmax(log_probs / T), computed stably."""
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive finite number, got {temperature}")
    scaled = log_softmax(np.asarray(log_probs, dtype=np.float64) / temperature, axis=1)
    return np.exp(scaled), scaled
