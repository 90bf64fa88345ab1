"""Finite-difference checks (float64) of every loss x output x target x activation, end to end.

The analytic gradient is the one the trainer uses: the loss's delta at the output
pre-activations, scaled by 1/batch, backpropagated by ``model.backward``. The numeric gradient
perturbs every parameter of the whole network and differences the batch-mean loss value.
Losses with parameters are checked at several settings (focal's gamma below and above 1 and
its FLSD-53 schedule, the confidence penalty). Per-batch target schemes (bootstrapping) are
checked with their targets computed once at the starting point and then held fixed: the
targets are constants of the gradient, as in the paper.
"""

from __future__ import annotations

import numpy as np
import pytest

from mnistexp.config.loading import TargetsConfig
from mnistexp.core.schema import LossConfig
from mnistexp.learning.losses import LOSSES, make_loss
from mnistexp.learning.model import ACTIVATIONS, init_mlp, logits, workspace
from mnistexp.learning.model import backward as model_backward
from mnistexp.learning.model import forward as model_forward
from mnistexp.learning.targets import TARGETS, make_scheme

PAIRS = [(loss, out) for loss, cls in LOSSES.items() for out in cls.outputs]
PARAMS: dict[str, list[tuple[tuple[str, object], ...]]] = {
    "cross_entropy": [(), (("confidence_penalty", 0.3),)],
    "focal": [
        (("gamma", 2.0),),
        (("gamma", 0.5),),
        (("gamma_schedule", "flsd53"),),
        (("gamma", 1.5), ("confidence_penalty", 0.2)),
    ],
}
"""Loss -> the parameter settings its gradient is checked at (the defaults when not listed)."""
LOSS_CASES = [(loss, out, params) for loss, out in PAIRS for params in PARAMS.get(loss, [()])]
LOSS_IDS = [f"{a}-{b}" + "".join(f"-{k}={v}" for k, v in p) for a, b, p in LOSS_CASES]
N, SIZES = 5, [6, 5, 4, 4]  # batch of 5; 6 inputs, hidden [5, 4], 4 classes


def _loss(loss_type: str, output: str, params=()):
    defaults = {p.name: p.default for p in LOSSES[loss_type].params}
    extras = tuple(sorted((defaults | dict(params)).items()))
    return make_loss(LossConfig(loss_type, output, params=extras))


def _problem(activation: str, scheme: str, bias: bool = True, seed: int = 0, loss=None):
    rng = np.random.default_rng(seed)
    model = init_mlp(SIZES, activation, "xavier", bias, rng, np.float64)
    for b in model.biases:
        if b is not None:
            b[:] = rng.normal(0, 0.3, b.shape)  # non-zero biases, so their gradient matters
    x = rng.normal(0, 1, (N, SIZES[0]))
    y = rng.integers(0, SIZES[-1], N)
    extras = tuple((p.name, p.default) for p in TARGETS[scheme].params if p.name != "epsilon")
    cfg = TargetsConfig(scheme=scheme, epsilon=0.2, params=extras)
    chosen = make_scheme(cfg, SIZES[-1])
    t = chosen.encode(y, np.float64)
    if chosen.per_batch:  # targets from the model's outputs at the start, then held fixed
        assert loss is not None
        t = chosen.batch(t, y, logits(model, x), loss.output)
    return model, x, t


def _mean_loss(model, loss, x, t) -> float:
    z = logits(model, x)
    return loss.value(z, loss.activate(z), t)


def _analytic(model, loss, x, t) -> list[np.ndarray]:
    ws = workspace(model, N)
    ws.h[0][:] = x
    z = model_forward(model, ws, N)
    a = loss.activate(z, ws.a)
    d = loss.delta(z, a, t, ws.d[-1])
    d /= N
    return [g.copy() for g in model_backward(model, ws, N)]


