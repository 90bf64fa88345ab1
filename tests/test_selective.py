"""Selective prediction: risk-coverage, AURC, E-AURC and accuracy at a coverage, by hand, against
brute-force loops (every order of the tied images), and at the edges (all right, all wrong,
confidence 1.0 everywhere, n = 1, non-finite input)."""

from __future__ import annotations

import itertools
import math
from random import Random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnistexp.eval.selective import (
    accuracy_at_coverage,
    aurc,
    coverage_key,
    eaurc,
    optimal_aurc,
    optimal_aurc_limit,
    risk_coverage,
    selective_report,
)

# --------------------------------------------------------------------------- references


def loop_aurc(confidence: list[float], correct: list[bool]) -> float:
    """Mean over k of the error rate of the k most confident, one sort, ties in input order."""
    ranked = sorted(zip(confidence, correct, strict=True), key=lambda p: -p[0])
    errors, total = 0, 0.0
    for k, (_, right) in enumerate(ranked, start=1):
        errors += not right
        total += errors / k
    return total / len(ranked)


def every_order_aurc(confidence: list[float], correct: list[bool]) -> float:
    """The mean of ``loop_aurc`` over every order of the images that keeps the confidences
    non-increasing (each order of the tied images once), for n <= 7."""
    values = []
    for order in itertools.permutations(range(len(confidence))):
        conf = [confidence[i] for i in order]
        if all(a >= b for a, b in itertools.pairwise(conf)):
            values.append(loop_aurc(conf, [correct[i] for i in order]))
    return sum(values) / len(values)


def loop_optimal(n: int, n_correct: int) -> float:
    return sum(max(0, k - n_correct) / k for k in range(1, n + 1)) / n


# --------------------------------------------------------------------------- by hand


def test_by_hand() -> None:
    # sorted: right, wrong, right, wrong. risk(k) = 0, 1/2, 1/3, 2/4 -> AURC = (4/3) / 4 = 1/3.
    # Optimal (2 right first): 0, 0, 1/3, 2/4 -> (5/6) / 4 = 5/24. E-AURC = 8/24 - 5/24 = 1/8.
    conf = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, False, True, False])
    coverage, risk = risk_coverage(conf, correct)
    np.testing.assert_allclose(coverage, [0.25, 0.5, 0.75, 1.0], rtol=1e-15)
    np.testing.assert_allclose(risk, [0.0, 0.5, 1 / 3, 0.5], rtol=1e-15)
    assert aurc(conf, correct) == pytest.approx(1 / 3, abs=1e-15)
    assert optimal_aurc(4, 2) == pytest.approx(5 / 24, abs=1e-15)
    assert eaurc(conf, correct) == pytest.approx(1 / 8, abs=1e-15)
    # coverage 0.6 of 4 images accepts ceil(2.4) = 3: right, wrong, right
    assert accuracy_at_coverage(conf, correct, 0.6) == pytest.approx(2 / 3)
    assert accuracy_at_coverage(conf, correct, 0.5) == 0.5
    assert accuracy_at_coverage(conf, correct, 1.0) == 0.5
    assert accuracy_at_coverage(conf[::-1], correct[::-1], 0.25) == 1.0  # input order is free


def test_ties_by_hand() -> None:
    # 0.9 right, then a tie of three at 0.5: one right, two wrong (indices 1, 2, 3).
    # Curve: two points, (1/4, 0) and (4/4, 2/4): the tie is accepted together.
    # AURC: inside the tie the expected risk, (0 + j 2/3) / k for the j-th tied image at k:
    # k = 1: 0; k = 2: (2/3)/2 = 1/3; k = 3: (4/3)/3 = 4/9; k = 4: 2/4. Mean = (23/18)/4 = 23/72.
    # The three orders of the tie (right first, middle, last) give 5/6, 4/3, 5/3 / 4: the
    # same mean. Optimal (2 right): 5/24 = 15/72, so E-AURC = 8/72 = 1/9.
    conf = np.array([0.9, 0.5, 0.5, 0.5])
    correct = np.array([True, True, False, False])
    coverage, risk = risk_coverage(conf, correct)
    np.testing.assert_allclose(coverage, [0.25, 1.0], rtol=1e-15)
    np.testing.assert_allclose(risk, [0.0, 0.5], rtol=1e-15)
    assert aurc(conf, correct) == pytest.approx(23 / 72, abs=1e-15)
    assert every_order_aurc(conf.tolist(), correct.tolist()) == pytest.approx(23 / 72)
    assert eaurc(conf, correct) == pytest.approx(1 / 9, abs=1e-15)
    # accuracy at a coverage breaks the tie by index: 2 of 4 takes images 0 and 1 (both right)
    assert accuracy_at_coverage(conf, correct, 0.5) == 1.0
    assert accuracy_at_coverage(conf[[0, 3, 2, 1]], correct[[0, 3, 2, 1]], 0.5) == 0.5


