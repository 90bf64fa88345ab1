"""How long a second ``data.load()`` of real MNIST takes in a new process (issue 17:
the verified cache must keep it under 0.05 s).

The first process decodes, verifies and writes the sealed cache into a fresh temporary cache
folder; each further process loads from it. Printed: the median, min and max wall and CPU
time of ``data.load`` over the repeats (the import of mnistexp is not timed).

    python benchmarks/data_load.py --repeats 15
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"
SCRIPT = (
    "import time; from mnistexp import data; t, c = time.perf_counter(), time.process_time(); "
    "data.load('mnist'); print(time.perf_counter() - t, time.process_time() - c)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.setdefault("MNISTEXP_DATA_DIR", str(DEFAULT_DATA))
    with tempfile.TemporaryDirectory() as cache:
        env["MNISTEXP_CACHE_DIR"] = cache
        runs = []
        for _ in range(args.repeats + 1):  # the first fills the cache
            out = subprocess.run(
                [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
            ).stdout.split()
            runs.append((float(out[0]), float(out[1])))
    first, rest = runs[0], runs[1:]
    print(f"first load: {first[0]:.3f} s wall, {first[1]:.3f} s CPU")
    for i, name in enumerate(("wall", "CPU")):
        times = [r[i] for r in rest]
        print(
            f"second load, {name}: median {statistics.median(times):.4f} s "
            f"(min {min(times):.4f}, max {max(times):.4f}, {len(times)} processes)"
        )


if __name__ == "__main__":
    main()
