"""The epoch loop: batching, monitoring, per-epoch validation, divergence detection.

Pure apart from the optional progress bar: splits and a seeded generator in, a trained
:class:`~mnistexp.learning.model.MLP` and its history out. Writing files is the caller's job
(``on_epoch`` receives each history row as it is made).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from mnistexp.core.schema import ExperimentConfig
from mnistexp.core.states import State
from mnistexp.eval import metrics
from mnistexp.learning.checkpoints import Checkpoint
from mnistexp.learning.losses import Loss
from mnistexp.learning.model import MLP, forward, init_mlp, logits, workspace
from mnistexp.learning.objective import Objective, make_objective
from mnistexp.learning.optim import learning_rate, make_optimizer
from mnistexp.pipeline.splits import Split

# Train loss, accuracy and gradient diagnostics are read off every k-th batch, with k chosen
# so that about this many training samples are monitored per epoch whatever the batch size:
# an unbiased estimate that keeps per-step overhead off the hot path (batch size 1 has 50k
# steps per epoch, where a dozen extra numpy calls would cost more than the update).
MONITOR_SAMPLES = 5000
SATURATION_SLOPE = 0.01  # an output unit is saturated when da/dz < this ...
SATURATION_GAP = 0.5  # ... while |a - t| exceeds this


@dataclass
class TrainResult:
    model: MLP
    history: list[dict] = field(default_factory=list)
    state: State = State.COMPLETED  # or DIVERGED
    message: str | None = None
    last_finite_loss: float | None = None  # for a diverged run: the loss before it blew up


@dataclass
class _Monitor:
    """Running sums over the monitored batches of one epoch."""

    samples: int = 0
    loss: float = 0.0
    correct: int = 0
    grad_true: float = 0.0
    grad_other: float = 0.0
    saturated: float = 0.0
    logit_abs: float = 0.0
    logit_max: float = 0.0

    def add(
        self, loss: Loss, z: np.ndarray, a: np.ndarray, t: np.ndarray, y: np.ndarray, d: np.ndarray
    ) -> None:
        """Accumulate one batch; ``d`` is the unscaled per-sample delta (m, K). Targets may
        carry more columns than classes (distillation); the first K are the hard targets."""
        m, k = z.shape
        rows = np.arange(m)
        self.samples += m
        self.loss += loss.value(z, a, t) * m
        self.correct += int(np.count_nonzero(z.argmax(axis=1) == y))
        abs_d = np.abs(d)
        true_sum = float(abs_d[rows, y].sum())
        self.grad_true += true_sum
        self.grad_other += (float(abs_d.sum()) - true_sum) / (k - 1)
        abs_z = np.abs(z)
        self.logit_abs += float(abs_z.sum()) / k
        self.logit_max = float(np.maximum(self.logit_max, abs_z.max(initial=0.0)))  # NaN stays
        gap = np.abs(a - t[:, :k])
        stuck = (loss.output.slope(a) < SATURATION_SLOPE) & (gap > SATURATION_GAP)
        self.saturated += np.count_nonzero(stuck) / k

    def row(self) -> dict[str, float]:
        n = max(self.samples, 1)
        return {
            "train_loss": self.loss / n,
            "train_accuracy": self.correct / n,
            "grad_true": self.grad_true / n,  # mean |dL/dz| at the true class
            "grad_other": self.grad_other / n,  # mean |dL/dz| at each other class
            "saturated": self.saturated / n,  # fraction of saturated, wrong output units
            "logit_mean_abs": self.logit_abs / n,  # mean |z_k| over samples and classes
            "logit_max_abs": self.logit_max,  # largest |z_k| seen
        }


def train(
    cfg: ExperimentConfig,
    train_split: Split,
    val_split: Split | None,
    rng: np.random.Generator,
    *,
    progress: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    resume: Checkpoint | None = None,
    on_checkpoint: Callable[[Checkpoint], None] | None = None,
    objective: Objective | None = None,
) -> TrainResult:
    """Train an MLP on ``train_split`` for ``cfg.train.epochs``; stop early if it diverges.

    With ``resume``, continue from that checkpoint instead of epoch 0 (``rng`` must be the
    run's generator, seeded as for a fresh run). Every ``cfg.train.checkpoint_every`` epochs
    ``on_checkpoint`` receives a :class:`Checkpoint` that refers to the live arrays: save it
    before returning.
    """
    dtype = np.dtype(cfg.train.dtype).type
    if objective is None:  # the caller may pass one it prepared (and evaluates with)
        objective = make_objective(cfg, train_split.t.shape[1])
    sizes = [train_split.x.shape[1], *cfg.model.hidden, objective.scheme.n_classes]
    model = init_mlp(sizes, cfg.model.activation, cfg.model.init, cfg.model.bias, rng, dtype)
    optimizer = make_optimizer(model.parameters(), cfg.train)
    result = TrainResult(model)
    first = 0
    if resume is not None:
        model.restore(resume.params)
        optimizer.load_state(resume.optimizer)
        rng.bit_generator.state = resume.rng_state
        result.history, first = list(resume.history), resume.epoch
    every = cfg.train.checkpoint_every
    bar = _progress_bar(cfg, train_split, enabled=progress, first_epoch=first)
    try:
        for epoch in range(first, cfg.train.epochs):
            start = time.perf_counter()
            lr = learning_rate(cfg.train, epoch)
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected below
                monitor = _epoch(
                    model,
                    objective,
                    optimizer,
                    train_split,
                    cfg.train.batch_size,
                    lr,
                    rng,
                    bar,
                    cfg.train.shuffle,
                    cfg.train.mixup_alpha,
                )
            row: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, **monitor.row()}
            row |= _weight_norms(model)
            row |= _validate(model, objective, val_split, cfg.eval.bins)
            row["seconds"] = time.perf_counter() - start
            result.history.append(row)
            if on_epoch is not None:
                on_epoch(row)
            if bar is not None:
                bar.set_postfix(
                    epoch=epoch + 1,
                    loss=f"{row['train_loss']:.4f}",
                    acc=f"{row['train_accuracy']:.3f}",
                    val_acc=_fmt(row["val_accuracy"]),
                    refresh=False,
                )
            if not _finite(model, row["train_loss"]):
                result.state = State.DIVERGED
                result.last_finite_loss = _last_finite_loss(result.history)
                last = result.last_finite_loss
                result.message = (
                    f"training loss became {row['train_loss']} in epoch "
                    f"{epoch + 1} (lr {lr:g}); the parameters are not finite; "
                    "last finite training loss: " + ("none" if last is None else f"{last:.6g}")
                )
                break
            if on_checkpoint is not None and every and (epoch + 1) % every == 0:
                on_checkpoint(
                    Checkpoint(
                        epoch + 1,
                        model.arrays(),
                        optimizer.state(),
                        dict(rng.bit_generator.state),
                        result.history,
                    )
                )
    finally:
        if bar is not None:
            bar.close()
    return result


def _epoch(
    model: MLP,
    objective: Objective,
    optimizer,
    split: Split,
    batch: int,
    lr: float,
    rng: np.random.Generator,
    bar,
    shuffle: bool = True,
    mixup: float = 0.0,
) -> _Monitor:
    """One pass over a fresh permutation of ``split`` (file order without ``shuffle``), with
    mixup when ``mixup`` > 0; returns the monitored running sums.

    A step is a fixed handful of numpy calls writing into a
    :class:`~mnistexp.learning.model.Workspace`
    (at batch size 1, 50k steps per epoch, every call costs about 1 us of 60-200 us).
    """
    n = split.x.shape[0]
    ws = workspace(model, batch)
    t_buf = np.empty((batch, split.t.shape[1]), split.t.dtype)
    scale = optimizer.grad_scale(lr)
    every = max(1, n // MONITOR_SAMPLES)
    keep = split.t.shape[1] if mixup else 0  # mixed targets are not the split's: keep them
    record = _Recorder(n, batch, every, ws.z.shape[1], ws.z.dtype, keep)
    # Batch of one with plain SGD: update only the first-layer weight rows of non-zero pixels,
    # exactly (see model.backward). Measured per step: 784-100-10 160 -> 75 us, 784-800-10
    # 1050 -> 200 us (the dense (784, 1) @ (1, n) gradient and its update dominate).
    sparse = batch == 1 and getattr(optimizer, "row_sparse", False)
    rows = None
    loss, backprop, per_batch = objective.loss, objective.backprop, objective.scheme.per_batch
    perm = rng.permutation(n) if shuffle else np.arange(n)
    with _blas_threads(model, batch):
        for step, lo in enumerate(range(0, n, batch)):
            idx = perm[lo : lo + batch]
            m = idx.shape[0]
            # np.take with out= gathers straight into the reused buffers (no fancy-index copy)
            np.take(split.x, idx, axis=0, out=ws.h[0][:m], mode="clip")
            t = np.take(split.t, idx, axis=0, out=t_buf[:m], mode="clip")
            if mixup:
                _mix(ws.h[0][:m], t, rng, mixup)
            z = forward(model, ws, m)
            a = loss.activate(z, ws.a[:m])
            if per_batch:  # targets that depend on the model's current outputs
                t = objective.targets(t, split.y[idx], z)
            d = objective.delta(z, a, t, ws.d[-1][:m])
            if step % every == 0:
                record(z, idx, t)  # copies; the statistics are computed once, at the end
                if bar is not None:
                    bar.update(min(every, -(-n // batch) - step))
            d *= scale / m  # mean over the batch, and lr for SGD: folded in once
            if backprop.needs_error:  # the raw output error a - t, scaled the same way
                np.multiply(np.subtract(a, t, out=ws.e[:m]), scale / m, out=ws.e[:m])
            if sparse:
                rows = np.flatnonzero(ws.h[0][0])
            optimizer.step(backprop(model, ws, m, rows), lr, rows)
    return record.monitor(objective, split)


def _mix(x: np.ndarray, t: np.ndarray, rng: np.random.Generator, alpha: float) -> None:
    """Mixup (Zhang et al. 2018), in place: each row of the batch x (m, d) and t (m, K) becomes
    ``lam * row + (1 - lam) * partner``, the partners a permutation of the batch and
    ``lam ~ Beta(alpha, alpha)`` drawn once per batch from the run's generator."""
    lam = rng.beta(alpha, alpha)
    partner = rng.permutation(x.shape[0])
    for arr in (x, t):
        other = arr[partner]  # a copy (fancy indexing): the rows are overwritten below
        arr *= lam
        other *= 1 - lam
        arr += other


class _Recorder:
    """The logits and sample indices of the monitored batches, kept for one batched summary.

    Copying (m, K) logits costs a fraction of a microsecond; computing the loss, accuracy and
    gradient statistics per monitored batch cost ~40 us (0.2 s an epoch at batch size 1).
    Under mixup the batch's targets (``target_columns`` wide) are kept too (they are not the
    split's), and the accuracy is against the larger part of each mixed pair (the argmax of
    its hard targets).
    """

    def __init__(
        self, n: int, batch: int, every: int, k: int, dtype, target_columns: int = 0
    ) -> None:
        steps = -(-n // batch)
        capacity = min(n, -(-steps // every) * batch)
        self.z = np.empty((capacity, k), dtype)
        self.idx = np.empty(capacity, np.intp)
        self.t = np.empty((capacity, target_columns), dtype) if target_columns else None
        self.size = 0

    def __call__(self, z: np.ndarray, idx: np.ndarray, t: np.ndarray) -> None:
        end = self.size + z.shape[0]
        self.z[self.size : end] = z
        self.idx[self.size : end] = idx
        if self.t is not None:
            self.t[self.size : end] = t
        self.size = end

    def monitor(self, objective: Objective, split: Split) -> _Monitor:
        """The running sums over every recorded sample, as ``_Monitor.add`` defines them."""
        monitor = _Monitor()
        z, idx = self.z[: self.size], self.idx[: self.size]
        if self.t is None:
            y = split.y[idx]
            t = objective.targets(split.t[idx], y, z)
        else:  # mixed targets, already through the per-batch hook
            t = self.t[: self.size]
            y = t[:, : z.shape[1]].argmax(axis=1)
        a = objective.loss.activate(z)
        monitor.add(objective.loss, z, a, t, y, objective.delta(z, a, t, np.empty_like(z)))
        return monitor


# When a step gets the library's BLAS threads rather than one. Measured on a 2-core machine
# with benchmarks/blas_threads.py (one trainer epoch over 50k images, a fresh process per
# setting, median (min-max) of 6; --busy keeps the other core busy):
# - 784-100-10 at batch 32 (2.5M multiply-adds a step): 0.17 s (0.16-0.30) on two threads,
#   0.22 s on one, but 0.56 s (up to 0.91) on two when the other core is busy; stays on one.
# - 784-800-10 at batch 32 (20M): bimodal on two, 1.46 s (0.75-1.63) against a steady 1.25 s
#   on one, and 4.3 s against 1.3 s busy; stays on one.
# - 784-100-10 at batch 128 (10M): 0.13 s on two, 0.17 s on one; 0.35 s against 0.17 s busy.
#   Two threads from 128 rows, where they were faster in every idle run.
# - 784-800-10 at batch 128 (81M): 0.59 s on two, 1.06 s on one; 2.4 s against 1.0 s busy.
# The thread count changes the last bits of a matmul (OpenBLAS picks other kernels and tiles),
# so this rule is part of a run's numbers: it depends only on the config, never on the load.
_THREADS_FROM_MACS = 32_000_000  # at any batch size
_THREADS_FROM_ROWS, _THREADS_FROM_ROWS_MACS = 128, 8_000_000  # or 128+ rows and 8M+


def _one_blas_thread(model: MLP, batch: int) -> bool:
    """Whether a step of ``batch`` rows runs on one BLAS thread (the rule above; earlier
    releases kept batches of 128 or more under 32M multiply-adds on one too)."""
    macs = batch * sum(w.size for w in model.weights)
    wide = batch >= _THREADS_FROM_ROWS and macs >= _THREADS_FROM_ROWS_MACS
    return macs < _THREADS_FROM_MACS and not wide


def _blas_threads(model: MLP, batch: int):
    """A context with one BLAS thread for small steps, else the library default."""
    if _one_blas_thread(model, batch):
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


def _weight_norms(model: MLP) -> dict[str, float]:
    """Frobenius norm of each weight matrix after the epoch: ``weight_norm_0`` is the first."""
    return {f"weight_norm_{i}": float(np.linalg.norm(w)) for i, w in enumerate(model.weights)}


def _validate(
    model: MLP, objective: Objective, split: Split | None, bins: int
) -> dict[str, float | None]:
    """Validation loss (the training loss function), accuracy, NLL and ECE for the history."""
    keys = ("val_loss", "val_accuracy", "val_nll", "val_ece")
    if split is None:
        return dict.fromkeys(keys)
    with np.errstate(over="ignore", invalid="ignore"):
        z = logits(model, split.x)
        loss = objective.loss
        a = loss.activate(z)
        value = loss.value(z, a, objective.targets(split.t, split.y, z))
    if not np.isfinite(z).all():
        return {
            "val_loss": value,
            "val_accuracy": float("nan"),
            "val_nll": float("nan"),
            "val_ece": float("nan"),
        }
    pred = z.argmax(axis=1)
    log_p = metrics.log_probabilities(z, loss.output_name)
    probs = np.exp(log_p)
    conf = probs[np.arange(len(pred)), pred]
    return {
        "val_loss": value,
        "val_accuracy": float(np.mean(pred == split.y)),
        "val_nll": metrics.nll(probs, split.y, log_probs=log_p),
        "val_ece": metrics.ece(conf, pred == split.y, bins),
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _last_finite_loss(history: list[dict]) -> float | None:
    """The most recent finite training loss of ``history`` (None if there is none)."""
    finite = [row["train_loss"] for row in history if math.isfinite(row["train_loss"])]
    return finite[-1] if finite else None


def _finite(model: MLP, train_loss: float) -> bool:
    return math.isfinite(train_loss) and all(np.isfinite(w).all() for w in model.weights)


def _progress_bar(cfg: ExperimentConfig, split: Split, enabled: bool, first_epoch: int = 0):
    if not enabled:
        return None
    per_epoch = -(-split.x.shape[0] // cfg.train.batch_size)
    return tqdm(
        total=per_epoch * cfg.train.epochs,
        initial=per_epoch * first_epoch,
        desc=cfg.name,
        unit="step",
        leave=False,
        mininterval=0.2,
    )
