"""What ``compare --shift`` (shift tables and seed ensembles) costs over plain ``compare``.

Builds N synthetic run folders (``--experiments`` configs, N / experiments seeds each, no
training): config, status, metrics.json, predictions.npz, and shift.json with
shift_predictions.npz for every family at its default severities (29 sets, 26 distinct) and
the three OOD sets, written as ``mnistexp evaluate`` writes them (float16, SHA-256 in the
report, the per-seed sections scored by the same code). The probabilities are made up:
softmax of Gaussian logits whose margin on the true class shrinks with the severity. Then it
times ``mnistexp compare ROOT``, then ``mnistexp compare ROOT --shift`` first with an empty
cache (every ensemble computed from the arrays) and then again (every experiment's rows read
back from the cache, :mod:`mnistexp.analysis.shiftcache`), each in a fresh process with its
own cache folder, and prints the medians.

    .venv/bin/python benchmarks/compare_shift.py                       # 20 tiny runs
    .venv/bin/python benchmarks/compare_shift.py --images 10000 --ood-size 2000
    .venv/bin/python benchmarks/compare_shift.py --runs 40 --repeat 5 --keep /tmp/shift-runs

``--images`` is the test set's size (200: the tests' tiny dataset; 10,000: MNIST's).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mnistexp.config import config_hash, load_config
from mnistexp.config.loading import to_yaml
from mnistexp.data.shifts import SHIFTS
from mnistexp.eval import metrics
from mnistexp.eval.ood import ood_report
from mnistexp.pipeline import shifted
from mnistexp.store import runs

K = 10
OOD = ("letters", "uniform", "gaussian")


def probabilities(rng: np.random.Generator, labels: np.ndarray, margin: float) -> np.ndarray:
    """float64 (n, K): softmax of N(0, 1.5) logits with ``margin`` added to the true class."""
    z = rng.normal(0.0, 1.5, (labels.size, K))
    z[np.arange(labels.size), labels] += margin
    return np.exp(metrics.log_probabilities(z, "softmax"))


def grid() -> list[tuple[str, str, float]]:
    """(set key, family, severity) of every default severity, and how hard each is (0..1)."""
    out = []
    for family, spec in SHIFTS.items():
        values = spec.default_grid
        for value in values:
            hard = abs(value - values[0]) / (abs(values[-1] - values[0]) or 1.0)
            out.append((shifted.severity_key(family, value), family, hard))
    return out


def shift_files(
    rng: np.random.Generator, labels: np.ndarray, ood_size: int, bins: int
) -> tuple[dict, dict]:
    """(shift.json report without its SHA-256, arrays) for one synthetic run."""
    sets, arrays, stored = {}, {}, {}
    identity = probabilities(rng, labels, 4.0)  # the severities that change nothing share it
    for key, family, hard in grid():
        p = identity if hard == 0 else probabilities(rng, labels, 4.0 * (1 - hard))
        checksum = "identity" if hard == 0 else key
        name = stored.setdefault(checksum, f"{key}/probs")
        if name == f"{key}/probs":
            arrays[name] = p.astype(np.float16)
        severity = float(key.split("/")[1])
        section = shifted.labelled_metrics(p, np.log(p), labels, p.argmax(axis=1), bins)
        sets[key] = {"family": family, "severity": severity, "n": labels.size}
        sets[key] |= {"checksum": checksum, "probs": name, "raw": section}
    ood = {}
    msp_in = identity.max(axis=1)
    for name in OOD:
        p = probabilities(rng, rng.integers(0, K, ood_size), 1.0)
        arrays[f"ood/{name}/probs"] = p.astype(np.float16)
        ood[name] = {"n": ood_size, "checksum": name, "raw": {"msp": ood_report(msp_in, p.max(1))}}
    settings = {"families": list(SHIFTS), "ood": list(OOD), "ood_size": ood_size}
    report = {"schema_version": 1, "settings": settings, "conventions": {"bins": bins}}
    report |= {"maps": {}, "sets": sets, "ood": ood}
    return report, arrays | {"_test": identity}


def make_run(root: Path, experiment: int, seed: int, images: int, ood_size: int) -> None:
    cfg = load_config(
        None, [f"name=exp{experiment}", f"seed={seed}", f"train.lr={0.1 + experiment / 100}"]
    )
    folder = root / runs.run_id(cfg.name, config_hash(cfg), seed)
    folder.mkdir(parents=True)
    labels = np.random.default_rng(0).integers(0, K, images)  # one test set for every run
    rng = np.random.default_rng([experiment, seed])
    report, arrays = shift_files(rng, labels, ood_size, cfg.eval.bins)
    test = arrays.pop("_test")
    pred = test.argmax(axis=1)
    section = metrics.evaluate(test, labels, pred, bins=cfg.eval.bins, log_probs=np.log(test))
    runs.write_atomic(folder / "config.yaml", to_yaml(cfg))
    runs.write_json(folder / runs.CONFIG_JSON, cfg.to_dict())
    runs.write_json(folder / "status.json", {"state": "completed"})
    runs.write_json(folder / "metrics.json", {"schema_version": 2, "test": section})
    predictions = {"probs": test.astype(np.float32), "labels": labels, "predictions": pred}
    runs.write_npz(folder / "predictions.npz", predictions)
    runs.write_shift(folder, report, arrays)


def time_compare(root: Path, cache: Path, *extra: str) -> float:
    """Seconds of ``mnistexp compare ROOT EXTRA`` in a fresh process using ``cache``."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mnistexp", "compare", str(root), *extra],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "MNISTEXP_CACHE_DIR": str(cache)},
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--experiments", type=int, default=4)
    parser.add_argument("--images", type=int, default=200, help="test images per set")
    parser.add_argument("--ood-size", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5, help="timings of each (the median)")
    parser.add_argument("--keep", type=Path, help="build the folders here and keep them")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="compare-shift-"))
    try:
        root = work / "runs"
        if not root.exists():
            start = time.perf_counter()
            for i in range(args.runs):
                make_run(
                    root, i % args.experiments, i // args.experiments, args.images, args.ood_size
                )
            print(f"built {args.runs} runs in {time.perf_counter() - start:.1f} s")
        npz = sum(p.stat().st_size for p in root.glob(f"*/{runs.SHIFT_NPZ}")) / args.runs
        print(f"{args.images} images per set; shift_predictions.npz {npz / 1e6:.2f} MB per run")
        check = subprocess.run(
            [sys.executable, "-m", "mnistexp", "compare", str(root), "--shift"],
            capture_output=True,
            text=True,
            check=True,
        )
        if check.stderr:
            raise SystemExit(f"compare --shift warned; fix the synthetic runs:\n{check.stderr}")
        plain, cold, warm = [], [], []
        cache = work / "cache"
        for _ in range(args.repeat):
            plain.append(time_compare(root, cache))
            shutil.rmtree(cache / "compare", ignore_errors=True)
            cold.append(time_compare(root, cache, "--shift"))
            warm.append(time_compare(root, cache, "--shift"))
        a, b, c = (statistics.median(t) for t in (plain, cold, warm))
        print(f"compare                 {a:.2f} s (median of {args.repeat}, fresh processes)")
        print(f"compare --shift, first  {b:.2f} s ({b / a:.2f}x)")
        print(f"compare --shift, again  {c:.2f} s ({c / a:.2f}x)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
