"""Target schemes: int labels -> target matrices, fixed or per batch. Registry ``TARGETS``.

A scheme is an object built from the ``targets`` section and the class count:

- ``encode(labels, dtype)``: the fixed targets (n, K) of (n,) labels, computed once per split;
- ``batch(t, labels, z, output)``: the per-batch hook. The training step, the loss monitor,
  validation and evaluation all call it the same way, with a batch's fixed targets (m, K), its
  labels (m,), the model's current logits (m, K) and the :class:`~mnistexp.outputs.Output`, and
  use the targets it returns (treated as constants in the gradient). The default returns ``t``
  unchanged; a scheme that needs it (bootstrapping) sets ``per_batch = True``;
- ``prepare(context)``: an optional step before training that may read other finished runs
  (distillation reads a teacher's outputs on the training images, once).

A scheme declares the keys of ``targets`` it reads (``params``) and checks combinations that
depend on the loss's output in ``problems``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mnistexp.outputs import Output
from mnistexp.params import Param
from mnistexp.schema import LossConfig, TargetsConfig


@dataclass(frozen=True)
class PrepareContext:
    """What :meth:`TargetScheme.prepare` may read: the run's config, the runs root it is
    trained under (where other finished runs, e.g. a teacher, are found) and its training
    split (``Split``: inputs x, labels y, fixed targets t)."""

    config: Any
    runs_root: Path
    train: Any


class TargetScheme:
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

    @classmethod
    def problems(cls, cfg: TargetsConfig, loss: LossConfig) -> list[tuple[str, Any, bool, str]]:
        """(key, value, ok, rule) combination checks beyond each parameter's own range."""
        return []


class OneHot(TargetScheme):
    """t = onehot(y)."""


class Soft(TargetScheme):
    """The tutorial's trick: ``low`` for wrong classes, ``high`` for the true one, keeping
    sigmoid targets away from the unreachable 0 and 1. The targets need not sum to one."""

    params = (
        Param("low", 0.01, float, 0.0, 1.0, help="target of every wrong class"),
        Param("high", 0.99, float, 0.0, 1.0, help="target of the true class"),
    )

    def values(self) -> tuple[float, float]:
        return self.cfg.low, self.cfg.high

    @classmethod
    def problems(cls, cfg, loss):
        return [
            ("targets.low", cfg.low, cfg.low < cfg.high, f"must be < targets.high = {cfg.high}")
        ]


class Smooth(TargetScheme):
    """Label smoothing (Szegedy et al. 2016): t = (1 - eps) * onehot + eps / K."""

    params = (Param("epsilon", 0.1, float, 0.0, 1.0, high_open=True, help="smoothing mass"),)

    def values(self) -> tuple[float, float]:
        eps, k = self.cfg.epsilon, self.n_classes
        return eps / k, 1.0 - eps + eps / k


TARGETS: dict[str, type[TargetScheme]] = {"onehot": OneHot, "soft": Soft, "smooth": Smooth}


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
