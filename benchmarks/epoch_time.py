"""One training epoch of mnistexp's trainer against the equivalent PyTorch loop (issue 7).

For MLPs 784-100-10 and 784-800-10, batch sizes 1, 32 and 128, sigmoid and relu hidden units,
softmax + cross-entropy, plain SGD (lr 0.1): the median, min and max wall time of one epoch
over the 60k MNIST training images, and the ratio mnistexp / torch. Only the epoch loop is
timed (data is loaded, scaled and, for torch, turned into float32 tensors beforehand).

The PyTorch loop is what a user would write: data preloaded as float32 tensors, minibatches
gathered from a fresh ``torch.randperm`` with ``index_select``, no DataLoader, ``nn.Linear``
layers, ``F.cross_entropy``, ``torch.optim.SGD``, default thread count. Both start every repeat
from the *same* initial weights (mnistexp's init copied into torch), so the test accuracy
after one epoch differs only by the order of the samples: speed must not come from doing less.

Also printed: a float32 matmul peak (a large ``np.matmul``) and the GFLOP/s that 784-800-10 at
batch 128 achieves. Runs without torch (then only mnistexp's numbers). Examples:

    python benchmarks/epoch_time.py                    # the full table (~10 minutes)
    python benchmarks/epoch_time.py --quick            # 10k images, 1 repeat
    python benchmarks/epoch_time.py --cells 800 --cells b128 --repeats 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"
if "MNISTEXP_DATA_DIR" not in os.environ and (DEFAULT_DATA / "train-images-idx3-ubyte.gz").exists():
    os.environ["MNISTEXP_DATA_DIR"] = str(DEFAULT_DATA)

from mnistexp import config, trainer  # noqa: E402
from mnistexp.losses import make_loss  # noqa: E402
from mnistexp.model import init_mlp, logits  # noqa: E402
from mnistexp.optim import make_optimizer  # noqa: E402
from mnistexp.schema import LossConfig  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the benchmark still runs, with mnistexp's numbers only
    torch = None

HIDDEN = (100, 800)
BATCHES = (1, 32, 128)
ACTIVATIONS = ("sigmoid", "relu")
INIT = {"sigmoid": "xavier", "relu": "he"}
LR = 0.1
N_CLASSES = 10


@dataclass(frozen=True)
class Cell:
    hidden: int
    batch: int
    activation: str

    @property
    def name(self) -> str:
        return f"784-{self.hidden}-10 b{self.batch} {self.activation}"

    def flops(self, n: int) -> float:
        """Arithmetic of one epoch as issue 7 counts it: forward, weight gradients, backprop."""
        layers = [(784, self.hidden), (self.hidden, N_CLASSES)]
        macs = sum(i * o for i, o in layers)
        return n * (2 * macs + 2 * macs + 2 * self.hidden * N_CLASSES)


@dataclass
class Data:
    x: np.ndarray  # (n, 784) float32 in [0, 1]
    y: np.ndarray  # (n,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    real: bool

    def split(self, n: int | None = None) -> trainer.Split:
        x, y = self.x[:n], self.y[:n]
        t = np.zeros((len(y), N_CLASSES), np.float32)
        t[np.arange(len(y)), y] = 1.0
        return trainer.Split(x, y, t)


@dataclass
class Result:
    cell: Cell
    mnistexp: list[float] = field(default_factory=list)
    torch: list[float] = field(default_factory=list)
    acc_mnistexp: list[float] = field(default_factory=list)
    acc_torch: list[float] = field(default_factory=list)


# --------------------------------------------------------------------------- data


def load_data() -> Data:
    """Real MNIST through mnistexp's loader, else random uint8 images of the same shape."""
    from mnistexp import data
    from mnistexp.errors import DataError

    try:
        ds = data.load(progress=False)
        images, labels = ds.train_images, ds.train_labels
        test_images, test_labels = ds.test_images, ds.test_labels
        real = True
    except DataError as exc:
        print(
            f"NOTE: MNIST not available ({exc}); timing on random uint8 data of the same "
            "shape (accuracies are meaningless)"
        )
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (60000, 784), dtype=np.uint8)
        images[rng.random(images.shape) < 0.8] = 0  # MNIST-like sparsity
        labels = rng.integers(0, 10, 60000, dtype=np.uint8)
        test_images, test_labels = images[:10000], labels[:10000]
        real = False

    def scale(a: np.ndarray) -> np.ndarray:
        return a.reshape(len(a), -1).astype(np.float32) / np.float32(255)

    return Data(
        scale(images),
        labels.astype(np.int64),
        scale(test_images),
        test_labels.astype(np.int64),
        real,
    )


