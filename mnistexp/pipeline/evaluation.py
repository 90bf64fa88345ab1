"""Final evaluation of a trained model: metrics.json sections and the test predictions.

Glue between the model (logits) and :mod:`mnistexp.eval.metrics` (pure functions on probabilities).
Probabilities always come from :func:`mnistexp.eval.metrics.log_probabilities`, the one documented
rule for turning softmax, sigmoid or linear outputs into a distribution; predictions are the
argmax of the raw outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from mnistexp.core.schema import ExperimentConfig
from mnistexp.eval import bootstrap, metrics
from mnistexp.eval.metrics import SCHEMA_VERSION
from mnistexp.eval.recalibration import RECALIBRATIONS, predictions_after
from mnistexp.learning.model import MLP, logits
from mnistexp.learning.objective import Objective
from mnistexp.pipeline.splits import Split

__all__ = ["SCHEMA_VERSION", "evaluate_run"]


def evaluate_run(
    cfg: ExperimentConfig, model: MLP, objective: Objective, splits: dict[str, Split | None]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """metrics.json content and predictions.npz arrays for splits test/validation/train."""
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "conventions": {**metrics.CONVENTIONS, "bins": cfg.eval.bins, "output": cfg.loss.output},
    }
    outputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, split in splits.items():
        if split is None:
            report[name] = None
            continue
        z = logits(model, split.x)
        log_p = metrics.log_probabilities(z, cfg.loss.output)
        pred = z.argmax(axis=1)
        report[name] = _split_metrics(objective, z, log_p, pred, split, cfg.eval.bins)
        outputs[name] = (log_p, pred)
    report["test_temperature_scaled"] = _temperature_section(cfg, splits, outputs)
    test = splits["test"]
    assert test is not None  # every run has a test split
    log_p, pred = outputs["test"]
    # small matrix products: one BLAS thread is several times faster than two on a busy machine
    with threadpool_limits(limits=1, user_api="blas"):
        report["test_recalibrated"] = _recalibrated(cfg, splits, outputs, report)
        if cfg.eval.bootstrap:
            sample = bootstrap.per_sample(np.exp(log_p), log_p, test.y, pred)
            sigma = report["test"]["smooth_ece_sigma"]
            boot = bootstrap.intervals(
                sample, cfg.eval.bins, sigma, seed=cfg.seed, resamples=cfg.eval.bootstrap
            )
            report["test"]["reliability"] |= boot.pop("reliability")  # the diagram's band
            report["test"]["bootstrap"] = boot
    predictions = {
        "probs": np.exp(log_p).astype(np.float32),
        "labels": test.y.astype(np.int64),
        "predictions": pred.astype(np.int64),
    }
    return report, predictions


def _split_metrics(
    objective: Objective,
    z: np.ndarray,
    log_p: np.ndarray,
    pred: np.ndarray,
    split: Split,
    bins: int,
) -> dict[str, Any]:
    out = metrics.evaluate(np.exp(log_p), split.y, pred, bins=bins, log_probs=log_p)
    with np.errstate(over="ignore", invalid="ignore"):
        t = objective.targets(split.t, split.y, z)
        out["loss"] = objective.loss.value(z, objective.loss.activate(z), t)
    return out


def _temperature_section(
    cfg: ExperimentConfig,
    splits: dict[str, Split | None],
    outputs: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, Any]:
    if not cfg.eval.temperature_scaling:
        return {"skipped": "eval.temperature_scaling is false"}
    if "temperature" not in cfg.eval.recalibration:
        return {"skipped": "temperature is not in eval.recalibration"}
    if splits.get("validation") is None:
        return {"skipped": "no validation split (data.validation: 0) to fit the temperature on"}
    val_log_p, _ = outputs["validation"]
    validation, test = splits["validation"], splits["test"]
    assert validation is not None and test is not None  # checked above / always present
    temperature, fit = metrics.fit_temperature(val_log_p, validation.y)
    log_p, pred = outputs["test"]
    probs_t, log_p_t = metrics.apply_temperature(log_p, temperature)
    section = metrics.evaluate(probs_t, test.y, pred, bins=cfg.eval.bins, log_probs=log_p_t)
    return {"temperature": temperature, "fit": fit.as_json(), **section}


def _recalibrated(
    cfg: ExperimentConfig,
    splits: dict[str, Split | None],
    outputs: dict[str, tuple[np.ndarray, np.ndarray]],
    report: dict[str, Any],
) -> dict[str, Any]:
    """Method -> test metrics after the map fitted on validation, for each method of
    ``eval.recalibration``; temperature is the ``test_temperature_scaled`` section itself."""
    validation, test = splits.get("validation"), splits["test"]
    assert test is not None  # every run has a test split
    out: dict[str, Any] = {}
    for name in cfg.eval.recalibration:
        if name == "temperature":
            out[name] = report["test_temperature_scaled"]
        elif validation is None:
            out[name] = {"skipped": "no validation split (data.validation: 0) to fit it on"}
        else:
            fitted = RECALIBRATIONS[name].fit(outputs["validation"][0], validation.y, cfg.eval.bins)
            log_p, pred = outputs["test"]
            q, log_q = fitted.apply(log_p)
            if RECALIBRATIONS[name].changes_accuracy:
                pred = predictions_after(q, log_p, pred)
            section = metrics.evaluate(q, test.y, pred, bins=cfg.eval.bins, log_probs=log_q)
            fit = {} if fitted.fit is None else {"fit": fitted.fit.as_json()}
            out[name] = {**fitted.params, **fit, **section}
    return out
