"""Output activations and the math each one owns. Registry ``OUTPUTS``.

An output is everything the rest of the code needs to know about the last layer's
nonlinearity, so adding one (say a scaled tanh for +-1 targets) is one entry here:

- ``forward(z, out)``: outputs ``a`` (n, K) from logits ``z`` (n, K), optionally into ``out``;
- ``vjp(a, g)``: the vector-Jacobian product ``dL/dz`` from ``g = dL/da`` (n, K), in place on
  ``g`` (squared error's delta is ``vjp(a, a - t)``, with no branching on output names);
- ``slope(a)``: the elementwise ``da/dz`` (the Jacobian's diagonal for softmax), used only by
  the saturation diagnostic;
- ``log_probs(z)``: the documented rule that turns float64 outputs into log-probabilities for
  the metrics, with its wording ``rule`` recorded in metrics.json's conventions;
- ``range``: the closed interval the outputs can approach, which targets must lie in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_softmax

PROB_FLOOR = 1e-6
"""Sigmoid and linear outputs are clipped below at this before renormalizing to probabilities."""


def softmax(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise softmax of (n, K) logits, stable for huge logits; may write into ``out``."""
    out = np.subtract(z, z.max(axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def onehot_argmax(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(n, K) scores -> the one-hot matrix of each row's argmax (ties: the lowest index)."""
    out = np.zeros_like(z) if out is None else out
    out[...] = 0
    out[np.arange(z.shape[0]), z.argmax(axis=1)] = 1
    return out


def _sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return expit(z, out=out)  # no overflow warnings for large |z|


def _linear(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if out is None:
        return z.copy()
    np.copyto(out, z)
    return out


def _softmax_vjp(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    # Jacobian da_k/dz_j = a_k (delta_kj - a_j):  dL/dz_j = a_j (g_j - sum_k g_k a_k)
    g -= np.einsum("ij,ij->i", g, a)[:, None]
    g *= a
    return g


def _sigmoid_vjp(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    g *= a * (1 - a)  # da/dz = a (1 - a): vanishes when a unit saturates
    return g


TANH_GAIN, TANH_SLOPE = 1.7159, 2.0 / 3.0
"""LeCun et al. 1998, "Efficient BackProp" section 4.5: ``1.7159 tanh(2z/3)`` maps +-1 to +-1
with the largest second derivative at the targets +-1, inside the output's range."""


def _scaled_tanh(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    out = np.multiply(z, TANH_SLOPE, out=out)
    np.tanh(out, out=out)
    out *= TANH_GAIN
    return out


def _scaled_tanh_vjp(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    g *= _scaled_tanh_slope(a)  # da/dz = (2/3) 1.7159 (1 - (a / 1.7159)^2)
    return g


def _scaled_tanh_slope(a: np.ndarray) -> np.ndarray:
    return TANH_SLOPE * (TANH_GAIN - a * a / TANH_GAIN)


def _log_floored(a: np.ndarray) -> np.ndarray:
    """log of max(a, PROB_FLOOR) renormalized over each row; a is (n, K)."""
    a = np.maximum(a, PROB_FLOOR)  # >= floor > 0: the logs below are finite
    return np.log(a) - np.log(a.sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class Output:
    """An output activation and its math; see the module docstring for each member."""

    forward: Callable[..., np.ndarray]
    vjp: Callable[[np.ndarray, np.ndarray], np.ndarray]
    slope: Callable[[np.ndarray], np.ndarray]
    log_probs: Callable[[np.ndarray], np.ndarray]
    rule: str
    range: tuple[float, float]


_FLOORED = "p = max(a, prob_floor) / sum_k max(a_k, prob_floor)"

OUTPUTS: dict[str, Output] = {
    "softmax": Output(
        softmax,
        _softmax_vjp,
        lambda a: a * (1 - a),
        lambda z: log_softmax(z, axis=1),
        "p = exp(log_softmax(z)), float64",
        (0.0, 1.0),
    ),
    "sigmoid": Output(
        _sigmoid,
        _sigmoid_vjp,
        lambda a: a * (1 - a),
        lambda z: _log_floored(expit(z)),
        f"a = sigmoid(z); {_FLOORED}",
        (0.0, 1.0),
    ),
    "linear": Output(
        _linear,
        lambda a, g: g,
        np.ones_like,
        _log_floored,
        f"a = z; {_FLOORED}",
        (-np.inf, np.inf),
    ),
    # (a + 1.7159) / (2 * 1.7159) = (tanh(2z/3) + 1) / 2 = sigmoid(4z/3): the sigmoid rule
    # on the output rescaled to (0, 1), so the same floor and renormalisation apply
    "tanh": Output(
        _scaled_tanh,
        _scaled_tanh_vjp,
        _scaled_tanh_slope,
        lambda z: _log_floored(expit(z * (2 * TANH_SLOPE))),
        "a = 1.7159 tanh(2z/3); q = (a + 1.7159) / 3.4318 = sigmoid(4z/3); "
        "p = max(q, prob_floor) / sum_k max(q_k, prob_floor)",
        (-TANH_GAIN, TANH_GAIN),
    ),
}