def _numeric(model, loss, x, t, eps: float = 1e-6) -> list[np.ndarray]:
    grads = []
    for p, _ in model.parameters():
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            keep = p[i]
            p[i] = keep + eps
            up = _mean_loss(model, loss, x, t)
            p[i] = keep - eps
            down = _mean_loss(model, loss, x, t)
            p[i] = keep
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("scheme", sorted(TARGETS))
@pytest.mark.parametrize(("loss_type", "output", "params"), LOSS_CASES, ids=LOSS_IDS)
def test_whole_network_gradient_matches_finite_differences(
    loss_type, output, params, scheme, activation
):
    loss = _loss(loss_type, output, params)
    model, x, t = _problem(activation, scheme, loss=loss)
    analytic, numeric = _analytic(model, loss, x, t), _numeric(model, loss, x, t)
    for (p, _), a, n in zip(model.parameters(), analytic, numeric, strict=True):
        assert a.shape == p.shape
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(("loss_type", "output", "params"), LOSS_CASES, ids=LOSS_IDS)
def test_gradient_without_biases(loss_type, output, params):
    model, x, t = _problem("tanh", "soft", bias=False)
    loss = _loss(loss_type, output, params)
    assert len(model.parameters()) == len(model.weights)
    for a, n in zip(_analytic(model, loss, x, t), _numeric(model, loss, x, t), strict=True):
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-8)


def test_softmax_cross_entropy_delta_for_targets_not_summing_to_one():
    # soft targets 0.01/0.99 over 4 classes sum to 0.99 + 3 * 0.01 = 1.02, so the delta is
    # p * 1.02 - t, not p - t.
    z = np.array([[0.3, -1.2, 2.0, 0.1]])
    t = np.array([[0.01, 0.01, 0.99, 0.01]])
    loss = make_loss(LossConfig("cross_entropy", "softmax"))
    p = loss.activate(z)
    got = loss.delta(z, p, t, np.empty_like(z))
    np.testing.assert_allclose(got, p * 1.02 - t, rtol=1e-12)
    assert not np.allclose(got, p - t)


@pytest.mark.parametrize(("loss_type", "output", "params"), LOSS_CASES, ids=LOSS_IDS)
def test_losses_stay_finite_for_huge_and_equal_logits(loss_type, output, params):
    loss = _loss(loss_type, output, params)
    z = np.array([[1e4, -1e4, 0.0], [5.0, 5.0, 5.0]])
    t = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is benign
        if output != "linear":  # squared error on linear outputs of 1e4 is legitimately 1e8
            a = loss.activate(z)
            assert np.isfinite(loss.value(z, a, t))
            assert np.isfinite(loss.delta(z, a, t, np.empty_like(z))).all()
    equal = loss.activate(np.zeros((1, 3)))
    assert np.allclose(equal, equal[0, 0])  # equal logits -> equal outputs


@pytest.mark.parametrize(("temperature", "alpha"), [(1.0, 0.5), (3.0, 0.7), (20.0, 1.0)])
@pytest.mark.parametrize("soft_targets", ["soft", "smooth"])
def test_distillation_gradient_matches_finite_differences(temperature, alpha, soft_targets):
    """Hinton's loss at T != 1: hard term at T = 1, soft term at T scaled by T^2."""
    from mnistexp.learning.losses import Distillation

    model, x, hard = _problem("sigmoid", soft_targets)
    teacher = np.random.default_rng(9).normal(0, 3, hard.shape)
    soft = np.exp(teacher / temperature)
    soft /= soft.sum(axis=1, keepdims=True)
    t = np.hstack([hard, soft])
    loss = Distillation(_loss("cross_entropy", "softmax"), temperature, alpha)
    atol = 1e-8 * temperature**2  # the T^2 factor scales the finite differences' rounding too
    for a, n in zip(_analytic(model, loss, x, t), _numeric(model, loss, x, t), strict=True):
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=atol)


