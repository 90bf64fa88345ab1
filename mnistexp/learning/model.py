"""A multilayer perceptron as pure functions on whole batches. Registries ACTIVATIONS, INITS.

Rows are samples. Layer l maps (n, fan_in) -> (n, fan_out) with ``z = h @ W + b``; weights are
stored (fan_in, fan_out) so the forward pass needs no transposes and the backward pass uses
transposes as views. The training step writes every intermediate into a :class:`Workspace`
allocated once per epoch, so a step is a fixed handful of BLAS calls and in-place ufuncs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit, ndtr, ndtri

# --------------------------------------------------------------------------- activations


@dataclass(frozen=True)
class Activation:
    """``forward(z, out)`` in place, and ``backprop(a, d)``: d *= f'(z), with f' read from a."""

    forward: Callable[[np.ndarray, np.ndarray], np.ndarray]
    backprop: Callable[[np.ndarray, np.ndarray], None]


def _sigmoid_backprop(a: np.ndarray, d: np.ndarray) -> None:
    d *= a
    d -= d * a  # d * a * (1 - a) without a second temporary


def _tanh_backprop(a: np.ndarray, d: np.ndarray) -> None:
    d -= d * a * a  # d * (1 - a^2)


def _relu_backprop(a: np.ndarray, d: np.ndarray) -> None:
    d *= a > 0


# For float32 batches of this many elements or more, sigmoid is computed as 0.5 * tanh(z / 2)
# + 0.5 with numpy's SIMD tanh (about 0.6 ns per element) instead of scipy's expit (about 4 ns):
# 0.15 s of a 784-800-10 epoch at batch 128. Below it expit's single call has less overhead.
# The tanh form is accurate in absolute terms (error ~1e-7), not relatively for tiny outputs, so
# float64 (gradient checks, "float64 when asked") always uses expit. Neither form overflows.
_SIGMOID_TANH_FROM = 2048


def _sigmoid(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    if z.dtype != np.float32 or z.size < _SIGMOID_TANH_FROM:
        return expit(z, out=out)
    np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(_sigmoid, _sigmoid_backprop),
    "tanh": Activation(lambda z, out: np.tanh(z, out=out), _tanh_backprop),
    "relu": Activation(lambda z, out: np.maximum(z, 0, out=out), _relu_backprop),
}

# --------------------------------------------------------------------------- initialisation

Init = Callable[[np.random.Generator, int, int], np.ndarray]


def _truncated_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    # The tutorial's N(0, 1) truncated to +-1/sqrt(fan_in), drawn by inverting the normal CDF
    # on the truncated range (exact, and no rejection loop at a ~3% acceptance rate).
    r = 1.0 / np.sqrt(fan_in)
    u = rng.uniform(ndtr(-r), ndtr(r), size=(fan_in, fan_out))
    return ndtri(u)


INITS: dict[str, Init] = {
    # Glorot & Bengio 2010, uniform: U(-sqrt(6 / (in + out)), +sqrt(6 / (in + out)))
    "xavier": lambda rng, i, o: rng.uniform(-1, 1, (i, o)) * np.sqrt(6.0 / (i + o)),
    # He et al. 2015: N(0, 2 / fan_in), for ReLU
    "he": lambda rng, i, o: rng.normal(0.0, np.sqrt(2.0 / i), (i, o)),
    "tutorial": _truncated_normal,
    # N(0, 1): the "large weights" of older texts, which saturate sigmoid units
    "normal": lambda rng, i, o: rng.normal(0.0, 1.0, (i, o)),
}

# --------------------------------------------------------------------------- parameters


@dataclass
class MLP:
    """Parameters of an MLP. ``weights[l]`` (fan_in, fan_out); ``biases[l]`` (fan_out,) or None."""

    weights: list[np.ndarray]
    biases: list[np.ndarray | None]
    activation: str

    @property
    def sizes(self) -> list[int]:
        return [self.weights[0].shape[0]] + [w.shape[1] for w in self.weights]

    def parameters(self) -> list[tuple[np.ndarray, bool]]:
        """Every array with a flag saying whether weight decay applies (weights yes, biases no)."""
        out: list[tuple[np.ndarray, bool]] = []
        for w, b in zip(self.weights, self.biases, strict=True):
            out.append((w, True))
            if b is not None:
                out.append((b, False))
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """Named arrays for ``model.npz``: W0, b0, W1, ..."""
        named = {f"W{i}": w for i, w in enumerate(self.weights)}
        named |= {f"b{i}": b for i, b in enumerate(self.biases) if b is not None}
        return named

    def restore(self, named: dict[str, np.ndarray]) -> None:
        """Copy :meth:`arrays` of a model of the same shape back in, in place (an optimiser
        holds references to these arrays)."""
        mine = self.arrays()
        if set(named) != set(mine):
            raise ValueError(f"parameters {sorted(named)} do not match {sorted(mine)}")
        for key, target in mine.items():
            if named[key].shape != target.shape:
                raise ValueError(f"{key} has shape {named[key].shape}, expected {target.shape}")
            target[...] = named[key]


def init_mlp(
    sizes: list[int],
    activation: str,
    init: str,
    bias: bool,
    rng: np.random.Generator,
    dtype: type = np.float32,
) -> MLP:
    """Draw weights for layer sizes ``[784, *hidden, 10]``; biases start at zero."""
    pairs = list(itertools.pairwise(sizes))
    weights: list[np.ndarray] = [INITS[init](rng, i, o).astype(dtype) for i, o in pairs]
    biases: list[np.ndarray | None] = [np.zeros(o, dtype=dtype) if bias else None for _, o in pairs]
    return MLP(weights, biases, activation)


def logits(model: MLP, x: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Output pre-activations (n, K) for inputs (n, fan_in), in chunks to bound memory."""
    act = ACTIVATIONS[model.activation].forward
    parts = []
    for start in range(0, x.shape[0], chunk):
        h = x[start : start + chunk]
        for layer, (w, b) in enumerate(zip(model.weights, model.biases, strict=True)):
            h = h @ w
            if b is not None:
                h += b
            if layer < len(model.weights) - 1:
                act(h, h)
        parts.append(h)
    return np.concatenate(parts) if parts else np.empty((0, model.sizes[-1]), x.dtype)


