"""One trainer epoch on one BLAS thread against the library default, per network and batch size.

The evidence behind ``trainer._blas_threads``: for each cell, a fresh process per thread
setting (alternating, three rounds), each timing three epochs of ``trainer._epoch`` over the
50k training images (784-H-10 sigmoid, softmax + cross-entropy, SGD lr 0.1) and reporting the
last two; median, min and max of the six. ``--busy`` keeps one core busy with a spinning
process meanwhile, as another job on the machine would.

    python benchmarks/blas_threads.py                  # 784-{100,800}-10 at batch 32, 64, 128
    python benchmarks/blas_threads.py --busy 100/128 800/128
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CELLS = ("100/32", "100/64", "100/128", "800/32", "800/64", "800/128")


def child(hidden: int, batch: int, threads: int) -> list[float]:
    """Seconds of three epochs on ``threads`` BLAS threads (the first warms up)."""
    from speed import Cell, loop_data, mnistexp_epoch
    from threadpoolctl import threadpool_limits

    from mnistexp.pipeline import trainer

    cfg, train, _ = loop_data(Cell(hidden, batch))
    trainer._blas_threads = lambda model, batch: threadpool_limits(threads, user_api="blas")
    return [mnistexp_epoch(cfg, train, seed=0)[0] for _ in range(3)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cells", nargs="*", default=CELLS, help="HIDDEN/BATCH, e.g. 100/128")
    p.add_argument("--busy", action="store_true", help="keep one core busy meanwhile")
    p.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        times: dict[tuple[str, int], list[float]] = {}
        for _ in range(3):
            for cell in args.cells:
                hidden, batch = cell.split("/")
                for threads in (1, 2):
                    cmd = [sys.executable, __file__, "--child", hidden, batch, str(threads)]
                    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                    times.setdefault((cell, threads), []).extend(json.loads(out)[1:])
    finally:
        if hog is not None:
            hog.kill()
    print(
        f"| 784-H-10 / batch | threads | epoch s median (min-max){' (one core busy)' * args.busy} |"
    )
    print("| --- | --- | --- |")
    for (cell, threads), values in times.items():
        spread = f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"
        print(f"| {cell} | {threads} | {spread} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
