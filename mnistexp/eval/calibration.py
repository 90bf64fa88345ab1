"""Calibration estimators beyond the binned ECE: debiased L2 calibration error and smooth ECE.

Pure functions of top-label ``confidences`` (n,) float and ``correct`` (n,) bool; nothing here
reads files or knows about the model. :func:`mnistexp.eval.metrics.evaluate` adds both to every
split of metrics.json.

Debiased calibration error (Kumar, Liang, Ma 2019, "Verified Uncertainty Calibration").
The confidences are sorted ascending and cut into M equal-mass bins exactly as for the adaptive
ECE (``np.array_split`` of the stable sort order). With w_b = n_b / n, ybar_b the accuracy and
pbar_b the mean confidence of bin b, the plug-in estimate of the squared L2 calibration error
sum_b w_b (ybar_b - pbar_b)^2 overestimates it by about sum_b w_b ybar_b (1 - ybar_b) / n_b
(the sampling variance of ybar_b); Kumar et al. subtract the unbiased estimate of that term,

    ce2 = sum_b w_b [(ybar_b - pbar_b)^2 - ybar_b (1 - ybar_b) / (n_b - 1)],

which is unbiased for the binned squared error and may be negative when the model is close to
calibrated. ``debiased_ce`` is sqrt(max(ce2, 0)), an L2 error like the RMSCE (not the L1 ECE);
``debiased_ce_squared`` keeps ce2 itself (average that, not the root, over seeds). Bins with a
single sample contribute their plug-in term (the correction is undefined for n_b = 1).
Kumar et al.'s own package defaults to the marginal (classwise) error; this is the top-label
one, on the same bins as the adaptive ECE.

Smooth ECE (Blasiok and Nakkiran, "Smooth ECE: Principled Reliability Diagrams via Kernel
Smoothing", ICLR 2024). With residuals r_i = correct_i - confidence_i and K_sigma the Gaussian
kernel of width sigma reflected at 0 and 1 (the heat kernel of [0, 1] with reflecting walls,
so every sample's kernel integrates to one over [0, 1]),

    smECE_sigma = int_0^1 |(1/n) sum_i K_sigma(t, f_i) r_i| dt,

and the smooth ECE is smECE at the fixed point sigma* = smECE_{sigma*} (smECE_sigma does not
increase with sigma, so bisection on [0, 1] finds it). Computation: the confidences are spread
onto a lattice of ``LATTICE`` points on [0, 1] with linear weights (each sample's mass split
between its two neighbouring lattice points), the kernel is applied on the same lattice by FFT
(a circular convolution of the mirrored masses), and the integral is the lattice sum of |rho|
divided by the lattice sum of the smoothed density (which integrates to one exactly), so both
discretisation errors cancel to first order. Tested against a direct O(n T) evaluation, and
against the ``relplot`` package by ``benchmarks/smooth_ece_relplot.py``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

LATTICE = 4001
"""Lattice points on [0, 1] for the smooth ECE (spacing 2.5e-4)."""

SIGMA_FLOOR = 1e-3
"""The smallest bandwidth searched; the fixed point is reported as this when it lies below."""

BISECTION_STEPS = 24

_Floats = np.ndarray


def _flat(confidences: np.ndarray, correct: np.ndarray) -> tuple[_Floats, _Floats]:
    conf = np.asarray(confidences, dtype=np.float64).ravel()
    hits = np.asarray(correct, dtype=np.float64).ravel()
    if conf.size == 0 or conf.shape != hits.shape:
        raise ValueError(f"need equal, non-empty shapes, got {conf.shape} and {hits.shape}")
    if not np.all(np.isfinite(conf)):
        raise ValueError("confidences must be finite")
    return conf, hits


# --------------------------------------------------------------------------- debiased CE


def equal_mass_groups(confidences: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(stable sort order (n,), group of each sorted position (n,)): ``bins`` equal-mass groups
    of the ascending confidences, ``np.array_split`` sizes (the adaptive ECE's bins)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    order = np.argsort(confidences, kind="stable")
    sizes = [len(part) for part in np.array_split(order, bins)]
    return order, np.repeat(np.arange(bins), sizes)


def debiased_ce_squared(confidences: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Kumar et al.'s debiased estimate of the squared top-label L2 calibration error over
    ``bins`` equal-mass bins of ``confidences`` (n,) against ``correct`` (n,); may be < 0."""
    conf, hits = _flat(confidences, correct)
    order, groups = equal_mass_groups(conf, bins)
    count = np.bincount(groups, minlength=bins).astype(np.float64)  # (M,) n_b
    conf_sum = np.bincount(groups, weights=conf[order], minlength=bins)
    hit_sum = np.bincount(groups, weights=hits[order], minlength=bins)
    full = count > 0
    n_b, ybar, pbar = count[full], hit_sum[full] / count[full], conf_sum[full] / count[full]
    correction = np.zeros_like(n_b)
    many = n_b > 1
    correction[many] = ybar[many] * (1.0 - ybar[many]) / (n_b[many] - 1.0)
    return float(np.sum(n_b / conf.size * ((ybar - pbar) ** 2 - correction)))


