"""Tests of mnistexp.data.digits (the UCI digits framed like MNIST) and mnistexp.data.framing."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy import ndimage

from mnistexp.core.errors import DataError
from mnistexp.data.digits import convert_8x8, load_uci_digits
from mnistexp.data.framing import centre_by_mass, fit_to_box


@pytest.fixture(scope="module")
def uci() -> tuple[np.ndarray, np.ndarray]:
    """The converted UCI digits; needs scikit-learn (in the test extra)."""
    pytest.importorskip("sklearn", reason="the UCI digits ship with scikit-learn")
    return load_uci_digits()


def ink_sides(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Height and width (n,) of the box holding the nonzero pixels of each image (n, 28, 28)."""
    rows, cols = images.any(axis=2), images.any(axis=1)  # (n, 28) each
    height = 28 - rows[:, ::-1].argmax(axis=1) - rows.argmax(axis=1)
    width = 28 - cols[:, ::-1].argmax(axis=1) - cols.argmax(axis=1)
    return height, width


def centres(images: np.ndarray) -> np.ndarray:
    """Centre of mass (n, 2) of each image (n, 28, 28), as (row, column) pixel indices."""
    return np.array([ndimage.center_of_mass(im.astype(np.float64)) for im in images])


# --------------------------------------------------------------------------- the UCI set


def test_uci_digits_are_1797_mnist_shaped_images_with_their_labels(uci):
    from sklearn.datasets import load_digits

    images, labels = uci
    assert images.shape == (1797, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert np.array_equal(labels, load_digits().target)  # in sklearn's order
    assert set(np.bincount(labels, minlength=10)) <= set(range(170, 190))  # about 180 each
    assert images.max() == 255 and images.min() == 0


def test_uci_ink_fits_a_20x20_box_with_a_side_of_20(uci):
    height, width = ink_sides(uci[0])
    assert (height <= 20).all() and (width <= 20).all()
    assert (np.maximum(height, width) >= 19).all()  # measured: 20 for all 1,797


def test_uci_centre_of_mass_is_at_14_14(uci):
    # measured: every image within 0.5 px in both axes (largest 0.49993), as the rounding of
    # a whole-pixel shift promises; MNIST's own training images: 99% within 0.5 px
    offset = np.abs(centres(uci[0]) - 14.0)  # (1797, 2)
    assert (offset <= 0.5 + 1e-9).all()


def test_uci_images_differ_from_one_another(uci):
    images = uci[0].reshape(len(uci[0]), -1)
    assert len(np.unique(images, axis=0)) > 1790


# --------------------------------------------------------------------------- by hand


def test_a_tall_bar_becomes_a_20_pixel_bar_centred_half_to_even():
    image = np.zeros((1, 8, 8))
    image[0, 1:5, 2] = 16  # 4 tall, 1 wide: zoom 5 -> 20 x 5 of 255
    out = convert_8x8(image)[0]
    expected = np.zeros((28, 28), dtype=np.uint8)
    # centre of mass (9.5, 2) in the box: shift rint(4.5) = 4 rows, rint(12) = 12 columns
    expected[4:24, 12:17] = 255
    assert np.array_equal(out, expected)


def test_a_wide_bar_keeps_its_aspect_ratio():
    image = np.zeros((1, 8, 8))
    image[0, 3:5, 1:5] = 16  # 2 x 4: zoom 5 -> 10 x 20 of 255
    out = convert_8x8(image)[0]
    expected = np.zeros((28, 28), dtype=np.uint8)
    expected[10:20, 4:24] = 255  # centre (4.5, 9.5): shift rint(9.5) = 10, rint(4.5) = 4
    assert np.array_equal(out, expected)


def test_a_ramp_is_interpolated_bilinearly_between_its_pixels():
    image = np.zeros((1, 8, 8))
    image[0, 6, 3:5] = [16, 8]  # 1 x 2 -> 10 x 20; columns go linearly from 255 to 127.5
    out = convert_8x8(image)[0]
    profile = np.rint(255 - 127.5 * np.arange(20) / 19)  # worked by hand: corners kept
    col = (profile * np.arange(20)).sum() / profile.sum()  # centre of mass in the box
    left = int(np.rint(14 - col))
    expected = np.zeros((28, 28), dtype=np.uint8)
    expected[10:20, left : left + 20] = profile  # rows: centre 4.5 -> shift rint(9.5) = 10
    assert np.array_equal(out, expected)


def test_fit_to_box_crops_to_the_ink_first():
    image = np.zeros((30, 30))
    image[5:9, 20:22] = 200.0  # 4 x 2 ink in a large empty image
    fitted = fit_to_box(image)
    assert fitted.shape == (20, 10)
    assert np.allclose(fitted, 200.0)


def test_centre_by_mass_keeps_lopsided_ink_inside_the_frame():
    box = np.zeros((20, 20), dtype=np.uint8)
    box[19, 19] = 255  # all the mass in one corner: the shift is clamped, nothing is cut off
    out = centre_by_mass(box)
    assert out.sum() == 255 and out[19, 19] == 255  # the box stays at the top left


def test_centre_by_mass_of_an_empty_image_is_black():
    assert not centre_by_mass(np.zeros((20, 20), dtype=np.uint8)).any()


# --------------------------------------------------------------------------- without the extra


def test_without_scikit_learn_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn... raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataError) as caught:
        load_uci_digits()
    message = str(caught.value)
    assert message == (
        "the UCI digits come with scikit-learn, which is not installed; "
        "pip install 'mnistexp[digits]'"
    )
    assert "\n" not in message
