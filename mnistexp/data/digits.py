"""The UCI optical digits, framed like MNIST: handwritten digits from other writers and another
scanner, for checking a model beyond MNIST's own test set.

scikit-learn ships the test part of the UCI "Optical Recognition of Handwritten Digits" set
(``sklearn.datasets.load_digits``, read from its package data, no download): 1,797 images of
8x8 pixels with grey levels 0..16 (counts of set pixels in 4x4 blocks of a 32x32 bitmap).
:func:`load_uci_digits` converts them the way MNIST was made (see :mod:`mnistexp.data.framing`):
grey levels scaled to 0..255, the ink's bounding box resized to fit a 20x20 box with its aspect
ratio kept (bilinear), then placed in 28x28 with its centre of mass at (14, 14). The upsampled
images are smoother and blockier than MNIST strokes; that difference is the point.

scikit-learn is optional (``pip install 'mnistexp[digits]'``) and imported only here.
"""

from __future__ import annotations

import numpy as np

from mnistexp.core.errors import DataError
from mnistexp.data.cache import cached_array
from mnistexp.data.framing import frame_like_mnist

__all__ = ["UCI_MAX_GREY", "convert_8x8", "load_uci_digits"]

UCI_MAX_GREY = 16  # the UCI images count set pixels in 4x4 blocks: 0..16


def convert_8x8(images: np.ndarray, max_grey: float = UCI_MAX_GREY) -> np.ndarray:
    """Images (n, 8, 8) with grey levels 0..``max_grey`` -> (n, 28, 28) uint8 framed like MNIST.

    Each image is scaled to 0..255, cropped to its ink (nonzero pixels), resized bilinearly so
    that its longer side is 20 pixels, rounded, and centred by centre of mass in 28x28. The
    ink boxes differ in size, so this loops over images (about 0.1 ms each).
    """
    scaled = np.asarray(images, dtype=np.float64) * (255.0 / max_grey)  # (n, 8, 8)
    out = np.empty((len(scaled), 28, 28), dtype=np.uint8)
    for i, image in enumerate(scaled):
        out[i] = frame_like_mnist(image)
    return out


def load_uci_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 UCI digits as MNIST-like images (1797, 28, 28) uint8 and labels (1797,) int64,
    converted once per machine and scikit-learn version (:mod:`mnistexp.data.cache`).

    Raises a one-line :class:`DataError` naming the extra to install when scikit-learn is
    missing (checked without importing it).
    """
    version = sklearn_version()
    images = cached_array("digits", "uci-images", version, lambda: _converted()[0])
    labels = cached_array("digits", "uci-labels", version, lambda: _converted()[1])
    return images, labels


def sklearn_version() -> str:
    """scikit-learn's version, read from its metadata (no import); the one-line DataError
    naming the extra when it is not installed."""
    import importlib.metadata
    import importlib.util

    if importlib.util.find_spec("sklearn") is None:
        raise DataError(
            "the UCI digits come with scikit-learn, which is not installed; "
            "pip install 'mnistexp[digits]'"
        )
    return importlib.metadata.version("scikit-learn")


def _converted() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(
            "the UCI digits come with scikit-learn, which is not installed; "
            "pip install 'mnistexp[digits]'"
        ) from None
    bunch = load_digits()
    return convert_8x8(bunch.images, UCI_MAX_GREY), np.asarray(bunch.target, dtype=np.int64)
