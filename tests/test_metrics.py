"""Metrics checked three ways: hand-worked tiny cases, edge cases (0.0, bin edges, 1.0, empty
bins, huge logits), and a slow per-sample loop reference on thousands of random samples."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from mnistexp.eval import metrics

# --------------------------------------------------------------------------------------------
# A slow, independent reference: per-sample Python loops, explicit `lo < c <= hi`, 0.0 special.


def ref_bin(c: float, bins: int) -> int:
    """Bin of confidence c: the m with m/M < c <= (m+1)/M; 0.0 goes in bin 0."""
    if c == 0.0:
        return 0
    for m in range(bins):
        if m / bins < c <= (m + 1) / bins:
            return m
    raise AssertionError(f"confidence {c!r} fits no bin")


def ref_errors(groups: list[list[tuple[float, float]]], n: int) -> tuple[float, float, float]:
    """(ECE, MCE, RMSCE) from groups of (confidence, hit) pairs, skipping empty groups."""
    ece, mce, ms = 0.0, 0.0, 0.0
    for group in groups:
        if not group:
            continue
        conf = sum(c for c, _ in group) / len(group)
        acc = sum(h for _, h in group) / len(group)
        ece += len(group) / n * abs(acc - conf)
        ms += len(group) / n * (acc - conf) ** 2
        mce = max(mce, abs(acc - conf))
    return ece, mce, math.sqrt(ms)


def ref_calibration(conf: np.ndarray, hits: np.ndarray, bins: int) -> tuple[float, float, float]:
    groups: list[list[tuple[float, float]]] = [[] for _ in range(bins)]
    for c, h in zip(conf.tolist(), hits.tolist(), strict=True):
        groups[ref_bin(c, bins)].append((c, float(h)))
    return ref_errors(groups, len(conf))


def ref_adaptive(conf: np.ndarray, hits: np.ndarray, bins: int) -> float:
    pairs = sorted(zip(conf.tolist(), hits.tolist(), strict=True), key=lambda p: p[0])
    n = len(pairs)
    size, extra = divmod(n, bins)
    groups, start = [], 0
    for m in range(bins):  # the first n % M groups take one more sample
        stop = start + size + (1 if m < extra else 0)
        groups.append([(c, float(h)) for c, h in pairs[start:stop]])
        start = stop
    return ref_errors(groups, n)[0]


def ref_classwise(probs: np.ndarray, labels: np.ndarray, bins: int) -> float:
    k = probs.shape[1]
    per_class = [ref_calibration(probs[:, j], labels == j, bins)[0] for j in range(k)]
    return sum(per_class) / k


# --------------------------------------------------------------------------------------------
# Binning edge cases


@pytest.mark.parametrize(
    ("conf", "bins", "expected"),
    [
        pytest.param(0.0, 5, 0, id="zero-first-bin"),
        pytest.param(0.2, 5, 0, id="edge-0.2-M5-lower-bin"),
        pytest.param(np.nextafter(0.2, 1.0), 5, 1, id="just-above-0.2-M5"),
        pytest.param(0.6, 5, 2, id="edge-0.6-M5"),  # linspace's 3/5 is 0.6000000000000001
        pytest.param(1.0, 5, 4, id="one-last-bin"),
        pytest.param(1 / 15, 15, 0, id="edge-1/15"),
        pytest.param(2 / 15, 15, 1, id="edge-2/15"),
        pytest.param(0.2, 15, 2, id="edge-0.2-M15"),  # 0.2 == 3/15 as floats
        pytest.param(14 / 15, 15, 13, id="edge-14/15"),
        pytest.param(1.0, 15, 14, id="one-M15"),
        pytest.param(0.2, 35, 6, id="edge-7/35"),  # linspace's 7/35 is 0.19999999999999998
        pytest.param(0.1 + 0.2, 10, 3, id="0.30000000000000004-above-0.3"),
        pytest.param(0.3, 10, 2, id="0.3-edge"),
        pytest.param(0.5, 1, 0, id="one-bin"),
        pytest.param(1.0 + 2e-16, 10, 9, id="rounding-above-one"),
        pytest.param(float(np.float32(1.0)), 15, 14, id="float32-one"),
    ],
)
def test_bin_index_edge_cases(conf: float, bins: int, expected: int) -> None:
    assert metrics.bin_indices(np.array([conf]), bins).tolist() == [expected]
    assert ref_bin(min(conf, 1.0), bins) == expected


@pytest.mark.parametrize("bins", range(1, 101))
def test_every_edge_goes_in_the_lower_bin(bins: int) -> None:
    edges = np.array([m / bins for m in range(bins + 1)])  # Python division: float nearest m/M
    np.testing.assert_array_equal(metrics.bin_edges(bins), edges)
    below = metrics.bin_indices(edges, bins)
    above = metrics.bin_indices(np.nextafter(edges, 2.0), bins)
    assert below.tolist() == [0, *range(bins)]
    assert above.tolist() == [*range(bins), bins - 1]


def test_bins_must_be_positive() -> None:
    with pytest.raises(ValueError, match="bins"):
        metrics.bin_edges(0)
    with pytest.raises(ValueError, match="bins"):
        metrics.adaptive_ece(np.array([0.5]), np.array([True]), 0)


# --------------------------------------------------------------------------------------------
# Hand-worked ECE family

# Five samples, M = 5 bins (0, .2] (.2, .4] (.4, .6] (.6, .8] (.8, 1]:
#   conf 0.0 -> bin 0 (0.0 joins the first bin), 0.2 -> bin 0 (edge -> lower bin),
#   0.3 -> bin 1, 0.9 and 1.0 -> bin 4; bins 2 and 3 are empty.
#   bin 0: conf (0 + .2)/2 = .1, acc 1/2 = .5, gap .4
#   bin 1: conf .3, acc 0, gap .3
#   bin 4: conf (.9 + 1)/2 = .95, acc 1/2 = .5, gap .45
#   ECE = (2*.4 + 1*.3 + 2*.45)/5 = 2.0/5 = .4;  MCE = .45 (empty bins ignored)
#   RMSCE = sqrt((2*.16 + .09 + 2*.2025)/5) = sqrt(.815/5) = sqrt(.163)
HAND_CONF = np.array([0.0, 0.2, 0.3, 0.9, 1.0])
HAND_HITS = np.array([False, True, False, True, False])


def test_ece_mce_rmsce_by_hand() -> None:
    got = metrics.calibration_errors(HAND_CONF, HAND_HITS, bins=5)
    assert got == pytest.approx({"ece": 0.4, "mce": 0.45, "rmsce": math.sqrt(0.163)}, abs=1e-15)
    assert metrics.ece(HAND_CONF, HAND_HITS, bins=5) == got["ece"]


def test_reliability_bins_by_hand_with_empty_bins() -> None:
    rel = metrics.reliability_bins(HAND_CONF, HAND_HITS, bins=5)
    assert rel["edges"] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], abs=0)
    assert rel["count"] == [2, 1, 0, 0, 2]
    assert rel["fraction"] == pytest.approx([0.4, 0.2, 0.0, 0.0, 0.4])
    assert rel["mean_confidence"] == pytest.approx([0.1, 0.3, None, None, 0.95])
    assert rel["accuracy"] == pytest.approx([0.5, 0.0, None, None, 0.5])
    json.dumps(rel, allow_nan=False)  # JSON-safe: None, not NaN, for empty bins


def test_adaptive_ece_by_hand() -> None:
    # M = 5 equal-mass groups of one sample each, sorted conf = HAND_CONF:
    #   gaps |0 - 0| + |1 - .2| + |0 - .3| + |1 - .9| + |0 - 1| = 2.2 -> ACE = 2.2/5 = .44
    assert metrics.adaptive_ece(HAND_CONF, HAND_HITS, bins=5) == pytest.approx(0.44)
    # M = 2: array_split sizes 3, 2. Group 0: conf .5/3, acc 1/3, gap 1/6;
    #   group 1: conf .95, acc .5, gap .45 -> ACE = 3/5 * 1/6 + 2/5 * .45 = .1 + .18 = .28
    assert metrics.adaptive_ece(HAND_CONF, HAND_HITS, bins=2) == pytest.approx(0.28)
    # More bins than samples: the empty groups are skipped, same as one sample per group.
    assert metrics.adaptive_ece(HAND_CONF, HAND_HITS, bins=15) == pytest.approx(0.44)


@pytest.mark.parametrize(
    ("conf", "hits", "ece"),
    [
        pytest.param([0.7], [True], 0.3, id="one-sample-correct"),  # |1 - .7|
        pytest.param([0.7], [False], 0.7, id="one-sample-wrong"),  # |0 - .7|
        pytest.param([1.0, 1.0, 1.0], [True] * 3, 0.0, id="all-correct-certain"),
        pytest.param([1.0, 1.0], [False] * 2, 1.0, id="all-wrong-certain"),
        pytest.param([0.6, 0.9], [True, True], 0.25, id="all-correct"),  # (.4 + .1)/2
        pytest.param([0.6, 0.9], [False, False], 0.75, id="all-wrong"),  # (.6 + .9)/2
    ],
)
def test_ece_small_cases(conf: list[float], hits: list[bool], ece: float) -> None:
    got = metrics.calibration_errors(np.array(conf), np.array(hits), bins=15)
    assert got["ece"] == pytest.approx(ece, abs=1e-15)
    assert got["mce"] >= got["rmsce"] >= got["ece"] - 1e-15  # max >= quadratic mean >= mean


def test_one_bin_is_gap_of_the_means() -> None:
    # With M = 1, ECE = MCE = RMSCE = |mean(hits) - mean(conf)| = |.5 - .6| = .1
    got = metrics.calibration_errors(np.array([0.2, 1.0]), np.array([True, False]), bins=1)
    assert got == pytest.approx({"ece": 0.1, "mce": 0.1, "rmsce": 0.1})


def test_classwise_ece_by_hand() -> None:
    # 3 samples x 2 classes, M = 2 bins (0, .5] (.5, 1].
    # Class 0: p = .8 .4 .5, hit = 1 1 0. Bin 0 {.4, .5}: conf .45, acc .5, gap .05;
    #   bin 1 {.8}: conf .8, acc 1, gap .2. ECE_0 = 2/3 * .05 + 1/3 * .2 = .1
    # Class 1: p = .2 .6 .5, hit = 0 0 1. Bin 0 {.2, .5}: conf .35, acc .5, gap .15;
    #   bin 1 {.6}: conf .6, acc 0, gap .6. ECE_1 = 2/3 * .15 + 1/3 * .6 = .3
    # Classwise ECE = (.1 + .3)/2 = .2
    probs = np.array([[0.8, 0.2], [0.4, 0.6], [0.5, 0.5]])
    labels = np.array([0, 0, 1])
    np.testing.assert_allclose(metrics.classwise_ece_per_class(probs, labels, 2), [0.1, 0.3])
    assert metrics.classwise_ece(probs, labels, 2) == pytest.approx(0.2)


def test_empty_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        metrics.calibration_errors(np.array([]), np.array([], dtype=bool))
    with pytest.raises(ValueError, match="n >= 1"):
        metrics.evaluate(np.zeros((0, 3)), np.array([], int), np.array([], int))
    with pytest.raises(ValueError, match="finite"):
        metrics.evaluate(np.array([[np.nan, 0.5]]), np.array([0]), np.array([0]))
    with pytest.raises(ValueError, match="finite"):
        metrics.calibration_errors(np.array([np.nan]), np.array([True]))


# --------------------------------------------------------------------------------------------
# Vectorized versions vs the loop reference on random inputs


def _random_confidences(rng: np.random.Generator, n: int, bins: int) -> np.ndarray:
    """Uniform confidences with exact edges m/M, 0.0 and 1.0 mixed in."""
    conf = rng.uniform(0.0, 1.0, n)
    special = rng.choice(n, size=n // 4, replace=False)
    conf[special] = rng.integers(0, bins + 1, special.size) / bins  # exact edges, incl 0, 1
    return conf


@pytest.mark.parametrize("bins", [1, 10, 15, 20])
def test_calibration_matches_reference_on_random_inputs(bins: int) -> None:
    rng = np.random.default_rng(bins)
    conf = _random_confidences(rng, 3000, bins)
    hits = rng.random(3000) < conf**2  # overconfident on purpose
    expected = ref_calibration(conf, hits, bins)
    got = metrics.calibration_errors(conf, hits, bins)
    assert (got["ece"], got["mce"], got["rmsce"]) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert metrics.adaptive_ece(conf, hits, bins) == pytest.approx(
        ref_adaptive(conf, hits, bins), rel=1e-12, abs=1e-15
    )
    counts = [0] * bins
    for c in conf.tolist():
        counts[ref_bin(c, bins)] += 1
    assert metrics.reliability_bins(conf, hits, bins)["count"] == counts


def _float32_model(rng: np.random.Generator, n: int, k: int = 10) -> tuple[np.ndarray, ...]:
    """float32 softmax of sharp logits: many top probabilities round to exactly 1.0."""
    scale = np.where(np.arange(n) % 2 == 0, 40.0, 3.0)[:, None]  # half sharp, half soft
    z = (rng.normal(0.0, 1.0, (n, k)) * scale).astype(np.float32)
    probs32 = softmax(z, axis=1).astype(np.float32)
    labels = rng.integers(0, k, n)
    labels[: n // 2] = np.argmax(z[: n // 2], axis=1)  # half correct by construction
    return z, probs32.astype(np.float64), labels


@pytest.mark.parametrize("bins", [1, 10, 15, 20])
def test_float32_probabilities_match_reference(bins: int) -> None:
    rng = np.random.default_rng(100 + bins)
    z, probs, labels = _float32_model(rng, 2000)
    pred = metrics.predict(z)
    conf = probs[np.arange(len(pred)), pred]
    assert np.sum(conf == 1.0) > 300  # the edge case is really exercised
    hits = pred == labels
    result = metrics.evaluate(probs, labels, pred, bins=bins)
    expected = ref_calibration(conf, hits, bins)
    assert (result["ece"], result["mce"], result["rmsce"]) == pytest.approx(expected, rel=1e-12)
    assert result["ace"] == pytest.approx(ref_adaptive(conf, hits, bins), rel=1e-12)
    assert result["classwise_ece"] == pytest.approx(
        ref_classwise(probs, labels, bins), rel=1e-12, abs=1e-15
    )
    assert result["reliability"]["count"][-1] >= np.sum(conf == 1.0)


@pytest.mark.parametrize("bins", [1, 10, 15, 20])
def test_classwise_matches_reference_on_random_inputs(bins: int) -> None:
    rng = np.random.default_rng(200 + bins)
    probs = rng.dirichlet(np.full(4, 0.3), 1500)
    probs[:100] = np.eye(4)[rng.integers(0, 4, 100)]  # exact 0.0 and 1.0 entries
    labels = rng.integers(0, 4, 1500)
    got = metrics.classwise_ece(probs, labels, bins)
    assert got == pytest.approx(ref_classwise(probs, labels, bins), rel=1e-12, abs=1e-15)


# --------------------------------------------------------------------------------------------
# Brier, NLL, entropy by hand

# probs [[.7, .2, .1], [.1, .1, .8]], labels [0, 1]:
#   Brier: (.3^2 + .2^2 + .1^2) = .14 and (.1^2 + .9^2 + .8^2) = 1.46 -> mean .8
#   NLL: -(ln .7 + ln .1)/2 = (.356675 + 2.302585)/2 = 1.329630
#   Entropy: -(.7 ln .7 + .2 ln .2 + .1 ln .1) = .801819; -(2 * .1 ln .1 + .8 ln .8) = .639032
#   mean .720425
HAND_PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
HAND_LABELS = np.array([0, 1])


def test_brier_nll_entropy_by_hand() -> None:
    assert metrics.brier(HAND_PROBS, HAND_LABELS) == pytest.approx(0.8)
    assert metrics.nll(HAND_PROBS, HAND_LABELS) == pytest.approx(1.329630, abs=1e-6)
    assert metrics.entropy(HAND_PROBS) == pytest.approx(0.720425, abs=1e-6)
    log_probs = np.log(HAND_PROBS)
    assert metrics.nll(HAND_PROBS, HAND_LABELS, log_probs) == pytest.approx(1.329630, abs=1e-6)


def test_brier_nll_entropy_extremes() -> None:
    certain = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert metrics.brier(certain, np.array([0, 1])) == 0.0
    assert metrics.brier(certain, np.array([1, 0])) == 2.0  # worst case: 1 + 1
    assert metrics.entropy(certain) == 0.0  # 0 log 0 = 0, no warning
    assert metrics.entropy(np.full((3, 4), 0.25)) == pytest.approx(math.log(4))
    # p_y = 0: floored at NLL_FLOOR -> -ln 1e-12 = 27.631021
    assert metrics.nll(certain, np.array([1, 0])) == pytest.approx(-math.log(metrics.NLL_FLOOR))
    # Log-probabilities are floored the same way: logits (1e4, 0), label 1 has log p = -1e4,
    # which counts as -ln 1e-12; label 0 (log p = 0) is exact.
    log_probs = metrics.log_probabilities(np.array([[1e4, 0.0]]), "softmax")
    floor = -math.log(metrics.NLL_FLOOR)
    assert metrics.nll(np.exp(log_probs), np.array([1]), log_probs) == pytest.approx(floor)
    assert metrics.nll(np.exp(log_probs), np.array([0]), log_probs) == 0.0


# --------------------------------------------------------------------------------------------
# evaluate, confusion matrix


def test_evaluate_by_hand() -> None:
    # Predictions [0, 2] (argmax), labels [0, 1]: one right. Confidences .7 and .8.
    # M = 15: .7 in bin 10 (2/3, 11/15], .8 == 12/15 is an edge -> bin 11. One sample each:
    #   ECE = (|1 - .7| + |0 - .8|)/2 = .55, MCE = .8, RMSCE = sqrt((.09 + .64)/2)
    # Classwise, one sample per bin everywhere: class 0 p (.7, .1) hits (1, 0) -> (.3 + .1)/2;
    #   class 1 p (.2, .1) hits (0, 1) -> (.2 + .9)/2; class 2 p (.1, .8) hits (0, 0) ->
    #   (.1 + .8)/2; mean (.2 + .55 + .45)/3 = .4
    result = metrics.evaluate(HAND_PROBS, HAND_LABELS, np.array([0, 2]))
    expected = {
        "accuracy": 0.5,
        "error": 0.5,
        "nll": 1.329630,
        "brier": 0.8,
        "ece": 0.55,
        "mce": 0.8,
        "rmsce": math.sqrt(0.365),
        "ace": 0.55,
        "classwise_ece": 0.4,
        "mean_confidence": 0.75,
        "overconfidence": 0.25,
        "entropy": 0.720425,
        "n": 2,
        # equal-mass bins of one sample each: no correction, the plug-in (.09 + .64) / 2
        "debiased_ce_squared": 0.365,
        "debiased_ce": math.sqrt(0.365),
    }
    extra = {"reliability", "per_class_accuracy", "confusion_matrix", "smooth_ece"}
    extra |= {"smooth_ece_sigma"}
    assert set(result) == set(expected) | extra
    assert {key: result[key] for key in expected} == pytest.approx(expected, abs=1e-6)
    assert result["reliability"]["count"][10:12] == [1, 1]
    assert result["per_class_accuracy"] == [1.0, 0.0, None]
    assert result["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
    assert type(result["ece"]) is float and type(result["n"]) is int
    json.dumps(result, allow_nan=False)


def test_evaluate_uses_given_predictions_for_confidence() -> None:
    # Linear outputs all below the floor: probabilities are uniform, but the raw argmax is 2.
    z = np.array([[-3.0, -2.0, -1.0]])
    probs = metrics.probabilities(z, "linear")
    np.testing.assert_allclose(probs, [[1 / 3] * 3])
    pred = metrics.predict(z)
    assert pred.tolist() == [2]
    result = metrics.evaluate(probs, np.array([2]), pred, bins=15)
    assert result["accuracy"] == 1.0
    assert result["mean_confidence"] == pytest.approx(1 / 3)
    assert result["overconfidence"] == pytest.approx(1 / 3 - 1)


def test_confusion_matrix_and_per_class_accuracy() -> None:
    labels = np.array([0, 0, 1, 2], dtype=np.uint8)
    pred = np.array([0, 1, 1, 0], dtype=np.uint8)
    expected = [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert metrics.confusion_matrix(labels, pred, k=4).tolist() == expected
    got = metrics.per_class_accuracy(labels, pred, k=4)  # class 3 has no samples: NaN, no warning
    np.testing.assert_array_equal(got, [0.5, 1.0, 0.0, np.nan])
    big = np.array([29], dtype=np.uint8)  # 29 * 30 overflows uint8 unless widened
    assert metrics.confusion_matrix(big, big, k=30)[29, 29] == 1
    with pytest.raises(ValueError, match="labels"):
        metrics.confusion_matrix(np.array([10]), np.array([0]), k=10)


def test_conventions_are_json_ready() -> None:
    text = json.dumps(metrics.CONVENTIONS, allow_nan=False)
    assert metrics.CONVENTIONS["prob_floor"] == metrics.PROB_FLOOR == 1e-6
    assert metrics.CONVENTIONS["nll_floor"] == metrics.NLL_FLOOR == 1e-12
    assert set(metrics.CONVENTIONS["probabilities"]) == set(metrics.PROBABILITY_RULES)
    assert "arange(M+1)/M" in text


# --------------------------------------------------------------------------------------------
# probabilities()


def test_softmax_huge_logits_are_exact_and_finite() -> None:
    z = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 0.0]], dtype=np.float32)
    log_p = metrics.log_probabilities(z, "softmax")
    p = metrics.probabilities(z, "softmax")
    assert log_p.dtype == np.float64 and np.all(np.isfinite(log_p))
    np.testing.assert_allclose(log_p[0], [0.0, -1e4, -2e4])
    np.testing.assert_allclose(p, [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]], atol=1e-300)


@pytest.mark.parametrize("output", sorted(metrics.PROBABILITY_RULES))
@pytest.mark.parametrize("value", [-1e4, -3.0, 0.0, 7.0, 1e4])
def test_equal_outputs_give_uniform(output: str, value: float) -> None:
    p = metrics.probabilities(np.full((2, 10), value), output)
    np.testing.assert_allclose(p, 0.1, rtol=1e-14)


def test_softmax_matches_naive_formula() -> None:
    z = np.random.default_rng(0).normal(0.0, 3.0, (50, 10))
    naive = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(metrics.probabilities(z, "softmax"), naive, rtol=1e-12)


def test_sigmoid_saturating_to_one_uses_floor_rule() -> None:
    # sigmoid(50) == 1.0 exactly in float64; sigmoid(-50) ~ 2e-22 is floored to 1e-6.
    # p = (1, 1, 1e-6) / (2 + 1e-6)
    p = metrics.probabilities(np.array([[50.0, 50.0, -50.0]]), "sigmoid")
    total = 2.0 + metrics.PROB_FLOOR
    np.testing.assert_allclose(p, [[1 / total, 1 / total, metrics.PROB_FLOOR / total]])
    z = np.array([[0.0, 0.0], [1e4, -1e4]])
    np.testing.assert_allclose(metrics.probabilities(z, "sigmoid")[0], [0.5, 0.5])
    assert np.all(np.isfinite(metrics.log_probabilities(z, "sigmoid")))


def test_linear_rule_clips_negatives_and_renormalizes() -> None:
    # a = (-1, .5, .25) -> (1e-6, .5, .25) / .750001
    p = metrics.probabilities(np.array([[-1.0, 0.5, 0.25]]), "linear")
    np.testing.assert_allclose(p, [[1e-6 / 0.750001, 0.5 / 0.750001, 0.25 / 0.750001]])
    huge = metrics.probabilities(np.array([[1e4, 1.0, -1e4]]), "linear")
    assert np.all(np.isfinite(huge))


@pytest.mark.parametrize("output", sorted(metrics.PROBABILITY_RULES))
def test_rules_sum_to_one_and_respect_the_floor(output: str) -> None:
    z = np.random.default_rng(1).normal(0.0, 20.0, (500, 10))
    p = metrics.probabilities(z, output)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(p, np.exp(metrics.log_probabilities(z, output)), rtol=0)
    if output != "softmax":
        # the documented rules: sigmoid(z), z, and for the scaled tanh (a + 1.7159) / 3.4318
        activation = {
            "sigmoid": 1 / (1 + np.exp(-z)),
            "linear": z,
            "tanh": (1.7159 * np.tanh(2 * z / 3) + 1.7159) / 3.4318,
        }[output]
        floored = np.maximum(activation, metrics.PROB_FLOOR)
        rtol = 1e-9 if output == "tanh" else 1e-12  # sigmoid(4z/3) and the tanh form round apart
        np.testing.assert_allclose(p, floored / floored.sum(axis=1, keepdims=True), rtol=rtol)
        assert np.all(p * floored.sum(axis=1, keepdims=True) >= metrics.PROB_FLOOR * (1 - 1e-12))


def test_unknown_output_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown output 'gelu'; allowed: linear, sigmoid"):
        metrics.probabilities(np.zeros((1, 2)), "gelu")
    with pytest.raises(ValueError, match="2-D"):
        metrics.probabilities(np.zeros(3), "softmax")


# --------------------------------------------------------------------------------------------
# Temperature scaling


def _sampled_labels(rng: np.random.Generator, z_true: np.ndarray) -> np.ndarray:
    """One label per row drawn from softmax(z_true) by inverse CDF."""
    cdf = np.cumsum(softmax(z_true, axis=1), axis=1)
    u = rng.random((len(z_true), 1))
    return np.minimum((cdf < u).sum(axis=1), z_true.shape[1] - 1)


@pytest.mark.parametrize("t0", [2.5, 0.5, 1.0])
def test_temperature_recovers_the_true_one(t0: float) -> None:
    # Labels come from softmax(z_true); the fitter sees z_true * t0, so the best T is t0.
    rng = np.random.default_rng(int(t0 * 10))
    z_true = rng.normal(0.0, 2.0, (20000, 10))
    labels = _sampled_labels(rng, z_true)
    z = z_true * t0
    log_probs = metrics.log_probabilities(z, "softmax")
    temperature, _ = metrics.fit_temperature(log_probs, labels)
    assert temperature == pytest.approx(t0, rel=0.05)
    probs_t, log_probs_t = metrics.apply_temperature(log_probs, temperature)
    np.testing.assert_allclose(probs_t, softmax(z / temperature, axis=1), rtol=1e-10, atol=1e-300)
    pred = metrics.predict(z)
    before = metrics.evaluate(np.exp(log_probs), labels, pred, log_probs=log_probs)
    after = metrics.evaluate(probs_t, labels, pred, log_probs=log_probs_t)
    np.testing.assert_array_equal(np.argmax(probs_t, axis=1), pred)  # argmax preserved
    assert after["accuracy"] == before["accuracy"]
    assert after["nll"] <= before["nll"]
    if t0 != 1.0:
        assert after["ece"] < before["ece"]


def test_temperature_one_is_kept_when_nothing_better_is_allowed() -> None:
    # Calibrated data, but bounds that exclude T = 1: every allowed T is worse, keep 1.0.
    rng = np.random.default_rng(7)
    z = rng.normal(0.0, 2.0, (5000, 10))
    labels = _sampled_labels(rng, z)
    log_probs = log_softmax(z, axis=1)
    assert metrics.fit_temperature(log_probs, labels, bounds=(2.0, 5.0))[0] == 1.0


@pytest.mark.parametrize("output", ["sigmoid", "linear"])
def test_temperature_on_floored_outputs_never_hurts(output: str) -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 1.0, (3000, 10))
    labels = rng.integers(0, 10, 3000)
    labels[:2000] = np.argmax(z[:2000], axis=1)
    log_probs = metrics.log_probabilities(z, output)
    temperature, _ = metrics.fit_temperature(log_probs, labels)
    _, log_probs_t = metrics.apply_temperature(log_probs, temperature)
    assert 0.05 <= temperature <= 20.0
    assert metrics.nll(np.exp(log_probs_t), labels, log_probs_t) <= metrics.nll(
        np.exp(log_probs), labels, log_probs
    )


def test_apply_temperature_is_stable_and_checks_t() -> None:
    log_probs = metrics.log_probabilities(np.array([[1e4, 0.0, -1e4]]), "softmax")
    probs, scaled = metrics.apply_temperature(log_probs, 0.05)
    assert np.all(np.isfinite(scaled)) and probs[0, 0] == 1.0
    probs, _ = metrics.apply_temperature(log_probs, 1e6)  # very hot: nearly uniform, finite
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    same, _ = metrics.apply_temperature(np.log(HAND_PROBS), 1.0)
    np.testing.assert_allclose(same, HAND_PROBS, rtol=1e-14)
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="temperature"):
            metrics.apply_temperature(log_probs, bad)


def test_fit_temperature_rejects_bad_input() -> None:
    labels = np.array([0])
    with pytest.raises(ValueError, match="bounds"):
        metrics.fit_temperature(np.zeros((1, 2)), labels, bounds=(0.0, 1.0))
    with pytest.raises(ValueError, match="finite"):
        metrics.fit_temperature(np.array([[-np.inf, 0.0]]), labels)


def test_summary_is_the_scalar_core_of_evaluate_number_for_number():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(500, 10)) * 3
    log_p = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    labels = rng.integers(0, 10, 500)
    pred = logits.argmax(axis=1)
    full = metrics.evaluate(np.exp(log_p), labels, pred, bins=15, log_probs=log_p)
    core = metrics.summary(np.exp(log_p), labels, pred, bins=15, log_probs=log_p)
    assert core == {k: full[k] for k in core}
    assert {"accuracy", "nll", "brier", "ece", "debiased_ce", "smooth_ece"} <= set(core)