def debiased_ce(confidences: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """sqrt(max(debiased squared CE, 0)): the debiased L2 calibration error in ECE units."""
    return debiased_from_squared(debiased_ce_squared(confidences, correct, bins))


def debiased_from_squared(squared: float) -> float:
    """The debiased CE from its square as :func:`debiased_ce_squared` gives it (clipped at 0)."""
    return float(np.sqrt(max(squared, 0.0)))


# --------------------------------------------------------------------------- smooth ECE


UNDERFLOW = 40.0
"""|offset| / sigma beyond which the Gaussian factor exp(-x^2 / 2) is exactly 0.0 in float64
(it underflows past x = 38.6), so adding it changes nothing and it is not computed."""


def reflected_kernel(offsets: np.ndarray, sigma: float) -> _Floats:
    """Gaussian density of width ``sigma`` wrapped with period 2 (images at offsets + 2k).

    K_sigma(t, x) on [0, 1] reflected at both walls is g(t - x) + g(t + x) with this g.
    """
    offsets = np.asarray(offsets, dtype=np.float64)
    out = np.zeros(offsets.shape)
    images = int(np.ceil(4.0 * sigma / 2.0)) + 1  # terms beyond 8 sigma are below 1e-14
    for k in range(-images, images + 1):
        shifted = offsets + 2.0 * k
        near = np.abs(shifted) < UNDERFLOW * sigma  # elsewhere the term is exactly 0.0
        out[near] += np.exp(-0.5 * (shifted[near] / sigma) ** 2)
    return out / (sigma * np.sqrt(2.0 * np.pi))


def lattice_operator(values: np.ndarray, points: int = LATTICE) -> Any:
    """Sparse (n, points) linear-interpolation weights of ``values`` (n,) in [0, 1]: row i
    puts 1 - frac on the lattice point below values[i] and frac on the one above, so
    ``weights (c, n) @ operator`` spreads per-sample weights onto the lattice (c, points)."""
    from scipy.sparse import csr_array

    pos = np.clip(values, 0.0, 1.0) * (points - 1)
    low = np.minimum(np.floor(pos).astype(np.intp), points - 2)
    frac = pos - low
    rows = np.tile(np.arange(len(values)), 2)
    data = np.concatenate([1.0 - frac, frac])
    return csr_array((data, (rows, np.concatenate([low, low + 1]))), shape=(len(values), points))


def _masses(operator: Any, residual: np.ndarray, weights: np.ndarray) -> _Floats:
    """(2, c, P) lattice masses of sample ``weights`` (c, n): density, then residual."""
    return np.stack([weights @ operator, (weights * residual) @ operator])


def _mirrored_spectrum(mass: np.ndarray) -> np.ndarray:
    """Real FFT (..., P) of lattice masses (..., P) mirrored onto the circle of length 2.

    Reflection at 0 and 1 is a circular convolution on that circle (N = 2(P - 1) lattice
    points): each mass at x also sits at its mirror image 2 - x (the end points are their own
    mirrors, so they count twice). It does not depend on the bandwidth, so a bisection over
    sigma takes it once.
    """
    points = mass.shape[-1]
    ext = np.zeros((*mass.shape[:-1], 2 * (points - 1)))
    ext[..., :points] = mass
    ext[..., points:] = mass[..., points - 2 : 0 : -1]  # mirror images of x_1..x_{P-2}
    ext[..., 0] += mass[..., 0]
    ext[..., points - 1] += mass[..., points - 1]
    return np.fft.rfft(ext, axis=-1)


def lattice_kernel(points: int, sigma: float) -> _Floats:
    """:func:`reflected_kernel` at the circle's N = 2(P - 1) lattice offsets j / (P - 1):
    the offsets are sorted, so each image term is computed over the one contiguous run of
    them where it does not underflow (a slice, not a mask), and is exactly 0.0 elsewhere."""
    n = 2 * (points - 1)
    offsets = np.arange(n) / (points - 1)
    out = np.zeros(n)
    reach = UNDERFLOW * sigma
    images = int(np.ceil(4.0 * sigma / 2.0)) + 1
    for k in range(-images, images + 1):
        low, high = np.searchsorted(offsets, (-reach - 2.0 * k, reach - 2.0 * k))
        if low < high:
            out[low:high] += np.exp(-0.5 * ((offsets[low:high] + 2.0 * k) / sigma) ** 2)
    return out / (sigma * np.sqrt(2.0 * np.pi))


@functools.lru_cache(maxsize=512)  # 64 KB each; every bisection starts on the same sigmas
def _kernel_spectrum(sigma: float, points: int) -> np.ndarray:
    """Real FFT of g, the Gaussian wrapped with period 2, on the circle's N lattice points."""
    spectrum = np.fft.rfft(lattice_kernel(points, sigma))
    spectrum.flags.writeable = False
    return spectrum


def _smoothed(spectrum: np.ndarray, sigma: float, points: int) -> _Floats:
    """Reflected-kernel smoothing, on the lattice (..., P), of the masses whose
    :func:`_mirrored_spectrum` is ``spectrum``: one product and inverse FFT per row."""
    n = 2 * (points - 1)
    return np.fft.irfft(spectrum * _kernel_spectrum(sigma, points), n=n, axis=-1)[..., :points]


def _smooth(mass: np.ndarray, sigma: float) -> _Floats:
    """Reflected-kernel smoothing of lattice masses (..., P), evaluated on the same lattice."""
    return _smoothed(_mirrored_spectrum(mass), sigma, mass.shape[-1])


def smooth_ece_at(
    confidences: np.ndarray, correct: np.ndarray, sigma: float, points: int = LATTICE
) -> float:
    """smECE_sigma of ``confidences`` (n,) against ``correct`` (n,) at a fixed bandwidth."""
    conf, hits = _flat(confidences, correct)
    op = lattice_operator(conf, points)
    return float(weighted_smooth_ece(op, hits - conf, np.ones((1, conf.size)), sigma)[0])


def weighted_smooth_ece(
    operator: Any, residual: np.ndarray, weights: np.ndarray, sigma: float
) -> _Floats:
    """smECE_sigma (c,) of c weightings (c, n) of the same samples (bootstrap counts), with
    ``operator`` from :func:`lattice_operator` and ``residual`` = correct - confidence (n,)."""
    density, rho = _smooth(_masses(operator, residual, weights), sigma)  # (c, P) each
    return np.sum(np.abs(rho), axis=-1) / np.sum(density, axis=-1)


def smooth_ece(
    confidences: np.ndarray, correct: np.ndarray, points: int = LATTICE
) -> tuple[float, float]:
    """(smooth ECE, its bandwidth sigma*) of ``confidences`` (n,) against ``correct`` (n,):
    the fixed point smECE_sigma = sigma, by bisection of smECE_sigma - sigma in log sigma on
    [``SIGMA_FLOOR``, 1]."""
    conf, hits = _flat(confidences, correct)
    masses = _masses(lattice_operator(conf, points), hits - conf, np.ones((1, conf.size)))
    spectrum = _mirrored_spectrum(masses)

    def gap(sigma: float) -> float:
        density, rho = _smoothed(spectrum, sigma, points)
        return float(np.sum(np.abs(rho)) / np.sum(density)) - sigma

    low, high = SIGMA_FLOOR, 1.0
    if gap(low) <= 0:
        return gap(low) + low, low
    if gap(high) >= 0:
        return gap(high) + high, high
    for _ in range(BISECTION_STEPS):
        mid = float(np.sqrt(low * high))  # sigma* spans decades
        if gap(mid) > 0:
            low = mid
        else:
            high = mid
    sigma = float(np.sqrt(low * high))
    return gap(sigma) + sigma, sigma


def smooth_ece_direct(confidences: np.ndarray, correct: np.ndarray, sigma: float) -> float:
    """smECE_sigma by the definition, O(n T) (a test reference for small n): the integral by
    the trapezoid rule on 20,001 points."""
    conf, hits = _flat(confidences, correct)
    t = np.linspace(0.0, 1.0, 20001)
    kernel = reflected_kernel(t[:, None] - conf, sigma) + reflected_kernel(t[:, None] + conf, sigma)
    rho = kernel @ (hits - conf) / conf.size
    return float(np.trapezoid(np.abs(rho), t))
