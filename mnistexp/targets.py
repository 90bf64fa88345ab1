"""Target encodings: int labels (n,) -> target matrix (n, K). Registry ``TARGETS``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mnistexp.config import TargetsConfig

Encoder = Callable[[np.ndarray, int, TargetsConfig], tuple[float, float]]

# Each scheme gives (off, on): the value of every wrong class and of the true class.
TARGETS: dict[str, Encoder] = {
    "onehot": lambda labels, k, c: (0.0, 1.0),
    # The tutorial's trick: keep sigmoid targets away from the unreachable 0 and 1.
    "soft": lambda labels, k, c: (c.low, c.high),
    # Szegedy et al. 2016: t = (1 - eps) * onehot + eps / K.
    "smooth": lambda labels, k, c: (c.epsilon / k, 1.0 - c.epsilon + c.epsilon / k),
}


def encode_targets(
    labels: np.ndarray, cfg: TargetsConfig, n_classes: int = 10, dtype: type = np.float32
) -> np.ndarray:
    """(n,) int labels -> (n, n_classes) targets of scheme ``cfg.scheme``.

    Soft targets 0.01/0.99 do not sum to one (0.99 + 9 * 0.01 = 1.08); the losses handle that.
    """
    off, on = TARGETS[cfg.scheme](labels, n_classes, cfg)
    t = np.full((labels.shape[0], n_classes), off, dtype=dtype)
    t[np.arange(labels.shape[0]), labels] = on
    return t
