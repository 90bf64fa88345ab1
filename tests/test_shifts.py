"""Tests of mnistexp.data.shifts: the shift registry, each family's math, severity checks and
the set checksum."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from mnistexp.core.errors import ConfigError
from mnistexp.data import datasets, shifts
from mnistexp.data.shifts import (
    NOISE_SEED,
    SHIFTS,
    check_severities,
    labelled_shifted_set,
    set_checksum,
    shifted_set,
)

# The checksum of tiny_set() below, computed once when the format was fixed. If this changes,
# every recorded checksum of a shifted set changes with it: bump the format in set_checksum.
TINY_SET_CHECKSUM = "031e0b0dea8e3e3e515a335a6f8098a62b82c167b2928f94148c024a1ba8f49b"


def tiny_set() -> tuple[np.ndarray, np.ndarray]:
    """Two 28x28 uint8 images counting 0, 1, ..., 255, 0, 1, ... and their int64 labels."""
    images = (np.arange(2 * 28 * 28) % 256).astype(np.uint8).reshape(2, 28, 28)
    return images, np.array([3, 7], dtype=np.int64)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Forty MNIST-like synthetic images (n=40, 28, 28) uint8: a bright stroke on black, with
    every grey level present so rounding is exercised."""
    rng = np.random.default_rng(7)
    out = np.zeros((40, 28, 28), dtype=np.uint8)
    out[:, 6:22, 11:17] = rng.integers(1, 256, (40, 16, 6))
    out[:, 4:8, 4:24] = rng.integers(0, 256, (40, 4, 20))
    return out


def blob_at(row: int, col: int) -> np.ndarray:
    """One image (1, 28, 28) with a 2x2 block of 255 whose top-left pixel is (row, col)."""
    out = np.zeros((1, 28, 28), dtype=np.uint8)
    out[0, row : row + 2, col : col + 2] = 255
    return out


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_each_family_declares_a_unit_range_and_valid_grid(name: str):
    shift = SHIFTS[name]
    assert shift.name == name
    assert shift.unit
    assert shift.lo < shift.hi
    assert check_severities(name, shift.default_grid) == shift.default_grid
    assert shift.identity == shift.default_grid[0]  # grids start from the clean set


def test_default_grids_are_the_declared_ones():
    assert SHIFTS["rotate"].default_grid == tuple(range(0, 181, 15))  # Ovadia et al. 2019
    assert SHIFTS["translate"].default_grid == (0, 2, 4, 6, 8, 10, 12, 14)
    assert SHIFTS["contrast"].default_grid == (1, 0.8, 0.6, 0.4, 0.2, 0.1)
    assert SHIFTS["noise"].default_grid[0] == 0


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_every_grid_severity_keeps_dtype_and_shape(name: str, images: np.ndarray):
    for severity in SHIFTS[name].default_grid:
        out = SHIFTS[name].apply(images, severity)
        assert out.dtype == np.uint8 and out.shape == images.shape, severity


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_the_identity_severity_returns_the_input_bytes(name: str, images: np.ndarray):
    out = SHIFTS[name].apply(images, SHIFTS[name].identity)
    assert np.array_equal(out, images)
    assert out is not images  # a copy: the caller may write into it


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_every_other_grid_severity_changes_the_images(name: str, images: np.ndarray):
    for severity in SHIFTS[name].default_grid[1:]:
        assert not np.array_equal(SHIFTS[name].apply(images, severity), images), severity


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_the_same_severity_gives_the_same_bytes(name: str, images: np.ndarray):
    severity = SHIFTS[name].default_grid[2]
    first = SHIFTS[name].apply(images, severity)
    SHIFTS[name].apply(images, SHIFTS[name].default_grid[3])  # another severity in between
    assert set_checksum(SHIFTS[name].apply(images, severity), None) == set_checksum(first, None)