# --------------------------------------------------------------------------- the two loops


def make_config(cell: Cell) -> config.ExperimentConfig:
    return config.from_dict(
        {
            "model": {
                "hidden": [cell.hidden],
                "activation": cell.activation,
                "init": INIT[cell.activation],
            },
            "loss": {"type": "cross_entropy", "output": "softmax"},
            "train": {"batch_size": cell.batch, "lr": LR, "optimizer": "sgd", "epochs": 1},
        }
    )


def initial_model(cell: Cell, seed: int):
    rng = np.random.default_rng(seed)
    return init_mlp(
        [784, cell.hidden, N_CLASSES], cell.activation, INIT[cell.activation], True, rng, np.float32
    )


def run_mnistexp(cell: Cell, split: trainer.Split, seed: int):
    """(seconds of one epoch, trained model): trainer._epoch, as trainer.train calls it."""
    cfg = make_config(cell)
    model = initial_model(cell, seed)
    loss = make_loss(LossConfig("cross_entropy", "softmax"))
    optimizer = make_optimizer(model.parameters(), cfg.train)
    rng = np.random.default_rng(seed + 1000)
    start = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):
        trainer._epoch(model, loss, optimizer, split, cell.batch, LR, rng, None)
    return time.perf_counter() - start, model


def torch_net(cell: Cell, seed: int):
    """nn.Sequential with mnistexp's initial weights (nn.Linear stores W as (out, in))."""
    model = initial_model(cell, seed)
    act = torch.nn.Sigmoid() if cell.activation == "sigmoid" else torch.nn.ReLU()
    net = torch.nn.Sequential(
        torch.nn.Linear(784, cell.hidden), act, torch.nn.Linear(cell.hidden, N_CLASSES)
    )
    with torch.no_grad():
        for layer, w, b in zip((net[0], net[2]), model.weights, model.biases, strict=True):
            layer.weight.copy_(torch.from_numpy(w.T.copy()))
            layer.bias.copy_(torch.from_numpy(b))
    return net


def run_torch(cell: Cell, x: torch.Tensor, y: torch.Tensor, seed: int):
    """(seconds of one epoch, trained net): the loop a PyTorch user would write."""
    net = torch_net(cell, seed)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(seed + 1000)
    n, batch = x.shape[0], cell.batch
    start = time.perf_counter()
    perm = torch.randperm(n, generator=gen)
    for lo in range(0, n, batch):
        idx = perm[lo : lo + batch]
        loss = F.cross_entropy(net(x.index_select(0, idx)), y.index_select(0, idx))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start, net


def accuracy_mnistexp(model, data: Data) -> float:
    return float(np.mean(logits(model, data.x_test).argmax(axis=1) == data.y_test))


def accuracy_torch(net, data: Data) -> float:
    with torch.no_grad():
        pred = net(torch.from_numpy(data.x_test)).argmax(dim=1).numpy()
    return float(np.mean(pred == data.y_test))


# --------------------------------------------------------------------------- measuring


