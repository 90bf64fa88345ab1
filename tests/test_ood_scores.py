"""OOD scores and detection metrics: by hand, against O(n^2) pair counting, against
scikit-learn (roc_auc_score, average_precision_score, roc_curve) with and without ties, and
the edge cases (constant scores, equal and huge logits, empty and non-finite input)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax, logsumexp
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from mnistexp.eval import metrics
from mnistexp.eval.ood import (
    OOD_SCORES,
    aupr_in,
    aupr_out,
    auroc,
    fpr_at_tpr,
    ood_report,
)

# --------------------------------------------------------------------------- references


def brute_auroc(scores_in: np.ndarray, scores_out: np.ndarray) -> float:
    """Count every (in, out) pair: a win is 1, a tie 1/2."""
    wins = 0.0
    for a in scores_in.tolist():
        for b in scores_out.tolist():
            wins += 1.0 if a > b else 0.5 if a == b else 0.0
    return wins / (len(scores_in) * len(scores_out))


def sklearn_report(scores_in: np.ndarray, scores_out: np.ndarray) -> dict[str, float]:
    y = np.r_[np.ones(len(scores_in)), np.zeros(len(scores_out))]
    s = np.r_[scores_in, scores_out]
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return {
        "auroc": float(roc_auc_score(y, s)),
        "aupr_in": float(average_precision_score(y, s)),
        "aupr_out": float(average_precision_score(1 - y, -s)),
        "fpr95": float(fpr[np.argmax(tpr >= 0.95)]),
    }


# --------------------------------------------------------------------------- by hand


def test_detection_metrics_by_hand() -> None:
    # in = {3, 2, 1}, out = {2, 0}: one tie (2 and 2).
    # AUROC, 6 pairs: 3>2, 3>0, 2=2 (half), 2>0, 1<2, 1>0 -> 4.5 / 6 = 0.75.
    # AUPR-in, thresholds from the top (TP, FP): 3 (1, 0) P = 1; 2 (2, 1) P = 2/3;
    # 1 (3, 1) P = 3/4; 0 (3, 2) recall unchanged. AP = (1 + 2/3 + 3/4) / 3 = 29/36.
    # AUPR-out, negated, from the bottom (OOD TP, FP): 0 (1, 0) P = 1; 1 (1, 1) no new
    # recall; 2 (2, 2) P = 1/2; 3 (2, 3). AP = (1 + 1/2) / 2 = 3/4.
    # FPR at 95% TPR: keeping 3 of 3 in-scores needs t = 1; out >= 1: {2} -> 1/2.
    s_in, s_out = np.array([3.0, 2.0, 1.0]), np.array([2.0, 0.0])
    assert auroc(s_in, s_out) == 0.75
    assert aupr_in(s_in, s_out) == pytest.approx(29 / 36, abs=1e-15)
    assert aupr_out(s_in, s_out) == 0.75
    assert fpr_at_tpr(s_in, s_out) == 0.5
    # tpr 0.6 keeps 2 of 3 (t = 2): the OOD 2 ties the threshold and counts as accepted
    assert fpr_at_tpr(s_in, s_out, tpr=0.6) == 0.5
    # tpr 0.3 keeps 1 of 3 (t = 3): no OOD score reaches it
    assert fpr_at_tpr(s_in, s_out, tpr=0.3) == 0.0
    assert ood_report(s_in, s_out) == pytest.approx(
        {"auroc": 0.75, "aupr_in": 29 / 36, "aupr_out": 0.75, "fpr95": 0.5}, abs=1e-15
    )
    assert ood_report(s_in, s_out) == pytest.approx(sklearn_report(s_in, s_out), abs=1e-15)


def test_tpr_threshold_counts_in_float_like_sklearn() -> None:
    # 19 of 20 in-scores is exactly 0.95 of them: t = the 19th largest in-score (1.0), so the
    # OOD 1.5 is accepted and the OOD 0.5 is not; 18 of 20 (0.9) would not do
    s_in = np.r_[np.arange(2.0, 20.0), 1.0, 0.0]  # 20 scores, the 19th largest is 1.0
    s_out = np.array([1.5, 0.5])
    assert fpr_at_tpr(s_in, s_out) == 0.5
    assert fpr_at_tpr(s_in, s_out) == sklearn_report(s_in, s_out)["fpr95"]
    assert fpr_at_tpr(s_in, s_out, tpr=1.0) == 1.0


@pytest.mark.parametrize(
    ("s_in", "s_out", "expected"),
    [
        pytest.param([1.0, 1.0], [1.0, 1.0, 1.0], (0.5, 2 / 5, 3 / 5, 1.0), id="constant"),
        pytest.param([5.0, 4.0], [1.0, 0.0], (1.0, 1.0, 1.0, 0.0), id="separated"),
        pytest.param([0.0, 1.0], [4.0, 5.0], (0.0, 5 / 12, 5 / 12, 1.0), id="reversed"),
        pytest.param([2.0], [1.0], (1.0, 1.0, 1.0, 0.0), id="one-each"),
    ],
)
def test_detection_edge_cases(s_in: list, s_out: list, expected: tuple) -> None:
    # reversed: AUPR-in reaches the in-scores after both OOD ones, P = 1/3 then 2/4, so
    # (1/3 + 1/2) / 2 = 5/12; AUPR-out the same, from the other end.
    # constant: one threshold; precision is the in-fraction 2/5 (out: 3/5), everything accepted
    report = ood_report(np.array(s_in), np.array(s_out))
    assert tuple(report.values()) == pytest.approx(expected, abs=1e-15)
    assert report == pytest.approx(sklearn_report(np.array(s_in), np.array(s_out)), abs=1e-15)


@pytest.mark.parametrize(
    ("s_in", "s_out", "message"),
    [
        pytest.param([], [1.0], "scores_in must be 1-D and non-empty", id="empty-in"),
        pytest.param([1.0], [], "scores_out must be 1-D and non-empty", id="empty-out"),
        pytest.param([[1.0]], [1.0], "scores_in must be 1-D", id="2d"),
        pytest.param([1.0, np.nan], [1.0], "scores_in must be finite", id="nan"),
        pytest.param([1.0], [np.inf], "scores_out must be finite", id="inf"),
        pytest.param([1.0], [-np.inf], "scores_out must be finite", id="-inf"),
    ],
)
def test_detection_bad_input(s_in: list, s_out: list, message: str) -> None:
    for metric in (auroc, aupr_in, aupr_out, fpr_at_tpr, ood_report):
        with pytest.raises(ValueError, match=message):
            metric(np.array(s_in), np.array(s_out))


@pytest.mark.parametrize("tpr", [0.0, -0.1, 1.01, np.nan])
def test_fpr_at_tpr_range(tpr: float) -> None:
    with pytest.raises(ValueError, match=r"tpr must lie in \(0, 1\]"):
        fpr_at_tpr(np.array([1.0]), np.array([0.0]), tpr=tpr)


# --------------------------------------------------------------------------- references


@given(
    st.lists(st.integers(-3, 3), min_size=1, max_size=12),
    st.lists(st.integers(-3, 3), min_size=1, max_size=12),
)
@settings(max_examples=200, deadline=None)
def test_auroc_counts_pairs(s_in: list[int], s_out: list[int]) -> None:
    a, b = np.array(s_in, float), np.array(s_out, float)  # small integers: many ties
    assert auroc(a, b) == pytest.approx(brute_auroc(a, b), abs=1e-15)
    # swapping the classes and negating the scores is the same pairs
    assert auroc(-b, -a) == pytest.approx(auroc(a, b), abs=1e-15)


@pytest.mark.parametrize("ties", [False, True], ids=["continuous", "ties"])
def test_agrees_with_sklearn(ties: bool) -> None:
    rng = np.random.default_rng(27)
    for _ in range(200):
        m, n = rng.integers(1, 300, size=2)
        s_in, s_out = rng.normal(0.5, 1.0, m), rng.normal(0.0, 1.0, n)
        if ties:  # a coarse grid: ties inside each class and across the two
            s_in, s_out = np.round(s_in * 2) / 2, np.round(s_out * 2) / 2
        ours, theirs = ood_report(s_in, s_out), sklearn_report(s_in, s_out)
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)
        assert ours["auroc"] == pytest.approx(brute_auroc(s_in, s_out), rel=1e-12)


def test_fpr95_and_sklearns_dropped_points() -> None:
    # in = out = 0..39: every threshold holds one of each, a straight diagonal ROC curve.
    # The 0.95 point (t = 2: 38 of 40 in, 38 of 40 out) is interior to it, and the default
    # roc_curve(drop_intermediate=True) drops it, reading FPR 1.0 at the next point kept.
    scores = np.arange(40.0)
    assert fpr_at_tpr(scores, scores) == 0.95
    y, s = np.r_[np.ones(40), np.zeros(40)], np.r_[scores, scores]
    fpr, tpr, _ = roc_curve(y, s)  # drop_intermediate=True
    assert fpr[np.argmax(tpr >= 0.95)] == 1.0
    # without ties across the classes the default agrees
    rng = np.random.default_rng(1)
    for _ in range(50):
        s_in, s_out = rng.normal(1, 1, 200), rng.normal(0, 1, 150)
        fpr, tpr, _ = roc_curve(np.r_[np.ones(200), np.zeros(150)], np.r_[s_in, s_out])
        assert fpr_at_tpr(s_in, s_out) == fpr[np.argmax(tpr >= 0.95)]


def test_report_at_mnist_size() -> None:
    rng = np.random.default_rng(0)
    s_in, s_out = rng.normal(1.0, 1.0, 10_000), rng.normal(0.0, 1.0, 10_000)
    s_in[:2000] = np.round(s_in[:2000], 1)  # ties too
    s_out[:2000] = np.round(s_out[:2000], 1)
    report = ood_report(s_in, s_out)
    assert report == pytest.approx(sklearn_report(s_in, s_out), rel=1e-12)
    # two unit Gaussians one apart: AUROC = Phi(1 / sqrt(2)) = 0.760
    assert report["auroc"] == pytest.approx(0.5 * math.erfc(-0.5), abs=0.01)


# --------------------------------------------------------------------------- scores


def _scores(logits: np.ndarray, output: str = "softmax") -> dict[str, np.ndarray]:
    log_probs = metrics.log_probabilities(logits, output)
    return {name: s.score(logits, log_probs) for name, s in OOD_SCORES.items()}


def test_registry_declares_each_score() -> None:
    assert list(OOD_SCORES) == ["msp", "entropy", "energy"]
    for name, score in OOD_SCORES.items():
        assert score.name == name
        assert score.description and score.citation


def test_scores_by_hand() -> None:
    # z = (ln 3, 0): softmax (3/4, 1/4); msp 3/4; sum p ln p = 3/4 ln 3/4 + 1/4 ln 1/4;
    # energy logsumexp = ln(3 + 1) = ln 4
    z = np.array([[math.log(3.0), 0.0]])
    scores = _scores(z)
    assert scores["msp"] == pytest.approx([0.75])
    assert scores["entropy"] == pytest.approx([0.75 * math.log(0.75) + 0.25 * math.log(0.25)])
    assert scores["energy"] == pytest.approx([math.log(4.0)])
    assert all(s.shape == (1,) and s.dtype == np.float64 for s in scores.values())


@pytest.mark.parametrize("k", [2, 10])
def test_equal_logits_are_uniform(k: int) -> None:
    z = np.full((3, k), 7.0)
    scores = _scores(z)
    np.testing.assert_allclose(scores["msp"], 1.0 / k, rtol=1e-14)
    np.testing.assert_allclose(scores["entropy"], -math.log(k), rtol=1e-14)
    np.testing.assert_allclose(scores["energy"], 7.0 + math.log(k), rtol=1e-14)


def test_huge_logits_stay_finite() -> None:
    z = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [1e300, 1e300, 0.0]])
    scores = _scores(z)
    assert all(np.all(np.isfinite(s)) for s in scores.values())
    np.testing.assert_allclose(scores["msp"], [1.0, 1 / 3, 0.5], rtol=1e-14)
    np.testing.assert_allclose(scores["entropy"], [0.0, -math.log(3), -math.log(2)], atol=1e-15)
    np.testing.assert_allclose(scores["energy"], [1e4, -1e4 + math.log(3), 1e300], rtol=1e-15)


def test_energy_is_logsumexp_of_the_logits_not_of_the_log_probs() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 3.0, (50, 10))
    lp = log_softmax(z, axis=1)
    energy = OOD_SCORES["energy"].score
    np.testing.assert_allclose(energy(z, lp), logsumexp(z, axis=1), rtol=1e-15)
    # the log-probabilities' logsumexp is 0: they carry no energy
    np.testing.assert_allclose(logsumexp(lp, axis=1), 0.0, atol=1e-14)
    assert np.min(np.abs(energy(z, lp))) > 0.1
    # a constant added to every logit moves the energy by it and leaves msp and entropy alone
    shifted = z + 5.0
    np.testing.assert_allclose(energy(shifted, lp), energy(z, lp) + 5.0, rtol=1e-14)
    for name in ("msp", "entropy"):
        score = OOD_SCORES[name].score
        lp_shifted = log_softmax(shifted, axis=1)
        np.testing.assert_allclose(score(shifted, lp_shifted), score(z, lp), atol=1e-14)
        np.testing.assert_array_equal(score(None, lp), score(z, lp))  # logits unused


@pytest.mark.parametrize("output", ["sigmoid", "linear", "tanh"])
def test_energy_without_logits_reads_the_normalised_log_probs(output: str) -> None:
    # the documented fallback for outputs whose z are not softmax logits: log_probs taken as
    # the logits, which are normalised here, so the energy is 0 for every image and ranks
    # nothing
    z = np.random.default_rng(4).normal(0.0, 2.0, (20, 10))
    lp = metrics.log_probabilities(z, output)
    np.testing.assert_allclose(OOD_SCORES["energy"].score(None, lp), 0.0, atol=1e-14)


def test_scores_agree_with_the_metrics() -> None:
    z = np.random.default_rng(5).normal(0.0, 4.0, (100, 10))
    probs, scores = metrics.probabilities(z, "softmax"), _scores(z)
    np.testing.assert_allclose(scores["msp"], probs.max(axis=1), rtol=1e-15)
    assert -np.mean(scores["entropy"]) == pytest.approx(metrics.entropy(probs), rel=1e-13)


@pytest.mark.parametrize(
    ("logits", "log_probs", "message"),
    [
        pytest.param(None, np.zeros(3), r"log_probs must be 2-D \(n, K\)", id="1d"),
        pytest.param(None, np.array([[np.nan, 0.0]]), "log_probs must be finite", id="nan"),
        pytest.param(np.zeros((2, 3)), np.zeros((2, 4)), "must have one shape", id="shapes"),
        pytest.param(np.array([[np.inf, 0.0]]), np.zeros((1, 2)), "logits must be", id="inf"),
    ],
)
def test_scores_bad_input(logits: np.ndarray | None, log_probs: np.ndarray, message: str) -> None:
    score = OOD_SCORES["energy" if logits is not None else "msp"].score
    with pytest.raises(ValueError, match=message):
        score(logits, log_probs)
