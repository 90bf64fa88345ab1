"""Out-of-distribution image sets, made offline: inputs that are not digits at all, for checking
whether a model's confidence drops on them (as Ovadia et al. 2019 do with notMNIST).

Every set is uint8 (n, 28, 28), white on black like MNIST, and made from ``(n, seed)`` alone
with ``np.random.default_rng(seed)``: the same arguments give the same bytes (for letters: in
one environment, since the outlines come from the installed matplotlib's font files).
:data:`OOD_SETS` declares them:

- ``letters``: capital letters A-J (notMNIST's classes) in DejaVu Sans and DejaVu Serif, the
  fonts matplotlib ships, with a random affine jitter, framed like MNIST
  (:mod:`mnistexp.data.framing`). No window, no display: outlines come from
  :class:`matplotlib.textpath.TextPath`, filled with ``Path.contains_points``.
- ``uniform``: every pixel uniform on 0..255.
- ``gaussian``: every pixel normal with MNIST's pixel mean and standard deviation.

Each row of a set depends only on the seed and its index, so the first m images of a set of
n > m are the set of m (parameters are drawn as one (n, k) table, rows in order).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np

from mnistexp.core.errors import ConfigError
from mnistexp.data.cache import cached_array
from mnistexp.data.framing import BOX, FRAME, centre_by_mass, ink_box

__all__ = [
    "LETTERS",
    "LETTER_FONTS",
    "MNIST_PIXEL_MEAN",
    "MNIST_PIXEL_SD",
    "OOD_SETS",
    "OodSet",
    "gaussian_noise",
    "letters",
    "uniform_noise",
]

# Mean and standard deviation of all 47,040,000 pixels of MNIST's 60,000 training images on
# the 0..255 scale, computed once with numpy (float64) from train-images-idx3-ubyte; the same
# numbers as torchvision's Normalize((0.1307,), (0.3081,)) times 255.
MNIST_PIXEL_MEAN = 33.318421
MNIST_PIXEL_SD = 78.567490

LETTERS = "ABCDEFGHIJ"
LETTER_FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf")  # in matplotlib's mpl-data/fonts/ttf
SUPERSAMPLE = 4  # samples per pixel side when filling a letter (4 x 4 = 16 grey levels+1)
ATLAS = 192  # side of the high-resolution mask of each letter the samples are read from
MAX_DEGREES = 15.0  # rotation drawn uniformly from +-15 degrees
SCALE = (0.8, 1.1)  # each axis scaled independently: a uniform scale would be undone by the
#                     20x20 fit, so the jitter changes the aspect ratio instead
MAX_SHEAR = 0.25  # x += shear * y, shear uniform on +-0.25 (about +-14 degrees of slant)
_CHUNK = 128  # letters filled per vectorised step: about 70 MB of temporaries


# --------------------------------------------------------------------------- letters


@dataclass(frozen=True)
class _Atlas:
    """Filled masks of every (font, letter) glyph: ``masks`` (g, ATLAS, ATLAS) bool, glyph
    g = font * 10 + letter; mask pixel (r, c) covers glyph point x = x0 + (c + 0.5) * step,
    y = y1 - (r + 0.5) * step (y up). ``outlines[g]`` (k, 2) are the flattened outline
    vertices, for the exact extent of a transformed glyph."""

    masks: np.ndarray
    x0: np.ndarray  # (g,)
    y1: np.ndarray  # (g,)
    step: np.ndarray  # (g,)
    outlines: tuple[np.ndarray, ...]


@functools.cache
def _atlas() -> _Atlas:
    """Fill each glyph once at ATLAS x ATLAS (about 0.2 s); later calls reuse it."""
    import matplotlib
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    masks, x0s, y1s, steps, outlines = [], [], [], [], []
    for font in LETTER_FONTS:
        prop = FontProperties(fname=str(fonts / font))
        for letter in LETTERS:
            contours = TextPath((0, 0), letter, size=1.0, prop=prop).to_polygons()
            polygons = [np.asarray(c, dtype=np.float64) for c in contours]  # (k, 2) x, y each
            vertices = np.concatenate(polygons)  # (k, 2) x, y
            lo, hi = vertices.min(axis=0), vertices.max(axis=0)
            step = float((hi - lo).max()) / (ATLAS - 2)  # one empty pixel of margin
            x0, y1 = lo[0] - step, hi[1] + step
            centres = (np.arange(ATLAS) + 0.5) * step
            xs, ys = np.meshgrid(x0 + centres, y1 - centres)  # (ATLAS, ATLAS) each
            masks.append(_even_odd(polygons, np.column_stack([xs.ravel(), ys.ravel()])))
            x0s.append(x0)
            y1s.append(y1)
            steps.append(step)
            outlines.append(vertices)
    return _Atlas(np.stack(masks), np.array(x0s), np.array(y1s), np.array(steps), tuple(outlines))


def _even_odd(polygons: list[np.ndarray], points: np.ndarray) -> np.ndarray:
    """Which of ``points`` (p, 2) lie inside the glyph outlined by ``polygons`` (closed
    contours (k, 2)), by the even-odd rule: inside an odd number of contours, so the counters
    of A, B, D are holes. (``contains_points`` on the compound path fills them.)"""
    from matplotlib.path import Path as Outline

    inside = np.zeros(len(points), dtype=bool)
    for polygon in polygons:
        inside ^= Outline(polygon).contains_points(points)
    return inside.reshape(ATLAS, ATLAS)


def _jitter(draws: np.ndarray) -> np.ndarray:
    """Uniform draws (n, 4) -> affine maps (n, 2, 2) of glyph points (x, y), y up: scale each
    axis, shear x by y, then rotate counter-clockwise."""
    theta = np.deg2rad((2 * draws[:, 0] - 1) * MAX_DEGREES)
    sx, sy = (SCALE[0] + (SCALE[1] - SCALE[0]) * draws[:, k] for k in (1, 2))
    shear = (2 * draws[:, 3] - 1) * MAX_SHEAR
    cos, sin = np.cos(theta), np.sin(theta)
    rotate = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (n, 2, 2)
    shear_scale = np.zeros_like(rotate)
    shear_scale[:, 0, 0], shear_scale[:, 0, 1], shear_scale[:, 1, 1] = sx, shear * sy, sy
    return rotate @ shear_scale


def _fill(atlas: _Atlas, glyph: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Fill glyphs ``glyph`` (m,) under affine ``maps`` (m, 2, 2), each fitted so its longer
    side spans the 20x20 box: coverage of SUPERSAMPLE^2 points per pixel -> (m, 20, 20) 0..255
    float, ink at the top left of the box."""
    moved = [atlas.outlines[g] @ a.T for g, a in zip(glyph, maps, strict=True)]  # (k, 2) each
    lo = np.array([points.min(axis=0) for points in moved])  # (m, 2) bounding box of each
    hi = np.array([points.max(axis=0) for points in moved])
    per_unit = BOX / (hi - lo).max(axis=1)  # (m,) box pixels per glyph unit
    s = (np.arange(BOX * SUPERSAMPLE) + 0.5) / SUPERSAMPLE  # sample centres in box pixels
    u, v = np.meshgrid(s, s)  # (80, 80): u to the right, v down
    x = lo[:, 0, None, None] + u / per_unit[:, None, None]  # (m, 80, 80) jittered glyph space
    y = hi[:, 1, None, None] - v / per_unit[:, None, None]
    inverse = np.linalg.inv(maps)  # (m, 2, 2): back to the glyph's own coordinates
    gx = inverse[:, 0, 0, None, None] * x + inverse[:, 0, 1, None, None] * y
    gy = inverse[:, 1, 0, None, None] * x + inverse[:, 1, 1, None, None] * y
    step = atlas.step[glyph][:, None, None]
    col = np.floor((gx - atlas.x0[glyph][:, None, None]) / step).astype(np.int64)
    row = np.floor((atlas.y1[glyph][:, None, None] - gy) / step).astype(np.int64)
    valid = (row >= 0) & (row < ATLAS) & (col >= 0) & (col < ATLAS)
    g = np.broadcast_to(glyph[:, None, None], row.shape)
    hit = np.where(valid, atlas.masks[g, row.clip(0, ATLAS - 1), col.clip(0, ATLAS - 1)], False)
    blocks = hit.reshape(len(glyph), BOX, SUPERSAMPLE, BOX, SUPERSAMPLE)
    return 255.0 * blocks.mean(axis=(2, 4))  # (m, 20, 20) coverage


