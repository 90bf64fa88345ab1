"""Target schemes: int labels -> target matrices, fixed or per batch. Registry ``TARGETS``.

A scheme is an object built from the ``targets`` section and the class count:

- ``encode(labels, dtype)``: the fixed targets (n, K) of (n,) labels, computed once per split;
- ``batch(t, labels, z, output)``: the per-batch hook. The training step, the loss monitor,
  validation and evaluation all call it the same way, with a batch's fixed targets (m, K), its
  labels (m,), the model's current logits (m, K) and the
  :class:`~mnistexp.learning.outputs.Output`, and
  use the targets it returns (treated as constants in the gradient). The default returns ``t``
  unchanged; a scheme that needs it (bootstrapping) sets ``per_batch = True``;
- ``prepare(context)``: an optional step before training that may read other finished runs
  (distillation reads a teacher's outputs on the training images, once).

A scheme declares the keys of ``targets`` it reads (``params``) and checks combinations that
depend on the loss's output in ``problems``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mnistexp.core.errors import ConfigError
from mnistexp.core.params import Declares, Param
from mnistexp.core.schema import LossConfig, TargetsConfig
from mnistexp.learning.losses import Distillation, Loss
from mnistexp.learning.outputs import OUTPUTS, Output, onehot_argmax, softmax


@dataclass(frozen=True)
class PrepareContext:
    """What :meth:`TargetScheme.prepare` may read: the run's config, the runs root it is
    trained under (where other finished runs, e.g. a teacher, are found), its training split
    (``Split``: inputs x, labels y, fixed targets t), every split by name with the raw uint8
    images (n, 28, 28) it was made from, and ``read_run(path)``, which loads a finished run
    folder as a :class:`FinishedRun`. A problem found here is bad input: it is raised as a
    :class:`~mnistexp.core.errors.ConfigError` before the run folder is claimed."""

    config: Any
    runs_root: Path
    train: Any
    splits: dict[str, Any] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    read_run: Callable[[Path], FinishedRun] | None = None
    n_total: int = 0  # images in the training file, validation included


@dataclass(frozen=True)
class FinishedRun:
    """A completed run folder as a scheme sees it: its id (``<config_hash>-s<seed>``), its
    config, how many training images it used (the first ``n_train`` of the training file),
    and ``logits(images)``: its model's outputs (n, K) float64 on raw uint8 images, with its
    own input scaling."""

    run_id: str
    config: Any
    n_train: int
    logits: Callable[[np.ndarray], np.ndarray]


class TargetScheme(Declares):
    """Fixed targets ``off`` for every wrong class and ``on`` for the true one (override
    :meth:`encode` for anything else)."""

    params: ClassVar[tuple[Param, ...]] = ()
    per_batch: ClassVar[bool] = False

    def __init__(self, cfg: TargetsConfig, n_classes: int) -> None:
        self.cfg, self.n_classes = cfg, n_classes

    def values(self) -> tuple[float, float]:
        """(off, on): the target of every wrong class and of the true class."""
        return 0.0, 1.0

    def encode(self, labels: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """(n,) int labels -> (n, K) targets."""
        off, on = self.values()
        t = np.full((labels.shape[0], self.n_classes), off, dtype=dtype)
        t[np.arange(labels.shape[0]), labels] = on
        return t

    def batch(self, t: np.ndarray, labels: np.ndarray, z: np.ndarray, output: Output) -> np.ndarray:
        """The targets (m, K) to train on for one batch; ``t`` are its fixed targets."""
        return t

    def prepare(self, context: PrepareContext) -> None:
        """Read what the scheme needs from outside the run (e.g. a teacher); nothing here."""

    def wrap(self, loss: Loss) -> Loss:
        """The loss training minimises under this scheme: ``loss`` itself but for schemes
        that add a term of their own (distillation)."""
        return loss

    @classmethod
    def problems(cls, cfg: TargetsConfig, loss: LossConfig) -> list[tuple[str, Any, bool, str]]:
        """(key, value, ok, rule) combination checks beyond each parameter's own range."""
        return []


class OneHot(TargetScheme):
    """t = onehot(y)."""


