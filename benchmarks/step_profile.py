"""Where a training step's time goes: each operation of a plain-SGD step, timed on its own.

The step of ``trainer._epoch`` for a 784-H-10 sigmoid MLP with softmax + cross-entropy, taken
apart into the same numpy calls on the same buffers (``model.workspace``): the batch gather,
the three large matmuls, the small ones, the activations, softmax and delta, the bias sums and
the SGD update. Each is timed with ``perf_counter`` around it over one epoch of 50,000 random
MNIST-like images (80% zeros), after a warm-up epoch, under the BLAS thread rule the trainer
uses for that step. The timer costs about 0.1 us per operation; the total is close to, not
equal to, an epoch of the real loop (``benchmarks/speed.py``).

    python benchmarks/step_profile.py 800 128
    python benchmarks/step_profile.py 100 128 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mnistexp.learning.model import ACTIVATIONS, init_mlp, workspace
from mnistexp.learning.outputs import softmax
from mnistexp.pipeline.trainer import _blas_threads

N = 50000


def profile(hidden: int, batch: int, threads: int | None) -> dict[str, float]:
    """Seconds per operation over one epoch (the second of two)."""
    rng = np.random.default_rng(0)
    x = (rng.random((N, 784)) * (rng.random((N, 784)) < 0.2)).astype(np.float32)
    t = np.eye(10, dtype=np.float32)[rng.integers(0, 10, N)]
    model = init_mlp([784, hidden, 10], "sigmoid", "xavier", True, rng, np.float32)
    act = ACTIVATIONS["sigmoid"]
    ws, t_buf = workspace(model, batch), np.empty((batch, 10), np.float32)
    (w0, b0), (w1, b1) = zip(model.weights, model.biases, strict=True)
    g_w0, g_b0, g_w1, g_b1 = ws.grads
    x_b, h, z, d1, d0 = ws.h[0], ws.h[1], ws.z, ws.d[1], ws.d[0]
    scale = np.float32(0.1 / batch)
    spent: dict[str, float] = {}
    params = [p for p, _ in model.parameters()]

    def gather(idx):
        np.take(x, idx, 0, x_b, "clip")
        np.take(t, idx, 0, t_buf, "clip")

    def hidden_units(idx):
        np.add(h, b0, out=h)
        act.forward(h, h)

    def logits(idx):
        np.matmul(h, w1, out=z)
        np.add(z, b1, out=z)

    def output_delta(idx):
        softmax(z, ws.a)
        np.subtract(ws.a, t_buf, out=d1)
        np.multiply(d1, scale, out=d1)

    def gradient_w1(idx):
        np.sum(d1, axis=0, out=g_b1)
        np.matmul(h.T, d1, out=g_w1)

    def gradient_w0(idx):
        np.sum(d0, axis=0, out=g_b0)
        np.matmul(x_b.T, d0, out=g_w0)

    def update(idx):
        for p, g in zip(params, ws.grads, strict=True):
            np.subtract(p, g, out=p)

    steps = [
        ("gather x and t", gather),
        ("matmul x W0 (large)", lambda idx: np.matmul(x_b, w0, out=h)),
        ("bias and sigmoid", hidden_units),
        ("matmul h W1 (small)", logits),
        ("softmax and delta", output_delta),
        ("gradient W1 (small)", gradient_w1),
        ("delta to hidden (small)", lambda idx: np.matmul(d1, w1.T, out=d0)),
        ("sigmoid slope", lambda idx: act.backprop(h, d0)),
        ("gradient W0 (large)", gradient_w0),
        ("SGD update", update),
    ]
    limits = threadpool_limits(threads, user_api="blas") if threads else _blas_threads(model, batch)
    with limits, np.errstate(over="ignore"):
        for _ in range(2):
            spent = dict.fromkeys((name for name, _ in steps), 0.0)
            perm = rng.permutation(N)
            for lo in range(0, N - batch + 1, batch):
                idx = perm[lo : lo + batch]
                for name, op in steps:
                    start = time.perf_counter()
                    op(idx)
                    spent[name] += time.perf_counter() - start
    return spent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("hidden", type=int)
    p.add_argument("batch", type=int)
    p.add_argument("--threads", type=int, help="BLAS threads (default: the trainer's rule)")
    args = p.parse_args(argv)
    spent = profile(args.hidden, args.batch, args.threads)
    total, steps = sum(spent.values()), N // args.batch
    print(f"784-{args.hidden}-10 sigmoid, batch {args.batch}: {total:.3f} s an epoch of {N}")
    print("| operation | s/epoch | share | us/step |")
    print("| --- | --- | --- | --- |")
    for name, seconds in spent.items():
        print(f"| {name} | {seconds:.3f} | {seconds / total:.0%} | {1e6 * seconds / steps:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
