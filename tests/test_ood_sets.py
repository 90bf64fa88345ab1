"""Tests of mnistexp.data.ood: the out-of-distribution sets (letters, uniform, Gaussian noise)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage, stats

from mnistexp.core.errors import ConfigError
from mnistexp.data import datasets, ood
from mnistexp.data.ood import MNIST_PIXEL_MEAN, MNIST_PIXEL_SD, OOD_SETS
from mnistexp.data.shifts import set_checksum

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def letter_set() -> np.ndarray:
    """Three hundred letters, seed 0."""
    return OOD_SETS["letters"].make(300, 0)


def ink_sides(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Height and width (n,) of the box holding the nonzero pixels of each image (n, 28, 28)."""
    rows, cols = images.any(axis=2), images.any(axis=1)  # (n, 28) each
    height = 28 - rows[:, ::-1].argmax(axis=1) - rows.argmax(axis=1)
    width = 28 - cols[:, ::-1].argmax(axis=1) - cols.argmax(axis=1)
    return height, width


# --------------------------------------------------------------------------- every set


@pytest.mark.parametrize("name", sorted(OOD_SETS))
@pytest.mark.parametrize("n", [0, 1, 7])
def test_every_set_makes_n_mnist_shaped_images(name: str, n: int):
    images = OOD_SETS[name].make(n, 0)
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8


@pytest.mark.parametrize("name", sorted(OOD_SETS))
def test_every_set_is_declared(name: str):
    entry = OOD_SETS[name]
    assert entry.name == name and entry.description
    assert entry.default_size == 2000


@pytest.mark.parametrize("name", sorted(OOD_SETS))
def test_the_same_seed_gives_the_same_bytes_and_another_seed_others(name: str):
    first = OOD_SETS[name].make(40, 5)
    assert set_checksum(OOD_SETS[name].make(40, 5), None) == set_checksum(first, None)
    assert not np.array_equal(OOD_SETS[name].make(40, 6), first)


@pytest.mark.parametrize("name", sorted(OOD_SETS))
def test_a_larger_set_starts_with_the_smaller_one(name: str):
    assert np.array_equal(OOD_SETS[name].make(300, 2)[:10], OOD_SETS[name].make(10, 2))


@pytest.mark.parametrize(
    ("n", "seed", "message"),
    [
        pytest.param(-1, 0, "letters size -1 is invalid: expected an integer >= 0", id="negative"),
        pytest.param(2.5, 0, "letters size 2.5 is invalid: expected an integer >= 0", id="float"),
        pytest.param(True, 0, "letters size True is invalid: expected an integer >= 0", id="bool"),
        pytest.param(5, -3, "letters seed -3 is invalid: expected an integer >= 0", id="seed"),
        pytest.param(5, "1", "letters seed '1' is invalid: expected an integer >= 0", id="text"),
    ],
)
def test_bad_sizes_and_seeds_raise_one_line_config_errors(n, seed, message):
    with pytest.raises(ConfigError) as caught:
        OOD_SETS["letters"].make(n, seed)
    assert str(caught.value) == message


def test_numpy_integers_are_accepted():
    assert OOD_SETS["uniform"].make(np.int64(3), np.uint32(1)).shape == (3, 28, 28)


# --------------------------------------------------------------------------- letters


def test_letters_are_not_blank_and_all_differ(letter_set: np.ndarray):
    bright = (letter_set > 127).sum(axis=(1, 2))  # (300,)
    assert bright.min() >= 25  # measured: at least 32 in 2,000 (a thin I)
    assert len(np.unique(letter_set.reshape(300, -1), axis=0)) == 300
    assert letter_set.max() == 255 and 0 < (letter_set > 0).mean() < 0.4  # ink on black


def test_letters_fit_a_20x20_box_with_a_side_of_20(letter_set: np.ndarray):
    height, width = ink_sides(letter_set)
    assert (height <= 20).all() and (width <= 20).all()
    assert (np.maximum(height, width) >= 19).all()  # measured: 20 for all of 2,000


def test_letters_have_their_centre_of_mass_at_14_14(letter_set: np.ndarray):
    com = np.array([ndimage.center_of_mass(im.astype(np.float64)) for im in letter_set])
    assert (np.abs(com - 14.0) <= 0.5 + 1e-9).all()  # measured: all of 2,000 within 0.5 px


def test_letters_have_grey_edges_like_mnist(letter_set: np.ndarray):
    grey = ((letter_set > 0) & (letter_set < 255)).sum() / (letter_set > 0).sum()
    assert 0.2 < grey < 0.8  # anti-aliased: edges are partly covered pixels


