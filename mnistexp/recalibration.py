"""Recalibration maps fitted on the validation split and applied to test (registry RECALIBRATIONS).

Every map takes the log-probabilities of :func:`mnistexp.metrics.log_probabilities`, lp (n, K)
float64 (the one probability rule, for softmax, sigmoid and linear outputs alike), and returns
recalibrated probabilities q (n, K) and their logs. A map is fitted once, on the validation
split, by :meth:`Recalibration.fit`, which returns a :class:`Fitted` map with JSON-ready
parameters. ``eval.recalibration`` lists the maps a run fits.

Scaling maps (fitted by minimising the mean validation NLL with L-BFGS, analytic gradients,
started from the identity; the identity is kept unless the fit is strictly better on the
validation NLL, as for the temperature):

* ``temperature`` (Guo et al. 2017): q = softmax(lp / T), one T > 0
  (:func:`mnistexp.metrics.fit_temperature`). For softmax outputs this is softmax(z / T).
* ``vector`` (Guo et al. 2017): q = softmax(w * lp + b), w, b in R^K.
* ``matrix`` (Guo et al. 2017): q = softmax(lp W^T + b), W in R^{K x K}. On log-probabilities
  this is Dirichlet calibration (Kull et al. 2019); for softmax outputs lp = z - logsumexp(z),
  so it differs from matrix scaling of the logits z by a per-row shift that W absorbs only
  when its rows sum to a constant.
* ``matrix_odir`` (Kull et al. 2019): ``matrix`` plus the off-diagonal and intercept
  penalty lambda / (K (K - 1)) sum_{i != j} W_ij^2 + mu / K sum_j b_j^2 with mu = lambda,
  lambda chosen from ``ODIR_GRID`` by 3-fold cross-validation on the validation split
  (folds: image index mod 3), then refitted on all of it.

Binning maps, one-vs-rest then renormalised (each class k has its own map of p_k = exp(lp_k)
to an estimate of P(y = k | p_k); the K estimates are divided by their sum; a row whose K
estimates are all 0 keeps its original probabilities):

* ``histogram`` (Zadrozny and Elkan 2001): ``eval.bins`` equal-mass bins of the validation
  p_k, a bin's value is the fraction of its images with label k. Thresholds sit halfway
  between neighbouring bins' scores; a score equal to a threshold goes to the lower bin.
  With K = 10 about 90% of each column's scores are near 0, so most bins lie below 0.01 and
  one bin spans roughly (0.01, 0.999): it mixes right and wrong classes and costs accuracy.
* ``histogram_width`` (the equal-width variant Guo et al. 2017 describe): the same with the
  ECE's ``eval.bins`` equal-width bins; a bin without validation images gets its midpoint.
* ``isotonic`` (Zadrozny and Elkan 2002): the non-decreasing fit of "label == k" on p_k
  (``scipy.optimize.isotonic_regression``, tied scores merged with their mean and count as
  weight), read off by linear interpolation between the fitted scores and constant beyond
  the smallest and largest.

Accuracy: temperature scaling keeps every row's ordering, so the predictions stay the argmax of
the raw outputs. Every other map can change the argmax (the binning ones map many scores to the
same value, the scaling ones have a per-class weight or offset), so its predictions are the
argmax of q with ties broken by the original prediction when it is among the tied classes,
then by the original log-probabilities, then by the lowest class index
(:func:`predictions_after`).

scipy is imported inside the fitting functions: config validation reads ``RECALIBRATIONS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mnistexp import metrics

_Floats = np.ndarray
Map = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # lp (n, K) -> (q, log q)

ODIR_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
FOLDS = 3


@dataclass(frozen=True)
class Fitted:
    """A fitted map: ``apply(lp)`` -> (q, log q), each (n, K), and its JSON-ready params."""

    apply: Map
    params: dict[str, Any]


@dataclass(frozen=True)
class Recalibration:
    """A recalibration method: how it is fitted, whether it can change the argmax, its source."""

    fit: Callable[[np.ndarray, np.ndarray, int], Fitted]  # (lp (n, K), labels (n,), bins)
    changes_accuracy: bool
    citation: str


# --------------------------------------------------------------------------- scaling maps


def _temperature(lp: np.ndarray, labels: np.ndarray, bins: int) -> Fitted:
    t = metrics.fit_temperature(lp, labels)
    return Fitted(lambda x: metrics.apply_temperature(x, t), {"temperature": t})


def _mean_nll(log_q: np.ndarray, labels: np.ndarray) -> float:
    """Mean NLL of ``labels`` (n,) under log-probabilities ``log_q`` (n, K), floored as in
    :func:`mnistexp.metrics.nll`."""
    true = log_q[np.arange(len(labels)), labels]
    return float(-np.mean(np.maximum(true, np.log(metrics.NLL_FLOOR))))


def _nll_and_grad(a: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean NLL of softmax(a) (n, K) and its gradient with respect to a (n, K)."""
    from scipy.special import log_softmax

    log_q = log_softmax(a, axis=1)
    rows = np.arange(len(labels))
    grad = np.exp(log_q)
    grad[rows, labels] -= 1.0
    return float(-np.mean(log_q[rows, labels])), grad / len(labels)


