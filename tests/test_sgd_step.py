"""One SGD step worked out by hand, through the same pieces the trainer uses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnistexp.config.loading import TrainConfig
from mnistexp.core.schema import LossConfig
from mnistexp.learning.losses import make_loss
from mnistexp.learning.model import MLP, backward, forward, workspace
from mnistexp.learning.optim import make_optimizer


def test_hand_worked_sgd_step_softmax_cross_entropy():
    # Network 2-1-2, ReLU hidden unit, softmax output, one sample x = [1, 2] of class 0.
    #   hidden pre-activation  0.5*1 + (-0.25)*2 + 0.1 = 0.1, ReLU -> h = 0.1
    #   logits z = h * [1, -1] + [0, 0] = [0.1, -0.1]
    #   p0 = 1 / (1 + e^-0.2) = 0.549833997..., p1 = 0.450166003...
    #   delta = p - t = [-0.450166, +0.450166]                 (one-hot t = [1, 0])
    #   dW1 = h^T delta = [[-0.0450166, 0.0450166]],  db1 = delta
    #   dh  = delta @ W1^T = -0.450166 - 0.450166 = -0.900332 (ReLU slope 1 at h = 0.1)
    #   dW0 = x^T dh = [[-0.900332], [-1.800664]],    db0 = [-0.900332]
    # With lr = 0.5: p_new = p - 0.5 * grad.
    p1 = 1.0 / (1.0 + math.exp(0.2))
    model = MLP(
        weights=[np.array([[0.5], [-0.25]]), np.array([[1.0, -1.0]])],
        biases=[np.array([0.1]), np.array([0.0, 0.0])],
        activation="relu",
    )
    loss = make_loss(LossConfig("cross_entropy", "softmax"))
    opt = make_optimizer(model.parameters(), TrainConfig(lr=0.5))
    ws = workspace(model, 1)
    ws.h[0][:] = [[1.0, 2.0]]
    z = forward(model, ws, 1)
    np.testing.assert_allclose(z, [[0.1, -0.1]], rtol=1e-12)
    a = loss.activate(z, ws.a[:1])
    d = loss.delta(z, a, np.array([[1.0, 0.0]]), ws.d[-1][:1])
    d *= opt.grad_scale(0.5) / 1
    opt.step(backward(model, ws, 1), 0.5)

    np.testing.assert_allclose(model.weights[1], [[1 + 0.05 * p1, -1 - 0.05 * p1]], rtol=1e-12)
    np.testing.assert_allclose(model.biases[1], [0.5 * p1, -0.5 * p1], rtol=1e-12)
    np.testing.assert_allclose(model.weights[0], [[0.5 + p1], [-0.25 + 2 * p1]], rtol=1e-12)
    np.testing.assert_allclose(model.biases[0], [0.1 + p1], rtol=1e-12)
    assert model.weights[0][0, 0] == pytest.approx(0.950166003, abs=1e-9)


def test_momentum_and_weight_decay_follow_their_formulas():
    # p = 1, grad = 2 every step, lr 0.1, momentum 0.9, weight decay 0.5 (on weights):
    # step 1: g = lr*grad + lr*wd*p = 0.2 + 0.05 = 0.25; v = 0.25;           p = 0.75
    # step 2: g = 0.2 + 0.05*0.75 = 0.2375;  v = 0.9*0.25 + 0.2375 = 0.4625; p = 0.2875
    w = np.array([1.0])
    opt = make_optimizer([(w, True)], TrainConfig(lr=0.1, momentum=0.9, weight_decay=0.5))
    for expected in (0.75, 0.2875):
        opt.step([np.array([0.1 * 2.0])], 0.1)  # gradients arrive times lr (grad_scale)
        assert w[0] == pytest.approx(expected, abs=1e-12)


def test_adam_first_step_moves_by_lr_times_sign():
    # Bias-corrected Adam's first step is lr * g / (|g| + eps') = lr * sign(g).
    w = np.array([1.0, -1.0])
    opt = make_optimizer([(w, True)], TrainConfig(optimizer="adam", lr=0.01))
    assert opt.grad_scale(0.01) == 1.0
    opt.step([np.array([3.0, -0.2])], 0.01)
    np.testing.assert_allclose(w, [0.99, -0.99], atol=1e-6)


def _adam_reference(p0, grads, lr, efficient: bool, eps: float = 1e-8):
    """Adam written from Kingma & Ba 2015: Algorithm 1, or section 2's efficient form."""
    b1, b2 = 0.9, 0.999
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if (
            efficient
        ):  # alpha_t = alpha sqrt(1 - b2^t) / (1 - b1^t); p -= alpha_t m / (sqrt v + eps)
            p = p - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        else:  # m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t); p -= lr m_hat / (sqrt v_hat + eps)
            p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


def test_adam_is_the_efficient_form_of_the_paper_not_algorithm_1():
    """Gradients of 1e-9 make epsilon matter: mnistexp equals section 2's efficient form to
    rounding and differs from Algorithm 1 (torch.optim.Adam's) by a large fraction of a step."""
    rng = np.random.default_rng(0)
    p0 = rng.normal(0, 1, 6)
    grads = [rng.normal(0, 1e-9, 6) for _ in range(5)]
    w = p0.copy()
    opt = make_optimizer([(w, False)], TrainConfig(optimizer="adam", lr=0.01))
    for g in grads:
        opt.step([g.copy()], 0.01)
    efficient = _adam_reference(p0, grads, 0.01, efficient=True)
    algorithm_1 = _adam_reference(p0, grads, 0.01, efficient=False)
    np.testing.assert_allclose(w - p0, efficient - p0, rtol=1e-10)
    assert np.abs((w - p0) - (algorithm_1 - p0)).max() > 0.1 * np.abs(algorithm_1 - p0).max()
