"""Losses, built from their whole config section. Registries ``LOSSES`` and ``DELTAS``.

Each loss owns its value and its *delta*, the gradient of one sample's loss with respect to
the output layer's pre-activations ``z`` (rows are samples); the output's own math (forward,
vector-Jacobian product, probability rule) lives in :mod:`mnistexp.outputs`. The trainer
multiplies the delta by ``lr / batch`` and backpropagates it, never asking which loss it has.
Conventions:

- values are per-sample losses averaged over the batch;
- squared error is ``1/2 * sum_k (a_k - t_k)^2`` per sample; its delta is the output's VJP of
  the residual ``a - t`` (sigmoid multiplies by ``a (1 - a)``, which vanishes on saturated
  units: the seed question);
- softmax cross-entropy is ``-sum_k t_k log p_k``; its delta ``p * sum(t) - t`` is exact for
  targets that do not sum to one (soft 0.01/0.99 targets sum to 1.08);
- bce is Nielsen's chapter-3 cost, per-unit binary cross-entropy summed over the outputs.

A loss declares the outputs it fits and its parameters (:class:`~mnistexp.params.Param`, read
from the ``loss`` section: validation, error messages and the run identity use them). How the
delta is formed is a registry choice too (``DELTAS``, key ``loss.delta``), whose only entry so
far is each loss's exact gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from mnistexp.outputs import OUTPUTS, softmax
from mnistexp.params import Param
from mnistexp.schema import LossConfig

__all__ = ["DELTAS", "LOSSES", "OUTPUTS", "Loss", "log_softmax", "make_loss", "softmax"]


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of (n, K) logits, computed without ever taking log(0)."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class Loss:
    """A loss bound to one output activation. Arrays are (n, K): z logits, a outputs, t targets.

    Built from the whole ``loss`` section, so a parameter it declares in ``params`` is read as
    ``cfg.<name>``.
    """

    outputs: ClassVar[tuple[str, ...]] = ()
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, cfg: LossConfig) -> None:
        self.cfg = cfg
        self.output_name = cfg.output
        self.output = OUTPUTS[cfg.output]

    @classmethod
    def problems(cls, cfg: LossConfig, loss: LossConfig) -> list[tuple[str, Any, bool, str]]:
        """(key, value, ok, rule) combination checks beyond each parameter's own range."""
        return []

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
        return self.output.vjp(a, np.subtract(a, t, out=out))  # dL/da = a - t


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

DeltaRule = Callable[[Loss, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]

DELTAS: dict[str, DeltaRule] = {
    # the loss's own gradient dL/dz; ablations (seed questions 000 and 001) add entries here
    "exact": lambda loss, z, a, t, out: loss.delta(z, a, t, out),
}


def make_loss(cfg: LossConfig) -> Loss:
    """The loss object for a ``loss`` section that config validation accepted."""
    return LOSSES[cfg.type](cfg)