def test_apply_leaves_its_input_alone(images: np.ndarray):
    before = images.copy()
    for shift in SHIFTS.values():
        shift.apply(images, shift.default_grid[-1])
    assert np.array_equal(images, before)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(np.zeros((2, 28, 28), dtype=np.float32), id="float"),
        pytest.param(np.zeros((2, 784), dtype=np.uint8), id="flat"),
        pytest.param(np.zeros((28, 28), dtype=np.uint8), id="single"),
    ],
)
def test_apply_refuses_images_that_are_not_uint8_n_28_28(bad: np.ndarray):
    with pytest.raises(ValueError, match=r"expected uint8 \(n, 28, 28\) images"):
        SHIFTS["rotate"].apply(bad, 15)


def test_apply_checks_the_severity(images: np.ndarray):
    with pytest.raises(ConfigError, match="rotate severity 181 is out of range"):
        SHIFTS["rotate"].apply(images, 181)


# --------------------------------------------------------------------------- the families


def test_rotation_is_counter_clockwise_as_displayed():
    # a blob right of the centre (13.5, 13.5) goes above it after a quarter turn
    out = SHIFTS["rotate"].apply(blob_at(13, 22), 90)
    row, col = ndimage.center_of_mass(out[0].astype(np.float64))
    assert (row, col) == pytest.approx((13.5 - 9, 13.5))


@pytest.mark.parametrize(
    ("degrees", "reference"),
    [
        pytest.param(90, lambda x: np.rot90(x, 1, axes=(1, 2)), id="90"),
        pytest.param(180, lambda x: x[:, ::-1, ::-1], id="180"),
    ],
)
def test_quarter_and_half_turns_are_exact_pixel_permutations(images, degrees, reference):
    assert np.array_equal(SHIFTS["rotate"].apply(images, degrees), reference(images))


def test_rotation_loses_corners_and_fills_with_zero():
    full = np.full((1, 28, 28), 200, dtype=np.uint8)
    out = SHIFTS["rotate"].apply(full, 45)
    assert out[0, 0, 0] == 0 and out[0, 27, 27] == 0  # came from outside the frame
    assert out[0, 14, 14] == 200  # the inside is still the same grey (interpolation of equals)


@pytest.mark.parametrize("degrees", [15, 45, 100])
def test_rotation_interpolates_bilinearly_about_the_centre(degrees: float):
    # Worked by hand: output pixel p takes the input at centre + R(-degrees) (p - centre), in
    # (row down, column right) coordinates; bilinear weights of a lone pixel of 255 there are
    # (1 - |dr|)(1 - |dc|) within one pixel of it and 0 elsewhere (a cubic spline rings wider).
    r0, c0 = 10, 17
    impulse = np.zeros((1, 28, 28), dtype=np.uint8)
    impulse[0, r0, c0] = 255
    theta = np.deg2rad(degrees)
    r, c = np.mgrid[0:28, 0:28] - 13.5  # output offsets from the centre (13.5, 13.5)
    src_r = 13.5 + r * np.cos(theta) + c * np.sin(theta)
    src_c = 13.5 + c * np.cos(theta) - r * np.sin(theta)
    weight = np.clip(1 - abs(src_r - r0), 0, None) * np.clip(1 - abs(src_c - c0), 0, None)
    out = SHIFTS["rotate"].apply(impulse, degrees)[0].astype(np.int64)
    assert np.abs(out - np.rint(255 * weight)).max() <= 1  # 1: a rounding tie may go either way
    assert out.sum() > 0


def test_a_half_turn_reverses_a_ramp():
    ramp = np.tile(np.arange(28, dtype=np.uint8) * 9, (1, 28, 1))
    assert np.array_equal(SHIFTS["rotate"].apply(ramp, 180), ramp[:, :, ::-1])


def test_translate_moves_right_drops_the_edge_and_zero_fills():
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    image[0, 5, 3] = 100
    image[0, 9, 26] = 50  # two columns from the right edge
    out = SHIFTS["translate"].apply(image, 4)
    expected = np.zeros_like(image)
    expected[0, 5, 7] = 100  # the other pixel left the frame
    assert np.array_equal(out, expected)


