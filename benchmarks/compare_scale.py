"""How `mnistexp compare` scales with the number of run folders.

Trains one small real run (or takes ``--source``, a finished run folder), makes N synthetic
copies of it, each its own seed (config.yaml, config.json and status.json rewritten, the
other files hard-linked to save disk), and times ``mnistexp compare <root>`` (the default
table) in a fresh process for each N, with its peak memory (ru_maxrss of the child).

    python benchmarks/compare_scale.py                 # N = 1,000 and 10,000
    python benchmarks/compare_scale.py --n 2000 --repeat 3 --keep /tmp/cmp

Needs MNIST (MNISTEXP_DATA_DIR) unless --source is given. Copies of a folder written before
config.json existed (``--no-json``) measure the YAML path that old folders take.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET = ["--set", "train.epochs=1", "--set", "data.train_subset=1000"]


def source_run(work: Path) -> Path:
    """A finished run folder of the baseline config with a small budget."""
    root = work / "source"
    cmd = [sys.executable, "-m", "mnistexp", "train", "-c", "configs/baseline.yaml", *BUDGET]
    subprocess.run([*cmd, "--runs-dir", str(root), "--no-progress"], check=True)
    (folder,) = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return folder


def make_copies(source: Path, root: Path, n: int, with_json: bool) -> None:
    """``n`` copies of ``source`` under ``root``, seeds 0..n-1 (folder names follow)."""
    root.mkdir(parents=True, exist_ok=True)
    prefix = re.sub(r"-s[0-9]+$", "", source.name)
    config = (source / "config.yaml").read_text()
    status = json.loads((source / "status.json").read_text())
    resolved = json.loads((source / "config.json").read_text()) if with_json else None
    linked = [
        p.name
        for p in source.iterdir()
        if p.suffix in (".npz", ".csv") or p.name in ("metrics.json", "env.json")
    ]
    for seed in range(n):
        folder = root / f"{prefix}-s{seed}"
        if folder.exists():
            continue
        folder.mkdir()
        (folder / "config.yaml").write_text(re.sub(r"(?m)^seed: \d+$", f"seed: {seed}", config))
        if resolved is not None:
            (folder / "config.json").write_text(json.dumps({**resolved, "seed": seed}))
        (folder / "status.json").write_text(json.dumps(status))
        for name in linked:
            os.link(source / name, folder / name)


def time_compare(root: Path) -> tuple[float, float]:
    """(seconds, peak MiB) of ``mnistexp compare root`` in a fresh process (its own maxrss)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistexp", "compare", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(output.decode(errors="replace"))
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3, help="timings per N (the median)")
    parser.add_argument("--source", type=Path, help="a finished run folder to copy")
    parser.add_argument("--keep", type=Path, help="build the folders here and keep them")
    parser.add_argument("--no-json", action="store_true", help="copies without config.json")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="compare-scale-"))
    try:
        source = args.source or source_run(work)
        if not args.no_json and not (source / "config.json").exists():
            raise SystemExit(f"{source} has no config.json; pass --no-json")
        medians = {}
        for n in args.n:
            root = work / f"runs-{n}"
            make_copies(source, root, n, not args.no_json)
            timings = sorted(time_compare(root) for _ in range(args.repeat))
            seconds, peak = timings[len(timings) // 2]
            medians[n] = seconds
            print(
                f"N = {n:6d}: {seconds:6.2f} s (median of {args.repeat}; "
                f"{1000 * seconds / n:.2f} ms per folder), peak memory {peak:.0f} MiB"
            )
        if len(medians) >= 2:  # the time one more folder costs, start-up excluded
            (n0, t0), (n1, t1) = min(medians.items()), max(medians.items())
            print(f"each further folder: {1000 * (t1 - t0) / (n1 - n0):.2f} ms")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
