"""Every scaling map reaches its optimum, or says it did not (issue 24).

Each fit is checked against an optimum known without it: a closed form where the map can fit
the empirical label frequencies exactly (one score pattern per free parameter), a brute-force
search where it cannot, and problems whose optimum lies outside any search range.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_softmax, logit

from mnistexp.eval import metrics, recalibration
from mnistexp.eval.fits import fit_problems
from mnistexp.eval.recalibration import RECALIBRATIONS, _affine_fit, _affine_map


def patterns(log_probs: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``log_probs`` (P, K) repeated with label counts ``counts`` (P, K): (lp, labels)."""
    lp, labels = [], []
    for row, per_class in zip(log_probs, counts, strict=True):
        for label, count in enumerate(per_class):
            lp += [row] * int(count)
            labels += [label] * int(count)
    return np.array(lp), np.array(labels)


# --------------------------------------------------------------------------- temperature


@pytest.mark.parametrize("t_star", [1e-3, 0.0048, 0.7, 30.0, 1e4])
def test_temperature_hits_the_closed_form_optimum_far_outside_the_old_bounds(
    t_star: float,
) -> None:
    # K = 2, one score pattern: softmax(lp / T)_0 = sigmoid(d / T) with d = lp_0 - lp_1, so
    # the NLL is smallest where it equals the frequency f of class 0: T = d / logit(f).
    f = 0.7
    d = t_star * logit(f)
    lp, labels = patterns(log_softmax(np.array([[d, 0.0]]), axis=1), np.array([[70, 30]]))
    temperature, fit = metrics.fit_temperature(lp, labels)
    assert temperature == pytest.approx(t_star, rel=1e-10)
    assert fit.converged and not fit.at_bound and fit.gradient < 1e-12


def test_temperature_matches_a_brute_force_search() -> None:
    rng = np.random.default_rng(5)
    z = rng.normal(0.0, 3.0, (2000, 10))
    labels = np.where(rng.random(2000) < 0.8, z.argmax(axis=1), rng.integers(0, 10, 2000))
    lp = log_softmax(z, axis=1)
    grid = np.exp(np.linspace(np.log(0.1), np.log(10.0), 1001))  # steps of 0.46%
    nll = [metrics._nll_at(lp, labels, t) for t in grid]
    temperature, fit = metrics.fit_temperature(lp, labels)
    assert temperature == pytest.approx(grid[int(np.argmin(nll))], rel=5e-3)
    assert metrics._nll_at(lp, labels, temperature) <= min(nll)
    assert fit.converged


def test_separable_validation_data_puts_the_temperature_on_its_bound_and_says_so() -> None:
    # every image right with a margin: the NLL falls towards 0 as T -> 0, no finite optimum
    lp = log_softmax(np.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]] * 50), axis=1)
    labels = np.array([0, 1] * 50)
    temperature, fit = metrics.fit_temperature(lp, labels)
    assert temperature == metrics.TEMPERATURE_BOUNDS[0]
    assert fit.at_bound and not fit.converged
    # with no signal at all (labels independent of equal scores) nothing beats T = 1
    flat = np.zeros((100, 3)) - np.log(3)
    temperature, fit = metrics.fit_temperature(flat, np.arange(100) % 3)
    assert temperature == 1.0 and not fit.at_bound
    # every T is optimal on a flat NLL: T = 1 is an optimum, not a fit that stopped short
    assert fit.converged
    record = {"test_temperature_scaled": {"temperature": 1.0, "fit": fit.as_json()}}
    assert fit_problems(record) == []


def test_temperature_handles_equal_and_huge_log_probabilities() -> None:
    lp = log_softmax(np.array([[1e4, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1e4, -1e4]]), axis=1)
    temperature, fit = metrics.fit_temperature(lp, np.array([1, 2, 1]))
    assert np.isfinite(temperature) and temperature > 0 and np.isfinite(fit.gradient)
    assert fit.converged


# --------------------------------------------------------------------------- affine maps