def test_translate_by_the_maximum_keeps_only_the_left_half():
    images = np.arange(28 * 28, dtype=np.uint16).reshape(1, 28, 28).astype(np.uint8)
    out = SHIFTS["translate"].apply(images, 14)
    assert not out[:, :, :14].any()
    assert np.array_equal(out[:, :, 14:], images[:, :, :14])


def test_noise_has_the_declared_standard_deviation():
    grey = np.full((20, 28, 28), 128, dtype=np.uint8)  # far from both clip edges
    residual = SHIFTS["noise"].apply(grey, 25).astype(np.float64) - 128
    assert abs(residual.mean()) < 0.2  # 15,680 draws: standard error 0.2
    assert residual.std() == pytest.approx(25, rel=0.02)


def test_noise_is_clipped_to_grey_levels():
    black = np.zeros((5, 28, 28), dtype=np.uint8)
    out = SHIFTS["noise"].apply(black, 100)
    assert out.min() == 0 and out.max() == 255
    assert (out == 0).mean() == pytest.approx(0.5, abs=0.03)  # negative draws clip to 0


def test_noise_is_seeded_by_the_severity_alone(images: np.ndarray):
    # the documented seed: [NOISE_SEED, severity in thousandths], values drawn in C order
    rng = np.random.default_rng([NOISE_SEED, 50_000])
    expected = np.clip(np.rint(images + rng.normal(0, 50, images.shape)), 0, 255)
    assert np.array_equal(SHIFTS["noise"].apply(images, 50), expected.astype(np.uint8))
    # so the first images of a larger set get the same noise
    head = SHIFTS["noise"].apply(images[:10], 50)
    assert np.array_equal(head, SHIFTS["noise"].apply(images, 50)[:10])
    assert not np.array_equal(
        SHIFTS["noise"].apply(images, 50.5), SHIFTS["noise"].apply(images, 50)
    )


def test_contrast_scales_the_ink_and_rounds_half_to_even():
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    image[0, 0, :5] = [0, 3, 5, 255, 100]
    out = SHIFTS["contrast"].apply(image, 0.5)
    assert out[0, 0, :5].tolist() == [0, 2, 2, 128, 50]  # 1.5 -> 2, 2.5 -> 2, 127.5 -> 128
    assert not out[0, 1:].any()  # the black background stays black


# --------------------------------------------------------------------------- severity checks


@pytest.mark.parametrize(
    ("family", "values", "message"),
    [
        pytest.param(
            "rotat", [15], "unknown shift family 'rotat'; did you mean rotate? "
            "(known: contrast, noise, rotate, translate)", id="typo",
        ),
        pytest.param(
            "blur", [1], "unknown shift family 'blur' (known: contrast, noise, rotate, translate)",
            id="unknown",
        ),
        pytest.param(
            "rotate", [0, 200], "rotate severity 200 is out of range; must be in [0, 180] "
            "(degrees counter-clockwise)", id="too-high",
        ),
        pytest.param(
            "rotate", [-15], "rotate severity -15 is out of range; must be in [0, 180] "
            "(degrees counter-clockwise)", id="negative",
        ),
        pytest.param(
            "translate", [2.5], "translate severity 2.5 is not a whole number of pixels; must be "
            "in [0, 14], a whole number (pixels to the right)", id="fractional-pixels",
        ),
        pytest.param(
            "translate", [15], "translate severity 15 is out of range; must be in [0, 14], a "
            "whole number (pixels to the right)", id="too-far",
        ),
        pytest.param(
            "contrast", [0], "contrast severity 0 is out of range; must be in (0, 1] (contrast "
            "factor c, pixel -> round(c * pixel))", id="zero-contrast",
        ),
        pytest.param(
            "contrast", [1.5], "contrast severity 1.5 is out of range; must be in (0, 1] "
            "(contrast factor c, pixel -> round(c * pixel))", id="more-contrast",
        ),
        pytest.param(
            "noise", [float("nan")], "noise severity nan is not finite; must be in [0, 255] "
            "(standard deviation of added Gaussian noise, grey levels 0..255)", id="nan",
        ),
        pytest.param(
            "noise", [float("inf")], "noise severity inf is not finite; must be in [0, 255] "
            "(standard deviation of added Gaussian noise, grey levels 0..255)", id="inf",
        ),
        pytest.param(
            "rotate", ["15"], "rotate severity '15' is not a number; must be in [0, 180] "
            "(degrees counter-clockwise)", id="string-value",
        ),
        pytest.param(
            "rotate", [True], "rotate severity True is not a number; must be in [0, 180] "
            "(degrees counter-clockwise)", id="bool",
        ),
        pytest.param(
            "rotate", "15", "rotate severities must be a list of numbers, got '15'", id="string",
        ),
        pytest.param(
            "rotate", 15, "rotate severities must be a list of numbers, got 15", id="scalar",
        ),
        pytest.param(
            "noise", [], "noise severities: the list is empty; e.g. [0, 25, 50, 75, 100, 150]",
            id="empty",
        ),
        pytest.param("rotate", [15, 30, 15], "rotate severity 15 is listed twice", id="twice"),
    ],
)  # fmt: skip
def test_bad_severities_raise_one_line_config_errors(family, values, message):
    with pytest.raises(ConfigError) as caught:
        check_severities(family, values)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_good_severities_come_back_as_floats_in_order():
    assert check_severities("rotate", [30, np.int64(0), np.float32(7.5)]) == (30.0, 0.0, 7.5)
    assert check_severities("translate", (14.0, 0)) == (14.0, 0.0)
    assert check_severities("contrast", np.array([1.0, 1e-3])) == (1.0, 0.001)
    assert all(type(v) is float for v in check_severities("noise", [np.float64(3)]))