# --------------------------------------------------------------------------- training step


@dataclass
class Workspace:
    """Buffers for one batch size, reused every step. Views ``[:m]`` serve a short last batch.

    ``h[0]`` is the gathered input batch, ``h[l]`` the hidden outputs, ``z`` the logits, ``a``
    the outputs and ``d[l]`` the deltas at layer l's pre-activations; ``e`` (batch, K) is the
    raw output error ``a - t``, scaled like the delta, for backprop rules that read it;
    ``grads`` mirror ``MLP.parameters()``.
    """

    h: list[np.ndarray]
    z: np.ndarray
    a: np.ndarray
    d: list[np.ndarray]
    e: np.ndarray
    grads: list[np.ndarray] = field(default_factory=list)


def workspace(model: MLP, batch: int) -> Workspace:
    """Allocate the buffers for ``batch`` rows, in the model's dtype."""
    dt, sizes = model.weights[0].dtype, model.sizes
    h = [np.empty((batch, s), dt) for s in sizes[:-1]]
    d = [np.empty((batch, s), dt) for s in sizes[1:]]
    z, a = np.empty((batch, sizes[-1]), dt), np.empty((batch, sizes[-1]), dt)
    grads = [np.empty_like(p) for p, _ in model.parameters()]
    return Workspace(h, z, a, d, np.empty((batch, sizes[-1]), dt), grads)


def forward(model: MLP, ws: Workspace, m: int) -> np.ndarray:
    """Forward pass of the batch in ``ws.h[0][:m]``; fills ``ws.h`` and returns logits (m, K)."""
    act = ACTIVATIONS[model.activation].forward
    n_layers = len(model.weights)
    for layer, (w, b) in enumerate(zip(model.weights, model.biases, strict=True)):
        out = ws.h[layer + 1][:m] if layer < n_layers - 1 else ws.z[:m]
        np.matmul(ws.h[layer][:m], w, out=out)
        if b is not None:
            out += b
        if layer < n_layers - 1:
            act(out, out)
    return ws.z[:m]


HiddenError = Callable[[MLP, Workspace, int, int, np.ndarray], None]
"""``(model, ws, m, slot, out)``: writes the error (m, fan_in) reaching the last hidden layer
from the output layer into ``out``; ``slot`` indexes the output weights' gradient in ws.grads."""