def test_the_matrix_map_reproduces_empirical_frequencies_where_it_can() -> None:
    # K = 3, three score patterns: with W (3 x 3) and b the map is saturated (three free
    # distributions), so the optimum gives each pattern its own label frequencies exactly.
    scores = log_softmax(np.array([[3.0, 0.0, -1.0], [0.0, 2.0, 0.5], [-1.0, 0.0, 1.5]]), axis=1)
    counts = np.array([[60, 25, 15], [10, 70, 20], [30, 20, 50]])
    lp, labels = patterns(scores, counts)
    w, b, fit = _affine_fit(lp, labels, diagonal=False)
    q, _ = _affine_map(w, b)(scores)
    np.testing.assert_allclose(q, counts / counts.sum(axis=1, keepdims=True), atol=1e-8)
    assert fit.converged and fit.gradient < 1e-8 and not fit.at_bound


def test_the_vector_map_reproduces_empirical_frequencies_where_it_can() -> None:
    # K = 2, two patterns; w * lp + b has 3 identifiable parameters (b up to a constant)
    scores = log_softmax(np.array([[2.0, 0.0], [0.0, 1.0]]), axis=1)
    counts = np.array([[55, 45], [20, 80]])
    lp, labels = patterns(scores, counts)
    w, b, fit = _affine_fit(lp, labels, diagonal=True)
    q, _ = _affine_map(w, b)(scores)
    np.testing.assert_allclose(q, counts / counts.sum(axis=1, keepdims=True), atol=1e-8)
    assert fit.converged