class Soft(TargetScheme):
    """The tutorial's trick: ``low`` for wrong classes, ``high`` for the true one, keeping
    sigmoid targets away from the unreachable 0 and 1. The targets need not sum to one. Any
    values inside the output's range are allowed (-1/+1 for the scaled tanh output)."""

    params = (
        Param("low", 0.01, float, help="target of every wrong class"),
        Param("high", 0.99, float, help="target of the true class"),
    )

    def values(self) -> tuple[float, float]:
        return self.cfg.low, self.cfg.high

    @classmethod
    def problems(cls, cfg, loss):
        out = [("targets.low", cfg.low, cfg.low < cfg.high, f"must be < targets.high = {cfg.high}")]
        if loss.output in OUTPUTS:
            lo, hi = OUTPUTS[loss.output].range
            inside = f"must lie in the range of loss.output = {loss.output}, [{lo:g}, {hi:g}]"
            out += [
                (f"targets.{k}", v, lo <= v <= hi, inside)
                for k, v in (("low", cfg.low), ("high", cfg.high))
            ]
        return out


class Smooth(TargetScheme):
    """Label smoothing (Szegedy et al. 2016): t = (1 - eps) * onehot + eps / K."""

    params = (Param("epsilon", 0.1, float, 0.0, 1.0, high_open=True, help="smoothing mass"),)

    def values(self) -> tuple[float, float]:
        eps, k = self.cfg.epsilon, self.n_classes
        return eps / k, 1.0 - eps + eps / k


class _Bootstrap(TargetScheme):
    """Reed et al. 2014, "Training deep neural networks on noisy labels with bootstrapping":
    ``beta * y + (1 - beta) * q`` with y the one-hot (or mixed) targets and q from the model's
    current outputs, recomputed every batch; by default a constant of the gradient (see
    :class:`BootstrapSoft` for the other convention)."""

    per_batch = True

    def batch(self, t, labels, z, output):
        beta = self.param("beta")
        q = self.current(z, output)
        return (beta * t + (1 - beta) * q).astype(t.dtype, copy=False)

    def current(self, z: np.ndarray, output: Output) -> np.ndarray:
        raise NotImplementedError


class BootstrapSoft(_Bootstrap):
    """q = the model's probabilities (softmax, or the output's documented probability rule).

    ``gradient``: ``constant`` (the default) treats q as a constant of the gradient, so with
    softmax cross-entropy the delta is beta (p - y); ``through`` differentiates through
    q = softmax(z) as well, which is Reed et al.'s soft objective taken literally,
    beta CE(y, p) + (1 - beta) H(p) for cross-entropy (an entropy-minimisation term), and
    what an autograd implementation computes unless it detaches q. Softmax outputs only.
    """

    params = (
        Param("beta", 0.95, float, 0.0, 1.0, help="weight of the given labels"),
        Param(
            "gradient",
            "constant",
            str,
            choices=("constant", "through"),
            help="q a constant of the gradient, or differentiated through",
        ),
    )

    def current(self, z, output):
        if output.forward is softmax:
            return softmax(z)
        return np.exp(output.log_probs(z))

    def wrap(self, loss: Loss) -> Loss:
        if self.param("gradient") == "through":
            return ThroughTargets(loss, self.param("beta"))
        return loss

    @classmethod
    def problems(cls, cfg, loss):
        if cfg.scheme != "bootstrap_soft" or getattr(cfg, "gradient", "constant") == "constant":
            return []
        rule = "needs loss.output = softmax and loss.delta = exact (it differentiates softmax)"
        fits = loss.output == "softmax" and loss.delta == "exact"
        return [("targets.gradient", cfg.gradient, fits, rule)]


class ThroughTargets(Loss):
    """``base`` trained on t = beta y + (1 - beta) softmax(z) with t differentiated too:
    delta = base's delta at fixed t + (1 - beta) J^T dL/dt, J the softmax Jacobian (n, K).
    The value is base's own (the same number under either convention)."""

    def __init__(self, base: Loss, beta: float) -> None:
        super().__init__(base.cfg)
        self.base, self.beta = base, float(beta)

    def value(self, z, a, t):
        return self.base.value(z, a, t)

    def delta(self, z, a, t, out):
        self.base.delta(z, a, t, out)
        out += (1.0 - self.beta) * self.output.vjp(a, self.base.target_grad(z, a, t))
        return out


class BootstrapHard(_Bootstrap):
    """q = the one-hot argmax of the model's outputs."""

    params = (Param("beta", 0.8, float, 0.0, 1.0, help="weight of the given labels"),)

    def current(self, z, output):
        return onehot_argmax(z)


