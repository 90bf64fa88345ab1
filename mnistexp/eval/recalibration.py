"""Recalibration maps fitted on the validation split and applied to test (registry RECALIBRATIONS).

Every map takes the log-probabilities of :func:`mnistexp.eval.metrics.log_probabilities`, lp (n, K)
float64 (the one probability rule, for softmax, sigmoid and linear outputs alike), and returns
recalibrated probabilities q (n, K) and their logs. A map is fitted once, on the validation
split, by :meth:`Recalibration.fit`, which returns a :class:`Fitted` map with JSON-ready
parameters. ``eval.recalibration`` lists the maps a run fits.

Scaling maps (fitted by minimising the mean validation NLL with L-BFGS, analytic gradients,
started from the identity; the identity is kept unless the fit is strictly better on the
validation NLL, as for the temperature):

* ``temperature`` (Guo et al. 2017): q = softmax(lp / T), one T > 0
  (:func:`mnistexp.eval.metrics.fit_temperature`). For softmax outputs this is softmax(z / T).
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

from mnistexp.eval import metrics
from mnistexp.eval.fits import FitReport

_Floats = np.ndarray
Map = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # lp (n, K) -> (q, log q)

ODIR_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
FOLDS = 3


@dataclass(frozen=True)
class Fitted:
    """A fitted map: ``apply(lp)`` -> (q, log q), each (n, K), its JSON-ready params, and for
    the iteratively fitted (scaling) maps how the fit ended."""

    apply: Map
    params: dict[str, Any]
    fit: FitReport | None = None  # how an iterative fit ended; None: closed form


@dataclass(frozen=True)
class Recalibration:
    """A recalibration method: how it is fitted, whether it can change the argmax, its source."""

    fit: Callable[[np.ndarray, np.ndarray, int], Fitted]  # (lp (n, K), labels (n,), bins)
    changes_accuracy: bool
    citation: str


# --------------------------------------------------------------------------- scaling maps


def _temperature(lp: np.ndarray, labels: np.ndarray, bins: int) -> Fitted:
    t, report = metrics.fit_temperature(lp, labels)
    return Fitted(lambda x: metrics.apply_temperature(x, t), {"temperature": t}, report)


def _mean_nll(log_q: np.ndarray, labels: np.ndarray) -> float:
    """Mean NLL of ``labels`` (n,) under log-probabilities ``log_q`` (n, K), floored as in
    :func:`mnistexp.eval.metrics.nll`."""
    true = log_q[np.arange(len(labels)), labels]
    return float(-np.mean(np.maximum(true, np.log(metrics.NLL_FLOOR))))


def _features(x: np.ndarray, diagonal: bool) -> np.ndarray:
    """u (n, K, d): what class k's score a_ik = theta_k . u_ik is linear in. The matrix map
    has d = K + 1 (every column of x, then 1) for every class; the vector map d = 2
    (x_ik, then 1)."""
    n, k = x.shape
    ones = np.ones((n, k, 1))
    if diagonal:
        return np.concatenate([x[:, :, None], ones], axis=2)
    return np.concatenate([np.broadcast_to(x[:, None, :], (n, k, k)), ones], axis=2)


def _softmax_nll_grad(
    u: np.ndarray, labels: np.ndarray, theta: np.ndarray, ridge: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """(value, gradient (K d,), q (n, K)) of the mean NLL of q = softmax(a), a_ik =
    theta_k . u_ik, plus the quadratic penalty sum(ridge * theta**2) / 2; theta (K d,) is the
    row-major (K, d) parameter matrix, u (n, K, d). With g = q - onehot (n, K) the gradient of
    class k is sum_i g_ik u_ik / n; q is returned for :func:`_softmax_nll_hessian`.
    """
    from scipy.special import log_softmax

    n, k, d = u.shape
    rows = np.arange(n)
    a = np.einsum("ikd,kd->ik", u, theta.reshape(k, d))
    log_q = log_softmax(a, axis=1)
    q = np.exp(log_q)
    g = q.copy()
    g[rows, labels] -= 1.0
    value = float(-np.mean(log_q[rows, labels])) + float(np.sum(ridge * theta**2)) / 2
    grad = np.einsum("ik,ikd->kd", g, u).ravel() / n + ridge * theta
    return value, grad, q


def _softmax_nll_hessian(u: np.ndarray, q: np.ndarray, ridge: np.ndarray) -> np.ndarray:
    """Hessian (K d, K d) of :func:`_softmax_nll_grad`'s objective at the point whose softmax
    is q (n, K): sum_i [diag(q_i) - q_i q_i^T] (x) u_i u_i^T / n + diag(ridge), computed as a
    block diagonal of K (d, d) blocks minus Z^T Z with Z_i = (q_ik u_ik)_k flattened."""
    n, k, d = u.shape
    z = (q[:, :, None] * u).reshape(n, k * d)
    hess = -(z.T @ z)
    for c in range(k):
        block = slice(c * d, (c + 1) * d)
        hess[block, block] += (u[:, c, :].T * q[:, c]) @ u[:, c, :]
    return hess / n + np.diag(ridge)


AFFINE_GTOL = 1e-8
"""An affine fit has converged when the largest absolute gradient entry, in the optimiser's
rescaled coordinates, is at most this: with the Hessian's smallest eigenvalues of these problems
(1e-3 and up) the objective is then within about 1e-13 of its minimum. Tighter is not reliably
reachable: near 1e-10 successive NLL values differ by rounding alone."""


def _affine_fit(
    lp: np.ndarray,
    labels: np.ndarray,
    diagonal: bool,
    penalty: float = 0.0,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, FitReport]:
    """(W (K, K) or w (K,), b (K,), how the fit ended) minimising the mean NLL of
    softmax(lp W^T + b) (or w * lp + b) plus the ODIR penalty ``penalty`` on off-diagonal W
    and b, from ``start`` (W, b) or the identity.

    The problem is convex and small (K^2 + K or 2K parameters), so it is solved by Newton's
    method with the exact Hessian inside a trust region (scipy's ``trust-exact``), which
    converges quadratically to a gradient below ``AFFINE_GTOL`` (what ``converged`` reports);
    where the infimum lies at infinity (separable validation data) it runs out of iterations
    and says so. It works on
    rescaled columns x = lp / sd, an exact reparametrisation (W = W_s / sd column by column)
    that keeps the Hessian well conditioned when log-probabilities of confident models reach
    -50. The penalty is on the original W and b.

    Softmax ignores a constant added to every score, so without a penalty the optimum is a
    set: adding one constant to every b_k (and, for the matrix map, one vector to every row of
    W) changes no probability. The returned parameters are the member with sum(b) = 0 and,
    for the matrix map, every column of W averaging 1/K, as the identity's does.
    """
    from scipy.optimize import minimize

    k = lp.shape[1]
    sd = lp.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    u = _features(lp / sd, diagonal)  # (n, K, d)
    d = u.shape[2]
    scale = np.ones((k, d))  # optimiser's theta = original (W | b) * scale
    if diagonal:
        scale[:, 0] = sd  # theta_k = (w_k sd_k, b_k)
    else:
        scale[:, :k] = sd  # theta_k = (W_kj sd_j for each j, b_k)
    penalties = np.zeros((k, d))  # sum(penalties * theta**2) / 2 is the ODIR penalty
    if penalty and not diagonal:
        off = np.where(np.eye(k, dtype=bool), 0.0, 2.0 * penalty / (k * (k - 1)))
        penalties[:, :k] = off / sd**2  # the penalty is on W = W_s / sd
        penalties[:, k] = 2.0 * penalty / k
    ridge = penalties.ravel()

    # trust-exact asks for the value and gradient at every trial point and the Hessian only
    # where a step was accepted: the last point's softmax is kept, the Hessian built on demand
    cache: dict[bytes, tuple[float, np.ndarray, np.ndarray]] = {}

    def evaluated(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        key = theta.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = _softmax_nll_grad(u, labels, theta, ridge)
        return cache[key]

    def hessian(theta: np.ndarray) -> np.ndarray:
        return _softmax_nll_hessian(u, evaluated(theta)[2], ridge)

    w0, b0 = start if start is not None else (np.ones(k) if diagonal else np.eye(k), np.zeros(k))
    theta0 = (np.concatenate([w0.reshape(k, -1), b0[:, None]], axis=1) * scale).ravel()
    result = minimize(
        lambda t: evaluated(t)[0],
        theta0,
        jac=lambda t: evaluated(t)[1],
        hess=hessian,
        method="trust-exact",
        options={"gtol": AFFINE_GTOL, "maxiter": 200},
    )
    original = result.x.reshape(k, d) / scale
    grad = evaluated(result.x)[1].reshape(k, d) * scale  # d/dW = d/dW_s * sd
    w, b = (original[:, 0] if diagonal else original[:, :k]), original[:, -1]
    if not penalty:  # pin the directions softmax cannot see, as the identity has them
        b = b - b.mean()
        if not diagonal:
            w = w - (w.mean(axis=0) - 1.0 / k)
    report = FitReport(
        converged=bool(np.max(np.abs(result.jac)) <= AFFINE_GTOL),
        gradient=float(np.max(np.abs(grad))),
        at_bound=False,
        iterations=int(result.nit),
    )
    return w, b, report


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

    w, b, report = _affine_fit(lp, labels, diagonal, penalty)
    k = lp.shape[1]
    fitted = _affine_map(w, b)
    if _mean_nll(fitted(lp)[1], labels) >= _mean_nll(log_softmax(lp, axis=1), labels):
        w, b = (np.ones(k) if diagonal else np.eye(k)), np.zeros(k)
        fitted = _affine_map(w, b)
    return Fitted(fitted, {"weights": w.tolist(), "biases": b.tolist()}, report)


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
            w, b, _ = _affine_fit(lp[fold != f], labels[fold != f], False, ODIR_GRID[j], start)
            start = (w, b)
            log_q = _affine_map(w, b)(lp[fold == f])[1]
            held_out[f, j] = _mean_nll(log_q, labels[fold == f])
    return ODIR_GRID[int(np.argmin(held_out.mean(axis=0)))]


def _matrix_odir(lp: np.ndarray, labels: np.ndarray, bins: int) -> Fitted:
    penalty = odir_penalty(lp, labels)
    fitted = _affine(lp, labels, diagonal=False, penalty=penalty)
    params = {"lambda": penalty, "mu": penalty, **fitted.params}
    return Fitted(fitted.apply, params, fitted.fit)


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
