"""What training minimises and how its gradient is formed, assembled from a config.

An :class:`Objective` bundles the loss (value and exact delta), the target scheme (fixed
targets and its per-batch hook), the output-delta rule (``loss.delta``) and the rule that
carries the delta to the hidden layers (``train.backprop``). The training step, the loss
monitor, validation and evaluation all go through it, so a scheme whose targets depend on the
model's current outputs is seen the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnistexp.core.schema import ExperimentConfig
from mnistexp.learning.losses import DELTAS, DeltaRule, Loss, make_loss
from mnistexp.learning.model import BACKPROPS, BackpropRule
from mnistexp.learning.targets import TargetScheme, make_scheme


@dataclass(frozen=True)
class Objective:
    loss: Loss
    scheme: TargetScheme
    delta_rule: DeltaRule
    backprop: BackpropRule

    def targets(self, t: np.ndarray, labels: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The targets (m, K) for a batch with fixed targets ``t``, labels (m,), logits z."""
        if not self.scheme.per_batch:
            return t
        return self.scheme.batch(t, labels, z, self.loss.output)

    def delta(self, z: np.ndarray, a: np.ndarray, t: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The output-layer delta (m, K) under ``loss.delta``, written into ``out``."""
        return self.delta_rule(self.loss, z, a, t, out)


def make_objective(cfg: ExperimentConfig, n_classes: int = 10) -> Objective:
    """The objective of a validated config."""
    scheme = make_scheme(cfg.targets, n_classes)
    return Objective(
        scheme.wrap(make_loss(cfg.loss)),
        scheme,
        DELTAS[cfg.loss.delta],
        BACKPROPS[cfg.train.backprop],
    )