def backward(
    model: MLP,
    ws: Workspace,
    m: int,
    rows: np.ndarray | None = None,
    hidden_error: HiddenError | None = None,
) -> list[np.ndarray]:
    """Gradients of the loss whose output delta (m, K) is in ``ws.d[-1][:m]``.

    Returns ``ws.grads`` in ``MLP.parameters()`` order. The delta must already carry any
    1/batch (and, for SGD, lr) factor, so nothing here is rescaled.

    Sparse first layer (batch of one): ``rows`` are the indices of the non-zero inputs of
    ``ws.h[0][0]``. The first weight gradient is then the outer product of those inputs with
    the delta, (len(rows), fan_out), returned as the first entry in place of the full
    (fan_in, fan_out) matrix; its other rows are exactly zero (0 * d), so an optimiser that
    accepts ``rows`` (plain SGD) skips them with the same numbers as the dense path. About 80%
    of MNIST pixels are zero: this writes a fifth of the first layer's gradient and update.

    ``hidden_error`` replaces the chain rule's ``d @ W.T`` between the output layer and the
    last hidden layer (the tutorial's update rules); every other step is the exact chain rule.
    """
    if rows is not None and m != 1:
        raise ValueError(f"row-sparse gradients are for a batch of one, not {m}")
    backprop = ACTIVATIONS[model.activation].backprop
    slots = iter(range(len(ws.grads) - 1, -1, -1))
    grads = ws.grads if rows is None else list(ws.grads)  # the sparse path swaps in grads[0]
    for layer in range(len(model.weights) - 1, -1, -1):
        d, h = ws.d[layer][:m], ws.h[layer][:m]
        if model.biases[layer] is not None:
            np.sum(d, axis=0, out=ws.grads[next(slots)])
        slot = next(slots)
        if layer == 0 and rows is not None:
            # (k, 1) * (1, fan_out): the very products of the dense (fan_in, 1) @ (1, fan_out)
            grads[slot] = np.multiply(h[0, rows][:, None], d, out=ws.grads[slot][: len(rows)])
        else:
            np.matmul(h.T, d, out=ws.grads[slot])  # (fan_in, m) @ (m, fan_out)
        if layer > 0:
            below = ws.d[layer - 1][:m]
            if hidden_error is not None and layer == len(model.weights) - 1:
                hidden_error(model, ws, m, slot, below)
            else:
                np.matmul(d, model.weights[layer].T, out=below)  # (m, fan_out) @ (fan_out, fan_in)
            backprop(h, below)
    return grads


def _error_through_updated_weights(model: MLP, ws: Workspace, m: int, slot: int, out) -> None:
    """The tutorial (python-course.eu): the raw output error ``t - a`` (no output slope) sent
    back through the output weights *after* their update. With plain SGD the update is minus
    the gradient in ``ws.grads[slot]`` (lr and 1/batch are folded in), so W_new = W - grad."""
    updated = model.weights[-1] - ws.grads[slot]  # (fan_in, K)
    np.matmul(ws.e[:m], updated.T, out=out)


def _error_through_old_weights(model: MLP, ws: Workspace, m: int, slot: int, out) -> None:
    """Rashid, "Make Your Own Neural Network": the same raw error through the old weights."""
    np.matmul(ws.e[:m], model.weights[-1].T, out=out)


Problem = tuple[str, Any, bool, str]


@dataclass(frozen=True)
class BackpropRule:
    """How the output delta reaches the hidden layers (key ``train.backprop``).

    ``hidden_error`` None is the exact chain rule; ``needs_error`` asks the trainer to fill
    ``ws.e`` with the raw output error; ``problems(cfg)`` lists what the rule is defined for.
    """

    hidden_error: HiddenError | None = None
    needs_error: bool = False
    problems: Callable[[Any], list[Problem]] = lambda cfg: []

    def __call__(
        self, model: MLP, ws: Workspace, m: int, rows: np.ndarray | None = None
    ) -> list[np.ndarray]:
        if self.hidden_error is None:
            return backward(model, ws, m, rows)
        return backward(model, ws, m, rows, self.hidden_error)


def _tutorial_setting(cfg: Any) -> list[Problem]:
    """The tutorial's rules are defined for squared error on sigmoid outputs with plain SGD."""
    tr, rule = cfg.train, "is the tutorial's rule for squared error on sigmoid outputs"
    need = (
        (
            cfg.loss.type == "mse" and cfg.loss.output == "sigmoid",
            "loss.type = mse, loss.output = sigmoid",
        ),
        (
            tr.optimizer == "sgd" and tr.momentum == 0,
            "plain SGD (train.optimizer = sgd, momentum 0)",
        ),
        (tr.weight_decay == 0, "train.weight_decay = 0"),
        (cfg.loss.delta == "exact", "loss.delta = exact"),
    )
    return [("train.backprop", tr.backprop, ok, f"{rule}: needs {what}") for ok, what in need]


BACKPROPS: dict[str, BackpropRule] = {
    "exact": BackpropRule(),  # the chain rule: the gradient of the loss
    "tutorial": BackpropRule(_error_through_updated_weights, True, _tutorial_setting),
    "rashid": BackpropRule(_error_through_old_weights, True, _tutorial_setting),
}