# --------------------------------------------------------------------------- checksum


def test_set_checksum_of_a_tiny_set_is_stable():
    assert set_checksum(*tiny_set()) == TINY_SET_CHECKSUM


def test_set_checksum_hashes_what_its_docstring_says():
    images, labels = tiny_set()
    digest = hashlib.sha256(b"mnistexp.set_checksum/1\n")
    digest.update(b"images |u1 2,28,28\n" + images.tobytes())
    digest.update(b"labels <i8 2\n" + labels.astype("<i8").tobytes())
    assert set_checksum(images, labels) == digest.hexdigest()
    none = hashlib.sha256(b"mnistexp.set_checksum/1\nimages |u1 2,28,28\n" + images.tobytes())
    none.update(b"labels none\n")
    assert set_checksum(images, None) == none.hexdigest()


def test_set_checksum_changes_with_any_pixel_label_shape_or_dtype():
    images, labels = tiny_set()
    base = set_checksum(images, labels)
    pixel = images.copy()
    pixel[1, 27, 27] ^= 1  # one bit of the last pixel
    assert set_checksum(pixel, labels) != base
    assert set_checksum(images, labels[::-1].copy()) != base
    assert set_checksum(images, labels.astype(np.uint8)) != base
    assert set_checksum(images, None) != base
    assert set_checksum(images.reshape(1, 2 * 28, 28), labels) != base  # same bytes, other shape


def test_set_checksum_ignores_memory_layout():
    images, labels = tiny_set()
    assert set_checksum(np.asfortranarray(images), labels) == set_checksum(images, labels)


# --------------------------------------------------------------------------- real MNIST


@pytest.mark.mnist
def test_real_test_images_come_back_exactly_at_identity_and_change_otherwise(mnist_dir: Path):
    mnist = datasets.load("mnist", mnist_dir, progress=False)
    test = mnist.test_images.reshape(-1, 28, 28)
    for shift in SHIFTS.values():
        assert np.array_equal(shift.apply(test, shift.identity), test), shift.name
        worst = shift.apply(test, shift.default_grid[-1])
        assert worst.shape == (10000, 28, 28) and worst.dtype == np.uint8
        assert (worst != test).any(axis=(1, 2)).mean() > 0.99, shift.name  # nearly every image


# --------------------------------------------------------------------------- machine cache