def test_mixup_batch_loss_gradient_matches_finite_differences():
    """The loss of a mixed batch (inputs and targets mixed by one lambda) is an ordinary
    batch loss: its gradient is checked with the mixed batch held fixed."""
    from mnistexp.pipeline.trainer import _mix

    model, x, t = _problem("relu", "onehot")
    x, t = x.copy(), t.copy()
    _mix(x, t, np.random.default_rng(4), 0.4)
    loss = _loss("cross_entropy", "softmax", (("confidence_penalty", 0.1),))
    assert not np.isin(t, (0.0, 1.0)).all()  # the targets really are mixed
    for a, n in zip(_analytic(model, loss, x, t), _numeric(model, loss, x, t), strict=True):
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-8)


# --------------------------------------------------------------------------- bootstrapping


THROUGH_CASES = [case for case in LOSS_CASES if case[1] == "softmax"]
THROUGH_IDS = [i for i, case in zip(LOSS_IDS, LOSS_CASES, strict=True) if case[1] == "softmax"]


def _bootstrap(gradient: str, beta: float = 0.7):
    cfg = TargetsConfig(scheme="bootstrap_soft", params=(("beta", beta), ("gradient", gradient)))
    return make_scheme(cfg, SIZES[-1])


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize(("loss_type", "output", "params"), THROUGH_CASES, ids=THROUGH_IDS)
def test_bootstrap_through_gradient_is_that_of_the_recomputed_targets(
    loss_type, output, params, activation
):
    # targets.gradient: through differentiates t(z) = beta y + (1 - beta) softmax(z) as well:
    # the numeric gradient recomputes the targets at every perturbed point
    scheme = _bootstrap("through")
    loss = scheme.wrap(_loss(loss_type, output, params))
    model, x, _ = _problem(activation, "onehot")
    y = np.random.default_rng(3).integers(0, SIZES[-1], N)
    fixed = scheme.encode(y, np.float64)

    def targets_now():
        return scheme.batch(fixed, y, logits(model, x), loss.output)

    analytic = _analytic(model, loss, x, targets_now())
    numeric = []
    for p, _ in model.parameters():
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            keep = p[i]
            p[i] = keep + 1e-6
            up = _mean_loss(model, loss, x, targets_now())
            p[i] = keep - 1e-6
            down = _mean_loss(model, loss, x, targets_now())
            p[i] = keep
            g[i] = (up - down) / 2e-6
        numeric.append(g)
    for a, n in zip(analytic, numeric, strict=True):
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-8)


def test_bootstrap_conventions_by_hand_for_cross_entropy():
    # one-hot y, q = p = softmax(z): constant gives beta (p - y); through adds the gradient of
    # (1 - beta) H(p), which is -(1 - beta) p (log p + H)
    beta, z, y = 0.7, np.array([[np.log(2.0), 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]])
    p = np.array([[0.5, 0.25, 0.25]])
    entropy = -(p * np.log(p)).sum()
    for gradient, expected in (
        ("constant", beta * (p - y)),
        ("through", beta * (p - y) - (1 - beta) * p * (np.log(p) + entropy)),
    ):
        scheme = _bootstrap(gradient, beta)
        loss = scheme.wrap(_loss("cross_entropy", "softmax"))
        t = scheme.batch(y, np.array([1]), z, loss.output)
        got = loss.delta(z, loss.activate(z), t, np.empty_like(z))
        np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("setting", ["loss.output=sigmoid", "loss.delta=clamped"])
def test_bootstrap_through_needs_softmax_and_the_exact_delta(setting):
    from mnistexp.config.loading import load_config
    from mnistexp.core.errors import ConfigError

    overrides = ["targets.scheme=bootstrap_soft", "targets.gradient=through", setting]
    if setting == "loss.output=sigmoid":
        overrides.append("loss.type=mse")
    with pytest.raises(ConfigError, match=r"targets\.gradient = 'through' is invalid"):
        load_config(None, overrides)