def confident_problem(seed: int, n: int = 3000, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Log-probabilities of a confident, miscalibrated model (columns down to about -60) and
    labels from a mixed, shifted version of them: what stopped L-BFGS short on mse/sigmoid."""
    rng = np.random.default_rng(seed)
    lp = log_softmax(rng.normal(size=(n, k)) * 12, axis=1)
    mixing = np.eye(k) * 0.08 + rng.normal(0, 0.01, (k, k))
    true = np.exp(log_softmax(lp @ mixing.T + rng.normal(0, 0.3, k), axis=1))
    labels = np.minimum((true.cumsum(axis=1) < rng.uniform(size=(n, 1))).sum(axis=1), k - 1)
    return lp, labels


def objective_in_original_coordinates(
    lp: np.ndarray, labels: np.ndarray, diagonal: bool, penalty: float
):
    """The README's objective, written out again without the fit's rescaling."""
    k = lp.shape[1]
    off = ~np.eye(k, dtype=bool)
    size = k if diagonal else k * k

    def objective(theta: np.ndarray) -> float:
        w, b = theta[:size].reshape((k,) if diagonal else (k, k)), theta[size:]
        a = lp * w + b if diagonal else lp @ w.T + b
        value = -np.mean(log_softmax(a, axis=1)[np.arange(len(labels)), labels])
        if penalty:
            value += penalty / (k * (k - 1)) * np.sum(w[off] ** 2) + penalty / k * np.sum(b**2)
        return float(value)

    return objective


@pytest.mark.parametrize(
    ("diagonal", "penalty"), [(True, 0.0), (False, 0.0), (False, 1e-3), (False, 1.0)]
)
def test_affine_fits_reach_a_brute_force_optimum_on_a_badly_scaled_problem(
    diagonal: bool, penalty: float
) -> None:
    lp, labels = confident_problem(3, n=1500, k=3)
    w, b, fit = _affine_fit(lp, labels, diagonal, penalty)
    objective = objective_in_original_coordinates(lp, labels, diagonal, penalty)
    k = lp.shape[1]
    start = np.concatenate([(np.ones(k) if diagonal else np.eye(k)).ravel(), np.zeros(k)])
    # an independent optimiser (numerical gradients) on the unscaled objective, run long
    brute = minimize(objective, start, method="BFGS", options={"gtol": 1e-9, "maxiter": 5000})
    fitted = objective(np.concatenate([w.ravel(), b]))
    assert fitted <= brute.fun + 1e-10
    assert fit.converged and fit.iterations < 50


def test_unpenalised_fits_report_one_member_of_their_optimal_set() -> None:
    # softmax cannot see a constant added to every score: the reported parameters are pinned
    lp, labels = confident_problem(4)
    w, b, _ = _affine_fit(lp, labels, diagonal=False)
    assert abs(b.sum()) < 1e-12
    np.testing.assert_allclose(w.mean(axis=0), 1.0 / lp.shape[1], atol=1e-12)
    shifted_w, shifted_b = w + np.array([0.3, -1.0, 2.0, 0.1]), b + 5.0
    np.testing.assert_allclose(
        _affine_map(shifted_w, shifted_b)(lp)[0], _affine_map(w, b)(lp)[0], rtol=1e-9
    )


@pytest.mark.parametrize("name", ["temperature", "vector", "matrix", "matrix_odir"])
def test_every_scaling_map_reports_how_its_fit_ended(name: str) -> None:
    lp, labels = confident_problem(6, n=1500)
    fitted = RECALIBRATIONS[name].fit(lp, labels, 15)
    assert fitted.fit is not None and fitted.fit.converged
    assert set(fitted.fit.as_json()) == {"converged", "gradient", "at_bound", "iterations"}


@pytest.mark.parametrize("name", ["histogram", "histogram_width", "isotonic"])
def test_binning_maps_are_closed_form_and_report_no_fit(name: str) -> None:
    lp, labels = confident_problem(6, n=500)
    assert RECALIBRATIONS[name].fit(lp, labels, 15).fit is None


# --------------------------------------------------------------------------- warnings


def fit_record(converged: bool = True, at_bound: bool = False) -> dict:
    return {"converged": converged, "gradient": 0.0123, "at_bound": at_bound, "iterations": 7}


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        pytest.param(
            {"test_temperature_scaled": {"temperature": 1.2, "fit": fit_record()}}, [], id="ok"
        ),
        pytest.param(
            {"test_temperature_scaled": {"temperature": 1e-8, "fit": fit_record(False, True)}},
            [
                "the temperature fit sits on the bound of its search (T = 1e-08, gradient "
                "0.012); the optimum lies beyond it (validation data separable, or without "
                "signal)"
            ],
            id="temperature-at-bound",
        ),
        pytest.param(
            {"test_recalibrated": {"matrix": {"fit": fit_record(False)}}},
            ["the matrix fit stopped short of its optimum (gradient 0.012)"],
            id="matrix-short",
        ),
        pytest.param(
            {"test_temperature_scaled": {"temperature": 0.05000004}},
            [
                "temperature 0.05 is the bound of an earlier release's search [0.05, 20.0], "
                "not the optimum (--force refits it)"
            ],
            id="old-release-bound",
        ),
        pytest.param({"test_temperature_scaled": {"temperature": 0.051}}, [], id="old-release-ok"),
        pytest.param({"test_temperature_scaled": {"temperature": "x", "fit": 3}}, [], id="junk"),
        pytest.param([1, 2], [], id="not-a-report"),
    ],
)
def test_fit_problems_names_every_fit_short_of_its_optimum(report, expected) -> None:
    assert fit_problems(report) == expected


@pytest.mark.parametrize("diagonal", [False, True])
def test_the_affine_objective_has_the_gradient_and_hessian_of_finite_differences(diagonal):
    rng = np.random.default_rng(5)
    n, k = 40, 4
    u = recalibration._features(log_softmax(rng.normal(size=(n, k)) * 2, axis=1), diagonal)
    labels = rng.integers(0, k, n)
    d = u.shape[2]
    theta = rng.normal(size=k * d)
    ridge = rng.uniform(0, 0.3, k * d)
    value, grad, q = recalibration._softmax_nll_grad(u, labels, theta, ridge)
    hess = recalibration._softmax_nll_hessian(u, q, ridge)
    h = 1e-6
    steps = np.eye(k * d) * h
    fd_grad = [
        (recalibration._softmax_nll_grad(u, labels, theta + e, ridge)[0]
         - recalibration._softmax_nll_grad(u, labels, theta - e, ridge)[0]) / (2 * h)
        for e in steps
    ]  # fmt: skip
    fd_hess = np.stack([
        (recalibration._softmax_nll_grad(u, labels, theta + e, ridge)[1]
         - recalibration._softmax_nll_grad(u, labels, theta - e, ridge)[1]) / (2 * h)
        for e in steps
    ])  # fmt: skip
    assert np.isfinite(value)
    np.testing.assert_allclose(grad, fd_grad, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(hess, fd_hess, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hess, hess.T, atol=1e-15)
