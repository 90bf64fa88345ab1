"""Gradient diagnostics on a constructed batch with known saturation."""

from __future__ import annotations

import numpy as np
import pytest

from mnistexp.core.schema import LossConfig
from mnistexp.learning.losses import make_loss
from mnistexp.pipeline.trainer import _Monitor


def test_saturated_wrong_sigmoid_units_are_counted_and_have_tiny_gradients():
    # Two samples, three sigmoid outputs under squared error, one-hot targets (true class 0).
    # Sample 1: outputs [1e-4, 0.5, 0.5]: unit 0 is saturated (slope ~1e-4 < 0.01) and wrong
    #   (|a - t| = 0.9999 > 0.5): 1 of 3 units. Sample 2: [0.9, 0.1, 0.1]: nothing saturated.
    #   -> saturated fraction = (1/3 + 0) / 2 = 1/6.
    z = np.log(
        np.array([[1e-4, 0.5, 0.5], [0.9, 0.1, 0.1]])
        / (1 - np.array([[1e-4, 0.5, 0.5], [0.9, 0.1, 0.1]]))
    )
    loss = make_loss(LossConfig("mse", "sigmoid"))
    a = loss.activate(z)
    t = np.array([[1.0, 0, 0], [1.0, 0, 0]])
    y = np.array([0, 0])
    d = loss.delta(z, a, t, np.empty_like(z))
    mon = _Monitor()
    mon.add(loss, z, a, t, y, d)
    row = mon.row()
    assert row["saturated"] == pytest.approx(1 / 6)
    # true-class |delta| = |a - 1| a (1 - a): 0.9999 * 1e-4 * 0.9999 and 0.1 * 0.9 * 0.1
    expect_true = (0.9999 * 1e-4 * 0.9999 + 0.1 * 0.9 * 0.1) / 2
    assert row["grad_true"] == pytest.approx(expect_true, rel=1e-6)
    # other classes: 0.5 * 0.25 twice for sample 1, 0.1 * 0.09 twice for sample 2; mean per unit
    expect_other = (2 * 0.125 + 2 * 0.009) / 2 / 2
    assert row["grad_other"] == pytest.approx(expect_other, rel=1e-6)


def test_cross_entropy_does_not_saturate_the_same_way():
    # The same confidently wrong output under softmax + CE: delta = p - t is ~ -1 at the true
    # class, the "large gradient when wrong" that squared error on sigmoids lacks.
    z = np.array([[-9.0, 0.0, 0.0]])
    loss = make_loss(LossConfig("cross_entropy", "softmax"))
    a = loss.activate(z)
    d = loss.delta(z, a, np.array([[1.0, 0, 0]]), np.empty_like(z))
    mon = _Monitor()
    mon.add(loss, z, a, np.array([[1.0, 0, 0]]), np.array([0]), d)
    assert mon.row()["grad_true"] == pytest.approx(1.0, abs=1e-3)