@pytest.fixture
def cache(images, tmp_path, monkeypatch) -> tuple[Path, str]:
    """(the shifted-set cache folder of a fresh user cache, the source key of ``images``)."""
    monkeypatch.setenv("MNISTEXP_CACHE_DIR", str(tmp_path))
    return tmp_path / "shifted", set_checksum(images, None)


def test_the_cache_returns_the_same_bytes_and_is_used(images, cache, monkeypatch):
    folder, source = cache
    first = shifted_set("rotate", images, 30.0, source)
    assert np.array_equal(first, SHIFTS["rotate"].apply(images, 30.0))
    calls = []
    spy = dataclasses.replace(SHIFTS["rotate"], transform=lambda x, s: calls.append(s) or x)
    monkeypatch.setitem(SHIFTS, "rotate", spy)
    again = shifted_set("rotate", images, 30.0, source)
    assert calls == [] and np.array_equal(again, first) and not again.flags.writeable
    # another severity or another source is another entry
    shifted_set("rotate", images, 45.0, source)
    shifted_set("rotate", images, 30.0, "other")
    assert len(list(folder.glob("*.npy"))) == 3


def test_a_damaged_or_foreign_cache_entry_is_recomputed(images, cache):
    folder, source = cache
    expected = shifted_set("noise", images, 50.0, source)
    (entry,) = folder.glob("noise-50-*.npy")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated
    assert np.array_equal(shifted_set("noise", images, 50.0, source), expected)
    np.save(entry, np.zeros_like(expected))  # a valid array that is not what was sealed
    assert np.array_equal(shifted_set("noise", images, 50.0, source), expected)


def test_a_labelled_set_is_hashed_once_when_made_and_its_checksum_read_back(
    images, cache, monkeypatch
):
    _, source = cache
    labels = np.arange(len(images)) % 10
    shifted, checksum = labelled_shifted_set("rotate", images, labels, 30.0, source)
    assert checksum == set_checksum(shifted, labels)
    assert np.array_equal(shifted, shifted_set("rotate", images, 30.0, source))
    hashed = []
    real = shifts.set_checksum
    monkeypatch.setattr(shifts, "set_checksum", lambda *a: hashed.append(a) or real(*a))
    again, recorded = labelled_shifted_set("rotate", images, labels, 30.0, source)
    assert recorded == checksum and np.array_equal(again, shifted)
    assert [a[1] is None for a in hashed] == [True]  # only the labels, for the key
    # other labels are another entry, with their own checksum
    other = labelled_shifted_set("rotate", images, labels[::-1].copy(), 30.0, source)[1]
    assert other == real(shifted, labels[::-1].copy()) != checksum


def test_an_entry_sealed_without_its_checksum_gets_it_without_being_made_again(
    images, cache, monkeypatch
):
    folder, source = cache
    labels = np.arange(len(images)) % 10
    _, checksum = labelled_shifted_set("noise", images, labels, 50.0, source)
    (seal,) = folder.glob("noise-50-*.json")
    sealed = json.loads(seal.read_text())
    seal.write_text(json.dumps({k: v for k, v in sealed.items() if k != "digest"}))
    calls = []
    spy = dataclasses.replace(SHIFTS["noise"], transform=lambda x, s: calls.append(s) or x)
    monkeypatch.setitem(SHIFTS, "noise", spy)
    assert labelled_shifted_set("noise", images, labels, 50.0, source)[1] == checksum
    assert calls == [] and json.loads(seal.read_text()) == sealed
    (entry,) = folder.glob("noise-50-*.npy")
    np.save(entry, np.zeros_like(images))  # replaced: the recorded checksum is not trusted
    monkeypatch.setitem(SHIFTS, "noise", dataclasses.replace(spy, transform=lambda x, s: x))
    remade, fresh = labelled_shifted_set("noise", images, labels, 50.0, source)
    assert fresh == set_checksum(remade, labels) != checksum


def test_an_unwritable_cache_only_costs_time(images, tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("MNISTEXP_CACHE_DIR", str(blocked))
    out = shifted_set("contrast", images, 0.5, set_checksum(images, None))
    assert np.array_equal(out, SHIFTS["contrast"].apply(images, 0.5))