def test_coverage_count_is_exact_in_float() -> None:
    # 0.07 * 100 = 7.000000000000001 in float64: ceil would accept 8; k / n >= c accepts 7
    assert 0.07 * 100 > 7
    conf = np.linspace(1.0, 0.0, 100)
    correct = np.arange(100) != 7  # the 8th most confident is the only wrong one
    assert accuracy_at_coverage(conf, correct, 0.07) == 1.0
    assert accuracy_at_coverage(conf, correct, 0.0701) == 7 / 8


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("n", [1, 2, 50])
def test_all_correct_and_all_wrong(n: int) -> None:
    conf = np.random.default_rng(n).random(n)
    right, wrong = np.ones(n, bool), np.zeros(n, bool)
    assert selective_report(conf, right) == {
        "aurc": 0.0,
        "eaurc": 0.0,
        "acc_at_90": 1.0,
        "acc_at_95": 1.0,
        "acc_at_99": 1.0,
    }
    assert selective_report(conf, wrong) == {
        "aurc": 1.0,
        "eaurc": 0.0,
        "acc_at_90": 0.0,
        "acc_at_95": 0.0,
        "acc_at_99": 0.0,
    }


def test_confidence_one_everywhere() -> None:
    # one tie group: a single curve point, and every coverage at the error rate 3/10
    conf = np.ones(10)
    correct = np.arange(10) >= 3
    coverage, risk = risk_coverage(conf, correct)
    np.testing.assert_array_equal(coverage, [1.0])
    np.testing.assert_array_equal(risk, [0.3])
    assert aurc(conf, correct) == pytest.approx(0.3, abs=1e-15)
    assert eaurc(conf, correct) == pytest.approx(0.3 - loop_optimal(10, 7), abs=1e-15)
    assert accuracy_at_coverage(conf, correct, 0.5) == 0.4  # indices 0..4, of which 3, 4 right


@pytest.mark.parametrize("right", [True, False])
def test_one_image(right: bool) -> None:
    coverage, risk = risk_coverage(np.array([0.7]), np.array([right]))
    assert coverage.tolist() == [1.0] and risk.tolist() == [float(not right)]
    assert aurc(np.array([0.7]), np.array([right])) == float(not right)
    assert eaurc(np.array([0.7]), np.array([right])) == 0.0
    assert accuracy_at_coverage(np.array([0.7]), np.array([right]), 0.01) == float(right)


@pytest.mark.parametrize(
    ("confidence", "correct", "message"),
    [
        pytest.param([0.5, np.nan], [1, 0], "confidence must be finite", id="nan"),
        pytest.param([0.5, np.inf], [1, 0], "confidence must be finite", id="inf"),
        pytest.param([], [], r"n >= 1", id="empty"),
        pytest.param([0.5, 0.4], [1], r"correct \(n,\)", id="shapes"),
        pytest.param([[0.5]], [[1]], r"confidence \(n,\)", id="2d"),
        pytest.param([0.5, 0.4], [1, 2], "correct must be bool or 0/1", id="not-bool"),
        pytest.param([0.5, 0.4], [1.0, np.nan], "correct must be bool or 0/1", id="nan-correct"),
    ],
)
def test_bad_input(confidence: list, correct: list, message: str) -> None:
    conf, hits = np.array(confidence), np.array(correct)
    for call in (
        lambda: risk_coverage(conf, hits),
        lambda: aurc(conf, hits),
        lambda: eaurc(conf, hits),
        lambda: accuracy_at_coverage(conf, hits, 0.5),
        lambda: selective_report(conf, hits),
    ):
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("coverage", [0.0, -0.5, 1.0000001, np.nan])
def test_coverage_range(coverage: float) -> None:
    with pytest.raises(ValueError, match=r"coverage must lie in \(0, 1\]"):
        accuracy_at_coverage(np.array([0.5, 0.4]), np.array([True, False]), coverage)


def test_integer_correct_is_accepted() -> None:
    conf = np.array([0.9, 0.8, 0.7])
    assert aurc(conf, np.array([1, 0, 1])) == aurc(conf, np.array([True, False, True]))


# --------------------------------------------------------------------------- references


