"""What the evaluation beyond the test set costs next to training (issue 27's budget: the
full default shift + OOD + selective evaluation of one baseline run at most 25% of that run's
10-epoch training wall time).

Each repeat, in fresh processes: ``mnistexp train -c configs/baseline.yaml --force`` (wall
time of the whole command), then ``mnistexp evaluate RUN --force`` with every default family
and OOD set (wall time of the whole command). Medians (min-max) of ``--repeats``; the ratio
is taken repeat by repeat. The first evaluate of a machine also builds the shifted-set cache
(``--cold`` empties it before every repeat to time that case).

    python benchmarks/shift_eval_cost.py [--repeats 5] [--cold] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mnistexp", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL, cwd=ROOT)  # fmt: skip
    return time.perf_counter() - start


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="empty the shifted-set cache first")
    parser.add_argument("--json", type=Path, help="write the raw times here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shift-cost-"))
    cache = work / "cache"
    env = {**os.environ, "MNISTEXP_CACHE_DIR": str(cache), "MNISTEXP_RUNS_DIR": str(work)}
    train_s, eval_s = [], []
    try:
        for _ in range(args.repeats):
            train_s.append(timed(["train", "-c", "configs/baseline.yaml", "--force"], env))
            (run,) = [p for p in work.iterdir() if p.name.startswith("baseline-")]
            if args.cold:
                shutil.rmtree(cache / "shifted", ignore_errors=True)
            eval_s.append(timed(["evaluate", str(run), "--force"], env))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = [e / t for e, t in zip(eval_s, train_s, strict=True)]
    print(f"train (10 epochs, end to end) s: {summary(train_s)}")
    print(f"evaluate (default shift + OOD + selective) s: {summary(eval_s)}")
    print(f"ratio evaluate / train: {summary(ratios)}")
    if args.json:
        record = {"train_s": train_s, "evaluate_s": eval_s, "cold": args.cold}
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
