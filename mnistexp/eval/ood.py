"""Out-of-distribution scores and detection metrics: pure functions on whole arrays.

Scores (registry ``OOD_SCORES``). Each declared :class:`OodScore` maps a model's outputs on n
images to one float64 score per image, shape (n,), higher meaning "more in-distribution":
``OOD_SCORES[name].score(logits, log_probs)``, with ``logits`` the output layer's
pre-activations z (n, K) and ``log_probs`` (n, K) the log-probabilities of
:func:`mnistexp.eval.metrics.log_probabilities` (the one probability rule).

* ``msp``: max_k p_k, the maximum softmax probability (Hendrycks and Gimpel 2017).
* ``entropy``: sum_k p_k log p_k, the negative predictive entropy in nats (0 log 0 = 0); its
  range is [-ln K, 0].
* ``energy``: T logsumexp(z / T) with T = 1, the negative free energy -E(x) (Liu et al. 2020).
  It must be computed from the logits: log_probs are normalised, so logsumexp(log_probs) = 0
  (up to rounding) for every output of this package, softmax or not, and carries no
  information. Unlike the two above it is not invariant to adding a constant to every logit:
  the shift moves the score by the same constant. For outputs whose pre-activations are not
  softmax logits (sigmoid, linear, tanh) pass ``logits=None``: the energy then takes
  ``log_probs`` as the logits, which (being normalised) gives 0 up to rounding for every
  image, so the energy of those outputs ranks nothing and should not be reported.

``msp`` and ``entropy`` read only ``log_probs``; ``logits`` may be None for them. Both arrays
must be 2-D and finite (a diverged model has no score), else ValueError; the log-probabilities
of :func:`~mnistexp.eval.metrics.log_probabilities` are finite for finite z.

Detection metrics. In-distribution samples are the positive class and a higher score means
positive. ``scores_in`` (m,) and ``scores_out`` (n,) are 1-D, non-empty and finite (else
ValueError). All four come from one sort of the m + n scores (O((m + n) log(m + n))): the
distinct scores, taken from the highest down as thresholds t, give the cumulative counts
TP(t) = #{scores_in >= t} and FP(t) = #{scores_out >= t}, so equal scores always cross a
threshold together. They match scikit-learn exactly (tested):

* ``auroc``: the area under the ROC curve (trapezoids between the thresholds), which equals
  the Mann-Whitney U / (m n): P(s_in > s_out) + P(s_in == s_out) / 2, ties counted half;
  constant scores give 0.5. Equals ``sklearn.metrics.roc_auc_score``.
* ``aupr_in``: average precision with in-distribution positive, sum over thresholds of
  (recall(t) - recall(previous t)) * precision(t), step-wise, not trapezoidal. Equals
  ``sklearn.metrics.average_precision_score(y_in, scores)``. Its chance level is m / (m + n).
* ``aupr_out``: the same with the OOD samples positive and the scores negated. Equals
  ``average_precision_score(1 - y_in, -scores)``.
* ``fpr_at_tpr`` (``fpr95`` in the report at tpr = 0.95): with t the largest value such that
  mean(scores_in >= t) >= tpr (computed as k / m >= tpr in float64), FPR = mean(scores_out >=
  t): the fraction of OOD samples accepted when the threshold keeps at least tpr of the
  in-distribution ones. This is the FPR of ``sklearn.metrics.roc_curve(...,
  drop_intermediate=False)`` at its first point with TPR >= tpr. Without ties between an
  in-distribution and an OOD score it is also that of the default ``drop_intermediate=True``;
  with such ties the default can drop the point on a diagonal stretch of the curve and read a
  larger FPR (in = out = 0..39: 0.95 here, 1.0 from the default curve).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

_Floats = np.ndarray  # float64 arrays; shapes are given in each docstring

Score = Callable[[np.ndarray | None, np.ndarray], np.ndarray]  # (logits, log_probs) -> (n,)


@dataclass(frozen=True)
class OodScore:
    """An in-distribution score: ``score(logits (n, K) or None, log_probs (n, K)) -> (n,)``
    float64, higher = more in-distribution; see the module docstring for each one."""

    name: str
    description: str
    citation: str
    score: Score


def _matrix(values: np.ndarray, what: str) -> _Floats:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n, K), got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{what} must be finite")
    return out


def _msp(logits: np.ndarray | None, log_probs: np.ndarray) -> _Floats:
    return np.exp(np.max(_matrix(log_probs, "log_probs"), axis=1))  # (n,) max_k p_k


def _negative_entropy(logits: np.ndarray | None, log_probs: np.ndarray) -> _Floats:
    lp = _matrix(log_probs, "log_probs")  # (n, K)
    return np.sum(np.exp(lp) * lp, axis=1)  # (n,) sum_k p_k log p_k; exp(-huge) * -huge = 0


def _energy(logits: np.ndarray | None, log_probs: np.ndarray) -> _Floats:
    lp = _matrix(log_probs, "log_probs")
    z = lp if logits is None else _matrix(logits, "logits")  # (n, K)
    if z.shape != lp.shape:
        raise ValueError(f"logits {z.shape} and log_probs {lp.shape} must have one shape")
    temperature = 1.0
    return temperature * logsumexp(z / temperature, axis=1)  # (n,) -E(x), max subtracted


OOD_SCORES: dict[str, OodScore] = {
    score.name: score
    for score in (
        OodScore("msp", "maximum softmax probability max_k p_k", "Hendrycks and Gimpel 2017", _msp),
        OodScore(
            "entropy",
            "negative predictive entropy sum_k p_k log p_k, nats",
            "Hendrycks and Gimpel 2017",
            _negative_entropy,
        ),
        OodScore(
            "energy",
            "negative energy T logsumexp(z / T), T = 1, from the logits",
            "Liu, Wang, Owens, Li 2020",
            _energy,
        ),
    )
}
"""Score name -> its declaration; every score is (n,) with higher = more in-distribution."""


CONVENTIONS: dict[str, str] = {
    "ood_positive": "in-distribution is the positive class; higher score = more in-distribution",
    "ood_scores": "msp = max_k p_k; entropy = sum_k p_k log p_k; energy = logsumexp(z) (T = 1, "
    "from the logits)",
    "auroc": "Mann-Whitney U / (m n), ties counted half (= sklearn roc_auc_score)",
    "aupr": "step-wise average precision (= sklearn average_precision_score); aupr_in with "
    "in-distribution positive, aupr_out with OOD positive and the score negated",
    "fpr95": "mean(scores_out >= t), t the largest value with mean(scores_in >= t) >= 0.95",
}
"""The rules behind the OOD numbers, JSON-ready."""


# --------------------------------------------------------------------------- detection metrics


def _scores(values: np.ndarray, what: str) -> _Floats:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 1 or out.size == 0:
        raise ValueError(f"{what} must be 1-D and non-empty, got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{what} must be finite")
    return out


def _curve(scores_in: np.ndarray, scores_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(TP, FP), each (d,) int64: the cumulative counts of in-distribution and OOD scores >= t
    at the d distinct scores t, highest first (ties share one threshold)."""
    s_in, s_out = _scores(scores_in, "scores_in"), _scores(scores_out, "scores_out")
    scores = np.concatenate([s_in, s_out])  # (m + n,)
    positive = np.concatenate([np.ones(s_in.size, np.int64), np.zeros(s_out.size, np.int64)])
    order = np.argsort(scores)[::-1]  # descending; the order inside a tie does not matter
    ranked = scores[order]
    last = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])  # (d,) end of each tie group
    tp = np.cumsum(positive[order])[last]
    return tp, last + 1 - tp