def test_aurc_against_the_loop_without_ties() -> None:
    rng = np.random.default_rng(27)
    for _ in range(100):
        n = int(rng.integers(1, 300))
        conf = rng.random(n)
        correct = rng.random(n) < conf  # more often right when confident
        assert aurc(conf, correct) == pytest.approx(loop_aurc(conf.tolist(), correct.tolist()))
        assert optimal_aurc(n, int(correct.sum())) == pytest.approx(
            loop_optimal(n, int(correct.sum()))
        )
        coverage, risk = risk_coverage(conf, correct)
        assert coverage.shape == risk.shape == (n,)  # one point per image without ties
        assert np.mean(risk) == pytest.approx(aurc(conf, correct))


@given(st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=1, max_size=7))
@settings(max_examples=150, deadline=None)
def test_aurc_is_the_mean_over_every_order_of_the_ties(pairs: list[tuple[int, bool]]) -> None:
    conf, correct = [float(c) for c, _ in pairs], [r for _, r in pairs]
    assert aurc(np.array(conf), np.array(correct)) == pytest.approx(
        every_order_aurc(conf, correct), abs=1e-14
    )
    # the curve: one point per distinct confidence, read from the brute-force ranking
    coverage, risk = risk_coverage(np.array(conf), np.array(correct))
    levels = sorted(set(conf), reverse=True)
    kept = [[r for c, r in pairs if c >= level] for level in levels]
    np.testing.assert_allclose(coverage, [len(k) / len(pairs) for k in kept])
    np.testing.assert_allclose(risk, [1 - sum(k) / len(k) for k in kept])


@given(
    st.lists(st.tuples(st.floats(0, 1, allow_nan=False), st.booleans()), min_size=1, max_size=60),
    st.randoms(use_true_random=False),
)
@settings(max_examples=200, deadline=None)
def test_eaurc_is_never_negative_and_order_free(pairs: list, random: Random) -> None:
    conf, correct = np.array([c for c, _ in pairs]), np.array([r for _, r in pairs])
    assert eaurc(conf, correct) >= 0.0
    permutation = np.array(random.sample(range(len(pairs)), len(pairs)))
    assert aurc(conf[permutation], correct[permutation]) == pytest.approx(
        aurc(conf, correct), abs=1e-14
    )


@pytest.mark.parametrize("seed", range(5))
def test_eaurc_is_zero_for_a_perfect_ranking(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 200
    correct = rng.random(n) < 0.8
    conf = np.where(correct, 0.6 + 0.4 * rng.random(n), 0.5 * rng.random(n))
    assert eaurc(conf, correct) == 0.0
    # ties among the right and among the wrong images keep it perfect
    tied = np.where(correct, 1.0, 0.25)
    assert eaurc(tied, correct) == 0.0
    assert aurc(tied, correct) == optimal_aurc(n, int(correct.sum()))


@pytest.mark.parametrize(("n", "error_rate"), [(10_000, 0.01), (10_000, 0.1), (100_000, 0.3)])
def test_optimal_aurc_approaches_its_continuous_limit(n: int, error_rate: float) -> None:
    # (1/n) sum_{k > C} (k - C) / k = (n - C)/n - (C/n)(H_n - H_C) -> r + (1 - r) ln(1 - r),
    # with H_n - H_C = ln(n / C) + 1/(2n) - 1/(2C) + ..., so the exact sum is above by ~ r / (2n)
    n_correct = round(n * (1 - error_rate))
    exact, limit = optimal_aurc(n, n_correct), optimal_aurc_limit(error_rate)
    assert exact - limit == pytest.approx(error_rate / (2 * n), rel=1e-3)
    assert optimal_aurc_limit(0.0) == 0.0 and optimal_aurc_limit(1.0) == 1.0
    assert optimal_aurc_limit(0.5) == pytest.approx(0.5 - 0.5 * math.log(2))


# --------------------------------------------------------------------------- report


def test_report_keys_and_values() -> None:
    rng = np.random.default_rng(9)
    conf = rng.random(1000)
    correct = rng.random(1000) < conf
    report = selective_report(conf, correct)
    assert list(report) == ["aurc", "eaurc", "acc_at_90", "acc_at_95", "acc_at_99"]
    assert report["aurc"] == aurc(conf, correct)
    assert report["eaurc"] == eaurc(conf, correct)
    for key, coverage in (("acc_at_90", 0.9), ("acc_at_95", 0.95), ("acc_at_99", 0.99)):
        assert report[key] == accuracy_at_coverage(conf, correct, coverage)
    # the most confident 90% were chosen by confidence: better than all of them
    assert report["acc_at_90"] > np.mean(correct)
    assert list(selective_report(conf, correct, coverages=(0.5, 0.995, 1.0))) == [
        "aurc",
        "eaurc",
        "acc_at_50",
        "acc_at_99.5",
        "acc_at_100",
    ]
    assert coverage_key(0.9) == "acc_at_90" and coverage_key(0.07) == "acc_at_7"
