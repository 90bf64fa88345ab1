"""mnistexp against the PyTorch loop a user would write, each in a fresh process (issue 20).

Cells: MLPs 784-100-10 (batch 1, 32, 128) and 784-800-10 (batch 128), sigmoid hidden units,
softmax + cross-entropy, plain SGD with lr 0.1, on MNIST's first 50,000 training images with the
last 10,000 held out for validation (mnistexp's default split). Two measurements per cell:

* **loop**: one training epoch alone, timed inside the process around the epoch loop
  (mnistexp: ``trainer._epoch`` as ``train`` calls it; PyTorch: ``randperm``, ``index_select``,
  ``nn.Linear``, ``F.cross_entropy``, ``torch.optim.SGD``), both from the same initial weights;
  the test accuracy after that epoch shows neither does less.
* **end to end**: the wall time of a whole process, ``mnistexp train`` through its CLI and
  ``benchmarks/torch_train.py`` (the same training with per-epoch validation), for N epochs and
  for 1 epoch (N from 3 at batch 1 to 40, about 10 s of training); the per-epoch cost is
  (T_N - T_1) / (N - 1), so start-up, data loading and the final evaluation cancel and
  everything paid per epoch (monitoring, diagnostics, validation, history) stays in.

Every repeat starts a fresh process per library and measurement, the libraries alternating
(A B A B, the first one swapping each repeat), so neither's thread pools or caches touch the
other. A cell reports the median, min and max over the repeats of each library, and the ratio
mnistexp / PyTorch pair by pair (repeat i against repeat i): median (min-max). Both children
get the same environment; ``--threads N`` sets every BLAS/OpenMP thread variable and torch's
thread count to N for both (default: unset, each library's own default, stated in the header).
A float32 ``np.matmul`` peak is measured in its own process at the start and at the end, and
784-800-10 at batch 128 is given as a fraction of the higher one.

    python benchmarks/speed.py                     # the README table (about 15 minutes)
    python benchmarks/speed.py --cells b128 --repeats 5
    python benchmarks/speed.py --quick             # 2 repeats: a smoke test only

Without PyTorch installed only mnistexp's columns are filled.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"
LR = 0.1
N_CLASSES = 10
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Cell:
    hidden: int
    batch: int
    activation: str = "sigmoid"

    @property
    def name(self) -> str:
        return f"784-{self.hidden}-10 b{self.batch} {self.activation}"

    @property
    def init(self) -> str:
        return "xavier" if self.activation == "sigmoid" else "he"

    def flops(self, n: int) -> float:
        """Arithmetic of an epoch of n images: forward, weight gradients and the hidden delta
        (2 flops per multiply-add), as issue 7 counts it."""
        macs = 784 * self.hidden + self.hidden * N_CLASSES
        return n * (4 * macs + 2 * self.hidden * N_CLASSES)


CELLS = (Cell(100, 1), Cell(100, 32), Cell(100, 128), Cell(800, 128))


def epochs_for(cell: Cell) -> int:
    """N of the end-to-end difference, so that N epochs take about 10 s: a process's start-up
    varies by up to 2 s here (first-touch page faults of fresh memory in this VM), which
    (N - 1) divides."""
    return {1: 3, 32: 25}.get(cell.batch, 40 if cell.hidden == 100 else 10)


# --------------------------------------------------------------------------- children


def child_env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    if "MNISTEXP_DATA_DIR" not in env and DEFAULT_DATA.exists():
        env["MNISTEXP_DATA_DIR"] = str(DEFAULT_DATA)
    if threads is not None:
        env |= dict.fromkeys(THREAD_VARIABLES, str(threads))
        env["MNISTEXP_BENCH_TORCH_THREADS"] = str(threads)
    return env


def run_json(cmd: list[str], env: dict[str, str]) -> tuple[float, dict]:
    """(wall seconds of the whole process, its last stdout line as JSON)."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"speed.py: {' '.join(cmd[:4])}... failed:\n{done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


def loop_command(library: str, cell: Cell, seed: int) -> list[str]:
    child = ["--child", f"loop-{library}", "--seed", str(seed)]
    return [sys.executable, __file__, *child, "--cells", cell.name]


def train_command(library: str, cell: Cell, epochs: int, seed: int, runs: Path) -> list[str]:
    if library == "torch":
        flags = (
            f"--hidden {cell.hidden} --activation {cell.activation} --batch {cell.batch} "
            f"--epochs {epochs} --lr {LR} --seed {seed}"
        )
        return [sys.executable, str(ROOT / "benchmarks" / "torch_train.py"), *flags.split()]
    sets = {
        "model.hidden": f"[{cell.hidden}]",
        "model.activation": cell.activation,
        "model.init": cell.init,
        "train.batch_size": cell.batch,
        "train.lr": LR,
        "train.epochs": epochs,
    }
    cmd = [sys.executable, "-m", "mnistexp", "train", "--config", "configs/baseline.yaml"]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    return [*cmd, "--seed", str(seed), "--runs-dir", str(runs), "--no-progress", "--json"]


def loop_data(cell: Cell):
    """mnistexp's own training split of the cell's config, and its test split."""
    from mnistexp.data import datasets as data
    from mnistexp.pipeline.splits import make_splits

    cfg = _config(cell)
    train, _, test = make_splits(cfg, data.load(progress=False))
    return cfg, train, test


def _config(cell: Cell):
    from mnistexp.config import loading as config

    return config.load_config(
        str(ROOT / "configs" / "baseline.yaml"),
        [
            f"model.hidden=[{cell.hidden}]",
            f"model.activation={cell.activation}",
            f"model.init={cell.init}",
            f"train.batch_size={cell.batch}",
            f"train.lr={LR}",
        ],
    )


def _initial_model(cfg, seed: int):
    from mnistexp.learning.model import init_mlp

    rng = np.random.default_rng(seed)
    sizes = [784, *cfg.model.hidden, N_CLASSES]
    return init_mlp(sizes, cfg.model.activation, cfg.model.init, True, rng, np.float32)


def mnistexp_epoch(cfg, split, seed: int):
    """(seconds, trained model) of one ``trainer._epoch`` over ``split``, as ``train`` calls it,
    from the cell's initial weights for ``seed``."""
    from mnistexp.learning.objective import make_objective
    from mnistexp.learning.optim import make_optimizer
    from mnistexp.pipeline import trainer

    model = _initial_model(cfg, seed)
    optimizer = make_optimizer(model.parameters(), cfg.train)
    objective, rng = make_objective(cfg), np.random.default_rng(seed + 1000)
    start = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):
        trainer._epoch(model, objective, optimizer, split, cfg.train.batch_size, LR, rng, None)
    return time.perf_counter() - start, model


