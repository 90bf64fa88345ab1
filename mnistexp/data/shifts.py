"""Shifted test sets: MNIST test images made harder in one declared way, by a graded severity.

A model that is accurate and calibrated on the test set may be neither on images that differ
from its training data. Each family in :data:`SHIFTS` (``rotate``, ``translate``, ``noise``,
``contrast``) turns uint8 images (n, 28, 28) into uint8 images of the same shape, so the run's
own input scaling applies afterwards exactly as to the clean test set. Every family is
deterministic: the same images and severity give the same bytes, on every call, and its
identity severity (rotate 0, translate 0, noise 0, contrast 1) gives the input bytes back.
The rotation grid follows Ovadia et al. (2019), "Can you trust your model's uncertainty?".

:func:`check_severities` validates a list of severities for a family (one-line
:class:`~mnistexp.core.errors.ConfigError`), and :func:`set_checksum` names the bytes of an
evaluated set so a result can say exactly which images it was computed on.
"""

from __future__ import annotations

import difflib
import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from numbers import Real

import numpy as np

from mnistexp.core.errors import ConfigError
from mnistexp.core.params import Param
from mnistexp.data.cache import cached_array, cached_with_digest

__all__ = [
    "NOISE_SEED",
    "SHIFTS",
    "ShiftFamily",
    "check_severities",
    "labelled_shifted_set",
    "set_checksum",
    "shifted_set",
]

IMAGE_SHAPE = (28, 28)
NOISE_SEED = 20190612
"""Fixed first word of the noise family's seed (the date of Ovadia et al.'s arXiv v1); the
second word is the severity in thousandths, so each severity has its own stream."""

Transform = Callable[[np.ndarray, float], np.ndarray]  # (n, 28, 28) uint8, severity -> same


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """float (n, 28, 28) -> uint8 (n, 28, 28): round half to even (np.rint), clip to 0..255."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate each image counter-clockwise (as displayed, row 0 at the top) by ``degrees``
    about the array centre, pixel coordinate (13.5, 13.5), keeping 28x28: corners that leave
    the frame are lost. Output pixel p takes the bilinear interpolation of the input at
    centre + R(-degrees) (p - centre), the input being 0 outside its 28x28 pixels (so the
    border blends with black), in float64; then rounded. One set of four taps and weights
    per angle serves every image: a gather and four multiply-adds over the whole batch."""
    n, rows, cols = images.shape
    index, weight = _bilinear_taps(degrees, rows, cols)  # (4, rows*cols) each
    flat = images.reshape(n, rows * cols)
    out = np.zeros((n, rows * cols))
    for k in range(4):
        out += flat[:, index[k]] * weight[k]
    return _to_uint8(out.reshape(n, rows, cols))