def matmul_peak(size: int = 4096, repeats: int = 3) -> float:
    """Best float32 GFLOP/s of one large ``np.matmul`` (all BLAS threads)."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)  # warm up threads and pages
    best = min(_timed(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(cell: Cell, data: Data, n: int, repeats: int, use_torch: bool) -> Result:
    """Alternate mnistexp and torch repeats, so drift on a shared machine hits both alike."""
    result = Result(cell)
    split = data.split(n)
    warm = data.split(min(n, 2000 * cell.batch // 32 + 500))
    run_mnistexp(cell, warm, 0)
    if use_torch:
        x, y = torch.from_numpy(split.x), torch.from_numpy(split.y)
        run_torch(cell, x[: warm.x.shape[0]], y[: warm.x.shape[0]], 0)
    for seed in range(repeats):
        seconds, model = run_mnistexp(cell, split, seed)
        result.mnistexp.append(seconds)
        result.acc_mnistexp.append(accuracy_mnistexp(model, data))
        if use_torch:
            seconds, net = run_torch(cell, x, y, seed)
            result.torch.append(seconds)
            result.acc_torch.append(accuracy_torch(net, data))
    return result


def measure_in_child(cell: Cell, repeats: int, quick: bool, use_torch: bool) -> Result:
    """:func:`measure` in a fresh process. Thread pools outlive a cell: after torch's batch-1
    runs, OpenBLAS in the same process ran 784-800-10 at batch 128 in 1.8 s instead of 1.1 s,
    so every cell starts from a clean process (each library still alternates within it)."""
    cmd = [sys.executable, __file__, "--child", "--cells", cell.name, "--repeats", str(repeats)]
    cmd += ["--quick"] * quick + ["--no-torch"] * (not use_torch)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    raw = json.loads(out.strip().splitlines()[-1])
    return Result(cell, *(raw[k] for k in ("mnistexp", "torch", "acc_mnistexp", "acc_torch")))


# --------------------------------------------------------------------------- reporting


def _spread(times: list[float]) -> str:
    return f"{statistics.median(times):7.3f} ({min(times):.3f}-{max(times):.3f})"


def _acc(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{100 * statistics.mean(values):.2f}" + (
        f"±{100 * statistics.stdev(values):.2f}" if len(values) > 1 else ""
    )


def print_row(r: Result) -> None:
    ratio = "-"
    if r.torch:
        ratio = f"{statistics.median(r.mnistexp) / statistics.median(r.torch):.2f}"
    torch_col = _spread(r.torch) if r.torch else "-"
    print(
        f"| {r.cell.name:<24} | {_spread(r.mnistexp):>24} | {torch_col:>24} | {ratio:>5} "
        f"| {_acc(r.acc_mnistexp):>11} | {_acc(r.acc_torch):>11} |",
        flush=True,
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_header(n: int, repeats: dict[int, int], real: bool, use_torch: bool) -> None:
    import threadpoolctl

    blas = threadpoolctl.threadpool_info()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"python {platform.python_version()}; numpy {np.__version__} "
        f"({', '.join(sorted({b['internal_api'] for b in blas}))})"
        + (
            f"; torch {torch.__version__} ({torch.get_num_threads()} threads)"
            if use_torch
            else "; torch not used"
        )
        + f"; load average {_load()} (others' work skews a shared machine)"
    )
    print(
        f"data: {'MNIST' if real else 'RANDOM uint8 (MNIST missing)'}, one epoch over {n} "
        f"images; repeats per batch size {repeats}; lr {LR}; test accuracy after one epoch "
        "(mean±sd over repeats, same initial weights for both)"
    )
    print(
        "| cell                     | mnistexp s median (min-max) | torch s median (min-max) "
        "| ratio | acc mnistexp | acc torch |"
    )
    print("| --- | --- | --- | --- | --- | --- |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="one repeat over 10k images: a smoke test, not the table",
    )
    p.add_argument("--repeats", type=int, help="repeats per cell (default 5; 3 at batch 1)")
    p.add_argument(
        "--cells",
        action="append",
        default=[],
        help="keep cells whose name contains every given text, e.g. '800' 'b128'",
    )
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="measure every cell in this process (default: a fresh process per cell)",
    )
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    use_torch = torch is not None and not args.no_torch
    data = load_data()
    n = 10000 if args.quick else data.x.shape[0]
    repeats = {b: args.repeats or (1 if args.quick else 3 if b == 1 else 5) for b in BATCHES}
    cells = [Cell(h, b, a) for h in HIDDEN for b in BATCHES for a in ACTIVATIONS]
    cells = [c for c in cells if all(f in c.name for f in args.cells)]
    if args.child:
        (cell,) = cells
        result = measure(cell, data, n, repeats[cell.batch], use_torch)
        print(json.dumps(dataclasses.asdict(result)))
        return 0
    print_header(n, repeats, data.real, use_torch)
    results = []
    for cell in cells:
        if args.in_process:
            results.append(measure(cell, data, n, repeats[cell.batch], use_torch))
        else:
            results.append(measure_in_child(cell, repeats[cell.batch], args.quick, use_torch))
        print_row(results[-1])

    print(f"load average at the end: {_load()}")
    peak = matmul_peak()
    print(f"\nfloat32 matmul peak (4096^3 np.matmul, best of 3): {peak:.0f} GFLOP/s")
    for r in results:
        if r.cell.hidden == 800 and r.cell.batch == 128:
            rate = r.cell.flops(n) / statistics.median(r.mnistexp) / 1e9
            line = f"{r.cell.name}: {r.cell.flops(n) / 1e9:.1f} GFLOP/epoch, mnistexp {rate:.0f} "
            line += f"GFLOP/s = {rate / peak:.0%} of peak"
            if r.torch:
                trate = r.cell.flops(n) / statistics.median(r.torch) / 1e9
                line += f"; torch {trate:.0f} GFLOP/s = {trate / peak:.0%}"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