def _auroc(tp: np.ndarray, fp: np.ndarray) -> float:
    # 2U = sum over thresholds of dFP * (TP_before + TP_after): each OOD score is beaten by the
    # in-distribution scores above it and ties with those at its own threshold (half each)
    tp0, fp0 = np.r_[0, tp], np.r_[0, fp]
    twice_u = np.sum(np.diff(fp0) * (tp0[1:] + tp0[:-1]))  # exact in int64
    return float(twice_u / (2.0 * tp[-1] * fp[-1]))


def _average_precision(tp: np.ndarray, fp: np.ndarray) -> float:
    """sum_t (recall(t) - recall(t_prev)) precision(t) over thresholds from the top."""
    precision = tp / (tp + fp)  # (d,) never 0/0: every threshold holds at least one score
    return float(np.sum(np.diff(np.r_[0, tp]) * precision) / tp[-1])


def _flipped(tp: np.ndarray, fp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (TP, FP) of the negated scores with the classes swapped: thresholds run from the
    lowest score up, OOD counts as positive."""
    before_tp, before_fp = np.r_[0, tp[:-1]], np.r_[0, fp[:-1]]  # counts above each group
    return (fp[-1] - before_fp)[::-1], (tp[-1] - before_tp)[::-1]


def _fpr_at(tp: np.ndarray, fp: np.ndarray, tpr: float) -> float:
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must lie in (0, 1], got {tpr}")
    first = int(np.argmax(tp / tp[-1] >= tpr))  # exists: the last threshold has TPR 1
    return float(fp[first] / fp[-1])


def auroc(scores_in: np.ndarray, scores_out: np.ndarray) -> float:
    """Area under the ROC curve of ``scores_in`` (m,) (positive) against ``scores_out`` (n,):
    P(s_in > s_out) + P(s_in == s_out) / 2."""
    return _auroc(*_curve(scores_in, scores_out))


def aupr_in(scores_in: np.ndarray, scores_out: np.ndarray) -> float:
    """Average precision of ``scores_in`` (m,) as positives against ``scores_out`` (n,)."""
    return _average_precision(*_curve(scores_in, scores_out))


def aupr_out(scores_in: np.ndarray, scores_out: np.ndarray) -> float:
    """Average precision of the OOD samples as positives, ranked by the negated scores."""
    return _average_precision(*_flipped(*_curve(scores_in, scores_out)))


def fpr_at_tpr(scores_in: np.ndarray, scores_out: np.ndarray, tpr: float = 0.95) -> float:
    """Fraction of ``scores_out`` (n,) >= t, t the largest value keeping mean(scores_in >= t)
    >= ``tpr`` in (0, 1], with ``scores_in`` (m,)."""
    return _fpr_at(*_curve(scores_in, scores_out), tpr)


def ood_report(scores_in: np.ndarray, scores_out: np.ndarray) -> dict[str, float]:
    """``{"auroc", "aupr_in", "aupr_out", "fpr95"}`` of in-distribution ``scores_in`` (m,)
    against OOD ``scores_out`` (n,), from one sort; see the module docstring."""
    tp, fp = _curve(scores_in, scores_out)
    return {
        "auroc": _auroc(tp, fp),
        "aupr_in": _average_precision(tp, fp),
        "aupr_out": _average_precision(*_flipped(tp, fp)),
        "fpr95": _fpr_at(tp, fp, 0.95),
    }