def _bilinear_taps(degrees: float, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(index (4, rows*cols) int, weight (4, rows*cols) float64): the four input pixels each
    output pixel of a rotation by ``degrees`` interpolates and their bilinear weights; taps
    outside the frame get index 0 and weight 0."""
    theta = np.deg2rad(degrees)
    cr, cc = (rows - 1) / 2, (cols - 1) / 2
    r, c = np.mgrid[0:rows, 0:cols].astype(np.float64)
    r, c = r - cr, c - cc
    src_r = cr + r * np.cos(theta) + c * np.sin(theta)
    src_c = cc + c * np.cos(theta) - r * np.sin(theta)
    r0, c0 = np.floor(src_r), np.floor(src_c)
    fr, fc = src_r - r0, src_c - c0
    index, weight = [], []
    for dr, wr in ((0, 1.0 - fr), (1, fr)):
        for dc, wc in ((0, 1.0 - fc), (1, fc)):
            rr, cc_ = r0.astype(np.int64) + dr, c0.astype(np.int64) + dc
            inside = (rr >= 0) & (rr < rows) & (cc_ >= 0) & (cc_ < cols)
            index.append(np.where(inside, rr * cols + cc_, 0).ravel())
            weight.append(np.where(inside, wr * wc, 0.0).ravel())
    return np.stack(index), np.stack(weight)


def _translate(images: np.ndarray, pixels: float) -> np.ndarray:
    """Move every image ``pixels`` columns to the right: the rightmost columns are lost, the
    vacated left columns are 0. Exact (no interpolation)."""
    k = int(pixels)
    out = np.zeros_like(images)  # (n, 28, 28)
    out[:, :, k:] = images[:, :, : images.shape[2] - k]
    return out


def _noise(images: np.ndarray, sd: float) -> np.ndarray:
    """Add Gaussian noise of standard deviation ``sd`` grey levels to every pixel, then round
    and clip to 0..255. The generator is seeded with [NOISE_SEED, round(sd * 1000)]: the same
    severity gives the same bytes, one severity's set does not depend on the others, and the
    first m images get the same noise whatever n is (values are drawn in C order)."""
    rng = np.random.default_rng([NOISE_SEED, round(sd * 1000)])
    noisy = images + rng.normal(0.0, sd, size=images.shape)  # (n, 28, 28) float64
    return _to_uint8(noisy)


def _contrast(images: np.ndarray, c: float) -> np.ndarray:
    """Scale every pixel by ``c``: pixel -> round(c * pixel). MNIST's background is 0, so this
    dims the ink towards the background; the background itself stays 0."""
    return _to_uint8(images * c)


@dataclass(frozen=True)
class ShiftFamily:
    """One kind of shift. ``severity`` declares the allowed values (its default is the
    identity severity, its type ``int`` for whole-pixel shifts); ``unit`` says what a severity
    means; ``default_grid`` is the grid evaluated when a config names none."""

    name: str
    unit: str
    severity: Param
    default_grid: tuple[float, ...]
    transform: Transform

    @property
    def lo(self) -> float:
        """Lower end of the allowed severities (excluded when ``severity.low_open``)."""
        assert self.severity.low is not None
        return self.severity.low

    @property
    def hi(self) -> float:
        """Upper end of the allowed severities (included)."""
        assert self.severity.high is not None
        return self.severity.high

    @property
    def identity(self) -> float:
        """The severity that returns the images unchanged."""
        return float(self.severity.default)

    def apply(self, images: np.ndarray, severity: float) -> np.ndarray:
        """Shifted copy of ``images``: uint8 (n, 28, 28) -> uint8 (n, 28, 28).

        ``severity`` is checked like a config value (:class:`ConfigError` if not allowed);
        images of another dtype or shape raise ValueError (a caller's bug, not user input).
        """
        (value,) = check_severities(self.name, [severity])
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            raise ValueError(
                f"expected uint8 (n, 28, 28) images, got {images.dtype} {images.shape}"
            )
        return self.transform(images, value)


SHIFTS: dict[str, ShiftFamily] = {
    "rotate": ShiftFamily(
        "rotate",
        "degrees counter-clockwise",
        Param("severity", 0.0, low=0.0, high=180.0),
        tuple(float(d) for d in range(0, 181, 15)),  # Ovadia et al. 2019's rotated MNIST
        _rotate,
    ),
    "translate": ShiftFamily(
        "translate",
        "pixels to the right",
        Param("severity", 0, type=int, low=0, high=14),
        tuple(float(p) for p in range(0, 15, 2)),
        _translate,
    ),
    "noise": ShiftFamily(
        "noise",
        "standard deviation of added Gaussian noise, grey levels 0..255",
        Param("severity", 0.0, low=0.0, high=255.0),
        (0.0, 25.0, 50.0, 75.0, 100.0, 150.0),
        _noise,
    ),
    "contrast": ShiftFamily(
        "contrast",
        "contrast factor c, pixel -> round(c * pixel)",
        Param("severity", 1.0, low=0.0, high=1.0, low_open=True),
        (1.0, 0.8, 0.6, 0.4, 0.2, 0.1),
        _contrast,
    ),
}


def check_severities(family: str, values: Iterable[float]) -> tuple[float, ...]:
    """The severities ``values`` of shift ``family`` as floats, in the given order.

    Raises a one-line :class:`ConfigError` for an unknown family (with a did-you-mean), an
    empty or non-list ``values``, and for any value that is not a finite real number, lies
    outside the family's range, is not a whole number where the family needs one
    (``translate``), or is listed twice.
    """
    shift = _family(family)
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigError(f"{family} severities must be a list of numbers, got {values!r}")
    out = tuple(_check_one(shift, value) for value in values)
    if not out:
        raise ConfigError(f"{family} severities: the list is empty; e.g. {_grid(shift)}")
    twice = sorted({v for v in out if out.count(v) > 1})
    if twice:
        raise ConfigError(f"{family} severity {_show(twice[0])} is listed twice")
    return out


def _family(name: str) -> ShiftFamily:
    """The registry entry ``name``, or a ConfigError naming the known families."""
    try:
        return SHIFTS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(SHIFTS), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        known = ", ".join(sorted(SHIFTS))
        raise ConfigError(f"unknown shift family {name!r}{hint} (known: {known})") from None


def _check_one(shift: ShiftFamily, value: object) -> float:
    """One severity as a float, or a ConfigError naming the family, the value and the rule."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"{shift.name} severity {value!r} is not a number; {_rule(shift)}")
    number = float(value)
    head = f"{shift.name} severity {_show(number)}"
    if not math.isfinite(number):
        raise ConfigError(f"{head} is not finite; {_rule(shift)}")
    if shift.severity.type is int and not number.is_integer():
        raise ConfigError(f"{head} is not a whole number of pixels; {_rule(shift)}")
    if not shift.severity.allows(number):
        raise ConfigError(f"{head} is out of range; {_rule(shift)}")
    return number


def _show(number: float) -> str:
    """200.0 -> ``200``, 2.5 -> ``2.5``, 180.0000001 -> ``180.0000001`` (never rounded)."""
    return str(int(number)) if number.is_integer() else repr(number)


def _rule(shift: ShiftFamily) -> str:
    """The allowed severities in words, e.g. ``must be in [0, 180] (degrees counter-clockwise)``."""
    whole = ", a whole number" if shift.severity.type is int else ""
    return f"{shift.severity.rule()}{whole} ({shift.unit})"


def _grid(shift: ShiftFamily) -> str:
    return "[" + ", ".join(f"{v:g}" for v in shift.default_grid) + "]"


def set_checksum(images: np.ndarray, labels: np.ndarray | None = None) -> str:
    """Hex sha256 naming an image set (and its labels), e.g. a shifted test set.

    Exactly what is hashed, in order (text is ASCII):

    1. ``b"mnistexp.set_checksum/1\\n"``;
    2. ``f"images {dtype} {shape}\\n"`` where ``dtype`` is numpy's ``dtype.str`` (byte order,
       kind and size, e.g. ``|u1``) and ``shape`` the dimensions joined by commas
       (``10000,28,28``), then the array's bytes in C order;
    3. the same for ``labels`` with the word ``labels`` (e.g. ``labels <i8 10000``), or
       ``b"labels none\\n"`` when ``labels`` is None.

    So the checksum changes with any pixel or label, with the shape or dtype of either array
    (uint8 and int64 labels of the same values differ), and with whether labels were given;
    it does not depend on memory layout (a Fortran-ordered copy hashes the same).
    """
    digest = hashlib.sha256(b"mnistexp.set_checksum/1\n")
    for name, array in (("images", images), ("labels", labels)):
        if array is None:
            digest.update(f"{name} none\n".encode())
            continue
        shape = ",".join(str(d) for d in array.shape)
        digest.update(f"{name} {array.dtype.str} {shape}\n".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- machine cache


def shifted_set(family: str, images: np.ndarray, severity: float, source: str) -> np.ndarray:
    """``SHIFTS[family].apply(images, severity)``, kept in the user cache
    (:func:`~mnistexp.data.cache.cached_array`, ``<cache root>/shifted/``) keyed by ``source``
    (the :func:`set_checksum` of ``images``), the family and the severity. Read-only."""
    key = f"{source}|{family}|{float(severity)!r}"
    return cached_array(
        "shifted", f"{family}-{severity:g}", key, lambda: SHIFTS[family].apply(images, severity)
    )


def labelled_shifted_set(
    family: str, images: np.ndarray, labels: np.ndarray, severity: float, source: str
) -> tuple[np.ndarray, str]:
    """:func:`shifted_set` and the shifted set's :func:`set_checksum` with ``labels`` (n,),
    recorded in the cache entry when it was made
    (:func:`~mnistexp.data.cache.cached_with_digest`): a cached set is not hashed again,
    only CRC-checked."""
    key = f"{source}|{family}|{float(severity)!r}|labels {set_checksum(labels, None)}"
    return cached_with_digest(
        "shifted",
        f"{family}-{severity:g}",
        key,
        lambda: SHIFTS[family].apply(images, severity),
        lambda shifted: set_checksum(shifted, labels),
    )
