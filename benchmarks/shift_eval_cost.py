"""What the evaluation beyond the test set costs next to training (issue 27's budget: the
full default shift + OOD + selective evaluation of one baseline run at most 25% of that run's
10-epoch training wall time).

Each repeat, in fresh processes, wall times of whole commands:

- ``mnistexp train -c configs/baseline.yaml --force``: the run's training;
- the same with every default family and OOD set in its ``shift`` section: what the
  evaluation adds to a run that asks for it at training (same data, same model in memory);
- ``mnistexp evaluate RUN --force`` on the finished run: the evaluation added afterwards,
  which also starts Python, loads MNIST and rebuilds the validation split.

Medians (min-max) of ``--repeats``; each ratio is taken repeat by repeat. The first
evaluation on a machine also builds the shifted-set cache (``--cold`` empties it before every
repeat to time that case).

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
EVERY = [
    "--set", "shift.families=[rotate, translate, noise, contrast, digits]",
    "--set", "shift.ood=[letters, uniform, gaussian]",
]  # fmt: skip
"""What ``mnistexp evaluate`` does by default, asked of training."""


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mnistexp", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL, cwd=ROOT)  # fmt: skip
    return time.perf_counter() - start


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def ratios(top: list[float], bottom: list[float]) -> list[float]:
    return [a / b for a, b in zip(top, bottom, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="empty the shifted-set cache first")
    parser.add_argument("--json", type=Path, help="write the raw times here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shift-cost-"))
    cache = work / "cache"
    env = {**os.environ, "MNISTEXP_CACHE_DIR": str(cache), "MNISTEXP_RUNS_DIR": str(work)}
    train = ["train", "-c", "configs/baseline.yaml", "--force"]
    train_s, with_s, eval_s = [], [], []
    try:
        if not args.cold:
            timed([*train, *EVERY], env)  # builds the shifted-set cache, untimed
        for _ in range(args.repeats):
            if args.cold:
                shutil.rmtree(cache / "shifted", ignore_errors=True)
            with_s.append(timed([*train, *EVERY], env))
            train_s.append(timed(train, env))
            (run,) = [p for p in work.iterdir() if p.name.startswith("baseline-")]
            if args.cold:
                shutil.rmtree(cache / "shifted", ignore_errors=True)
            eval_s.append(timed(["evaluate", str(run), "--force"], env))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    added = [w - t for w, t in zip(with_s, train_s, strict=True)]
    print(f"train (10 epochs, end to end) s: {summary(train_s)}")
    print(f"train with the default evaluation s: {summary(with_s)}")
    print(f"  added by the evaluation s: {summary(added)}")
    print(f"  ratio added / train: {summary(ratios(added, train_s))}")
    print(f"evaluate (default shift + OOD + selective) s: {summary(eval_s)}")
    print(f"  ratio evaluate / train: {summary(ratios(eval_s, train_s))}")
    if args.json:
        record = {"train_s": train_s, "train_with_s": with_s, "evaluate_s": eval_s,
                  "cold": args.cold}  # fmt: skip
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