@pytest.mark.parametrize(
    ("draws", "degrees", "sx", "sy", "shear"),
    [
        pytest.param([0.5, 0.5, 0.5, 0.5], 0, 0.95, 0.95, 0.0, id="middle"),
        pytest.param([1.0, 0.0, 1.0, 0.5], 15, 0.8, 1.1, 0.0, id="ccw-tall"),
        pytest.param([0.0, 1.0, 0.0, 0.0], -15, 1.1, 0.8, -0.25, id="cw-wide-sheared"),
    ],
)
def test_the_jitter_spans_the_declared_ranges(draws, degrees, sx, sy, shear):
    t = np.deg2rad(degrees)
    rotate = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])  # counter-clockwise
    expected = rotate @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([sx, sy])
    assert np.allclose(ood._jitter(np.array([draws]))[0], expected)


def test_letter_counters_are_holes():
    atlas = ood._atlas()
    middle = ood.ATLAS // 2
    for font in range(len(ood.LETTER_FONTS)):
        d = atlas.masks[font * 10 + ood.LETTERS.index("D")]
        o_like = d[middle - 2 : middle + 3, middle - 2 : middle + 3]
        assert not o_like.any(), ood.LETTER_FONTS[font]  # the inside of D is empty
        assert d.any(axis=1)[middle], ood.LETTER_FONTS[font]  # but its row has ink


def test_letters_need_no_display_and_match_across_processes(letter_set: np.ndarray):
    code = (
        "import sys; from mnistexp.data.ood import OOD_SETS; "
        "from mnistexp.data.shifts import set_checksum; "
        "print(set_checksum(OOD_SETS['letters'].make(300, 0), None)); "
        "print(sorted(m for m in sys.modules if m.startswith('matplotlib.pyplot')))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == [set_checksum(letter_set, None), "[]"]


# --------------------------------------------------------------------------- noise


def test_uniform_noise_covers_0_to_255_evenly():
    x = OOD_SETS["uniform"].make(200, 0).astype(np.float64)  # 156,800 pixels
    assert np.array_equal(np.unique(x), np.arange(256))
    assert x.mean() == pytest.approx(127.5, abs=0.6)  # standard error 0.19
    assert x.std() == pytest.approx(np.sqrt((256**2 - 1) / 12), rel=0.01)  # 73.9


def test_gaussian_noise_has_mnists_pixel_mean_and_sd_before_clipping():
    x = OOD_SETS["gaussian"].make(200, 0).astype(np.float64)
    # clipping leaves these quantiles alone: median = mean, 84.13th percentile = mean + sd
    median, upper = np.percentile(x, [50, 100 * stats.norm.cdf(1)])
    assert median == pytest.approx(MNIST_PIXEL_MEAN, abs=1.0)
    assert upper == pytest.approx(MNIST_PIXEL_MEAN + MNIST_PIXEL_SD, abs=1.5)
    # every draw below 0.5 rounds or clips to 0
    zero = stats.norm.cdf(0.5, MNIST_PIXEL_MEAN, MNIST_PIXEL_SD)  # 0.338
    assert (x == 0).mean() == pytest.approx(zero, abs=0.005)
    assert x.max() == 255


@pytest.mark.mnist
def test_the_gaussian_constants_are_mnists_training_pixel_statistics(mnist_dir: Path):
    train = datasets.load("mnist", mnist_dir, progress=False).train_images.astype(np.float64)
    assert train.mean() == pytest.approx(MNIST_PIXEL_MEAN, abs=1e-6)
    assert train.std() == pytest.approx(MNIST_PIXEL_SD, abs=1e-6)


def test_a_set_is_made_once_per_machine_and_read_back_sealed(tmp_path, monkeypatch):
    import dataclasses

    monkeypatch.setenv("MNISTEXP_CACHE_DIR", str(tmp_path))
    first = OOD_SETS["gaussian"].make(30, 4)
    calls = []
    spy = dataclasses.replace(OOD_SETS["gaussian"], generate=lambda n, s: calls.append(n) or 0)
    monkeypatch.setitem(OOD_SETS, "gaussian", spy)
    again = OOD_SETS["gaussian"].make(30, 4)
    assert calls == [] and np.array_equal(again, first) and not again.flags.writeable
    assert len(list((tmp_path / "ood").glob("gaussian-30-4-*.npy"))) == 1