def child_loop_mnistexp(cell: Cell, seed: int) -> dict:
    from mnistexp.learning.model import logits
    from mnistexp.pipeline import trainer

    cfg, train, test = loop_data(cell)
    warm = trainer.Split(*(a[: 2000 * cell.batch // 32 + 500] for a in (train.x, train.y, train.t)))
    mnistexp_epoch(cfg, warm, seed)  # first-touch pages, thread pools, code paths
    seconds, model = mnistexp_epoch(cfg, train, seed)
    accuracy = float(np.mean(logits(model, test.x).argmax(axis=1) == test.y))
    return {"seconds": seconds, "accuracy": accuracy}


def child_loop_torch(cell: Cell, seed: int) -> dict:
    import torch
    import torch.nn.functional as F

    if "MNISTEXP_BENCH_TORCH_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["MNISTEXP_BENCH_TORCH_THREADS"]))
    cfg, train, test = loop_data(cell)
    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y.astype(np.int64))

    def net_from_mnistexp(seed: int):
        """nn.Sequential with mnistexp's initial weights (nn.Linear stores W as (out, in))."""
        model = _initial_model(cfg, seed)
        act = torch.nn.Sigmoid() if cell.activation == "sigmoid" else torch.nn.ReLU()
        net = torch.nn.Sequential(
            torch.nn.Linear(784, cell.hidden), act, torch.nn.Linear(cell.hidden, N_CLASSES)
        )
        with torch.no_grad():
            for layer, w, b in zip((net[0], net[2]), model.weights, model.biases, strict=True):
                layer.weight.copy_(torch.from_numpy(w.T.copy()))
                layer.bias.copy_(torch.from_numpy(b))
        return net

    def epoch(n: int, seed: int):
        net = net_from_mnistexp(seed)
        opt = torch.optim.SGD(net.parameters(), lr=LR)
        gen = torch.Generator().manual_seed(seed + 1000)
        start = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        for lo in range(0, n, cell.batch):
            idx = perm[lo : lo + cell.batch]
            loss = F.cross_entropy(net(x.index_select(0, idx)), y.index_select(0, idx))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return time.perf_counter() - start, net

    epoch(2000 * cell.batch // 32 + 500, seed)
    seconds, net = epoch(x.shape[0], seed)
    with torch.no_grad():
        pred = net(torch.from_numpy(test.x)).argmax(dim=1).numpy()
    return {"seconds": seconds, "accuracy": float(np.mean(pred == test.y))}


def child_peak(size: int = 4096, repeats: int = 5) -> dict:
    """Best float32 GFLOP/s of one large ``np.matmul`` with the default BLAS threads."""
    import threadpoolctl

    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)  # warm up threads and pages
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    blas = threadpoolctl.threadpool_info()
    return {
        "gflops": 2 * size**3 / best / 1e9,
        "blas": sorted(
            {f"{b['internal_api']} {b['version']} ({b['num_threads']} threads)" for b in blas}
        ),
    }


def child_versions() -> dict:
    out = {"numpy": np.__version__, "python": platform.python_version()}
    try:
        import torch

        if "MNISTEXP_BENCH_TORCH_THREADS" in os.environ:
            torch.set_num_threads(int(os.environ["MNISTEXP_BENCH_TORCH_THREADS"]))
        out |= {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    except ImportError:
        pass
    return out


# --------------------------------------------------------------------------- the harness


@dataclass
class Measured:
    """One library's numbers for one cell, a list entry per repeat."""

    loop: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    per_epoch: list[float] = field(default_factory=list)


def measure(cell: Cell, libraries: list[str], repeats: int, env) -> dict:
    out = {lib: Measured() for lib in libraries}
    n_epochs = epochs_for(cell)
    with tempfile.TemporaryDirectory(prefix="mnistexp-speed-") as tmp:
        for lib in libraries:  # untimed: page cache, compiled bytecode, the data cache
            run_json(train_command(lib, cell, 1, 0, Path(tmp) / f"{lib}-warm"), env)
        for r in range(repeats):
            order = libraries if r % 2 == 0 else libraries[::-1]
            for lib in order:  # the epoch loop alone: A B
                _, got = run_json(loop_command(lib, cell, r), env)
                out[lib].loop.append(got["seconds"])
                out[lib].accuracy.append(got["accuracy"])
            totals: dict[str, dict[int, float]] = {lib: {} for lib in libraries}
            for epochs in (n_epochs, 1):  # end to end: A B A B
                for lib in order:
                    runs = Path(tmp) / f"{lib}-{r}-{epochs}"
                    seconds, _ = run_json(train_command(lib, cell, epochs, r, runs), env)
                    totals[lib][epochs] = seconds
            for lib in libraries:
                t = totals[lib]
                out[lib].per_epoch.append((t[n_epochs] - t[1]) / (n_epochs - 1))
    return out


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def ratios(mine: list[float], peer: list[float]) -> str:
    pairs = [a / b for a, b in zip(mine, peer, strict=True)]
    return f"{statistics.median(pairs):.2f} ({min(pairs):.2f}-{max(pairs):.2f})"


def accuracy(values: list[float]) -> str:
    mean = 100 * statistics.mean(values)
    sd = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.2f}±{sd:.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="repeats per cell (default 5)")
    p.add_argument(
        "--cells",
        action="append",
        default=[],
        help="keep cells whose name contains every given text, e.g. 800, b128",
    )
    p.add_argument("--threads", type=int, help="threads for both libraries (default: theirs)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    p.add_argument("--quick", action="store_true", help="2 repeats: a smoke test, not the table")
    p.add_argument("--json", type=Path, help="also write every measurement to this file")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cells = [c for c in CELLS if all(f in c.name for f in args.cells)]
    if args.child:
        child = {
            "loop-mnistexp": lambda: child_loop_mnistexp(cells[0], args.seed),
            "loop-torch": lambda: child_loop_torch(cells[0], args.seed),
            "peak": child_peak,
            "versions": child_versions,
        }[args.child]
        print(json.dumps(child()))
        return 0

    env = child_env(args.threads)
    repeats = 2 if args.quick else args.repeats
    _, versions = run_json([sys.executable, __file__, "--child", "versions"], env)
    libraries = ["mnistexp"] + (["torch"] * ("torch" in versions and not args.no_torch))
    _, peak_start = run_json([sys.executable, __file__, "--child", "peak"], env)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load "
        f"average {os.getloadavg()[0]:.2f}; python {versions['python']}, numpy "
        f"{versions['numpy']} with {', '.join(peak_start['blas'])}"
        + (
            f"; torch {versions['torch']} ({versions['torch_threads']} threads)"
            if "torch" in libraries
            else "; PyTorch not measured"
        )
        + f"; threads {'default' if args.threads is None else args.threads} for both"
    )
    print(
        f"float32 matmul peak at the start: {peak_start['gflops']:.0f} GFLOP/s; {repeats} "
        "repeats per cell, a fresh process per library and measurement"
    )
    print()
    print(
        "| cell | loop mnistexp s | loop torch s | loop ratio | e2e mnistexp s/epoch "
        "| e2e torch s/epoch | e2e ratio | acc mnistexp | acc torch |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    results = {}
    for cell in cells:
        m = measure(cell, libraries, repeats, env)
        results[cell.name] = {lib: vars(v) for lib, v in m.items()}
        me, pt = m["mnistexp"], m.get("torch")
        cols = [
            cell.name,
            spread(me.loop),
            spread(pt.loop) if pt else "-",
            ratios(me.loop, pt.loop) if pt else "-",
            spread(me.per_epoch),
            spread(pt.per_epoch) if pt else "-",
            ratios(me.per_epoch, pt.per_epoch) if pt else "-",
            accuracy(me.accuracy),
            accuracy(pt.accuracy) if pt else "-",
        ]
        print("| " + " | ".join(cols) + " |", flush=True)
    _, peak_end = run_json([sys.executable, __file__, "--child", "peak"], env)
    peak = max(peak_start["gflops"], peak_end["gflops"])
    print(
        f"\nfloat32 matmul peak at the end: {peak_end['gflops']:.0f} GFLOP/s; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    for cell in cells:
        if cell.hidden == 800 and cell.batch == 128:
            gflop = cell.flops(50000) / 1e9
            for what in ("loop", "per_epoch"):
                rates = {
                    lib: gflop / statistics.median(v[what]) for lib, v in results[cell.name].items()
                }
                print(
                    f"{cell.name} ({gflop:.1f} GFLOP an epoch), {what.replace('_', ' ')}: "
                    + "; ".join(
                        f"{lib} {rate:.0f} GFLOP/s = {rate / peak:.0%} of peak"
                        for lib, rate in rates.items()
                    )
                )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "versions": versions,
                    "peak": [peak_start, peak_end],
                    "threads": args.threads,
                    "results": results,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
