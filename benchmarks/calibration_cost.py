"""What the calibration estimators, the bootstrap and each recalibration map add to a run.

For each finished run folder given (real MNIST: ``MNISTEXP_DATA_DIR``), the model's validation,
test and training outputs are recomputed from ``model.npz``, then each piece of the final
evaluation is timed on them (median of ``--repeats``, one BLAS thread, as in a run):

* the estimators added to every split (debiased CE, smooth ECE) on train, validation and test;
* the bootstrap of the test metrics (``eval.bootstrap`` resamples);
* each recalibration map: fit on validation, apply to test, the test section's metrics.

It also prints the test numbers (ECE, debiased CE, smooth ECE with bootstrap intervals, and
ECE / NLL / accuracy after each map), so one command gives the issue's table.

    .venv/bin/python benchmarks/calibration_cost.py /tmp/i15runs/baseline-*-s0 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from mnistexp.config.loading import read_stored
from mnistexp.data import datasets as data
from mnistexp.eval import bootstrap, calibration, metrics
from mnistexp.eval.recalibration import RECALIBRATIONS, predictions_after
from mnistexp.orchestration.experiment import read_finished_run


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """(median seconds, last result) of ``repeats`` calls."""
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def outputs(folder: Path, dataset: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split -> (log-probabilities (n, K), labels (n,)) of the run's model."""
    cfg, _ = read_stored(folder / "config.yaml")
    run = read_finished_run(folder, dataset)
    images, labels = dataset.train_images, dataset.train_labels
    v = cfg.data.validation
    parts = {"train": (images[: run.n_train], labels[: run.n_train])}
    if v:
        parts["validation"] = (images[len(images) - v :], labels[len(labels) - v :])
    parts["test"] = (dataset.test_images, dataset.test_labels)
    out = {}
    for name, (x, y) in parts.items():
        z = run.logits(x)
        out[name] = (metrics.log_probabilities(z, cfg.loss.output), y.astype(np.intp), z)
    return out


def measure(folder: Path, dataset: Any, repeats: int, resamples: int) -> None:
    cfg, _ = read_stored(folder / "config.yaml")
    parts = outputs(folder, dataset)
    bins = cfg.eval.bins
    print(f"\n{folder.name} ({cfg.loss.type} / {cfg.loss.output})")
    for name, (lp, y, z) in parts.items():
        pred = z.argmax(axis=1)
        conf, hits = np.exp(lp)[np.arange(len(y)), pred], pred == y
        t_smooth, _ = timed(lambda c=conf, h=hits: calibration.smooth_ece(c, h), repeats)
        t_debiased, _ = timed(lambda c=conf, h=hits: calibration.debiased_ce(c, h, bins), repeats)
        print(
            f"  {name:<10} n={len(y):>5}: smooth ECE {t_smooth * 1000:6.1f} ms, "
            f"debiased CE {t_debiased * 1000:5.1f} ms"
        )
    lp, y, z = parts["test"]
    pred = z.argmax(axis=1)
    test = metrics.evaluate(np.exp(lp), y, pred, bins=bins, log_probs=lp)
    sample = bootstrap.per_sample(np.exp(lp), lp, y, pred)
    t_boot, boot = timed(
        lambda: bootstrap.intervals(
            sample, bins, test["smooth_ece_sigma"], cfg.seed, resamples=resamples
        ),
        repeats,
    )
    print(f"  bootstrap, {resamples} resamples of the test set: {t_boot:.3f} s")

    def pct(key: str) -> str:
        low, high = boot[key]
        return f"{100 * test[key]:.2f} [{100 * low:.2f}, {100 * high:.2f}]"

    print(
        f"  test: accuracy {pct('accuracy')}%  ECE {pct('ece')}%  smooth ECE "
        f"{pct('smooth_ece')}%  debiased CE {100 * test['debiased_ce']:.2f}%  "
        f"NLL {test['nll']:.4f} [{boot['nll'][0]:.4f}, {boot['nll'][1]:.4f}]"
    )
    if "validation" not in parts:
        print("  no validation split: no recalibration")
        return
    val_lp, val_y, _ = parts["validation"]
    for method, recal in RECALIBRATIONS.items():

        def fit_and_score(recal: Any = recal) -> dict[str, Any]:
            fitted = recal.fit(val_lp, val_y, bins)
            q, log_q = fitted.apply(lp)
            p = predictions_after(q, lp, pred) if recal.changes_accuracy else pred
            return metrics.evaluate(q, y, p, bins=bins, log_probs=log_q)

        seconds, after = timed(fit_and_score, repeats)
        print(
            f"  {method:<12} {seconds:6.3f} s  accuracy {100 * after['accuracy']:.2f}%  "
            f"ECE {100 * after['ece']:.2f}%  smooth ECE {100 * after['smooth_ece']:.2f}%  "
            f"NLL {after['nll']:.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resamples", type=int, default=bootstrap.DEFAULT_RESAMPLES)
    args = parser.parse_args()
    dataset = data.load("mnist", None)
    with threadpool_limits(limits=1, user_api="blas"):
        for folder in args.runs:
            measure(folder, dataset, args.repeats, args.resamples)


if __name__ == "__main__":
    main()
