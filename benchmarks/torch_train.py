"""The PyTorch peer of ``mnistexp train``, end to end in one process (issue 20).

What a PyTorch user would write to train the same MLP on the same split: the MNIST IDX files
decoded with numpy, inputs scaled to [0, 1] as float32 tensors, the last 10,000 training
images held out for validation (as mnistexp's ``data.validation`` default), minibatches from a
fresh ``torch.randperm`` each epoch gathered with ``index_select`` (no DataLoader), ``nn.Linear``
layers, ``F.cross_entropy``, ``torch.optim.SGD``; after every epoch the validation loss and
accuracy, as mnistexp records them; at the end the test accuracy. No autocast, no compile.

    python benchmarks/torch_train.py --hidden 100 --activation sigmoid --batch 32 --epochs 5

Prints one JSON line: epochs, the seconds of each epoch (training plus validation) and the
final test accuracy. The harness (``benchmarks/speed.py``) times the whole process from outside
and differences two epoch counts, exactly as it times ``mnistexp train``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = 10000


def read_idx(path: Path) -> np.ndarray:
    """An MNIST IDX file (gzipped or not) as a uint8 array of its declared shape."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    sys.exit(f"torch_train.py: {stem}[.gz] not found in {folder}")


def load(folder: Path) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_val, y_val, x_test, y_test); x float32 (n, 784) in [0, 1]."""

    def images(stem: str) -> torch.Tensor:
        a = read_idx(find(folder, stem))
        return torch.from_numpy(a.reshape(len(a), -1).astype(np.float32) / np.float32(255))

    def labels(stem: str) -> torch.Tensor:
        return torch.from_numpy(read_idx(find(folder, stem)).astype(np.int64))

    x, y = images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte")
    x_test, y_test = images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte")
    cut = len(x) - VALIDATION
    return x[:cut], y[:cut], x[cut:], y[cut:], x_test, y_test


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--activation", choices=("sigmoid", "relu"), default="sigmoid")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path, default=None)
    args = p.parse_args(argv)
    folder = args.data_dir or Path(
        os.environ.get("MNISTEXP_DATA_DIR", ROOT.parent / "shared" / "data" / "mnist")
    )

    torch.manual_seed(args.seed)
    x, y, x_val, y_val, x_test, y_test = load(folder)
    act = torch.nn.Sigmoid() if args.activation == "sigmoid" else torch.nn.ReLU()
    net = torch.nn.Sequential(
        torch.nn.Linear(784, args.hidden), act, torch.nn.Linear(args.hidden, 10)
    )
    opt = torch.optim.SGD(net.parameters(), lr=args.lr)
    seconds, history = [], []
    for _ in range(args.epochs):
        start = time.perf_counter()
        perm = torch.randperm(len(x))
        for lo in range(0, len(x), args.batch):
            idx = perm[lo : lo + args.batch]
            loss = F.cross_entropy(net(x.index_select(0, idx)), y.index_select(0, idx))
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            z = net(x_val)
            history.append(
                {
                    "val_loss": float(F.cross_entropy(z, y_val)),
                    "val_accuracy": float((z.argmax(dim=1) == y_val).float().mean()),
                }
            )
        seconds.append(time.perf_counter() - start)
    with torch.no_grad():
        test_accuracy = float((net(x_test).argmax(dim=1) == y_test).float().mean())
    print(
        json.dumps(
            {
                "epochs": args.epochs,
                "seconds": seconds,
                "history": history,
                "test_accuracy": test_accuracy,
                "threads": torch.get_num_threads(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