def letters(n: int, seed: int = 0) -> np.ndarray:
    """``n`` letters A-J as MNIST-like images (n, 28, 28) uint8, a notMNIST-like set.

    Row i draws letter, font, rotation (+-15 degrees), per-axis scale (0.8..1.1) and shear
    (+-0.25) from ``np.random.default_rng(seed)``; the jittered glyph is fitted so its longer
    side spans 20 pixels (aspect kept), filled with 4x4 samples per pixel (grey edges),
    rounded, and centred by centre of mass in 28x28 as MNIST's digits were.
    """
    _check_size(n, seed, "letters")
    draws = np.random.default_rng(seed).random((n, 6))  # letter, font, angle, sx, sy, shear
    glyph = (draws[:, 1] * len(LETTER_FONTS)).astype(np.int64) * len(LETTERS)
    glyph += (draws[:, 0] * len(LETTERS)).astype(np.int64)
    maps = _jitter(draws[:, 2:])
    atlas = _atlas()
    out = np.zeros((n, FRAME, FRAME), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        part = slice(start, start + _CHUNK)
        boxes = np.clip(np.rint(_fill(atlas, glyph[part], maps[part])), 0, 255).astype(np.uint8)
        for i, box in enumerate(boxes, start):
            out[i] = centre_by_mass(box[ink_box(box)])
    return out


# --------------------------------------------------------------------------- noise


def uniform_noise(n: int, seed: int = 0) -> np.ndarray:
    """``n`` images (n, 28, 28) uint8 of independent pixels uniform on 0..255."""
    _check_size(n, seed, "uniform_noise")
    return np.random.default_rng(seed).integers(0, 256, (n, FRAME, FRAME), dtype=np.uint8)


def gaussian_noise(n: int, seed: int = 0) -> np.ndarray:
    """``n`` images (n, 28, 28) uint8 of independent pixels N(MNIST_PIXEL_MEAN, MNIST_PIXEL_SD),
    rounded and clipped to 0..255. The clipping moves about a third of the pixels to 0 (all
    below 0.5), so the result has mean about 51 and sd about 56; its median and 84th
    percentile are MNIST's mean and mean + sd (clipping does not move those quantiles)."""
    _check_size(n, seed, "gaussian_noise")
    rng = np.random.default_rng(seed)
    x = rng.normal(MNIST_PIXEL_MEAN, MNIST_PIXEL_SD, (n, FRAME, FRAME))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class OodSet:
    """One out-of-distribution set: ``generate(n, seed)`` gives (n, 28, 28) uint8 images;
    ``default_size`` is how many to make when a config does not say."""

    name: str
    description: str
    generate: Callable[[int, int], np.ndarray]
    default_size: int = 2000

    def make(self, n: int, seed: int = 0) -> np.ndarray:
        """(n, 28, 28) uint8, read-only, made once per machine (:mod:`mnistexp.data.cache`,
        keyed by the name, n, seed, and numpy's and matplotlib's versions, which the noise
        streams and the glyphs depend on); a one-line ConfigError for a negative or
        non-integer n or seed."""
        _check_size(n, seed, self.name)
        import importlib.metadata

        versions = "|".join(importlib.metadata.version(p) for p in ("numpy", "matplotlib"))
        key = f"{self.name}|{int(n)}|{int(seed)}|{versions}"
        label = f"{self.name}-{int(n)}-{int(seed)}"
        return cached_array("ood", label, key, lambda: self.generate(int(n), int(seed)))


def _check_size(n: object, seed: object, name: str) -> None:
    """n and seed must be integers >= 0 (not bools); raise a one-line ConfigError otherwise."""
    for what, value in (("size", n), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < 0:
            raise ConfigError(f"{name} {what} {value!r} is invalid: expected an integer >= 0")


OOD_SETS: dict[str, OodSet] = {
    "letters": OodSet(
        "letters",
        "capital letters A-J in DejaVu Sans and Serif, jittered, framed like MNIST (notMNIST-like)",
        letters,
    ),
    "uniform": OodSet("uniform", "independent pixels uniform on 0..255", uniform_noise),
    "gaussian": OodSet(
        "gaussian",
        f"independent pixels N({MNIST_PIXEL_MEAN:.1f}, {MNIST_PIXEL_SD:.1f}^2), MNIST's pixel "
        "mean and sd, rounded and clipped to 0..255",
        gaussian_noise,
    ),
}