class Distill(TargetScheme):
    """Distillation from a finished run, the *teacher* (Hinton, Vinyals, Dean 2015; with a
    teacher of the same architecture a Born-Again Network, Furlanello et al. 2018).

    ``prepare`` computes the teacher's logits on every split's images once, with the
    teacher's own scaling, and appends its soft targets ``softmax(z_teacher / T)`` to each
    split's one-hot targets (n, 2K); :class:`~mnistexp.learning.losses.Distillation` reads both
    halves.
    ``targets.teacher`` is the folder, ``targets.teacher_id`` its identity
    (``<config_hash>-s<seed>``, filled in by the config loader); only the identity enters the
    student's. ``alpha`` weighs the teacher's term against the one-hot term.
    """

    params = (
        Param("teacher", "", str, help="the teacher's run folder"),
        Param("teacher_id", "", str, help="the teacher's <config_hash>-s<seed> (filled in)"),
        Param("temperature", 4.0, float, 1.0, 1000.0, help="softmax temperature T >= 1"),
        Param("alpha", 0.9, float, 0.0, 1.0, help="weight of the teacher's term"),
    )

    def soft(self, z_teacher: np.ndarray) -> np.ndarray:
        """The teacher's soft targets (n, K) at temperature T, from its logits (n, K)."""
        return softmax(z_teacher / self.param("temperature"))

    def wrap(self, loss: Loss) -> Loss:
        return Distillation(loss, self.param("temperature"), self.param("alpha"))

    def prepare(self, context: PrepareContext) -> None:
        if context.read_run is None:
            raise ConfigError("targets.teacher: this caller cannot read run folders")
        folder = Path(self.param("teacher"))
        teacher = context.read_run(folder)
        if teacher.run_id != self.param("teacher_id"):
            raise ConfigError(
                f"targets.teacher = {str(folder)!r} is invalid: the folder now holds run "
                f"{teacher.run_id}, not {self.param('teacher_id')} (it was replaced)"
            )
        first_held_out = context.n_total - context.config.data.validation
        if context.config.data.validation and teacher.n_train > first_held_out:
            raise ConfigError(
                f"targets.teacher = {str(folder)!r} is invalid: it trained on the first "
                f"{teacher.n_train} training images, which include this run's validation "
                f"images (from {first_held_out} on)"
            )
        for name, split in context.splits.items():
            if split is None:
                continue
            z = teacher.logits(context.images[name])
            if z.shape[1] != self.n_classes:
                raise ConfigError(
                    f"targets.teacher = {str(folder)!r} is invalid: it has {z.shape[1]} "
                    f"classes, this run {self.n_classes}"
                )
            split.t = np.hstack([split.t, self.soft(z).astype(split.t.dtype)])

    @classmethod
    def problems(cls, cfg, loss):
        if not cfg.scheme.startswith("distill"):
            return []
        rule = "distillation needs loss.type = cross_entropy (softmax), loss.delta = exact"
        fits = loss.type == "cross_entropy" and loss.delta == "exact"
        return [
            ("targets.teacher", cfg.teacher, bool(cfg.teacher), "must name a finished run folder"),
            ("loss.type", loss.type, fits, rule),
        ]


class DistillHard(Distill):
    """Distillation from the teacher's outputs clamped to their one-hot argmax."""

    def soft(self, z_teacher):
        return onehot_argmax(z_teacher)


TARGETS: dict[str, type[TargetScheme]] = {
    "onehot": OneHot,
    "soft": Soft,
    "smooth": Smooth,
    "bootstrap_soft": BootstrapSoft,
    "bootstrap_hard": BootstrapHard,
    "distill": Distill,
    "distill_hard": DistillHard,
}


def make_scheme(cfg: TargetsConfig, n_classes: int = 10) -> TargetScheme:
    """The scheme object of a ``targets`` section that config validation accepted."""
    return TARGETS[cfg.scheme](cfg, n_classes)


def encode_targets(
    labels: np.ndarray, cfg: TargetsConfig, n_classes: int = 10, dtype: Any = np.float32
) -> np.ndarray:
    """(n,) int labels -> (n, n_classes) fixed targets of scheme ``cfg.scheme``.

    Soft targets 0.01/0.99 do not sum to one (0.99 + 9 * 0.01 = 1.08); the losses handle that.
    """
    return make_scheme(cfg, n_classes).encode(labels, dtype)
