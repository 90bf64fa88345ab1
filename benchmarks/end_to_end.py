"""What a user waits for outside the epoch loop (issue 7), each in a fresh process.

- ``mnistexp --help``: wall time of the subprocess (median of several);
- a second data load: ``mnistexp.data.datasets.load()`` in a fresh process once the decoded cache
  exists (import time excluded);
- the default ``configs/baseline.yaml`` run end to end (``mnistexp train``: load, 10 epochs,
  evaluation, writing the folder) into a temporary runs folder, and the child's peak resident
  memory (``ru_maxrss`` from ``os.wait4``) against the float32 dataset (70k x 784 x 4 bytes).

    python benchmarks/end_to_end.py
    python benchmarks/end_to_end.py --repeats 5 --train-repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"
FLOAT32_DATASET_MB = 70000 * 784 * 4 / 2**20  # 209 MiB = 220 MB

SECOND_LOAD = """
import time
from mnistexp.data import datasets as data
start = time.perf_counter()
data.load(progress=False)
print(time.perf_counter() - start)
"""


def env() -> dict[str, str]:
    out = dict(os.environ)
    if "MNISTEXP_DATA_DIR" not in out and (DEFAULT_DATA / "train-images-idx3-ubyte.gz").exists():
        out["MNISTEXP_DATA_DIR"] = str(DEFAULT_DATA)
    return out


def run_child(cmd: list[str], cwd: Path = ROOT) -> tuple[float, str]:
    """(wall seconds, stdout) of one child process; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err.strip()[-500:]}")
    return seconds, out


def peak_rss(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child, from ``os.wait4``.

    ``getrusage(RUSAGE_CHILDREN)`` would report the maximum over every child so far (the
    --help runs included); ``wait4`` gives this child's own ``ru_maxrss``."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}: "
            f"{proc.stderr.read().decode().strip()[-500:]}"
        )
    proc.stderr.close()
    return seconds, usage.ru_maxrss / 1024  # kilobytes on Linux


def summary(label: str, times: list[float], target: float | None = None) -> None:
    verdict = ""
    if target is not None:
        met = statistics.median(times) < target
        verdict = f"  target < {target:g} s: {'met' if met else 'NOT met'}"
    print(
        f"{label:<34} median {statistics.median(times):6.3f} s "
        f"(min {min(times):.3f}, max {max(times):.3f}, n={len(times)}){verdict}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7, help="repeats of --help and the data load")
    p.add_argument("--train-repeats", type=int, default=3, help="repeats of the baseline run")
    p.add_argument("--config", default="configs/baseline.yaml", help="config to run end to end")
    args = p.parse_args(argv)

    mnistexp = str(BIN / "mnistexp")
    run_child([mnistexp, "--help"])  # warm the file cache
    summary(
        "mnistexp --help", [run_child([mnistexp, "--help"])[0] for _ in range(args.repeats)], 0.3
    )

    run_child([sys.executable, "-c", SECOND_LOAD])  # first load: fills the decoded cache
    loads = [float(run_child([sys.executable, "-c", SECOND_LOAD])[1]) for _ in range(args.repeats)]
    summary("second data load (in-process)", loads, 0.3)

    times, peaks = [], []
    with tempfile.TemporaryDirectory(prefix="mnistexp-bench-") as runs_dir:
        cmd = [
            mnistexp,
            "train",
            "--config",
            args.config,
            "--runs-dir",
            runs_dir,
            "--force",
            "--no-progress",
        ]
        for _ in range(args.train_repeats):
            seconds, peak = peak_rss(cmd)
            times.append(seconds)
            peaks.append(peak)
    summary(f"mnistexp train {args.config}", times, 10.0)
    peak = max(peaks)
    ratio = peak / FLOAT32_DATASET_MB
    print(
        f"{'peak RSS of that run':<34} {peak:6.0f} MiB = {ratio:.2f}x the float32 dataset "
        f"({FLOAT32_DATASET_MB:.0f} MiB)  target < 2.5x: {'met' if ratio < 2.5 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
