"""The speed paths of the hot loop give the numbers of the plain paths (no timings here)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from mnistexp.config.loading import ExperimentConfig, TrainConfig
from mnistexp.core.schema import LossConfig
from mnistexp.learning.losses import make_loss
from mnistexp.learning.model import ACTIVATIONS, backward, forward, init_mlp, workspace
from mnistexp.learning.objective import make_objective
from mnistexp.learning.optim import SGD, Adam
from mnistexp.pipeline.splits import Split
from mnistexp.pipeline.trainer import _Monitor, _Recorder


def _sparse_inputs(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.random((n, d))
    x[rng.random((n, d)) < 0.8] = 0.0  # MNIST-like: most pixels are exactly zero
    return x


def _train_batch_of_one(activation: str, sparse: bool, steps: int = 6) -> list[np.ndarray]:
    """Parameters after ``steps`` SGD steps at batch size 1, float64, dense or row-sparse."""
    rng = np.random.default_rng(0)
    model = init_mlp([30, 8, 5, 4], activation, "xavier", True, rng, np.float64)
    x = _sparse_inputs(rng, steps, 30)
    t = np.eye(4)[rng.integers(0, 4, steps)]
    loss = make_loss(LossConfig("cross_entropy", "softmax"))
    sgd = SGD(model.parameters(), TrainConfig(lr=0.5))
    ws = workspace(model, 1)
    for i in range(steps):
        ws.h[0][0] = x[i]
        z = forward(model, ws, 1)
        d = loss.delta(z, loss.activate(z, ws.a), t[i : i + 1], ws.d[-1])
        d *= sgd.grad_scale(0.5)
        rows = np.flatnonzero(ws.h[0][0]) if sparse else None
        sgd.step(backward(model, ws, 1, rows), 0.5, rows)
    return [p.copy() for p, _ in model.parameters()]


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_row_sparse_first_layer_update_is_exact(activation):
    dense = _train_batch_of_one(activation, sparse=False)
    sparse = _train_batch_of_one(activation, sparse=True)
    assert not np.array_equal(dense[0], _train_batch_of_one(activation, sparse=False, steps=0)[0])
    for a, b in zip(dense, sparse, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "optimizer",
    [
        pytest.param(lambda p: SGD(p, TrainConfig(momentum=0.9)), id="sgd-momentum"),
        pytest.param(lambda p: SGD(p, TrainConfig(weight_decay=1e-4)), id="sgd-decay"),
        pytest.param(lambda p: Adam(p, TrainConfig(optimizer="adam")), id="adam"),
    ],
)
def test_row_sparse_refused_where_it_would_not_be_exact(optimizer):
    model = init_mlp([6, 3, 2], "relu", "he", True, np.random.default_rng(0), np.float64)
    opt = optimizer(model.parameters())
    assert not opt.row_sparse
    grads = [np.zeros_like(p) for p, _ in model.parameters()]
    with pytest.raises(ValueError, match="dense gradients"):
        opt.step([grads[0][:2], *grads[1:]], 0.1, np.array([0, 3]))


def test_float32_sigmoid_fast_form_matches_expit():
    z = np.random.default_rng(1).normal(0, 8, (128, 800)).astype(np.float32)
    out = np.empty_like(z)
    ACTIVATIONS["sigmoid"].forward(z, out)
    np.testing.assert_allclose(out, expit(z), rtol=0, atol=2e-7)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_recorded_monitor_equals_per_batch_monitor():
    rng = np.random.default_rng(2)
    n, batch, k = 50, 4, 3
    y = rng.integers(0, k, n)
    split = Split(rng.random((n, 5)), y, np.eye(k)[y])
    loss = make_loss(LossConfig("cross_entropy", "softmax"))
    recorder, direct = _Recorder(n, batch, 3, k, np.float64), _Monitor()
    for step, lo in enumerate(range(0, n, batch)):
        if step % 3:
            continue
        idx = np.arange(lo, min(lo + batch, n))
        z = rng.normal(0, 3, (len(idx), k))
        recorder(z, idx, split.t[idx])
        a = loss.activate(z)
        direct.add(
            loss, z, a, split.t[idx], y[idx], loss.delta(z, a, split.t[idx], np.empty_like(z))
        )
    recorded = recorder.monitor(make_objective(ExperimentConfig()), split).row()
    for key, value in direct.row().items():
        assert recorded[key] == pytest.approx(value, rel=1e-12), key


@pytest.mark.parametrize(
    ("sizes", "batch", "one"),
    [
        ([784, 100, 10], 1, True),
        ([784, 100, 10], 32, True),  # 2.5M multiply-adds: one thread
        ([784, 800, 10], 32, True),  # 20M, but 32 rows: one thread (bimodal on two)
        ([784, 100, 10], 64, True),  # 5M
        ([784, 30, 10], 128, True),  # 128 rows but 3.3M
        ([784, 100, 10], 128, False),  # 128 rows and 10M: the library's threads
        ([784, 800, 10], 64, False),  # 40M
        ([784, 800, 10], 128, False),
    ],
)
def test_the_blas_thread_rule_reads_only_the_network_and_batch(sizes, batch, one) -> None:
    # The thread count changes a matmul's last bits, so it must follow from the config alone.
    from mnistexp.pipeline.trainer import _one_blas_thread

    model = init_mlp(sizes, "sigmoid", "xavier", True, np.random.default_rng(0))
    assert _one_blas_thread(model, batch) is one
