"""Selective prediction: risk-coverage curves, AURC, E-AURC and accuracy at a coverage.

Pure functions of ``confidence`` (n,) float (any score, higher = more trusted; usually the
top-label probability) and ``correct`` (n,) bool (or 0/1). n >= 1; a non-finite confidence
or mismatched shapes raise ValueError. A classifier that may abstain accepts the images it is
most confident about; coverage is the fraction accepted and risk the error rate among them
(Geifman and El-Yaniv 2017).

Ties. Images with equal confidence cannot be told apart by the model, so the risk-coverage
curve accepts them together: it has one point per distinct confidence, (K_g / n, E_g / K_g)
with K_g the images at or above the g-th highest confidence and E_g the errors among them.
Without ties this is the point (k / n, risk of the k most confident) for every k = 1..n.

AURC (Geifman, Uziel, El-Yaniv 2019) is the mean of the risk over the coverages k / n,
(1 / n) sum_{k=1..n} risk(k), the standard discrete definition; without ties risk(k) is the
error rate of the k most confident images. A coverage k / n inside a tie group g (K_{g-1} < k <
K_g, the group holding s_g images with e_g errors) cannot be reached without breaking the tie,
so it counts at the risk expected when the group's images are accepted in random order:
risk(k) = (E_{g-1} + (k - K_{g-1}) e_g / s_g) / k. Between two points of the curve the error
count grows linearly, as the ROC curve's straight segments count ties half for the AUROC, and
the AURC is the mean of the per-ranking AURC over all orders of the tied images; at the
curve's points it is exact. All correct gives 0, all wrong 1, and a confidence that is the
same for every image gives the error rate.

E-AURC is AURC minus the AURC of the optimal ranking of the same predictions (every correct
image above every wrong one): with C correct images its risk at k is max(0, k - C) / k, so
AURC* = (1 / n) sum_{k=1..n} max(0, k - C) / k, computed exactly. In the continuous limit
(n -> infinity at error rate r = 1 - C / n) this tends to r + (1 - r) ln(1 - r) (Geifman et
al. 2019); the exact sum lies above the limit by about r / (2n) (5e-7 at n = 10,000 and r =
1%, where AURC* is 5.07e-5), which is why the exact one is used. E-AURC >= 0 for every
confidence, ties included (the risk at each k is an average over orders of the tied images,
and no order beats the optimum at any k), and is 0 when every correct image has a higher
confidence than every wrong one (ties among the correct or among the wrong ones allowed).

Accuracy at coverage c in (0, 1]: the accuracy over the k most confident images, k = ceil(c n)
computed as the smallest k with k / n >= c in float64 (0.07 * 100 is 7.000000000000001 in
float64, whose ceiling would be 8). Here ties do not move together, so that the coverage is
exactly k / n: among equal confidences the lower index is accepted first (a stable sort).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_Floats = np.ndarray  # float64 arrays; shapes are given in each docstring

DEFAULT_COVERAGES = (0.9, 0.95, 0.99)

CONVENTIONS: dict[str, str] = {
    "risk_coverage": "images sorted by confidence, highest first; equal confidences are "
    "accepted together (one curve point per distinct confidence)",
    "aurc": "mean over k = 1..n of the error rate of the k most confident (Geifman et al. "
    "2019); inside a tie group its expected value when the group is taken in random order",
    "eaurc": "aurc - (1 / n) sum_k max(0, k - n_correct) / k (the optimal ranking, exact)",
    "acc_at": "accuracy of the k most confident, k the smallest with k / n >= coverage; ties by "
    "index",
}
"""The rules behind the selective-prediction numbers, JSON-ready."""


def _inputs(confidence: np.ndarray, correct: np.ndarray) -> tuple[_Floats, np.ndarray]:
    conf = np.asarray(confidence, dtype=np.float64)
    hits = np.asarray(correct)
    if conf.ndim != 1 or conf.size == 0 or hits.shape != conf.shape:
        raise ValueError(
            f"need confidence (n,) and correct (n,), n >= 1; got {conf.shape}, {hits.shape}"
        )
    if not np.all(np.isfinite(conf)):
        raise ValueError("confidence must be finite")
    if hits.dtype != np.bool_ and not np.all((hits == 0) | (hits == 1)):
        raise ValueError("correct must be bool or 0/1")
    return conf, hits.astype(bool)


def _ranked(conf: _Floats, hits: np.ndarray) -> tuple[_Floats, np.ndarray]:
    """(confidence, correct), each (n,), sorted by confidence descending, ties by index."""
    order = np.argsort(-conf, kind="stable")
    return conf[order], hits[order]


def _curve(ranked_conf: _Floats, ranked_hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, E), each (d,) int64: images accepted and errors among them at the end of each of
    the d tie groups of the descending confidences."""
    last = np.flatnonzero(np.r_[ranked_conf[1:] != ranked_conf[:-1], True])  # (d,)
    errors = np.cumsum(~ranked_hits)  # (n,) errors among the k most confident
    return last + 1, errors[last]