def _affine_fit(
    lp: np.ndarray,
    labels: np.ndarray,
    diagonal: bool,
    penalty: float = 0.0,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(W (K, K) or w (K,), b (K,)) minimising mean NLL of softmax(lp W^T + b) (or w * lp + b)
    plus the ODIR penalty ``penalty`` on off-diagonal W and b, from ``start`` (W, b) or the
    identity.

    The optimiser works on standardised columns x = (lp - mu) / sd, an exact
    reparametrisation (W = W_s / sd column by column, b = b_s - W mu) that makes the problem
    well conditioned: log-probabilities of confident models reach -50, which left L-BFGS at
    its iteration limit on the raw columns. The penalty is on the original W and b.
    """
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    k = lp.shape[1]
    sd = lp.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    mu = np.zeros(k)  # scaling only: centring would tie the intercept penalty to W
    x = (lp - mu) / sd  # (n, K)
    off = ~np.eye(k, dtype=bool)
    lam_w = penalty / (k * (k - 1)) if k > 1 else 0.0
    lam_b = penalty / k
    shape = (k,) if diagonal else (k, k)

    def original(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ws, bs = theta[: np.prod(shape)].reshape(shape), theta[np.prod(shape) :]
        w = ws / sd  # column j of W_s divided by sd_j (elementwise for the vector)
        return w, bs - (w * mu if diagonal else w @ mu)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ws, bs = theta[: np.prod(shape)].reshape(shape), theta[np.prod(shape) :]
        a = x * ws + bs if diagonal else x @ ws.T + bs
        value, g = _nll_and_grad(a, labels)  # g (n, K) = dNLL/da
        gws = np.sum(g * x, axis=0) if diagonal else g.T @ x
        gbs = g.sum(axis=0)
        if penalty and not diagonal:
            w, b = original(theta)
            value += lam_w * float(np.sum(w[off] ** 2)) + lam_b * float(np.sum(b**2))
            gw = 2.0 * lam_w * np.where(off, w, 0.0) - 2.0 * lam_b * np.outer(b, mu)
            gws = gws + gw / sd  # dW/dW_s = 1 / sd_j
            gbs = gbs + 2.0 * lam_b * b
        return value, np.concatenate([gws.ravel(), gbs])

    w0, b0 = start if start is not None else (np.ones(k) if diagonal else np.eye(k), np.zeros(k))
    theta0 = np.concatenate([(w0 * sd).ravel(), b0 + (w0 * mu if diagonal else w0 @ mu)])
    # (n, K) x (K, K) products: one BLAS thread is several times faster than two when busy
    with threadpool_limits(limits=1, user_api="blas"):
        result = minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    return original(result.x)


def _affine_map(w: np.ndarray, b: np.ndarray) -> Map:
    from scipy.special import log_softmax

    diagonal = w.ndim == 1

    def apply(lp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = lp * w + b if diagonal else lp @ w.T + b
        log_q = log_softmax(a, axis=1)
        return np.exp(log_q), log_q

    return apply


def _affine(lp: np.ndarray, labels: np.ndarray, diagonal: bool, penalty: float) -> Fitted:
    """Fit, then keep the identity unless the fit lowers the validation NLL strictly."""
    from scipy.special import log_softmax

    w, b = _affine_fit(lp, labels, diagonal, penalty)
    k = lp.shape[1]
    fitted = _affine_map(w, b)
    if _mean_nll(fitted(lp)[1], labels) >= _mean_nll(log_softmax(lp, axis=1), labels):
        w, b = (np.ones(k) if diagonal else np.eye(k)), np.zeros(k)
        fitted = _affine_map(w, b)
    return Fitted(fitted, {"weights": w.tolist(), "biases": b.tolist()})


def _vector(lp: np.ndarray, labels: np.ndarray, bins: int) -> Fitted:
    return _affine(lp, labels, diagonal=True, penalty=0.0)


def _matrix(lp: np.ndarray, labels: np.ndarray, bins: int) -> Fitted:
    return _affine(lp, labels, diagonal=False, penalty=0.0)


def odir_penalty(lp: np.ndarray, labels: np.ndarray) -> float:
    """The ``ODIR_GRID`` value with the lowest mean held-out NLL over ``FOLDS`` folds; each
    fold walks the grid from the largest penalty down, warm-started from the previous fit."""
    fold = np.arange(len(labels)) % FOLDS
    held_out = np.zeros((FOLDS, len(ODIR_GRID)))
    for f in range(FOLDS):
        start = None
        for j in reversed(range(len(ODIR_GRID))):
            start = _affine_fit(lp[fold != f], labels[fold != f], False, ODIR_GRID[j], start)
            log_q = _affine_map(*start)(lp[fold == f])[1]
            held_out[f, j] = _mean_nll(log_q, labels[fold == f])
    return ODIR_GRID[int(np.argmin(held_out.mean(axis=0)))]


def _matrix_odir(lp: np.ndarray, labels: np.ndarray, bins: int) -> Fitted:
    penalty = odir_penalty(lp, labels)
    fitted = _affine(lp, labels, diagonal=False, penalty=penalty)
    return Fitted(fitted.apply, {"lambda": penalty, "mu": penalty, **fitted.params})


# --------------------------------------------------------------------------- binning maps


def _renormalised(estimates: np.ndarray, lp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``estimates`` (n, K) divided by their sums; all-zero rows keep exp(lp)."""
    total = estimates.sum(axis=1, keepdims=True)
    q = np.where(total > 0, estimates / np.where(total > 0, total, 1.0), np.exp(lp))
    with np.errstate(divide="ignore"):
        return q, np.log(q)


def histogram_edges(scores: np.ndarray, bins: int) -> np.ndarray:
    """``bins - 1`` thresholds of equal-mass bins of ``scores`` (n,): halfway between the
    largest score of one bin and the smallest of the next (``np.array_split`` sizes)."""
    ordered = np.sort(scores)
    ends = np.cumsum([len(p) for p in np.array_split(ordered, bins)])[:-1]  # first of next
    ends = ends[(ends > 0) & (ends < len(ordered))]
    return (ordered[ends - 1] + ordered[ends]) / 2.0


def width_edges(scores: np.ndarray, bins: int) -> np.ndarray:
    """The ``bins - 1`` inner edges m/M of equal-width bins (the ECE's bins)."""
    return np.arange(1, bins) / bins


def _histogram(lp: np.ndarray, labels: np.ndarray, bins: int) -> Fitted:
    return _binned(lp, labels, bins, histogram_edges)


def _histogram_width(lp: np.ndarray, labels: np.ndarray, bins: int) -> Fitted:
    return _binned(lp, labels, bins, width_edges)


def _binned(
    lp: np.ndarray,
    labels: np.ndarray,
    bins: int,
    edges_of: Callable[[np.ndarray, int], np.ndarray],
) -> Fitted:
    """One-vs-rest histogram binning with each class's inner edges from ``edges_of``; a bin
    without validation images gets its midpoint (an empty equal-mass bin is unreachable)."""
    p = np.exp(lp)
    k = p.shape[1]
    edges = [edges_of(p[:, c], bins) for c in range(k)]
    values = []
    for c in range(k):  # one-vs-rest: a loop over the K classes, each on the whole column
        which = np.searchsorted(edges[c], p[:, c], side="left")  # score == edge: lower bin
        count = np.bincount(which, minlength=len(edges[c]) + 1)
        hits = np.bincount(which, weights=(labels == c).astype(np.float64), minlength=count.size)
        bounds = np.concatenate([[0.0], edges[c], [1.0]])
        middle = (bounds[:-1] + bounds[1:]) / 2.0
        values.append(np.divide(hits, count, out=middle, where=count > 0))

    def apply(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = np.exp(x)
        estimates = np.stack(
            [values[c][np.searchsorted(edges[c], q[:, c], side="left")] for c in range(k)], 1
        )
        return _renormalised(estimates, x)

    params = {"edges": [e.tolist() for e in edges], "values": [v.tolist() for v in values]}
    return Fitted(apply, params)


def isotonic_fit(scores: np.ndarray, hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct scores ascending (m,), fitted non-decreasing values (m,)) of ``hits`` (n,) on
    ``scores`` (n,); tied scores are merged into one point weighted by their count."""
    from scipy.optimize import isotonic_regression

    unique, inverse, count = np.unique(scores, return_inverse=True, return_counts=True)
    mean_hit = np.bincount(inverse, weights=hits.astype(np.float64)) / count
    return unique, isotonic_regression(mean_hit, weights=count.astype(np.float64)).x


def _isotonic(lp: np.ndarray, labels: np.ndarray, bins: int) -> Fitted:
    p = np.exp(lp)
    k = p.shape[1]
    fits = [isotonic_fit(p[:, c], labels == c) for c in range(k)]

    def apply(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = np.exp(x)
        estimates = np.stack([np.interp(q[:, c], *fits[c]) for c in range(k)], axis=1)
        return _renormalised(estimates, x)

    steps = [len(np.unique(values)) for _, values in fits]
    return Fitted(apply, {"levels": steps})


# --------------------------------------------------------------------------- registry


RECALIBRATIONS: dict[str, Recalibration] = {
    "temperature": Recalibration(_temperature, False, "Guo et al. 2017"),
    "vector": Recalibration(_vector, True, "Guo et al. 2017"),
    "matrix": Recalibration(_matrix, True, "Guo et al. 2017; Kull et al. 2019"),
    "matrix_odir": Recalibration(_matrix_odir, True, "Kull et al. 2019"),
    "histogram": Recalibration(_histogram, True, "Zadrozny and Elkan 2001"),
    "histogram_width": Recalibration(_histogram_width, True, "Guo et al. 2017"),
    "isotonic": Recalibration(_isotonic, True, "Zadrozny and Elkan 2002"),
}
"""Method name (``eval.recalibration``) -> how it is fitted; the order is the canonical one."""


def predictions_after(q: np.ndarray, lp: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """argmax of recalibrated ``q`` (n, K); among tied classes the original ``predictions``
    (n,) if tied, else the largest original ``lp`` (n, K), else the lowest index."""
    top = q == q.max(axis=1, keepdims=True)  # (n, K) the tied maxima
    score = np.where(top, np.maximum(lp, -1e300), -np.inf)  # a tied class always beats others
    rows = np.arange(len(predictions))
    score[rows, predictions] = np.where(top[rows, predictions], np.inf, -np.inf)
    return np.argmax(score, axis=1)
