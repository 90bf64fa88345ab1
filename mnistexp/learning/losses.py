"""Losses, built from their whole config section. Registries ``LOSSES`` and ``DELTAS``.

Each loss owns its value and its *delta*, the gradient of one sample's loss with respect to
the output layer's pre-activations ``z`` (rows are samples); the output's own math (forward,
vector-Jacobian product, probability rule) lives in :mod:`mnistexp.learning.outputs`. The trainer
multiplies the delta by ``lr / batch`` and backpropagates it, never asking which loss it has.
Conventions:

- values are per-sample losses averaged over the batch;
- squared error is ``1/2 * sum_k (a_k - t_k)^2`` per sample; its delta is the output's VJP of
  the residual ``a - t`` (sigmoid multiplies by ``a (1 - a)``, which vanishes on saturated
  units: the seed question);
- softmax cross-entropy is ``-sum_k t_k log p_k``; its delta ``p * sum(t) - t`` is exact for
  targets that do not sum to one (soft 0.01/0.99 targets sum to 1.08);
- bce is Nielsen's chapter-3 cost, per-unit binary cross-entropy summed over the outputs;
- focal loss (Lin et al. 2017) is ``-sum_k t_k (1 - p_k)^gamma log p_k``, with gamma fixed or
  per sample (FLSD-53, Mukhoti et al. 2020: 5 where the true class has p < 0.2, else 3);
- the confidence penalty (Pereyra et al. 2017) subtracts ``beta * H(p)`` from cross-entropy or
  focal loss, where ``H(p) = -sum_k p_k log p_k``.

A loss declares the outputs it fits and its parameters (:class:`~mnistexp.core.params.Param`, read
from the ``loss`` section: validation, error messages and the run identity use them). How the
delta is formed is a registry choice too (``DELTAS``, key ``loss.delta``), whose only entry so
far is each loss's exact gradient. The seed questions' ablations are entries beside it:
``clamped`` takes the error on the output clamped to one-hot (seed 000) and ``true_class``
sends a gradient to the true class's logit only (seed 001). They are not gradients of any loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mnistexp.core.params import Declares, Param
from mnistexp.core.schema import ExperimentConfig, LossConfig
from mnistexp.learning.outputs import OUTPUTS, onehot_argmax, softmax

__all__ = [
    "DELTAS",
    "LOSSES",
    "OUTPUTS",
    "DeltaRule",
    "Loss",
    "log_softmax",
    "make_loss",
    "softmax",
]

Problem = tuple[str, Any, bool, str]
"""(key, value, ok, rule): one combination check, reported as ``key = value is invalid: rule``."""


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of (n, K) logits, computed without ever taking log(0)."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class Loss(Declares):
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

    def target_grad(self, z: np.ndarray, a: np.ndarray, t: np.ndarray) -> np.ndarray:
        """d(per-sample loss)/dt (n, K): what a target computed from z adds to the gradient
        when it is differentiated through (bootstrapping's ``targets.gradient: through``)."""
        raise NotImplementedError


_PENALTY = Param(
    "confidence_penalty", 0.0, float, 0.0, help="beta of -beta * H(p) (Pereyra et al. 2017)"
)


class CrossEntropy(Loss):
    """Softmax cross-entropy ``-sum_k t_k log softmax(z)_k``, optionally minus ``beta H(p)``."""

    outputs: ClassVar[tuple[str, ...]] = ("softmax",)
    params: ClassVar[tuple[Param, ...]] = (_PENALTY,)

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__(cfg)
        self.penalty = float(self.param("confidence_penalty", 0.0))  # read once, not every step

    def value(self, z, a, t):
        if not self.penalty:
            return float(-(t * log_softmax(z)).sum() / z.shape[0])
        log_p = log_softmax(z)
        return float(self._sample_values(z, log_p, t).sum() / z.shape[0])

    def delta(self, z, a, t, out):
        # d/dz_j of -sum_k t_k (z_k - logsumexp z) = p_j * sum_k t_k - t_j
        np.multiply(a, t.sum(axis=1, keepdims=True), out=out)
        np.subtract(out, t, out=out)
        if self.penalty:
            out += self._penalty_delta(a, log_softmax(z))
        return out

    def target_grad(self, z, a, t):
        return -log_softmax(z)  # the penalty does not depend on t

    def _sample_values(self, z: np.ndarray, log_p: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Per-sample losses (n,) including the penalty."""
        return -(t * log_p).sum(axis=1) - self.penalty * _entropy(log_p)

    def _penalty_delta(self, p: np.ndarray, log_p: np.ndarray) -> np.ndarray:
        """d(-beta H(p))/dz_j = beta p_j (log p_j + H(p)), (n, K)."""
        h = _entropy(log_p)[:, None]
        return self.penalty * p * (log_p + h)


def _entropy(log_p: np.ndarray) -> np.ndarray:
    """H(p) = -sum_k p_k log p_k per row (n,), from finite log-probabilities (p log p -> 0)."""
    return -(np.exp(log_p) * log_p).sum(axis=1)


class Focal(CrossEntropy):
    """Focal loss ``-sum_k t_k (1 - p_k)^gamma log p_k`` on softmax outputs (Lin et al. 2017).

    ``gamma_schedule: flsd53`` sets gamma per sample, 5 where the true class (the largest
    target) has p < 0.2 and 3 elsewhere (Mukhoti et al. 2020); gamma is a constant of the
    gradient there, as in their code. At gamma 0 it is cross-entropy, computed by the same code.
    """

    params = (
        Param("gamma", 2.0, float, 0.0, 100.0, help="focusing parameter (Lin et al.: 2)"),
        Param("gamma_schedule", "fixed", str, choices=("fixed", "flsd53"), help="per-sample gamma"),
        _PENALTY,
    )

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__(cfg)
        self.gamma, self.schedule = float(self.param("gamma")), self.param("gamma_schedule")

    def _gamma(self, log_p: np.ndarray, t: np.ndarray) -> np.ndarray | float:
        if self.schedule == "fixed":
            return self.gamma
        rows = np.arange(t.shape[0])
        p_true = np.exp(log_p[rows, t.argmax(axis=1)])
        return np.where(p_true < 0.2, 5.0, 3.0)[:, None]  # (n, 1)

    def _is_cross_entropy(self) -> bool:
        return self.schedule == "fixed" and self.gamma == 0

    def value(self, z, a, t):
        if self._is_cross_entropy():
            return super().value(z, a, t)
        log_p = log_softmax(z)
        return float(self._sample_values(z, log_p, t).sum() / z.shape[0])

    def target_grad(self, z, a, t):
        # the FLSD-53 gamma depends on t only through its argmax: piecewise constant
        log_p = log_softmax(z)
        return -((-np.expm1(log_p)) ** self._gamma(log_p, t)) * log_p

    def _sample_values(self, z, log_p, t):
        weight = (-np.expm1(log_p)) ** self._gamma(log_p, t)  # (1 - p)^gamma, exact near p = 1
        penalty = self.penalty * _entropy(log_p)
        return -(t * weight * log_p).sum(axis=1) - penalty

    def delta(self, z, a, t, out):
        if self._is_cross_entropy():
            return super().delta(z, a, t, out)
        # f_k = -(1 - p_k)^g log p_k; df_k/dp_k = g (1 - p_k)^(g-1) log p_k - (1 - p_k)^g / p_k;
        # with u_k = t_k p_k df_k/dp_k the chain through softmax gives dL/dz_j = u_j - p_j sum u.
        log_p = log_softmax(z)
        p, q = np.exp(log_p), -np.expm1(log_p)  # q = 1 - p
        g = self._gamma(log_p, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            # p log p / (1 - p) -> -1 as p -> 1, times (1 - p)^g -> 0: the term vanishes there
            ratio = np.where(q > 0, p * log_p / np.where(q > 0, q, 1.0), -1.0)
        qg = q**g
        u = t * (g * ratio * qg - qg)
        np.multiply(p, u.sum(axis=1, keepdims=True), out=out)
        np.subtract(u, out, out=out)
        if self.penalty:
            out += self._penalty_delta(p, log_p)
        return out


class SquaredError(Loss):
    """``1/2 * sum_k (a_k - t_k)^2`` on sigmoid, softmax, linear or scaled tanh outputs."""

    outputs = ("sigmoid", "softmax", "linear", "tanh")

    def value(self, z, a, t):
        r = a - t
        return float(0.5 * np.einsum("ij,ij->", r, r) / z.shape[0])

    def delta(self, z, a, t, out):
        return self.output.vjp(a, np.subtract(a, t, out=out))  # dL/da = a - t

    def target_grad(self, z, a, t):
        return t - a


class BinaryCrossEntropy(Loss):
    """Per-unit sigmoid cross-entropy ``-sum_k [t log a + (1 - t) log(1 - a)]`` (Nielsen ch. 3)."""

    outputs = ("sigmoid",)

    def value(self, z, a, t):
        # log a = -softplus(-z), log(1 - a) = -softplus(z): exact even where a rounds to 0 or 1.
        per_unit = t * np.logaddexp(0, -z) + (1 - t) * np.logaddexp(0, z)
        return float(per_unit.sum() / z.shape[0])

    def delta(self, z, a, t, out):
        return np.subtract(a, t, out=out)  # the sigmoid slope cancels

    def target_grad(self, z, a, t):
        return -z  # log(1 - a) - log(a) = -softplus(z) + softplus(-z) = -z


class Distillation(Loss):
    """Knowledge distillation (Hinton, Vinyals, Dean 2015) around a cross-entropy ``base``.

    Targets are (n, 2K): the hard targets (one-hot, or mixed) in the first K columns and the
    teacher's soft targets ``s`` in the last K. Per sample,
    ``(1 - alpha) CE(hard, softmax(z)) + alpha T^2 CE(s, softmax(z / T))``: teacher and student
    at the same temperature T, the soft term scaled by T^2 so its gradient,
    ``alpha T (softmax(z / T) sum(s) - s)``, keeps its size as T changes. At alpha 0 the value
    and delta are the base loss's own, computed by the same code.
    """

    def __init__(self, base: Loss, temperature: float, alpha: float) -> None:
        super().__init__(base.cfg)
        self.base, self.temperature, self.alpha = base, float(temperature), float(alpha)

    def value(self, z, a, t):
        k = z.shape[1]
        hard = self.base.value(z, a, t[:, :k])
        if not self.alpha:
            return hard
        tt = self.temperature
        soft = -(t[:, k:] * log_softmax(z / tt)).sum() / z.shape[0] * tt * tt
        return float((1 - self.alpha) * hard + self.alpha * soft)

    def delta(self, z, a, t, out):
        k = z.shape[1]
        self.base.delta(z, a, t[:, :k], out)
        if not self.alpha:
            return out
        tt, s = self.temperature, t[:, k:]
        out *= 1 - self.alpha
        out += self.alpha * tt * (softmax(z / tt) * s.sum(axis=1, keepdims=True) - s)
        return out


LOSSES: dict[str, type[Loss]] = {
    "cross_entropy": CrossEntropy,
    "mse": SquaredError,
    "bce": BinaryCrossEntropy,
    "focal": Focal,
}


@dataclass(frozen=True)
class DeltaRule:
    """How the output-layer delta (n, K) is formed: ``form(loss, z, a, t, out)`` writes it into
    ``out``; ``problems(cfg)`` lists the combinations the rule is defined for."""

    form: Callable[[Loss, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    problems: Callable[[ExperimentConfig], list[Problem]] = lambda cfg: []

    def __call__(self, loss: Loss, z, a, t, out) -> np.ndarray:
        return self.form(loss, z, a, t, out)


def _clamped(loss: Loss, z: np.ndarray, a: np.ndarray, t: np.ndarray, out: np.ndarray):
    """Seed 000's proposal taken literally: the error of the output clamped to one-hot,
    ``onehot(argmax z) - t`` (the multiclass perceptron's update). A correct sample with
    one-hot targets gives no error at all."""
    return np.subtract(onehot_argmax(z, out), t, out=out)


def _true_class(loss: Loss, z: np.ndarray, a: np.ndarray, t: np.ndarray, out: np.ndarray):
    """Seed 001's reading "the cost considers only a_7": the cross-entropy gradient at the true
    class's logit only, ``(p_y - 1) e_y``, written as ``t * (p - 1)`` for one-hot t."""
    np.subtract(a, 1, out=out)
    return np.multiply(out, t, out=out)


def _softmax_only(cfg: ExperimentConfig) -> list[Problem]:
    rule = "needs loss.output = softmax (it reads the argmax of the class scores)"
    return [("loss.delta", cfg.loss.delta, cfg.loss.output == "softmax", rule)]


def _one_hot_cross_entropy(cfg: ExperimentConfig) -> list[Problem]:
    one_hot = cfg.targets.scheme == "onehot" and not cfg.train.mixup_alpha
    return [
        (
            "loss.delta",
            cfg.loss.delta,
            cfg.loss.type == "cross_entropy",
            "needs loss.type = cross_entropy (the true class's cross-entropy gradient)",
        ),
        (
            "loss.delta",
            cfg.loss.delta,
            one_hot,
            "needs one-hot targets (targets.scheme = onehot, train.mixup_alpha = 0)",
        ),
    ]


DELTAS: dict[str, DeltaRule] = {
    "exact": DeltaRule(lambda loss, z, a, t, out: loss.delta(z, a, t, out)),  # dL/dz itself
    "clamped": DeltaRule(_clamped, _softmax_only),  # ablation, seed 000
    "true_class": DeltaRule(_true_class, _one_hot_cross_entropy),  # ablation, seed 001
}


def make_loss(cfg: LossConfig) -> Loss:
    """The loss object for a ``loss`` section that config validation accepted."""
    return LOSSES[cfg.type](cfg)