def _risks(ranked_conf: _Floats, ranked_hits: np.ndarray) -> _Floats:
    """risk(k) (n,) for k = 1..n: the error rate of the k most confident, a tie group's images
    taken in random order (the expected rate; exact at the ends of the groups)."""
    n = ranked_conf.size
    first = np.flatnonzero(np.r_[True, ranked_conf[1:] != ranked_conf[:-1]])  # (d,) starts
    sizes = np.diff(np.r_[first, n])  # (d,) s_g
    errors = np.r_[0, np.cumsum(~ranked_hits)]  # (n + 1,) errors among the k most confident
    before, inside = errors[first], errors[first + sizes] - errors[first]  # E_{g-1}, e_g
    k = np.arange(1, n + 1, dtype=np.float64)
    taken = k - np.repeat(first, sizes)  # (n,) images of its own group accepted at k
    return (np.repeat(before, sizes) + taken * np.repeat(inside / sizes, sizes)) / k


def optimal_risks(n: int, n_correct: int) -> _Floats:
    """risk(k) (n,) of the optimal ranking of n predictions, ``n_correct`` of them right:
    max(0, k - n_correct) / k for k = 1..n."""
    if not 0 <= n_correct <= n or n < 1:
        raise ValueError(f"need 0 <= n_correct <= n, n >= 1; got {n_correct}, {n}")
    k = np.arange(1, n + 1, dtype=np.float64)
    return np.maximum(k - n_correct, 0.0) / k


def optimal_aurc(n: int, n_correct: int) -> float:
    """AURC of the optimal ranking: (1 / n) sum_{k=1..n} max(0, k - n_correct) / k."""
    return float(np.mean(optimal_risks(n, n_correct)))


def optimal_aurc_limit(error_rate: float) -> float:
    """r + (1 - r) ln(1 - r): the optimal AURC as n -> infinity at error rate r in [0, 1]."""
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error_rate must lie in [0, 1], got {error_rate}")
    if error_rate == 1.0:
        return 1.0  # (1 - r) ln(1 - r) -> 0
    return float(error_rate + (1.0 - error_rate) * np.log1p(-error_rate))


def _aurc_pair(ranked_conf: _Floats, ranked_hits: np.ndarray) -> tuple[float, float]:
    """(AURC, E-AURC) of sorted inputs. Both means run over arrays of the same length whose
    entries agree exactly for a perfect ranking, so its E-AURC is exactly 0."""
    area = float(np.mean(_risks(ranked_conf, ranked_hits)))
    return area, area - optimal_aurc(ranked_conf.size, int(ranked_hits.sum()))


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> tuple[_Floats, _Floats]:
    """(coverage (d,), risk (d,)) float64, one point per distinct confidence from the highest:
    coverage K_g / n, risk the error rate among those K_g images; d = n without ties."""
    conf, hits = _inputs(confidence, correct)
    accepted, errors = _curve(*_ranked(conf, hits))
    return accepted / conf.size, errors / accepted


def aurc(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Area under the risk-coverage curve of ``confidence`` (n,) and ``correct`` (n,): the mean
    of risk(k) over k = 1..n, tie groups in random order (module docstring)."""
    return _aurc_pair(*_ranked(*_inputs(confidence, correct)))[0]


def eaurc(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Excess AURC: ``aurc`` minus the AURC of the optimal ranking of the same predictions."""
    return _aurc_pair(*_ranked(*_inputs(confidence, correct)))[1]


def _accuracy_at(ranked_hits: np.ndarray, coverage: float) -> float:
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must lie in (0, 1], got {coverage}")
    n = ranked_hits.size
    k = int(np.searchsorted(np.arange(1, n + 1) / n, coverage, side="left")) + 1  # k/n >= c
    return float(np.mean(ranked_hits[:k]))


def accuracy_at_coverage(confidence: np.ndarray, correct: np.ndarray, coverage: float) -> float:
    """Accuracy of the ceil(``coverage`` n) most confident of ``confidence`` (n,), ``correct``
    (n,), coverage in (0, 1]; ties accepted in index order."""
    conf, hits = _inputs(confidence, correct)
    return _accuracy_at(_ranked(conf, hits)[1], coverage)


def coverage_key(coverage: float) -> str:
    """The report key of a coverage: 0.9 -> ``acc_at_90``, 0.995 -> ``acc_at_99.5``."""
    return f"acc_at_{round(100.0 * coverage, 6):g}"


def selective_report(
    confidence: np.ndarray, correct: np.ndarray, coverages: Sequence[float] = DEFAULT_COVERAGES
) -> dict[str, float]:
    """``{"aurc", "eaurc", "acc_at_90", "acc_at_95", "acc_at_99"}`` (one ``acc_at_`` key per
    coverage, :func:`coverage_key`) of ``confidence`` (n,) and ``correct`` (n,), one sort."""
    ranked_conf, ranked_hits = _ranked(*_inputs(confidence, correct))
    area, excess = _aurc_pair(ranked_conf, ranked_hits)
    report = {"aurc": area, "eaurc": excess}
    for coverage in coverages:
        report[coverage_key(coverage)] = _accuracy_at(ranked_hits, coverage)
    return report
