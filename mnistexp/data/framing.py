"""Framing an image the way MNIST's were framed, for image sets that should look like MNIST.

LeCun, Cortes and Burges describe MNIST's framing: each digit was size-normalised to fit a
20x20 box preserving its aspect ratio (grey levels come from the anti-aliasing), then placed
in a 28x28 image so that its centre of mass sits at the centre of the field. MNIST's own
training images have their centre of mass at pixel (14.0, 14.0) on average and within 0.5 px
of it in each axis for 99% of images (measured), i.e. they were placed by an integer shift
that puts the centre of mass at index (14, 14); :func:`centre_by_mass` does the same.

Used by :mod:`mnistexp.data.digits` (the UCI digits) and :mod:`mnistexp.data.ood` (letters).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BOX", "CENTRE", "FRAME", "centre_by_mass", "fit_to_box", "frame_like_mnist"]

FRAME = 28  # side of an MNIST image
BOX = 20  # side of the box the ink is fitted into
CENTRE = 14.0  # where the centre of mass goes, in pixel indices (row, column)


def ink_box(image: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the smallest box holding every nonzero pixel of ``image`` (h, w).
    An image without ink gives the whole image."""
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    if rows.size == 0:
        return slice(None), slice(None)
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def fit_to_box(image: np.ndarray, box: int = BOX) -> np.ndarray:
    """Crop ``image`` (h, w) float to its ink and resize it with bilinear interpolation
    (``scipy.ndimage.zoom``, order 1, corner pixels kept) so that its longer side is ``box``
    and the aspect ratio is kept: (h, w) -> (h', w') float with max(h', w') == box."""
    from scipy import ndimage  # a third of a second to import; only building a set needs it

    crop = image[ink_box(image)].astype(np.float64)
    factor = box / max(crop.shape)
    out: np.ndarray = ndimage.zoom(crop, factor, order=1, mode="nearest", prefilter=False)
    return np.clip(out, 0.0, None)


def centre_by_mass(image: np.ndarray) -> np.ndarray:
    """Place ``image`` (h, w) uint8, h and w at most 28, in a black 28x28 image so that its
    centre of mass lands on (14, 14): the shift is rounded to whole pixels, half to even
    (np.rint), so the centre of mass ends within 0.5 px of (14, 14). Returns (28, 28) uint8.

    The shift is clamped so that the image stays inside the frame (no ink is cut off); for
    an image no larger than 20x20 that happens only when its mass sits more than 6 px from
    its box's middle, which neither digits nor letters do.
    """
    from scipy import ndimage

    h, w = image.shape
    out = np.zeros((FRAME, FRAME), dtype=np.uint8)
    if not image.any():
        return out
    row, col = ndimage.center_of_mass(image.astype(np.float64))
    top = int(np.clip(np.rint(CENTRE - row), 0, FRAME - h))
    left = int(np.clip(np.rint(CENTRE - col), 0, FRAME - w))
    out[top : top + h, left : left + w] = image
    return out


def frame_like_mnist(image: np.ndarray) -> np.ndarray:
    """Any grey image (h, w) float with values 0..255, ink bright on black -> (28, 28) uint8
    framed as MNIST: fitted to a 20x20 box, rounded, centred by centre of mass."""
    fitted = np.clip(np.rint(fit_to_box(image)), 0, 255).astype(np.uint8)  # (h', w') <= 20
    return centre_by_mass(fitted)
