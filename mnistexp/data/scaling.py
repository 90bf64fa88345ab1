"""Input scaling: uint8 pixels (n, 784) -> float inputs (n, 784). Registry ``SCALINGS``.

Every scaling is fitted on the training split only (``fit``) and then applied to every split,
so ``standardize`` never peeks at validation or test images.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# fit(train_uint8) -> (shift, scale); inputs are then (x - shift) * scale, computed in dtype.
Fit = Callable[[np.ndarray], tuple[float, float]]


def _standardize(train: np.ndarray) -> tuple[float, float]:
    # One mean and std over all training pixels (as torchvision's Normalize((0.1307,), (0.3081,))):
    # per-pixel statistics would divide by zero on the always-black border pixels.
    x = train.astype(np.float64)
    return float(x.mean()), 1.0 / float(x.std())


SCALINGS: dict[str, Fit] = {
    "unit": lambda train: (0.0, 1.0 / 255.0),  # [0, 1]
    # The tutorial's x * 0.99 / 255 + 0.01, in [0.01, 1.0]: written as (x - shift) * scale.
    "tutorial": lambda train: (-0.01 * 255.0 / 0.99, 0.99 / 255.0),
    "standardize": _standardize,  # zero mean, unit variance over the training pixels
    "symmetric": lambda train: (127.5, 1.0 / 127.5),  # [-1, 1]
    "raw": lambda train: (0.0, 1.0),  # 0..255, for showing why scaling matters
}


def fit_scaling(name: str, train_images: np.ndarray) -> tuple[float, float]:
    """(shift, scale) of scaling ``name`` fitted on ``train_images`` (n, 784) uint8."""
    return SCALINGS[name](train_images)


def apply_scaling(
    images: np.ndarray, shift: float, scale: float, dtype: type, out: np.ndarray | None = None
) -> np.ndarray:
    """(n, 784) uint8 -> (n, 784) ``dtype`` as ``(x - shift) * scale``, one pass, no copies kept.
    ``out`` (n, 784) ``dtype``, if given, receives the result (a buffer reused across calls
    spares the page faults of fresh memory: 10,000 images are 63 MB in float64)."""
    if out is None:
        out = images.astype(dtype)
    else:
        np.copyto(out, images, casting="unsafe")  # the same values as astype
    if shift:
        out -= dtype(shift)
    if scale != 1.0:
        out *= dtype(scale)
    return out
