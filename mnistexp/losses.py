"""Output activations and losses. Registries ``OUTPUTS`` and ``LOSSES``.

Each loss owns three things: its output activation, its value, and its *delta*, the gradient
of one sample's loss with respect to the output layer's pre-activations ``z`` (rows are
samples). The trainer multiplies the delta by ``lr / batch`` and backpropagates it, never
asking which loss it has. Conventions:

- values are per-sample losses averaged over the batch;
- squared error is ``1/2 * sum_k (a_k - t_k)^2`` per sample (the 1/2 cancels in the delta);
- softmax cross-entropy is ``-sum_k t_k log p_k``; its delta ``p * sum(t) - t`` is exact for
  targets that do not sum to one (soft 0.01/0.99 targets sum to 1.08);
- bce is Nielsen's chapter-3 cost, per-unit binary cross-entropy summed over the outputs.

The shortcut ``delta = a - t`` holds for softmax+CE (targets summing to one), sigmoid+bce and
linear+squared error only; the other pairings carry the output derivative (the seed question:
sigmoid+squared error multiplies by ``a (1 - a)``, which vanishes on saturated units).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit


def softmax(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise softmax of (n, K) logits, stable for huge logits; may write into ``out``."""
    out = np.subtract(z, z.max(axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of (n, K) logits, computed without ever taking log(0)."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return expit(z, out=out)  # no overflow warnings for large |z|


def _linear(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if out is None:
        return z.copy()
    np.copyto(out, z)
    return out


@dataclass(frozen=True)
class Output:
    """An output activation: ``forward(z, out)`` and its elementwise slope ``da/dz`` from ``a``.

    For softmax the slope is the Jacobian's diagonal ``a (1 - a)``, used only by diagnostics.
    """

    forward: Callable[..., np.ndarray]
    slope: Callable[[np.ndarray], np.ndarray]


OUTPUTS: dict[str, Output] = {
    "softmax": Output(softmax, lambda a: a * (1 - a)),
    "sigmoid": Output(_sigmoid, lambda a: a * (1 - a)),
    "linear": Output(_linear, np.ones_like),
}


class Loss:
    """A loss bound to one output activation. Arrays are (n, K): z logits, a outputs, t targets."""

    outputs: tuple[str, ...] = ()

    def __init__(self, output: str) -> None:
        self.output_name = output
        self.output = OUTPUTS[output]

    def activate(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return self.output.forward(z, out)

    def value(self, z: np.ndarray, a: np.ndarray, t: np.ndarray) -> float:
        """Mean over the batch of the per-sample loss."""
        raise NotImplementedError

    def delta(self, z: np.ndarray, a: np.ndarray, t: np.ndarray, out: np.ndarray) -> np.ndarray:
        """d(per-sample loss)/dz, written into ``out`` (n, K)."""
        raise NotImplementedError


class CrossEntropy(Loss):
    """Softmax cross-entropy ``-sum_k t_k log softmax(z)_k``."""

    outputs = ("softmax",)

    def value(self, z, a, t):
        return float(-(t * log_softmax(z)).sum() / z.shape[0])

    def delta(self, z, a, t, out):
        # d/dz_j of -sum_k t_k (z_k - logsumexp z) = p_j * sum_k t_k - t_j
        np.multiply(a, t.sum(axis=1, keepdims=True), out=out)
        return np.subtract(out, t, out=out)


class SquaredError(Loss):
    """``1/2 * sum_k (a_k - t_k)^2`` on sigmoid, softmax or linear outputs."""

    outputs = ("sigmoid", "softmax", "linear")

    def value(self, z, a, t):
        r = a - t
        return float(0.5 * np.einsum("ij,ij->", r, r) / z.shape[0])

    def delta(self, z, a, t, out):
        r = np.subtract(a, t, out=out)  # (n, K) residual a - t
        if self.output_name == "sigmoid":
            r *= a * (1 - a)  # da/dz = a (1 - a): vanishes when a unit saturates
        elif self.output_name == "softmax":
            # Jacobian da_k/dz_j = a_k (delta_kj - a_j):  delta_j = a_j (r_j - sum_k r_k a_k)
            r -= np.einsum("ij,ij->i", r, a)[:, None]
            r *= a
        return r  # linear: da/dz = 1


class BinaryCrossEntropy(Loss):
    """Per-unit sigmoid cross-entropy ``-sum_k [t log a + (1 - t) log(1 - a)]`` (Nielsen ch. 3)."""

    outputs = ("sigmoid",)

    def value(self, z, a, t):
        # log a = -softplus(-z), log(1 - a) = -softplus(z): exact even where a rounds to 0 or 1.
        per_unit = t * np.logaddexp(0, -z) + (1 - t) * np.logaddexp(0, z)
        return float(per_unit.sum() / z.shape[0])

    def delta(self, z, a, t, out):
        return np.subtract(a, t, out=out)  # the sigmoid slope cancels


LOSSES: dict[str, type[Loss]] = {
    "cross_entropy": CrossEntropy,
    "mse": SquaredError,
    "bce": BinaryCrossEntropy,
}


def make_loss(loss_type: str, output: str) -> Loss:
    """The loss object for a (type, output) pairing that config validation accepted."""
    return LOSSES[loss_type](output)
