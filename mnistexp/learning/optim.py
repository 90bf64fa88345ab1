"""Optimisers and learning-rate schedules. Registries ``OPTIMIZERS`` and ``SCHEDULES``.

An optimiser updates parameters in place from gradients of the *batch-mean* loss. Plain SGD
lets the trainer fold the learning rate into the output delta (``grad_scale``), so its
gradients arrive already multiplied by lr and the update is one subtraction per array; with
momentum this is Sutskever's form ``v = mu v + lr g; p -= v`` (PyTorch's ``v = mu v + g;
p -= lr v`` agrees whenever lr is constant).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mnistexp.core.schema import TrainConfig

Params = list[tuple[np.ndarray, bool]]  # (array, weight decay applies)


class SGD:
    """SGD with optional momentum, Nesterov momentum and L2 weight decay (weights only)."""

    keys = ("momentum", "nesterov")  # the train keys only this optimiser reads

    def __init__(self, params: Params, cfg: TrainConfig) -> None:
        self.params, self.cfg = params, cfg
        self.velocity = [np.zeros_like(p) for p, _ in params] if cfg.momentum else None
        # Without momentum or weight decay a zero gradient row leaves its parameters as they
        # are, so ``step`` may take the first gradient as a few rows (``rows``): exact.
        self.row_sparse = not cfg.momentum and not cfg.weight_decay

    def grad_scale(self, lr: float) -> float:
        """The factor the trainer folds into the output delta: gradients arrive times lr."""
        return lr

    def state(self) -> dict[str, np.ndarray]:
        """Everything a checkpoint needs to continue exactly: the velocities, if any."""
        return {f"velocity{i}": v for i, v in enumerate(self.velocity or [])}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state` in place."""
        _load_arrays(self.velocity or [], state, "velocity")

    def step(self, grads: list[np.ndarray], lr: float, rows: np.ndarray | None = None) -> None:
        """One update from ``grads`` = lr * dL/dp (``grad_scale``), same order as params.

        ``rows`` (only when ``row_sparse``): ``grads[0]`` holds just these rows of the first
        parameter's gradient, the others being zero; see :func:`mnistexp.learning.model.backward`.
        """
        mu, wd = self.cfg.momentum, self.cfg.weight_decay
        if rows is not None:
            if not self.row_sparse:
                raise ValueError("momentum and weight decay need dense gradients (no rows)")
            self.params[0][0][rows] -= grads[0]  # gather, subtract, scatter: k rows only
            for (p, _), g in zip(self.params[1:], grads[1:], strict=True):
                p -= g
            return
        for i, ((p, decays), g) in enumerate(zip(self.params, grads, strict=True)):
            if wd and decays:
                g += (lr * wd) * p
            if self.velocity is None:
                p -= g
                continue
            v = self.velocity[i]
            v *= mu
            v += g
            if self.cfg.nesterov:
                g += mu * v  # look-ahead: p -= g + mu * v
                p -= g
            else:
                p -= v


class Adam:
    """Adam (Kingma & Ba 2015), beta1 = 0.9, beta2 = 0.999, eps = 1e-8; L2 added to the gradient.

    The update is the paper's "efficient" form (section 2, the last paragraph before 2.1, as
    TensorFlow and Keras implement it): ``p -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) +
    eps)``, epsilon added to the *uncorrected* sqrt(v). ``torch.optim.Adam`` follows
    Algorithm 1, ``p -= lr / (1 - b1^t) m / (sqrt(v / (1 - b2^t)) + eps)``. The two agree but
    for epsilon, whose effective size here is ``eps / sqrt(1 - b2^t)``: 31.6 times larger at
    step 1, which matters early on for weights whose gradients are tiny.
    """

    beta1, beta2, eps = 0.9, 0.999, 1e-8
    keys = ()  # reads lr and weight_decay, as every optimiser does

    def __init__(self, params: Params, cfg: TrainConfig) -> None:
        self.params, self.cfg, self.t = params, cfg, 0
        self.m = [np.zeros_like(p) for p, _ in params]
        self.v = [np.zeros_like(p) for p, _ in params]

    row_sparse = False  # the moments decay on every row, zero gradient or not

    def grad_scale(self, lr: float) -> float:
        return 1.0

    def state(self) -> dict[str, np.ndarray]:
        """The moments and the step count."""
        named = {f"m{i}": m for i, m in enumerate(self.m)}
        named |= {f"v{i}": v for i, v in enumerate(self.v)}
        return named | {"t": np.array(self.t)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        _load_arrays(self.m, state, "m")
        _load_arrays(self.v, state, "v")
        self.t = int(state["t"])

    def step(self, grads: list[np.ndarray], lr: float, rows: np.ndarray | None = None) -> None:
        if rows is not None:
            raise ValueError("Adam updates every row; it takes dense gradients only")
        self.t += 1
        b1, b2, wd = self.beta1, self.beta2, self.cfg.weight_decay
        step_size = lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for (p, decays), g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            if wd and decays:
                g += wd * p
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= step_size * m / (np.sqrt(v) + self.eps)


def _load_arrays(targets: list[np.ndarray], state: dict[str, np.ndarray], prefix: str) -> None:
    """Copy ``state[prefix0], state[prefix1], ...`` into ``targets``, checking every shape."""
    for i, target in enumerate(targets):
        saved = state[f"{prefix}{i}"]
        if saved.shape != target.shape:
            raise ValueError(f"{prefix}{i} has shape {saved.shape}, expected {target.shape}")
        target[...] = saved


OPTIMIZERS: dict[str, type[SGD] | type[Adam]] = {"sgd": SGD, "adam": Adam}

Schedule = Callable[[TrainConfig, int], float]

SCHEDULES: dict[str, Schedule] = {
    "constant": lambda c, epoch: c.lr,
    "step": lambda c, epoch: c.lr * c.gamma ** (epoch // c.step_every),
    # cosine from lr at epoch 0 down towards 0, evaluated at the start of each epoch
    "cosine": lambda c, epoch: 0.5 * c.lr * (1 + math.cos(math.pi * epoch / c.epochs)),
}


SCHEDULE_KEYS: dict[str, tuple[str, ...]] = {
    "constant": (),
    "step": ("step_every", "gamma"),
    "cosine": (),
}
"""Schedule -> the train keys only it reads."""


def make_optimizer(params: Params, cfg: TrainConfig) -> SGD | Adam:
    return OPTIMIZERS[cfg.optimizer](params, cfg)


def learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """The learning rate for 0-based ``epoch`` under ``cfg.schedule``."""
    return SCHEDULES[cfg.schedule](cfg, epoch)
