"""Seed ensembles (Lakshminarayanan, Pritzel, Blundell 2017, deep ensembles over seeds): the
members' stored probabilities averaged in probability space, then scored like one run.

Pure: arrays in, numbers out. A run stores its probabilities rounded (predictions.npz: float32;
shift_predictions.npz: float16, 11 significant bits). Near 1 that rounding merges confidences
that differ: float16 cannot tell 0.99990 from 0.99999 (its spacing below 1 is 4.9e-4) and
float32 stops at 1 - 6e-8, while the small probabilities of the other classes keep their
relative precision down to 6e-5 (float16) or 1e-38 (float32). So :func:`restore` rebuilds each
row's largest probability as 1 minus the sum of the others, in float64: the ranking of
confident images, which the selective and OOD scores read, survives the storage. Rows then sum
to 1 exactly.

Scoring uses the run's own code (:func:`mnistexp.pipeline.shifted.labelled_metrics`), with the
prediction the argmax of the averaged probabilities (a run's is the argmax of its raw outputs;
an average has none) and the NLL read from the probabilities, floored at 1e-12. The ensemble is
of the raw probabilities only: it is not recalibrated. OOD scores: msp and entropy; energy reads
logits, which an average of probabilities does not have, so an ensemble has no energy score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mnistexp.eval.ood import OOD_SCORES, ood_report
from mnistexp.eval.selective import risk_coverage
from mnistexp.pipeline.shifted import PROBABILITY_SCORES, labelled_metrics

ROW_SUM_TOLERANCE = 0.01
"""How far a stored row may sum from 1 (float16 rows of 10 classes are within 5e-3)."""

COVERAGE_GRID = np.arange(1, 101) / 100
"""Coverages (100,) 1%, 2%, ..., 100% at which risk-coverage curves of seeds are averaged."""


def restore(stored: np.ndarray) -> np.ndarray:
    """float64 probabilities (n, K) from stored ones (float16 or float32, rows summing to 1
    up to their rounding): the largest entry of each row rebuilt as 1 minus the sum of the
    others (at least 0). ValueError if ``stored`` is not a probability matrix."""
    p = np.array(stored, dtype=np.float64)  # (n, K), a copy
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 2:
        raise ValueError(f"probabilities must be (n, K) with n >= 1, K >= 2; got {p.shape}")
    total = p.sum(axis=1)  # (n,) NaN or inf if any entry of the row is
    if not (np.all(np.abs(total - 1.0) <= ROW_SUM_TOLERANCE) and p.min() >= 0 and p.max() <= 1):
        raise ValueError("probabilities must lie in [0, 1] with rows summing to 1")
    rows, top = np.arange(p.shape[0]), p.argmax(axis=1)
    p[rows, top] = np.maximum(1.0 - (total - p[rows, top]), 0.0)  # 1 - the others' sum
    return p


def average(members: Sequence[np.ndarray]) -> np.ndarray:
    """The ensemble (n, K): the mean of the members' restored probabilities (each (n, K))."""
    return mean([restore(stored) for stored in members])


def mean(restored: Sequence[np.ndarray]) -> np.ndarray:
    """The mean (n, K) of float64 probability matrices (n, K), in probability space."""
    total = restored[0].copy()
    for p in restored[1:]:
        total += p
    return total / len(restored)


STORED_ZERO = "stored_zero"
"""The fraction of images whose true-class probability is 0 in every member as stored: float16
holds nothing below 3e-8, so each of them enters the NLL at the floor, -log(1e-12) = 27.6
nats, while its true term may be smaller. An ensemble's NLL is overstated by at most
log(3e-8 / 1e-12) = 10.3 nats times this fraction."""


def scores(
    probs: np.ndarray, labels: np.ndarray, bins: int, smooth: bool = True
) -> dict[str, float]:
    """The numbers of one labelled set for probabilities ``probs`` (n, K) float64 (from
    :func:`restore` or :func:`average`) and ``labels`` (n,), as shift.json's sections hold
    them, with the selective scores flattened in (``aurc``, ``acc_at_90``, ...), and
    :data:`STORED_ZERO`; without the smooth ECE unless ``smooth``."""
    pred = probs.argmax(axis=1)
    out = labelled_metrics(probs, None, labels, pred, bins, smooth)
    selective = out.pop("selective")
    zero = float(np.mean(of_class(probs, labels) == 0.0))
    return {k: float(v) for k, v in out.items() if v is not None} | selective | {STORED_ZERO: zero}


def ood_scores(test: np.ndarray, ood: np.ndarray) -> dict[str, dict[str, float]]:
    """Score (msp, entropy) -> AUROC, AUPR-in, AUPR-out and FPR95 of the in-distribution
    probabilities ``test`` (m, K) against the OOD ones ``ood`` (n, K), both float64."""
    tiny = np.finfo(np.float64).tiny  # log 0 would be -inf; tiny * log(tiny) is 0 in float64
    log_in, log_out = (np.log(np.maximum(p, tiny)) for p in (test, ood))
    return {
        name: ood_report(
            OOD_SCORES[name].score(None, log_in), OOD_SCORES[name].score(None, log_out)
        )
        for name in PROBABILITY_SCORES
    }


def risk_on_grid(
    confidence: np.ndarray, correct: np.ndarray, grid: np.ndarray = COVERAGE_GRID
) -> np.ndarray:
    """Risk (len(grid),) at each coverage of ``grid`` for ``confidence`` (n,) and ``correct``
    (n,): the error count grows linearly between the points of the risk-coverage curve (inside
    a tie group, the expectation over the order of its images, as the AURC counts it), so at
    coverage k / n this is the AURC's risk(k)."""
    coverage, risk = risk_coverage(confidence, correct)
    n = np.asarray(confidence).size
    errors = np.interp(grid, np.r_[0.0, coverage], np.r_[0.0, risk * coverage * n])
    return errors / (grid * n)


def of_class(probs: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """probs[i, classes[i]] (n,): with the predictions, the confidence; with the labels, the
    probability of the true class."""
    return probs[np.arange(probs.shape[0]), classes]


def check_labels(labels: Any, n: int) -> np.ndarray:
    """``labels`` as an integer array (n,); ValueError otherwise."""
    out = np.asarray(labels)
    if out.shape != (n,) or out.dtype.kind not in "iu":
        raise ValueError(f"labels must be {n} integers, got {out.dtype} {out.shape}")
    return out
