"""Calibration estimators, bootstrap intervals and recalibration maps: by hand, against the
truth on synthetic data with known calibration, and against direct formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnistexp.config.identity import config_hash, identity
from mnistexp.config.loading import load_config
from mnistexp.eval import bootstrap, calibration, metrics
from mnistexp.eval.recalibration import (
    ODIR_GRID,
    RECALIBRATIONS,
    histogram_edges,
    isotonic_fit,
    odir_penalty,
    predictions_after,
)

# --------------------------------------------------------------------------- debiased CE


def test_debiased_ce_by_hand() -> None:
    # 2 equal-mass bins of the sorted confidences: {.2, .4} acc .5 conf .3; {.6, .8} acc 1
    # conf .7. Plug-in: .5 * .2^2 + .5 * .3^2 = .065. Corrections acc (1 - acc) / (n_b - 1):
    # .25 and 0, so the debiased square is .5 (.04 - .25) + .5 (.09 - 0) = -.06; the root is 0.
    conf, correct = np.array([0.8, 0.2, 0.6, 0.4]), np.array([1, 0, 1, 1], bool)
    assert calibration.debiased_ce_squared(conf, correct, bins=2) == pytest.approx(-0.06)
    assert calibration.debiased_ce(conf, correct, bins=2) == 0.0
    # one sample per bin: no correction is defined, the plug-in term stays
    assert calibration.debiased_ce_squared(np.array([0.7, 0.8]), np.array([1, 0]), 15) == (
        pytest.approx(0.5 * 0.09 + 0.5 * 0.64)
    )


def _known_calibration(rng: np.random.Generator, draws: int, gap: float):
    """10 confidence levels x 20 images each; accuracy at level c is c - gap."""
    levels = np.linspace(0.55, 0.95, 10)
    conf = np.repeat(levels, 20)  # (200,)
    correct = rng.uniform(size=(draws, conf.size)) < conf - gap  # (draws, 200)
    return conf, correct


@pytest.mark.parametrize("gap", [0.0, 0.03])
def test_debiased_ce_is_unbiased_where_the_plug_in_is_not(gap: float) -> None:
    # equal-mass bins of 20 coincide with the levels, so the binned truth is exactly gap^2
    rng = np.random.default_rng(0)
    conf, correct = _known_calibration(rng, 2000, gap)
    debiased = [calibration.debiased_ce_squared(conf, c, bins=10) for c in correct]
    plug_in = []
    for c in correct:
        acc = c.reshape(10, 20).mean(axis=1)
        plug_in.append(np.mean((acc - conf.reshape(10, 20)[:, 0]) ** 2))
    se = np.std(debiased) / math.sqrt(len(debiased))
    assert abs(np.mean(debiased) - gap**2) < 4 * se
    # the plug-in's bias is the mean variance of a bin's accuracy, acc (1 - acc) / 20 ~ 0.01
    assert np.mean(plug_in) - gap**2 > 0.005 > 10 * se


# --------------------------------------------------------------------------- smooth ECE


def test_smooth_ece_by_hand() -> None:
    # every residual has the same sign: the kernels integrate to one, so smECE_sigma is the
    # mean |residual| at every sigma: (.9 + .5 + .1) / 3 = .5; the fixed point is .5 as well
    conf, correct = np.array([0.1, 0.5, 0.9]), np.ones(3, bool)
    for sigma in (0.01, 0.1, 0.7):
        assert calibration.smooth_ece_at(conf, correct, sigma) == pytest.approx(0.5, abs=1e-9)
    value, sigma = calibration.smooth_ece(conf, correct)
    assert value == pytest.approx(0.5, abs=1e-6) and sigma == pytest.approx(0.5, abs=1e-6)
    # residuals that cancel at the same confidence: zero at every sigma, sigma at the floor
    value, sigma = calibration.smooth_ece(np.array([0.5, 0.5]), np.array([1, 0], bool))
    assert value == pytest.approx(0.0, abs=1e-12) and sigma == calibration.SIGMA_FLOOR


@pytest.mark.parametrize("sigma", [0.02, 0.1, 0.5])
def test_smooth_ece_lattice_matches_the_direct_sum(sigma: float) -> None:
    rng = np.random.default_rng(1)
    conf = rng.uniform(0, 1, 300)
    correct = rng.uniform(size=300) < conf**1.5
    direct = calibration.smooth_ece_direct(conf, correct, sigma)
    assert calibration.smooth_ece_at(conf, correct, sigma) == pytest.approx(direct, rel=2e-3)


def test_smooth_ece_is_small_for_calibrated_and_large_for_miscalibrated_data() -> None:
    rng = np.random.default_rng(2)
    conf = rng.uniform(0.5, 1.0, 20000)
    calibrated = rng.uniform(size=conf.size) < conf
    shifted = rng.uniform(size=conf.size) < conf - 0.1
    assert calibration.smooth_ece(conf, calibrated)[0] < 0.01
    assert calibration.smooth_ece(conf, shifted)[0] == pytest.approx(0.1, abs=0.01)


def test_reflected_kernel_integrates_to_one_on_the_unit_interval() -> None:
    t = np.linspace(0, 1, 20001)
    for x in (0.0, 0.3, 1.0):
        for sigma in (0.01, 0.3, 2.0):
            k = calibration.reflected_kernel(t - x, sigma) + calibration.reflected_kernel(
                t + x, sigma
            )
            assert np.trapezoid(k, t) == pytest.approx(1.0, abs=1e-4)


def full_reflected_kernel(offsets: np.ndarray, sigma: float) -> np.ndarray:
    """The wrapped Gaussian with every image term computed, as before the underflow window."""
    out = np.zeros(np.shape(offsets))
    for k in range(-(int(np.ceil(2.0 * sigma)) + 1), int(np.ceil(2.0 * sigma)) + 2):
        out += np.exp(-0.5 * ((offsets + 2.0 * k) / sigma) ** 2)
    return out / (sigma * np.sqrt(2.0 * np.pi))


@pytest.mark.parametrize("sigma", [1e-3, 3.7e-3, 0.0123, 0.05, 0.0517, 0.2, 0.7, 1.0, 2.5])
def test_the_kernel_skips_only_terms_that_are_exactly_zero(sigma: float) -> None:
    """Leaving out the terms beyond UNDERFLOW sigma changes no bit of the kernel."""
    points = calibration.LATTICE
    lattice = np.arange(2 * (points - 1)) / (points - 1)
    for offsets in (lattice, np.linspace(-3.0, 3.0, 1201)):
        expected = full_reflected_kernel(offsets, sigma)
        assert np.array_equal(calibration.reflected_kernel(offsets, sigma), expected)
    lattice_only = calibration.lattice_kernel(points, sigma)  # slices of the sorted offsets
    assert np.array_equal(lattice_only, full_reflected_kernel(lattice, sigma))


def test_smooth_ece_is_the_same_with_the_kernel_spectra_remembered_or_not() -> None:
    rng = np.random.default_rng(5)
    conf = rng.uniform(0.3, 1.0, 3000)
    hits = rng.random(3000) < conf - 0.1
    calibration._kernel_spectrum.cache_clear()
    first = calibration.smooth_ece(conf, hits)
    assert calibration._kernel_spectrum.cache_info().hits == 0
    again = calibration.smooth_ece(conf, hits)  # every bandwidth now from the cache
    assert calibration._kernel_spectrum.cache_info().hits > 0 and again == first
    points = calibration.LATTICE
    masses = calibration._masses(
        calibration.lattice_operator(conf, points), hits - conf, np.ones((1, conf.size))
    )
    sigma = first[1]
    density, rho = calibration._smooth(masses, sigma)
    assert float(np.sum(np.abs(rho)) / np.sum(density)) == first[0]


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_of_one_image_is_a_point() -> None:
    sample = bootstrap.per_sample(
        np.array([[0.8, 0.2]]), np.log([[0.8, 0.2]]), np.array([0]), np.array([0])
    )
    out = bootstrap.intervals(sample, bins=15, sigma=0.1, seed=0, resamples=50)
    assert out["accuracy"] == [1.0, 1.0]
    assert out["nll"] == pytest.approx([-math.log(0.8)] * 2)
    assert out["brier"] == pytest.approx([0.08, 0.08])  # .2^2 + .2^2
    assert out["ece"] == pytest.approx([0.2, 0.2])
    assert out["smooth_ece"] == pytest.approx([0.2, 0.2], abs=1e-9)
    assert out["level"] == 0.95 and out["resamples"] == 50
    band = out["reliability"]  # the image's bin (.8 is in bin 11 of 15) is always right
    assert band["accuracy_low"][11] == band["accuracy_high"][11] == 1.0
    assert band["accuracy_low"][:11] == [None] * 11


def test_vectorised_resamples_equal_the_metrics_of_each_resample() -> None:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(4) * 0.3, size=500)
    labels = rng.integers(0, 4, 500)
    pred = probs.argmax(axis=1)
    sample = bootstrap.per_sample(probs, np.log(probs), labels, pred)
    got = bootstrap.resample_statistics(sample, 15, 0.05, 7, np.random.default_rng(9))
    idx = np.random.default_rng(9).integers(0, 500, size=(7, 500))  # the same draws
    for r in range(7):
        i = idx[r]
        ref = metrics.evaluate(probs[i], labels[i], pred[i], log_probs=np.log(probs[i]))
        assert got["accuracy"][r] == pytest.approx(ref["accuracy"])
        assert got["nll"][r] == pytest.approx(ref["nll"])
        assert got["brier"][r] == pytest.approx(ref["brier"])
        assert got["ece"][r] == pytest.approx(ref["ece"])
        conf = probs[i, pred[i]]
        smooth = calibration.smooth_ece_at(conf, pred[i] == labels[i], 0.05)
        assert got["smooth_ece"][r] == pytest.approx(smooth)


@pytest.mark.slow
def test_bootstrap_intervals_cover_the_truth_at_about_the_stated_rate() -> None:
    # population: p = (c, 1 - c) with c ~ U(.5, 1), label 0 with probability c (calibrated).
    # Truths: accuracy E[c] = .75; Brier E[2c(1 - c)]; NLL E[-c ln c - (1 - c) ln(1 - c)].
    c = np.linspace(0.5, 1.0, 200001)[:-1] + 1.25e-6  # midpoints for the expectations
    truth = {
        "accuracy": 0.75,
        "brier": float(np.mean(2 * c * (1 - c))),
        "nll": float(np.mean(-c * np.log(c) - (1 - c) * np.log(1 - c))),
    }
    rng = np.random.default_rng(4)
    covered = {name: 0 for name in truth}
    draws = 400
    for _ in range(draws):
        conf = rng.uniform(0.5, 1.0, 300)
        probs = np.stack([conf, 1 - conf], axis=1)
        labels = (rng.uniform(size=300) >= conf).astype(int)
        sample = bootstrap.per_sample(probs, np.log(probs), labels, np.zeros(300, int))
        values = bootstrap.resample_statistics(sample, 15, None, 1000, rng)
        for name, true in truth.items():
            low, high = np.quantile(values[name], [0.025, 0.975])
            covered[name] += low <= true <= high
    for name in truth:  # 400 draws: the rate's standard error is about 1.1 points
        assert 0.91 <= covered[name] / draws <= 0.985, (name, covered[name] / draws)


def test_reliability_band_needs_no_warnings_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    # The warnings filters are process-wide: a sweep run in a thread beside another loses a
    # filter the other restores (pytest turns warnings into errors). With them unusable, a
    # bin empty in every resample must still come out as a gap, not a RuntimeWarning.
    import contextlib
    import warnings

    monkeypatch.setattr(warnings, "catch_warnings", contextlib.nullcontext)
    monkeypatch.setattr(warnings, "simplefilter", lambda *a, **k: None)
    draws = np.array([[0.5, np.nan, 1.0], [1.0, np.nan, np.nan], [0.0, np.nan, 1.0]])
    band = bootstrap._band(draws, np.array([True, False, True]), [0.0, 1.0])
    assert band == {"accuracy_low": [0.0, None, 1.0], "accuracy_high": [1.0, None, 1.0]}


def test_bootstrap_is_seeded() -> None:
    """The same seed gives the same intervals, another seed others. (Its cost, about 0.4 s for
    1,000 resamples of 10k images, is measured by benchmarks/calibration_cost.py, not here.)"""
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(10) * 0.1, size=10000)
    labels = rng.integers(0, 10, 10000)
    sample = bootstrap.per_sample(probs, np.log(probs), labels, probs.argmax(axis=1))
    first = bootstrap.intervals(sample, 15, 0.02, seed=3)
    assert first == bootstrap.intervals(sample, 15, 0.02, seed=3)
    assert first != bootstrap.intervals(sample, 15, 0.02, seed=4)


# --------------------------------------------------------------------------- recalibration


def _calibrated(rng: np.random.Generator, n: int, k: int = 10):
    """Log-probabilities (n, K) and labels drawn from those very probabilities."""
    lp = metrics.log_probabilities(rng.normal(size=(n, k)) * 3, "softmax")
    u = rng.uniform(size=(n, 1))
    labels = np.minimum((np.exp(lp).cumsum(axis=1) < u).sum(axis=1), k - 1)
    return lp, labels


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RECALIBRATIONS))
def test_maps_are_about_the_identity_on_calibrated_data(name: str) -> None:
    rng = np.random.default_rng(6)
    lp, labels = _calibrated(rng, 20000)
    lp_test, labels_test = _calibrated(rng, 20000)
    fitted = RECALIBRATIONS[name].fit(lp, labels, 15)
    q, log_q = fitted.apply(lp_test)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-12)
    assert np.mean(np.abs(q - np.exp(lp_test))) < 0.015
    before = metrics.nll(np.exp(lp_test), labels_test, lp_test)
    # 15 equal-width bins lump every score in (0, 1/15] together: coarser, not miscalibrated
    slack = 1.10 if name == "histogram_width" else 1.04
    assert metrics.nll(q, labels_test, log_q) < before * slack


def test_vector_scaling_recovers_a_known_map() -> None:
    rng = np.random.default_rng(7)
    lp = metrics.log_probabilities(rng.normal(size=(60000, 3)) * 2, "softmax")
    w, b = np.array([2.0, 1.0, 0.5]), np.array([0.0, 0.3, -0.3])
    true = np.exp(metrics.log_probabilities(lp * w + b, "softmax"))
    labels = np.minimum((true.cumsum(axis=1) < rng.uniform(size=(60000, 1))).sum(axis=1), 2)
    params = RECALIBRATIONS["vector"].fit(lp, labels, 15).params
    # softmax is unchanged by a common shift of b: compare b - mean(b)
    np.testing.assert_allclose(params["weights"], w, atol=0.05)
    got_b = np.array(params["biases"])
    np.testing.assert_allclose(got_b - got_b.mean(), b - b.mean(), atol=0.05)
    # matrix scaling finds the same map up to W + 1 v^T (a shift common to every class)
    matrix = np.array(RECALIBRATIONS["matrix"].fit(lp, labels, 15).params["weights"])
    centred = np.diag(w) - np.diag(w).mean(axis=0)
    np.testing.assert_allclose(matrix - matrix.mean(axis=0), centred, atol=0.08)


def test_histogram_binning_by_hand() -> None:
    # K = 2, bins = 2. Class 0 scores (.9, .8, .2, .1) for labels (0, 0, 1, 1): threshold
    # (.2 + .8) / 2 = .5, bin values 0 (low) and 1 (high); class 1 is the mirror image.
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    fitted = RECALIBRATIONS["histogram"].fit(np.log(p), np.array([0, 0, 1, 1]), 2)
    assert fitted.params["edges"] == [[0.5], [0.5]]
    assert fitted.params["values"] == [[0.0, 1.0], [0.0, 1.0]]
    q, _ = fitted.apply(np.log(np.array([[0.6, 0.4], [0.5, 0.5]])))
    # (.6, .4): class 0 high bin 1, class 1 low bin 0 -> (1, 0). (.5, .5): a score equal to
    # the threshold goes to the lower bin, both estimates are 0: the row keeps (.5, .5)
    np.testing.assert_array_equal(q, [[1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(histogram_edges(np.array([3.0, 1.0, 2.0, 4.0]), 2), [2.5])


def test_equal_width_histogram_binning_by_hand() -> None:
    # bins = 4, inner edges .25 .5 .75. Class 0 scores (.9, .8, .2, .1), labels (0, 0, 1, 1):
    # bin 3 holds .9 and .8 (both class 0: 1), bin 0 holds .2 and .1 (none: 0); bins 1 and 2
    # are empty and get their midpoints .375 and .625. Class 1 is the mirror image.
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    fitted = RECALIBRATIONS["histogram_width"].fit(np.log(p), np.array([0, 0, 1, 1]), 4)
    assert fitted.params["values"] == [[0.0, 0.375, 0.625, 1.0]] * 2
    q, _ = fitted.apply(np.log(np.array([[0.6, 0.4]])))
    np.testing.assert_allclose(q, [[0.625, 0.375]])  # (.625, .375) sums to one already


def test_isotonic_by_hand() -> None:
    # pool adjacent violators: hits (0, 1, 0, 1) at (.1, .2, .3, .4) -> (0, .5, .5, 1)
    scores, values = isotonic_fit(np.array([0.3, 0.1, 0.4, 0.2]), np.array([0, 0, 1, 1], bool))
    np.testing.assert_allclose(scores, [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(values, [0.0, 0.5, 0.5, 1.0])
    # tied scores are one point with their mean hit and their count as weight
    scores, values = isotonic_fit(np.array([0.1, 0.1, 0.2]), np.array([1, 0, 1], bool))
    np.testing.assert_allclose(scores, [0.1, 0.2])
    np.testing.assert_allclose(values, [0.5, 1.0])
    # applied: linear between the fitted points, constant beyond them; renormalised
    p = np.array([[0.1, 0.9], [0.3, 0.7], [0.4, 0.6], [0.2, 0.8]])
    fitted = RECALIBRATIONS["isotonic"].fit(np.log(p), np.array([1, 0, 0, 1]), 15)
    q, _ = fitted.apply(np.log(np.array([[0.35, 0.65]])))
    # class 0: points (.1, 0) (.2, 0) (.3, 1) (.4, 1) -> 1 at .35; class 1 at .65: points
    # (.6, 0) (.7, 0) (.8, 1) (.9, 1) -> 0; renormalised (1, 0)
    np.testing.assert_allclose(q, [[1.0, 0.0]])


def test_predictions_after_break_ties_by_the_original_ranking() -> None:
    q = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    lp = np.log(np.array([[0.3, 0.4, 0.3], [0.3, 0.4, 0.3], [0.6, 0.3, 0.1]]))
    original = np.array([0, 2, 0])
    # row 0: the original prediction 0 is tied for the top; row 1: the original (2) is not,
    # so the larger original log-probability of the tied classes (class 1); row 2: no tie
    np.testing.assert_array_equal(predictions_after(q, lp, original), [0, 1, 2])


def test_odir_penalty_is_chosen_from_the_grid_by_held_out_nll() -> None:
    lp, labels = _calibrated(np.random.default_rng(8), 3000)
    assert odir_penalty(lp, labels) in ODIR_GRID


def test_only_temperature_keeps_the_accuracy() -> None:
    assert [n for n, r in RECALIBRATIONS.items() if not r.changes_accuracy] == ["temperature"]


# --------------------------------------------------------------------------- config identity


def test_recalibration_key_enters_the_identity_only_away_from_its_default() -> None:
    base = load_config(None)
    assert "recalibration" not in identity(base)["eval"]
    assert "bootstrap" not in identity(base)["eval"]
    same = load_config(None, ["eval.recalibration=[temperature]", "eval.bootstrap=1000"])
    assert config_hash(same) == config_hash(base)
    one = load_config(None, ["eval.recalibration=[vector,temperature]"])
    other = load_config(None, ["eval.recalibration=[temperature,vector]"])
    assert config_hash(one) == config_hash(other) != config_hash(base)
    assert identity(one)["eval"]["recalibration"] == ["temperature", "vector"]
    assert config_hash(load_config(None, ["eval.bootstrap=0"])) != config_hash(base)


# --------------------------------------------------------------------------- a run end to end

ALL_MAPS = "eval.recalibration=[" + ",".join(RECALIBRATIONS) + "]"


def test_a_run_writes_every_estimator_interval_and_map(tiny, tmp_path) -> None:
    from mnistexp.orchestration.experiment import run_experiment
    from tests.conftest import TINY

    cfg = load_config(None, [*TINY, ALL_MAPS, "eval.bootstrap=200"])
    report = run_experiment(cfg, runs_dir=tmp_path, data_dir=tiny).metrics
    assert report["schema_version"] == 2
    for split in ("test", "validation", "train"):
        assert {"debiased_ce", "debiased_ce_squared", "smooth_ece", "smooth_ece_sigma"} <= set(
            report[split]
        )
    boot = report["test"]["bootstrap"]
    assert boot["resamples"] == 200
    for name in bootstrap.STATISTICS:
        low, high = boot[name]
        assert low <= high
    assert boot["accuracy"][0] <= report["test"]["accuracy"] <= boot["accuracy"][1]
    rel = report["test"]["reliability"]  # the diagram's per-bin band, from the same resamples
    columns = (rel["accuracy"], rel["accuracy_low"], rel["accuracy_high"])
    for acc, low, high in zip(*columns, strict=True):
        assert (acc is None) == (low is None) == (high is None)
        assert acc is None or low <= acc <= high
    recalibrated = report["test_recalibrated"]
    assert list(recalibrated) == list(RECALIBRATIONS)
    assert recalibrated["temperature"] == report["test_temperature_scaled"]
    for name, section in recalibrated.items():
        assert set(section) >= set(report["test"]) - {"loss", "bootstrap"}, name
        iterative = name in ("temperature", "vector", "matrix", "matrix_odir")
        assert ("fit" in section) == iterative, name  # how an iterative fit ended
        if iterative:
            fit = section["fit"]
            assert set(fit) == {"converged", "gradient", "at_bound", "iterations"}
            assert not (fit["converged"] and fit["at_bound"]), name
    # the tiny validation split is all right with a margin: the NLL falls as T -> 0, and the
    # fit says so instead of stopping at an arbitrary bound
    assert report["test_temperature_scaled"]["temperature"] == metrics.TEMPERATURE_BOUNDS[0]
    assert report["test_temperature_scaled"]["fit"]["at_bound"] is True
    assert "recalibration" in report["conventions"]


def test_without_validation_the_maps_say_why(tiny, tmp_path) -> None:
    from mnistexp.orchestration.experiment import run_experiment
    from tests.conftest import TINY

    cfg = load_config(None, [*TINY, ALL_MAPS, "data.validation=0", "eval.bootstrap=0"])
    report = run_experiment(cfg, runs_dir=tmp_path, data_dir=tiny).metrics
    assert "bootstrap" not in report["test"]
    assert report["test_recalibrated"]["vector"] == {
        "skipped": "no validation split (data.validation: 0) to fit it on"
    }
    listed = load_config(None, [*TINY, "eval.recalibration=[vector]", "eval.bootstrap=0"])
    report = run_experiment(listed, runs_dir=tmp_path, data_dir=tiny).metrics
    assert report["test_temperature_scaled"] == {
        "skipped": "temperature is not in eval.recalibration"
    }
    assert list(report["test_recalibrated"]) == ["vector"]


@pytest.mark.parametrize(("diagonal", "penalty"), [(True, 0.0), (False, 0.0), (False, 0.5)])
def test_affine_fits_are_stationary_points_of_the_stated_objective(
    diagonal: bool, penalty: float
) -> None:
    # the fit runs on rescaled columns; here the objective is written out in the original
    # coordinates of the README, and its numerical gradient at the fit is zero
    from mnistexp.eval.recalibration import _affine_fit

    rng = np.random.default_rng(10)
    lp = metrics.log_probabilities(rng.normal(size=(4000, 4)) * 3, "softmax")
    mixing = np.array([[1.5, 0.3, 0, 0], [0, 1, 0.5, 0], [0.2, 0, 0.8, 0], [0, 0, 0.4, 1]])
    true = np.exp(metrics.log_probabilities(lp @ mixing.T + [0, 0.5, 0, -0.5], "softmax"))
    labels = np.minimum((true.cumsum(axis=1) < rng.uniform(size=(4000, 1))).sum(axis=1), 3)
    w, b, fit = _affine_fit(lp, labels, diagonal, penalty)
    assert fit.converged and fit.gradient < 1e-8
    off = ~np.eye(4, dtype=bool)

    def objective(theta: np.ndarray) -> float:
        w, b = theta[: w0.size].reshape(w0.shape), theta[w0.size :]
        a = lp * w + b if diagonal else lp @ w.T + b
        log_q = metrics.log_probabilities(a, "softmax")
        value = -np.mean(log_q[np.arange(len(labels)), labels])
        if penalty:
            value += penalty / 12 * np.sum(w[off] ** 2) + penalty / 4 * np.sum(b**2)
        return float(value)

    w0 = w
    theta = np.concatenate([w.ravel(), b])
    h = 1e-6
    grad = [
        (objective(theta + h * e) - objective(theta - h * e)) / (2 * h) for e in np.eye(theta.size)
    ]
    assert np.max(np.abs(grad)) < 1e-7  # central differences are good to ~1e-10 here
    if not diagonal:
        assert np.max(np.abs(w[off])) > 0.05  # a real map, not the identity
